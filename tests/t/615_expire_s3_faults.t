# 615_expire_s3_faults.t — walship expire on S3 through the fault proxy (503, 500, and replies
# cut after the server acted: a DeleteObjects that is retried after it happened), while the
# cluster keeps archiving into the same bucket. expire either finishes (the driver's retries)
# or fails saying what it removed; a second run without faults finishes; the repository then
# holds exactly the kept backup and the WAL from its start on, with no gap, and every segment
# archived meanwhile is there.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipS3;

use JSON::PP qw(decode_json);

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $s3    = WalshipS3->s3rver(buckets => ['wal']);
my $proxy = WalshipS3->proxy(upstream => $s3, rate => 0.3, faults => '503,500,reset', seed => 7);
my $conf  = write_config("$base/direct.conf", repo => 's3://wal/f', $s3->config, async => 'off',
	'expire-auto' => 'off');
my $fconf = write_config("$base/faulty.conf", repo => 's3://wal/f', $proxy->config,
	'retention-full' => 1, 'io-timeout' => '20s', async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int)');
my @ids;
for my $d (30, 20, 10, 0) {
	$node->safe_psql("INSERT INTO t VALUES (1); SELECT pg_switch_wal()") for 1 .. 8;
	push @ids, take_basebackup($node, [ '-c', $conf, '--test-clock-offset', -$d * 86400 ],
		label => "ago $d");
}

# archiving goes on while expire runs
my $psql = run_bg(cmd => [ pg_bin('psql'), '-X', '-q', '-h', $node->host, '-p', $node->port,
	'-d', 'postgres', '-c',
	"DO \$\$ BEGIN FOR i IN 1..40 LOOP INSERT INTO t VALUES (i); PERFORM pg_switch_wal(); "
	  . "PERFORM pg_sleep(0.05); END LOOP; END \$\$" ]);
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $fconf, 'expire' ]);
ok($rc == 0 || $rc == 1, "expire through the faults exits 0 or 1 ($rc)") or diag($err);
like($err, qr/what was removed before the failure is listed above/, 'a failure says what it removed')
  if $rc == 1;
my $faults = WalshipS3::fault_counts($proxy);
ok(($faults->{503} // 0) + ($faults->{500} // 0) + ($faults->{reset} // 0) > 0,
	'faults were injected (' . join(', ', map { "$_ $faults->{$_}" } sort keys %$faults) . ')');
my ($prc, $pout, $perr) = finish_bg($psql);
is($prc, 0, 'the inserts and WAL switches ran meanwhile') or diag($perr);
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archiving kept working: $last archived");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'no archive_command failed');

my $clean = write_config("$base/clean.conf", repo => 's3://wal/f', $s3->config,
	'retention-full' => 1, async => 'off');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $clean, 'expire' ]);
is($rc, 0, 'a second expire without faults exits 0') or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $clean, 'list', '--json' ]);
is($rc, 0, 'list exits 0') or diag($err);
my $j = decode_json($out);
is_deeply([ map { $_->{id} } @{ $j->{backups} } ], [ $ids[-1] ], 'only the newest backup is left');
my ($tl) = @{ $j->{wal}{timelines} };
is($tl->{first}, $j->{backups}[0]{start_wal}, 'the WAL starts at its start segment');
is_deeply($tl->{gaps}, [], 'no gap from there to the end');
ok($tl->{last} ge $last, "every segment archived during expire is there (last $tl->{last})");

done_testing();
