# bench/cipher_backup.t — encrypted (cipher-key-file) against unencrypted walship basebackup and
# walship restore (--target immediate) of a ~230 MiB database, 5 interleaved repetitions each,
# medians printed as diagnostics. Not part of the suite (a benchmark): run by hand with
#   WALSHIP_BIN=$PWD/build/walship prove -v bench/cipher_backup.t
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../tests/lib";
use WalshipTest;
use WalshipRestore;
use Time::HiRes qw(time);
my $bin  = walship_bin();
my $base = tmp_base();
my $kf = "$base/k";
spurt_file($kf, 'k' x 32); chmod 0600, $kf; chown_pg($kf);
my $cur = "$base/cur.conf";
write_config($cur, repo => "$base/none");
my $node = new_cluster('p', archive_command => "$bin -c $cur push %p", conf => { max_wal_size => '2GB' });
$node->start;
$node->safe_psql("CREATE TABLE t AS SELECT g, md5(g::text) || repeat('x', 40) AS v FROM generate_series(1, 2000000) g");
$node->safe_psql("CHECKPOINT");
my %res;
for my $rep (1 .. 5) {
	for my $mode ('plain', 'keyfile') {
		my $repo = make_pg_dir("$base/repo-$mode-$rep");
		my $conf = write_config("$base/$mode-$rep.conf", repo => $repo,
			($mode eq 'keyfile' ? (cipher => 'aes-256-gcm', 'cipher-key-file' => $kf) : ()));
		write_config($cur, repo => $repo,
			($mode eq 'keyfile' ? (cipher => 'aes-256-gcm', 'cipher-key-file' => $kf) : ()));
		my $t0 = time;
		my $id = take_basebackup($node, [ '-c', $conf ], label => "$mode$rep");
		my $t1 = time;
		my $r = restored_node("r$mode$rep");
		my ($rc, $o, $e) = walship_restore([ '-c', $conf ], '--pgdata', $r->pgdata, '--target', 'immediate');
		my $t2 = time;
		ok($rc == 0, "restore $mode") or diag($e);
		push @{ $res{$mode}{bb} }, $t1 - $t0;
		push @{ $res{$mode}{rs} }, $t2 - $t1;
		system('rm', '-rf', $r->pgdata, $repo);
	}
}
for my $m (sort keys %res) {
	my @b = sort { $a <=> $b } @{ $res{$m}{bb} };
	my @r = sort { $a <=> $b } @{ $res{$m}{rs} };
	diag(sprintf("%s: basebackup median %.2f s (%s), restore median %.2f s (%s)", $m, $b[2], join(' ', map { sprintf '%.2f', $_ } @b), $r[2], join(' ', map { sprintf '%.2f', $_ } @r)));
}
$node->stop;
done_testing();
