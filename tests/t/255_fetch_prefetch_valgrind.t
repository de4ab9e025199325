# 255_fetch_prefetch_valgrind.t — fetch with fetch-prefetch on, and the prefetch agent it
# starts, under valgrind (memcheck): no memory errors and no definite leaks in fetch (a miss,
# then a hit) nor in the agent, which downloads the segments ahead, then exits after
# agent-idle-timeout. Skipped without valgrind and for the ASan build (the two do not mix).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use Time::HiRes qw(sleep time);

my ($vg) = map { "$_/valgrind" } grep { -x "$_/valgrind" } split /:/, $ENV{PATH} // "";
plan skip_all => 'valgrind is not installed' unless $vg;
plan skip_all => 'the ASan build does not run under valgrind' if ($ENV{SANITIZE} // '') eq '1';

my ($bin, $base, $repo, $conf) = walship_setup('fetch-prefetch' => 3,
	'fetch-parallel' => 2, 'agent-idle-timeout' => '8s', 'fetch-timeout' => '120s');

my $node = archiving_cluster('primary', $conf);
$node->start;
$node->safe_psql('CREATE TABLE t (id int)');
for (1 .. 5)
{
	$node->safe_psql('INSERT INTO t SELECT generate_series(1, 5000)');
	$node->switch_wal;
}
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;
opendir my $dh, "$repo/wal/0000000100000000" or die;
my @segs = sort grep { /^[0-9A-F]{24}$/ } readdir $dh;
closedir $dh;
cmp_ok(scalar @segs, '>=', 5, 'five or more segments in the repository');

my $pgdata = make_pg_dir("$base/fake", 0700);
make_pg_dir("$pgdata/pg_wal/archive_status", 0700);
my $spool = "$pgdata/pg_wal/walship-prefetch";
my $vgdir = make_pg_dir("$base/vg", 0755);
my @vg = ($vg, '-q', "--log-file=$vgdir/vg.%p", '--leak-check=full', '--show-leak-kinds=definite',
	'--errors-for-leak-kinds=definite', '--error-exitcode=99');

my ($rc, $out, $err) = run(cmd => [ @vg, $bin, '-c', $conf, 'fetch', $segs[1], 'pg_wal/RECOVERYXLOG' ],
	cwd => $pgdata, timeout => 150);
is($rc, 0, "fetch $segs[1] under valgrind exits 0 (a miss: foreground)") or diag($err);
my ($pid) = (eval { slurp_file("$spool/agent.state") } // '') =~ /^pid = (\d+)/;
my $deadline = time + 60;
until (($pid) = (eval { slurp_file("$spool/agent.state") } // '') =~ /^pid = (\d+)/ or time > $deadline) { sleep 0.2 }
ok($pid, 'a prefetch agent runs');
$deadline = time + 90;
sleep 0.2 until -e "$spool/$segs[2]" || time > $deadline;
ok(-e "$spool/$segs[2]", "it prefetched $segs[2]");
($rc, $out, $err) = run(cmd => [ @vg, $bin, '-c', $conf, 'fetch', $segs[2], 'pg_wal/RECOVERYXLOG' ],
	cwd => $pgdata, timeout => 150);
is($rc, 0, "fetch $segs[2] under valgrind exits 0") or diag($err);
like($err, qr/restored \Q$segs[2]\E from the prefetch spool/, '... a hit') or diag($err);
$deadline = time + 120;
sleep 0.2 while $pid && kill(0, $pid) && time < $deadline;
ok(!($pid && kill(0, $pid)), 'the agent exited after agent-idle-timeout');

opendir $dh, $vgdir or die;
my @logs = map { "$vgdir/$_" } grep { /^vg\./ } readdir $dh;
closedir $dh;
cmp_ok(scalar @logs, '>=', 3, 'valgrind logs for both fetches and the agent');
ok(-e "$vgdir/vg.$pid", "the agent's log is among them");
for my $l (@logs)
{
	my $text = slurp_file($l);
	is($text, '', "$l: no errors, no definite leaks") or diag($text);
}
done_testing();
