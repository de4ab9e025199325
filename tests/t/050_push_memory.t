# 050_push_memory.t — push streams: its peak RSS stays within 16 MiB for a 16 MiB segment
# (and a fetch of it too). Memory, not time: no timing is asserted anywhere.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

my $time = '/usr/bin/time';
if (($ENV{SANITIZE} // '0') eq '1')
{
	plan skip_all => 'SKIPPED under SANITIZE=1: ASan shadow memory inflates RSS; the plain run checks it';
}
plan skip_all => "SKIPPED: $time is missing (scripts/deps.sh installs the 'time' package)"
  unless -x $time;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $node = new_cluster('big', wal_segsize => 16, wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 300000) g');
my $seg = $node->switch_wal;
$node->stop;
my $path = $node->pgdata . "/pg_wal/$seg";
is(-s $path, 16 * 1024 * 1024, 'a 16 MiB segment');

my ($rc, $out, $err) = run(cmd => [ $time, '-f', 'maxrss_kb=%M', $bin, '--repo', $repo, 'push', $path ]);
is($rc, 0, 'push exits 0') or diag($err);
my ($kb) = $err =~ /maxrss_kb=(\d+)/;
ok(defined $kb && $kb <= 16 * 1024, "push peak RSS ${\($kb // '?')} kB <= 16384 kB");

my $dest = "$base/fetched";
($rc, $out, $err) = run(cmd => [ $time, '-f', 'maxrss_kb=%M', $bin, '--repo', $repo, 'fetch', $seg, $dest ]);
is($rc, 0, 'fetch exits 0') or diag($err);
($kb) = $err =~ /maxrss_kb=(\d+)/;
ok(defined $kb && $kb <= 16 * 1024, "fetch peak RSS ${\($kb // '?')} kB <= 16384 kB");

done_testing();
