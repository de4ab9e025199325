/*
 * objqueue.c — a base backup's objects, written by a pool of writer threads (objqueue.h).
 *
 * Threads: the stream's thread (the caller's) hands each object's bytes over in chunks; writer
 * threads take objects in the order they were handed over, write them (hash, compress,
 * storage) and commit them. One mutex guards the queue, each job's chunk list and the
 * counters. Condition variables wake only whom a change concerns (a futex wake per 256 KiB
 * chunk for every thread showed in perf): idle writers (a job is queued), a job's writer (its
 * bytes came), the stream's thread (room in flight, a job done); each is signalled only when
 * it waits.
 *
 * Why this cannot deadlock: only one streamed object is ever open to the stream's thread at a
 * time (store.c: a part or the blob; a pack is gathered and handed over only once whole), and
 * it was queued after every other object still waiting. A writer blocks only on that open
 * object, and the stream's thread blocks only on max_inflight — bytes that the other, closed
 * objects' writers drain without it.
 *
 * Jobs: created and freed by the stream's thread. A writer puts every job it took on the done
 * list (committed) or the dead list (failed); the stream's thread reaps the done list (the
 * tags of committed objects go to opts.committed) and frees the dead list in ws_bb_oq_free.
 */
#include "basebackup/objqueue.h"
#include "walship/repo/manifest.h"

#include "walship/log.h"
#include "walship/repo/catchup.h"
#include "walship/repo/open.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (256u * 1024)

typedef struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
} chunk;

/* One object on its way to the repositories. */
typedef struct ws_bb_obj {
    struct ws_bb_obj *next; /* in the queue, then in the done or dead list (under mu) */
    char rel[32];           /* "data/000042", relative to backup/<id>/ */
    uint64_t size_hint;     /* exact plaintext length, or 0 */
    int streamed;           /* queued when opened: its bytes go over as they come */
    uint64_t written;       /* plaintext bytes so far (stream's thread) */
    chunk *fill;            /* the chunk being filled (stream's thread) */
    chunk *head, *tail;     /* handed over, not yet taken (under mu once queued) */
    uint64_t queued;        /* their bytes */
    int closed;             /* no more bytes will come (under mu once queued) */
    struct writer *w;       /* the writer that took it (under mu) */
    int starved;            /* that writer waits for its bytes (under mu) */
    void *tag;              /* the caller's, completed once committed (opts.committed) */
    ws_objhdr hdr;          /* the committed object's header (writer, then stream's thread) */
} job;

typedef struct writer {
    ws_bb_oq *s;
    pthread_cond_t cv; /* its job has bytes, or is closed, or the queue aborts */
    int cv_ready;
    ws_repo **repos; /* its own handles */
    int nrepos;
    int own; /* repos were opened for it */
    pthread_t tid;
    int started;
} writer;

struct ws_bb_oq {
    ws_bb_oq_opts o;
    unsigned next_obj;

    pthread_mutex_t mu;
    pthread_cond_t cv_idle;   /* writers without a job: the queue has one, or stop */
    pthread_cond_t cv_stream; /* the stream's thread: room in flight, or a job done */
    int stream_waiting;
    int sync_ready;
    job *queue, *queue_tail; /* waiting for a writer */
    job *done;               /* committed, to be reaped */
    job *dead;               /* failed or aborted */
    int outstanding;         /* handed over and neither committed nor failed */
    uint64_t inflight;       /* bytes handed over and not yet written by a writer */
    chunk *spare;            /* written chunks kept for reuse (malloc of 256 KiB is an mmap) */
    int nspare, max_spare;
    int stop;  /* writers leave once the queue is empty */
    int abort; /* writers drop what they hold and leave */
    int failed;
    ws_error fail_err; /* the first failure */
    ws_bb_oq_stats stats;

    writer *w;
    int nwriters;
};

/* ---- jobs ---- */

static void chunks_free(chunk *c)
{
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
}

static void job_free(const ws_bb_oq *s, job *j)
{
    if (!j)
        return;
    chunks_free(j->head);
    free(j->fill);
    if (j->tag && s->o.tag_free)
        s->o.tag_free(j->tag);
    free(j);
}

static void jobs_free(const ws_bb_oq *s, job *j)
{
    while (j) {
        job *n = j->next;
        job_free(s, j);
        j = n;
    }
}

/* A chunk from the spares, or a new one (stream's thread). */
static chunk *chunk_get(ws_bb_oq *s)
{
    pthread_mutex_lock(&s->mu);
    chunk *c = s->spare;
    if (c) {
        s->spare = c->next;
        s->nspare--;
    }
    pthread_mutex_unlock(&s->mu);
    if (!c && !(c = malloc(sizeof(chunk) + CHUNK_SIZE)))
        return NULL;
    c->next = NULL;
    c->len = 0;
    return c;
}

/* Under mu: keeps a written chunk for reuse, up to what the bounds can ever need. */
static void chunk_put_locked(ws_bb_oq *s, chunk *c)
{
    if (s->nspare >= s->max_spare) {
        free(c);
        return;
    }
    c->next = s->spare;
    s->spare = c;
    s->nspare++;
}

/* The first failure, for the stream's thread (under mu). */
static int failed_locked(ws_bb_oq *s, ws_error *err)
{
    *err = s->fail_err;
    if (!err->msg[0])
        ws_error_set(err, WS_EIO, "an object of the backup could not be written");
    return -1;
}

/* Under mu: every thread that waits looks again (stop, abort). */
static void wake_all_locked(ws_bb_oq *s)
{
    pthread_cond_broadcast(&s->cv_idle);
    pthread_cond_broadcast(&s->cv_stream);
    for (int i = 0; i < s->nwriters; i++)
        if (s->w[i].cv_ready)
            pthread_cond_signal(&s->w[i].cv);
}

/* Under mu: the stream's thread looks again, if it waits. */
static void wake_stream_locked(ws_bb_oq *s)
{
    if (s->stream_waiting)
        pthread_cond_signal(&s->cv_stream);
}

/* Under mu: j's writer looks again, if it waits for j's bytes. */
static void wake_job_locked(job *j)
{
    if (j->starved && j->w)
        pthread_cond_signal(&j->w->cv);
}

/* Under mu: the stream's thread waits for a writer. */
static void stream_wait_locked(ws_bb_oq *s)
{
    s->stream_waiting = 1;
    pthread_cond_wait(&s->cv_stream, &s->mu);
    s->stream_waiting = 0;
}

static void fail_locked(ws_bb_oq *s, const ws_error *e)
{
    if (!s->failed) {
        s->failed = 1;
        s->fail_err = *e;
    }
    s->abort = 1; /* the backup is lost: the other writers stop early */
    wake_all_locked(s);
}

/* Under mu: waits until add more bytes fit in flight (or nothing else is: a pack may be
 * larger than the bound), or fails. */
static int wait_room_locked(ws_bb_oq *s, uint64_t add, ws_error *err)
{
    while (s->inflight > 0 && s->inflight + add > s->o.max_inflight && !s->failed)
        stream_wait_locked(s);
    return s->failed ? failed_locked(s, err) : 0;
}

/* Moves the filled chunk into j's list; queued jobs under mu, after waiting for room. */
static int hand_over(ws_bb_oq *s, job *j, int queued, ws_error *err)
{
    chunk *c = j->fill;
    if (!c || c->len == 0)
        return 0;
    j->fill = NULL;
    if (queued) {
        pthread_mutex_lock(&s->mu);
        if (wait_room_locked(s, c->len, err) < 0) {
            pthread_mutex_unlock(&s->mu);
            free(c);
            return -1;
        }
    }
    if (j->tail)
        j->tail->next = c;
    else
        j->head = c;
    j->tail = c;
    j->queued += c->len;
    if (queued) {
        s->inflight += c->len;
        if (s->inflight > s->stats.peak_inflight)
            s->stats.peak_inflight = s->inflight;
        wake_job_locked(j);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

/* Copies bytes into j's chunks (stream's thread). */
int ws_bb_oq_put(ws_bb_oq *s, job *j, const void *buf, size_t len, ws_error *err)
{
    const char *p = buf;
    j->written += len;
    while (len > 0) {
        if (!j->fill && !(j->fill = chunk_get(s)))
            return ws_error_oom(err);
        size_t k = CHUNK_SIZE - j->fill->len;
        if (k > len)
            k = len;
        memcpy(j->fill->data + j->fill->len, p, k);
        j->fill->len += k;
        p += k;
        len -= k;
        if (j->fill->len == CHUNK_SIZE && hand_over(s, j, j->streamed, err) < 0)
            return -1;
    }
    return 0;
}

/* Puts j at the end of the writers' queue (under mu). */
static void enqueue_locked(ws_bb_oq *s, job *j)
{
    j->next = NULL;
    if (s->queue_tail)
        s->queue_tail->next = j;
    else
        s->queue = j;
    s->queue_tail = j;
    s->outstanding++;
    pthread_cond_signal(&s->cv_idle);
}

int ws_bb_oq_reap(ws_bb_oq *s, ws_error *err)
{
    pthread_mutex_lock(&s->mu);
    job *d = s->done;
    s->done = NULL;
    int failed = s->failed;
    pthread_mutex_unlock(&s->mu);
    int rc = 0;
    while (d) {
        job *j = d;
        d = d->next;
        if (rc == 0 && !failed && j->tag && s->o.committed &&
            s->o.committed(s->o.arg, j->tag, &j->hdr, err) < 0)
            rc = -1;
        job_free(s, j);
    }
    return rc;
}

int ws_bb_oq_open(ws_bb_oq *s, const char *rel, uint64_t size_hint, int streamed, job **out,
                  ws_error *err)
{
    *out = NULL;
    if (ws_bb_oq_reap(s, err) < 0)
        return -1;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return ws_error_oom(err);
    if (rel)
        snprintf(j->rel, sizeof j->rel, "%s", rel);
    else
        snprintf(j->rel, sizeof j->rel, "data/%06u", s->next_obj++);
    j->size_hint = size_hint;
    j->streamed = streamed;
    if (streamed) {
        pthread_mutex_lock(&s->mu);
        if (s->failed) {
            failed_locked(s, err);
            pthread_mutex_unlock(&s->mu);
            job_free(s, j);
            return -1;
        }
        enqueue_locked(s, j);
        pthread_mutex_unlock(&s->mu);
    }
    *out = j;
    return 0;
}

/* A streamed job gets its last chunk, a gathered one is queued whole. The writers own j from
 * here (it is freed when reaped). */
int ws_bb_oq_close(ws_bb_oq *s, job *j, ws_error *err)
{
    if (j->streamed) {
        if (hand_over(s, j, 1, err) < 0)
            return -1;
        pthread_mutex_lock(&s->mu);
        j->closed = 1;
        wake_job_locked(j);
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    if (hand_over(s, j, 0, err) < 0)
        return -1;
    pthread_mutex_lock(&s->mu);
    if (wait_room_locked(s, j->queued, err) < 0) {
        pthread_mutex_unlock(&s->mu);
        job_free(s, j);
        return -1;
    }
    j->closed = 1;
    s->inflight += j->queued;
    if (s->inflight > s->stats.peak_inflight)
        s->stats.peak_inflight = s->inflight;
    enqueue_locked(s, j);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void ws_bb_oq_drop(ws_bb_obj *j)
{
    if (!j)
        return;
    chunks_free(j->head);
    free(j->fill);
    free(j); /* not closed: it has no tag (store.c tags only the objects it closes) */
}

const char *ws_bb_obj_rel(const ws_bb_obj *j)
{
    return j->rel;
}

uint64_t ws_bb_obj_written(const ws_bb_obj *j)
{
    return j->written;
}

void ws_bb_obj_set_tag(ws_bb_obj *j, void *tag)
{
    j->tag = tag;
}

/* ---- writers ---- */

/* Writes and commits one object (writer thread). */
static int write_job(ws_bb_oq *s, writer *w, job *j, ws_error *err)
{
    char key[256];
    if (ws_manifest_key(s->o.id, j->rel, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id too long");
    ws_repo_obj_writer *ow;
    if (ws_repo_obj_create(w->repos, w->nrepos, key, WS_OBJ_DATA, s->o.codec, s->o.level,
                           j->size_hint, &ow, err) < 0)
        return -1;
    chunk *done_c = NULL; /* written, to go back to the spares */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (done_c) {
            s->inflight -= done_c->len;
            chunk_put_locked(s, done_c);
            wake_stream_locked(s);
            done_c = NULL;
        }
        while (!j->head && !j->closed && !s->abort) {
            j->starved = 1;
            pthread_cond_wait(&w->cv, &s->mu);
            j->starved = 0;
        }
        if (s->abort) {
            pthread_mutex_unlock(&s->mu);
            ws_repo_obj_abort(ow);
            return ws_error_set(err, WS_EIO, "stopped: another object failed");
        }
        chunk *c = j->head;
        if (c) {
            j->head = c->next;
            if (!j->head)
                j->tail = NULL;
            j->queued -= c->len;
        }
        pthread_mutex_unlock(&s->mu);
        if (!c)
            break; /* closed, and every byte written */
        int rc = ws_repo_obj_write(ow, c->data, c->len, err);
        done_c = c;
        if (rc < 0) {
            pthread_mutex_lock(&s->mu);
            s->inflight -= c->len;
            pthread_mutex_unlock(&s->mu);
            free(c);
            ws_repo_obj_abort(ow);
            return -1;
        }
    }
    if (ws_repo_obj_commit(ow, &j->hdr, NULL, err) < 0)
        return -1;
    /* the stored size is informational (list's "stored" column): a failed stat is no failure */
    ws_storage_info info;
    ws_error serr;
    ws_error_clear(&serr);
    uint64_t stored = 0;
    if (ws_storage_stat(ws_repo_storage(w->repos[0]), key, &info, &serr) == 0)
        stored = info.size;
    pthread_mutex_lock(&s->mu);
    s->stats.objects++;
    s->stats.stored_bytes += stored;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    ws_bb_oq *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->queue && !s->stop && !s->abort)
            pthread_cond_wait(&s->cv_idle, &s->mu);
        if (s->abort || !s->queue)
            break;
        job *j = s->queue;
        j->w = w;
        s->queue = j->next;
        if (!s->queue)
            s->queue_tail = NULL;
        j->next = NULL;
        pthread_mutex_unlock(&s->mu);
        ws_error e;
        ws_error_clear(&e);
        int rc = write_job(s, w, j, &e);
        pthread_mutex_lock(&s->mu);
        s->outstanding--;
        if (rc < 0) {
            /* what the stream's thread handed over and no one will write */
            s->inflight -= j->queued;
            chunks_free(j->head);
            j->head = j->tail = NULL;
            j->queued = 0;
            fail_locked(s, &e); /* keeps the first failure */
            j->next = s->dead;
            s->dead = j;
        } else {
            j->next = s->done;
            s->done = j;
        }
        wake_stream_locked(s);
        /* another job may be waiting, and the writer signalled for it be busy */
        if (s->queue)
            pthread_cond_signal(&s->cv_idle);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void writers_stop(ws_bb_oq *s, int abort)
{
    if (!s->sync_ready)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    if (abort)
        s->abort = 1;
    wake_all_locked(s);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nwriters; i++) {
        if (s->w[i].started)
            pthread_join(s->w[i].tid, NULL);
        s->w[i].started = 0;
    }
}

int ws_bb_oq_new(const ws_bb_oq_opts *o, ws_bb_oq **out, ws_error *err)
{
    *out = NULL;
    ws_bb_oq *s = calloc(1, sizeof *s);
    if (!s)
        return ws_error_oom(err);
    s->o = *o;
    if (s->o.parallel < 1 || !s->o.cfg)
        s->o.parallel = 1;
    if (s->o.max_inflight == 0)
        s->o.max_inflight = CHUNK_SIZE;
    s->next_obj = 1;
    s->max_spare = (int)((s->o.max_inflight + s->o.gather_max) / CHUNK_SIZE) + s->o.parallel + 2;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return ws_error_set(err, WS_ENOMEM, "cannot create a mutex");
    }
    if (pthread_cond_init(&s->cv_idle, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ws_error_set(err, WS_ENOMEM, "cannot create a condition variable");
    }
    if (pthread_cond_init(&s->cv_stream, NULL) != 0) {
        pthread_cond_destroy(&s->cv_idle);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return ws_error_set(err, WS_ENOMEM, "cannot create a condition variable");
    }
    s->sync_ready = 1;
    *out = s;
    if (!(s->w = calloc((size_t)s->o.parallel, sizeof *s->w)))
        return ws_error_oom(err);
    s->nwriters = s->o.parallel;
    for (int i = 0; i < s->nwriters; i++) {
        writer *w = &s->w[i];
        w->s = s;
        if (pthread_cond_init(&w->cv, NULL) != 0)
            return ws_error_set(err, WS_ENOMEM, "cannot create a condition variable");
        w->cv_ready = 1;
        if (s->o.cfg) {
            int catchup[WS_CONFIG_MAX_REPOS];
            if (ws_repo_modes(s->o.cfg, catchup, err) < 0 ||
                ws_cmd_open_repos(s->o.cfg, &w->repos, &w->nrepos, err) < 0)
                return -1;
            w->own = 1;
            /* repoN-mode = catch-up: not written by the backup (filled after it) */
            int k = 0;
            for (int r = 0; r < w->nrepos; r++) {
                if (r < WS_CONFIG_MAX_REPOS && catchup[r])
                    ws_repo_free(w->repos[r]);
                else
                    w->repos[k++] = w->repos[r];
            }
            w->nrepos = k;
        } else {
            w->repos = s->o.repos;
            w->nrepos = s->o.nrepos;
        }
    }
    for (int i = 0; i < s->nwriters; i++) {
        if (pthread_create(&s->w[i].tid, NULL, writer_main, &s->w[i]) != 0) {
            if (i == 0)
                return ws_error_set(err, WS_ENOMEM, "cannot start a writer thread");
            ws_log_warn("started %d of %d writer threads", i, s->nwriters);
            break;
        }
        s->w[i].started = 1;
    }
    return 0;
}

void ws_bb_oq_free(ws_bb_oq *s)
{
    if (!s)
        return;
    writers_stop(s, 1);
    jobs_free(s, s->queue);
    jobs_free(s, s->done);
    jobs_free(s, s->dead);
    chunks_free(s->spare);
    for (int i = 0; s->w && i < s->nwriters; i++) {
        if (s->w[i].own)
            ws_cmd_close_repos(s->w[i].repos, s->w[i].nrepos);
        if (s->w[i].cv_ready)
            pthread_cond_destroy(&s->w[i].cv);
    }
    free(s->w);
    if (s->sync_ready) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv_idle);
        pthread_cond_destroy(&s->cv_stream);
    }
    free(s);
}

void ws_bb_oq_get_stats(ws_bb_oq *s, ws_bb_oq_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

int ws_bb_oq_finish(ws_bb_oq *s, ws_error *err)
{
    pthread_mutex_lock(&s->mu);
    while (s->outstanding > 0 && !s->failed)
        stream_wait_locked(s);
    int rc = s->failed ? failed_locked(s, err) : 0;
    pthread_mutex_unlock(&s->mu);
    if (rc < 0)
        return -1;
    writers_stop(s, 0);
    return ws_bb_oq_reap(s, err);
}
