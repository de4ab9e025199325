# 250_fetch_prefetch.t — recovery through the prefetching fetch (fetch-prefetch > 0).
# A cluster archives a burst of ~30 segments after a base backup; a copy of the backup recovers
# from the repository with restore_command = walship fetch: every row is there, most segments
# were served from the prefetch spool, a corrupt file planted in the spool was not served
# (removed, fetched again and verified), and the agent exits after agent-idle-timeout leaving
# no segment, no zombie. Then, by hand in a pg_wal of our own: a corrupt object in the
# repository is never kept in the spool (and fetch of it still stops recovery, 126); a wrong
# file put under a prefetched name with a copied proof is not served; fetch-prefetch = 0
# starts nothing and creates nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);
use File::Copy qw(copy);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup('fetch-prefetch' => 8,
	'fetch-parallel' => 3, 'agent-idle-timeout' => '3s');

# the pid in a spool's agent.state if that process exists (a zombie counts: kill 0 sees it)
sub segments_in
{
	my ($dir) = @_;
	opendir my $dh, $dir or return ();
	my @s = sort grep { /^[0-9A-F]{24}$/ } readdir $dh;
	closedir $dh;
	return @s;
}

sub object_path
{
	my ($name) = @_;
	return "$repo/wal/" . substr($name, 0, 16) . "/$name";
}

# ---- a primary, a base backup, then a burst of ~30 segments only in the repository
my $primary = archiving_cluster('primary', $conf);
$primary->start;
$primary->safe_psql('CREATE TABLE t (id int PRIMARY KEY, pad text)');
my $backup = $primary->backup('base');
ok(-f "$backup/backup_label", 'base backup taken (pg_basebackup -X none)');
for my $i (0 .. 29)
{
	my ($lo, $hi) = (1000 * $i + 1, 1000 * ($i + 1));
	$primary->safe_psql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series($lo, $hi) g");
	$primary->switch_wal;
}
my $summary = 'SELECT count(*), sum(id), md5(string_agg(pad, \'\' ORDER BY id)) FROM t';
my $expected = $primary->safe_psql($summary);
my $last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "the burst is archived up to $last");
$primary->stop;
my @archived = segments_in("$repo/wal/0000000100000000");
cmp_ok(scalar @archived, '>=', 30, scalar(@archived) . ' segments in the repository');

# ---- recover a copy of the backup through the prefetching fetch
my $restored = WalshipTest::init_from_backup('restored', $backup,
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1);
my $pg_wal = $restored->pgdata . '/pg_wal';
my $spool  = "$pg_wal/walship-prefetch";

# a corrupt file planted where a prefetched segment goes, with a proof in the right format
my $planted = $archived[ int(@archived / 2) ];
make_pg_dir($spool, 0700);
spurt_file("$spool/$planted", "\0garbage" x (128 * 1024));
spurt_file("$spool/$planted.ok",
	"set = " . ('ab' x 32) . "\nsha256 = " . ('cd' x 32) . "\nsize = 1048576\nfile = 1 2 3 4 0 0\n");
chown_pg("$spool/$planted", "$spool/$planted.ok");

ok($restored->start(fail_ok => 1), 'the restored cluster starts (archive recovery)')
  && ok($restored->poll_query_until('SELECT NOT pg_is_in_recovery()'),
	'recovery reached the end of the archive and promoted')
  or do { diag($restored->log_content); done_testing(); exit 1 };
is($restored->safe_psql($summary), $expected, 'every row of the burst is there (count, sum, md5)');

my $log = $restored->log_content;
like($log, qr/restored log file "$last" from archive/, "the last segment $last was restored");
unlike($log, qr/could not restore file|PANIC|not the segment it is stored as/,
	'no restore failure in the server log');
my @hits = $log =~ /walship fetch: restored (\S+) from the prefetch spool/g;
my @fg   = $log =~ /walship fetch: restored (\S+) from \//g;
diag(scalar(@hits) . ' segments served from the prefetch spool, ' . scalar(@fg) . ' in the foreground');
cmp_ok(scalar @hits, '>=', 10, 'prefetch hits: at least 10 segments served from the spool');
# the same figures through walship metrics --pgdata (the spool's fetch.stats counters)
{
	my @fgseg = grep { /^[0-9A-F]{24}$/ } @fg;
	my ($mrc, $mout, $merr) = run(cmd => [ $bin, '-c', $conf, 'metrics', '--pgdata', $restored->pgdata ]);
	is($mrc, 0, 'walship metrics --pgdata exits 0') or diag($merr);
	my ($h) = $mout =~ /^walship_prefetch_hits_total\{pgdata="[^"]*"\} (\d+)$/m;
	my ($m) = $mout =~ /^walship_prefetch_misses_total\{pgdata="[^"]*"\} (\d+)$/m;
	is($h, scalar @hits, 'walship_prefetch_hits_total counts the segments served from the spool')
	  or diag($mout);
	is($m, scalar @fgseg, 'walship_prefetch_misses_total counts the segments restored in the foreground');
	like($mout, qr/^# TYPE walship_prefetch_hits_total counter$/m, '... both are counters');
}
like($log, qr/(removed \Q$planted\E from the prefetch spool|not serving \Q$planted\E from the prefetch spool)/,
	"the planted $planted was refused");
ok(!(grep { $_ eq $planted } @hits) || $log =~ /walship prefetch: WARNING: removed \Q$planted\E from the prefetch spool/,
	"... and served only after it was removed, fetched again and verified");

ok(wait_until(30, sub { !agent_pid($spool) }),
	'the prefetch agent exits after agent-idle-timeout (and is no zombie)');
is(join(' ', segments_in($spool)), '', 'it leaves no segment in the spool');
opendir my $dh, $spool or die;
my @left = grep { /\.(ok|tmp)$/ } readdir $dh;
closedir $dh;
is("@left", '', 'nor proofs or partial downloads');
$restored->stop;

# ---- by hand, in a pg_wal of our own: fetch %f pg_wal/RECOVERYXLOG from a "PGDATA"
my $pgdata = make_pg_dir("$base/fake", 0700);
make_pg_dir("$pgdata/pg_wal/archive_status", 0700);
my $fspool = "$pgdata/pg_wal/walship-prefetch";
my $agentlog = "$base/agent.log";
spurt_file($agentlog, '');
chown_pg($agentlog);
chmod 0666, $agentlog;

# fetch with stderr appended to a file the agent keeps writing to after fetch exits
sub fetch
{
	my ($c, $name) = @_;
	my $t0 = time;
	my ($rc, $out, $err) = run(
		cmd => [ 'sh', '-c', "exec '$bin' -c '$c' fetch $name pg_wal/RECOVERYXLOG 2>>'$agentlog'" ],
		cwd => $pgdata);
	return ($rc, time - $t0);
}

my $conf2 = write_config("$base/walship2.conf", repo => $repo, 'fetch-prefetch' => 4,
	'fetch-parallel' => 2, 'agent-idle-timeout' => '3s', 'log-level' => 'debug');
my ($a, $b, $c, $d) = @archived[ 3 .. 6 ];
my $bad_obj = object_path($c);
copy($bad_obj, "$base/saved.obj") or die "copy: $!";
{
	# flip the last byte of the object: its payload no longer decodes to the stored SHA-256
	open my $fh, '+<:raw', $bad_obj or die "open $bad_obj: $!";
	my $size = -s $bad_obj;
	seek $fh, $size - 1, 0;
	read $fh, my $byte, 1;
	seek $fh, $size - 1, 0;
	print $fh chr(ord($byte) ^ 0xff);
	close $fh;
}
my ($rc) = fetch($conf2, $a);
is($rc, 0, "fetch $a exits 0 (foreground; starts the agent)");
is(-s "$pgdata/pg_wal/RECOVERYXLOG", 1048576, '... and wrote it');
copy("$pgdata/pg_wal/RECOVERYXLOG", "$base/a.fetched") or die;
ok(wait_until(30, sub { -e "$fspool/$b" && -e "$fspool/$d" }), "the agent prefetched $b and $d")
  or diag(slurp_file($agentlog));
ok(wait_until(30, sub { slurp_file($agentlog) =~ /\Q$c\E failed verification and was not kept/ }),
	"the corrupt $c failed verification, logged") or diag(slurp_file($agentlog));
ok(!-e "$fspool/$c" && !-e "$fspool/$c.tmp", "... and is not in the spool");
($rc) = fetch($conf2, $b);
is($rc, 0, "fetch $b exits 0");
like(slurp_file($agentlog), qr/restored \Q$b\E from the prefetch spool/, '... served from the spool');
my $took;
($rc, $took) = fetch($conf2, $c);
is($rc, 126, "fetch of the corrupt $c exits 126 (stop recovery), not 1");
copy("$base/saved.obj", $bad_obj) or die "copy back: $!";

# a wrong file under a prefetched name, with the proof copied from the real one
ok(wait_until(30, sub { -e "$fspool/$d" }), "$d is prefetched");
my $e = $archived[7];
ok(wait_until(30, sub { -e "$fspool/$e.ok" && -e "$fspool/$e" }), "$e is prefetched");
copy("$fspool/$e", "$base/e.copy") or die;
unlink "$fspool/$d";
copy("$base/e.copy", "$fspool/$d") or die;    # another segment's bytes, another inode
chown_pg("$fspool/$d");
($rc) = fetch($conf2, $d);
is($rc, 0, "fetch $d exits 0");
like(slurp_file($agentlog), qr/(not serving|removed) \Q$d\E/, '... the wrong file was refused');
ok(compare("$pgdata/pg_wal/RECOVERYXLOG", "$base/e.copy") != 0, '... and not served');
($rc, $took) = fetch($conf2, $e);
is($rc, 0, "fetch $e exits 0");
like(slurp_file($agentlog), qr/restored \Q$e\E from the prefetch spool/, '... from the spool');
diag(sprintf('fetch of a prefetched segment (process start to exit): %.1f ms', $took * 1000));
my @ahead = @archived[ 8 .. 11 ];
ok(wait_until(30, sub { !grep { !-e "$fspool/$_" } @ahead }), "the agent holds the 4 segments after $e");
sleep 1.5;    # a sweep
is(join(' ', segments_in($fspool)), "@ahead",
	'the spool holds exactly fetch-prefetch (4) segments: those ahead, none older, no more');
ok(wait_until(30, sub { !agent_pid($fspool) }), 'the agent exits when idle');

# ---- fetch-prefetch = 0: today's fetch, nothing started, nothing created
my $off = write_config("$base/off.conf", repo => $repo, 'fetch-prefetch' => 0);
my $pgdata2 = make_pg_dir("$base/fake2", 0700);
make_pg_dir("$pgdata2/pg_wal/archive_status", 0700);
($rc) = run(cmd => [ $bin, '-c', $off, 'fetch', $a, 'pg_wal/RECOVERYXLOG' ], cwd => $pgdata2);
is($rc, 0, 'fetch with fetch-prefetch = 0 exits 0');
ok(compare("$pgdata2/pg_wal/RECOVERYXLOG", "$base/a.fetched") == 0, '... the same bytes as with prefetch');
ok(!-e "$pgdata2/pg_wal/walship-prefetch", '... and creates no spool, starts no agent');
($rc) = run(cmd => [ $bin, '-c', $off, 'fetch', '00000001000000FF000000FE', 'pg_wal/RECOVERYXLOG' ],
	cwd => $pgdata2);
is($rc, 1, 'an absent segment still exits 1');

my $bad = write_config("$base/bad.conf", repo => $repo, 'fetch-prefetch' => 'many');
my ($brc, $bout, $berr) = run(cmd => [ $bin, '-c', $bad, 'fetch', $a, 'pg_wal/RECOVERYXLOG' ], cwd => $pgdata2);
is($brc, 2, 'fetch-prefetch = many is a configuration error (exit 2)');
like($berr, qr/fetch-prefetch/, '... naming the setting');

done_testing();
