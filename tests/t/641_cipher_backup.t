# 641_cipher_backup.t — encrypted base backups (issue 14): a cluster archives into an encrypted
# posix and an encrypted S3 repository (s3rver) at once; walship basebackup writes backup
# objects and manifests encrypted into both; PITR restore from each (restore, then replay
# through fetch with the key from the same config file) holds exactly the rows committed
# before the target LSN, a table stored as objects of its own (above the pack threshold)
# included. A canary string written into a table is in no file of either
# repository. Restore with a wrong passphrase exits 1 with one line saying the key does not
# match (key id), never "corrupt", and creates nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipS3;

use File::Find;

my $bin     = walship_bin();
my $base    = tmp_base();
my $have_s3 = WalshipS3::have_s3rver();
diag('tests/s3/node_modules is missing: the S3 half is skipped') unless $have_s3;
my $pass = 'backup passphrase';
my $enc  = make_pg_dir("$base/enc", 0700);
my ($s3, @s3conf);
if ($have_s3)
{
	$s3     = WalshipS3->s3rver(buckets => ['wal']);
	@s3conf = $s3->config;
}
my @cipher = (cipher => 'aes-256-gcm', 'cipher-pass' => $pass);
my $conf = write_config("$base/all.conf", repo => $enc,
	($have_s3 ? (repo2 => 's3://wal/enc') : ()), @cipher, @s3conf);
my %one = (posix => write_config("$base/posix.conf", repo => $enc, @cipher));
$one{s3} = write_config("$base/s3.conf", repo => 's3://wal/enc', @cipher, @s3conf) if $have_s3;

my $canary = 'walship-canary-9e41c07d';
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql("CREATE TABLE t (n int, v text)");
$node->safe_psql("INSERT INTO t SELECT g, '$canary' || g FROM generate_series(1, 1000) g");
# a file above the pack threshold is an object of its own, whose manifest SHA-256 comes from
# the object writer: it must be the plaintext's, not the keyed hash the header stores
$node->safe_psql("CREATE TABLE big AS SELECT g, md5(g::text) AS v FROM generate_series(1, 200000) g");
my $id = take_basebackup($node, [ '-c', $conf ], label => 'enc');
$node->safe_psql("INSERT INTO t SELECT g, '$canary' FROM generate_series(1001, 1500) g");
my $lsn = $node->safe_psql('SELECT pg_current_wal_insert_lsn()');
$node->safe_psql("INSERT INTO t SELECT g, 'after' FROM generate_series(1501, 2000) g");
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), 'WAL archived past the target');

sub files_under
{
	my @f;
	find(sub { push @f, $File::Find::name if -f $_ }, $_[0]);
	return @f;
}
my @leaks = grep { slurp_file($_) =~ /\Q$canary\E/ } files_under($enc);
is("@leaks", '', 'the canary is in no file of the encrypted posix repository (WAL, backup objects, manifests)');
ok(scalar(grep { m{/backup/\Q$id\E/} } files_under($enc)) > 1, '... which holds the backup');
if ($have_s3)
{
	my @l3 = grep { slurp_file($_) =~ /\Q$canary\E/ } files_under("$base/s3rver0");
	is("@l3", '', '... nor of the encrypted S3 repository');
}

for my $r (sort keys %one)
{
	my $n = restored_node("r_$r");
	my ($rc, $out, $err) =
	  walship_restore([ '-c', $one{$r} ], '--pgdata', $n->pgdata, '--target-lsn', $lsn);
	is($rc, 0, "$r: restore of the encrypted backup exits 0") or diag($err);
	configure_restored($n);
	ok($n->start(fail_ok => 1), "$r: PostgreSQL starts on it");
	ok(wait_recovery_done($n, 'pause'), "$r: recovery replayed encrypted WAL to the target");
	is($n->safe_psql('SELECT count(*), max(n) FROM t'), '1500|1500',
		"$r: exactly the rows committed before the target");
	is($n->safe_psql('SELECT count(*) FROM big'), '200000', "$r: the large table is whole");
	$n->stop;
}

my $wrong = write_config("$base/wrong.conf", repo => $enc, cipher => 'aes-256-gcm',
	'cipher-pass' => 'not it');
my $w = restored_node('wrong');
my ($rc, $out, $err) = walship_restore([ '-c', $wrong ], '--pgdata', $w->pgdata);
is($rc, 1, 'restore with a wrong passphrase exits 1');
like($err, qr/the key does not match repository \S+ \(key id 1\)/, '... says the key does not match')
  or diag($err);
unlike($err, qr/corrupt/i, '... never corrupt');
ok(!-e $w->pgdata . '/PG_VERSION', '... nothing restored');

$node->stop;
$s3->stop if $s3;
done_testing();
