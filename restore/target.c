/*
 * target.c — the recovery target, and the backup that can reach it.
 *
 * A time or LSN target picks the newest complete backup that ends before it and lies on the
 * timeline recovery will follow: the backup's timeline must be the target timeline or one of
 * its ancestors, left after the backup's stop LSN (otherwise replay from that backup would
 * follow the old timeline past the switch). The ancestry comes from the timeline's history
 * file in the repository. xid and name targets cannot be placed before replay: they use the
 * latest backup unless --backup says otherwise.
 */
#include "restore/restore.h"
#include "walship/log.h"
#include "walship/timeline.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int only_one(const ws_config *cfg, const char **which, ws_error *err)
{
    static const char *keys[] = {"target-time", "target-lsn", "target-xid", "target-name",
                                 "target"};
    *which = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        if (!ws_config_get(cfg, keys[i]))
            continue;
        if (*which) {
            ws_error_set(err, WS_ECONFIG, "--%s and --%s cannot be combined", *which, keys[i]);
            ws_error_hint(err, "give one recovery target (or none, to replay all archived WAL)");
            return -1;
        }
        *which = keys[i];
    }
    return 0;
}

/* Parses up to n digits. */
static int digits(const char **s, int n, int *out)
{
    int v = 0, k = 0;
    while (k < n && isdigit((unsigned char)**s)) {
        v = v * 10 + (**s - '0');
        (*s)++;
        k++;
    }
    *out = v;
    return k == n ? 0 : -1;
}

int ws_rs_parse_time(const char *s, double *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec;
    const char *p = s;
    while (*p == ' ')
        p++;
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0 || (*p != ' ' && *p != 'T') || !*++p || digits(&p, 2, &h) < 0 ||
        *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' || digits(&p, 2, &sec) < 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    double frac = 0;
    if (*p == '.') {
        double scale = 0.1;
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            frac += (*p++ - '0') * scale;
            scale /= 10;
        }
    }
    while (*p == ' ')
        p++;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else {
        long off = 0;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (strncmp(p, "UTC", 3) == 0) {
            p += 3;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (digits(&p, 2, &oh) < 0)
                return -1;
            if (*p == ':')
                p++;
            if (isdigit((unsigned char)*p) && digits(&p, 2, &om) < 0)
                return -1;
            off = sign * (oh * 3600L + om * 60L);
        } else {
            return -1;
        }
        if (*p != '\0')
            return -1;
        t = timegm(&tm) - off;
    }
    if (t == (time_t)-1)
        return -1;
    *out = (double)t + frac;
    return 0;
}

int ws_rs_target_parse(const ws_config *cfg, ws_rs_target *t, ws_error *err)
{
    memset(t, 0, sizeof *t);
    const char *which;
    if (only_one(cfg, &which, err) < 0)
        return -1;
    if (which) {
        t->value = ws_config_get(cfg, which);
        if (strcmp(which, "target-time") == 0) {
            t->kind = WS_RS_TARGET_TIME;
            if (ws_rs_parse_time(t->value, &t->time) < 0) {
                ws_error_set(err, WS_ECONFIG, "--target-time \"%s\" is not a timestamp", t->value);
                ws_error_hint(err, "write it as 'YYYY-MM-DD HH:MM:SS[.frac][+HH[:MM]]', e.g. "
                                   "'2026-11-22 14:30:00+00'");
                return -1;
            }
        } else if (strcmp(which, "target-lsn") == 0) {
            t->kind = WS_RS_TARGET_LSN;
            if (ws_wal_parse_lsn(t->value, &t->lsn) < 0)
                return ws_error_set(err, WS_ECONFIG,
                                    "--target-lsn \"%s\" is not an LSN (e.g. 0/1A2B3C4D)",
                                    t->value);
        } else if (strcmp(which, "target-xid") == 0) {
            t->kind = WS_RS_TARGET_XID;
            char *end;
            errno = 0;
            unsigned long long x = strtoull(t->value, &end, 10);
            if (!isdigit((unsigned char)t->value[0]) || *end || errno || x < 3 ||
                x > UINT64_MAX / 2)
                return ws_error_set(err, WS_ECONFIG,
                                    "--target-xid \"%s\" is not a transaction id (a number >= 3)",
                                    t->value);
        } else if (strcmp(which, "target-name") == 0) {
            t->kind = WS_RS_TARGET_NAME;
            if (!t->value[0] || strlen(t->value) >= 64)
                return ws_error_set(err, WS_ECONFIG,
                                    "--target-name must be a restore point name of 1 to 63 bytes");
        } else {
            t->kind = WS_RS_TARGET_IMMEDIATE;
            if (strcmp(t->value, "immediate") != 0)
                return ws_error_set(err, WS_ECONFIG,
                                    "--target \"%s\": the only such target is immediate", t->value);
        }
    }
    t->action = ws_config_get(cfg, "target-action");
    if (t->action) {
        if (strcmp(t->action, "pause") != 0 && strcmp(t->action, "promote") != 0 &&
            strcmp(t->action, "shutdown") != 0)
            return ws_error_set(err, WS_ECONFIG,
                                "--target-action \"%s\" is not pause, promote or shutdown",
                                t->action);
        if (t->kind == WS_RS_TARGET_NONE) {
            ws_error_set(err, WS_ECONFIG, "--target-action needs a recovery target");
            ws_error_hint(err, "without a target, recovery replays all archived WAL and promotes");
            return -1;
        }
    }
    const char *am = ws_config_get(cfg, "archive-mode");
    if (!am || strcmp(am, "off") == 0) {
        t->archive_off = 1;
    } else if (strcmp(am, "preserve") != 0) {
        return ws_error_set(err, WS_ECONFIG, "--archive-mode \"%s\" is not off or preserve", am);
    }
    t->force = ws_config_flag(cfg, "force");
    t->timeline = ws_config_get(cfg, "target-timeline");
    if (t->timeline && strcmp(t->timeline, "latest") != 0 && strcmp(t->timeline, "current") != 0) {
        char *end;
        unsigned long n = strtoul(t->timeline, &end, 10);
        if (!isdigit((unsigned char)t->timeline[0]) || *end || n < 1 || n > UINT32_MAX)
            return ws_error_set(err, WS_ECONFIG,
                                "--target-timeline \"%s\" is not latest, current or a number",
                                t->timeline);
    }
    return 0;
}

/* ---- timelines ---- */

typedef ws_tl_history history;

static int max_tli_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    uint32_t *max = arg;
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    unsigned long t;
    char rest[16];
    if (strlen(base) == 16 && sscanf(base, "%8lX%15s", &t, rest) == 2 &&
        strcmp(rest, ".history") == 0 && t > *max && t <= UINT32_MAX)
        *max = (uint32_t)t;
    return 0;
}

/* The timeline recovery will follow: the number given, else the newest in the repository
 * (PostgreSQL's default, latest); 0 for current (the backup's own). */
static int target_tli(ws_repo *r, const ws_rs_target *t, uint32_t *out, ws_error *err)
{
    if (t->timeline && strcmp(t->timeline, "current") == 0) {
        *out = 0;
        return 0;
    }
    if (t->timeline && strcmp(t->timeline, "latest") != 0) {
        *out = (uint32_t)strtoul(t->timeline, NULL, 10);
        return 0;
    }
    uint32_t max = 1;
    if (ws_storage_list(ws_repo_storage(r), WS_KEY_HISTORY_PREFIX, max_tli_cb, &max, err) < 0)
        return -1;
    *out = max;
    return 0;
}

/* Whether replay from b along h reaches past b's end: b's timeline is h's own, or an
 * ancestor left at or after b's stop LSN. */
static int on_path(const ws_manifest_info *b, const history *h)
{
    if (h->tli == 0 || b->stop_tli == h->tli)
        return 1;
    for (int i = 0; i < h->n; i++)
        if (h->anc[i].tli == b->stop_tli)
            return b->stop_lsn <= h->anc[i].end;
    return 0;
}

const ws_manifest_info *ws_rs_choose_backup(ws_repo *r, const ws_catalog *cat,
                                            const char *backup_opt, const ws_rs_target *t,
                                            char *why, size_t whylen, ws_error *err)
{
    if (cat->n == 0) {
        ws_error_set(err, WS_ENOENT, "%s holds no complete backup", ws_repo_describe(r));
        ws_error_hint(err, "take one with walship basebackup%s",
                      cat->nincomplete ? " (the incomplete ones there were never finished)" : "");
        return NULL;
    }
    if (backup_opt && strcmp(backup_opt, "latest") != 0) {
        const ws_manifest_info *b = ws_catalog_find(cat, backup_opt);
        ws_manifest_info unread;
        if (!b && ws_manifest_read(r, backup_opt, &unread, NULL, NULL, err) < 0 &&
            err->code != WS_ENOENT) {
            /* there, but not readable: say why rather than "no such backup" */
            ws_error_prefix(err, "backup %s cannot be restored", backup_opt);
            if (err->code == WS_ECONFIG) /* a newer format: not a usage error here */
                err->code = WS_EINVAL;
            return NULL;
        }
        if (!b) {
            ws_error_set(err, WS_ENOENT, "no complete backup %s in %s", backup_opt,
                         ws_repo_describe(r));
            ws_error_hint(err, "walship list shows the backups (newest: %s)",
                          cat->backups[cat->n - 1].id);
            return NULL;
        }
        snprintf(why, whylen, "given with --backup");
        return b;
    }
    if (t->kind != WS_RS_TARGET_TIME && t->kind != WS_RS_TARGET_LSN) {
        snprintf(why, whylen, "the newest complete backup%s",
                 t->kind == WS_RS_TARGET_XID || t->kind == WS_RS_TARGET_NAME
                     ? "; an xid or restore point cannot be placed before replay, so give "
                       "--backup for an older one"
                     : "");
        return &cat->backups[cat->n - 1];
    }
    uint32_t tli;
    history h;
    if (target_tli(r, t, &tli, err) < 0 || ws_tl_history_load(r, tli, &h, err) < 0)
        return NULL;
    const ws_manifest_info *oldest = NULL;
    for (int i = cat->n - 1; i >= 0; i--) {
        const ws_manifest_info *b = &cat->backups[i];
        if (!on_path(b, &h))
            continue;
        oldest = b;
        /* the backup is consistent at its stop; its stop time is whole seconds */
        int before = t->kind == WS_RS_TARGET_TIME ? (double)b->stop_time + 1 <= t->time
                                                  : b->stop_lsn <= t->lsn;
        if (!before)
            continue;
        char lsn[32];
        ws_wal_lsn_text(b->stop_lsn, lsn);
        if (t->kind == WS_RS_TARGET_TIME)
            snprintf(why, whylen, "the newest complete backup that ends before the target time%s",
                     tli > 1 ? " on the target timeline's path" : "");
        else
            snprintf(why, whylen,
                     "the newest complete backup that ends (at %s) before the target%s", lsn,
                     tli > 1 ? " on the target timeline's path" : "");
        return b;
    }
    if (!oldest) {
        ws_error_set(err, WS_ENOENT, "no backup lies on timeline %" PRIu32 "'s history", tli);
        ws_error_hint(err, "choose one with --backup, or --target-timeline current");
        return NULL;
    }
    char when[32], lsn[32];
    ws_manifest_format_time(oldest->stop_time, when);
    ws_wal_lsn_text(oldest->stop_lsn, lsn);
    ws_error_set(err, WS_ENOENT,
                 "no backup ends before the target %s; the oldest restorable point is %s "
                 "(LSN %s, the end of backup %s)",
                 t->value, when, lsn, oldest->id);
    ws_error_hint(err, "choose a later target");
    return NULL;
}

/* ---- gaps left by push-queue-max ---- */

int ws_rs_check_gaps(ws_repo *r, const ws_manifest_info *b, const ws_rs_target *t, ws_error *err)
{
    ws_repo_gap *gaps = NULL;
    int n = 0;
    if (ws_repo_gap_list(r, &gaps, &n, err) < 0)
        return -1;
    int rc = 0;
    const ws_repo_gap *first = NULL;
    uint64_t first_segno = 0, stop_segno = ws_wal_lsn_segno(b->stop_lsn - 1, b->seg_size);
    for (int i = 0; i < n; i++) {
        ws_wal_name wn;
        uint64_t segno;
        char key[128];
        ws_storage_info info;
        ws_error e;
        if (ws_wal_parse_name(gaps[i].segment, &wn, &e) < 0 ||
            ws_wal_segno(&wn, b->seg_size, &segno) < 0 || wn.tli < b->stop_tli ||
            segno <= stop_segno || (first && segno >= first_segno))
            continue;
        /* the segment's own object wins over its gap record */
        if (ws_repo_wal_key(&wn, key, sizeof key) == 0 &&
            ws_storage_stat(ws_repo_storage(r), key, &info, &e) == 0)
            continue;
        first = &gaps[i];
        first_segno = segno;
    }
    if (first) {
        char when[32];
        ws_manifest_format_time(first->dropped_at, when);
        uint64_t gap_lsn = first_segno * (uint64_t)b->seg_size;
        int beyond = (t->kind == WS_RS_TARGET_LSN && t->lsn >= gap_lsn) ||
                     (t->kind == WS_RS_TARGET_TIME && t->time >= (double)first->dropped_at);
        if (beyond) {
            ws_error_set(err, WS_ENOENT,
                         "the target %s lies beyond WAL segment %s, which push-queue-max dropped "
                         "(recorded %s): recovery from backup %s cannot cross that gap",
                         t->value, first->segment, when, b->id);
            ws_error_hint(err, "choose a backup taken after the gap (walship list), or a target "
                               "before it");
            rc = -1;
        } else if (t->kind != WS_RS_TARGET_IMMEDIATE) {
            ws_log_warn("WAL segment %s was dropped by push-queue-max (recorded %s): recovery "
                        "from backup %s stops there%s",
                        first->segment, when, b->id,
                        t->kind == WS_RS_TARGET_NONE ? ", and everything after it is lost" : "");
        }
    }
    free(gaps);
    return rc;
}

/* ---- the timeline recovery follows ---- */

int ws_rs_timeline_note(ws_repo *r, const ws_catalog *cat, const ws_rs_target *t, char *note,
                        size_t len, ws_error *err)
{
    note[0] = '\0';
    if (cat->n == 0)
        return 0;
    const ws_manifest_info *newest = &cat->backups[cat->n - 1];
    uint32_t tli;
    if (target_tli(r, t, &tli, err) < 0)
        return -1;
    if (tli == 0 || tli == newest->stop_tli)
        return 0;
    history h;
    uint64_t end;
    ws_error e;
    ws_error_clear(&e);
    if (ws_tl_history_load(r, tli, &h, &e) < 0 || !ws_tl_history_has(&h, newest->stop_tli, &end))
        return 0; /* not a branch of it: choosing the backup says what is wrong, if anything */
    char lsn[32];
    ws_wal_lsn_text(end, lsn);
    snprintf(note, len,
             "recovery follows timeline %" PRIu32 "%s, which branched off timeline %" PRIu32
             " (the newest backup's, %s) at %s: what timeline %" PRIu32
             " wrote after that is not replayed; if timeline %" PRIu32
             " is a drill's, give --target-timeline %" PRIu32,
             tli, t->timeline ? "" : " (the newest in the repository)", newest->stop_tli,
             newest->id, lsn, newest->stop_tli, tli, newest->stop_tli);
    return 0;
}

/* ---- the end of the archive ---- */

typedef struct newest_seg {
    uint32_t tli, seg_size;
    uint64_t limit; /* the highest segment recovery reads on this timeline */
    uint64_t segno;
    int found;
    char name[WS_WAL_NAME_MAX];
    char key[256];
} newest_seg;

static int newest_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    newest_seg *n = arg;
    const char *base = strrchr(key, '/');
    base = base ? base + 1 : key;
    ws_wal_name wn;
    ws_error e;
    uint64_t segno;
    if (ws_wal_parse_name(base, &wn, &e) < 0 || wn.kind != WS_WAL_SEGMENT || wn.tli != n->tli ||
        ws_wal_segno(&wn, n->seg_size, &segno) < 0 || segno > n->limit ||
        (n->found && segno <= n->segno))
        return 0;
    n->found = 1;
    n->segno = segno;
    snprintf(n->name, sizeof n->name, "%s", wn.name);
    snprintf(n->key, sizeof n->key, "%s", key);
    return 0;
}

/* The newest segment stored on timeline tli up to segment limit. */
static int newest_on(ws_repo *r, uint32_t tli, uint64_t limit, uint32_t seg_size, newest_seg *n,
                     ws_error *err)
{
    memset(n, 0, sizeof *n);
    n->tli = tli;
    n->limit = limit;
    n->seg_size = seg_size;
    char prefix[32];
    ws_key_wal_timeline_prefix(tli, prefix, sizeof prefix);
    return ws_storage_list(ws_repo_storage(r), prefix, newest_cb, n, err);
}

int ws_rs_check_archive_end(ws_repo *r, const ws_manifest_info *b, const ws_rs_target *t,
                            ws_error *err)
{
    if (t->kind != WS_RS_TARGET_TIME && t->kind != WS_RS_TARGET_LSN)
        return 0;
    uint32_t tli;
    history h;
    if (target_tli(r, t, &tli, err) < 0)
        return -1;
    if (tli == 0)
        tli = b->stop_tli;
    if (ws_tl_history_load(r, tli, &h, err) < 0)
        return -1;
    /* the target timeline first, then its ancestors up to where it left each */
    newest_seg n;
    if (newest_on(r, tli, UINT64_MAX, b->seg_size, &n, err) < 0)
        return -1;
    for (int i = h.n - 1; !n.found && i >= 0; i--)
        if (newest_on(r, h.anc[i].tli, ws_wal_lsn_segno(h.anc[i].end, b->seg_size), b->seg_size, &n,
                      err) < 0)
            return -1;
    ws_storage_info info;
    memset(&info, 0, sizeof info);
    if (n.found && ws_storage_stat(ws_repo_storage(r), n.key, &info, err) < 0)
        return -1;
    char when[32] = "", end[32];
    uint64_t end_lsn = n.found ? (n.segno + 1) * (uint64_t)b->seg_size : 0;
    ws_wal_lsn_text(end_lsn, end);
    if (n.found)
        ws_manifest_format_time(info.mtime, when);
    /* mtimes are whole seconds (truncated): a target within the segment's last second is
     * given the benefit of the doubt */
    int beyond = !n.found || (t->kind == WS_RS_TARGET_LSN ? t->lsn >= end_lsn
                                                          : t->time >= (double)info.mtime + 1);
    if (!beyond)
        return 0;
    if (!n.found)
        ws_error_set(err, WS_EINVAL,
                     "the target %s lies beyond the archive: no WAL segment of timeline %" PRIu32
                     " or its ancestors is archived in %s",
                     t->value, tli, ws_repo_describe(r));
    else if (t->kind == WS_RS_TARGET_LSN)
        ws_error_set(err, WS_EINVAL,
                     "the target LSN %s lies beyond the newest archived WAL: segment %s (timeline "
                     "%" PRIu32 ", stored %s) ends at %s; PostgreSQL would stop with \"recovery "
                     "ended before configured recovery target was reached\"",
                     t->value, n.name, n.tli, when, end);
    else
        ws_error_set(err, WS_EINVAL,
                     "the target time %s lies beyond the newest archived WAL: segment %s "
                     "(timeline %" PRIu32 ") was stored at %s (its object's mtime), and it holds "
                     "nothing later; PostgreSQL would stop with \"recovery ended before "
                     "configured recovery target was reached\"",
                     t->value, n.name, n.tli, when);
    if (t->force) {
        ws_log_warn("%s (--force: restoring anyway)", err->msg);
        ws_error_clear(err);
        return 0;
    }
    ws_error_hint(err, "choose an earlier target, or archive the WAL up to it first "
                       "(SELECT pg_switch_wal() on the primary); --force restores anyway");
    return -1;
}
