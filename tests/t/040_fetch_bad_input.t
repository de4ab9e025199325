# 040_fetch_bad_input.t — walship fetch: absent is exit 1 and quiet; a corrupt object, a
# mislabelled object or an unreadable repository is 126 (1 in standby mode); nothing ever
# reaches DESTPATH unless it verified; several repositories fall back in order.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);
use File::Copy qw(copy);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $repo2 = make_pg_dir("$base/repo2");
my $conf = write_config("$base/walship.conf", repo => $repo, 'fetch-timeout' => '1');

my $node = new_cluster('a', wal_keep_size => '1GB', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g');
my $s1 = $node->switch_wal;
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
my $s2 = $node->switch_wal;
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
my $s3 = $node->switch_wal;
ok($node->wait_for_archive($s3), 'segments archived');
$node->stop;
my $pg_wal = $node->pgdata . '/pg_wal';
my $dir = make_pg_dir("$base/dest");
my $pgdata_like = make_pg_dir("$base/pgdata");

sub key_of { my $s = shift; return "$repo/wal/" . substr($s, 0, 16) . "/$s" }

sub fetch
{
	my ($name, $dest, %o) = @_;
	return run(cmd => [ $bin, '-c', $o{conf} // $conf, 'fetch', $name, $dest ], cwd => $o{cwd} // $pgdata_like);
}

sub dest_clean
{
	my ($what) = @_;
	opendir my $dh, $dir or die;
	my @left = grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	is("@left", '', "$what: nothing left in the destination directory");
}

my ($rc, $out, $err) = fetch($s1, "$dir/RECOVERYXLOG");
is($rc, 0, 'fetch of an archived segment exits 0') or diag($err);
ok(compare("$dir/RECOVERYXLOG", "$pg_wal/$s1") == 0, 'byte-identical');
unlink "$dir/RECOVERYXLOG";

# absent: exit 1, quiet (nothing above info), fast
($rc, $out, $err) = fetch('000000010000000000000077', "$dir/RECOVERYXLOG");
is($rc, 1, 'absent segment: exit 1');
unlike($err, qr/ERROR|WARNING/, 'absent: no noise above info');
($rc, $out, $err) = fetch('00000005.history', "$dir/RECOVERYHISTORY");
is($rc, 1, 'absent history probe: exit 1');
dest_clean('absent');

# corrupt: one flipped byte in the payload
my $k2 = key_of($s2);
my $saved = "$base/saved";
copy($k2, $saved) or die;
open(my $fh, '+<', $k2) or die;
binmode $fh;
seek($fh, 64 + 1000, 0);
my $c;
read($fh, $c, 1);
seek($fh, 64 + 1000, 0);
print $fh chr(ord($c) ^ 1);
close $fh;
($rc, $out, $err) = fetch($s2, "$dir/RECOVERYXLOG");
is($rc, 126, 'corrupt object: exit 126 (recovery stops rather than ending early)');
like($err, qr/ERROR: .*(fails verification|lz4 frame is damaged)/, 'corrupt object: says so') or diag($err);
unlike($err, qr/not in the archive/, 'corrupt object never reads as absent');
dest_clean('corrupt');

# the same in standby mode: exit 1, logged as an error
WalshipTest::_spurt("$pgdata_like/standby.signal", '');
chown_pg("$pgdata_like/standby.signal");
($rc, $out, $err) = fetch($s2, "$dir/RECOVERYXLOG");
is($rc, 1, 'corrupt object in standby mode: exit 1 (the standby retries)');
like($err, qr/ERROR: /, 'standby: logged as an error');
unlink "$pgdata_like/standby.signal";
dest_clean('standby');

# fallback: a second repository holding a good copy
my $conf2 = write_config("$base/two.conf", repo1 => $repo, repo2 => $repo2, 'fetch-timeout' => '1');
copy("$repo/walship.repo", "$repo2/walship.repo") or die; # a repository, not an empty dir
chown_pg("$repo2/walship.repo");
make_pg_dir("$repo2/wal");
make_pg_dir("$repo2/wal/" . substr($s2, 0, 16));
copy($saved, "$repo2/wal/" . substr($s2, 0, 16) . "/$s2") or die;
chown_pg("$repo2/wal/" . substr($s2, 0, 16) . "/$s2");
($rc, $out, $err) = fetch($s2, "$dir/RECOVERYXLOG", conf => $conf2);
is($rc, 0, 'corrupt in repo1, good in repo2: exit 0') or diag($err);
ok(compare("$dir/RECOVERYXLOG", "$pg_wal/$s2") == 0, 'fallback copy is byte-identical');
like($err, qr/restored $s2 from \Q$repo2\E/, 'says which repository served it');
unlink "$dir/RECOVERYXLOG";
($rc, $out, $err) = fetch('000000010000000000000077', "$dir/RECOVERYXLOG", conf => $conf2);
is($rc, 1, 'absent from both repositories: exit 1');
copy($saved, $k2) or die;

# a good object stored under another segment's name
my $k3 = key_of($s3);
copy(key_of($s1), $k3) or die;
($rc, $out, $err) = fetch($s3, "$dir/RECOVERYXLOG");
is($rc, 126, 'object of another segment: exit 126');
like($err, qr/not the segment it is stored as/, 'mislabelled object: says so') or diag($err);
dest_clean('mislabelled');

# truncated object
copy(key_of($s1), "$base/s1") or die;
truncate(key_of($s1), (-s key_of($s1)) - 50) or die;
($rc, $out, $err) = fetch($s1, "$dir/RECOVERYXLOG");
is($rc, 126, 'truncated object: exit 126');
like($err, qr/truncated|fails verification|holds/, 'truncated object: says so') or diag($err);
dest_clean('truncated');
copy("$base/s1", key_of($s1)) or die;

# an unreadable repository (as postgres; root would read through the permissions)
SKIP:
{
	skip('needs an unprivileged user', 3) unless is_root() || $> != 0;
	chmod 0000, "$repo/wal" or die;
	($rc, $out, $err) = fetch($s1, "$dir/RECOVERYXLOG");
	is($rc, 126, 'unreadable repository: exit 126, not "absent"');
	like($err, qr/Permission denied/, 'unreadable repository: the reason') or diag($err);
	chmod 0700, "$repo/wal" or die;
	dest_clean('unreadable');
}

# usage
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $s1 ]);
is($rc, 2, 'fetch with one argument: exit 2');
($rc, $out, $err) = fetch('RECOVERYXLOG', "$dir/x");
is($rc, 2, 'fetch of a name that is not WAL: exit 2');
like($err, qr/not a WAL file name/, 'says so');

done_testing();
