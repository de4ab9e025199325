# 616_expire_pitr_random.t — after expire, point-in-time recovery to random points inside the
# window restores exactly the rows of that moment. A workload records, at many moments, the
# time, the WAL insert location and a checksum of the table (count + md5 of the ordered rows)
# while base backups are taken. Two rounds: expire with retention-full = 2 (of four backups),
# then, after a fifth, with retention-days = 1 (expire's clock set so that the window starts
# between the fourth and the fifth backup's stop); each removes backups and the WAL below
# the window. After each, restores (restore's plan picks the backup) to
# points chosen by a seeded RNG among the recorded moments inside the window — three by time,
# two by LSN — each give exactly the recorded rows; a time and an LSN just before the window's
# start are refused by restore's plan ("no backup ends before the target ...; the oldest
# restorable point is ...") and nothing is restored. The seed is printed (WALSHIP_SEED
# replays one).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep);
use Time::Local qw(timegm);

my $seed = $ENV{WALSHIP_SEED} // (time ^ $$) % 1000000;
diag("seed $seed (WALSHIP_SEED=$seed replays it)");
srand($seed);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int)');

my $CHECK = q{SELECT count(*) || ':' || coalesce(md5(string_agg(n::text, ',' ORDER BY n)), '') FROM t};
my @moments;    # { time => text, epoch => seconds, lsn => text, sum => checksum }
my $n = 0;

sub moment
{
	my $k = 1 + int(rand(40));
	$node->safe_psql("INSERT INTO t SELECT generate_series($n + 1, $n + $k)");
	$n += $k;
	$node->safe_psql("DELETE FROM t WHERE n % 7 = " . int(rand(7))) if rand() < 0.3;
	my $row = $node->safe_psql(
		"SELECT to_char(c AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00', "
		  . "extract(epoch FROM c), pg_current_wal_insert_lsn() "
		  . "FROM (SELECT clock_timestamp() c) s");
	my ($t, $e, $lsn) = split /\|/, $row;
	push @moments, { time => $t, epoch => $e, lsn => $lsn, sum => $node->safe_psql($CHECK) };
	$node->switch_wal if rand() < 0.3;
	sleep 0.15;
	return;
}

sub lsn_num
{
	my ($l) = @_;
	my ($hi, $lo) = split m{/}, $l;
	return hex($hi) * 2**32 + hex($lo);
}

sub epoch
{
	my ($s) = @_;
	my ($y, $mo, $d, $h, $mi, $se) = $s =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/ or die $s;
	return timegm($se, $mi, $h, $d, $mo - 1, $y);
}

my @ids;
sub backup_round
{
	my ($k) = @_;
	moment() for 1 .. 5;
	push @ids, take_basebackup($node, [ '-c', $conf ], label => "b" . (@ids + 1),
		extra => [ '--expire-auto', 'off' ]) for 1 .. $k;
	sleep 1.1;    # a time target must lie a second past the backup's (whole second) stop
	return;
}

sub archive_all
{
	moment() for 1 .. 6;
	$node->safe_psql("INSERT INTO t VALUES (-" . @moments . ")");    # a commit after every moment
	my $seg = $node->switch_wal;
	ok($node->wait_for_archive($seg), 'the workload is archived');
	return;
}

sub pick
{
	my ($k, @from) = @_;
	my @p;
	while (@p < $k && @from) { push @p, splice(@from, int(rand(@from)), 1) }
	return @p;
}

my $round = 0;

# check_window(\@expire_args, \@kept_ids): expire with those arguments keeps exactly those
# backups (oldest first; the window starts at the first), then PITR to random moments of the
# window gives their rows and targets just before it are refused
sub check_window
{
	my ($args, $keep) = @_;
	$round++;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, @$args ]);
	is($rc, 0, "round $round: @$args exits 0") or diag($err);
	my $r = eval { decode_json($out)->{repositories}[0] } // {};
	is($r->{window}{from_backup}, $keep->[0], "round $round: the window starts at $keep->[0]");
	ok($r->{wal_removed}{count} > 0, "round $round: WAL below the window removed ($r->{wal_removed}{count})");
	my %b = map { $_->{id} => $_ } @{ list_backups([ '-c', $conf ]) };
	is_deeply([ sort keys %b ], [ sort @$keep ], "round $round: list shows the kept backups");
	my ($wb, $nb) = @b{ @$keep[ 0, 1 ] };
	return unless $wb && $nb;
	my ($w_start, $w_stop) = (epoch($wb->{start_time}), epoch($wb->{stop_time}));
	my ($w_start_lsn, $w_stop_lsn) = (lsn_num($wb->{start_lsn}), lsn_num($wb->{stop_lsn}));

	# the moments inside the window: restorable by time and by LSN from its oldest backup on
	my @in_time = grep { $_->{epoch} >= $w_stop + 1 } @moments;
	my @in_lsn  = grep { lsn_num($_->{lsn}) >= $w_stop_lsn } @moments;
	ok(@in_time >= 6 && @in_lsn >= 6, "round $round: " . scalar(@in_time) . ' moments inside the window');

	# one time target between the window's first two backups (the plan restores the first and
	# replays the WAL expire kept after it), the others anywhere in the window
	my @early = grep { $_->{epoch} < epoch($nb->{stop_time}) } @in_time;
	ok(@early >= 1, "round $round: " . scalar(@early) . ' moments between the first two kept backups');
	my @first = pick(1, @early);
	my @times = ($first[0], pick(2, grep { $_ != $first[0] } @in_time));
	my $i = 0;
	for my $case ((map { [ 'time', $_ ] } @times), (map { [ 'lsn', $_ ] } pick(2, @in_lsn))) {
		my ($kind, $m) = @$case;
		my $value = $kind eq 'time' ? $m->{time} : $m->{lsn};
		$i++;
		my $rn = restored_node("r${round}_pitr$i");
		($rc, $out, $err) = walship_restore([ '-c', $conf ], '--pgdata', $rn->pgdata,
			"--target-$kind", $value, '--target-action', 'promote');
		is($rc, 0, "round $round: restore to $kind $value exits 0") or do { diag($err); next };
		configure_restored($rn);
		$rn->start;
		ok(wait_recovery_done($rn), "round $round: recovery to $kind $value ended");
		is($rn->safe_psql($CHECK), $m->{sum}, "round $round: $kind $value: exactly the rows of that moment");
		$rn->stop;
	}

	# just before the window's start: refused by restore's plan, nothing restored
	my ($before_t) = grep { $_->{epoch} < $w_start } reverse @moments;
	my ($before_l) = grep { lsn_num($_->{lsn}) < $w_start_lsn } reverse @moments;
	for my $case ([ 'time', $before_t->{time} ], [ 'lsn', $before_l->{lsn} ]) {
		my ($kind, $value) = @$case;
		my $rx = restored_node("r${round}_before_$kind");
		my ($orc, $oout, $oerr) = walship_restore([ '-c', $conf ], '--pgdata', $rx->pgdata,
			"--target-$kind", $value, '--target-action', 'promote');
		is($orc, 1, "round $round: restore to $kind $value, before the window, exits 1");
		like($oerr,
			qr/no backup ends before the target \Q$value\E; the oldest restorable point is .*the end of backup \Q$keep->[0]\E/,
			'... naming the oldest restorable point, the end of the window\'s first backup');
		ok(!-e $rx->pgdata . '/PG_VERSION', '... and restores nothing');
	}
	return;
}

backup_round(1) for 1 .. 4;
archive_all();
is(scalar(grep { defined } @ids), 4, 'four backups');

# round 1: retention-full = 2 keeps the two newest
check_window([ 'expire', '--json', '--retention-full', 2 ], [ @ids[ 2, 3 ] ]);

# round 2: one more backup; retention-days = 1 with expire's clock set so that the window's
# start falls a second after the fourth backup's stop: the fifth stopped inside the window,
# the fourth is the newest before it, the third goes
backup_round(1);
archive_all();
my %b = map { $_->{id} => $_ } @{ list_backups([ '-c', $conf ]) };
my $off = epoch($b{ $ids[3] }{stop_time}) + 1 + 86400 - time;
check_window([ '--test-clock-offset', $off, 'expire', '--json', '--retention-days', 1 ], [ @ids[ 3, 4 ] ]);

done_testing();
