#!/usr/bin/perl
# bench/expire.pl — walship expire on a repository of 60 backups and 10,000 WAL objects, on
# posix and on S3 (s3rver, through the fault proxy with no faults, to count requests).
#
#   WALSHIP_BIN=$PWD/build/walship perl bench/expire.pl
#
# One real base backup is taken; 59 more are made from it (its objects hard-linked, its
# manifest rewritten with another id, times an hour apart and WAL positions 166 segments
# apart), and 10,000 WAL objects are hard links of one real segment object under consecutive
# names. For S3 the same is done in s3rver's directory store. Then
# `walship expire --retention-full 5` removes 55 backups and ~9,100 WAL objects. Prints
# seconds and requests; results go into docs/benchmarks.md by hand.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../tests/lib";
use WalshipTest;
use WalshipRestore;
use WalshipBackup;
use WalshipS3;

use File::Copy qw(copy);
use File::Path qw(make_path);
use POSIX qw(strftime);
use Time::HiRes qw(time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $s3dir = "$base/s3data";
my $s3    = WalshipS3->s3rver(buckets => ['wal'], dir => $s3dir);
my $proxy = WalshipS3->proxy(upstream => $s3, rate => 0);
my $conf  = write_config("$base/walship.conf", repo1 => $repo, repo2 => 's3://wal/b',
	'repo2-s3-endpoint' => $proxy->{endpoint}, 'repo2-s3-uri-style' => 'path',
	'repo2-s3-key' => $s3->{key}, 'repo2-s3-key-secret' => $s3->{secret},
	'expire-auto' => 'off', async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
my $b0 = take_basebackup($node, [ '-c', $conf ], label => 'real');
$node->stop;

my ($seg0) = map { m{/([0-9A-F]{24})$} ? $1 : () } glob("$repo/wal/*/*");
my $SEGS_PER_LOG = 4096;    # 1 MiB segments
sub segname { my ($n) = @_; return sprintf('%08X%08X%08X', 1, int($n / $SEGS_PER_LOG), $n % $SEGS_PER_LOG) }

my $plain = read_object("$repo/backup/$b0/walship.manifest");
my $t0 = time;
sub forge
{
	my ($root, $suffixes) = @_;
	for my $k (1 .. 59) {
		my $id = strftime('%Y%m%dT%H%M%SZ', gmtime($t0 + $k * 3600));
		my $s  = 200 + $k * 166;
		my $m  = $plain;
		$m =~ s/^id = .*$/id = $id/m;
		$m =~ s/^start-time = .*$/'start-time = ' . strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($t0 + $k * 3600))/me;
		$m =~ s/^stop-time = .*$/'stop-time = ' . strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($t0 + $k * 3600 + 60))/me;
		$m =~ s/^start-lsn = .*$/sprintf('start-lsn = %X\/%X', ($s << 20) >> 32, ($s << 20) & 0xffffffff + 40)/me;
		$m =~ s/^stop-lsn = .*$/sprintf('stop-lsn = %X\/%X', (($s + 1) << 20) >> 32, (($s + 1) << 20) & 0xffffffff)/me;
		$m =~ s/^start-wal = .*$/'start-wal = ' . segname($s)/me;
		$m =~ s/^stop-wal = .*$/'stop-wal = ' . segname($s + 1)/me;
		my $rc = system('cp', '-al', "$root/backup/$b0", "$root/backup/$id");
		die "cp: $?" if $rc;
		for my $sfx (@$suffixes) { unlink "$root/backup/$id/walship.manifest$sfx" }
		if (!@$suffixes || $suffixes->[0] eq '') {
			WalshipRestore::forge_object("$root/backup/$id/walship.manifest", $m);
		} else {
			WalshipRestore::forge_object("$base/manifest.tmp", $m);
			copy("$base/manifest.tmp", "$root/backup/$id/walship.manifest._S3rver_object") or die;
			my $md5 = `md5sum $base/manifest.tmp`;
			$md5 =~ s/\s.*//s;
			WalshipTest::spurt_file("$root/backup/$id/walship.manifest._S3rver_object.md5", $md5);
			copy("$root/backup/$b0/walship.manifest._S3rver_metadata.json",
				"$root/backup/$id/walship.manifest._S3rver_metadata.json") or die;
		}
	}
	my ($dir0) = glob("$root/wal/0000000100000000");
	for my $n (100 .. 10099) {
		my $name = segname($n);
		my $d = "$root/wal/" . substr($name, 0, 16);
		make_path($d) unless -d $d;
		for my $sfx (@$suffixes ? @$suffixes : ('')) {
			link("$dir0/$seg0$sfx", "$d/$name$sfx") or die "link $d/$name$sfx: $!";
		}
	}
	system('chown', '-R', 'postgres:postgres', $root) if $> == 0;
}
forge($repo, []);
forge("$s3dir/wal/b", [ '._S3rver_object', '._S3rver_object.md5', '._S3rver_metadata.json' ]);

for my $r ([ 'posix', 1 ], [ 's3 (s3rver)', 2 ]) {
	my ($lrc, $lout) = run(cmd => [ $bin, '-c', $conf, '--repo', $r->[1], 'list', '--json' ]);
	my $nb = () = $lout =~ /"complete":true/g;
	my $before = WalshipS3::fault_counts($proxy)->{pass} // 0;
	my $t = time;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--repo', $r->[1], 'expire',
		'--retention-full', 5, '--json' ]);
	my $dt = time - $t;
	my $reqs = (WalshipS3::fault_counts($proxy)->{pass} // 0) - $before;
	my ($wal) = $out =~ /"wal_removed":\{"count":(\d+)/;
	my ($bk) = $out =~ /"backups_removed":(\d+)/;
	printf "%-12s %2d backups, expire --retention-full 5: exit %d, %d backups and %d WAL objects removed in %.2f s%s\n",
		$r->[0], $nb, $rc, $bk // -1, $wal // -1, $dt, $r->[1] == 2 ? ", $reqs requests" : '';
	print STDERR $err if $rc;
}
done_testing();
