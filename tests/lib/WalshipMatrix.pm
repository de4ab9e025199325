package WalshipMatrix;

# WalshipMatrix — the version matrix (tests/t/50x_version_<major>.t): the same story, end to end,
# on one PostgreSQL major, with that major's server binaries (WalshipTest::pg_server_bindir) and
# Debian's 15 client tools (psql, pgbench):
#
#   archive     a live archive under load: pgbench through `walship push` (async, the default);
#               the WAL page magic of the server's segments is the one walship's table has
#               for the major, the repository records the major
#   basebackup  `walship basebackup` while pgbench runs (each major's BASE_BACKUP dialect)
#   pitr-time   a restore to a time: exactly the rows committed before it
#   pitr-other  restores to an LSN, to a transaction id, and --target immediate, exactly
#   pitr-name   a restore to a named restore point (pg_create_restore_point), promoted: the
#               new timeline 2, which archives into the same repository
#   timeline    a restore of the first backup that follows timeline 2 (--target-timeline latest)
#               to a restore point made there: the rows of both branches, exactly
#   prefetch    that replay went through the prefetching fetch (fetch-prefetch, the default):
#               segments served from the spool
#
# Every restored cluster also checks pgbench's invariant (the accounts' balances add up to the
# history's deltas): replay kept whole transactions. The steps' results and seconds end up in one
# table row, printed with diag. A major whose server binaries are missing FAILS (scripts/deps.sh
# installs them); it is not skipped.
#
#     use WalshipMatrix;
#     version_matrix(13);
#     done_testing();

use strict;
use warnings;
use Carp qw(croak);
use Exporter 'import';
use Time::HiRes qw(sleep time);
use Test::More ();
require WalshipTest;
require WalshipRestore;

our @EXPORT = qw(version_matrix);

# XLOG_PAGE_MAGIC of each major, from PostgreSQL's own source (src/include/access/
# xlog_internal.h of each release): the servers' segments must carry these, and walship's table
# (walship/wal.c) must agree, which pushing them proves.
my %MAGIC = (13 => 0xD106, 14 => 0xD10D, 15 => 0xD110, 16 => 0xD113, 17 => 0xD116, 18 => 0xD118);

my @STEPS = qw(archive basebackup pitr-time pitr-other pitr-name timeline prefetch);

# The steps' outcome: name => { ok => 0|1, secs => ... }.
my %RESULT;
my $T0;

sub _step
{
	my ($name, $code) = @_;
	my $tb     = Test::More->builder;
	my $before = $tb->current_test;
	my $t0     = time;
	my $ok     = eval { $code->(); 1 };
	Test::More::fail("$name: died: $@") unless $ok;
	my @details = ($tb->details)[ $before .. $tb->current_test - 1 ];
	my $pass    = $ok && !grep { !$_->{ok} } @details;
	$RESULT{$name} = { ok => $pass ? 1 : 0, secs => time - $t0 };
	return $pass;
}

sub _insert_rows
{
	my ($node, $from, $to) = @_;
	$node->safe_psql(join('', map { "INSERT INTO t (n) VALUES ($_);\n" } $from .. $to));
	return;
}

# pgbench's invariant on a restored cluster: every transaction replayed whole or not at all
sub _pgbench_consistent
{
	my ($node) = @_;
	return $node->safe_psql(
		'SELECT (SELECT sum(abalance) FROM pgbench_accounts) = '
		  . '(SELECT coalesce(sum(delta), 0) FROM pgbench_history)');
}

# restore_to($name, \@global, \@args, $bindir) -> the restored, started, promoted node (or undef
# after a failed test).
sub _restore_to
{
	my ($name, $g, $args, $bindir, $ts_oid, %o) = @_;
	my $r = WalshipRestore::restored_node($name, bindir => $bindir);
	my $ts = WalshipTest::tmp_base() . "/ts_$name";
	my ($rc, $out, $err) =
	  WalshipRestore::walship_restore($g, '--pgdata', $r->pgdata, @$args, '--target-action',
		'promote', '--tablespace-map', "$ts_oid=$ts");
	Test::More::is($rc, 0, "$name: walship restore @$args exits 0") or do { Test::More::diag($err); return };
	WalshipRestore::configure_restored($r, %o);
	Test::More::ok($r->start(fail_ok => 1), "$name: the restored cluster starts") or return;
	Test::More::ok(WalshipRestore::wait_recovery_done($r), "$name: recovery reached its target and promoted")
	  or return;
	Test::More::is(_pgbench_consistent($r), 't', "$name: pgbench's balances add up (whole transactions)");
	Test::More::is(readlink($r->pgdata . "/pg_tblspc/$ts_oid"), $ts, "$name: tablespace $ts_oid restored to $ts");
	return $r;
}

sub version_matrix
{
	my ($major) = @_;
	$T0 = time;
	my $bindir = WalshipTest::pg_server_bindir($major);
	if (!Test::More::ok(defined $bindir, "PostgreSQL $major server binaries are installed"))
	{
		Test::More::diag("no initdb/pg_ctl/postgres of PostgreSQL $major (tests/pg/node_modules/"
			  . "pg$major/native/bin, or /usr/lib/postgresql/$major/bin): run scripts/deps.sh");
		$RESULT{$_} = { ok => 0, secs => 0 } for @STEPS;
		_report($major);
		return 0;
	}
	my $bin  = WalshipTest::walship_bin();
	my $base = WalshipTest::tmp_base();
	my $repo = WalshipTest::make_pg_dir("$base/repo", 0700);
	# async and fetch-prefetch are left at their defaults (on, 8): those are what is tested
	my $conf = WalshipTest::write_config("$base/walship.conf", repo => $repo,
		'agent-idle-timeout' => '5s');
	my @g    = ('-c', $conf);
	my $push = "$bin -c $conf push %p";
	my @pgbench;

	my $primary = WalshipTest::new_cluster('primary', bindir => $bindir, archive_command => $push);
	my ($b1, $t_time, $t_lsn, $t_xid, $tl2, $follow, $ts_oid);
	_step(
		'archive',
		sub {
			$primary->start;
			my $ver = $primary->safe_psql('SHOW server_version_num');
			Test::More::like($ver, qr/^${major}\d{4}$/, "the server is PostgreSQL $major ($ver)");
			Test::More::diag("PostgreSQL $major: " . $primary->safe_psql('SELECT version()'));
			@pgbench = (WalshipTest::pg_bin('pgbench'), '-h', $primary->host, '-p', $primary->port);
			my ($rc, $out, $err) = WalshipTest::run(cmd => [ @pgbench, '-i', '-q', '-s', '2', 'postgres' ]);
			Test::More::is($rc, 0, 'pgbench -i -s 2 (client 15)') or Test::More::diag($err);
			# the rows the restores count live in a tablespace: a second archive in the backup
			# (13/14: a second CopyOut)
			my $tsdir = WalshipTest::make_pg_dir("$base/ts_primary", 0700);
			$primary->safe_psql("CREATE TABLESPACE ts1 LOCATION '$tsdir'");
			$ts_oid = $primary->safe_psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'");
			$primary->safe_psql('CREATE TABLE t (n int PRIMARY KEY, '
				  . 'at timestamptz NOT NULL DEFAULT clock_timestamp()) TABLESPACE ts1');
			my $seg = $primary->switch_wal;
			Test::More::ok($primary->wait_for_archive($seg), "archived up to $seg");
			my $id = WalshipTest::slurp_file("$repo/walship.repo");
			Test::More::like($id, qr/^pg-version = $major$/m, "the repository records PostgreSQL $major");
			my ($magic) = unpack('v', substr(WalshipTest::slurp_file($primary->pgdata . "/pg_wal/$seg"), 0, 2)
				  // "\0\0");
			Test::More::is(sprintf('0x%04X', $magic // 0), sprintf('0x%04X', $MAGIC{$major}),
				"the server's WAL page magic is PostgreSQL ${major}'s");
			Test::More::like($primary->log_content, qr/walship agent: archived /,
				'the async agent archived it (async = on, the default)');
		});

	_step(
		'basebackup',
		sub {
			# a backup of a cluster under load: pgbench runs through it and after it
			my $bg = WalshipTest::run_bg(cmd => [ @pgbench, '-c', '2', '-T', '5', '-n', 'postgres' ]);
			sleep 1;
			# MAX_RATE too (1 GB/s: no slower), for its place in each dialect's syntax
			$b1 = WalshipRestore::take_basebackup($primary, \@g, label => "pg$major",
				extra => [ '--basebackup-max-rate', '1048576' ]);
			my ($rc, $out, $err) = WalshipTest::finish_bg($bg);
			Test::More::is($rc, 0, 'pgbench -c 2 -T 5 ran through the backup') or Test::More::diag($err);
			my $list = WalshipRestore::list_backups(\@g);
			Test::More::is(scalar(@$list), 1, 'list shows the backup');
			if (defined $b1)
			{
				require WalshipBackup;
				my $mf = eval { WalshipBackup::read_manifest($repo, $b1) } // {};
				Test::More::like($mf->{info}{'pg-version-num'} // '', qr/^${major}\d{4}$/,
					"the backup manifest records PostgreSQL $major");
				my @in_ts = grep { $_->{tablespace} eq $ts_oid } @{ $mf->{files} // [] };
				Test::More::ok(@in_ts >= 1,
					scalar(@in_ts) . " files of tablespace $ts_oid in the backup, beside the data directory's");
			}
		});

	_step(
		'pitr-time',
		sub {
			_insert_rows($primary, 1, 20);
			sleep 0.05;
			$t_time = WalshipRestore::ts_now($primary);
			sleep 0.05;
			_insert_rows($primary, 21, 25);
			$t_lsn = $primary->safe_psql('SELECT pg_current_wal_insert_lsn()');    # rows 1..25 before it
			_insert_rows($primary, 26, 30);
			$primary->safe_psql("SELECT pg_create_restore_point('rp30')");
			_insert_rows($primary, 31, 34);
			$t_xid = $primary->safe_psql(
				"BEGIN;\nINSERT INTO t (n) VALUES (35);\nSELECT pg_current_xact_id();\nCOMMIT;\n");
			_insert_rows($primary, 36, 40);
			my $last = $primary->switch_wal;
			Test::More::ok($primary->wait_for_archive($last), "everything archived up to $last");
			$primary->stop;
			my $r = _restore_to('time', \@g, [ '--target-time', $t_time ], $bindir, $ts_oid) or return;
			Test::More::is(WalshipRestore::rows_summary($r), '20|20',
				'time: exactly the 20 rows committed before the target time');
			Test::More::like($r->log_content, qr/recovery stopping before commit of transaction/,
				'time: the server log says it stopped at the time');
			$r->stop;
		});

	_step(
		'pitr-other',
		sub {
			my $r = _restore_to('lsn', \@g, [ '--target-lsn', $t_lsn ], $bindir, $ts_oid) or return;
			Test::More::is(WalshipRestore::rows_summary($r), '25|25', "lsn: exactly the 25 rows before $t_lsn");
			$r->stop;
			$r = _restore_to('xid', \@g, [ '--target-xid', $t_xid ], $bindir, $ts_oid) or return;
			Test::More::is(WalshipRestore::rows_summary($r), '35|35',
				"xid: the 35 rows up to and with transaction $t_xid");
			$r->stop;
			$r = _restore_to('immediate', \@g, [ '--target', 'immediate' ], $bindir, $ts_oid) or return;
			Test::More::is(WalshipRestore::rows_summary($r), '0|0',
				'immediate: the backup alone, consistent (t was empty then)');
			$r->stop;
		});

	_step(
		'pitr-name',
		sub {
			$tl2 = _restore_to('name', \@g, [ '--target-name', 'rp30', '--archive-mode', 'preserve' ], $bindir, $ts_oid,
				archive_command => $push) or return;
			Test::More::is(WalshipRestore::rows_summary($tl2), '30|30',
				'name: exactly the 30 rows before the restore point rp30');
			Test::More::like($tl2->log_content, qr/recovery stopping at restore point "rp30"/,
				'name: the server log says it stopped at rp30');
			Test::More::is($tl2->safe_psql('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)'),
				'00000002', 'name: promoted to timeline 2');
		});

	_step(
		'timeline',
		sub {
			croak 'no timeline 2 (pitr-name failed)' unless $tl2 && $tl2->is_alive;
			_insert_rows($tl2, 101, 110);
			$tl2->safe_psql("SELECT pg_create_restore_point('tl2_110')");
			_insert_rows($tl2, 111, 115);
			my $last = $tl2->switch_wal;
			Test::More::ok($tl2->wait_for_archive($last), "timeline 2 archived up to $last");
			Test::More::ok(-f "$repo/wal/history/00000002.history", '00000002.history is in the repository');
			$tl2->stop;
			my $r = _restore_to('follow', \@g,
				[ '--backup', $b1, '--target-name', 'tl2_110', '--target-timeline', 'latest' ], $bindir, $ts_oid)
			  or return;
			Test::More::is(WalshipRestore::rows_summary($r), '40|110',
				'follow: rows 1..30 of timeline 1 and 101..110 of timeline 2, exactly');
			Test::More::like($r->log_content,
				qr/restored log file "00000002\.history" from archive.*recovery stopping at restore point "tl2_110"/s,
				'follow: the replay fetched 00000002.history and followed timeline 2');
			Test::More::unlike($r->log_content, qr/PANIC|could not restore file/, 'follow: no PANIC, no fetch failure');
			$r->stop;
			$follow = $r;
		});

	_step(
		'prefetch',
		sub {
			my $r = $follow or croak 'no replay to look at (timeline failed)';
			my $log  = $r->log_content;
			my @hits = $log =~ /walship fetch: restored (\S+) from the prefetch spool/g;
			my @all  = $log =~ /restored log file "([0-9A-F]{24})" from archive/g;
			Test::More::diag(scalar(@hits) . ' of ' . scalar(@all)
				  . ' segments of the timeline-following replay came from the prefetch spool');
			Test::More::cmp_ok(scalar @all, '>=', 10, 'the replay restored at least 10 segments');
			Test::More::cmp_ok(scalar @hits, '>=', @all / 2,
				'at least half of them were served by the prefetch agent (fetch-prefetch = 8, the default)');
		});

	_report($major);
	return 1;
}

sub _report
{
	my ($major) = @_;
	my $head = sprintf('| %-7s |', 'version') . join('', map { sprintf(' %-10s |', $_) } @STEPS) . ' total   |';
	my $row  = sprintf('| %-7s |', "PG $major")
	  . join('', map { sprintf(' %-10s |', ($RESULT{$_}{ok} ? 'ok' : 'FAIL') . sprintf(' %.0fs', $RESULT{$_}{secs} // 0)) } @STEPS)
	  . sprintf(' %-7s |', sprintf('%.0fs', time - $T0));
	Test::More::diag("version matrix:\n$head\n$row");
	return;
}

1;
