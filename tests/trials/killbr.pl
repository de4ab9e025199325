#!/usr/bin/env perl
# killbr.pl — kill -9 of walship basebackup mid-stream and of walship restore midway
# (docs/reliability.md, "Basebackup and restore killed").
#
#   WALSHIP_BIN=build/walship tests/trials/killbr.pl [--trials N] [--seed S] [--write-doc]
#
# A posix repository, a cluster of pgbench scale 10 (about 160 MB) archiving into it. N times:
# walship basebackup is started and kill -9'd (its process group) after a random 0.1–4 s.
# Then walship list must show exactly the backups whose run reported "complete" (a killed one
# is never listed: its manifest is written last), and list's incomplete_backups the rest.
# Then N times: walship restore of the last complete backup is kill -9'd after a random
# 0.05–2 s; a killed restore must leave no global/pg_control (PostgreSQL refuses to start
# there), and the same command with --delta must finish it, after which the cluster replays
# to the end of the archive with the primary's rows (count + md5 per table).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib", $FindBin::RealBin;
use WalshipTest;
use WalshipRestore;
use TrialLib;

use Getopt::Long qw(GetOptions);
use JSON::PP qw(decode_json);
use POSIX ();
use Time::HiRes qw(sleep time);

my ($trials, $seed, $write_doc) = (20, time % 100000, 0);
GetOptions('trials=i' => \$trials, 'seed=i' => \$seed, 'write-doc' => \$write_doc)
  or die "usage: killbr.pl [--trials N] [--seed S] [--write-doc]\n";
srand($seed);
my $started = time;
my $tree = tree_commit();
diag("basebackup/restore kill trials: $trials of each, seed $seed");

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my $conf = write_config("$base/walship.conf", repo => $repo, 'agent-idle-timeout' => '5s');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p", wal_keep_size => '1GB');
$node->start;
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', 10, '-q', '-h', $node->host,
		'-p', $node->port, 'postgres' ]);
die "pgbench -i: $err" if $rc;
my $pgconn = $node->connstr;

# running($pid): alive and not a zombie waiting to be reaped
sub running
{
	my ($pid) = @_;
	my $st = eval { slurp_file("/proc/$pid/stat") } // '';
	return $st =~ /^\d+ \(.*\) ([A-Z])/ && $1 ne 'Z';
}

# ---- basebackup killed mid-stream
my (%complete, $bb_kills);
for my $t (1 .. $trials)
{
	# at most 32 MB/s from the server: the stream lasts some 5 s, the kill lands inside it
	my $h = run_bg(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn, '--checkpoint',
			'fast', '--label', "kill-$t", '--basebackup-max-rate', 32768 ]);
	sleep(0.1 + rand 3.9);
	my $alive = running($h->{pid});
	kill 'KILL', -$h->{pid} if $alive;
	$bb_kills++ if $alive;
	my ($brc, undef, $berr) = finish_bg($h, 120);
	$complete{$1} = 1 if $brc == 0 && $berr =~ /backup (\S+) complete/;
	$node->safe_psql('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())');
}
# one that is not killed, so that there is something to restore
my $last = take_basebackup($node, [ '-c', $conf ], label => 'last');
$complete{$last} = 1 if $last;
my $list = decode_json((run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]))[1] || '{}');
my %listed = map { $_->{id} => 1 } @{ $list->{backups} // [] };
my @wrong = grep { !$complete{$_} } sort keys %listed;
my @missing = grep { !$listed{$_} } sort keys %complete;
is(scalar @wrong, 0, 'list shows no backup whose run was killed') or diag("listed but killed: @wrong");
is(scalar @missing, 0, 'list shows every backup that completed') or diag("completed, not listed: @missing");
my $incomplete = scalar @{ $list->{incomplete_backups} // [] };

# ---- restore killed midway, then finished with --delta
$node->safe_psql('CHECKPOINT');
my $sw = $node->switch_wal;
$node->wait_for_archive($sw, 120);
my $want = table_sums($node, qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history));
$node->stop;
my ($rs_kills, $startable, $delta_ok, $rows_ok) = (0, 0, 0, 0);
for my $t (1 .. $trials)
{
	my $r = restored_node("restored$t");
	my @cmd = ($bin, '-c', $conf, 'restore', '--pgdata', $r->pgdata, '--backup', $last);
	my $h = run_bg(cmd => \@cmd);
	sleep(0.05 + rand 1.95);
	kill 'KILL', -$h->{pid} if running($h->{pid});
	my ($xrc) = finish_bg($h, 300);
	if ($xrc != 0)
	{
		$rs_kills++;
		# a killed restore must not look startable
		$startable++ if -e $r->pgdata . '/global/pg_control';
		my ($drc, undef, $derr) = run(cmd => [ @cmd, '--delta' ], timeout => 600);
		if ($drc == 0) { $delta_ok++ }
		else { diag("restore $t: --delta after the kill failed ($drc): $derr"); next }
	}
	else { $delta_ok++ }
	# replaying every restored copy costs a minute; every fourth (and the last) is started
	if ($t % 4 == 0 || $t == $trials)
	{
		configure_restored($r);
		if ($r->start(fail_ok => 1) && wait_recovery_done($r))
		{
			my $got = table_sums($r, keys %$want);
			my @bad = grep { $got->{$_} ne $want->{$_} } sort keys %$want;
			$rows_ok++ unless @bad;
			diag("restore $t: rows differ in @bad") if @bad;
		}
		else { diag("restore $t: the restored cluster did not recover") }
		$r->stop('immediate', fail_ok => 1);
	}
	File::Path::remove_tree($r->basedir);
}
my $started_n = int($trials / 4) + ($trials % 4 ? 1 : 0);
is($startable, 0, 'no killed restore left a startable PGDATA (global/pg_control)');
is($delta_ok, $trials, 'every killed restore was finished by the same command with --delta');
is($rows_ok, $started_n, "every started copy replayed to the end with the primary's rows ($rows_ok/$started_n)");

my $table = print_table(
	[ 'trial', 'runs', 'killed mid-way', 'complete', 'result' ],
	[
		[ 'walship basebackup, kill -9', $trials, $bb_kills, scalar(keys %complete) - 1,
			sprintf('%d killed listed, %d complete missing; %d incomplete backups counted by list', scalar @wrong, scalar @missing, $incomplete) ],
		[ 'walship restore, kill -9', $trials, $rs_kills, $trials - $rs_kills,
			sprintf('%d startable after a kill; %d/%d finished with --delta; %d/%d started copies exact', $startable, $delta_ok, $trials, $rows_ok, $started_n) ],
	]);
if ($write_doc)
{
	update_doc('kill-trials', sprintf("Last full run: %s UTC, tree %s, `tests/trials/killbr.pl --trials %d` (seed %d; make trials runs it), %.0f min; %s.\n\n%s",
		POSIX::strftime('%Y-%m-%d %H:%M', gmtime), $tree, $trials, $seed, (time - $started) / 60, machine_line(), $table));
}
done_testing();
