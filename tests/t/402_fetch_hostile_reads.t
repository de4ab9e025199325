# 402_fetch_hostile_reads.t — streamed reads have a deadline and a size bound; the object header
# is untrusted. A hostile S3 endpoint (tests/s3/hostile.js) serves: a header claiming 1 TiB and
# then zeros; a header claiming a whole segment and then zeros without end; an lz4 frame of
# empty blocks without end; a body trickling one byte every 0.5 s; a listing whose continuation
# token never changes. In a posix repository: a FIFO planted as an object, and a finite lz4
# frame of empty blocks. Each ends promptly with the right exit code and message, and leaves
# nothing at the destination (no temporary file either).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use Digest::SHA qw(sha256);
use POSIX qw(mkfifo);
use Time::HiRes qw(time);

my $bin  = walship_bin();
my $base = tmp_base();
my $dest = make_pg_dir("$base/dest");
my $seg  = '000000010000000000000003';
my $identity = "format = 1\nsystem-identifier = 7000000000000000001\npg-version = 15\n"
  . "wal-segment-size = 1048576\n";

sub fetch
{
	my ($conf, $name, $file) = @_;
	return timed_fetch($conf, $name, "$dest/" . ($file // 'RECOVERYXLOG'), timeout => 120);
}

# the 64-byte object header (docs/repository-format.md)
sub objhdr
{
	my ($codec, $length) = @_;
	my $h = 'WSHP' . pack('CCCC', 1, $codec, 0, 1) . pack('V', 64) . pack('V', 0)
	  . pack('Q<', $length) . sha256('x') . pack('V', 0);
	return $h . substr(sha256($h), 0, 4);
}

SKIP:
{
	skip('node is not installed', 22) unless system('node -e 0 >/dev/null 2>&1') == 0;
	my $h = WalshipS3->hostile(identity => $identity);
	my $conf = sub {
		my ($mode, %o) = @_;
		return write_config("$base/$mode.conf", repo => "s3://b/$mode", $h->config,
			'fetch-timeout' => $o{ft} // '30', 'io-timeout' => $o{io} // '60');
	};
	my ($rc, $err, $took) = fetch($conf->('huge'), $seg);
	is($rc, 126, 'a header claiming 1 TiB: 126');
	like($err, qr/claims 1099511627776 bytes, more than a WAL segment may hold \(1048576\)/, '... refused unread')
	  or diag($err);
	cmp_ok($took, '<', 20, "... promptly (${took}s)");
	dest_empty($dest, '1 TiB header');

	($rc, $err, $took) = fetch($conf->('huge'), '00000002.history', 'RECOVERYHISTORY');
	is($rc, 126, 'a history file claiming 1 TiB: 126');
	like($err, qr/more than a history file may hold \(1048576\)/, '... refused unread') or diag($err);
	dest_empty($dest, '1 TiB history file');

	($rc, $err, $took) = fetch($conf->('seghuge'), $seg);
	is($rc, 126, 'a segment-sized header, then zeros without end: 126');
	like($err, qr/longer than its header says/, '... says so') or diag($err);
	cmp_ok($took, '<', 20, "... promptly (${took}s)");
	dest_empty($dest, 'endless body');

	($rc, $err, $took) = fetch($conf->('lz4empty'), $seg);
	is($rc, 126, 'an lz4 frame of empty blocks without end: 126');
	like($err, qr/lz4 frame is longer than \d+ bytes.*empty blocks/, '... says so') or diag($err);
	cmp_ok($took, '<', 20, "... promptly (${took}s)");
	dest_empty($dest, 'lz4 empty blocks');

	($rc, $err, $took) = fetch($conf->('trickle', ft => '5'), $seg);
	is($rc, 126, 'a body trickling a byte every 0.5 s: 126');
	cmp_ok($took, '<', 20, "... ended by fetch-timeout (5 s): ${took}s");
	dest_empty($dest, 'trickle');

	# the low-speed limit on its own: io-timeout 6 s makes the low-speed time 2 s
	($rc, $err, $took) = fetch($conf->('trickle', ft => '8', io => '6'), $seg);
	is($rc, 126, 'trickle, low-speed limit: 126');
	like($err, qr/too slow/i, '... the transfer was cut as too slow (not merely by the deadline)') or diag($err);
	cmp_ok($took, '<', 20, "... promptly (${took}s)");
	dest_empty($dest, 'trickle, low speed');

	# a listing that never ends: the continuation token comes back unchanged
	my ($lrc, $lout, $lerr) = run(cmd => [ $bin, '-c', $conf->('list'), 'list' ], timeout => 60);
	isnt($lrc, -1, 'list against a constant continuation token ends (no loop)');
	isnt($lrc, 0, '... with a failure');
	like($lerr, qr/same continuation token twice/, '... that says why') or diag($lerr);
}

# posix: a FIFO in place of an object, and a finite lz4 frame of empty blocks
my $repo = make_pg_dir("$base/repo");
spurt_file("$repo/walship.repo", $identity);
my $dir = make_pg_dir("$repo/wal/0000000100000000");
mkfifo("$dir/$seg", 0600) or die "mkfifo: $!";
my $lz = '000000010000000000000004';
spurt_file("$dir/$lz", objhdr(1, 1 << 20) . "\x04\x22\x4d\x18\x64\x40\xa7"
	  . ("\x01\x00\x00\x00\x00" x ((4 << 20) / 5)));
chown_pg("$repo/walship.repo", "$dir/$seg", "$dir/$lz");
my $pconf = write_config("$base/posix.conf", repo => $repo, 'fetch-timeout' => '5');

my ($rc, $err, $took) = fetch($pconf, $seg);
is($rc, 126, 'a FIFO planted as an object: 126');
like($err, qr/is not a regular file \(a FIFO\)/, '... refused') or diag($err);
cmp_ok($took, '<', 20, "... without blocking on it (${took}s)");
dest_empty($dest, 'FIFO');

($rc, $err, $took) = fetch($pconf, $lz);
is($rc, 126, 'posix: an lz4 frame of empty blocks: 126');
like($err, qr/lz4 frame is longer than \d+ bytes.*empty blocks/, '... says so') or diag($err);
dest_empty($dest, 'posix lz4 empty blocks');

done_testing();
