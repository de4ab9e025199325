# 701_s3_multipart_repush.t — a segment stored as a multipart upload, pushed again, is "already
# archived with the same contents" (exit 0), as a single-PUT object is. Found by the crash
# trials (tests/trials/crash.pl, s3-sync): a push killed after its multipart upload completed
# was retried by PostgreSQL for ever, each retry refused "already exists" by the driver's
# early existence check before the repository layer could compare the objects.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();
my $s3   = WalshipS3->s3rver(buckets => ['wal']);
# uncompressed: a 16 MiB segment + the object header is more than the driver's 16 MiB part
my $conf = write_config("$base/walship.conf", repo => 's3://wal/repush', $s3->config(),
	compress => 'none', async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_segsize => 16, wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 10000) g');
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg, 120), "$seg archived");
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$seg" ], cwd => $node->pgdata);
is($rc, 0, 'the same segment pushed again exits 0') or diag($err);
like($err, qr/\Q$seg\E is already archived in .* with the same contents/, '... saying it is already archived');
unlike($err, qr/already exists/, '... not refused as existing');

# a different file under that name is still refused, naming both checksums
my $other = "$base/$seg";
system('cp', $node->pgdata . "/pg_wal/$seg", $other) == 0 or die;
open my $fh, '+<:raw', $other or die;
seek $fh, 8 << 20, 0;
print $fh 'different';
close $fh;
chown_pg($other);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', $other ]);
is($rc, 1, 'a different segment under the same name exits 1');
like($err, qr/different contents/, '... and says the contents differ') or diag($err);
done_testing();
