# 670_verify.t — walship verify reads every object as restore and fetch would and walks the
# WAL as recovery would. A clean posix + S3 pair exits 0 (text and --json); each kind of damage
# is named exactly (repository, key, what) with exit 1, in a copy of the posix repository:
# a flipped byte in a WAL object, in a backup data object and in a manifest; a segment missing
# in the middle of the timeline; a backup whose stop segment is missing; another cluster's
# segment planted under a valid key; --repair; a recorded gap; and on S3 a segment removed
# behind walship's back. Bad usage exits 2.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

use File::Copy qw(copy);
use JSON::PP qw(decode_json);

my $bin  = walship_bin();
my $base = tmp_base();
my $have_s3 = WalshipS3::have_s3rver();
diag('tests/s3/node_modules is missing: the S3 half of the clean run is skipped') unless $have_s3;
my $s3 = $have_s3 ? WalshipS3->s3rver(buckets => ['wal']) : undef;

my $repo = make_pg_dir("$base/repo");
my @repos = (repo1 => $repo);
push @repos, (repo2 => 's3://wal/a', $s3->config) if $s3;
my $conf = write_config("$base/walship.conf", @repos, async => 'off');
my @g = ('-c', $conf);

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 20000) g');
$node->switch_wal;
my $b1 = take_basebackup($node, \@g, label => 'one');
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
$node->switch_wal;
$node->switch_wal;
sleep 1;    # distinct backup ids
my $b2 = take_basebackup($node, \@g, label => 'two');
$node->safe_psql('INSERT INTO t SELECT g FROM generate_series(1, 20000) g');
$node->switch_wal for 1 .. 3;
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "WAL archived up to $last");
$node->stop;

my $backups = list_backups(\@g);
my %stop = map { $_->{id} => $_->{stop_wal} } @$backups;

sub verify
{
	my ($c, @args) = @_;
	return run(cmd => [ $bin, '-c', $c, 'verify', @args ]);
}

sub segkey { my $s = shift; return 'wal/' . substr($s, 0, 16) . "/$s" }

sub flip
{
	my ($file) = @_;
	my $size = -s $file or die "no $file";
	open my $fh, '+<:raw', $file or die "open $file: $!";
	my $at = 64 + int(($size - 64) / 2);
	seek $fh, $at, 0;
	read $fh, my $c, 1;
	seek $fh, $at, 0;
	print $fh chr(ord($c) ^ 0x5a);
	close $fh;
}

# ---- clean: every repository, exit 0
{
	my ($rc, $out, $err) = verify($conf);
	is($rc, 0, 'a clean repository: verify exits 0') or diag("$out\n$err");
	like($out, qr/^OK: \d+ object\(s\)/m, '... and says OK');
	like($out, qr/backup \Q$b1\E: objects ok, WAL \S+ \.\. \S+ present \(consistent\); replayable to the end/,
		'... backup one is consistent and replayable');
	($rc, $out, $err) = verify($conf, '--json');
	is($rc, 0, 'verify --json exits 0') or diag($err);
	my $j = eval { decode_json($out) } // {};
	ok($j->{ok}, '... "ok": true');
	is(scalar @{ $j->{repositories} // [] }, $s3 ? 2 : 1, '... both repositories (posix and S3)');
	for my $r (@{ $j->{repositories} // [] })
	{
		is_deeply([ map { $_->{id} } @{ $r->{backups} } ], [ $b1, $b2 ], "... $r->{repository}: both backups");
		ok((!grep { !$_->{consistent} || !$_->{replayable_to_end} || !$_->{objects_ok} } @{ $r->{backups} }),
			"... $r->{repository}: all consistent, replayable, objects ok");
		is_deeply($r->{missing}, [], "... $r->{repository}: nothing missing");
	}
	is_deeply($j->{problems}, [], '... no problem');
}

# each damage in its own copy of the posix repository
my $copies = 0;
sub damaged
{
	my ($how) = @_;
	my $dir = "$base/copy" . ++$copies;
	system('cp', '-a', $repo, $dir) == 0 or die "cp: $?";
	$how->($dir);
	return write_config("$base/copy$copies.conf", repo => $dir, async => 'off');
}

sub expect_problem
{
	my ($what, $c, $key, $re) = @_;
	my ($rc, $out, $err) = verify($c, '--json');
	is($rc, 1, "$what: verify exits 1") or diag("$out\n$err");
	my $j = eval { decode_json($out) } // {};
	my @hits = grep { $_->{key} eq $key && $_->{what} =~ $re } @{ $j->{problems} // [] };
	ok(scalar @hits, "$what: the problem names $key") or diag(explain($j->{problems}));
	ok(!$j->{ok}, "$what: \"ok\": false");
	($rc, $out, $err) = verify($c);
	is($rc, 1, "$what: verify (text) exits 1");
	like($out, qr/^PROBLEM \S+ \Q$key\E: /m, "$what: the text names the key too");
	return $j;
}

# a WAL segment between the backups
my @segs = sort grep { /^[0-9A-F]{24}$/ } map { s{.*/}{}r } glob("$repo/wal/*/*");
my ($mid) = grep { $_ gt $stop{$b1} && $_ lt $stop{$b2} } @segs;
ok($mid, "a segment between the backups: $mid");

{
	my $c = damaged(sub { flip("$_[0]/" . segkey($mid)) });
	my $j = expect_problem('a flipped byte in a WAL object', $c, segkey($mid),
		qr/SHA-256|checksum|corrupt|lz4|frame|decompress/i);
	my ($bk) = grep { $_->{id} eq $b1 } @{ $j->{repositories}[0]{backups} };
	ok(!$bk->{replayable_to_end}, '... backup one cannot be replayed past it');
	is($bk->{replay_stops_at}, $mid, '... and stops at that segment');
}
{
	my $obj = "backup/$b1/data/000001";
	my $c = damaged(sub { flip("$_[0]/$obj") });
	expect_problem('a flipped byte in a backup object', $c, $obj,
		qr/backup \Q$b1\E: .*(SHA-256|checksum|corrupt|lz4|frame)/i);
}
{
	my $key = "backup/$b2/walship.manifest";
	my $c = damaged(sub { flip("$_[0]/$key") });
	expect_problem('a flipped byte in a manifest', $c, $key, qr/backup \Q$b2\E cannot be read/);
}
{
	my $c = damaged(sub { unlink "$_[0]/" . segkey($mid) or die "unlink: $!" });
	expect_problem('a missing mid-timeline segment', $c, segkey($mid),
		qr/missing segment\(s\) \Q$mid\E \.\. \Q$mid\E \(1\) on timeline 1/);
}
{
	my $s = $stop{$b2};
	my $c = damaged(sub { unlink "$_[0]/" . segkey($s) or die "unlink: $!" });
	my $j = expect_problem('a backup whose stop segment is missing', $c, segkey($s),
		qr/backup \Q$b2\E cannot reach consistency: segment \Q$s\E .* is missing/);
	my ($bk) = grep { $_->{id} eq $b2 } @{ $j->{repositories}[0]{backups} };
	ok(!$bk->{consistent}, '... "consistent": false for that backup');
}
{
	# another cluster, its own repository; its segment under the same name in ours
	my $orepo = make_pg_dir("$base/other-repo");
	my $oconf = write_config("$base/other.conf", repo => $orepo, async => 'off');
	my $other = new_cluster('other', archive_command => "$bin -c $oconf push %p");
	$other->start;
	my $seg = $other->switch_wal;
	$seg = $other->switch_wal while $seg lt $segs[0];
	ok($other->wait_for_archive($seg), "the other cluster archived $seg");
	$other->stop;
	ok(-f "$repo/" . segkey($seg), "our repository holds $seg too");
	my $c = damaged(sub { copy("$orepo/" . segkey($seg), "$_[0]/" . segkey($seg)) or die "copy: $!" });
	expect_problem("another cluster's object under a valid key", $c, segkey($seg),
		qr/belongs to database system \d+, not to the repository's \d+/);
}

{
	# a segment push-queue-max dropped: its gap record, no object. verify lists the listing of
	# gap/ only, so the record's presence is what counts here (its format: test 270)
	my $c = damaged(sub {
		unlink "$_[0]/" . segkey($mid) or die "unlink: $!";
		my $gdir = "$_[0]/gap/" . substr($mid, 0, 16);
		system('mkdir', '-p', $gdir) == 0 or die;
		spurt_file("$gdir/$mid", 'gap');
	});
	my ($rc, $out, $err) = verify($c, '--json');
	is($rc, 0, 'a recorded gap alone: verify exits 0 (dropped on purpose, not damage)') or diag("$out\n$err");
	my $j = eval { decode_json($out) } // {};
	is_deeply($j->{repositories}[0]{recorded_gaps}, [ { timeline => 1, first => $mid, last => $mid, count => 1 } ],
		'... listed as a recorded gap');
	is_deeply($j->{repositories}[0]{missing}, [], '... not as missing');
	my ($bk) = grep { $_->{id} eq $b1 } @{ $j->{repositories}[0]{backups} };
	ok($bk->{consistent} && !$bk->{replayable_to_end} && $bk->{stop_is_recorded_gap},
		'... backup one is consistent, and its replay stops at the recorded gap');
	($rc, $out, $err) = verify($c);
	like($out, qr/^  recorded gap \(push-queue-max\) \Q$mid\E \.\. \Q$mid\E \(1\)/m, '... the text says so');
}

{
	# --repair: the segment missing from one repository is copied from the other
	my $dir;
	damaged(sub { $dir = $_[0]; unlink "$_[0]/" . segkey($mid) or die "unlink: $!" });
	my $c0 = damaged(sub { unlink "$_[0]/" . segkey($mid) or die "unlink: $!" });
	my $c = write_config("$base/repair.conf", repo1 => $dir, repo2 => $repo);
	my ($rc, $out, $err) = verify($c, '--repair', '--json');
	is($rc, 1, 'verify --repair: the problem found still exits 1') or diag($err);
	my $j = eval { decode_json($out) } // {};
	is_deeply($j->{repaired}, [ { repository => $dir, key => segkey($mid), from => $repo } ],
		'... and reports the segment copied from the other repository') or diag($out);
	ok(-f "$dir/" . segkey($mid), '... which is there now');
	($rc, $out, $err) = verify($c);
	is($rc, 0, '... and the next verify exits 0') or diag($out);
	($rc, $out, $err) = verify($c0, '--repair');
	is($rc, 1, 'verify --repair with nowhere to copy from exits 1');
	unlike($out, qr/REPAIRED/, '... and repairs nothing');
}

# ---- one backup, WAL only, bad usage
{
	my ($rc, $out, $err) = verify($conf, '--backup', $b2, '--json');
	is($rc, 0, 'verify --backup ID exits 0') or diag($err);
	my $j = eval { decode_json($out) } // {};
	is_deeply([ map { $_->{id} } @{ $j->{repositories}[0]{backups} // [] } ], [$b2], '... reads that backup only');
	($rc, $out, $err) = verify($conf, '--wal-only', '--json');
	is($rc, 0, 'verify --wal-only exits 0');
	$j = eval { decode_json($out) } // {};
	is_deeply($j->{repositories}[0]{backups}, [], '... reads no backup');
	($rc, $out, $err) = verify($conf, '--backup', 'nosuch');
	is($rc, 1, 'verify --backup of an unknown id exits 1');
	like($out, qr/no complete backup "nosuch"/, '... and says so');
	($rc, $out, $err) = verify($conf, 'extra');
	is($rc, 2, 'verify with an argument exits 2');
	like($err, qr/usage: walship verify/, '... with the usage');
	($rc, $out, $err) = verify($conf, '--verify-parallel', '0');
	is($rc, 2, 'verify-parallel 0 exits 2');
	like($err, qr/verify-parallel/, '... naming the option');
	my $empty = make_pg_dir("$base/empty");
	($rc, $out, $err) = verify(write_config("$base/e.conf", repo => $empty));
	is($rc, 1, 'an empty repository: verify exits 1 (never "all good")');
	like($out, qr/PROBLEM \Q$empty\E walship\.repo: /, '... naming walship.repo');
}

# ---- last (it damages the S3 repository of $conf): a segment removed behind walship's back
# (in s3rver's directory) is named there
SKIP:
{
	skip('no S3 server', 3) unless $s3;
	my @segs3 = sort grep { /^[0-9A-F]{24}$/ } map { s{.*/}{}r } glob("$repo/wal/*/*");
	my ($victim) = grep { $_ gt $stop{$b1} && $_ lt $stop{$b2} } @segs3;
	require File::Find;
	my @files;
	File::Find::find(sub { push @files, $File::Find::name if index($File::Find::name, "/$victim") >= 0 }, "$base/s3rver0");
	if (!@files)
	{
		diag("SKIPPING the S3 damage case: no file of $victim found under $base/s3rver0");
		skip('s3rver keeps its objects elsewhere', 3);
	}
	unlink @files;
	my $c = write_config("$base/s3only.conf", repo => 's3://wal/a', $s3->config);
	my ($rc, $out, $err) = verify($c, '--json');
	is($rc, 1, 'S3: a segment removed: verify exits 1') or diag($err);
	my $j = eval { decode_json($out) } // {};
	my $key = segkey($victim);
	ok((grep { $_->{repository} eq 's3://wal/a' && $_->{key} eq $key && $_->{what} =~ /missing segment/ } @{ $j->{problems} // [] }),
		"S3: the problem names s3://wal/a and $key") or diag($out);
	ok((grep { $_->{id} eq $b1 && !$_->{replayable_to_end} } @{ $j->{repositories}[0]{backups} // [] }),
		'S3: backup one is no longer replayable to the end');
}

done_testing();
