/* test_http_pause.c — a paused and resumed download on ws_http (http.h) completes without
 * waiting for one of libcurl's timeouts.
 *
 * The S3 reader's pattern (storage/s3.c): a sink that takes up to a buffer's worth and then
 * pauses the transfer; the caller drains the buffer, resumes and runs the loop with
 * ws_http_run_until until the sink has more. The server here (a thread on loopback) has the
 * whole response in the socket buffers already, so after each resume libcurl delivers the
 * next buffer from its timer callback, and the sink pauses again with nothing left to wake
 * poll. uv_run(UV_RUN_ONCE) then slept in poll until curl's next timer: here the request's
 * total timeout, so the download failed (issue 17, the prefetch agent's ~10 s stalls on S3).
 * (The stall itself needs the response to arrive inside curl's timer callback on a reused
 * connection, as against s3rver over TLS; bench/prefetch_s3.sh shows it. This test keeps
 * the pause/resume pattern the fix touches correct.)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/tap.h"
#include "walship/storage/http.h"

#define BODY_LEN (4u << 20)
#define SINK_MAX (256u << 10)

static int listen_fd;
static char *body;

static void *serve(void *arg)
{
    (void)arg;
    int c = accept(listen_fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) { /* up to the end of the request's headers */
        ssize_t k = read(c, req + got, sizeof req - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char head[128];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Length: %u\r\nConnection: close\r\n\r\n", BODY_LEN);
    if (write(c, head, (size_t)n) != n) {
        close(c);
        return NULL;
    }
    for (size_t off = 0; off < BODY_LEN;) {
        ssize_t k = write(c, body + off, BODY_LEN - off);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    close(c);
    return NULL;
}

typedef struct reader {
    char *buf;
    size_t len, total, pauses;
    int wake, done;
} reader;

static int sink(void *arg, const char *data, size_t n)
{
    reader *r = arg;
    if (r->len >= SINK_MAX) {
        r->pauses++;
        r->wake = 1;
        return 1;
    }
    memcpy(r->buf + r->total + r->len, data, n);
    r->len += n;
    r->wake = 1;
    return 0;
}

static void done_cb(ws_http_req *rq, void *arg)
{
    (void)rq;
    reader *r = arg;
    r->done = 1;
    r->wake = 1;
}

int main(void)
{
    plan(5);
    body = malloc(BODY_LEN);
    for (size_t i = 0; i < BODY_LEN; i++)
        body[i] = (char)(i * 2654435761u >> 13);

    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(listen_fd, 1) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&a, &alen) < 0) {
        diag("cannot listen on loopback");
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, serve, NULL);

    ws_error err;
    ws_error_clear(&err);
    ws_http *h = NULL;
    ws_http_opts o = {NULL, 1, 0, 0};
    if (!ok(ws_http_new(&o, &h, &err) == 0, "ws_http_new")) {
        diag("%s", err.msg);
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/object", (unsigned)ntohs(a.sin_port));
    ws_http_req *rq = ws_http_req_new("GET", url);
    reader r = {0};
    r.buf = malloc(BODY_LEN + SINK_MAX);
    ws_http_req_sink(rq, sink, &r);
    /* the bound that turned the stall into a failure: generous for 4 MiB on loopback */
    ws_http_req_timeout(rq, 20000);
    ok(ws_http_submit(h, rq, done_cb, &r, &err) == 0, "submitted");
    /* the S3 reader's loop: drain, resume, run until the sink has more or the GET ended */
    while (!r.done) {
        r.total += r.len;
        r.len = 0;
        r.wake = 0;
        ws_http_req_resume(rq);
        if (ws_http_run_until(h, &r.wake) < 0)
            break;
    }
    r.total += r.len;
    long status = ws_http_req_status(rq);
    ok(status == 200 && ws_http_req_curl_code(rq) == 0,
       "the paused download completed (HTTP %ld, %s)", status, ws_http_req_errmsg(rq));
    ok(r.pauses > 0, "the sink paused the transfer (%zu times)", r.pauses);
    ok(r.total == BODY_LEN && memcmp(r.buf, body, BODY_LEN) == 0,
       "every byte arrived, in order (%zu)", r.total);
    ws_http_req_free(rq);
    pthread_join(th, NULL);

    ws_http_free(h);
    close(listen_fd);
    free(r.buf);
    free(body);
    return done_testing();
}
