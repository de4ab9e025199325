# 270_push_queue_max.t — push-queue-max on a live cluster (docs/queue-max.md).
#
# archive_command is a wrapper that fails until a flag file exists, so that a backlog of .ready
# segments builds up; then archiving resumes. Phases:
#   A  push-queue-max off: the whole backlog is archived, nothing is ever dropped;
#   B  push-queue-max = 3MB (three 1 MiB segments), async = off: the oldest segments beyond the
#      limit are reported archived (.done, pg_stat_archiver) but not stored, a WARNING names
#      each, a gap record exists for each, the newer ones are stored byte-identical, a segment
#      already in the repository is not dropped, list (text and --json) shows the dropped run
#      apart from "missing", fetch of a dropped segment exits 1; a manual re-push of a dropped
#      segment stores it and it no longer counts as dropped;
#   C  the gap cannot be recorded: push exits 1, nothing is dropped or stored; once it can,
#      the drop goes through;
#   D  async = on: the same drop happens before the agent is involved, the rest goes through
#      the agent;
#   E  a gap breaks point-in-time recovery: a copy recovered from a base backup taken before the
#      gap through walship fetch replays up to the last segment before it, and no further.
# Bad values of push-queue-max are refused with exit 2 and nothing written.
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
my $conf = "$base/walship.conf";
write_config($conf, repo => $repo, async => 'off');    # A-C: the in-process path; D: the agent
my $flag = "$base/archiving-on";

my $wrapper = "$base/archive.sh";
spurt_file($wrapper, "#!/bin/sh\n[ -e '$flag' ] || exit 1\nexec '$bin' -c '$conf' push \"\$1\"\n");
chmod 0755, $wrapper or die "chmod $wrapper: $!";
chown_pg($wrapper);

my $node = new_cluster('primary', archive_command => "$wrapper %p", wal_keep_size => '1GB');
$node->start;
my $pg_wal = $node->pgdata . '/pg_wal';
$node->safe_psql('CREATE TABLE t (id int, pad text)');

sub wal_key { my $n = shift; return 'wal/' . substr($n, 0, 16) . "/$n" }
sub gap_key { my $n = shift; return 'gap/' . substr($n, 0, 16) . "/$n" }

sub status_of
{
	my ($n) = @_;
	return -e "$pg_wal/archive_status/$n.done" ? 'done' : -e "$pg_wal/archive_status/$n.ready" ? 'ready' : 'none';
}

sub ready_segments
{
	opendir my $dh, "$pg_wal/archive_status" or die "opendir: $!";
	my @r = sort map { /^([0-9A-F]{24})\.ready$/ ? $1 : () } readdir $dh;
	closedir $dh;
	return @r;
}

# n more completed segments while archiving is off, each holding the rows of one batch (t.id =
# the batch number); returns the backlog (sorted segment names)
my ($batch, %batch_of) = (0);
sub build_backlog
{
	my ($n) = @_;
	unlink $flag;
	my @made;
	for (1 .. $n)
	{
		$batch++;
		$node->safe_psql("INSERT INTO t SELECT $batch, md5(g::text) FROM generate_series(1, 100) g");
		push @made, $node->switch_wal;
		$batch_of{ $made[-1] } = $batch;
	}
	my $deadline = time + 30;
	sleep 0.1 while time < $deadline && grep { status_of($_) ne 'ready' } @made;
	my @ready = ready_segments();
	is(scalar(grep { status_of($_) eq 'ready' } @made), $n, "backlog: $n new segments waiting (.ready)");
	return @ready;
}

# archiving resumes: the flag, and a reload to wake the archiver from its retry sleep
sub resume
{
	spurt_file($flag, '');
	$node->safe_psql('SELECT pg_reload_conf()');
}

sub archived_count { return $node->safe_psql('SELECT archived_count FROM pg_stat_archiver') }

sub fetch_same
{
	my ($n) = @_;
	my $dest = "$base/fetched/$n";
	unlink $dest;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $n, $dest ]);
	return $rc == 0 && compare($dest, "$pg_wal/$n") == 0;
}
make_pg_dir("$base/fetched", 0700);

sub list_json
{
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
	is($rc, 0, 'list --json exits 0') or diag($err);
	require JSON::PP;
	return JSON::PP::decode_json($out);
}

sub log_since
{
	my ($offset) = @_;
	return substr($node->log_content, $offset);
}

# 1 once the server log after offset matches re
sub wait_log
{
	my ($offset, $re, $secs) = @_;
	my $deadline = time + $secs;
	while (time < $deadline) { return 1 if log_since($offset) =~ $re; sleep 0.1 }
	diag("log after offset $offset:\n" . log_since($offset));
	return 0;
}

# ---- bad values: exit 2, nothing written
my $seg0 = $node->safe_psql('SELECT pg_walfile_name(pg_current_wal_lsn())');
for my $bad ([ 'lots', qr/push-queue-max = "lots" \(from WALSHIP_PUSH_QUEUE_MAX\) is not a size/ ],
	[ '512kB', qr/push-queue-max = "512kB" .* is not a size of at least 1048576 bytes/ ])
{
	my ($rc, $out, $err) = run(
		cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$seg0" ],
		env => { WALSHIP_PUSH_QUEUE_MAX => $bad->[0] },
		cwd => $node->pgdata);
	is($rc, 2, "push-queue-max = $bad->[0]: push exits 2");
	like($err, $bad->[1], '... naming the value, where it came from and what is expected');
	ok(!-e "$repo/walship.repo" && !-e "$repo/" . wal_key($seg0), '... and writes nothing');
}

# ---- A: push-queue-max off: a backlog of 6 is archived whole
my @a = build_backlog(6);
my $off0 = length $node->log_content;
resume();
ok($node->wait_for_archive($a[-1], 120), "A: the backlog up to $a[-1] is archived");
is(scalar(grep { -e "$repo/" . wal_key($_) } @a), scalar @a, 'A: with push-queue-max off every segment is stored');
ok(!-e "$repo/gap", 'A: no gap record');
unlike(log_since($off0), qr/WARNING: dropped/, 'A: no WARNING about dropped files');
# a base backup from before any gap (pg_basebackup waits for its WAL to be archived)
$node->backup('before_gap');
# and the same moment as a walship backup, for restore's view of the gap (E)
my ($bbrc, undef, $bberr) = run(
	cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $node->connstr, '--checkpoint', 'fast' ]);
is($bbrc, 0, 'a walship basebackup before any gap') or diag($bberr);

# ---- B: push-queue-max = 3MB, async off
write_config($conf, repo => $repo, 'push-queue-max' => '3MB', async => 'off');
my @b = build_backlog(8);
is_deeply([ ready_segments() ], \@b, 'B: the backlog is exactly the 8 new segments');
# the oldest is already in the repository (an earlier push whose .done never came): never dropped
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$b[0]" ],
	env => { WALSHIP_PUSH_QUEUE_MAX => 'off' }, cwd => $node->pgdata);
is($rc, 0, "B: $b[0] pushed by hand first") or diag($err);
my $count0 = archived_count();
my $off = length $node->log_content;
resume();
ok($node->wait_for_archive($b[-1], 120), "B: PostgreSQL counts everything up to $b[-1] archived");
is(archived_count() - $count0, 8, 'B: pg_stat_archiver counts all 8 archived');
is(scalar(grep { status_of($_) eq 'done' } @b), 8, 'B: all 8 are .done (PostgreSQL may recycle them)');
# backlog 8 MiB, limit 3 MiB: the 5 oldest are beyond it; the first of them was stored already
my @dropped = @b[ 1 .. 4 ];
my @kept    = ($b[0], @b[ 5 .. 7 ]);
my $log     = log_since($off);
like($log, qr/walship push: \Q$b[0]\E is beyond push-queue-max but already in every repository: not dropped/,
	"B: $b[0], already stored, is not dropped");
for my $n (@dropped)
{
	like($log,
		qr/walship push: WARNING: dropped \Q$n\E without archiving it: the archive backlog is \d+ files \([\d.]+ MiB\), over push-queue-max \(3\.0 MiB\).*gap is recorded in \Q$repo\E.*cannot replay past \Q$n\E/,
		"B: a WARNING names dropped $n");
	ok(!-e "$repo/" . wal_key($n), "B: $n is not stored");
	ok(-f "$repo/" . gap_key($n), "B: its gap record exists");
}
my @warned = $log =~ /WARNING: dropped ([0-9A-F]{24})/g;
is_deeply(\@warned, \@dropped, 'B: exactly the dropped files are named, once each, oldest first');
is(scalar(grep { fetch_same($_) } @kept), scalar @kept, 'B: every kept segment fetches back byte-identical');

# the gap record: object format, kind 5 (gap), codec none, text payload
my $rec = slurp_file("$repo/" . gap_key($dropped[0]));
is(substr($rec, 0, 4), 'WSHP', 'gap record: object magic');
is(ord(substr($rec, 5, 1)), 0, '... codec none');
is(ord(substr($rec, 7, 1)), 5, '... kind 5 (gap)');
my $payload = substr($rec, 64);
like($payload, qr/^walship-gap = 1$/m, '... format 1');
like($payload, qr/^segment = \Q$dropped[0]\E$/m, '... names the segment');
like($payload, qr/^reason = push-queue-max$/m, '... and the reason');
like($payload, qr/^dropped-at = \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m, '... and when');
like($payload, qr/^limit-bytes = 3145728$/m, '... and the limit');
my $stat = (stat "$repo/" . gap_key($dropped[0]))[2] & 07777;
is(sprintf('%04o', $stat), '0600', '... mode 0600');

# fetch of a dropped segment: authoritatively absent
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $dropped[0], "$base/fetched/x" ]);
is($rc, 1, 'fetch of a dropped segment exits 1 (absent: recovery ends there)') or diag($err);
ok(!-e "$base/fetched/x", '... and writes nothing');

# list
my $j  = list_json();
my ($tl) = grep { $_->{timeline} == 1 } @{ $j->{wal}{timelines} };
is_deeply($tl->{dropped}[0] && { map { $_ => $tl->{dropped}[0]{$_} } qw(first last count reason) },
	{ first => $dropped[0], last => $dropped[-1], count => 4, reason => 'push-queue-max' },
	'list --json: the dropped run on timeline 1');
like($tl->{dropped}[0]{dropped_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, '... with the time');
is_deeply($tl->{gaps}, [ { first => $dropped[0], last => $dropped[-1], missing => 4, dropped => 4 } ],
	'list --json: the gap says all 4 missing segments were dropped');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/WAL timeline 1: .*segment\(s\), GAPS:\n  dropped by push-queue-max \Q$dropped[0]\E \.\. \Q$dropped[-1]\E \(4\), \S+: recovery cannot cross it\n/,
	'list: the dropped run, told apart from missing segments');
unlike($out, qr/  missing /, 'list: nothing reported as merely missing');

# a segment missing for another reason is "missing", not "dropped"
my $victim = $kept[2];
rename "$repo/" . wal_key($victim), "$base/victim" or die "rename: $!";
$j = list_json();
($tl) = grep { $_->{timeline} == 1 } @{ $j->{wal}{timelines} };
my ($g2) = grep { $_->{first} eq $victim } @{ $tl->{gaps} };
is_deeply($g2, { first => $victim, last => $victim, missing => 1, dropped => 0 },
	'list --json: a segment lost otherwise is missing, not dropped');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/  missing \Q$victim\E \.\. \Q$victim\E \(1\)\n/, 'list: ... and says "missing"');
rename "$base/victim", "$repo/" . wal_key($victim) or die "rename back: $!";

# a manual re-push of a dropped segment that still exists: the real segment wins
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "pg_wal/$dropped[0]" ], cwd => $node->pgdata);
is($rc, 0, "re-push of dropped $dropped[0] by hand exits 0 (it is .done: not part of the backlog)") or diag($err);
ok(-e "$repo/" . wal_key($dropped[0]), '... the segment is stored now');
ok(-e "$repo/" . gap_key($dropped[0]), '... the gap record stays, as history');
ok(fetch_same($dropped[0]), '... fetch serves the real segment');
$j = list_json();
($tl) = grep { $_->{timeline} == 1 } @{ $j->{wal}{timelines} };
is($tl->{dropped}[0]{first}, $dropped[1], 'list: the stored segment no longer counts as dropped');
is($tl->{dropped}[0]{count}, 3, '... 3 remain dropped');

# ---- C: the gap cannot be recorded → push exits 1, nothing dropped; then it can
my @c = build_backlog(5);
rename "$repo/gap", "$repo/gap.saved" or die "rename gap: $!";
spurt_file("$repo/gap", "not a directory\n");
chown_pg("$repo/gap");
$off = length $node->log_content;
resume();
ok(wait_log($off, qr/walship push: ERROR: not dropping \Q$c[0]\E \(beyond push-queue-max\): cannot record the gap of \Q$c[0]\E in \Q$repo\E/, 60),
	'C: push fails on the oldest, saying it was not dropped and why');
ok($node->poll_query_until("SELECT last_failed_wal = '$c[0]' FROM pg_stat_archiver", 't', 30),
	'C: PostgreSQL counts the failure');
$log = log_since($off);
unlike($log, qr/WARNING: dropped/, 'C: nothing is reported dropped');
is(status_of($c[0]), 'ready', "C: $c[0] is still .ready (PostgreSQL keeps it)");
ok(!-e "$repo/" . wal_key($c[0]), 'C: ... and is not stored either');
unlink "$repo/gap";
rename "$repo/gap.saved", "$repo/gap" or die "rename back: $!";
$off = length $node->log_content;
$node->safe_psql('SELECT pg_reload_conf()');
ok($node->wait_for_archive($c[-1], 120), 'C: once the gap can be recorded, the backlog drains');
$log = log_since($off);
@warned = $log =~ /WARNING: dropped ([0-9A-F]{24})/g;
is_deeply(\@warned, [ @c[ 0 .. 1 ] ], 'C: ... dropping the 2 oldest (5 MiB backlog, 3 MiB limit)');
ok(-f "$repo/" . gap_key($c[0]) && !-e "$repo/" . wal_key($c[0]), "C: $c[0] has its gap record, no object");
is(scalar(grep { fetch_same($_) } @c[ 2 .. 4 ]), 3, 'C: the 3 newest are stored byte-identical');

# ---- D: async = on
write_config($conf, repo => $repo, 'push-queue-max' => '3MB', async => 'on', 'agent-idle-timeout' => '3s',
	'push-timeout' => '60s');
my @d = build_backlog(6);
$count0 = archived_count();
$off    = length $node->log_content;
resume();
ok($node->wait_for_archive($d[-1], 120), "D: async: everything up to $d[-1] reported archived");
is(archived_count() - $count0, 6, 'D: pg_stat_archiver counts all 6');
$log    = log_since($off);
@warned = $log =~ /walship push: WARNING: dropped ([0-9A-F]{24})/g;
is_deeply(\@warned, [ @d[ 0 .. 2 ] ], 'D: the 3 oldest are dropped by push, each named');
is(scalar(grep { -f "$repo/" . gap_key($_) && !-e "$repo/" . wal_key($_) } @d[ 0 .. 2 ]),
	3, 'D: ... with gap records and no objects');
like($log, qr/walship agent: archived \Q$d[3]\E/, 'D: the newer ones went through the agent');
is(scalar(grep { fetch_same($_) } @d[ 3 .. 5 ]), 3, 'D: ... stored byte-identical');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $d[0], "$base/fetched/y" ]);
is($rc, 1, 'D: fetch of a dropped segment exits 1');

$j = list_json();
($tl) = grep { $_->{timeline} == 1 } @{ $j->{wal}{timelines} };
my @runs = map { "$_->{first}..$_->{last}:$_->{count}" } @{ $tl->{dropped} };
is_deeply(\@runs, [ "$dropped[1]..$dropped[-1]:3", "$c[0]..$c[1]:2", "$d[0]..$d[2]:3" ],
	'list --json: every dropped run, in order');

# ---- E: recovery from the backup taken before the gap stops at the gap
my $copy = WalshipTest::init_from_backup('restored', 'before_gap',
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1);
$copy->start;
ok($copy->poll_query_until('SELECT NOT pg_is_in_recovery()', 't', 120),
	'E: recovery through walship fetch ends (at the first dropped segment)');
# $dropped[0] was pushed by hand after all: the gap now starts at $dropped[1]
like($copy->log_content, qr/walship fetch: \Q$dropped[1]\E is not in the archive.*redo done at/s,
	"E: PostgreSQL ended recovery where fetch found $dropped[1] absent");
is($copy->safe_psql('SELECT max(id) FROM t'), $batch_of{ $dropped[0] },
	"E: the copy has every row up to $dropped[0], the last segment before the gap");
my $lost = "SELECT count(*) FROM t WHERE id = $batch_of{ $dropped[1] }";
is($node->safe_psql($lost) . '/' . $copy->safe_psql($lost), '100/0',
	"E: the rows written into dropped $dropped[1] are on the primary, not on the copy");
$copy->stop;

# restore knows the gap: a target beyond it is refused before anything is written, and
# without a target it warns that recovery stops there
my $beyond = $node->safe_psql('SELECT pg_current_wal_lsn()');
my $rdir   = "$base/restore_gap";
my ($rrc, $rout, $rerr) = run(cmd => [ $bin, '-c', $conf, 'restore', '--pgdata', $rdir,
		'--target-lsn', $beyond, '--dry-run' ]);
is($rrc, 1, 'E: restore to an LSN beyond the gap exits 1');
like($rerr, qr/walship restore: ERROR: the target \Q$beyond\E lies beyond WAL segment \Q$dropped[1]\E, which push-queue-max dropped.*cannot cross that gap/,
	'... naming the first dropped segment') or diag($rerr);
ok(!-e $rdir, '... and writes nothing');
($rrc, $rout, $rerr) = run(cmd => [ $bin, '-c', $conf, 'restore', '--pgdata', $rdir, '--dry-run' ]);
is($rrc, 0, 'E: restore without a target plans') or diag($rerr);
like($rerr, qr/WARNING: WAL segment \Q$dropped[1]\E was dropped by push-queue-max.*stops there, and everything after it is lost/,
	'... and warns that recovery stops at the gap');

$node->stop;
done_testing();
