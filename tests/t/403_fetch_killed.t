# 403_fetch_killed.t — a killed fetch leaves nothing in pg_wal. PostgreSQL's fast and immediate
# shutdowns signal restore_command (SIGTERM, SIGQUIT); a fetch caught in a slow download (a
# hostile endpoint trickling the body) removes its DEST.walship.<pid>.tmp and dies of the
# signal. A temporary file of a fetch that died harder (SIGKILL) is removed by the next fetch
# into the same directory once its pid is dead; one of a live pid, and names that only look
# alike, are kept.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use POSIX ();
use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $dest = make_pg_dir("$base/pg_wal");
my $seg  = '000000010000000000000003';
my $identity = "format = 1\nsystem-identifier = 7000000000000000001\npg-version = 15\n"
  . "wal-segment-size = 1048576\n";

sub entries
{
	opendir my $dh, $dest or die;
	my @e = sort grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	return @e;
}

# starts fetch in the background, as postgres; returns its pid
sub start_fetch
{
	my ($conf, $name) = @_;
	my ($uid, $gid) = (getpwnam(pg_user()))[ 2, 3 ];
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		open STDIN,  '<', '/dev/null';
		open STDOUT, '>', '/dev/null';
		open STDERR, '>>', "$base/fetch.err";
		POSIX::setpgid(0, 0);
		if (is_root())
		{
			$) = "$gid $gid";
			POSIX::setgid($gid);
			POSIX::setuid($uid);
		}
		chdir $base;
		exec $bin, '-c', $conf, 'fetch', $name, "$dest/RECOVERYXLOG";
		POSIX::_exit(127);
	}
	return $pid;
}

SKIP:
{
	skip('node is not installed', 12) unless system('node -e 0 >/dev/null 2>&1') == 0;
	my $h = WalshipS3->hostile(identity => $identity);
	my $conf = write_config("$base/trickle.conf", repo => 's3://b/trickle', $h->config,
		'fetch-timeout' => '60');
	for my $sig (qw(TERM QUIT INT))
	{
		my $pid = start_fetch($conf, $seg);
		my $tmp = "$dest/RECOVERYXLOG.walship.$pid.tmp";
		my $deadline = time + 20;
		sleep 0.05 until -e $tmp || time > $deadline;
		ok(-e $tmp, "SIG$sig: the fetch is downloading into $tmp");
		sleep 1; # bytes are arriving, a byte every 0.5 s
		my $t0 = time;
		kill $sig, $pid;
		waitpid($pid, 0);
		my $status = $?;
		my $took = time - $t0;
		is($status & 127, POSIX->can("SIG$sig")->(), "SIG$sig: fetch dies of the signal (PostgreSQL sees it)");
		cmp_ok($took, '<', 5, "SIG$sig: at once (${took}s)");
		is(join(' ', entries()), '', "SIG$sig: nothing left in pg_wal");
	}
}

# stale temporary files: a dead pid's goes, a live pid's stays, look-alikes stay
my $dead = fork // die;
POSIX::_exit(0) if $dead == 0;
waitpid($dead, 0);
my $repo = make_pg_dir("$base/repo");
spurt_file("$repo/walship.repo", $identity);
chown_pg("$repo/walship.repo");
my @keep = ("RECOVERYXLOG.walship.$$.tmp",           # the test itself: alive
	"RECOVERYXLOG.walship.${dead}x.tmp", "RECOVERYXLOG.walship.$dead.tmp.old",
	"walship.$dead.tmp", "RECOVERYXLOG.walship.0$dead.tmp", "000000010000000000000002");
my @gone = ("RECOVERYXLOG.walship.$dead.tmp", "RECOVERYHISTORY.walship.$dead.tmp");
spurt_file("$dest/$_", "x") for @keep, @gone;
chown_pg(map { "$dest/$_" } @keep, @gone);
my $pconf = write_config("$base/posix.conf", repo => $repo, 'fetch-timeout' => '2');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $pconf, 'fetch', '000000010000000000000077', "$dest/RECOVERYXLOG" ]);
is($rc, 1, 'the next fetch runs (absent segment: 1)') or diag($err);
ok(!-e "$dest/$_", "stale $_ (dead pid $dead) removed") for @gone;
like($err, qr/removed \Q$dest\E\/RECOVERYXLOG\.walship\.$dead\.tmp, left by a fetch \(pid $dead\) that is gone/,
	'... and logged') or diag($err);
ok(-e "$dest/$_", "$_ kept") for @keep;

done_testing();
