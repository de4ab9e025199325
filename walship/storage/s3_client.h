/*
 * s3_client.h — one S3 request, start to finish: payload hash, SigV4 signature, the HTTP
 * exchange on the shared ws_http loop, error classification and retries with exponential
 * backoff and jitter within a deadline. The S3 storage driver (s3.c) is built on it.
 *
 * Like ws_http, the core is callback based (ws_s3_op_start: the done callback runs on the
 * loop) so that many operations can share one loop — multipart parts do, an async agent
 * will; ws_s3_op_run is the synchronous wrapper.
 *
 * Payload hashing: x-amz-content-sha256 needs the body's SHA-256 before the request can be
 * signed. Bodies over 64 KiB are hashed on the libuv thread pool (uv_queue_work) so the loop
 * keeps driving other transfers meanwhile (~10 ms per 16 MiB part); smaller ones inline,
 * where a pool round trip would cost more than the hash.
 *
 * Errors (op->err once done): 404 → WS_ENOENT (NoSuchBucket → WS_ECONFIG: a missing bucket
 * must never read as "absent"), 403 → WS_EAUTH, 412 → WS_EEXIST, 400 other than
 * RequestTimeout → WS_ECONFIG, TLS verification failures → WS_ECONFIG; retried until the
 * deadline, then WS_ETRANSIENT: 409, 500, 502, 503, 504, 400 RequestTimeout, connection
 * errors and timeouts. Messages name the object as s3://bucket/key and never hold a secret.
 */
#ifndef WS_S3_CLIENT_H
#define WS_S3_CLIENT_H

#include <stddef.h>

#include "walship/error.h"
#include "walship/storage/http.h"
#include "walship/storage/sigv4.h"

typedef struct ws_s3_client {
    ws_http *http;
    char *scheme; /* "http" or "https" */
    char *host;   /* what goes in the URL and the Host header: [bucket.]host[:port] */
    char *bucket;
    int path_style; /* 1: /bucket/key; 0: bucket.host/key */
    char *region;
    char *access_key;
    char *secret;    /* never logged */
    char *token;     /* session token or NULL; never logged */
    double timeout;  /* seconds per operation, retries included */
    double deadline; /* CLOCK_MONOTONIC seconds no operation may pass; 0 = none */
    unsigned rng;    /* jitter */
} ws_s3_client;

#define WS_S3_OP_MAX_QUERY   4
#define WS_S3_OP_MAX_HEADERS 20

typedef struct ws_s3_op ws_s3_op;
typedef void (*ws_s3_done_fn)(ws_s3_op *op, void *arg);

struct ws_s3_op {
    /* What to send (set with ws_s3_op_init and the helpers below). */
    const char *method;
    char *key; /* object key in the bucket (prefix included); NULL = the bucket itself */
    ws_sigv4_kv query[WS_S3_OP_MAX_QUERY];
    size_t nquery;
    ws_sigv4_kv headers[WS_S3_OP_MAX_HEADERS]; /* extra signed headers (copied strings) */
    size_t nheaders;
    const void *body; /* borrowed until done */
    size_t body_len;
    /* A sink for a 2xx body (streamed GET). Once it has taken a byte the op is no longer
     * retried: the reader resumes with a Range request itself. */
    ws_http_sink_fn sink;
    void *sink_arg;
    int check_error_body; /* a 200 whose body is <Error> fails (CompleteMultipartUpload) */
    int no_total_timeout; /* streamed reads: only connect and low-speed limits apply, and
                             the client's deadline if it has one */
    long low_speed_bps;   /* ws_http_req_low_speed; 0 = the default (a stall only) */

    /* State and results. */
    ws_s3_client *c;
    ws_http_req *rq; /* the last attempt: status, headers, body */
    ws_s3_done_fn done;
    void *arg;
    char payload_sha256[65];
    double started, deadline;
    int attempt;
    int busy;     /* started and not yet done */
    int finished; /* done has run (or is running) */
    int cancelled;
    int hashing;   /* the payload hash is being computed on the pool */
    int delivered; /* the sink took bytes */
    void *timer;   /* backoff uv_timer_t while waiting */
    ws_error err;
};

/* Prepares op for a request; key is copied (NULL = bucket level). */
void ws_s3_op_init(ws_s3_op *op, const char *method, const char *key);
/* Adds a query parameter / signed header (strings copied); -1 when full or out of memory. */
int ws_s3_op_query(ws_s3_op *op, const char *name, const char *value);
int ws_s3_op_header(ws_s3_op *op, const char *name, const char *value);
/* Frees what the op holds; it must not be busy. */
void ws_s3_op_cleanup(ws_s3_op *op);

/* Starts op; done runs on the loop once it has succeeded or failed for good (op->err).
 * Returns -1 (err set, done will not run) if it could not even start. */
int ws_s3_op_start(ws_s3_client *c, ws_s3_op *op, ws_s3_done_fn done, void *arg, ws_error *err);
/* Starts op and runs the loop until it is done. Returns 0 or -1 with err = op->err. */
int ws_s3_op_run(ws_s3_client *c, ws_s3_op *op, ws_error *err);
/* Stops a busy op: done still runs (with a WS_EINTERNAL "cancelled" error), possibly later
 * if its payload hash is being computed on the pool. */
void ws_s3_op_cancel(ws_s3_op *op);

/* HTTP status of the last attempt and a response header, for the driver. */
long ws_s3_op_status(const ws_s3_op *op);
const char *ws_s3_op_header_value(const ws_s3_op *op, const char *name);
const char *ws_s3_op_body(const ws_s3_op *op, size_t *len);

/* "s3://bucket/key" for messages. */
void ws_s3_describe_key(const ws_s3_client *c, const char *key, char *out, size_t outlen);

/* The text of the first <tag>...</tag> in xml (entities decoded) into out; -1 if absent.
 * *next (optional) is set past the closing tag. */
int ws_s3_xml_text(const char *xml, const char *tag, char *out, size_t outlen, const char **next);

#endif
