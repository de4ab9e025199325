#!/usr/bin/env perl
# 001 — the README's first commands work the first time on a machine without the -dev packages.
#
# A copy of the source tree is built with a pkg-config that knows none of the libraries until a
# stand-in for scripts/deps.sh has "installed" them (it creates a marker the fake pkg-config
# looks for, then the real pkg-config answers). `make demo` must build after deps has run (the
# Makefile evaluated pkg-config before deps.sh, so the first `make demo` failed on libpq-fe.h);
# plain `make` with the libraries missing must name the packages to install, not fail in the
# compiler.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use File::Path qw(make_path);

my $src  = "$FindBin::RealBin/../..";
my $base = tmp_base();
my $tree = "$base/tree";
make_path($tree);

# The tracked and new (not ignored) files, as a fresh clone would have them.
my @files = split /\n/, qx(git -C "$src" ls-files -co --exclude-standard 2>/dev/null);
@files = grep { -f "$src/$_" && !m{^tests/s3/node_modules/} } @files;
if (!@files)
{
	plan skip_all => 'SKIPPED LOUDLY: not a git checkout, cannot list the source tree';
}
for my $f (@files)
{
	my $dir = "$tree/$f";
	$dir =~ s{/[^/]*$}{};
	make_path($dir);
	system('cp', '-p', "$src/$f", "$tree/$f") == 0 or die "cp $f";
}

my ($real_pc) = grep { -x $_ } map { "$_/pkg-config" } split /:/, $ENV{PATH};
$real_pc or BAIL_OUT('pkg-config is not installed (scripts/deps.sh installs it)');
my $bin    = "$base/fakebin";
my $marker = "$base/deps-installed";
make_path($bin);
spurt_file("$bin/pkg-config",
	"#!/bin/sh\n[ -e '$marker' ] || exit 1\nexec '$real_pc' \"\$@\"\n");
chmod 0755, "$bin/pkg-config";
spurt_file("$base/fake-deps.sh", "#!/bin/sh\necho 'fake deps: installing'\ntouch '$marker'\n");
chmod 0755, "$base/fake-deps.sh";

my %env = (PATH => "$bin:$ENV{PATH}", MAKEFLAGS => undef, MAKELEVEL => undef);

# Plain make, libraries missing: the packages are named, the compiler never runs.
my ($rc, $out, $err) = run(
	cmd   => ['make', '-C', $tree, 'SANITIZE=0', 'CFLAGS=-O0'],
	env   => \%env,
	as_pg => 0,
	timeout => 300);
isnt($rc, 0, 'make with the -dev packages missing fails');
like($err, qr/missing development files for: libpq liblz4 libcurl openssl libuv/,
	'it names the missing libraries');
like($err, qr/apt-get install libpq-dev liblz4-dev libcurl4-openssl-dev libssl-dev libuv1-dev/,
	'and the Debian packages that provide them');
unlike($err, qr/fatal error|No such file or directory/, 'no compiler error instead');
ok(!-e "$tree/build/walship", 'nothing built');

# make demo on the same fresh tree: deps first, then the build sees the libraries.
($rc, $out, $err) = run(
	cmd => ['make', '-C', $tree, 'SANITIZE=0', 'CFLAGS=-O0', "DEPS=$base/fake-deps.sh", 'DEMO=true', 'demo'],
	env => \%env,
	as_pg   => 0,
	timeout => 600);
is($rc, 0, 'the first make demo builds after deps has run') or diag($out . $err);
like($out, qr/fake deps: installing/, 'deps ran first');
ok(-x "$tree/build/walship", 'build/walship exists');

done_testing();
