# unit.t — runs every C unit test binary (build/<normal|san>/tests/test_*) as a subtest.
#
# Each binary's TAP (stdout and stderr merged, in order) is parsed with TAP::Parser and its
# results replayed inside a subtest, so prove shows every C assertion, and a failing one fails
# this script with its own diagnostics ("Failed test ... at tests/unit/test_x.c line N.").
# A crash, a sanitizer report, a non-zero exit or a broken plan fails the subtest too, with the
# binary's whole output shown.
#
# Environment: WALSHIP_UNIT_DIR (set by make check), WALSHIP_UNIT_TIMEOUT (s, default 300).
# The binaries run through WalshipTest's runner (tests/lib), as the invoking user.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use TAP::Parser;
use WalshipTest;    # its runner (run: own process group, timeout, exit code), and Test::More

my $dir = $ENV{WALSHIP_UNIT_DIR};
plan skip_all => 'WALSHIP_UNIT_DIR is not set (make check sets it)'
  unless defined $dir && $dir ne '';
plan skip_all => "WALSHIP_UNIT_DIR=$dir is not a directory (nothing built yet?)" unless -d $dir;

my $timeout = $ENV{WALSHIP_UNIT_TIMEOUT} || 300;

opendir my $dh, $dir or die "opendir $dir: $!";
my @tests = sort grep { /^test_[A-Za-z0-9_]+$/ && -f "$dir/$_" && -x _ } readdir $dh;
closedir $dh;

if (!@tests)
{
	plan skip_all => "no test_* binaries in $dir";
}

# Sanitizer reports of the unit tests go to stderr (so into the captured output), never to the
# log files WalshipTest names for the walship processes of the integration tests.
my $san = ($ENV{SANITIZE} // '0') eq '1';
# WALSHIP_SRC_DIR: the source tree, for the binaries that read committed inputs (the fuzz
# corpora of test_fuzz_regress); the runner starts them in a scratch directory.
my %env = (
	WALSHIP_SRC_DIR => "$FindBin::RealBin/..",
	ASAN_OPTIONS  => $san ? 'detect_leaks=1'                      : undef,
	UBSAN_OPTIONS => $san ? 'print_stacktrace=1:halt_on_error=1' : undef);

# Runs a binary as the invoking user, stdout+stderr in order into one text; returns
# ($exit_code, $output, $timed_out).
sub run_binary
{
	my ($path) = @_;
	my ($rc, $output) =
	  run(cmd => [$path], as_pg => 0, merge => 1, env => \%env, timeout => $timeout);
	return ($rc, $output, $rc == -1);
}

for my $name (@tests)
{
	my ($rc, $output, $timed_out) = run_binary("$dir/$name");
	subtest $name => sub {
		# (TAP::Parser cannot read an empty text: a binary killed before its first line)
		my $parser = TAP::Parser->new({ tap => $output eq '' ? "# no output\n" : $output });
		my $tb = Test::More->builder;
		my $last_failed = 0;
		my $skip_all;
		while (my $r = $parser->next)
		{
			if ($r->is_test)
			{
				my $desc = $r->description // '';
				$desc =~ s/^-\s*//;
				if ($r->has_skip)
				{
					$tb->skip($r->explanation // '');
					$last_failed = 0;
				}
				elsif ($r->has_todo)
				{
					$tb->todo_start($r->explanation // '');
					ok($r->is_actual_ok, $desc);
					$tb->todo_end;
					$last_failed = 0;
				}
				else
				{
					# is_actual_ok, not is_ok: a failure is a failure
					ok($r->is_actual_ok, $desc);
					$last_failed = !$r->is_actual_ok;
				}
			}
			elsif ($r->is_plan)
			{
				$skip_all = $r->explanation if $r->directive eq 'SKIP';
			}
			elsif ($r->is_bailout)
			{
				fail("$name bailed out: " . $r->explanation);
			}
			elsif ($r->is_comment)
			{
				# a failing assertion's own diagnostics go where prove shows them
				my $c = $r->comment;
				if ($last_failed) { diag($c) }
				else              { note($c) }
			}
			elsif ($r->is_unknown)
			{
				# not TAP: a sanitizer report, an abort message...
				diag($r->as_string) if $r->as_string ne '';
			}
		}
		if (defined $skip_all && $parser->tests_run == 0)
		{
			pass("$name skipped: $skip_all");
		}
		my $good = !$timed_out && $rc == 0 && ($parser->is_good_plan // 0);
		ok($good,
			"$name exited 0 with a good plan"
			  . ($timed_out ? " (killed after ${timeout}s)" : " (exit $rc)"))
		  or $parser->failed
		  or diag("---- full output of $dir/$name ----\n$output");
		Test::More::done_testing();
	};
}

done_testing();
