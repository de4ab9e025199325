# 700_trials_detect.t — the trial tools can fail: run against a walship that lies, each reports
# the lie and exits non-zero.
#  - crash.pl with a push that exits 0 without storing anything while pgbench runs (the trial
#    phase): early acknowledgements and lost segments counted, exit non-zero;
#  - pitr.pl with a restore that drops its --target-* options (recovery then replays to the
#    end): misses reported with the seed, exit non-zero.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Path ();

my $real = $ENV{WALSHIP_BIN} // '';
plan skip_all => 'WALSHIP_BIN is not set (make check sets it)' unless -x $real;
my $base = tmp_base();
my $trials = "$FindBin::RealBin/../trials";

sub liar
{
	my ($name, $body) = @_;
	my $f = "$base/$name";
	spurt_file($f, "#!/bin/sh\n# a walship that lies (700_trials_detect.t)\n$body\nexec '$real' \"\$@\"\n");
	chmod 0755, $f;
	return $f;
}

# a failed run keeps its directory for a post-mortem: these failures are the expected ones
sub cleanup
{
	my ($text) = @_;
	for my $d ($text =~ m{kept the test directory (/tmp/walship-(?:crash|pitr)_pl-\w+)}g)
	{
		File::Path::remove_tree($d);
	}
}

# ---- crash.pl: push acknowledges without storing while the load runs
my $push_liar = liar('walship-push-lies', <<'SH');
for a in "$@"; do
    if [ "$a" = push ] && pgrep -x pgbench >/dev/null 2>&1; then exit 0; fi
done
SH
my ($rc, $out, $err) = run(cmd => [ 'perl', "$trials/crash.pl", '--trials', 2, '--only', 'posix-sync', '--seed', 7 ],
	env => { WALSHIP_BIN => $push_liar }, as_pg => 0, timeout => 300);
my $all = "$out\n$err";
cleanup($all);
isnt($rc, 0, 'crash.pl exits non-zero when push acknowledges what it did not store');
my ($row) = $all =~ /^(\| posix-sync \|.*)$/m;
ok(defined $row, 'crash.pl printed its table') or diag($all);
my @c = split /\s*\|\s*/, $row // '';
# | set-up | trials | kills | segments archived | lost | partial | early acks | ...
cmp_ok($c[5] // 0, '>', 0, "lost segments counted ($c[5])");
cmp_ok($c[7] // 0, '>', 0, "early acknowledgements counted ($c[7])");

# ---- pitr.pl: restore ignores the target
my $restore_liar = liar('walship-restore-lies', <<'SH');
case " $* " in
*" restore "*)
    out=
    skip=0
    for a in "$@"; do
        if [ $skip = 1 ]; then skip=0; continue; fi
        case $a in --target-time|--target-lsn|--target-xid|--target-name|--target|--target-action) skip=1; continue ;; esac
        out="$out '$a'"
    done
    eval "set -- $out"
    ;;
esac
SH
($rc, $out, $err) = run(cmd => [ 'perl', "$trials/pitr.pl", '--trials', 3, '--steps', 10, '--only', 'posix', '--seed', 3 ],
	env => { WALSHIP_BIN => $restore_liar }, as_pg => 0, timeout => 400);
$all = "$out\n$err";
cleanup($all);
isnt($rc, 0, 'pitr.pl exits non-zero when restore ignores its target');
like($all, qr/MISS: seed 3 trial \d+: posix/, 'pitr.pl names the seed and the trial of a miss');
done_testing();
