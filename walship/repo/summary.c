/* summary.c — the WAL a repository holds, per timeline (summary.h). */
#include "walship/repo/summary.h"
#include "walship/repo/keys.h"

#include <stdlib.h>
#include <string.h>

static int name_add(ws_summary_names *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void names_free(ws_summary_names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_obj(const void *a, const void *b)
{
    return strcmp(((const ws_summary_obj *)a)->name.name, ((const ws_summary_obj *)b)->name.name);
}

static int cmp_gap(const void *a, const void *b)
{
    return strcmp(((const ws_repo_gap *)a)->segment, ((const ws_repo_gap *)b)->segment);
}

static int cmp_tli(const void *a, const void *b)
{
    const ws_summary_tl *x = a, *y = b;
    return x->tli < y->tli ? -1 : x->tli > y->tli;
}

static ws_summary_tl *timeline_of(ws_summary *w, uint32_t tli)
{
    for (int i = 0; i < w->ntl; i++)
        if (w->tl[i].tli == tli)
            return &w->tl[i];
    ws_summary_tl *nt = realloc(w->tl, (size_t)(w->ntl + 1) * sizeof *nt);
    if (!nt)
        return NULL;
    w->tl = nt;
    memset(&w->tl[w->ntl], 0, sizeof w->tl[w->ntl]);
    w->tl[w->ntl].tli = tli;
    return &w->tl[w->ntl++];
}

/* objs sorted: by timeline, then segment number; one pass. */
static int summarise_wal(ws_summary *w)
{
    ws_summary_tl *t = NULL;
    for (int i = 0; i < w->nobjs; i++) {
        const ws_wal_name *n = &w->objs[i].name;
        uint64_t segno;
        w->bytes += w->objs[i].size;
        if (n->kind == WS_WAL_HISTORY) {
            if (name_add(&w->history, n->name) < 0)
                return -1;
            continue;
        }
        if (n->kind == WS_WAL_PARTIAL || n->kind == WS_WAL_BACKUP) {
            if (name_add(n->kind == WS_WAL_PARTIAL ? &w->partial : &w->backup_files, n->name) < 0)
                return -1;
            continue;
        }
        if (n->kind != WS_WAL_SEGMENT || ws_wal_segno(n, w->seg_size, &segno) < 0)
            continue;
        if (!t || t->tli != n->tli) {
            ws_summary_tl *nt = realloc(w->tl, (size_t)(w->ntl + 1) * sizeof *nt);
            if (!nt)
                return -1;
            w->tl = nt;
            t = &w->tl[w->ntl++];
            memset(t, 0, sizeof *t);
            t->tli = n->tli;
            t->first = t->last = segno;
            t->count = 1;
            t->bytes = w->objs[i].size;
            continue;
        }
        if (segno == t->last)
            continue;
        if (segno > t->last + 1) {
            ws_summary_gap *ng = realloc(t->gaps, (size_t)(t->ngaps + 1) * sizeof *ng);
            if (!ng)
                return -1;
            t->gaps = ng;
            t->gaps[t->ngaps++] = (ws_summary_gap){t->last + 1, segno - 1, 0};
        }
        t->last = segno;
        t->count++;
        t->bytes += w->objs[i].size;
    }
    return 0;
}

static int stored(const ws_summary *w, const char *seg)
{
    int lo = 0, hi = w->nobjs - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(w->objs[mid].name.name, seg);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

/* Adds the gap records of segments that are not stored to their timelines as runs, and
 * counts them into the gaps they fall in. */
static int summarise_drops(ws_summary *w)
{
    for (int i = 0; i < w->ngap_records; i++) {
        const ws_repo_gap *g = &w->gap_records[i];
        ws_wal_name n;
        ws_error err;
        uint64_t segno;
        if (ws_wal_parse_name(g->segment, &n, &err) < 0 || n.kind != WS_WAL_SEGMENT ||
            ws_wal_segno(&n, w->seg_size, &segno) < 0)
            continue;
        if (stored(w, g->segment))
            continue; /* stored after all: the segment wins */
        ws_summary_tl *t = timeline_of(w, n.tli);
        if (!t)
            return -1;
        ws_summary_drop *d = t->ndrops ? &t->drops[t->ndrops - 1] : NULL;
        if (d && segno == d->last + 1) {
            d->last = segno;
            if (g->dropped_at < d->dropped_at)
                d->dropped_at = g->dropped_at;
        } else {
            ws_summary_drop *nd = realloc(t->drops, (size_t)(t->ndrops + 1) * sizeof *nd);
            if (!nd)
                return -1;
            t->drops = nd;
            t->drops[t->ndrops++] = (ws_summary_drop){segno, segno, g->dropped_at};
        }
        for (int k = 0; t->count && k < t->ngaps; k++)
            if (segno >= t->gaps[k].first && segno <= t->gaps[k].last)
                t->gaps[k].dropped++;
    }
    if (w->ntl > 1)
        qsort(w->tl, (size_t)w->ntl, sizeof *w->tl, cmp_tli);
    return 0;
}

static int build_owned(ws_summary *w, ws_error *err)
{
    if (w->nobjs > 1)
        qsort(w->objs, (size_t)w->nobjs, sizeof *w->objs, cmp_obj);
    if (w->ngap_records > 1)
        qsort(w->gap_records, (size_t)w->ngap_records, sizeof *w->gap_records, cmp_gap);
    if (summarise_wal(w) < 0 || summarise_drops(w) < 0)
        return ws_error_oom(err);
    return 0;
}

int ws_summary_build(const ws_summary_obj *objs, int nobjs, const ws_repo_gap *gaps, int ngaps,
                     uint32_t seg_size, ws_summary *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    out->seg_size = seg_size;
    if (nobjs) {
        if (!(out->objs = malloc((size_t)nobjs * sizeof *objs)))
            return ws_error_oom(err);
        memcpy(out->objs, objs, (size_t)nobjs * sizeof *objs);
        out->nobjs = nobjs;
    }
    if (ngaps) {
        if (!(out->gap_records = malloc((size_t)ngaps * sizeof *gaps)))
            return ws_error_oom(err);
        memcpy(out->gap_records, gaps, (size_t)ngaps * sizeof *gaps);
        out->ngap_records = ngaps;
    }
    return build_owned(out, err);
}

typedef struct scan {
    ws_summary *w;
    int cap, oom;
} scan;

static int wal_cb(void *arg, const char *key, const ws_storage_info *info)
{
    scan *s = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    if (!base || ws_wal_parse_name(base + 1, &n, &e) < 0)
        return 0;
    ws_summary *w = s->w;
    if (w->nobjs == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        ws_summary_obj *nv = realloc(w->objs, (size_t)cap * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return 1;
        }
        w->objs = nv;
        s->cap = cap;
    }
    w->objs[w->nobjs++] = (ws_summary_obj){n, info->size, info->mtime};
    return 0;
}

int ws_summary_load(ws_repo *r, uint32_t seg_size, ws_summary *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    out->seg_size = seg_size;
    scan s = {out, 0, 0};
    if (ws_storage_list(ws_repo_storage(r), WS_KEY_WAL_PREFIX, wal_cb, &s, err) < 0)
        return -1;
    if (s.oom)
        return ws_error_oom(err);
    if (ws_repo_gap_list(r, &out->gap_records, &out->ngap_records, err) < 0)
        return -1;
    return build_owned(out, err);
}

void ws_summary_free(ws_summary *w)
{
    for (int i = 0; i < w->ntl; i++) {
        free(w->tl[i].gaps);
        free(w->tl[i].drops);
    }
    free(w->tl);
    free(w->objs);
    free(w->gap_records);
    names_free(&w->history);
    names_free(&w->partial);
    names_free(&w->backup_files);
    memset(w, 0, sizeof *w);
}

const ws_summary_tl *ws_summary_timeline(const ws_summary *w, uint32_t tli)
{
    for (int i = 0; i < w->ntl; i++)
        if (w->tl[i].tli == tli)
            return &w->tl[i];
    return NULL;
}
