# 240_async_valgrind.t — one async push and the agent it starts, under valgrind (memcheck):
# no memory errors and no definite leaks in either process. The agent archives every .ready
# file of a stopped cluster, then exits after agent-idle-timeout. Skipped without valgrind and
# for the ASan build (the two do not mix).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use Time::HiRes qw(sleep time);

my ($vg) = map { "$_/valgrind" } grep { -x "$_/valgrind" } split /:/, $ENV{PATH} // "";
plan skip_all => 'valgrind is not installed' unless $vg;
plan skip_all => 'the ASan build does not run under valgrind' if ($ENV{SANITIZE} // '') eq '1';

my ($bin, $base, $repo, $conf) = walship_setup(async => 'on', 'push-parallel' => 2,
	'agent-idle-timeout' => '2s', 'push-timeout' => '120s');

# WAL piles up as .ready while archive_command fails; then the cluster stops.
my $node = new_cluster('primary', archive_command => 'false');
$node->start;
$node->safe_psql('CREATE TABLE t (id int)');
for (1 .. 3)
{
	$node->safe_psql('INSERT INTO t SELECT generate_series(1, 5000)');
	$node->switch_wal;
}
$node->stop;
my $status = $node->pgdata . '/pg_wal/archive_status';
opendir my $dh, $status or die;
my @ready = sort map { /^(.*)\.ready$/ ? $1 : () } readdir $dh;
closedir $dh;
cmp_ok(scalar @ready, '>=', 3, 'three or more files wait as .ready');

my $vgdir = make_pg_dir("$base/vg", 0755);
my ($rc, $out, $err) = run(
	cmd => [
		$vg, '-q', "--log-file=$vgdir/vg.%p", '--leak-check=full', '--show-leak-kinds=definite',
		'--errors-for-leak-kinds=definite', '--error-exitcode=99', $bin, '-c', $conf, 'push',
		"pg_wal/$ready[0]"
	],
	cwd     => $node->pgdata,
	timeout => 150);
is($rc, 0, 'push under valgrind exits 0') or diag($err);

my $spool = $node->pgdata . '/pg_wal/walship';
my ($pid) = (eval { slurp_file("$spool/agent.state") } // '') =~ /^pid = (\d+)/;
ok($pid, 'an agent ran');
my $deadline = time + 90;
sleep 0.2 while $pid && pid_alive($pid) && time < $deadline;
ok(!($pid && pid_alive($pid)), 'the agent exited after agent-idle-timeout');
my $acked = grep { -f "$spool/$_.ack" } @ready;
is($acked, scalar @ready, 'the agent archived every .ready file');

opendir $dh, $vgdir or die;
my @logs = map { "$vgdir/$_" } grep { /^vg\./ } readdir $dh;
closedir $dh;
cmp_ok(scalar @logs, '>=', 2, 'valgrind logs for push and the agent (and the fork between them)');
my $agent_log = "$vgdir/vg.$pid";
ok(-e $agent_log, "the agent's log is among them");
for my $l (@logs)
{
	my $text = slurp_file($l);
	# -q: valgrind writes only errors (and leak reports) to the log
	is($text, '', "$l: no errors, no definite leaks") or diag($text);
}
done_testing();
