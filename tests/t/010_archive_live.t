# 010_archive_live.t — walship push as a live cluster's archive_command, under write load,
# into a posix repository; then every archived file fetched back byte for byte.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);
use File::Find qw(find);

my ($bin, $base, $repo, $conf) = walship_setup();

# wal_keep_size: keep every segment in pg_wal, so that each archived file can be compared with
# the original.
my $node = archiving_cluster('primary', $conf, wal_keep_size => '1GB');
$node->start;

# ---- write load: pgbench's initial load, a short run, and batches of inserts across switches
my @pgconn = ('-h', $node->host, '-p', $node->port);
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', '1', '-q', @pgconn, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);
($rc, $out, $err) =
  run(cmd => [ pg_bin('pgbench'), '-n', '-c', '2', '-j', '2', '-T', '3', @pgconn, 'postgres' ]);
is($rc, 0, 'pgbench -T 3') or diag($err);

$node->safe_psql('CREATE TABLE filler (id int, pad text)');
for my $i (1 .. 5)
{
	$node->safe_psql(
		"INSERT INTO filler SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 2000) g");
	$node->switch_wal;
}
my $last = $node->switch_wal;
note("last completed segment: $last");

ok($node->wait_for_archive($last), "every segment up to $last archived");
is($node->safe_psql('SELECT failed_count FROM pg_stat_archiver'),
	'0', 'pg_stat_archiver.failed_count = 0 (no push ever failed)');
unlike($node->log_content, qr/archive command (failed|was terminated)/,
	'no archive command failure in the server log');

# ---- every archived file in pg_wal comes back identical through walship fetch
my $pg_wal = $node->pgdata . '/pg_wal';
opendir my $dh, $pg_wal or die "opendir $pg_wal: $!";
my @archived = sort grep {
	/^([0-9A-F]{24}|[0-9A-F]{8}\.history|[0-9A-F]{24}\.[0-9A-F]{8}\.backup|[0-9A-F]{24}\.partial)$/
	  && -e "$pg_wal/archive_status/$_.done"
} readdir $dh;
closedir $dh;
cmp_ok(scalar(grep { /^[0-9A-F]{24}$/ } @archived), '>=', 10, 'at least 10 segments archived')
  or diag("archived: @archived");

my $dest = make_pg_dir("$base/fetched", 0700);
my ($fetched, $identical) = (0, 0);
for my $f (@archived)
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	if (is($rc, 0, "fetch $f exits 0"))
	{
		$fetched++;
		$identical++
		  if ok(-f "$dest/$f" && compare("$dest/$f", "$pg_wal/$f") == 0,
			"fetched $f is byte-identical to pg_wal/$f");
	}
	else
	{
		diag("stderr: $err");
	}
}
is($identical, scalar @archived, 'all archived files fetched back identical');

# ---- the repository's permissions: files 0600, directories 0700
my (@bad, $nfiles);
find(
	{
		no_chdir => 1,
		wanted   => sub {
			my @st = lstat($_) or return;
			my $mode = $st[2] & 07777;
			if (-d _)
			{
				push @bad, sprintf('%s (dir %04o)', $_, $mode) if $mode != 0700;
			}
			elsif (-f _)
			{
				$nfiles++;
				push @bad, sprintf('%s (file %04o)', $_, $mode) if $mode != 0600;
			}
		}
	},
	$repo);
cmp_ok($nfiles // 0, '>=', scalar @archived, 'the repository holds a file per archived WAL file');
ok(!@bad, 'repository files are 0600 and directories 0700')
  or diag(join("\n", @bad[ 0 .. ($#bad < 20 ? $#bad : 19) ]));

# ---- the contract's edge cases, against the live repository
my $absent = '000000010000000000000FFF';    # valid with 1 MiB segments, not reached
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $absent, "$dest/absent" ]);
is($rc, 1, "fetch of a never-archived segment exits 1 (absent)") or diag($err);
ok(!-e "$dest/absent", '... and creates nothing at the destination');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', '00000063.history', "$dest/hist" ]);
is($rc, 1, 'fetch of an absent timeline history file exits 1') or diag($err);
ok(!-e "$dest/hist", '... and creates nothing at the destination');

($rc, $out, $err) = run(
	cmd => [ $bin, '-c', $conf, 'push', 'pg_wal/000000010000000000000FFE' ],
	cwd => $node->pgdata);
is($rc, 1, 'push of a missing file exits 1 (not archived, PostgreSQL retries)') or diag($err);
like($err, qr/\S/, '... and says why on stderr');

($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $archived[0] ]);
is($rc, 2, 'fetch without a destination is a usage error (2)') or diag($err);

done_testing();
