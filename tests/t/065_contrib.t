# 065_contrib.t — the systemd units and cron example in contrib/ are well-formed: the timer
# is Persistent with a RandomizedDelaySec, the service runs walship basebackup as postgres
# with /etc/walship/walship.conf; `systemd-analyze verify` accepts both where it exists.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

my $contrib = "$FindBin::RealBin/../../contrib";
my $service = slurp_file("$contrib/walship-basebackup.service");
my $timer   = slurp_file("$contrib/walship-basebackup.timer");
my $cron    = slurp_file("$contrib/walship-basebackup.cron");

like($timer, qr/^Persistent=true$/m, 'timer: Persistent=true');
like($timer, qr/^RandomizedDelaySec=\S+$/m, 'timer: RandomizedDelaySec');
like($timer, qr/^OnCalendar=\S/m, 'timer: OnCalendar');
like($timer, qr/^Unit=walship-basebackup\.service$/m, 'timer: starts the service');
like($timer, qr/^WantedBy=timers\.target$/m, 'timer: enabled under timers.target');
like($service, qr/^User=postgres$/m, 'service: runs as postgres');
like($service, qr/^Type=oneshot$/m, 'service: oneshot');
like($service, qr{^ExecStart=\S*walship -c /etc/walship/walship\.conf basebackup}m,
	'service: walship basebackup with /etc/walship/walship.conf');
like($cron, qr{^\S+ \S+ \* \* \* postgres .*walship basebackup}m, 'cron: nightly as postgres');
like($cron, qr{^WALSHIP_CONFIG=/etc/walship/walship\.conf$}m, 'cron: reads walship.conf');

SKIP:
{
	my $sa = (grep { -x $_ } map { "$_/systemd-analyze" } split /:/, $ENV{PATH} // '')[0];
	if (!$sa)
	{
		diag('SKIPPING systemd-analyze verify: systemd-analyze is not installed here');
		skip('systemd-analyze is not installed', 1);
	}
	# verify checks that ExecStart's program exists: point it at the binary under test;
	# --man=no: the man page is there only after make install
	my $dir = tmp_base() . '/units';
	mkdir $dir or die "mkdir $dir: $!";
	my $bin = walship_bin();
	(my $s = $service) =~ s{^ExecStart=\S+}{ExecStart=$bin}m;
	spurt_file("$dir/walship-basebackup.service", $s);
	spurt_file("$dir/walship-basebackup.timer",   $timer);
	my ($rc, $out, $err) = run(
		cmd   => [ $sa, 'verify', '--man=no', "$dir/walship-basebackup.service", "$dir/walship-basebackup.timer" ],
		as_pg => 0);
	# verify also reports unrelated problems of the host's own units; ours must be clean
	my @ours = grep { /walship-basebackup/ } split /\n/, "$out$err";
	is($rc, 0, 'systemd-analyze verify accepts the units') or diag("$out$err");
	is_deeply(\@ours, [], '... without a complaint about them') or diag("$out$err");
}

done_testing();
