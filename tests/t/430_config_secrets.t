# 430_config_secrets.t — the config file as an attacker or a careless operator writes it
# (issue 11, "Secrets stay secret"): a secret in a file other users can read, parse errors on
# lines that hold a secret, duplicate keys, NUL bytes, a config path that is not a regular file.
# Each is refused at once with exit 2 (configuration error), a message naming the file (and the
# line), never the secret, and nothing written: no repository object, no spool in pg_wal.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Find qw(find);
use POSIX qw(mkfifo);
use Time::HiRes qw(time);

my $bin    = walship_bin();
my $base   = tmp_base();
my $repo   = make_pg_dir("$base/repo");
my $pgwal  = make_pg_dir("$base/pg_wal");
my $seg    = '000000010000000000000001';
my $secret = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY';
make_pg_dir("$pgwal/archive_status");
spurt_file("$pgwal/$seg", "\0" x 65536);
chown_pg("$pgwal/$seg");

sub tree
{
	my @f;
	find(sub { push @f, $File::Find::name }, $repo, $pgwal);
	return join("\n", sort @f);
}

# conf($name, $text, $mode): a config file owned by postgres (when root) with that mode.
sub conf
{
	my ($name, $text, $mode) = @_;
	my $path = "$base/$name";
	spurt_file($path, $text);
	chown_pg($path);
	chmod $mode, $path or die "chmod $path: $!";
	return $path;
}

# refused($what, $config, $re): push and fetch both exit 2 at once with the message, and the
# secret appears nowhere in their output; nothing is written.
sub refused
{
	my ($what, $config, $re) = @_;
	for my $cmd ([ 'push', "$pgwal/$seg" ], [ 'fetch', $seg, "$base/dest" ])
	{
		my $before = tree();
		my $t0     = time;
		my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $config, @$cmd ], timeout => 30);
		my $took = time - $t0;
		is($rc, 2, "$what: $cmd->[0] exits 2") or diag($err);
		like($err, $re, "$what: $cmd->[0]: message") or diag($err);
		like($err, qr/^walship $cmd->[0]: ERROR: /m, "$what: $cmd->[0]: one prefixed error line");
		unlike("$out$err", qr/wJal/, "$what: $cmd->[0]: the secret is not shown");
		ok($took < 10, sprintf("$what: $cmd->[0]: refused at once (%.1f s)", $took));
		is(tree(), $before, "$what: $cmd->[0]: nothing written");
		ok(!-e "$base/dest", "$what: $cmd->[0]: no destination file");
	}
}

my $good = "repo = $repo\nasync = off\nfetch-prefetch = 0\ns3-key-secret = $secret\n";

# --- a secret in a file others can read ---------------------------------------------------------
my $c644 = conf('world.conf', $good, 0644);
refused('0644 with s3-key-secret', $c644,
	qr/config file \Q$c644\E holds a secret \(s3-key-secret, line 4\) but its mode is 0644.*HINT: chmod 600 \Q$c644\E/);
my $c640 = conf('group.conf', $good, 0640);
refused('0640 owned by the user', $c640, qr/\Q$c640\E holds a secret .* mode is 0640/);
my $ctok = conf('token.conf', "repo = $repo\nrepo2 = $repo/2\nrepo2-s3-token = $secret\n", 0604);
refused('0604 with repo2-s3-token', $ctok, qr/\Q$ctok\E holds a secret \(s3-token, line 3\).*0604/);

# the same content at 0600 works (a posix repository ignores the S3 secret)
my $c600 = conf('ok.conf', $good, 0600);
# (--version loads the configuration like every command, then exits 0)
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $c600, '--version' ]);
is($rc, 0, 'the same file at 0600 is accepted') or diag($err);
is($err, '', '... without a complaint');
# a file without secrets may be readable by others
my $open = conf('open.conf', "repo = $repo\nasync = off\nfetch-prefetch = 0\n", 0644);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $open, '--version' ]);
is($rc, 0, 'a 0644 file without a secret is accepted') or diag($err);
# root:postgres 0640 is a grant by root, accepted as PostgreSQL accepts it for ssl_key_file
SKIP: {
	skip 'needs root to create a root-owned file', 2 unless is_root();
	my $rootconf = "$base/root.conf";
	spurt_file($rootconf, $good);
	chown 0, (getpwnam(pg_user()))[3], $rootconf or die "chown: $!";
	chmod 0640, $rootconf or die;
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $rootconf, '--version' ]);
	is($rc, 0, 'root-owned 0640 with a secret, group postgres: accepted') or diag($err);
	chmod 0644, $rootconf or die;
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $rootconf, '--version' ]);
	is($rc, 2, 'root-owned 0644 with a secret: refused') or diag($err);
}

# --- parse errors never echo the line -----------------------------------------------------------
refused('s3-key-secret with ":"', conf('colon.conf', "repo = $repo\ns3-key-secret: $secret\n", 0600),
	qr/colon\.conf:2: expected "key = value" for key "s3-key-secret" \(the line is not shown/);
refused('secret with "=" inside', conf('eq.conf', "repo = $repo\ns3-key-secret $secret==\n", 0600),
	qr/eq\.conf:2: malformed key/);
refused('a pasted secret', conf('pasted.conf', "repo = $repo\n\n$secret\n", 0600),
	qr/pasted\.conf:3: expected "key = value" \(the line is not shown/);

# --- duplicate keys, NUL bytes ------------------------------------------------------------------
refused('duplicate key', conf('dup.conf', "repo = $repo\ns3-key-secret = a$secret\nlog-level = info\ns3-key-secret = b$secret\n", 0600),
	qr/dup\.conf:4: "s3-key-secret" is set twice, on lines 2 and 4/);
refused('repo and repo1', conf('dup1.conf', "repo = $repo\nrepo1 = $repo/x\n", 0600),
	qr/dup1\.conf:2: "repo1" is set twice, on lines 1 and 2/);
refused('NUL byte', conf('nul.conf', "repo = $repo\nlog-level = in\0fo\n", 0600),
	qr/nul\.conf:2: the line contains a NUL byte/);

# --- not a regular file -------------------------------------------------------------------------
refused('-c /dev/zero', '/dev/zero', qr{config file /dev/zero is not a regular file \(it is a character device\)});
my $dir = make_pg_dir("$base/confdir");
refused('-c DIR', $dir, qr{config file \Q$dir\E is not a regular file \(it is a directory\)});
my $fifo = "$base/conf.fifo";
mkfifo($fifo, 0600) or die "mkfifo: $!";
chown_pg($fifo);
refused('-c FIFO', $fifo, qr{config file \Q$fifo\E is not a regular file \(it is a FIFO\)});

# WALSHIP_CONFIG is opened the same way
($rc, $out, $err) = run(cmd => [ $bin, 'fetch', $seg, "$base/dest" ],
	env => { WALSHIP_CONFIG => $fifo }, timeout => 30);
is($rc, 2, 'WALSHIP_CONFIG=FIFO: exit 2') or diag($err);
like($err, qr/is not a regular file \(it is a FIFO\)/, 'WALSHIP_CONFIG=FIFO: message');

done_testing();
