# 640_cipher_wal.t — client-side encryption end to end for WAL (issue 14): a live cluster
# archives into an encrypted posix repository, an encrypted S3 repository (s3rver) and an
# unencrypted one at once; every segment comes back byte-identical from each; a canary string
# written into a table appears in the unencrypted repository's objects and in none of the
# encrypted ones (nor in S3 metadata, which carries a keyed hash, never the SHA-256). A wrong
# passphrase: push exits 1, fetch 126 (1 in standby mode), one line saying the key does not
# match the repository (key id), never "corrupt", never "absent", nothing written. Turning
# encryption on for a repository holding unencrypted objects, cipher none into an encrypted
# one and cipher-pass as a flag are refused. A flipped byte and an object copied over
# another segment's key are detected on fetch, nothing written.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Compare qw(compare);
use File::Copy qw(copy);
use File::Find;

my $bin    = walship_bin();
my $base   = tmp_base();
my $have_s3 = WalshipS3::have_s3rver();
diag('tests/s3/node_modules is missing: the S3 half is skipped') unless $have_s3;

my $enc   = make_pg_dir("$base/enc");
my $plain = make_pg_dir("$base/plain");
my $pass  = 'correct horse battery staple';
my $s3;
my @s3conf;
if ($have_s3)
{
	$s3 = WalshipS3->s3rver(buckets => ['wal']);
	@s3conf = $s3->config;
}

# one archive_command into all three: the encrypted chains and the plain one side by side
my $conf = write_config("$base/all.conf",
	repo => $enc, ($have_s3 ? ('repo2' => 's3://wal/enc') : ()),
	'repo' . ($have_s3 ? 3 : 2) => $plain, 'repo' . ($have_s3 ? 3 : 2) . '-cipher' => 'none',
	cipher => 'aes-256-gcm', 'cipher-pass' => $pass, 'fetch-timeout' => '2', @s3conf);
my %one = (enc => write_config("$base/enc.conf", repo => $enc, cipher => 'aes-256-gcm',
		'cipher-pass' => $pass, 'fetch-timeout' => '2'),
	plain => write_config("$base/plain.conf", repo => $plain, 'fetch-timeout' => '2'));
$one{s3} = write_config("$base/s3.conf", repo => 's3://wal/enc', cipher => 'aes-256-gcm',
	'cipher-pass' => $pass, 'fetch-timeout' => '2', @s3conf)
  if $have_s3;

my $canary = 'walship-canary-4b1d8e6f0c2a';
my $node = new_cluster('a', archive_command => "$bin -c $conf push %p", wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t (v text)');
my @segs;
for my $i (1 .. 3)
{
	$node->safe_psql("INSERT INTO t SELECT '$canary' || g FROM generate_series(1, 2000) g");
	push @segs, $node->switch_wal;
}
ok($node->wait_for_archive($segs[-1]), 'segments archived into all repositories')
  or diag(slurp_file($node->logfile));
my $pgwal = $node->pgdata . '/pg_wal';

my $dest = make_pg_dir("$base/dest");
sub fetch
{
	my ($c, $name, %o) = @_;
	unlink "$dest/X";
	my ($rc, $out, $err) =
	  run(cmd => [ $bin, '-c', $c, 'fetch', $name, "$dest/X" ], cwd => $o{cwd} // $base);
	return ($rc, $err);
}

for my $r (sort keys %one)
{
	my $good = 1;
	for my $s (@segs)
	{
		my ($rc, $err) = fetch($one{$r}, $s);
		$good &&= $rc == 0 && compare("$dest/X", "$pgwal/$s") == 0;
		diag("$r $s: $rc $err") if $rc;
	}
	ok($good, "$r: every segment comes back byte-identical");
}

sub files_under
{
	my ($dir) = @_;
	my @f;
	find(sub { push @f, $File::Find::name if -f $_ }, $dir);
	return @f;
}

sub holds
{
	my ($dir, $re) = @_;
	for my $f (files_under($dir))
	{
		my $t = slurp_file($f);
		return $f if $t =~ $re;
	}
	return undef;
}
ok(holds($plain, qr/\Q$canary\E/), 'the canary is in the unencrypted repository (control)');
is(holds($enc, qr/\Q$canary\E/), undef, 'the canary is in no object of the encrypted posix repository');
ok(-f "$enc/walship.keyring", 'the encrypted repository has a keyring at its root');
is((stat "$enc/walship.keyring")[2] & 07777, 0600, '... mode 0600');
is(holds($enc, qr/\Q$pass\E/), undef, 'the passphrase is in no file of the repository');
if ($have_s3)
{
	is(holds($s3->{dir} // "$base/s3rver0", qr/\Q$canary\E/), undef,
		'the canary is in no object of the encrypted S3 repository');
	is(holds("$base/s3rver0", qr/walship-sha256/), undef, 'S3 metadata holds no plaintext SHA-256');
	ok(holds("$base/s3rver0", qr/walship-hmac/), '... but the keyed hash');
}

# ---- a wrong passphrase ----
my @objects_before = files_under($enc);
my $wrong = write_config("$base/wrong.conf", repo => $enc, cipher => 'aes-256-gcm',
	'cipher-pass' => 'not the passphrase', 'fetch-timeout' => '2');
my $walsrc = make_pg_dir("$base/walsrc/pg_wal");
$node->safe_psql("INSERT INTO t VALUES ('x')");
my $next = $node->switch_wal;
ok($node->wait_for_archive($next), 'one more segment archived');
copy("$pgwal/$next", "$walsrc/$next") or die;
# the segment is not in a fresh repository copy: push it into the encrypted one as new
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $wrong, 'push', "$walsrc/$next" ]);
is($rc, 1, 'push with a wrong passphrase exits 1');
like($err, qr/the key does not match repository \S+ \(key id 1\)/, '... says the key does not match (key id)')
  or diag($err);
unlike($err, qr/corrupt|absent|not in the archive/i, '... never corrupt, never absent');
is(scalar(() = $err =~ /^ERROR|^walship: /mg) <= 1 ? 1 : 0, 1, '... in one line') or diag($err);
unlike($err, qr/\Q$pass\E|not the passphrase/, '... without the passphrase');
($rc, $err) = fetch($wrong, $segs[0]);
is($rc, 126, 'fetch with a wrong passphrase exits 126');
like($err, qr/the key does not match repository \S+ \(key id 1\)/, '... says the key does not match')
  or diag($err);
unlike($err, qr/corrupt|is not in the archive|absent/i, '... never corrupt, never absent');
ok(!-e "$dest/X", '... nothing written');
my $sb = make_pg_dir("$base/standby");
spurt_file("$sb/standby.signal", '');
($rc, $err) = fetch($wrong, $segs[0], cwd => $sb);
is($rc, 1, 'in standby mode: exit 1');
like($err, qr/does not match/, '... same message') or diag($err);
if ($have_s3)
{
	my $w3 = write_config("$base/wrong-s3.conf", repo => 's3://wal/enc', cipher => 'aes-256-gcm',
		'cipher-pass' => 'not the passphrase', 'fetch-timeout' => '2', @s3conf);
	($rc, $err) = fetch($w3, $segs[0]);
	is($rc, 126, 'S3: fetch with a wrong passphrase exits 126');
	like($err, qr/the key does not match repository/, '... says so') or diag($err);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $w3, 'push', "$walsrc/$next" ]);
	is($rc, 1, 'S3: push with a wrong passphrase exits 1');
	like($err, qr/the key does not match repository/, '... says so') or diag($err);
}
is(join(',', sort(files_under($enc))), join(',', sort(@objects_before, grep { /\Q$next\E/ } files_under($enc))),
	'the wrong key wrote nothing');

# ---- refusals ----
my $turn_on = write_config("$base/turn-on.conf", repo => $plain, cipher => 'aes-256-gcm',
	'cipher-pass' => $pass);
copy("$pgwal/$next", "$walsrc/$next") or die;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $turn_on, 'push', "$walsrc/$next" ]);
isnt($rc, 0, 'turning encryption on for a repository with unencrypted objects: refused');
like($err, qr/holds unencrypted objects .*refused/, '... says so') or diag($err);
like($err, qr/new repository or prefix/, '... and what to do instead');
ok(!-e "$plain/walship.keyring", '... no keyring written');
my $n2;
$node->safe_psql("INSERT INTO t VALUES ('y')");
$n2 = $node->switch_wal;
ok($node->wait_for_archive($n2), 'another segment archived');
copy("$pgwal/$n2", "$walsrc/$n2") or die;
my $enc_copy = make_pg_dir("$base/enc-copy");
# n2 is in $enc already (archive_command): push it into a copy without the segment
system('cp', '-a', "$enc/.", $enc_copy) == 0 or die;
my ($k2) = grep { m{/\Q$n2\E$} } files_under($enc_copy);
unlink $k2 if $k2;
my $off2 = write_config("$base/off2.conf", repo => $enc_copy);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $off2, 'push', "$walsrc/$n2" ]);
isnt($rc, 0, 'cipher none into an encrypted repository: refused');
like($err, qr/is encrypted .*refusing to store an unencrypted object/, '... says so') or diag($err);
ok(!grep({ m{/\Q$n2\E$} } files_under($enc_copy)), '... nothing stored');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $one{enc}, '--cipher-pass', 'x', 'push', "$walsrc/$n2" ]);
is($rc, 2, 'cipher-pass as a flag: exit 2');
like($err, qr/--cipher-pass cannot be given on the command line/, '... refused') or diag($err);
($rc, $err) = fetch($one{plain}, $segs[0]);
is($rc, 0, 'the unencrypted repository reads without a key');
my $readoff = write_config("$base/readoff.conf", repo => $enc, 'fetch-timeout' => '2');
($rc, $err) = fetch($readoff, $segs[0]);
is($rc, 126, 'reading an encrypted object with cipher none: exit 126 (it exists, it cannot be read)');
like($err, qr/is encrypted \(aes-256-gcm\) but cipher is none/, '... says so') or diag($err);

# ---- a key file instead of a passphrase ----
my $kf = "$base/repo.key";
spurt_file($kf, join('', map { chr(($_ * 37 + 11) % 256) } 1 .. 32));
chmod 0600, $kf;
chown_pg($kf);
my $kfrepo = make_pg_dir("$base/kf");
my $kfconf = write_config("$base/kf.conf", repo => $kfrepo, cipher => 'aes-256-gcm',
	'cipher-key-file' => $kf, 'fetch-timeout' => '2');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $kfconf, 'push', "$walsrc/$n2" ]);
is($rc, 0, 'key file: push into a new repository') or diag($err);
like(slurp_file("$kfrepo/walship.keyring"), qr/^kdf = key-file$/m, '... whose keyring is wrapped with the key file');
($rc, $err) = fetch($kfconf, $n2);
ok($rc == 0 && compare("$dest/X", "$pgwal/$n2") == 0, '... and fetch reads it back') or diag($err);
chmod 0644, $kf;
($rc, $err) = fetch($kfconf, $n2);
isnt($rc, 0, 'a key file readable by others: refused');
like($err, qr/readable by others/, '... says so') or diag($err);
ok(!-e "$dest/X", '... nothing written');
chmod 0600, $kf;

# ---- tampering ----
my ($o1) = grep { m{/\Q$segs[0]\E$} } files_under($enc);
my ($o2) = grep { m{/\Q$segs[1]\E$} } files_under($enc);
my $orig = slurp_file($o1);
my $t = $orig;
substr($t, 64 + 48 + 1000, 1) = chr(ord(substr($t, 64 + 48 + 1000, 1)) ^ 1);
chmod 0600, $o1;
spurt_file($o1, $t);
($rc, $err) = fetch($one{enc}, $segs[0]);
is($rc, 126, 'a flipped byte: exit 126');
like($err, qr/frame 0 fails authentication/, '... names the frame') or diag($err);
ok(!-e "$dest/X", '... nothing written');
spurt_file($o1, slurp_file($o2));
($rc, $err) = fetch($one{enc}, $segs[0]);
is($rc, 126, "segment 2's object under segment 1's key: exit 126");
like($err, qr/fails authentication/, '... detected') or diag($err);
ok(!-e "$dest/X", '... nothing written');
spurt_file($o1, $orig);
($rc, $err) = fetch($one{enc}, $segs[0]);
is($rc, 0, 'restored: reads again');

$node->stop;
$s3->stop if $s3;
done_testing();
