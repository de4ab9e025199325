# 220_async_stale_ack.t — an acknowledgement never outlives what it vouches for: a PGDATA copy
# (a restored snapshot, spool included) pointed at a fresh repository uploads again; the same
# configuration over a wiped repository uploads again; a file replaced under the same name is
# archived again rather than answered from the spool.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Copy qw(copy);
use File::Path qw(remove_tree);
use Time::HiRes qw(sleep time);

my $bin   = walship_bin();
my $base  = tmp_base();
my $repo1 = make_pg_dir("$base/repo1", 0700);
my $repo2 = make_pg_dir("$base/repo2", 0700);
my %async = (async => 'on', 'agent-idle-timeout' => '2s', 'push-timeout' => '30s');
my $conf1 = write_config("$base/one.conf", repo => $repo1, %async);
my $conf2 = write_config("$base/two.conf", repo => $repo2, %async);

my $node = new_cluster('primary', archive_command => "$bin -c $conf1 push %p",
	wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t (id int)');
for (1 .. 3)
{
	$node->safe_psql('INSERT INTO t SELECT generate_series(1, 5000)');
	$node->switch_wal;
}
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg, 60), "archived up to $seg");
$node->stop;

my $pgdata = $node->pgdata;
sub spool_agent_gone
{
	my ($dir) = @_;
	my $deadline = time + 20;
	while (time < $deadline)
	{
		my ($pid) = (eval { slurp_file("$dir/pg_wal/walship/agent.state") } // '') =~ /^pid = (\d+)/;
		return 1 unless $pid && pid_alive($pid);
		sleep 0.1;
	}
	return 0;
}
ok(spool_agent_gone($pgdata), 'the agent has exited');
ok(-f "$pgdata/pg_wal/walship/$seg.ack", "the spool holds an acknowledgement for $seg");
my $key = 'wal/' . substr($seg, 0, 16) . "/$seg";
ok(-f "$repo1/$key", "$seg is in the first repository");

# ---- a copy of PGDATA (spool and acknowledgements included) pointed at a fresh repository
my $copy = WalshipTest::init_from_backup('copy', $pgdata, archive_command => "$bin -c $conf2 push %p");
ok(-f $copy->pgdata . "/pg_wal/walship/$seg.ack", 'the copy carries the stale acknowledgement');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf2, 'push', "pg_wal/$seg" ], cwd => $copy->pgdata);
is($rc, 0, 'push in the copy exits 0') or diag($err);
ok(-f "$repo2/$key", "... after storing $seg in the fresh repository: the stale ack was not trusted");
ok(spool_agent_gone($copy->pgdata), "the copy's agent exits when idle");

# ---- the same configuration, the repository wiped and re-created
remove_tree($repo1, { keep_root => 1 });
ok(!-e "$repo1/$key", 'the first repository is empty');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf1, 'push', "pg_wal/$seg" ], cwd => $pgdata);
is($rc, 0, 'push with the old spool exits 0') or diag($err);
ok(-f "$repo1/$key", "... after storing $seg again: an acknowledgement from an earlier agent is not trusted");

# ---- while the agent runs: the same name, another inode → archived again, not skipped
my $f = "$pgdata/pg_wal/$seg";
copy($f, "$f.new") or die "copy: $!";
chown_pg("$f.new");
rename("$f.new", $f) or die "rename: $!";
my $t0 = time;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf1, '--log-level', 'debug', 'push', "pg_wal/$seg" ], cwd => $pgdata);
is($rc, 0, 'push of the replaced file exits 0') or diag($err);
my $ack = slurp_file("$pgdata/pg_wal/walship/$seg.ack");
my ($ino) = $ack =~ /^file = \d+ (\d+) /m;
is($ino, (stat $f)[1], '... vouched for by a new acknowledgement of the new inode (archived again, found identical)')
  or diag($ack);

# ---- bad settings are configuration errors (2), before any agent starts
my $badconf = write_config("$base/bad.conf", repo => $repo1, async => 'on', 'push-parallel' => 0);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $badconf, 'push', "pg_wal/$seg" ], cwd => $pgdata);
is($rc, 2, 'push-parallel = 0 is a configuration error (2)');
like($err, qr/push-parallel/, '... naming the setting');

ok(spool_agent_gone($pgdata), 'the agent exits when idle');
done_testing();
