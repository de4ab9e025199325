# 421_restore_delta_foreign_tablespace.t — restore never deletes or rewrites another cluster's
# tablespace. A cluster with a tablespace is backed up and keeps running. Restoring that backup
# into a new PGDATA without --tablespace-map would put the tablespace at its original location,
# the running cluster's own directory:
#   - with --delta (which removes what the backup does not have): refused, naming the running
#     cluster, and the source's tablespace is byte for byte untouched;
#   - without --delta: refused too, and the hint does not suggest --delta;
#   - --tablespace-map naming the running cluster's directory, with --delta: refused.
# The source stopped, the directory is still not this new PGDATA's (no pg_tblspc link of its
# points there): --delta is refused again, and so is a plain restore, whose hint names
# --tablespace-map and not --delta. Finally the way delta is meant to work outside PGDATA: a
# PGDATA whose own pg_tblspc link points to the original location, damaged there, is repaired
# by --delta without a map.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = archiving_cluster('primary', $conf);
$node->start;
my $ts_orig = make_pg_dir("$base/ts_orig", 0700);
$node->safe_psql("CREATE TABLESPACE ts1 LOCATION '$ts_orig'");
$node->safe_psql(
	"CREATE TABLE in_ts (n int, pad text) TABLESPACE ts1;
	 INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 2000) g;");
my $oid = $node->safe_psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'");
my $b1 = take_basebackup($node, \@g, label => 'with a tablespace');
# files the backup does not have: what delta would remove from the live cluster
$node->safe_psql('CREATE TABLE later (n int) TABLESPACE ts1; INSERT INTO later VALUES (1)');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->safe_psql('CHECKPOINT');
my $snap = tree_snapshot($ts_orig);
cmp_ok(scalar(keys %$snap), '>=', 4, 'the running cluster\'s tablespace holds files');

sub untouched
{
	my ($what) = @_;
	is_deeply([ diff_snapshots($snap, tree_snapshot($ts_orig)) ], [],
		"$what: the source's tablespace is untouched");
}

# ---- the source running
my $n1 = restored_node('n1');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $n1->pgdata, '--delta');
is($rc, 1, '--delta into a new PGDATA onto the running source\'s tablespace: exit 1')
  or diag($err);
like($err, qr/^walship restore: ERROR: tablespace \Q$oid\E's directory \Q$ts_orig\E is a tablespace of the running cluster in \Q${\ $node->pgdata }\E \(postmaster pid \d+\)/m,
	'... naming the directory and the running cluster') or diag($err);
like($err, qr/HINT:.*--tablespace-map \Q$oid\E=DIR/, '... the hint says --tablespace-map');
unlike($err, qr/removed/, '... nothing removed');
untouched('--delta, source running');
ok(!-e $n1->pgdata, '... and the new PGDATA was not created');

($rc, $out, $err) = walship_restore(\@g, '--pgdata', $n1->pgdata);
is($rc, 1, 'a plain restore onto the running source\'s tablespace: exit 1') or diag($err);
like($err, qr/running cluster in \Q${\ $node->pgdata }\E/, '... naming the running cluster');
unlike($err, qr/--delta/, '... and the hint does not suggest --delta');
untouched('plain restore, source running');

my $n2 = restored_node('n2');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $n2->pgdata, '--delta',
	'--tablespace-map', "$oid=$ts_orig");
is($rc, 1, '--delta with --tablespace-map naming the running cluster\'s directory: exit 1')
  or diag($err);
like($err, qr/is a tablespace of the running cluster/, '... refused as the running cluster\'s');
untouched('--tablespace-map to the running source\'s directory');

# ---- the source stopped: the directory is still not this PGDATA's
$node->stop;
$snap = tree_snapshot($ts_orig);
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $n1->pgdata, '--delta');
is($rc, 1, '--delta into a new PGDATA onto a stopped cluster\'s tablespace: exit 1')
  or diag($err);
like($err, qr/^walship restore: ERROR: tablespace \Q$oid\E's directory \Q$ts_orig\E is not empty and not this data directory's own \(\Q${\ $n1->pgdata }\E\/pg_tblspc\/\Q$oid\E does not point to it\)/m,
	'... as not this data directory\'s own') or diag($err);
like($err, qr/HINT: give it another place with --tablespace-map \Q$oid\E=DIR/,
	'... the hint says --tablespace-map') or diag($err);
untouched('--delta, source stopped');
ok(!-e $n1->pgdata, '... and the new PGDATA was not created');

($rc, $out, $err) = walship_restore(\@g, '--pgdata', $n1->pgdata);
is($rc, 1, 'a plain restore onto it: exit 1') or diag($err);
like($err, qr/tablespace \Q$oid\E's directory \Q$ts_orig\E is not empty/, '... not empty');
like($err, qr/HINT:.*--tablespace-map \Q$oid\E=DIR/, '... the hint says --tablespace-map');
unlike($err, qr/--delta/, '... and does not suggest --delta (the directory is not its own)');
untouched('plain restore, source stopped');

# ---- a PGDATA's own tablespace: delta may repair it without a map
rename $ts_orig, "$ts_orig.source" or die "rename: $!";
my $own = restored_node('own');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $own->pgdata);
is($rc, 0, 'restore with the original location free exits 0') or diag($err);
is(readlink($own->pgdata . "/pg_tblspc/$oid"), $ts_orig, '... its pg_tblspc link points there');
my $restored = tree_snapshot($ts_orig);
my ($ver) = grep { /^PG_/ } dir_entries($ts_orig);
my $stray = "$ts_orig/$ver/stray";
spurt_file($stray, "stray\n");
chown_pg($stray);
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $own->pgdata, '--delta');
is($rc, 0, '--delta over a PGDATA whose own link points to the tablespace exits 0') or diag($err);
ok(!-e $stray, '... and removed the stray file from its own tablespace');
is_deeply([ diff_snapshots($restored, tree_snapshot($ts_orig)) ], [],
	'... which is as restored again');

done_testing();
