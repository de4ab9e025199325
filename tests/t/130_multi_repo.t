# 130_multi_repo.t — a posix and an S3 repository together. push is durable in both before it
# says "archived"; with S3 down push fails (PostgreSQL retries) while the posix copy is made,
# and succeeds once S3 is back; fetch falls back from an absent or unreadable posix copy to S3,
# and a recovery whose WAL is only in S3 (posix emptied) brings back every row.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Compare qw(compare);
use File::Path qw(remove_tree);

WalshipS3::require_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $posix = make_pg_dir("$base/posix");
my $s3    = WalshipS3->s3rver(buckets => ['wal']);
my %s3cfg = $s3->config(repo => 's3://wal/multi');
my $s3_endpoint = $s3cfg{'s3-endpoint'};
delete $s3cfg{repo};

# a TCP port nobody listens on: connection refused at once
my $dead = WalshipS3::_free_port();

sub conf
{
	my ($path, %o) = @_;
	my %c = (%s3cfg, 'io-timeout' => '3s', 'fetch-timeout' => '2s');
	$c{'s3-endpoint'} = $o{s3_down} ? "http://127.0.0.1:$dead" : $s3_endpoint;
	my @repos = $o{s3_only} ? (repo1 => 's3://wal/multi')
	  : $o{posix_only} ? (repo1 => $posix)
	  : (repo1 => $posix, repo2 => 's3://wal/multi');
	return write_config($path, @repos, %c);
}

my $conf    = conf("$base/walship.conf");
my $s3only  = conf("$base/s3only.conf", s3_only => 1);
my $posonly = conf("$base/posix.conf", posix_only => 1);

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_keep_size => '1GB', conf => { archive_timeout => 0 });
$node->start;
$node->safe_psql('CREATE TABLE t (id int PRIMARY KEY, pad text)');
my $backup = $node->backup('base');

my $n = 0;
sub load
{
	my ($batches) = @_;
	for (1 .. $batches)
	{
		my ($lo, $hi) = ($n + 1, $n + 2000);
		$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series($lo, $hi) g");
		$n = $hi;
		$node->switch_wal;
	}
}

# ---- both up: every file in both repositories
load(3);
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), "both up: archived up to $seg");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'both up: no failure');
my $pg_wal = $node->pgdata . '/pg_wal';
my $dest = make_pg_dir("$base/dest");
for my $c ([ 'posix', $posonly ], [ 's3', $s3only ])
{
	my ($rc, undef, $err) = run(cmd => [ $bin, '-c', $c->[1], 'fetch', $seg, "$dest/x" ]);
	ok($rc == 0 && compare("$dest/x", "$pg_wal/$seg") == 0, "$seg is in the $c->[0] repository")
	  or diag($err);
	unlink "$dest/x";
}

# ---- S3 down: push exits 1 (never acknowledged), the posix copy is made, PostgreSQL retries
conf("$base/walship.conf", s3_down => 1);
load(1);
my $held = $node->switch_wal;
ok($node->poll_query_until("SELECT failed_count > 0 AND last_failed_wal IS NOT NULL FROM pg_stat_archiver"),
	'S3 down: push fails');
ok(-e "$pg_wal/archive_status/$held.ready" && !-e "$pg_wal/archive_status/$held.done",
	"S3 down: $held is not acknowledged");
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $posonly, 'fetch', $held, "$dest/x" ]);
is($rc, 0, 'S3 down: the posix repository already holds the file');
unlink "$dest/x";
like($node->log_content, qr/walship push: ERROR: .*(refused|connect|Couldn't|could not)/i,
	'S3 down: the server log says why') ;

# ---- S3 back: the same file is archived, the posix copy counts as identical
conf("$base/walship.conf");
ok($node->wait_for_archive($held), "S3 back: $held archived");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $s3only, 'fetch', $held, "$dest/x" ]);
ok($rc == 0 && compare("$dest/x", "$pg_wal/$held") == 0, "S3 back: $held is in S3 too");
unlink "$dest/x";
like($node->log_content, qr/$held is already archived in \Q$posix\E with the same contents/,
	'S3 back: the posix copy was recognised, not rewritten');

load(2);
$node->safe_psql("INSERT INTO t VALUES (-1, 'last')");
my $expected = $node->safe_psql('SELECT count(*), sum(id) FROM t');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");

# ---- fetch falls back: absent in posix, unreadable in posix
unlink "$posix/wal/" . substr($seg, 0, 16) . "/$seg" or die;
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $seg, "$dest/x" ]);
ok($rc == 0 && compare("$dest/x", "$pg_wal/$seg") == 0, 'absent in posix: served by S3');
like($err, qr/restored $seg from s3:/, 'says S3 served it') or diag($err);
unlink "$dest/x";
SKIP:
{
	skip('needs an unprivileged user', 2) unless is_root() || $> != 0;
	chmod 0000, "$posix/wal" or die;
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $held, "$dest/x" ]);
	ok($rc == 0 && compare("$dest/x", "$pg_wal/$held") == 0, 'unreadable posix: served by S3');
	like($err, qr/Permission denied/, 'the posix failure is logged');
	chmod 0700, "$posix/wal" or die;
	unlink "$dest/x";
}
# both failing: posix absent, S3 down → 126, never "absent"
my $downconf = conf("$base/down.conf", s3_down => 1);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $downconf, 'fetch', $seg, "$dest/x" ]);
is($rc, 126, 'absent in posix and S3 unreachable: 126, not 1');
ok(!-e "$dest/x", 'nothing written');

# ---- recovery with the posix repository emptied: all WAL comes from S3
$node->stop;
remove_tree("$posix/wal");
make_pg_dir("$posix/wal");
my $restored = WalshipTest::init_from_backup('restored', $backup,
	restore_command => "$bin -c $conf fetch %f %p", recovery => 1);
ok($restored->start(fail_ok => 1), 'the copy starts archive recovery')
  && ok($restored->poll_query_until('SELECT NOT pg_is_in_recovery()'), 'recovery completes');
is($restored->safe_psql('SELECT count(*), sum(id) FROM t'), $expected,
	'every row is back, its WAL fetched from S3 alone');

done_testing();
