# 642_cipher_change.t — `walship cipher change` and `walship cipher rotate` in the middle of a
# live encrypted archive (issue 14): change rewraps the keyring under the new passphrase (from
# the environment: never a flag), after which the old one gets "does not match" and the new one
# reads every object; rotate makes new objects use key id 2 while key id 1's stay readable, and
# reports the objects per key id; the archive goes on through both, and every segment of both
# key ids comes back byte-identical; a point-in-time restore of a backup taken before the
# change replays WAL of every key id. cipher-pass-new as a flag is refused.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use File::Compare qw(compare);
use File::Find;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my %c = (repo => $repo, cipher => 'aes-256-gcm', 'fetch-timeout' => '2');
my $conf = write_config("$base/walship.conf", %c, 'cipher-pass' => 'old passphrase');

my $node = new_cluster('a', archive_command => "$bin -c $conf push %p", wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t (v int)');
my @segs;
sub more
{
	$node->safe_psql('INSERT INTO t SELECT generate_series(1, 5000)');
	push @segs, $node->switch_wal;
	return $node->wait_for_archive($segs[-1]);
}
ok(more() && more(), 'archiving under the old passphrase');
my $bid = take_basebackup($node, [ '-c', $conf ], label => 'before-change');

my ($rc, $out, $err) =
  run(cmd => [ $bin, '-c', $conf, '--cipher-pass-new', 'x', 'cipher', 'change' ]);
is($rc, 2, 'cipher-pass-new as a flag: exit 2');
like($err, qr/cannot be given on the command line/, '... refused') or diag($err);

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'cipher', 'change' ]);
is($rc, 2, 'cipher change without a new secret: exit 2');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'cipher', 'change' ],
	env => { WALSHIP_CIPHER_PASS_NEW => 'new passphrase' });
is($rc, 0, 'cipher change exits 0') or diag($err);
like($out, qr/now wrapped with cipher-pass-new/, '... says so') or diag($out);
unlike($out . $err, qr/new passphrase|old passphrase/, '... without either passphrase');
my @tmp;
find(sub { push @tmp, $_ if /tmp|~/ && -f $_ }, $repo);
is("@tmp", '', '... leaving no temporary file beside the keyring');

my $dest = make_pg_dir("$base/dest");
sub fetch
{
	my ($cf, $s) = @_;
	unlink "$dest/X";
	my ($r, $o, $e) = run(cmd => [ $bin, '-c', $cf, 'fetch', $s, "$dest/X" ]);
	return ($r, $e);
}
($rc, $err) = fetch($conf, $segs[0]);
is($rc, 126, 'the old passphrase no longer opens the keyring');
like($err, qr/the key does not match repository \S+ \(key id 1\)/, '... one line: does not match')
  or diag($err);
my $new = write_config("$base/walship.conf", %c, 'cipher-pass' => 'new passphrase');
($rc, $err) = fetch($new, $segs[0]);
ok($rc == 0 && compare("$dest/X", $node->pgdata . "/pg_wal/$segs[0]") == 0,
	'the new passphrase reads an object written before the change') or diag($err);
ok(more(), 'the archive goes on under the new passphrase (config file updated)');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $new, 'cipher', 'rotate' ]);
is($rc, 0, 'cipher rotate exits 0') or diag($err);
like($out, qr/new objects now use key id 2/, '... key id 2 is current') or diag($out);
like($out, qr/(\d+) object\(s\) under key id 1/, '... and counts the objects of key id 1') or diag($out);
# the key id an object was written under: the payload's prefix ("WSE1", key id LE32)
sub key_id_of
{
	my ($seg) = @_;
	my ($f) = grep { m{/\Q$seg\E$} } map { glob("$_/*") } glob("$repo/wal/*");
	my $b = $f ? slurp_file($f) : '';
	return length($b) > 72 && substr($b, 64, 4) eq 'WSE1' ? unpack('V', substr($b, 68, 4)) : -1;
}
is(key_id_of($segs[0]), 1, 'objects from before the rotation are under key id 1');
# the async agent re-reads the keyring every few seconds: new segments go to key id 2 soon
my $k2 = 0;
for (1 .. 20)
{
	last unless more();
	last if ($k2 = key_id_of($segs[-1]) == 2);
	sleep 1;
}
ok($k2, 'the archive goes on after the rotation, new segments under key id 2');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $new, 'cipher', 'rotate' ]);
like($out, qr/object\(s\) under key id 2/, 'a second rotation counts the objects of key id 2 too')
  or diag($out);
like($out, qr/new objects now use key id 3/, '... and makes key id 3 current');

my $good = 1;
for my $s (@segs)
{
	($rc, $err) = fetch($new, $s);
	$good &&= $rc == 0 && compare("$dest/X", $node->pgdata . "/pg_wal/$s") == 0;
	diag("$s: $rc $err") if $rc;
}
ok($good, 'every segment of both key ids comes back byte-identical (' . scalar(@segs) . ')');

# PITR across both key ids: the backup (key id 1, old passphrase) and WAL of key ids 1 to 3
my $rows = $node->safe_psql('SELECT count(*) FROM t');
my $lsn  = $node->safe_psql('SELECT pg_current_wal_insert_lsn()');
$node->safe_psql('INSERT INTO t SELECT generate_series(1, 7)');
ok(more(), 'WAL past the target archived');
my $r = restored_node('pitr');
($rc, $out, $err) = walship_restore([ '-c', $new ], '--pgdata', $r->pgdata, '--backup', $bid,
	'--target-lsn', $lsn);
is($rc, 0, 'restore of the key id 1 backup with the new passphrase') or diag($err);
configure_restored($r);
ok($r->start(fail_ok => 1), 'PostgreSQL starts on it');
ok(wait_recovery_done($r, 'pause'), 'recovery replays WAL of every key id to the target');
is($r->safe_psql('SELECT count(*) FROM t'), $rows, 'exactly the rows committed before the target');
$r->stop;

$node->stop;
done_testing();
