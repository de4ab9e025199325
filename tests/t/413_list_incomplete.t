# 413_list_incomplete.t — every started backup is visible. Base backups killed with kill -9
# before their first data object is committed (posix and S3) and midway through the stream
# are each listed as incomplete, with their objects, bytes and (posix) temporary files.
# Temporary files of interrupted writes are never read as data — fetch does not serve a
# complete object that sits under a temporary name — and list counts them as leftovers
# without removing them.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

WalshipS3::require_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $s3dir = "$base/s3data";
my $s3    = WalshipS3->s3rver(buckets => ['wal'], dir => $s3dir);
my $repo  = make_pg_dir("$base/repo");
my $conf  = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $s3conf = write_config("$base/s3.conf", repo => 's3://wal/r', $s3->config, async => 'off');

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p && $bin -c $s3conf push %p",
	wal_keep_size => '1GB');
$node->start;
my ($rc, $out, $err) = run(cmd => [ pg_bin('pgbench'), '-i', '-s', '2', '-q', '-h', $node->host,
	'-p', $node->port, 'postgres' ]);
is($rc, 0, 'pgbench -i') or diag($err);
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'WAL archived in both repositories');

sub files_under
{
	my ($dir, $re) = @_;
	my @f;
	return () unless -d $dir;
	find({ no_chdir => 1, wanted => sub { push @f, $_ if -f $_ && $_ =~ $re } }, $dir);
	return sort @f;
}

sub list_json
{
	my ($c) = @_;
	my ($lrc, $lout, $lerr) = run(cmd => [ $bin, '-c', $c, 'list', '--json' ]);
	is($lrc, 0, 'list --json exits 0') or diag($lerr);
	return eval { decode_json($lout) } // {};
}

# Starts a throttled backup, waits until $ready->() names its id, kill -9s it.
sub killed_backup
{
	my ($c, $what, $rate, $ready) = @_;
	my $cmd = join(' ', map { "'$_'" } $bin, '-c', $c, 'basebackup', '--pgconn', $node->connstr,
		'--checkpoint', 'fast', '--label', $what, '--basebackup-max-rate', $rate);
	my ($r, $pid) = run(cmd => [ 'sh', '-c', "$cmd >$base/bb.log 2>&1 & echo \$!" ]);
	chomp $pid;
	my ($id, $deadline) = ('', time + 60);
	while (time < $deadline && !($id = $ready->())) { sleep 0.02 }
	ok($id, "$what: the backup got there ($id)") or diag(slurp_file("$base/bb.log"));
	kill 'KILL', $pid;
	sleep 0.05 while kill 0, $pid;
	$node->poll_query_until(
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'walsender'");
	return $id;
}

my $id_of = sub { my ($f) = @_; return $f =~ m{/backup/([^/]+)/} ? $1 : '' };
my %seen;

# ---- posix, killed before its first data object: only its marker (and temporary files)
my $early = killed_backup($conf, 'posix early', 32, sub {
	my ($m) = grep { !$seen{ $id_of->($_) } } files_under("$repo/backup", qr{/walship\.started$});
	return $m ? $id_of->($m) : '';
});
$seen{$early} = 1;
is_deeply([ files_under("$repo/backup/$early", qr{/data/\d+$}) ], [],
	'posix early: killed before any data object was committed');

# ---- posix, killed midway: data objects committed
my $mid = killed_backup($conf, 'posix midway', 2048, sub {
	my ($d) = grep { !$seen{ $id_of->($_) } } files_under("$repo/backup", qr{/data/\d+$});
	return $d ? $id_of->($d) : '';
});
$seen{$mid} = 1;
ok(!-e "$repo/backup/$mid/walship.manifest", 'posix midway: no manifest');

# a killed writer's temporary file in the early one, and a backup of an older walship (no
# marker) killed before its first commit: nothing but a temporary file
my $old = '20200101T000000Z';
for my $f ("$repo/backup/$early/data/.000001.tmp.4244.0", "$repo/backup/$old/data/.000001.tmp.4245.0")
{
	(my $d = $f) =~ s{/[^/]+$}{};
	make_pg_dir($d);
	spurt_file($f, 'x' x 1000);
	chown_pg($f);
}
my $j = list_json($conf);
is_deeply($j->{backups}, [], 'posix: no complete backup');
is_deeply($j->{incomplete_backups}, [ sort $old, $early, $mid ],
	'posix: both killed backups, and the one with only a temporary file, are incomplete')
  or diag(explain($j));
my %d = map { $_->{id} => $_ } @{ $j->{incomplete_backup_details} // [] };
for my $id ($early, $mid)
{
	my @objects = files_under("$repo/backup/$id", qr{/[^./][^/]*$});
	my @tmp = files_under("$repo/backup/$id", qr{/\.[^/]*\.tmp\.[^/]*$});
	my ($bytes, $tbytes) = (0, 0);
	$bytes += -s $_ for @objects;
	$tbytes += -s $_ for @tmp;
	is($d{$id}{started_marker}, JSON::PP::true, "$id: has its started marker");
	is($d{$id}{objects}, scalar @objects, "$id: its " . scalar(@objects) . ' object(s)');
	is($d{$id}{stored_size}, $bytes, "$id: their $bytes bytes");
	is($d{$id}{temporary_files}, scalar @tmp, "$id: its " . scalar(@tmp) . ' temporary file(s)');
	is($d{$id}{temporary_bytes}, $tbytes, "$id: their $tbytes bytes");
}
ok($d{$mid}{objects} > 1, 'the midway backup has data objects');
is($d{$early}{temporary_files}, 1, 'the early one has the temporary file');
is_deeply([ @{ $d{$old} }{qw(objects temporary_files temporary_bytes)} ], [ 0, 1, 1000 ],
	'the old one: no object, one temporary file of 1000 bytes');
is($d{$old}{started_marker}, JSON::PP::false, '... and no marker');
($rc, $out) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/3 incomplete backup\(s\)/, 'text: three incomplete backups');
like($out, qr/^  \Q$_\E\s+incomplete: \d+ object\(s\), /m, "text: $_ with its size") for $early, $mid;
like($out, qr/^  \Q$old\E\s+incomplete: 0 object\(s\), 0 B; 1 temporary file\(s\), 1000 B$/m,
	'text: the temporary file counts');

# ---- S3, killed before its first data object
my $s3early = killed_backup($s3conf, 's3 early', 32, sub {
	my ($m) = files_under("$s3dir/wal/r/backup", qr{/walship\.started\._S3rver_object$});
	return $m ? $id_of->($m) : '';
});
is_deeply([ files_under("$s3dir/wal/r/backup/$s3early", qr{/data/\d+\._S3rver_object$}) ], [],
	's3 early: killed before any data object was committed');
$j = list_json($s3conf);
is_deeply($j->{incomplete_backups}, [$s3early], 's3: the killed backup is incomplete');
is($j->{incomplete_backup_details}[0]{started_marker}, JSON::PP::true, 's3: by its marker');

# ---- temporary files are never data
my $dir = "$repo/wal/0000000100000000";
my @stored = map { m{/([0-9A-F]{24})$} ? $1 : () } files_under($dir, qr{/[0-9A-F]{24}$});
my $victim = $stored[1] // 'none';    # inside the archive: it becomes a gap
ok(-f "$dir/$victim", "$victim is archived");
my $before = list_json($conf)->{temporary_files};
# a complete, valid object under a temporary name (a push killed between fsync and link)
rename "$dir/$victim", "$dir/.$victim.tmp.4242.0" or die "rename: $!";
# and the start of another (killed mid-write)
spurt_file("$dir/.000000010000000000000004.tmp.4243.1", 'WSHP' . ("\0" x 60));
chown_pg("$dir/.000000010000000000000004.tmp.4243.1");
my $dest = make_pg_dir("$base/dest");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $victim, "$dest/$victim" ]);
is($rc, 1, 'fetch does not serve an object under a temporary name: absent');
ok(!-e "$dest/$victim", '... nothing written');
$j = list_json($conf);
is($j->{temporary_files}{count}, $before->{count} + 2, 'list counts the planted temporary files');
is($j->{temporary_files}{bytes}, $before->{bytes} + (-s "$dir/.$victim.tmp.4242.0") + 64,
	'... and their bytes');
my ($tl) = @{ $j->{wal}{timelines} };
ok(grep({ $_->{first} eq $victim } @{ $tl->{gaps} }), '... and the segment as missing, not stored');
($rc, $out) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/leftovers: \d+ temporary file\(s\) of interrupted writes/, 'text: leftovers reported');
ok(-e "$dir/.$victim.tmp.4242.0" && -e "$dir/.000000010000000000000004.tmp.4243.1",
	'list removed nothing');
rename "$dir/.$victim.tmp.4242.0", "$dir/$victim" or die "rename back: $!";
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $victim, "$dest/$victim" ]);
is($rc, 0, 'under its own name it is served again') or diag($err);

done_testing();
