# 425_pgconn_parse_error_masked.t — pgconn is secret-capable: a malformed connection string is
# reported without repeating it. libpq's parse errors quote the string (`missing "=" after
# "secret" in connection info string`, `invalid percent-encoded token: "pw%zzsecret"`), so
# walship basebackup says only that pgconn is malformed, for key=value strings and URIs, given
# as a flag or in the environment. No server is needed: libpq refuses these before connecting.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);

my @cases = (
	[ 'a password with a space, unquoted', "host=/tmp password=my secretword" ],
	[ 'an unterminated quote',              "host=/tmp password='secretword" ],
	[ 'a URI with a bad percent escape',    'postgresql://u:pw%zzsecretword@localhost/db' ],
);
for my $c (@cases)
{
	my ($what, $conninfo) = @$c;
	for my $how ('flag', 'env')
	{
		my @args = $how eq 'flag' ? ('--pgconn', $conninfo) : ();
		my ($rc, $out, $err) = run(
			cmd => [ $bin, '--repo', $repo, 'basebackup', @args ],
			env => { WALSHIP_PGCONN => $how eq 'env' ? $conninfo : undef });
		isnt($rc, 0, "$what ($how): basebackup fails");
		like($err, qr/pgconn is not a valid connection string or URI/,
			"$what ($how): says pgconn is malformed") or diag($err);
		unlike("$out$err", qr/secretword/, "$what ($how): the password is not repeated")
		  or diag($err);
	}
}

done_testing();
