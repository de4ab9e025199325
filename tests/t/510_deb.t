# 510_deb.t — packaging: `walship --version` names the commit and the libraries it found;
# scripts/mkdeb.sh (make deb) builds a .deb with the files and Depends (linked and dlopened
# libraries) the package needs, lintian-clean where lintian exists; `make install` puts the
# systemd units, the cron example (with PREFIX's binary path) and the bash completion under
# DESTDIR; the completion offers commands, options and backup ids from `walship list --json`.
# The install into a clean Debian 12 root needs the mirror: scripts/test-deb.sh (.ci/run).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use Cwd qw(abs_path);

my $src = abs_path("$FindBin::RealBin/../..");
my $bin = walship_bin();
my $base = tmp_base();

# --version: version, commit, and every library on its own line
my ($rc, $out, $err) = run(cmd => [ $bin, '--version' ]);
is($rc, 0, '--version exits 0') or diag($err);
like($out, qr/^walship \d+\.\d+\.\d+\n/, '--version: the version first');
like($out, qr/^commit:\s+(?:[0-9a-f]{7,}|v?[\w.-]+-g[0-9a-f]+)(?:-dirty)?$|^commit:\s+unknown$/m,
	'--version: the git commit');
like($out, qr/^lz4:\s+\d+\.\d+\.\d+$/m,          '--version: lz4 version');
like($out, qr/^OpenSSL:\s+OpenSSL \d+\.\d+/m,     '--version: OpenSSL version');
like($out, qr/^libuv:\s+\d+\.\d+\.\d+$/m,         '--version: libuv version');
like($out, qr{^libcurl:\s+loaded, libcurl/\d}m,   '--version: libcurl loads, with its version');
like($out, qr/^libpq:\s+loaded, \d+\.\d+$/m,      '--version: libpq loads, with its version');

# without libcurl/libpq on the library path: reported, not fatal. An empty directory with a
# library of the soname that is not a library makes dlopen fail as a missing one would.
my $fake = "$base/nolibs";
make_pg_dir($fake, 0755);
spurt_file("$fake/$_", "not a library\n") for qw(libcurl.so.4 libpq.so.5);
($rc, $out, $err) = run(cmd => [ 'env', "LD_LIBRARY_PATH=$fake", $bin, '--version' ]);
is($rc, 0, '--version without libcurl and libpq still exits 0') or diag($err);
like($out, qr/^libcurl:\s+not loaded \(.*libcurl/m, '... and says libcurl does not load');
like($out, qr/^libpq:\s+not loaded \(.*libpq/m,     '... and says libpq does not load');

# the .deb
my $debdir = "$base/deb";
make_pg_dir($debdir, 0755);
($rc, $out, $err) = run(cmd => [ "$src/scripts/mkdeb.sh", $bin, '0.1.0', $debdir ], cwd => $src, as_pg => 0);
is($rc, 0, 'mkdeb.sh builds the package') or diag("$out$err");
chomp(my $deb = $out);
ok(-f $deb && $deb =~ m{/walship_0\.1\.0_\w+\.deb$}, "the package is walship_0.1.0_ARCH.deb ($deb)");
my $list = `dpkg-deb -c '$deb'`;
for my $f (qw(./usr/bin/walship ./usr/share/man/man1/walship.1.gz ./usr/share/doc/walship/README.md
	./usr/share/doc/walship/restore.md ./usr/share/doc/walship/copyright ./usr/share/doc/walship/changelog.gz
	./usr/share/doc/walship/examples/walship.conf.sample ./usr/share/doc/walship/examples/walship-basebackup.cron
	./usr/lib/systemd/system/walship-basebackup.service ./usr/lib/systemd/system/walship-basebackup.timer
	./usr/share/bash-completion/completions/walship))
{
	like($list, qr/ root\/root .* \Q$f\E$/m, "package holds $f, owned by root");
}
my $depends = `dpkg-deb -f '$deb' Depends`;
for my $p (qw(libc6 liblz4-1 libssl3 libuv1 libcurl4 libpq5))
{
	like($depends, qr/(?:^|, )\Q$p\E\b/, "Depends: $p");
}
my $x = "$base/debx";
system('dpkg-deb', '-x', $deb, $x) == 0 or die 'dpkg-deb -x failed';
like(slurp_file("$x/usr/lib/systemd/system/walship-basebackup.service"),
	qr{^ExecStart=/usr/bin/walship }m, 'the packaged service runs /usr/bin/walship');
unlike(slurp_file("$x/usr/share/doc/walship/examples/walship-basebackup.cron"),
	qr{/usr/local}, 'the packaged cron example does not name /usr/local');
is(`gzip -dc '$x/usr/share/man/man1/walship.1.gz'`, slurp_file("$src/docs/walship.1"), 'the man page, gzipped');
SKIP:
{
	skip('lintian is not installed', 1) unless -x '/usr/bin/lintian';
	my $l = `lintian '$deb' 2>&1`;
	my @findings = grep { /^[EW]: / } split /\n/, $l;
	is_deeply(\@findings, [], 'lintian: no error or warning') or diag($l);
}

# make install under DESTDIR with a PREFIX of its own
my $dest = "$base/dest";
($rc, $out, $err) = run(
	cmd   => [ 'make', '-s', '-C', $src, 'install', "DESTDIR=$dest", 'PREFIX=/opt/ws', 'SANITIZE=' . ($ENV{SANITIZE} // 0) ],
	as_pg => 0);
is($rc, 0, 'make install DESTDIR=... PREFIX=/opt/ws') or diag("$out$err");
my $svc = "$dest/opt/ws/lib/systemd/system/walship-basebackup.service";
ok(-x "$dest/opt/ws/bin/walship", 'binary installed');
like(slurp_file($svc), qr{^ExecStart=/opt/ws/bin/walship -c /etc/walship/walship\.conf basebackup}m,
	'installed service runs PREFIX/bin/walship, not /usr/local/bin');
is((stat $svc)[2] & 07777, 0644, 'installed service is mode 0644');
ok(-f "$dest/opt/ws/lib/systemd/system/walship-basebackup.timer", 'timer installed');
my $cron = slurp_file("$dest/opt/ws/share/doc/walship/examples/walship-basebackup.cron");
like($cron, qr{^PATH=/opt/ws/bin:/usr/bin:/bin$}m, 'installed cron example puts PREFIX/bin on PATH');
unlike($cron, qr{/usr/local}, '... and does not name /usr/local');
ok(-f "$dest/opt/ws/share/bash-completion/completions/walship", 'bash completion installed');

# bash completion, against the binary under test
my $comp = "$src/contrib/walship.bash-completion";
my $repo = "$base/repo";
make_pg_dir($repo, 0700);
sub complete_words
{
	my ($line_words, $cword) = @_;
	my $words = join ' ', map { "'$_'" } @$line_words;
	my $script = "source '$comp'; COMP_WORDS=($words); COMP_CWORD=$cword; _walship; printf '%s\\n' \"\${COMPREPLY[@]}\"";
	my ($r, $o, $e) = run(cmd => [ 'bash', '-c', $script ], as_pg => 0);
	return [ sort split /\n/, $o ];
}
is_deeply(complete_words([ $bin, '' ], 1), [ sort qw(push fetch basebackup restore list expire pin unpin verify metrics check drill repo copy cipher help) ],
	'completion: the commands');
is_deeply(complete_words([ $bin, '--target-t' ], 1), [ sort qw(--target-time --target-timeline) ],
	'completion: options from walship help');
is_deeply(complete_words([ $bin, '--log-level', 'e' ], 2), ['error'], 'completion: an option\'s values');
# backup ids: two real base backups, read through walship list --json with the -c on the line
my $conf = write_config("$base/walship.conf", repo => $repo);
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
my $pgconn = "host=" . $node->host . " port=" . $node->port . " dbname=postgres";
for my $label (qw(one two))
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $pgconn,
		'--checkpoint', 'fast', '--label', $label ]);
	is($rc, 0, "basebackup $label") or diag($err);
	sleep 1; # backup ids are per second
}
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
my @ids = $out =~ /"id": *"([^"]*)"/g;
is(scalar @ids, 2, 'two backups listed') or diag($out);
is_deeply(complete_words([ $bin, '-c', $conf, 'restore', '--backup', '' ], 5), [ sort(@ids, 'latest') ],
	'completion: --backup offers the ids walship list --json prints, and latest');
$node->stop;

done_testing();
