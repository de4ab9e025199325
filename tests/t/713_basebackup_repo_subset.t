# 713_basebackup_repo_subset.t — --repo N picks configured repositories by number instead of
# naming new ones (issue 19): `walship basebackup --repo 2` backs up into repo2 alone, with
# repo2's own settings (here an S3 repository behind the fault proxy). restore, with both
# repositories configured, finds that backup although repo1 lacks it; walship copy --from 2
# --to 1 then fills repo1, which lists it. A number beyond the configured repositories, one
# given twice, or numbers mixed with URLs: exit 2, nothing written.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $posix = make_pg_dir("$base/posix", 0700);
my $s3    = WalshipS3->s3rver(buckets => ['sub']);
my $proxy = WalshipS3->proxy(upstream => $s3, rate => 0.05, faults => '503', seed => 5);
my %s3c   = $proxy->config;
# repo2's endpoint only as a per-repository setting: picked by number, it must still apply
my $ep = delete $s3c{'s3-endpoint'};
my $conf = write_config("$base/walship.conf", repo1 => $posix, repo2 => 's3://sub/r', %s3c,
	'repo2-s3-endpoint' => $ep);
my @g = ('-c', $conf);

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int PRIMARY KEY)');
$node->safe_psql('INSERT INTO t SELECT generate_series(1, 1000)');

for my $bad ([ [ '--repo', '3' ], qr/--repo 3: 2 repositories are configured/ ],
	[ [ '--repo', '2', '--repo', '2' ], qr/--repo 2 is given twice/ ],
	[ [ '--repo', '1', '--repo', "$base/new" ], qr/either repository numbers .* or URLs/ ])
{
	my ($rc, $out, $err) = run(cmd => [ $bin, @g, 'basebackup', '--pgconn',
		'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres', @{ $bad->[0] } ]);
	is($rc, 2, "basebackup @{ $bad->[0] }: exit 2");
	like($err, $bad->[1], '... with a clear error') or diag($err);
}
ok(!-e "$posix/backup" && !-e "$base/new", '... nothing written');

my $id = take_basebackup($node, \@g, label => 'repo2 only', extra => [ '--repo', '2' ]);
ok(!-e "$posix/backup/$id", "backup $id is not in repo1");
my $in2 = list_backups([ '--repo', '2', @g ]);
is_deeply([ map { $_->{id} } @$in2 ], [$id], 'list --repo 2 shows it in repo2');
$node->safe_psql('INSERT INTO t SELECT generate_series(1001, 1100)');
my $want = rows_summary($node);
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;

my ($drc, $dout, $derr) = walship_restore(\@g, '--pgdata', "$base/dry", '--dry-run');
like($dout, qr/^  repository   s3:\/\/sub\/r\n/m, 'dry run: the plan names repo2, the one holding the backup') or diag("$dout$derr");
my $r = restored_node('r');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata);
is($rc, 0, 'restore with both repositories finds the backup that only repo2 holds') or diag($err);
configure_restored($r);
ok($r->start(fail_ok => 1) && wait_recovery_done($r), 'the restored cluster recovers');
is(rows_summary($r), $want, "rows exact ($want)");
$r->stop;

($rc, $out, $err) = run(cmd => [ $bin, @g, 'copy', '--from', '2', '--to', '1', '--backup', $id ]);
is($rc, 0, 'copy --from 2 --to 1 --backup fills repo1') or diag($err);
my $in1 = list_backups([ '--repo', '1', @g ]);
is_deeply([ map { $_->{id} } @$in1 ], [$id], 'repo1 now lists it');

done_testing();
