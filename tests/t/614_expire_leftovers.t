# 614_expire_leftovers.t — expire collects what dead writers left, and nothing of a live one.
#  - a base backup killed with kill -9 is incomplete with a lock whose heartbeat is fresh: expire
#    keeps it (it cannot tell it from a running backup) even with expire-grace 0; once the
#    heartbeat is older than the stale limit (the clock moved on: test-clock-offset) it is
#    removed; a backup running while expire runs is never touched and completes;
#  - posix temporary files: one of a dead writer older than expire-grace goes, one whose writer
#    is alive stays, one younger than the grace stays;
#  - S3 (moto_server, which lists multipart uploads; s3rver does not): an unfinished multipart
#    upload older than the grace is aborted, and expire removes through DeleteObjects there too.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipS3;

use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off',
	'retention-full' => 1, 'expire-auto' => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', '2', '-q', '-h', $node->host,
	'-p', $node->port, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);
my $first = take_basebackup($node, [ '-c', $conf ], label => 'first');

# ---- a killed backup: its lock stays fresh for a while ----
my $pgconn = $node->connstr;
my $h = run_bg(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn, '--checkpoint',
	'fast', '--label', 'killed', '--basebackup-max-rate', '64' ]);
my $killed;
my $deadline = time + 60;
while (time < $deadline) {
	($killed) = map { m{/backup/([^/]+)/walship\.lock$} ? $1 : () } glob("$repo/backup/*/walship.lock");
	last if $killed;
	sleep 0.05;
}
ok($killed, "the backup took its lock ($killed)");
kill 'KILL', $h->{pid};
finish_bg($h);
$node->poll_query_until("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'walsender'");
ok(-e "$repo/backup/$killed/walship.lock", 'the killed backup left its lock');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire', '--expire-grace', '0' ]);
is($rc, 0, 'expire exits 0');
like($err, qr/backup \Q$killed\E in .* is running \(\S+ pid \d+, heartbeat \d+ s ago\): kept/,
	'a fresh lock: kept as running');
ok(-e "$repo/backup/$killed/walship.started", '... and nothing of it removed');

# a backup that really runs while expire runs is not touched, and completes. Both run with the
# clock 10 minutes on: the killed backup's heartbeat is then 10 minutes old (stale), the live
# one's is fresh, and expire-grace 0 leaves only the heartbeat to tell them apart.
my $live = run_bg(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn, '--checkpoint',
	'fast', '--label', 'live', '--basebackup-max-rate', '2048', '--test-clock-offset', 600 ]);
my $running;
$deadline = time + 60;
while (time < $deadline && !$running) {
	($running) = grep { $_ ne $killed }
	  map { m{/backup/([^/]+)/walship\.lock$} ? $1 : () } glob("$repo/backup/*/walship.lock");
	sleep 0.05;
}
ok($running, "a second backup runs ($running)");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire', '--expire-grace', '0',
	'--test-clock-offset', 600 ]);
is($rc, 0, 'expire during the backup exits 0') or diag($err);
unlike($out, qr/leftover: removed incomplete backup \Q$running\E/, 'the running backup is not a leftover');
like($out, qr/leftover: removed incomplete backup \Q$killed\E/,
	'the killed one, its heartbeat now stale, is removed');
ok(!-e "$repo/backup/$killed", '... entirely');
my ($lrc, $lout, $lerr) = finish_bg($live);
is($lrc, 0, 'the running backup completed') or diag($lerr);
ok(-e "$repo/backup/$running/walship.manifest", '... with its manifest');
ok(!-e "$repo/backup/$running/walship.lock", '... and released its lock');

# ---- posix temporary files ----
my ($dir) = glob("$repo/wal/0000000100000000");
my %tmp = (
	dead_old   => "$dir/.000000010000000000000099.tmp.4194300.0",
	alive_old  => "$dir/.000000010000000000000098.tmp.$$.0",
	dead_young => "$dir/.000000010000000000000097.tmp.4194301.0");
for my $k (keys %tmp) {
	spurt_file($tmp{$k}, 'x' x 1000);
	chown_pg($tmp{$k});
	utime(time - 7200, time - 7200, $tmp{$k}) if $k =~ /_old$/;
}
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire' ]);
is($rc, 0, 'expire exits 0') or diag($err);
ok(!-e $tmp{dead_old}, 'a dead writer\'s temporary file older than the grace is removed');
ok(-e $tmp{alive_old}, 'one whose writer is alive stays');
ok(-e $tmp{dead_young}, 'one younger than the grace stays');
like($out, qr/leftover: removed 1 temporary file/, 'the report counts it');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/leftovers: 2 temporary file/, 'list still counts the two that stay');

# ---- S3: multipart uploads (moto) ----
SKIP: {
	my $moto = WalshipS3->moto(buckets => ['wal']);
	skip 'moto_server is not installed', 7 unless $moto;
	my $py = `python3 -c 'import boto3' 2>&1`;
	skip "python3 boto3 is missing ($py): cannot start a multipart upload", 7 if $?;
	my %c = $moto->config;
	my $mconf = write_config("$base/moto.conf", repo => 's3://wal/m', %c, async => 'off',
		'retention-full' => 1, 'expire-auto' => 'off');
	# the cluster's archived WAL (never the segment being written) and two backups
	for my $seg (sort map { m{/([0-9A-F]{24})\.done$} ? $1 : () }
		glob($node->pgdata . '/pg_wal/archive_status/*.done'))
	{
		run(cmd => [ $bin, '-c', $mconf, 'push', "pg_wal/$seg" ], cwd => $node->pgdata);
	}
	$node->append_conf("archive_command = '$bin -c $conf push %p && $bin -c $mconf push %p'");
	$node->safe_psql('SELECT pg_reload_conf()');
	my @m = map { take_basebackup($node, [ '-c', $mconf ], label => "moto $_") } 1 .. 2;
	my $script = <<"PY";
import boto3
s3 = boto3.client('s3', endpoint_url='$c{'s3-endpoint'}', aws_access_key_id='$c{'s3-key'}',
    aws_secret_access_key='$c{'s3-key-secret'}', region_name='us-east-1')
u = s3.create_multipart_upload(Bucket='wal', Key='m/backup/$m[1]/data/999999')
print(u['UploadId'])
print(len(s3.list_multipart_uploads(Bucket='wal').get('Uploads', [])))
PY
	my ($prc, $pout, $perr) = run(cmd => [ 'python3', '-c', $script ], as_pg => 0);
	is($prc, 0, 'an unfinished multipart upload started') or diag($perr);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $mconf, 'expire', '--expire-grace', '0' ]);
	is($rc, 0, 'expire on moto exits 0') or diag($err);
	like($out, qr/remove $m[0]/, 'the older backup expired (DeleteObjects)');
	like($out, qr/leftover: removed 1 temporary file\(s\) \/ multipart upload/, 'the upload was aborted');
	($prc, $pout, $perr) = run(cmd => [ 'python3', '-c',
		"import boto3\ns3 = boto3.client('s3', endpoint_url='$c{'s3-endpoint'}', aws_access_key_id='$c{'s3-key'}', aws_secret_access_key='$c{'s3-key-secret'}', region_name='us-east-1')\nprint(len(s3.list_multipart_uploads(Bucket='wal').get('Uploads', [])))\nprint(len([o for o in s3.list_objects_v2(Bucket='wal', Prefix='m/backup/$m[0]/').get('Contents', [])]))" ],
		as_pg => 0);
	is($pout, "0\n0\n", 'no upload left, nothing of the expired backup left') or diag($perr);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $mconf, 'list', '--json' ]);
	is($rc, 0, 'list on moto exits 0') or diag($err);
	is_deeply([ map { $_->{id} } @{ decode_json($out)->{backups} } ], [ $m[1] ], 'the newest stays');
}

done_testing();
