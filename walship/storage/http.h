/*
 * http.h — HTTP(S) requests on one libcurl multi handle driven by a libuv loop.
 *
 * One ws_http = one uv loop + one curl multi handle. Connections (and TLS sessions) live in
 * the multi handle's cache, so every request made through the same ws_http reuses them: a
 * process that moves many objects pays one handshake, not one per object.
 *
 * The core is callback based: ws_http_submit starts a request and returns at once; its done
 * callback runs on the loop when it has completed (successfully or not). Many requests may
 * be in flight together (multipart parts, an async agent's files). Synchronous callers run
 * the loop with ws_http_run_until until their own flag is set.
 *
 * Transport only: no retries, no S3 knowledge. A request reports its HTTP status (0 when no
 * response came), a curl error code and message, the response headers and — unless a body
 * sink takes the 2xx body — the response body in memory.
 *
 * Threads: everything here runs on the loop's thread. ws_http_loop gives the loop to callers
 * that queue their own work (uv_queue_work, timers) on it.
 */
#ifndef WS_HTTP_H
#define WS_HTTP_H

#include <stddef.h>

#include <uv.h>

#include "walship/error.h"

typedef struct ws_http ws_http;
typedef struct ws_http_req ws_http_req;

typedef struct ws_http_opts {
    const char *ca_file;     /* NULL = the system's CA store */
    int verify_tls;          /* 0 disables peer and host verification (tests only) */
    long connect_timeout_ms; /* 0 = 10 s */
    long low_speed_time_s;   /* abort a transfer slower than 1 byte/s for this long; 0 = 30 */
} ws_http_opts;

/* Called on the loop when rq has completed. rq may be freed from inside. */
typedef void (*ws_http_done_fn)(ws_http_req *rq, void *arg);

/* Receives a 2xx response's body as it arrives. Return 0 when taken, 1 to pause the
 * transfer (the same bytes are offered again after ws_http_req_resume), -1 to abort. */
typedef int (*ws_http_sink_fn)(void *arg, const char *data, size_t len);

int ws_http_new(const ws_http_opts *opts, ws_http **out, ws_error *err);
/* Aborts whatever is still in flight (without done callbacks), closes every handle. */
void ws_http_free(ws_http *h);
uv_loop_t *ws_http_loop(ws_http *h);

/* Runs the loop until *flag is non-zero. Returns -1 if the loop ran dry first (a bug: the
 * flag's owner had nothing in flight). */
int ws_http_run_until(ws_http *h, const int *flag);

/* A request. url must already be encoded; method is GET, HEAD, PUT, POST or DELETE. */
ws_http_req *ws_http_req_new(const char *method, const char *url);
void ws_http_req_free(ws_http_req *rq);
/* Adds "name: value" (copied). */
int ws_http_req_header(ws_http_req *rq, const char *name, const char *value);
/* The request body, borrowed: it must stay valid until the request completes. */
void ws_http_req_body(ws_http_req *rq, const void *data, size_t len);
/* Total time limit for this request in ms (0 = none: only connect and low-speed limits). */
void ws_http_req_timeout(ws_http_req *rq, long ms);
/* A low-speed limit for this request: slower than bytes_per_s for the connection's
 * low_speed_time_s aborts it (default 1 byte/s: only a stalled transfer). */
void ws_http_req_low_speed(ws_http_req *rq, long bytes_per_s);
void ws_http_req_sink(ws_http_req *rq, ws_http_sink_fn fn, void *arg);

/* Starts rq on h; done runs once it completes. Returns -1 (err set) if it could not start,
 * in which case done will not run. */
int ws_http_submit(ws_http *h, ws_http_req *rq, ws_http_done_fn done, void *arg, ws_error *err);
/* Resumes a transfer whose sink asked for a pause. */
void ws_http_req_resume(ws_http_req *rq);
/* Stops an in-flight request without calling done (no-op when it is not in flight). */
void ws_http_req_cancel(ws_http_req *rq);

/* Process-wide, from any thread (an agent told to stop): every request in flight on every
 * ws_http completes at once with a transport error ("aborted: walship is stopping"), and
 * ws_http_submit refuses new ones. There is no way back. */
void ws_http_abort_all(void);
int ws_http_aborted(void);

/* Results, valid once done has run. */
long ws_http_req_status(const ws_http_req *rq);        /* 0 = no HTTP response */
int ws_http_req_curl_code(const ws_http_req *rq);      /* CURLcode; 0 = transport fine */
const char *ws_http_req_errmsg(const ws_http_req *rq); /* curl's message, "" if none */
/* A transport failure that TLS verification caused (wrong CA, bad name): not transient. */
int ws_http_req_tls_refused(const ws_http_req *rq);
/* The body when no sink took it (non-2xx bodies always land here); NUL-terminated. */
const char *ws_http_req_body_text(const ws_http_req *rq, size_t *len);
/* The last value of a response header (name case-insensitive), or NULL. */
const char *ws_http_req_resp_header(const ws_http_req *rq, const char *name);
/* Response headers by index (names lowercased); returns 0 past the end. */
int ws_http_req_resp_header_at(const ws_http_req *rq, int i, const char **name, const char **value);
/* For tests and fuzzing: hands one raw response header line (as libcurl's header callback
 * gets it) to rq's parser. Returns 0 when the line was taken, -1 when it was refused. */
int ws_http_req_feed_header(ws_http_req *rq, const char *line, size_t len);

#endif
