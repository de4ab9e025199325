# 441_agent_stop_s3.t — agents against S3 stop when told, and whatever is failing.
# (1) SIGTERM to the async push agent while its request hangs (a proxy that never answers):
# gone within 3 s, nothing acknowledged. (2) SIGTERM to the prefetch agent while its downloads
# hang: gone within 3 s, no NAME.tmp left in the spool; ps shows it as "walship: prefetch agent
# for PGDATA". (3) A prefetch agent whose downloads keep failing exits after agent-idle-timeout
# although it is retrying, with a bounded number of log lines. (4) A standby's prefetch agent
# exits within seconds of pg_ctl stop -m immediate, long before agent-idle-timeout.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use Time::HiRes qw(sleep time);

WalshipS3::require_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $s3    = WalshipS3->s3rver(buckets => ['wal']);
my %s3cfg = $s3->config();
# every request into s3://wal/hang hangs
my $hang = WalshipS3->proxy(upstream => $s3, rate => 1, faults => 'stall', match => '/wal/hang/');
my %hangcfg = $hang->config();

sub state_pid
{
	my ($spool) = @_;
	open my $fh, '<', "$spool/agent.state" or return 0;
	my ($pid) = (<$fh> // '') =~ /^pid = (\d+)/;
	return $pid && pid_alive($pid) ? $pid : 0;
}

sub files_in
{
	my ($dir, $re) = @_;
	opendir my $dh, $dir or return ();
	my @f = sort grep { /$re/ } readdir $dh;
	closedir $dh;
	return @f;
}

sub stalled { return $_[0]->fault_counts->{stall} // 0 }

# ---- (1) the push agent, its upload hanging
my $pconf = write_config("$base/push.conf", %hangcfg, repo => 's3://wal/hang', async => 'on',
	'io-timeout' => '120s', 'push-timeout' => '2s', 'agent-idle-timeout' => '600s');
my $pusher = new_cluster('pusher', archive_command => "$bin -c $pconf push %p");
$pusher->start;
my $pspool = $pusher->pgdata . '/pg_wal/walship';
my $held = $pusher->switch_wal;
ok(wait_until(60, sub { state_pid($pspool) && stalled($hang) > 0 }),
	'the push agent runs and its request to S3 hangs');
my $pid = state_pid($pspool);
kill 'TERM', $pid;
my $t0 = time;
ok(wait_until(3, sub { !pid_alive($pid) }), 'SIGTERM: the push agent is gone within 3 s');
diag(sprintf 'the push agent exited %.2f s after SIGTERM', time - $t0);
ok(!-e "$pspool/$held.ack", "... and acknowledged nothing ($held)");
$pusher->stop;

# ---- the archive for the prefetch agents, straight into S3
my $conf = write_config("$base/walship.conf", %s3cfg, repo => 's3://wal/pf');
my $primary = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$primary->start;
$primary->safe_psql('CREATE TABLE t (id int PRIMARY KEY, pad text)');
my $backup = $primary->backup('base');
my @segs;
for my $i (0 .. 11)
{
	my ($lo, $hi) = (1000 * $i + 1, 1000 * ($i + 1));
	$primary->safe_psql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series($lo, $hi) g");
	push @segs, $primary->switch_wal;
}
ok($primary->wait_for_archive($segs[-1]), "archived to S3 up to $segs[-1]");
$primary->stop;

# a "PGDATA" of our own, no server: the agent lives by its idle timeout and signals
sub fake_pgdata
{
	my ($name) = @_;
	my $d = make_pg_dir("$base/$name", 0700);
	make_pg_dir("$d/pg_wal/archive_status", 0700);
	return $d;
}

# fetch, its stderr (and its agent's) appended to $log
sub fetch
{
	my ($c, $pgdata, $seg, $log) = @_;
	my ($rc, $out, $err) = run(
		cmd => [ 'sh', '-c', "exec '$bin' -c '$c' fetch $seg pg_wal/RECOVERYXLOG 2>>'$log'" ],
		cwd => $pgdata);
	return $rc;
}

# recovery asks for $segs[1]; the segments after it (what the agent prefetches) fail
my $ahead = '/(' . join('|', @segs[ 2 .. $#segs ]) . ')$';

# ---- (2) the prefetch agent, its downloads hanging
my $hang2 = WalshipS3->proxy(upstream => $s3, rate => 1, faults => 'stall', match => $ahead);
my $hconf = write_config("$base/hang.conf", $hang2->config(), repo => 's3://wal/pf',
	'fetch-prefetch' => 4, 'fetch-parallel' => 2, 'io-timeout' => '120s',
	'fetch-timeout' => '120s', 'agent-idle-timeout' => '600s');
my $fake = fake_pgdata('fake');
my $fspool = "$fake/pg_wal/walship-prefetch";
my $flog = "$base/fetch-hang.log";
is(fetch($hconf, $fake, $segs[1], $flog), 0, "fetch $segs[1] (served at once: it does not hang)")
  or diag(slurp_file($flog));
ok(wait_until(60, sub { state_pid($fspool) && files_in($fspool, qr/\.tmp$/) >= 1 && stalled($hang2) }),
	'the prefetch agent runs, its downloads in flight (NAME.tmp in the spool) and hanging')
  or diag(slurp_file($flog));
$pid = state_pid($fspool);
my $args = `ps -o args= -p $pid`;
$args =~ s/\s+\z//;
is($args, "walship: prefetch agent for $fake", 'ps shows the prefetch agent by its role and PGDATA');
kill 'TERM', $pid;
$t0 = time;
ok(wait_until(3, sub { !pid_alive($pid) }), 'SIGTERM: the prefetch agent is gone within 3 s');
diag(sprintf 'the prefetch agent exited %.2f s after SIGTERM', time - $t0);
is(join(' ', files_in($fspool, qr/^[0-9A-F]{24}/)), '', '... leaving no download (.tmp) or segment behind');

# ---- (3) the prefetch agent, its downloads failing (503 SlowDown, retried within io-timeout):
# it exits when idle, whatever fails
my $slow = WalshipS3->proxy(upstream => $s3, rate => 1, faults => '503', match => $ahead);
my $dconf = write_config("$base/down.conf", $slow->config(), repo => 's3://wal/pf',
	'fetch-prefetch' => 4, 'io-timeout' => '60s', 'fetch-timeout' => '60s',
	'agent-idle-timeout' => '3s');
my $fake2 = fake_pgdata('fake2');
my $dspool = "$fake2/pg_wal/walship-prefetch";
my $dlog = "$base/fetch-down.log";
is(fetch($dconf, $fake2, $segs[1], $dlog), 0, "fetch $segs[1]") or diag(slurp_file($dlog));
ok(wait_until(30, sub { state_pid($dspool) && ($slow->fault_counts->{503} // 0) > 0 }),
	'a prefetch agent runs, its downloads failing');
$pid = state_pid($dspool);
$t0 = time;
ok(wait_until(3 + 8, sub { !pid_alive($pid) }),
	'no request for agent-idle-timeout (3 s): the agent exits although it is retrying');
diag(sprintf 'the prefetch agent exited %.1f s after it started', time - $t0);
my @lines = grep { /^walship prefetch:/ && !/DEBUG/ } split /\n/, slurp_file($dlog);
cmp_ok(scalar @lines, '<=', 4, 'the prefetch agent logged ' . scalar(@lines) . ' line(s), one per kind of failure')
  or diag(join "\n", @lines);

# ---- (4) a standby's prefetch agent: its postmaster is gone, it exits
my $sconf = write_config("$base/standby.conf", %s3cfg, repo => 's3://wal/pf',
	'fetch-prefetch' => 4, 'agent-idle-timeout' => '600s', 'fetch-timeout' => '5s');
my $standby = WalshipTest::init_from_backup('standby', $backup,
	restore_command => "$bin -c $sconf fetch %f %p", standby => 1);
$standby->start;
my $sspool = $standby->pgdata . '/pg_wal/walship-prefetch';
ok(wait_until(60, sub { state_pid($sspool) }), 'the standby has a prefetch agent');
$pid = state_pid($sspool);
$standby->stop('immediate');
$t0 = time;
ok(wait_until(10, sub { !pid_alive($pid) }),
	'pg_ctl stop -m immediate: the prefetch agent exits within seconds (agent-idle-timeout is 600 s)');
diag(sprintf 'the prefetch agent exited %.1f s after the postmaster', time - $t0);

done_testing();
