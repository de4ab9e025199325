# 645_cipher_repair.t — `walship repo repair` on an encrypted repository (issue 14): with
# walship.repo removed, repair re-derives it from the first page of the stored segments, which
# it decrypts with the repository's keyring (a prefix of the object: the first cipher frames,
# each authenticated) and from the encrypted backup manifests; the repaired identity is the
# original's and archiving resumes. Without the key (cipher none) it is refused naming the
# encryption, with a wrong passphrase it says the key does not match — exit 1, nothing
# written, never "no readable segment".
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my @c    = (repo => $repo, cipher => 'aes-256-gcm');
my $conf = write_config("$base/ok.conf", @c, 'cipher-pass' => 'repair passphrase');
my $none = write_config("$base/none.conf", repo => $repo);
my $wrong = write_config("$base/wrong.conf", @c, 'cipher-pass' => 'not the passphrase');

my $node = new_cluster('a', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT generate_series(1, 5000) AS v');
my $id   = take_basebackup($node, [ '-c', $conf ], label => 'rp');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), 'archived into the encrypted repository');
my $orig = slurp_file("$repo/walship.repo");
my ($sysid) = $orig =~ /^system-identifier\s*=\s*(\d+)/m;
ok($sysid, "the identity names system identifier $sysid");
unlink "$repo/walship.repo" or die "unlink: $!";

my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $none, 'repo', 'repair' ]);
is($rc, 1, 'repair without the key (cipher none): exit 1');
like($err, qr/is encrypted \(aes-256-gcm\) but cipher is none here: the identity is in its first page, which only the repository's key reads/,
	'... saying the objects are encrypted and the key is needed') or diag($err);
unlike($err, qr/no readable segment/, '... never "no readable segment"');
ok(!-e "$repo/walship.repo", '... nothing written');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $wrong, 'repo', 'repair' ]);
is($rc, 1, 'repair with a wrong passphrase: exit 1');
like($err, qr/the key does not match repository/, '... the key does not match') or diag($err);
unlike($err, qr/corrupt|no readable segment/i, '... never corrupt');
ok(!-e "$repo/walship.repo", '... nothing written');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'repo', 'repair', '--dry-run' ]);
is($rc, 0, 'repair --dry-run with the key exits 0') or diag($err);
ok(!-e "$repo/walship.repo", '... and writes nothing');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'repo', 'repair' ]);
is($rc, 0, 'repair with the key exits 0') or diag($err);
like($out, qr/derived from [1-9]\d* segment\(s\) and 1 backup manifest\(s\) that agree/,
	'... deriving the identity from the decrypted segments and manifest') or diag($out);
unlike($err, qr/could not be read/, '... every stored segment decrypted and counted (not only the manifest)')
  or diag($err);
my $text = -e "$repo/walship.repo" ? slurp_file("$repo/walship.repo") : '';
for my $k ('system-identifier', 'pg-version', 'wal-segment-size')
{
	my ($want) = $orig =~ /^(\Q$k\E\s*=.*)$/m;
	next unless defined $want;
	like($text, qr/^\Q$want\E$/m, "the repaired walship.repo has $want");
}
$node->safe_psql('INSERT INTO t SELECT generate_series(1, 100)');
my $new = $node->switch_wal;
ok($node->wait_for_archive($new), 'archiving resumes after the repair');

$node->stop;
done_testing();
