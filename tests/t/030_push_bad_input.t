# 030_push_bad_input.t — walship push refuses what is not WAL of this cluster with a clear
# message and exit 1 (never above 125, which would make the archiver FATAL), and writes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Copy qw(copy);
use File::Find qw(find);

my $bin  = walship_bin();
my $base = tmp_base();

# Real WAL from two clusters; archiving off, segments kept in pg_wal.
my $a = new_cluster('a', wal_keep_size => '1GB');
my $b = new_cluster('b', wal_keep_size => '1GB');
$_->start for ($a, $b);
$a->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g');
my $seg_a = $a->switch_wal;
my $seg_a2 = $a->switch_wal;
my $seg_b = $b->switch_wal;
$_->stop for ($a, $b);
my $wal_a = $a->pgdata . '/pg_wal';
my $wal_b = $b->pgdata . '/pg_wal';
note("segments: a=$seg_a,$seg_a2 b=$seg_b");

my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => "off");    # the in-process path; the agent's cases are in 2xx
my $work = make_pg_dir("$base/work");

sub tree
{
	my @f;
	find(sub { push @f, $File::Find::name . (-f $_ ? ':' . (-s $_) : '/') }, $repo);
	return join("\n", sort @f);
}

sub push_file
{
	my ($path, @extra) = @_;
	return run(cmd => [ $bin, '-c', $conf, @extra, 'push', $path ]);
}

# Each bad input: exit 1, the message, and the repository unchanged.
sub refused
{
	my ($path, $re, $what) = @_;
	my $before = tree();
	my ($rc, $out, $err) = push_file($path);
	is($rc, 1, "$what: exit 1");
	like($err, $re, "$what: message") or diag($err);
	like($err, qr/^walship push: ERROR: /m, "$what: one prefixed error line");
	is(tree(), $before, "$what: nothing written");
}

# A good first push creates the repository for cluster a.
my ($rc, $out, $err) = push_file("$wal_a/$seg_a");
is($rc, 0, 'first segment archived') or diag($err);
like($err, qr/archived $seg_a/, 'info line names the segment');
ok(-f "$repo/walship.repo", 'repository identity written');

# not a WAL file name
my $txt = "$work/notes.txt";
WalshipTest::_spurt($txt, "hello\n");
chown_pg($txt);
refused($txt, qr/"notes\.txt" is not a WAL file name/, 'non-WAL name');

# a WAL name on a file that is not WAL
my $fake = "$work/000000010000000000000042";
WalshipTest::_spurt($fake, "x" x (1024 * 1024));
chown_pg($fake);
refused($fake, qr/does not start with a WAL page header.*magic 0x7878/, 'non-WAL content');

# truncated segment
my $trunc = "$work/$seg_a2";
copy("$wal_a/$seg_a2", $trunc) or die;
truncate($trunc, 500000) or die;
chown_pg($trunc);
refused($trunc, qr/segment $seg_a2 is 500000 bytes, expected 1048576 — not a complete WAL segment/,
	'truncated segment');

# wrong magic
my $magic = "$work/m/$seg_a2";
make_pg_dir("$work/m");
copy("$wal_a/$seg_a2", $magic) or die;
open(my $fh, '+<', $magic) or die;
binmode $fh;
print $fh pack('v', 0xD0FF);
close $fh;
chown_pg($magic);
refused($magic, qr/magic 0xD0FF/, 'wrong magic');

# a segment renamed to another segment's name (page address mismatch)
my $renamed = "$work/r/" . substr($seg_a2, 0, 16) . sprintf('%08X', hex(substr($seg_a2, 16)) + 7);
make_pg_dir("$work/r");
copy("$wal_a/$seg_a2", $renamed) or die;
chown_pg($renamed);
refused($renamed, qr/page address .* is not the segment's start/, 'renamed segment');

# a second cluster into the same repository
refused("$wal_b/$seg_b",
	qr/belongs to the cluster with system identifier \d+, not this one \(\d+\)/,
	'another cluster');

# the same name with different contents: both checksums named, stored copy kept
my $other = "$work/o/$seg_a";
make_pg_dir("$work/o");
copy("$wal_a/$seg_a", $other) or die;
open($fh, '+<', $other) or die;
binmode $fh;
seek($fh, 600000, 0);
print $fh "tampered";
close $fh;
chown_pg($other);
refused($other, qr/already in repository .* with different contents \(stored SHA-256 [0-9a-f]{64}.*this file SHA-256 [0-9a-f]{64}/,
	'same name, different contents');

# the identical file again: success, nothing downloaded or rewritten
my $before = tree();
($rc, $out, $err) = push_file("$wal_a/$seg_a");
is($rc, 0, 'identical re-push exits 0');
like($err, qr/already archived .* with the same contents/, 'identical re-push: info line');
is(tree(), $before, 'identical re-push writes nothing');

# history files: a good one is accepted, garbage refused
my $hist = "$work/00000002.history";
WalshipTest::_spurt($hist, "1\t0/3000000\tno recovery target specified\n");
chown_pg($hist);
($rc, $out, $err) = push_file($hist);
is($rc, 0, 'timeline history file archived') or diag($err);
my $badhist = "$work/h/00000003.history";
make_pg_dir("$work/h");
WalshipTest::_spurt($badhist, "this is not a history file\n");
chown_pg($badhist);
refused($badhist, qr/not a timeline history file/, 'garbage history file');
my $badbackup = "$work/h/$seg_a.00000028.backup";
WalshipTest::_spurt($badbackup, "nothing useful\n");
chown_pg($badbackup);
refused($badbackup, qr/not a backup history file/, 'garbage backup history file');

# a missing file
refused("$work/000000010000000000000099", qr/cannot open .*No such file/, 'missing file');

# an unwritable repository: exit 1 (PostgreSQL retries), never more
SKIP:
{
	skip('root bypasses permissions', 3) if !is_root() && $> == 0;    # as root, walship runs as postgres
	my $segdir = "$repo/wal/" . substr($seg_a2, 0, 16);
	chmod 0500, $segdir or die;
	my ($rc2, undef, $err2) = push_file("$wal_a/$seg_a2");
	is($rc2, 1, 'unwritable repository: exit 1');
	like($err2, qr/cannot (create|store).*Permission denied/, 'unwritable repository: message')
	  or diag($err2);
	chmod 0700, $segdir or die;
	($rc2, undef, $err2) = push_file("$wal_a/$seg_a2");
	is($rc2, 0, 'and archives once the repository is writable again') or diag($err2);
}

# usage and configuration errors exit 2
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push' ]);
is($rc, 2, 'push without a path: exit 2');
like($err, qr/usage: walship push WALPATH/, 'usage message');
my $badconf = write_config("$base/bad.conf", repo => $repo, 'archive-timeot' => '5');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $badconf, 'push', "$wal_a/$seg_a" ]);
is($rc, 2, 'unknown config key: exit 2');
like($err, qr/\Q$badconf\E:\d+: unknown key "archive-timeot"/, 'names the file and line');
($rc, $out, $err) = run(cmd => [ $bin, 'push', "$wal_a/$seg_a" ], env => { WALSHIP_CONFIG => undef });
is($rc, 2, 'no repository configured: exit 2');
like($err, qr/no repository configured.*HINT: /, 'says what to set');

done_testing();
