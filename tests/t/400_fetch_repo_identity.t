# 400_fetch_repo_identity.t — a missing, empty or unidentified repository is an outage, not
# "absent": fetch of a segment or a history file from an empty directory (an unmounted NAS), a
# directory that does not exist, a repository whose walship.repo is gone, or an S3 prefix that
# holds nothing (a wrong prefix answers 404 for everything) exits 126 (1 with an ERROR in
# standby mode), says why, and writes nothing. A repository of another database system fails at
# once: the segment's system identifier against the repository's, and the repository's against
# the cluster's pg_control when fetch runs in a PGDATA. The prefetch agent never prefetches
# from an unidentified repository either. fetch-timeout bounds the retries.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Copy qw(copy);
use Time::HiRes qw(sleep time);

my ($bin, $base, $repo, $conf) = walship_setup('fetch-timeout' => '2');

my $node = archiving_cluster('a', $conf);
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g');
my @segs;
for (1 .. 4)
{
	$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
	push @segs, $node->switch_wal;
}
ok($node->wait_for_archive($segs[-1]), 'segments archived');
$node->stop;
my $s1 = $segs[0];

my $dest   = make_pg_dir("$base/dest");
my $cwd    = make_pg_dir("$base/cwd");      # not a PGDATA: no cluster check
my $empty  = make_pg_dir("$base/empty");    # an unmounted mount point looks like this
my $nodir  = "$base/does-not-exist";

sub fetch
{
	my ($c, $name, $file, %o) = @_;
	return timed_fetch($c, $name, "$dest/$file", cwd => $o{cwd} // $cwd);
}

my ($rc, $err, $took) = fetch($conf, $s1, 'RECOVERYXLOG');
is($rc, 0, 'the identified repository serves the segment') or diag($err);
unlink "$dest/RECOVERYXLOG";

for my $case ([ 'an empty directory', $empty ], [ 'a directory that does not exist', $nodir ])
{
	my ($what, $dir) = @$case;
	my $c = write_config("$base/c-" . ($dir eq $empty ? 'empty' : 'nodir') . '.conf',
		repo => $dir, 'fetch-timeout' => '2');
	for my $f ([ $s1, 'RECOVERYXLOG' ], [ '00000002.history', 'RECOVERYHISTORY' ])
	{
		($rc, $err, $took) = fetch($c, @$f);
		is($rc, 126, "$what, $f->[0]: exit 126, not 1 (absent)");
		like($err, qr/has no walship\.repo: it is not mounted/, "$what, $f->[0]: says why")
		  or diag($err);
		unlike($err, qr/is not in the archive/, "$what, $f->[0]: never reported absent");
		cmp_ok($took, '<', 20, "$what, $f->[0]: gives up after fetch-timeout (${took}s)");
		dest_empty($dest, "$what, $f->[0]");
	}
}

# walship.repo removed from a repository that holds the WAL (a lifecycle rule, a bad rsync)
rename("$repo/walship.repo", "$base/walship.repo.saved") or die;
($rc, $err) = fetch($conf, $s1, 'RECOVERYXLOG');
is($rc, 126, 'walship.repo removed: a present segment is not served (126)');
like($err, qr/has no walship\.repo/, '... says why') or diag($err);
dest_empty($dest, 'walship.repo removed, present segment');
($rc, $err) = fetch($conf, '000000010000000000000077', 'RECOVERYXLOG');
is($rc, 126, 'walship.repo removed: an absent segment is an outage too (126, not 1)');
dest_empty($dest, 'walship.repo removed, absent segment');

# standby mode: 1, with an ERROR, so that the standby keeps asking
spurt_file("$cwd/standby.signal", '');
chown_pg("$cwd/standby.signal");
($rc, $err) = fetch($conf, $s1, 'RECOVERYXLOG');
is($rc, 1, 'standby mode, walship.repo removed: exit 1');
like($err, qr/ERROR: .*could not restore/, '... logged as an ERROR') or diag($err);
unlink "$cwd/standby.signal";
dest_empty($dest, 'standby');

# the prefetch agent: nothing prefetched from the unidentified repository. repo1 is identified
# and holds only the first segment; the repository without walship.repo holds them all.
{
	my $repo1 = make_pg_dir("$base/repo1");
	copy("$base/walship.repo.saved", "$repo1/walship.repo") or die;
	make_pg_dir("$repo1/wal/" . substr($segs[0], 0, 16));
	my $k = "wal/" . substr($segs[0], 0, 16) . "/$segs[0]";
	copy("$repo/$k", "$repo1/$k") or die;
	chown_pg("$repo1/walship.repo", "$repo1/$k");
	my $pgdata = make_pg_dir("$base/fake", 0700);
	make_pg_dir("$pgdata/pg_wal/archive_status", 0700);
	my $log = "$base/agent.log";
	spurt_file($log, '');
	chown_pg($log);
	chmod 0666, $log;
	my $pc = write_config("$base/prefetch.conf", repo1 => $repo1, repo2 => $repo,
		'fetch-timeout' => '2', 'fetch-prefetch' => 2, 'agent-idle-timeout' => '3s');
	my $pfetch = sub {
		my ($seg) = @_;
		my ($r) = run(cmd => [ 'sh', '-c', "exec '$bin' -c '$pc' fetch $seg pg_wal/RECOVERYXLOG 2>>'$log'" ],
			cwd => $pgdata);
		return $r;
	};
	is($pfetch->($segs[0]), 0, "prefetching fetch of $segs[0] from repo1: 0 (the agent moves to it)");
	unlink "$pgdata/pg_wal/RECOVERYXLOG";
	my $deadline = time + 20;
	# the agent logs a failure of one kind once (whichever segment it tried first), then at debug
	sleep 0.2 until slurp_file($log) =~ /cannot prefetch [0-9A-F]{24} / || time > $deadline;
	like(slurp_file($log), qr/prefetch: WARNING: cannot prefetch [0-9A-F]{24} .*has no walship\.repo/,
		'the agent does not take it from the unidentified repository, and says why') or diag(slurp_file($log));
	ok(!-e "$pgdata/pg_wal/walship-prefetch/$segs[1]", "$segs[1] is not in the spool");
	is($pfetch->($segs[1]), 126, "fetch of $segs[1]: 126 (not served from the spool or repo2)");
	ok(!-e "$pgdata/pg_wal/RECOVERYXLOG", 'nothing in pg_wal');
}
rename("$base/walship.repo.saved", "$repo/walship.repo") or die;
chown_pg("$repo/walship.repo");

# another database system: the identity names another sysid than the segment's...
my $idtext = slurp_file("$repo/walship.repo");
(my $forged = $idtext) =~ s/^system-identifier = \d+/system-identifier = 1234567890123456789/m;
spurt_file("$repo/walship.repo", $forged);
chown_pg("$repo/walship.repo");
($rc, $err) = fetch($conf, $s1, 'RECOVERYXLOG');
is($rc, 126, 'segment of another database system than the repository: 126');
like($err, qr/belongs to database system \d+, not to the repository's 1234567890123456789/,
	'... says so') or diag($err);
dest_empty($dest, 'foreign segment');

# ... and the repository another system than the cluster whose PGDATA fetch runs in
($rc, $err) = fetch($conf, '00000002.history', 'RECOVERYHISTORY', cwd => $node->pgdata);
is($rc, 126, 'run in a PGDATA, the repository of another system: 126 even for a history probe');
like($err, qr/repository \Q$repo\E belongs to database system 1234567890123456789, not to this cluster's/,
	'... says so') or diag($err);
dest_empty($dest, 'foreign repository');
spurt_file("$repo/walship.repo", $idtext);
chown_pg("$repo/walship.repo");
($rc, $err) = fetch($conf, '00000002.history', 'RECOVERYHISTORY', cwd => $node->pgdata);
is($rc, 1, 'run in its own PGDATA: the absent history file is absent (1)') or diag($err);

# S3: a prefix that holds nothing (the wrong one) answers 404 for everything
SKIP:
{
	skip('s3rver is not installed', 6) unless WalshipS3::have_s3rver();
	my $s3 = WalshipS3->s3rver(buckets => ['wal']);
	my $sc = write_config("$base/s3.conf", repo => 's3://wal/right', $s3->config, 'fetch-timeout' => '2');
	my $n2 = new_cluster('b', archive_command => "$bin -c $sc push %p");
	$n2->start;
	$n2->safe_psql('CREATE TABLE t AS SELECT 1');
	my $seg = $n2->switch_wal;
	ok($n2->wait_for_archive($seg), 'a segment archived to s3://wal/right');
	$n2->stop;
	my $wrong = write_config("$base/s3w.conf", repo => 's3://wal/wrong', $s3->config, 'fetch-timeout' => '2');
	($rc, $err, $took) = fetch($wrong, $seg, 'RECOVERYXLOG');
	is($rc, 126, 'S3, wrong prefix, segment: 126, not 1');
	like($err, qr{s3://wal/wrong has no walship\.repo}, '... says why') or diag($err);
	($rc, $err) = fetch($wrong, '00000002.history', 'RECOVERYHISTORY');
	is($rc, 126, 'S3, wrong prefix, history file: 126');
	dest_empty($dest, 'S3 wrong prefix');
	($rc, $err) = fetch($sc, $seg, 'RECOVERYXLOG');
	is($rc, 0, 'S3, the right prefix: served') or diag($err);
}

done_testing();
