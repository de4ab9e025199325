# 617_expire_concurrent.t — archiving, a base backup and a restore keep working while a big
# expire runs (posix; 618 runs the same on S3). Six old backups (clock shifted 60..10 days back) with ~480 WAL segments
# between them, then two recent ones; retention-full = 2 and expire-grace = 0 (so only the
# backup lock protects a running backup). The interleaving is forced, not left to timing:
#   1. a base backup is started and stopped (SIGSTOP) once it holds its lock, before its
#      manifest: a backup in progress;
#   2. expire is started and single-stepped (SIGCONT / SIGSTOP a few ms at a time) until it has
#      removed part of what it removes, and left paused there;
#   3. while expire is paused mid-removal, the cluster archives more WAL and a restore point;
#   4. expire, a restore of the oldest kept backup and the base backup then run together, a few
#      ms at a time (all three in each step), until expire ends, while a workload switching WAL
#      keeps the archiver pushing.
# All succeed: expire exits 0 and removed the six old backups only; the new backup is complete,
# listed and restores exactly to a later restore point; the restore of the kept backup recovers
# exactly the rows of the restore point made while expire was paused.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep);

my $bin  = walship_bin();
my $base = tmp_base();
# 618 runs this same scenario on S3 (s3rver): it sets $main::S3 before `do`ing this file
our $S3;
my ($root, @repo);
if ($S3) {
	require WalshipS3;
	plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
	  unless WalshipS3::have_s3rver();
	my $s3 = WalshipS3->s3rver(buckets => ['wal'], dir => "$base/s3data");
	@repo = (repo => 's3://wal/r', 's3-uri-style' => 'path', $s3->config);
	$root = "$base/s3data/wal/r";    # s3rver's files: KEY._S3rver_object
} else {
	$root = make_pg_dir("$base/repo");
	@repo = (repo => $root);
}
my $conf = write_config("$base/walship.conf", @repo, async => 'off',
	'retention-full' => 2, 'expire-grace' => '0', 'expire-auto' => 'off');

# obj($key): the file of a repository object
sub obj { return "$root/$_[0]" . ($S3 ? '._S3rver_object' : '') }
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int)');
my $CHECK = q{SELECT count(*) || ':' || md5(string_agg(n::text, ',' ORDER BY n)) FROM t};

my $n = 0;
my @old;
for my $d (60, 50, 40, 30, 20, 10) {
	$node->safe_psql(join '', map { "INSERT INTO t VALUES (" . $n++ . "); SELECT pg_switch_wal();\n" } 1 .. 80);
	push @old, take_basebackup($node, [ '-c', $conf, '--test-clock-offset', -$d * 86400 ], label => "ago $d");
}
my @kept;
for my $k (1, 2) {
	$node->safe_psql("INSERT INTO t SELECT generate_series($n, $n + 999)");
	$n += 1000;
	push @kept, take_basebackup($node, [ '-c', $conf ], label => "kept $k");
}
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'the history is archived');
my $wal_before = () = grep { !$S3 || /\._S3rver_object$/ } glob("$root/wal/*/*");

sub backup_dirs { return map { m{/([^/]+)$} } grep { -d } glob("$root/backup/*") }

# pause / resume a command of run_bg: its process and its process group (which exists only
# once the child called setpgid, hence both)
sub pause  { kill 'STOP', $_, -$_ for @_ }
sub resume { kill 'CONT', $_, -$_ for @_ }

# a script that dies leaves nothing stopped behind
my @started;
END { for my $p (@started) { kill 'KILL', $p, -$p if pid_alive($p) } }

# step_until($pid, $cond): lets the stopped process group $pid run a few ms at a time until
# $cond->() holds (returns 1) or the process ended (returns 0); it is left stopped.
sub step_until
{
	my ($pid, $cond) = @_;
	for (1 .. 20000) {
		return 1 if $cond->();
		return 0 unless pid_alive($pid);
		resume($pid);
		sleep 0.003;
		pause($pid);
		sleep 0.002;
	}
	return 0;
}

# 1. a base backup in progress
my %known = map { $_ => 1 } backup_dirs();
my $pgconn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my $bb = run_bg(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn, '--checkpoint', 'fast',
		'--label', 'during expire' ]);
push @started, $bb->{pid};
pause($bb->{pid});
my $new;
my $held = step_until($bb->{pid}, sub {
	($new) = grep { !$known{$_} && -e obj("backup/$_/walship.lock") } backup_dirs();
	return $new && !-e obj("backup/$new/walship.manifest");
});
ok($held, "a base backup ($new) holds its lock, no manifest yet, and is stopped there")
  or diag('the base backup ended before it could be stopped in progress');

# 2. expire, paused mid-removal
my $ex = run_bg(cmd => [ $bin, '-c', $conf, 'expire', '--json' ]);
push @started, $ex->{pid};
pause($ex->{pid});
my $mid = step_until($ex->{pid}, sub { !-e obj("backup/$old[0]/walship.manifest") });
ok($mid, 'expire has begun removing (the oldest backup\'s manifest is gone) and is paused');
ok(pid_alive($ex->{pid}), '... and has not finished ('
	  . scalar(grep { -e obj("backup/$_/walship.manifest") } @old) . ' expired backups still have their manifest)');

# 3. while expire is paused mid-removal: the cluster archives into the half-expired repository
# and a restore point; a restore of the oldest kept backup starts (stopped at once)
my $rn = restored_node('kept');
my $rs = run_bg(cmd => [ $bin, '-c', $conf, 'restore', '--pgdata', $rn->pgdata, '--backup', $kept[0],
		'--target-name', 'during', '--target-action', 'promote' ]);
push @started, $rs->{pid};
pause($rs->{pid});
for (1 .. 20) {
	$node->safe_psql("INSERT INTO t VALUES (" . $n++ . "); SELECT pg_switch_wal()");
}
$node->safe_psql("SELECT pg_create_restore_point('during')");
my $want = $node->safe_psql($CHECK);
$seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'archiving works while expire is paused mid-removal');

# 4. expire, the restore and the base backup run together, a few ms at a time, until expire
# ends: each step runs all three at once
# while the cluster archives on (a workload switching WAL, in the background)
my $work = run_bg(
	cmd => [ pg_bin('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres' ],
	stdin => join('', map { "INSERT INTO t VALUES (" . ($n + $_) . "); SELECT pg_switch_wal(); SELECT pg_sleep(0.01);\n" } 0 .. 29));
$n += 30;
my %together = (restore => 0, basebackup => 0);
while (pid_alive($ex->{pid})) {
	my @run = grep { pid_alive($_) } map { $_->{pid} } $ex, $rs, $bb;
	$together{restore}++    if pid_alive($rs->{pid});
	$together{basebackup}++ if pid_alive($bb->{pid});
	resume(@run);
	sleep 0.003;
	pause(@run);
	sleep 0.001;
}
resume($rs->{pid}, $bb->{pid});
ok($together{restore} > 0, "the restore ran together with expire ($together{restore} steps)");
ok($together{basebackup} > 0, "the base backup ran together with expire ($together{basebackup} steps)");
my ($wrc, undef, $werr) = finish_bg($work);
is($wrc, 0, 'the workload archiving during expire ran') or diag($werr);

my ($erc, $eout, $eerr) = finish_bg($ex);
is($erc, 0, 'expire exits 0') or diag($eerr);
my $r = eval { decode_json($eout)->{repositories}[0] } // {};
my @removed = sort map { $_->{id} } grep { $_->{action} eq 'remove' } @{ $r->{backups} // [] };
is_deeply(\@removed, [ sort @old ], 'expire removed exactly the six old backups');
ok($r->{wal_removed}{count} > 300, "... and the WAL below the window ($r->{wal_removed}{count} of $wal_before objects)");
my ($brc, $bout, $berr) = finish_bg($bb);
is($brc, 0, 'the base backup started before expire exits 0') or diag($berr);
my ($rrc, $rout, $rerr) = finish_bg($rs);
is($rrc, 0, 'the restore run while expire was removing exits 0') or diag($rerr);

$node->safe_psql("SELECT pg_create_restore_point('after')");
my $want2 = $node->safe_psql($CHECK);
$seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'archiving works after expire');

my @listed = map { $_->{id} } @{ list_backups([ '-c', $conf ]) };
is_deeply([ sort @listed ], [ sort(@kept, $new) ], 'list: the two kept backups and the new one, complete');
ok(-e obj("backup/$new/walship.manifest"), 'the new backup has its manifest');

configure_restored($rn);
$rn->start;
ok(wait_recovery_done($rn), 'the restored kept backup recovers to the restore point');
is($rn->safe_psql($CHECK), $want, '... with exactly its rows');
$rn->stop;

my $r2 = restored_node('new');
my ($rc, $out, $err) = walship_restore([ '-c', $conf ], '--pgdata', $r2->pgdata, '--backup', $new,
	'--target-name', 'after', '--target-action', 'promote');
is($rc, 0, "restore of the backup taken during expire ($new)") or diag($err);
configure_restored($r2);
$r2->start;
ok(wait_recovery_done($r2), '... recovers to a later restore point');
is($r2->safe_psql($CHECK), $want2, '... with exactly its rows');
$r2->stop;

done_testing();
