# 752_push_agent_notify.t — the push agent reports archive failures: a repository that cannot
# be reached (S3 endpoint with nobody listening) makes every push fail; the agent posts one
# notification per notify-interval to notify-url (the local HTTP receiver), with the count of
# failures since the last one, also across a restart of the agent; and it writes its metrics
# (walship_push_failures_total, walship_push_last_failure_timestamp_seconds) beside
# metrics-file, read back by a real Prometheus text parser.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipHttpSink;

use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

my $py = '/usr/bin/python3';
plan skip_all => 'python3-prometheus-client is not installed: run scripts/deps.sh'
  unless system($py, '-c', 'import prometheus_client.parser') == 0;

my $bin    = walship_bin();
my $base   = tmp_base();
my $mdir   = make_pg_dir("$base/textfile");
my $sink   = WalshipHttpSink->start(status => 200);
my $secret = 'T0PSECRET';
my $dead   = WalshipS3::_free_port();
sub conf
{
	my (%o) = @_;
	return write_config("$base/walship.conf", repo => 's3://nobody/x',
		's3-endpoint' => "http://127.0.0.1:$dead", 's3-uri-style' => 'path', 's3-key' => 'k',
		's3-key-secret' => 's', 'io-timeout' => '2s', async => 'on', 'push-timeout' => '4s',
		'agent-idle-timeout' => '60s', 'notify-url' => $sink->url("/hooks/$secret"),
		'notify-interval' => $o{interval} // '1h', 'metrics-file' => "$mdir/walship.prom");
}
my $conf = conf();
my $node = archiving_cluster('primary', $conf);
$node->start;
$node->safe_psql('CREATE TABLE t (n int)');
$node->switch_wal for 1 .. 2;
ok($node->poll_query_until('SELECT failed_count >= 2 FROM pg_stat_archiver', 't', 120),
	'every push fails (the repository cannot be reached)');

my $deadline = time + 30;
sleep 0.2 until $sink->requests >= 1 || time > $deadline;
my @req = $sink->requests;
is(scalar @req, 1, 'one notification for several failures within notify-interval (1 h)');
my $j = eval { decode_json($req[0]{body} // '') } // {};
is($j->{job}, 'push', '... "job": "push"');
ok(defined $j->{ok} && !$j->{ok}, '... "ok": false');
cmp_ok($j->{failures} // 0, '>=', 1, "... \"failures\": $j->{failures}");
like($j->{text} // '', qr/archive failure\(s\) in .*pg_wal .*the last: [0-9A-F]{24}: /,
	'... the text names the failures and the file') or diag($req[0]{body});
unlike($req[0]{body}, qr/\Q$secret\E/, '... the URL (a secret) is not in the body');

# the agent's metrics, beside metrics-file
my $prom = "$mdir/walship-push.prom";
$deadline = time + 30;
sleep 0.2 until (-e $prom && slurp_file($prom) =~ /^walship_push_failures_total [1-9]/m) || time > $deadline;
my $text = -e $prom ? slurp_file($prom) : '';
my $parser = <<'PY';
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out[s.name] = s.value
print(json.dumps(out))
PY
my ($rc, $out, $err) = run(cmd => [ $py, '-c', $parser ], stdin => $text, as_pg => 0);
is($rc, 0, "the Prometheus parser accepts $prom") or diag("$err\n$text");
my $m = eval { decode_json($out) } // {};
cmp_ok($m->{walship_push_failures_total} // 0, '>=', 1, 'walship_push_failures_total counts failures')
  or diag($text);
cmp_ok($m->{walship_push_last_failure_timestamp_seconds} // 0, '>', time - 600,
	'walship_push_last_failure_timestamp_seconds is recent');
is($m->{walship_push_last_success_timestamp_seconds}, 0, 'walship_push_last_success_timestamp_seconds 0');

# a restarted agent (new configuration) does not notify again within notify-interval ...
my $agent_pid = sub { (eval { slurp_file($node->pgdata . '/pg_wal/walship/agent.state') } // '') =~ /^pid = (\d+)/ ? $1 : 0 };
my $p1 = $agent_pid->();
# PostgreSQL's archiver pauses for a minute after three failures: push by hand meanwhile
opendir(my $dh, $node->pgdata . '/pg_wal/archive_status') or die;
my ($ready) = sort map { /^(\w{24})\.ready$/ ? $1 : () } readdir $dh;
closedir $dh;
sub push_by_hand
{
	my ($r) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$ready" ], cwd => $node->pgdata);
	return $r;
}
conf(interval => '3600s');
is(push_by_hand(), 1, "push $ready by hand fails");
isnt($agent_pid->(), $p1, '... with an agent restarted for the new configuration');
is(push_by_hand(), 1, '... and again');
sleep 1.5;    # a notification the new agent wrongly sent would be in by now (ticks of 0.5 s)
is(scalar(() = $sink->requests), 1, '... still one notification (the last one is kept in the spool)');

# ... and once notify-interval has passed, the next says how many failed since
conf(interval => '1s');
push_by_hand();
$deadline = time + 60;
sleep 0.2 until $sink->requests >= 2 || time > $deadline;
@req = $sink->requests;
cmp_ok(scalar @req, '>=', 2, 'notify-interval passed: another notification');
$j = eval { decode_json($req[1]{body} // '') } // {};
cmp_ok($j->{failures} // 0, '>=', 1, "... counting the failures since the last one ($j->{failures})");
like($j->{text} // '', qr/since the last notice/, '... since the last notice');

$node->stop;
$sink->stop;
done_testing();
