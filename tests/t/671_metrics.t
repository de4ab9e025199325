# 671_metrics.t — walship metrics and metrics-file, read back by a real Prometheus text parser
# (prometheus_client.parser.text_string_to_metric_families, Debian's python3-prometheus-client).
# basebackup and verify rewrite metrics-file atomically with their result and carry the other
# jobs' lines over; a failed verify shows as walship_job_last_success 0 while the time of the
# last success stays; an unreachable repository is walship_repo_up 0, not an error. Bad usage
# exits 2, and a metrics-file that cannot be written never fails the job.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

use JSON::PP qw(decode_json);

my $py = '/usr/bin/python3';
plan skip_all => 'python3-prometheus-client is not installed: run scripts/deps.sh'
  unless system($py, '-c', 'import prometheus_client.parser') == 0;

my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo");
my $mdir = make_pg_dir("$base/textfile");
my $mfile = "$mdir/walship.prom";
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off', 'metrics-file' => $mfile);
my @g = ('-c', $conf);

# The parser's view: every sample as {name, labels, value}; exit 1 on text it refuses.
my $parser = <<'PY';
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
PY
sub parse
{
	my ($text) = @_;
	my ($rc, $out, $err) = run(cmd => [ $py, '-c', $parser ], stdin => $text, as_pg => 0);
	ok($rc == 0, 'the Prometheus parser accepts the text') or diag("$err\n$text");
	my %v;
	my $samples = eval { decode_json($out) } // [];
	for my $s (@$samples)
	{
		my $l = join ',', map { "$_=$s->{labels}{$_}" } sort keys %{ $s->{labels} };
		$v{"$s->{name}\{$l}"} = $s->{value};
	}
	return \%v;
}

my $node = new_cluster('primary', archive_command => "$bin -c $conf push %p");
$node->start;
$node->safe_psql('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
my $id = take_basebackup($node, \@g, label => 'm');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), 'WAL archived');

ok(-f $mfile, 'basebackup wrote metrics-file');
is((stat $mfile)[2] & 07777, 0644, '... mode 0644 (node_exporter reads it)');
my @left = grep { !/\/walship\.prom(\.lock)?$/ } glob("$mdir/*");
is_deeply(\@left, [], '... no temporary file left beside it');
my $m = parse(slurp_file($mfile));
is($m->{"walship_repo_up{repo=$repo}"}, 1, 'walship_repo_up 1');
is($m->{"walship_backups{repo=$repo}"}, 1, 'walship_backups 1');
is($m->{"walship_job_last_success{job=basebackup}"}, 1, 'walship_job_last_success{job="basebackup"} 1');
ok($m->{"walship_backup_newest_size_bytes{repo=$repo}"} > 0, 'the newest backup has a size');
ok(abs($m->{"walship_backup_newest_completion_timestamp_seconds{repo=$repo}"} - time) < 600,
	'... and a completion time of now');

# verify adds its line and keeps basebackup's
my ($rc, $out, $err) = run(cmd => [ $bin, @g, 'verify' ]);
is($rc, 0, 'verify exits 0') or diag($err);
$m = parse(slurp_file($mfile));
is($m->{"walship_job_last_success{job=verify}"}, 1, 'verify: walship_job_last_success 1');
is($m->{"walship_job_last_success{job=basebackup}"}, 1, '... basebackup\'s line carried over');
my $ok_at = $m->{"walship_job_last_success_timestamp_seconds{job=verify}"};
ok($ok_at, '... and the time of verify\'s last success');
ok($m->{"walship_wal_segments{repo=$repo}"} >= 2, 'walship_wal_segments counts the archive');
my $newest = $m->{"walship_wal_newest_segment_number{repo=$repo}"};
my $want = hex(substr($last, 8, 8)) * 4096 + hex(substr($last, 16, 8));    # 1 MiB segments
is($newest, $want, "walship_wal_newest_segment_number is that of $last");

# a failed verify: success 0, the last success time stays
my $seg = "$repo/wal/" . substr($last, 0, 16) . "/$last";
rename $seg, "$seg.saved" or die "rename: $!";
my @before = glob("$repo/wal/*/*");
sleep 1;
($rc, $out, $err) = run(cmd => [ $bin, @g, 'verify' ]);
rename "$seg.saved", $seg;
is($rc, 1, 'a damaged repository: verify exits 1');
like($out, qr/^PROBLEM .*\Q$last\E/m, '... naming the removed segment');
$m = parse(slurp_file($mfile));
is($m->{"walship_job_last_success{job=verify}"}, 0, '... walship_job_last_success 0');
is($m->{"walship_job_last_success_timestamp_seconds{job=verify}"}, $ok_at, '... the last success time stays');

# walship metrics: a second, unreachable repository is walship_repo_up 0
my $gone = "$base/not-mounted";
my $c2 = write_config("$base/two.conf", repo1 => $repo, repo2 => $gone, 'metrics-file' => $mfile);
($rc, $out, $err) = run(cmd => [ $bin, '-c', $c2, 'metrics' ]);
is($rc, 0, 'walship metrics exits 0 with an unreachable repository');
$m = parse($out);
is($m->{"walship_repo_up{repo=$repo}"}, 1, '... the good one is up');
is($m->{"walship_repo_up{repo=$gone}"}, 0, '... the missing one is walship_repo_up 0');
is($m->{"walship_job_last_success{job=basebackup}"}, 1, '... with the jobs of metrics-file');
like($out, qr/^# TYPE walship_backups gauge$/m, '... and TYPE lines');

# --pgdata: what waits to be archived there, and the async agent's last failure
my $lm;
{
	my $pg = "$base/fake-pgdata";
	make_pg_dir($_) for ($pg, "$pg/pg_wal", "$pg/pg_wal/archive_status", "$pg/pg_wal/walship");
	for my $n ('000000010000000000000010', '000000010000000000000011')
	{
		spurt_file("$pg/pg_wal/$n", 'x' x 1048576);
		spurt_file("$pg/pg_wal/archive_status/$n.ready", '');
	}
	spurt_file("$pg/pg_wal/archive_status/00000001000000000000000F.done", '');
	spurt_file("$pg/pg_wal/walship/000000010000000000000010.error", 'boom');
	utime 1790000000, 1790000000, "$pg/pg_wal/walship/000000010000000000000010.error";
	utime 1780000000, 1780000000, "$pg/pg_wal/000000010000000000000010";
	($rc, $out, $err) = run(cmd => [ $bin, @g, 'metrics', '--pgdata', $pg ]);
	is($rc, 0, 'metrics --pgdata exits 0');
	$lm = parse($out);
	is($lm->{"walship_archive_ready_files{pgdata=$pg}"}, 2, '... two .ready files waiting');
	is($lm->{"walship_archive_ready_bytes{pgdata=$pg}"}, 2 * 1048576, '... and their bytes');
	is($lm->{"walship_archive_oldest_ready_timestamp_seconds{pgdata=$pg}"}, 1780000000, '... the oldest one\'s time');
	is($lm->{"walship_agent_last_error_timestamp_seconds{pgdata=$pg}"}, 1790000000, '... the agent\'s last failure');
}

# contrib/walship.rules.yml: valid YAML whose expressions name only metrics walship exports
{
	my $rules = "$FindBin::RealBin/../../contrib/walship.rules.yml";
	my ($yrc, $yout, $yerr) = run(
		cmd => [ $py, '-c', 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); '
			  . 'print("\n".join(r["expr"] for g in d["groups"] for r in g["rules"]))', $rules ],
		as_pg => 0);
	SKIP:
	{
		if ($yerr =~ /No module named .yaml/) { diag('SKIPPING the rules check: python3-yaml is not installed'); skip('python3-yaml is not installed', 3) }
		is($yrc, 0, 'contrib/walship.rules.yml is valid YAML') or diag($yerr);
		my %known = map { /^(walship_\w+)\{/ ? ($1 => 1) : () } keys %$m, keys %$lm;
		my @names = $yout =~ /\b(walship_\w+)/g;
		ok(@names >= 9, '... its rules name walship metrics (' . scalar(@names) . ')');
		my @unknown = grep { !$known{$_} } @names;
		is_deeply(\@unknown, [], '... and its rules use only exported metrics');
	}
}

# bad input
($rc, $out, $err) = run(cmd => [ $bin, @g, 'metrics', 'extra' ]);
is($rc, 2, 'metrics with an argument exits 2');
like($err, qr/usage: walship metrics/, '... with the usage');
my $c3 = write_config("$base/bad.conf", repo => $repo, 'metrics-file' => "$base/no/such/dir/w.prom");
($rc, $out, $err) = run(cmd => [ $bin, '-c', $c3, 'verify' ]);
is($rc, 0, 'a metrics-file that cannot be written: verify still exits 0');
like($err, qr/WARN.*could not update metrics-file: .*no\/such\/dir/, '... and warns, naming it');
ok(!-e "$base/no", '... nothing written');

$node->stop;
done_testing();
