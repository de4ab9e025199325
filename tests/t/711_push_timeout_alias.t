# 711_push_timeout_alias.t — push-timeout is the new name of walship's archive-timeout (issue
# 19); the old name still works, as a deprecated alias that prints one WARNING naming where it
# was set. A live cluster archives through the async agent with archive-timeout in the config
# file: every segment archived, each push warns once. The old name's value is the one read
# (a malformed value fails push, exit 1, naming the old key's line, nothing archived). The
# environment's WALSHIP_ARCHIVE_TIMEOUT is an alias too; push-timeout itself never warns.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'on',
	'agent-idle-timeout' => '2s', 'archive-timeout' => '60s');

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), "archive-timeout in the config: $seg archived");
my $log = $node->log_content;
like($log, qr/walship push: WARNING: archive-timeout \(\Q$conf\E:\d+\) is deprecated: it is now called push-timeout/,
	'the server log has the deprecation WARNING, naming the file and line');
$node->stop;

# the old name's value is read: malformed, push fails naming its line, nothing archived
my $wal = $seg;    # kept by wal_keep_size
my $empty = make_pg_dir("$base/repo2", 0700);
my $bad2 = write_config("$base/bad2.conf", repo => $empty, async => 'on', 'archive-timeout' => 'soon');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $bad2, 'push', $node->pgdata . "/pg_wal/$wal" ],
	cwd => $node->pgdata);
is($rc, 2, 'archive-timeout = soon: push exits 2 (configuration error)');
like($err, qr/archive-timeout.*deprecated/, '... warns about the old name');
like($err, qr/"soon".*\Q$bad2\E:\d+|\Q$bad2\E:\d+.*"soon"/, '... and says the value from that line is bad') or diag($err);
ok(!-e "$empty/wal", '... nothing archived');

# one push by hand (the file is already archived: identical): exactly one WARNING
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', $node->pgdata . "/pg_wal/$wal" ],
	cwd => $node->pgdata);
is($rc, 0, 'push with archive-timeout exits 0') or diag($err);
my @w = $err =~ /(is deprecated)/g;
is(scalar @w, 1, '... with exactly one WARNING') or diag($err);

# environment alias; the new name never warns
($rc, $out, $err) = run(cmd => [ $bin, '-c', $bad2, 'push', $node->pgdata . "/pg_wal/$wal" ],
	cwd => $node->pgdata, env => { WALSHIP_ARCHIVE_TIMEOUT => 'later' });
like($err, qr/archive-timeout \(WALSHIP_ARCHIVE_TIMEOUT\) is deprecated/, 'WALSHIP_ARCHIVE_TIMEOUT is the alias too') or diag($err);
my $new = write_config("$base/new.conf", repo => $empty, async => 'on',
	'agent-idle-timeout' => '1s', 'push-timeout' => '30s');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $new, 'push', $node->pgdata . "/pg_wal/$wal" ],
	cwd => $node->pgdata);
is($rc, 0, 'push-timeout: push exits 0') or diag($err);
unlike($err, qr/deprecated/, '... without a WARNING');

done_testing();
