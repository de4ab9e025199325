# 710_restore_fallback.t — restore reads each object of the backup from the first repository
# holding a valid copy (issue 19). Two repositories: repo1 posix, repo2 S3 (s3rver behind the
# fault proxy, which answers some requests with 503). With a byte flipped in one data object and
# in the manifest of repo1, restore succeeds, warning about both (repository and key), reading
# them from repo2, and the restored cluster holds exactly the rows. With that object damaged in
# both repositories, restore fails naming each repository tried, and global/pg_control is never
# written. A repository holding a different backup under the same id (another manifest
# SHA-256) never serves an object: with its manifest first to verify, the restore is that
# backup, from that repository alone, and the others are warned about and left unread.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

use File::Copy qw(copy);
use File::Find qw(find);
use File::Path qw(make_path);
use WalshipBackup;

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $posix = make_pg_dir("$base/posix", 0700);
my $s3    = WalshipS3->s3rver(buckets => ['fb'], dir => "$base/s3data");
my $proxy = WalshipS3->proxy(upstream => $s3, rate => 0.05, faults => '503', seed => 7);
my $conf  = write_config("$base/walship.conf", repo1 => $posix, repo2 => 's3://fb/r',
	$proxy->config);
my @g = ('-c', $conf);

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int PRIMARY KEY, pad text)');
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g");
my $id = take_basebackup($node, \@g, label => 'fb');
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(20001, 20100) g");
my $want = rows_summary($node);
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;

# flip($path): one byte of the payload (after the 64-byte header) inverted.
sub flip
{
	my ($path) = @_;
	my $size = -s $path or die "$path: empty";
	open my $fh, '+<', $path or die "$path: $!";
	binmode $fh;
	my $at = 64 + int(($size - 64) / 2);
	seek $fh, $at, 0;
	read $fh, my $c, 1;
	seek $fh, $at, 0;
	print $fh chr(ord($c) ^ 0xff);
	close $fh or die;
	return;
}

# The s3rver file holding key (it stores an object as a file under its directory).
sub s3_file
{
	my ($key) = @_;
	my $found;
	find(sub { $found = $File::Find::name if $File::Find::name =~ m{/fb/r/\Q$key\E\._S3rver_object$} },
		"$base/s3data");
	return $found;
}

# the largest data object of the backup: a file of t is in it
my $dir = "$posix/backup/$id";
my ($obj) = sort { -s "$dir/data/$b" <=> -s "$dir/data/$a" }
  grep { /^\d+$/ } dir_entries("$dir/data");
ok(defined $obj, "backup $id has data objects") or BAIL_OUT('no data object');
my $okey = "backup/$id/data/$obj";
my $mkey = "backup/$id/walship.manifest";
ok(defined s3_file($okey) && defined s3_file($mkey), 'the S3 copies are found in s3rver\'s directory');
flip("$posix/$okey");
flip("$posix/$mkey");

# ---- one copy damaged: read from repo2, warned, rows exact
my ($drc, $dout, $derr) = walship_restore(\@g, '--pgdata', "$base/dry", '--dry-run');
like($dout, qr/^  repository   s3:\/\/fb\/r\S* \(the manifest\); each object from the first valid copy in \Q$posix\E, s3:\/\/fb\/r/m,
	'dry run: the manifest from repo2, objects from repo1 then repo2') or diag("$dout$derr");
my $r = restored_node('r1');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata);
is($rc, 0, "repo1 damaged: walship restore exits 0") or diag($err);

like($err, qr/WARNING: \Q$posix\E: \Q$mkey\E: /, 'warns naming repo1 and the manifest key')
  or diag($err);
like($err, qr/WARNING: \Q$posix\E: \Q$okey\E: .*reading it from the next repository/,
	'warns naming repo1 and the object key') or diag($err);
like($err, qr/\Q$okey\E read from s3:/, 'says the object came from S3') or diag($err);
configure_restored($r);
ok($r->start(fail_ok => 1), 'the restored cluster starts');
ok(wait_recovery_done($r), 'recovery ends');
is(rows_summary($r), $want, "rows exact ($want)");
$r->stop;

# ---- both copies of the object damaged: fails before pg_control, naming each repository
flip(s3_file($okey));
my $r2 = restored_node('r2');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r2->pgdata);
is($rc, 1, 'both damaged: walship restore exits 1');
like($err, qr/ERROR: .*no repository holds a valid copy of \Q$okey\E \(tried \Q$posix\E, s3:\/\/fb\/r/,
	'the error names the object and each repository tried') or diag($err);
like($err, qr/WARNING: s3:\/\/fb\/r[^:]*: \Q$okey\E: /, 'the S3 copy is warned about too')
  or diag($err);
ok(!-e $r2->pgdata . '/global/pg_control', 'global/pg_control is not written');

# ---- an unreadable object (no permission) in repo1: a WARNING, read from S3
flip(s3_file($okey));    # the S3 copy intact again
my ($obj2) = grep { $_ ne $obj } sort { -s "$dir/data/$b" <=> -s "$dir/data/$a" }
  grep { /^\d+$/ } dir_entries("$dir/data");
chmod 0000, "$dir/data/$obj2" or die;
my $r4 = restored_node('r4');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r4->pgdata);
is($rc, 0, 'an unreadable object in repo1: restore exits 0') or diag($err);
like($err, qr/WARNING: \Q$posix\E: backup\/\Q$id\E\/data\/\Q$obj2\E: .*Permission denied.*reading it from the next repository/,
	'... warning naming repo1, the key and why') or diag($err);
ok(-e $r4->pgdata . '/global/pg_control', '... and the restore completed');
chmod 0600, "$dir/data/$obj2";

# ---- a different backup under the same id: never mixed
my $other = make_pg_dir("$base/other", 0700);
copy("$posix/walship.repo", "$other/walship.repo") or die;
make_path("$other/backup/$id/data");
for my $name (dir_entries("$dir/data"))
{
	copy(s3_file("backup/$id/data/$name"), "$other/backup/$id/data/$name") or die;
}
for my $name (grep { $_ ne 'walship.manifest' && $_ ne 'data' } dir_entries($dir))
{
	copy(s3_file("backup/$id/$name"), "$other/backup/$id/$name") or die "$name: $!";
}
my $mtext = read_object(s3_file($mkey));
$mtext =~ s/^label = .*$/label = another/m or die 'no label line in the manifest';
my $kind = ord(substr(WalshipTest::slurp_file(s3_file($mkey)), 7, 1));
forge_object("$other/$mkey", $mtext, $kind);
WalshipTest::chown_pg($_) for ("$other/backup", "$other/backup/$id", "$other/backup/$id/data");
my $conf3 = write_config("$base/three.conf", repo1 => $posix, repo2 => $other,
	repo3 => 's3://fb/r', $proxy->config);
my $r3 = restored_node('r3');
($rc, $out, $err) = walship_restore([ '-c', $conf3 ], '--pgdata', $r3->pgdata);
is($rc, 0, 'another backup under the id, first valid: restore exits 0') or diag($err);
like($err, qr/WARNING: \Q$posix\E holds a different backup \Q$id\E .*not read from there/,
	'repo1 (same id, the other manifest) is not read from') or diag($err);
like($err, qr/WARNING: s3:\/\/fb\/r\S* holds a different backup \Q$id\E .*not read from there/,
	'nor the S3 repository') or diag($err);
unlike($err, qr/\Q$okey\E: .*reading it from the next repository/,
	'the damaged object of repo1 is never tried') or diag($err);
configure_restored($r3);
ok($r3->start(fail_ok => 1) && wait_recovery_done($r3), 'the restored cluster recovers');
is(rows_summary($r3), $want, "rows exact ($want)");
$r3->stop;

done_testing();
