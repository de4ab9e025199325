/* s3_write.c — the S3 driver's writer: PUT, or multipart (s3_driver.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "walship/log.h"
#include "walship/storage/s3_driver.h"

/* ---- writer (PUT, or multipart above WS_S3_PART_SIZE) ---- */

typedef struct s3_writer s3_writer;

typedef struct s3_part {
    ws_s3_op op;
    s3_writer *w;
    char *data;
    size_t len;
    int num;
    char etag[160];
    int busy;
} s3_part;

struct s3_writer {
    ws_storage_writer base;
    s3_storage *s;
    char *key; /* full key */
    unsigned flags;
    char *buf;
    size_t len, cap;
    uint64_t total;
    /* multipart */
    char *upload_id;
    char *first; /* part 1, held for patch() */
    size_t first_len;
    s3_part **parts;
    int nparts, inflight;
    ws_error part_err;
    int part_failed;
    int exists; /* EXCL and the key exists: the rest is not uploaded, commit says WS_EEXIST */
};

/* Headers that every new object gets: storage class, server-side encryption. */
static int object_headers(s3_storage *s, ws_s3_op *op)
{
    if (s->storage_class && ws_s3_op_header(op, "x-amz-storage-class", s->storage_class) < 0)
        return -1;
    if (s->sse && ws_s3_op_header(op, "x-amz-server-side-encryption", s->sse) < 0)
        return -1;
    if (s->sse_kms_key_id &&
        ws_s3_op_header(op, "x-amz-server-side-encryption-aws-kms-key-id", s->sse_kms_key_id) < 0)
        return -1;
    return 0;
}

static void part_done(ws_s3_op *op, void *arg)
{
    s3_part *p = arg;
    s3_writer *w = p->w;
    p->busy = 0;
    w->inflight--;
    if (op->err.code != WS_EOK) {
        if (!w->part_failed) {
            w->part_err = op->err;
            ws_error_prefix(&w->part_err, "uploading part %d: ", p->num);
        }
        w->part_failed = 1;
    } else {
        const char *et = ws_s3_op_header_value(op, "etag");
        snprintf(p->etag, sizeof p->etag, "%s", et ? et : "");
    }
    /* The bytes are no longer needed: an acknowledged part is stored. */
    free(p->data);
    p->data = NULL;
}

static int wait_inflight(s3_writer *w, int max, ws_error *err)
{
    while (w->inflight > max) {
        int before = w->inflight;
        while (w->inflight == before)
            if (uv_run(ws_http_loop(w->s->c.http), UV_RUN_ONCE) == 0 && w->inflight == before)
                return ws_error_set(err, WS_EINTERNAL, "multipart upload stalled");
    }
    return 0;
}

static int submit_part(s3_writer *w, int num, char *data, size_t len, ws_error *err)
{
    if (wait_inflight(w, S3_PARTS_IN_FLIGHT - 1, err) < 0)
        return -1;
    if (w->part_failed) {
        free(data);
        if (err)
            *err = w->part_err;
        return -1;
    }
    s3_part *p = calloc(1, sizeof *p);
    s3_part **np = realloc(w->parts, (size_t)(w->nparts + 1) * sizeof *np);
    if (!p || !np) {
        free(p);
        free(data);
        if (np)
            w->parts = np;
        return ws_error_oom(err);
    }
    w->parts = np;
    w->parts[w->nparts++] = p;
    p->w = w;
    p->num = num;
    p->data = data;
    p->len = len;
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", num);
    ws_s3_op_init(&p->op, "PUT", w->key);
    if (ws_s3_op_query(&p->op, "partNumber", nbuf) < 0 ||
        ws_s3_op_query(&p->op, "uploadId", w->upload_id) < 0)
        return ws_error_oom(err);
    p->op.body = data;
    p->op.body_len = len;
    if (ws_s3_op_start(&w->s->c, &p->op, part_done, p, err) < 0)
        return -1;
    p->busy = 1;
    w->inflight++;
    return 0;
}

static int start_multipart(s3_writer *w, ws_error *err)
{
    s3_storage *s = w->s;
    if (w->flags & WS_STORAGE_WRITE_EXCL) {
        /* Fail fast instead of uploading gigabytes that the final If-None-Match refuses. */
        ws_storage_info info;
        ws_error e2;
        if (ws_s3_drv_stat(&s->base, w->key + strlen(s->prefix), &info, &e2) == 0) {
            char what[600];
            ws_s3_describe_key(&s->c, w->key, what, sizeof what);
            return ws_error_set(err, WS_EEXIST, "%s: already exists", what);
        }
        if (e2.code != WS_ENOENT) {
            if (err)
                *err = e2;
            return -1;
        }
    }
    ws_s3_op op;
    ws_s3_op_init(&op, "POST", w->key);
    if (ws_s3_op_query(&op, "uploads", NULL) < 0 || object_headers(s, &op) < 0) {
        ws_s3_op_cleanup(&op);
        return ws_error_oom(err);
    }
    int rc = ws_s3_op_run(&s->c, &op, err);
    char id[1024];
    if (rc == 0 && ws_s3_xml_text(ws_s3_op_body(&op, NULL), "UploadId", id, sizeof id, NULL) < 0)
        rc = ws_error_set(err, WS_EIO, "CreateMultipartUpload for %s returned no UploadId", w->key);
    ws_s3_op_cleanup(&op);
    if (rc < 0)
        return -1;
    if (!(w->upload_id = strdup(id)))
        return ws_error_oom(err);
    return 0;
}

/* The filled buffer becomes a part: part 1 is held, the others go up now. */
static int flush_part(s3_writer *w, ws_error *err)
{
    if (!w->upload_id && !w->exists && start_multipart(w, err) < 0) {
        if (!err || err->code != WS_EEXIST)
            return -1;
        /* Refused at commit as a single PUT would be, so that the repository layer compares
         * the stored object with this one there (the same file pushed again succeeds). */
        w->exists = 1;
        ws_error_clear(err);
    }
    if (w->exists) {
        w->len = 0;
        return 0;
    }
    char *data = w->buf;
    size_t len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    if (!w->first) {
        w->first = data;
        w->first_len = len;
        return 0;
    }
    if (w->nparts + 2 > S3_MAX_PARTS) {
        free(data);
        return ws_error_set(err, WS_EINVAL, "%s: object too large (over %d parts)", w->key,
                            S3_MAX_PARTS);
    }
    return submit_part(w, w->nparts + 2, data, len, err);
}

static int s3_writer_write(ws_storage_writer *wr, const void *data, size_t n, ws_error *err)
{
    s3_writer *w = (s3_writer *)wr;
    const char *p = data;
    if (w->part_failed) {
        if (err)
            *err = w->part_err;
        return -1;
    }
    while (n) {
        if (w->len == WS_S3_PART_SIZE && flush_part(w, err) < 0)
            return -1;
        if (!w->buf) {
            w->cap = WS_S3_PART_SIZE;
            if (!(w->buf = malloc(w->cap)))
                return ws_error_set(err, WS_ENOMEM, "out of memory buffering %s", w->key);
        }
        size_t k = WS_S3_PART_SIZE - w->len;
        if (k > n)
            k = n;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        w->total += k;
        p += k;
        n -= k;
    }
    return 0;
}

static int s3_writer_patch(ws_storage_writer *wr, uint64_t off, const void *data, size_t n,
                           ws_error *err)
{
    s3_writer *w = (s3_writer *)wr;
    if (w->exists)
        return 0;
    char *target = w->first ? w->first : w->buf;
    size_t have = w->first ? w->first_len : w->len;
    if (off + n > have)
        return ws_error_set(err, WS_EINTERNAL, "patch beyond what was written");
    memcpy(target + off, data, n);
    return 0;
}

static void writer_free(s3_writer *w)
{
    for (int i = 0; i < w->nparts; i++) {
        ws_s3_op_cleanup(&w->parts[i]->op);
        free(w->parts[i]->data);
        free(w->parts[i]);
    }
    free(w->parts);
    free(w->first);
    free(w->buf);
    free(w->upload_id);
    free(w->key);
    free(w);
}

static void abort_multipart(s3_writer *w)
{
    for (int i = 0; i < w->nparts; i++)
        if (w->parts[i]->busy)
            ws_s3_op_cancel(&w->parts[i]->op);
    wait_inflight(w, 0, NULL);
    if (!w->upload_id)
        return;
    ws_s3_op op;
    ws_error e;
    ws_s3_op_init(&op, "DELETE", w->key);
    if (ws_s3_op_query(&op, "uploadId", w->upload_id) == 0 && ws_s3_op_run(&w->s->c, &op, &e) < 0)
        ws_log_debug("aborting the multipart upload of %s: %s", w->key, e.msg);
    ws_s3_op_cleanup(&op);
}

static int add_meta(ws_s3_op *op, const ws_meta *meta)
{
    for (int i = 0; meta && i < meta->n; i++) {
        char name[WS_META_KEY_MAX + 16];
        snprintf(name, sizeof name, "x-amz-meta-%s", meta->kv[i].key);
        if (ws_s3_op_header(op, name, meta->kv[i].value) < 0)
            return -1;
    }
    return 0;
}

static int commit_single(s3_writer *w, const ws_meta *meta, ws_error *err)
{
    ws_s3_op op;
    ws_s3_op_init(&op, "PUT", w->key);
    if (object_headers(w->s, &op) < 0 || add_meta(&op, meta) < 0 ||
        ((w->flags & WS_STORAGE_WRITE_EXCL) && ws_s3_op_header(&op, "if-none-match", "*") < 0)) {
        ws_s3_op_cleanup(&op);
        return ws_error_oom(err);
    }
    op.body = w->buf ? w->buf : "";
    op.body_len = w->len;
    int rc = ws_s3_op_run(&w->s->c, &op, err);
    ws_s3_op_cleanup(&op);
    return rc;
}

static int commit_multipart(s3_writer *w, ws_error *err)
{
    /* Part 1 (patched by now) and the tail. */
    char *first = w->first;
    w->first = NULL;
    if (submit_part(w, 1, first, w->first_len, err) < 0)
        return -1;
    if (w->len) {
        char *tail = w->buf;
        w->buf = NULL;
        if (submit_part(w, w->nparts + 1, tail, w->len, err) < 0)
            return -1;
    }
    if (wait_inflight(w, 0, err) < 0)
        return -1;
    if (w->part_failed) {
        if (err)
            *err = w->part_err;
        return -1;
    }
    /* Parts by number: part 1 was submitted late, so order them. */
    char *xml = NULL;
    size_t xlen = 0;
    FILE *f = open_memstream(&xml, &xlen);
    if (!f)
        return ws_error_oom(err);
    fputs("<CompleteMultipartUpload>", f);
    for (int num = 1; num <= w->nparts; num++)
        for (int i = 0; i < w->nparts; i++)
            if (w->parts[i]->num == num)
                fprintf(f, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", num,
                        w->parts[i]->etag);
    fputs("</CompleteMultipartUpload>", f);
    fclose(f);

    ws_s3_op op;
    ws_s3_op_init(&op, "POST", w->key);
    int rc = 0;
    if (ws_s3_op_query(&op, "uploadId", w->upload_id) < 0 ||
        ((w->flags & WS_STORAGE_WRITE_EXCL) && ws_s3_op_header(&op, "if-none-match", "*") < 0))
        rc = ws_error_oom(err);
    op.body = xml;
    op.body_len = xlen;
    op.check_error_body = 1;
    if (rc == 0)
        rc = ws_s3_op_run(&w->s->c, &op, err);
    if (rc < 0 && op.err.code == WS_ENOENT && op.attempt > 1) {
        /* NoSuchUpload on a retry: the earlier attempt completed but its reply was lost.
         * The object of the right size being there is that completion. */
        ws_storage_info info;
        ws_error e2;
        if (ws_s3_drv_stat(&w->s->base, w->key + strlen(w->s->prefix), &info, &e2) == 0 &&
            info.size == w->total) {
            ws_error_clear(err);
            rc = 0;
        }
    }
    ws_s3_op_cleanup(&op);
    free(xml);
    return rc;
}

static int s3_writer_commit(ws_storage_writer *wr, const ws_meta *meta, ws_error *err)
{
    s3_writer *w = (s3_writer *)wr;
    int rc;
    if (w->part_failed) {
        if (err)
            *err = w->part_err;
        rc = -1;
    } else if (w->exists) {
        char what[600];
        ws_s3_describe_key(&w->s->c, w->key, what, sizeof what);
        rc = ws_error_set(err, WS_EEXIST, "%s: already exists", what);
    } else if (!w->upload_id) {
        rc = commit_single(w, meta, err);
    } else {
        rc = commit_multipart(w, err);
    }
    if (rc < 0 && w->upload_id)
        abort_multipart(w);
    writer_free(w);
    return rc;
}

static void s3_writer_abort(ws_storage_writer *wr)
{
    s3_writer *w = (s3_writer *)wr;
    if (w->upload_id)
        abort_multipart(w);
    writer_free(w);
}

static const ws_storage_writer_ops s3_writer_ops = {s3_writer_write, s3_writer_patch,
                                                    s3_writer_commit, s3_writer_abort};

int ws_s3_drv_open_write(ws_storage *st, const char *key, unsigned flags, ws_storage_writer **out,
                         ws_error *err)
{
    s3_storage *s = S(st);
    *out = NULL;
    if (check_key(key, err) < 0)
        return -1;
    s3_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->key = full_key(s, key))) {
        free(w);
        return ws_error_oom(err);
    }
    w->base.ops = &s3_writer_ops;
    w->s = s;
    w->flags = flags;
    *out = &w->base;
    return 0;
}
