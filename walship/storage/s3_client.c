/* s3_client.c — signing, sending, classifying and retrying one S3 request (s3_client.h). */
#include "walship/storage/s3_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "walship/log.h"

#define HASH_INLINE_MAX (64u << 10)
#define BACKOFF_BASE_MS 100.0
#define BACKOFF_MAX_MS  5000.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ws_s3_op_init(ws_s3_op *op, const char *method, const char *key)
{
    memset(op, 0, sizeof *op);
    op->method = method;
    op->key = key ? strdup(key) : NULL;
}

static int add_kv(ws_sigv4_kv *arr, size_t *n, size_t max, const char *name, const char *value)
{
    if (*n == max)
        return -1;
    char *k = strdup(name), *v = value ? strdup(value) : NULL;
    if (!k || (value && !v)) {
        free(k);
        free(v);
        return -1;
    }
    arr[*n].name = k;
    arr[*n].value = v;
    (*n)++;
    return 0;
}

int ws_s3_op_query(ws_s3_op *op, const char *name, const char *value)
{
    return add_kv(op->query, &op->nquery, WS_S3_OP_MAX_QUERY, name, value);
}

int ws_s3_op_header(ws_s3_op *op, const char *name, const char *value)
{
    return add_kv(op->headers, &op->nheaders, WS_S3_OP_MAX_HEADERS, name, value);
}

void ws_s3_op_cleanup(ws_s3_op *op)
{
    for (size_t i = 0; i < op->nquery; i++) {
        free((char *)op->query[i].name);
        free((char *)op->query[i].value);
    }
    for (size_t i = 0; i < op->nheaders; i++) {
        free((char *)op->headers[i].name);
        free((char *)op->headers[i].value);
    }
    op->nquery = op->nheaders = 0;
    ws_http_req_free(op->rq);
    op->rq = NULL;
    free(op->key);
    op->key = NULL;
}

void ws_s3_describe_key(const ws_s3_client *c, const char *key, char *out, size_t outlen)
{
    snprintf(out, outlen, "s3://%s/%s", c->bucket, key ? key : "");
}

/* ---- tiny XML reading: S3's replies are flat enough for tag search ---- */

static void xml_decode(const char *s, size_t n, char *out, size_t outlen)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen;) {
        int done = 0;
        if (s[i] == '&') {
            for (size_t e = 0; e < sizeof ents / sizeof ents[0]; e++) {
                size_t el = strlen(ents[e].ent);
                if (i + el <= n && strncmp(s + i, ents[e].ent, el) == 0) {
                    out[o++] = ents[e].c;
                    i += el;
                    done = 1;
                    break;
                }
            }
            if (!done && i + 3 < n && s[i + 1] == '#') {
                /* Numeric references (S3 uses &#x0D; for odd bytes in keys). */
                char *end;
                long v =
                    s[i + 2] == 'x' ? strtol(s + i + 3, &end, 16) : strtol(s + i + 2, &end, 10);
                if (*end == ';' && v > 0 && v < 256) {
                    out[o++] = (char)v;
                    i = (size_t)(end - s) + 1;
                    done = 1;
                }
            }
        }
        if (!done)
            out[o++] = s[i++];
    }
    out[o] = '\0';
}

int ws_s3_xml_text(const char *xml, const char *tag, char *out, size_t outlen, const char **next)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(xml, open);
    if (!a)
        return -1;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return -1;
    xml_decode(a, (size_t)(b - a), out, outlen);
    if (next)
        *next = b + strlen(close);
    return 0;
}

/* ---- classification ---- */

/* The text of an error reply's <tag>, fit for a log line: the server is not trusted (a hostile
 * or broken endpoint answers escape sequences, newlines, kilobytes). "" if absent. */
static void server_text(const char *xml, const char *tag, size_t max_chars, char *out,
                        size_t outlen)
{
    char raw[1024];
    out[0] = '\0';
    if (ws_s3_xml_text(xml, tag, raw, sizeof raw, NULL) == 0)
        ws_sanitize(out, outlen, raw, strlen(raw), max_chars);
}

/* libcurl's message for a failed transfer may quote the server (a status line, a header). */
static const char *transfer_text(ws_http_req *rq, char *out, size_t outlen)
{
    const char *m = ws_http_req_errmsg(rq);
    return ws_sanitize(out, outlen, m, strlen(m), WS_SANITIZE_MAX);
}

/* Fills op->err from the last attempt; returns 1 when the failure is worth retrying. */
static int classify(ws_s3_op *op)
{
    ws_http_req *rq = op->rq;
    long status = ws_http_req_status(rq);
    char what[600];
    ws_s3_describe_key(op->c, op->key, what, sizeof what);
    ws_error *err = &op->err;

    if (ws_http_req_curl_code(rq) != 0 || status == 0) {
        char why[400];
        transfer_text(rq, why, sizeof why);
        if (ws_http_req_tls_refused(rq)) {
            ws_error_set(err, WS_ECONFIG, "%s %s: TLS verification of %s failed: %s", op->method,
                         what, op->c->host, why);
            ws_error_hint(err, "point s3-ca-file at the CA that signed the endpoint's "
                               "certificate, or check s3-endpoint");
            return 0;
        }
        ws_error_set(err, WS_ETRANSIENT, "%s %s: %s (%s)", op->method, what, why, op->c->host);
        return 1;
    }

    const char *body = ws_http_req_body_text(rq, NULL);
    char code[160] = "", msg[400] = "";
    server_text(body, "Code", 64, code, sizeof code);
    server_text(body, "Message", WS_SANITIZE_MAX, msg, sizeof msg);

    if (status >= 200 && status < 300) {
        if (op->check_error_body && strstr(body, "<Error>")) {
            ws_error_set(err, WS_ETRANSIENT, "%s %s: HTTP 200 carrying an error: %s %s", op->method,
                         what, code, msg);
            return strcmp(code, "InternalError") == 0 || strcmp(code, "SlowDown") == 0 ||
                   code[0] == '\0';
        }
        ws_error_clear(err);
        return 0;
    }
    const char *sep = code[0] ? " " : "";
    switch (status) {
    case 404:
        if (strcmp(code, "NoSuchBucket") == 0) {
            ws_error_set(err, WS_ECONFIG, "bucket \"%s\" does not exist (%s %s)", op->c->bucket,
                         op->method, what);
            ws_error_hint(err, "check the repository URL and s3-endpoint");
        } else {
            ws_error_set(err, WS_ENOENT, "%s: no such object (HTTP 404%s%s)", what, sep, code);
        }
        return 0;
    case 403:
        ws_error_set(err, WS_EAUTH, "%s %s: S3 refused the credentials (HTTP 403%s%s)", op->method,
                     what, sep, code);
        if (strcmp(code, "RequestTimeTooSkewed") == 0)
            ws_error_hint(err, "this machine's clock is wrong: fix it (NTP) and retry");
        else
            ws_error_hint(err, "check the access key id and secret (AWS_ACCESS_KEY_ID / "
                               "AWS_SECRET_ACCESS_KEY or the config file), s3-region, and that "
                               "the key may Get/Put/Delete objects and List the bucket");
        return 0;
    case 412:
        ws_error_set(err, WS_EEXIST, "%s: already exists", what);
        return 0;
    case 409:
    case 500:
    case 502:
    case 503:
    case 504:
        ws_error_set(err, WS_ETRANSIENT, "%s %s: HTTP %ld%s%s%s%s", op->method, what, status, sep,
                     code, msg[0] ? ": " : "", msg);
        return 1;
    case 400:
        if (strcmp(code, "RequestTimeout") == 0) {
            ws_error_set(err, WS_ETRANSIENT, "%s %s: HTTP 400 RequestTimeout", op->method, what);
            return 1;
        }
        ws_error_set(err, WS_ECONFIG, "%s %s: S3 rejected the request (HTTP 400%s%s%s%s)",
                     op->method, what, sep, code, msg[0] ? ": " : "", msg);
        if (strcmp(code, "AuthorizationHeaderMalformed") == 0)
            ws_error_hint(err, "check s3-region");
        return 0;
    default:
        ws_error_set(err, WS_EIO, "%s %s: unexpected HTTP %ld%s%s%s%s", op->method, what, status,
                     sep, code, msg[0] ? ": " : "", msg);
        return 0;
    }
}

/* ---- the attempt cycle: (hash) → sign → send → classify → (backoff) → ... ---- */

static void attempt(ws_s3_op *op);

static void finish(ws_s3_op *op)
{
    op->busy = 0;
    op->finished = 1;
    op->done(op, op->arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* A backoff wait looks every BACKOFF_TICK_MS whether the process is stopping. */
#define BACKOFF_TICK_MS 100

typedef struct backoff {
    uv_timer_t t; /* first: op->timer and the close callback see a uv_timer_t */
    double due;
} backoff;

static void on_backoff(uv_timer_t *t)
{
    ws_s3_op *op = t->data;
    if (!ws_http_aborted() && now_s() < ((backoff *)t)->due)
        return;
    uv_timer_stop(t);
    op->timer = NULL;
    uv_close((uv_handle_t *)t, on_timer_closed);
    attempt(op);
}

static void on_http_done(ws_http_req *rq, void *arg)
{
    ws_s3_op *op = arg;
    (void)rq;
    int retry = classify(op);
    if (!retry || op->delivered || op->cancelled || ws_http_aborted()) {
        finish(op);
        return;
    }
    /* Full jitter: a random wait in [0, min(cap, base * 2^attempt)]. */
    double cap = BACKOFF_BASE_MS * (double)(1u << (op->attempt < 10 ? op->attempt : 10));
    if (cap > BACKOFF_MAX_MS)
        cap = BACKOFF_MAX_MS;
    op->c->rng = op->c->rng * 1103515245u + 12345u;
    double wait_ms = cap * (double)((op->c->rng >> 8) % 1000) / 1000.0 + 10.0;
    if (now_s() + wait_ms / 1000.0 >= op->deadline) {
        ws_error_prefix(&op->err, "gave up after %d attempts in %.0f s: ", op->attempt,
                        now_s() - op->started);
        op->err.code = WS_ETRANSIENT;
        ws_error_hint(&op->err, "the S3 endpoint kept failing; check it is reachable and "
                                "healthy");
        finish(op);
        return;
    }
    ws_log_warn("%s (attempt %d), retrying in %.0f ms", op->err.msg, op->attempt, wait_ms);
    backoff *b = malloc(sizeof *b);
    if (!b) {
        finish(op);
        return;
    }
    uv_timer_t *t = &b->t;
    uv_timer_init(ws_http_loop(op->c->http), t);
    t->data = op;
    b->due = now_s() + wait_ms / 1000.0;
    op->timer = t;
    uv_timer_start(t, on_backoff, wait_ms < BACKOFF_TICK_MS ? (uint64_t)wait_ms : BACKOFF_TICK_MS,
                   BACKOFF_TICK_MS);
}

/* Builds the URL, signs, submits. */
static int send_attempt(ws_s3_op *op, ws_error *err)
{
    ws_s3_client *c = op->c;
    char date[17];
    ws_sigv4_amz_date(time(NULL), date);

    /* Path: /bucket/key (path style) or /key. The key is signed raw, sent encoded. */
    size_t plen = strlen(c->bucket) + (op->key ? strlen(op->key) : 0) + 4;
    char *path = malloc(plen);
    if (!path)
        return ws_error_oom(err);
    if (c->path_style)
        snprintf(path, plen, "/%s%s%s", c->bucket, op->key ? "/" : "", op->key ? op->key : "");
    else
        snprintf(path, plen, "/%s", op->key ? op->key : "");

    ws_sigv4_kv hdrs[WS_S3_OP_MAX_HEADERS + 4];
    size_t nh = 0;
    hdrs[nh++] = (ws_sigv4_kv){"host", c->host};
    hdrs[nh++] = (ws_sigv4_kv){"x-amz-date", date};
    hdrs[nh++] = (ws_sigv4_kv){"x-amz-content-sha256", op->payload_sha256};
    if (c->token)
        hdrs[nh++] = (ws_sigv4_kv){"x-amz-security-token", c->token};
    for (size_t i = 0; i < op->nheaders; i++)
        hdrs[nh++] = op->headers[i];

    ws_sigv4_request sr = {op->method, path, op->query,          op->nquery,
                           hdrs,       nh,   op->payload_sha256, date};
    ws_sigv4_creds cr = {c->access_key, c->secret, c->region, "s3"};
    char *auth = ws_sigv4_authorization(&sr, &cr);
    char *epath = ws_sigv4_encode(path, 1);
    char *qs = ws_sigv4_query_string(op->query, op->nquery);
    char *url = NULL;
    if (auth && epath && qs &&
        asprintf(&url, "%s://%s%s%s%s", c->scheme, c->host, epath, qs[0] ? "?" : "", qs) < 0)
        url = NULL;
    free(path);
    free(epath);
    free(qs);

    ws_http_req_free(op->rq);
    op->rq = url ? ws_http_req_new(op->method, url) : NULL;
    free(url);
    int ok = op->rq != NULL;
    for (size_t i = 0; ok && i < nh; i++)
        ok = ws_http_req_header(op->rq, hdrs[i].name, hdrs[i].value) == 0;
    if (ok)
        ok = ws_http_req_header(op->rq, "Authorization", auth) == 0;
    free(auth);
    if (!ok)
        return ws_error_set(err, WS_ENOMEM, "out of memory building an S3 request");
    if (op->body)
        ws_http_req_body(op->rq, op->body, op->body_len);
    else if (strcmp(op->method, "PUT") == 0 || strcmp(op->method, "POST") == 0)
        ws_http_req_body(op->rq, "", 0);
    if (op->sink)
        ws_http_req_sink(op->rq, op->sink, op->sink_arg);
    if (!op->no_total_timeout || c->deadline > 0) {
        double left = (op->no_total_timeout ? c->deadline : op->deadline) - now_s();
        ws_http_req_timeout(op->rq, left > 0.5 ? (long)(left * 1000) : 500L);
    }
    if (op->low_speed_bps > 0)
        ws_http_req_low_speed(op->rq, op->low_speed_bps);
    return ws_http_submit(c->http, op->rq, on_http_done, op, err);
}

static void attempt(ws_s3_op *op)
{
    if (op->cancelled || ws_http_aborted()) {
        if (op->cancelled || op->err.code == WS_EOK)
            ws_error_set(&op->err, WS_EINTERNAL, "%s",
                         op->cancelled ? "cancelled" : "walship is stopping");
        else /* keeps the last attempt's error */
            ws_error_prefix(&op->err, "walship is stopping; ");
        finish(op);
        return;
    }
    op->attempt++;
    if (send_attempt(op, &op->err) < 0)
        finish(op);
}

typedef struct hash_work {
    uv_work_t work;
    ws_s3_op *op;
} hash_work;

static void hash_on_pool(uv_work_t *w)
{
    hash_work *hw = w->data;
    ws_sigv4_sha256_hex(hw->op->body, hw->op->body_len, hw->op->payload_sha256);
}

static void hash_done(uv_work_t *w, int status)
{
    hash_work *hw = w->data;
    ws_s3_op *op = hw->op;
    free(hw);
    (void)status;
    op->hashing = 0;
    attempt(op);
}

int ws_s3_op_start(ws_s3_client *c, ws_s3_op *op, ws_s3_done_fn done, void *arg, ws_error *err)
{
    op->c = c;
    op->done = done;
    op->arg = arg;
    op->attempt = 0;
    op->busy = 1;
    op->finished = 0;
    op->cancelled = 0;
    op->delivered = 0;
    ws_http_req_free(op->rq);
    op->rq = NULL;
    ws_error_clear(&op->err);
    op->started = now_s();
    op->deadline = op->started + c->timeout;
    if (c->deadline > 0 && c->deadline < op->deadline)
        op->deadline = c->deadline; /* the caller's deadline (fetch-timeout) comes first */
    if (op->body_len > HASH_INLINE_MAX) {
        hash_work *hw = calloc(1, sizeof *hw);
        if (!hw) {
            op->busy = 0;
            return ws_error_oom(err);
        }
        hw->op = op;
        hw->work.data = hw;
        op->hashing = 1;
        if (uv_queue_work(ws_http_loop(c->http), &hw->work, hash_on_pool, hash_done) != 0) {
            free(hw);
            op->busy = 0;
            op->hashing = 0;
            return ws_error_set(err, WS_EINTERNAL, "could not queue work on the thread pool");
        }
        return 0;
    }
    ws_sigv4_sha256_hex(op->body ? op->body : "", op->body ? op->body_len : 0, op->payload_sha256);
    op->attempt++;
    if (send_attempt(op, err) < 0) {
        op->busy = 0;
        return -1;
    }
    return 0;
}

static void set_flag(ws_s3_op *op, void *arg)
{
    (void)op;
    *(int *)arg = 1;
}

int ws_s3_op_run(ws_s3_client *c, ws_s3_op *op, ws_error *err)
{
    int flag = 0;
    if (ws_s3_op_start(c, op, set_flag, &flag, err) < 0)
        return -1;
    if (ws_http_run_until(c->http, &flag) < 0)
        return ws_error_set(err, WS_EINTERNAL, "S3 request stalled: event loop ran dry");
    if (op->err.code != WS_EOK) {
        if (err)
            *err = op->err;
        return -1;
    }
    return 0;
}

void ws_s3_op_cancel(ws_s3_op *op)
{
    if (!op->busy)
        return;
    op->cancelled = 1;
    if (op->timer) {
        uv_timer_t *t = op->timer;
        op->timer = NULL;
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, on_timer_closed);
        ws_error_set(&op->err, WS_EINTERNAL, "cancelled");
        finish(op);
    } else if (!op->hashing && op->rq) {
        ws_http_req_cancel(op->rq);
        ws_error_set(&op->err, WS_EINTERNAL, "cancelled");
        finish(op);
    }
    /* else: hashing on the pool; attempt() sees cancelled and finishes. */
}

long ws_s3_op_status(const ws_s3_op *op)
{
    return op->rq ? ws_http_req_status(op->rq) : 0;
}

const char *ws_s3_op_header_value(const ws_s3_op *op, const char *name)
{
    return op->rq ? ws_http_req_resp_header(op->rq, name) : NULL;
}

const char *ws_s3_op_body(const ws_s3_op *op, size_t *len)
{
    if (!op->rq) {
        if (len)
            *len = 0;
        return "";
    }
    return ws_http_req_body_text(op->rq, len);
}
