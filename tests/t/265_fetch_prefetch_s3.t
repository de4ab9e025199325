# 265_fetch_prefetch_s3.t — the prefetching fetch from S3 (s3rver): a base backup recovers
# through fetch with prefetch on; every row is there and most segments came from the spool.
# Then, with the endpoint gone, fetch of a segment exits 126 (an outage is never "absent"),
# 1 in standby mode, and the agent keeps nothing; back up, the same fetch succeeds.
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
my $dead  = WalshipS3::_free_port();    # nobody listens: connection refused
my %pf    = ('fetch-prefetch' => 8, 'fetch-parallel' => 4, 'agent-idle-timeout' => '3s',
	'fetch-timeout' => '2s', 'io-timeout' => '5s');
my $conf = write_config("$base/walship.conf", %s3cfg, repo => 's3://wal/pf', %pf);
my $down = write_config("$base/down.conf", %s3cfg, repo => 's3://wal/pf', %pf,
	's3-endpoint' => "http://127.0.0.1:$dead");

my $primary = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$primary->start;
$primary->safe_psql('CREATE TABLE t (id int PRIMARY KEY, pad text)');
my $backup = $primary->backup('base');
for my $i (0 .. 19)
{
	my ($lo, $hi) = (1000 * $i + 1, 1000 * ($i + 1));
	$primary->safe_psql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series($lo, $hi) g");
	$primary->switch_wal;
}
my $summary = q{SELECT count(*), sum(id), md5(string_agg(pad, '' ORDER BY id)) FROM t};
my $expected = $primary->safe_psql($summary);
my $last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "archived to S3 up to $last");
is($primary->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'no failed push');
$primary->stop;

my $rec = WalshipTest::init_from_backup('rec', $backup,
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1);
ok($rec->start(fail_ok => 1), 'the backup recovers from S3 through the prefetching fetch')
  && ok($rec->poll_query_until('SELECT NOT pg_is_in_recovery()'), '... to the end of the archive')
  or do { diag($rec->log_content); done_testing(); exit 1 };
is($rec->safe_psql($summary), $expected, 'every row is there (count, sum, md5)');
my $log = $rec->log_content;
my @hits = $log =~ /walship fetch: restored (\S+) from the prefetch spool/g;
diag(scalar(@hits) . ' segments served from the prefetch spool');
cmp_ok(scalar @hits, '>=', 10, 'at least 10 segments served from the spool');
unlike($log, qr/PANIC|could not restore file|failed verification/, 'no failure');
$rec->stop;

# ---- S3 down: 126, never 1; standby mode: 1
my $pgdata = make_pg_dir("$base/fake", 0700);
make_pg_dir("$pgdata/pg_wal/archive_status", 0700);
my $spool = "$pgdata/pg_wal/walship-prefetch";
my ($seg) = $log =~ /restored log file "(0000000100000000000000\w\w)" from archive/;
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $down, 'fetch', $seg, 'pg_wal/RECOVERYXLOG' ], cwd => $pgdata);
is($rc, 126, "S3 down: fetch $seg exits 126 (stop recovery), not 1") or diag($err);
like($err, qr/could not restore \Q$seg\E/, '... and says so');
spurt_file("$pgdata/standby.signal", '');
chown_pg("$pgdata/standby.signal");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $down, 'fetch', $seg, 'pg_wal/RECOVERYXLOG' ], cwd => $pgdata);
is($rc, 1, 'S3 down, standby mode: exits 1 (the standby asks again)') or diag($err);
unlink "$pgdata/standby.signal";
sleep 1;
opendir my $dh, $spool or die "opendir $spool: $!";
my @kept = grep { /^[0-9A-F]{24}/ } readdir $dh;
closedir $dh;
is("@kept", '', 'the agent of the dead endpoint kept nothing');

# ---- back up: the agent of the dead endpoint is gone (idle); a new one prefetches again
my ($dpid) = (eval { slurp_file("$spool/agent.state") } // '') =~ /^pid = (\d+)/;
my $wait = time + 60;
sleep 0.2 while $dpid && kill(0, $dpid) && time < $wait;
ok(!($dpid && kill(0, $dpid)), 'the agent of the dead endpoint exited');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $seg, 'pg_wal/RECOVERYXLOG' ], cwd => $pgdata);
is($rc, 0, "S3 back: fetch $seg exits 0") or diag($err);
my $next = sprintf('%s%08X', substr($seg, 0, 16), hex(substr($seg, 16)) + 1);
my $deadline = time + 60;
sleep 0.1 until -e "$spool/$next" || time > $deadline;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $next, 'pg_wal/RECOVERYXLOG' ], cwd => $pgdata);
is($rc, 0, "fetch $next exits 0");
like($err, qr/restored \Q$next\E from the prefetch spool/, '... from the spool (prefetched from S3)');
my ($pid) = (eval { slurp_file("$spool/agent.state") } // '') =~ /^pid = (\d+)/;
$deadline = time + 60;
sleep 0.2 while $pid && kill(0, $pid) && time < $deadline;
ok(!($pid && kill(0, $pid)), 'the agent exits when idle');

done_testing();
