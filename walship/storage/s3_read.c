/* s3_read.c — the S3 driver's reader: GET, streamed, resumed with Range (s3_driver.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "walship/log.h"
#include "walship/storage/s3_driver.h"

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

int ws_s3_drv_open_read(ws_storage *st, const char *key, uint64_t off, uint64_t len,
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
