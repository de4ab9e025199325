# 320_restore_delta.t — walship restore --delta and --tablespace-map. A cluster with a tablespace
# is backed up; one full restore (A) and a second (B) each map the tablespace to a directory of
# their own. B is then damaged: a file's bytes changed, one grown, one's mode changed, files
# removed (in PGDATA and in the tablespace), files and a directory added, junk in pg_wal, the
# postmaster.pid of a crashed server, and a database directory (base/1) replaced by a symlink
# to a copy elsewhere with one file of it damaged. A delta restore of B must bring it back
# identical to A — same paths, types, sizes and SHA-256, then modes; postgresql.auto.conf and
# recovery.signal included (same options) — without writing through the symlink, keep an
# untouched file (same inode), and B must start, recover and open every database. A restore
# without --tablespace-map while the original location still holds the primary's tablespace
# is refused and touches nothing there.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use POSIX ();

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = archiving_cluster('primary', $conf);
$node->start;
my $ts_orig = make_pg_dir("$base/ts_orig", 0700);
$node->safe_psql("CREATE TABLESPACE ts1 LOCATION '$ts_orig'");
$node->safe_psql(
	"CREATE TABLE t (n int PRIMARY KEY, pad text);
	 INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	 CREATE TABLE in_ts (n int, pad text) TABLESPACE ts1;
	 INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 3000) g;");
my $oid = $node->safe_psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'");
my $t_path = $node->safe_psql("SELECT pg_relation_filepath('t')");
my $ts_rel = $node->safe_psql("SELECT pg_relation_filepath('in_ts')");    # pg_tblspc/OID/PG_15_x/5/N
my $b1 = take_basebackup($node, \@g, label => 'with a tablespace');
$node->safe_psql('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(5001, 6000) g');
$node->safe_psql('INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(3001, 4000) g');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;
my $orig_snap = tree_snapshot($ts_orig);

# ---- without --tablespace-map, the original location is the primary's, not empty: refused
my $r0 = restored_node('r0');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r0->pgdata);
is($rc, 1, "restore onto the original tablespace location, in use: exit 1") or diag($err);
like($err, qr/^walship restore: .*\Q$ts_orig\E/m, '... naming the location') or diag($err);
like($err, qr/not empty/, '... as not empty');
is_deeply([ diff_snapshots($orig_snap, tree_snapshot($ts_orig)) ], [],
	'... and the primary\'s tablespace is untouched');

# ---- full restores A and B, each with its own tablespace directory
my %ts = (a => "$base/ts_a", b => "$base/ts_b");
my %node;
for my $k (qw(a b))
{
	$node{$k} = restored_node("r$k");
	($rc, $out, $err) = walship_restore(\@g, '--pgdata', $node{$k}->pgdata,
		'--tablespace-map', "$oid=$ts{$k}");
	is($rc, 0, "full restore $k with --tablespace-map $oid=$ts{$k} exits 0") or diag($err);
	is(readlink($node{$k}->pgdata . "/pg_tblspc/$oid"), $ts{$k},
		"$k: pg_tblspc/$oid points to the mapped directory");
	my ($ver) = grep { /^PG_15_/ } dir_entries($ts{$k});
	ok($ver && -f "$ts{$k}/" . ($ts_rel =~ s{^pg_tblspc/\d+/}{}r),
		"$k: the tablespace's files are in the mapped directory");
}
is_deeply([ diff_snapshots($orig_snap, tree_snapshot($ts_orig)) ], [],
	'the original tablespace location is untouched by the mapped restores');

# every difference between A and B, with the pg_tblspc symlink compared separately
my $skip = qr{^pg_tblspc/\Q$oid\E$};
my ($pa, $pb) = ($node{a}->pgdata, $node{b}->pgdata);
is_deeply([ diff_snapshots(tree_snapshot($pa, skip => $skip), tree_snapshot($pb, skip => $skip)) ],
	[], 'two full restores are identical') or diag('restore is not deterministic?');

# ---- damage B
my $kept = "$pb/global/1262";    # pg_database: not touched below
my $kept_ino = (stat $kept)[1];
ok($kept_ino, 'an untouched file to watch: global/1262');
{
	open my $fh, '+<:raw', "$pb/$t_path" or die "$pb/$t_path: $!";
	seek $fh, 8192 + 100, 0;
	print $fh 'damage!';
	close $fh;
}
open my $ap, '>>', "$pb/PG_VERSION" or die;
print $ap "grown\n";
close $ap;
chmod 0644, "$pb/pg_hba.conf";
unlink "$pb/base/5/pg_filenode.map" or die "unlink: $!";
unlink "$pb/global/pg_control";
my $ts_file = "$ts{b}/" . ($ts_rel =~ s{^pg_tblspc/\d+/}{}r);
unlink $ts_file or die "unlink $ts_file: $!";
(my $ts_dbdir = $ts_file) =~ s{/[^/]+$}{};
for my $f ("$pb/stray.txt", "$pb/base/5/999999", "$ts_dbdir/999999",
	"$pb/pg_wal/000000010000000000000099")
{
	spurt_file($f, "stray\n");
	chown_pg($f);
}
# a crashed server's postmaster.pid (its process gone): not a running server, and not in the
# backup
my $dead = fork // die "fork: $!";
POSIX::_exit(0) if $dead == 0;
waitpid($dead, 0);
spurt_file("$pb/postmaster.pid", "$dead\n$pb\n1795000000\n5432\n/tmp\n\n  5432001      0\nready   \n");
chown_pg("$pb/postmaster.pid");
# a database directory replaced by a symlink to a copy elsewhere, one file of it damaged: delta
# must not write through the link (nor keep it)
my $outside = "$base/outside_db";
system('cp', '-a', "$pb/base/1", $outside) == 0 or die 'cp -a base/1';
system('rm', '-rf', "$pb/base/1") == 0 or die 'rm base/1';
symlink $outside, "$pb/base/1" or die "symlink: $!";
{
	open my $fh, '>>:raw', "$outside/PG_VERSION" or die "$outside/PG_VERSION: $!";
	print $fh "damage\n";
	close $fh;
}
my $outside_snap = tree_snapshot($outside);
make_pg_dir("$pb/straydir/sub", 0700);
spurt_file("$pb/straydir/sub/f", "stray\n");
chown_pg("$pb/straydir/sub/f");
my @damage = diff_snapshots(tree_snapshot($pa, skip => $skip), tree_snapshot($pb, skip => $skip));
cmp_ok(scalar @damage, '>=', 10, scalar(@damage) . ' differences after the damage');

# ---- delta restore of B: identical to A again
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $pb, '--delta', '--tablespace-map',
	"$oid=$ts{b}");
is($rc, 0, 'delta restore of the damaged copy exits 0') or diag($err);
my @diff = diff_snapshots(tree_snapshot($pa, skip => $skip, modes => 0),
	tree_snapshot($pb, skip => $skip, modes => 0));
is_deeply(\@diff, [], 'after --delta, B has the same paths and bytes as the full restore A')
  or diag(join("\n", @diff));
@diff = diff_snapshots(tree_snapshot($pa, skip => $skip), tree_snapshot($pb, skip => $skip));
is_deeply(\@diff, [], '... and the same modes (pg_hba.conf was chmod 0644: its bytes match)')
  or diag(join("\n", @diff));
is_deeply([ diff_snapshots(tree_snapshot($ts{a}), tree_snapshot($ts{b})) ], [],
	'... and so is its tablespace directory');
is(readlink("$pb/pg_tblspc/$oid"), $ts{b}, '... whose symlink still points to the mapped one');
is_deeply([ diff_snapshots($outside_snap, tree_snapshot($outside)) ], [],
	'nothing written through a symlinked directory (base/1 -> elsewhere)');
is((stat $kept)[1], $kept_ino, 'the untouched file was kept (same inode), not rewritten');
is_deeply([ dir_entries("$pb/pg_wal") ], ['archive_status'], 'pg_wal emptied');
my $blk = recovery_block($pb);
is($blk && $blk->{count}, 1, 'one walship block in postgresql.auto.conf');

# ---- B starts, recovers to the end of the archive, and reads its tablespace
configure_restored($node{b});
ok($node{b}->start(fail_ok => 1), 'B starts after the delta restore');
ok(wait_recovery_done($node{b}), 'B recovered to the end of the archive and promoted');
is($node{b}->safe_psql('SELECT count(*), max(n) FROM t'), '6000|6000', 'B: t has all 6000 rows');
is($node{b}->safe_psql('SELECT count(*), max(n) FROM in_ts'), '4000|4000',
	'B: in_ts (in the tablespace) has all 4000 rows');
my ($trc, $tout, $terr) = $node{b}->psql_full('SELECT count(*) > 0 FROM pg_class', db => 'template1');
is("$trc $tout", '0 t', 'B: template1 (base/1, the symlinked directory) is complete') or diag($terr);
is($node{b}->safe_psql("SELECT pg_tablespace_location($oid)"), $ts{b},
	'B: the tablespace lives at the mapped location');
$node{b}->stop;

done_testing();
