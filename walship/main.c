/* main.c — `walship [options] COMMAND [args]`: loads the configuration and dispatches. */
#include "walship/agent/life.h"
#include "walship/cmd.h"
#include "walship/log.h"
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
     "latest after archive-timeout. Acknowledgements and errors live in pg_wal/walship\n"
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
     "{\"backups\": [...], \"wal\": {...}} (docs/basebackup.md). Reads the first repository.\n"
     "Every started backup without a manifest is listed as incomplete, with its size; a\n"
     "backup that cannot be read is named beside the others; temporary files of\n"
     "interrupted writes are counted as leftovers.\n"
     "\n"
     "Exit: 0 listed; 1 the repository cannot be read, is missing or empty, or lost its\n"
     "walship.repo, or a backup in it cannot be read; 2 usage or config error.\n"},
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
     "See docs/encryption.md.\n"
     "\n"
     "Exit: 0 done; 1 failed (a key that does not match); 2 usage or config error.\n"},
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
        } else {
            ws_log_setup(prefix, level);
            rc = c->run(cfg);
        }
    }
    ws_config_free(cfg);
    return rc;
}
