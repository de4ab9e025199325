#!/usr/bin/env perl
# mkseeds.pl — regenerates the seed corpora of tests/fuzz/corpus/ from real objects: a scratch
# cluster archives WAL through walship push into a posix repository and takes a walship
# basebackup and a pg_basebackup -Ft; the seeds are cut from what they wrote (WAL names and
# first pages, object headers, lz4 payloads, the two manifests, tar archives). Formats with no
# live producer here (S3 replies, HTTP headers, gap records, history files) are written from
# their documentation (docs/repository-format.md, the S3 API reference) beside real ones.
# Run: WALSHIP_BIN=build/walship perl tests/fuzz/mkseeds.pl   (prints TAP; writes the corpus)
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipBackup;
use Digest::SHA qw(sha256_hex);
use File::Find qw(find);
use File::Path qw(make_path);

my $out  = "$FindBin::RealBin/corpus";
my $bin  = walship_bin();
my $base = tmp_base();
my $repo = make_pg_dir("$base/repo", 0700);
my $conf = write_config("$base/walship.conf", repo => $repo, async => 'off');

sub seed
{
	my ($target, $name, $bytes) = @_;
	make_path("$out/$target");
	open my $fh, '>:raw', "$out/$target/$name" or die "$out/$target/$name: $!";
	print $fh $bytes;
	close $fh;
}

my $node = new_cluster("seeds", archive_command => "$bin -c $conf push %p", wal_keep_size => "1GB");
$node->start;
$node->safe_psql('CREATE TABLE t (id int, pad text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g');
my $seg = $node->switch_wal;
$node->wait_for_archive($seg);
my ($rc, $o, $err) = run(cmd => [ $bin, '-c', $conf, 'basebackup', '--pgconn', $node->connstr,
		'--checkpoint', 'fast', '--label', 'seed' ]);
ok($rc == 0, 'walship basebackup') or diag($err);
my $tar = "$base/tar";
($rc, $o, $err) = run(cmd => [ pg_bin('pg_basebackup'), '-D', $tar, '-Ft', '-X', 'none', '-c', 'fast',
		'--no-sync', '-h', $node->host, '-p', $node->port ]);
ok($rc == 0, 'pg_basebackup -Ft') or diag($err);
$node->safe_psql('SELECT 1');
my $seg2 = $node->switch_wal;
$node->wait_for_archive($seg2);

# ---- WAL names and first pages (fuzz_wal: "name\n" + page)
my $pg_wal = $node->pgdata . '/pg_wal';
my $page = substr(slurp_file("$pg_wal/$seg"), 0, 8192);
seed('wal', 'segment', "$seg\n$page");
seed('wal', 'segment-header-only', "$seg\n" . substr($page, 0, 40));
seed('wal', 'partial', "$seg.partial\n$page");
seed('wal', 'history', "00000002.history\n");
seed('wal', 'backup', "000000010000000000000002.00000028.backup\n");
seed('wal', 'lsn', "16/B374D848\n");

# ---- objects: headers (fuzz_objhdr), lz4 payloads (fuzz_lz4: bound selector byte + frame)
my @objs;
find({ no_chdir => 1, wanted => sub { push @objs, $_ if -f $_ && m{/(wal|backup)/} } }, $repo);
my %kinds;
for my $f (sort @objs)
{
	my $obj = slurp_file($f);
	next unless substr($obj, 0, 4) eq 'WSHP';
	my $kind = ord(substr($obj, 7, 1)) . '-' . ord(substr($obj, 5, 1));
	next if $kinds{$kind}++ >= 2;
	(my $n = substr($f, length($repo) + 1)) =~ s{[/.]}{_}g;
	seed('objhdr', $n, substr($obj, 0, 64));
	my $hlen = unpack('V', substr($obj, 8, 4));
	# bound 1 MiB (selector 5) for WAL, 16 MiB (6) for backup data; in pieces of 97 (8+5 => 13)
	if (ord(substr($obj, 5, 1)) == 1 && length($obj) - $hlen < 200000)
	{
		seed('lz4', "$n-whole", chr(6) . substr($obj, $hlen));
		seed('lz4', "$n-pieces", chr(0x0d) . substr($obj, $hlen)) if length($obj) < 20000;
	}
}
ok(scalar(keys %kinds) >= 2, 'object headers of several kinds: ' . join(' ', sort keys %kinds));
# a small lz4 frame, made by the lz4 tool, and a too-small bound (selector 2: 100 bytes)
($rc, my $frame) = run(cmd => [ 'sh', '-c', "head -c 5000 $pg_wal/$seg | lz4 -c" ], as_pg => 0);
seed('lz4', 'lz4-tool-frame', chr(4) . $frame);
seed('lz4', 'lz4-tool-frame-bound-too-small', chr(2) . $frame);

# ---- walship's manifest (fuzz_manifest: piece selector + text)
my @man = grep { m{/backup/[^/]+/walship\.manifest$} } @objs;
my $mtext = read_object($man[0]);
seed('manifest', 'walship-manifest', chr(0) . $mtext);
seed('manifest', 'walship-manifest-pieces', chr(3) . $mtext);
# the header lines and a few body lines only (counts then disagree: refused at the end)
my @ml = split /\n/, $mtext;
seed('manifest', 'walship-manifest-head', chr(1) . join("\n", @ml[0 .. ($#ml < 40 ? $#ml : 40)]) . "\n");

# ---- the server's backup_manifest (fuzz_server_manifest: "path size crc ..." line + JSON)
my $sm = slurp_file("$tar/backup_manifest");
seed('server_manifest', 'pg15-backup-manifest', "\n$sm");
# a small one that passes every check: three files, the checksum recomputed
my @files = $sm =~ /^(\{ "Path": .*\}),?$/mg;
my ($head) = $sm =~ /\A(.*?"Files": \[\n)/s;
my ($tail) = $sm =~ /(\],\n"WAL-Ranges".*?\n)"Manifest-Checksum"/s;
my @keep = @files[0 .. 2];
my $small = $head . join(",\n", @keep) . "\n" . $tail;
$small .= '"Manifest-Checksum": "' . sha256_hex($small) . "\"}\n";
my $line = join ' ', map {
	my ($p) = /"Path": "([^"]+)"/;
	my ($s) = /"Size": (\d+)/;
	my ($c) = /"Checksum": "([0-9a-f]+)"/;
	"$p $s $c"
} @keep;
seed('server_manifest', 'small-valid', "$line\n$small");

# ---- tar (fuzz_tar: mode byte + archive): the start of pg_basebackup's base.tar, and a tiny ustar archive with a directory, a file and a symlink
seed('tar', 'base.tar-start', chr(0x83) . substr(slurp_file("$tar/base.tar"), 0, 60000));
my $tiny = make_pg_dir("$base/tiny", 0700);
mkdir "$tiny/base";
spurt_file("$tiny/base/PG_VERSION", "15\n");
symlink '/tmp', "$tiny/tblspc";
($rc, my $t1) = run(cmd => [ 'tar', '--format=ustar', '-C', $tiny, '-cf', '-', 'base', 'tblspc' ], as_pg => 0);
seed('tar', 'tiny-ustar', chr(1) . $t1);
seed('tar', 'tiny-ustar-unterminated', chr(0x82) . substr($t1, 0, 512 * 3));

$node->stop;

# ---- timeline history files (fuzz_timeline: first byte picks the timeline)
seed('timeline', 'tli2', "1\t0/3000000\tno recovery target specified\n");
seed('timeline', 'tli4', "1\t0/3000000\tno recovery target specified\n\n"
	  . "2\t0/5000A28\tat restore point \"before\"\n3\t1/20000000\tbefore 2026-11-22 14:30:00+00\n");
seed('timeline', 'comments', "# comment\n1\t0/16B3F28\tafter transaction 745\n");

# ---- gap records (docs/repository-format.md, "Gaps")
seed('gap', 'record', "# walship gap record: this WAL segment was not archived\nwalship-gap = 1\n"
	  . "segment = 00000001000000000000000D\nreason = push-queue-max\ndropped-at = 2026-11-22T07:41:56Z\n"
	  . "backlog-files = 7\nbacklog-bytes = 7340032\nlimit-bytes = 3145728\ncreated-by = walship 0.1.0\n");
seed('gap', 'minimal', "walship-gap = 1\nsegment = 000000010000000000000001\nreason = push-queue-max\n"
	  . "dropped-at = 2026-01-01T00:00:00Z");

# ---- config files
seed('config', 'sample', slurp_file("$FindBin::RealBin/../../conf/walship.conf.sample"));
seed('config', 'trial', slurp_file($conf));
seed('config', 'settings', "repo = /var/lib/walship\nrepo2 = s3://bucket/prefix\nrepo2-s3-region = eu-west-1\n"
	  . "compress-level = 3\nfetch-timeout = 90s\npush-queue-max = 1GB\ns3-verify-tls = off\nasync = \"on\"\n");
# target options are command-line only: a first byte 0..7 picks one, the first line is its value
seed('config', 'target-time', chr(0) . "2026-11-22 14:30:00.123+01:00\nrepo = /r\n");
seed('config', 'target-lsn', chr(1) . "16/B374D848\nrepo = /r\n");
seed('config', 'target-xid', chr(2) . "745\nrepo = /r\n");
seed('config', 'target-name', chr(3) . "before_drop\nrepo = /r\n");
seed('config', 'target-immediate', chr(4) . "immediate\nrepo = /r\n");
seed('config', 'target-action', chr(5) . "promote\nrepo = /r\n");
seed('config', 'target-timeline', chr(6) . "latest\nrepo = /r\n");
seed('config', 'archive-mode', chr(7) . "preserve\nrepo = /r\n");

# ---- S3 XML replies (the S3 API reference's shapes, and s3rver's spelling)
seed('s3_xml', 'list-v2', '<?xml version="1.0" encoding="UTF-8"?>' . "\n"
	  . '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>wal</Name><Prefix>r/wal/</Prefix>'
	  . '<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>'
	  . '<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>'
	  . '<Contents><Key>r/wal/0000000100000000/000000010000000000000001</Key><LastModified>2026-11-22T07:41:56.000Z</LastModified>'
	  . '<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>41234</Size><StorageClass>STANDARD</StorageClass></Contents>'
	  . '<Contents><Key>r/wal/0000000100000000/odd&amp;key&#x0D;</Key><LastModified>2026-11-22T07:42:00Z</LastModified>'
	  . '<Size>7</Size></Contents></ListBucketResult>');
seed('s3_xml', 'error', '<?xml version="1.0" encoding="UTF-8"?>' . "\n"
	  . '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>'
	  . '<Resource>/wal/r/walship.repo</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>');
seed('s3_xml', 'error-nosuchkey', '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>r/x</Key></Error>');
seed('s3_xml', 'initiate-multipart', '<?xml version="1.0" encoding="UTF-8"?>' . "\n"
	  . '<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>wal</Bucket>'
	  . '<Key>r/wal/0000000100000000/000000010000000000000003</Key>'
	  . '<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId></InitiateMultipartUploadResult>');
seed('s3_xml', 'complete-multipart', '<CompleteMultipartUploadResult><Location>http://127.0.0.1/wal/k</Location>'
	  . '<Bucket>wal</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>');
seed('s3_xml', 'complete-200-error', '<?xml version="1.0" encoding="UTF-8"?>' . "\n"
	  . '<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>');

# ---- HTTP response headers, one line each as libcurl delivers them
seed('http_headers', 's3-head', "HTTP/1.1 200 OK\r\nx-amz-id-2: ef8yU9AS1ed4OpIszj7UDNEHGran\r\n"
	  . "x-amz-request-id: 318BC8BC143432E5\r\nDate: Wed, 02 Dec 2026 00:50:58 GMT\r\n"
	  . "Last-Modified: Wed, 02 Dec 2026 00:50:00 GMT\r\nETag: \"fba9dede5f27731c9771645a39863328\"\r\n"
	  . "x-amz-meta-walship-sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\r\n"
	  . "Content-Length: 434234\r\nContent-Type: application/octet-stream\r\nServer: AmazonS3\r\n\r\n");
seed('http_headers', 'continue-then-503', "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Slow Down\r\nRetry-After: 2\r\n"
	  . "Content-Type: application/xml\r\nContent-Length: 120\r\nConnection: close\r\n\r\n");
seed('http_headers', 'range', "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 64-1023/41234\r\n"
	  . "content-length:960\r\nX-Odd:\t  spaced value  \r\n\r\n");

# ---- the targets that make their own seeds with the code under test (FUZZ_MKSEEDS=DIR):
# cipher (objects from the encrypt stage under the fixed test keyring), keyring (from
# ws_keyring_create / rotate / export), pin (ws_pin_set, ws_backup_lock_take). Needs
# `make fuzz-build` first; FUZZ_BUILD names another build tree.
my $fuzz_build = $ENV{FUZZ_BUILD} // "$FindBin::RealBin/../../build/fuzz";
for my $t (qw(cipher keyring pin))
{
	my $b = "$fuzz_build/fuzz_$t";
	if (!-x $b)
	{
		diag("$b is not built (make fuzz-build): its seeds are left as committed");
		next;
	}
	make_path("$out/$t");
	local $ENV{FUZZ_MKSEEDS} = "$out/$t";
	ok(system($b) == 0, "fuzz_$t wrote its seeds");
}

done_testing();
