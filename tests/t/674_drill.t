# 674_drill.t — walship drill restores the newest backup into a scratch directory, starts
# PostgreSQL on a private socket, waits for the end of the archive, runs the query: it passes on
# a healthy repository and reports the RTO; it fails with the step and the reason on a wrong
# answer and when a segment it needs is missing (recovery ended early); it leaves no directory
# and no process behind, also when killed with SIGTERM; what one killed with SIGKILL left is
# removed by the next drill; --keep keeps the directory only. Bad usage exits 2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use JSON::PP qw(decode_json);

my $bin   = walship_bin();
my $base  = tmp_base();
my $repo  = make_pg_dir("$base/repo");
my $drills = make_pg_dir("$base/drills");
my $bindir = WalshipTest::Cluster->_new('probe')->bindir;
my $conf  = write_config("$base/walship.conf", repo => $repo, async => 'off', 'drill-path' => $drills,
	'drill-bindir' => $bindir, 'drill-timeout' => '120s', 'fetch-timeout' => '5s');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
my $id = take_basebackup($node, ['-c', $conf], label => 'd');
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 2000) g');
$node->switch_wal;
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 2000) g');
$node->switch_wal;
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 1) g');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;

sub drill { return run(cmd => [ $bin, '-c', $conf, 'drill', @_ ]) }

sub nothing_left
{
	my ($what) = @_;
	my @d = glob("$drills/*");
	is_deeply(\@d, [], "$what: no directory left in drill-path") or diag("@d");
	my @p;
	for my $cwd (glob('/proc/[0-9]*/cwd'))
	{
		my $t = readlink($cwd) // next;
		push @p, $cwd if index($t, $drills) == 0;
	}
	is_deeply(\@p, [], "$what: no process left there") or diag(join "\n", map { my $c = $_; $c =~ s/cwd$/cmdline/; my $t = slurp_file($c) // ""; $t =~ s/\0/ /g; "$_: $t" } @p);
}

# ---- passes
my ($rc, $out, $err) = drill('--query', 'SELECT count(*) FROM t', '--expect', '5001', '--json');
is($rc, 0, 'a healthy repository: drill passes') or diag("$out\n$err");
my $j = eval { decode_json($out) } // {};
ok($j->{ok}, '... "ok": true');
is($j->{backup}, $id, '... the newest backup');
ok($j->{target_reached}, '... the end of the archive reached');
is($j->{query_result}, '5001', '... the query saw every row archived after the backup');
ok(defined $j->{restore_seconds} && defined $j->{replay_seconds} && $j->{total_seconds} >= $j->{restore_seconds},
	'... restore, replay and total seconds reported');
ok($j->{wal_replayed_bytes} > 0, '... and the WAL replayed');
diag(sprintf('drill RTO: restore %.2f s, replay %.2f s, total %.2f s, WAL %d bytes',
	map { $j->{$_} // 0 } qw(restore_seconds replay_seconds total_seconds wal_replayed_bytes)));
nothing_left('after a pass');

# ---- a wrong answer
($rc, $out, $err) = drill('--query', 'SELECT count(*) FROM t', '--expect', '1');
is($rc, 1, 'a wrong answer: drill fails');
like($out, qr/^drill FAILED: .*\nfailed at query: returned "5001", expected "1"/m, '... naming the step and both values');
nothing_left('after a failed query');

# ---- a segment it needs is missing
my @segs = sort grep { /^[0-9A-F]{24}$/ } map { s{.*/}{}r } glob("$repo/wal/*/*");
my $list = list_backups(['-c', $conf]);
my ($gone) = grep { $_ gt $list->[-1]{stop_wal} && $_ lt $last } @segs;
ok($gone, "a segment between the backup and the end: $gone");
my $path = "$repo/wal/" . substr($gone, 0, 16) . "/$gone";
rename $path, "$path.away" or die "rename: $!";
($rc, $out, $err) = drill('--query', 'SELECT count(*) FROM t', '--json');
is($rc, 1, 'a missing segment: drill fails');
$j = eval { decode_json($out) } // {};
is($j->{failed_step}, 'recovery', '... at recovery');
like($j->{error} // '', qr/recovery ended at \S+, before the end of the archive \(\Q$last\E, \S+\): segment \Q$gone\E is missing from the repository/,
	'... naming the end of the archive and the segment') or diag($j->{error});
ok(!$j->{target_reached}, '... "target_reached": false');
nothing_left('after a missing segment');
rename "$path.away", $path or die "rename back: $!";

# ---- killed
{
	my $h = run_bg(cmd => [ $bin, '-c', $conf, 'drill' ]);
	my $deadline = time + 60;
	sleep 0.2 until glob("$drills/*/server.log") || time > $deadline;
	sleep 0.5;
	kill 'TERM', $h->{pid};
	my ($krc) = finish_bg($h, 90);
	isnt($krc, 0, 'a drill killed with SIGTERM does not pass');
	nothing_left('after SIGTERM');
}

# ---- killed with SIGKILL: nothing can clean up then; the next drill does
{
	my $h = run_bg(cmd => [ $bin, '-c', $conf, 'drill', '--query', 'SELECT pg_sleep(30)' ]);
	my $deadline = time + 60;
	sleep 0.2 until glob("$drills/*/pgdata/postmaster.pid") || time > $deadline;
	sleep 0.5;
	kill 'KILL', $h->{pid};
	finish_bg($h, 30);
	my @left = glob("$drills/*");
	is(scalar @left, 1, 'a drill killed with SIGKILL leaves its directory');
	($rc, $out, $err) = drill();
	is($rc, 0, '... the next drill passes') or diag($err);
	like($err, qr/removing \Q$left[0]\E, left by a drill \(pid \d+\) that was killed/, '... and says it removes what the killed one left');
	nothing_left('after SIGKILL and the next drill');
}

# ---- --keep
($rc, $out, $err) = drill('--keep', '--json');
is($rc, 0, 'drill --keep passes');
$j = eval { decode_json($out) } // {};
ok($j->{kept} && -d "$j->{kept}/pgdata", '... the scratch directory is kept');
ok(!-e "$j->{kept}/pgdata/postmaster.pid", '... with the server stopped');
system('rm', '-rf', $j->{kept}) if $j->{kept};

# ---- usage
($rc, $out, $err) = drill('--expect', 'x');
is($rc, 2, '--expect without --query exits 2');
($rc, $out, $err) = drill('--target-action', 'shutdown', '--target', 'immediate');
is($rc, 2, '--target-action shutdown exits 2');
like($err, qr/shutdown/, '... saying why');
nothing_left('after usage errors');

done_testing();
