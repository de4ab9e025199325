# 506_version_refused.t — a PostgreSQL major walship does not support (12, from npm like the
# matrix's servers) is refused by name, and nothing is written: walship basebackup exits 1
# before any data moves ("the server runs PostgreSQL 12.x; walship basebackup supports
# PostgreSQL 13 to 18"), and walship push refuses its WAL ("WAL of PostgreSQL 12 (magic
# 0xD101)"), exit 1 (PostgreSQL retries; never above 125), both with the repository left empty.
# Fails, not skips, when PostgreSQL 12's binaries are missing (scripts/deps.sh installs them).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

my $bindir = pg_server_bindir(12);
ok(defined $bindir, 'PostgreSQL 12 server binaries are installed (scripts/deps.sh)')
  or do { done_testing(); exit 1 };

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = new_cluster('pg12', bindir => $bindir);
$node->start;
like($node->safe_psql('SHOW server_version_num'), qr/^12\d{4}$/, 'the server is PostgreSQL 12');

my $pgconn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my ($rc, $out, $err) = run(cmd => [ $bin, @g, 'basebackup', '--pgconn', $pgconn ]);
is($rc, 1, 'walship basebackup of PostgreSQL 12: exit 1') or diag($err);
like($err, qr/^walship basebackup: .*the server runs PostgreSQL 12\.\d+; walship basebackup supports PostgreSQL 13 to 18/m,
	'... naming the version and the supported range') or diag($err);
like($err, qr/pg_upgrade/, '... with a hint (pg_upgrade)');
is_deeply([ dir_entries($repo) ], [], '... and nothing written to the repository');
is($node->safe_psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'"), '0',
	'... no backup left running on the server');

$node->safe_psql('CREATE TABLE t AS SELECT 1 AS n');
my $seg = $node->switch_wal;
($rc, $out, $err) = run(cmd => [ $bin, @g, 'push', $node->pgdata . "/pg_wal/$seg" ]);
is($rc, 1, "walship push of PostgreSQL 12's $seg: exit 1 (PostgreSQL retries)") or diag($err);
like($err, qr/^walship push: .*\Q$seg\E is WAL of PostgreSQL 12 \(magic 0xD101\); walship supports PostgreSQL 13 to 18/m,
	'... naming the version, its magic and the supported range') or diag($err);
is_deeply([ dir_entries($repo) ], [], '... and nothing written to the repository');

done_testing();
