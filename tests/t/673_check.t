# 673_check.t — walship check against a real cluster: all OK on a healthy one (text, --json,
# --nagios); CRITICAL and exit 1 (--nagios 2) on a broken archive_command (the switched segment
# never arrives, pg_stat_archiver shows the failure), on a stale backup (check-backup-max-age),
# on an unreachable repository; a server that cannot be reached; bad usage exits 2 (3 with
# --nagios). check writes its result into metrics-file.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use JSON::PP qw(decode_json);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $mfile = "$base/walship.prom";
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off', 'check-timeout' => '20s',
	'metrics-file' => $mfile);
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
my $id = take_basebackup($node, ['-c', $conf], label => 'c');
my $pgconn = $node->connstr;

sub check
{
	my ($c, @args) = @_;
	return run(cmd => [ $bin, '-c', $c, 'check', '--pgconn', $pgconn, @args ]);
}

# ---- healthy
my ($rc, $out, $err) = check($conf);
is($rc, 0, 'a healthy cluster: check exits 0') or diag("$out\n$err");
for my $name (qw(connection archive_mode archive_command identity archiver switch archive_lag backup_age))
{
	like($out, qr/^OK\s+$name: /m, "... $name OK");
}
like($out, qr/^OK\s+switch: segment [0-9A-F]{24} \(pg_switch_wal\) in 1 repository\(ies\)/m, '... the switched segment arrived');
unlike($out, qr/CRITICAL|WARNING/, '... nothing else');
($rc, $out, $err) = check($conf, '--json');
is($rc, 0, 'check --json exits 0');
my $j = eval { decode_json($out) } // {};
ok($j->{ok}, '... "ok": true');
is($j->{status}, 'OK', '... "status": "OK"');
($rc, $out, $err) = check($conf, '--nagios');
is($rc, 0, 'check --nagios exits 0');
like($out, qr/^WALSHIP OK - \d+ check\(s\), 0 critical, 0 warning$/m, '... with the plugin summary line');
like(slurp_file($mfile), qr/^walship_job_last_success\{job="check"\} 1$/m, 'check wrote its result into metrics-file');

# ---- a backup much larger than the ones before it: WARNING (check-backup-size-change)
{
	$node->safe_psql('CREATE TABLE big AS SELECT g, repeat(md5(g::text), 4) AS pad FROM generate_series(1, 100000) g');
	my $id2 = take_basebackup($node, ['-c', $conf], label => 'bigger');
	my $c = write_config("$base/size.conf", repo => $repo, 'check-backup-size-change' => '10%');
	($rc, $out, $err) = check($c);
	is($rc, 1, 'a backup size anomaly: check exits 1') or diag($out);
	like($out, qr/^WARNING\s+backup_size: newest backup \Q$id2\E is [\d.]+ MiB, \+\d+% against the median of the 1 before it .*limit 10%\)/m,
		'... backup_size WARNING with the figures');
	($rc, $out, $err) = check($c, '--nagios');
	is($rc, 1, '... --nagios exits 1 (WARNING)');
	($rc, $out, $err) = check($conf);
	unlike($out, qr/backup_size/, '... not checked by default (off)');
	($rc, $out, $err) = check(write_config("$base/sizebad.conf", repo => $repo, 'check-backup-size-change' => 'lots'));
	is($rc, 2, 'check-backup-size-change = lots exits 2');
	like($err, qr/check-backup-size-change = "lots" .* is not a percentage/, '... naming it');
	$id = $id2;
}

# ---- a stale backup
{
	my $c = write_config("$base/stale.conf", repo => $repo, 'check-backup-max-age' => '1s');
	sleep 2;
	($rc, $out, $err) = check($c);
	is($rc, 1, 'a stale backup: check exits 1');
	like($out, qr/^CRITICAL backup_age: newest backup \Q$id\E is \d+ s old \(limit 1 s\)/m, '... backup_age CRITICAL, with the figure');
	($rc, $out, $err) = check($c, '--nagios');
	is($rc, 2, '... --nagios exits 2');
}

# ---- an unreachable repository
{
	my $gone = "$base/not-mounted";
	my $c = write_config("$base/gone.conf", repo1 => $repo, repo2 => $gone, 'check-timeout' => '2s');
	($rc, $out, $err) = check($c);
	is($rc, 1, 'an unreachable repository: check exits 1');
	like($out, qr/^CRITICAL identity: \Q$gone\E: /m, '... identity CRITICAL, naming it');
	like($out, qr/^CRITICAL switch: segment \S+ \(pg_switch_wal\) is not in \Q$gone\E after 2 s/m,
		'... and the switched segment is not there');
	ok(!-e $gone, '... nothing created there');
}

# ---- a broken archive_command
{
	$node->safe_psql("ALTER SYSTEM SET archive_command = '/bin/false'");
	$node->safe_psql('SELECT pg_reload_conf()');
	sleep 1;
	my $c = write_config("$base/broken.conf", repo => $repo, 'check-timeout' => '3s');
	($rc, $out, $err) = check($c);
	is($rc, 1, 'a broken archive_command: check exits 1') or diag($out);
	like($out, qr/^CRITICAL archive_command: archive_command = '\/bin\/false' does not run walship push/m,
		'... archive_command CRITICAL');
	like($out, qr/^CRITICAL switch: segment \S+ \(pg_switch_wal\) is not in \Q$repo\E after 3 s/m,
		'... the switched segment never arrives');
	like($out, qr/^CRITICAL archiver: pg_stat_archiver: \d+ failure\(s\), the last .* newer than the last success/m,
		'... pg_stat_archiver shows the failure');
	($rc, $out, $err) = check($c, '--nagios');
	is($rc, 2, '... --nagios exits 2');
	like($out, qr/^WALSHIP CRITICAL - /, '... CRITICAL in the summary line');
	$node->safe_psql('ALTER SYSTEM RESET archive_command');
	$node->safe_psql('SELECT pg_reload_conf()');
}

# ---- no server, bad usage
{
	my $c = write_config("$base/nos.conf", repo => $repo);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'check', '--pgconn', "host=$base port=1" ]);
	is($rc, 1, 'a server that cannot be reached: check exits 1');
	like($out, qr/^CRITICAL connection: cannot connect to PostgreSQL/m, '... connection CRITICAL');
	($rc, $out, $err) = check($conf, 'extra');
	is($rc, 2, 'check with an argument exits 2');
	like($err, qr/usage: walship check/, '... with the usage');
	($rc, $out, $err) = check($conf, 'extra', '--nagios');
	is($rc, 3, '... 3 (UNKNOWN) with --nagios');
	($rc, $out, $err) = check($conf, '--check-timeout', 'soon');
	is($rc, 2, 'a malformed check-timeout exits 2');
	like($err, qr/check-timeout/, '... naming it');
}

$node->stop;
done_testing();
