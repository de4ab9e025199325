# 401_fetch_deadline.t — fetch-timeout is the deadline of every wait inside fetch. With
# io-timeout (60 s) far above fetch-timeout (5 s), fetch against an endpoint that accepts
# connections and never answers, and against an S3 outage (every request 503, through the fault
# proxy), ends well before io-timeout: 126 with the reason, nothing written.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use Time::HiRes qw(time);

my $bin  = walship_bin();
my $base = tmp_base();
my $dest = make_pg_dir("$base/dest");
my $seg  = '000000010000000000000003';

sub fetch
{
	my ($conf, $name) = @_;
	return timed_fetch($conf, $name, "$dest/RECOVERYXLOG", timeout => 120);
}

SKIP:
{
	skip('node is not installed', 8) unless system('node -e 0 >/dev/null 2>&1') == 0;
	my $h = WalshipS3->hostile(identity => '');
	my $conf = write_config("$base/silent.conf", repo => 's3://b/silent', $h->config,
		'fetch-timeout' => '5', 'io-timeout' => '60');
	my ($rc, $err, $took) = fetch($conf, $seg);
	is($rc, 126, 'an endpoint that never answers: 126');
	like($err, qr/could not restore \Q$seg\E before fetch-timeout/, '... says so') or diag($err);
	cmp_ok($took, '<', 20, "... within fetch-timeout (5 s), not io-timeout (60 s): took ${took}s");
	dest_empty($dest, 'never answers');
	($rc, $err, $took) = fetch($conf, '00000002.history');
	is($rc, 126, 'history file from an endpoint that never answers: 126');
	cmp_ok($took, '<', 20, "... within fetch-timeout: took ${took}s");
	dest_empty($dest, 'never answers, history');
}

SKIP:
{
	skip('s3rver is not installed', 4) unless WalshipS3::have_s3rver();
	my $s3 = WalshipS3->s3rver(buckets => ['wal']);
	my $px = WalshipS3->proxy(upstream => $s3, rate => 1, faults => '503');
	my $conf = write_config("$base/outage.conf", repo => 's3://wal/p', $px->config,
		'fetch-timeout' => '5', 'io-timeout' => '60');
	my ($rc, $err, $took) = fetch($conf, $seg);
	is($rc, 126, 'S3 outage (every request 503): 126');
	like($err, qr/503/, '... names the failure') or diag($err);
	cmp_ok($took, '<', 20, "... the storage's retries end with fetch-timeout (5 s), not io-timeout (60 s): took ${took}s");
	dest_empty($dest, 'outage');
}

done_testing();
