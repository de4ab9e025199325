#!/usr/bin/env perl
# crash.pl — kill -9 trials of a live archive (docs/reliability.md, "Crash and fault trials").
#
#   WALSHIP_BIN=build/walship tests/trials/crash.pl [--trials N] [--seed S] [--only posix-sync,...]
#                                                   [--write-doc [--section NAME]]
#
# Four set-ups share the N trials: posix and S3 (s3rver behind tests/s3/faultproxy.js injecting
# 30 % faults: 503, 500, connection resets, stalls, 200s carrying an <Error>), each with a sync
# push and with the async agent. S3 clusters have 16 MiB segments and store them uncompressed
# (compress = none), so each object is larger than the driver's 16 MiB part size and goes up as
# a multipart upload; posix clusters have 1 MiB segments. Under pgbench load, each trial waits a
# random moment and kill -9s a walship push process, or (async) the agent or a push waiting on
# it. The archive_command is a wrapper that keeps a copy of each file the first time PostgreSQL
# hands it over. Checked:
#   early acks   while the trials run: a file PostgreSQL marked .done (or the agent acknowledged)
#                that the repository does not hold yet, read behind the proxy
#   lost         at the end: a .done file that fetch does not find
#   mismatches   a .done file fetched back different from the kept copy
#   partial      an object in the repository that does not verify (fetch fails on it)
#   leftovers    walship processes alive 30 s after the cluster stopped (a failure), and
#                temporary files left in a posix repository by killed pushes (counted)
#   restore      a base backup taken before the trials, restored with walship restore, replays
#                to the end of the archive and has the primary's rows (count + md5 per table)
# Prints one table; exits non-zero on any loss, mismatch, early ack, partial object, leftover
# process or failed restore. --write-doc rewrites docs/reliability.md's crash table.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib", $FindBin::RealBin;
use WalshipTest;
use WalshipS3;
use WalshipRestore;
use TrialLib;

use File::Compare qw(compare);
use File::Find qw(find);
use Getopt::Long qw(GetOptions);
use POSIX ();
use Time::HiRes qw(sleep time);

my ($trials, $seed, $only, $write_doc, $section) = (200, time % 100000, '', 0, 'crash-trials');
GetOptions('trials=i' => \$trials, 'seed=i' => \$seed, 'only=s' => \$only,
	'write-doc' => \$write_doc, 'section=s' => \$section)
  or die "usage: crash.pl [--trials N] [--seed S] [--only LIST] [--write-doc]\n";
srand($seed);
diag("crash trials: $trials trials, seed $seed");

my $bin  = walship_bin();
my $base = tmp_base();
my @setups = grep { !$only || ",$only," =~ /,$_,/ } qw(posix-sync posix-async s3-sync s3-async);
my $have_s3 = WalshipS3::have_s3rver();
if (!$have_s3)
{
	diag('#' x 70);
	diag('# tests/s3/node_modules is missing: the S3 trials are SKIPPED (run scripts/deps.sh)');
	diag('#' x 70);
	@setups = grep { !/^s3/ } @setups;
}
my $s3 = $have_s3 && grep({ /^s3/ } @setups) ? WalshipS3->s3rver(buckets => ['wal']) : undef;

my @rows;
my $started = time;
my $tree = tree_commit();    # the tree under trial: taken at the start
my $per = int($trials / @setups);
my $extra = $trials - $per * @setups;
for my $i (0 .. $#setups)
{
	my $n = $per + ($i < $extra ? 1 : 0);
	push @rows, run_setup($setups[$i], $n, $i) if $n > 0;
}

my @h = ('set-up', 'trials', 'kills', 'segments archived', 'lost', 'partial objects visible',
	'early acks', 'mismatches', 'leftovers (processes / tmp files)', 'restore to end',
	'S3 faults injected / multipart uploads completed');
my $table = print_table(\@h, [ map { [ @$_{qw(setup trials kills archived lost partial early mismatch leftovers restore s3)} ] } @rows ]);
my %tot;
for my $r (@rows) { $tot{$_} += $r->{$_} for qw(trials kills archived lost partial early mismatch) }
my $summary = sprintf('%d trials (%d kills), %d segments archived, %d lost, %d partial objects '
	  . 'visible, %d early acks, %d mismatches', @tot{qw(trials kills archived lost partial early mismatch)});
diag($summary);
is($tot{lost} + $tot{mismatch} + $tot{early} + $tot{partial}, 0, 'no WAL lost, altered, acknowledged early or left partial');

if ($write_doc)
{
	my $mins = (time - $started) / 60;
	my $text = sprintf("Last full run: %s UTC, tree %s, `tests/trials/crash.pl --trials %d%s` (seed %d), %.0f min; "
		  . "%s; load: pgbench -c 2 (scale 1) during the trials.\n\n%s\nTotal: %s.\n",
		POSIX::strftime('%Y-%m-%d %H:%M', gmtime), $tree, $trials, $only ? " --only $only" : '', $seed, $mins,
		machine_line(), $table, $summary);
	update_doc($section, $text);
}
done_testing();

# ---------------------------------------------------------------------------------------------

sub run_setup
{
	my ($setup, $n, $idx) = @_;
	my ($kind, $mode) = split /-/, $setup;
	my $async = $mode eq 'async' ? 'on' : 'off';
	my $dir = make_pg_dir("$base/$setup", 0700);
	my $kept = make_pg_dir("$dir/kept", 0700);
	my ($repo, %s3cfg, %direct, $px, $segsize);
	my %common = (async => $async, 'push-parallel' => 4, 'agent-idle-timeout' => '5s',
		'archive-timeout' => '30s', 'fetch-prefetch' => 0);
	if ($kind eq 'posix')
	{
		$repo = make_pg_dir("$dir/repo", 0700);
		$segsize = 1;
	}
	else
	{
		$repo = "s3://wal/$setup";
		# a stall holds a request unanswered for 4 s, then cuts it; io-timeout leaves room to retry
		$px = WalshipS3->proxy(upstream => $s3, rate => 0.3, seed => $seed + $idx,
			stall_ms => 4000);
		%s3cfg = $px->config('io-timeout' => 30);
		%direct = $s3->config();
		$common{compress} = 'none';    # 16 MiB + header > the 16 MiB part size: multipart
		$segsize = 16;
	}
	my $conf  = write_config("$dir/walship.conf", repo => $repo, %common, %s3cfg);
	my $dconf = write_config("$dir/direct.conf", repo => $repo, %common, %direct);
	my $ac = keep_wrapper("$dir/archive.sh", $kept, $bin, '-c', $conf, 'push');
	my $node = new_cluster($setup =~ s/-/_/r, archive_command => $ac, wal_keep_size => '8GB',
		wal_segsize => $segsize, conf => { checkpoint_timeout => '30s' });
	$node->start;
	my $pg_wal = $node->pgdata . '/pg_wal';
	my $spool = "$pg_wal/walship";
	my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', 1, '-q', '-h', $node->host,
			'-p', $node->port, 'postgres' ]);
	die "pgbench -i: $err" if $rc;
	my $first = $node->switch_wal;
	$node->wait_for_archive($first, 300) or diag("$setup: the first segment was not archived");
	# the pre-trial base backup, straight to the store (not through the faults)
	my $bb = take_basebackup($node, [ '-c', $dconf ], label => "$setup-pre");

	my $bench = run_bg(cmd => [ pg_bin('pgbench'), '-c', 2, '-T', 3600, '-n', '-h', $node->host,
			'-p', $node->port, 'postgres' ]);

	my (%seen_done, %early);
	my $check_done = sub {
		opendir my $dh, "$pg_wal/archive_status" or return;
		my @done = sort map { /^(.+)\.done$/ ? $1 : () } readdir $dh;
		closedir $dh;
		for my $f (grep { !$seen_done{$_} } @done)
		{
			my ($frc, undef, $ferr) = run(cmd => [ $bin, '-c', $dconf, 'fetch', $f, "$dir/check" ]);
			unlink "$dir/check";
			if ($frc == 0) { $seen_done{$f} = 1 }
			else { $early{$f} = "fetch exit $frc: $ferr"; $seen_done{$f} = 1 }
		}
		# async: an acknowledgement is a promise too
		if ($async eq 'on' && opendir my $sh, $spool)
		{
			for my $a (grep { /\.ack$/ } readdir $sh)
			{
				(my $f = $a) =~ s/\.ack$//;
				next if $seen_done{$f} || $early{"ack:$f"} || $seen_done{"ack:$f"};
				my ($frc, undef, $ferr) = run(cmd => [ $bin, '-c', $dconf, 'fetch', $f, "$dir/check" ]);
				unlink "$dir/check";
				if ($frc == 0) { $seen_done{"ack:$f"} = 1 }
				elsif (-e "$spool/$a") { $early{"ack:$f"} = "fetch exit $frc: $ferr" }
			}
			closedir $sh;
		}
	};

	my $kills = 0;
	my $re_push = qr/\Q$conf\E push /;
	for my $t (1 .. $n)
	{
		$node->switch_wal if rand() < ($kind eq 's3' ? 0.5 : 0.3);
		sleep(0.05 + rand(1.0));
		my $deadline = time + 5;
		my $victim;
		while (!$victim && time < $deadline)
		{
			my @cand = procs_matching($re_push);
			if ($async eq 'on' && (rand() < 0.5 || !@cand))
			{
				my $st = eval { slurp_file("$spool/agent.state") } // '';
				my ($apid) = $st =~ /^pid = (\d+)/m;
				@cand = ($apid) if $apid && pid_alive($apid);
			}
			$victim = $cand[ int rand @cand ] if @cand;
			sleep 0.002 unless $victim;    # a posix push lasts a few ms
		}
		if ($victim && kill('KILL', $victim)) { $kills++ }
		$check_done->() if $t % 3 == 0;
	}
	kill 'INT', -$bench->{pid};
	finish_bg($bench, 60);
	my $last = $node->switch_wal;
	# after three failures in a row the archiver sleeps up to a minute: a reload wakes it
	my $archived_ok = 0;
	my $wdl = time + 900;
	while (time < $wdl)
	{
		last if $archived_ok = $node->safe_psql(
			"SELECT coalesce(last_archived_wal >= '$last', false) FROM pg_stat_archiver") eq 't';
		$node->safe_psql('SELECT pg_reload_conf()');
		sleep 2;
	}
	ok($archived_ok, "$setup: every segment up to $last archived after $kills kills");
	$check_done->();

	# ---- lost / mismatches: every .done file fetched and compared with the kept copy
	opendir my $dh, "$pg_wal/archive_status" or die;
	my @done = sort map { /^(.+)\.done$/ ? $1 : () } readdir $dh;
	closedir $dh;
	my ($lost, $mismatch, $segs) = (0, 0, 0);
	my $fdir = make_pg_dir("$dir/fetched", 0700);
	for my $f (@done)
	{
		$segs++ if $f =~ /^[0-9A-F]{24}$/;
		my ($frc, undef, $ferr) = run(cmd => [ $bin, '-c', $dconf, 'fetch', $f, "$fdir/$f" ]);
		if ($frc != 0) { $lost++; diag("$setup: $f marked .done, fetch exit $frc: $ferr"); next }
		if (!-e "$kept/$f") { diag("$setup: $f marked .done but never handed to archive_command?"); next }
		if (compare("$fdir/$f", "$kept/$f") != 0) { $mismatch++; diag("$setup: $f differs from the copy kept at handover") }
		unlink "$fdir/$f";
	}
	# ---- partial objects: every file ever handed over, if the repository has an object, verifies
	opendir my $kh, $kept or die;
	my @handed = sort grep { !/^\./ } readdir $kh;
	closedir $kh;
	my $partial = 0;
	for my $f (@handed)
	{
		my ($frc, undef, $ferr) = run(cmd => [ $bin, '-c', $dconf, 'fetch', $f, "$fdir/$f" ]);
		unlink "$fdir/$f";
		next if $frc == 0 || $frc == 1;
		$partial++;
		diag("$setup: the object of $f does not verify (exit $frc): $ferr");
	}
	my $tmpfiles = 0;
	if ($kind eq 'posix')
	{
		find({ no_chdir => 1, wanted => sub {
			return unless -f $_;
			if (m{/\.[^/]*\.tmp\.\d+}) { $tmpfiles++; return }
			return unless m{/wal/[0-9A-F]{16}/([0-9A-F]{24}(?:\.partial)?)$};
			my ($frc, undef, $ferr) = run(cmd => [ $bin, '-c', $dconf, 'fetch', $1, "$fdir/x" ]);
			unlink "$fdir/x";
			if ($frc != 0 && !grep { $_ eq $1 } @handed) { $partial++; diag("$setup: $1 in the repository does not verify") }
		} }, $repo);
	}

	# ---- restore of the pre-trial backup, to the end of the archive
	my $want = table_sums($node, qw(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history));
	$node->stop;
	my $restore = $archived_ok ? 'not run' : 'archive incomplete';
	if ($bb && $archived_ok)
	{
		my $r = restored_node("${\($setup =~ s/-/_/r)}_restored");
		my ($rrc, undef, $rerr) = walship_restore([ '-c', $dconf ], '--pgdata', $r->pgdata,
			'--backup', $bb);
		if ($rrc == 0)
		{
			configure_restored($r);
			$r->start;
			if (wait_recovery_done($r))
			{
				my $got = table_sums($r, keys %$want);
				my @bad = grep { $got->{$_} ne $want->{$_} } sort keys %$want;
				$restore = @bad ? 'rows differ: ' . join(',', @bad) : 'ok';
			}
			else { $restore = 'recovery did not end' }
			$r->stop('immediate');
		}
		else { $restore = "walship restore exit $rrc"; diag($rerr) }
	}
	is($restore, 'ok', "$setup: the pre-trial base backup restores to the end with the primary's rows");

	# ---- leftovers: nothing walship started outlives the cluster
	my $deadline = time + 30;
	my @left;
	while (time < $deadline)
	{
		@left = procs_matching(qr/\Q$conf\E|\Q$dconf\E/);
		last unless @left;
		sleep 0.5;
	}
	is(scalar @left, 0, "$setup: no walship process left 30 s after the cluster stopped")
	  or diag("left: @left");
	kill 'KILL', @left;
	my $s3info = '-';
	if ($px)
	{
		my ($faults, $mp) = (0, 0);
		if (open my $lf, '<', $px->{requests})
		{
			while (<$lf>)
			{
				$faults++ unless /^pass /;
				$mp++ if /^pass POST \S*[?&]uploadId=/;
			}
		}
		$s3info = "$faults / $mp";
		cmp_ok($mp, '>', 0, "$setup: multipart uploads completed through the proxy ($mp)");
		$px->stop;
	}
	my %r = (setup => $setup, trials => $n, kills => $kills, archived => $segs, lost => $lost,
		partial => $partial, early => scalar(keys %early), mismatch => $mismatch,
		leftovers => scalar(@left) . " / $tmpfiles", restore => $restore, s3 => $s3info);
	diag("$setup: early: $_ ($early{$_})") for sort keys %early;
	ok($lost == 0 && $mismatch == 0, "$setup: no .done segment lost or altered ($segs segments)");
	is(scalar(keys %early), 0, "$setup: nothing acknowledged before it was stored");
	is($partial, 0, "$setup: no partial object visible");
	return \%r;
}
