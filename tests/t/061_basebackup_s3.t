# 061_basebackup_s3.t — walship basebackup into S3 repositories (s3rver, and moto_server where
# installed; moto enforces If-None-Match): the backup completes with every file checked
# against the server's backup_manifest, list --json shows it, and a second backup too.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use JSON::PP qw(decode_json);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();

my @servers = (WalshipS3->s3rver(buckets => ['backups']));
my $moto = WalshipS3->moto(buckets => ['backups']);
push @servers, $moto if $moto;

for my $srv (@servers)
{
	my $k    = $srv->{kind};
	my $conf = write_config("$base/$k.conf", repo => "s3://backups/$k", $srv->config);
	my $node = new_cluster("primary_$k", archive_command => "$bin -c $conf push %p");
	$node->start;
	$node->safe_psql('CREATE TABLE t AS SELECT g, md5(g::text) AS pad FROM generate_series(1, 50000) g');
	my $pgconn = "host=" . $node->host . " port=" . $node->port . " dbname=postgres";
	my @bb = ($bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn, '--checkpoint', 'fast',
		'--basebackup-part-size', '1MB');
	for my $n (1 .. 2)
	{
		my ($rc, $out, $err) = run(cmd => [ @bb, '--label', "s3 backup $n" ]);
		is($rc, 0, "$k: backup $n exits 0") or diag($err);
		like($err, qr/all \d+ files match the server's backup_manifest/,
			"$k: backup $n: every file checked against the server's manifest");
	}
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
	is($rc, 0, "$k: list --json exits 0") or diag($err);
	my $j = eval { decode_json($out) } // {};
	is_deeply([ map { $_->{label} } @{ $j->{backups} // [] } ], [ 's3 backup 1', 's3 backup 2' ],
		"$k: list shows both backups, oldest first") or diag($out);
	my $b = $j->{backups}[1] // {};
	like($b->{stop_lsn} // '', qr{^[0-9A-F]+/[0-9A-F]+$}, "$k: with a stop LSN");
	my ($tl) = @{ $j->{wal}{timelines} // [] };
	ok($tl && $tl->{last} ge ($b->{stop_wal} // 'Z'), "$k: the WAL reaches the stop segment")
	  or diag($out);
	$node->stop;
}

done_testing();
