# WalshipModule.pm — the archive module (archive_library = 'walship') for tests 730-749.
#
# module_so(): the built module, copied where the postgres user can read it; it runs
# `make module` first when build/module/walship.so is missing or older than its sources.
# Without pg_config (postgresql-server-dev-15) the test is skipped, loudly.
# module_conf($walship_conf, %extra): the postgresql.conf settings for new_cluster's conf.
package WalshipModule;
use strict;
use warnings;

use Carp;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Copy qw(copy);
use Cwd qw(abs_path);
use WalshipTest ();

our @EXPORT = qw(module_so module_conf);

my $ROOT = abs_path(dirname(__FILE__) . '/../..');
my $SO;

sub _stale
{
	my $so = shift;
	return 1 unless -e $so;
	my $t = (stat $so)[9];
	for my $src (glob("$ROOT/module/*.c $ROOT/module/*.h $ROOT/walship/agent/spool.c $ROOT/walship/config.c"))
	{
		return 1 if (stat $src)[9] > $t;
	}
	return 0;
}

sub module_so
{
	return $SO if defined $SO;
	my $built = $ENV{WALSHIP_MODULE} // "$ROOT/build/module/walship.so";
	if (!defined $ENV{WALSHIP_MODULE} && _stale($built))
	{
		if (!`sh -c 'command -v pg_config' 2>/dev/null`)
		{
			Test::More::diag('SKIP: pg_config is missing: apt-get install postgresql-server-dev-15 (scripts/deps.sh)');
			Test::More::plan(skip_all => 'the archive module cannot be built here: no pg_config');
		}
		my $out = `make -C '$ROOT' --no-print-directory module 2>&1`;
		croak "make module failed:\n$out" if $? != 0;
	}
	croak "$built is missing" unless -f $built;
	my $dir = WalshipTest::make_pg_dir(WalshipTest::tmp_base() . '/lib', 0755);
	copy($built, "$dir/walship.so") or croak "copy $built: $!";
	chmod 0755, "$dir/walship.so";
	$SO = "$dir/walship.so";
	return $SO;
}

sub module_conf
{
	my ($conf, %extra) = @_;
	my $so = module_so();
	return {
		archive_mode      => 'on',
		archive_library   => "'$so'",
		'walship.config'  => "'$conf'",
		'walship.bin'     => "'" . WalshipTest::walship_bin() . "'",
		log_min_messages  => 'debug1',
		%extra,
	};
}

1;
