package WalshipS3;

# WalshipS3 — S3 servers on loopback for walship's integration tests.
#
#     use WalshipTest;
#     use WalshipS3;
#     my $s3 = WalshipS3->s3rver(buckets => ['wal']);      # dies if it cannot start
#     my $moto = WalshipS3->moto(buckets => ['wal'])        # undef (with a loud diag) when
#       or ...;                                             # moto_server is not installed
#     my $px = WalshipS3->proxy(upstream => $moto, rate => 0.3, seed => 7);
#     $s3->{endpoint}   # "http://127.0.0.1:PORT"
#     $s3->config(repo => 's3://wal/x')   # key => value pairs for write_config
#     $s3->stop;        # also done at exit
#
# s3rver (@20minutes/s3rver from tests/s3/node_modules, installed by scripts/deps.sh) checks
# SigV4 signatures (credentials S3RVER / S3RVER), ignores If-None-Match. Its host-style mode
# (endpoint s3.localhost:PORT, bucket.s3.localhost) mis-signs the path (it signs /bucket/key),
# so host style is tested on moto. moto_server enforces If-None-Match and checks no signature.
# Both run as the invoking user; walship reaches them over loopback whatever user it runs as.
use strict;
use warnings;

use Carp;
use File::Basename qw(dirname);
use File::Path qw(make_path);
use HTTP::Tiny;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep time);
use Test::More ();

my $S3DIR = dirname(__FILE__) . '/../s3';
my @RUNNING;

sub _node_ok
{
	return -f "$S3DIR/node_modules/\@20minutes/s3rver/package.json"
	  && system('node -e 0 >/dev/null 2>&1') == 0;
}

sub have_s3rver { return _node_ok() }

# require_s3rver(): the test's preamble when it needs s3rver: skips the whole test, with the
# reason, when tests/s3/node_modules lacks it.
sub require_s3rver
{
	Test::More::plan(skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh')
	  unless have_s3rver();
	return;
}

sub have_moto
{
	for my $d (split /:/, $ENV{PATH} // '')
	{
		return 1 if -x "$d/moto_server";
	}
	return 0;
}

sub _free_port
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)
	  or croak "no free port: $!";
	my $p = $s->sockport;
	close $s;
	return $p;
}

# Starts @cmd with stdout/stderr to $log; waits for "listening <port>" on its stdout when
# $wait_line, else polls the TCP port. Returns ($pid, $port).
sub _spawn
{
	my (%a) = @_;
	my $pid = fork // croak "fork: $!";
	if ($pid == 0)
	{
		POSIX::setsid();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>', $a{log} or POSIX::_exit(127);
		open STDERR, '>&', \*STDOUT;
		$ENV{$_} = $a{env}{$_} for keys %{ $a{env} || {} };
		exec @{ $a{cmd} } or POSIX::_exit(127);
	}
	my $deadline = time + ($a{timeout} || 60);
	my $port = $a{port};
	while (time < $deadline)
	{
		if (waitpid($pid, POSIX::WNOHANG()) == $pid)
		{
			my $out = -f $a{log} ? `cat $a{log}` : '';
			croak "$a{name} exited at start:\n$out";
		}
		if (!$port)
		{
			my $text = '';
			if (open my $fh, '<', $a{log})
			{
				$text = join('', <$fh>);
			}
			$port = $1 if $text =~ /^listening (\d+)/m;
		}
		if ($port && IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port))
		{
			return ($pid, $port);
		}
		sleep 0.1;
	}
	kill 'KILL', -$pid;
	croak "$a{name} did not start within $a{timeout} s (log: $a{log})";
}

sub _new
{
	my ($class, %f) = @_;
	my $self = bless {%f}, $class;
	push @RUNNING, $self;
	return $self;
}

# s3rver(buckets => [...], dir => path, tls => {key => file, cert => file})
sub s3rver
{
	my ($class, %a) = @_;
	croak 'tests/s3/node_modules has no @20minutes/s3rver: run scripts/deps.sh'
	  unless have_s3rver();
	my $base = WalshipTest::tmp_base();
	my $n    = scalar @RUNNING;
	my $dir  = $a{dir} // "$base/s3rver$n";
	make_path($dir);
	my @cmd = ('node', "$S3DIR/s3rver.js", '--dir', $dir, '--port', 0);
	push @cmd, '--bucket', $_ for @{ $a{buckets} || [] };
	push @cmd, '--key', $a{tls}{key}, '--cert', $a{tls}{cert} if $a{tls};
	my ($pid, $port) = _spawn(
		name => 's3rver',
		cmd  => \@cmd,
		log  => "$base/s3rver$n.log",
		env  => { NODE_OPTIONS => '--openssl-legacy-provider' });
	my $scheme = $a{tls} ? 'https' : 'http';
	return $class->_new(
		kind     => 's3rver',
		pid      => $pid,
		port     => $port,
		endpoint => "$scheme://127.0.0.1:$port",
		key      => 'S3RVER',
		secret   => 'S3RVER',
		excl     => 0,
		log      => "$base/s3rver$n.log");
}

# moto(buckets => [...]): undef (after a loud diag) when moto_server is absent.
sub moto
{
	my ($class, %a) = @_;
	if (!have_moto())
	{
		Test::More::diag('#' x 70);
		Test::More::diag('# moto_server is not installed: its S3 tests are SKIPPED');
		Test::More::diag('#' x 70);
		return undef;
	}
	my $base = WalshipTest::tmp_base();
	my $n    = scalar @RUNNING;
	my $port = _free_port();
	my ($pid) = _spawn(
		name    => 'moto_server',
		cmd     => [ 'moto_server', '-H', '127.0.0.1', '-p', $port ],
		log     => "$base/moto$n.log",
		port    => $port,
		timeout => 90);
	my $self = $class->_new(
		kind     => 'moto',
		pid      => $pid,
		port     => $port,
		endpoint => "http://127.0.0.1:$port",
		key      => 'testing',
		secret   => 'testing-secret',
		excl     => 1,
		log      => "$base/moto$n.log");
	my $http = HTTP::Tiny->new(timeout => 30);
	for my $b (@{ $a{buckets} || [] })
	{
		my $r;
		for (1 .. 50)
		{
			$r = $http->request('PUT', "http://127.0.0.1:$port/$b");
			last if $r->{success};
			sleep 0.2;
		}
		croak "moto: creating bucket $b: $r->{status} $r->{content}" unless $r->{success};
	}
	return $self;
}

# proxy(upstream => $server, rate => 0.3, faults => '503,500,reset,stall,err200', seed => 1,
#       stall_ms => 600000, match => REGEX: faults only for the URLs it matches,
#       port => N: listen there, e.g. to replace a proxy by another on the same endpoint)
sub proxy
{
	my ($class, %a) = @_;
	my $up   = $a{upstream} or croak 'proxy: upstream => $server';
	my $base = WalshipTest::tmp_base();
	my $n    = scalar @RUNNING;
	my $flog = "$base/proxy$n.requests";
	my @cmd  = (
		'node', "$S3DIR/faultproxy.js", '--upstream', $up->{port}, '--port', $a{port} // 0,
		'--rate', $a{rate} // 0.3, '--faults', $a{faults} // '503,500,reset,stall,err200',
		'--seed', $a{seed} // 1, '--stall-ms', $a{stall_ms} // 600000, '--log', $flog,
		(defined $a{match} ? ('--match', $a{match}) : ()));
	my ($pid, $port) = _spawn(name => 'faultproxy', cmd => \@cmd, log => "$base/proxy$n.log");
	return $class->_new(
		%$up,
		kind     => "proxy($up->{kind})",
		pid      => $pid,
		port     => $port,
		endpoint => "http://127.0.0.1:$port",
		requests => $flog);
}

# hostile(identity => $text): tests/s3/hostile.js, a malicious endpoint (see its header); the
# prefix of the repository URL picks the behaviour (s3://b/huge, s3://b/trickle, ...).
sub hostile
{
	my ($class, %a) = @_;
	croak 'node is not installed' unless system('node -e 0 >/dev/null 2>&1') == 0;
	my $base = WalshipTest::tmp_base();
	my $n    = scalar @RUNNING;
	my $id   = "$base/hostile$n.identity";
	WalshipTest::spurt_file($id, $a{identity} // '');
	my @cmd = ('node', "$S3DIR/hostile.js", '--port', 0, '--identity', $id,
		'--log', "$base/hostile$n.requests");
	my ($pid, $port) = _spawn(name => 'hostile', cmd => \@cmd, log => "$base/hostile$n.log");
	return $class->_new(
		kind     => 'hostile',
		pid      => $pid,
		port     => $port,
		endpoint => "http://127.0.0.1:$port",
		key      => 'hostile',
		secret   => 'hostile',
		excl     => 0,
		requests => "$base/hostile$n.requests",
		log      => "$base/hostile$n.log");
}

# The proxy's request log as { pass => n, 503 => n, ... }.
sub fault_counts
{
	my ($self) = @_;
	my %c;
	open my $fh, '<', $self->{requests} or return \%c;
	while (<$fh>)
	{
		$c{$1}++ if /^(\S+)/;
	}
	return \%c;
}

# Config lines for write_config: repo, endpoint, path style, credentials from the file.
sub config
{
	my ($self, %extra) = @_;
	return (
		's3-endpoint'   => $self->{endpoint},
		's3-uri-style'  => 'path',
		's3-key'        => $self->{key},
		's3-key-secret' => $self->{secret},
		%extra);
}

sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'TERM', -$self->{pid};
	my $deadline = time + 5;
	while (time < $deadline)
	{
		last if waitpid($self->{pid}, POSIX::WNOHANG()) == $self->{pid};
		sleep 0.05;
	}
	kill 'KILL', -$self->{pid};
	waitpid($self->{pid}, 0);
	$self->{pid} = undef;
	return;
}

END
{
	my $status = $?;
	$_->stop for reverse @RUNNING;
	$? = $status;
}

1;
