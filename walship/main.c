/* main.c — `walship [options] COMMAND [args]`: loads the configuration and dispatches. */
#include "walship/agent/life.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/log.h"
#include "walship/ops/expire.h"
#include "walship/ops/copy.h"
#include "walship/ops/ops.h"
#include "walship/version.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

typedef struct command {
    const char *name;
    int (*run)(const ws_config *cfg);
    const char *usage;
    const char *help;
} command;

static const command commands[] = {
    {"push", ws_cmd_push, "push WALPATH",
     "Archive one WAL file: PostgreSQL's archive_command.\n"
     "\n"
     "  archive_mode = on\n"
     "  archive_command = 'walship push %p'\n"
     "\n"
     "Accepts WAL segments, .partial segments, TTTTTTTT.history and .backup files and\n"
     "refuses anything else. A segment's page header must be intact and belong to the\n"
     "cluster the repository was created for. The file is compressed (compress, lz4 by\n"
     "default) and stored in every configured repository; exit 0 only once it is durable\n"
     "in each. A file already archived with the same contents succeeds; the same name\n"
     "with different contents fails and the stored copy is kept.\n"
     "\n"
     "With async = on, a background agent (one per pg_wal, started by push, exiting after\n"
     "agent-idle-timeout) archives every .ready file, push-parallel at once; push exits 0\n"
     "once the agent acknowledges this very file, or 1 with the agent's error, at the\n"
     "latest after push-timeout. Acknowledgements and errors live in pg_wal/walship\n"
     "(spool-path). See docs/async.md.\n"
     "\n"
     "With push-queue-max = SIZE, when more than SIZE of WAL waits to be archived, the\n"
     "oldest segments are reported archived without being stored: each is first recorded\n"
     "as a gap in every repository (else push exits 1) and named in a WARNING. Recovery\n"
     "cannot cross a gap. See docs/queue-max.md.\n"
     "\n"
     "Exit: 0 archived; 1 not archived (PostgreSQL retries); 2 usage or config error.\n"},
    {"fetch", ws_cmd_fetch, "fetch WALNAME DESTPATH",
     "Restore one WAL file: PostgreSQL's restore_command.\n"
     "\n"
     "  restore_command = 'walship fetch %f %p'\n"
     "\n"
     "Tries the repositories in order. The file is verified (length, SHA-256, page header)\n"
     "before it is written to DESTPATH, atomically.\n"
     "\n"
     "With fetch-prefetch = N (default 8; 0 = off), fetch of a segment into pg_wal serves\n"
     "it from pg_wal/walship-prefetch when a background agent has downloaded and verified it\n"
     "already, and makes sure the agent downloads the next N along the timeline recovery\n"
     "follows, fetch-parallel at once (docs/async.md).\n"
     "\n"
     "Exit: 0 restored; 1 absent from every repository (the end of the archive);\n"
     "126 anything else after fetch-timeout (unreachable repository, corrupt object),\n"
     "so that PostgreSQL stops recovery instead of ending it early; 2 usage error.\n"
     "In standby mode (standby.signal) failures exit 1: the standby asks again.\n"},
    {"basebackup", ws_cmd_basebackup, "basebackup [options]",
     "Take a base backup into the repository over the replication protocol.\n"
     "\n"
     "  walship basebackup [--pgconn CONNINFO] [--label TEXT] [--checkpoint fast|spread]\n"
     "  walship basebackup --pgconn 'host=/var/run/postgresql' --checkpoint fast\n"
     "\n"
     "Connects with replication=true (the role needs REPLICATION; PG* environment\n"
     "variables apply) to PostgreSQL 13 to 18, refuses a repository of another\n"
     "cluster before any data moves, streams every file into repository objects, keeps\n"
     "the server's backup_manifest, waits until the WAL from the backup's start to its\n"
     "stop segment is archived in every repository (basebackup-wal-timeout), and writes\n"
     "the walship manifest last: only then does the backup exist (walship list).\n"
     "Also: --basebackup-wal-timeout SECONDS, --basebackup-part-size SIZE,\n"
     "--basebackup-max-rate KBPS, --basebackup-parallel N (objects written at once,\n"
     "default 2) (docs/basebackup.md).\n"
     "\n"
     "Exit: 0 the backup is complete; 1 it failed (nothing is listed; its objects are\n"
     "removed); 2 usage or config error.\n"},
    {"restore", ws_cmd_restore, "restore --pgdata DIR [options]",
     "Restore a base backup into DIR and configure recovery to a point in time.\n"
     "\n"
     "  walship restore --pgdata /var/lib/postgresql/15/main --target-time '2026-11-22 "
     "14:30:00+00' \\\n"
     "                  --target-action promote\n"
     "  walship restore --pgdata DIR --dry-run          # the plan; nothing is changed\n"
     "\n"
     "  --backup ID|latest         which backup (walship list); default: with --target-time or\n"
     "                             --target-lsn the newest that ends before the target on the\n"
     "                             timeline recovery follows, else the newest\n"
     "  --target-time TS | --target-lsn LSN | --target-xid XID | --target-name NAME |\n"
     "  --target immediate         where recovery stops (default: the end of the archive)\n"
     "  --target-action pause|promote|shutdown   at the target (PostgreSQL's default: pause)\n"
     "  --target-timeline latest|current|N       the timeline to follow (default: latest)\n"
     "  --archive-mode off|preserve              off (default): the restored cluster does not\n"
     "                             archive; preserve: as backed up (a disaster recovery)\n"
     "  --force                    a time/LSN target beyond the newest archived WAL: go on\n"
     "  --delta                    restore over a non-empty DIR: keep files that match the\n"
     "                             backup (size and SHA-256), rewrite the others, remove the rest\n"
     "  --tablespace-map OID=DIR[,OID=DIR]       put a tablespace elsewhere\n"
     "  --standby                  write standby.signal instead of recovery.signal\n"
     "  --restore-parallel N       objects downloaded at once (default 4)\n"
     "\n"
     "DIR must be empty (or absent) unless --delta, and no server may run there. Every file\n"
     "is verified against the backup's SHA-256; pg_control is written last, so a restore that\n"
     "fails midway leaves a directory that cannot start. Then start PostgreSQL: it replays\n"
     "WAL through walship fetch (restore_command in postgresql.auto.conf) up to the target.\n"
     "See docs/restore.md.\n"
     "\n"
     "Exit: 0 restored (or the plan printed); 1 failed; 2 usage or config error.\n"},
    {"list", ws_cmd_list, "list [--json]",
     "Show the repository's backups and WAL archive.\n"
     "\n"
     "Backups with a manifest (complete ones), oldest first: id, label, start and stop\n"
     "time, LSN range, timeline, original and stored size, duration. Then the WAL per\n"
     "timeline: first and last segment, count, gaps. --json prints one object\n"
     "{\"backups\": [...], \"wal\": {...}} (docs/basebackup.md). Every configured repository\n"
     "is listed (--repo URL|N picks one; several: {\"repositories\": [...]}), with pins, the\n"
     "retention rules keeping each backup and the repositories missing a backup\n"
     "(docs/retention.md).\n"
     "Every started backup without a manifest is listed as incomplete, with its size; a\n"
     "backup that cannot be read is named beside the others; temporary files of\n"
     "interrupted writes are counted as leftovers.\n"
     "\n"
     "Exit: 0 listed; 1 the repository cannot be read, is missing or empty, or lost its\n"
     "walship.repo, or a backup in it cannot be read; 2 usage or config error.\n"},
    {"expire", ws_cmd_expire, "expire [--dry-run] [--json]",
     "Apply the retention policy: remove expired backups and WAL, collect leftovers.\n"
     "\n"
     "For every configured repository (--repo URL|N picks one) with a policy —\n"
     "retention-full, retention-days, retention-daily/weekly/monthly/yearly, each also\n"
     "repoN-retention-... — prints the backups kept (with the rules keeping each), the\n"
     "backups and WAL ranges removed and the bytes freed. Never removes the newest complete\n"
     "backup, a pinned one (walship pin), a running one (its lock), WAL that a kept backup\n"
     "or the point-in-time window needs, history files, or anything from a repository whose\n"
     "identity is missing or names another cluster (pgconn, the manifests). Each backup's\n"
     "manifest goes first, then its objects; WAL oldest first: a killed expire is finished\n"
     "by the next. Leftovers older than expire-grace (1h) go too: incomplete backups without\n"
     "a live lock, temporary files of dead writers, unfinished S3 multipart uploads.\n"
     "--dry-run prints the plan and removes nothing; --json prints it as JSON\n"
     "(docs/retention.md). A successful basebackup runs it too (expire-auto = on).\n"
     "\n"
     "Exit: 0 done or nothing to do; 1 a failure (the report says what was removed before\n"
     "it); 2 usage or config error, or no policy set.\n"},
    {"pin", ws_cmd_pin, "pin ID [--note TEXT]",
     "Pin a backup: walship expire never removes it, nor the WAL from its start to its stop.\n"
     "\n"
     "Pins the backup in every repository holding it (basebackup --pin pins a new one).\n"
     "\n"
     "Exit: 0 pinned; 1 no complete backup with that id, or a failure; 2 usage error.\n"},
    {"unpin", ws_cmd_unpin, "unpin ID",
     "Remove a backup's pin (walship pin).\n"
     "\n"
     "Exit: 0 unpinned (or it was not pinned); 1 no complete backup with that id, or a\n"
     "failure; 2 usage error.\n"},
    {"verify", ws_cmd_verify, "verify [options]",
     "Read every object of every repository and check it as restore and fetch would.\n"
     "\n"
     "  walship verify [--backup ID|latest] [--wal-only] [--repair] [--json]\n"
     "  walship verify                      # everything: WAL archive and every backup\n"
     "  walship verify --backup latest      # one backup and the WAL from its start on\n"
     "  walship verify --wal-only --json\n"
     "\n"
     "Each object's header, decompression, length and SHA-256; a WAL segment's page header,\n"
     "system identifier and size against the repository's; a backup's objects against its\n"
     "manifest (every extent there, each file held whole in one object against its SHA-256).\n"
     "Then WAL continuity per timeline, following the history files, from the oldest\n"
     "backup's start to the end of the archive: missing segments are named as ranges,\n"
     "segments push-queue-max dropped are shown as recorded gaps. For each backup: is its\n"
     "WAL from start to stop there (consistent), and can it be replayed to the end.\n"
     "verify-parallel objects are read at once. --json: docs/verify.md.\n"
     "--repair copies a segment missing from one repository from another repository of\n"
     "the same cluster that holds it valid (checked as it is copied) and reports it.\n"
     "\n"
     "Exit: 0 no problem; 1 problems (each listed: repository, key, what is wrong);\n"
     "2 usage or config error.\n"},
    {"metrics", ws_cmd_metrics, "metrics",
     "Print Prometheus metrics of every repository and the last run of each job.\n"
     "\n"
     "  walship metrics > /var/lib/node_exporter/walship.prom\n"
     "  metrics-file = /var/lib/node_exporter/walship.prom     # in walship.conf\n"
     "\n"
     "Text exposition format, prefix walship_, label repo (docs/metrics.md). With\n"
     "metrics-file set, basebackup, verify and check rewrite that file atomically when they\n"
     "end, with their result (walship_job_*), for node_exporter's textfile collector.\n"
     "\n"
     "Exit: 0 printed (an unreachable repository is walship_repo_up 0); 1 output failed;\n"
     "2 usage or config error.\n"},
    {"check", ws_cmd_check, "check [options]",
     "Check that the running cluster archives into every repository, now.\n"
     "\n"
     "  walship check [--pgconn CONNINFO] [--nagios] [--json]\n"
     "  walship check --pgconn 'host=/var/run/postgresql'\n"
     "  walship check --nagios          # for Nagios / Icinga / Sensu\n"
     "\n"
     "One line per check, OK / WARNING / CRITICAL with its figure: the connection;\n"
     "archive_mode; archive_library = walship or an archive_command running walship push\n"
     "(with this configuration file); every repository's identity against the server's\n"
     "system identifier; pg_stat_archiver has no failure newer than its last success;\n"
     "pg_switch_wal(), then the segment is stored in every repository within check-timeout\n"
     "(skipped on a standby); the newest archived segment within check-archive-max-lag of\n"
     "the server's WAL; the newest complete backup younger than check-backup-max-age;\n"
     "its size within check-backup-size-change of the median of the others (WARNING).\n"
     "Needs a role that may run pg_switch_wal() (superuser, or GRANT EXECUTE).\n"
     "--json: docs/check.md.\n"
     "\n"
     "Exit: 0 all OK; 1 a check failed; 2 usage or config error. With --nagios:\n"
     "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage or config error).\n"},
    {"drill", ws_cmd_drill, "drill [options]",
     "Prove a backup restores: restore it into a scratch directory, start it, query it.\n"
     "\n"
     "  walship drill [--backup ID|latest] [--target-...] [--query SQL [--expect TEXT]]\n"
     "                [--keep] [--json]\n"
     "  walship drill --query 'SELECT count(*) FROM orders' --expect 1234567\n"
     "  walship drill --backup latest --target-time '2026-11-22 14:30:00+00' --json\n"
     "\n"
     "The backup (as restore chooses it; tablespaces mapped into the scratch directory) is\n"
     "restored under drill-path with archiving off, started with the server binaries of its\n"
     "major (drill-bindir) on a free port with a private socket directory (as drill-user\n"
     "under root); drill waits (drill-timeout) until recovery reaches the target (paused\n"
     "there) or the end of the archive (checked against the newest archived segment), runs\n"
     "--query and compares its first value with --expect, then stops the server and removes\n"
     "everything (unless --keep; also on SIGINT/SIGTERM). Reports the RTO: restore, replay\n"
     "and total seconds, WAL replayed. --json: docs/drill.md.\n"
     "\n"
     "Exit: 0 passed; 1 failed (the step and why); 2 usage or config error.\n"},
    {"repo", ws_cmd_repo, "repo repair [--dry-run]",
     "Re-create a lost walship.repo from the stored WAL and backups.\n"
     "\n"
     "push and basebackup never create walship.repo in a repository that already holds WAL\n"
     "or backups: it was removed (an S3 lifecycle rule?) and a new one would drop the check\n"
     "that the WAL belongs to the cluster. repair reads the first page header of every\n"
     "stored segment and every backup manifest, refuses if they name more than one cluster\n"
     "(system identifier, PostgreSQL major version, segment size), and writes walship.repo\n"
     "(create-only-if-absent) from what they agree on. --dry-run prints it, writes nothing.\n"
     "Every configured repository is repaired (--repo picks one).\n"
     "\n"
     "Exit: 0 repaired, or nothing to repair; 1 refused or failed; 2 usage or config error.\n"},
    {"copy", ws_cmd_copy, "copy [options]",
     "Copy backups and WAL from one repository into another.\n"
     "\n"
     "  walship copy [--from N] [--to M] [--backup ID | --all] [--wal] [--dry-run] [--json]\n"
     "\n"
     "For 3-2-1 setups: fill a repository that was down during a backup, or one added later.\n"
     "--from N (default 1) is the source; --to M the target (default: every other\n"
     "configured repository). --wal copies every WAL object and gap record the target\n"
     "lacks; --backup ID or --all those complete backups: their objects first, the\n"
     "manifest last, so that a half-copied backup is never listed as complete. Without\n"
     "any of the three: --all --wal (the WAL first). Every object is verified as it is\n"
     "read (header, length, SHA-256) and written create-only-if-absent: one already there\n"
     "with the same SHA-256 is skipped (a rerun after a kill copies what is missing), a\n"
     "different one is never overwritten: it is reported and copy exits 1. The target's\n"
     "identity must be the source's; an empty target gets the source's. copy-parallel\n"
     "objects at once; progress on a terminal. --dry-run says what would be copied;\n"
     "--json prints a summary object. With encryption on either side (repoN-cipher),\n"
     "each object is decrypted with the source's key and re-encrypted under the\n"
     "target's, and \"the same\" means the same plaintext SHA-256. Exit 0 when\n"
     "everything chosen is on the target, 1 otherwise, 2 for a usage error\n"
     "(docs/copy.md)."},
    {"cipher", ws_cmd_cipher, "cipher change | cipher rotate",
     "Change the passphrase of an encrypted repository, or rotate its master key.\n"
     "\n"
     "change opens walship.keyring with cipher-pass (or cipher-key-file) and rewraps its\n"
     "keys under cipher-pass-new (or cipher-key-file-new): one small object, replaced\n"
     "atomically, so a crash leaves the old or the new secret working. Objects are not\n"
     "rewritten. Then put the new secret in cipher-pass. rotate adds a random master key\n"
     "with the next key id, used by new objects; old ones stay readable through the\n"
     "keyring. It prints how many objects use each key id. Every repository with\n"
     "cipher = aes-256-gcm is changed. Secrets: config file or environment only.\n"
     "Both hold walship.keyring.lock while they change the keyring: a second change or\n"
     "rotate meanwhile is refused, naming the holder (one older than 600 s was left by a\n"
     "killed command: remove it by hand). See docs/encryption.md.\n"
     "\n"
     "Exit: 0 done; 1 failed (a key that does not match, the lock held); 2 usage or\n"
     "config error.\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_option(void *arg, const char *key, const char *value_name, const char *def,
                         const char *help)
{
    FILE *f = arg;
    char left[64];
    const char *shorts = strcmp(key, "config") == 0    ? "-c, "
                         : strcmp(key, "help") == 0    ? "-h, "
                         : strcmp(key, "version") == 0 ? "-V, "
                                                       : "";
    snprintf(left, sizeof left, "%s--%s%s%s", shorts, key, value_name ? " " : "",
             value_name ? value_name : "");
    fprintf(f, "  %-28s %s%s%s%s\n", left, help, def ? " [default: " : "", def ? def : "",
            def ? "]" : "");
}

static void usage(FILE *f)
{
    fputs("walship — continuous WAL archiving and point-in-time recovery for PostgreSQL\n"
          "\n"
          "Usage: walship [options] COMMAND [args]\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *first = commands[i].help;
        const char *nl = strchr(first, '\n');
        fprintf(f, "  %-26s %.*s\n", commands[i].usage, (int)(nl - first), first);
    }
    fputs("  help [COMMAND]             this text, or a command's\n"
          "\n"
          "Options (each is also a config-file key without the dashes and an environment\n"
          "variable WALSHIP_<KEY>, e.g. WALSHIP_LOG_LEVEL; flag > environment > file > default):\n",
          f);
    ws_config_each_option(print_option, f);
    fputs("\n"
          "Several repositories: repeat --repo, or set repo1, repo2, ... in the config file;\n"
          "repoN-<key> (e.g. repo2-s3-region) applies a setting to one repository.\n"
          "\n"
          "postgresql.conf:\n"
          "  archive_mode = on\n"
          "  archive_command = 'walship push %p'\n"
          "  restore_command = 'walship fetch %f %p'\n"
          "\n"
          "See walship(1), docs/ and conf/walship.conf.sample.\n",
          f);
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int command_help(const char *name)
{
    const command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "walship: unknown command \"%s\"; see \"walship help\"\n", name);
        return WS_EXIT_USAGE;
    }
    printf("Usage: walship [options] %s\n\n%s\nSee \"walship help\" for the options.\n", c->usage,
           c->help);
    return WS_EXIT_OK;
}

int main(int argc, char **argv)
{
    /* Every command may hold a secret (S3 keys from the file or the environment, a conninfo
     * password): no core file, and no ptrace or /proc/PID/environ|mem by other processes of
     * the same user. Set before anything is read; fork keeps it (the agents). */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* an agent forked from here shows its own title in ps (agent/life.h) */
    argv = ws_agent_save_argv(argc, argv);
    ws_config *cfg = NULL;
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_load(argc, argv, &cfg, &err) < 0) {
        const char *cmd = cfg ? ws_config_command(cfg) : NULL;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "walship%s%.40s", cmd ? " " : "", cmd ? cmd : "");
        ws_log_setup(prefix, WS_LOG_ERROR);
        ws_log_err(WS_LOG_ERROR, &err);
        ws_config_free(cfg);
        return WS_EXIT_USAGE;
    }
    const char *cmd = ws_config_command(cfg);
    int rc;
    if (ws_config_flag(cfg, "version")) {
        ws_version_print(stdout);
        rc = WS_EXIT_OK;
    } else if (cmd && strcmp(cmd, "help") == 0) {
        if (ws_config_nargs(cfg) > 0)
            rc = command_help(ws_config_arg(cfg, 0));
        else {
            usage(stdout);
            rc = WS_EXIT_OK;
        }
    } else if (ws_config_flag(cfg, "help")) {
        if (cmd)
            rc = command_help(cmd);
        else {
            usage(stdout);
            rc = WS_EXIT_OK;
        }
    } else if (!cmd) {
        usage(stderr);
        rc = WS_EXIT_USAGE;
    } else {
        const command *c = find_command(cmd);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "walship %s", cmd);
        ws_log_level level;
        if (!c) {
            fprintf(stderr, "walship: unknown command \"%s\"; see \"walship help\"\n", cmd);
            rc = WS_EXIT_USAGE;
        } else if (ws_log_parse_level(ws_config_get(cfg, "log-level"), &level) < 0) {
            fprintf(stderr,
                    "%s: ERROR: log-level = \"%s\" (from %s) is not error, warn, info "
                    "or debug\n",
                    prefix, ws_config_get(cfg, "log-level"), ws_config_source(cfg, "log-level"));
            rc = WS_EXIT_USAGE;
        } else if (ws_log_setup(prefix, level), ws_ops_log_setup(cfg, cmd, &err) < 0) {
            ws_log_err(WS_LOG_ERROR, &err); /* log-timestamps (ops, issue 15) */
            rc = WS_EXIT_USAGE;
        } else {
            rc = c->run(cfg);
        }
    }
    ws_config_free(cfg);
    return rc;
}
