# 422_restore_forged_manifest.t — a tampered manifest cannot write outside PGDATA, and its modes
# are never applied. A backup of a cluster with a tablespace is copied into a second repository
# whose manifest is then forged (a valid object, codec none). Each forgery is refused before the
# first write — exit 1, a message naming what is wrong, PGDATA not created, nothing at the
# forged places:
#   - a tablespace line added at $base/evil without touching tablespace-count;
#   - the same with the counts adjusted and a file authorized_keys at the tablespace's root;
#   - a tablespace whose location lies inside PGDATA, and one inside the real tablespace's;
#   - a pg_tblspc link whose target is not its tablespace's location;
#   - a second file whose extent overlaps backup_label's in the same object, placed last;
#   - one file line twice.
# Then the modes: every mode of the manifest set to 0777 (files and directories), the restore
# succeeds and every file is 0600, every directory 0700; the global directory at 0750 (a
# PGDATA with group access) gives 0640 / 0750.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipBackup;
use WalshipRestore;

use File::Find qw(find);

my ($bin, $base, $repo, $conf) = walship_setup();

my $node = archiving_cluster('primary', $conf);
$node->start;
my $ts_dir = make_pg_dir("$base/ts_real", 0700);
$node->safe_psql("CREATE TABLESPACE ts1 LOCATION '$ts_dir'");
$node->safe_psql('CREATE TABLE t (n int) TABLESPACE ts1; INSERT INTO t SELECT generate_series(1, 100)');
my $oid = $node->safe_psql("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'");
my $b1 = take_basebackup($node, [ '-c', $conf ], label => 'b1');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;

my $erepo = "$base/repo_evil";
system('cp', '-a', $repo, $erepo) == 0 or die 'cp -a repo';
my $econf = write_config("$base/evil.conf", repo => $erepo);
my @g     = ('-c', $econf);
my $mpath = "$erepo/backup/$b1/walship.manifest";
my $kind  = ord(substr(slurp_file($mpath), 7, 1));
my $plain = read_object($mpath);
my ($label_line) = $plain =~ /^(file = base \S+ \S+ \S+ \S+ backup_label \S+)$/m;
ok($label_line, 'the manifest has a backup_label line to borrow from');
my ($mtime) = $label_line =~ /^file = base \S+ (\S+)/;
my ($verdir) = $plain =~ /^dir = \Q$oid\E \S+ \S+ (PG_[^\/\s]+)$/m;
ok($verdir, "the tablespace's version directory: $verdir");
my $evil = "$base/evil";

# forged(lines, counts => 1): the lines inserted before global/pg_control (the last file: a
# check made while restoring comes too late); counts adjusted unless counts => 0
sub forged
{
	my ($lines, %o) = @_;
	my $f = $plain =~ s/^(file = base \S+ \S+ \S+ \S+ global\/pg_control )/$lines\n$1/mr;
	if ($o{counts} // 1)
	{
		my $nf = () = $lines =~ /^file /mg;
		my $nt = () = $lines =~ /^tablespace /mg;
		$f =~ s/^file-count = (\d+)$/'file-count = ' . ($1 + $nf)/me;
		$f =~ s/^tablespace-count = (\d+)$/'tablespace-count = ' . ($1 + $nt)/me;
	}
	return $f;
}

sub files_under
{
	my ($dir) = @_;
	my @f;
	return () unless -e $dir;
	find({ no_chdir => 1, wanted => sub { push @f, $_ if $_ ne $dir } }, $dir);
	return sort @f;
}

my $real_snap = tree_snapshot($ts_dir);
my $n = 0;

sub refused_forgery
{
	my ($what, $text, $re, $pgdata_of) = @_;
	forge_object($mpath, $text, $kind);
	my $r = restored_node('f' . ++$n);
	my $pgdata = $r->pgdata;
	my $map = "$oid=$base/ts_map$n";
	my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $pgdata, '--tablespace-map', $map);
	is($rc, 1, "$what: exit 1") or diag($err);
	like($err, $re, "$what: the message says why") or diag($err);
	ok(!-e $pgdata, "$what: PGDATA not created");
	ok(!-e "$base/ts_map$n", "$what: the mapped tablespace directory not created");
	is_deeply([ files_under($evil) ], [], "$what: nothing at $evil");
	is_deeply([ diff_snapshots($real_snap, tree_snapshot($ts_dir)) ], [],
		"$what: the real tablespace's directory untouched");
	return $pgdata;
}

my $ts_lines = "tablespace = 99999 $evil\n"
  . "symlink = base 0777 $mtime pg_tblspc/99999 $evil\n"
  . "dir = 99999 0777 $mtime $verdir";
refused_forgery('a tablespace line added, tablespace-count unchanged', forged($ts_lines, counts => 0),
	qr/declares 1 tablespace\(s\) \(tablespace-count\) but has 2 tablespace lines/);

my $keys = $label_line =~ s/^file = base (\S+) (.*) backup_label /file = 99999 0755 $2 authorized_keys /r;
refused_forgery('a forged tablespace holding authorized_keys', forged("$ts_lines\n$keys"),
	qr/manifest entry "authorized_keys" of tablespace 99999 is not where PostgreSQL keeps a tablespace's files/);

# the next forgeries need the restore's PGDATA: restored_node's names are f<N>/pgdata
my $next_pgdata = "$base/f" . ($n + 1) . '/pgdata';
refused_forgery('a tablespace inside PGDATA',
	forged("tablespace = 99999 $next_pgdata/evil\nsymlink = base 0700 $mtime pg_tblspc/99999 $next_pgdata/evil"),
	qr/tablespace 99999's directory \Q$next_pgdata\E\/evil lies in the data directory/);

refused_forgery('a tablespace inside another one',
	forged("tablespace = 99999 $base/ts_map" . ($n + 1) . "/inner\n"
		  . "symlink = base 0700 $mtime pg_tblspc/99999 $base/ts_map" . ($n + 1) . '/inner'),
	qr/the directories of tablespaces \d+ .* and \d+ .* lie in one another/);

refused_forgery('a pg_tblspc link pointing elsewhere',
	forged("tablespace = 99999 $evil\nsymlink = base 0700 $mtime pg_tblspc/99999 /root/.ssh"),
	qr/symlink pg_tblspc\/99999 points to "\/root\/.ssh", not to tablespace 99999's location/);

my $overlap = $label_line =~ s/ backup_label / zz_overlap /r;
refused_forgery('a file whose extent overlaps backup_label\'s', forged($overlap),
	qr/extents of (backup_label and zz_overlap|zz_overlap and backup_label) overlap/);

my ($some_file) = $plain =~ /^(file = base \S+ \S+ \S+ \S+ global\/1262 \S+)$/m;
refused_forgery('a file line twice', forged($some_file), qr/the manifest has \S+\/global\/1262 twice/);

# ---- the manifest's modes are not applied
my $all777 = $plain =~ s/^(file|dir|symlink) = (\S+) \d+ /$1 = $2 0777 /mgr;
isnt($all777, $plain, 'every mode set to 0777 in the manifest');
forge_object($mpath, $all777, $kind);
my $m = restored_node('modes');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $m->pgdata, '--tablespace-map',
	"$oid=$base/ts_modes");
is($rc, 0, 'restore of the 0777 manifest exits 0') or diag($err);
my (%bad, $files, $dirs);
for my $root ($m->pgdata, "$base/ts_modes/$verdir")
{
	find({ no_chdir => 1, wanted => sub {
		my @st = lstat $_ or return;
		return if -l _;
		my $mode = $st[2] & 07777;
		if (-d _) { $dirs++;  $bad{$_} = sprintf('%04o', $mode) if $mode != 0700 }
		else      { $files++; $bad{$_} = sprintf('%04o', $mode) if $mode != 0600 }
	} }, $root);
}
cmp_ok($files, '>', 100, "$files files and $dirs directories restored");
is_deeply(\%bad, {}, '... every file 0600 and every directory 0700, not 0777');
is(sprintf('%04o', (stat($m->pgdata . '/PG_VERSION'))[2] & 07777), '0600', 'PG_VERSION is 0600');

# ---- group access (the global directory 0750): 0640 / 0750, still nothing else
my $group = $all777 =~ s/^dir = base 0777 (\S+) global$/dir = base 0750 $1 global/mr;
isnt($group, $all777, 'the global directory at 0750 (a PGDATA with group access)');
forge_object($mpath, $group, $kind);
my $gm = restored_node('group');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $gm->pgdata, '--tablespace-map',
	"$oid=$base/ts_group");
is($rc, 0, 'restore with group access exits 0') or diag($err);
%bad = ();
find({ no_chdir => 1, wanted => sub {
	my @st = lstat $_ or return;
	return if -l _;
	my $mode = $st[2] & 07777;
	$bad{$_} = sprintf('%04o', $mode) if $mode != (-d _ ? 0750 : 0640);
} }, $gm->pgdata . '/global', $gm->pgdata . '/base');
is_deeply(\%bad, {}, '... files 0640, directories 0750');
is(sprintf('%04o', (stat($gm->pgdata))[2] & 07777), '0750', '... PGDATA itself 0750');

done_testing();
