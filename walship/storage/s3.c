/*
 * s3.c — the S3 storage driver (storage.h) on s3_client: GET (ranged), PUT / multipart
 * upload, HEAD with user metadata, ListObjectsV2, DELETE.
 *
 * Repository keys map to "<prefix>/<key>" in the bucket; list strips the prefix again.
 *
 * Writers buffer in memory. Up to WS_S3_PART_SIZE the object goes up in one PUT at commit.
 * Beyond it the writer switches to a multipart upload: parts 2.. go up in parallel (at most
 * S3_PARTS_IN_FLIGHT at once) while the caller keeps writing, but part 1 is held back until
 * commit because patch() may still rewrite the first WS_STORAGE_PATCH_MAX bytes.
 * Metadata is only known at commit, after CreateMultipartUpload was sent, so multipart
 * objects carry no user metadata: stat returns an empty meta for them and the repository
 * layer falls back to the object header (a ranged read).
 *
 * WS_STORAGE_WRITE_EXCL is "If-None-Match: *" on the PUT (and on the multipart completion);
 * servers that ignore the header (s3rver, older MinIO/Ceph) silently overwrite — the
 * repository layer's stat before push still catches the ordinary duplicate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "walship/log.h"
#include "walship/storage/s3_client.h"
#include "walship/storage/storage.h"

#define WS_S3_PART_SIZE    (16u << 20)
#define S3_PARTS_IN_FLIGHT 4
#define S3_READ_BUFFER     (1u << 20)
#define S3_READ_RESUMES    100 /* each resume follows progress; this only stops a loop */
/* A download slower than this for the low-speed time (io-timeout / 3, 2..30 s) is cut: a
 * body trickling a byte at a time must not hold a fetch or a restore for hours. */
#define S3_READ_LOW_SPEED 1024L
/* An attempt that brought less than this before it was cut is little progress: a download is
 * resumed after at most S3_READ_SMALL_RESUMES of those, so that a trickle (a byte at a time,
 * cut by the low-speed limit each time) ends instead of being resumed for hours. */
#define S3_RESUME_MIN_PROGRESS (64u << 10)
#define S3_READ_SMALL_RESUMES  3
#define S3_MAX_PARTS           10000

typedef struct s3_storage {
    ws_storage base;
    ws_s3_client c;
    char *prefix; /* "" or "some/prefix/" */
    char *desc;
    char *storage_class, *sse, *sse_kms_key_id;
} s3_storage;

static s3_storage *S(ws_storage *s)
{
    return (s3_storage *)s;
}

/* "<prefix><key>", malloc'd. */
static char *full_key(s3_storage *s, const char *key)
{
    char *k = NULL;
    if (asprintf(&k, "%s%s", s->prefix, key ? key : "") < 0)
        return NULL;
    return k;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int check_key(const char *key, ws_error *err)
{
    if (!ws_storage_key_valid(key))
        return ws_error_set(err, WS_EINTERNAL, "invalid storage key \"%s\"", key ? key : "");
    return 0;
}

/* ---- stat (HEAD) ---- */

static int64_t parse_http_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static int64_t parse_iso_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static int s3_stat(ws_storage *st, const char *key, ws_storage_info *info, ws_error *err)
{
    s3_storage *s = S(st);
    if (check_key(key, err) < 0)
        return -1;
    ws_s3_op op;
    char *fk = full_key(s, key);
    ws_s3_op_init(&op, "HEAD", fk);
    free(fk);
    int rc = ws_s3_op_run(&s->c, &op, err);
    if (rc == 0) {
        const char *cl = ws_s3_op_header_value(&op, "content-length");
        info->size = cl ? strtoull(cl, NULL, 10) : 0;
        info->mtime = parse_http_date(ws_s3_op_header_value(&op, "last-modified"));
        memset(&info->meta, 0, sizeof info->meta);
        const char *name, *value;
        for (int i = 0; ws_http_req_resp_header_at(op.rq, i, &name, &value); i++)
            if (strncmp(name, "x-amz-meta-", 11) == 0)
                ws_meta_set(&info->meta, name + 11, value);
    }
    ws_s3_op_cleanup(&op);
    return rc;
}

/* ---- remove (DELETE; absent is fine) ---- */

static int s3_remove(ws_storage *st, const char *key, ws_error *err)
{
    s3_storage *s = S(st);
    if (check_key(key, err) < 0)
        return -1;
    ws_s3_op op;
    char *fk = full_key(s, key);
    ws_s3_op_init(&op, "DELETE", fk);
    free(fk);
    int rc = ws_s3_op_run(&s->c, &op, err);
    if (rc < 0 && op.err.code == WS_ENOENT) {
        ws_error_clear(err);
        rc = 0;
    }
    ws_s3_op_cleanup(&op);
    return rc;
}

/* ---- list (ListObjectsV2, paginated) ---- */

/* Calls cb for each <Contents> of one page; returns 1 if cb asked to stop. */
static int list_page(s3_storage *s, const char *xml, ws_storage_list_cb cb, void *arg)
{
    size_t plen = strlen(s->prefix);
    const char *p = xml;
    static char key[2048]; /* keys are at most 1024 bytes in S3 */
    while ((p = strstr(p, "<Contents>"))) {
        const char *end = strstr(p, "</Contents>");
        if (!end)
            break;
        size_t n = (size_t)(end - p);
        char *item = strndup(p, n);
        p = end + 11;
        if (!item)
            continue;
        char size[32] = "0", lm[64] = "";
        if (ws_s3_xml_text(item, "Key", key, sizeof key, NULL) == 0 &&
            strncmp(key, s->prefix, plen) == 0 && key[plen]) {
            ws_s3_xml_text(item, "Size", size, sizeof size, NULL);
            ws_s3_xml_text(item, "LastModified", lm, sizeof lm, NULL);
            ws_storage_info info;
            memset(&info, 0, sizeof info);
            info.size = strtoull(size, NULL, 10);
            info.mtime = parse_iso_date(lm);
            if (cb(arg, key + plen, &info)) {
                free(item);
                return 1;
            }
        }
        free(item);
    }
    return 0;
}

static int s3_list(ws_storage *st, const char *prefix, ws_storage_list_cb cb, void *arg,
                   ws_error *err)
{
    s3_storage *s = S(st);
    char *fp = full_key(s, prefix ? prefix : "");
    char *token = NULL, *prev = NULL;
    int rc = 0;
    if (!fp)
        return ws_error_oom(err);
    for (;;) {
        ws_s3_op op;
        ws_s3_op_init(&op, "GET", NULL);
        if (ws_s3_op_query(&op, "list-type", "2") < 0 || ws_s3_op_query(&op, "prefix", fp) < 0 ||
            (token && ws_s3_op_query(&op, "continuation-token", token) < 0)) {
            ws_s3_op_cleanup(&op);
            rc = ws_error_oom(err);
            break;
        }
        free(token);
        token = NULL;
        rc = ws_s3_op_run(&s->c, &op, err);
        if (rc < 0) {
            if (err && err->code == WS_ENOENT) /* 404 on the bucket itself */
                err->code = WS_ECONFIG;
            ws_s3_op_cleanup(&op);
            break;
        }
        const char *xml = ws_s3_op_body(&op, NULL);
        int stop = list_page(s, xml, cb, arg);
        char trunc[16] = "", next[1024] = "";
        ws_s3_xml_text(xml, "IsTruncated", trunc, sizeof trunc, NULL);
        ws_s3_xml_text(xml, "NextContinuationToken", next, sizeof next, NULL);
        ws_s3_op_cleanup(&op);
        if (stop || strcmp(trunc, "true") != 0)
            break;
        if (!next[0]) {
            rc = ws_error_set(err, WS_EIO,
                              "listing %s: truncated page without a continuation "
                              "token",
                              s->desc);
            break;
        }
        if (prev && strcmp(prev, next) == 0) {
            /* a server that hands back the token it was given would be listed for ever */
            rc = ws_error_set(err, WS_EIO,
                              "listing %s: the server returned the same continuation token "
                              "twice; stopping instead of looping",
                              s->desc);
            break;
        }
        free(prev);
        prev = strdup(next);
        token = strdup(next);
        if (!token || !prev) {
            rc = ws_error_oom(err);
            break;
        }
    }
    free(token);
    free(prev);
    free(fp);
    return rc;
}

/* ---- reader (GET, streamed, resumed with Range after a mid-body failure) ---- */

typedef struct s3_reader {
    ws_storage_reader base;
    s3_storage *s;
    char *key;         /* full key */
    uint64_t off, len; /* what the caller asked for; len 0 = to the end */
    uint64_t pos;      /* bytes handed to the caller or buffered, from off */
    char etag[160];
    ws_s3_op op;
    int op_busy, wake, eof, resumes, small_resumes;
    uint64_t attempt_from; /* pos when the current GET started */
    char *buf;
    size_t buf_len, buf_off;
    ws_error err;
    int failed;
} s3_reader;

static int reader_sink(void *arg, const char *data, size_t n)
{
    s3_reader *r = arg;
    if (r->buf_len - r->buf_off >= S3_READ_BUFFER) {
        r->wake = 1;
        return 1; /* pause until the caller has read */
    }
    if (r->len && r->pos + n > r->len) /* a server that ignored Range: cut at len */
        n = r->pos < r->len ? (size_t)(r->len - r->pos) : 0;
    if (r->buf_off && r->buf_off == r->buf_len)
        r->buf_off = r->buf_len = 0;
    char *b = realloc(r->buf, r->buf_len + n + 1);
    if (!b)
        return -1;
    r->buf = b;
    memcpy(r->buf + r->buf_len, data, n);
    r->buf_len += n;
    r->pos += n;
    r->op.delivered = 1;
    r->wake = 1;
    return 0;
}

static void reader_done(ws_s3_op *op, void *arg)
{
    s3_reader *r = arg;
    (void)op;
    r->op_busy = 0;
    r->wake = 1;
}

static int reader_start(s3_reader *r, ws_error *err)
{
    ws_s3_op_cleanup(&r->op);
    ws_s3_op_init(&r->op, "GET", r->key);
    uint64_t from = r->off + r->pos;
    char range[64] = "";
    if (r->len)
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)from,
                 (unsigned long long)(r->off + r->len - 1));
    else if (from)
        snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)from);
    if ((range[0] && ws_s3_op_header(&r->op, "range", range) < 0) ||
        (r->etag[0] && ws_s3_op_header(&r->op, "if-match", r->etag) < 0))
        return ws_error_oom(err);
    r->op.sink = reader_sink;
    r->op.sink_arg = r;
    r->op.no_total_timeout = 1;
    r->op.low_speed_bps = S3_READ_LOW_SPEED;
    r->attempt_from = r->pos;
    r->wake = 0;
    if (ws_s3_op_start(&r->s->c, &r->op, reader_done, r, err) < 0)
        return -1;
    r->op_busy = 1;
    return 0;
}

/* Runs the loop until data is buffered, or the GET ended; handles the end. */
static int reader_pump(s3_reader *r, ws_error *err)
{
    while (r->buf_off == r->buf_len && !r->eof) {
        if (r->op_busy) {
            r->wake = 0;
            ws_http_req_resume(r->op.rq);
            if (ws_http_run_until(r->s->c.http, &r->wake) < 0)
                return ws_error_set(err, WS_EINTERNAL, "S3 read stalled: event loop ran dry");
            continue;
        }
        if (r->op.err.code == WS_EOK) {
            if (!r->etag[0]) {
                const char *et = ws_s3_op_header_value(&r->op, "etag");
                if (et)
                    snprintf(r->etag, sizeof r->etag, "%s", et);
            }
            r->eof = 1;
            break;
        }
        /* Failed. Mid-body transport failures resume where we are, pinned to the ETag. */
        int small = r->pos - r->attempt_from < S3_RESUME_MIN_PROGRESS;
        int resumable = r->op.delivered && r->op.err.code == WS_ETRANSIENT &&
                        r->resumes < S3_READ_RESUMES &&
                        (!small || r->small_resumes < S3_READ_SMALL_RESUMES) &&
                        (r->s->c.deadline <= 0 || now_mono() < r->s->c.deadline);
        if (!resumable) {
            if (err)
                *err = r->op.err;
            r->failed = 1;
            r->err = r->op.err;
            return -1;
        }
        const char *et = ws_s3_op_header_value(&r->op, "etag");
        if (!r->etag[0] && et)
            snprintf(r->etag, sizeof r->etag, "%s", et);
        r->resumes++;
        r->small_resumes += small;
        ws_log_warn("%s; resuming the download at byte %llu", r->op.err.msg,
                    (unsigned long long)(r->off + r->pos));
        if (reader_start(r, err) < 0)
            return -1;
    }
    return 0;
}

static int s3_reader_read(ws_storage_reader *rd, void *buf, size_t len, size_t *n, ws_error *err)
{
    s3_reader *r = (s3_reader *)rd;
    *n = 0;
    if (r->failed) {
        if (err)
            *err = r->err;
        return -1;
    }
    if (reader_pump(r, err) < 0)
        return -1;
    size_t avail = r->buf_len - r->buf_off;
    if (len > avail)
        len = avail;
    if (len) /* an empty object never allocates r->buf */
        memcpy(buf, r->buf + r->buf_off, len);
    r->buf_off += len;
    *n = len;
    return 0;
}

static void s3_reader_close(ws_storage_reader *rd)
{
    s3_reader *r = (s3_reader *)rd;
    if (r->op_busy) {
        ws_s3_op_cancel(&r->op);
        ws_http_run_until(r->s->c.http, &r->op.finished);
    }
    ws_s3_op_cleanup(&r->op);
    free(r->buf);
    free(r->key);
    free(r);
}

static const ws_storage_reader_ops s3_reader_ops = {s3_reader_read, s3_reader_close};

static int s3_open_read(ws_storage *st, const char *key, uint64_t off, uint64_t len,
                        ws_storage_reader **out, ws_error *err)
{
    s3_storage *s = S(st);
    *out = NULL;
    if (check_key(key, err) < 0)
        return -1;
    s3_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->key = full_key(s, key))) {
        free(r);
        return ws_error_oom(err);
    }
    r->base.ops = &s3_reader_ops;
    r->s = s;
    r->off = off;
    r->len = len;
    /* Open = the GET's status is known: absent and refused show up here, not at read. */
    if (reader_start(r, err) < 0 || reader_pump(r, err) < 0) {
        s3_reader_close(&r->base);
        return -1;
    }
    *out = &r->base;
    return 0;
}

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
        if (s3_stat(&s->base, w->key + strlen(s->prefix), &info, &e2) == 0) {
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
        if (s3_stat(&w->s->base, w->key + strlen(w->s->prefix), &info, &e2) == 0 &&
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

static int s3_open_write(ws_storage *st, const char *key, unsigned flags, ws_storage_writer **out,
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

/* ---- open / free ---- */

static const char *s3_describe(ws_storage *st)
{
    return S(st)->desc;
}

static void s3_free(ws_storage *st)
{
    s3_storage *s = S(st);
    ws_http_free(s->c.http);
    free(s->c.scheme);
    free(s->c.host);
    free(s->c.bucket);
    free(s->c.region);
    free(s->c.access_key);
    if (s->c.secret) {
        memset(s->c.secret, 0, strlen(s->c.secret));
        free(s->c.secret);
    }
    if (s->c.token) {
        memset(s->c.token, 0, strlen(s->c.token));
        free(s->c.token);
    }
    free(s->prefix);
    free(s->desc);
    free(s->storage_class);
    free(s->sse);
    free(s->sse_kms_key_id);
    free(s);
}

static void s3_set_deadline(ws_storage *st, double deadline)
{
    S(st)->c.deadline = deadline;
}

static const ws_storage_ops s3_ops = {"s3",           WS_STORAGE_FEAT_META | WS_STORAGE_FEAT_RANGE,
                                      s3_open_read,   s3_open_write,
                                      s3_stat,        s3_list,
                                      s3_remove,      s3_describe,
                                      s3_free,        NULL,
                                      s3_set_deadline};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Splits s3://bucket[/prefix] into bucket and "prefix/" (or ""). */
static int parse_url(s3_storage *s, const char *url, ws_error *err)
{
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t blen = slash ? (size_t)(slash - b) : strlen(b);
    if (blen == 0)
        return ws_error_set(err, WS_ECONFIG, "repository \"%s\" names no bucket", url);
    s->c.bucket = strndup(b, blen);
    const char *p = slash ? slash : "";
    while (*p == '/')
        p++;
    size_t plen = strlen(p);
    while (plen && p[plen - 1] == '/')
        plen--;
    s->prefix = malloc(plen + 2);
    if (!s->c.bucket || !s->prefix)
        return ws_error_oom(err);
    memcpy(s->prefix, p, plen);
    strcpy(s->prefix + plen, plen ? "/" : "");
    if (asprintf(&s->desc, "s3://%s%s%.*s", s->c.bucket, plen ? "/" : "", (int)plen, p) < 0)
        return ws_error_oom(err);
    return 0;
}

static int parse_endpoint(s3_storage *s, const ws_storage_config *cfg, ws_error *err)
{
    const char *ep = cfg->s3_endpoint, *scheme = "https";
    char aws[128];
    if (!ep || !*ep) {
        snprintf(aws, sizeof aws, "s3.%s.amazonaws.com", s->c.region);
        ep = aws;
    } else if (strncmp(ep, "https://", 8) == 0) {
        ep += 8;
    } else if (strncmp(ep, "http://", 7) == 0) {
        ep += 7;
        scheme = "http";
    } else if (strstr(ep, "://")) {
        return ws_error_set(err, WS_ECONFIG, "s3-endpoint \"%s\": only http:// and https://",
                            cfg->s3_endpoint);
    }
    size_t n = strlen(ep);
    while (n && ep[n - 1] == '/')
        n--;
    if (n == 0 || memchr(ep, '/', n))
        return ws_error_set(err, WS_ECONFIG, "s3-endpoint \"%s\" is not host[:port]",
                            cfg->s3_endpoint);
    const char *style = cfg->s3_uri_style ? cfg->s3_uri_style : "host";
    if (strcmp(style, "path") == 0)
        s->c.path_style = 1;
    else if (strcmp(style, "host") != 0)
        return ws_error_set(err, WS_ECONFIG, "s3-uri-style \"%s\": use host or path", style);
    s->c.scheme = strdup(scheme);
    if (asprintf(&s->c.host, "%s%s%.*s", s->c.path_style ? "" : s->c.bucket,
                 s->c.path_style ? "" : ".", (int)n, ep) < 0)
        s->c.host = NULL;
    if (!s->c.scheme || !s->c.host)
        return ws_error_oom(err);
    if (!s->c.path_style && strchr(s->c.bucket, '.') && strcmp(scheme, "https") == 0)
        ws_log_warn("bucket \"%s\" has dots: its TLS certificate will not match in host style; "
                    "set s3-uri-style = path",
                    s->c.bucket);
    return 0;
}

static int s3_configure(s3_storage *s, const ws_storage_config *cfg, ws_error *err)
{
    if (parse_url(s, cfg->url, err) < 0)
        return -1;
    s->c.region = strdup(cfg->s3_region && *cfg->s3_region ? cfg->s3_region : "us-east-1");
    if (!s->c.region)
        return ws_error_oom(err);
    if (parse_endpoint(s, cfg, err) < 0)
        return -1;
    const char *key = cfg->s3_key ? cfg->s3_key : getenv("AWS_ACCESS_KEY_ID");
    const char *secret = cfg->s3_key_secret ? cfg->s3_key_secret : getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = cfg->s3_token ? cfg->s3_token : getenv("AWS_SESSION_TOKEN");
    if (!key || !*key || !secret || !*secret) {
        ws_error_set(err, WS_ECONFIG, "no S3 credentials for %s", s->desc);
        ws_error_hint(err, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or s3-key and "
                           "s3-key-secret in the config file");
        return -1;
    }
    s->c.access_key = strdup(key);
    s->c.secret = strdup(secret);
    s->c.token = dup_or_null(token);
    s->storage_class = dup_or_null(cfg->s3_storage_class);
    if (cfg->s3_sse && *cfg->s3_sse) {
        if (strcmp(cfg->s3_sse, "AES256") != 0 && strcmp(cfg->s3_sse, "aws:kms") != 0)
            return ws_error_set(err, WS_ECONFIG, "s3-sse \"%s\": use AES256 or aws:kms",
                                cfg->s3_sse);
        s->sse = strdup(cfg->s3_sse);
    }
    if (cfg->s3_sse_kms_key_id && *cfg->s3_sse_kms_key_id) {
        if (!s->sse || strcmp(s->sse, "aws:kms") != 0)
            return ws_error_set(err, WS_ECONFIG, "s3-sse-kms-key-id needs s3-sse = aws:kms");
        s->sse_kms_key_id = strdup(cfg->s3_sse_kms_key_id);
    }
    if (!s->c.access_key || !s->c.secret)
        return ws_error_oom(err);
    s->c.timeout = cfg->timeout > 0 ? cfg->timeout : 60.0;
    s->c.rng = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)s;
    return 0;
}

int ws_storage_s3_open(const ws_storage_config *cfg, ws_storage **out, ws_error *err)
{
    *out = NULL;
    s3_storage *s = calloc(1, sizeof *s);
    if (!s)
        return ws_error_oom(err);
    s->base.ops = &s3_ops;
    if (s3_configure(s, cfg, err) < 0) {
        s3_free(&s->base);
        return -1;
    }
    /* Stalls are cut by the low-speed limit well within the operation's deadline. */
    long low_speed = (long)(s->c.timeout / 3);
    ws_http_opts ho = {cfg->s3_ca_file && *cfg->s3_ca_file ? cfg->s3_ca_file : NULL,
                       cfg->s3_verify_tls, 10000L,
                       low_speed < 2    ? 2
                       : low_speed > 30 ? 30
                                        : low_speed};
    if (s->c.timeout * 1000 / 2 < ho.connect_timeout_ms)
        ho.connect_timeout_ms = (long)(s->c.timeout * 1000 / 2);
    if (ws_http_new(&ho, &s->c.http, err) < 0) {
        s3_free(&s->base);
        return -1;
    }
    if (!cfg->s3_verify_tls)
        ws_log_warn("TLS verification is off for %s (s3-verify-tls = off)", s->desc);
    *out = &s->base;
    return 0;
}
