# 643_cipher_copy.t — walship copy with encryption on either side (issues 19 and 14): a backup
# and its WAL in a plain posix repository are copied into an encrypted S3 repository
# (s3rver, passphrase A), and from there into an encrypted posix repository under another
# passphrase (B): every object is re-encrypted under the target's keyring. A rerun of each copy
# finds every object identical (duplicate detection by the plaintext's SHA-256, never a false
# "different object": the headers of the two sides hold different bytes for the same
# plaintext); a PITR restore from the last repository alone is exact; a canary string is in
# no object of either encrypted target; a different object forged under a key of an
# encrypted target is still refused (exit 1, named, left byte for byte); and the copy back
# from encrypted to plain is identical to the original.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;
use WalshipRestore;

use File::Copy qw(copy);
use File::Find qw(find);
use JSON::PP qw(decode_json);

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $plain = make_pg_dir("$base/plain", 0700);
my $encb  = make_pg_dir("$base/encb", 0700);
my $s3    = WalshipS3->s3rver(buckets => ['cc'], dir => "$base/s3data");
my %s3c   = $s3->config;
my @a     = ('repo2-cipher' => 'aes-256-gcm', 'repo2-cipher-pass' => 'passphrase A');

my $src_conf = write_config("$base/src.conf", repo1 => $plain);
# plain posix -> encrypted S3 (A)
my $c1 = write_config("$base/c1.conf", repo1 => $plain, repo2 => 's3://cc/enc', %s3c, @a);
# encrypted S3 (A) -> encrypted posix (B)
my $c2 = write_config("$base/c2.conf", repo1 => 's3://cc/enc', %s3c,
	'repo1-cipher' => 'aes-256-gcm', 'repo1-cipher-pass' => 'passphrase A',
	repo2 => $encb, 'repo2-cipher' => 'aes-256-gcm', 'repo2-cipher-pass' => 'passphrase B');
my $bconf = write_config("$base/b.conf", repo1 => $encb, cipher => 'aes-256-gcm',
	'cipher-pass' => 'passphrase B');

my $canary = 'walship-copy-canary-5b7e';
my $node = new_cluster('primary', archive_command => "$bin -c $src_conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int PRIMARY KEY, v text)');
$node->safe_psql("INSERT INTO t SELECT g, '$canary' || g FROM generate_series(1, 20000) g");
my $id = take_basebackup($node, [ '-c', $src_conf ], label => 'cc');
$node->safe_psql("INSERT INTO t SELECT g, '$canary' FROM generate_series(20001, 20500) g");
$node->safe_psql("SELECT pg_create_restore_point('rp')");
my $want = rows_summary($node);
$node->safe_psql("INSERT INTO t SELECT g, 'after' FROM generate_series(20501, 21000) g");
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last into the plain repository");
$node->stop;

sub files_under
{
	my @f;
	find(sub { push @f, $File::Find::name if -f $_ }, $_[0]) if -d $_[0];
	return @f;
}
ok(scalar(grep { slurp_file($_) =~ /\Q$canary\E/ } files_under($plain)),
	'the canary is in the plain repository (the check can find it)');

# copy(conf, label): runs walship copy --json twice; the second run must copy nothing and find
# every object identical
sub copy_twice
{
	my ($conf, $label) = @_;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'copy', '--json' ]);
	is($rc, 0, "$label: copy exits 0") or diag($err);
	my $s = eval { decode_json($out) } // {};
	is_deeply([ map { "$_->{id}=$_->{state}" } @{ $s->{backups} // [] } ], ["$id=complete"],
		"$label: the backup is complete on the target") or diag($out);
	ok(($s->{objects}{copied} // 0) > 10, "$label: $s->{objects}{copied} objects copied");
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'copy', '--json' ]);
	my $r = eval { decode_json($out) } // {};
	is($rc, 0, "$label: the rerun exits 0 (no false conflict)") or diag($err);
	unlike($err, qr/already holds a different/, "$label: ... and reports no different object");
	ok(($r->{objects}{copied} // -1) == 0 && ($r->{objects}{conflicts} // -1) == 0
		  && ($r->{objects}{identical} // 0) == ($s->{objects}{copied} // 0) + ($s->{objects}{identical} // 0),
		"$label: ... every object found identical by its plaintext SHA-256")
	  or diag($out);
}
copy_twice($c1, 'plain posix -> encrypted S3');
copy_twice($c2, 'encrypted S3 (A) -> encrypted posix (B)');

my @l3 = grep { slurp_file($_) =~ /\Q$canary\E/ } files_under("$base/s3data");
is("@l3", '', 'the canary is in no object of the encrypted S3 repository');
my @lb = grep { slurp_file($_) =~ /\Q$canary\E/ } files_under($encb);
is("@lb", '', '... nor of the encrypted posix one');
ok(-s "$encb/walship.keyring", 'the posix target has a keyring of its own');

# the posix target is readable with passphrase B only
{
	my $wa = write_config("$base/wa.conf", repo1 => $encb, cipher => 'aes-256-gcm',
		'cipher-pass' => 'passphrase A');
	my $r = restored_node('wrongkey');
	my ($rc, undef, $err) = walship_restore([ '-c', $wa ], '--pgdata', $r->pgdata);
	is($rc, 1, 'restore from the B repository with passphrase A exits 1');
	like($err, qr/the key does not match repository/, '... the key does not match') or diag($err);
}

# PITR to rp from the last repository alone
{
	my $r = restored_node('from_b');
	my ($rc, undef, $err) = walship_restore([ '-c', $bconf ], '--pgdata', $r->pgdata,
		'--target-name', 'rp', '--target-action', 'promote');
	is($rc, 0, 'restore from the encrypted posix copy (B) exits 0') or diag($err);
	configure_restored($r);
	ok($r->start(fail_ok => 1), 'PostgreSQL starts on it');
	ok(wait_recovery_done($r), 'recovery replays the re-encrypted WAL to rp');
	is(rows_summary($r), $want, "PITR from the B copy alone: rows exact ($want)");
	$r->stop;
}

# a different object under a key of the encrypted target: refused, left alone
{
	my @segs;
	find(sub { push @segs, $File::Find::name if /^[0-9A-F]{24}$/ }, "$encb/wal");
	@segs = sort @segs;
	copy($segs[0], $segs[1]) or die "copy: $!";
	my $forged = slurp_file($segs[1]);
	(my $key = $segs[1]) =~ s{^\Q$encb\E/}{};
	my ($rc, undef, $err) = run(cmd => [ $bin, '-c', $c2, 'copy', '--wal' ]);
	is($rc, 1, 'a different object on the encrypted target: exit 1');
	like($err, qr/\Q$encb\E already holds a different \Q$key\E \(\d+ bytes whose keyed hash does not match/,
		'... named, by its keyed hash') or diag($err);
	is(slurp_file($segs[1]), $forged, '... left byte for byte');
}

# encrypted (B) -> a new plain repository: the plaintext comes back, identical to the source
{
	my $back = make_pg_dir("$base/back", 0700);
	my $c3 = write_config("$base/c3.conf", repo1 => $encb, 'repo1-cipher' => 'aes-256-gcm',
		'repo1-cipher-pass' => 'passphrase B', repo2 => $back);
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $c3, 'copy', '--wal', '--json' ]);
	# the forged segment above is corrupt in the B copy for its key: named, the rest copied
	is($rc, 1, 'encrypted -> plain: exit 1 for the one forged object') or diag($err);
	my @src = grep { m{/wal/[0-9A-F]{16}/} } files_under($plain);
	my ($same, $n) = (0, 0);
	for my $f (@src)
	{
		(my $k = $f) =~ s{^\Q$plain\E/}{};
		next unless -f "$back/$k";
		$n++;
		$same++ if slurp_file("$back/$k") eq slurp_file($f);
	}
	ok($n >= scalar(@src) - 1 && $n > 2, "encrypted -> plain: $n of " . scalar(@src) . ' segments copied');
	is($same, $n, '... each identical to the original plain object');
}

$s3->stop;
done_testing();
