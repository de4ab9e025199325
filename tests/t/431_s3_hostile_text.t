# 431_s3_hostile_text.t — text from a hostile S3 endpoint never reaches a log line raw
# (issue 11, "Secrets stay secret"): the <Code>, <Message> and reason phrase of an error reply
# carry terminal escapes, CR/LF forging a second "walship ..." line and 10 kB of text. walship's
# stderr (what PostgreSQL copies into its log) must hold none of it raw and stay bounded.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

plan skip_all => 'node is not installed' unless system('node -e 0 >/dev/null 2>&1') == 0;

my $bin  = walship_bin();
my $base = tmp_base();
my @servers;
END { kill 'KILL', -$_ for @servers }

sub hostile
{
	my ($status) = @_;
	my ($pid, $port) = WalshipS3::_spawn(
		name    => "badmessage $status",
		cmd     => [ 'node', "$FindBin::RealBin/../s3/badmessage.js", '--status', $status ],
		log     => "$base/badmessage-$status.log",
		timeout => 30);
	push @servers, $pid;
	return $port;
}

sub check_stderr
{
	my ($what, $err) = @_;
	ok(length $err > 0, "$what: an error was logged");
	unlike($err, qr/\x1b/, "$what: no ESC reaches the log");
	unlike($err, qr/[\x00-\x08\x0b-\x1f\x7f]/, "$what: no control character but the line ends");
	unlike($err, qr/^walship (push|fetch|list)?: ?(LOG|archived)/m, "$what: no forged line");
	unlike($err, qr/^(?!walship )/m, "$what: every line is a walship line");
	unlike($err, qr/END-OF-HOSTILE-MESSAGE/, "$what: the 10 kB message is cut");
	my $longest = 0;
	for (split /\n/, $err) { $longest = length if length > $longest }
	ok($longest < 1500, "$what: lines are bounded (longest $longest bytes)");
	note($err);
}

for my $status (403, 400, 503)
{
	my $port = hostile($status);
	my $conf = write_config("$base/bad$status.conf",
		repo            => 's3://wal/hostile',
		's3-endpoint'   => "http://127.0.0.1:$port",
		's3-uri-style'  => 'path',
		'io-timeout'    => 2,
		'fetch-timeout' => 2,
		'fetch-prefetch' => 0);
	my $env = { AWS_ACCESS_KEY_ID => 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY => 'secretsecret' };
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', '000000010000000000000001',
			"$base/dest$status" ], env => $env, timeout => 60);
	isnt($rc, 0, "HTTP $status: fetch fails");
	ok(!-e "$base/dest$status", "HTTP $status: nothing written");
	check_stderr("HTTP $status fetch", $err);
	like($err, qr/\\x1b/, "HTTP $status: the escapes are shown as \\x1b")
	  if $status != 403 || $err =~ /AccessDenied/;
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ], env => $env, timeout => 60);
	isnt($rc, 0, "HTTP $status: list fails");
	check_stderr("HTTP $status list", $err);
}

done_testing();
