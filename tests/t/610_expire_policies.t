# 610_expire_policies.t — walship expire on a simulated history (posix). Thirteen real base
# backups are taken with their clock shifted into the past (test-clock-offset, tests only:
# docs/retention.md, "Testing") so that they lie 400 days .. 0 days apart. Each policy —
# retention-full, -days, -daily, -weekly, -monthly, -yearly, pins, and combinations — is
# checked (dry run, JSON) against an independent computation here of what must be kept and
# why. Then a real expire: the removed backups and the WAL outside the window and the kept
# backups' ranges are gone, history files and the identity stay, list still works, a second
# expire has nothing to do, point-in-time recovery from the oldest backup of the window to a
# restore point inside it gets the right rows, and a backup kept only by a tier restores to
# consistency from its own WAL.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use File::Find qw(find);
use JSON::PP qw(decode_json);
use POSIX qw(floor);
use Time::Local qw(timegm);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int)');

my $DAY = 86400;
my @ago = (400, 300, 200, 100, 60, 35, 20, 10, 5, 3, 2, 1, 0);
my %id_ago;
my $n = 0;
for my $d (@ago) {
	$node->safe_psql("INSERT INTO t SELECT generate_series($n * 100 + 1, $n * 100 + 100)");
	$n++;
	my $off = -$d * $DAY;
	my $id = take_basebackup($node, [ '-c', $conf, '--test-clock-offset', $off ],
		label => "ago $d", extra => [ '--expire-auto', 'off' ]);
	$id_ago{$id} = $d if $id;
}
is(scalar(keys %id_ago), scalar(@ago), 'thirteen backups taken');
$node->switch_wal;

sub list_json
{
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
	is($rc, 0, 'list --json exits 0') or diag($err);
	return decode_json($out);
}

sub epoch
{
	my ($s) = @_;
	my ($y, $mo, $d, $h, $mi, $se) = $s =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/ or die $s;
	return timegm($se, $mi, $h, $d, $mo - 1, $y);
}

my @backups = @{ list_json()->{backups} };
$_->{stop} = epoch($_->{stop_time}) for @backups;
$_->{start} = epoch($_->{start_time}) for @backups;

# ---- the independent computation ----
sub period
{
	my ($t, $tier) = @_;
	my $day = floor($t / $DAY);
	return $day if $tier eq 'daily';
	return floor(($day + 3) / 7) if $tier eq 'weekly';
	my @g = gmtime($t);
	return ($g[5] + 1900) * 12 + $g[4] if $tier eq 'monthly';
	return $g[5] + 1900;
}

sub expected
{
	my ($pol, $now, %pins) = @_;
	my %keep;
	my @b = @backups;    # oldest first (start time)
	if ($pol->{full}) {
		my @n = reverse @b;
		$keep{ $_->{id} }{full} = 1 for @n[ 0 .. ($pol->{full} > @n ? @n : $pol->{full}) - 1 ];
	}
	if ($pol->{days}) {
		my $from = $now - $pol->{days} * $DAY;
		my ($before) = sort { $b->{stop} <=> $a->{stop} } grep { $_->{stop} < $from } @b;
		$keep{ $_->{id} }{days} = 1 for grep { $_->{stop} >= $from } @b;
		$keep{ $before->{id} }{days} = 1 if $before;
	}
	for my $tier (qw(daily weekly monthly yearly)) {
		next unless $pol->{$tier};
		my $cur = period($now, $tier);
		my %best;
		for my $x (@b) {
			my $p = period($x->{stop}, $tier);
			next if $p > $cur || $p <= $cur - $pol->{$tier};
			$best{$p} = $x if !$best{$p} || $x->{stop} > $best{$p}{stop};
		}
		$keep{ $_->{id} }{$tier} = 1 for values %best;
	}
	$keep{$_}{pin} = 1 for keys %pins;
	$keep{ $b[-1]{id} }{newest} = 1;
	return { map { $_ => join(',', sort keys %{ $keep{$_} }) } keys %keep };
}

sub expire_json
{
	my (@args) = @_;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire', '--json', @args ]);
	my $j = eval { decode_json($out) };
	return ($rc, $j, $err);
}

sub got_keep
{
	my ($j) = @_;
	my %k;
	for my $b (@{ $j->{repositories}[0]{backups} }) {
		$k{ $b->{id} } = join(',', sort @{ $b->{rules} }) if $b->{action} eq 'keep';
	}
	return \%k;
}

my $now = time;
my @policies = (
	{ full => 3 },
	{ days => 30 },
	{ days => 4 },
	{ daily => 3 },
	{ weekly => 5 },
	{ monthly => 4 },
	{ yearly => 2 },
	{ full => 2, monthly => 12, yearly => 3 },
	{ daily => 30, weekly => 52, monthly => 84 },
);
for my $pol (@policies) {
	my @flags = map { ("--retention-$_", $pol->{$_}) } sort keys %$pol;
	my $what = join(' ', map { "$_=$pol->{$_}" } sort keys %$pol);
	my ($rc, $j, $err) = expire_json('--dry-run', @flags);
	is($rc, 0, "dry run ($what) exits 0") or diag($err);
	is_deeply(got_keep($j), expected($pol, $now), "$what: the kept backups and their rules")
	  or diag(explain($j));
}

# a pin keeps an old backup by its pin
my ($old) = grep { $id_ago{$_} == 300 } keys %id_ago;
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'pin', $old, '--note', 'audit 2025' ]);
is($rc, 0, 'pin exits 0') or diag($err);
{
	my ($r2, $j) = expire_json('--dry-run', '--retention-full', 2);
	is_deeply(got_keep($j), expected({ full => 2 }, $now, $old => 1), 'full 2 + a pin');
}
my @wal_before = wal_files();
my ($r3, $dry) = expire_json('--dry-run', '--retention-full', 2);
is_deeply([ wal_files() ], \@wal_before, 'a dry run removes nothing');

sub wal_files
{
	my @f;
	find({ no_chdir => 1, wanted => sub { push @f, $1 if -f $_ && m{/wal/.+/([^/]+)$} } },
		"$repo/wal");
	return sort @f;
}

# ---- the real thing: retention-days 4 + monthly 3 + the pin ----
$node->safe_psql("INSERT INTO t SELECT generate_series(100001, 100050)");
$node->safe_psql("SELECT pg_create_restore_point('inside')");
my $want = $node->safe_psql("SELECT count(*) FROM t");
$node->safe_psql("INSERT INTO t SELECT generate_series(200001, 200050)");
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'the restore point is archived');

my $pol = { days => 4, monthly => 3 };
my $exp = expected($pol, time, $old => 1);
($rc, my $j, $err) =
  expire_json('--retention-days', 4, '--retention-monthly', 3);
is($rc, 0, 'expire exits 0') or diag($err);
is_deeply(got_keep($j), $exp, 'expire kept what the policy says');
my $r = $j->{repositories}[0];
ok($r->{wal_removed}{count} > 0, "WAL removed ($r->{wal_removed}{count} objects)");
ok($r->{bytes_freed} > 0, 'bytes freed reported');
my @left = map { $_->{id} } @{ list_json()->{backups} };
is_deeply([ sort @left ], [ sort keys %$exp ], 'list shows exactly the kept backups');
for my $id (keys %id_ago) {
	next if $exp->{$id};
	ok(!-e "$repo/backup/$id", "removed backup $id left nothing");
}
ok(-f "$repo/walship.repo", 'the identity stays');
my @hist = grep { /\.history$/ } @wal_before;
ok(!grep({ my $h = $_; !grep { $_ eq $h } wal_files() } @hist), 'history files stay');

# WAL: what stays is the window (from the oldest days-kept backup) and the GFS ranges
my $window = $r->{window}{from_segment};
my %kept_range;
for my $b (@backups) {
	next unless $exp->{ $b->{id} };
	$kept_range{$_} = 1 for $b->{start_wal} .. $b->{stop_wal};
}
my @bad;
for my $f (wal_files()) {
	next if $f =~ /\.history$/;
	my $s = substr($f, 0, 24);
	push @bad, $f if $s lt $window && !$kept_range{$s};
}
is_deeply(\@bad, [], "no WAL left below the window ($window) outside the kept backups");
my @missing = grep { my $s = substr($_, 0, 24); $s ge $window && !grep { $_ eq $s } wal_files() }
  grep { !/\./ } @wal_before;
is_deeply(\@missing, [], 'no WAL removed from the window');
for my $b (@backups) {
	next unless $exp->{ $b->{id} };
	my @need = grep { my $x = $_; !grep { $_ eq $x } wal_files() }
	  map { $_ } ($b->{start_wal}, $b->{stop_wal});
	is_deeply(\@need, [], "backup $b->{id} keeps its start and stop segments");
}

($rc, $j, $err) = expire_json('--retention-days', 4, '--retention-monthly', 3);
is($rc, 0, 'a second expire exits 0');
is($j->{repositories}[0]{backups_removed} + $j->{repositories}[0]{wal_removed}{count}, 0,
	'and has nothing to do');

# ---- a target older than everything kept is refused by restore's plan ----
{
	my $rx = restored_node('outside');
	my ($orc, $oout, $oerr) = walship_restore([ '-c', $conf ], '--pgdata', $rx->pgdata,
		'--target-time', '2020-01-01 00:00:00+00');
	is($orc, 1, 'restore to a target before every kept backup exits 1');
	like($oerr, qr/no backup ends before the target 2020-01-01 00:00:00\+00; the oldest restorable point is/,
		'... saying the oldest restorable point');
	ok(!-e $rx->pgdata . '/PG_VERSION', '... and restores nothing');
}

# ---- point-in-time recovery inside the window, from its oldest backup ----
my ($first) = map { $_->{from_backup} } ($r->{window});
my $rn = restored_node('pitr');
($rc, $out, $err) = walship_restore([ '-c', $conf ], '--pgdata', $rn->pgdata, '--backup', $first,
	'--target-name', 'inside', '--target-action', 'promote');
is($rc, 0, "restore of $first to the restore point") or diag($err);
configure_restored($rn);
$rn->start;
ok(wait_recovery_done($rn), 'recovery reached the restore point');
is($rn->safe_psql('SELECT count(*) FROM t'), $want, 'the rows at the restore point');
$rn->stop;

# ---- every backup kept only by a tier or a pin restores to consistency from its own WAL ----
my @gfs = sort grep { $exp->{$_} !~ /\b(?:days|full|newest)\b/ } keys %$exp;
ok(@gfs >= 2, 'backups kept by the monthly tier or the pin alone: ' . join(' ', @gfs));
for my $g (@gfs) {
	my $rg = restored_node("gfs_$g");
	($rc, $out, $err) = walship_restore([ '-c', $conf ], '--pgdata', $rg->pgdata, '--backup', $g,
		'--target', 'immediate', '--target-action', 'promote');
	is($rc, 0, "restore of $g ($exp->{$g})") or diag($err);
	configure_restored($rg);
	$rg->start;
	ok(wait_recovery_done($rg), "$g reached consistency from its own WAL");
	$rg->stop;
}

done_testing();
