# 432_not_dumpable.t — a walship process holds secrets (S3 keys in its environment or from the
# config file), so it is not dumpable (PR_SET_DUMPABLE 0, issue 11): no core file, and other
# processes of the same user cannot ptrace it or read its /proc/PID/environ or mem. The kernel
# shows this as /proc/PID/* owned by root while the process runs as postgres; a dumpable process
# of the same user (the control) keeps its /proc files and its environment readable.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use POSIX ();
use Time::HiRes qw(sleep time);

plan skip_all => 'node is not installed' unless system('node -e 0 >/dev/null 2>&1') == 0;

my $bin  = walship_bin();
my $base = tmp_base();
my $pg_uid = (getpwnam(pg_user()))[2] // $>;

# An endpoint that answers only after 15 s: fetch waits on it, long enough to look at it.
my ($srv, $port) = WalshipS3::_spawn(
	name    => 'badmessage (slow)',
	cmd     => [ 'node', "$FindBin::RealBin/../s3/badmessage.js", '--status', '503', '--hold-ms', '15000' ],
	log     => "$base/slow.log",
	timeout => 30);
END { kill 'KILL', -$srv if $srv }

my $conf = write_config("$base/walship.conf",
	repo             => 's3://wal/slow',
	's3-endpoint'    => "http://127.0.0.1:$port",
	's3-uri-style'   => 'path',
	'io-timeout'     => 30,
	'fetch-timeout'  => 30,
	'fetch-prefetch' => 0);
my $marker = 'WALSHIP_DUMPABLE_TEST_MARKER';

# start($cmd, $tag): execs it as postgres with AWS credentials in its environment; returns its
# pid once the exec is done (not run(): its output files are per process, and this must not wait).
sub start
{
	my ($cmd, $tag) = @_;
	my ($uid, $gid) = (getpwnam(pg_user()))[2, 3];
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', "$base/$tag.out";
		open STDERR, '>', "$base/$tag.err";
		POSIX::setpgid(0, 0);
		if ($> == 0)
		{
			$) = "$gid $gid";
			POSIX::setgid($gid) or POSIX::_exit(127);
			POSIX::setuid($uid) or POSIX::_exit(127);
		}
		@ENV{qw(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)} = ('AKIDEXAMPLE', $marker);
		exec @$cmd or POSIX::_exit(127);
	}
	my $deadline = time + 20;
	while (time < $deadline)
	{
		if (open my $fh, '<', "/proc/$pid/cmdline")
		{
			my $argv0 = (split /\0/, <$fh> // '')[0] // '';
			return $pid if $argv0 eq $cmd->[0];
		}
		sleep 0.05;
	}
	die "$tag did not start";
}

sub owner { my @st = stat $_[0]; return @st ? $st[4] : -1 }

sub status_uid
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return -1;
	while (<$fh>) { return $1 if /^Uid:\s+(\d+)/ }
	return -1;
}

my $pid = start([ $bin, '-c', $conf, 'fetch', '000000010000000000000001', "$base/dest" ], 'fetch');
sleep 1;    # in its wait on the endpoint
ok(pid_alive($pid), "walship fetch (pid $pid) is running, waiting on the slow endpoint");
is(status_uid($pid), $pg_uid, '... as ' . pg_user());
SKIP: {
	skip 'runs as root: cannot tell root-owned from own', 3 if $pg_uid == 0;
	is(owner("/proc/$pid/environ"), 0, 'its /proc/PID/environ is owned by root: not dumpable');
	is(owner("/proc/$pid/mem"), 0, 'its /proc/PID/mem is owned by root');
	my ($rc, $out, $err) = run(cmd => [ 'cat', "/proc/$pid/environ" ]);
	ok($rc != 0 && $out !~ /$marker/, 'another process of the same user cannot read its environment')
	  or diag("rc $rc: $err");
}

# the control: a dumpable process of the same user, same environment
my $cpid = start([ '/bin/sleep', '30' ], 'control');
is(status_uid($cpid), $pg_uid, "control: sleep (pid $cpid) as " . pg_user());
SKIP: {
	skip 'runs as root', 2 if $pg_uid == 0;
	is(owner("/proc/$cpid/environ"), $pg_uid, 'control: its /proc/PID/environ is owned by the user');
	my ($rc, $out) = run(cmd => [ 'cat', "/proc/$cpid/environ" ]);
	like($out, qr/$marker/, 'control: the same user can read its environment (the test can fail)');
}
kill 'KILL', $cpid, $pid;
waitpid($_, 0) for $pid, $cpid;
ok(!-e "$base/dest", 'the killed fetch wrote nothing');

done_testing();
