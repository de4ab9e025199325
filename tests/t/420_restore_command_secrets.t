# 420_restore_command_secrets.t — the restore_command walship restore writes carries only what
# fetch reads. A restore given pgconn with a password (as a flag and in the environment), and
# other options fetch never reads (--label, --checkpoint, WALSHIP_BASEBACKUP_PARALLEL), writes
# none of them into postgresql.auto.conf, prints none of them (plan, log), yet repeats the
# repository and the fetch options given as flags (--fetch-timeout, --log-level); and the
# restored cluster recovers through that command. An S3 secret from the environment is never
# written either: restore names the variable (not its value) and says where fetch must find it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../lib";
use WalshipTest;
use WalshipRestore;

my ($bin, $base, $repo, $conf) = walship_setup();
my @g    = ('-c', $conf);

my ($node, $b1) = backed_up_primary($conf, 50);
$node->safe_psql('INSERT INTO t SELECT generate_series(51, 80)');
my $last = $node->switch_wal;
ok($node->wait_for_archive($last), "archived up to $last");
$node->stop;

my $pw      = 'Sup3rSecretPw';
my $envpw   = 'EnvPassw0rdX';
my $awssec  = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY';
my @options = (
	'--pgconn', "host=/tmp port=5432 user=postgres password=$pw",
	'--label', 'not-for-fetch', '--checkpoint', 'fast',
	'--fetch-timeout', '17', '--log-level', 'info');
my %env = (
	WALSHIP_PGCONN              => "password=$envpw",
	WALSHIP_BASEBACKUP_PARALLEL => '3',
	AWS_SECRET_ACCESS_KEY       => $awssec,
	AWS_ACCESS_KEY_ID           => 'AKIAEXAMPLEKEYID',
);

# ---- the plan (--dry-run) shows the restore_command: no password, no foreign option
my $dry = restored_node('dry');
my ($rc, $out, $err) = walship_restore(\@g, '--pgdata', $dry->pgdata, '--dry-run', @options,
	{ env => \%env });
is($rc, 0, 'dry run exits 0') or diag($err);
like($out, qr/restore_command/, 'the plan shows the restore_command');
for my $secret ($pw, $envpw, $awssec)
{
	unlike("$out$err", qr/\Q$secret\E/, "the plan and the log do not contain '$secret'");
}
unlike($out, qr/--pgconn|--label|--checkpoint|--basebackup-parallel/,
	'the plan\'s restore_command has no option fetch does not read');
like($err, qr/S3 credentials came from the environment \([^)]*AWS_SECRET_ACCESS_KEY[^)]*\): restore_command never carries a secret/,
	'the S3 secret from the environment: restore names the variable');
like($err, qr/\Q$conf\E/, '... and the config file fetch must read it from');

# ---- the real restore: postgresql.auto.conf holds no secret and no foreign option
my $r = restored_node('r');
($rc, $out, $err) = walship_restore(\@g, '--pgdata', $r->pgdata, @options, { env => \%env });
is($rc, 0, 'restore exits 0') or diag($err);
for my $secret ($pw, $envpw, $awssec)
{
	unlike("$out$err", qr/\Q$secret\E/, "restore's output does not contain '$secret'");
}
my $auto = slurp_file($r->pgdata . '/postgresql.auto.conf');
unlike($auto, qr/\Q$pw\E|\Q$envpw\E|password/, 'postgresql.auto.conf holds no password');
unlike($auto, qr/\Q$awssec\E|AKIAEXAMPLEKEYID/, 'postgresql.auto.conf holds no S3 credential');
my $blk = recovery_block($r->pgdata);
my $cmd = $blk ? $blk->{settings}{restore_command} : '';
unlike($cmd, qr/pgconn|label|checkpoint|basebackup-parallel/,
	'restore_command has none of pgconn, label, checkpoint, basebackup-parallel')
  or diag($cmd);
like($cmd, qr/ -c \Q$conf\E /, 'restore_command reads the config file (-c)') or diag($cmd);
like($cmd, qr/ --fetch-timeout 17 /, '... and repeats --fetch-timeout, which fetch reads')
  or diag($cmd);
like($cmd, qr/ --log-level info /, '... and --log-level') or diag($cmd);
like($cmd, qr/ fetch "%f" "%p"$/, '... and ends with fetch "%f" "%p"') or diag($cmd);

# ---- and PostgreSQL recovers through it
configure_restored($r);
ok($r->start(fail_ok => 1), 'the restored cluster starts');
ok(wait_recovery_done($r), 'it replays the archive through that restore_command and promotes');
is($r->safe_psql('SELECT count(*) FROM t'), '80', 'all 80 rows are back');
$r->stop;

done_testing();
