package WalshipBackup;

# WalshipBackup — reading walship backups back in tests, independently of walship's C code:
# the object format (64-byte header + lz4 frame, docs/repository-format.md) is decoded with
# the lz4 command and Digest::SHA, and the walship manifest with a few lines of Perl.
#
#     my $plain = read_object("$repo/backup/$id/backup_manifest");   # verified plaintext
#     my $m = read_manifest($repo, $id);   # {info => {k => v}, files => [...], dirs, symlinks}
#     my $bytes = file_bytes($repo, $id, $file);   # a file's bytes from its extents
#     server_checksum_ok($bytes, $entry)   # against a server backup_manifest entry
#                                          # (CRC32C, as walship asks for, or SHA256)

use strict;
use warnings;
use Carp qw(croak);
use Digest::SHA qw(sha256 sha256_hex);
use Exporter 'import';
use File::Temp qw(tempfile);
require WalshipTest;    # slurp_file

our @EXPORT = qw(read_object read_manifest file_bytes pct_decode crc32c_hex server_checksum_ok);

sub _slurp { return WalshipTest::slurp_file(@_) }

# read_object($path): the object's plaintext, after checking magic, length and SHA-256.
sub read_object
{
	my ($path) = @_;
	my $obj = _slurp($path);
	croak "$path: not a walship object" unless substr($obj, 0, 4) eq 'WSHP';
	my $codec = ord(substr($obj, 5, 1));
	my $hlen  = unpack('V', substr($obj, 8, 4));
	my $len   = unpack('Q<', substr($obj, 16, 8));
	my $sha   = substr($obj, 24, 32);
	my $payload = substr($obj, $hlen);
	my $plain;
	if ($codec == 0)
	{
		$plain = $payload;
	}
	elsif ($codec == 1)
	{
		my ($fh, $tmp) = tempfile('walship-obj-XXXXXX', TMPDIR => 1, UNLINK => 1);
		binmode $fh;
		print $fh $payload;
		close $fh;
		open my $dec, '-|', 'lz4', '-dc', $tmp or croak "lz4: $!";
		binmode $dec;
		local $/;
		$plain = <$dec> // '';
		close $dec or croak "lz4 -dc $path failed";
		unlink $tmp;
	}
	else
	{
		croak "$path: codec $codec";
	}
	croak "$path: length " . length($plain) . ", header says $len" if length($plain) != $len;
	croak "$path: SHA-256 mismatch" if sha256($plain) ne $sha;
	return $plain;
}

my @CRC_TABLE = map {
	my $c = $_;
	$c = $c & 1 ? ($c >> 1) ^ 0x82F63B78 : $c >> 1 for 1 .. 8;
	$c
} 0 .. 255;

# crc32c_hex($bytes): CRC-32C as PostgreSQL's backup_manifest writes it (the hex of the
# value's bytes in host order: little-endian). Plain Perl, about 5 MB/s.
sub crc32c_hex
{
	my ($data) = @_;
	my $c = 0xFFFFFFFF;
	$c = $CRC_TABLE[ ($c ^ $_) & 0xFF ] ^ ($c >> 8) for unpack 'C*', $data;
	return unpack('H8', pack('V', $c ^ 0xFFFFFFFF));
}

# server_checksum_ok($bytes, $entry): the bytes match the Checksum of a Files entry of the
# server's backup_manifest (decoded JSON), whichever algorithm it names.
sub server_checksum_ok
{
	my ($bytes, $w) = @_;
	my $alg = $w->{'Checksum-Algorithm'} // '';
	return sha256_hex($bytes) eq lc $w->{Checksum} if $alg eq 'SHA256';
	return crc32c_hex($bytes) eq lc $w->{Checksum} if $alg eq 'CRC32C';
	croak "checksum algorithm '$alg'";
}

sub pct_decode
{
	my ($s) = @_;
	$s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
	return $s;
}

# read_manifest($repo, $id): the parsed walship manifest.
sub read_manifest
{
	my ($repo, $id) = @_;
	my $text = read_object("$repo/backup/$id/walship.manifest");
	my %m = (info => {}, files => [], dirs => [], symlinks => [], tablespaces => []);
	for my $line (split /\n/, $text)
	{
		next if $line eq '' || $line =~ /^#/;
		my ($k, $v) = $line =~ /^(\S+) = (.*)$/ or croak "bad manifest line: $line";
		if ($k eq 'file')
		{
			my ($tsp, $mode, $mtime, $size, $sha, $path, $ext) = split / /, $v;
			push @{ $m{files} },
			  {
				tablespace => $tsp,
				mode       => oct($mode),
				mtime      => $mtime,
				size       => $size,
				sha256     => $sha,
				path       => pct_decode($path),
				extents    => $ext
			  };
		}
		elsif ($k eq 'dir')
		{
			my ($tsp, $mode, $mtime, $path) = split / /, $v;
			push @{ $m{dirs} }, { tablespace => $tsp, path => pct_decode($path) };
		}
		elsif ($k eq 'symlink')
		{
			my ($tsp, $mode, $mtime, $path, $target) = split / /, $v;
			push @{ $m{symlinks} },
			  { tablespace => $tsp, path => pct_decode($path), target => pct_decode($target) };
		}
		elsif ($k eq 'tablespace')
		{
			my ($oid, $loc) = split / /, $v;
			push @{ $m{tablespaces} }, { oid => $oid, location => pct_decode($loc) };
		}
		else
		{
			$m{info}{$k} = $v;
		}
	}
	return \%m;
}

# file_bytes($repo, $id, $file, \%cache): the file's bytes, assembled from its extents.
sub file_bytes
{
	my ($repo, $id, $f, $cache) = @_;
	$cache //= {};
	return '' if $f->{extents} eq '-';
	my $out = '';
	for my $e (split /,/, $f->{extents})
	{
		my ($rel, $off, $len) = $e =~ /^([a-z]+\/[0-9]+)\@(\d+)\+(\d+)$/
		  or croak "bad extent $e";
		$cache->{$rel} //= read_object("$repo/backup/$id/$rel");
		croak "extent $e beyond its object" if $off + $len > length $cache->{$rel};
		$out .= substr($cache->{$rel}, $off, $len);
	}
	return $out;
}

1;
