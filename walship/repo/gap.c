/*
 * gap.c — gap records: the repository's memory of WAL segments that push dropped without
 * storing them (push-queue-max). docs/repository-format.md, "Gaps", is the specification.
 *
 * A record is a small text object in the ordinary object format (64-byte header, codec none,
 * kind WS_OBJ_GAP), so that the same writer gives it the same atomicity and durability as a
 * segment, and the same reader verifies it.
 */
#include "walship/repo/repo.h"
#include "walship/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GAP_FORMAT     1
#define GAP_RECORD_MAX 4096

int ws_repo_gap_key(const ws_wal_name *n, char *buf, size_t len)
{
    if (n->kind != WS_WAL_SEGMENT)
        return -1;
    int k = snprintf(buf, len, "gap/%.16s/%s", n->name, n->name);
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

static int segment_key(const char *segment, char *key, size_t len, ws_error *err)
{
    ws_wal_name n;
    if (ws_wal_parse_name(segment, &n, err) < 0)
        return -1;
    if (ws_repo_gap_key(&n, key, len) < 0)
        return ws_error_set(err, WS_EINVAL, "%s is not a WAL segment: no gap record for it",
                            segment);
    return 0;
}

int ws_repo_gap_record(ws_repo *r, const ws_repo_gap *g, ws_error *err)
{
    char key[128], stamp[32], text[1024];
    if (segment_key(g->segment, key, sizeof key, err) < 0)
        return -1;
    ws_utc_text(g->dropped_at, stamp);
    int len = snprintf(text, sizeof text,
                       "# walship gap record: this WAL segment was not archived\n"
                       "walship-gap = %d\nsegment = %s\nreason = %s\ndropped-at = %s\n"
                       "backlog-files = %" PRIu64 "\nbacklog-bytes = %" PRIu64
                       "\nlimit-bytes = %" PRIu64 "\ncreated-by = walship %s\n",
                       GAP_FORMAT, g->segment, g->reason, stamp, g->backlog_files, g->backlog_bytes,
                       g->limit_bytes, WS_VERSION);
    if (len < 0 || (size_t)len >= sizeof text)
        return ws_error_set(err, WS_EINVAL, "gap record of %s is too long", g->segment);
    ws_repo_obj_writer *w;
    if (ws_repo_obj_create(&r, 1, key, WS_OBJ_GAP, WS_CODEC_NONE, 1, (uint64_t)len, &w, err) < 0)
        goto fail;
    if (ws_repo_obj_write(w, text, (size_t)len, err) < 0) {
        ws_repo_obj_abort(w);
        goto fail;
    }
    ws_repo_put_result res;
    memset(&res, 0, sizeof res);
    if (ws_repo_obj_commit(w, NULL, &res, err) == 0)
        return 0;
    /* a record from an earlier drop of the same segment (other times, other backlog): the
     * first one stays and is what the segment's gap is remembered by */
    if (res.status == WS_PUT_FAILED && res.err.code == WS_EMISMATCH) {
        ws_error_clear(err);
        return 0;
    }
fail:
    ws_error_prefix(err, "cannot record the gap of %s in %s", g->segment, ws_repo_describe(r));
    return -1;
}

/* ---- reading one record ---- */

static int parse_record(const char *text, const char *key, ws_repo_gap *g, ws_error *err)
{
    memset(g, 0, sizeof *g);
    int seen = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char buf[256], k[32], v[200];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
        line += nl ? n + 1 : n;
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        if (sscanf(buf, "%31[a-z-] = %199s", k, v) != 2)
            return ws_error_set(err, WS_ECORRUPT, "gap record %s: malformed line \"%s\"", key, buf);
        char *end;
        unsigned long long num = strtoull(v, &end, 10);
        int numeric = *end == '\0';
        if (strcmp(k, "walship-gap") == 0 && numeric) {
            if (num > GAP_FORMAT) {
                ws_error_set(err, WS_ECONFIG,
                             "gap record %s has format %llu; this walship reads format %d", key,
                             num, GAP_FORMAT);
                ws_error_hint(err, "upgrade walship");
                return -1;
            }
            seen |= 1;
        } else if (strcmp(k, "segment") == 0) {
            snprintf(g->segment, sizeof g->segment, "%s", v);
            seen |= 2;
        } else if (strcmp(k, "reason") == 0) {
            snprintf(g->reason, sizeof g->reason, "%s", v);
            seen |= 4;
        } else if (strcmp(k, "dropped-at") == 0 && ws_utc_parse(v, &g->dropped_at) == 0) {
            seen |= 8;
        } else if (strcmp(k, "backlog-files") == 0 && numeric) {
            g->backlog_files = num;
        } else if (strcmp(k, "backlog-bytes") == 0 && numeric) {
            g->backlog_bytes = num;
        } else if (strcmp(k, "limit-bytes") == 0 && numeric) {
            g->limit_bytes = num;
        }
    }
    if (seen != 15)
        return ws_error_set(err, WS_ECORRUPT,
                            "gap record %s lacks walship-gap, segment, reason or dropped-at", key);
    return 0;
}

int ws_repo_gap_parse(const char *text, const char *key, ws_repo_gap *g, ws_error *err)
{
    return parse_record(text, key, g, err);
}

int ws_repo_gap_get(ws_repo *r, const char *segment, ws_repo_gap *g, ws_error *err)
{
    char key[128];
    if (segment_key(segment, key, sizeof key, err) < 0)
        return -1;
    ws_stage *m = ws_stage_mem_sink_new(GAP_RECORD_MAX - 1, "gap record");
    if (!m)
        return ws_error_oom(err);
    int rc = ws_repo_obj_read(r, key, m, NULL, err);
    size_t len;
    const char *text = ws_stage_mem_data(m, &len);
    if (rc == 0 && memchr(text, '\0', len))
        rc = ws_error_set(err, WS_ECORRUPT, "gap record %s is not text", key);
    if (rc == 0)
        rc = parse_record(text, key, g, err);
    ws_stage_free(m);
    if (rc < 0)
        return -1;
    if (strcmp(g->segment, segment) != 0)
        return ws_error_set(err, WS_ECORRUPT, "gap record %s names segment %s", key, g->segment);
    return 0;
}

/* ---- listing ---- */

typedef struct gap_list {
    ws_repo_gap *v;
    int n, cap, oom;
} gap_list;

static int list_cb(void *arg, const char *key, const ws_storage_info *info)
{
    gap_list *l = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    char want[128];
    /* only well-formed records at their own key: gap/<16 hex>/<segment> */
    if (!base || ws_wal_parse_name(base + 1, &n, &e) < 0 ||
        ws_repo_gap_key(&n, want, sizeof want) < 0 || strcmp(want, key) != 0)
        return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        ws_repo_gap *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            l->oom = 1;
            return 1;
        }
        l->v = nv;
        l->cap = cap;
    }
    ws_repo_gap *g = &l->v[l->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->segment, sizeof g->segment, "%s", n.name);
    g->dropped_at = info->mtime;
    return 0;
}

static int cmp_gap(const void *a, const void *b)
{
    return strcmp(((const ws_repo_gap *)a)->segment, ((const ws_repo_gap *)b)->segment);
}

int ws_repo_gap_list(ws_repo *r, ws_repo_gap **out, int *n, ws_error *err)
{
    gap_list l;
    memset(&l, 0, sizeof l);
    *out = NULL;
    *n = 0;
    if (ws_storage_list(ws_repo_storage(r), "gap/", list_cb, &l, err) < 0) {
        free(l.v);
        return -1;
    }
    if (l.oom) {
        free(l.v);
        return ws_error_oom(err);
    }
    if (l.n)
        qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_gap);
    *out = l.v;
    *n = l.n;
    return 0;
}
