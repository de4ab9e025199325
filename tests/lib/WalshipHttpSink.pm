package WalshipHttpSink;

# WalshipHttpSink — a tiny HTTP receiver on loopback for the notification tests (672): it
# accepts POSTs, stores each request (method, path, headers, body) in a file of its own, and
# answers with the status it was started with. mode => 'hang' accepts and never answers (a
# receiver that is up but stuck).
#
#     my $sink = WalshipHttpSink->start(status => 200);
#     my $url  = $sink->url('/hook/SECRET');
#     ... walship posts ...
#     my @req = $sink->requests;    # [{method, path, headers => {lc name => value}, body}]
#     $sink->stop;                  # also done at exit
#
# Pure core Perl (IO::Socket::INET): HTTP::Daemon may not be installed.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path);
use IO::Socket::INET;
use POSIX ();

my @RUNNING;
my $SEQ = 0;

sub start
{
	my ($class, %a) = @_;
	my $status = $a{status} // 200;
	my $mode   = $a{mode}   // 'answer';
	my $dir    = ($a{dir} // WalshipTest::tmp_base()) . '/httpsink' . ++$SEQ;
	make_path($dir);
	my $srv = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => 0,
		Listen    => 16,
		ReuseAddr => 1,
		Proto     => 'tcp') or croak "WalshipHttpSink: listen: $!";
	my $port = $srv->sockport;
	my $pid  = fork;
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $n = 0;
		my @held;
		while (my $c = $srv->accept)
		{
			if ($mode eq 'hang') { push @held, $c; next }
			my ($head, $body) = ('', '');
			while (defined(my $line = <$c>))
			{
				last if $line =~ /^\r?\n$/;
				$head .= $line;
			}
			my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
			read($c, $body, $len) if $len;
			$n++;
			if (open my $fh, '>', "$dir/$n.tmp")
			{
				print $fh $head, "\n", $body;
				close $fh;
				rename "$dir/$n.tmp", "$dir/$n.req";
			}
			print $c "HTTP/1.1 $status X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
			close $c;
		}
		POSIX::_exit(0);
	}
	close $srv;
	my $self = bless { pid => $pid, port => $port, dir => $dir }, $class;
	push @RUNNING, $self;
	return $self;
}

sub port { return $_[0]{port} }
sub url  { my ($self, $path) = @_; return "http://127.0.0.1:$self->{port}" . ($path // '/') }

# Every request received so far, in order.
sub requests
{
	my ($self) = @_;
	opendir my $dh, $self->{dir} or return ();
	my @f = sort { $a <=> $b } map { /^(\d+)\.req$/ ? $1 : () } readdir $dh;
	closedir $dh;
	my @out;
	for my $n (@f)
	{
		open my $fh, '<', "$self->{dir}/$n.req" or next;
		local $/;
		my $text = <$fh>;
		close $fh;
		my ($head, $body) = split /\n\n/, $text, 2;
		my ($reqline, @h) = split /\r?\n/, $head;
		my ($method, $path) = split / /, $reqline // '';
		my %h = map { /^([^:]+):\s*(.*?)\s*$/ ? (lc $1 => $2) : () } @h;
		push @out, { method => $method, path => $path, headers => \%h, body => $body // '' };
	}
	return @out;
}

# A loopback port nobody listens on (bound, then closed).
sub closed_port
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, Proto => 'tcp')
	  or croak "closed_port: $!";
	my $p = $s->sockport;
	close $s;
	return $p;
}

sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
	$self->{pid} = undef;
	return;
}

END
{
	$_->stop for @RUNNING;
}

1;
