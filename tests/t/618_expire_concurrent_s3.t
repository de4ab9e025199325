# 618_expire_concurrent_s3.t — 617's scenario on S3 (s3rver; expire removes through
# DeleteObjects): archiving, a base backup started before expire (kept by its lock alone) and a
# restore of a kept backup run together with a big expire, all succeed and restore exactly.
use strict;
use warnings;

use FindBin;

our $S3 = 1;
my $t = "$FindBin::RealBin/617_expire_concurrent.t";
do $t;
die "$t: $@" if $@;
