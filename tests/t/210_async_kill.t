# 210_async_kill.t — kill -9 of the async agent in the middle of a write burst: the pushes that
# were waiting start a new agent, the burst completes with no loss (every segment archived and
# fetched back identical), and no acknowledgement exists without its object.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);
use File::Find qw(find);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup(async => 'on',
	'push-parallel' => 4, 'agent-idle-timeout' => '3s', 'push-timeout' => '60s');

my $node = archiving_cluster('primary', $conf, wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';
my $spool  = "$pg_wal/walship";

$node->safe_psql('CREATE TABLE filler (id int, pad text)');
my ($kills, %killed) = (0);
for my $round (1 .. 4)
{
	for my $i (1 .. 5)
	{
		$node->safe_psql("INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1500) g");
		$node->switch_wal;
	}
	# the agent is busy with the batch just switched: kill it mid-work
	my $deadline = time + 10;
	my $pid;
	$pid = agent_pid($spool) or sleep 0.02 until $pid || time > $deadline;
	if ($pid)
	{
		kill 'KILL', $pid;
		$killed{$pid} = 1;
		$kills++;
	}
}
is($kills, 4, 'the agent was killed four times during the burst');
# one more segment after the last kill (the killed agent may have archived everything before
# it died; a switch with nothing written would not need a new agent)
$node->safe_psql("INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1500) g");
my $last = $node->switch_wal;
ok($node->wait_for_archive($last, 120), "every segment up to $last archived despite the kills");
my $pid = agent_pid($spool);
ok($pid && !$killed{$pid}, 'a new agent took over') or diag("agent pid: $pid");

# ---- no loss: every segment PostgreSQL marked done comes back identical
opendir my $dh, $pg_wal or die;
my @archived = sort grep { /^[0-9A-F]{24}$/ && -e "$pg_wal/archive_status/$_.done" } readdir $dh;
closedir $dh;
cmp_ok(scalar @archived, '>=', 20, 'at least 20 segments archived');
my $dest = make_pg_dir("$base/fetched", 0700);
my $same = 0;
for my $f (@archived)
{
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	$same++ if $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
}
is($same, scalar @archived, 'every archived segment fetched back byte-identical');

# ---- no acknowledgement without an object with the same checksum
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

# ---- only whole objects are visible: every object in the repository is readable
my @objects;
find({ no_chdir => 1, wanted => sub { push @objects, $1 if m{/wal/[0-9A-F]{16}/([0-9A-F]{24})$} } }, $repo);
my $readable = 0;
for my $o (@objects)
{
	my ($rc) = run(cmd => [ $bin, '-c', $conf, 'fetch', $o, "$dest/check" ]);
	$readable++ if $rc == 0;
}
is($readable, scalar @objects, 'every object in the repository verifies (no partial object visible)');

$node->stop;
my $deadline = time + 20;
sleep 0.1 while agent_pid($spool) && time < $deadline;
ok(!agent_pid($spool), 'the agent exits when idle');
done_testing();
