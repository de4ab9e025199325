# 702_disk_full.t — a repository whose file system fills up (a 6 MiB tmpfs): push fails with
# the file system's error and exit 1 (PostgreSQL keeps the segment and retries), no partial
# object and no temporary file is left visible, every object that is there verifies; once
# space is back the archive catches up by itself and every segment fetches back
# byte-identical (issue 18, "disk full"). Needs root for the mount: skipped loudly otherwise.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use File::Find;
use WalshipTest;

plan skip_all => 'SKIPPED: mounting a small tmpfs needs root (CI runs as root)' unless is_root();

my $bin   = walship_bin();
my $base  = tmp_base();
my $small = "$base/small";
mkdir $small or die "mkdir $small: $!";
system('mount', '-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', $small) == 0
  or plan skip_all => "SKIPPED: mount -t tmpfs failed ($?)";
my $mounted = 1;
END { system('umount', '-l', $small) if $mounted }
chown_pg($small);
my $repo = make_pg_dir("$small/repo", 0700);
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p",
	wal_keep_size => '1GB');
$node->start;

# incompressible-enough rows: md5 text, lz4 keeps about half of it
my $i = 0;
my $failed = 0;
for my $round (1 .. 60)
{
	$node->safe_psql("CREATE TABLE IF NOT EXISTS t (g int, h text);"
		  . "INSERT INTO t SELECT g, md5(g::text || random()::text) || md5(random()::text)"
		  . " FROM generate_series(1, 8000) g");
	$node->switch_wal;
	$failed = $node->safe_psql('SELECT failed_count FROM pg_stat_archiver');
	last if $failed > 0 && $round > 3;
}
ok($failed > 0, "the archiver saw failures once the repository filled ($failed)");
ok(wait_until(60, sub { $node->safe_psql('SELECT failed_count FROM pg_stat_archiver') > $failed + 1 }),
	'... and keeps retrying');
my $log = slurp_file($node->logfile);
like($log, qr/walship push: ERROR: .*No space left on device/, 'push says why: No space left on device')
  or diag(substr($log, -3000));
unlike($log, qr/archive command failed with exit code (?!1\b)\d+/, '... and exits 1 every time (never > 125)');

# nothing partial is visible: no temporary file, and every object there verifies
my @tmp;
find(sub { push @tmp, $File::Find::name if /^\..*\.tmp\./ }, $repo);
is_deeply(\@tmp, [], 'no temporary file left in the full repository');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'verify', '--wal-only' ]);
unlike($out . $err, qr/PROBLEM [^\n]*(corrupt|length|checksum|truncat)/i,
	'every stored object verifies (verify --wal-only: no damaged object)')
  or diag("$out\n$err");

# space back: the archive catches up by itself
system('mount', '-o', 'remount,size=512m', $small) == 0 or die "remount: $?";
# after three failures the archiver sleeps up to a minute; a reload wakes it
$node->safe_psql('SELECT pg_reload_conf()');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last, 180), "once space is back, archiving catches up to $last");

# every segment PostgreSQL marked done fetches back byte-identical
my $wal = $node->pgdata . '/pg_wal';
my @done = sort map { s{.*/}{}r =~ s/\.done$//r } glob("$wal/archive_status/*.done");
@done = grep { /^[0-9A-F]{24}$/ } @done;
ok(@done > 5, scalar(@done) . ' segments archived');
my $bad = 0;
for my $seg (@done)
{
	my $dest = "$base/fetched";
	unlink $dest;
	my ($frc, undef, $ferr) = run(cmd => [ $bin, '-c', $conf, '--fetch-prefetch', '0', 'fetch', $seg, $dest ]);
	my $same = $frc == 0 && system('cmp', '-s', $dest, "$wal/$seg") == 0;
	$bad++ unless $same;
	diag("$seg: fetch exit $frc: $ferr") unless $same;
}
is($bad, 0, 'every archived segment fetches back byte-identical');
$node->stop;
done_testing();
