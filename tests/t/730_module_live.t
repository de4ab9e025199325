# 730_module_live.t — archive_library = 'walship' under pgbench load: every segment the
# archiver marks done fetches back byte-identical; the files go through the agent's spool,
# not a process per file (at most the few `walship push` children that start or restart the
# agent); a config change (a second repository) takes effect at the next file, as with
# archive_command, and the later segments are in both repositories.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipModule;

use File::Compare qw(compare);
use Time::HiRes qw(sleep time);

my $bin   = walship_bin();
my $base  = tmp_base();
my $repo1 = make_pg_dir("$base/repo1", 0700);
my $repo2 = make_pg_dir("$base/repo2", 0700);
my %common = (async => 'on', 'push-parallel' => 2, 'agent-idle-timeout' => '60s',
	'push-timeout' => '60s');
my $conf = write_config("$base/walship.conf", repo => $repo1, %common);

my $node = new_cluster('primary', conf => module_conf($conf), wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';

sub archived
{
	opendir my $dh, $pg_wal or die "opendir $pg_wal: $!";
	my @a = sort grep { /^[0-9A-F]{24}$/ && -e "$pg_wal/archive_status/$_.done" } readdir $dh;
	closedir $dh;
	return @a;
}

sub fetched_same
{
	my ($cf, $tag, @names) = @_;
	my $dest = make_pg_dir("$base/fetched-$tag", 0700);
	my @bad;
	for my $f (@names)
	{
		my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $cf, 'fetch', $f, "$dest/$f" ]);
		push @bad, "$f (rc $rc: $err)" unless $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
	}
	diag("not identical: @bad[0 .. ($#bad < 4 ? $#bad : 4)]") if @bad;
	return scalar @bad;
}

# ---- load: pgbench for a few seconds, two clients, segments switched as they fill
my $pgbench = pg_bin('pgbench');
my ($rc, $out, $err) = run(cmd => [ $pgbench, '-i', '-s', '3', '-q', '-h', $node->host, '-p', $node->port, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);
($rc, $out, $err) = run(cmd => [ $pgbench, '-T', '6', '-c', '2', '-h', $node->host, '-p', $node->port, 'postgres' ]);
is($rc, 0, 'pgbench -T 6 -c 2 ran') or diag($err);
my $last = $node->switch_wal;
ok($node->wait_for_archive($last, 120), "every segment up to $last archived through the module");

my @first = archived();
cmp_ok(scalar @first, '>=', 10, 'at least 10 segments archived under load') or diag(scalar @first);
is(fetched_same($conf, 'one', @first), 0, 'every archived segment fetched back byte-identical');

my $log = $node->log_content;
my $through_module = () = $log =~ /walship: archived [0-9A-F]{24}/g;
my $through_child  = () = $log =~ /walship: archived [0-9A-F]{24} \(through walship push\)/g;
cmp_ok($through_module, '>=', scalar @first, 'the module archived every segment (server log)');
cmp_ok($through_child, '<=', 2, 'only the agent start went through a walship push child; the rest through the spool')
  or diag("$through_child of $through_module through a child");
unlike($log, qr/was not archived/, 'no file failed');
ok(-e "$pg_wal/walship/agent.state", 'the files went through the agent spool');

sub agent_pid
{
	open my $fh, '<', "$pg_wal/walship/agent.state" or return 0;
	my ($pid) = (<$fh> // '') =~ /^pid = (\d+)/;
	return $pid && pid_alive($pid) ? $pid : 0;
}

# ---- a config change: a second repository; the next file restarts the agent
my $old_agent = agent_pid();
ok($old_agent, 'the agent runs before the config change') or diag('no agent');
write_config("$base/walship.conf", repo1 => $repo1, repo2 => $repo2, %common);
my %before = map { $_ => 1 } @first;
($rc, $out, $err) = run(cmd => [ $pgbench, '-T', '3', '-c', '2', '-h', $node->host, '-p', $node->port, 'postgres' ]);
is($rc, 0, 'pgbench after the config change') or diag($err);
$last = $node->switch_wal;
ok($node->wait_for_archive($last, 120), "archived up to $last after the config change");
my @later = grep { !$before{$_} } archived();
cmp_ok(scalar @later, '>=', 3, 'segments archived after the change');
my $conf2 = write_config("$base/repo2-only.conf", repo => $repo2);
is(fetched_same($conf2, 'two', @later), 0, 'every later segment is in the new repository, identical');
is(fetched_same($conf, 'both', @later), 0, 'and fetches back identical with the new configuration');
my $new_agent = agent_pid();
ok($new_agent && $new_agent != $old_agent && !pid_alive($old_agent),
	'the agent of the old configuration was replaced') or diag("old $old_agent new $new_agent");

$node->stop;
my $deadline = time + 20;
sleep 0.1 while agent_pid() && time < $deadline;
ok(!agent_pid(), 'the agent stops once the server is gone');
done_testing();
