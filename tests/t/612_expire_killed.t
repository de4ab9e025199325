# 612_expire_killed.t — walship expire killed with SIGKILL at random points (20 trials) leaves a
# repository that list reads (exit 0), where every backup listed as complete still has every
# object it had, and that a second expire finishes: the result is then the same as one
# uninterrupted run, but for the temporary files the killed process was writing, which go once
# they are older than expire-grace (0 here: their writer is dead). Each trial works on a hard-linked copy of the same repository
# (6 backups over 50 days, ~300 WAL segments; retention-full = 2).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use File::Find qw(find);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t (n int)');
my $n = 0;
for my $d (50, 40, 30, 20, 10, 0) {
	for (1 .. 50) {
		$node->safe_psql("INSERT INTO t VALUES (" . $n++ . "); SELECT pg_switch_wal()");
	}
	take_basebackup($node, [ '-c', $conf, '--test-clock-offset', -$d * 86400 ],
		label => "ago $d", extra => [ '--expire-auto', 'off' ]);
}
my $seg = $node->switch_wal;
ok($node->wait_for_archive($seg), 'archived');
$node->stop;

sub files
{
	my ($root) = @_;
	my @f;
	find({ no_chdir => 1, wanted => sub { push @f, substr($_, length $root) if -f $_ } }, $root);
	return sort @f;
}

sub copy_repo
{
	my ($to) = @_;
	my ($rc, $out, $err) = run(cmd => [ 'cp', '-al', $repo, $to ], as_pg => 0);
	die "cp: $err" if $rc;
	return write_config("$to.conf", repo => $to, async => 'off', 'retention-full' => 2);
}

my %orig = map { $_ => 1 } files($repo);
my @orig_backup = grep { m{^/backup/} } keys %orig;

# the uninterrupted run
my $refconf = copy_repo("$base/ref");
my $t0 = time;
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $refconf, 'expire' ]);
my $dur = time - $t0;
is($rc, 0, sprintf('the reference expire exits 0 (%.3f s)', $dur)) or diag($err);
my @ref = files("$base/ref");
ok(@ref < keys %orig, 'it removed objects (' . (keys(%orig) - @ref) . ')');

my ($mid, $killed) = (0, 0);
for my $trial (1 .. 20) {
	my $dir = "$base/trial$trial";
	my $c = copy_repo($dir);
	my $h = run_bg(cmd => [ $bin, '-c', $c, 'expire' ]);
	sleep(rand($dur * 1.2));
	kill 'KILL', $h->{pid};
	my ($krc) = finish_bg($h);
	$killed++ if $krc == 128 + 9;
	my @after = files($dir);
	$mid++ if @after > @ref && @after < keys %orig;

	my ($lrc, $lout, $lerr) = run(cmd => [ $bin, '-c', $c, 'list', '--json' ]);
	is($lrc, 0, "trial $trial: list exits 0 after the kill") or diag($lerr);
	my $l = eval { decode_json($lout) } // {};
	my %have = map { $_ => 1 } @after;
	my @broken;
	for my $b (@{ $l->{backups} // [] }) {
		push @broken, grep { !$have{$_} } grep { m{^/backup/\Q$b->{id}\E/} } @orig_backup;
	}
	is_deeply(\@broken, [], "trial $trial: every backup listed as complete is whole");
	my ($rrc, $rout, $rerr) = run(cmd => [ $bin, '-c', $c, 'expire' ]);
	is($rrc, 0, "trial $trial: a second expire exits 0") or diag($rerr);
	# what the killed process was writing stays until it is older than expire-grace
	is_deeply([ grep { !m{/\.[^/]*\.tmp\.\d+\.\d+$} } files($dir) ], \@ref,
		"trial $trial: the same result as one run (but the killed writer's temporary files)");
	($rrc, $rout, $rerr) = run(cmd => [ $bin, '-c', $c, 'expire', '--expire-grace', '0' ]);
	is($rrc, 0, "trial $trial: expire with expire-grace 0 exits 0") or diag($rerr);
	is_deeply([ files($dir) ], \@ref, "trial $trial: its temporary files of a dead writer go");
}
diag("$killed of 20 expires were killed, $mid of them midway");
ok($killed > 0, 'some expires were killed before they finished');

done_testing();
