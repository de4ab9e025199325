/*
 * extract.c — the backup's bytes back into files, in parallel.
 *
 * A file's bytes are extents of data objects (docs/repository-format.md, "Backups"): a pack
 * holds many small files one after another, a large file spans parts. Each needed object is
 * read once, by one of restore-parallel workers (each with its own repository handles), and
 * its plaintext is split by a demultiplexing stage into the files it holds, at their offsets
 * (pwrite: a file's parts may land from several workers at once). Memory per worker is the
 * read path's buffers, whatever the object's size.
 *
 * Verification: the demux checks each file that lies in one extent against its own SHA-256
 * as it streams (the object's own SHA-256 would hash the same bytes again, so for objects
 * made of such files only its length is checked); parts of files in several extents are
 * checked by the object's SHA-256, and the whole file is read back and checked once every
 * part has landed. Hashing goes through the SHA-256 stage (walship/stage/stage.h).
 *
 * Fallback (issue 19): each object is read from the first of the repositories holding this
 * backup (same id, same manifest SHA-256: cmd.c chooses them) whose copy verifies; a corrupt,
 * missing or unreadable copy is a WARNING naming repository and key, and the object is read
 * again, whole, from the next. A retry rewrites the same pieces at the same offsets, so
 * nothing of the failed attempt survives. Only when no repository has a valid copy does the
 * restore fail, naming every repository tried, before pg_control is named (cmd.c).
 */
#include "restore/restore.h"
#include "walship/repo/open.h"
#include "walship/log.h"
#include "walship/progress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- a small thread pool ---- */

typedef struct pool {
    int n;
    atomic_int next;
    atomic_int failed;
    ws_rs_job_fn fn;
    void *arg;
    ws_error err; /* the first failure */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;
} pool;

typedef struct pool_worker {
    pool *p;
    int id;
} pool_worker;

static void *pool_main(void *a)
{
    pool_worker *w = a;
    pool *p = w->p;
    for (;;) {
        if (atomic_load(&p->failed))
            break;
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n)
            break;
        ws_error e;
        ws_error_clear(&e);
        if (p->fn(p->arg, w->id, i, &e) < 0) {
            pthread_mutex_lock(&p->mu);
            if (!atomic_exchange(&p->failed, 1))
                p->err = e;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    pthread_mutex_lock(&p->mu);
    p->running--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int ws_rs_parallel(int n, int threads, ws_rs_job_fn fn, void *arg, void (*tick)(void *arg),
                   ws_error *err)
{
    if (n <= 0)
        return 0;
    if (threads > n)
        threads = n;
    if (threads < 1)
        threads = 1;
    pool p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.fn = fn;
    p.arg = arg;
    atomic_init(&p.next, 0);
    atomic_init(&p.failed, 0);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    pool_worker *w = calloc((size_t)threads, sizeof *w);
    int started = 0;
    if (tid && w) {
        for (; started < threads; started++) {
            w[started] = (pool_worker){&p, started};
            pthread_mutex_lock(&p.mu);
            p.running++;
            pthread_mutex_unlock(&p.mu);
            if (pthread_create(&tid[started], NULL, pool_main, &w[started]) != 0) {
                pthread_mutex_lock(&p.mu);
                p.running--;
                pthread_mutex_unlock(&p.mu);
                break;
            }
        }
    }
    if (started == 0) {
        /* no thread at all: do the work here */
        free(tid);
        free(w);
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.cv);
        for (int i = 0; i < n; i++)
            if (fn(arg, 0, i, err) < 0)
                return -1;
        return 0;
    }
    pthread_mutex_lock(&p.mu);
    while (p.running > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p.cv, &p.mu, &ts);
        if (tick && p.running > 0) {
            pthread_mutex_unlock(&p.mu);
            tick(arg);
            pthread_mutex_lock(&p.mu);
        }
    }
    pthread_mutex_unlock(&p.mu);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    free(tid);
    free(w);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    if (atomic_load(&p.failed)) {
        if (err)
            *err = p.err;
        return -1;
    }
    return 0;
}

/* ---- the work: objects and the pieces of files they hold ---- */

typedef struct piece {
    int object;
    int entry;
    uint64_t obj_off, len, file_off;
} piece;

typedef struct object {
    char name[32]; /* "data/000001" */
    int first, n;  /* its pieces, by offset */
    uint64_t end;  /* where the manifest's last extent in it ends: its plaintext's bound */
} object;

typedef struct job {
    ws_rs_plan *plan;
    piece *pieces;
    int npieces;
    object *objects;
    int nobjects;
    ws_repo ***repos; /* per worker */
    int *nrepos;
    const int *order; /* the repositories that hold this backup, in priority order */
    int norder;
    atomic_uint_fast64_t done;
    ws_progress progress;
} job;

static int cmp_piece(const void *a, const void *b)
{
    const piece *x = a, *y = b;
    if (x->object != y->object)
        return x->object < y->object ? -1 : 1;
    return x->obj_off < y->obj_off ? -1 : x->obj_off > y->obj_off;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const object *)a)->name, ((const object *)b)->name);
}

/* "data/" and digits, as basebackup names its objects. */
static int object_name(const char *name)
{
    if (strncmp(name, "data/", 5) != 0 || !name[5])
        return 0;
    for (const char *c = name + 5; *c; c++)
        if (*c < '0' || *c > '9')
            return 0;
    return 1;
}

/* Parses the extents of every file to write (all: every file, kept or not) into pieces and
 * the objects they name; refuses malformed extents and pieces that overlap in an object. */
static int build(job *j, int all, ws_error *err)
{
    ws_rs_plan *p = j->plan;
    int cap = 0;
    for (int i = 0; i < p->n; i++)
        if (p->e[i].kind == WS_MANIFEST_FILE && (all || !p->e[i].keep))
            cap += p->e[i].nextents;
    j->pieces = calloc((size_t)cap + 1, sizeof *j->pieces);
    object *names = calloc((size_t)cap + 1, sizeof *names);
    if (!j->pieces || !names) {
        free(names);
        return ws_error_oom(err);
    }
    for (int i = 0; i < p->n; i++) {
        ws_rs_entry *e = &p->e[i];
        if (e->kind != WS_MANIFEST_FILE || (e->keep && !all) || e->nextents == 0)
            continue;
        uint64_t file_off = 0;
        const char *c = e->extents;
        while (*c) {
            char name[32];
            unsigned long long off, len;
            int used = 0;
            if (j->npieces >= cap ||
                sscanf(c, "%31[^@]@%llu+%llu%n", name, &off, &len, &used) != 3 || used == 0 ||
                !object_name(name) || len == 0 || off + len < off ||
                (c[used] != ',' && c[used] != '\0')) {
                free(names);
                return ws_error_set(err, WS_ECORRUPT, "file %s has malformed extents \"%.60s\"",
                                    e->path, e->extents);
            }
            piece *pc = &j->pieces[j->npieces];
            snprintf(names[j->npieces].name, sizeof names->name, "%s", name);
            pc->entry = i;
            pc->obj_off = off;
            pc->len = len;
            pc->file_off = file_off;
            pc->object = j->npieces++;
            file_off += len;
            c += used;
            if (*c == ',')
                c++;
        }
        if (file_off != e->size) {
            free(names);
            return ws_error_set(err, WS_ECORRUPT,
                                "file %s: its extents hold %" PRIu64 " bytes, its size is %" PRIu64,
                                e->path, file_off, e->size);
        }
    }
    /* distinct object names, and each piece's object index */
    object *sorted = calloc((size_t)j->npieces + 1, sizeof *sorted);
    if (!sorted) {
        free(names);
        return ws_error_oom(err);
    }
    memcpy(sorted, names, (size_t)j->npieces * sizeof *sorted);
    if (j->npieces)
        qsort(sorted, (size_t)j->npieces, sizeof *sorted, cmp_name);
    int no = 0;
    for (int i = 0; i < j->npieces; i++)
        if (no == 0 || strcmp(sorted[no - 1].name, sorted[i].name) != 0)
            sorted[no++] = sorted[i];
    for (int i = 0; i < j->npieces; i++) {
        object *o = bsearch(&names[i], sorted, (size_t)no, sizeof *sorted, cmp_name);
        j->pieces[i].object = (int)(o - sorted);
    }
    free(names);
    if (j->npieces)
        qsort(j->pieces, (size_t)j->npieces, sizeof *j->pieces, cmp_piece);
    for (int i = 0; i < no; i++)
        sorted[i].n = 0;
    for (int i = j->npieces - 1; i >= 0; i--) {
        object *o = &sorted[j->pieces[i].object];
        o->first = i;
        o->n++;
    }
    for (int i = 0; i < j->npieces; i++) {
        const piece *a = &j->pieces[i];
        if (i > 0 && j->pieces[i - 1].object == a->object &&
            j->pieces[i - 1].obj_off + j->pieces[i - 1].len > a->obj_off) {
            ws_error_set(err, WS_ECORRUPT, "object %s: extents of %s and %s overlap",
                         sorted[a->object].name, j->plan->e[j->pieces[i - 1].entry].path,
                         j->plan->e[a->entry].path);
            free(sorted);
            return -1;
        }
    }
    /* The object header is untrusted: an object may hold no more than the manifest (already
     * checked whole) puts in it, kept files included, so a header claiming a terabyte is
     * refused before its stream is read. */
    for (int i = 0; i < no; i++)
        sorted[i].end = 0;
    for (int i = 0; i < p->n; i++) {
        const ws_rs_entry *e = &p->e[i];
        if (e->kind != WS_MANIFEST_FILE || e->nextents == 0)
            continue;
        for (const char *c = e->extents; *c;) {
            object key = {{0}, 0, 0, 0};
            unsigned long long off, len;
            int used = 0;
            if (sscanf(c, "%31[^@]@%llu+%llu%n", key.name, &off, &len, &used) != 3 || used == 0)
                break; /* malformed extents of a kept file: only its own check can tell */
            object *o = bsearch(&key, sorted, (size_t)no, sizeof *sorted, cmp_name);
            if (o && off + len > o->end)
                o->end = off + len;
            c += used;
            if (*c == ',')
                c++;
        }
    }
    j->objects = sorted;
    j->nobjects = no;
    return 0;
}

/* ---- the demultiplexing stage ---- */

typedef struct demux {
    ws_stage base;
    job *j;
    const object *o;
    const char *key;
    int cur;      /* the piece being written or waited for */
    uint64_t pos; /* plaintext offset in the object */
    int fd;
    ws_stage *md;  /* single-extent files: their SHA-256 as they stream (walship/stage) */
    int local;     /* the failure is this machine's (a file not written), not the object's */
    uint64_t kept; /* bytes handed to files by this attempt (undone if it fails) */
} demux;

/* A failure of the restore's own files: no other repository can help with it. */
static int local_fail(demux *d, int rc)
{
    d->local = 1;
    return rc;
}

static int piece_end(demux *d, const piece *pc, ws_error *err)
{
    const ws_rs_entry *e = &d->j->plan->e[pc->entry];
    int rc = 0;
    if (e->nextents == 1) {
        unsigned char got[32];
        if (ws_stage_finish(d->md, err) < 0)
            rc = -1;
        else if (ws_stage_sha256_result(d->md, got, NULL), memcmp(got, e->sha256, 32) != 0)
            rc = ws_error_set(err, WS_ECORRUPT,
                              "%s restored from backup/%s/%s does not match its SHA-256 in the "
                              "manifest (checksum mismatch): the backup is corrupt",
                              e->path, d->j->plan->info.id, d->o->name);
        struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
        if (rc == 0 && futimens(d->fd, ts) < 0)
            rc = local_fail(
                d, ws_error_errno(err, WS_EIO, errno, "cannot set the mtime of %s", e->dest));
        ws_stage_free(d->md);
        d->md = NULL;
    }
    if (close(d->fd) < 0 && rc == 0)
        rc = local_fail(d, ws_error_errno(err, WS_EIO, errno, "cannot write %s", e->dest));
    d->fd = -1;
    d->cur++;
    return rc;
}

static int demux_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    demux *d = (demux *)st;
    const unsigned char *b = buf;
    while (len > 0) {
        if (d->cur >= d->o->n) { /* bytes after the last piece we need */
            d->pos += len;
            return 0;
        }
        const piece *pc = &d->j->pieces[d->o->first + d->cur];
        if (d->pos < pc->obj_off) {
            uint64_t skip = pc->obj_off - d->pos;
            size_t k = skip < len ? (size_t)skip : len;
            b += k;
            len -= k;
            d->pos += k;
            continue;
        }
        const ws_rs_entry *e = &d->j->plan->e[pc->entry];
        if (d->fd < 0) {
            d->fd = open(e->dest, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
            if (d->fd < 0)
                return local_fail(d, ws_error_errno(err, WS_EIO, errno, "cannot open %s", e->dest));
            if (e->nextents == 1 && !(d->md = ws_stage_sha256_new(NULL)))
                return local_fail(d, ws_error_oom(err));
        }
        uint64_t left = pc->obj_off + pc->len - d->pos;
        size_t k = left < len ? (size_t)left : len;
        off_t at = (off_t)(pc->file_off + (d->pos - pc->obj_off));
        for (size_t w = 0; w < k;) {
            ssize_t r = pwrite(d->fd, b + w, k - w, at + (off_t)w);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return local_fail(d,
                                  ws_error_errno(err, WS_EIO, errno, "cannot write %s", e->dest));
            }
            w += (size_t)r;
        }
        atomic_fetch_add(&d->j->done, k);
        d->kept += k;
        if (e->nextents == 1 && ws_stage_write(d->md, b, k, err) < 0)
            return local_fail(d, -1);
        b += k;
        len -= k;
        d->pos += k;
        if (d->pos == pc->obj_off + pc->len && piece_end(d, pc, err) < 0)
            return -1;
    }
    return 0;
}

static int demux_flush(ws_stage *st, ws_error *err)
{
    demux *d = (demux *)st;
    if (d->cur < d->o->n)
        return ws_error_set(err, WS_ECORRUPT,
                            "%s ends at byte %" PRIu64 ", before the files the manifest puts in "
                            "it: the backup is corrupt",
                            d->key, d->pos);
    return 0;
}

static void demux_free(ws_stage *st)
{
    demux *d = (demux *)st;
    if (d->fd >= 0)
        close(d->fd);
    if (d->md)
        ws_stage_free(d->md);
    free(d);
}

static const ws_stage_ops demux_ops = {"restore", demux_write, demux_flush, demux_free};

/* One attempt at object o from repository r: a fresh demux, so that a failed attempt leaves
 * nothing behind that the next one would trust (its pieces are rewritten at the same
 * offsets, every single-extent file hashed again). *local says the failure was ours. */
static int extract_from(job *j, const object *o, const char *key, ws_repo *r, int *local,
                        ws_error *err)
{
    demux *d = calloc(1, sizeof *d);
    if (!d) {
        *local = 1;
        return ws_error_oom(err);
    }
    d->base.ops = &demux_ops;
    d->j = j;
    d->o = o;
    d->key = key;
    d->fd = -1;
    /* every byte kept from an object whose pieces are whole files is checked against the
     * file's own SHA-256 as it streams: hashing the object as well would be a second pass
     * over the same bytes. Parts of larger files keep the object's check. */
    unsigned flags = WS_OBJ_READ_NO_DIGEST;
    for (int k = 0; k < o->n; k++)
        if (j->plan->e[j->pieces[o->first + k].entry].nextents != 1)
            flags = 0;
    int rc = ws_repo_obj_read_limit(r, key, &d->base, NULL, flags, o->end, err);
    *local = d->local;
    if (rc < 0)
        atomic_fetch_sub(&j->done, d->kept);
    ws_stage_free(&d->base);
    return rc;
}

/* Object i from the first repository (in priority order) holding a valid copy: a corrupt,
 * missing or unreadable copy is a WARNING naming repository and key, and the next one is
 * read. Fails (WS_ECORRUPT) only when none has it, naming every repository tried. */
static int extract_object(void *arg, int worker, int i, ws_error *err)
{
    job *j = arg;
    const object *o = &j->objects[i];
    char key[128];
    if (ws_manifest_key(j->plan->info.id, o->name, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "object name too long: %s", o->name);
    char tried[1024] = "";
    size_t used = 0;
    ws_error first;
    ws_error_clear(&first);
    for (int k = 0; k < j->norder; k++) {
        ws_repo *r = j->repos[worker][j->order[k]];
        ws_error e;
        ws_error_clear(&e);
        int local = 0;
        if (extract_from(j, o, key, r, &local, &e) == 0) {
            if (k > 0)
                ws_log_info("%s read from %s", key, ws_repo_describe(r));
            return 0;
        }
        if (local) {
            *err = e;
            return -1;
        }
        if (j->norder == 1) { /* one repository: its own error, as before */
            *err = e;
            if (err->code == WS_ENOENT) {
                ws_error_prefix(err, "backup %s is missing an object", j->plan->info.id);
                err->code = WS_ECORRUPT;
            }
            return -1;
        }
        ws_log_warn("%s: %s: %s%s", ws_repo_describe(r), key, e.msg,
                    k + 1 < j->norder ? "; reading it from the next repository" : "");
        if (!first.msg[0])
            first = e;
        int w = snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "",
                         ws_repo_describe(r));
        if (w > 0 && (size_t)w < sizeof tried - used)
            used += (size_t)w;
    }
    ws_error_set(err, WS_ECORRUPT,
                 "backup %s: no repository holds a valid copy of %s (tried %s; first: %s)",
                 j->plan->info.id, key, tried, first.msg);
    return -1;
}

/* Files in several extents, read back whole once every part has landed. */
static int check_multi(void *arg, int worker, int i, ws_error *err)
{
    (void)worker;
    job *j = arg;
    const ws_rs_entry *e = &j->plan->e[i];
    if (e->kind != WS_MANIFEST_FILE || e->keep || e->nextents < 2)
        return 0;
    int fd = open(e->dest, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot open %s", e->dest);
    ws_stage *md = ws_stage_sha256_new(NULL);
    char *buf = malloc(1 << 20);
    int rc = md && buf ? 0 : ws_error_oom(err);
    uint64_t total = 0;
    while (rc == 0) {
        ssize_t k = read(fd, buf, 1 << 20);
        if (k < 0) {
            rc = ws_error_errno(err, WS_EIO, errno, "cannot read back %s", e->dest);
            break;
        }
        if (k == 0)
            break;
        total += (uint64_t)k;
        rc = ws_stage_write(md, buf, (size_t)k, err);
    }
    unsigned char got[32];
    if (rc == 0)
        rc = ws_stage_finish(md, err);
    if (rc == 0)
        ws_stage_sha256_result(md, got, NULL);
    if (rc == 0 && (total != e->size || memcmp(got, e->sha256, 32) != 0))
        rc = ws_error_set(err, WS_ECORRUPT,
                          "%s does not match its size and SHA-256 in the manifest (checksum "
                          "mismatch): the backup is corrupt",
                          e->path);
    struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
    if (rc == 0 && futimens(fd, ts) < 0)
        rc = ws_error_errno(err, WS_EIO, errno, "cannot set the mtime of %s", e->dest);
    if (md)
        ws_stage_free(md);
    free(buf);
    close(fd);
    return rc;
}

int ws_rs_check_extents(ws_rs_plan *p, ws_error *err)
{
    job j;
    memset(&j, 0, sizeof j);
    j.plan = p;
    int rc = build(&j, 1, err);
    free(j.pieces);
    free(j.objects);
    return rc;
}

static void tick(void *arg)
{
    job *j = arg;
    ws_progress_show(&j->progress, atomic_load(&j->done), 0);
}

int ws_rs_extract(ws_rs_plan *p, const ws_config *cfg, const int *order, int norder, int threads,
                  ws_error *err)
{
    job j;
    memset(&j, 0, sizeof j);
    j.plan = p;
    j.order = order;
    j.norder = norder;
    atomic_init(&j.done, 0);
    int rc = build(&j, 0, err);
    if (rc == 0 && threads > j.nobjects)
        threads = j.nobjects > 0 ? j.nobjects : 1;
    if (rc == 0) {
        j.repos = calloc((size_t)threads, sizeof *j.repos);
        j.nrepos = calloc((size_t)threads, sizeof *j.nrepos);
        if (!j.repos || !j.nrepos)
            rc = ws_error_oom(err);
    }
    for (int w = 0; rc == 0 && w < threads; w++)
        rc = ws_cmd_open_repos(cfg, &j.repos[w], &j.nrepos[w], err);
    if (rc == 0) {
        ws_log_debug("restore: %d objects, %d pieces, %d workers", j.nobjects, j.npieces, threads);
        ws_progress_start(&j.progress, p->bytes_write, -1);
        rc = ws_rs_parallel(j.nobjects, threads, extract_object, &j, tick, err);
        if (rc == 0)
            rc = ws_rs_parallel(p->n, threads, check_multi, &j, NULL, err);
        ws_progress_show(&j.progress, atomic_load(&j.done), 1);
    }
    for (int w = 0; j.repos && w < threads; w++)
        if (j.repos[w])
            ws_cmd_close_repos(j.repos[w], j.nrepos[w]);
    free(j.repos);
    free(j.nrepos);
    free(j.pieces);
    free(j.objects);
    return rc;
}
