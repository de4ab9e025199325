# 616_expire_pitr_random.t — after expire, point-in-time recovery to random points inside the
# window restores exactly the rows of that moment. A workload records, at many moments, the
# time, the WAL insert location and a checksum of the table (count + md5 of the ordered rows)
# while four base backups are taken; expire with retention-full = 2 removes the two oldest
# backups and the WAL below the window. Then restores (restore's plan picks the backup) to
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
for my $b (1 .. 4) {
	moment() for 1 .. 5;
	push @ids, take_basebackup($node, [ '-c', $conf ], label => "b$b",
		extra => [ '--expire-auto', 'off' ]);
	sleep 1.1;    # a time target must lie a second past the backup's (whole second) stop
}
moment() for 1 .. 6;
$node->safe_psql("INSERT INTO t VALUES (-1)");    # a commit after every moment: targets are reached
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'the workload is archived');
is(scalar(grep { defined } @ids), 4, 'four backups');

my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire', '--json', '--retention-full', 2 ]);
is($rc, 0, 'expire --retention-full 2 exits 0') or diag($err);
my $r = eval { decode_json($out)->{repositories}[0] } // {};
is($r->{backups_removed}, 2, 'two backups removed');
is($r->{window}{from_backup}, $ids[2], 'the window starts at the third backup');
ok($r->{wal_removed}{count} > 0, "WAL below the window removed ($r->{wal_removed}{count})");

my %b = map { $_->{id} => $_ } @{ list_backups([ '-c', $conf ]) };
is_deeply([ sort keys %b ], [ sort @ids[ 2, 3 ] ], 'list shows the two kept backups');
my $wb = $b{ $ids[2] } or BAIL_OUT('the window backup is not listed');
my ($w_start, $w_stop) = (epoch($wb->{start_time}), epoch($wb->{stop_time}));
my ($w_start_lsn, $w_stop_lsn) = (lsn_num($wb->{start_lsn}), lsn_num($wb->{stop_lsn}));

# the moments inside the window: restorable by time and by LSN from its oldest backup on
my @in_time = grep { $_->{epoch} >= $w_stop + 1 } @moments;
my @in_lsn  = grep { lsn_num($_->{lsn}) >= $w_stop_lsn } @moments;
ok(@in_time >= 6 && @in_lsn >= 6, scalar(@in_time) . ' moments inside the window');

sub pick
{
	my ($k, @from) = @_;
	my @p;
	while (@p < $k && @from) { push @p, splice(@from, int(rand(@from)), 1) }
	return @p;
}

# one time target between the window's two backups (the plan restores the window's first backup
# and replays the WAL expire kept after it), the others anywhere in the window
my $nb = $b{ $ids[3] };
my @early = grep { $_->{epoch} < epoch($nb->{stop_time}) } @in_time;
ok(@early >= 1, scalar(@early) . ' moments between the two kept backups');
my @first = pick(1, @early);
my @times = ($first[0], pick(2, grep { $_ != $first[0] } @in_time));
my $i = 0;
for my $case ((map { [ 'time', $_ ] } @times), (map { [ 'lsn', $_ ] } pick(2, @in_lsn))) {
	my ($kind, $m) = @$case;
	my $value = $kind eq 'time' ? $m->{time} : $m->{lsn};
	$i++;
	my $rn = restored_node("pitr$i");
	($rc, $out, $err) = walship_restore([ '-c', $conf ], '--pgdata', $rn->pgdata,
		"--target-$kind", $value, '--target-action', 'promote');
	is($rc, 0, "restore to $kind $value exits 0") or do { diag($err); next };
	configure_restored($rn);
	$rn->start;
	ok(wait_recovery_done($rn), "recovery to $kind $value ended");
	is($rn->safe_psql($CHECK), $m->{sum}, "$kind $value: exactly the rows of that moment");
	$rn->stop;
}

# just before the window's start: refused by restore's plan, nothing restored
my ($before_t) = grep { $_->{epoch} < $w_start } reverse @moments;
my ($before_l) = grep { lsn_num($_->{lsn}) < $w_start_lsn } reverse @moments;
for my $case ([ 'time', $before_t->{time} ], [ 'lsn', $before_l->{lsn} ]) {
	my ($kind, $value) = @$case;
	my $rx = restored_node("before_$kind");
	my ($orc, $oout, $oerr) = walship_restore([ '-c', $conf ], '--pgdata', $rx->pgdata,
		"--target-$kind", $value, '--target-action', 'promote');
	is($orc, 1, "restore to $kind $value, before the window, exits 1");
	like($oerr,
		qr/no backup ends before the target \Q$value\E; the oldest restorable point is .*the end of backup \Q$ids[2]\E/,
		'... naming the oldest restorable point, the end of the window\'s first backup');
	ok(!-e $rx->pgdata . '/PG_VERSION', '... and restores nothing');
}

done_testing();
