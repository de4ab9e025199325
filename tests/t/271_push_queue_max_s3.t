# 271_push_queue_max_s3.t — push-queue-max with S3 repositories and with two repositories.
#
# Real segments from a scratch cluster are put in a pg_wal of our own with .ready files, and
# pushed oldest first the way PostgreSQL would (a success turns .ready into .done):
#   - into S3 (s3rver, and moto_server where installed): the oldest beyond the limit are dropped
#     with gap records in the bucket, list --json shows them, fetch of one exits 1, the rest
#     come back byte-identical;
#   - into a posix and an S3 repository at once: the gap is recorded in both; with the S3 one
#     unreachable, push exits 1 naming it, says it did not drop the file, and nothing is
#     reported dropped.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Copy qw(copy);
use File::Compare qw(compare);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();

# ---- six real segments
my $node = new_cluster('source', wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t (id int, pad text)');
my @segs;
for (1 .. 6)
{
	$node->safe_psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g");
	push @segs, $node->switch_wal;
}
$node->stop;

# a pg_wal of our own holding them, all offered (.ready)
sub fresh_pg_wal
{
	my ($name) = @_;
	my $dir = make_pg_dir("$base/$name/pg_wal", 0700);
	make_pg_dir("$dir/archive_status", 0700);
	for my $s (@segs)
	{
		copy($node->pgdata . "/pg_wal/$s", "$dir/$s") or die "copy $s: $!";
		spurt_file("$dir/archive_status/$s.ready", '');
		chown_pg("$dir/$s", "$dir/archive_status/$s.ready");
	}
	return $dir;
}

# push each segment oldest first, like the archiver; returns ([exit codes], stderr of all)
sub push_all
{
	my ($conf, $dir) = @_;
	my (@codes, $log);
	for my $s (@segs)
	{
		my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'push', "$dir/$s" ]);
		push @codes, $rc;
		$log .= $err;
		rename "$dir/archive_status/$s.ready", "$dir/archive_status/$s.done" if $rc == 0;
	}
	return (\@codes, $log);
}

my @dropped = @segs[ 0 .. 2 ];    # 6 MiB offered, 3 MiB allowed
my @kept    = @segs[ 3 .. 5 ];

my $s3rver = WalshipS3->s3rver(buckets => ['wal']);
my @servers = ($s3rver);
my $moto = WalshipS3->moto(buckets => ['wal']);
push @servers, $moto if $moto;

for my $srv (@servers)
{
	my $k    = $srv->{kind};
	my $conf = write_config("$base/$k.conf", repo => "s3://wal/$k", $srv->config,
		'push-queue-max' => '3MB', 'io-timeout' => '10s', 'fetch-timeout' => '2s');
	my $dir = fresh_pg_wal("pgwal_$k");
	my ($codes, $log) = push_all($conf, $dir);
	is_deeply($codes, [ (0) x 6 ], "$k: every push exits 0") or diag($log);
	my @warned = $log =~ /WARNING: dropped ([0-9A-F]{24}) without archiving it/g;
	is_deeply(\@warned, \@dropped, "$k: the 3 oldest are dropped, each named");
	like($log, qr/gap is recorded in s3:\/\/wal\/\Q$k\E/, "$k: ... the WARNING names the bucket");

	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
	is($rc, 0, "$k: list --json") or diag($err);
	require JSON::PP;
	my $j = JSON::PP::decode_json($out);
	my ($tl) = @{ $j->{wal}{timelines} };
	is_deeply([ map { "$_->{first}..$_->{last}:$_->{count}:$_->{reason}" } @{ $tl->{dropped} } ],
		["$dropped[0]..$dropped[-1]:3:push-queue-max"], "$k: list shows the dropped run from the bucket");
	is($tl->{first}, $kept[0], "$k: the stored WAL starts after it");

	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $dropped[1], "$base/x_$k" ]);
	is($rc, 1, "$k: fetch of a dropped segment exits 1 (absent)") or diag($err);
	my $same = 0;
	for my $s (@kept)
	{
		($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $s, "$base/f_${k}_$s" ]);
		$same++ if $rc == 0 && compare("$base/f_${k}_$s", "$dir/$s") == 0;
	}
	is($same, 3, "$k: the kept segments fetch back byte-identical");

	# dropped again (the same files offered once more): the existing records count as written
	my $again = fresh_pg_wal("pgwal_${k}_again");
	($codes, $log) = push_all($conf, $again);
	is_deeply($codes, [ (0) x 6 ], "$k: offered again, every push exits 0") or diag($log);
	@warned = $log =~ /WARNING: dropped ([0-9A-F]{24})/g;
	is_deeply(\@warned, \@dropped, "$k: ... the same 3 dropped again, the records already there");
}

# ---- two repositories: posix + S3
my $posix = make_pg_dir("$base/posix", 0700);
my %s3cfg = $s3rver->config;
my $dead  = WalshipS3::_free_port();
sub two_conf
{
	my ($path, $endpoint) = @_;
	return write_config($path, repo1 => $posix, repo2 => 's3://wal/two', %s3cfg,
		's3-endpoint' => $endpoint, 'push-queue-max' => '3MB', 'io-timeout' => '2s');
}

my $down = two_conf("$base/two-down.conf", "http://127.0.0.1:$dead");
my $dir  = fresh_pg_wal('pgwal_two');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $down, 'push', "$dir/$segs[0]" ]);
is($rc, 1, 'two repositories, S3 unreachable: push of a segment beyond the limit exits 1');
like($err, qr/ERROR: not dropping \Q$segs[0]\E \(beyond push-queue-max\):.*s3:\/\/wal\/two/,
	'... saying it did not drop it, naming the repository that failed');
unlike($err, qr/WARNING: dropped/, '... and nothing is reported dropped');
ok(!-e "$posix/wal/" . substr($segs[0], 0, 16) . "/$segs[0]", '... nor stored');

my $up = two_conf("$base/two-up.conf", $s3cfg{'s3-endpoint'});
my ($codes, $log) = push_all($up, $dir);
is_deeply($codes, [ (0) x 6 ], 'two repositories, both up: every push exits 0') or diag($log);
like($log, qr/WARNING: dropped \Q$segs[0]\E .*gap is recorded in \Q$posix\E, s3:\/\/wal\/two\./,
	'... the WARNING names both repositories');
for my $cfg ([ 'posix', write_config("$base/p.conf", repo => $posix) ],
	[ 's3', write_config("$base/s.conf", repo => 's3://wal/two', %s3cfg) ])
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $cfg->[1], 'list', '--json' ]);
	my $j = JSON::PP::decode_json($out);
	my ($tl) = @{ $j->{wal}{timelines} };
	is(join(',', map { "$_->{first}..$_->{last}" } @{ $tl->{dropped} }), "$dropped[0]..$dropped[-1]",
		"the gap is recorded in the $cfg->[0] repository");
}

done_testing();
