# 676_verify_timelines.t — verify follows the timeline history: a backup on timeline 1, a
# restore that promoted to timeline 2 and archived there; verify walks 1 -> 2 and finds the
# backup replayable to the end of timeline 2 (exit 0). Without 00000002.history the timeline
# cannot be followed: named, exit 1. A segment missing on timeline 2 is named on timeline 2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use JSON::PP qw(decode_json);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my @g = ('-c', $conf);
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
my $id = take_basebackup($node, \@g, label => 'tl');
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 1000) g');
my $last1 = $node->switch_wal;
ok($node->wait_for_archive($last1), 'timeline 1 archived');
$node->stop;

# restore, promote at the end of the archive: timeline 2, archiving into the same repository
my $r = restored_node('second');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata, '--archive-mode', 'preserve');
is($rc, 0, 'restored') or diag($err);
configure_restored($r, archive_command => "$bin -c $conf push %p");
$r->start;
ok(wait_recovery_done($r), 'promoted');
$r->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 1000) g');
$r->switch_wal;
$r->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 10) g');
my $last2 = $r->switch_wal;
ok($r->wait_for_archive($last2), "timeline 2 archived up to $last2");
like($last2, qr/^00000002/, '... on timeline 2');
$r->stop;
ok(-f "$repo/wal/history/00000002.history", 'the history file is archived');

($rc, $out, $err) = run(cmd => [ $bin, @g, 'verify', '--json' ]);
is($rc, 0, 'verify across the switch exits 0') or diag("$out\n$err");
my $j = eval { decode_json($out) } // {};
my ($b) = @{ $j->{repositories}[0]{backups} // [] };
ok($b && $b->{consistent} && $b->{replayable_to_end}, '... the backup is consistent and replayable');
is($b && $b->{replay_end}, $last2, '... to the end of timeline 2');
is_deeply($j->{problems}, [], '... no problem');

sub copy_repo
{
	my ($n, $how) = @_;
	my $dir = "$base/copy$n";
	system('cp', '-a', $repo, $dir) == 0 or die;
	$how->($dir);
	return write_config("$base/copy$n.conf", repo => $dir);
}

my $c = copy_repo(1, sub { unlink "$_[0]/wal/history/00000002.history" or die });
($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'verify', '--json' ]);
is($rc, 1, 'without 00000002.history: verify exits 1');
$j = eval { decode_json($out) } // {};
ok((grep { $_->{key} eq 'wal/history/00000002.history' && $_->{what} =~ /timeline 2 holds segments but its history file is missing/ }
	@{ $j->{problems} // [] }), '... naming the history file') or diag($out);

my @tl2 = sort grep { /^00000002[0-9A-F]{16}$/ } map { s{.*/}{}r } glob("$repo/wal/*/*");
ok(@tl2 >= 2, 'timeline 2 holds several segments');
my $gone = $tl2[0];
$c = copy_repo(2, sub { unlink "$_[0]/wal/" . substr($gone, 0, 16) . "/$gone" or die });
($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'verify', '--json' ]);
is($rc, 1, "without $gone: verify exits 1");
$j = eval { decode_json($out) } // {};
is_deeply($j->{repositories}[0]{missing}, [ { timeline => 2, first => $gone, last => $gone, count => 1 } ],
	'... the missing segment is named on timeline 2') or diag($out);
done_testing();
