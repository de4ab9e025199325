# 330_restore_bad_input.t — walship restore refusing what it must refuse, each time with the
# exit code, a clear message and nothing written: usage errors (exit 2), an unknown backup id,
# a target older than every backup (the message names the oldest restorable point), a
# non-empty PGDATA (suggesting --delta), a PGDATA with a running postmaster, a corrupt backup
# object midway (exit 1 naming the object; the PGDATA left cannot be started; once the object
# is repaired, --delta over it finishes the restore), a missing data object, forged manifests
# whose entries escape PGDATA or a tablespace (../, absolute paths, a symlink, a file below a
# symlink) refused before anything is written, and a manifest of an unknown later version.
# Also the restore_command written for a repository given by --repo or WALSHIP_REPO (no config
# file): it repeats --repo, and PostgreSQL recovers through it; and two repositories, the first
# without backups.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipBackup;
use WalshipRestore;

use Digest::SHA qw(sha256_hex);
use File::Find qw(find);
use Text::ParseWords qw(shellwords);
use Time::HiRes qw(sleep);

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = archiving_cluster('primary', $conf);
$node->start;
$node->safe_psql('CREATE TABLE t (n int PRIMARY KEY);
	INSERT INTO t SELECT generate_series(1, 100)');
my $b1 = take_basebackup($node, \@g, label => 'b1');
sleep 1.2;
$node->safe_psql('INSERT INTO t SELECT generate_series(101, 200)');
my $b2 = take_basebackup($node, \@g, label => 'b2');
$node->safe_psql('INSERT INTO t SELECT generate_series(201, 300)');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
my ($info1) = grep { $_->{id} eq $b1 } @{ list_backups(\@g) };

# all files under a directory (relative paths), for "nothing written" checks
sub files_under
{
	my ($dir) = @_;
	my @f;
	return () unless -e $dir;
	find({ no_chdir => 1, wanted => sub { push @f, $_ =~ s{^\Q$dir\E/?}{}r if $_ ne $dir } }, $dir);
	return sort @f;
}

# refused($name, \@global, \@args, $exit, [qr/.../...], $pgdata): one refusal, checked.
sub refused
{
	my ($name, $global, $args, $exit, $res, $pgdata) = @_;
	my ($rc, $out, $err) = walship_restore($global, @$args);
	note("$name: exit $rc: $err");
	is($rc, $exit, "$name: exit $exit") or diag("stdout: $out\nstderr: $err");
	like($err, qr/^walship( restore)?: /m, "$name: a walship error on stderr") if $exit == 2;
	like($err, qr/^walship restore: /m, "$name: the message is prefixed 'walship restore:'")
	  if $exit == 1;
	like($err, $_, "$name: message matches $_") for @$res;
	ok(!-e $pgdata, "$name: PGDATA not created") if defined $pgdata;
	return $err;
}

# ---- usage errors: exit 2, PGDATA not created
my $nd = "$base/never";
my @usage = (
	[ 'no --pgdata', [] ],
	[ 'two targets', [ '--pgdata', $nd, '--target-name', 'x', '--target-xid', '1000' ] ],
	[ 'unknown --target', [ '--pgdata', $nd, '--target', 'soon' ] ],
	[ 'bad --target-action', [ '--pgdata', $nd, '--target-name', 'x', '--target-action', 'explode' ] ],
	[ '--target-action without a target', [ '--pgdata', $nd, '--target-action', 'promote' ] ],
	[ 'bad --target-timeline', [ '--pgdata', $nd, '--target-timeline', 'newest' ] ],
	[ 'malformed --target-lsn', [ '--pgdata', $nd, '--target-lsn', 'not-an-lsn' ] ],
	[ 'malformed --target-time', [ '--pgdata', $nd, '--target-time', 'yesterday-ish' ] ],
	[ 'malformed --tablespace-map', [ '--pgdata', $nd, '--tablespace-map', '16384' ] ],
	[ 'unknown option', [ '--pgdata', $nd, '--no-such-option' ] ],
);
refused("usage: $_->[0]", \@g, $_->[1], 2, [], $nd) for @usage;

# ---- unknown backup id
refused('unknown backup', \@g, [ '--pgdata', $nd, '--backup', '19990101T000000Z' ], 1,
	[qr/19990101T000000Z/], $nd);

# ---- a target older than every backup: "no backup", naming the oldest restorable point
my ($day, $hms) = ($info1->{stop_time} // '') =~ /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)/;
refused('time before every backup', \@g,
	[ '--pgdata', $nd, '--target-time', '2000-01-01 00:00:00+00' ], 1,
	[ qr/no backup/, qr/\Q$day\E[T ]\Q$hms\E/ ], $nd);
refused('LSN before every backup', \@g, [ '--pgdata', $nd, '--target-lsn', '0/10' ], 1,
	[ qr/no backup/, qr/\Q$info1->{stop_lsn}\E/ ], $nd);

# ---- a PGDATA that is not empty
my $ne = make_pg_dir("$base/notempty/pgdata", 0700);
spurt_file("$ne/keep.me", "precious\n");
refused('non-empty PGDATA', \@g, [ '--pgdata', $ne ], 1, [ qr/not empty/, qr/--delta/ ]);
is_deeply([ files_under($ne) ], ['keep.me'], 'non-empty PGDATA: nothing added');
is(slurp_file("$ne/keep.me"), "precious\n", 'non-empty PGDATA: its file untouched');

# ---- a running postmaster (the primary's own PGDATA), even with --delta
my $pd = $node->pgdata;
my $before = tree_snapshot($pd, skip => qr{^(pg_wal|pg_stat_tmp|pg_stat|pg_xact|pg_subtrans|pg_logical|global|base|pg_multixact|pg_dynshmem)(/|$)|^postmaster});
refused('running postmaster (--delta)', \@g, [ '--pgdata', $pd, '--delta' ], 1, [qr/running/]);
refused('running postmaster', \@g, [ '--pgdata', $pd ], 1, [qr/running|not empty/]);
my $after = tree_snapshot($pd, skip => qr{^(pg_wal|pg_stat_tmp|pg_stat|pg_xact|pg_subtrans|pg_logical|global|base|pg_multixact|pg_dynshmem)(/|$)|^postmaster});
is_deeply([ diff_snapshots($before, $after) ], [],
	'running postmaster: its configuration files untouched, no signal file');
is($node->safe_psql('SELECT count(*) FROM t'), '300', 'running postmaster: the primary is fine');

# ---- the repository given by --repo or WALSHIP_REPO: restore_command repeats it
for my $how (qw(flag env))
{
	my $r = restored_node("repo_$how");
	my ($rc, $out, $err) =
	  $how eq 'flag'
	  ? walship_restore([ '--repo', $repo ], '--pgdata', $r->pgdata)
	  : walship_restore([], '--pgdata', $r->pgdata, { env => { WALSHIP_REPO => $repo } });
	is($rc, 0, "repo by $how: restore exits 0") or diag($err);
	my $blk = recovery_block($r->pgdata) // { settings => {} };
	my @w = shellwords($blk->{settings}{restore_command} // '');
	is_deeply(\@w, [ $bin, '--repo', $repo, 'fetch', '%f', '%p' ],
		"repo by $how: restore_command = walship --repo $repo fetch \"%f\" \"%p\"")
	  or diag($blk->{settings}{restore_command});
	next unless $how eq 'flag';
	configure_restored($r);
	ok($r->start(fail_ok => 1) && wait_recovery_done($r), "repo by $how: PostgreSQL recovers through it");
	is($r->safe_psql('SELECT count(*) FROM t'), '300', "repo by $how: all rows") if $r->is_alive;
	$r->stop;
}

# ---- several repositories: the first holds no backup, the second does; restore takes it from
# there, and PostgreSQL's fetch through the same config file finds the WAL there too
{
	my $empty = make_pg_dir("$base/empty_repo", 0700);
	# an identified repository without backups: one without walship.repo is an outage to fetch
	spurt_file("$empty/walship.repo", slurp_file("$repo/walship.repo"));
	chown_pg("$empty/walship.repo");
	my $mconf = write_config("$base/multi.conf", repo1 => $empty, repo2 => $repo);
	my $r = restored_node('multi');
	my ($rc, $out, $err) = walship_restore([ '-c', $mconf ], '--pgdata', $r->pgdata);
	is($rc, 0, 'two repositories, the first without backups: restore exits 0') or diag($err);
	is((recovery_block($r->pgdata) // {})->{id}, $b2, '... the latest backup of the second');
	configure_restored($r);
	ok($r->start(fail_ok => 1) && wait_recovery_done($r), '... and PostgreSQL recovers');
	is($r->safe_psql('SELECT count(*) FROM t'), '300', '... with all rows') if $r->is_alive;
	$r->stop;
	is_deeply([ dir_entries($empty) ], ['walship.repo'], '... the repository without backups keeps only its identity');
}

# ---- a corrupt data object (a copy of the repository; the last data object of b2, bytes
# flipped in its middle): exit 1 naming the object, and the PGDATA left cannot start
$node->stop;
my $crepo = "$base/repo_corrupt";
system('cp', '-a', $repo, $crepo) == 0 or die 'cp -a repo';
my $cconf = write_config("$base/corrupt.conf", repo => $crepo);
my ($victim) = reverse sort grep { /^\d+$/ } dir_entries("$crepo/backup/$b2/data");
my $vpath = "$crepo/backup/$b2/data/$victim";
my $vgood = slurp_file($vpath);
{
	my $size = -s $vpath;
	open my $fh, '+<:raw', $vpath or die "$vpath: $!";
	my $at = 64 + int(($size - 64) / 2);
	seek $fh, $at, 0;
	read $fh, my $buf, 64;
	seek $fh, $at, 0;
	print $fh ($buf ^ ("\xA5" x length $buf));
	close $fh;
}
my $cr = restored_node('corrupt');
my $err = refused('corrupt object', [ '-c', $cconf ], [ '--pgdata', $cr->pgdata, '--backup', $b2 ], 1,
	[ qr{backup/\Q$b2\E/data/\Q$victim\E}, qr/corrupt|checksum/i ]);
ok(!-e $cr->pgdata . '/global/pg_control', 'corrupt object: no global/pg_control in PGDATA');
ok(!-e $cr->pgdata . '/recovery.signal' && !recovery_block($cr->pgdata),
	'corrupt object: no recovery configuration written');
if (-d $cr->pgdata)
{
	configure_restored($cr);
	ok(!$cr->start(fail_ok => 1), 'corrupt object: pg_ctl start fails on what was left');
	$cr->kill9 if $cr->is_alive;
}
else
{
	pass('corrupt object: no PGDATA left at all');
}
# the hint's way out: the object repaired, restore --delta finishes the job
spurt_file($vpath, $vgood);
my ($rc, $out);
($rc, $out, $err) = walship_restore([ '-c', $cconf ], '--pgdata', $cr->pgdata, '--backup', $b2,
	'--delta');
is($rc, 0, 'object repaired: restore --delta over the incomplete PGDATA exits 0') or diag($err);
configure_restored($cr);
ok($cr->start(fail_ok => 1) && wait_recovery_done($cr), '... and PostgreSQL recovers from it');
is($cr->safe_psql('SELECT count(*) FROM t'), '300', '... with all rows') if $cr->is_alive;
$cr->stop;

# a data object missing (removed by hand, or a partial copy of the repository)
rename $vpath, "$vpath.away" or die "rename $vpath: $!";
my $mr = restored_node('missing');
refused('missing object', [ '-c', $cconf ], [ '--pgdata', $mr->pgdata, '--backup', $b2 ], 1,
	[qr{backup/\Q$b2\E/data/\Q$victim\E}]);
ok(!-e $mr->pgdata . '/global/pg_control', 'missing object: no global/pg_control in PGDATA');
rename "$vpath.away", $vpath;

# a data object whose (valid, re-encoded) header claims more than the manifest puts in it: the
# header is untrusted, so the object is refused before its stream is read, not followed for as
# long as it claims (a hostile store could claim a terabyte of zeros)
{
	my $vkind = ord(substr($vgood, 7, 1));
	forge_object($vpath, read_object($vpath) . ("\0" x (1 << 20)), $vkind);
	my $lr = restored_node('oversized');
	refused('oversized object', [ '-c', $cconf ], [ '--pgdata', $lr->pgdata, '--backup', $b2 ], 1,
		[ qr{backup/\Q$b2\E/data/\Q$victim\E}, qr/more than this object may hold/ ]);
	ok(!-e $lr->pgdata . '/global/pg_control', 'oversized object: no global/pg_control in PGDATA');
	spurt_file($vpath, $vgood);
}

# ---- forged manifests: entries escaping PGDATA are refused before anything is written.
# The forgery is a valid object (docs/repository-format.md, codec none); first an unchanged
# copy, which list must still accept (so the refusals below are about the paths).
my $erepo = "$base/repo_evil";
system('cp', '-a', $repo, $erepo) == 0 or die 'cp -a repo';
my $econf = write_config("$base/evil.conf", repo => $erepo);
my $mpath = "$erepo/backup/$b2/walship.manifest";
my $kind  = ord(substr(slurp_file($mpath), 7, 1));
my $plain = read_object($mpath);
forge_object($mpath, $plain, $kind);
my ($lrc, $lout, $lerr) = run(cmd => [ $bin, '-c', $econf, 'list', '--json' ]);
like($lout, qr/"id":\s*"\Q$b2\E"/, 'a re-encoded (codec none) manifest is accepted by list')
  or diag("$lrc $lout $lerr");

my ($label_line) = $plain =~ /^(file = base \S+ \S+ \S+ \S+ backup_label \S+)$/m;
ok($label_line, "b2's manifest has a backup_label line to borrow extents from");
my ($mtime) = $label_line =~ /^file = base \S+ (\S+)/;
my $abs = "$base/abs_escape";
my $outside = make_pg_dir("$base/outside", 0700);
my @evil = (
	[ 'file ../',         $label_line =~ s/ backup_label / ..\/escape_file /r,       '../escape_file' ],
	[ 'file ../../',      $label_line =~ s/ backup_label / base\/..\/..\/escape2 /r, 'base/../../escape2' ],
	[ 'absolute file',    $label_line =~ s/ backup_label / $abs /r,                   $abs ],
	[ 'dir ../',          "dir = base 0700 $mtime ../escape_dir",                    '../escape_dir' ],
	[ 'symlink ../',      "symlink = base 0777 $mtime ../escape_link /etc",          '../escape_link' ],
	# a file below a symlink of the backup: written through it, it would land in $outside
	[ 'file below a symlink', "symlink = base 0777 $mtime via_link $outside\n"
		  . ($label_line =~ s/ backup_label / via_link\/escape3 /r), 'via_link' ],
	# a tablespace's file climbing out of the tablespace directory
	[ 'tablespace file ../', "tablespace = 99999 $base/ts_forged\n"
		  . "symlink = base 0777 $mtime pg_tblspc/99999 $base/ts_forged\n"
		  . ($label_line =~ s/^file = base (.*) backup_label /file = 99999 $1 ..\/escape_ts /r),
		'../escape_ts' ],
);
my $nevil = 0;
for my $e (@evil)
{
	my ($what, $line, $shown) = @$e;
	# just before global/pg_control, the last file: a check made while restoring comes too late
	my $forged = $plain =~ s/^(file = base \S+ \S+ \S+ \S+ global\/pg_control )/$line\n$1/mr;
	# the counts follow the lines (a count that disagrees is refused on its own, test 422)
	my $nfiles = () = $line =~ /^file /mg;
	my $nts    = () = $line =~ /^tablespace /mg;
	$forged =~ s/^file-count = (\d+)$/'file-count = ' . ($1 + $nfiles)/me;
	$forged =~ s/^tablespace-count = (\d+)$/'tablespace-count = ' . ($1 + $nts)/me;
	isnt($forged, $plain, "$what: forged manifest line '$line'");
	forge_object($mpath, $forged, $kind);
	my $ev = restored_node('evil' . ++$nevil);
	refused("manifest with $what", [ '-c', $econf ], [ '--pgdata', $ev->pgdata, '--backup', $b2 ], 1,
		[qr/\Q$shown\E/]);
	is_deeply([ files_under($ev->pgdata) ], [], "$what: nothing written in PGDATA");
	is_deeply([ grep { $_ ne 'sock' } dir_entries($ev->basedir) ], [ grep { -e $ev->pgdata } 'pgdata' ],
		"$what: nothing written beside PGDATA");
	ok(!-e $abs && !-e "$base/escape_ts" && !-e "$base/ts_forged",
		"$what: nothing written at the absolute path or the forged tablespace");
	is_deeply([ dir_entries($outside) ], [], "$what: nothing written through a symlink");
}

# a manifest of a later format version: refused, nothing written
forge_object($mpath, $plain =~ s/^walship-backup-manifest = 1$/walship-backup-manifest = 2/mr, $kind);
my $vr = restored_node('version2');
refused('manifest version 2', [ '-c', $econf ], [ '--pgdata', $vr->pgdata, '--backup', $b2 ], 1,
	[qr/version|walship-backup-manifest/i]);
is_deeply([ files_under($vr->pgdata) ], [], 'manifest version 2: nothing written');

done_testing();
