# 646_cipher_prefetch.t — the prefetching fetch (fetch-prefetch, the async prefetch agent)
# against an encrypted repository (issue 14). A copy of a base backup recovers through
# restore_command = walship fetch from an encrypted posix repository: every row is there and
# most segments were served from the prefetch spool, decrypted and verified by the agent.
# By hand, in a pg_wal of our own: a segment served from the spool is byte-identical to the
# primary's. With a wrong passphrase (the agent started for that configuration has the wrong
# key too): fetch exits 126 with the one line saying the key does not match, never "absent"
# (exit 1), nothing restored; a spool filled under the right key is never served to it; the
# agent's own log never says absent, and it keeps no segment.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);
use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my @p    = ('fetch-prefetch' => 8, 'fetch-parallel' => 3, 'agent-idle-timeout' => '3s',
	'fetch-timeout' => '3', cipher => 'aes-256-gcm');
my $conf  = write_config("$base/walship.conf", repo => $repo, @p, 'cipher-pass' => 'prefetch pass');
my $wrong = write_config("$base/wrong.conf", repo => $repo, @p, 'cipher-pass' => 'not it',
	'log-level' => 'debug');

sub segments_in
{
	my ($dir) = @_;
	opendir my $dh, $dir or return ();
	my @s = sort grep { /^[0-9A-F]{24}$/ } readdir $dh;
	closedir $dh;
	return @s;
}

my $primary = new_cluster('primary', archive_command => "$bin -c $conf push %p", wal_keep_size => '1GB');
$primary->start;
$primary->safe_psql('CREATE TABLE t (id int PRIMARY KEY, pad text)');
my $backup = $primary->backup('base');
for my $i (0 .. 19)
{
	my ($lo, $hi) = (1000 * $i + 1, 1000 * ($i + 1));
	$primary->safe_psql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series($lo, $hi) g");
	$primary->switch_wal;
}
my $summary  = 'SELECT count(*), sum(id), md5(string_agg(pad, \'\' ORDER BY id)) FROM t';
my $expected = $primary->safe_psql($summary);
my $last     = $primary->switch_wal;
ok($primary->wait_for_archive($last), "the burst is archived (encrypted) up to $last");
$primary->stop;
my @archived = segments_in("$repo/wal/0000000100000000");
cmp_ok(scalar @archived, '>=', 20, scalar(@archived) . ' segments in the encrypted repository');

# ---- a real recovery through the prefetching fetch
my $restored = WalshipTest::init_from_backup('restored', $backup,
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1);
my $spool = $restored->pgdata . '/pg_wal/walship-prefetch';
ok($restored->start(fail_ok => 1), 'the restored cluster starts (archive recovery)')
  && ok($restored->poll_query_until('SELECT NOT pg_is_in_recovery()'),
	'recovery reached the end of the encrypted archive and promoted')
  or do { diag($restored->log_content); done_testing(); exit 1 };
is($restored->safe_psql($summary), $expected, 'every row of the burst is there (count, sum, md5)');
my $log = $restored->log_content;
unlike($log, qr/could not restore file|PANIC|does not match/, 'no restore failure in the server log');
my @hits = $log =~ /walship fetch: restored (\S+) from the prefetch spool/g;
diag(scalar(@hits) . ' segments served from the prefetch spool');
cmp_ok(scalar @hits, '>=', 5, 'prefetch hits: at least 5 encrypted segments served from the spool');
ok(wait_until(30, sub { !agent_pid($spool) }), 'the prefetch agent exits after agent-idle-timeout');
$restored->stop;

# ---- by hand, in a pg_wal of our own
my $pgdata = make_pg_dir("$base/fake", 0700);
make_pg_dir("$pgdata/pg_wal/archive_status", 0700);
my $fspool   = "$pgdata/pg_wal/walship-prefetch";
my $agentlog = "$base/agent.log";
spurt_file($agentlog, '');
chown_pg($agentlog);
chmod 0666, $agentlog;
my $xlog = "$pgdata/pg_wal/RECOVERYXLOG";

sub fetch
{
	my ($c, $name) = @_;
	unlink $xlog;
	my ($rc, $out, $err) = run(
		cmd => [ 'sh', '-c', "exec '$bin' -c '$c' fetch $name pg_wal/RECOVERYXLOG 2>>'$agentlog'" ],
		cwd => $pgdata);
	return $rc;
}
sub log_since
{
	my ($off) = @_;
	my $all = slurp_file($agentlog);
	return substr($all, $off);
}

my ($a, $b, $c, $d) = @archived[ 3 .. 6 ];
is(fetch($conf, $a), 0, "fetch $a (right key): exit 0");
ok(compare($xlog, $primary->pgdata . "/pg_wal/$a") == 0, '... byte-identical to the primary\'s');
ok(wait_until(30, sub { -f "$fspool/$b" && -f "$fspool/$b.ok" }), "the agent prefetched $b (decrypted, verified)");
my $off = length slurp_file($agentlog);
is(fetch($conf, $b), 0, "fetch $b: exit 0");
like(log_since($off), qr/restored \Q$b\E from the prefetch spool/, '... served from the spool');
ok(compare($xlog, $primary->pgdata . "/pg_wal/$b") == 0, '... byte-identical to the primary\'s');
ok(-f "$fspool/$c", "the spool holds $c, prefetched under the right key");

# ---- a wrong passphrase: 126 with the key message, never absent, the spool not served
$off = length slurp_file($agentlog);
is(fetch($wrong, $c), 126, "fetch $c with a wrong passphrase: exit 126 (not 1: never absent)");
my $wl = log_since($off);
like($wl, qr/walship fetch: .*the key does not match repository \S+ \(key id 1\)/, '... one line: the key does not match')
  or diag($wl);
unlike($wl, qr/restored \Q$c\E/, "... $c, prefetched under the right key, is not served to it");
ok(!-e $xlog, '... nothing restored');
# the agent this fetch started has the wrong key too: once asked (the next fetch), its
# downloads fail with the key message (logged, never "absent"), it keeps nothing, and the
# fetch still fails with it
$off = length slurp_file($agentlog);
is(fetch($wrong, $d), 126, "fetch $d with the wrong passphrase again: exit 126");
like(log_since($off), qr/walship fetch: .*the key does not match repository/, '... the key message again');
ok(wait_until(20, sub { log_since($off) =~ /walship prefetch: .*cannot prefetch \S+ \(will retry\): .*the key does not match/ }),
	'the agent started for the wrong configuration fails its downloads with the key message')
  or diag(log_since($off));
my @absent = grep { /absent|not in the (archive|repository)/i } split /\n/, log_since(0);
is(join("\n", @absent), '', 'no line of fetch or the agent says a segment is absent');
ok(wait_until(30, sub { !agent_pid($fspool) }), 'the agent exits after agent-idle-timeout');
my @kept = segments_in($fspool);
is("@kept", '', 'and leaves no segment in the spool');

done_testing();
