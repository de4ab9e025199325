package TrialLib;

# TrialLib — what the trial tools (crash.pl, pitr.pl) share: processes by command line, the
# kept-copy archive_command wrapper, table checksums computed by PostgreSQL itself (not by
# walship), the result table, and docs/reliability.md's sections, which the full runs rewrite.

use strict;
use warnings;
use Exporter 'import';
use POSIX ();
use Sys::Hostname qw(hostname);
require WalshipTest;

our @EXPORT = qw(procs_matching keep_wrapper table_sums print_table update_doc machine_line
  tree_commit);

# procs_matching(qr/.../) -> pids whose command line (NULs as spaces) matches.
sub procs_matching
{
	my ($re) = @_;
	my @p;
	opendir my $dh, '/proc' or return ();
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		next if $pid == $$;
		open my $fh, '<', "/proc/$pid/cmdline" or next;
		local $/;
		my $cl = <$fh> // '';
		close $fh;
		$cl =~ tr/\0/ /;
		push @p, $pid + 0 if $cl =~ $re;
	}
	closedir $dh;
	return sort { $a <=> $b } @p;
}

# keep_wrapper($path, $kept_dir, @push_cmd): an archive_command script "$path %p %f" that
# keeps a copy of the file the first time PostgreSQL hands it over (kept/<name>, written to a
# temporary name and renamed), then execs the push command with %p. The copy is what every
# fetched segment is compared with.
sub keep_wrapper
{
	my ($path, $kept, @push) = @_;
	my $cmd = join ' ', map { "'$_'" } @push;
	WalshipTest::spurt_file($path, <<"SH");
#!/bin/sh
# archive_command wrapper of tests/trials: keep the first handover of each file, then push it
if [ ! -e '$kept'/"\$2" ]; then
    cp "\$1" '$kept'/".\$2.\$\$" && mv '$kept'/".\$2.\$\$" '$kept'/"\$2" || exit 1
fi
exec $cmd "\$1"
SH
	chmod 0755, $path;
	return "$path %p %f";
}

# table_sums($node, @tables) -> { table => "rows:md5" }: the row count and an md5 of every row's
# text, ordered by the text, computed by the server.
sub table_sums
{
	my ($node, @tables) = @_;
	my %s;
	for my $t (@tables)
	{
		$s{$t} = $node->safe_psql(
			"SELECT count(*) || ':' || coalesce(md5(string_agg(x, ',' ORDER BY x)), '-') FROM (SELECT t::text AS x FROM $t t) s"
		);
	}
	return \%s;
}

# print_table(\@header, \@rows): a Markdown table on stdout; returns its text.
sub print_table
{
	my ($h, $rows) = @_;
	my $text = '| ' . join(' | ', @$h) . " |\n|" . join('|', map { '---' } @$h) . "|\n";
	$text .= '| ' . join(' | ', @$_) . " |\n" for @$rows;
	print "\n$text\n";
	return $text;
}

# tree_commit: the commit, "-dirty" when a file other than docs/reliability.md (which the
# tools rewrite) differs from it.
sub tree_commit
{
	my $top = "$FindBin::RealBin/../..";
	my $c = `git -C '$top' describe --always 2>/dev/null` // '';
	chomp $c;
	return 'unknown' unless $c;
	system('git', '-C', $top, 'diff', '--quiet', 'HEAD', '--', '.', ':!docs/reliability.md');
	return $? == 0 ? $c : "$c-dirty";
}

sub machine_line
{
	my $cpus = `nproc 2>/dev/null` // '?';
	chomp $cpus;
	my ($mem) = (WalshipTest::slurp_file('/proc/meminfo') =~ /^MemTotal:\s+(\d+)/m);
	my $load = (split ' ', WalshipTest::slurp_file('/proc/loadavg'))[0];
	return sprintf('%s, %s CPUs, %.0f GiB RAM, load average %s at the end', hostname(), $cpus,
		($mem // 0) / 1048576, $load);
}

# update_doc($section, $text): replaces what lies between "<!-- $section:begin -->" and
# "<!-- $section:end -->" in docs/reliability.md.
sub update_doc
{
	my ($section, $text) = @_;
	my $f = "$FindBin::RealBin/../../docs/reliability.md";
	my $doc = WalshipTest::slurp_file($f);
	$doc =~ s/(<!-- \Q$section\E:begin -->\n).*?(<!-- \Q$section\E:end -->)/$1$text$2/s
	  or die "docs/reliability.md has no $section section";
	open my $fh, '>', "$f.tmp" or die "$f.tmp: $!";
	print $fh $doc;
	close $fh or die;
	rename "$f.tmp", $f or die "rename: $!";
	print "docs/reliability.md: $section updated\n";
	return;
}

1;
