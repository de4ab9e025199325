/*
 * expire.c — `walship expire [--dry-run] [--json] [--repo ...]`: applies the retention policy
 * of each repository (docs/retention.md), and collects the leftovers of dead writers.
 *
 * Per repository, nothing is removed unless all of these hold: the repository has its
 * identity (walship.repo), every backup manifest names the same cluster, the cluster that
 * pgconn names (when set) is that cluster, and every backup can be read. Then, in this order,
 * each step safe to interrupt (a rerun computes the same plan and finishes it):
 *   1. the expired backups, oldest first, each manifest first (ws_catalog_remove);
 *   2. the WAL outside what the kept backups and the PITR window need, oldest first;
 *   3. the gap records of that WAL;
 *   4. leftovers older than expire-grace: incomplete backups without a live lock
 *      (repo/lock.h), temporary files of dead writers (posix), unfinished multipart
 *      uploads (S3).
 * --dry-run prints the same plan and removes nothing. The report says what was removed,
 * also when a step fails (exit 1).
 */
#include "walship/ops/expire.h"
#include "walship/ops/ops.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/open.h"
#include "walship/log.h"
#include "walship/ops/expire_plan.h"
#include "walship/pq_dl.h"
#include "walship/repo/catalog.h"
#include "walship/repo/keys.h"
#include "walship/repo/lock.h"
#include "walship/repo/pin.h"
#include "walship/repo/summary.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define POLICY_MAX 100000L
#define DAYS_MAX   36500L

static const struct {
    const char *key;
    long max;
} policy_keys[] = {{"retention-full", POLICY_MAX},    {"retention-days", DAYS_MAX},
                   {"retention-daily", POLICY_MAX},   {"retention-weekly", POLICY_MAX},
                   {"retention-monthly", POLICY_MAX}, {"retention-yearly", POLICY_MAX}};
#define NPOLICY (sizeof policy_keys / sizeof policy_keys[0])

int ws_expire_clock_setup(const ws_config *cfg, ws_error *err)
{
    const char *v = ws_config_get(cfg, "test-clock-offset");
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long off = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return ws_error_set(err, WS_ECONFIG,
                            "test-clock-offset = \"%s\" (from %s) is not a number of seconds", v,
                            ws_config_source(cfg, "test-clock-offset"));
    ws_repo_set_clock_offset((int64_t)off);
    ws_log_warn("test-clock-offset = %lld: walship's wall clock is shifted (tests only)", off);
    return 0;
}

/* The source of repository repo's value of key, for messages. */
static const char *repo_source(const ws_config *cfg, int repo, const char *key)
{
    char rk[96];
    snprintf(rk, sizeof rk, "repo%d-%s", repo + 1, key);
    const char *s = ws_config_source(cfg, rk);
    return s && strcmp(s, "default") != 0 ? s : ws_config_source(cfg, key);
}

static int parse_policy(const ws_config *cfg, int repo, ws_retention *p, ws_error *err)
{
    memset(p, 0, sizeof *p);
    long *slot[NPOLICY] = {&p->full, &p->days, &p->daily, &p->weekly, &p->monthly, &p->yearly};
    for (size_t i = 0; i < NPOLICY; i++) {
        const char *v = ws_config_repo_get(cfg, repo, policy_keys[i].key);
        if (!v)
            continue;
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || !isdigit((unsigned char)v[0]) || n < 1 ||
            n > policy_keys[i].max) {
            ws_error_set(err, WS_ECONFIG, "%s = \"%s\" (from %s) is out of range: 1 to %ld",
                         policy_keys[i].key, v, repo_source(cfg, repo, policy_keys[i].key),
                         policy_keys[i].max);
            ws_error_hint(err, "leave the key unset to not use that rule (docs/retention.md)");
            return -1;
        }
        *slot[i] = n;
    }
    return 0;
}

/* retention-timezone: UTC, or a zone the C library knows (TZ). 1 = local time. */
static int setup_timezone(const ws_config *cfg, int repo, int *local, ws_error *err)
{
    const char *tz = ws_config_repo_get(cfg, repo, "retention-timezone");
    *local = 0;
    if (!tz || strcmp(tz, "UTC") == 0 || strcmp(tz, "utc") == 0)
        return 0;
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    if (strstr(tz, "..") || tz[0] == '/' || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return ws_error_set(err, WS_ECONFIG,
                            "retention-timezone = \"%s\" (from %s) is not a known time zone "
                            "(UTC, or a name such as Europe/Paris)",
                            tz, repo_source(cfg, repo, "retention-timezone"));
    setenv("TZ", tz, 1);
    tzset();
    *local = 1;
    return 0;
}

int ws_expire_policy(const ws_config *cfg, int repo, ws_retention *pol, int *local_time,
                     ws_error *err)
{
    if (parse_policy(cfg, repo, pol, err) < 0)
        return -1;
    return setup_timezone(cfg, repo, local_time, err);
}

/* ---- the cluster the config names (pgconn) ---- */

static int cluster_sysid(const ws_config *cfg, uint64_t *out, ws_error *err)
{
    *out = 0;
    const char *pgconn = ws_config_get(cfg, "pgconn");
    if (!pgconn || !*pgconn)
        return 0;
    if (ws_pq_load(err) < 0)
        return -1;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {pgconn, "walship expire", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c)
        return ws_error_oom(err);
    int rc = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message may quote the conninfo (a password): not repeated */
        ws_error_set(err, WS_ETRANSIENT,
                     "cannot connect to the cluster pgconn names: expire removes nothing until "
                     "it can check that the repository belongs to it");
        ws_error_hint(err, "check pgconn / the PG* environment, or unset pgconn to rely on the "
                           "repository's own identity and manifests");
        goto out;
    }
    PGresult *res = PQexec(c, "SELECT system_identifier FROM pg_control_system()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        *out = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        rc = 0;
    } else {
        ws_error_set(err, WS_EIO, "cannot read the system identifier of the cluster pgconn names");
    }
    PQclear(res);
out:
    PQfinish(c);
    return rc;
}

/* ---- output ---- */

static void rules_text(unsigned keep, char *out, size_t len)
{
    out[0] = '\0';
    size_t o = 0;
    for (int i = 0; i < WS_KEEP_RULES; i++)
        if (keep & (1u << i))
            o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", o ? ", " : "",
                                  ws_keep_rule_name(i));
}

static void rules_json(FILE *f, unsigned keep)
{
    fputc('[', f);
    for (int i = 0, n = 0; i < WS_KEEP_RULES; i++)
        if (keep & (1u << i))
            fprintf(f, "%s\"%s\"", n++ ? "," : "", ws_keep_rule_name(i));
    fputc(']', f);
}

/* What one repository's run did (or, dry, would do). */
typedef struct result {
    const char *repo;
    int policy_set;
    ws_retention pol;
    const ws_catalog *cat;
    const ws_summary *wal;
    const ws_expire_plan *plan;
    int backups_removed;   /* of plan's, in order */
    uint64_t backup_bytes; /* freed by them */
    int wal_removed;       /* of plan's wal_remove, in order */
    uint64_t wal_bytes;
    int gaps_removed;
    char **left_ids; /* incomplete backups removed */
    int nleft;
    uint64_t left_bytes;
    uint64_t tmp_removed, tmp_bytes;
    int dry;
    ws_error err; /* code WS_EOK: no failure */
} result;

typedef struct tl_range {
    uint32_t tli;
    uint64_t first, last, count;
} tl_range;

/* The removed WAL, per timeline (first and last segment number, count), of the first n. */
static int wal_ranges(const result *r, int n, tl_range *out, int max)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const ws_wal_name *nm = &r->wal->objs[r->plan->wal_remove[i]].name;
        uint64_t segno = 0;
        ws_wal_name seg;
        ws_error e;
        char base[32];
        snprintf(base, sizeof base, "%.24s", nm->name);
        if (ws_wal_parse_name(base, &seg, &e) < 0 ||
            ws_wal_segno(&seg, r->wal->seg_size, &segno) < 0)
            continue;
        int j = 0;
        while (j < k && out[j].tli != seg.tli)
            j++;
        if (j == k) {
            if (k == max)
                continue;
            out[k++] = (tl_range){seg.tli, segno, segno, 0};
        }
        if (segno < out[j].first)
            out[j].first = segno;
        if (segno > out[j].last)
            out[j].last = segno;
        out[j].count++;
    }
    return k;
}

static void print_text(FILE *f, const result *r)
{
    fprintf(f, "repository %s%s\n", r->repo, r->dry ? " (dry run: nothing removed)" : "");
    if (!r->policy_set) {
        fprintf(f, "  %s: nothing expired\n",
                r->err.code != WS_EOK ? "refused (see the error)" : "no retention policy");
        return;
    }
    fprintf(f, "  policy:");
    long v[NPOLICY] = {r->pol.full,   r->pol.days,    r->pol.daily,
                       r->pol.weekly, r->pol.monthly, r->pol.yearly};
    for (size_t i = 0; i < NPOLICY; i++)
        if (v[i])
            fprintf(f, " %s = %ld", policy_keys[i].key, v[i]);
    fprintf(f, "\n");
    if (!r->plan)
        return;
    const char *verb = r->dry ? "would remove" : "removed";
    for (int i = 0, rm = 0; i < r->cat->n; i++) {
        const ws_manifest_info *m = &r->cat->backups[i];
        char rules[160], when[32];
        ws_manifest_format_time(m->stop_time, when);
        if (r->plan->keep[i]) {
            rules_text(r->plan->keep[i], rules, sizeof rules);
            fprintf(f, "  keep   %-22s stopped %s  (%s)\n", m->id, when, rules);
        } else {
            int done = r->dry || rm < r->backups_removed;
            fprintf(f, "  %s %-22s stopped %s%s\n", done ? "remove" : "KEPT  ", m->id, when,
                    done ? "" : "  (not removed: the run stopped before it)");
            rm++;
        }
    }
    if (r->plan->window_from >= 0) {
        char seg[32];
        ws_wal_format_segment(seg, r->cat->backups[r->plan->window_from].start_tli,
                              r->plan->window_segno, r->wal->seg_size);
        fprintf(f,
                "  point-in-time window: from %s (the start of backup %s) to the end of the "
                "archive\n",
                seg, r->cat->backups[r->plan->window_from].id);
    }
    int n = r->dry ? r->plan->nwal_remove : r->wal_removed;
    tl_range tr[64];
    int k = wal_ranges(r, n, tr, 64);
    uint64_t wb = r->dry ? r->plan->wal_remove_bytes : r->wal_bytes;
    fprintf(f, "  WAL: %s %d object(s), %" PRIu64 " bytes\n", verb, n, wb);
    for (int i = 0; i < k; i++) {
        char a[32], z[32];
        ws_wal_format_segment(a, tr[i].tli, tr[i].first, r->wal->seg_size);
        ws_wal_format_segment(z, tr[i].tli, tr[i].last, r->wal->seg_size);
        fprintf(f, "    timeline %" PRIu32 ": %s .. %s (%" PRIu64 ")\n", tr[i].tli, a, z,
                tr[i].count);
    }
    int g = r->dry ? r->plan->ngap_remove : r->gaps_removed;
    if (g)
        fprintf(f, "  gap records: %s %d\n", verb, g);
    for (int i = 0; i < r->nleft; i++)
        fprintf(f, "  leftover: %s incomplete backup %s (no live lock, older than expire-grace)\n",
                verb, r->left_ids[i]);
    if (r->tmp_removed)
        fprintf(f,
                "  leftover: %s %" PRIu64 " temporary file(s) / multipart upload(s) of dead "
                "writers, %" PRIu64 " bytes\n",
                verb, r->tmp_removed, r->tmp_bytes);
    uint64_t freed = r->backup_bytes + wb + r->left_bytes + r->tmp_bytes;
    fprintf(f, "  %s %d backup(s); %" PRIu64 " bytes %s\n", verb,
            r->dry ? r->plan->nremove : r->backups_removed, freed, r->dry ? "to free" : "freed");
}

static void print_json(FILE *f, const result *r)
{
    fprintf(f, "{\"repository\":");
    ws_ops_json_str(f, r->repo);
    fprintf(f, ",\"dry_run\":%s,\"policy\":", r->dry ? "true" : "false");
    if (!r->policy_set) {
        fprintf(f, "null");
    } else {
        long v[NPOLICY] = {r->pol.full,   r->pol.days,    r->pol.daily,
                           r->pol.weekly, r->pol.monthly, r->pol.yearly};
        fputc('{', f);
        for (size_t i = 0, n = 0; i < NPOLICY; i++)
            if (v[i])
                fprintf(f, "%s\"%s\":%ld", n++ ? "," : "", policy_keys[i].key + 10, v[i]);
        fputc('}', f);
    }
    fprintf(f, ",\"backups\":[");
    for (int i = 0, rm = 0; r->plan && i < r->cat->n; i++) {
        const ws_manifest_info *m = &r->cat->backups[i];
        fprintf(f, "%s{\"id\":", i ? "," : "");
        ws_ops_json_str(f, m->id);
        if (r->plan->keep[i]) {
            fprintf(f, ",\"action\":\"keep\",\"rules\":");
            rules_json(f, r->plan->keep[i]);
        } else {
            int done = r->dry || rm < r->backups_removed;
            fprintf(f, ",\"action\":\"%s\",\"rules\":[]", done ? "remove" : "not-removed");
            rm++;
        }
        fprintf(f, ",\"stored_size\":%" PRIu64 "}", m->stored_size);
    }
    fprintf(f, "],\"window\":");
    if (r->plan && r->plan->window_from >= 0) {
        char seg[32];
        ws_wal_format_segment(seg, r->cat->backups[r->plan->window_from].start_tli,
                              r->plan->window_segno, r->wal->seg_size);
        fprintf(f, "{\"from_backup\":");
        ws_ops_json_str(f, r->cat->backups[r->plan->window_from].id);
        fprintf(f, ",\"from_segment\":\"%s\"}", seg);
    } else {
        fprintf(f, "null");
    }
    int n = !r->plan ? 0 : r->dry ? r->plan->nwal_remove : r->wal_removed;
    uint64_t wb = !r->plan ? 0 : r->dry ? r->plan->wal_remove_bytes : r->wal_bytes;
    tl_range tr[64];
    int k = r->plan ? wal_ranges(r, n, tr, 64) : 0;
    fprintf(f, ",\"wal_removed\":{\"count\":%d,\"bytes\":%" PRIu64 ",\"timelines\":[", n, wb);
    for (int i = 0; i < k; i++) {
        char a[32], z[32];
        ws_wal_format_segment(a, tr[i].tli, tr[i].first, r->wal->seg_size);
        ws_wal_format_segment(z, tr[i].tli, tr[i].last, r->wal->seg_size);
        fprintf(f,
                "%s{\"timeline\":%" PRIu32 ",\"first\":\"%s\",\"last\":\"%s\",\"count\":%" PRIu64
                "}",
                i ? "," : "", tr[i].tli, a, z, tr[i].count);
    }
    int g = !r->plan ? 0 : r->dry ? r->plan->ngap_remove : r->gaps_removed;
    fprintf(f, "]},\"gap_records_removed\":%d,\"leftovers\":{\"incomplete_backups\":[", g);
    for (int i = 0; i < r->nleft; i++) {
        fprintf(f, "%s", i ? "," : "");
        ws_ops_json_str(f, r->left_ids[i]);
    }
    uint64_t freed = r->backup_bytes + wb + r->left_bytes + r->tmp_bytes;
    fprintf(f,
            "],\"temporary_files\":%" PRIu64 ",\"temporary_bytes\":%" PRIu64
            "},\"backups_removed\":%d,\"bytes_freed\":%" PRIu64 ",\"error\":",
            r->tmp_removed, r->tmp_bytes,
            !r->plan ? 0
            : r->dry ? r->plan->nremove
                     : r->backups_removed,
            freed);
    if (r->err.code != WS_EOK)
        ws_ops_json_str(f, r->err.msg);
    else
        fprintf(f, "null");
    fprintf(f, "}");
}

/* ---- checks before anything is removed ---- */

static int check_identity(ws_repo *r, const ws_catalog *cat, uint64_t want_sysid, ws_error *err)
{
    ws_repo_identity id;
    if (ws_repo_identity_get(r, &id, err) < 0) {
        if (err->code == WS_ENOENT) {
            ws_error_set(err, WS_EMISMATCH,
                         "repository %s has no " WS_REPO_ROOT_KEY
                         ": expire removes nothing from a repository it cannot identify",
                         ws_repo_describe(r));
            ws_error_hint(err, "check repo in the config (an unmounted mount point, a wrong "
                               "bucket or prefix); if the identity was lost, run \"walship repo "
                               "repair\" first");
        }
        return -1;
    }
    if (want_sysid && id.sysid != want_sysid) {
        ws_error_set(err, WS_EMISMATCH,
                     "repository %s belongs to database system %" PRIu64
                     ", not to the cluster the config names (%" PRIu64 "): nothing removed",
                     ws_repo_describe(r), id.sysid, want_sysid);
        ws_error_hint(err, "check repo and pgconn: expire only runs on the cluster's own "
                           "repository");
        return -1;
    }
    for (int i = 0; i < cat->n; i++)
        if (cat->backups[i].sysid != id.sysid) {
            ws_error_set(err, WS_EMISMATCH,
                         "backup %s in %s is of database system %" PRIu64
                         ", the repository of %" PRIu64 ": a foreign backup, nothing removed",
                         cat->backups[i].id, ws_repo_describe(r), cat->backups[i].sysid, id.sysid);
            return -1;
        }
    if (cat->nunreadable) {
        ws_error_set(err, WS_ECORRUPT,
                     "backup %s in %s cannot be read: expire removes nothing while it cannot "
                     "know what that backup needs",
                     cat->unreadable[0].id, ws_repo_describe(r));
        ws_error_hint(err, "see walship list; repair or move the backup aside");
        return -1;
    }
    return 0;
}

/* ---- removal ---- */

static int remove_backups(ws_repo *r, result *res, ws_error *err)
{
    for (int i = 0; i < res->cat->n; i++) {
        if (res->plan->keep[i])
            continue;
        ws_catalog_removed rm;
        int rc = ws_catalog_remove(r, res->cat->backups[i].id, &rm, err);
        res->backup_bytes += rm.bytes;
        if (rc < 0)
            return -1;
        res->backups_removed++;
        ws_log_info("expired backup %s from %s (%" PRIu64 " objects)", res->cat->backups[i].id,
                    ws_repo_describe(r), rm.objects);
    }
    return 0;
}

#define WAL_BATCH 1000

static int remove_wal(ws_repo *r, result *res, ws_error *err)
{
    const ws_expire_plan *p = res->plan;
    const char *keys[WAL_BATCH];
    char(*buf)[160] = malloc(WAL_BATCH * sizeof *buf);
    if (!buf)
        return ws_error_oom(err);
    int rc = 0;
    for (int off = 0; off < p->nwal_remove && rc == 0; off += WAL_BATCH) {
        int n = p->nwal_remove - off < WAL_BATCH ? p->nwal_remove - off : WAL_BATCH;
        for (int i = 0; i < n; i++) {
            ws_repo_wal_key(&res->wal->objs[p->wal_remove[off + i]].name, buf[i], sizeof buf[i]);
            keys[i] = buf[i];
        }
        size_t done = 0;
        rc = ws_storage_remove_many(ws_repo_storage(r), keys, (size_t)n, &done, err);
        for (size_t i = 0; i < done; i++)
            res->wal_bytes += res->wal->objs[p->wal_remove[off + (int)i]].size;
        res->wal_removed += (int)done;
    }
    for (int i = 0; rc == 0 && i < p->ngap_remove; i++) {
        ws_wal_name n;
        char key[160];
        ws_error e;
        if (ws_wal_parse_name(res->wal->gap_records[p->gap_remove[i]].segment, &n, &e) < 0 ||
            ws_repo_gap_key(&n, key, sizeof key) < 0)
            continue;
        if ((rc = ws_storage_remove(ws_repo_storage(r), key, err)) == 0)
            res->gaps_removed++;
    }
    free(buf);
    return rc;
}

/* ---- leftovers ---- */

typedef struct tmp_scan {
    char **names;
    uint64_t *sizes;
    int n, cap, oom;
    int64_t cutoff; /* real clock: storage times are the storage's */
    int posix;
    const char **busy; /* incomplete backups kept (running, or younger than the grace) */
    int nbusy;
} tmp_scan;

/* A temporary file inside a backup that is still running (a long multipart upload of a large
 * file may be older than the grace) is its writer's. */
static int in_busy_backup(const tmp_scan *s, const char *name)
{
    char id[WS_MANIFEST_ID_MAX];
    if (ws_key_backup_id(name, id, sizeof id) < 0)
        return 0;
    for (int i = 0; i < s->nbusy; i++)
        if (strcmp(s->busy[i], id) == 0)
            return 1;
    return 0;
}

/* A posix temporary file ".<name>.tmp.<pid>.<n>" whose writer still runs on this machine. */
static int writer_alive(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t)
        return 0;
    long pid = strtol(t + 5, NULL, 10);
    if (pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static int tmp_cb(void *arg, const char *name, const ws_storage_info *info)
{
    tmp_scan *s = arg;
    if (info->mtime == 0 || info->mtime > s->cutoff || (s->posix && writer_alive(name)) ||
        in_busy_backup(s, name))
        return 0;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 64;
        char **nn = realloc(s->names, (size_t)cap * sizeof *nn);
        if (nn)
            s->names = nn;
        uint64_t *ns = realloc(s->sizes, (size_t)cap * sizeof *ns);
        if (ns)
            s->sizes = ns;
        if (!nn || !ns) {
            s->oom = 1;
            return 1;
        }
        s->cap = cap;
    }
    if (!(s->names[s->n] = strdup(name))) {
        s->oom = 1;
        return 1;
    }
    s->sizes[s->n++] = info->size;
    return 0;
}

static int tmp_skip(void *arg, const char *prefix, const ws_error *err)
{
    (void)arg, (void)prefix, (void)err;
    return 0;
}

static int collect_leftovers(ws_repo *r, result *res, double grace, ws_error *err)
{
    const ws_catalog *c = res->cat;
    int64_t real_now = (int64_t)time(NULL);
    res->left_ids = calloc((size_t)(c->nincomplete ? c->nincomplete : 1), sizeof *res->left_ids);
    tmp_scan s = {0};
    s.busy = calloc((size_t)(c->nincomplete ? c->nincomplete : 1), sizeof *s.busy);
    if (!res->left_ids || !s.busy) {
        free(s.busy);
        return ws_error_oom(err);
    }
    for (int i = 0; i < c->nincomplete; i++) {
        const ws_catalog_incomplete *x = &c->incomplete_info[i];
        const char *id = c->incomplete[i];
        /* an interrupted removal is finished at once; other incomplete backups wait for the
         * grace and a dead lock */
        if (!x->expiring &&
            (x->newest_mtime == 0 || (double)(real_now - x->newest_mtime) < grace)) {
            s.busy[s.nbusy++] = id;
            continue;
        }
        if (!x->expiring && x->locked) {
            ws_backup_lock_info li;
            ws_error e;
            ws_error_clear(&e);
            if (ws_backup_lock_read(r, id, &li, &e) == 0 &&
                ws_backup_lock_live(&li, ws_repo_wall_time(), WS_BACKUP_LOCK_STALE)) {
                ws_log_info(
                    "backup %s in %s is running (%s pid %ld, heartbeat %" PRId64 " s ago): kept",
                    id, ws_repo_describe(r), li.host, li.pid, ws_repo_wall_time() - li.heartbeat);
                s.busy[s.nbusy++] = id;
                continue;
            }
        }
        /* it may have finished since the listing: a manifest now makes it complete */
        char key[160];
        ws_storage_info info;
        ws_error e;
        ws_manifest_key(id, WS_MANIFEST_NAME, key, sizeof key);
        if (ws_storage_stat(ws_repo_storage(r), key, &info, &e) == 0 || e.code != WS_ENOENT) {
            s.busy[s.nbusy++] = id;
            continue;
        }
        if (!res->dry) {
            ws_catalog_removed rm;
            int rc = ws_catalog_remove(r, id, &rm, err);
            res->left_bytes += rm.bytes;
            if (rc < 0) {
                free(s.busy);
                return -1;
            }
        } else {
            res->left_bytes += x->bytes;
        }
        res->left_ids[res->nleft++] = (char *)id;
    }
    s.cutoff = real_now - (int64_t)grace;
    s.posix = strcmp(ws_repo_storage(r)->ops->name, "posix") == 0;
    int rc =
        ws_storage_list_ex(ws_repo_storage(r), "", WS_STORAGE_LIST_TMP, tmp_cb, tmp_skip, &s, err);
    if (rc == 0 && s.oom)
        rc = ws_error_oom(err);
    for (int i = 0; rc == 0 && i < s.n; i++) {
        if (!res->dry && (rc = ws_storage_remove_tmp(ws_repo_storage(r), s.names[i], err)) < 0)
            break;
        res->tmp_removed++;
        res->tmp_bytes += s.sizes[i];
    }
    for (int i = 0; i < s.n; i++)
        free(s.names[i]);
    free(s.names);
    free(s.sizes);
    free(s.busy);
    return rc;
}

/* ---- one repository ---- */

static int expire_one(const ws_config *cfg, int idx, ws_repo *r, uint64_t want_sysid, int dry,
                      int json, FILE *out, int *first_json)
{
    result res;
    memset(&res, 0, sizeof res);
    res.repo = ws_repo_describe(r);
    res.dry = dry;
    ws_error_clear(&res.err);
    ws_catalog cat;
    memset(&cat, 0, sizeof cat);
    ws_summary wal;
    memset(&wal, 0, sizeof wal);
    ws_expire_plan plan;
    memset(&plan, 0, sizeof plan);
    res.cat = &cat;
    res.wal = &wal;
    int local = 0, rc = -1;
    double grace;
    ws_error *err = &res.err;
    if (parse_policy(cfg, idx, &res.pol, err) < 0 || setup_timezone(cfg, idx, &local, err) < 0 ||
        ws_config_get_seconds(cfg, "expire-grace", &grace, err) < 0)
        goto out;
    res.policy_set = ws_retention_any(&res.pol);
    if (!res.policy_set) {
        rc = 0;
        goto out;
    }
    ws_repo_identity id;
    if (ws_catalog_load(r, &cat, err) < 0 || check_identity(r, &cat, want_sysid, err) < 0 ||
        ws_repo_identity_get(r, &id, err) < 0 || ws_summary_load(r, id.seg_size, &wal, err) < 0 ||
        ws_expire_plan_make(&res.pol, cat.backups, cat.n, cat.pinned, &wal, ws_repo_wall_time(),
                            local, &plan, err) < 0)
        goto out;
    res.plan = &plan;
    if (dry) {
        rc = collect_leftovers(r, &res, grace, err);
        goto out;
    }
    if (remove_backups(r, &res, err) < 0 || remove_wal(r, &res, err) < 0 ||
        collect_leftovers(r, &res, grace, err) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0 && err->code == WS_EOK)
        ws_error_set(err, WS_EINTERNAL, "expire failed");
    if (json) {
        fprintf(out, "%s", *first_json ? "" : ",");
        *first_json = 0;
        print_json(out, &res);
    } else {
        print_text(out, &res);
    }
    if (rc < 0) {
        ws_error_prefix(err, "expire of %s", res.repo);
        if (res.backups_removed || res.wal_removed || res.nleft)
            ws_error_hint(err, "what was removed before the failure is listed above; run "
                               "walship expire again to finish");
        ws_log_err(WS_LOG_ERROR, err);
    }
    int config_error = rc < 0 && err->code == WS_ECONFIG;
    free(res.left_ids);
    ws_expire_plan_free(&plan);
    ws_summary_free(&wal);
    ws_catalog_free(&cat);
    return rc < 0 ? (config_error ? -2 : -1) : res.policy_set;
}

static int any_policy(const ws_config *cfg, int n)
{
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < NPOLICY; k++)
            if (ws_config_repo_get(cfg, i, policy_keys[k].key))
                return 1;
    return 0;
}

int ws_cmd_expire(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0) {
        ws_log_error("usage: walship expire [--dry-run] [--json] [--repo URL|N]");
        return WS_EXIT_USAGE;
    }
    if (ws_expire_clock_setup(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    int n = ws_config_repo_count(cfg);
    if (n > 0 && !any_policy(cfg, n)) {
        ws_error_set(&err, WS_ECONFIG,
                     "no retention policy is set: walship expire removes "
                     "nothing by default");
        ws_error_hint(&err, "set retention-full, retention-days or retention-daily/weekly/"
                            "monthly/yearly (or repoN-retention-...) in the config "
                            "(docs/retention.md)");
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    if (ws_ops_config_check(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    double w0 = ws_ops_wallclock();
    ws_repo **repos;
    if (ws_cmd_open_repos(cfg, &repos, &n, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    uint64_t sysid = 0;
    if (cluster_sysid(cfg, &sysid, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        ws_cmd_close_repos(repos, n);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    int json = ws_config_flag(cfg, "json"), dry = ws_config_flag(cfg, "dry-run");
    int first = 1, rc = WS_EXIT_OK;
    if (json)
        printf("{\"repositories\":[");
    for (int i = 0; i < n; i++) {
        int k = expire_one(cfg, i, repos[i], sysid, dry, json, stdout, &first);
        if (k == -2 && rc == WS_EXIT_OK)
            rc = WS_EXIT_USAGE;
        else if (k == -1)
            rc = WS_EXIT_FAIL;
    }
    if (json)
        printf("]}\n");
    if (fflush(stdout) != 0)
        rc = WS_EXIT_FAIL;
    ws_cmd_close_repos(repos, n);
    if (!dry) { /* metrics-file and notify-url (issue 15): the run's result, not a plan's */
        char summary[160], nrepo[16];
        snprintf(summary, sizeof summary, "expire of %d repositor%s: %s", n, n == 1 ? "y" : "ies",
                 rc == WS_EXIT_OK ? "done" : "failed (see the log)");
        snprintf(nrepo, sizeof nrepo, "%d", n);
        ws_ops_result res = {"expire", rc == WS_EXIT_OK, w0, ws_ops_wallclock(), summary, {{0}}, 0};
        ws_ops_field_add(&res, "repositories", nrepo, 1);
        ws_ops_report(cfg, &res);
    }
    return rc;
}

int ws_expire_auto(const ws_config *cfg, ws_repo **repos, int n, uint64_t sysid, ws_error *err)
{
    int on = 1;
    if (ws_config_get_bool(cfg, "expire-auto", &on, err) < 0)
        return -1;
    if (!on || !any_policy(cfg, n))
        return 0;
    int first = 1, rc = 0;
    for (int i = 0; i < n; i++) {
        int k = expire_one(cfg, i, repos[i], sysid, 0, 0, stderr, &first);
        if (k < 0 && rc == 0) {
            rc = -1;
            ws_error_set(err, WS_EIO, "expire-auto failed in %s (see above)",
                         ws_repo_describe(repos[i]));
        }
    }
    return rc;
}

/* ---- pin / unpin ---- */

static int pin_cmd(const ws_config *cfg, int pin)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 1) {
        ws_log_error(pin ? "usage: walship pin ID [--note TEXT]" : "usage: walship unpin ID");
        return WS_EXIT_USAGE;
    }
    const char *id = ws_config_arg(cfg, 0);
    if (ws_expire_clock_setup(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    ws_repo **repos;
    int n;
    if (ws_cmd_open_repos(cfg, &repos, &n, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    int found = 0, rc = WS_EXIT_OK;
    for (int i = 0; i < n && rc == WS_EXIT_OK; i++) {
        ws_catalog cat;
        if (ws_catalog_load(repos[i], &cat, &err) < 0) {
            rc = WS_EXIT_FAIL;
            break;
        }
        int have = ws_catalog_find(&cat, id) != NULL;
        ws_catalog_free(&cat);
        if (!have)
            continue;
        found++;
        if (pin ? ws_pin_set(repos[i], id, ws_config_get(cfg, "note"), &err) < 0
                : ws_pin_clear(repos[i], id, &err) < 0) {
            if (!pin && err.code == WS_ENOENT) {
                ws_log_info("backup %s in %s was not pinned", id, ws_repo_describe(repos[i]));
                ws_error_clear(&err);
                continue;
            }
            rc = WS_EXIT_FAIL;
            break;
        }
        ws_log_info("%s backup %s in %s", pin ? "pinned" : "unpinned", id,
                    ws_repo_describe(repos[i]));
    }
    if (rc == WS_EXIT_OK && !found) {
        ws_error_set(&err, WS_ENOENT, "no complete backup \"%s\" in any repository", id);
        ws_error_hint(&err, "walship list shows the backups' ids");
        rc = WS_EXIT_FAIL;
    }
    if (rc != WS_EXIT_OK)
        ws_log_err(WS_LOG_ERROR, &err);
    ws_cmd_close_repos(repos, n);
    return rc;
}

int ws_cmd_pin(const ws_config *cfg)
{
    return pin_cmd(cfg, 1);
}

int ws_cmd_unpin(const ws_config *cfg)
{
    return pin_cmd(cfg, 0);
}
