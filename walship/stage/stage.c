/* stage.c — chain plumbing and the simple stages: SHA-256, storage sink, fd sink. */
#include "walship/stage/stage.h"

#include <errno.h>
#include <openssl/evp.h>
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

void ws_stage_free(ws_stage *st)
{
    if (st)
        st->ops->free(st);
}

void ws_stage_chain_free(ws_stage *st)
{
    while (st) {
        ws_stage *next = st->next;
        ws_stage_free(st);
        st = next;
    }
}

/* ---- SHA-256 ---- */

typedef struct sha_stage {
    ws_stage base;
    EVP_MD_CTX *ctx;
    uint64_t length;
    unsigned char digest[32];
} sha_stage;

static int sha_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    sha_stage *s = (sha_stage *)st;
    if (EVP_DigestUpdate(s->ctx, buf, len) != 1)
        return ws_error_set(err, WS_EINTERNAL, "SHA-256 update failed");
    s->length += len;
    return ws_stage_write(st->next, buf, len, err);
}

static int sha_flush(ws_stage *st, ws_error *err)
{
    sha_stage *s = (sha_stage *)st;
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(s->ctx, s->digest, &n) != 1 || n != 32)
        return ws_error_set(err, WS_EINTERNAL, "SHA-256 final failed");
    return 0;
}

static void sha_free(ws_stage *st)
{
    sha_stage *s = (sha_stage *)st;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}

static const ws_stage_ops sha_ops = {"sha256", sha_write, sha_flush, sha_free};

ws_stage *ws_stage_sha256_new(ws_stage *next)
{
    sha_stage *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base.ops = &sha_ops;
    s->base.next = next;
    s->ctx = EVP_MD_CTX_new();
    if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(s->ctx);
        free(s);
        return NULL;
    }
    return &s->base;
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
    unsigned int n = 32;
    EVP_Digest(buf, len, digest, &n, EVP_sha256(), NULL);
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

static void plain_free(ws_stage *st)
{
    free(st);
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
