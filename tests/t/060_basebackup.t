# 060_basebackup.t — walship basebackup of a live cluster (pgbench load, a tablespace,
# archiving through walship push) into a posix repository: list shows it with the server's
# LSNs, every stored file matches the server's backup_manifest, a repository of another
# cluster is refused before any data moves, a backup killed midway is not listed and the next
# one succeeds, and a backup whose WAL is never archived fails.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipBackup;

use Digest::SHA qw(sha256_hex);
use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup();

my $node = archiving_cluster('primary', $conf);
$node->start;
my $pgconn = "host=" . $node->host . " port=" . $node->port . " dbname=postgres";
my @bb = ($bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn, '--checkpoint', 'fast');

sub list_json
{
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
	is($rc, 0, 'list --json exits 0') or diag($err);
	my $j = eval { decode_json($out) };
	ok($j, 'list --json prints one JSON object') or diag("$@\n$out");
	return $j // { backups => [], wal => {} };
}

sub repo_keys
{
	my ($dir) = @_;
	my @k;
	return () unless -d $dir;
	find({ no_chdir => 1, wanted => sub { push @k, $_ if -f $_ } }, $dir);
	return sort @k;
}

# ---- a tablespace and some data; pgbench writes throughout the first backup
my $tsdir = make_pg_dir("$base/tblspc", 0700);
$node->safe_psql("CREATE TABLESPACE ts1 LOCATION '$tsdir'");
$node->safe_psql('CREATE TABLE in_ts (id int, pad text) TABLESPACE ts1');
$node->safe_psql("INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
my @pgargs = ('-h', $node->host, '-p', $node->port);
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', '1', '-q', @pgargs, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);

# in the background (sh -c '... &'): run() waits only for the shell
my $pgbench = join(' ', pg_bin('pgbench'), '-n', '-c', '1', '-T', '8', '-R', '200', @pgargs,
	'postgres');
run(cmd => [ 'sh', '-c', "($pgbench >$base/pgbench.log 2>&1; echo \$? >$base/pgbench.rc) &" ]);

# parts of 1 MB: pgbench_accounts (13 MB) is stored in many parts, small files in packs
($rc, $out, $err) =
  run(cmd => [ @bb, '--label', 'first backup', '--basebackup-part-size', '1MB' ]);
is($rc, 0, 'basebackup under pgbench load exits 0') or diag($err);
like($err, qr/backup \S+ complete/, '... and says the backup is complete');
like($err, qr/all \d+ files match the server's backup_manifest/,
	"... after checking every file against the server's backup_manifest");
my $pgdeadline = time + 60;
sleep 0.2 while !-s "$base/pgbench.rc" && time < $pgdeadline;
is(eval { slurp_file("$base/pgbench.rc") } // '', "0\n", 'pgbench ran alongside')
  or diag(eval { slurp_file("$base/pgbench.log") });

my $j = list_json();
is(scalar @{ $j->{backups} }, 1, 'list shows one backup');
my $b1 = $j->{backups}[0] // {};
is($b1->{label}, 'first backup', '... with its label');
my $id1 = $b1->{id} // '';
like($id1, qr/^\d{8}T\d{6}Z$/, "... id $id1 is the UTC start time");
ok($b1->{complete}, '... complete');

# The LSNs are the server's: compare with the backup history file it archived.
my ($hist) = grep { /\.backup$/ } map { s{.*/}{}r } repo_keys("$repo/wal");
ok($hist, "the server archived a backup history file ($hist)");
my $htext = $hist ? read_object((grep { /\Q$hist\E$/ } repo_keys("$repo/wal"))[0]) : '';
my ($hstart) = $htext =~ /START WAL LOCATION: (\S+)/;
my ($hstop)  = $htext =~ /STOP WAL LOCATION: (\S+)/;
my ($hlabel) = $htext =~ /LABEL: (.*)/;
is($b1->{start_lsn}, $hstart, "start LSN $b1->{start_lsn} = the server's");
is($b1->{stop_lsn},  $hstop,  "stop LSN $b1->{stop_lsn} = the server's");
is($hlabel, 'first backup', 'the label reached the server');
is($b1->{start_timeline}, 1, 'timeline 1');
cmp_ok($b1->{original_size}, '>', 20 * 1024 * 1024, 'original size > 20 MB');
cmp_ok($b1->{stored_size}, '<', $b1->{original_size}, 'stored size < original (lz4)');

# ---- every file: bytes from the objects, SHA-256 = ours = the server's manifest
my $m = read_manifest($repo, $id1);
my $server = decode_json(read_object("$repo/backup/$id1/backup_manifest"));
my %want = map { $_->{Path} => $_ } @{ $server->{Files} };
my ($checked, @bad, %seen) = (0);
my %oid_of_ts = map { $_->{oid} => $_->{location} } @{ $m->{tablespaces} };
is(scalar keys %oid_of_ts, 1, 'the manifest lists the tablespace');
is((values %oid_of_ts)[0], $tsdir, '... with its location');
my $cache = {};
for my $f (@{ $m->{files} })
{
	my $path = $f->{tablespace} eq 'base' ? $f->{path} : "pg_tblspc/$f->{tablespace}/$f->{path}";
	$seen{$path} = 1;
	my $bytes = file_bytes($repo, $id1, $f, $cache);
	my $w = $want{$path};
	if (!$w)
	{
		push @bad, "$path: not in the server's manifest";
		next;
	}
	push @bad, "$path: size " . length($bytes) . " != $w->{Size}" if length($bytes) != $w->{Size};
	push @bad, "$path: stored bytes != the server's ($w->{'Checksum-Algorithm'})"
	  if !server_checksum_ok($bytes, $w);
	push @bad, "$path: manifest SHA-256 != the stored bytes'" if $f->{sha256} ne sha256_hex($bytes);
	$checked++;
}
push @bad, map { "$_: in the server's manifest, not stored" } grep { !$seen{$_} } sort keys %want;
ok(!@bad, "every stored file matches the server's backup_manifest ($checked files)")
  or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 19) ]));
cmp_ok($checked, '>', 500, 'hundreds of files checked');
ok((grep { $_->{path} =~ /^PG_15_/ || $_->{path} =~ m{/} } grep { $_->{tablespace} ne 'base' }
	  @{ $m->{files} }), 'tablespace files are stored');
ok((grep { ($_->{extents} =~ tr/,//) >= 5 } @{ $m->{files} }), 'a large file is stored in parts');
ok((grep { $_->{path} eq 'pg_wal' } @{ $m->{dirs} }), 'pg_wal is recorded as a directory');
ok((grep { $_->{path} =~ m{^pg_tblspc/\d+$} && $_->{target} eq $tsdir } @{ $m->{symlinks} }),
	'the pg_tblspc symlink is recorded');
is($m->{info}{'start-wal'}, $b1->{start_wal}, 'start WAL recorded');
ok(-f "$repo/wal/" . substr($b1->{stop_wal}, 0, 16) . "/$b1->{stop_wal}",
	"the stop segment $b1->{stop_wal} is in the repository");

# ---- list's WAL section
my ($tl) = grep { $_->{timeline} == 1 } @{ $j->{wal}{timelines} // [] };
ok($tl, 'list --json has WAL for timeline 1');
is_deeply($tl->{gaps}, [], '... without gaps') if $tl;
ok($tl && $tl->{last} ge $b1->{stop_wal}, '... reaching the stop segment');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
is($rc, 0, 'list exits 0');
like($out, qr/\Q$id1\E\s+first backup/, 'list names the backup and its label');
like($out, qr/WAL timeline 1: \S+ \.\. \S+, \d+ segment\(s\), no gaps/, 'list shows the WAL');

# ---- a repository of another cluster: refused before any data moves
my $other = make_pg_dir("$base/other", 0700);
my $fake = "format = 1\nsystem-identifier = 1234567890123456789\npg-version = 15\n"
  . "wal-segment-size = 1048576\n";
spurt_file("$other/walship.repo", $fake);
chown_pg("$other/walship.repo");
my $ckpts = $node->safe_psql('SELECT checkpoints_req FROM pg_stat_bgwriter');
($rc, $out, $err) = run(cmd => [ $bin, '--repo', $other, 'basebackup', '--pgconn', $pgconn,
		'--checkpoint', 'fast' ]);
is($rc, 1, "another cluster's repository: exit 1") or diag($err);
like($err, qr/system identifier 1234567890123456789, not this one/, '... naming both clusters');
is_deeply([ repo_keys($other) ], ["$other/walship.repo"], '... nothing written');
is($node->safe_psql('SELECT checkpoints_req FROM pg_stat_bgwriter'), $ckpts,
	'... and no backup started (no checkpoint requested)');

# ---- kill -9 midway: not listed; the next backup succeeds
my $kcmd = join(' ', map { "'$_'" } @bb, '--label', 'killed', '--basebackup-max-rate', '2048');
($rc, $out) = run(cmd => [ 'sh', '-c', "$kcmd >$base/killed.log 2>&1 & echo \$!" ]);
chomp(my $wpid = $out);
like($wpid, qr/^\d+$/, "the throttled backup runs (pid $wpid)");
my $deadline = time + 60;
my @killed;
while (time < $deadline)
{
	@killed = grep { m{/data/\d+$} && !m{\Q$id1\E} } repo_keys("$repo/backup");
	last if @killed;
	sleep 0.05;
}
ok(@killed, 'the throttled backup has written objects');
ok(kill('KILL', $wpid), 'kill -9 of the backup midway');
sleep 0.1 while kill 0, $wpid;
like(slurp_file("$base/killed.log"), qr/progress|start LSN/, '... it was running');
my $killed_id = ($killed[0] // '') =~ m{backup/([^/]+)/} ? $1 : '';
$j = list_json();
is(scalar @{ $j->{backups} }, 1, 'the killed backup is not listed');
is_deeply($j->{incomplete_backups}, [$killed_id], '... but reported as incomplete');
ok(!-e "$repo/backup/$killed_id/walship.manifest", '... it has no manifest');
$node->poll_query_until("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'walsender'");

($rc, $out, $err) = run(cmd => [ @bb, '--label', 'after the kill' ]);
is($rc, 0, 'the next backup succeeds') or diag($err);
$j = list_json();
is(scalar @{ $j->{backups} }, 2, 'list shows two backups');
is_deeply([ map { $_->{label} } @{ $j->{backups} } ], [ 'first backup', 'after the kill' ],
	'... oldest first');

# ---- archive_command failing: the backup is reported failed, nothing listed
my $repo2 = make_pg_dir("$base/repo2", 0700);
my $conf2 = write_config("$base/walship2.conf", repo => $repo2, 'basebackup-wal-timeout' => 3);
my $broken = new_cluster('broken', archive_command => 'false');
$broken->start;
my $pgconn2 = "host=" . $broken->host . " port=" . $broken->port . " dbname=postgres";
my $t0 = time;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf2, 'basebackup', '--pgconn', $pgconn2,
		'--checkpoint', 'fast' ]);
is($rc, 1, 'archive_command failing: basebackup exits 1') or diag($err);
like($err, qr/not archived the backup's last WAL segment after 3 s|not in the repository/,
	'... saying the WAL never arrived') or diag($err);
cmp_ok(time - $t0, '<', 60, '... within the timeout, not hanging');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf2, 'list', '--json' ]);
my $j2 = eval { decode_json($out) } // {};
is_deeply($j2->{backups}, [], '... and nothing is listed') or diag("list: $rc $out $err");
is_deeply([ grep { m{/backup/} } repo_keys($repo2) ], [], "... the failed backup's objects are removed");
ok($broken->poll_query_until(
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'walsender'", 't', 30),
	'... and the server is no longer sending a backup');

done_testing();
