# 300_restore_pitr.t — point-in-time recovery with walship restore, one target kind at a time,
# from a posix repository. A table whose rows record their insert order (one row per committed
# transaction) grows across two base backups; at chosen moments the test records a time, an
# LSN, a transaction id and a named restore point. Each restore (walship restore, then
# pg_ctl start, replay through walship fetch) must hold exactly the rows committed before its
# target: no more, no fewer. Also: the backup chosen for each target, the restored files
# against the manifest (modes, sizes, SHA-256), the recovery block in postgresql.auto.conf,
# the default action (pause), --target-action shutdown, --target immediate, no target (the end
# of the archive), --standby, --dry-run and the progress line on a terminal; a stale recovery
# target carried by the backups is disabled.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipBackup;
use WalshipRestore;

use Digest::SHA;
use Text::ParseWords qw(shellwords);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = archiving_cluster('primary', $conf);
$node->start;
$node->safe_psql(
	'CREATE TABLE t (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');

# insert_rows($from, $to): one committed transaction per row, in order.
sub insert_rows
{
	my ($from, $to) = @_;
	$node->safe_psql(join('', map { "INSERT INTO t (n) VALUES ($_);\n" } $from .. $to));
	return;
}

# Settings the backups carry in postgresql.auto.conf: an unrelated one, kept as is, and a stale
# recovery target, which restore must disable (PostgreSQL refuses two targets, and one left
# alone would stop the no-target restore at a restore point that never comes).
$node->safe_psql("ALTER SYSTEM SET work_mem = '5MB'");
$node->safe_psql("ALTER SYSTEM SET recovery_target_name = 'stale'");

# ---- the history: rows, backups and targets, with pauses around each boundary (backup stop
# times may be recorded to the second: the pauses keep every choice unambiguous)
insert_rows(1, 10);
my $b1 = take_basebackup($node, \@g, label => 'b1');
sleep 1.2;
insert_rows(11, 20);
sleep 0.05;
my $t_time1 = ts_now($node);    # rows 1..20 committed before it
sleep 0.05;
insert_rows(21, 30);
my $t_lsn = $node->safe_psql('SELECT pg_current_wal_insert_lsn()');    # rows 1..30 before it
insert_rows(31, 40);
sleep 1.2;
my $b2 = take_basebackup($node, \@g, label => 'b2');
sleep 1.2;
insert_rows(41, 44);
my $t_xid = $node->safe_psql(
	"BEGIN;\nINSERT INTO t (n) VALUES (45);\nSELECT pg_current_xact_id();\nCOMMIT;\n");
insert_rows(46, 50);
sleep 0.05;
my $t_time2 = ts_now($node);    # rows 1..50 before it
sleep 0.05;
insert_rows(51, 55);
$node->safe_psql("SELECT pg_create_restore_point('rp55')");
insert_rows(56, 60);
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "everything archived up to $last");
is(rows_summary($node), '60|60', 'the primary holds rows 1..60');
like($t_xid, qr/^\d+$/, "row 45 was committed by transaction $t_xid");
diag("b1 $b1, b2 $b2; time1 $t_time1, lsn $t_lsn, xid $t_xid, time2 $t_time2");

my $backups = list_backups(\@g);
is_deeply([ map { $_->{id} } @$backups ], [ $b1, $b2 ], 'list shows the two backups');

# restore_command as tokens: the absolute walship path, -c <our config>, ..., fetch "%f" "%p".
sub check_restore_command
{
	my ($name, $cmd) = @_;
	my @w = shellwords($cmd // '');
	is($w[0], $bin, "$name: restore_command runs this walship by its absolute path")
	  or diag("restore_command = $cmd");
	my ($ci) = grep { $w[$_] eq '-c' || $w[$_] eq '--config' } 0 .. $#w;
	ok(defined $ci && ($w[ $ci + 1 ] // '') eq $conf, "$name: ... with -c $conf")
	  or diag("restore_command = $cmd");
	is_deeply([ @w[ -3 .. -1 ] ], [ 'fetch', '%f', '%p' ], "$name: ... fetch \"%f\" \"%p\"")
	  or diag("restore_command = $cmd");
	return;
}

# check_block($name, $pgdata, $backup_id, {setting => value}, standby => 0): the walship block
# ends postgresql.auto.conf, names the backup, holds restore_command and exactly the expected
# recovery_target* settings; the right signal file exists.
sub check_block
{
	my ($name, $pgdata, $id, $want, %o) = @_;
	my $blk = recovery_block($pgdata);
	ok($blk, "$name: postgresql.auto.conf has a walship restore block") or return;
	is($blk->{count}, 1, "$name: ... one block");
	ok($blk->{last}, "$name: ... at the end of the file");
	is($blk->{id}, $id, "$name: ... restored from backup $id");
	check_restore_command($name, $blk->{settings}{restore_command});
	my %got = map { $_ => $blk->{settings}{$_} } grep { /^recovery_target/ } keys %{ $blk->{settings} };
	is_deeply(\%got, $want, "$name: recovery settings are exactly the requested ones")
	  or diag(join("\n", @{ $blk->{lines} }));
	my ($yes, $no) = $o{standby} ? qw(standby recovery) : qw(recovery standby);
	ok(-f "$pgdata/$yes.signal", "$name: $yes.signal written");
	ok(!-e "$pgdata/$no.signal", "$name: no $no.signal");
	return;
}

# restore_case(name => ..., args => [...], backup => id, settings => {...}, action => promote,
#              rows => 'count|max', log => qr/.../, keep => 0): restore, check the block,
# start, wait for the end of recovery, compare the rows. Returns the node (stopped unless keep).
sub restore_case
{
	my (%a) = @_;
	my $name = $a{name};
	my $r    = restored_node($name);
	my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata, @{ $a{args} });
	is($rc, 0, "$name: walship restore @{ $a{args} } exits 0") or do { diag($err); return $r };
	ok(-d $r->pgdata && ((stat $r->pgdata)[2] & 07777) == 0700, "$name: PGDATA created 0700");
	check_block($name, $r->pgdata, $a{backup}, $a{settings}, standby => $a{standby});
	$a{before_start}->($r) if $a{before_start};
	configure_restored($r);
	ok($r->start(fail_ok => 1), "$name: PostgreSQL starts on the restored PGDATA") or return $r;
	my $action = $a{action} // 'promote';
	if ($action eq 'standby')
	{
		ok($r->poll_query_until("SELECT count(*) = $a{rows_count} FROM t"),
			"$name: the standby replays the archive");
	}
	else
	{
		ok(wait_recovery_done($r, $action), "$name: recovery reached the target ($action)");
	}
	is(rows_summary($r), $a{rows}, "$name: exactly the rows committed before the target ($a{rows})");
	like($r->log_content, $a{log}, "$name: the server log says why recovery stopped") if $a{log};
	unlike($r->log_content, qr/PANIC|could not restore file .* (corrupt|checksum)/,
		"$name: no PANIC, no fetch failure");
	$r->stop unless $a{keep};
	return $r;
}

# ---- time target between b1 and b2: b1 is chosen
restore_case(
	name     => 'time1',
	args     => [ '--target-time', $t_time1, '--target-action', 'promote' ],
	backup   => $b1,
	settings => { recovery_target_time => $t_time1, recovery_target_action => 'promote' },
	rows     => '20|20',
	log      => qr/recovery stopping before commit of transaction/,
	before_start => sub {
		my ($r) = @_;
		# every file of the manifest, with its mode, size and SHA-256; pg_wal empty
		my $m = read_manifest($repo, $b1);
		my (@bad, $n);
		for my $f (grep { $_->{tablespace} eq 'base' } @{ $m->{files} })
		{
			next if $f->{path} eq 'postgresql.auto.conf';
			my $p  = $r->pgdata . "/$f->{path}";
			my @st = lstat $p;
			if (!@st || !-f _) { push @bad, "$f->{path}: missing"; next }
			push @bad, sprintf('%s: mode %04o, manifest %04o', $f->{path}, $st[2] & 07777, $f->{mode})
			  if ($st[2] & 07777) != $f->{mode};
			push @bad, "$f->{path}: size $st[7], manifest $f->{size}" if $st[7] != $f->{size};
			my $sha = Digest::SHA->new(256);
			$sha->addfile($p, 'b');
			push @bad, "$f->{path}: SHA-256 differs" if $sha->hexdigest ne $f->{sha256};
			$n++;
		}
		ok(!@bad, "time1: all $n files of backup $b1 restored with their modes and contents")
		  or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 19) ]));
		is_deeply([ dir_entries($r->pgdata . '/pg_wal') ], ['archive_status'],
			'time1: pg_wal is empty but for archive_status/');
		ok(-f $r->pgdata . '/backup_label', 'time1: backup_label restored');
		my $ac = slurp_file($r->pgdata . '/postgresql.auto.conf');
		like($ac, qr/^work_mem = '5MB'$/m, "time1: postgresql.auto.conf keeps the backup's settings");
		unlike($ac, qr/^\s*recovery_target_name\s*=\s*'stale'/m,
			"time1: ... but not its stale recovery target");
	});

# ---- LSN target between b1 and b2, default action: PostgreSQL pauses there (hot standby
# readable); resuming ends recovery
my $r = restore_case(
	name     => 'lsn',
	args     => [ '--target-lsn', $t_lsn ],
	backup   => $b1,
	settings => { recovery_target_lsn => $t_lsn },
	action   => 'pause',
	rows     => '30|30',
	log      => qr/recovery stopping after WAL location \(LSN\) "\Q$t_lsn\E"/,
	keep     => 1);
if ($r->is_alive)
{
	$r->safe_psql('SELECT pg_wal_replay_resume()');
	ok($r->poll_query_until('SELECT NOT pg_is_in_recovery()'), 'lsn: resumed, recovery ends');
	is(rows_summary($r), '30|30', 'lsn: still rows 1..30 after promotion');
	$r->safe_psql('INSERT INTO t (n) VALUES (31)');
	is($r->safe_psql('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'),
		'00000002', 'lsn: writable, on timeline 2');
	$r->stop;
}

# ---- xid target after b2: the latest backup is used; the target transaction is included
restore_case(
	name     => 'xid',
	args     => [ '--target-xid', $t_xid, '--target-action', 'promote' ],
	backup   => $b2,
	settings => { recovery_target_xid => $t_xid, recovery_target_action => 'promote' },
	rows     => '45|45',
	log      => qr/recovery stopping after commit of transaction $t_xid\b/);

# ---- time target after b2: b2, the newest backup that ends before it
restore_case(
	name     => 'time2',
	args     => [ '--target-time', $t_time2, '--target-action', 'promote' ],
	backup   => $b2,
	settings => { recovery_target_time => $t_time2, recovery_target_action => 'promote' },
	rows     => '50|50',
	log      => qr/recovery stopping before commit of transaction/);

# ---- a named restore point
restore_case(
	name     => 'name',
	args     => [ '--target-name', 'rp55', '--target-action', 'promote' ],
	backup   => $b2,
	settings => { recovery_target_name => 'rp55', recovery_target_action => 'promote' },
	rows     => '55|55',
	log      => qr/recovery stopping at restore point "rp55"/);

# ---- --target-action shutdown: the server stops by itself at the target
{
	my $r = restored_node('shutdown');
	my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata, '--target-name', 'rp55',
		'--target-action', 'shutdown');
	is($rc, 0, 'shutdown: walship restore exits 0') or diag($err);
	check_block('shutdown', $r->pgdata, $b2,
		{ recovery_target_name => 'rp55', recovery_target_action => 'shutdown' });
	configure_restored($r);
	$r->start(fail_ok => 1);    # pg_ctl -w may see it ready, or already gone
	my $deadline = time + timeout_default();
	sleep 0.1 while $r->is_alive && time < $deadline;
	ok(!$r->is_alive, 'shutdown: the server stopped by itself');
	like($r->log_content, qr/recovery stopping at restore point "rp55".*shutdown at recovery target/s,
		'shutdown: at the restore point');
	$r->kill9;
}

# ---- immediate, from b1 chosen by id: exactly the rows of the backup
restore_case(
	name     => 'immediate',
	args     => [ '--backup', $b1, '--target', 'immediate', '--target-action', 'promote' ],
	backup   => $b1,
	settings => { recovery_target => 'immediate', recovery_target_action => 'promote' },
	rows     => '10|10',
	log      => qr/recovery stopping after reaching consistency/);

# ---- no target: the latest backup, replayed to the end of the archive
restore_case(
	name     => 'end',
	args     => [],
	backup   => $b2,
	settings => {},
	rows     => '60|60');

# ---- --standby: standby.signal; the standby replays everything archived and stays in recovery
$r = restore_case(
	name       => 'standby',
	args       => [ '--standby', '--backup', 'latest' ],
	backup     => $b2,
	settings   => {},
	standby    => 1,
	action     => 'standby',
	rows_count => 60,
	rows       => '60|60',
	keep       => 1);
is($r->safe_psql('SELECT pg_is_in_recovery()'), 't', 'standby: still in recovery') if $r->is_alive;
$r->stop;

# ---- progress: on a terminal, a line redrawn in place that ends at 100%; none without one
{
	my $r = restored_node('tty');
	my $cmd = join(' ', map { "'$_'" } $bin, @g, 'restore', '--pgdata', $r->pgdata);
	my ($rc, $out, $err) = run(cmd => [ 'script', '-qec', $cmd, '/dev/null' ]);
	is($rc, 0, 'on a terminal (script): restore exits 0') or diag("$out$err");
	like($out, qr/\r[^\n]*\(100%\)/, '... with a progress line redrawn in place, ending at 100%')
	  or diag($out);
	my $r2 = restored_node('notty');
	($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r2->pgdata);
	is($rc, 0, 'without a terminal: restore exits 0') or diag($err);
	unlike($err, qr/\r/, '... and no carriage returns on stderr');
}

# ---- --dry-run: the plan on stdout, nothing written
my $dry = "$base/dry";
my ($rc, $out, $err) =
  walship_restore(\@g, '--pgdata', $dry, '--dry-run', '--target-time', $t_time1);
is($rc, 0, 'dry-run exits 0') or diag($err);
like($out, qr/\Q$b1\E/, 'dry-run: names the backup it would use (b1 for time1)');
unlike($out, qr/\Q$b2\E/, "dry-run: ... and not b2, which ends after the target")
  or diag($out);
like($out, qr/recovery_target_time/, 'dry-run: shows the recovery settings');
like($out, qr/\d+\s*(bytes|[KMG]i?B)/i, 'dry-run: shows the bytes to move');
ok(!-e $dry, 'dry-run: PGDATA not created');
make_pg_dir($dry, 0700);
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $dry, '--dry-run', '--target-name', 'rp55');
is($rc, 0, 'dry-run into an empty directory exits 0') or diag($err);
like($out, qr/\Q$b2\E/, 'dry-run: names b2 for a named target (the latest)');
is_deeply([ dir_entries($dry) ], [], 'dry-run: the empty PGDATA stays empty');

done_testing();
