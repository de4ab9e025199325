# 644_cipher_lock.t — two `walship cipher rotate` at once never lose a key (issue 14): each
# holds the keyring lock (walship.keyring.lock, create-only-if-absent; on s3rver, which
# ignores If-None-Match, an owner token read back after a settle) from reading the keyring to
# replacing it. Three rounds of two concurrent rotates, on posix and on S3: each rotate either
# succeeds or is refused naming the lock, and the keyring then holds exactly one key id per
# successful rotate (a lost update would leave fewer); every segment archived under every key
# id still fetches byte-identical. A lock held by another is refused with its owner and
# nothing changed; one older than the stale limit is named as left by a killed command, to be
# removed by hand; a rotate removes its own lock.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use File::Compare qw(compare);

my $bin     = walship_bin();
my $base    = tmp_base();
my $have_s3 = WalshipS3::have_s3rver();
diag('SKIPPED the S3 half: tests/s3/node_modules is missing') unless $have_s3;
my $posix = make_pg_dir("$base/posix", 0700);
my ($s3, %s3c);
if ($have_s3)
{
	$s3  = WalshipS3->s3rver(buckets => ['kl'], dir => "$base/s3data");
	%s3c = $s3->config;
}
my @cipher = (cipher => 'aes-256-gcm', 'cipher-pass' => 'lock passphrase', 'fetch-timeout' => '2');
my %conf = (posix => write_config("$base/posix.conf", repo => $posix, @cipher));
$conf{s3} = write_config("$base/s3.conf", repo => 's3://kl/r', %s3c, @cipher) if $have_s3;
my $all = write_config("$base/all.conf", repo1 => $posix,
	($have_s3 ? (repo2 => 's3://kl/r', %s3c) : ()), @cipher);

my $node = new_cluster('a', archive_command => "$bin -c $all push %p", wal_keep_size => '1GB');
$node->start;
$node->safe_psql('CREATE TABLE t (v int)');
my @segs;
sub more
{
	$node->safe_psql('INSERT INTO t SELECT generate_series(1, 2000)');
	push @segs, $node->switch_wal;
	return $node->wait_for_archive($segs[-1]);
}
ok(more(), 'archiving into the encrypted repositories');

# key_ids(conf): a serial rotate's count of key ids in the keyring (after it added one)
sub key_ids
{
	my ($cf) = @_;
	my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $cf, 'cipher', 'rotate' ]);
	return $rc == 0 && $out =~ /\((\d+) key ids in the keyring\)/ ? $1 : do { diag($err); -1 };
}

for my $r (sort keys %conf)
{
	my $cf = $conf{$r};
	my $ids = key_ids($cf);
	ok($ids >= 2, "$r: a rotate alone exits 0 ($ids key ids)");
	my ($ok, $refused, $other) = (0, 0, 0);
	for my $round (1 .. 3)
	{
		my @h = map { run_bg(cmd => [ $bin, '-c', $cf, 'cipher', 'rotate' ]) } 1 .. 2;
		for my $h (@h)
		{
			my ($rc, $out, $err) = finish_bg($h, 60);
			if ($rc == 0) { $ok++ }
			elsif ($rc == 1 && $err =~ /another walship cipher change or rotate holds the keyring lock of \S+ \(host \S+, pid \d+, taken -?\d+ s ago\): refused, nothing changed/)
			{
				$refused++;
			}
			else { $other++; diag("$r round $round: exit $rc: $err") }
		}
		ok(more(), "$r round $round: archiving goes on");
	}
	is($other, 0, "$r: each concurrent rotate succeeded or was refused naming the lock ($ok succeeded, $refused refused)");
	my $after = key_ids($cf);
	is($after, $ids + $ok + 1, "$r: the keyring holds one key id per successful rotate (no key lost)");
	ok(!-e "$posix/walship.keyring.lock", "$r: no lock left behind") if $r eq 'posix';
}

# every segment, archived under every key id, fetches byte-identical from each repository
for my $r (sort keys %conf)
{
	my $dest = make_pg_dir("$base/dest_$r");
	my $bad = 0;
	for my $s (@segs)
	{
		my ($rc, undef, $err) = run(cmd => [ $bin, '-c', $conf{$r}, 'fetch', $s, "$dest/X" ]);
		$bad++, diag("$r $s: exit $rc: $err")
		  unless $rc == 0 && compare("$dest/X", $node->pgdata . "/pg_wal/$s") == 0;
		unlink "$dest/X";
	}
	is($bad, 0, "$r: every segment (" . scalar(@segs) . ') fetches byte-identical');
}

# a lock held by another: refused, nothing changed, the lock left alone
my $keyring = slurp_file("$posix/walship.keyring");
my $now = time;
spurt_file("$posix/walship.keyring.lock",
	"# walship keyring lock\nowner = 0123\nhost = elsewhere\npid = 4242\nstarted = $now\n");
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{posix}, 'cipher', 'rotate' ]);
is($rc, 1, 'a lock held by another: rotate exits 1');
like($err, qr/holds the keyring lock of \Q$posix\E \(host elsewhere, pid 4242, taken \d+ s ago\): refused, nothing changed/,
	'... naming the holder') or diag($err);
like($err, qr/run one cipher change or rotate at a time/, '... and what to do') or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{posix}, 'cipher', 'change' ],
	env => { WALSHIP_CIPHER_PASS_NEW => 'another one' });
is($rc, 1, '... cipher change too exits 1');
is(slurp_file("$posix/walship.keyring"), $keyring, '... the keyring unchanged');
ok(-e "$posix/walship.keyring.lock", '... the lock left alone');

# a stale one (older than 600 s): named as a killed command's, removed by hand
my $old = $now - 3600;
spurt_file("$posix/walship.keyring.lock",
	"# walship keyring lock\nowner = 0123\nhost = elsewhere\npid = 4242\nstarted = $old\n");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{posix}, 'cipher', 'rotate' ]);
is($rc, 1, 'a stale lock: rotate exits 1');
like($err, qr/older than 600 s: a killed cipher command left it; if none is running, remove walship\.keyring\.lock/,
	'... saying it is stale and how to clear it') or diag($err);
unlink "$posix/walship.keyring.lock";
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf{posix}, 'cipher', 'rotate' ]);
is($rc, 0, 'removed: rotate exits 0') or diag($err);
ok(!-e "$posix/walship.keyring.lock", '... and removes its own lock');

$node->stop;
$s3->stop if $s3;
done_testing();
