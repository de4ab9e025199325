/*
 * verify.c — `walship verify [--backup ID] [--wal-only] [--json]` (docs/verify.md).
 *
 * Every repository, one after the other; in each, every object is read the way fetch and
 * restore read it, verify-parallel at once: the object header, decompression, the plaintext
 * length and SHA-256 (ws_repo_obj_read), and for a WAL segment or .partial its first page
 * header against its name, the repository's system identifier and segment size. A backup's
 * data objects are read against its manifest: each must hold the extents the manifest puts
 * in it, and a file held whole in one object is checked against its own SHA-256 as it
 * streams; the server's backup_manifest is read too. The walship manifest was verified when
 * the catalog was loaded: an unreadable one is a problem.
 *
 * Then the WAL as recovery would walk it: from the start of the oldest backup (or, without
 * one, the first segment of each timeline) to the end of the archive, following the timeline
 * history files. Missing segments are named as ranges; segments push-queue-max dropped
 * (gap records) are shown as recorded gaps, not as damage. For each backup: whether the WAL
 * from its start to its stop segment is there and readable (consistent), and how far it can
 * be replayed.
 *
 * Memory is bounded by the listing (one small record per object) and one manifest's entries
 * at a time per backup; object bytes stream through.
 *
 * Exit 0: no problem; 1: problems, each listed with its repository, key and what is wrong;
 * 2: usage or configuration.
 */
#include "walship/repo/keys.h"
#include "walship/repo/catalog.h"
#include "walship/repo/manifest.h"
#include "restore/restore.h"
#include "walship/clock.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/repo/catchup.h"
#include "walship/exit.h"
#include "walship/repo/open.h"
#include "walship/storage/storage.h"
#include "walship/log.h"
#include "walship/ops/ops.h"
#include "walship/progress.h"
#include "walship/timeline.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- problems ---- */

typedef struct problem {
    char repo[256];
    char key[256];
    char what[sizeof(((ws_error *)0)->msg)];
} problem;

typedef struct problems {
    pthread_mutex_t mu;
    problem *v;
    int n, cap;
} problems;

static void problem_add(problems *p, const char *repo, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem_add(problems *p, const char *repo, const char *key, const char *fmt, ...)
{
    pthread_mutex_lock(&p->mu);
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        problem *nv = realloc(p->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&p->mu);
            return;
        }
        p->v = nv;
        p->cap = cap;
    }
    problem *x = &p->v[p->n++];
    snprintf(x->repo, sizeof x->repo, "%s", repo);
    snprintf(x->key, sizeof x->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->what, sizeof x->what, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&p->mu);
}

/* ---- what one repository holds ---- */

typedef struct walobj {
    char key[96];
    ws_wal_name name;
    uint64_t segno; /* segments and partials */
    uint64_t stored;
    int bad; /* read and found wrong (or unreadable) */
} walobj;

typedef struct piece {
    uint64_t off, len;
    int file;  /* index into files */
    int whole; /* the file's only extent: its SHA-256 is checked here */
} piece;

typedef struct bobject {
    char name[32];   /* "data/000001", or "backup_manifest" */
    uint64_t stored; /* its bytes in the repository (listing) */
    piece *pieces;   /* by offset */
    int npieces, cap;
    uint64_t end; /* where its last extent ends */
} bobject;

typedef struct bfile {
    char *path;
    unsigned char sha256[32];
} bfile;

typedef struct backup {
    const ws_manifest_info *info;
    bobject *objs;
    int nobjs;
    bfile *files;
    int nfiles, fcap;
    int bad; /* an object failed */
} backup;

typedef enum { ITEM_WAL, ITEM_BACKUP } item_kind;

typedef struct item {
    item_kind kind;
    int idx; /* walobj, or backup */
    int obj; /* object of the backup */
} item;

typedef struct tlrun {
    uint32_t tli;
    uint64_t first, last;
    int recorded; /* a run of gap records (push-queue-max), not damage */
} tlrun;

typedef struct bresult {
    int consistent;
    char first_missing[32]; /* between start and stop, "" if none */
    int replayable;         /* to the end of the archive */
    char replay_end[32];    /* the last segment replay reaches */
    char stops_at[32];      /* the first segment it cannot read, "" if none */
    int stop_recorded;      /* ... which is a recorded gap */
} bresult;

typedef struct vrepo {
    ws_repo *r;
    const char *desc;
    ws_repo_identity id;
    walobj *wal;
    int nwal, wcap;
    ws_repo_gap *gaps;
    int ngaps;
    ws_catalog cat;
    backup *backups;
    int nbackups;
    item *items;
    int nitems;
    tlrun *runs; /* missing and recorded, for the report */
    int nruns, rcap;
    bresult *bres;
    uint64_t stored_total;
} vrepo;

typedef struct repaired {
    char repo[256], key[128], from[256];
} repaired;

typedef struct verify {
    const ws_config *cfg;
    problems probs;
    repaired *rep; /* --repair: what was copied */
    int nrep;
    vrepo *cur;
    int repo_index;
    ws_repo ***wrepos; /* per worker */
    int *wnrepos;
    int workers;
    atomic_uint_fast64_t stored_done, plain_done, objects_done;
    ws_progress progress;
} verify;

static int cmp_walobj(const void *a, const void *b)
{
    const walobj *x = a, *y = b;
    return strcmp(x->name.name, y->name.name);
}

static int wal_list_cb(void *arg, const char *key, const ws_storage_info *info)
{
    vrepo *v = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    if (!base || ws_wal_parse_name(base + 1, &n, &e) < 0)
        return 0; /* not a WAL object: nothing reads it */
    if (v->nwal == v->wcap) {
        int cap = v->wcap ? v->wcap * 2 : 256;
        walobj *nv = realloc(v->wal, (size_t)cap * sizeof *nv);
        if (!nv)
            return 1;
        v->wal = nv;
        v->wcap = cap;
    }
    walobj *w = &v->wal[v->nwal++];
    memset(w, 0, sizeof *w);
    snprintf(w->key, sizeof w->key, "%s", key);
    w->name = n;
    w->stored = info->size;
    return 0;
}

/* ---- reading a WAL object ---- */

typedef struct head_sink {
    ws_stage base;
    unsigned char page[WS_WAL_LONG_HEADER_SIZE];
    size_t have;
    uint64_t total;
} head_sink;

static int head_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    (void)err;
    head_sink *h = (head_sink *)st;
    if (h->have < sizeof h->page) {
        size_t k = sizeof h->page - h->have < len ? sizeof h->page - h->have : len;
        memcpy(h->page + h->have, buf, k);
        h->have += k;
    }
    h->total += len;
    return 0;
}

static int head_flush(ws_stage *st, ws_error *err)
{
    (void)st, (void)err;
    return 0;
}

static void head_free(ws_stage *st)
{
    (void)st; /* on the caller's stack */
}

static const ws_stage_ops head_ops = {"verify-wal", head_write, head_flush, head_free};

static void verify_wal(verify *V, ws_repo *r, walobj *w)
{
    vrepo *v = V->cur;
    head_sink h;
    memset(&h, 0, sizeof h);
    h.base.ops = &head_ops;
    ws_objhdr oh;
    ws_error err;
    ws_error_clear(&err);
    if (ws_repo_obj_read(r, w->key, &h.base, &oh, &err) < 0) {
        w->bad = 1;
        problem_add(&V->probs, v->desc, w->key, "%s", err.msg);
        return;
    }
    atomic_fetch_add(&V->plain_done, oh.length);
    if (w->name.kind != WS_WAL_SEGMENT && w->name.kind != WS_WAL_PARTIAL)
        return;
    ws_wal_header wh;
    if (ws_wal_check_header(h.page, h.have, &w->name, oh.length, &wh, &err) < 0) {
        w->bad = 1;
        problem_add(&V->probs, v->desc, w->key, "not the segment it is stored as: %s", err.msg);
    } else if (wh.sysid != v->id.sysid) {
        w->bad = 1;
        problem_add(&V->probs, v->desc, w->key,
                    "belongs to database system %" PRIu64 ", not to the repository's %" PRIu64
                    " (another cluster's WAL)",
                    wh.sysid, v->id.sysid);
    } else if (v->id.seg_size && oh.length != v->id.seg_size) {
        w->bad = 1;
        problem_add(&V->probs, v->desc, w->key,
                    "a segment of %" PRIu64 " bytes; the repository holds segments of %" PRIu32,
                    oh.length, v->id.seg_size);
    }
}

/* ---- reading a backup object against the manifest ---- */

typedef struct bsink {
    ws_stage base;
    const backup *b;
    const bobject *o;
    int cur;
    uint64_t pos;
    EVP_MD_CTX *md;
    int hashing;
    char bad[512]; /* the first file that did not match */
} bsink;

static int bsink_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    bsink *d = (bsink *)st;
    const unsigned char *p = buf;
    while (len > 0) {
        if (d->cur >= d->o->npieces) {
            d->pos += len;
            return 0;
        }
        const piece *pc = &d->o->pieces[d->cur];
        if (d->pos < pc->off) {
            uint64_t skip = pc->off - d->pos;
            size_t k = skip < len ? (size_t)skip : len;
            p += k;
            len -= k;
            d->pos += k;
            continue;
        }
        if (pc->whole && !d->hashing) {
            if (EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1)
                return ws_error_set(err, WS_EINTERNAL, "SHA-256 failed");
            d->hashing = 1;
        }
        uint64_t left = pc->off + pc->len - d->pos;
        size_t k = left < len ? (size_t)left : len;
        if (d->hashing && EVP_DigestUpdate(d->md, p, k) != 1)
            return ws_error_set(err, WS_EINTERNAL, "SHA-256 failed");
        p += k;
        len -= k;
        d->pos += k;
        if (d->pos == pc->off + pc->len) {
            if (d->hashing) {
                unsigned char got[32];
                unsigned int n = 0;
                d->hashing = 0;
                if (EVP_DigestFinal_ex(d->md, got, &n) != 1)
                    return ws_error_set(err, WS_EINTERNAL, "SHA-256 failed");
                if (memcmp(got, d->b->files[pc->file].sha256, 32) != 0 && !d->bad[0])
                    snprintf(d->bad, sizeof d->bad, "%s", d->b->files[pc->file].path);
            }
            d->cur++;
        }
    }
    return 0;
}

static int bsink_flush(ws_stage *st, ws_error *err)
{
    bsink *d = (bsink *)st;
    if (d->cur < d->o->npieces)
        return ws_error_set(err, WS_ECORRUPT,
                            "ends at byte %" PRIu64 ", before the files the manifest puts in it",
                            d->pos);
    return 0;
}

static void bsink_free(ws_stage *st)
{
    (void)st;
}

static const ws_stage_ops bsink_ops = {"verify-backup", bsink_write, bsink_flush, bsink_free};

static void verify_backup_object(verify *V, ws_repo *r, backup *b, int oi)
{
    vrepo *v = V->cur;
    const bobject *o = &b->objs[oi];
    char key[256];
    if (ws_manifest_key(b->info->id, o->name, key, sizeof key) < 0)
        return;
    bsink d;
    memset(&d, 0, sizeof d);
    d.base.ops = &bsink_ops;
    d.b = b;
    d.o = o;
    d.md = EVP_MD_CTX_new();
    if (!d.md) {
        problem_add(&V->probs, v->desc, key, "out of memory");
        return;
    }
    ws_objhdr oh;
    ws_error err;
    ws_error_clear(&err);
    int rc = ws_repo_obj_read_limit(r, key, &d.base, &oh, 0, o->end, &err);
    EVP_MD_CTX_free(d.md);
    if (rc < 0) {
        b->bad = 1;
        if (err.code == WS_ENOENT)
            problem_add(&V->probs, v->desc, key,
                        "missing: backup %s needs this object (its manifest names it)",
                        b->info->id);
        else
            problem_add(&V->probs, v->desc, key, "backup %s: %s", b->info->id, err.msg);
        return;
    }
    atomic_fetch_add(&V->plain_done, oh.length);
    if (d.bad[0]) {
        b->bad = 1;
        problem_add(&V->probs, v->desc, key,
                    "backup %s: file %s does not match its SHA-256 in the manifest", b->info->id,
                    d.bad);
    }
}

static int run_item(void *arg, int worker, int i, ws_error *err)
{
    (void)err;
    verify *V = arg;
    vrepo *v = V->cur;
    ws_repo *r = V->wrepos[worker][V->repo_index];
    item *it = &v->items[i];
    uint64_t stored = 0;
    if (it->kind == ITEM_WAL) {
        verify_wal(V, r, &v->wal[it->idx]);
        stored = v->wal[it->idx].stored;
    } else {
        verify_backup_object(V, r, &v->backups[it->idx], it->obj);
        stored = v->backups[it->idx].objs[it->obj].stored;
    }
    atomic_fetch_add(&V->stored_done, stored);
    atomic_fetch_add(&V->objects_done, 1);
    return 0; /* a problem never stops the others */
}

static void tick(void *arg)
{
    verify *V = arg;
    ws_progress_show(&V->progress, atomic_load(&V->stored_done), 0);
}

/* ---- a backup's manifest as objects and pieces ---- */

typedef struct mload {
    backup *b;
    int oom, bad;
    char why[512];
} mload;

static bobject *bobject_get(backup *b, const char *name)
{
    for (int i = b->nobjs - 1; i >= 0; i--) /* extents name objects mostly in order */
        if (strcmp(b->objs[i].name, name) == 0)
            return &b->objs[i];
    bobject *nv = realloc(b->objs, (size_t)(b->nobjs + 1) * sizeof *nv);
    if (!nv)
        return NULL;
    b->objs = nv;
    bobject *o = &b->objs[b->nobjs++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    return o;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int manifest_entry(void *arg, const ws_manifest_entry *e, ws_error *err)
{
    (void)err;
    mload *m = arg;
    backup *b = m->b;
    if (e->kind != WS_MANIFEST_FILE || !e->extents || strcmp(e->extents, "-") == 0)
        return 0;
    if (b->nfiles == b->fcap) {
        int cap = b->fcap ? b->fcap * 2 : 256;
        bfile *nv = realloc(b->files, (size_t)cap * sizeof *nv);
        if (!nv)
            return m->oom = 1, ws_error_oom(err);
        b->files = nv;
        b->fcap = cap;
    }
    bfile *f = &b->files[b->nfiles];
    for (int i = 0; i < 32; i++) {
        int hi = hexval(e->sha256[2 * i]), lo = hexval(e->sha256[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return ws_error_set(err, WS_ECORRUPT, "file %s has a malformed SHA-256", e->path);
        f->sha256[i] = (unsigned char)(hi << 4 | lo);
    }
    if (!(f->path = strdup(e->path)))
        return m->oom = 1, ws_error_oom(err);
    int fi = b->nfiles++;
    int nextents = 1;
    for (const char *c = e->extents; *c; c++)
        nextents += *c == ',';
    uint64_t total = 0;
    for (const char *c = e->extents; *c;) {
        char name[32];
        unsigned long long off, len;
        int used = 0;
        if (sscanf(c, "%31[^@]@%llu+%llu%n", name, &off, &len, &used) != 3 || used == 0 ||
            strncmp(name, "data/", 5) != 0 || len == 0 || off + len < off)
            return ws_error_set(err, WS_ECORRUPT, "file %s has malformed extents \"%.60s\"",
                                e->path, e->extents);
        bobject *o = bobject_get(b, name);
        if (!o)
            return m->oom = 1, ws_error_oom(err);
        if (o->npieces == o->cap) {
            int cap = o->cap ? o->cap * 2 : 16;
            piece *nv = realloc(o->pieces, (size_t)cap * sizeof *nv);
            if (!nv)
                return m->oom = 1, ws_error_oom(err);
            o->pieces = nv;
            o->cap = cap;
        }
        o->pieces[o->npieces++] = (piece){off, len, fi, nextents == 1};
        if (off + len > o->end)
            o->end = off + len;
        total += len;
        c += used;
        if (*c == ',')
            c++;
    }
    if (total != e->size)
        return ws_error_set(err, WS_ECORRUPT,
                            "file %s: its extents hold %" PRIu64 " bytes, its size is %" PRIu64,
                            e->path, total, e->size);
    return 0;
}

static int cmp_piece(const void *a, const void *b)
{
    const piece *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static void backup_free(backup *b)
{
    for (int i = 0; i < b->nobjs; i++)
        free(b->objs[i].pieces);
    free(b->objs);
    for (int i = 0; i < b->nfiles; i++)
        free(b->files[i].path);
    free(b->files);
}

static int size_cb(void *arg, const char *key, const ws_storage_info *info)
{
    backup *b = arg;
    const char *name = ws_key_backup_name(key);
    if (!name)
        return 0;
    for (int i = 0; i < b->nobjs; i++)
        if (strcmp(b->objs[i].name, name) == 0)
            b->objs[i].stored = info->size;
    return 0;
}

/* Loads the entries of b's manifest; a failure is a problem of the backup. */
static int backup_load(verify *V, vrepo *v, backup *b)
{
    mload m = {b, 0, 0, {0}};
    ws_manifest_info info;
    ws_error err;
    ws_error_clear(&err);
    char key[256];
    ws_manifest_key(b->info->id, WS_MANIFEST_NAME, key, sizeof key);
    if (ws_manifest_read(v->r, b->info->id, &info, manifest_entry, &m, &err) < 0) {
        b->bad = 1;
        problem_add(&V->probs, v->desc, key, "%s", err.msg);
        return m.oom ? -1 : 0;
    }
    for (int i = 0; i < b->nobjs; i++) {
        bobject *o = &b->objs[i];
        if (o->npieces > 1)
            qsort(o->pieces, (size_t)o->npieces, sizeof *o->pieces, cmp_piece);
        for (int k = 1; k < o->npieces; k++)
            if (o->pieces[k - 1].off + o->pieces[k - 1].len > o->pieces[k].off) {
                b->bad = 1;
                problem_add(&V->probs, v->desc, key, "extents of %s and %s overlap in %s",
                            b->files[o->pieces[k - 1].file].path, b->files[o->pieces[k].file].path,
                            o->name);
                break;
            }
    }
    /* the server's backup_manifest: read as an object, no pieces */
    bobject *sm = bobject_get(b, WS_MANIFEST_SERVER);
    if (!sm)
        return -1;
    /* stored sizes, for progress and the figures */
    char prefix[128];
    ws_key_backup_prefix(b->info->id, prefix, sizeof prefix);
    ws_storage_list(ws_repo_storage(v->r), prefix, size_cb, b, &err);
    return 0;
}

/* ---- WAL continuity ---- */

typedef struct segref {
    uint32_t tli;
    uint64_t segno;
} segref;

static int cmp_segref(const void *a, const void *b)
{
    const segref *x = a, *y = b;
    if (x->tli != y->tli)
        return x->tli < y->tli ? -1 : 1;
    return x->segno < y->segno ? -1 : x->segno > y->segno;
}

typedef struct walmap {
    segref *good; /* stored and verified, sorted */
    int ngood;
    segref *all; /* stored (verified or not), sorted */
    int nall;
    segref *gap; /* gap records, sorted */
    int ngap;
    ws_tl_history *hist;
    int nhist;
} walmap;

static int has(const segref *v, int n, uint32_t tli, uint64_t segno)
{
    segref k = {tli, segno};
    return n && bsearch(&k, v, (size_t)n, sizeof *v, cmp_segref) != NULL;
}

static const ws_tl_history *hist_of(const walmap *m, uint32_t tli)
{
    for (int i = 0; i < m->nhist; i++)
        if (m->hist[i].tli == tli)
            return &m->hist[i];
    return NULL;
}

/* The newest timeline whose lineage holds tli: the end of the archive recovery from tli
 * reaches with recovery_target_timeline = latest. */
static const ws_tl_history *newest_from(const walmap *m, uint32_t tli)
{
    const ws_tl_history *best = hist_of(m, tli);
    for (int i = 0; i < m->nhist; i++)
        if (ws_tl_history_has(&m->hist[i], tli, NULL) && (!best || m->hist[i].tli > best->tli))
            best = &m->hist[i];
    return best;
}

static uint64_t last_on(const walmap *m, uint32_t tli, int *found)
{
    uint64_t last = 0;
    *found = 0;
    for (int i = 0; i < m->nall; i++)
        if (m->all[i].tli == tli) {
            last = m->all[i].segno;
            *found = 1;
        }
    return last;
}

static void run_add(vrepo *v, uint32_t tli, uint64_t segno, int recorded)
{
    if (v->nruns) {
        tlrun *t = &v->runs[v->nruns - 1];
        if (t->tli == tli && t->recorded == recorded && t->last + 1 == segno) {
            t->last = segno;
            return;
        }
    }
    for (int i = 0; i < v->nruns; i++)
        if (v->runs[i].tli == tli && segno >= v->runs[i].first && segno <= v->runs[i].last)
            return; /* reported already */
    if (v->nruns == v->rcap) {
        int cap = v->rcap ? v->rcap * 2 : 16;
        tlrun *nv = realloc(v->runs, (size_t)cap * sizeof *nv);
        if (!nv)
            return;
        v->runs = nv;
        v->rcap = cap;
    }
    v->runs[v->nruns++] = (tlrun){tli, segno, segno, recorded};
}

/* Walks from (tli, from) to the end of the archive along the newest lineage; records missing
 * and recorded runs into v (record != 0), and returns the first segment recovery cannot read
 * (*stop_tli, *stop, with *recorded) or 0 when it reaches the end (*end: the last one). */
static int walk(vrepo *v, const walmap *m, uint32_t tli, uint64_t from, int record,
                uint32_t *stop_tli, uint64_t *stop, int *recorded, uint32_t *end_tli, uint64_t *end)
{
    const ws_tl_history *h = newest_from(m, tli);
    uint32_t last_tli = h ? h->tli : tli;
    int found;
    uint64_t last = last_on(m, last_tli, &found);
    /* the lineage's newest timeline may hold no segment yet: the end is then the last
     * segment on the newest of its ancestors that holds one */
    for (int k = h ? h->n - 1 : -1; !found && k >= 0; k--) {
        last = last_on(m, h->anc[k].tli, &found);
        if (found)
            last_tli = h->anc[k].tli;
    }
    *end_tli = last_tli;
    *end = last;
    if (!found)
        last = from; /* nothing stored at all */
    int stopped = 0;
    for (uint64_t s = from; s <= last; s++) {
        uint32_t t = ws_tl_segment_tli(h, tli, s, v->id.seg_size);
        if (has(m->good, m->ngood, t, s))
            continue;
        int rec = !has(m->all, m->nall, t, s) && has(m->gap, m->ngap, t, s);
        if (!stopped) {
            stopped = 1;
            *stop_tli = t;
            *stop = s;
            *recorded = rec;
        }
        if (!record)
            return 1;
        if (!has(m->all, m->nall, t, s)) /* a stored bad one is named by its read */
            run_add(v, t, s, rec);
    }
    return stopped;
}

static void segkey(const vrepo *v, uint32_t tli, uint64_t segno, char *buf, size_t len)
{
    char name[32];
    ws_wal_format_segment(name, tli, segno, v->id.seg_size);
    ws_wal_name n;
    ws_error e;
    if (ws_wal_parse_name(name, &n, &e) < 0 || ws_repo_wal_key(&n, buf, len) < 0)
        snprintf(buf, len, "%s", name);
}

static int continuity(verify *V, vrepo *v)
{
    walmap m;
    memset(&m, 0, sizeof m);
    int rc = -1;
    uint32_t seg = v->id.seg_size;
    m.good = calloc((size_t)v->nwal + 1, sizeof *m.good);
    m.all = calloc((size_t)v->nwal + 1, sizeof *m.all);
    m.gap = calloc((size_t)v->ngaps + 1, sizeof *m.gap);
    m.hist = calloc((size_t)v->nwal + 1, sizeof *m.hist);
    if (!m.good || !m.all || !m.gap || !m.hist)
        goto out;
    uint32_t tlis[64];
    int ntlis = 0;
    for (int i = 0; i < v->nwal; i++) {
        walobj *w = &v->wal[i];
        if (w->name.kind == WS_WAL_HISTORY) {
            ws_error err;
            ws_error_clear(&err);
            if (!w->bad && ws_tl_history_load(v->r, w->name.tli, &m.hist[m.nhist], &err) == 0)
                m.nhist++;
            else if (!w->bad)
                problem_add(&V->probs, v->desc, w->key, "%s", err.msg);
            continue;
        }
        if (w->name.kind != WS_WAL_SEGMENT || ws_wal_segno(&w->name, seg, &w->segno) < 0)
            continue;
        m.all[m.nall++] = (segref){w->name.tli, w->segno};
        if (!w->bad)
            m.good[m.ngood++] = (segref){w->name.tli, w->segno};
        int known = 0;
        for (int k = 0; k < ntlis; k++)
            known |= tlis[k] == w->name.tli;
        if (!known && ntlis < 64)
            tlis[ntlis++] = w->name.tli;
    }
    for (int i = 0; i < v->ngaps; i++) {
        ws_wal_name n;
        ws_error e;
        uint64_t s;
        if (ws_wal_parse_name(v->gaps[i].segment, &n, &e) == 0 && n.kind == WS_WAL_SEGMENT &&
            ws_wal_segno(&n, seg, &s) == 0)
            m.gap[m.ngap++] = (segref){n.tli, s};
    }
    qsort(m.good, (size_t)m.ngood, sizeof *m.good, cmp_segref);
    qsort(m.all, (size_t)m.nall, sizeof *m.all, cmp_segref);
    qsort(m.gap, (size_t)m.ngap, sizeof *m.gap, cmp_segref);
    /* a timeline after the first needs its history file */
    for (int k = 0; k < ntlis; k++)
        if (tlis[k] > 1 && !hist_of(&m, tlis[k])) {
            char key[96];
            ws_wal_name n;
            ws_error e;
            char name[32];
            snprintf(name, sizeof name, "%08X.history", tlis[k]);
            if (ws_wal_parse_name(name, &n, &e) < 0 || ws_repo_wal_key(&n, key, sizeof key) < 0)
                snprintf(key, sizeof key, "%s", name);
            problem_add(&V->probs, v->desc, key,
                        "timeline %" PRIu32 " holds segments but its history file is missing "
                        "or unreadable: recovery cannot follow it",
                        tlis[k]);
        }
    /* from the oldest backup (the catalog is by start time) */
    const ws_manifest_info *oldest = v->cat.n ? &v->cat.backups[0] : NULL;
    uint64_t from_segno = 0;
    if (oldest) {
        uint32_t st, et;
        uint64_t s, e;
        int rec;
        from_segno = ws_wal_lsn_segno(oldest->start_lsn, seg);
        walk(v, &m, oldest->start_tli, from_segno, 1, &st, &s, &rec, &et, &e);
    }
    /* every timeline's own holes (from the oldest backup's start on) */
    for (int k = 0; k < ntlis; k++) {
        uint64_t prev = 0;
        int have = 0;
        for (int i = 0; i < m.nall; i++) {
            if (m.all[i].tli != tlis[k])
                continue;
            uint64_t s = m.all[i].segno;
            if (have)
                for (uint64_t x = prev + 1; x < s; x++)
                    if (x >= from_segno)
                        run_add(v, tlis[k], x, has(m.gap, m.ngap, tlis[k], x));
            prev = s;
            have = 1;
        }
    }
    for (int i = 0; i < v->nruns; i++) {
        tlrun *t = &v->runs[i];
        if (t->recorded)
            continue;
        char a[32], z[32], key[96];
        ws_wal_format_segment(a, t->tli, t->first, seg);
        ws_wal_format_segment(z, t->tli, t->last, seg);
        segkey(v, t->tli, t->first, key, sizeof key);
        problem_add(&V->probs, v->desc, key,
                    "missing segment(s) %s .. %s (%" PRIu64 ") on timeline %" PRIu32
                    ": recovery cannot pass them",
                    a, z, t->last - t->first + 1, t->tli);
    }
    /* each backup */
    v->bres = calloc((size_t)v->nbackups + 1, sizeof *v->bres);
    if (!v->bres)
        goto out;
    for (int i = 0; i < v->nbackups; i++) {
        const ws_manifest_info *b = v->backups[i].info;
        bresult *br = &v->bres[i];
        uint64_t s0 = ws_wal_lsn_segno(b->start_lsn, seg);
        uint64_t s1 = s0;
        ws_wal_name sn;
        ws_error e;
        if (ws_wal_parse_name(b->stop_wal, &sn, &e) < 0 || ws_wal_segno(&sn, seg, &s1) < 0)
            s1 = ws_wal_lsn_segno(b->stop_lsn ? b->stop_lsn - 1 : 0, seg);
        const ws_tl_history *h = hist_of(&m, b->stop_tli);
        br->consistent = 1;
        for (uint64_t s = s0; s <= s1; s++) {
            uint32_t t = ws_tl_segment_tli(h, b->start_tli, s, seg);
            if (has(m.good, m.ngood, t, s))
                continue;
            br->consistent = 0;
            ws_wal_format_segment(br->first_missing, t, s, seg);
            char key[96];
            segkey(v, t, s, key, sizeof key);
            int stored = has(m.all, m.nall, t, s);
            problem_add(&V->probs, v->desc, key,
                        "backup %s cannot reach consistency: segment %s of its WAL (%s .. %s) "
                        "is %s",
                        b->id, br->first_missing, b->start_wal, b->stop_wal,
                        stored                     ? "unreadable"
                        : has(m.gap, m.ngap, t, s) ? "a recorded gap (dropped by push-queue-max)"
                                                   : "missing");
            break;
        }
        uint32_t st = 0, et = 0;
        uint64_t ss = 0, es = 0;
        int rec = 0;
        int stopped = walk(v, &m, b->start_tli, s0, 0, &st, &ss, &rec, &et, &es);
        br->replayable = !stopped;
        if (stopped) {
            ws_wal_format_segment(br->stops_at, st, ss, seg);
            br->stop_recorded = rec;
            if (ss > s0)
                ws_wal_format_segment(
                    br->replay_end,
                    ws_tl_segment_tli(newest_from(&m, b->start_tli), b->start_tli, ss - 1, seg),
                    ss - 1, seg);
        } else {
            ws_wal_format_segment(br->replay_end, et, es, seg);
        }
    }
    rc = 0;
out:
    free(m.good);
    free(m.all);
    free(m.gap);
    free(m.hist);
    return rc;
}

/* ---- one repository ---- */

static void vrepo_free(vrepo *v)
{
    free(v->wal);
    free(v->gaps);
    for (int i = 0; i < v->nbackups; i++)
        backup_free(&v->backups[i]);
    free(v->backups);
    ws_catalog_free(&v->cat);
    free(v->items);
    free(v->runs);
    free(v->bres);
}

typedef struct vopts {
    const char *backup; /* NULL: all */
    int wal_only;
    int threads;
} vopts;

static int verify_repo(verify *V, vrepo *v, const vopts *o, ws_error *err)
{
    ws_error e;
    ws_error_clear(&e);
    v->desc = ws_repo_describe(v->r);
    if (ws_repo_identity_get(v->r, &v->id, &e) < 0) {
        problem_add(&V->probs, v->desc, WS_REPO_ROOT_KEY, "%s%s",
                    e.code == WS_ENOENT ? "no walship.repo: the repository is missing, empty or "
                                          "lost its identity: "
                                        : "",
                    e.msg);
        return 0;
    }
    ws_storage *st = ws_repo_storage(v->r);
    if (ws_storage_list(st, WS_KEY_WAL_PREFIX, wal_list_cb, v, &e) < 0) {
        problem_add(&V->probs, v->desc, WS_KEY_WAL_PREFIX, "cannot list: %s", e.msg);
        return 0;
    }
    if (v->nwal)
        qsort(v->wal, (size_t)v->nwal, sizeof *v->wal, cmp_walobj);
    if (ws_repo_gap_list(v->r, &v->gaps, &v->ngaps, &e) < 0)
        problem_add(&V->probs, v->desc, WS_KEY_GAP_PREFIX, "cannot list: %s", e.msg);
    if (ws_catalog_load(v->r, &v->cat, &e) < 0) {
        problem_add(&V->probs, v->desc, WS_KEY_BACKUP_PREFIX, "cannot list: %s", e.msg);
        memset(&v->cat, 0, sizeof v->cat);
    }
    for (int i = 0; i < v->cat.nunreadable; i++) {
        char key[256];
        ws_manifest_key(v->cat.unreadable[i].id, WS_MANIFEST_NAME, key, sizeof key);
        problem_add(&V->probs, v->desc, key, "backup %s cannot be read: %s",
                    v->cat.unreadable[i].id, v->cat.unreadable[i].err.msg);
    }
    const ws_manifest_info *only = NULL;
    if (o->backup) {
        only = strcmp(o->backup, "latest") == 0 ? (v->cat.n ? &v->cat.backups[v->cat.n - 1] : NULL)
                                                : ws_catalog_find(&v->cat, o->backup);
        if (!only) {
            problem_add(&V->probs, v->desc, WS_KEY_BACKUP_PREFIX, "no complete backup \"%s\" here",
                        o->backup);
            return 0;
        }
    }
    uint64_t from = only ? ws_wal_lsn_segno(only->start_lsn, v->id.seg_size) : 0;
    /* the backups to read */
    if (!o->wal_only) {
        v->backups = calloc((size_t)v->cat.n + 1, sizeof *v->backups);
        if (!v->backups)
            return ws_error_oom(err);
        for (int i = 0; i < v->cat.n; i++) {
            if (only && only != &v->cat.backups[i])
                continue;
            backup *b = &v->backups[v->nbackups++];
            b->info = &v->cat.backups[i];
            if (backup_load(V, v, b) < 0)
                return ws_error_oom(err);
        }
    }
    /* items: WAL objects (with --backup, those from its start on), then backup objects */
    int cap = v->nwal;
    for (int i = 0; i < v->nbackups; i++)
        cap += v->backups[i].nobjs;
    v->items = calloc((size_t)cap + 1, sizeof *v->items);
    if (!v->items)
        return ws_error_oom(err);
    for (int i = 0; i < v->nwal; i++) {
        walobj *w = &v->wal[i];
        uint64_t s = 0;
        if (only && (w->name.kind == WS_WAL_SEGMENT || w->name.kind == WS_WAL_PARTIAL) &&
            ws_wal_segno(&w->name, v->id.seg_size, &s) == 0 && s < from)
            continue;
        v->items[v->nitems++] = (item){ITEM_WAL, i, 0};
        v->stored_total += w->stored;
    }
    for (int i = 0; i < v->nbackups; i++)
        for (int k = 0; k < v->backups[i].nobjs; k++) {
            v->items[v->nitems++] = (item){ITEM_BACKUP, i, k};
            v->stored_total += v->backups[i].objs[k].stored;
        }
    V->cur = v;
    ws_progress_start(&V->progress, v->stored_total, -1);
    ws_error pe;
    ws_error_clear(&pe);
    ws_rs_parallel(v->nitems, o->threads, run_item, V, tick, &pe);
    ws_progress_show(&V->progress, atomic_load(&V->stored_done), 1);
    if (continuity(V, v) < 0)
        return ws_error_oom(err);
    return 0;
}

/* ---- --repair: a segment missing here, present and valid in another repository ---- */

static const walobj *find_good(const vrepo *v, const char *name)
{
    walobj k;
    memset(&k, 0, sizeof k);
    snprintf(k.name.name, sizeof k.name.name, "%s", name);
    const walobj *w =
        v->nwal ? bsearch(&k, v->wal, (size_t)v->nwal, sizeof *v->wal, cmp_walobj) : NULL;
    return w && !w->bad ? w : NULL;
}

/* Copies name from src into dst as walship copy does (walship/repo/catchup.h): read back
 * verified (the source's SHA-256 is checked before the copy is committed), create-only-if-
 * absent, at compress-level. */
static int copy_segment(const ws_config *cfg, vrepo *dst, vrepo *src, const walobj *w,
                        ws_error *err)
{
    long level;
    if (ws_config_get_long(cfg, "compress-level", 1, 12, &level, err) < 0)
        return -1;
    return ws_repo_obj_copy(src->r, dst->r, w->key, (int)level, NULL, err);
}

static void repair(verify *V, vrepo *vs, int n)
{
    for (int r = 0; r < n; r++) {
        vrepo *v = &vs[r];
        if (!v->id.seg_size)
            continue;
        for (int i = 0; i < v->nruns; i++) {
            tlrun *t = &v->runs[i];
            if (t->recorded)
                continue;
            for (uint64_t sn = t->first; sn <= t->last; sn++) {
                char name[32];
                ws_wal_format_segment(name, t->tli, sn, v->id.seg_size);
                for (int o = 0; o < n; o++) {
                    const walobj *w = o != r && vs[o].id.sysid == v->id.sysid &&
                                              vs[o].id.seg_size == v->id.seg_size
                                          ? find_good(&vs[o], name)
                                          : NULL;
                    if (!w)
                        continue;
                    ws_error e;
                    ws_error_clear(&e);
                    if (copy_segment(V->cfg, v, &vs[o], w, &e) < 0) {
                        problem_add(&V->probs, v->desc, w->key, "--repair from %s failed: %s",
                                    vs[o].desc, e.msg);
                        continue;
                    }
                    repaired *nr = realloc(V->rep, (size_t)(V->nrep + 1) * sizeof *nr);
                    if (!nr)
                        break;
                    V->rep = nr;
                    repaired *x = &V->rep[V->nrep++];
                    snprintf(x->repo, sizeof x->repo, "%s", v->desc);
                    snprintf(x->key, sizeof x->key, "%s", w->key);
                    snprintf(x->from, sizeof x->from, "%s", vs[o].desc);
                    ws_log_info("repaired %s in %s: copied from %s", w->key, v->desc, vs[o].desc);
                    break;
                }
            }
        }
    }
}

/* ---- output ---- */

static void print_text(FILE *f, verify *V, vrepo *vs, int n, double secs)
{
    for (int r = 0; r < n; r++) {
        vrepo *v = &vs[r];
        uint32_t seg = v->id.seg_size;
        fprintf(f, "repository %s: %d WAL object(s), %d backup(s) read\n", v->desc, v->nwal,
                v->nbackups);
        for (int i = 0; i < v->nruns; i++) {
            tlrun *t = &v->runs[i];
            char a[32], z[32];
            ws_wal_format_segment(a, t->tli, t->first, seg);
            ws_wal_format_segment(z, t->tli, t->last, seg);
            fprintf(f, "  %s %s .. %s (%" PRIu64 ")%s\n",
                    t->recorded ? "recorded gap (push-queue-max)" : "MISSING", a, z,
                    t->last - t->first + 1,
                    t->recorded ? ": dropped on purpose; recovery cannot cross it" : "");
        }
        for (int i = 0; i < v->nbackups; i++) {
            bresult *br = &v->bres[i];
            fprintf(f, "  backup %s: %s, WAL %s .. %s %s; ", v->backups[i].info->id,
                    v->backups[i].bad ? "DAMAGED" : "objects ok", v->backups[i].info->start_wal,
                    v->backups[i].info->stop_wal,
                    br->consistent ? "present (consistent)" : "INCOMPLETE");
            if (br->replayable)
                fprintf(f, "replayable to the end of the archive (%s)\n", br->replay_end);
            else
                fprintf(f, "replay stops before %s%s\n", br->stops_at,
                        br->stop_recorded ? " (a recorded gap)" : "");
        }
    }
    for (int i = 0; i < V->probs.n; i++)
        fprintf(f, "PROBLEM %s %s: %s\n", V->probs.v[i].repo, V->probs.v[i].key,
                V->probs.v[i].what);
    for (int i = 0; i < V->nrep; i++)
        fprintf(f, "REPAIRED %s %s: copied from %s (run verify again to confirm)\n", V->rep[i].repo,
                V->rep[i].key, V->rep[i].from);
    char h1[32], h2[32];
    ws_ops_human_bytes(atomic_load(&V->stored_done), h1);
    ws_ops_human_bytes(atomic_load(&V->plain_done), h2);
    fprintf(f, "%s: %" PRIu64 " object(s), %s stored, %s verified in %.1f s; %d problem(s)\n",
            V->probs.n ? "FAILED" : "OK", (uint64_t)atomic_load(&V->objects_done), h1, h2, secs,
            V->probs.n);
}

static void print_json(FILE *f, verify *V, vrepo *vs, int n, double secs)
{
    fprintf(f, "{\"ok\":%s,\"repositories\":[", V->probs.n ? "false" : "true");
    for (int r = 0; r < n; r++) {
        vrepo *v = &vs[r];
        uint32_t seg = v->id.seg_size;
        fprintf(f, "%s{\"repository\":", r ? "," : "");
        ws_ops_json_str(f, v->desc);
        fprintf(f, ",\"wal_objects\":%d,\"missing\":[", v->nwal);
        int k = 0;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                fprintf(f, "],\"recorded_gaps\":[");
                k = 0;
            }
            for (int i = 0; i < v->nruns; i++) {
                tlrun *t = &v->runs[i];
                if (t->recorded != pass)
                    continue;
                char a[32], z[32];
                ws_wal_format_segment(a, t->tli, t->first, seg);
                ws_wal_format_segment(z, t->tli, t->last, seg);
                fprintf(f,
                        "%s{\"timeline\":%" PRIu32
                        ",\"first\":\"%s\",\"last\":\"%s\",\"count\":%" PRIu64 "}",
                        k++ ? "," : "", t->tli, a, z, t->last - t->first + 1);
            }
        }
        fprintf(f, "],\"backups\":[");
        for (int i = 0; i < v->nbackups; i++) {
            bresult *br = &v->bres[i];
            fprintf(f, "%s{\"id\":", i ? "," : "");
            ws_ops_json_str(f, v->backups[i].info->id);
            fprintf(f,
                    ",\"objects\":%d,\"objects_ok\":%s,\"start_wal\":\"%s\",\"stop_wal\":\"%s\","
                    "\"consistent\":%s,\"replayable_to_end\":%s,\"replay_end\":",
                    v->backups[i].nobjs, v->backups[i].bad ? "false" : "true",
                    v->backups[i].info->start_wal, v->backups[i].info->stop_wal,
                    br->consistent ? "true" : "false", br->replayable ? "true" : "false");
            if (br->replay_end[0])
                fprintf(f, "\"%s\"", br->replay_end);
            else
                fprintf(f, "null");
            fprintf(f, ",\"replay_stops_at\":");
            if (br->stops_at[0])
                fprintf(f, "\"%s\",\"stop_is_recorded_gap\":%s}", br->stops_at,
                        br->stop_recorded ? "true" : "false");
            else
                fprintf(f, "null,\"stop_is_recorded_gap\":false}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "],\"problems\":[");
    for (int i = 0; i < V->probs.n; i++) {
        fprintf(f, "%s{\"repository\":", i ? "," : "");
        ws_ops_json_str(f, V->probs.v[i].repo);
        fprintf(f, ",\"key\":");
        ws_ops_json_str(f, V->probs.v[i].key);
        fprintf(f, ",\"what\":");
        ws_ops_json_str(f, V->probs.v[i].what);
        fprintf(f, "}");
    }
    fprintf(f, "],\"repaired\":[");
    for (int i = 0; i < V->nrep; i++) {
        fprintf(f, "%s{\"repository\":", i ? "," : "");
        ws_ops_json_str(f, V->rep[i].repo);
        fprintf(f, ",\"key\":");
        ws_ops_json_str(f, V->rep[i].key);
        fprintf(f, ",\"from\":");
        ws_ops_json_str(f, V->rep[i].from);
        fprintf(f, "}");
    }
    fprintf(f,
            "],\"objects\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 ",\"verified_bytes\":%" PRIu64
            ",\"seconds\":%.3f}\n",
            (uint64_t)atomic_load(&V->objects_done), (uint64_t)atomic_load(&V->stored_done),
            (uint64_t)atomic_load(&V->plain_done), secs);
}

int ws_cmd_verify(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0) {
        ws_log_error("usage: walship verify [--backup ID|latest] [--wal-only] [--repair] [--json]");
        return WS_EXIT_USAGE;
    }
    vopts o = {ws_config_get(cfg, "backup"), ws_config_flag(cfg, "wal-only"), 4};
    long threads;
    if (ws_config_get_long(cfg, "verify-parallel", 1, 32, &threads, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    o.threads = (int)threads;
    if (ws_ops_config_check(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    if (o.backup && o.wal_only) {
        ws_log_error("--backup and --wal-only exclude each other");
        return WS_EXIT_USAGE;
    }
    int json = ws_config_flag(cfg, "json");
    double t0 = ws_now(), w0 = ws_ops_wallclock();
    verify V;
    memset(&V, 0, sizeof V);
    V.cfg = cfg;
    pthread_mutex_init(&V.probs.mu, NULL);
    atomic_init(&V.stored_done, 0);
    atomic_init(&V.plain_done, 0);
    atomic_init(&V.objects_done, 0);
    ws_repo **repos = NULL;
    int nrepos = 0;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    int rc = WS_EXIT_FAIL;
    vrepo *vs = calloc((size_t)nrepos, sizeof *vs);
    V.workers = o.threads;
    V.wrepos = calloc((size_t)o.threads, sizeof *V.wrepos);
    V.wnrepos = calloc((size_t)o.threads, sizeof *V.wnrepos);
    if (!vs || !V.wrepos || !V.wnrepos) {
        ws_error_oom(&err);
        goto out;
    }
    for (int w = 0; w < o.threads; w++)
        if (ws_cmd_open_repos(cfg, &V.wrepos[w], &V.wnrepos[w], &err) < 0)
            goto out;
    for (int i = 0; i < nrepos; i++) {
        vs[i].r = repos[i];
        V.repo_index = i;
        if (verify_repo(&V, &vs[i], &o, &err) < 0)
            goto out;
    }
    if (ws_config_flag(cfg, "repair"))
        repair(&V, vs, nrepos);
    double secs = ws_now() - t0;
    if (json)
        print_json(stdout, &V, vs, nrepos, secs);
    else
        print_text(stdout, &V, vs, nrepos, secs);
    fflush(stdout);
    rc = V.probs.n ? WS_EXIT_FAIL : WS_EXIT_OK;
    {
        char summary[1024], nprob[32], objs[32], bytes[32];
        if (V.probs.n)
            snprintf(summary, sizeof summary, "walship verify: %d problem(s); first: %s %s: %s",
                     V.probs.n, V.probs.v[0].repo, V.probs.v[0].key, V.probs.v[0].what);
        else
            snprintf(summary, sizeof summary,
                     "walship verify: OK, %" PRIu64 " object(s) in %d repository(ies)",
                     (uint64_t)atomic_load(&V.objects_done), nrepos);
        snprintf(nprob, sizeof nprob, "%d", V.probs.n);
        snprintf(objs, sizeof objs, "%" PRIu64, (uint64_t)atomic_load(&V.objects_done));
        snprintf(bytes, sizeof bytes, "%" PRIu64, (uint64_t)atomic_load(&V.plain_done));
        ws_ops_result res = {"verify", rc == WS_EXIT_OK, w0, ws_ops_wallclock(), summary, {{0}}, 0};
        ws_ops_field_add(&res, "problems", nprob, 1);
        ws_ops_field_add(&res, "objects", objs, 1);
        ws_ops_field_add(&res, "verified_bytes", bytes, 1);
        ws_ops_report(cfg, &res);
    }
out:
    if (rc == WS_EXIT_FAIL && err.msg[0])
        ws_log_err(WS_LOG_ERROR, &err);
    for (int i = 0; vs && i < nrepos; i++)
        vrepo_free(&vs[i]);
    free(vs);
    for (int w = 0; V.wrepos && w < o.threads; w++)
        if (V.wrepos[w])
            ws_cmd_close_repos(V.wrepos[w], V.wnrepos[w]);
    free(V.wrepos);
    free(V.wnrepos);
    free(V.probs.v);
    free(V.rep);
    pthread_mutex_destroy(&V.probs.mu);
    ws_cmd_close_repos(repos, nrepos);
    return rc;
}
