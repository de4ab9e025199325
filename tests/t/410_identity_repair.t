# 410_identity_repair.t — walship.repo is never silently re-created. With it removed from a
# repository that holds WAL (an S3 lifecycle rule does this), push and basebackup exit 1 naming
# `walship repo repair` and write nothing; repair re-derives it from the stored segments'
# page headers and archiving resumes; a repository holding WAL of two clusters is refused;
# a truly empty repository (or one holding only a timeline history file, as after a
# promotion) still gets its identity from the first push. For posix and S3 (s3rver).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Copy qw(copy);
use File::Path qw(make_path);

WalshipS3::require_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $s3dir = "$base/s3data";
my $s3    = WalshipS3->s3rver(buckets => ['wal'], dir => $s3dir);
my %s3cfg = ($s3->config, async => "off");  # push itself, not a long-lived agent

my %repo = (posix => make_pg_dir("$base/posix"), s3 => 's3://wal/a');
my %conf = map { $_ => write_config("$base/$_.conf", repo => $repo{$_}, %s3cfg) } qw(posix s3);
my $both = write_config("$base/both.conf", repo1 => $repo{posix}, repo2 => $repo{s3}, %s3cfg);

# The files behind a key: posix, the file; s3rver, its object and two sidecars.
sub files_of
{
	my ($kind, $prefix, $key) = @_;
	return ("$repo{posix}/$key") if $kind eq 'posix' && !$prefix;
	return ("$prefix/$key") if $kind eq 'posix';
	return map { "$s3dir/wal/$prefix/$key._S3rver_$_" } qw(object metadata.json object.md5);
}
sub prefix_of { my $k = shift; return $k eq 'posix' ? $repo{posix} : 'a' }
sub exists_key { my ($k, $key) = @_; return -e (files_of($k, prefix_of($k), $key))[0] }
sub remove_key { my ($k, $key) = @_; unlink files_of($k, prefix_of($k), $key); return }
sub key_of { my $seg = shift; return 'wal/' . substr($seg, 0, 16) . "/$seg" }

my $node = new_cluster('primary', archive_command => "$bin -c $both push %p",
	wal_keep_size => '1GB', conf => { archive_timeout => 0 });
$node->start;
my $sysid = $node->safe_psql('SELECT system_identifier FROM pg_control_system()');
my $major = int($node->safe_psql('SHOW server_version_num') / 10000);
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
$node->switch_wal;
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), "archived up to $seg");

# ---- a truly empty repository gets its identity from the first push
for my $k (qw(posix s3))
{
	ok(exists_key($k, 'walship.repo'), "$k: the first push created walship.repo");
}
like(slurp_file("$repo{posix}/walship.repo"), qr/^system-identifier = $sysid$/m,
	'posix: with the cluster\'s system identifier');

my $pg_wal = $node->pgdata . '/pg_wal';
my $copies = make_pg_dir("$base/copies");
my $pgconn = $node->connstr;
for my $k (qw(posix s3))
{
	my $saved = slurp_file((files_of($k, prefix_of($k), 'walship.repo'))[0]);
	remove_key($k, 'walship.repo');

	# the archiver now fails too (all or nothing): the new segment stays in pg_wal
	$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 100) g');
	my $new = $node->switch_wal;
	copy("$pg_wal/$new", "$copies/$new") or die "copy $new: $!";
	chown_pg("$copies/$new");
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'push', "$copies/$new" ]);
	is($rc, 1, "$k: push into a repository without walship.repo but with WAL exits 1");
	like($err, qr/has no walship\.repo but holds objects \(wal\/.*refusing to create a new one/,
		"$k: the error says the identity was removed and is not re-created");
	like($err, qr/HINT: run "walship repo repair"/, "$k: ... and names the repair command");
	ok(!exists_key($k, 'walship.repo'), "$k: push created no walship.repo");
	ok(!exists_key($k, key_of($new)), "$k: push stored no segment");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'basebackup', '--pgconn', $pgconn,
		'--checkpoint', 'fast' ]);
	is($rc, 1, "$k: basebackup into it exits 1");
	like($err, qr/refusing to back up into .*walship repo repair/, "$k: basebackup names the repair command");
	ok(!exists_key($k, 'walship.repo'), "$k: basebackup created no walship.repo");
	my $bdir = $k eq 'posix' ? "$repo{posix}/backup" : "$s3dir/wal/a/backup";
	ok(!-e $bdir, "$k: basebackup wrote no backup object");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair', '--dry-run' ]);
	is($rc, 0, "$k: repair --dry-run exits 0") or diag($err);
	like($out, qr/system-identifier = $sysid, pg-version = $major, wal-segment-size = 1048576/,
		"$k: repair --dry-run prints what it derived") or diag($out);
	ok(!exists_key($k, 'walship.repo'), "$k: --dry-run wrote nothing");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair' ]);
	is($rc, 0, "$k: repair exits 0") or diag($err);
	like($out, qr/derived from \d+ segment\(s\) and 0 backup manifest\(s\) that agree/,
		"$k: repair says where the identity comes from") or diag($out);
	my $text = exists_key($k, 'walship.repo') ? slurp_file((files_of($k, prefix_of($k), 'walship.repo'))[0]) : '';
	for my $line ("format = 1", "system-identifier = $sysid", "pg-version = $major",
		'wal-segment-size = 1048576')
	{
		like($text, qr/^\Q$line\E$/m, "$k: the repaired walship.repo has $line");
		like($saved, qr/^\Q$line\E$/m, "$k: ... as the original had");
	}
	ok($node->wait_for_archive($new), "$k: archiving resumes after the repair");
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'push', "$copies/$new" ]);
	is($rc, 0, "$k: a push works again") or diag($err);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair' ]);
	is($rc, 0, "$k: repair of a repository with walship.repo exits 0");
	like($out, qr/walship\.repo is present, nothing to repair/, "$k: ... and changes nothing");
}

# ---- WAL of two clusters: repair refuses
my $other_repo = make_pg_dir("$base/other_repo");
my $oconf = write_config("$base/other.conf", repo1 => $other_repo, repo2 => 's3://wal/b', %s3cfg);
my $other = new_cluster('other', archive_command => "$bin -c $oconf push %p");
$other->start;
my $osysid = $other->safe_psql('SELECT system_identifier FROM pg_control_system()');
isnt($osysid, $sysid, 'the second cluster has another system identifier');
$other->safe_psql('CREATE TABLE o AS SELECT 1');
my $oseg = $other->switch_wal;
ok($other->wait_for_archive($oseg), "the other cluster archived $oseg");
# its segment, renamed onto timeline 2 (the header check allows an older timeline): a name
# the first cluster does not have
my $planted = '00000002' . substr($oseg, 8);
for my $k (qw(posix s3))
{
	my @from = $k eq 'posix' ? files_of('posix', $other_repo, key_of($oseg))
	  : files_of('s3', 'b', key_of($oseg));
	my @to = files_of($k, prefix_of($k), key_of($planted));
	make_path((map { my $d = $_; $d =~ s{/[^/]+$}{}; $d } @to), { mode => 0700 });
	for my $i (0 .. $#from) { copy($from[$i], $to[$i]) or die "copy $from[$i]: $!"; chown_pg($to[$i]) }
	chown_pg((map { my $d = $_; $d =~ s{/[^/]+$}{}; $d } @to));
	remove_key($k, 'walship.repo');
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair' ]);
	is($rc, 1, "$k: repair of a repository holding WAL of two clusters exits 1");
	like($out, qr/system-identifier = $sysid/, "$k: it names the first cluster") or diag($out);
	like($out, qr/\Q$planted\E: system-identifier = $osysid/, "$k: ... and the other, with a key")
	  or diag($out);
	like($err, qr/belong to 2 different clusters/, "$k: and says why it refuses");
	ok(!exists_key($k, 'walship.repo'), "$k: refused repair wrote nothing");
	remove_key($k, key_of($planted));
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{$k}, 'repo', 'repair' ]);
	is($rc, 0, "$k: without the foreign segment repair works") or diag($err);
}
$other->stop;

# ---- an empty repository, or one holding only a history file (pushed first after a
# promotion), gets its identity from the first segment
my $hist = "$copies/00000002.history";
spurt_file($hist, "1\t0/3000000\tno recovery target specified\n");
chown_pg($hist);
my $bhist = "$copies/$seg.00000028.backup";
spurt_file($bhist, "START WAL LOCATION: 0/3000028 (file $seg)\nSTOP WAL LOCATION: 0/3000100 (file $seg)\n");
chown_pg($bhist);
my %fresh = (posix => make_pg_dir("$base/fresh"), s3 => 's3://wal/fresh');
for my $k (qw(posix s3))
{
	my $c = write_config("$base/fresh-$k.conf", repo => $fresh{$k}, %s3cfg);
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'repo', 'repair' ]);
	is($rc, 0, "$k: repair of an empty repository exits 0");
	like($out, qr/nothing to repair/, "$k: ... with nothing to repair");
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'push', $hist ]);
	is($rc, 0, "$k: a history file is pushed into an empty repository") or diag($err);
	# the async agent can store a backup history file before the segments in front of it
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'push', $bhist ]);
	is($rc, 0, "$k: a backup history file is pushed into a repository without walship.repo")
	  or diag($err);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'repo', 'repair' ]);
	is($rc, 0, "$k: repair of a repository holding only history files exits 0") or diag($err);
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $c, 'push', "$pg_wal/$seg" ]);
	is($rc, 0, "$k: the first segment into a repository holding only history files") or diag($err);
	my $f = $k eq 'posix' ? "$fresh{posix}/walship.repo" : "$s3dir/wal/fresh/walship.repo._S3rver_object";
	like(-e $f ? slurp_file($f) : '', qr/^system-identifier = $sysid$/m, "$k: it created walship.repo");
}

done_testing();
