# 200_async_push.t — async = on: a live cluster under a write burst archives through the agent.
# Everything is archived, pg_stat_archiver never counts a failure, every file comes back
# byte-identical, every acknowledgement in the spool has its object (with the same SHA-256),
# acknowledgements of recycled files are cleaned, and the agent exits when idle.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup(async => 'on',
	'push-parallel' => 3, 'agent-idle-timeout' => '3s', 'push-timeout' => '60s');

my $node = archiving_cluster('primary', $conf, wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';
my $spool  = "$pg_wal/walship";

# the agent's pid from its state file, if it is alive
sub wait_agent_gone
{
	my ($secs) = @_;
	my $deadline = time + $secs;
	while (time < $deadline) { return 1 unless agent_pid($spool); sleep 0.1 }
	return 0;
}

# the object's header: SHA-256 at bytes 24..55
sub object_sha
{
	my ($name) = @_;
	my $key = $name =~ /\.history$/ ? "wal/history/$name" : 'wal/' . substr($name, 0, 16) . "/$name";
	open my $fh, '<:raw', "$repo/$key" or return undef;
	read($fh, my $h, 64) == 64 or return undef;
	return unpack('H*', substr($h, 24, 32));
}

# ---- a write burst
my @pgconn = ('-h', $node->host, '-p', $node->port);
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', '1', '-q', @pgconn, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);
$node->safe_psql('CREATE TABLE filler (id int, pad text)');
for my $i (1 .. 12)
{
	$node->safe_psql("INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 1500) g");
	$node->switch_wal;
}
my $last = $node->switch_wal;
ok($node->wait_for_archive($last, 120), "every segment up to $last archived");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'failed_count = 0');
like($node->log_content, qr/walship agent: archived \S+ .* to \Q$repo\E/, 'the agent logs what it archives');
ok(agent_pid($spool), 'the agent is running') or diag($node->log_content);

# ---- byte-identical fetch-back of everything archived
opendir my $dh, $pg_wal or die;
my @archived = sort grep { /^[0-9A-F]{24}$/ && -e "$pg_wal/archive_status/$_.done" } readdir $dh;
closedir $dh;
cmp_ok(scalar @archived, '>=', 12, 'at least 12 segments archived');
my $dest = make_pg_dir("$base/fetched", 0700);
my $same = 0;
for my $f (@archived)
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	$same++ if $rc == 0 && compare("$dest/$f", "$pg_wal/$f") == 0;
}
is($same, scalar @archived, 'every archived segment fetched back byte-identical');

# ---- no acknowledgement without its object
opendir $dh, $spool or die "opendir $spool: $!";
my @acks = sort grep { /\.ack$/ } readdir $dh;
closedir $dh;
cmp_ok(scalar @acks, '>=', scalar @archived, 'one acknowledgement per archived file');
my $bad = 0;
for my $a (@acks)
{
	(my $name = $a) =~ s/\.ack$//;
	my ($sha) = slurp_file("$spool/$a") =~ /^sha256 = ([0-9a-f]{64})$/m;
	my $obj = object_sha($name);
	if (!defined $obj || !defined $sha || $obj ne $sha) { $bad++; diag("$a: ack $sha, object " . ($obj // 'absent')) }
}
is($bad, 0, 'every acknowledgement names an object stored with the same SHA-256');

# ---- an acknowledged file: push answers at once, without the repository
my $t0 = time;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$archived[-1]" ], cwd => $node->pgdata);
is($rc, 0, 'push of an acknowledged file exits 0') or diag($err);
cmp_ok(time - $t0, '<', 2, '... at once');

# ---- a manual push of a file PostgreSQL no longer offers (.done): the agent archives it too
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$archived[0]" ], cwd => $node->pgdata);
is($rc, 0, 'push of a .done file exits 0 (already in the repository: identical)') or diag($err);

# ---- bad input through the async path: refused before the agent sees it
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', 'pg_wal/000000010000000000000FFE' ], cwd => $node->pgdata);
is($rc, 1, 'push of a missing file exits 1');
like($err, qr/cannot open/, '... and says why');

# ---- recycled files lose their acknowledgements; the agent exits when idle
$node->safe_psql('ALTER SYSTEM SET wal_keep_size = 0');
$node->safe_psql('SELECT pg_reload_conf()');
$node->switch_wal;
$node->safe_psql('CHECKPOINT');
$node->safe_psql('CHECKPOINT');
my $first = $archived[0];
# the next file archived (re)starts the agent, which cleans the spool as it starts and every 10 s
my $next = $node->switch_wal;
ok($node->wait_for_archive($next, 60), "archived $next after the checkpoints");
my $gone = 0;
for (1 .. 250)
{
	if (!-e "$pg_wal/$first" && !-e "$spool/$first.ack") { $gone = 1; last }
	sleep 0.1;
}
ok(!-e "$pg_wal/$first", "$first was recycled by PostgreSQL");
ok($gone, "... and its acknowledgement was cleaned from the spool");

$node->stop;
ok(wait_agent_gone(20), 'the agent exits after agent-idle-timeout without work');
unlike($node->log_content, qr/archive command (failed|was terminated)/, 'no archive command failure in the server log');

done_testing();
