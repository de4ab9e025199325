# 424_restore_target_beyond_archive.t — a recovery target beyond the archive is caught before
# PostgreSQL fails on it. A primary is backed up and archives up to a segment; then it writes
# more WAL that is never archived. A --target-lsn in that unarchived WAL and a --target-time
# after the newest archived segment was stored are refused (exit 1, PGDATA not created), naming
# the newest archived segment and when it was stored (its object's mtime), with a hint naming
# --force. Targets inside the archive pass. With --force the restore goes ahead with a warning,
# and PostgreSQL indeed stops with "recovery ended before configured recovery target was
# reached": the refusal was right.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use Time::HiRes qw(sleep);

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my ($node, $b1) = backed_up_primary($conf, 10);
sleep 1.2;    # backup stop times are whole seconds: the time target below lies after it
$node->safe_psql('INSERT INTO t SELECT generate_series(11, 20)');
my $in_lsn  = $node->safe_psql('SELECT pg_current_wal_insert_lsn()');
my $in_time = ts_now($node);
my $last    = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
# from here on nothing is archived
$node->safe_psql("ALTER SYSTEM SET archive_command = 'false'");
$node->safe_psql('SELECT pg_reload_conf()');
sleep 2.2;    # the target time below is seconds after the last segment was stored
$node->safe_psql('INSERT INTO t SELECT generate_series(21, 5000)');
my $out_lsn  = $node->safe_psql('SELECT pg_current_wal_insert_lsn()');
my $out_time = ts_now($node);
$node->stop('immediate');

my $n = 0;
sub beyond
{
	my ($what, $opt, $value, $re) = @_;
	my $r = restored_node('b' . ++$n);
	my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata, $opt, $value);
	is($rc, 1, "$what: exit 1") or diag($err);
	like($err, $re, "$what: names the newest archived segment") or diag($err);
	like($err, qr/recovery ended before configured recovery target was reached/,
		"$what: says what PostgreSQL would do");
	like($err, qr/HINT:.*--force/, "$what: the hint names --force");
	ok(!-e $r->pgdata, "$what: PGDATA not created");
}

beyond('an LSN in unarchived WAL', '--target-lsn', $out_lsn,
	qr/the target LSN \Q$out_lsn\E lies beyond the newest archived WAL: segment \Q$last\E \(timeline 1, stored \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) ends at [0-9A-F]+\/[0-9A-F]+/);
beyond('a time after the newest segment was stored', '--target-time', $out_time,
	qr/the target time \Q$out_time\E lies beyond the newest archived WAL: segment \Q$last\E \(timeline 1\) was stored at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(its object's mtime\)/);

for my $ok ([ '--target-lsn', $in_lsn ], [ '--target-time', $in_time ])
{
	my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', "$base/dry$n", '--dry-run', @$ok);
	is($rc, 0, "a target inside the archive (@$ok) passes") or diag($err);
	unlike($err, qr/beyond/, '... without a warning');
	$n++;
}

# ---- --force: restored anyway, and PostgreSQL fails the way the refusal said
my $f = restored_node('forced');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $f->pgdata, '--target-lsn', $out_lsn,
	'--force');
is($rc, 0, '--force: restore exits 0') or diag($err);
like($err, qr/^walship restore: WARNING: the target LSN \Q$out_lsn\E lies beyond .*\(--force: restoring anyway\)/m,
	'... with the warning');
configure_restored($f);
$f->start(fail_ok => 1);
my $log = '';
for (1 .. 100)
{
	$log = eval { slurp_file($f->logfile) } // '';
	last if $log =~ /recovery ended before configured recovery target was reached/;
	sleep 0.2;
}
like($log, qr/recovery ended before configured recovery target was reached/,
	'PostgreSQL stops recovery: the target was indeed beyond the archive');

done_testing();
