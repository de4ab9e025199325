# 340_restore_s3.t — point-in-time recovery from S3 repositories (s3rver, and moto_server where
# installed). The cluster, walship basebackup, walship restore and the restore_command all take
# the credentials from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), the config
# file names only the bucket and endpoint: the restore_command written refers to that config
# file and carries no secret. A time target between two backups restores the first one, a
# named restore point after the second the second one; each holds exactly the rows committed
# before its target. A restore with the credentials in the config file keeps them out of
# postgresql.auto.conf too, and an unknown backup id is refused.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

use Text::ParseWords qw(shellwords);
use Time::HiRes qw(sleep);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();

my @servers = (WalshipS3->s3rver(buckets => ['pitr']));
my $moto = WalshipS3->moto(buckets => ['pitr']);
push @servers, $moto if $moto;

for my $srv (@servers)
{
	my $k = $srv->{kind};
	# credentials from the environment for every process started from here on
	local $ENV{AWS_ACCESS_KEY_ID}     = $srv->{key};
	local $ENV{AWS_SECRET_ACCESS_KEY} = $srv->{secret};
	my %s3 = $srv->config;
	delete @s3{qw(s3-key s3-key-secret)};
	my $conf = write_config("$base/$k.conf", repo => "s3://pitr/$k", %s3);
	my @g = ('-c', $conf);

	my $node = new_cluster("primary_$k", archive_command => "$bin -c $conf push %p");
	$node->start;
	$node->safe_psql(
		'CREATE TABLE t (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())');
	my $ins = sub {
		my ($from, $to) = @_;
		$node->safe_psql(join('', map { "INSERT INTO t (n) VALUES ($_);\n" } $from .. $to));
	};
	$ins->(1, 10);
	my $b1 = take_basebackup($node, \@g, label => "$k b1");
	sleep 1.2;
	$ins->(11, 20);
	sleep 0.05;
	my $t_time = ts_now($node);
	sleep 0.05;
	$ins->(21, 25);
	sleep 1.2;
	my $b2 = take_basebackup($node, \@g, label => "$k b2");
	$ins->(26, 30);
	$node->safe_psql("SELECT pg_create_restore_point('rp30')");
	$ins->(31, 35);
	my $last = $node->switch_wal;
	ok($node->wait_for_archive($last), "$k: archived up to $last");
	$node->stop;

	for my $case ([ 'time', [ '--target-time', $t_time ], $b1, '20|20' ],
		[ 'name', [ '--target-name', 'rp30' ], $b2, '30|30' ])
	{
		my ($what, $args, $want_id, $rows) = @$case;
		my $r = restored_node("${k}_$what");
		my ($rc, $out, $err) =
		  walship_restore(\@g, '--pgdata', $r->pgdata, @$args, '--target-action', 'promote');
		is($rc, 0, "$k $what: walship restore @$args exits 0") or do { diag($err); next };
		my $blk = recovery_block($r->pgdata) // { settings => {}, text => '' };
		is($blk->{id}, $want_id, "$k $what: backup $want_id chosen");
		my @w = shellwords($blk->{settings}{restore_command} // '');
		is_deeply([ @w[ 0 .. 2 ], @w[ -3 .. -1 ] ], [ $bin, '-c', $conf, 'fetch', '%f', '%p' ],
			"$k $what: restore_command = walship -c $conf ... fetch \"%f\" \"%p\"")
		  or diag($blk->{settings}{restore_command});
		unlike($blk->{text}, qr/\Q$srv->{secret}\E/, "$k $what: no secret in postgresql.auto.conf");
		configure_restored($r);
		ok($r->start(fail_ok => 1), "$k $what: starts") or next;
		ok(wait_recovery_done($r), "$k $what: recovery reached the target and promoted");
		is(rows_summary($r), $rows, "$k $what: rows $rows exactly");
		like($r->log_content, qr/restored log file "[0-9A-F]{24}" from archive/,
			"$k $what: WAL fetched from S3");
		$r->stop;
	}

	# credentials in the config file: still never copied into postgresql.auto.conf
	my $sconf = write_config("$base/$k-secret.conf", repo => "s3://pitr/$k", $srv->config);
	{
		local $ENV{AWS_ACCESS_KEY_ID};
		local $ENV{AWS_SECRET_ACCESS_KEY};
		delete $ENV{AWS_ACCESS_KEY_ID};
		delete $ENV{AWS_SECRET_ACCESS_KEY};
		my $r = restored_node("${k}_secretconf");
		my ($rc, $out, $err) = walship_restore([ '-c', $sconf ], '--pgdata', $r->pgdata);
		is($rc, 0, "$k: restore with the credentials in the config file exits 0") or diag($err);
		my $blk = recovery_block($r->pgdata) // { settings => {}, text => '' };
		my @w = shellwords($blk->{settings}{restore_command} // '');
		is_deeply([ @w[ 1, 2 ] ], [ '-c', $sconf ], "$k: restore_command refers to that config file")
		  or diag($blk->{settings}{restore_command});
		unlike($blk->{text}, qr/\Q$srv->{secret}\E|\Q$srv->{key}\E/,
			"$k: neither key nor secret in postgresql.auto.conf");

		($rc, $out, $err) = walship_restore([ '-c', $sconf ], '--pgdata', "$base/$k-never",
			'--backup', '19990101T000000Z');
		is($rc, 1, "$k: unknown backup id: exit 1") or diag($err);
		like($err, qr/^walship restore: .*19990101T000000Z/m, "$k: ... naming it");
		ok(!-e "$base/$k-never", "$k: ... PGDATA not created");
	}
}

done_testing();
