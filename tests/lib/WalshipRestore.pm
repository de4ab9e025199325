package WalshipRestore;

# WalshipRestore — helpers of the restore tests (tests/t/3xx_restore_*.t): base backups through
# `walship basebackup`, `walship restore` runs, clusters started on a restored PGDATA, the
# recovery block of postgresql.auto.conf, snapshots of a directory tree, and forged repository
# objects (docs/repository-format.md) for hostile-manifest tests.
#
#     my $id = take_basebackup($node, ['-c', $conf], label => 'b1');
#     my ($rc, $out, $err) = walship_restore(['-c', $conf], '--pgdata', $dir, ...);
#     my $r = restored_node('r1');          # a cluster object whose PGDATA does not exist yet
#     walship_restore(['-c', $conf], '--pgdata', $r->pgdata, '--target-name', 'x');
#     configure_restored($r);               # its own port and socket, archiving off
#     $r->start; wait_recovery_done($r);
#     my $blk = recovery_block($r->pgdata); # {id => ..., settings => {restore_command => ...}}

use strict;
use warnings;
use Carp qw(croak);
use Digest::SHA qw(sha256 sha256_hex);
use Exporter 'import';
use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);
use Test::More ();
require WalshipTest;

our @EXPORT = qw(
  take_basebackup list_backups walship_restore restored_node configure_restored
  recovery_block tree_snapshot diff_snapshots forge_object wait_recovery_done pg_controldata
  ts_now rows_summary dir_entries backed_up_primary
);

# backed_up_primary($conf, $rows) -> ($node, $b1): a primary archiving through $conf, started,
# with a table t (n int) of the rows 1..$rows and one base backup, labelled b1 (one test).
sub backed_up_primary
{
	my ($conf, $rows) = @_;
	my $node = WalshipTest::archiving_cluster('primary', $conf);
	$node->start;
	$node->safe_psql("CREATE TABLE t (n int); INSERT INTO t SELECT generate_series(1, $rows)");
	return ($node, take_basebackup($node, [ '-c', $conf ], label => 'b1'));
}

# take_basebackup($node, \@global, label => TEXT, extra => [...]) -> the new backup's id, or
# undef (after a failed test) when walship basebackup failed. One test: "basebackup <label>".
sub take_basebackup
{
	my ($node, $global, %o) = @_;
	my $label = $o{label} // 'backup';
	my $pgconn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
	my ($rc, $out, $err) = WalshipTest::run(
		cmd => [
			WalshipTest::walship_bin(), @$global, 'basebackup', '--pgconn', $pgconn,
			'--checkpoint', 'fast', '--label', $label, @{ $o{extra} // [] }
		]);
	my ($id) = $err =~ /backup (\S+) complete/;
	Test::More::ok($rc == 0 && defined $id, "walship basebackup ($label) exits 0")
	  or Test::More::diag("exit $rc\n$err");
	return $rc == 0 ? $id : undef;
}

# list_backups(\@global) -> [ {id, stop_time, stop_lsn, ...}, ... ] from list --json, oldest
# first (of the first repository when several are configured); dies if list fails.
sub list_backups
{
	my ($global) = @_;
	my ($rc, $out, $err) =
	  WalshipTest::run(cmd => [ WalshipTest::walship_bin(), @$global, 'list', '--json' ]);
	croak "walship list --json failed ($rc): $err" if $rc != 0;
	my $j = decode_json($out);
	return $j->{backups} // $j->{repositories}[0]{backups};    # several repositories: the first's
}

# walship_restore(\@global, @args, {env => {...}, as_pg => 1}) -> ($rc, $stdout, $stderr).
# A trailing hash ref passes options to WalshipTest::run.
sub walship_restore
{
	my ($global, @args) = @_;
	my %o = ref $args[-1] eq 'HASH' ? %{ pop @args } : ();
	return WalshipTest::run(cmd => [ WalshipTest::walship_bin(), @$global, 'restore', @args ],
		%o);
}

# restored_node($name, bindir => DIR) -> a WalshipTest::Cluster whose directory exists (with
# its socket dir) but whose PGDATA (->pgdata) does not: walship restore is to create it. bindir:
# its server binaries, as WalshipTest::new_cluster.
sub restored_node
{
	my ($name, %o) = @_;
	return WalshipTest::Cluster->_new($name, %o);
}

# configure_restored($node, %opts): appends the node's own port, socket and settings to the
# restored postgresql.conf (the primary's are in it too; later lines win), archiving off unless
# archive_command is given. opts as WalshipTest::new_cluster.
sub configure_restored
{
	my ($node, %o) = @_;
	$node->_configure((defined $o{archive_command} ? () : (archive_mode => 'off')), %o);
	return;
}

# wait_recovery_done($node, $action = 'promote'): 1 once recovery ended (promote: not in
# recovery any more; pause: replay paused at the target); 0 after a diag otherwise.
sub wait_recovery_done
{
	my ($node, $action) = @_;
	$action //= 'promote';
	return $node->poll_query_until('SELECT NOT pg_is_in_recovery()') if $action eq 'promote';
	return $node->poll_query_until(
		"SELECT pg_is_in_recovery() AND pg_get_wal_replay_pause_state() = 'paused'")
	  if $action eq 'pause';
	croak "wait_recovery_done: action $action";
}

# recovery_block($pgdata) -> undef when postgresql.auto.conf has no walship block, else
# { id => backup id, lines => [...], settings => {name => unquoted value}, count => number of
#   begin markers, last => 1 if nothing but blank lines follows the block }.
sub recovery_block
{
	my ($pgdata) = @_;
	my $f = "$pgdata/postgresql.auto.conf";
	return undef unless -f $f;
	my $text = WalshipTest::slurp_file($f);
	my @begins = $text =~ /^# walship restore: begin/mg;
	# the last block (a backup of a restored cluster carries an older one: restore must replace
	# it, which count shows)
	my ($id, $body, $rest) =
	  $text =~ /.*^# walship restore: begin \(backup ([^)\s]+)\)\n(.*?)^# walship restore: end\n?(.*)\z/ms
	  or return undef;
	my %s;
	my @lines = split /\n/, $body;
	for my $l (@lines)
	{
		next if $l =~ /^\s*(#|$)/;
		my ($k, $v) = $l =~ /^\s*(\w+)\s*=\s*'((?:[^']|'')*)'\s*$/ or next;
		$v =~ s/''/'/g;
		$s{$k} = $v;
	}
	return {
		id       => $id,
		lines    => \@lines,
		settings => \%s,
		count    => scalar @begins,
		last     => ($rest =~ /\A\s*\z/ ? 1 : 0),
		text     => $text
	};
}

# tree_snapshot($dir, skip => qr/.../, modes => 1) -> { relpath => description }: type, mode,
# size and SHA-256 for files, target for symlinks (not followed), mode for directories. Paths
# matching skip (relative) are left out; modes => 0 leaves the modes out.
sub tree_snapshot
{
	my ($dir, %o) = @_;
	my %s;
	return \%s unless -d $dir;
	find(
		{
			no_chdir => 1,
			wanted   => sub {
				my $p = $File::Find::name;
				return if $p eq $dir;
				(my $rel = $p) =~ s{^\Q$dir\E/}{};
				return if $o{skip} && $rel =~ $o{skip};
				my @st = lstat $p or return;
				my $mode = ($o{modes} // 1) ? sprintf('%04o', $st[2] & 07777) : '-';
				if (-l _)
				{
					$s{$rel} = 'symlink -> ' . readlink($p);
				}
				elsif (-d _)
				{
					$s{$rel} = "dir $mode";
				}
				elsif (-f _)
				{
					my $sha = Digest::SHA->new(256);
					$sha->addfile($p, 'b');
					$s{$rel} = "file $mode $st[7] " . $sha->hexdigest;
				}
				else
				{
					$s{$rel} = 'other';
				}
			}
		},
		$dir);
	return \%s;
}

# diff_snapshots($a, $b) -> list of human-readable differences (empty when identical).
sub diff_snapshots
{
	my ($a, $b) = @_;
	my @d;
	my %all = map { $_ => 1 } keys %$a, keys %$b;
	for my $k (sort keys %all)
	{
		if (!exists $b->{$k}) { push @d, "only in the first: $k ($a->{$k})" }
		elsif (!exists $a->{$k}) { push @d, "only in the second: $k ($b->{$k})" }
		elsif ($a->{$k} ne $b->{$k}) { push @d, "$k: $a->{$k} <> $b->{$k}" }
	}
	return @d;
}

# dir_entries($dir) -> sorted names in $dir (without . and ..); () if it does not exist.
sub dir_entries
{
	my ($dir) = @_;
	opendir my $dh, $dir or return ();
	my @e = sort grep { $_ ne '.' && $_ ne '..' } readdir $dh;
	closedir $dh;
	return @e;
}

# forge_object($path, $plaintext, $kind = 0): writes a valid object with codec 0 (none):
# the 64-byte header of docs/repository-format.md (header check included) + the plaintext.
sub forge_object
{
	my ($path, $plain, $kind) = @_;
	my $h = 'WSHP' . pack('CCCC', 1, 0, 0, $kind // 0) . pack('VV', 64, 0)
	  . pack('Q<', length $plain) . sha256($plain) . pack('V', 0);
	croak 'forge_object: header is not 60 bytes' unless length $h == 60;
	$h .= substr(sha256($h), 0, 4);
	unlink $path;
	WalshipTest::spurt_file($path, $h . $plain);
	chmod 0600, $path;
	WalshipTest::chown_pg($path);
	return;
}

# pg_controldata($pgdata) -> { 'Database cluster state' => ..., ... } ({} if it fails).
sub pg_controldata
{
	my ($pgdata) = @_;
	my ($rc, $out) = WalshipTest::run(cmd => [ WalshipTest::pg_bin('pg_controldata'), $pgdata ]);
	return {} if $rc != 0;
	my %c = map { /^([^:]+):\s*(.*)$/ ? ($1, $2) : () } split /\n/, $out;
	return \%c;
}

# ts_now($node): the server's clock_timestamp() as text (UTC, microseconds).
sub ts_now
{
	my ($node) = @_;
	return $node->safe_psql("SELECT clock_timestamp() AT TIME ZONE 'UTC' || '+00'");
}

# rows_summary($node, $table = 't') -> "count|max" of column n.
sub rows_summary
{
	my ($node, $table) = @_;
	$table //= 't';
	return $node->safe_psql("SELECT count(*) || '|' || coalesce(max(n), 0) FROM $table");
}

1;
