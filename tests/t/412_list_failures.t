# 412_list_failures.t — list never says "no backups" about a repository it cannot see: a
# missing or empty one (an unmounted mount point, a wrong S3 prefix) and one whose
# walship.repo was removed exit 1 with a message naming the repository. One unreadable backup
# (a corrupt manifest, a directory without permission) does not hide the valid ones: they are
# listed, the unreadable one is named (text and --json), and list exits 1.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipS3;

use JSON::PP qw(decode_json);

WalshipS3::require_s3rver();

my $bin  = walship_bin();
my $base = tmp_base();
my $s3   = WalshipS3->s3rver(buckets => ['wal']);
my %s3cfg = $s3->config;

sub list
{
	my ($conf, @args) = @_;
	return run(cmd => [ $bin, '-c', $conf, 'list', @args ]);
}

# ---- missing, empty: exit 1, never "no backups"
my %where = (
	'missing directory' => "$base/not-there",
	'empty directory'   => make_pg_dir("$base/empty"),
	'empty S3 prefix'   => 's3://wal/nothing-here');
for my $what (sort keys %where)
{
	my $conf = write_config("$base/c.conf", repo => $where{$what}, %s3cfg);
	for my $json (0, 1)
	{
		my ($rc, $out, $err) = list($conf, $json ? ('--json') : ());
		my $how = $json ? 'list --json' : 'list';
		is($rc, 1, "$what: $how exits 1");
		like($err, qr/repository \Q$where{$what}\E is missing or empty: no walship\.repo/,
			"$what: $how says so, naming the repository");
		unlike($out, qr/no backups/, "$what: $how does not say \"no backups\"");
	}
}

# ---- a cluster, WAL and three backups in a posix repository
my $repo = make_pg_dir("$base/repo");
my $conf = write_config("$base/walship.conf", repo => $repo);
my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
my @bb = ($bin, '-c', $conf, 'basebackup', '--pgconn', $node->connstr, '--checkpoint', 'fast');
my @ids;
for my $n (1 .. 3)
{
	my ($rc, $out, $err) = run(cmd => [ @bb, '--label', "b$n" ]);
	is($rc, 0, "backup $n") or diag($err);
	push @ids, $1 if $err =~ /backup (\S+) complete/;
	sleep 1;    # distinct ids
}
is(scalar @ids, 3, 'three backup ids');
my ($rc, $out, $err) = list($conf, '--json');
is($rc, 0, 'list of a healthy repository exits 0') or diag($err);

# ---- walship.repo removed: list fails and names repo repair
rename "$repo/walship.repo", "$base/walship.repo.saved" or die "rename: $!";
($rc, $out, $err) = list($conf);
is($rc, 1, 'without walship.repo: list exits 1');
like($err, qr/repository \Q$repo\E has no walship\.repo but holds objects .*HINT: run "walship repo repair"/,
	'... naming the repository and the repair command');
rename "$base/walship.repo.saved", "$repo/walship.repo" or die "rename back: $!";

# ---- a corrupt manifest (backup 2) and a directory walship may not read (backup 3)
my $m2 = "$repo/backup/$ids[1]/walship.manifest";
open my $fh, '+<', $m2 or die "open $m2: $!";
seek $fh, 100, 0;
print $fh 'XXXX';
close $fh;
{
	($rc, $out, $err) = list($conf);
	is($rc, 1, 'a corrupt manifest: list exits 1');
	like($out, qr/^\Q$ids[0]\E\s+b1 /m, '... still lists the first backup') or diag($out);
	like($out, qr/^\Q$ids[2]\E\s+b3 /m, '... and the third') or diag($out);
	like($out, qr/^  \Q$ids[1]\E\s+UNREADABLE: .*$ids[1]/m, '... and names the unreadable one')
	  or diag($out);
	like($err, qr/1 backup\(s\) in \Q$repo\E cannot be read \(first: $ids[1]\); the 2 readable/,
		'... and says so in the error');

	# walship runs unprivileged here (as postgres when the tests run as root)
	chmod 0000, "$repo/backup/$ids[2]" or die "chmod: $!";
	($rc, $out, $err) = list($conf, '--json');
	chmod 0700, "$repo/backup/$ids[2]";
	is($rc, 1, 'a corrupt manifest and an unreadable directory: list --json exits 1');
	my $j = eval { decode_json($out) } // {};
	is_deeply([ map { $_->{id} } @{ $j->{backups} // [] } ], [ $ids[0] ],
		'... lists the valid backup') or diag($out);
	is_deeply([ map { $_->{id} } @{ $j->{unreadable_backups} // [] } ], [ @ids[1, 2] ],
		'... reports both unreadable ones') or diag($out);
	like($j->{unreadable_backups}[1]{error} // '', qr/cannot list .*Permission denied/,
		'... the directory with the reason');
	like($j->{unreadable_backups}[0]{error} // '', qr/walship\.manifest|corrupt|verification|header/i,
		'... the manifest with its');
	is_deeply($j->{incomplete_backups}, [], '... neither counts as incomplete');
}

done_testing();
