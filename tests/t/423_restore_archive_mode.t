# 423_restore_archive_mode.t — a restored cluster does not archive into production by surprise.
# A primary on timeline 1 is backed up. A drill restores that backup the way docs/restore.md
# does (no --archive-mode: the default is off), into a cluster configured to archive into the
# production repository (its postgresql.conf carries the primary's archive_command, and its
# postgresql.auto.conf an ALTER SYSTEM SET archive_mode = on), and promotes: postgresql.auto.conf
# has archive_mode = 'off' in the walship block, the backup's own archive_mode line is commented
# out, the promoted cluster reports archive_mode off, and neither 00000002.history nor any
# timeline 2 segment reaches the repository. A plain restore afterwards has no timeline warning.
# Then a drill with --archive-mode preserve does archive timeline 2 into the repository; now a
# plain restore (dry run and real) warns that recovery follows timeline 2, which branched off
# timeline 1 (the newest backup's), and the plan says so; --target-timeline 1 silences it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);
my $push = "$bin -c $conf push %p";

my $node = new_cluster('primary', archive_command => $push);
$node->start;
$node->safe_psql('ALTER SYSTEM SET archive_mode = on');
$node->safe_psql('CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, 10)');
my $b1 = take_basebackup($node, \@g, label => 'b1');
$node->safe_psql('INSERT INTO t SELECT generate_series(11, 20)');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;

sub tl2_in_repo
{
	my @tl2 = grep { /^00000002/ } map { dir_entries($_) } glob("$repo/wal/*");
	return (-e "$repo/wal/history/00000002.history" ? 1 : 0) + scalar(@tl2);
}

# ---- the drill by the book: archiving off by default
my $d1 = restored_node('drill1');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $d1->pgdata, '--target', 'immediate',
	'--target-action', 'promote');
is($rc, 0, 'drill restore (default --archive-mode) exits 0') or diag($err);
like($err, qr/archiving is off in the restored cluster \(--archive-mode off\)/,
	'... and says archiving is off');
my $blk = recovery_block($d1->pgdata);
is($blk && $blk->{settings}{archive_mode}, 'off', "the walship block sets archive_mode = 'off'");
like($blk->{text}, qr/^# commented out by walship restore: archive_mode = 'on'$/m,
	'... and the backup\'s own archive_mode line is commented out') or diag($blk->{text});
configure_restored($d1, archive_command => $push);    # it would archive into production
$d1->start;
ok(wait_recovery_done($d1), 'the drill promoted');
is($d1->safe_psql('SHOW archive_mode'), 'off', 'the drill runs with archive_mode off');
$d1->safe_psql('INSERT INTO t SELECT generate_series(100, 200)');
my $d1seg = $d1->switch_wal;
$d1->safe_psql('CHECKPOINT');
sleep 2;
$d1->stop;
is(tl2_in_repo(), 0, "nothing of the drill's timeline 2 reached the repository ($d1seg)");

($rc, $out, $err) = walship_restore(\@g, '--pgdata', "$base/nowarn", '--dry-run');
is($rc, 0, 'a plain restore plan exits 0') or diag($err);
unlike("$out$err", qr/branched off/, '... and has no timeline warning');
like($out, qr/archiving +off in the restored cluster/, '... the plan says archiving is off');

# ---- a drill with --archive-mode preserve archives its timeline into production
my $d2 = restored_node('drill2');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $d2->pgdata, '--target', 'immediate',
	'--target-action', 'promote', '--archive-mode', 'preserve');
is($rc, 0, 'restore with --archive-mode preserve exits 0') or diag($err);
$blk = recovery_block($d2->pgdata);
ok($blk && !exists $blk->{settings}{archive_mode}, '... the walship block leaves archive_mode alone');
unlike($blk->{text}, qr/commented out by walship restore: archive_mode/,
	'... and the backup\'s archive_mode line too');
configure_restored($d2, archive_command => $push);
$d2->start;
ok(wait_recovery_done($d2), 'the preserve drill promoted');
$d2->safe_psql('INSERT INTO t SELECT generate_series(300, 400)');
my $d2seg = $d2->switch_wal;
ok($d2->wait_for_archive($d2seg), "it archived its timeline 2 up to $d2seg");
$d2->stop;
ok(-e "$repo/wal/history/00000002.history", '00000002.history is in the repository');

# ---- now a plain restore follows timeline 2: the warning, in the plan and in the output
($rc, $out, $err) = walship_restore(\@g, '--pgdata', "$base/warn", '--dry-run');
is($rc, 0, 'plan after the preserve drill exits 0') or diag($err);
like($out, qr/^  timeline     WARNING: recovery follows timeline 2 \(the newest in the repository\), which branched off timeline 1 \(the newest backup's, \Q$b1\E\) at [0-9A-F]+\/[0-9A-F]+/m,
	'the plan warns that recovery follows timeline 2, branched off timeline 1') or diag($out);
like($err, qr/^walship restore: WARNING: recovery follows timeline 2 .*branched off timeline 1/m,
	'... and so does the log');
like($err, qr/--target-timeline 1/, '... saying how to stay on timeline 1');
my $r = restored_node('real');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata);
is($rc, 0, 'the real restore exits 0') or diag($err);
like($err, qr/^walship restore: WARNING: recovery follows timeline 2 .*branched off timeline 1/m,
	'... warning the same');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', "$base/tl1", '--dry-run',
	'--target-timeline', '1');
is($rc, 0, '--target-timeline 1 exits 0') or diag($err);
unlike("$out$err", qr/branched off/, '... without the warning');

done_testing();
