# 020_recovery.t — point-in-time recovery through walship: a base backup taken with
# pg_basebackup -X none (its WAL comes only from the repository), more writes archived by walship
# push, then a new cluster recovered from the backup with restore_command = walship fetch, which
# replays to the end of the archive and promotes. Then the promoted cluster archives its new
# timeline's history file and the old timeline's .partial segment into the same repository.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;

use File::Compare qw(compare);

my ($bin, $base, $repo, $conf) = walship_setup();

my $primary = archiving_cluster('primary', $conf);
$primary->start;

$primary->safe_psql(
	"CREATE TABLE t (id int PRIMARY KEY, pad text);
	 INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g;");

# pg_basebackup waits until the backup's last WAL segment is archived (-X none).
my $backup = $primary->backup('base');
ok(-f "$backup/backup_label", 'base backup taken (pg_basebackup -X none)');

# After the backup: rows in several segments, and a pgbench load, all only in the archive.
for my $i (1 .. 5)
{
	my ($lo, $hi) = (1000 * $i + 1, 1000 * ($i + 1));
	$primary->safe_psql(
		"INSERT INTO t SELECT g, repeat(md5(g::text), 10) FROM generate_series($lo, $hi) g");
	$primary->switch_wal;
}
my ($rc, $out, $err) = run(cmd =>
	  [ pg_bin('pgbench'), '-i', '-s', '1', '-q', '-h', $primary->host, '-p', $primary->port, 'postgres' ]);
is($rc, 0, 'pgbench -i after the backup') or diag($err);
$primary->safe_psql("INSERT INTO t VALUES (6001, 'last row')");

my $expected =
  $primary->safe_psql('SELECT count(*), sum(id), (SELECT count(*) FROM pgbench_accounts) FROM t');
my $last = $primary->switch_wal;
ok($primary->wait_for_archive($last), "primary archived everything up to $last");
is($primary->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0', 'no failed push');

# ---- recover a copy of the backup from the repository
my $restored = WalshipTest::init_from_backup(
	'restored', $backup,
	restore_command => "$bin -c $conf fetch %f %p",
	archive_command => "$bin -c $conf push %p",
	recovery        => 1);
ok($restored->start(fail_ok => 1), 'the restored cluster starts (archive recovery)')
  && ok($restored->poll_query_until('SELECT NOT pg_is_in_recovery()'),
	'recovery reached the end of the archive and promoted')
  or do { done_testing(); exit 1 };

is($restored->safe_psql('SELECT count(*), sum(id), (SELECT count(*) FROM pgbench_accounts) FROM t'),
	$expected, 'every row written after the backup is there (count, sum, pgbench_accounts)');
is($restored->safe_psql("SELECT pad FROM t WHERE id = 6001"), 'last row', 'the very last row too');

my $log = $restored->log_content;
like($log, qr/restored log file "$last" from archive/,
	"the last archived segment $last was restored through walship fetch");
unlike($log, qr/could not restore file|PANIC/, 'no restore failure in the server log');

# ---- the promoted cluster archives its history file and the old timeline's .partial segment
my $pg_wal = $restored->pgdata . '/pg_wal';
ok($restored->poll_query_until(
		"SELECT count(*) = 0 FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"),
	'the promoted cluster archived everything it had ready');
is($restored->safe_psql('SELECT failed_count FROM pg_stat_archiver'), '0',
	'no failed push from the promoted cluster');

opendir my $dh, $pg_wal or die "opendir $pg_wal: $!";
my @new = sort grep { /^([0-9A-F]{8}\.history|[0-9A-F]{24}\.partial)$/ } readdir $dh;
closedir $dh;
ok((grep { /^00000002\.history$/ } @new), 'the promotion wrote 00000002.history')
  or diag("pg_wal has: @new");
my $dest = make_pg_dir("$base/fetched", 0700);
for my $f (@new)
{
	($rc, $out, $err) = run(cmd => [ $bin, '-c', $conf, 'fetch', $f, "$dest/$f" ]);
	is($rc, 0, "fetch $f exits 0") or diag($err);
	ok(-f "$dest/$f" && compare("$dest/$f", "$pg_wal/$f") == 0, "fetched $f is identical");
}

done_testing();
