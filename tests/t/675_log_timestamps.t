# 675_log_timestamps.t — log-timestamps: an ISO-8601 UTC prefix on each log line, on by default
# for verify / check / drill / metrics, off for the others (push and fetch write into
# PostgreSQL's log); forced either way by the option; a bad value exits 2. basebackup
# --checkpoint spread says that it waits for the server's checkpoint.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $stamp = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z walship /;

my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'verify', 'extra' ]);
like($err, qr/$stamp\Qverify: ERROR: usage\E/m, 'verify: stamped by default');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--log-timestamps', 'off', 'verify', 'extra' ]);
like($err, qr/^walship verify: ERROR: usage/m, 'verify --log-timestamps off: not stamped');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', 'extra' ]);
like($err, qr/^walship list: ERROR: usage/m, 'list: not stamped by default');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--log-timestamps', 'on', 'list', 'extra' ]);
like($err, qr/$stamp\Qlist: ERROR: usage\E/m, 'list --log-timestamps on: stamped');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--log-timestamps', 'maybe', 'list' ]);
is($rc, 2, 'log-timestamps = maybe exits 2');
like($err, qr/log-timestamps = "maybe" \(from --log-timestamps\) is not a boolean/, '... naming the value');
is($out, '', '... and lists nothing');

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $node->connstr, '--checkpoint', 'spread' ]);
is($rc, 0, 'basebackup --checkpoint spread exits 0') or diag($err);
like($err, qr/^walship basebackup: waiting for the server's spread checkpoint/m, '... and says it waits for the checkpoint');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $node->connstr, '--checkpoint', 'fast' ]);
unlike($err, qr/waiting for the server's spread checkpoint/, '... --checkpoint fast does not');
$node->stop;
done_testing();
