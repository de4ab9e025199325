# 260_fetch_prefetch_timeline.t — the prefetching fetch across a timeline switch.
# A primary on timeline 1 is backed up (b1) and writes a few segments. A copy of b1 recovers to
# the end of the archive and promotes (timeline 2), then keeps writing and archiving into the
# same repository; meanwhile the old primary writes on timeline 1 past the fork, archived too.
# Then b1 recovers again from the repository through the prefetching fetch:
#   - recovery_target_timeline = latest (PostgreSQL's default): the rows of timeline 2 are
#     there and none written on timeline 1 past the fork; segments of timeline 2, the first one
#     (holding the switch point) included, were served from the prefetch spool, and no segment
#     of timeline 1 past the fork was ever downloaded by the agent;
#   - recovery_target_timeline = current: timeline 1 to its end; once recovery asks for a
#     timeline-1 segment past the fork, the agent follows timeline 1 (later ones are hits).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup('fetch-prefetch' => 6,
	'fetch-parallel' => 3, 'agent-idle-timeout' => '3s', 'log-level' => 'debug');
my $plain = write_config("$base/plain.conf", repo => $repo, 'fetch-prefetch' => 0);
my $push  = "$bin -c $plain push %p";
my $summary = "SELECT count(*), coalesce(sum(id), 0), count(*) FILTER (WHERE tag = 'tl1-late') FROM t";

sub burst
{
	my ($node, $tag, $from, $n) = @_;
	for my $i (0 .. $n - 1)
	{
		my ($lo, $hi) = ($from + 1000 * $i, $from + 1000 * $i + 999);
		$node->safe_psql("INSERT INTO t SELECT g, '$tag', repeat(md5(g::text), 4) FROM generate_series($lo, $hi) g");
		$node->switch_wal;
	}
	return;
}

# ---- timeline 1, b1, then four segments
my $primary = new_cluster('primary', archive_command => $push);
$primary->start;
$primary->safe_psql('CREATE TABLE t (id int PRIMARY KEY, tag text, pad text)');
my $b1 = $primary->backup('b1');
burst($primary, 'tl1', 1, 4);
my $last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "timeline 1 archived up to $last");

# ---- timeline 2: b1 recovered to the end of the archive (plain fetch), promoted
my $tl2 = WalshipTest::init_from_backup('tl2', $b1,
	restore_command => "$bin -c $plain fetch %f %p", archive_command => $push, recovery => 1);
$tl2->start;
ok($tl2->poll_query_until('SELECT NOT pg_is_in_recovery()'), 'the copy of b1 promoted');
is($tl2->safe_psql('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'), '00000002',
	'... onto timeline 2');
my $fork = $tl2->safe_psql(q{SELECT pg_walfile_name(pg_current_wal_lsn())});

# ---- timeline 1 goes on past the fork; timeline 2 writes more
burst($primary, 'tl1-late', 100001, 4);
$last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "timeline 1 archived up to $last (past the fork)");
my $tl1_all = $primary->safe_psql($summary);
$primary->stop;
burst($tl2, 'tl2', 200001, 10);
my $expected = $tl2->safe_psql($summary);
$last = $tl2->switch_wal;
ok($tl2->wait_for_archive($last), "timeline 2 archived up to $last");
ok(-f "$repo/wal/history/00000002.history", '00000002.history is in the repository');
$tl2->stop;

my $hist = slurp_file("$repo/wal/history/00000002.history") ;
my ($fork_seg) = substr($fork, 8);    # XXXXXXXXYYYYYYYY of the first timeline-2 segment
my @tl1_late = grep { substr($_, 8) ge $fork_seg } map { (split m{/})[-1] } glob("$repo/wal/0000000100000000/*");
cmp_ok(scalar @tl1_late, '>=', 4, 'timeline 1 segments past the fork are in the repository: '
	  . scalar @tl1_late);

# ---- recovery of b1 along timeline 2 (latest), prefetching
my $rec = WalshipTest::init_from_backup('rec', $b1,
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1);
ok($rec->start(fail_ok => 1), 'b1 recovers through the prefetching fetch')
  && ok($rec->poll_query_until('SELECT NOT pg_is_in_recovery()'), '... to the end of timeline 2')
  or do { diag($rec->log_content); done_testing(); exit 1 };
is($rec->safe_psql($summary), $expected, "timeline 2's rows are there, none of timeline 1 past the fork");
my $log = $rec->log_content;
my @hits = $log =~ /walship fetch: restored (\S+) from the prefetch spool/g;
my @tl2_hits = grep { /^00000002/ } @hits;
diag(scalar(@hits) . ' segments served from the prefetch spool, ' . scalar(@tl2_hits) . ' of timeline 2');
cmp_ok(scalar @tl2_hits, '>=', 5, 'segments of timeline 2 were served from the prefetch spool');
my $first_tl2 = "00000002$fork_seg";
ok((grep { $_ eq $first_tl2 } @hits), "the first segment of timeline 2, $first_tl2 (the switch point), too")
  or diag(join("\n", grep { /walship|restored log/ } split /\n/, $log));
my @wrong = grep { my $n = $_; $log =~ /prefetched \Q$n\E/ } @tl1_late;
is("@wrong", '', 'no timeline 1 segment past the fork was prefetched');
like($log, qr/timeline plan from 00000001: 1 newer timeline/, 'the agent read the history of timeline 2');
unlike($log, qr/PANIC|could not restore file/, 'no restore failure');
$rec->stop;

# ---- recovery_target_timeline = current: timeline 1 to its end
my $cur = WalshipTest::init_from_backup('cur', $b1,
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1,
	conf => { recovery_target_timeline => "'current'" });
ok($cur->start(fail_ok => 1), 'b1 recovers with recovery_target_timeline = current')
  && ok($cur->poll_query_until('SELECT NOT pg_is_in_recovery()'), '... to the end of timeline 1')
  or do { diag($cur->log_content); done_testing(); exit 1 };
is($cur->safe_psql($summary), $tl1_all, "timeline 1's rows, those past the fork included");
$log = $cur->log_content;
@hits = $log =~ /walship fetch: restored (\S+) from the prefetch spool/g;
my @late_hits = grep { my $h = $_; grep { $_ eq $h } @tl1_late } @hits;
diag(scalar(@hits) . ' served from the prefetch spool, ' . scalar(@late_hits) . ' past the fork');
cmp_ok(scalar @late_hits, '>=', 2, 'timeline 1 segments past the fork were served from the spool once recovery showed it stays on timeline 1');
$cur->stop;

done_testing();
