# 645_cipher_repair.t — `walship repo repair` on an encrypted repository (issue 14), posix and
# S3 (s3rver): with walship.repo removed, repair re-derives it from the first page of the
# stored segments, which it decrypts with the repository's keyring (a prefix of the object:
# the first cipher frames, each authenticated), and from the encrypted backup manifests; the
# repaired identity is the original's and archiving resumes. Without the key (cipher none) it
# is refused naming the encryption, with a wrong passphrase it says the key does not match —
# exit 1, nothing written, never "no readable segment".
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipS3;

my $bin     = walship_bin();
my $base    = tmp_base();
my $have_s3 = WalshipS3::have_s3rver();
diag('SKIPPED the S3 half: tests/s3/node_modules is missing') unless $have_s3;
my $s3dir = "$base/s3data";
my ($s3, %s3c);
if ($have_s3)
{
	$s3  = WalshipS3->s3rver(buckets => ['rp'], dir => $s3dir);
	%s3c = $s3->config;
}
my %repo = (posix => make_pg_dir("$base/repo", 0700), ($have_s3 ? (s3 => 's3://rp/e') : ()));
my @c = (cipher => 'aes-256-gcm', %s3c);
my (%conf, %none, %wrong);
for my $k (sort keys %repo)
{
	$conf{$k}  = write_config("$base/$k-ok.conf", repo => $repo{$k}, @c, 'cipher-pass' => 'repair passphrase');
	$none{$k}  = write_config("$base/$k-none.conf", repo => $repo{$k}, %s3c);
	$wrong{$k} = write_config("$base/$k-wrong.conf", repo => $repo{$k}, @c, 'cipher-pass' => 'not it');
}
my $all = write_config("$base/all.conf", repo1 => $repo{posix},
	($have_s3 ? (repo2 => $repo{s3}) : ()), @c, 'cipher-pass' => 'repair passphrase');

# the walship.repo file behind each repository (s3rver: its object and two sidecars)
sub ident_files
{
	my ($k) = @_;
	return ("$repo{posix}/walship.repo") if $k eq 'posix';
	return map { "$s3dir/rp/e/walship.repo._S3rver_$_" } qw(object metadata.json object.md5);
}

my $node = new_cluster('a', archive_command => "$bin -c $all push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT generate_series(1, 5000) AS v');
my $id   = take_basebackup($node, [ '-c', $all ], label => 'rp');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), 'archived into the encrypted repositories');

for my $k (sort keys %repo)
{
	my ($f) = ident_files($k);
	my $orig = -e $f ? slurp_file($f) : '';
	my ($sysid) = $orig =~ /^system-identifier\s*=\s*(\d+)/m;
	ok($sysid, "$k: the identity names system identifier " . ($sysid // '?'));
	unlink ident_files($k);
	ok(!-e $f, "$k: walship.repo removed");

	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $none{$k}, 'repo', 'repair' ]);
	is($rc, 1, "$k: repair without the key (cipher none): exit 1");
	like($err, qr/is encrypted \(aes-256-gcm\) but cipher is none here: the identity is in its first page, which only the repository's key reads/,
		"$k: ... saying the objects are encrypted and the key is needed") or diag($err);
	unlike($err, qr/no readable segment/, "$k: ... never \"no readable segment\"");
	ok(!-e $f, "$k: ... nothing written");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $wrong{$k}, 'repo', 'repair' ]);
	is($rc, 1, "$k: repair with a wrong passphrase: exit 1");
	like($err, qr/the key does not match repository/, "$k: ... the key does not match") or diag($err);
	unlike($err, qr/corrupt|no readable segment/i, "$k: ... never corrupt");
	ok(!-e $f, "$k: ... nothing written");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair', '--dry-run' ]);
	is($rc, 0, "$k: repair --dry-run with the key exits 0") or diag($err);
	ok(!-e $f, "$k: ... and writes nothing");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair' ]);
	is($rc, 0, "$k: repair with the key exits 0") or diag($err);
	like($out, qr/derived from [1-9]\d* segment\(s\) and 1 backup manifest\(s\) that agree/,
		"$k: ... deriving the identity from the decrypted segments and manifest") or diag($out);
	unlike($err, qr/could not be read/, "$k: ... every stored segment decrypted and counted (not only the manifest)")
	  or diag($err);
	my $text = -e $f ? slurp_file($f) : '';
	for my $key ('system-identifier', 'pg-version', 'wal-segment-size')
	{
		my ($want) = $orig =~ /^(\Q$key\E\s*=.*)$/m;
		next unless defined $want;
		like($text, qr/^\Q$want\E$/m, "$k: the repaired walship.repo has $want");
	}
}
$node->safe_psql('INSERT INTO t SELECT generate_series(1, 100)');
my $new = $node->switch_wal;
ok($node->wait_for_archive($new), 'archiving into both resumes after the repairs');

$node->stop;
$s3->stop if $s3;
done_testing();
