# 750_catchup_s3_outage.t — repo1 posix (sync) and repo2 S3 (s3rver behind the fault proxy,
# repo2-mode = catch-up), async push under pgbench load. The proxy holds S3 down (503 for every
# request): archiving does not stall (pg_stat_archiver failed_count stays 0, no .ready piles
# up), the agent's metrics file shows the catch-up backlog growing. Then the fault clears (a
# clean proxy on the same endpoint): the agent drains the backlog oldest first, list shows the
# catch-up repository up to date and walship verify finds both repositories complete.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();
my $sync = make_pg_dir("$base/sync", 0700);
my $s3   = WalshipS3->s3rver(buckets => ['cu']);
my $port = WalshipS3::_free_port();
my $down = WalshipS3->proxy(upstream => $s3, rate => 1, faults => '503', port => $port);
my %s3c  = $down->config;
my $conf = write_config("$base/walship.conf", repo1 => $sync, repo2 => 's3://cu/x',
	'repo2-mode' => 'catch-up', %s3c, async => 'on', 'io-timeout' => '3s', 'push-timeout' => '30s',
	'agent-idle-timeout' => '120s', 'metrics-file' => "$base/walship.prom");
my $pushprom = "$base/walship-push.prom";

my $node = archiving_cluster('primary', $conf);
$node->start;
my $pgbench = pg_bin('pgbench');
my @conn = ('-h', $node->host, '-p', $node->port, 'postgres');
my ($rc, $out, $err) = run(cmd => [ $pgbench, '-i', '-s', '2', '-q', @conn ]);
is($rc, 0, 'pgbench -i') or diag($err);

sub backlog_files
{
	my $t = eval { slurp_file($pushprom) } // '';
	return $t =~ /^walship_catchup_backlog_files\{repo="s3:\/\/cu\/x"\} (\d+)$/m ? $1 : undef;
}

# ---- S3 down, under load: pgbench rounds (8 at least) until CATCHUP_HOLD_S seconds (default 20)
# have passed (the issue's "minutes": CATCHUP_HOLD_S=180; the suite keeps it short)
my $hold = $ENV{CATCHUP_HOLD_S} // 20;
my $t0   = time;
my @segs;
for (my $i = 1; $i <= 8 || time - $t0 < $hold; $i++)
{
	($rc, $out, $err) = run(cmd => [ $pgbench, '-n', '-c', '2', '-t', '300', @conn ]);
	is($rc, 0, "pgbench round $i") or diag($err);
	push @segs, $node->switch_wal;
}
ok($node->wait_for_archive($segs[-1], 60), "S3 down: archived up to $segs[-1] into the sync repository");
diag(sprintf('S3 held down for %.0f s, %d segments switched', time - $t0, scalar @segs));
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0',
	'S3 down: pg_stat_archiver failed_count stays 0');
opendir(my $dh, $node->pgdata . '/pg_wal/archive_status') or die;
my @ready = grep { /\.ready$/ } readdir $dh;
closedir $dh;
is(scalar(@ready), 0, 'S3 down: no .ready file left behind') or diag("@ready");
cmp_ok($down->fault_counts->{503} // 0, '>', 0, 'S3 down: the proxy refused requests');
my $deadline = time + 90;
sleep 0.5 until (backlog_files() // 0) >= @segs || time > $deadline;
cmp_ok(backlog_files() // 0, '>=', scalar(@segs),
	'S3 down: the agent reports the catch-up backlog (walship_catchup_backlog_files)')
  or diag(eval { slurp_file($pushprom) } // 'no metrics file');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $segs[-1], "$base/f1" ]);
is($rc, 0, 'S3 down: fetch restores from the sync repository') or diag($err);

# ---- the fault clears: a clean proxy on the same endpoint
$down->stop;
my $up = WalshipS3->proxy(upstream => $s3, rate => 0, port => $port);
my $t1 = time;
($rc, $out, $err) = run(cmd => [ $pgbench, '-n', '-c', '2', '-t', '300', @conn ]);
my $last = $node->switch_wal;
ok($node->wait_for_archive($last, 60), "S3 back: archived up to $last");
my $files;
$deadline = time + 120;
while (time < $deadline)
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
	my $j = eval { decode_json($out) } // {};
	$files = $j->{repositories}[1]{catch_up_backlog}{files};
	last if defined $files && $files == 0;
	sleep 1;
}
is($files, 0, 'S3 back: the catch-up backlog drains to 0 (walship list)') or diag($out . $err);
diag(sprintf('backlog of %d+ segments drained %.0f s after the fault cleared', scalar @segs, time - $t1));
$deadline = time + 30;
sleep 0.5 until (backlog_files() // -1) == 0 || time > $deadline;
is(backlog_files(), 0, "... and the agent's metrics file says so");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'failed_count is still 0');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'verify', '--wal-only' ]);
is($rc, 0, 'walship verify: both repositories complete') or diag($out . $err);
my $s3only = write_config("$base/s3.conf", repo1 => 's3://cu/x', %s3c);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $s3only, 'fetch', $segs[0], "$base/f2" ]);
is($rc, 0, "the catch-up repository alone restores $segs[0], copied while it was behind") or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'metrics' ]);
like($out, qr/^walship_catchup_backlog_files\{repo="s3:\/\/cu\/x"\} 0$/m, 'walship metrics: backlog 0')
  or diag($out);

$node->stop;
done_testing();
