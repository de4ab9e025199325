# 731_module_agent_kill.t — archive_library = 'walship' with the agent killed -9 mid-archive,
# four times during a burst: the module sees no agent holding the lock, starts a new one (a
# `walship push` child) and the archiver retries whatever failed; every segment marked done
# fetches back byte-identical, and every acknowledgement has its object.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipModule;

use File::Compare qw(compare);
use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'on',
	'push-parallel' => 4, 'agent-idle-timeout' => '60s', 'push-timeout' => '60s');

my $node = new_cluster('primary', conf => module_conf($conf), wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';
my $spool  = "$pg_wal/walship";

sub agent_pid
{
	open my $fh, '<', "$spool/agent.state" or return 0;
	my ($pid) = (<$fh> // '') =~ /^pid = (\d+)/;
	return $pid && pid_alive($pid) ? $pid : 0;
}

$node->safe_psql('CREATE TABLE filler (id int, pad text)');
my ($kills, %killed) = (0);
for my $round (1 .. 4)
{
	for my $i (1 .. 5)
	{
		$node->safe_psql("INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1500) g");
		$node->switch_wal;
	}
	my $deadline = time + 10;
	my $pid;
	$pid = agent_pid() or sleep 0.02 until $pid || time > $deadline;
	if ($pid)
	{
		kill 'KILL', $pid;
		$killed{$pid} = 1;
		$kills++;
	}
}
is($kills, 4, 'the agent was killed four times during the burst');
$node->safe_psql("INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1500) g");
my $last = $node->switch_wal;
ok($node->wait_for_archive($last, 120), "every segment up to $last archived despite the kills");
my $pid = agent_pid();
ok($pid && !$killed{$pid}, 'the module started a new agent') or diag("agent pid: $pid");
my $log = $node->log_content;
my $children = () = $log =~ /walship: archived [0-9A-F]{24} \(through walship push\)/g;
cmp_ok($children, '>=', 2, 'new agents were started through walship push children') or diag($children);

opendir my $dh, $pg_wal or die;
my @archived = sort grep { /^[0-9A-F]{24}$/ && -e "$pg_wal/archive_status/$_.done" } readdir $dh;
closedir $dh;
cmp_ok(scalar @archived, '>=', 20, 'at least 20 segments archived');
my $dest = make_pg_dir("$base/fetched", 0700);
my $same = 0;
for my $f (@archived)
{
	my ($rc) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	$same++ if $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
}
is($same, scalar @archived, 'every archived segment fetched back byte-identical');

opendir $dh, $spool or die;
my @acks = grep { /\.ack$/ } readdir $dh;
closedir $dh;
my $bad = 0;
for my $a (@acks)
{
	(my $name = $a) =~ s/\.ack$//;
	my ($sha) = slurp_file("$spool/$a") =~ /^sha256 = ([0-9a-f]{64})$/m;
	my $key = 'wal/' . substr($name, 0, 16) . "/$name";
	my $obj;
	if (open my $fh, '<:raw', "$repo/$key") { read($fh, my $h, 64); $obj = unpack('H*', substr($h, 24, 32)) }
	$bad++, diag("$a: ack without a matching object") unless defined $obj && defined $sha && $obj eq $sha;
}
cmp_ok(scalar @acks, '>', 0, 'acknowledgements exist');
is($bad, 0, 'every acknowledgement has its object, with the same SHA-256');

$node->stop;
my $deadline = time + 20;
sleep 0.1 while agent_pid() && time < $deadline;
ok(!agent_pid(), 'the agent stops once the server is gone');
done_testing();
