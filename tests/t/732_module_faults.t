# 732_module_faults.t — archive_library = 'walship' when archiving cannot succeed:
#  * walship.config naming a missing file: false with walship's error in the server log,
#    nothing written, the .ready kept; after a reload with the right file, archived.
#  * a failing repository (its directories made read-only under the agent): false with the
#    agent's error in the server log, retried by the archiver, nothing marked done while it
#    fails; once the fault clears every segment is archived and fetches back identical.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipModule;

use File::Compare qw(compare);
use File::Find qw(find);
use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'on',
	'push-parallel' => 2, 'agent-idle-timeout' => '60s', 'push-timeout' => '20s');

my $node = new_cluster('primary', conf => module_conf("$base/missing.conf"), wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';

sub stat_archiver
{
	my ($f, $l) = split /\|/, $node->safe_psql(
		"SELECT failed_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver");
	return ($f, $l);
}

sub wait_until
{
	my ($what, $cond, $secs) = @_;
	my $deadline = time + ($secs // 60);
	until ($cond->())
	{
		if (time > $deadline) { diag("timed out waiting for $what"); return 0 }
		sleep 0.1;
	}
	return 1;
}

# ---- a missing config file
$node->safe_psql('CREATE TABLE t (id int)');
$node->safe_psql('INSERT INTO t SELECT generate_series(1, 1000)');
my $seg1 = $node->switch_wal;
ok(wait_until('a failure', sub { (stat_archiver())[0] >= 1 }), 'the archiver counts a failure');
like($node->log_content, qr/WARNING:  walship: $seg1 was not archived: .*missing\.conf/,
	'the server log names the file and walship\'s error (the missing config file)');
ok(-e "$pg_wal/archive_status/$seg1.ready", 'the segment stays ready');
my @objects;
find({ no_chdir => 1, wanted => sub { push @objects, $_ if -f $_ } }, $repo);
is(scalar @objects, 0, 'nothing written to the repository');

$node->append_conf("walship.config = '$conf'");
$node->safe_psql('SELECT pg_reload_conf()');
ok($node->wait_for_archive($seg1, 60), 'archived after the reload with the right config file');

# ---- a failing repository
my @dirs;
find({ no_chdir => 1, wanted => sub { push @dirs, $_ if -d $_ } }, $repo);
chmod 0500, @dirs;
my (undef, $done_before) = stat_archiver();
my ($failed_before) = stat_archiver();
my @during;
for (1 .. 3)
{
	$node->safe_psql('INSERT INTO t SELECT generate_series(1, 1000)');
	push @during, $node->switch_wal;
}
ok(wait_until('failures', sub { (stat_archiver())[0] >= $failed_before + 2 }, 90),
	'the archiver retries: at least two failures counted');
my $log = $node->log_content;
like($log, qr/WARNING:  walship: $during[0] was not archived: .+/, 'the agent\'s error is in the server log');
my (undef, $done_now) = stat_archiver();
is($done_now, $done_before, 'nothing is marked done while the repository fails');
ok(!-e "$pg_wal/archive_status/$during[0].done", "$during[0] is not done");

chmod 0700, @dirs;
ok($node->wait_for_archive($during[-1], 120), 'every segment archived once the fault clears');
my $dest = make_pg_dir("$base/fetched", 0700);
my $same = 0;
for my $f ($seg1, @during)
{
	my ($rc) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	$same++ if $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
}
is($same, 1 + @during, 'every segment fetched back byte-identical: nothing lost');

$node->stop;
my $deadline = time + 20;
my $agent = sub {
	open my $fh, '<', "$pg_wal/walship/agent.state" or return 0;
	my ($pid) = (<$fh> // '') =~ /^pid = (\d+)/;
	return $pid && pid_alive($pid) ? $pid : 0;
};
sleep 0.1 while $agent->() && time < $deadline;
ok(!$agent->(), 'the agent stops once the server is gone');
done_testing();
