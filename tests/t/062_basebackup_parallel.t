# 062_basebackup_parallel.t — basebackup writes its objects in parallel (basebackup-parallel),
# with the bytes in flight bounded:
#  - a cluster with several files larger than the part size (many parts each), files that are
#    one object each, and hundreds of small packed files, backed up with basebackup-parallel 1
#    and 4: every stored file's bytes and the walship manifest's SHA-256 equal the server's
#    backup_manifest (read back here with lz4 and Digest::SHA, not with walship's code), and
#    walship restore of the parallel backup gives back every file byte for byte;
#  - a repository that fails midway (its data directory made unwritable while four writers
#    are busy) fails the backup: exit 1, no manifest, nothing listed; the next backup succeeds;
#  - memory: an 85 MiB file stored as one object by slow writers (lz4 level 9) keeps the bytes
#    in flight within the documented bound and walship's peak RSS within 64 MiB.
# No timing is asserted anywhere.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipBackup;
use WalshipRestore;

use Digest::SHA qw(sha256_hex);
use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = archiving_cluster('primary', $conf);
$node->start;
my $pgconn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=postgres';
my @pgargs = ('-h', $node->host, '-p', $node->port);

# ---- the data: pgbench_accounts (13 MB) and two tables of random-looking text (3 MB, 5 MB),
# all larger than the 2 MB parts; a table of about 1.5 MB (one object); 300 small tables.
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', '1', '-q', @pgargs, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);
$node->safe_psql("CREATE TABLE big3 AS SELECT g, md5(g::text) AS h FROM generate_series(1, 45000) g");
$node->safe_psql("CREATE TABLE big5 AS SELECT g, md5(g::text) || md5(g::text) AS h
	FROM generate_series(1, 50000) g");
$node->safe_psql("CREATE TABLE mid AS SELECT g, md5(g::text) AS h FROM generate_series(1, 22000) g");
$node->safe_psql("DO \$\$ BEGIN FOR i IN 1..300 LOOP
	EXECUTE format('CREATE TABLE small_%s AS SELECT g, md5(g::text) AS h
		FROM generate_series(1, %s) g', i, 1 + i % 40);
	END LOOP; END \$\$");
$node->safe_psql('CHECKPOINT');

sub backup
{
	my (@extra) = @_;
	return run(cmd => [ $bin, @g, 'basebackup', '--pgconn', $pgconn, '--checkpoint', 'fast',
			@extra ]);
}

# Checks every file of backup $id against the server's backup_manifest stored with it.
sub check_backup
{
	my ($id, $name) = @_;
	my $m      = read_manifest($repo, $id);
	my $server = decode_json(read_object("$repo/backup/$id/backup_manifest"));
	my %want   = map { $_->{Path} => $_ } @{ $server->{Files} };
	my ($checked, @bad, %seen) = (0);
	my %kinds = (parts => 0, single => 0, packed => 0);
	my $cache = {};
	for my $f (@{ $m->{files} })
	{
		my $path = $f->{path};
		$seen{$path} = 1;
		my $w = $want{$path};
		if (!$w)
		{
			push @bad, "$path: not in the server's manifest";
			next;
		}
		my $bytes = file_bytes($repo, $id, $f, $cache);
		push @bad, "$path: size " . length($bytes) . " != $w->{Size}" if length($bytes) != $w->{Size};
		push @bad, "$path: stored bytes != the server's ($w->{'Checksum-Algorithm'})"
		  if !server_checksum_ok($bytes, $w);
		push @bad, "$path: manifest SHA-256 $f->{sha256} != the stored bytes'"
		  if $f->{sha256} ne sha256_hex($bytes);
		$checked++;
		my @ext = $f->{extents} eq '-' ? () : split /,/, $f->{extents};
		if (@ext > 1) { $kinds{parts}++ }
		elsif (@ext == 1 && $ext[0] =~ /\@0\+(\d+)$/ && $1 == $f->{size} && $f->{size} >= 1048576)
		{
			$kinds{single}++;
		}
		elsif (@ext == 1) { $kinds{packed}++ }
		%$cache = () if keys %$cache > 8;    # objects of up to 16 MiB: keep memory small
	}
	push @bad, map { "$_: in the server's manifest, not stored" } grep { !$seen{$_} } sort keys %want;
	ok(!@bad, "$name: every stored file matches the server's backup_manifest ($checked files)")
	  or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 19) ]));
	cmp_ok($kinds{parts}, '>=', 3, "$name: $kinds{parts} files in several parts");
	cmp_ok($kinds{single}, '>=', 1, "$name: $kinds{single} files stored as one object each");
	cmp_ok($kinds{packed}, '>=', 300, "$name: $kinds{packed} small files in packs");
	return $server;
}

# ---- basebackup-parallel 1 and 4
my %ids;
for my $par (1, 4)
{
	($rc, $out, $err) = backup('--label', "parallel $par", '--basebackup-part-size', '2MB',
		'--basebackup-parallel', $par);
	is($rc, 0, "basebackup-parallel $par: exits 0") or diag($err);
	my ($id) = $err =~ /backup (\S+) complete/;
	like($err, qr/; $par writers, at most ([\d.]+) MiB in flight \(bound ([\d.]+) MiB\)/,
		"basebackup-parallel $par: $par writers");
	my ($peak, $bound) = $err =~ /at most ([\d.]+) MiB in flight \(bound ([\d.]+) MiB\)/;
	ok(defined $peak && $peak <= $bound,
		"basebackup-parallel $par: in flight at most ${\($peak // '?')} MiB (bound "
		  . ($bound // '?') . ' MiB)');
	$ids{$par} = $id;
	check_backup($id, "basebackup-parallel $par") if $id;
}

# ---- the parallel backup restored: every file of the server's manifest, byte for byte
SKIP:
{
	skip 'the parallel backup failed', 2 unless $ids{4};
	my $dir = "$base/restored";
	($rc, $out, $err) = walship_restore(\@g, '--pgdata', $dir, '--backup', $ids{4});
	is($rc, 0, 'walship restore of the parallel backup exits 0') or diag($err);
	# the manifest's SHA-256 of each file was checked against the stored bytes, and those
	# against the server's manifest, above
	my %sha = map { $_->{path} => $_->{sha256} } @{ read_manifest($repo, $ids{4})->{files} };
	my $server = decode_json(read_object("$repo/backup/$ids{4}/backup_manifest"));
	my @bad;
	for my $w (@{ $server->{Files} })
	{
		next if $w->{Path} eq 'postgresql.auto.conf';    # restore adds the recovery settings
		my $bytes = eval { slurp_file("$dir/$w->{Path}") };
		if (!defined $bytes) { push @bad, "$w->{Path}: not restored"; next }
		push @bad, "$w->{Path}: restored bytes differ"
		  if sha256_hex($bytes) ne ($sha{ $w->{Path} } // '');
	}
	ok(!@bad, 'every file of the server\'s backup_manifest is restored, byte for byte')
	  or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 19) ]));
}

# ---- a repository that fails midway: four writers busy, the data directory turns unwritable
my $before = scalar @{ list_backups(\@g) };
my $kcmd = join(' ', map { "'$_'" } $bin, @g, 'basebackup', '--pgconn', $pgconn, '--checkpoint',
	'fast', '--label', 'doomed', '--basebackup-parallel', '4', '--basebackup-part-size', '2MB',
	'--basebackup-max-rate', '4096');
# as postgres (run drops privileges): the unwritable directory then stops it even when the
# test runs as root
($rc, $out) =
  run(cmd => [ 'sh', '-c', "($kcmd >$base/doomed.log 2>&1; echo \$? >$base/doomed.rc) &" ]);
my %old = map { $_ => 1 } values %ids;
my ($doomed_id, $datadir);
my $deadline = time + 60;
while (time < $deadline && !-e "$base/doomed.rc")
{
	opendir(my $dh, "$repo/backup") or last;
	my @new = grep { !/^\./ && !$old{$_} } readdir $dh;
	closedir $dh;
	if (@new && -d "$repo/backup/$new[0]/data")
	{
		opendir(my $d2, "$repo/backup/$new[0]/data");
		my @objs = grep { /^\d+$/ } readdir $d2;
		closedir $d2;
		if (@objs >= 1)
		{
			($doomed_id, $datadir) = ($new[0], "$repo/backup/$new[0]/data");
			last;
		}
	}
	sleep 0.05;
}
SKIP:
{
	skip 'the throttled backup ended before any object was stored', 5 unless $datadir;
	ok(chmod(0500, $datadir), "backup $doomed_id: its data directory made unwritable midway");
	# run() waited for the shell only: wait for walship itself
	$deadline = time + 120;
	sleep 0.1 while !-e "$base/doomed.rc" && time < $deadline;
	my $doomed_rc = eval { slurp_file("$base/doomed.rc") } // '';
	chomp $doomed_rc;
	my $log = eval { slurp_file("$base/doomed.log") } // '';
	is($doomed_rc, '1', 'the backup fails with exit 1') or diag($log);
	like($log, qr/backup \Q$doomed_id\E failed/, '... and says so') or diag($log);
	ok(!-e "$repo/backup/$doomed_id/walship.manifest", '... no manifest was written');
	is(scalar @{ list_backups(\@g) }, $before, '... nothing is listed');
	chmod 0700, $datadir;
}
($rc, $out, $err) = backup('--label', 'after the failure', '--basebackup-parallel', '4');
is($rc, 0, 'the next backup succeeds') or diag($err);
is(scalar @{ list_backups(\@g) }, $before + 1, '... and is listed');

# ---- memory: one large object, slow writers
SKIP:
{
	skip 'SKIPPED under SANITIZE=1: ASan shadow memory inflates RSS; the plain run checks it', 4
	  if ($ENV{SANITIZE} // '0') eq '1';
	my $time = '/usr/bin/time';
	skip "SKIPPED: $time is missing (scripts/deps.sh installs the 'time' package)", 4
	  unless -x $time;
	$node->safe_psql('CREATE TABLE huge AS SELECT g, md5(g::text) || md5((g + 1)::text) AS h
		FROM generate_series(1, 900000) g');
	my $rel  = $node->safe_psql("SELECT pg_relation_filepath('huge')");
	my $size = -s($node->pgdata . "/$rel") // 0;
	cmp_ok($size, '>', 64 * 1024 * 1024, "a file of " . int($size / 1048576) . ' MiB');
	my $limit_kb = 64 * 1024;
	($rc, $out, $err) = run(cmd => [ $time, '-f', 'maxrss_kb=%M', $bin, @g, 'basebackup',
			'--pgconn', $pgconn, '--checkpoint', 'fast', '--label', 'memory',
			'--basebackup-parallel', '4', '--compress-level', '9' ]);
	is($rc, 0, 'basebackup of the large file (lz4 level 9, 4 writers) exits 0') or diag($err);
	my ($peak, $bound) = $err =~ /at most ([\d.]+) MiB in flight \(bound ([\d.]+) MiB\)/;
	ok(defined $peak && $peak <= $bound, "in flight at most ${\($peak // '?')} MiB (bound "
		  . ($bound // '?') . ' MiB)');
	my ($kb) = $err =~ /maxrss_kb=(\d+)/;
	ok(defined $kb && $kb <= $limit_kb, "peak RSS ${\($kb // '?')} kB <= $limit_kb kB");
}

$node->stop;
done_testing();
