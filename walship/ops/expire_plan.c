/* expire_plan.c — the retention plan of one repository (expire_plan.h). */
#include "walship/ops/expire_plan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const rule_names[WS_KEEP_RULES] = {"full",    "days",   "daily", "weekly",
                                                      "monthly", "yearly", "pin",   "newest"};

const char *ws_keep_rule_name(int i)
{
    return i >= 0 && i < WS_KEEP_RULES ? rule_names[i] : "?";
}

int ws_retention_any(const ws_retention *p)
{
    return p->full || p->days || p->daily || p->weekly || p->monthly || p->yearly;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t ws_expire_period(int64_t t, unsigned tier, int local_time)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (local_time)
        localtime_r(&tt, &tm);
    else
        gmtime_r(&tt, &tm);
    int64_t y = (int64_t)tm.tm_year + 1900;
    int64_t days = days_from_civil(y, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
    switch (tier) {
    case WS_KEEP_DAILY:
        return days;
    case WS_KEEP_WEEKLY:
        /* 1970-01-01 was a Thursday: Monday-based weeks start 3 days before it */
        return floor_div(days + 3, 7);
    case WS_KEEP_MONTHLY:
        return y * 12 + tm.tm_mon;
    case WS_KEEP_YEARLY:
        return y;
    }
    return 0;
}

/* Backup i is newer (by stop time, then start, then id) than j. */
static int newer_stop(const ws_manifest_info *b, int i, int j)
{
    if (b[i].stop_time != b[j].stop_time)
        return b[i].stop_time > b[j].stop_time;
    if (b[i].start_time != b[j].start_time)
        return b[i].start_time > b[j].start_time;
    return strcmp(b[i].id, b[j].id) > 0;
}

static void keep_tier(const ws_manifest_info *b, int nb, unsigned *keep, unsigned tier, long n,
                      int64_t now, int local_time)
{
    if (n <= 0)
        return;
    int64_t cur = ws_expire_period(now, tier, local_time);
    /* the newest backup of each period in (cur - n, cur] */
    for (int i = 0; i < nb; i++) {
        int64_t p = ws_expire_period(b[i].stop_time, tier, local_time);
        if (p > cur || p <= cur - n)
            continue;
        int best = 1;
        for (int j = 0; j < nb && best; j++)
            if (j != i && ws_expire_period(b[j].stop_time, tier, local_time) == p &&
                newer_stop(b, j, i))
                best = 0;
        if (best)
            keep[i] |= tier;
    }
}

typedef struct wal_ref {
    int idx;
    uint64_t segno;
    uint32_t tli;
} wal_ref;

static int cmp_ref(const void *a, const void *b)
{
    const wal_ref *x = a, *y = b;
    if (x->segno != y->segno)
        return x->segno < y->segno ? -1 : 1;
    if (x->tli != y->tli)
        return x->tli < y->tli ? -1 : 1;
    return x->idx - y->idx;
}

/* The segment number and timeline a WAL object belongs to; 0 if it is not one that expire
 * may remove (history files, names it cannot read). */
static int wal_position(const ws_wal_name *n, uint32_t seg_size, uint64_t *segno, uint32_t *tli)
{
    if (n->kind != WS_WAL_SEGMENT && n->kind != WS_WAL_PARTIAL && n->kind != WS_WAL_BACKUP)
        return 0;
    /* .partial and .backup names start with their segment's name */
    ws_wal_name seg;
    ws_error e;
    char base[32];
    memcpy(base, n->name, 24);
    base[24] = '\0';
    if (ws_wal_parse_name(base, &seg, &e) < 0 || seg.kind != WS_WAL_SEGMENT ||
        ws_wal_segno(&seg, seg_size, segno) < 0)
        return 0;
    *tli = seg.tli;
    return 1;
}

/* 1 if (tli, segno) is needed: in the window, or inside a kept backup's own range. */
static int wal_needed(const ws_manifest_info *b, int nb, const unsigned *keep, uint64_t window,
                      uint32_t seg_size, uint32_t tli, uint64_t segno)
{
    if (segno >= window)
        return 1;
    for (int i = 0; i < nb; i++) {
        if (!keep[i])
            continue;
        uint64_t lo = ws_wal_lsn_segno(b[i].start_lsn, seg_size);
        uint64_t hi = ws_wal_lsn_segno(b[i].stop_lsn, seg_size);
        if (segno >= lo && segno <= hi && (tli == b[i].start_tli || tli == b[i].stop_tli))
            return 1;
    }
    return 0;
}

static int plan_wal(const ws_manifest_info *b, int nb, const ws_summary *w, ws_expire_plan *p,
                    ws_error *err)
{
    if (!w || p->window_from < 0)
        return 0;
    uint32_t seg_size = w->seg_size;
    wal_ref *refs = malloc((size_t)(w->nobjs ? w->nobjs : 1) * sizeof *refs);
    p->gap_remove = malloc((size_t)(w->ngap_records ? w->ngap_records : 1) * sizeof(int));
    if (!refs || !p->gap_remove) {
        free(refs);
        return ws_error_oom(err);
    }
    int n = 0;
    for (int i = 0; i < w->nobjs; i++) {
        uint64_t segno;
        uint32_t tli;
        if (!wal_position(&w->objs[i].name, seg_size, &segno, &tli) ||
            wal_needed(b, nb, p->keep, p->window_segno, seg_size, tli, segno))
            continue;
        refs[n++] = (wal_ref){i, segno, tli};
    }
    qsort(refs, (size_t)n, sizeof *refs, cmp_ref);
    p->wal_remove = malloc((size_t)(n ? n : 1) * sizeof *p->wal_remove);
    if (!p->wal_remove) {
        free(refs);
        return ws_error_oom(err);
    }
    for (int i = 0; i < n; i++) {
        p->wal_remove[i] = refs[i].idx;
        p->wal_remove_bytes += w->objs[refs[i].idx].size;
    }
    p->nwal_remove = n;
    free(refs);
    for (int i = 0; i < w->ngap_records; i++) {
        ws_wal_name gn;
        ws_error e;
        uint64_t segno;
        if (ws_wal_parse_name(w->gap_records[i].segment, &gn, &e) < 0 ||
            gn.kind != WS_WAL_SEGMENT || ws_wal_segno(&gn, seg_size, &segno) < 0)
            continue;
        if (!wal_needed(b, nb, p->keep, p->window_segno, seg_size, gn.tli, segno))
            p->gap_remove[p->ngap_remove++] = i;
    }
    return 0;
}

int ws_expire_plan_make(const ws_retention *pol, const ws_manifest_info *b, int nb,
                        const unsigned char *pinned, const ws_summary *wal, int64_t now,
                        int local_time, ws_expire_plan *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    out->window_from = -1;
    if (!(out->keep = calloc((size_t)(nb ? nb : 1), sizeof *out->keep)))
        return ws_error_oom(err);
    if (nb == 0)
        return 0;
    unsigned *keep = out->keep;
    /* retention-full: b is oldest first */
    for (int i = nb - 1, k = 0; pol->full > 0 && i >= 0 && k < pol->full; i--, k++)
        keep[i] |= WS_KEEP_FULL;
    if (pol->days > 0) {
        int64_t from = now - (int64_t)pol->days * 86400;
        int before = -1;
        for (int i = 0; i < nb; i++) {
            if (b[i].stop_time >= from)
                keep[i] |= WS_KEEP_DAYS;
            else if (before < 0 || newer_stop(b, i, before))
                before = i;
        }
        if (before >= 0)
            keep[before] |= WS_KEEP_DAYS;
    }
    keep_tier(b, nb, keep, WS_KEEP_DAILY, pol->daily, now, local_time);
    keep_tier(b, nb, keep, WS_KEEP_WEEKLY, pol->weekly, now, local_time);
    keep_tier(b, nb, keep, WS_KEEP_MONTHLY, pol->monthly, now, local_time);
    keep_tier(b, nb, keep, WS_KEEP_YEARLY, pol->yearly, now, local_time);
    for (int i = 0; pinned && i < nb; i++)
        if (pinned[i])
            keep[i] |= WS_KEEP_PIN;
    keep[nb - 1] |= WS_KEEP_NEWEST;
    for (int i = 0; i < nb; i++)
        if (!keep[i])
            out->nremove++;
    /* the window opens at the oldest start among the backups that carry it */
    unsigned carriers =
        pol->full || pol->days ? (WS_KEEP_FULL | WS_KEEP_DAYS | WS_KEEP_NEWEST) : ~0u;
    uint32_t seg_size = wal ? wal->seg_size : b[0].seg_size;
    for (int i = 0; i < nb; i++) {
        if (!(keep[i] & carriers))
            continue;
        uint64_t s = ws_wal_lsn_segno(b[i].start_lsn, seg_size);
        if (out->window_from < 0 || s < out->window_segno) {
            out->window_from = i;
            out->window_segno = s;
        }
    }
    return plan_wal(b, nb, wal, out, err);
}

void ws_expire_plan_free(ws_expire_plan *p)
{
    free(p->keep);
    free(p->wal_remove);
    free(p->gap_remove);
    memset(p, 0, sizeof *p);
}
