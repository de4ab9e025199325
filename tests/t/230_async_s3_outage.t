# 230_async_s3_outage.t — async push into S3 (s3rver) with the endpoint going away: push exits 1
# once push-timeout has passed (never "archived"), the agent's error reaches the server log,
# nothing is acknowledged; with the endpoint back, the same files are archived and come back
# byte-identical.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Compare qw(compare);
use Time::HiRes qw(sleep time);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();
my $s3   = WalshipS3->s3rver(buckets => ['wal']);
my %s3cfg = $s3->config();
my $dead = WalshipS3::_free_port();    # nobody listens: connection refused

sub conf
{
	my (%o) = @_;
	my %c = (%s3cfg, repo => 's3://wal/async', async => 'on', 'io-timeout' => '6s',
		'push-timeout' => '3s', 'agent-idle-timeout' => '3s', 'fetch-timeout' => '2s');
	$c{'s3-endpoint'} = "http://127.0.0.1:$dead" if $o{down};
	return write_config("$base/walship.conf", %c);
}
my $conf = conf();
my $fetchconf = write_config("$base/fetch.conf", %s3cfg, repo => 's3://wal/async');

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';
my $spool  = "$pg_wal/walship";
$node->safe_psql('CREATE TABLE t (id int, pad text)');
sub load
{
	$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g");
	return $node->switch_wal;
}

load() for 1 .. 2;
my $seg = load();
ok($node->wait_for_archive($seg, 60), "S3 up: archived up to $seg");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'S3 up: no failure');

sub agent_alive
{
	my ($pid) = (eval { slurp_file("$spool/agent.state") } // '') =~ /^pid = (\d+)/;
	return $pid && pid_alive($pid);
}

# ---- S3 down (once the agent has gone idle: a running one would archive the next file with
# the configuration it started with before a push restarts it)
my $deadline = time + 30;
sleep 0.1 while agent_alive() && time < $deadline;
conf(down => 1);
my $held = load();
ok($node->poll_query_until('SELECT failed_count > 0 FROM pg_stat_archiver', 't', 60),
	'S3 down: push fails (PostgreSQL retries)');
my $t0 = time;
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$held" ], cwd => $node->pgdata);
my $took = time - $t0;
is($rc, 1, 'S3 down: push exits 1') or diag($err);
cmp_ok($took, '<', 3 + 4, '... within push-timeout (3 s) and a little');
like($err, qr/walship push: ERROR: .*$held/, '... naming the file') or diag($err);
ok(-e "$pg_wal/archive_status/$held.ready" && !-e "$pg_wal/archive_status/$held.done",
	"S3 down: $held is not marked archived");
ok(!-e "$spool/$held.ack", "S3 down: no acknowledgement for $held");
$deadline = time + 60;
sleep 0.2 until $node->log_content =~ /walship push: ERROR: .*(refused|connect|Couldn't|could not)/i || time > $deadline;
like($node->log_content, qr/walship push: ERROR: .*(refused|connect|Couldn't|could not)/i,
	"S3 down: the agent's error reaches the server log through push");

# ---- S3 back: the same files are archived
conf();
ok($node->wait_for_archive($held, 120), "S3 back: $held archived");
my $last = load();
ok($node->wait_for_archive($last, 60), "S3 back: archived up to $last");
my $dest = make_pg_dir("$base/dest");
for my $f ($held, $last)
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $fetchconf, 'fetch', $f, "$dest/$f" ]);
	ok($rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0, "$f is in S3, byte-identical") or diag($err);
}

$node->stop;
$deadline = time + 30;
sleep 0.1 while agent_alive() && time < $deadline;
ok(!agent_alive(), 'the agent exits when idle');
done_testing();
