# 751_catchup_posix.t — repoN-mode = catch-up without the agent (async = off), posix only:
# bad modes exit 2 with nothing written; push writes the sync repository only and acknowledges;
# the catch-up repository's backlog shows in list (text and JSON), metrics and check
# (check-catch-up-max-lag); fetch falls back past a catch-up repository that lacks the tail;
# basebackup succeeds with a catch-up repository that fails (a WARNING naming walship copy)
# and fills one that works; walship copy --wal drains the backlog.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

use JSON::PP qw(decode_json);
use File::Find qw(find);
use File::Compare qw(compare);

my $bin  = walship_bin();
my $base = tmp_base();
my $cu   = make_pg_dir("$base/cu", 0700);
my $sync = make_pg_dir("$base/sync", 0700);

sub nfiles
{
	my ($dir) = @_;
	my $n = 0;
	find(sub { $n++ if -f $_ }, $dir);
	return $n;
}

# ---- bad modes: exit 2, clear message, nothing written
my $bad = write_config("$base/bad.conf", repo1 => $cu, repo2 => $sync, 'repo1-mode' => 'lazy');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $bad, 'push', 'pg_wal/000000010000000000000001' ]);
is($rc, 2, 'repo1-mode = lazy: push exits 2');
like($err, qr/repo1-mode = "lazy" is not sync or catch-up/, '... naming the setting') or diag($err);
my $allcu = write_config("$base/allcu.conf", repo1 => $cu, repo2 => $sync,
	'repo1-mode' => 'catch-up', 'repo2-mode' => 'catch-up');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $allcu, 'push', 'pg_wal/000000010000000000000001' ]);
is($rc, 2, 'every repository catch-up: push exits 2');
like($err, qr/at least one must be sync/, '... saying one must be sync') or diag($err);
my $bare = write_config("$base/bare.conf", repo1 => $cu, repo2 => $sync, mode => 'catch-up');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $bare, 'push', 'pg_wal/000000010000000000000001' ]);
is($rc, 2, 'a bare mode = catch-up: push exits 2');
like($err, qr/mode \(from .*bare\.conf:\d+\) is a per-repository setting: write repoN-mode/,
	'... saying to write repoN-mode') or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $allcu, 'basebackup', '--pgconn', 'host=/nonexistent' ]);
is($rc, 2, 'every repository catch-up: basebackup exits 2') or diag($err);
is(nfiles($cu) + nfiles($sync), 0, '... nothing written');

# ---- push (async = off) writes the sync repository only
my $conf = write_config("$base/walship.conf", repo1 => $cu, repo2 => $sync,
	'repo1-mode' => 'catch-up', async => 'off', 'fetch-timeout' => '5', 'check-timeout' => '20');
my $node = archiving_cluster('primary', $conf);
$node->start;
$node->safe_psql('CREATE TABLE t (n int, pad text)');
my @segs;
for (1 .. 3)
{
	$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
	push @segs, $node->switch_wal;
}
ok($node->wait_for_archive($segs[-1], 60), "archived up to $segs[-1]");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'no archive failure');
ok(!-d "$cu/wal", 'the catch-up repository got no WAL from push');
ok(-d "$sync/wal", 'the sync repository has it');

# ---- the backlog: list, list --json, metrics, check
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
my ($n) = $out =~ /catch-up repository: (\d+) WAL file\(s\) \(.*\) behind repository 2, oldest (\S+)/;
ok(defined $n && $n >= 3, "list: the catch-up repository is $n WAL file(s) behind") or diag($out . $err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
my $j = eval { decode_json($out) } // {};
my ($r1, $r2) = @{ $j->{repositories} // [] };
is($r1->{mode}, 'catch-up', 'list --json: repository 1 is catch-up') or diag($out);
is($r2->{mode}, 'sync', '... repository 2 is sync');
is($r1->{catch_up_backlog}{files}, $n, '... its backlog in files');
cmp_ok($r1->{catch_up_backlog}{bytes}, '>', 0, '... and bytes');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'metrics' ]);
like($out, qr/^walship_catchup_backlog_files\{repo="\Q$cu\E"\} $n$/m, 'metrics: walship_catchup_backlog_files')
  or diag($out);
like($out, qr/^walship_catchup_backlog_bytes\{repo="\Q$cu\E"\} [1-9]\d*$/m, 'metrics: walship_catchup_backlog_bytes');
unlike($out, qr/^walship_catchup_backlog_files\{repo="\Q$sync\E"/m, '... none for the sync repository');
my $tight = write_config("$base/tight.conf", repo1 => $cu, repo2 => $sync,
	'repo1-mode' => 'catch-up', async => 'off', 'check-catch-up-max-lag' => '100kB',
	'check-backup-max-age' => '0', 'check-timeout' => '20');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $tight, 'check', '--pgconn', $node->connstr ]);
is($rc, 1, 'check: exit 1 with the catch-up backlog over check-catch-up-max-lag') or diag($out . $err);
like($out, qr/CRITICAL\s+catch_up_lag.*\Q$cu\E: \d+ WAL file\(s\)/, '... catch_up_lag CRITICAL, naming it') or diag($out);
like($out, qr/OK\s+switch.*in 1 sync repository/, '... the switch waited for the sync repository only') or diag($out);

# ---- walship copy --wal fills it; then the tail is missing again after more pushes
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'copy', '--wal', '--from', '2', '--to', '1' ]);
is($rc, 0, 'walship copy --wal --from 2 --to 1') or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/catch-up repository: up to date with repository 2/, 'list: up to date after copy') or diag($out);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $tight, 'check', '--pgconn', $node->connstr ]);
like($out, qr/OK\s+catch_up_lag.*\Q$cu\E: [01] WAL file\(s\)/,
	'check: catch_up_lag OK after copy (the segment check switched to, at most)') or diag($out);
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
my $tail = $node->switch_wal;
ok($node->wait_for_archive($tail, 60), "archived $tail (sync only)");

# ---- fetch: the catch-up repository (first) lacks the tail: absent there only
my $dest = make_pg_dir("$base/dest");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $tail, "$dest/$tail" ]);
is($rc, 0, "fetch $tail: restored though the catch-up repository 1 lacks it") or diag($err);
like($err, qr/restored \Q$tail\E from \Q$sync\E/, '... from the sync repository') or diag($err);
is(compare("$dest/$tail", $node->pgdata . "/pg_wal/$tail"), 0, '... byte-identical');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $segs[0], "$dest/$segs[0]" ]);
like($err, qr/restored \Q$segs[0]\E from \Q$cu\E/, "fetch $segs[0]: from the catch-up repository, which has it")
  or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', '0000000100000000000000F0', "$dest/F0" ]);
is($rc, 1, 'a segment absent from both: exit 1 (end of archive)') or diag($err);

# ---- basebackup: a catch-up repository that works is filled, one that fails is a warning
($rc, $out, $err) = run(cmd => [ $bin, "-c", $conf, "basebackup", "--pgconn", $node->connstr, "--checkpoint", "fast", "--label", "both" ]);
my ($id) = $err =~ /backup (\S+) complete/;
is($rc, 0, "basebackup into both exits 0") or diag($err);
like($err, qr/backup \Q$id\E is complete in the catch-up repository/, "... filled the catch-up repository") or diag($err);
my $cuconf = write_config("$base/cuonly.conf", repo1 => $cu);
my $b = list_backups([ '-c', $cuconf ]);
ok((grep { $_->{id} eq ($id // '') } @$b), "backup $id is complete in the catch-up repository too");
my $dead = WalshipS3::_free_port();
my $down = write_config("$base/down.conf", repo1 => $sync, repo2 => 's3://nobody/x',
	'repo2-mode' => 'catch-up', 's3-endpoint' => "http://127.0.0.1:$dead", 's3-uri-style' => 'path',
	's3-key' => 'k', 's3-key-secret' => 's', 'io-timeout' => '3', async => 'off');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $down, 'basebackup', '--pgconn', $node->connstr,
	'--checkpoint', 'fast', '--label', 'down' ]);
is($rc, 0, 'basebackup with the catch-up repository down: exit 0') or diag($err);
like($err, qr/WARNING: backup (\S+) is complete in every sync repository but not in the catch-up repository s3:\/\/nobody\/x \(repo2\).*walship copy --to 2 --backup \1/,
	'... a WARNING naming walship copy') or diag($err);
my $sb = list_backups([ '-c', write_config("$base/synconly.conf", repo1 => $sync) ]);
is(scalar(grep { $_->{label} eq 'down' } @$sb), 1, '... the backup is complete in the sync repository');

$node->stop;
done_testing();
