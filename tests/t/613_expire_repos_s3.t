# 613_expire_repos_s3.t — retention per repository, posix and S3 (s3rver), and list across every
# repository. repo1 (posix) keeps 3 backups, repo2 (S3, its credentials only as repo2-* keys)
# keeps 1 (the operators' "7 days local, 30 on S3" shape). list shows both repositories, with
# pins, the rules keeping each backup, and which backup is in one repository only; --repo N and
# --repo URL pick one and keep its repoN-* settings (the credentials); a repository that cannot
# be read is reported with exit 1 while the others are listed. expire removes from S3 through
# DeleteObjects, and a basebackup runs expire afterwards (expire-auto); basebackup --pin pins.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;
use WalshipS3;

use File::Find qw(find);
use JSON::PP qw(decode_json);

plan skip_all => 'tests/s3/node_modules is missing: run scripts/deps.sh'
  unless WalshipS3::have_s3rver();

my $bin   = walship_bin();
my $base  = tmp_base();
my $s3dir = "$base/s3data";
my $s3    = WalshipS3->s3rver(buckets => ['wal'], dir => $s3dir);
my %s3c   = $s3->config;
my $posix = make_pg_dir("$base/posix");
my $conf  = write_config(
	"$base/walship.conf",
	repo1                     => $posix,
	repo2                     => 's3://wal/r',
	'repo2-s3-endpoint'       => $s3c{'s3-endpoint'},
	'repo2-s3-uri-style'      => 'path',
	'repo2-s3-key'            => $s3c{'s3-key'},
	'repo2-s3-key-secret'     => $s3c{'s3-key-secret'},
	'repo1-retention-full'    => 3,
	'repo2-retention-full'    => 1,
	'expire-auto'             => 'off',
	async                     => 'off');
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
my @ids;
for my $d (40, 30, 20, 10) {
	for (1 .. 10) { $node->safe_psql("CREATE TABLE IF NOT EXISTS t (n int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()") }
	push @ids, take_basebackup($node, [ '-c', $conf, '--test-clock-offset', -$d * 86400 ],
		label => "ago $d");
}
# one more, into repo1 only (--repo 1 picks the configured repository)
my $only1 = take_basebackup($node, [ '-c', $conf, '--repo', '1' ], label => 'posix only');
ok(-e "$posix/backup/$only1/walship.manifest", 'the --repo 1 backup is in repo1');
my ($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'pin', $ids[0], '--note', 'year end' ]);
is($rc, 0, 'pin in both repositories') or diag($err);
like($err, qr/pinned backup \Q$ids[0]\E in \Q$posix\E.*pinned backup \Q$ids[0]\E in s3:\/\/wal\/r/s,
	'... named in each');

# ---- list across the repositories ----
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list', '--json' ]);
is($rc, 0, 'list --json exits 0') or diag($err);
my $j = decode_json($out);
is(scalar @{ $j->{repositories} }, 2, 'list shows both repositories');
my ($r1, $r2) = @{ $j->{repositories} };
is($r1->{number}, 1, 'numbered');
is(scalar @{ $r1->{backups} }, 5, 'repo1: five backups');
is(scalar @{ $r2->{backups} }, 4, 'repo2: four');
my %b1 = map { $_->{id} => $_ } @{ $r1->{backups} };
my %b2 = map { $_->{id} => $_ } @{ $r2->{backups} };
is_deeply($b1{$only1}{repositories}, [1], 'the repo1-only backup is marked as such');
is_deeply($b1{ $ids[1] }{repositories}, [ 1, 2 ], 'the others are in both');
ok($b1{ $ids[0] }{pinned} && $b1{ $ids[0] }{pin_note} eq 'year end', 'the pin and its note');
is_deeply($b1{ $ids[0] }{kept_by}, ['pin'], 'repo1: the pinned one is kept by its pin');
is_deeply($b1{ $ids[1] }{kept_by}, [], 'repo1: the second oldest is expired by full 3');
is_deeply($b2{ $ids[3] }{kept_by}, [ 'full', 'newest' ], 'repo2: its newest, by full 1');
is_deeply($b2{ $ids[2] }{kept_by}, [], 'repo2: full 1 expires the one before');
ok($r1->{stored_bytes} > 0 && $r2->{stored_bytes} > 0, 'stored bytes per repository');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'list' ]);
like($out, qr/^repository 1: \Q$posix\E.*^repository 2: s3:\/\/wal\/r/ms, 'text: both repositories');
like($out, qr/^\Q$only1\E .*\n\s+full, newest\n\s+only in repository 1; missing from 2\n/m,
	'text: the rules and the repository it is missing from');
like($out, qr/^\Q$ids[0]\E .*\n\s+pinned: year end\n\s+pin\n/m, 'text: the pin');

# --repo URL on the command line keeps repo2's settings (its credentials are only repo2-*)
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--repo', 's3://wal/r', 'list', '--json' ]);
is($rc, 0, '--repo s3://wal/r keeps the repo2-* settings') or diag($err);
is(scalar @{ decode_json($out)->{backups} }, 4, '... and lists that repository alone');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--repo', '2', 'list', '--json' ]);
is($rc, 0, '--repo 2 picks it too') or diag($err);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--repo', '7', 'list' ]);
is($rc, 2, '--repo 7: no such repository, exit 2');
like($err, qr/--repo 7: 2 repositories are configured/, '... saying so (the message of --repo N in config.c, issue 19)');

# a repository that cannot be read: the others are listed, exit 1
my $bad = write_config("$base/bad.conf", repo1 => $posix, repo2 => 's3://nosuchbucket/x',
	'repo2-s3-endpoint' => $s3c{'s3-endpoint'}, 'repo2-s3-uri-style' => 'path',
	'repo2-s3-key' => $s3c{'s3-key'}, 'repo2-s3-key-secret' => $s3c{'s3-key-secret'},
	'io-timeout' => '5s');
($rc, $out, $err) = run(cmd => [ $bin, '-c', $bad, 'list' ]);
is($rc, 1, 'an unreadable repository: exit 1');
like($out, qr/^repository 1: \Q$posix\E/m, '... the readable one is listed');
like($out, qr/^repository 2: s3:\/\/nosuchbucket\/x CANNOT BE LISTED: /m, '... the other reported');

# ---- expire: per-repository policies, S3 through DeleteObjects ----
sub s3_keys
{
	my @k;
	find({ no_chdir => 1, wanted => sub { push @k, $1 if m{/wal/r/((?:wal|backup)/.*)\._S3rver_object$} } },
		$s3dir);
	return @k;
}
my @before = s3_keys();
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'expire', '--json', '--log-level', 'debug' ]);
is($rc, 0, 'expire exits 0') or diag($err);
$j = decode_json($out);
my ($e1, $e2) = @{ $j->{repositories} };
is_deeply([ sort map { $_->{id} } grep { $_->{action} eq 'remove' } @{ $e1->{backups} } ],
	[ $ids[1] ], 'repo1: the one expired by full 3 (the oldest is pinned)');
is_deeply([ sort map { $_->{id} } grep { $_->{action} eq 'remove' } @{ $e2->{backups} } ],
	[ sort @ids[ 1, 2 ] ], 'repo2: two expired by full 1');
ok($e2->{wal_removed}{count} > 10, "repo2: WAL removed ($e2->{wal_removed}{count} objects)");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--repo', '2', 'list', '--json' ]);
is_deeply([ sort map { $_->{id} } @{ decode_json($out)->{backups} } ], [ sort @ids[ 0, 3 ] ],
	'repo2 now lists the pinned and the newest');
my @after = s3_keys();
ok(@after < @before, 'objects are gone from the bucket (' . (@before - @after) . ')');
ok(!grep({ m{^backup/\Q$ids[1]\E/} } @after), 'nothing of an expired backup is left in S3');

# ---- expire-auto after a basebackup ----
my $id = take_basebackup($node, [ '-c', $conf, '--expire-auto', 'on' ], label => 'auto',
	extra => [ '--pin', '--note', 'pinned at birth' ]);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, '--repo', '2', 'list', '--json' ]);
my @l2 = @{ decode_json($out)->{backups} };
is_deeply([ sort map { $_->{id} } @l2 ], [ sort $ids[0], $id ],
	'expire-auto applied repo2\'s full 1 after the backup (the old pin stays)');
my ($new) = grep { $_->{id} eq $id } @l2;
ok($new->{pinned} && $new->{pin_note} eq 'pinned at birth', 'basebackup --pin pinned the new backup');
is_deeply($new->{kept_by}, [ 'full', 'pin', 'newest' ], '... and it is kept by full, its pin, newest');

done_testing();
