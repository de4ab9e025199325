# 611_expire_bad_input.t — walship expire, pin and unpin refuse bad input with a clear message
# and exit code, and remove nothing: no policy (exit 2, names the keys), a value out of range
# or not a number (exit 2, names the key and where it came from), an unknown tier (exit 2), a
# bad time zone (exit 2), pin of an unknown id (exit 1), a repository without walship.repo
# (exit 1), a repository of another cluster than pgconn names (exit 1), a foreign backup
# inside the repository (exit 1). Then the one good run removes what the policy says.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipBackup;

use File::Copy qw(copy move);
use File::Find qw(find);

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
my @ids;
for my $d (30, 20, 10, 0) {
	my $id = take_basebackup($node, [ '-c', $conf, '--test-clock-offset', -$d * 86400 ],
		label => "ago $d", extra => [ '--expire-auto', 'off' ]);
	push @ids, $id;
}

sub tree
{
	my @f;
	# objects only: a temporary file of a push still running becomes its object meanwhile
	find({ no_chdir => 1, wanted => sub { push @f, $_ if -f $_ && !m{/\.[^/]*$} } }, $repo);
	return join("\n", sort @f);
}
my $before = tree();

sub refused
{
	my ($what, $want_rc, $re, @cmd) = @_;
	my ($rc, $out, $err) = run(cmd => [ $bin, @cmd ]);
	is($rc, $want_rc, "$what: exit $want_rc");
	like($err, $re, "$what: the message") or diag($err);
	my %now = map { $_ => 1 } split /\n/, tree();
	is_deeply([ grep { !$now{$_} } split /\n/, $before ], [], "$what: nothing removed");
}

refused('no policy', 2, qr/no retention policy is set.*retention-full, retention-days/s,
	'-c', $conf, 'expire');
refused('retention-full = 0', 2, qr/retention-full = "0" \(from --retention-full\) is out of range: 1 to 100000/,
	'-c', $conf, 'expire', '--retention-full', '0');
refused('retention-days too large', 2, qr/retention-days = "99999" .* out of range: 1 to 36500/,
	'-c', $conf, 'expire', '--retention-days', '99999');
refused('retention-weekly not a number', 2, qr/retention-weekly = "two"/,
	'-c', $conf, 'expire', '--retention-weekly', 'two');
refused('an unknown tier', 2, qr/retention-hourly/, '-c', $conf, 'expire', '--retention-hourly', '3');
my $fileconf = write_config("$base/file.conf", repo => $repo, async => 'off', 'retention-full' => '-1');
refused('a bad value in the file', 2, qr/retention-full = "-1" \(from \Q$fileconf\E:\d+\)/,
	'-c', $fileconf, 'expire');
refused('an unknown time zone', 2, qr/retention-timezone = "Mars\/Olympus" .* not a known time zone/,
	'-c', $conf, 'expire', '--retention-daily', '1', '--retention-timezone', 'Mars/Olympus');
refused('pin of an unknown id', 1, qr/no complete backup "20990101T000000Z" in any repository/,
	'-c', $conf, 'pin', '20990101T000000Z');
refused('unpin of an unknown id', 1, qr/no complete backup "nope"/, '-c', $conf, 'unpin', 'nope');
refused('pin without an id', 2, qr/usage: walship pin ID/, '-c', $conf, 'pin');

# ---- a repository without its identity ----
move("$repo/walship.repo", "$base/walship.repo.aside") or die;
$before = tree();
refused('no walship.repo', 1, qr/has no walship\.repo: expire removes nothing from a repository it cannot identify/,
	'-c', $conf, 'expire', '--retention-full', '1');
move("$base/walship.repo.aside", "$repo/walship.repo") or die;
$before = tree();

# ---- the cluster pgconn names is another one ----
my $other = new_cluster('other');
$other->start;
refused('another cluster', 1, qr/belongs to database system \d+, not to the cluster the config names \(\d+\)/,
	'-c', $conf, 'expire', '--retention-full', '1', '--pgconn',
	'host=' . $other->host . ' port=' . $other->port . ' dbname=postgres');
$other->stop;

# ---- a foreign backup in the repository: its manifest names another system ----
my $foreign = "$repo/backup/$ids[0]/walship.manifest";
copy($foreign, "$base/manifest.aside") or die;
{
	my $text = read_object($foreign);
	$text =~ s/^system-identifier = \d+/system-identifier = 12345/m or die 'no sysid line';
	WalshipRestore::forge_object($foreign, $text);
}
$before = tree();
refused('a foreign backup', 1, qr/backup \Q$ids[0]\E in .* is of database system 12345.*a foreign backup, nothing removed/,
	'-c', $conf, 'expire', '--retention-full', '1');
copy("$base/manifest.aside", $foreign) or die;
chown_pg($foreign);

# ---- the good run ----
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire', '--retention-full', '2' ]);
is($rc, 0, 'expire --retention-full 2 exits 0') or diag($err);
like($out, qr/keep\s+\Q$ids[3]\E.*\(full, newest\)/, 'the report names the rules keeping the newest');
like($out, qr/removed 2 backup\(s\)/, 'two backups removed');
ok(!-e "$repo/backup/$ids[0]" && !-e "$repo/backup/$ids[1]" && -e "$repo/backup/$ids[2]",
	'the two oldest are gone, the others stay');

done_testing();
