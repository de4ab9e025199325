/* stage.c — chain plumbing and the simple stages: SHA-256, storage sink, fd sink. */
#include "walship/stage/stage.h"

/* SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but the first EVP
 * digest of a process initialises the provider machinery (~4.5 M instructions, about a
 * millisecond — 3 % of a whole 16 MiB push). The low-level calls run the same SHA-NI code
 * without it; an archive_command pays start-up costs once per segment. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <errno.h>
#include <openssl/sha.h>
#include <uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ws_stage_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    if (!st || len == 0)
        return 0;
    return st->ops->write(st, buf, len, err);
}

int ws_stage_finish(ws_stage *st, ws_error *err)
{
    for (; st; st = st->next)
        if (st->ops->flush && st->ops->flush(st, err) < 0)
            return -1;
    return 0;
}

static const ws_stage_ops ref_ops;

void ws_stage_free(ws_stage *st)
{
    while (st) {
        ws_stage *next = st->ops == &ref_ops ? NULL : st->next; /* a ref owns no next */
        st->ops->free(st);
        st = next;
    }
}

void ws_stage_chain_free(ws_stage *st)
{
    ws_stage_free(st);
}

static void plain_free(ws_stage *st)
{
    free(st);
}

/* ---- ref: passes on to a stage it does not own ---- */

static int ref_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    return ws_stage_write(st->next, buf, len, err);
}

static const ws_stage_ops ref_ops = {"ref", ref_write, NULL, plain_free};

ws_stage *ws_stage_ref_new(ws_stage *next)
{
    ws_stage *s = calloc(1, sizeof *s);
    if (!s)
        return NULL; /* next is not ours to free */
    s->ops = &ref_ops;
    s->next = next;
    return s;
}

/* ---- tee: the same bytes into several chains it owns ---- */

typedef struct tee_stage {
    ws_stage base;
    int n;
    ws_stage *b[];
} tee_stage;

static int tee_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    tee_stage *t = (tee_stage *)st;
    for (int i = 0; i < t->n; i++)
        if (ws_stage_write(t->b[i], buf, len, err) < 0)
            return -1;
    return 0;
}

static int tee_flush(ws_stage *st, ws_error *err)
{
    tee_stage *t = (tee_stage *)st;
    for (int i = 0; i < t->n; i++)
        if (ws_stage_finish(t->b[i], err) < 0)
            return -1;
    return 0;
}

static void tee_free(ws_stage *st)
{
    tee_stage *t = (tee_stage *)st;
    for (int i = 0; i < t->n; i++)
        ws_stage_free(t->b[i]);
    free(t);
}

static const ws_stage_ops tee_ops = {"tee", tee_write, tee_flush, tee_free};

ws_stage *ws_stage_tee_new(ws_stage **branches, int n)
{
    tee_stage *t = calloc(1, sizeof *t + (size_t)n * sizeof t->b[0]);
    if (!t) {
        for (int i = 0; i < n; i++)
            ws_stage_free(branches[i]);
        return NULL;
    }
    t->base.ops = &tee_ops;
    t->n = n;
    memcpy(t->b, branches, (size_t)n * sizeof t->b[0]);
    return &t->base;
}

/* ---- count ---- */

typedef struct count_stage {
    ws_stage base;
    uint64_t n;
} count_stage;

static int count_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    ((count_stage *)st)->n += len;
    return ws_stage_write(st->next, buf, len, err);
}

static const ws_stage_ops count_ops = {"count", count_write, NULL, plain_free};

ws_stage *ws_stage_count_new(ws_stage *next)
{
    count_stage *c = calloc(1, sizeof *c);
    if (!c) {
        ws_stage_free(next);
        return NULL;
    }
    c->base.ops = &count_ops;
    c->base.next = next;
    return &c->base;
}

uint64_t ws_stage_count(const ws_stage *st)
{
    return ((const count_stage *)st)->n;
}

/* ---- memory sink ---- */

typedef struct mem_sink {
    ws_stage base;
    size_t max, len;
    char what[64];
    char buf[]; /* max + 1 */
} mem_sink;

static int mem_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    mem_sink *m = (mem_sink *)st;
    if (len > m->max - m->len)
        return ws_error_set(err, WS_ECORRUPT, "%s is larger than %zu bytes", m->what, m->max);
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    m->buf[m->len] = '\0';
    return 0;
}

static const ws_stage_ops mem_ops = {"memory", mem_write, NULL, plain_free};

ws_stage *ws_stage_mem_sink_new(size_t max, const char *what)
{
    mem_sink *m = calloc(1, sizeof *m + max + 1);
    if (!m)
        return NULL;
    m->base.ops = &mem_ops;
    m->max = max;
    snprintf(m->what, sizeof m->what, "%s", what);
    return &m->base;
}

const char *ws_stage_mem_data(const ws_stage *st, size_t *len)
{
    const mem_sink *m = (const mem_sink *)st;
    if (len)
        *len = m->len;
    return m->buf;
}

/* ---- SHA-256 ---- */

#define SHA_SLOTS     4
#define SHA_SLOT_SIZE (256 * 1024)

typedef struct sha_stage {
    ws_stage base;
    SHA256_CTX ctx;
    uint64_t length;
    unsigned char digest[32];
    /* threaded mode: a ring of SHA_SLOTS buffers between the caller and the hash thread */
    int threaded, sync_ready, started, stop, failed;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    int head, tail, count;
    size_t len[SHA_SLOTS];
    char *slot[SHA_SLOTS];
} sha_stage;

static void sha_thread_main(void *arg)
{
    sha_stage *s = arg;
    uv_mutex_lock(&s->mu);
    for (;;) {
        while (s->count == 0 && !s->stop)
            uv_cond_wait(&s->cv, &s->mu);
        if (s->count == 0)
            break;
        int t = s->tail;
        uv_mutex_unlock(&s->mu);
        int ok = SHA256_Update(&s->ctx, s->slot[t], s->len[t]) == 1;
        uv_mutex_lock(&s->mu);
        if (!ok)
            s->failed = 1;
        s->tail = (t + 1) % SHA_SLOTS;
        s->count--;
        uv_cond_broadcast(&s->cv);
    }
    uv_mutex_unlock(&s->mu);
}

static int sha_enqueue(sha_stage *s, const char *p, size_t len, ws_error *err)
{
    if (!s->started) {
        if (uv_thread_create(&s->thread, sha_thread_main, s) != 0) {
            /* no thread to be had: hash on this one */
            s->threaded = 0;
            return SHA256_Update(&s->ctx, p, len) == 1
                       ? 0
                       : ws_error_set(err, WS_EINTERNAL, "SHA-256 update failed");
        }
        s->started = 1;
    }
    while (len) {
        size_t k = len < SHA_SLOT_SIZE ? len : SHA_SLOT_SIZE;
        uv_mutex_lock(&s->mu);
        while (s->count == SHA_SLOTS)
            uv_cond_wait(&s->cv, &s->mu);
        int h = s->head;
        uv_mutex_unlock(&s->mu);
        memcpy(s->slot[h], p, k); /* slot h is ours until count says otherwise */
        s->len[h] = k;
        uv_mutex_lock(&s->mu);
        s->head = (h + 1) % SHA_SLOTS;
        s->count++;
        uv_cond_broadcast(&s->cv);
        uv_mutex_unlock(&s->mu);
        p += k;
        len -= k;
    }
    return 0;
}

static void sha_join(sha_stage *s)
{
    if (!s->started)
        return;
    uv_mutex_lock(&s->mu);
    s->stop = 1;
    uv_cond_broadcast(&s->cv);
    uv_mutex_unlock(&s->mu);
    uv_thread_join(&s->thread);
    s->started = 0;
}

static int sha_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    sha_stage *s = (sha_stage *)st;
    if (s->threaded) {
        if (sha_enqueue(s, buf, len, err) < 0)
            return -1;
    } else if (SHA256_Update(&s->ctx, buf, len) != 1)
        return ws_error_set(err, WS_EINTERNAL, "SHA-256 update failed");
    s->length += len;
    return ws_stage_write(st->next, buf, len, err);
}

static int sha_flush(ws_stage *st, ws_error *err)
{
    sha_stage *s = (sha_stage *)st;
    sha_join(s);
    if (s->failed || SHA256_Final(s->digest, &s->ctx) != 1)
        return ws_error_set(err, WS_EINTERNAL, "SHA-256 failed");
    return 0;
}

static void sha_free(ws_stage *st)
{
    sha_stage *s = (sha_stage *)st;
    sha_join(s);
    if (s->sync_ready) {
        uv_mutex_destroy(&s->mu);
        uv_cond_destroy(&s->cv);
    }
    for (int i = 0; i < SHA_SLOTS; i++)
        free(s->slot[i]);
    free(s);
}

static const ws_stage_ops sha_ops = {"sha256", sha_write, sha_flush, sha_free};

static ws_stage *sha_new(ws_stage *next, int threaded)
{
    sha_stage *s = calloc(1, sizeof *s);
    if (!s) {
        ws_stage_free(next);
        return NULL;
    }
    s->base.ops = &sha_ops;
    s->base.next = next;
    if (SHA256_Init(&s->ctx) != 1)
        goto fail;
    if (threaded) {
        for (int i = 0; i < SHA_SLOTS; i++)
            if (!(s->slot[i] = malloc(SHA_SLOT_SIZE)))
                goto fail;
        if (uv_mutex_init(&s->mu) != 0)
            goto fail;
        if (uv_cond_init(&s->cv) != 0) {
            uv_mutex_destroy(&s->mu);
            goto fail;
        }
        s->sync_ready = 1;
        s->threaded = 1;
    }
    return &s->base;
fail:
    sha_free(&s->base);
    ws_stage_free(next);
    return NULL;
}

ws_stage *ws_stage_sha256_new(ws_stage *next)
{
    return sha_new(next, 0);
}

ws_stage *ws_stage_sha256_threaded_new(ws_stage *next)
{
    return sha_new(next, 1);
}

void ws_stage_sha256_result(const ws_stage *st, unsigned char digest[32], uint64_t *length)
{
    const sha_stage *s = (const sha_stage *)st;
    if (digest)
        memcpy(digest, s->digest, 32);
    if (length)
        *length = s->length;
}

void ws_sha256_hex(const unsigned char digest[32], char out[65])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
}

void ws_sha256(const void *buf, size_t len, unsigned char digest[32])
{
    /* not SHA256(): in OpenSSL 3 that one-shot goes through EVP (see the top of this file) */
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, buf, len);
    SHA256_Final(digest, &c);
}

/* ---- storage sink ---- */

typedef struct storage_sink {
    ws_stage base;
    int n;
    ws_storage_writer *w[];
} storage_sink;

static int sink_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    storage_sink *s = (storage_sink *)st;
    for (int i = 0; i < s->n; i++)
        if (ws_storage_write(s->w[i], buf, len, err) < 0)
            return -1;
    return 0;
}

static const ws_stage_ops sink_ops = {"storage-sink", sink_write, NULL, plain_free};

ws_stage *ws_stage_storage_sink_new(ws_storage_writer **writers, int n)
{
    storage_sink *s = calloc(1, sizeof *s + (size_t)n * sizeof s->w[0]);
    if (!s)
        return NULL;
    s->base.ops = &sink_ops;
    s->n = n;
    memcpy(s->w, writers, (size_t)n * sizeof s->w[0]);
    return &s->base;
}

/* ---- fd sink ---- */

typedef struct fd_sink {
    ws_stage base;
    int fd;
    char what[256];
} fd_sink;

static int fd_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    fd_sink *s = (fd_sink *)st;
    const char *p = buf;
    while (len) {
        ssize_t k = write(s->fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ws_error_errno(err, WS_EIO, errno, "cannot write %s", s->what);
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static const ws_stage_ops fd_ops = {"fd-sink", fd_write, NULL, plain_free};

ws_stage *ws_stage_fd_sink_new(int fd, const char *what)
{
    fd_sink *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &fd_ops;
    s->fd = fd;
    snprintf(s->what, sizeof s->what, "%s", what);
    return &s->base;
}
