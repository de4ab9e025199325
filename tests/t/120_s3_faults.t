# 120_s3_faults.t — S3 through a fault-injecting proxy (tests/s3/faultproxy.js): 503 SlowDown,
# 500, connections cut mid-reply (after the server acted), stalls past the low-speed limit, and
# 200 replies carrying an <Error> (multipart completion).
#  - the driver's own checks (multipart, ranged reads resumed mid-body, exclusive create) pass
#    through 30 % faults, against s3rver (signatures verified through the proxy) and moto;
#  - a live cluster archives a WAL burst through 30 % faults: every segment PostgreSQL was told
#    is archived is already stored (checked behind the proxy while the burst runs), and all come
#    back byte-identical;
#  - fetch through a total outage exits >= 126 — never 1, which would end recovery early.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Compare qw(compare);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();
my $unit = $ENV{WALSHIP_UNIT_DIR};
my $drv  = $unit ? "$unit/test_s3_driver" : undef;

my $s3rver = WalshipS3->s3rver(buckets => ['wal']);
my $moto   = WalshipS3->moto(buckets => ['wal']);
# The live-cluster part prefers moto: it enforces If-None-Match, so a PUT whose reply was cut
# comes back as 412 on the retry and walship must recognise its own earlier upload.
my $store = $moto // $s3rver;

# ---- the driver through faults
SKIP:
{
	skip 'test_s3_driver is not built (make check builds it)', 2 unless $drv && -x $drv;
	my $seq = 0;
	for my $srv (grep { defined } $s3rver, $moto)
	{
		my $px = WalshipS3->proxy(upstream => $srv, rate => 0.3, seed => 11 + $seq,
			stall_ms => 60000);
		$seq++;
		my ($rc, $out, $err) = run(
			cmd => [$drv],
			env => {
				WALSHIP_TEST_S3_URL      => "s3://wal/faults$seq",
				WALSHIP_TEST_S3_ENDPOINT => $px->{endpoint},
				WALSHIP_TEST_S3_STYLE    => 'path',
				WALSHIP_TEST_S3_TIMEOUT  => 20,
				WALSHIP_TEST_S3_NO_PAGES => 1,
				WALSHIP_TEST_S3_EXCL     => $srv->{excl} ? 1 : undef,
				AWS_ACCESS_KEY_ID        => $srv->{key},
				AWS_SECRET_ACCESS_KEY    => $srv->{secret},
			},
			as_pg   => 0,
			timeout => 600);
		my $c = $px->fault_counts;
		my $faults = join ', ', map { "$_ $c->{$_}" } sort keys %$c;
		ok($rc == 0 && $out !~ /^not ok/m, "driver checks pass through 30 % faults ($srv->{kind}: $faults)")
		  or diag("exit $rc\n$out\n$err");
		$px->stop;
	}
}

# ---- a live cluster archiving a burst through faults
my $px = WalshipS3->proxy(upstream => $store, rate => 0.3, seed => 42, stall_ms => 60000);
my $k = $store->{kind};
my $conf = write_config("$base/faulty.conf", repo => 's3://wal/burst',
	$px->config('io-timeout' => 15));
my $direct = write_config("$base/direct.conf", repo => 's3://wal/burst', $store->config);

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';
my $dest   = make_pg_dir("$base/check", 0700);

# Every file PostgreSQL considers archived must be in the store already: fetch it behind the
# proxy. Returns the names found not stored.
my %verified;
sub unstored_done_files
{
	my @missing;
	opendir my $dh, "$pg_wal/archive_status" or die;
	my @done = sort map { /^(.+)\.done$/ ? $1 : () } readdir $dh;
	closedir $dh;
	for my $f (grep { !$verified{$_} } @done)
	{
		my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $direct, 'fetch', $f, "$dest/$f" ]);
		if ($rc == 0) { $verified{$f} = 1; unlink "$dest/$f" }
		else { push @missing, "$f (exit $rc: $err)" }
	}
	return @missing;
}

$node->safe_psql('CREATE TABLE filler (id int, pad text)');
my @early;
for my $i (1 .. 20)
{
	$node->safe_psql(
		"INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 3000) g");
	$node->switch_wal;
	push @early, unstored_done_files() if $i % 4 == 0;
}
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "$k: WAL burst up to $last archived through 30 % faults");
push @early, unstored_done_files();
ok(!@early, "$k: no file was acknowledged to PostgreSQL before it was stored")
  or diag(join "\n", @early);
cmp_ok(scalar keys %verified, '>=', 20, "$k: at least 20 files archived and verified");

my $c = $px->fault_counts;
my $nfaults = 0;
$nfaults += $c->{$_} for grep { $_ ne 'pass' } keys %$c;
cmp_ok($nfaults, '>=', 10, "$k: the proxy injected faults ("
	  . join(', ', map { "$_ $c->{$_}" } sort keys %$c) . ')');

# Everything comes back identical — through the faulty proxy too.
my $same = 0;
for my $f (sort keys %verified)
{
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	$same++ if $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
	diag("fetch $f: exit $rc: $err") if $rc;
}
is($same, scalar keys %verified, "$k: every archived file fetched back byte-identical through faults");

# ---- a total outage: 503 on every request
my $down = WalshipS3->proxy(upstream => $store, rate => 1, faults => '503');
my $dconf = write_config("$base/down.conf", repo => 's3://wal/burst',
	$down->config('io-timeout' => 3, 'fetch-timeout' => 3));
my ($one) = sort keys %verified;
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $dconf, 'fetch', $one, "$dest/outage" ]);
cmp_ok($rc, '>=', 126, "$k: fetch through an outage exits >= 126, never 1") or diag($err);
ok(!-e "$dest/outage", "$k: ... and writes nothing");
like($err, qr/503/, "$k: ... and the error shows the 503");

($rc, $out, $err) = run(cmd => [ $bin, '-c', $dconf, 'push', "pg_wal/$one" ], cwd => $node->pgdata);
is($rc, 1, "$k: push through an outage exits 1 (PostgreSQL retries)") or diag($err);

$node->stop;
done_testing();
