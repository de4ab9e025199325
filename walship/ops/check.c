/*
 * check.c — `walship check [--pgconn CONNINFO] [--nagios] [--json]`: is the running cluster
 * archiving into every repository now? One line per check, OK / WARNING / CRITICAL with its
 * figure:
 *
 *   connection      the server answers (PG* environment variables apply)
 *   archive_mode    on or always
 *   archive_command archive_library = walship, or an archive_command that runs walship push
 *                   (naming this configuration file when it is not the default one)
 *   identity        every repository's walship.repo is readable and names the cluster's system
 *                   identifier
 *   archiver        pg_stat_archiver has no failure newer than its last success
 *   switch          one WAL record (pg_logical_emit_message), pg_switch_wal(), then that
 *                   segment is stored in every repository within check-timeout: archiving
 *                   works end to end, now (skipped on a standby)
 *   archive_lag     the newest archived segment of the server's timeline is within
 *                   check-archive-max-lag bytes of the server's current WAL
 *   backup_age      the newest complete backup is younger than check-backup-max-age
 *   backup_size     (WARNING) the newest backup's size is within check-backup-size-change of
 *                   the median of the others (off by default)
 *
 * Exit 0 all OK, 1 any WARNING or CRITICAL, 2 usage; with --nagios the monitoring plugin
 * convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage).
 */
#include "walship/repo/keys.h"
#include "walship/repo/catalog.h"
#include "walship/repo/catchup.h"
#include "walship/clock.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/open.h"
#include "walship/storage/storage.h"
#include "walship/log.h"
#include "walship/ops/ops.h"
#include "walship/pq_dl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { ST_OK = 0, ST_WARNING = 1, ST_CRITICAL = 2 } status;

static const char *status_name(status s)
{
    return s == ST_OK ? "OK" : s == ST_WARNING ? "WARNING" : "CRITICAL";
}

#define MAX_CHECKS 16

typedef struct check_line {
    char name[32];
    status st;
    char text[1024];
} check_line;

typedef struct checks {
    check_line v[MAX_CHECKS];
    int n;
    status worst;
} checks;

static void add(checks *c, const char *name, status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(checks *c, const char *name, status st, const char *fmt, ...)
{
    if (c->n >= MAX_CHECKS)
        return;
    check_line *l = &c->v[c->n++];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->st = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->text, sizeof l->text, fmt, ap);
    va_end(ap);
    if (st > c->worst)
        c->worst = st;
}

/* ---- the server ---- */

static PGconn *connect_db(const char *pgconn, ws_error *err)
{
    const char *keys[3] = {"dbname", "fallback_application_name", NULL};
    const char *vals[3] = {pgconn && *pgconn ? pgconn : "", "walship check", NULL};
    PGconn *c = pgconn && *pgconn ? PQconnectdbParams(keys, vals, 1)
                                  : PQconnectdbParams(keys + 1, vals + 1, 0);
    if (!c) {
        ws_error_oom(err);
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        size_t l = strlen(msg);
        while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
            msg[--l] = '\0';
        for (char *p = msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
        /* libpq's parse errors quote the connection string, which may hold a password */
        if (strstr(msg, "connection info string") || strstr(msg, "URI") ||
            strstr(msg, "percent-encoded"))
            ws_error_set(err, WS_ECONFIG,
                         "pgconn is not a valid connection string or URI (libpq's message is not "
                         "shown: it quotes the string, which may hold a password)");
        else
            ws_error_set(err, WS_ETRANSIENT, "cannot connect to PostgreSQL: %s", msg);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* The first value of a one-row query into out ("" for NULL); -1 with the server's message. */
static int query1(PGconn *c, const char *sql, char *out, size_t len, char *why, size_t wlen)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
        snprintf(why, wlen, "%s", PQresultErrorMessage(res));
        size_t l = strlen(why);
        while (l && why[l - 1] == '\n')
            why[--l] = '\0';
        PQclear(res);
        return -1;
    }
    snprintf(out, len, "%s", PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

static void check_archiving_settings(checks *c, PGconn *conn, const ws_config *cfg)
{
    char v[4096], why[512];
    if (query1(conn, "SHOW archive_mode", v, sizeof v, why, sizeof why) < 0)
        add(c, "archive_mode", ST_CRITICAL, "cannot read archive_mode: %s", why);
    else if (strcmp(v, "on") != 0 && strcmp(v, "always") != 0)
        add(c, "archive_mode", ST_CRITICAL, "archive_mode = %s: the server archives nothing", v);
    else
        add(c, "archive_mode", ST_OK, "archive_mode = %s", v);

    char lib[256] = "";
    if (PQserverVersion(conn) >= 150000)
        query1(conn, "SHOW archive_library", lib, sizeof lib, why, sizeof why);
    if (lib[0]) {
        if (strcmp(lib, "walship") == 0)
            add(c, "archive_command", ST_OK, "archive_library = walship");
        else
            add(c, "archive_command", ST_CRITICAL,
                "archive_library = %s: not walship (archive_command is ignored)", lib);
        return;
    }
    if (query1(conn, "SHOW archive_command", v, sizeof v, why, sizeof why) < 0) {
        add(c, "archive_command", ST_CRITICAL, "cannot read archive_command: %s", why);
        return;
    }
    const char *file = ws_config_file(cfg);
    if (!strstr(v, "walship") || !strstr(v, "push"))
        add(c, "archive_command", ST_CRITICAL, "archive_command = '%s' does not run walship push",
            v);
    else if (!strstr(v, "%p"))
        add(c, "archive_command", ST_CRITICAL, "archive_command = '%s' does not pass %%p", v);
    else if (file && strcmp(file, WS_CONFIG_DEFAULT_FILE) != 0 && !strstr(v, file))
        add(c, "archive_command", ST_WARNING,
            "archive_command = '%s' runs walship push, but not with this configuration (%s)", v,
            file);
    else
        add(c, "archive_command", ST_OK, "archive_command = '%s'", v);
}

static void check_archiver(checks *c, PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT failed_count, coalesce(last_failed_wal, ''), "
                                 "coalesce(last_failed_time::text, ''), "
                                 "coalesce(last_archived_wal, ''), "
                                 "coalesce(last_failed_time > coalesce(last_archived_time, "
                                 "'-infinity'), false) FROM pg_stat_archiver");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        add(c, "archiver", ST_CRITICAL, "cannot read pg_stat_archiver: %s",
            PQresultErrorMessage(res));
        PQclear(res);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 4), "t") == 0)
        add(c, "archiver", ST_CRITICAL,
            "pg_stat_archiver: %s failure(s), the last (%s at %s) newer than the last success "
            "(%s): see the server log for walship's message",
            PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
            PQgetvalue(res, 0, 3)[0] ? PQgetvalue(res, 0, 3) : "none");
    else
        add(c, "archiver", ST_OK, "pg_stat_archiver: last archived %s, %s failure(s) before it",
            PQgetvalue(res, 0, 3)[0] ? PQgetvalue(res, 0, 3) : "nothing yet",
            PQgetvalue(res, 0, 0));
    PQclear(res);
}

/* ---- the repositories ---- */

typedef struct newest_cb_arg {
    char prefix[32]; /* TTTTTTTT of the server's timeline */
    char newest[WS_WAL_NAME_MAX];
} newest_cb_arg;

static int newest_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    newest_cb_arg *a = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    if (base && ws_wal_parse_name(base + 1, &n, &e) == 0 && n.kind == WS_WAL_SEGMENT &&
        strncmp(n.name, a->prefix, 8) == 0 && strcmp(n.name, a->newest) > 0)
        snprintf(a->newest, sizeof a->newest, "%s", n.name);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* check-backup-size-change: the newest backup's size against the median of the others. */
static void check_size_change(checks *c, const ws_catalog *cat, double pct)
{
    const ws_manifest_info *newest = &cat->backups[0];
    for (int i = 1; i < cat->n; i++)
        if (cat->backups[i].stop_time >= newest->stop_time)
            newest = &cat->backups[i];
    uint64_t *v = calloc((size_t)cat->n, sizeof *v);
    int n = 0;
    if (!v)
        return;
    for (int i = 0; i < cat->n; i++)
        if (&cat->backups[i] != newest)
            v[n++] = cat->backups[i].original_size;
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    double median = n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
    free(v);
    if (median <= 0)
        return;
    double change = ((double)newest->original_size - median) / median * 100.0;
    double mag = change < 0 ? -change : change;
    add(c, "backup_size", mag > pct ? ST_WARNING : ST_OK,
        "newest backup %s is %.1f MiB, %+.0f%% against the median of the %d before it "
        "(%.1f MiB; limit %.0f%%)",
        newest->id, (double)newest->original_size / 1048576.0, change, n, median / 1048576.0, pct);
}

/* "50%" or "50" → 50; "off" / "0" → 0; -1 if malformed. */
static int parse_pct(const char *s, double *out)
{
    if (!s || strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s || (*end && strcmp(end, "%") != 0) || v < 0)
        return -1;
    *out = v;
    return 0;
}

int ws_cmd_check(const ws_config *cfg)
{
    int nagios = ws_config_flag(cfg, "nagios");
    int usage_rc = nagios ? 3 : WS_EXIT_USAGE;
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0) {
        ws_log_error("usage: walship check [--pgconn CONNINFO] [--nagios] [--json]");
        return usage_rc;
    }
    double timeout, max_age;
    uint64_t max_lag, catchup_max;
    int catchup[WS_CONFIG_MAX_REPOS], source = 0;
    if (ws_config_get_seconds(cfg, "check-timeout", &timeout, &err) < 0 ||
        ws_config_get_seconds(cfg, "check-backup-max-age", &max_age, &err) < 0 ||
        ws_config_get_size(cfg, "check-archive-max-lag", 0, &max_lag, &err) < 0 ||
        ws_config_get_size(cfg, "check-catch-up-max-lag", 0, &catchup_max, &err) < 0 ||
        (source = ws_repo_modes(cfg, catchup, &err)) < 0 || ws_ops_config_check(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return usage_rc;
    }
    double size_change;
    if (parse_pct(ws_config_get(cfg, "check-backup-size-change"), &size_change) < 0) {
        ws_log_error(
            "check-backup-size-change = \"%s\" (from %s) is not a percentage (50%%) or off",
            ws_config_get(cfg, "check-backup-size-change"),
            ws_config_source(cfg, "check-backup-size-change"));
        return usage_rc;
    }
    ws_repo **repos = NULL;
    int nrepos = 0;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? usage_rc : (nagios ? 2 : WS_EXIT_FAIL);
    }
    if (ws_pq_load(&err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        ws_cmd_close_repos(repos, nrepos);
        return nagios ? 3 : WS_EXIT_FAIL;
    }
    double w0 = ws_ops_wallclock();
    checks C;
    memset(&C, 0, sizeof C);
    PGconn *conn = connect_db(ws_config_get(cfg, "pgconn"), &err);
    if (!conn && err.code == WS_ECONFIG) {
        ws_log_err(WS_LOG_ERROR, &err);
        ws_cmd_close_repos(repos, nrepos);
        return usage_rc;
    }
    uint64_t sysid = 0;
    uint32_t tli = 0;
    uint64_t cur_lsn = 0;
    int standby = 0;
    char v[256], why[512];
    if (!conn) {
        add(&C, "connection", ST_CRITICAL, "%s", err.msg);
    } else {
        add(&C, "connection", ST_OK, "PostgreSQL %d", PQserverVersion(conn) / 10000);
        check_archiving_settings(&C, conn, cfg);
        if (query1(conn, "SELECT system_identifier FROM pg_control_system()", v, sizeof v, why,
                   sizeof why) == 0)
            sysid = strtoull(v, NULL, 10);
        if (query1(conn, "SELECT pg_is_in_recovery()", v, sizeof v, why, sizeof why) == 0)
            standby = strcmp(v, "t") == 0;
        if (!standby && query1(conn, "SELECT timeline_id FROM pg_control_checkpoint()", v, sizeof v,
                               why, sizeof why) == 0)
            tli = (uint32_t)strtoul(v, NULL, 10);
    }
    /* identity of every repository */
    ws_repo_identity *ids = calloc((size_t)nrepos, sizeof *ids);
    int *up = calloc((size_t)nrepos, sizeof *up);
    if (!ids || !up) {
        ws_log_error("out of memory");
        free(ids);
        free(up);
        ws_cmd_close_repos(repos, nrepos);
        return nagios ? 3 : WS_EXIT_FAIL;
    }
    for (int i = 0; i < nrepos; i++) {
        ws_error e;
        ws_error_clear(&e);
        const char *d = ws_repo_describe(repos[i]);
        if (ws_repo_identity_require(repos[i], &ids[i], &e) < 0)
            add(&C, "identity", ST_CRITICAL, "%s: %s", d, e.msg);
        else if (sysid && ids[i].sysid != sysid)
            add(&C, "identity", ST_CRITICAL,
                "%s belongs to database system %" PRIu64 ", the server is %" PRIu64, d,
                ids[i].sysid, sysid);
        else {
            up[i] = 1;
            add(&C, "identity", ST_OK, "%s: database system %" PRIu64, d, ids[i].sysid);
        }
    }
    /* end to end: switch, then wait until every repository holds the segment */
    if (conn && standby)
        add(&C, "switch", ST_OK,
            "skipped: the server is a standby (pg_switch_wal() is not "
            "possible in recovery)");
    else if (conn) {
        char seg[64];
        /* a switch with no WAL since the last one names a segment archived long ago: one
         * record first, so that the segment is a new one (superuser by default; without the
         * right the check still runs, on whatever the server wrote) */
        PQclear(PQexec(conn, "SELECT pg_logical_emit_message(false, 'walship', 'check')"));
        if (query1(conn, "SELECT pg_walfile_name(pg_switch_wal())", seg, sizeof seg, why,
                   sizeof why) < 0)
            add(&C, "switch", ST_CRITICAL, "pg_switch_wal() failed: %s", why);
        else {
            ws_wal_name n;
            char key[128];
            ws_error e;
            if (ws_wal_parse_name(seg, &n, &e) < 0 || ws_repo_wal_key(&n, key, sizeof key) < 0)
                add(&C, "switch", ST_CRITICAL, "the server named segment \"%s\"", seg);
            else {
                double t0 = ws_now(), deadline = t0 + timeout;
                int *have = calloc((size_t)nrepos, sizeof *have);
                int left = nrepos, nsync = nrepos;
                /* catch-up repositories are not waited for: catch_up_lag below */
                for (int i = 0; have && i < nrepos && i < WS_CONFIG_MAX_REPOS; i++)
                    if (catchup[i])
                        have[i] = 1, left--, nsync--;
                while (have && left > 0) {
                    for (int i = 0; i < nrepos; i++) {
                        ws_objhdr h;
                        ws_error_clear(&e);
                        if (!have[i] && ws_repo_obj_header(repos[i], key, &h, &e) == 0) {
                            have[i] = 1;
                            left--;
                        }
                    }
                    if (left == 0 || ws_now() >= deadline)
                        break;
                    ws_sleep(0.25);
                }
                for (int i = 0; have && i < nrepos; i++)
                    if (!have[i])
                        add(&C, "switch", ST_CRITICAL,
                            "segment %s (pg_switch_wal) is not in %s after %.0f s "
                            "(check-timeout): archiving does not work now",
                            seg, ws_repo_describe(repos[i]), timeout);
                if (have && left == 0)
                    add(&C, "switch", ST_OK,
                        "segment %s (pg_switch_wal) in %d %srepository(ies) after %.1f s", seg,
                        nsync, nsync < nrepos ? "sync " : "", ws_now() - t0);
                free(have);
            }
        }
        if (query1(conn, "SELECT pg_current_wal_lsn()", v, sizeof v, why, sizeof why) == 0)
            ws_wal_parse_lsn(v, &cur_lsn);
    }
    /* after the switch: a failure to archive it shows there by now */
    if (conn)
        check_archiver(&C, conn);
    /* archive lag and backup age, from the first repository that is up */
    int first = -1;
    if (source < nrepos && up[source])
        first = source; /* the first sync repository */
    for (int i = 0; i < nrepos && first < 0; i++)
        if (up[i])
            first = i;
    if (first >= 0 && tli && cur_lsn && max_lag) {
        newest_cb_arg a;
        memset(&a, 0, sizeof a);
        snprintf(a.prefix, sizeof a.prefix, "%08X", tli);
        ws_error e;
        uint32_t seg_size = ids[first].seg_size;
        if (ws_storage_list(ws_repo_storage(repos[first]), WS_KEY_WAL_PREFIX, newest_cb, &a, &e) <
            0)
            add(&C, "archive_lag", ST_CRITICAL, "cannot list %s: %s",
                ws_repo_describe(repos[first]), e.msg);
        else if (!a.newest[0])
            add(&C, "archive_lag", ST_CRITICAL, "no segment of timeline %" PRIu32 " archived", tli);
        else {
            ws_wal_name n;
            uint64_t segno = 0;
            ws_wal_parse_name(a.newest, &n, &e);
            ws_wal_segno(&n, seg_size, &segno);
            uint64_t end = (segno + 1) * seg_size;
            uint64_t lag = cur_lsn > end ? cur_lsn - end : 0;
            add(&C, "archive_lag", lag > max_lag ? ST_CRITICAL : ST_OK,
                "newest archived segment %s, %.1f MiB behind the server's WAL (limit %.1f MiB)",
                a.newest, (double)lag / 1048576.0, (double)max_lag / 1048576.0);
        }
    }
    if (first >= 0 && max_age > 0) {
        ws_catalog cat;
        ws_error e;
        memset(&cat, 0, sizeof cat);
        if (ws_catalog_load(repos[first], &cat, &e) < 0)
            add(&C, "backup_age", ST_CRITICAL, "cannot list the backups: %s", e.msg);
        else if (cat.n == 0)
            add(&C, "backup_age", ST_CRITICAL, "no complete backup in %s",
                ws_repo_describe(repos[first]));
        else {
            const ws_manifest_info *b = &cat.backups[cat.n - 1];
            for (int i = 0; i < cat.n; i++)
                if (cat.backups[i].stop_time > b->stop_time)
                    b = &cat.backups[i];
            double age = (double)time(NULL) - (double)b->stop_time;
            add(&C, "backup_age", age > max_age ? ST_CRITICAL : ST_OK,
                "newest backup %s is %.0f s old (limit %.0f s)", b->id, age, max_age);
        }
        if (size_change > 0 && cat.n >= 2)
            check_size_change(&C, &cat, size_change);
        ws_catalog_free(&cat);
    }
    /* catch-up repositories: their backlog behind the first sync repository */
    for (int i = 0; i < nrepos && i < WS_CONFIG_MAX_REPOS; i++) {
        if (!catchup[i])
            continue;
        const char *d = ws_repo_describe(repos[i]);
        ws_catchup_backlog b;
        ws_error e;
        ws_error_clear(&e);
        if (!up[source]) {
            add(&C, "catch_up_lag", ST_CRITICAL, "%s: its backlog is unknown: %s is down", d,
                ws_repo_describe(repos[source]));
        } else if (ws_catchup_backlog_of(repos[source], repos[i], &b, &e) < 0) {
            add(&C, "catch_up_lag", ST_CRITICAL, "%s: cannot compute its backlog: %s", d, e.msg);
        } else {
            char h[32];
            ws_ops_human_bytes(b.bytes, h);
            add(&C, "catch_up_lag", catchup_max && b.bytes > catchup_max ? ST_CRITICAL : ST_OK,
                "%s: %d WAL file(s), %s behind %s (check-catch-up-max-lag %" PRIu64 " bytes)", d,
                b.n, h, ws_repo_describe(repos[source]), catchup_max);
            ws_catchup_backlog_free(&b);
        }
    }
    if (conn)
        PQfinish(conn);

    /* output */
    int json = ws_config_flag(cfg, "json");
    int ncrit = 0, nwarn = 0;
    for (int i = 0; i < C.n; i++)
        ncrit += C.v[i].st == ST_CRITICAL, nwarn += C.v[i].st == ST_WARNING;
    if (json) {
        printf("{\"ok\":%s,\"status\":\"%s\",\"checks\":[", C.worst == ST_OK ? "true" : "false",
               status_name(C.worst));
        for (int i = 0; i < C.n; i++) {
            printf("%s{\"name\":\"%s\",\"status\":\"%s\",\"text\":", i ? "," : "", C.v[i].name,
                   status_name(C.v[i].st));
            ws_ops_json_str(stdout, C.v[i].text);
            printf("}");
        }
        printf("]}\n");
    } else {
        if (nagios)
            printf("WALSHIP %s - %d check(s), %d critical, %d warning\n", status_name(C.worst), C.n,
                   ncrit, nwarn);
        for (int i = 0; i < C.n; i++)
            printf("%-8s %s: %s\n", status_name(C.v[i].st), C.v[i].name, C.v[i].text);
    }
    fflush(stdout);
    char summary[1200];
    const check_line *bad = NULL;
    for (int i = 0; i < C.n && !bad; i++)
        if (C.v[i].st != ST_OK)
            bad = &C.v[i];
    if (bad)
        snprintf(summary, sizeof summary, "walship check: %s %s: %s", status_name(bad->st),
                 bad->name, bad->text);
    else
        snprintf(summary, sizeof summary, "walship check: %d check(s) OK", C.n);
    char ncrit_s[16], nwarn_s[16];
    snprintf(ncrit_s, sizeof ncrit_s, "%d", ncrit);
    snprintf(nwarn_s, sizeof nwarn_s, "%d", nwarn);
    ws_ops_result res = {"check", C.worst == ST_OK, w0, ws_ops_wallclock(), summary, {{0}}, 0};
    ws_ops_field_add(&res, "critical", ncrit_s, 1);
    ws_ops_field_add(&res, "warning", nwarn_s, 1);
    ws_ops_report(cfg, &res);
    free(ids);
    free(up);
    ws_cmd_close_repos(repos, nrepos);
    if (nagios)
        return (int)C.worst;
    return C.worst == ST_OK ? WS_EXIT_OK : WS_EXIT_FAIL;
}
