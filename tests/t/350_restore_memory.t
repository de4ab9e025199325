# 350_restore_memory.t — restore streams: restoring a backup whose largest file is one object of
# ~85 MiB (and packs of small files) keeps walship's peak RSS within 32 MiB, with the default
# parallelism and with --restore-parallel 1. Memory, not time: no timing is asserted anywhere.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

my $time = '/usr/bin/time';
if (($ENV{SANITIZE} // '0') eq '1')
{
	plan skip_all => 'SKIPPED under SANITIZE=1: ASan shadow memory inflates RSS; the plain run checks it';
}
plan skip_all => "SKIPPED: $time is missing (scripts/deps.sh installs the 'time' package)"
  unless -x $time;

my $limit_kb = 32 * 1024;
my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my $node = archiving_cluster('primary', $conf);
$node->start;
# random-looking text: lz4 cannot shrink it much, so the object is about as large as the file
$node->safe_psql('CREATE TABLE big AS SELECT g, md5(g::text) || md5((g + 1)::text) AS h
	FROM generate_series(1, 900000) g');
my $rel = $node->safe_psql("SELECT pg_relation_filepath('big')");
my $size = -s($node->pgdata . "/$rel") // 0;
cmp_ok($size, '>', 64 * 1024 * 1024, "the table's file is " . int($size / 1048576) . ' MiB');
my $id = take_basebackup($node, \@g, label => 'big');
$node->stop;

for my $par (undef, 1)
{
	my $name = defined $par ? "restore-parallel $par" : 'default parallelism';
	my $dir  = "$base/restored" . ($par // '');
	my ($rc, $out, $err) = run(cmd => [ $time, '-f', 'maxrss_kb=%M', $bin, @g, 'restore',
			'--pgdata', $dir, (defined $par ? ('--restore-parallel', $par) : ()) ]);
	is($rc, 0, "$name: restore exits 0") or diag($err);
	is(-s "$dir/$rel", $size, "$name: the large file is restored whole");
	my ($kb) = $err =~ /maxrss_kb=(\d+)/;
	ok(defined $kb && $kb <= $limit_kb, "$name: peak RSS ${\($kb // '?')} kB <= $limit_kb kB");
}

done_testing();
