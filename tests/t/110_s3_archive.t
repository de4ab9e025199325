# 110_s3_archive.t — a live cluster archives into S3 repositories (s3rver, and moto_server where
# installed) through walship push; every archived file comes back byte-identical through walship
# fetch; absent is exit 1, an unreachable endpoint is ≥ 126; a wrong secret fails push with a
# clear error that never shows the secret. Notes the push throughput to each server.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Compare qw(compare);
use Time::HiRes qw(time);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();

my @servers = (WalshipS3->s3rver(buckets => ['wal']));
my $moto = WalshipS3->moto(buckets => ['wal']);
push @servers, $moto if $moto;

for my $srv (@servers)
{
	my $k    = $srv->{kind};
	my $conf = write_config("$base/$k.conf", repo => "s3://wal/$k/main", $srv->config);
	my $node = new_cluster("primary_$k", archive_command => "$bin -c $conf push %p",
		wal_keep_size => '1GB');
	$node->start;
	$node->safe_psql('CREATE TABLE filler (id int, pad text)');
	for my $i (1 .. 6)
	{
		$node->safe_psql(
			"INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 3000) g");
		$node->switch_wal;
	}
	my $last = $node->switch_wal;
	ok($node->wait_for_archive($last), "$k: every segment up to $last archived to S3");
	is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0',
		"$k: no push failed");

	my $pg_wal = $node->pgdata . '/pg_wal';
	opendir my $dh, $pg_wal or die "opendir $pg_wal: $!";
	my @archived = sort grep {
		/^([0-9A-F]{24}|[0-9A-F]{24}\.[0-9A-F]{8}\.backup)$/ && -e "$pg_wal/archive_status/$_.done"
	} readdir $dh;
	closedir $dh;
	cmp_ok(scalar @archived, '>=', 6, "$k: at least 6 files archived");

	my $dest = make_pg_dir("$base/fetched_$k", 0700);
	my $same = 0;
	for my $f (@archived)
	{
		my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
		$same++ if $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
		diag("fetch $f: exit $rc: $err") if $rc;
	}
	is($same, scalar @archived, "$k: every archived file fetched back byte-identical");

	# Re-pushing an archived segment with the same content succeeds (already there).
	my ($rc, $out, $err) =
	  run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$archived[0]" ], cwd => $node->pgdata);
	is($rc, 0, "$k: pushing an already archived identical segment succeeds") or diag($err);

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', '000000010000000000000FFF',
		"$dest/absent" ]);
	is($rc, 1, "$k: fetch of a never-archived segment exits 1") or diag($err);
	ok(!-e "$dest/absent", "$k: ... and writes nothing");

	# An endpoint nobody listens on: not "absent" but an outage (≥ 126), after the deadline.
	my $dead = write_config("$base/$k-dead.conf", repo => "s3://wal/$k/main",
		$srv->config('s3-endpoint' => 'http://127.0.0.1:9', 'io-timeout' => 3,
			'fetch-timeout' => 3));
	my $t0 = time;
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $dead, 'fetch', $archived[0], "$dest/dead" ]);
	cmp_ok($rc, '>=', 126, "$k: fetch from an unreachable endpoint exits >= 126, not 1")
	  or diag($err);
	cmp_ok(time - $t0, '<', 60, "$k: ... within its deadline");
	ok(!-e "$dest/dead", "$k: ... and writes nothing");

	# A wrong secret: push fails (exit 1) with a clear message and no secret.
	my $secret = 'N0tTheRightSecretValue';
	my $bad = write_config("$base/$k-bad.conf", repo => "s3://wal/$k/main",
		$srv->config('s3-key-secret' => $secret));
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $bad, 'fetch', $archived[0], "$dest/bad" ]);
	if ($k eq 's3rver')
	{
		cmp_ok($rc, '>=', 126, "$k: fetch with a wrong secret is not 'absent'") or diag($err);
		like($err, qr/refused the credentials/, "$k: ... and says the credentials were refused");
	}
	unlike("$out$err", qr/\Q$secret\E/, "$k: the secret is never printed");

	# Throughput: push the archived segments again into a fresh prefix, one process each, the
	# way archive_command runs it.
	my $bconf = write_config("$base/$k-bench.conf", repo => "s3://wal/$k/bench", $srv->config);
	my @segs = grep { /^[0-9A-F]{24}$/ } @archived;
	my ($bytes, $ok) = (0, 0);
	$t0 = time;
	for my $f (@segs)
	{
		($rc) = run(cmd => [ $bin, '-c', $bconf, 'push', "pg_wal/$f" ], cwd => $node->pgdata);
		$ok++ if $rc == 0;
		$bytes += -s "$pg_wal/$f";
	}
	my $dt = time - $t0;
	is($ok, scalar @segs, "$k: bench pushes succeeded");
	note(sprintf('%s: pushed %d segments (%.1f MiB) in %.2f s: %.1f ms/segment, %.1f MiB/s',
		$k, scalar @segs, $bytes / 1048576, $dt, 1000 * $dt / @segs, $bytes / 1048576 / $dt));
	$node->stop;
}

done_testing();
