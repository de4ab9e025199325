# 440_agent_lifecycle.t — the async push agent lives only while its work is wanted.
# A cluster archives into a repository of another cluster: every push fails for a permanent
# reason. (1) Once PostgreSQL stops calling walship (archive_command changed), the agent exits
# after agent-idle-timeout although its files still fail, having logged that failure once,
# not once per retry. (2) ps shows it as "walship: push agent for PGDATA". (3) With a long
# agent-idle-timeout, the agent exits within a few seconds of its postmaster's death
# (pg_ctl stop -m immediate, then kill -9 of a restarted one).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);

# ---- the repository belongs to another cluster
my $other = new_cluster('other');
$other->start;
my $oseg = $other->switch_wal;
my $sync = write_config("$base/sync.conf", repo => $repo);
my ($rc, $out, $err) =
  run(cmd => [ $bin, '-c', $sync, 'push', "pg_wal/$oseg" ], cwd => $other->pgdata);
is($rc, 0, "the other cluster's $oseg is archived: the repository is that cluster's") or diag($err);
$other->stop;

my $conf = "$base/walship.conf";
sub conf
{
	my ($idle) = @_;
	return write_config($conf, repo => $repo, async => 'on', 'push-parallel' => 2,
		'agent-idle-timeout' => $idle, 'push-timeout' => '2s');
}
conf('3s');

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_keep_size => '1GB');
$node->start;
my $pgdata = $node->pgdata;
my $spool  = "$pgdata/pg_wal/walship";

sub agent_errors
{
	my @l = grep { /walship agent: ERROR:/ } split /\n/, $node->log_content;
	return scalar @l;
}

$node->safe_psql('CREATE TABLE t (id int, pad text)');
for (1 .. 3)
{
	$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g");
	$node->switch_wal;
}
ok($node->poll_query_until('SELECT failed_count >= 2 FROM pg_stat_archiver', 't', 60),
	'every push fails: the repository is another cluster\'s');
like($node->log_content, qr/walship push: ERROR: .*(another cluster|system identifier)/i,
	'... and push says why') or diag($node->_log_tail(20));
my $pid = agent_pid($spool);
ok($pid, "the agent runs (pid $pid)");

# ---- (2) its title
my $args = `ps -o args= -p $pid`;
$args =~ s/\s+\z//;
is($args, "walship: push agent for $pgdata", 'ps shows the agent by its role and PGDATA');
my $comm = slurp_file("/proc/$pid/comm");
chomp $comm;
is($comm, 'walship push', '... and so does its comm (top, pkill)');

# ---- (1) nobody asks any more: the agent exits after agent-idle-timeout, failing or not
$node->append_conf("archive_command = '/bin/false'");
$node->safe_psql('SELECT pg_reload_conf()');
my $t0 = time;
my $errors0 = agent_errors();
ok(wait_until(3 + 8, sub { !pid_alive($pid) }),
	'no more pushes: the agent exits after agent-idle-timeout (3 s) although its files fail');
my $took = time - $t0;
diag(sprintf 'the agent exited %.1f s after the last push could have run', $took);
my $errors = agent_errors();
cmp_ok($errors, '<=', 2,
	"the agent logged its failure once per kind, not per retry ($errors ERROR lines in all)")
  or diag(join "\n", grep { /walship agent:/ } split /\n/, $node->log_content);
cmp_ok($errors, '>=', 1, '... but it did log it') or diag($node->_log_tail(30));

# ---- (3) the postmaster is gone: the agent exits soon, long before agent-idle-timeout
conf('600s');
$node->append_conf("archive_command = '$bin -c $conf push %p'");
$node->safe_psql('SELECT pg_reload_conf()');
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g");
$node->switch_wal;
ok(wait_until(60, sub { agent_pid($spool) && agent_pid($spool) != $pid }), 'a new agent runs');
$pid = agent_pid($spool);
$node->stop('immediate');
$t0 = time;
ok(wait_until(10, sub { !pid_alive($pid) }),
	'pg_ctl stop -m immediate: the agent exits within seconds (agent-idle-timeout is 600 s)');
diag(sprintf 'the agent exited %.1f s after the postmaster', time - $t0);
like($node->log_content, qr/walship agent: .*postmaster \(pid \d+\) of \Q$pgdata\E is gone/,
	'... saying why');

$node->start;
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 3000) g");
$node->switch_wal;
ok(wait_until(60, sub { agent_pid($spool) && agent_pid($spool) != $pid }), 'restarted: a new agent runs');
$pid = agent_pid($spool);
$node->kill9;
$t0 = time;
ok(wait_until(10, sub { !pid_alive($pid) }), 'kill -9 of the postmaster: the agent exits within seconds');
diag(sprintf 'the agent exited %.1f s after the postmaster', time - $t0);

done_testing();
