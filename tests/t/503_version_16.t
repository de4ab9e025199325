# 503_version_16.t — the version matrix on PostgreSQL 16 (tests/lib/WalshipMatrix.pm): a live
# archive under pgbench through the async push, walship basebackup (with a tablespace), restores
# to a time, an LSN, a transaction id, the backup's end and a named point, a timeline switch
# followed by a restore, a prefetching replay; the step table in the output. Fails (does not
# skip) when PostgreSQL 16's server binaries are missing (scripts/deps.sh installs them).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipMatrix;

version_matrix(16);
done_testing();
