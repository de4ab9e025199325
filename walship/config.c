/* config.c — options from flags, WALSHIP_* environment variables and the config file. */
#include "walship/config.h"
#include "walship/storage/storage.h"
#include "walship/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

enum {
    OPT_VALUE = 0,
    OPT_FLAG = 1u << 0,     /* takes no value (--json) */
    OPT_REPO = 1u << 1,     /* per repository: repoN-<key> overrides it */
    OPT_SECRET = 1u << 2,   /* never on the command line, never logged */
    OPT_CLI_ONLY = 1u << 3, /* not a config-file key */
};

typedef struct opt_def {
    const char *key;
    char short_name;
    unsigned flags;
    const char *value_name;
    const char *def;
    const char *help;
} opt_def;

static const opt_def opts[] = {
    {"config", 'c', OPT_CLI_ONLY, "FILE", NULL,
     "config file (default: $WALSHIP_CONFIG, else " WS_CONFIG_DEFAULT_FILE " if it exists)"},
    {"repo", 0, OPT_REPO, "URL", NULL,
     "repository: /abs/path, file:///abs/path or s3://bucket[/prefix]; repeat for several; "
     "a configured repoN named by its URL or its number N keeps its repoN-* settings (--repo 2)"},
    {"log-level", 0, 0, "LEVEL", "info", "error | warn | info | debug (to stderr)"},
    {"compress", 0, 0, "CODEC", "lz4", "codec for new objects: lz4 | none"},
    {"compress-level", 0, 0, "N", "1", "lz4 level: 1 (fastest) to 12"},
    {"fetch-timeout", 0, 0, "SECONDS", "30",
     "how long fetch retries a failing repository before giving up"},
    {"io-timeout", 0, OPT_REPO, "SECONDS", "60", "deadline for one storage operation"},
    {"s3-endpoint", 0, OPT_REPO, "HOST[:PORT]", NULL,
     "S3 endpoint, optionally with http:// or https:// (default: AWS for s3-region)"},
    {"s3-region", 0, OPT_REPO, "REGION", "us-east-1", "S3 region used for signing"},
    {"s3-uri-style", 0, OPT_REPO, "STYLE", "host",
     "host (bucket.endpoint) | path (endpoint/bucket)"},
    {"s3-ca-file", 0, OPT_REPO, "FILE", NULL, "CA bundle to verify the S3 endpoint's certificate"},
    {"s3-verify-tls", 0, OPT_REPO, "BOOL", "on", "verify the S3 endpoint's TLS certificate"},
    {"s3-storage-class", 0, OPT_REPO, "CLASS", NULL, "storage class for new objects"},
    {"s3-sse", 0, OPT_REPO, "MODE", NULL, "server-side encryption: AES256 | aws:kms"},
    {"s3-sse-kms-key-id", 0, OPT_REPO, "ID", NULL, "KMS key id for s3-sse = aws:kms"},
    {"s3-key", 0, OPT_REPO | OPT_SECRET, "ID", NULL,
     "access key id (or AWS_ACCESS_KEY_ID); config file or environment only"},
    {"s3-key-secret", 0, OPT_REPO | OPT_SECRET, "SECRET", NULL,
     "secret access key (or AWS_SECRET_ACCESS_KEY); config file or environment only"},
    {"s3-token", 0, OPT_REPO | OPT_SECRET, "TOKEN", NULL,
     "session token (or AWS_SESSION_TOKEN); config file or environment only"},
    {"pgconn", 0, 0, "CONNINFO", NULL,
     "basebackup: libpq connection string (PG* environment variables apply too)"},
    {"label", 0, 0, "TEXT", NULL, "basebackup: the backup's label"},
    {"checkpoint", 0, 0, "MODE", "spread",
     "basebackup: fast (checkpoint at once) | spread (paced, like pg_basebackup)"},
    {"basebackup-wal-timeout", 0, 0, "SECONDS", "60",
     "basebackup: how long to wait for the backup's WAL to reach the repository"},
    {"basebackup-max-rate", 0, 0, "KBPS", NULL,
     "basebackup: the server sends at most this many kB/s (32 to 1048576; default unlimited)"},
    {"basebackup-part-size", 0, 0, "SIZE", "1GB",
     "basebackup: larger files are stored in parts of this size"},
    {"basebackup-parallel", 0, 0, "N", "2",
     "basebackup: objects compressed, written and committed at once (1 to 32)"},
    {"async", 0, 0, "BOOL", "on",
     "push: hand files to a background agent that archives up to push-parallel at once"},
    {"push-timeout", 0, 0, "SECONDS", "60",
     "async push: how long push waits for the agent's acknowledgement before exiting 1 "
     "(formerly archive-timeout)"},
    {"push-parallel", 0, 0, "N", "4", "async push: files the agent archives at once (1 to 32)"},
    {"agent-idle-timeout", 0, 0, "SECONDS", "60",
     "async push and prefetching fetch: an agent exits after this long without work"},
    {"spool-path", 0, 0, "DIR", NULL,
     "async push: the agent's acknowledgements and errors (default: pg_wal/walship); "
     "prefetched segments go to its prefetch/ (default: pg_wal/walship-prefetch)"},
    {"fetch-prefetch", 0, 0, "N", "8",
     "fetch: segments a background agent downloads ahead of recovery (0 to 256; 0 = off)"},
    {"fetch-parallel", 0, 0, "N", "4",
     "fetch: segments the prefetch agent downloads at once (1 to 32)"},
    {"push-queue-max", 0, 0, "SIZE", "off",
     "push: past this much un-archived WAL, drop the oldest segments and record the gap "
     "(e.g. 4GB; docs/queue-max.md)"},
    {"pgdata", 0, OPT_CLI_ONLY, "DIR", NULL, "restore: the data directory to restore into"},
    {"backup", 0, OPT_CLI_ONLY, "ID", NULL,
     "restore: the backup to restore (an id from walship list, or latest)"},
    {"target-time", 0, OPT_CLI_ONLY, "TIMESTAMP", NULL,
     "restore: recover up to this time (e.g. '2026-11-22 14:30:00+00')"},
    {"target-lsn", 0, OPT_CLI_ONLY, "LSN", NULL, "restore: recover up to this WAL location"},
    {"target-xid", 0, OPT_CLI_ONLY, "XID", NULL,
     "restore: recover up to this transaction's commit"},
    {"target-name", 0, OPT_CLI_ONLY, "NAME", NULL,
     "restore: recover up to this restore point (pg_create_restore_point)"},
    {"target", 0, OPT_CLI_ONLY, "immediate", NULL,
     "restore: recover only until the backup is consistent"},
    {"target-action", 0, OPT_CLI_ONLY, "ACTION", NULL,
     "restore: at the target: pause (PostgreSQL's default) | promote | shutdown"},
    {"target-timeline", 0, OPT_CLI_ONLY, "TLI", NULL,
     "restore: latest (PostgreSQL's default) | current | a timeline number"},
    {"tablespace-map", 0, OPT_CLI_ONLY, "OID=DIR[,...]", NULL,
     "restore: put tablespace OID in DIR instead of its original location"},
    {"delta", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "restore: reuse a non-empty PGDATA, rewriting only files that differ"},
    {"dry-run", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "restore: print the plan, change nothing"},
    {"standby", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "restore: write standby.signal instead of recovery.signal"},
    {"archive-mode", 0, OPT_CLI_ONLY, "MODE", "off",
     "restore: off (the restored cluster does not archive) | preserve (as backed up)"},
    {"force", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "restore: restore to a target beyond the newest archived WAL anyway"},
    {"restore-parallel", 0, 0, "N", "4",
     "restore: objects downloaded and written at once (1 to 32)"},
    /* ops (issue 15): verify, metrics, notifications, check, log timestamps */
    {"wal-only", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "verify: only the WAL archive, no backup"},
    {"verify-parallel", 0, 0, "N", "4", "verify: objects read and checked at once (1 to 32)"},
    {"repair", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "verify: copy a segment missing from one repository from another that holds it valid"},
    {"metrics-file", 0, 0, "PATH", NULL,
     "basebackup, expire, verify, check, drill: rewrite this Prometheus textfile (node_exporter) "
     "at the "
     "end"},
    {"notify-url", 0, OPT_SECRET, "URL", NULL,
     "POST each job's result as JSON here (Slack/Mattermost webhook; a secret: config or "
     "WALSHIP_NOTIFY_URL only)"},
    {"notify-on", 0, 0, "WHEN", "failure", "notify: failure | always"},
    {"notify-timeout", 0, 0, "SECONDS", "10", "notify: give up delivering after this long"},
    {"nagios", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "check: exit 0 OK, 1 WARNING, 2 CRITICAL (monitoring plugin convention)"},
    {"check-timeout", 0, 0, "SECONDS", "60",
     "check: wait this long for the switched segment to reach every repository"},
    {"check-backup-max-age", 0, 0, "SECONDS", "26h",
     "check: CRITICAL when the newest complete backup is older (0 = off)"},
    {"check-archive-max-lag", 0, 0, "SIZE", "1GB",
     "check: CRITICAL when the newest archived segment is this far behind the server's WAL "
     "(off = no limit)"},
    {"query", 0, OPT_CLI_ONLY, "SQL", NULL, "drill: run this query once recovery is done"},
    {"expect", 0, OPT_CLI_ONLY, "TEXT", NULL, "drill: the query's first value must be this"},
    {"keep", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "drill: keep the scratch directory (the server is stopped all the same)"},
    {"drill-path", 0, 0, "DIR", "/var/tmp", "drill: where its scratch directory is made"},
    {"drill-timeout", 0, 0, "SECONDS", "1h", "drill: how long recovery may take"},
    {"drill-bindir", 0, 0, "DIR", NULL,
     "drill: the server binaries (default /usr/lib/postgresql/<the backup's major>/bin)"},
    {"drill-user", 0, 0, "USER", "postgres", "drill: the user its server runs as under root"},
    {"check-backup-size-change", 0, 0, "PERCENT", "off",
     "check: WARNING when the newest backup's size differs from the median of the others by "
     "more (e.g. 50%)"},
    {"log-timestamps", 0, 0, "BOOL", NULL,
     "prefix log lines with an ISO-8601 UTC time (default: on for verify, check, drill and "
     "metrics; off for the others: push and fetch write into PostgreSQL's log, which stamps)"},
    {"json", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "machine-readable output"},
    {"help", 'h', OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "show help"},
    {"version", 'V', OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "show the version"},
    /* retention: walship expire, pins (issue 13; docs/retention.md) */
    {"retention-full", 0, OPT_REPO, "N", NULL,
     "expire: keep the newest N complete backups (1 to 100000)"},
    {"retention-days", 0, OPT_REPO, "D", NULL,
     "expire: keep what recovers to any point of the last D days (1 to 36500)"},
    {"retention-daily", 0, OPT_REPO, "N", NULL,
     "expire: keep the newest backup of each of the last N days (1 to 100000)"},
    {"retention-weekly", 0, OPT_REPO, "N", NULL,
     "expire: keep the newest backup of each of the last N ISO weeks (1 to 100000)"},
    {"retention-monthly", 0, OPT_REPO, "N", NULL,
     "expire: keep the newest backup of each of the last N months (1 to 100000)"},
    {"retention-yearly", 0, OPT_REPO, "N", NULL,
     "expire: keep the newest backup of each of the last N years (1 to 100000)"},
    {"retention-timezone", 0, OPT_REPO, "TZ", "UTC",
     "expire: the calendar of the daily/weekly/monthly/yearly tiers (UTC or a TZ name)"},
    {"expire-auto", 0, 0, "BOOL", "on",
     "basebackup: run expire on the repositories written after a successful backup"},
    {"expire-grace", 0, 0, "SECONDS", "1h",
     "expire: age before leftovers of dead writers (incomplete backups, temporary files, "
     "multipart uploads) are removed"},
    {"pin", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "basebackup: pin the new backup"},
    {"note", 0, OPT_CLI_ONLY, "TEXT", NULL, "pin: a note stored with the pin"},
    {"test-clock-offset", 0, 0, "SECONDS", NULL,
     "tests only: shift walship's wall clock (backup times, expire's now; docs/retention.md)"},
    /* copy (issue 19) */
    {"from", 0, OPT_CLI_ONLY, "N", "1", "copy: the source repository (1 is repo1)"},
    {"to", 0, OPT_CLI_ONLY, "N", NULL,
     "copy: the target repository (1-based; default: every configured one but --from)"},
    {"all", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL, "copy: every complete backup"},
    {"wal", 0, OPT_FLAG | OPT_CLI_ONLY, NULL, NULL,
     "copy: the WAL (segments, history, backup history, gaps) the target lacks"},
    {"copy-parallel", 0, 0, "N", "4", "copy: objects copied at once (1 to 32)"},
    /* client-side encryption (issue 14, docs/encryption.md) */
    {"cipher", 0, OPT_REPO, "CIPHER", "none",
     "encrypt every object: aes-256-gcm | none (per repository: repoN-cipher)"},
    {"cipher-pass", 0, OPT_REPO | OPT_SECRET, "PASSPHRASE", NULL,
     "the repository's passphrase (scrypt); config file or environment only"},
    {"cipher-key-file", 0, OPT_REPO, "FILE", NULL,
     "instead of cipher-pass: a file of 32 random bytes, mode 0600"},
    {"cipher-pass-new", 0, OPT_REPO | OPT_SECRET, "PASSPHRASE", NULL,
     "cipher change: the new passphrase; config file or environment only"},
    {"cipher-key-file-new", 0, OPT_REPO, "FILE", NULL, "cipher change: the new key file"},
    /* catch-up repositories and the push agent's failure reports (issue 15; docs/async.md) */
    {"mode", 0, OPT_REPO, "MODE", "sync",
     "repoN-mode: sync (push acknowledges once it holds the file) | catch-up (filled by the "
     "push agent in the background; never blocks archiving or basebackup)"},
    {"check-catch-up-max-lag", 0, 0, "SIZE", "1GB",
     "check: CRITICAL when a catch-up repository's backlog is larger (off = no limit)"},
    {"notify-interval", 0, 0, "SECONDS", "300",
     "push agent: at most one archive-failure notification per this long, with the count"},
};

/* copy (issue 19): deprecated names, read as their new one with one WARNING (when the value
 * is first used) naming where the old name was set. */
static const struct {
    const char *old, *now;
} aliases[] = {
    {"archive-timeout", "push-timeout"},
};

#define NOPTS (sizeof opts / sizeof opts[0])

enum { SRC_FLAG = 0, SRC_ENV, SRC_FILE, SRC_N };

typedef struct entry {
    char *key; /* canonical: "log-level", "repo2", "repo2-s3-region" */
    char *value;
    char *where;
    int src;
    int line;          /* the config file's line, for SRC_FILE */
    const char *alias; /* set under this deprecated name (aliases[]), else NULL */
    int warned;        /* the alias's WARNING was printed */
} entry;

struct ws_config {
    entry *e;
    int n, cap;
    char *command;
    char **args;
    int nargs;
    char *file;   /* the config file read, if any */
    int repo_src; /* the source whose repos are used, -1 if none */
    int nrepos;
    char repo_keys[WS_CONFIG_MAX_REPOS][16];
    /* repository i's URL, and the N of the repoN-<key> settings it uses: a repository named on
     * the command line (or in the environment) that is one configured lower down (the same
     * URL, or its number: --repo 2) keeps that repository's settings (issue 13) */
    const char *repo_url[WS_CONFIG_MAX_REPOS];
    int repo_settings[WS_CONFIG_MAX_REPOS];
};

static const opt_def *find_opt(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

/* "repo3-s3-region" → 3 and "s3-region"; "repo3" → 3 and "repo"; else 0. */
static int split_repo_key(const char *key, const char **rest)
{
    if (strncmp(key, "repo", 4) != 0 || !isdigit((unsigned char)key[4]))
        return 0;
    int idx = key[4] - '0';
    if (idx < 1 || idx > WS_CONFIG_MAX_REPOS)
        return 0;
    if (key[5] == '\0') {
        *rest = "repo";
        return idx;
    }
    if (key[5] != '-')
        return 0;
    *rest = key + 6;
    return idx;
}

/* The option that governs key (after repoN- splitting), or NULL if unknown. */
static const opt_def *resolve_key(const char *key, int *repo_idx)
{
    const char *rest;
    int idx = split_repo_key(key, &rest);
    *repo_idx = idx;
    if (idx) {
        const opt_def *o = find_opt(rest);
        return (o && (o->flags & OPT_REPO)) ? o : NULL;
    }
    return find_opt(key);
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fputs("walship: out of memory\n", stderr);
        exit(2);
    }
    return d;
}

static void add_entry(ws_config *c, const char *key, const char *value, const char *where, int src)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 32;
        entry *ne = realloc(c->e, (size_t)c->cap * sizeof *ne);
        if (!ne) {
            fputs("walship: out of memory\n", stderr);
            exit(2);
        }
        c->e = ne;
    }
    entry *e = &c->e[c->n++];
    e->key = xstrdup(key);
    e->value = xstrdup(value);
    e->where = xstrdup(where);
    e->src = src;
    e->line = 0;
    e->alias = NULL;
    e->warned = 0;
}

/* key (a buffer of len bytes) renamed to its current name if it is a deprecated alias; the
 * old name is returned (static) to be recorded on the entry, else NULL. */
static const char *rename_alias(char *key, size_t len)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(key, aliases[i].old) == 0) {
            snprintf(key, len, "%s", aliases[i].now);
            return aliases[i].old;
        }
    return NULL;
}

/* The highest-precedence entry for key; later entries of one source win. A value set under a
 * deprecated name warns once. */
static const entry *lookup(const ws_config *c, const char *key)
{
    entry *best = NULL;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0 && (!best || c->e[i].src <= best->src))
            best = &c->e[i];
    if (best && best->alias && !best->warned) {
        best->warned = 1;
        ws_log_warn("%s (%s) is deprecated: it is now called %s; rename it", best->alias,
                    best->where, best->key);
    }
    return best;
}

static int parse_args(ws_config *c, int argc, char **argv, ws_error *err)
{
    int repo_flags = 0, only_args = 0;
    c->args = calloc((size_t)argc + 1, sizeof *c->args);
    if (!c->args)
        return ws_error_oom(err);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            if (!c->command)
                c->command = xstrdup(a);
            else
                c->args[c->nargs++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        const opt_def *o = NULL;
        char name[64];
        const char *value = NULL, *alias = NULL;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            if (n >= sizeof name)
                n = sizeof name - 1;
            memcpy(name, a + 2, n);
            name[n] = '\0';
            alias = rename_alias(name, sizeof name);
            int idx;
            o = resolve_key(name, &idx);
            if (eq)
                value = eq + 1;
        } else {
            for (size_t k = 0; k < NOPTS; k++)
                if (opts[k].short_name && opts[k].short_name == a[1])
                    o = &opts[k];
            snprintf(name, sizeof name, "%s", o ? o->key : a + 1);
            if (o && a[2])
                value = a + 2;
        }
        if (!o) {
            ws_error_set(err, WS_ECONFIG, "unknown option \"%s\"", a);
            ws_error_hint(err, "see \"walship --help\" for the options");
            return -1;
        }
        if (o->flags & OPT_SECRET) {
            ws_error_set(err, WS_ECONFIG,
                         "--%s cannot be given on the command line, where every user of the "
                         "machine can read it",
                         o->key);
            ws_error_hint(err, "put it in the config file (mode 0600) or the environment");
            return -1;
        }
        if (o->flags & OPT_FLAG) {
            if (value)
                return ws_error_set(err, WS_ECONFIG, "option --%s takes no value", o->key);
            add_entry(c, name, "on", a, SRC_FLAG);
            continue;
        }
        if (!value) {
            if (i + 1 >= argc)
                return ws_error_set(err, WS_ECONFIG, "option %s needs a value (%s)", a,
                                    o->value_name);
            value = argv[++i];
        }
        char flag[80];
        snprintf(flag, sizeof flag, "--%s", name);
        if (strcmp(name, "repo") == 0) {
            if (repo_flags == WS_CONFIG_MAX_REPOS)
                return ws_error_set(err, WS_ECONFIG, "at most %d repositories",
                                    WS_CONFIG_MAX_REPOS);
            snprintf(name, sizeof name, "repo%d", ++repo_flags);
        }
        add_entry(c, name, value, alias ? a : flag, SRC_FLAG);
        c->e[c->n - 1].alias = alias;
    }
    return 0;
}

static void parse_env(ws_config *c)
{
    for (char **ep = environ; *ep; ep++) {
        const char *kv = *ep;
        if (strncmp(kv, "WALSHIP_", 8) != 0)
            continue;
        const char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        char key[80], var[96];
        size_t n = (size_t)(eq - (kv + 8));
        if (n == 0 || n >= sizeof key)
            continue;
        for (size_t i = 0; i < n; i++)
            key[i] = kv[8 + i] == '_' ? '-' : (char)tolower((unsigned char)kv[8 + i]);
        key[n] = '\0';
        snprintf(var, sizeof var, "%.*s", (int)(eq - kv), kv);
        if (strcmp(key, "repo") == 0)
            strcpy(key, "repo1");
        const char *alias = rename_alias(key, sizeof key);
        int idx;
        const opt_def *o = resolve_key(key, &idx);
        /* Other WALSHIP_* variables (test harness settings) are not ours to judge. */
        if (!o || (o->flags & OPT_CLI_ONLY))
            continue;
        add_entry(c, key, eq + 1, var, SRC_ENV);
        c->e[c->n - 1].alias = alias;
    }
    static const struct {
        const char *var, *key;
    } aws[] = {{"AWS_ACCESS_KEY_ID", "s3-key"},
               {"AWS_SECRET_ACCESS_KEY", "s3-key-secret"},
               {"AWS_SESSION_TOKEN", "s3-token"}};
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(aws[i].var);
        if (v && *v && !lookup(c, aws[i].key))
            add_entry(c, aws[i].key, v, aws[i].var, SRC_ENV);
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Keys are lower-case words joined by '-' ("repo2-s3-key-secret"). Only text of that shape is
 * ever quoted back from a config file: a malformed line may hold a secret anywhere. */
static int key_shaped(const char *s, size_t n)
{
    if (n == 0 || n > 48)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

/* A line that does not parse: when it starts with a known key ("s3-key-secret: x",
 * "repo /x"), name the key so the operator finds the line; never show the rest. */
static int malformed_line(const char *path, int lineno, const char *s, const char *what,
                          ws_error *err)
{
    size_t n = strcspn(s, " \t:=");
    char word[64] = "";
    int idx;
    if (key_shaped(s, n)) {
        snprintf(word, sizeof word, "%.*s", (int)n, s);
        if (strcmp(word, "repo") != 0 && !resolve_key(word, &idx))
            word[0] = '\0';
    }
    ws_error_set(err, WS_ECONFIG, "%s:%d: %s%s%s%s (the line is not shown: it may hold a secret)",
                 path, lineno, what, word[0] ? " for key \"" : "", word, word[0] ? "\"" : "");
    ws_error_hint(err, "write it as \"%s = VALUE\"; keys are lower-case words joined by \"-\"",
                  word[0] ? word : "key");
    return -1;
}

/* What the kernel calls the file, for "is not a regular file (a FIFO)". */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a plain file";
}

/* Opens the config file without blocking on a FIFO or a device, and only if it is a regular
 * file: "-c /dev/zero" or a FIFO must fail at once, not read forever or hang. */
static FILE *open_config(const char *path, struct stat *st, ws_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        ws_error_errno(err, WS_ECONFIG, errno, "cannot read config file %s", path);
        return NULL;
    }
    if (fstat(fd, st) < 0) {
        ws_error_errno(err, WS_ECONFIG, errno, "cannot stat config file %s", path);
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st->st_mode)) {
        ws_error_set(err, WS_ECONFIG, "config file %s is not a regular file (it is %s)", path,
                     file_kind(st->st_mode));
        ws_error_hint(err, "-c, --config and WALSHIP_CONFIG name a walship.conf file");
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        ws_error_errno(err, WS_ECONFIG, errno, "cannot read config file %s", path);
        close(fd);
    }
    return f;
}

/* True if the value of this key is a credential (or may carry one: a conninfo's password=). */
static int holds_secret(const opt_def *o, const char *value)
{
    if (o->flags & OPT_SECRET)
        return 1;
    return strcmp(o->key, "pgconn") == 0 && strstr(value, "password") != NULL;
}

/* A file that holds a secret must not be open to other users. As PostgreSQL does for its
 * ssl_key_file: no group or other access at all, except group read of a root-owned file
 * (root:postgres 0640 is a deliberate grant by root). */
static int check_secret_mode(const char *path, const struct stat *st, const char *key, int lineno,
                             ws_error *err)
{
    mode_t m = st->st_mode & 07777;
    int ok =
        st->st_uid == 0 ? (m & (S_IWGRP | S_IXGRP | S_IRWXO)) == 0 : (m & (S_IRWXG | S_IRWXO)) == 0;
    if (ok)
        return 0;
    ws_error_set(err, WS_ECONFIG,
                 "config file %s holds a secret (%s, line %d) but its mode is %04o: other "
                 "users of the machine can read it",
                 path, key, lineno, (unsigned)m);
    ws_error_hint(err,
                  "chmod 600 %s (owned by the user walship runs as), or pass the secret in "
                  "the environment",
                  path);
    return -1;
}

/* One "key = value" line (s trimmed, not a comment) of the config file. */
static int parse_line(ws_config *c, const char *path, int lineno, char *s, const char **secret_key,
                      int *secret_line, ws_error *err)
{
    char *eq = strchr(s, '=');
    if (!eq)
        return malformed_line(path, lineno, s, "expected \"key = value\"", err);
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    size_t vl = strlen(value);
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
        value[vl - 1] = '\0';
        value++;
    }
    if (!key_shaped(key, strlen(key)))
        return malformed_line(path, lineno, key, "malformed key before \"=\"", err);
    char keybuf[80];
    snprintf(keybuf, sizeof keybuf, "%s", strcmp(key, "repo") == 0 ? "repo1" : key);
    const char *alias = rename_alias(keybuf, sizeof keybuf);
    int idx;
    const opt_def *o = resolve_key(keybuf, &idx);
    if (!o || (o->flags & OPT_CLI_ONLY)) {
        ws_error_set(err, WS_ECONFIG, "%s:%d: unknown key \"%s\"", path, lineno, key);
        ws_error_hint(err, "see conf/walship.conf.sample or \"walship --help\" for the keys");
        return -1;
    }
    for (int i = 0; i < c->n; i++)
        if (c->e[i].src == SRC_FILE && strcmp(c->e[i].key, keybuf) == 0) {
            ws_error_set(err, WS_ECONFIG, "%s:%d: \"%s\" is set twice, on lines %d and %d", path,
                         lineno, key, c->e[i].line, lineno);
            ws_error_hint(err, "keep one of the two lines");
            return -1;
        }
    if (!*secret_key && holds_secret(o, value)) {
        *secret_key = o->key;
        *secret_line = lineno;
    }
    char where[512];
    snprintf(where, sizeof where, "%s:%d", path, lineno);
    add_entry(c, keybuf, value, where, SRC_FILE);
    c->e[c->n - 1].line = lineno;
    c->e[c->n - 1].alias = alias;
    return 0;
}

/* Lines longer than this are refused (no key or value needs more). */
#define LINE_MAX_LEN 4095

static int parse_file(ws_config *c, const char *path, ws_error *err)
{
    struct stat st;
    FILE *f = open_config(path, &st, err);
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0, secret_line = 0;
    const char *secret_key = NULL;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > LINE_MAX_LEN) {
            rc = ws_error_set(err, WS_ECONFIG, "%s:%d: line too long (more than %d bytes)", path,
                              lineno, LINE_MAX_LEN);
        } else if (strlen(line) != (size_t)len) {
            rc = ws_error_set(err, WS_ECONFIG, "%s:%d: the line contains a NUL byte", path, lineno);
            ws_error_hint(err, "a config file is text: \"key = value\" lines");
        } else {
            char *s = trim(line);
            if (*s && *s != '#')
                rc = parse_line(c, path, lineno, s, &secret_key, &secret_line, err);
        }
    }
    int rerr = ferror(f);
    free(line);
    fclose(f);
    if (rc < 0)
        return -1;
    if (rerr)
        return ws_error_set(err, WS_ECONFIG, "error reading config file %s", path);
    if (secret_key)
        return check_secret_mode(path, &st, secret_key, secret_line, err);
    return 0;
}

/* URLs equal but for file:// and trailing slashes. */
static int same_url(const char *a, const char *b)
{
    if (strncmp(a, "file://", 7) == 0)
        a += 7;
    if (strncmp(b, "file://", 7) == 0)
        b += 7;
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    while (lb > 1 && b[lb - 1] == '/')
        lb--;
    return la == lb && strncmp(a, b, la) == 0;
}

/* The repoK of a source below repo_src (K 1-based) whose URL matches, or that --repo K names;
 * fills repo_url and repo_settings. */
static int match_repos(ws_config *c, ws_error *err)
{
    for (int r = 0; r < c->nrepos; r++) {
        const entry *own = NULL;
        for (int i = 0; i < c->n; i++)
            if (c->e[i].src == c->repo_src && strcmp(c->e[i].key, c->repo_keys[r]) == 0)
                own = &c->e[i];
        if (!own) /* cannot happen: repo_keys come from repo_src's entries */
            return ws_error_set(err, WS_EINTERNAL, "repository %d has no URL", r + 1);
        c->repo_url[r] = own->value;
        c->repo_settings[r] = r + 1;
        const char *v = own->value;
        int number = v[0] >= '1' && v[0] <= '9' && v[1] == '\0';
        for (int i = 0; i < c->n; i++) {
            const char *rest;
            const entry *e = &c->e[i];
            if (e->src <= c->repo_src || !split_repo_key(e->key, &rest) || strcmp(rest, "repo"))
                continue;
            int k = e->key[4] ? atoi(e->key + 4) : 1;
            if (number ? k == v[0] - '0' : same_url(e->value, v)) {
                c->repo_url[r] = e->value;
                c->repo_settings[r] = k;
                number = 0;
                break;
            }
        }
        if (number)
            return ws_error_set(err, WS_ECONFIG, "%s = %s: no repo%s is configured", own->where, v,
                                v);
    }
    return 0;
}

static int pick_repos(ws_config *c, ws_error *err)
{
    c->repo_src = -1;
    c->nrepos = 0;
    for (int src = 0; src < SRC_N && c->repo_src < 0; src++)
        for (int i = 0; i < c->n; i++) {
            const char *rest;
            if (c->e[i].src == src && split_repo_key(c->e[i].key, &rest) &&
                strcmp(rest, "repo") == 0) {
                c->repo_src = src;
                break;
            }
        }
    if (c->repo_src < 0)
        return 0;
    /* copy (issue 19): --repo N (a number, repeatable) picks configured repositories instead
     * of naming new ones; a repository URL is never a bare number */
    int sel[WS_CONFIG_MAX_REPOS], nsel = 0, urls = 0;
    for (int i = 0; c->repo_src == SRC_FLAG && i < c->n; i++) {
        const char *rest, *v = c->e[i].value;
        if (c->e[i].src != SRC_FLAG || !split_repo_key(c->e[i].key, &rest) ||
            strcmp(rest, "repo") != 0)
            continue;
        if (v[0] >= '1' && v[0] <= '9' && v[1] == '\0')
            sel[nsel++] = v[0] - '0';
        else
            urls++;
    }
    if (nsel && urls)
        return ws_error_set(err, WS_ECONFIG,
                            "--repo takes either repository numbers (picking configured ones) "
                            "or URLs, not both");
    if (nsel) {
        for (int i = 0; i < c->n; i++) /* kept for the message only: not a repository URL */
            if (c->e[i].src == SRC_FLAG && strncmp(c->e[i].key, "repo", 4) == 0 &&
                strchr(c->e[i].key, '-') == NULL) {
                free(c->e[i].key);
                c->e[i].key = xstrdup("repo-number");
            }
        if (pick_repos(c, err) < 0)
            return -1;
        char all[WS_CONFIG_MAX_REPOS][16];
        const char *all_url[WS_CONFIG_MAX_REPOS];
        int all_settings[WS_CONFIG_MAX_REPOS];
        int nall = c->nrepos;
        memcpy(all, c->repo_keys, sizeof all);
        memcpy(all_url, c->repo_url, sizeof all_url);
        memcpy(all_settings, c->repo_settings, sizeof all_settings);
        c->nrepos = 0;
        for (int k = 0; k < nsel; k++) {
            if (sel[k] > nall)
                return ws_error_set(err, WS_ECONFIG, "--repo %d: %d repositor%s configured", sel[k],
                                    nall, nall == 1 ? "y is" : "ies are");
            for (int m = 0; m < k; m++)
                if (sel[m] == sel[k])
                    return ws_error_set(err, WS_ECONFIG, "--repo %d is given twice", sel[k]);
            c->repo_url[c->nrepos] = all_url[sel[k] - 1];
            c->repo_settings[c->nrepos] = all_settings[sel[k] - 1];
            snprintf(c->repo_keys[c->nrepos++], sizeof c->repo_keys[0], "%s", all[sel[k] - 1]);
        }
        return 0;
    }
    int last = 0;
    for (int idx = 1; idx <= WS_CONFIG_MAX_REPOS; idx++) {
        char key[16];
        snprintf(key, sizeof key, "repo%d", idx);
        int found = 0;
        for (int i = 0; i < c->n; i++)
            if (c->e[i].src == c->repo_src && strcmp(c->e[i].key, key) == 0)
                found = 1;
        if (found) {
            if (last != idx - 1)
                return ws_error_set(err, WS_ECONFIG, "%s is set but repo%d is not", key, idx - 1);
            last = idx;
            snprintf(c->repo_keys[c->nrepos++], sizeof c->repo_keys[0], "%s", key);
        }
    }
    return match_repos(c, err);
}

int ws_config_load(int argc, char **argv, ws_config **out, ws_error *err)
{
    ws_config *c = calloc(1, sizeof *c);
    if (!c)
        return ws_error_oom(err);
    *out = c;
    if (parse_args(c, argc, argv, err) < 0)
        return -1;
    parse_env(c);
    const entry *cf = lookup(c, "config");
    const char *path = cf ? cf->value : getenv("WALSHIP_CONFIG");
    if (!(path && *path) && access(WS_CONFIG_DEFAULT_FILE, F_OK) == 0)
        path = WS_CONFIG_DEFAULT_FILE;
    if (path && *path) {
        c->file = xstrdup(path);
        if (parse_file(c, path, err) < 0)
            return -1;
    }
    return pick_repos(c, err);
}

void ws_config_free(ws_config *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].key);
        free(c->e[i].value);
        free(c->e[i].where);
    }
    free(c->e);
    free(c->file);
    free(c->command);
    free(c->args);
    free(c);
}

const char *ws_config_command(const ws_config *c)
{
    return c->command;
}

int ws_config_nargs(const ws_config *c)
{
    return c->nargs;
}

const char *ws_config_arg(const ws_config *c, int i)
{
    return i >= 0 && i < c->nargs ? c->args[i] : NULL;
}

int ws_config_flag(const ws_config *c, const char *key)
{
    const entry *e = lookup(c, key);
    return e && e->src == SRC_FLAG;
}

const char *ws_config_get(const ws_config *c, const char *key)
{
    const entry *e = lookup(c, key);
    if (e)
        return e->value;
    const opt_def *o = find_opt(key);
    return o ? o->def : NULL;
}

const char *ws_config_source(const ws_config *c, const char *key)
{
    const entry *e = lookup(c, key);
    return e ? e->where : "default";
}

static int bad_value(const ws_config *c, const char *key, const char *what, ws_error *err)
{
    ws_error_set(err, WS_ECONFIG, "%s = \"%s\" (from %s) is not %s", key, ws_config_get(c, key),
                 ws_config_source(c, key), what);
    return -1;
}

int ws_config_get_bool(const ws_config *c, const char *key, int *out, ws_error *err)
{
    const char *v = ws_config_get(c, key);
    static const char *yes[] = {"on", "true", "yes", "1"}, *no[] = {"off", "false", "no", "0"};
    for (int i = 0; i < 4; i++) {
        if (v && strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (v && strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return bad_value(c, key, "a boolean (on/off)", err);
}

int ws_config_get_long(const ws_config *c, const char *key, long min, long max, long *out,
                       ws_error *err)
{
    const char *v = ws_config_get(c, key);
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || n < min || n > max) {
        char what[96];
        snprintf(what, sizeof what, "a whole number from %ld to %ld", min, max);
        return bad_value(c, key, what, err);
    }
    *out = n;
    return 0;
}

static int parse_size(const char *v, uint64_t *out)
{
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || end == v || errno || !isfinite(d) || d <= 0)
        return -1;
    while (*end == ' ')
        end++;
    static const struct {
        const char *unit;
        double mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"kB", 1024.0},
                 {"KiB", 1024.0},
                 {"MB", 1024.0 * 1024},
                 {"MiB", 1024.0 * 1024},
                 {"GB", 1024.0 * 1024 * 1024},
                 {"GiB", 1024.0 * 1024 * 1024},
                 {"TB", 1024.0 * 1024 * 1024 * 1024},
                 {"TiB", 1024.0 * 1024 * 1024 * 1024}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(end, units[i].unit) == 0) {
            d *= units[i].mul;
            if (d >= 18446744073709551615.0)
                return -1;
            *out = (uint64_t)d;
            return 0;
        }
    return -1;
}

int ws_config_get_size(const ws_config *c, const char *key, uint64_t min, uint64_t *out,
                       ws_error *err)
{
    const char *v = ws_config_get(c, key);
    if (v && strcasecmp(v, "off") == 0) {
        *out = 0;
        return 0;
    }
    uint64_t n;
    if (parse_size(v, &n) < 0 || n < min) {
        char what[96];
        snprintf(what, sizeof what, "a size of at least %" PRIu64 " bytes (4GB, 512MB) or off",
                 min);
        return bad_value(c, key, what, err);
    }
    *out = n;
    return 0;
}

static int parse_seconds(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (!v || end == v || errno || !isfinite(d) || d < 0)
        return -1;
    if (!*end || strcmp(end, "s") == 0)
        *out = d;
    else if (strcmp(end, "ms") == 0)
        *out = d / 1000;
    else if (strcmp(end, "min") == 0)
        *out = d * 60;
    else if (strcmp(end, "h") == 0)
        *out = d * 3600;
    else
        return -1;
    return 0;
}

int ws_config_get_seconds(const ws_config *c, const char *key, double *out, ws_error *err)
{
    if (parse_seconds(ws_config_get(c, key), out) < 0)
        return bad_value(c, key, "a duration (30, 30s, 500ms, 2min, 1h)", err);
    return 0;
}

int ws_config_repo_count(const ws_config *c)
{
    return c->nrepos;
}

const char *ws_config_repo_get(const ws_config *c, int repo, const char *key)
{
    char k[96];
    snprintf(k, sizeof k, "repo%d-%s",
             repo >= 0 && repo < c->nrepos ? c->repo_settings[repo] : repo + 1, key);
    const entry *e = lookup(c, k);
    return e ? e->value : ws_config_get(c, key);
}

int ws_config_storage(const ws_config *c, int repo, ws_storage_config *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    if (repo < 0 || repo >= c->nrepos)
        return ws_error_set(err, WS_ECONFIG, "no repository %d configured", repo + 1);
    out->url = c->repo_url[repo];
    out->s3_endpoint = ws_config_repo_get(c, repo, "s3-endpoint");
    out->s3_region = ws_config_repo_get(c, repo, "s3-region");
    out->s3_uri_style = ws_config_repo_get(c, repo, "s3-uri-style");
    out->s3_ca_file = ws_config_repo_get(c, repo, "s3-ca-file");
    out->s3_storage_class = ws_config_repo_get(c, repo, "s3-storage-class");
    out->s3_sse = ws_config_repo_get(c, repo, "s3-sse");
    out->s3_sse_kms_key_id = ws_config_repo_get(c, repo, "s3-sse-kms-key-id");
    out->s3_key = ws_config_repo_get(c, repo, "s3-key");
    out->s3_key_secret = ws_config_repo_get(c, repo, "s3-key-secret");
    out->s3_token = ws_config_repo_get(c, repo, "s3-token");
    const char *v = ws_config_repo_get(c, repo, "s3-verify-tls");
    if (strcasecmp(v, "on") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
        strcmp(v, "1") == 0)
        out->s3_verify_tls = 1;
    else if (strcasecmp(v, "off") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ||
             strcmp(v, "0") == 0)
        out->s3_verify_tls = 0;
    else
        return ws_error_set(err, WS_ECONFIG, "s3-verify-tls = \"%s\" is not a boolean (on/off)", v);
    if (parse_seconds(ws_config_repo_get(c, repo, "io-timeout"), &out->timeout) < 0)
        return ws_error_set(err, WS_ECONFIG, "io-timeout = \"%s\" is not a duration",
                            ws_config_repo_get(c, repo, "io-timeout"));
    const char *style = out->s3_uri_style;
    if (strcmp(style, "host") != 0 && strcmp(style, "path") != 0)
        return ws_error_set(err, WS_ECONFIG, "s3-uri-style = \"%s\" is not host or path", style);
    return 0;
}

int ws_config_key_secret(const char *key)
{
    int idx;
    const opt_def *o = resolve_key(key, &idx);
    return o && (o->flags & OPT_SECRET);
}

void ws_config_each_option(ws_config_doc_fn fn, void *arg)
{
    for (size_t i = 0; i < NOPTS; i++)
        fn(arg, opts[i].key, opts[i].value_name, opts[i].def, opts[i].help);
}

const char *ws_config_file(const ws_config *c)
{
    return c->file;
}

void ws_config_each_explicit(const ws_config *c, ws_config_setting_fn fn, void *arg)
{
    for (int src = SRC_ENV; src >= SRC_FLAG; src--) {
        /* the repositories first and in order, and only from the source that supplies them */
        if (src == c->repo_src)
            for (int r = 0; r < c->nrepos; r++)
                fn(arg, "repo", ws_config_get(c, c->repo_keys[r]), 0);
        for (int i = 0; i < c->n; i++) {
            const entry *e = &c->e[i];
            int idx;
            const char *rest;
            const opt_def *o = resolve_key(e->key, &idx);
            if (e->src != src || !o || (o->flags & OPT_CLI_ONLY))
                continue;
            if (split_repo_key(e->key, &rest) && strcmp(rest, "repo") == 0)
                continue;
            fn(arg, e->key, e->value, (o->flags & OPT_SECRET) != 0);
        }
    }
}
