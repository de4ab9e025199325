# 310_restore_timelines.t — walship restore across timelines. A primary on timeline 1 is backed
# up (b1); a restore of b1 to a named point is promoted (timeline 2) and keeps writing and
# archiving into the same repository, where it is backed up too (b2); meanwhile the old primary
# writes on timeline 1 past the fork and is backed up there (b1late). Then:
#   - from b1, to a named point on timeline 2 (--target-timeline latest: 00000002.history is
#     fetched and followed);
#   - to a time on timeline 2 after b2: b2 is chosen;
#   - to an LSN on timeline 2 before b2 (--target-timeline 2): b1 is chosen, not b1late, whose
#     stop LSN is smaller but lies on timeline 1 past the fork;
#   - from b1 with --target-timeline current: timeline 1 to its end, ignoring timeline 2.
# Each holds exactly the rows of its branch up to its target. b2, a backup of a restored cluster,
# carries the walship block of that first restore in its postgresql.auto.conf: restoring it must
# replace that block, not add a second one (PostgreSQL refuses two recovery targets).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use Time::HiRes qw(sleep);

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);
my $push = "$bin -c $conf push %p";

sub insert_rows
{
	my ($node, $from, $to) = @_;
	$node->safe_psql(join('', map { "INSERT INTO t (n) VALUES ($_);\n" } $from .. $to));
	return;
}

# ---- timeline 1
my $primary = new_cluster('primary', archive_command => $push);
$primary->start;
$primary->safe_psql(
	'CREATE TABLE t (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
insert_rows($primary, 1, 10);
my $b1 = take_basebackup($primary, \@g, label => 'b1');
insert_rows($primary, 11, 15);
$primary->safe_psql("SELECT pg_create_restore_point('fork15')");
insert_rows($primary, 16, 20);
my $last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "timeline 1 archived up to $last");

# ---- the fork: b1 restored to fork15 and promoted; it archives into the same repository
my $tl2 = restored_node('tl2');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $tl2->pgdata, '--backup', $b1,
	'--target-name', 'fork15', '--target-action', 'promote', '--archive-mode', 'preserve');
is($rc, 0, 'restore of b1 to fork15 (--archive-mode preserve: it is to archive) exits 0')
  or diag($err);
configure_restored($tl2, archive_command => $push);
$tl2->start;
ok(wait_recovery_done($tl2), 'the restored cluster promoted at fork15');
is(rows_summary($tl2), '15|15', '... holding rows 1..15');
is($tl2->safe_psql('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), '00000002',
	'... on timeline 2');

# ---- timeline 1 goes on past the fork, and is backed up there
insert_rows($primary, 21, 25);
my $b1late = take_basebackup($primary, \@g, label => 'b1late');
my $b1late_stop = $primary->safe_psql('SELECT pg_current_wal_lsn()');
$last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "timeline 1 archived up to $last (past the fork)");
$primary->stop;

# ---- timeline 2: rows 101.., then enough WAL that its LSNs pass b1late's stop
insert_rows($tl2, 101, 110);
$tl2->safe_psql('CREATE TABLE pad (x int)');
for (1 .. 20)
{
	last if $tl2->safe_psql("SELECT pg_current_wal_lsn() > '$b1late_stop'::pg_lsn") eq 't';
	$tl2->safe_psql('INSERT INTO pad SELECT generate_series(1, 100)');
	$tl2->switch_wal;
}
insert_rows($tl2, 111, 112);
my $t_lsn = $tl2->safe_psql('SELECT pg_current_wal_insert_lsn()');    # 1..15, 101..112 before it
ok($tl2->safe_psql("SELECT '$t_lsn'::pg_lsn > '$b1late_stop'::pg_lsn") eq 't',
	"timeline 2's target LSN $t_lsn is past b1late's stop ($b1late_stop)");
insert_rows($tl2, 113, 115);
sleep 1.2;
my $b2 = take_basebackup($tl2, \@g, label => 'b2');
sleep 1.2;
insert_rows($tl2, 116, 120);
sleep 0.05;
my $t_time = ts_now($tl2);    # 1..15, 101..120 before it
sleep 0.05;
insert_rows($tl2, 121, 125);
$tl2->safe_psql("SELECT pg_create_restore_point('tl2_125')");
insert_rows($tl2, 126, 130);
$last = $tl2->switch_wal;
ok($tl2->wait_for_archive($last), "timeline 2 archived up to $last");
ok(-f "$repo/wal/history/00000002.history", '00000002.history is in the repository');
$tl2->stop;

my $list = list_backups(\@g);
my %tli = map { $_->{id} => $_->{stop_timeline} } @$list;
is_deeply(\%tli, { $b1 => 1, $b1late => 1, $b2 => 2 }, 'three backups: b1, b1late on 1, b2 on 2');

# restore_case(name, [args], expected backup id, expected rows 'count|max', recovery_target_timeline)
sub restore_case
{
	my ($name, $args, $want_id, $rows, $want_tl, $log) = @_;
	my $r = restored_node($name);
	my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata, @$args);
	is($rc, 0, "$name: walship restore @$args exits 0") or do { diag($err); return };
	my $blk = recovery_block($r->pgdata) // { settings => {} };
	is($blk->{id}, $want_id, "$name: restored from backup $want_id");
	is($blk->{count}, 1, "$name: one walship block in postgresql.auto.conf")
	  or diag($blk->{text});
	is($blk->{settings}{recovery_target_timeline}, $want_tl,
		"$name: recovery_target_timeline = " . ($want_tl // '(not set)'));
	configure_restored($r);
	ok($r->start(fail_ok => 1), "$name: starts") or return;
	ok(wait_recovery_done($r), "$name: recovery reached its target and promoted");
	is(rows_summary($r), $rows, "$name: rows $rows exactly");
	like($r->log_content, $log, "$name: the server log shows the timeline followed") if $log;
	$r->stop;
	return;
}

restore_case(
	'from_b1_latest',
	[ '--backup', $b1, '--target-name', 'tl2_125', '--target-timeline', 'latest',
		'--target-action', 'promote' ],
	$b1, '40|125', 'latest',
	qr/restored log file "00000002\.history" from archive.*recovery stopping at restore point "tl2_125"/s);

restore_case('time_b2', [ '--target-time', $t_time, '--target-action', 'promote' ],
	$b2, '35|120', undef);

restore_case(
	'lsn_right_timeline',
	[ '--target-lsn', $t_lsn, '--target-timeline', '2', '--target-action', 'promote' ],
	$b1, '27|112', '2',
	qr/recovery stopping after WAL location \(LSN\) "\Q$t_lsn\E"/);

restore_case('b1_current', [ '--backup', $b1, '--target-timeline', 'current' ],
	$b1, '25|25', 'current');

done_testing();
