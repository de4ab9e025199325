# 601_fetch_stale_tmps_miss.t — fetch removes the temporary files that dead fetches left in its
# destination directory only on a miss, when it is about to write one itself: a segment served
# from the prefetch spool (a rename, where replay waits) leaves the directory alone, and the
# next miss into the same directory removes the dead fetch's file and says so (issue 12).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

my ($bin, $base, $repo, $conf) = walship_setup('fetch-prefetch' => 1, 'fetch-parallel' => 1,
	'agent-idle-timeout' => '3s');

my $node = archiving_cluster('a', $conf);
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g');
my @segs;
for (1 .. 2)
{
	$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
	push @segs, $node->switch_wal;
}
ok($node->wait_for_archive($segs[-1]), 'segments archived');
$node->stop;
# the segment recovery asks for after $segs[0]: the one the agent prefetches
my $next = substr($segs[0], 0, 16) . sprintf('%08X', hex(substr($segs[0], 16)) + 1);

# fetch %f pg_wal/RECOVERYXLOG from a "PGDATA" of our own
my $pgdata = make_pg_dir("$base/fake", 0700);
make_pg_dir("$pgdata/pg_wal/archive_status", 0700);
my $spool = "$pgdata/pg_wal/walship-prefetch";

sub fetch
{
	my ($name, $file) = @_;
	return run(cmd => [ $bin, '-c', $conf, 'fetch', $name, "pg_wal/$file" ], cwd => $pgdata);
}

my ($rc, $out, $err) = fetch($segs[0], 'RECOVERYXLOG');
is($rc, 0, "$segs[0]: restored in the foreground (no agent yet)") or diag($err);
ok(wait_until(30, sub { -e "$spool/$next" && -e "$spool/$next.ok" }),
	"the prefetch agent prefetched $next");

# the temporary file of a fetch that died (SIGKILL): its pid is gone
my $dead = fork // die "fork: $!";
POSIX::_exit(0) if $dead == 0;
waitpid($dead, 0);
my $stale = "$pgdata/pg_wal/RECOVERYXLOG.walship.$dead.tmp";
spurt_file($stale, 'partial');
chown_pg($stale);

($rc, $out, $err) = fetch($next, 'RECOVERYXLOG');
is($rc, 0, "$next: restored") or diag($err);
like($err, qr/restored \Q$next\E from the prefetch spool/, '... from the prefetch spool');
ok(-e $stale, "a hit leaves the dead fetch's temporary file alone (it writes none itself)");
unlike($err, qr/left by a fetch/, '... and does not look for one');

# a miss: a history file is never prefetched; absent, exit 1, and the stale file goes
($rc, $out, $err) = fetch('00000002.history', 'RECOVERYHISTORY');
is($rc, 1, '00000002.history: absent, exit 1') or diag($err);
ok(!-e $stale, "the miss removed the dead fetch's temporary file");
like($err, qr/removed pg_wal\/RECOVERYXLOG\.walship\.$dead\.tmp, left by a fetch \(pid $dead\) that is gone/,
	'... and said so');

ok(wait_until(30, sub { !agent_pid($spool) }), 'the prefetch agent exits when idle');
if (my $pid = agent_pid($spool)) { kill 'TERM', $pid }
done_testing();
