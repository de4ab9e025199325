#!/usr/bin/env perl
# pitr.pl — randomized point-in-time-recovery trials (docs/reliability.md, "PITR trials").
#
#   WALSHIP_BIN=build/walship tests/trials/pitr.pl [--trials N] [--seed S] [--only posix|s3]
#                                                  [--write-doc]
#
# For each repository kind (posix, and S3 on s3rver; trials alternate between them) a history
# is built first:
#   - a primary (timeline 1) with a tablespace, under a random sequential workload: inserts,
#     updates, deletes, DDL (tables created in either tablespace, dropped, altered), prepared
#     transactions committed or rolled back later; async push (the default) archives it;
#   - walship basebackups at random moments, restore points, and after each commit, with some
#     probability, a recorded point: the target (a time, an LSN, an xid, a restore point name)
#     with the state the database had there — row count and md5 of every public table, computed
#     by PostgreSQL, not by walship;
#   - halfway, a copy restored from the repository to one restore point and promoted: it
#     archives on timeline 2 into the same repository, runs its own workload, backups and
#     points. The primary goes on on timeline 1.
# Each trial then picks a recorded point at random (time, LSN, xid, name, immediate = a backup's
# consistent point, or the end of timeline 1 or 2) and a backup it can be reached from, restores
# with walship restore (--target-timeline the point's timeline; the prefetching fetch on) into a
# scratch PGDATA with its own tablespace directory, promotes, and compares every table. A miss
# prints the seed and the trial; the same --seed rebuilds the same workload.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib", $FindBin::RealBin;
use WalshipTest;
use WalshipS3;
use WalshipRestore;
use TrialLib;

use Getopt::Long qw(GetOptions);
use POSIX ();
use Time::HiRes qw(sleep time);

my ($trials, $seed, $only, $write_doc, $steps) = (50, time % 100000, '', 0, 40);
GetOptions('trials=i' => \$trials, 'seed=i' => \$seed, 'only=s' => \$only,
	'write-doc' => \$write_doc, 'steps=i' => \$steps)
  or die "usage: pitr.pl [--trials N] [--seed S] [--only posix|s3] [--steps N] [--write-doc]\n";
srand($seed);
diag("PITR trials: $trials trials, seed $seed");
my $started = time;
my $tree = tree_commit();    # the tree under trial: taken at the start

my $bin  = walship_bin();
my $base = tmp_base();
my @kinds = grep { !$only || $_ eq $only } qw(posix s3);
if (grep({ $_ eq 's3' } @kinds) && !WalshipS3::have_s3rver())
{
	diag('#' x 70);
	diag('# tests/s3/node_modules is missing: the S3 PITR trials are SKIPPED (run scripts/deps.sh)');
	diag('#' x 70);
	@kinds = grep { $_ ne 's3' } @kinds;
}
my $s3 = grep({ $_ eq 's3' } @kinds) ? WalshipS3->s3rver(buckets => ['wal']) : undef;

my %hist = map { $_ => build_history($_) } @kinds;

my (%by_kind, @misses);
for my $t (1 .. $trials)
{
	my $kind = $kinds[ ($t - 1) % @kinds ];
	my $r = run_trial($hist{$kind}, $t);
	$by_kind{$kind}{ $r->{kind} }{n}++;
	$by_kind{$kind}{ $r->{kind} }{ok}++ if $r->{ok};
	if (!$r->{ok})
	{
		push @misses, "trial $t ($kind, $r->{kind} $r->{desc}): $r->{why}";
		diag("MISS: seed $seed trial $t: $kind $r->{kind} $r->{desc}: $r->{why}");
	}
}
my @tk = qw(time lsn xid name immediate end);
my @rows;
for my $kind (@kinds)
{
	my ($n, $ok) = (0, 0);
	my @cells = map {
		my $c = $by_kind{$kind}{$_} // { n => 0, ok => 0 };
		$n += $c->{n};
		$ok += $c->{ok} // 0;
		($c->{ok} // 0) . '/' . $c->{n}
	} @tk;
	my $h = $hist{$kind};
	push @rows, [ $kind, "$ok/$n", @cells, scalar(@{ $h->{backups} }), scalar(@{ $h->{points} }),
		join(',', sort keys %{ $h->{tlis} }) ];
}
my $table = print_table([ 'repository', 'exact', map({ "target $_" } @tk), 'backups', 'points recorded', 'timelines' ], \@rows);
my $exact = 0;
$exact += $_->{ok} // 0 for map { values %$_ } values %by_kind;
my $summary = "$exact/$trials trials exact (seed $seed)" . (@misses ? '; misses: ' . join('; ', @misses) : '');
diag($summary);
is(scalar @misses, 0, "every PITR trial restored the exact recorded state ($exact/$trials)");
if ($write_doc)
{
	my $text = sprintf("Last full run: %s UTC, tree %s, `make pitr-trials PITR_TRIALS=%d PITR_SEED=%d`, %.0f min; %s; "
		  . "workload: %d random steps per timeline, sequential, in one session.\n\n%s\n%s.\n",
		POSIX::strftime('%Y-%m-%d %H:%M', gmtime), $tree, $trials, $seed,
		(time - $started) / 60, machine_line(), $steps, $table, $summary);
	update_doc('pitr-trials', $text);
}
done_testing();

# ---------------------------------------------------------------------------------------------

sub public_state
{
	my ($node) = @_;
	my @t = split /\n/, $node->safe_psql(
		"SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
	my $s = table_sums($node, @t);
	return join ' ', map { "$_=$s->{$_}" } sort keys %$s;
}

# One node's workload state: its tables, a pending prepared transaction, counters.
sub workload_step
{
	my ($h, $node, $w) = @_;
	my $r = rand;
	my @tables = sort keys %{ $w->{tables} };
	my $tab = $tables[ int rand @tables ];
	my $xid;
	if ($r < 0.55)
	{
		my $dml;
		if ($r < 0.3)
		{
			$dml = "INSERT INTO $tab (id, v) SELECT g, md5(random()::text) FROM generate_series("
			  . ($w->{next_id} + 1) . ', ' . ($w->{next_id} += 1 + int rand 200) . ') g RETURNING 1';
		}
		elsif ($r < 0.45) { $dml = "UPDATE $tab SET v = md5(v) WHERE id % 7 = " . int(rand 7) . ' RETURNING 1' }
		else { $dml = "DELETE FROM $tab WHERE id % 11 = " . int(rand 11) . ' RETURNING 1' }
		$xid = $node->safe_psql("WITH w AS ($dml) SELECT txid_current() FROM (SELECT count(*) FROM w) c");
	}
	elsif ($r < 0.7)
	{
		# DDL takes an exclusive lock: never on the table a prepared transaction holds
		my @free = grep { !$w->{prepared} || $_ ne $w->{prepared_table} } @tables;
		$tab = $free[ int rand @free ];
		my $d = rand;
		if ($d < 0.45 || @tables < 3 || !defined $tab)
		{
			my $new = 't' . $w->{tli} . '_' . ++$w->{ntab};
			my $ts = rand() < 0.5 ? ' TABLESPACE ts' : '';
			$node->safe_psql("CREATE TABLE $new (id int, v text)$ts; INSERT INTO $new SELECT g, md5(g::text) FROM generate_series(1, 50) g");
			$w->{tables}{$new} = 1;
		}
		elsif ($d < 0.75)
		{
			$node->safe_psql("DROP TABLE $tab");
			delete $w->{tables}{$tab};
		}
		else { $node->safe_psql("ALTER TABLE $tab ADD COLUMN c$w->{ntab}_" . int(rand 1000) . " int DEFAULT " . int(rand 100)) }
	}
	elsif ($r < 0.85)
	{
		if (!$w->{prepared})
		{
			$w->{prepared} = "gx$w->{tli}_" . ++$w->{nprep};
			$node->safe_psql("BEGIN; INSERT INTO $tab (id, v) VALUES (-1, 'prepared'); PREPARE TRANSACTION '$w->{prepared}'");
			$w->{prepared_table} = $tab;
			return;    # nothing committed
		}
		my $how = rand() < 0.7 ? 'COMMIT' : 'ROLLBACK';
		$node->safe_psql("$how PREPARED '$w->{prepared}'");
		$w->{prepared} = undef;
	}
	else { return }
	# a committed step: maybe record a point here
	return unless rand() < 0.6;
	my $state = public_state($node);
	my @k = ('time', 'lsn', 'name', defined $xid ? ('xid', 'xid') : ());
	my $kind = $k[ int rand @k ];
	my %p = (kind => $kind, tli => $w->{tli}, state => $state);
	if ($kind eq 'time')
	{
		$p{value} = $node->safe_psql("SELECT clock_timestamp() AT TIME ZONE 'UTC' || '+00'");
		sleep 0.02;    # the next commit is later than the target
	}
	elsif ($kind eq 'lsn')
	{
		$p{value} = $node->safe_psql('SELECT pg_current_wal_insert_lsn()');
		# recovery_target_lsn (inclusive) applies the first record at or after it: a message
		# record, which changes nothing, rather than the workload's next commit
		$node->safe_psql("SELECT pg_logical_emit_message(false, 'walship-trial', 'lsn point')");
	}
	elsif ($kind eq 'xid') { $p{value} = $xid }
	else
	{
		$p{value} = 'rp_' . ++$h->{nrp};
		$node->safe_psql("SELECT pg_create_restore_point('$p{value}')");
	}
	$p{lsn} = lsn_num($node->safe_psql('SELECT pg_current_wal_insert_lsn()'));
	push @{ $h->{points} }, \%p;
	return;
}

sub lsn_num
{
	my ($hi, $lo) = split m{/}, shift;
	return hex($hi) * 4294967296 + hex($lo);
}

sub backup_now
{
	my ($h, $node, $w, $label) = @_;
	my $state = public_state($node);    # sequential workload: nothing changes during the backup
	my $id = take_basebackup($node, [ '-c', $h->{conf} ], label => $label);
	return unless $id;
	my $lsn = lsn_num($node->safe_psql('SELECT pg_current_wal_insert_lsn()'));
	push @{ $h->{backups} }, { id => $id, tli => $w->{tli}, lsn => $lsn };
	push @{ $h->{points} }, { kind => 'immediate', tli => $w->{tli}, value => $id, backup => $id,
		state => $state, lsn => $lsn };
	return;
}

sub run_steps
{
	my ($h, $node, $w, $n) = @_;
	for my $i (1 .. $n)
	{
		workload_step($h, $node, $w);
		$node->switch_wal if rand() < 0.15;
		backup_now($h, $node, $w, "tl$w->{tli}-$i") if rand() < 0.07;
	}
	return;
}

sub build_history
{
	my ($kind) = @_;
	my $dir = make_pg_dir("$base/$kind", 0700);
	my %s3cfg = $kind eq 's3' ? $s3->config() : ();
	my $repo = $kind eq 's3' ? "s3://wal/pitr-$seed" : make_pg_dir("$dir/repo", 0700);
	my %h = (kind => $kind, backups => [], points => [], nrp => 0, tlis => { 1 => 1 });
	# the defaults: async push, prefetching fetch
	$h{conf} = write_config("$dir/walship.conf", repo => $repo, 'agent-idle-timeout' => '10s', %s3cfg);
	my $ac = "$bin -c $h{conf} push %p";
	my $p = new_cluster("${kind}_primary", archive_command => $ac, wal_keep_size => '1GB',
		conf => { max_prepared_transactions => 5, autovacuum => 'off' });
	$p->start;
	my $tsdir = make_pg_dir("$dir/ts_primary", 0700);
	$p->safe_psql("CREATE TABLESPACE ts LOCATION '$tsdir'");
	$h{ts_oid} = $p->safe_psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts'");
	$p->safe_psql('CREATE TABLE a (id int, v text); CREATE TABLE b (id int, v text) TABLESPACE ts');
	my %w1 = (tli => 1, tables => { a => 1, b => 1 }, next_id => 0, ntab => 0, nprep => 0);
	# the first backup comes after the tablespace (a replayed CREATE TABLESPACE would write to
	# the primary's own location)
	backup_now(\%h, $p, \%w1, 'first');
	run_steps(\%h, $p, \%w1, int($steps / 2));
	# the branch: a restore point, then a copy restored to it and promoted onto timeline 2.
	# No prepared transaction may be open across it: PostgreSQL 15 itself cannot recover past
	# a timeline switch with one (at the switch's checkpoint it reads the PREPARE record from
	# the old timeline's segment, which recovery never restored: "requested WAL segment
	# 00000001...  has already been removed"), whatever the restore_command.
	if ($w1{prepared})
	{
		$p->safe_psql("COMMIT PREPARED '$w1{prepared}'");
		$w1{prepared} = undef;
	}
	my $rp = 'branch_' . $seed;
	$p->safe_psql("SELECT pg_create_restore_point('$rp')");
	my $branch_lsn = lsn_num($p->safe_psql('SELECT pg_current_wal_insert_lsn()'));
	my $branch_state = public_state($p);
	$p->safe_psql("INSERT INTO a VALUES (-2, 'after the branch point')");
	my $sw = $p->switch_wal;
	$p->wait_for_archive($sw, 300);
	my $c = restored_node("${kind}_branch");
	my $ctsdir = make_pg_dir("$dir/ts_branch", 0700);
	my ($rc, undef, $err) = walship_restore([ '-c', $h{conf} ], '--pgdata', $c->pgdata,
		'--backup', $h{backups}[0]{id}, '--target-name', $rp, '--target-action', 'promote',
		'--tablespace-map', "$h{ts_oid}=$ctsdir", '--archive-mode', 'preserve');
	die "restore of the branch failed ($rc): $err" if $rc;
	configure_restored($c, archive_command => $ac, conf => { max_prepared_transactions => 5 });
	$c->start;
	wait_recovery_done($c) or die 'the branch did not promote';
	my $ctli = 0 + $c->safe_psql('SELECT timeline_id FROM pg_control_checkpoint()');
	$ctli = 0 + $c->safe_psql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)::bit(32)::int")
	  if $ctli < 2;
	$h{tlis}{$ctli} = 1;
	$h{branch} = { tli => $ctli, lsn => $branch_lsn };
	diag("$kind: branch on timeline $ctli at restore point $rp");
	my $cstate = public_state($c);
	push @misses, "branch copy state differs from the restore point" if $cstate ne $branch_state;
	# prepared transactions survive in the copy: its workload starts without one (they are
	# finished by the primary only)
	my @cp = split /\n/, $c->safe_psql('SELECT gid FROM pg_prepared_xacts');
	$c->safe_psql("ROLLBACK PREPARED '$_'") for @cp;
	my %w2 = (tli => $ctli, tables => { %{ $w1{tables} } }, next_id => 1_000_000, ntab => 0, nprep => 0);
	# both timelines go on, interleaved
	for my $i (1 .. int($steps / 2))
	{
		run_steps(\%h, $c, \%w2, 1);
		run_steps(\%h, $p, \%w1, 1);
	}
	backup_now(\%h, $c, \%w2, 'branch-last') unless grep { $_->{tli} == $ctli } @{ $h{backups} };
	for my $pair ([ $p, \%w1 ], [ $c, \%w2 ])
	{
		my ($n, $w) = @$pair;
		$n->safe_psql("COMMIT PREPARED '$w->{prepared}'") if $w->{prepared};
		$w->{prepared} = undef;
		# a last commit after every point (a time target needs a later commit to stop at)
		$n->safe_psql("CREATE TABLE IF NOT EXISTS sentinel (x int); INSERT INTO sentinel VALUES (1)");
		push @{ $h{points} }, { kind => 'end', tli => $w->{tli}, value => "timeline $w->{tli}",
			state => public_state($n), lsn => lsn_num($n->safe_psql('SELECT pg_current_wal_insert_lsn()')) };
		my $last = $n->switch_wal;
		$n->wait_for_archive($last, 300) or diag("$kind: timeline $w->{tli} not archived up to $last");
		$n->stop;
	}
	diag(sprintf('%s: %d backups, %d points (%s)', $kind, scalar @{ $h{backups} }, scalar @{ $h{points} },
		join(' ', map { "$_->{kind}\@$_->{tli}" } @{ $h{points} })));
	return \%h;
}

# The backups a point can be recovered to from: on its timeline before it, or on timeline 1
# before the branch for a point on the branch's timeline.
sub eligible_backups
{
	my ($h, $p) = @_;
	return grep { $_->{id} eq $p->{backup} } @{ $h->{backups} } if $p->{kind} eq 'immediate';
	return grep {
		($_->{tli} == $p->{tli} && $_->{lsn} <= $p->{lsn})
		  || ($p->{tli} != 1 && $_->{tli} == 1 && $_->{lsn} <= $h->{branch}{lsn})
	} @{ $h->{backups} };
}

sub run_trial
{
	my ($h, $t) = @_;
	# a kind first, then a point of that kind (so that rare kinds get their share)
	my %pk;
	push @{ $pk{ $_->{kind} } }, $_ for grep { eligible_backups($h, $_) } @{ $h->{points} };
	my @kinds = sort keys %pk;
	my $kind = $kinds[ int rand @kinds ];
	my $p = $pk{$kind}[ int rand @{ $pk{$kind} } ];
	my @bs = eligible_backups($h, $p);
	my $bk = $bs[ int rand @bs ];
	my @target = $kind eq 'time' ? ('--target-time', $p->{value})
	  : $kind eq 'lsn'       ? ('--target-lsn', $p->{value})
	  : $kind eq 'xid'       ? ('--target-xid', $p->{value})
	  : $kind eq 'name'      ? ('--target-name', $p->{value})
	  : $kind eq 'immediate' ? ('--target', 'immediate')
	  : ();
	my $maxtli = (sort { $b <=> $a } keys %{ $h->{tlis} })[0];
	my $tl = $p->{tli} == $maxtli && rand() < 0.5 ? 'latest' : $p->{tli};
	my @action = @target ? ('--target-action', 'promote') : ();
	my $desc = "$p->{value} on timeline $p->{tli} from backup $bk->{id} (timeline $bk->{tli}), --target-timeline $tl";
	my %r = (kind => $kind, desc => $desc, ok => 0);
	my $name = "$h->{kind}_trial$t";
	my $node = restored_node($name);
	my $tsdir = make_pg_dir($node->basedir . '/ts', 0700);
	my ($rc, undef, $err) = walship_restore([ '-c', $h->{conf} ], '--pgdata', $node->pgdata,
		'--backup', $bk->{id}, @target, @action, '--target-timeline', $tl,
		'--tablespace-map', "$h->{ts_oid}=$tsdir");
	if ($rc)
	{
		$r{why} = "walship restore exit $rc: $err";
		return \%r;
	}
	configure_restored($node, conf => { max_prepared_transactions => 5 });
	if (!$node->start(fail_ok => 1))
	{
		$r{why} = 'the restored cluster did not start: ' . $node->_log_tail(10);
		return \%r;
	}
	if (!wait_recovery_done($node))
	{
		$r{why} = 'recovery did not end: ' . $node->_log_tail(10);
		$node->stop('immediate', fail_ok => 1);
		return \%r;
	}
	my $got = public_state($node);
	$node->stop('immediate', fail_ok => 1);
	File::Path::remove_tree($node->basedir) if $got eq $p->{state};
	if ($got ne $p->{state})
	{
		$r{why} = "state differs:\n  want $p->{state}\n  got  $got";
		return \%r;
	}
	$r{ok} = 1;
	return \%r;
}
