# 712_copy.t — walship copy (issue 19): a backup and its WAL from a posix repository into S3
# (s3rver behind the fault proxy, which answers some requests with 503), killed -9 midway
# three times and rerun: the target then lists the backup as complete, and a point-in-time
# restore from the target alone holds exactly the rows. Then back from S3 into an empty posix
# repository, restored from there alone. A different object under the same key on the target
# is never overwritten (exit 1, named, left byte for byte); a target of another cluster is
# refused; a corrupt source object is never copied (named, exit 1, the rest copied); bad
# options exit 2 with nothing written; --dry-run, --json, progress on a terminal, peak RSS.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

use File::Compare qw(compare);
use File::Copy qw(copy);
use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $posix = make_pg_dir("$base/posix", 0700);
my $back  = make_pg_dir("$base/back", 0700);
my $s3    = WalshipS3->s3rver(buckets => ['cp'], dir => "$base/s3data");
my $proxy = WalshipS3->proxy(upstream => $s3, rate => 0.05, faults => '503', seed => 3);
my %s3c   = $proxy->config;
my $src_conf = write_config("$base/src.conf", repo1 => $posix);
my $cp_conf  = write_config("$base/copy.conf", repo1 => $posix, repo2 => 's3://cp/x', %s3c,
	'copy-parallel' => 2);
my $s3_conf   = write_config("$base/s3.conf", repo1 => 's3://cp/x', %s3c);
my $back_conf = write_config("$base/back.conf", repo1 => 's3://cp/x', repo2 => $back, %s3c);
my $bk_conf   = write_config("$base/bk.conf", repo1 => $back);

# ---- the source: a backup and WAL in posix only
my $node = new_cluster('primary', archive_command => "$bin -c $src_conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int PRIMARY KEY, pad text)');
$node->safe_psql("INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 100000) g");
my $id = take_basebackup($node, [ '-c', $src_conf ], label => 'copy');
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(100001, 100500) g");
$node->safe_psql("SELECT pg_create_restore_point('rp')");
my $want = rows_summary($node);
$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(100501, 101000) g");
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last into posix");
$node->stop;

sub s3_objects
{
	my $n = 0;
	find(sub { $n++ if /\._S3rver_object$/ }, "$base/s3data") if -d "$base/s3data";
	return $n;
}

# ---- bad input: exit 2, nothing written
for my $bad ([ [ '--from', '3' ], qr/--from 3: not a configured repository/ ],
	[ [ '--to', '1' ], qr/name the same repository/ ],
	[ [ '--backup', $id, '--all' ], qr/usage: walship copy/ ])
{
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $cp_conf, 'copy', @{ $bad->[0] } ]);
	is($rc, 2, "copy @{ $bad->[0] }: exit 2");
	like($err, $bad->[1], '... with a clear error') or diag($err);
}
is(s3_objects(), 0, '... nothing written');

# ---- dry run: says what, writes nothing
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $cp_conf, 'copy', '--dry-run', '--json' ]);
is($rc, 0, 'copy --dry-run exits 0') or diag($err);
my $dry = eval { decode_json($out) } // {};
ok($dry->{dry_run} && $dry->{objects}{would_copy} > 10, "dry run: $dry->{objects}{would_copy} objects to copy")
  or diag($out);
is(s3_objects(), 0, 'dry run: nothing written');

# ---- posix -> S3, killed -9 midway three times
my $killed = 0;
for my $round (1 .. 3)
{
	my $before = s3_objects();
	my $h = run_bg(cmd => [ $bin, '-c', $cp_conf, 'copy' ]);
	my $deadline = time + 60;
	sleep 0.02 while s3_objects() < $before + 3 && time < $deadline && pid_alive($h->{pid});
	kill 'KILL', $h->{pid};
	my ($krc, undef, $kerr) = finish_bg($h, 30);
	if ($krc == 128 + 9) { $killed++ }
	else { diag("round $round: copy ended before the kill (exit $krc): $kerr") }
}
cmp_ok($killed, '>=', 1, "copy killed -9 midway ($killed of 3 rounds)");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $cp_conf, 'copy', '--json' ]);
is($rc, 0, 'the rerun completes: exit 0') or diag($err);
my $sum = eval { decode_json($out) } // {};
is_deeply([ map { "$_->{id}=$_->{state}" } @{ $sum->{backups} // [] } ], ["$id=complete"],
	'the backup is complete on the target') or diag($out);
ok(($sum->{objects}{identical} // 0) > 0, "the rerun skipped what the killed runs copied ($sum->{objects}{identical} identical, $sum->{objects}{copied} copied)");
diag(sprintf('copy posix -> S3 (rerun): %s', $err =~ /(copied \d+ objects .*)/ ? $1 : '?'));
my $list = list_backups([ '-c', $s3_conf ]);
is_deeply([ map { $_->{id} } @$list ], [$id], 'walship list on S3 alone shows the backup');

# a third run copies nothing
($rc, $out, $err) = run(cmd => [ $bin, '-c', $cp_conf, 'copy', '--json' ]);
$sum = eval { decode_json($out) } // {};
ok($rc == 0 && $sum->{objects}{copied} == 0, 'a rerun on a full target copies nothing') or diag($out);

# restore(name, conf): PITR to rp from that config's repositories alone; the rows
sub restore_rows
{
	my ($name, $conf) = @_;
	my $r = restored_node($name);
	my ($xrc, undef, $xerr) = walship_restore([ '-c', $conf ], '--pgdata', $r->pgdata,
		'--target-name', 'rp', '--target-action', 'promote');
	is($xrc, 0, "$name: walship restore exits 0") or do { diag($xerr); return '' };
	configure_restored($r);
	$r->start(fail_ok => 1) or return '';
	wait_recovery_done($r) or return '';
	my $rows = rows_summary($r);
	$r->stop;
	return $rows;
}
is(restore_rows('from_s3', $s3_conf), $want, "PITR from S3 alone: rows exact ($want)");

# ---- S3 -> an empty posix repository, restored from there alone
# memory is bounded: the objects stream (the largest here is a ~20 MiB relation file), and
# peak RSS stays within 32 MiB with copy-parallel 2 (not under ASan, whose shadow inflates it)
my $time = '/usr/bin/time';
my $measure = -x $time && ($ENV{SANITIZE} // '0') ne '1';
diag("SKIPPED the RSS check: $time is missing or SANITIZE=1") unless $measure;
($rc, $out, $err) = run(cmd => [ ($measure ? ($time, '-f', 'maxrss=%M') : ()), $bin, '-c', $back_conf, 'copy' ]);
is($rc, 0, 'copy S3 -> posix exits 0') or diag($err);
if ($measure)
{
	my ($kb) = $err =~ /maxrss=(\d+)/;
	ok(defined $kb && $kb < 32 * 1024, "copy's peak RSS " . ($kb // '?') . ' kB is within 32 MiB') or diag($err);
}
ok(-f "$back/walship.repo", 'the empty target got the source identity');
is(restore_rows('from_back', $bk_conf), $want, "PITR from the posix copy alone: rows exact ($want)");

# ---- --backup without its WAL on the target: the objects, never the manifest
{
	my $nw = make_pg_dir("$base/nowal", 0700);
	my $nconf = write_config("$base/nowal.conf", repo1 => $posix, repo2 => $nw);
	my ($nrc, undef, $nerr) = run(cmd => [ $bin, '-c', $nconf, 'copy', '--backup', $id ]);
	is($nrc, 1, 'copy --backup into a target without its WAL: exit 1');
	like($nerr, qr/backup \Q$id\E needs WAL segment [0-9A-F]{24}, which \Q$nw\E lacks/,
		'... naming the missing segment') or diag($nerr);
	ok(-d "$nw/backup/$id/data" && !-e "$nw/backup/$id/walship.manifest",
		'... the objects are there, the manifest is not (incomplete, never listed)');
	($nrc, undef, $nerr) = run(cmd => [ $bin, '-c', $nconf, 'copy', '--wal', '--backup', $id ]);
	is($nrc, 0, 'copy --wal --backup: exit 0') or diag($nerr);
	ok(-e "$nw/backup/$id/walship.manifest", '... the backup is complete');
}

# ---- progress on a terminal: a line redrawn in place that ends at 100%; none without one
{
	my $tty = make_pg_dir("$base/tty", 0700);
	my $tconf = write_config("$base/tty.conf", repo1 => $posix, repo2 => $tty);
	my $cmd = join(' ', map { "'$_'" } $bin, '-c', $tconf, 'copy');
	my ($trc, $tout) = run(cmd => [ 'script', '-qec', $cmd, '/dev/null' ]);
	is($trc, 0, 'on a terminal (script): copy exits 0') or diag($tout);
	like($tout, qr/\r[^\n]*\(100%\)/, '... with a progress line redrawn in place, ending at 100%')
	  or diag($tout);
	unlike($err, qr/\r/, 'without a terminal: no carriage returns on stderr');
}

# ---- a different object under the same key on the target: refused, left alone
my @segs;
find(sub { push @segs, $File::Find::name if /^[0-9A-F]{24}$/ }, "$back/wal");
@segs = sort @segs;
copy($segs[0], $segs[1]) or die "copy: $!";    # the first segment's object under the second's key
my $forged = WalshipTest::slurp_file($segs[1]);
(my $key = $segs[1]) =~ s{^\Q$back\E/}{};
($rc, $out, $err) = run(cmd => [ $bin, '-c', $back_conf, 'copy', '--wal' ]);
is($rc, 1, 'a different object on the target: exit 1');
like($err, qr/ERROR: \Q$back\E already holds a different \Q$key\E \(SHA-256 [0-9a-f]{64}, the source's is [0-9a-f]{64}\)/,
	'... naming the key and both checksums') or diag($err);
is(WalshipTest::slurp_file($segs[1]), $forged, '... the target object is left byte for byte');

# ---- a target of another cluster is refused
my $other = make_pg_dir("$base/other", 0700);
my $ident = WalshipTest::slurp_file("$posix/walship.repo");
$ident =~ s/^(system-identifier\s*=\s*)(\d+)/$1 . ($2 + 1)/me or die "no system-identifier in walship.repo";
WalshipTest::spurt_file("$other/walship.repo", $ident);
my $oconf = write_config("$base/other.conf", repo1 => $posix, repo2 => $other);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $oconf, 'copy' ]);
is($rc, 1, 'a target of another cluster: exit 1');
like($err, qr/\Q$other\E belongs to another cluster/, '... refused, naming it') or diag($err);
ok(!-e "$other/wal" && !-e "$other/backup", '... nothing written');

# ---- a corrupt source object is never copied: verified on the way, named, exit 1
{
	my @src;
	find(sub { push @src, $File::Find::name if /^[0-9A-F]{24}$/ }, "$posix/wal");
	my $victim = (sort @src)[2];
	(my $vkey = $victim) =~ s{^\Q$posix\E/}{};
	my $size = -s $victim;
	open my $fh, '+<', $victim or die;
	binmode $fh;
	seek $fh, $size - 100, 0;
	read $fh, my $c, 1;
	seek $fh, $size - 100, 0;
	print $fh chr(ord($c) ^ 0xff);
	close $fh or die;
	my $bad = make_pg_dir("$base/bad", 0700);
	my $bconf = write_config("$base/bad.conf", repo1 => $posix, repo2 => $bad);
	my ($brc, undef, $berr) = run(cmd => [ $bin, '-c', $bconf, 'copy', '--wal' ]);
	is($brc, 1, 'a corrupt source object: copy exits 1');
	like($berr, qr/ERROR: \Q$posix\E: \Q$vkey\E: .*not copied/, '... naming the repository and key')
	  or diag($berr);
	ok(!-e "$bad/$vkey", '... and the target does not get it');
	my @got;
	find(sub { push @got, $_ if /^[0-9A-F]{24}$/ }, "$bad/wal");
	is(scalar @got, scalar @src - 1, '... while every other segment is copied');
}

done_testing();
