# 672_notify.t — notify-url against a real HTTP receiver started here (tests/lib/WalshipHttpSink):
# what is posted (a JSON body with "text" and the job's fields, Content-Type application/json),
# notify-on = failure posts failures only, always posts every result, basebackup and verify
# both report; a receiver that is down or hangs changes nothing (same exit code, a warning
# naming the host only, bounded by notify-timeout); the URL is a secret: refused on the
# command line and never in any message.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipHttpSink;

use JSON::PP qw(decode_json);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $secret = 'T0KEN-s3cr3t-9f8e';
my $sink = WalshipHttpSink->start(status => 200);
my $url  = $sink->url("/hooks/$secret");
my $plain = write_config("$base/plain.conf", repo => $repo, async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $plain push %p");
$node->start;
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), 'WAL archived');

my @stderr;
sub job
{
	my ($conf, @args) = @_;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, @args ]);
	push @stderr, $err;
	return ($rc, $out, $err);
}

# notify-on = failure (the default): a good verify posts nothing
my $c = write_config("$base/f.conf", repo => $repo, 'notify-url' => $url);
my ($rc, $out, $err) = job($c, 'verify');
is($rc, 0, 'verify exits 0') or diag($err);
is(scalar(my @r = $sink->requests), 0, 'notify-on = failure: nothing posted for a success');

# a failure is posted
my $empty = make_pg_dir("$base/empty");
my $cf = write_config("$base/fail.conf", repo => $empty, 'notify-url' => $url);
($rc, $out, $err) = job($cf, 'verify');
is($rc, 1, 'verify of an empty repository exits 1');
my @req = $sink->requests;
is(scalar @req, 1, '... and one notification was posted');
my $r = $req[0] // {};
is($r->{method}, 'POST', '... a POST');
is($r->{path}, "/hooks/$secret", '... to the URL');
like($r->{headers}{'content-type'} // '', qr{^application/json}, '... of JSON');
my $j = eval { decode_json($r->{body}) } // {};
like($j->{text} // '', qr/^FAILED verify on \S+: walship verify: 1 problem\(s\); first: \Q$empty\E walship\.repo/,
	'... "text" says what failed, where') or diag($r->{body});
is($j->{job}, 'verify', '... "job": "verify"');
ok(defined $j->{ok} && !$j->{ok}, '... "ok": false');
is($j->{status}, 'failure', '... "status": "failure"');
is($j->{problems}, 1, '... "problems": 1 (a number)');
like($j->{started} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, '... an ISO-8601 start time');

# notify-on = always: successes too, basebackup included
my $ca = write_config("$base/a.conf", repo => $repo, async => 'off', 'notify-url' => $url,
	'notify-on' => 'always');
($rc, $out, $err) = job($ca, 'verify');
is($rc, 0, 'notify-on = always: verify exits 0');
my $id = take_basebackup($node, ['-c', $ca], label => 'n');
@req = $sink->requests;
is(scalar @req, 3, '... a notification for the verify and one for the basebackup');
$j = eval { decode_json($req[1]{body}) } // {};
ok($j->{ok}, '... verify: "ok": true');
like($j->{text} // '', qr/^OK verify on /, '... verify: "text" says OK');
$j = eval { decode_json($req[2]{body}) } // {};
is($j->{job}, 'basebackup', '... basebackup: "job": "basebackup"');
is($j->{backup_id}, $id, '... with the backup id');
ok($j->{size_bytes} > 0, '... and its size');

# a receiver that is down, or that hangs: the result stands
my $port = WalshipHttpSink::closed_port();
my $cd = write_config("$base/d.conf", repo => $repo, 'notify-url' => "http://127.0.0.1:$port/hooks/$secret",
	'notify-on' => 'always', 'notify-timeout' => '2s');
($rc, $out, $err) = job($cd, 'verify');
is($rc, 0, 'a receiver that is down: verify still exits 0');
like($err, qr/WARN.*notification to 127\.0\.0\.1:$port failed.*the verify result stands/,
	'... a warning naming the host only');
($rc, $out, $err) = job(write_config("$base/faild.conf", repo => $empty,
		'notify-url' => "http://127.0.0.1:$port/x/$secret"), 'verify');
is($rc, 1, '... and a failing verify still exits 1');
my $hang = WalshipHttpSink->start(mode => 'hang');
my $ch = write_config("$base/h.conf", repo => $repo, 'notify-url' => $hang->url("/hooks/$secret"),
	'notify-on' => 'always', 'notify-timeout' => '2s');
($rc, $out, $err) = job($ch, 'verify');
is($rc, 0, 'a receiver that hangs: verify exits 0 after notify-timeout');
like($err, qr/WARN.*notification to 127\.0\.0\.1:\d+ failed/, '... with a warning');
$hang->stop;

# the URL is a secret
($rc, $out, $err) = job($plain, '--notify-url', $url, 'verify');
is($rc, 2, '--notify-url on the command line exits 2');
like($err, qr/notify-url/, '... naming the option');
($rc, $out, $err) = job(write_config("$base/bad.conf", repo => $repo, 'notify-url' => $url, 'notify-on' => 'sometimes'), 'verify');
my $n = () = $sink->requests;
is($rc, 2, 'notify-on = sometimes: exits 2 before the job runs');
like($err, qr/notify-on = "sometimes" .* is not failure or always/, '... and the value is named');
is(scalar(() = $sink->requests), $n, '... nothing posted');
($rc, $out, $err) = job(write_config("$base/bad2.conf", repo => $repo, 'notify-url' => "ftp://h/$secret"), 'verify');
is($rc, 2, 'a notify-url that is not http(s): exits 2');
like($err, qr/notify-url \(host h\) is not an http/, '... naming the host only');
ok(!(grep { /\Q$secret\E/ } @stderr), 'the URL\'s secret path is in no message') or diag(join "\n", @stderr);

# expire reports too: its result is posted and recorded in metrics-file (its plan, --dry-run, is not)
my $mf = "$base/walship.prom";
my $ce = write_config("$base/e.conf", repo => $repo, 'notify-url' => $url, 'notify-on' => 'always',
	'metrics-file' => $mf, 'retention-full' => 1);
my $before = () = $sink->requests;
($rc, $out, $err) = job($ce, 'expire', '--dry-run');
is(scalar(() = $sink->requests), $before, 'expire --dry-run posts nothing');
($rc, $out, $err) = job($ce, 'expire');
is($rc, 0, 'expire exits 0') or diag($err);
my @ex = grep { (eval { decode_json($_->{body}) } // {})->{job} eq 'expire' } $sink->requests;
is(scalar @ex, 1, '... one notification with "job": "expire"');
my $ej = eval { decode_json(($ex[0] // {})->{body} // '') } // {};
ok($ej->{ok}, '... "ok": true') or diag(explain($ej));
like($ej->{text} // '', qr/expire of 1 repository: done/, '... "text" says what it did');
my $prom = -e $mf ? slurp_file($mf) : '';
like($prom, qr/^walship_job_last_success\{job="expire"\} 1$/m, 'metrics-file: walship_job_last_success{job="expire"} 1')
  or diag($prom);

$node->stop;
$sink->stop;
done_testing();
