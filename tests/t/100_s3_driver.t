# 100_s3_driver.t — the S3 storage driver against live servers on loopback, through the C test
# binary test_s3_driver (tests/unit/test_s3_driver.c; it skips in tests/unit.t, where no server
# runs): put/get/stat with metadata, ranged reads, listing across pages, remove, multipart,
# exclusive create; path and host style; a wrong secret; TLS with a self-signed CA.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

my $unit = $ENV{WALSHIP_UNIT_DIR};
plan skip_all => 'WALSHIP_UNIT_DIR is not set (make check sets it)' unless $unit;
my $drv = "$unit/test_s3_driver";
plan skip_all => "$drv is not built" unless -x $drv;
WalshipS3::require_s3rver();

my $base = tmp_base();
my $seq  = 0;

# Runs the driver test binary against $srv with extra environment; one subtest.
sub drive
{
	my ($name, $srv, %env) = @_;
	$seq++;
	my %e = (
		WALSHIP_TEST_S3_URL      => "s3://wal/run$seq",
		WALSHIP_TEST_S3_ENDPOINT => $srv->{endpoint},
		WALSHIP_TEST_S3_STYLE    => 'path',
		WALSHIP_TEST_S3_EXCL     => $srv->{excl} ? 1 : undef,
		AWS_ACCESS_KEY_ID        => $srv->{key},
		AWS_SECRET_ACCESS_KEY    => $srv->{secret},
		%env);
	my ($rc, $out, $err) = run(cmd => [$drv], env => \%e, as_pg => 0, timeout => 600);
	my $failed = () = $out =~ /^not ok/mg;
	my $passed = () = $out =~ /^ok/mg;
	ok($rc == 0 && !$failed && $passed > 0, "$name: $passed driver checks passed")
	  or diag("exit $rc\n$out\n$err");
	return $out . $err;
}

my $s3rver = WalshipS3->s3rver(buckets => ['wal']);
drive('s3rver, path style', $s3rver);

# A wrong secret: 403, a clear message, and never the secret in it.
my $secret = 'Wr0ngSecretThatMustNotLeak';
my $out    = drive(
	's3rver, wrong secret refused', $s3rver,
	AWS_SECRET_ACCESS_KEY        => $secret,
	WALSHIP_TEST_S3_EXPECT_ERROR => 'auth');
like($out, qr/S3 refused the credentials \(HTTP 403/, 'the 403 error says credentials were refused');
unlike($out, qr/\Q$secret\E/, 'the secret appears nowhere in the output');

SKIP:
{
	my $moto = WalshipS3->moto(buckets => ['wal']);
	skip 'moto_server is not installed', 2 unless $moto;
	drive('moto, path style, If-None-Match enforced', $moto);
	# Host style: bucket.s3.localhost resolves to loopback inside libcurl.
	(my $hostep = $moto->{endpoint}) =~ s/127\.0\.0\.1/s3.localhost/;
	drive('moto, host style (wal.s3.localhost)', $moto,
		WALSHIP_TEST_S3_ENDPOINT => $hostep,
		WALSHIP_TEST_S3_STYLE    => 'host',
		WALSHIP_TEST_S3_QUICK    => 1);
}

# TLS: a throwaway CA signs a certificate for 127.0.0.1; s3rver serves it.
SKIP:
{
	my $tls = "$base/tls";
	mkdir $tls;
	my $ssl = sub {
		my ($rc, $o, $e) = run(cmd => [ 'openssl', @_ ], as_pg => 0, cwd => $tls);
		die "openssl @_: $e" if $rc;
	};
	$ssl->(qw(req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=walship-test-ca
		  -keyout ca.key -out ca.crt));
	$ssl->(qw(req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout srv.key -out srv.csr));
	open my $fh, '>', "$tls/san.ext" or die;
	print $fh "subjectAltName = IP:127.0.0.1, DNS:localhost\n";
	close $fh;
	$ssl->(qw(x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2
		  -extfile san.ext -out srv.crt));
	my $tsrv = WalshipS3->s3rver(buckets => ['wal'], tls => { key => "$tls/srv.key", cert => "$tls/srv.crt" });
	drive('TLS with s3-ca-file', $tsrv,
		WALSHIP_TEST_S3_CA    => "$tls/ca.crt",
		WALSHIP_TEST_S3_QUICK => 1);
	my $o = drive('TLS without the CA is refused', $tsrv, WALSHIP_TEST_S3_EXPECT_ERROR => 'config');
	like($o, qr/TLS verification of 127\.0\.0\.1:\d+ failed/, 'the TLS refusal says so');
}

done_testing();
