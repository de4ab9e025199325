/*
 * http.c — libcurl multi driven by libuv (after curl's docs/examples/multi-uv.c, minus its
 * pitfalls: we always drain curl_multi_info_read, never call libcurl from the timer
 * function itself, and keep the loop alive through curl_multi_cleanup on shutdown).
 */
#include "walship/storage/http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "walship/storage/curl_dl.h"

struct ws_http {
    uv_loop_t loop;
    uv_timer_t timer;
    CURLM *multi;
    ws_http_opts opts;
    char *ca_file;
    ws_http_req *active; /* doubly linked list of requests in flight */
    uv_async_t wake;     /* ws_http_abort_all, from another thread */
    ws_http *reg_next;   /* every ws_http of the process, for ws_http_abort_all */
};

typedef struct resp_header {
    char *name, *value;
} resp_header;

struct ws_http_req {
    ws_http *h;
    CURL *easy;
    char *method, *url;
    struct curl_slist *headers;
    const char *body;
    size_t body_len, body_off;
    long timeout_ms;
    long low_speed_bps;
    ws_http_sink_fn sink;
    void *sink_arg;
    ws_http_done_fn done;
    void *done_arg;
    ws_http_req *prev, *next;
    int in_flight;
    /* results */
    long status;
    CURLcode code;
    char errbuf[CURL_ERROR_SIZE];
    char *rbody;
    size_t rbody_len, rbody_cap;
    resp_header *rh;
    int nrh, caprh;
};

typedef struct poll_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    ws_http *h;
} poll_ctx;

/* ---- aborting every transfer of the process (an agent told to stop) ---- */

static atomic_int aborted;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static ws_http *reg_head;

static void reg_add(ws_http *h)
{
    pthread_mutex_lock(&reg_mu);
    h->reg_next = reg_head;
    reg_head = h;
    pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(ws_http *h)
{
    pthread_mutex_lock(&reg_mu);
    for (ws_http **p = &reg_head; *p; p = &(*p)->reg_next)
        if (*p == h) {
            *p = h->reg_next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

void ws_http_abort_all(void)
{
    atomic_store(&aborted, 1);
    pthread_mutex_lock(&reg_mu);
    for (ws_http *h = reg_head; h; h = h->reg_next)
        uv_async_send(&h->wake);
    pthread_mutex_unlock(&reg_mu);
}

int ws_http_aborted(void)
{
    return atomic_load(&aborted);
}

/* On h's loop: every request in flight completes now, failed. */
static void on_wake(uv_async_t *a)
{
    ws_http *h = a->data;
    while (h->active) {
        ws_http_req *rq = h->active;
        rq->status = 0;
        rq->code = CURLE_ABORTED_BY_CALLBACK;
        snprintf(rq->errbuf, sizeof rq->errbuf, "aborted: walship is stopping");
        ws_http_req_cancel(rq);
        rq->done(rq, rq->done_arg); /* may free rq; a new request is refused */
    }
}

/* ---- the loop side ---- */

static void check_multi_info(ws_http *h)
{
    CURLMsg *msg;
    int pending;
    while ((msg = curl_multi_info_read(h->multi, &pending))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        ws_http_req *rq = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&rq);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &rq->status);
        rq->code = code;
        if (code != CURLE_OK && !rq->errbuf[0])
            snprintf(rq->errbuf, sizeof rq->errbuf, "%s", curl_easy_strerror(code));
        ws_http_req_cancel(rq); /* removes it from the multi and the active list */
        /* done may free rq: touch nothing of it afterwards. */
        rq->done(rq, rq->done_arg);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    poll_ctx *pc = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(pc->h->multi, pc->fd, flags, &running);
    check_multi_info(pc->h);
}

static void on_timer(uv_timer_t *t)
{
    ws_http *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(h);
    /* uv_run(UV_RUN_ONCE) runs due timers first and then blocks in poll until the next event
     * or timer: when the work done here is what ws_http_run_until waits for (curl sends a
     * request and reads the whole response from its timeout-0 timer; a sink fills up and
     * pauses the transfer, so no socket event follows), the caller would sleep until curl's
     * next timeout, ~10 s later. uv_stop makes this iteration's poll non-blocking; the caller
     * looks at its flag and runs the loop again if it is not set. (Issue 17: the prefetch
     * agent's S3 downloads stalled this way, making replay with prefetch slower than
     * without.) */
    uv_stop(&h->loop);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm the uv timer; curl must not be re-entered here. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    ws_http *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void free_poll(uv_handle_t *handle)
{
    free(handle->data);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int action, void *userp, void *socketp)
{
    (void)easy;
    ws_http *h = userp;
    poll_ctx *pc = socketp;
    if (action == CURL_POLL_REMOVE) {
        if (pc) {
            uv_poll_stop(&pc->poll);
            uv_close((uv_handle_t *)&pc->poll, free_poll);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (!pc) {
        pc = calloc(1, sizeof *pc);
        if (!pc)
            return -1;
        pc->fd = s;
        pc->h = h;
        if (uv_poll_init_socket(&h->loop, &pc->poll, s) != 0) {
            free(pc);
            return -1;
        }
        pc->poll.data = pc;
        curl_multi_assign(h->multi, s, pc);
    }
    int ev = 0;
    if (action & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (action & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&pc->poll, ev, on_poll);
    return 0;
}

int ws_http_new(const ws_http_opts *opts, ws_http **out, ws_error *err)
{
    /* libcurl is loaded on first use (curl_dl.h); this also runs curl_global_init, which is
     * not thread-safe: the first storage is opened before any thread exists. */
    if (ws_curl_load(err) < 0)
        return -1;
    ws_http *h = calloc(1, sizeof *h);
    if (!h)
        return ws_error_oom(err);
    h->opts = *opts;
    if (opts->ca_file && !(h->ca_file = strdup(opts->ca_file))) {
        free(h);
        return ws_error_oom(err);
    }
    h->opts.ca_file = h->ca_file;
    if (uv_loop_init(&h->loop) != 0) {
        free(h->ca_file);
        free(h);
        return ws_error_set(err, WS_EINTERNAL, "libuv loop could not be initialised");
    }
    uv_timer_init(&h->loop, &h->timer);
    h->timer.data = h;
    uv_async_init(&h->loop, &h->wake, on_wake);
    h->wake.data = h;
    uv_unref((uv_handle_t *)&h->wake); /* never keeps the loop alive by itself */
    reg_add(h);
    h->multi = curl_multi_init();
    if (!h->multi) {
        ws_http_free(h);
        return ws_error_set(err, WS_EINTERNAL, "libcurl multi handle could not be created");
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    /* Enough connections for parallel multipart parts to one host. */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
    *out = h;
    return 0;
}

void ws_http_free(ws_http *h)
{
    if (!h)
        return;
    reg_remove(h);
    while (h->active)
        ws_http_req_cancel(h->active);
    /* curl_multi_cleanup may still report sockets to remove: the loop must be alive. */
    if (h->multi)
        curl_multi_cleanup(h->multi);
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, NULL);
    uv_close((uv_handle_t *)&h->wake, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT); /* lets the close callbacks fire */
    uv_loop_close(&h->loop);
    free(h->ca_file);
    free(h);
}

uv_loop_t *ws_http_loop(ws_http *h)
{
    return &h->loop;
}

int ws_http_run_until(ws_http *h, const int *flag)
{
    while (!*flag)
        if (uv_run(&h->loop, UV_RUN_ONCE) == 0 && !*flag)
            return -1;
    return 0;
}

/* ---- requests ---- */

ws_http_req *ws_http_req_new(const char *method, const char *url)
{
    ws_http_req *rq = calloc(1, sizeof *rq);
    if (!rq)
        return NULL;
    rq->method = strdup(method);
    rq->url = strdup(url);
    if (!rq->method || !rq->url) {
        ws_http_req_free(rq);
        return NULL;
    }
    return rq;
}

void ws_http_req_free(ws_http_req *rq)
{
    if (!rq)
        return;
    ws_http_req_cancel(rq);
    if (rq->easy)
        curl_easy_cleanup(rq->easy);
    curl_slist_free_all(rq->headers);
    for (int i = 0; i < rq->nrh; i++) {
        free(rq->rh[i].name);
        free(rq->rh[i].value);
    }
    free(rq->rh);
    free(rq->rbody);
    free(rq->method);
    free(rq->url);
    free(rq);
}

int ws_http_req_header(ws_http_req *rq, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return -1;
    /* "Name;" is curl's way to send an empty value; "Name:" removes a default header. */
    snprintf(line, n, "%s:%s%s", name, *value ? " " : "", value);
    struct curl_slist *l = curl_slist_append(rq->headers, line);
    free(line);
    if (!l)
        return -1;
    rq->headers = l;
    return 0;
}

void ws_http_req_body(ws_http_req *rq, const void *data, size_t len)
{
    rq->body = data;
    rq->body_len = len;
}

void ws_http_req_timeout(ws_http_req *rq, long ms)
{
    rq->timeout_ms = ms;
}

void ws_http_req_low_speed(ws_http_req *rq, long bytes_per_s)
{
    rq->low_speed_bps = bytes_per_s;
}

void ws_http_req_sink(ws_http_req *rq, ws_http_sink_fn fn, void *arg)
{
    rq->sink = fn;
    rq->sink_arg = arg;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userp)
{
    ws_http_req *rq = userp;
    size_t n = size * nitems, left = rq->body_len - rq->body_off;
    if (n > left)
        n = left;
    memcpy(buf, rq->body + rq->body_off, n);
    rq->body_off += n;
    return n;
}

static int on_seek(void *userp, curl_off_t offset, int origin)
{
    ws_http_req *rq = userp;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > rq->body_len)
        return CURL_SEEKFUNC_FAIL;
    rq->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int append_body(ws_http_req *rq, const char *data, size_t n)
{
    if (rq->rbody_len + n + 1 > rq->rbody_cap) {
        size_t cap = rq->rbody_cap ? rq->rbody_cap : 1024;
        while (cap < rq->rbody_len + n + 1)
            cap *= 2;
        char *b = realloc(rq->rbody, cap);
        if (!b)
            return -1;
        rq->rbody = b;
        rq->rbody_cap = cap;
    }
    memcpy(rq->rbody + rq->rbody_len, data, n);
    rq->rbody_len += n;
    rq->rbody[rq->rbody_len] = '\0';
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    ws_http_req *rq = userp;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rq->sink && status >= 200 && status < 300) {
        int r = rq->sink(rq->sink_arg, data, n);
        if (r > 0)
            return CURL_WRITEFUNC_PAUSE;
        return r < 0 ? 0 : n;
    }
    /* Error bodies are small XML documents; cap them so a broken server cannot eat memory. */
    if (rq->rbody_len < (64u << 20) && append_body(rq, data, n) < 0)
        return 0;
    return n;
}

static void clear_resp_headers(ws_http_req *rq)
{
    for (int i = 0; i < rq->nrh; i++) {
        free(rq->rh[i].name);
        free(rq->rh[i].value);
    }
    rq->nrh = 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *userp)
{
    ws_http_req *rq = userp;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        clear_resp_headers(rq); /* a new response (after 100 Continue): forget the old one */
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    if (rq->nrh == rq->caprh) {
        int cap = rq->caprh ? rq->caprh * 2 : 16;
        resp_header *r = realloc(rq->rh, (size_t)cap * sizeof *r);
        if (!r)
            return 0;
        rq->rh = r;
        rq->caprh = cap;
    }
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char *name = strndup(data, (size_t)(colon - data));
    char *value = strndup(v, (size_t)(end - v));
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    rq->rh[rq->nrh].name = name;
    rq->rh[rq->nrh].value = value;
    rq->nrh++;
    return n;
}

int ws_http_req_feed_header(ws_http_req *rq, const char *line, size_t len)
{
    return on_header((char *)line, 1, len, rq) == len ? 0 : -1;
}

static int setup_easy(ws_http *h, ws_http_req *rq)
{
    CURL *e = rq->easy;
    const ws_http_opts *o = &h->opts;
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, rq);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rq->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* The signed path is the sent path: no dot-segment squashing. */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, rq->low_speed_bps > 0 ? rq->low_speed_bps : 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     o->low_speed_time_s > 0 ? o->low_speed_time_s : 30L);
    if (rq->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (!o->verify_tls) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, rq);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, rq);

    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
        /* Upload from memory for both: the body is sent as-is with a Content-Length. */
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, rq);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, rq);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
        /* No "Expect: 100-continue" round trip (and nothing unsigned that matters). */
        if (ws_http_req_header(rq, "Expect", "") < 0)
            return -1;
    }
    if (ws_http_req_header(rq, "Content-Type", "") < 0) /* drop curl's form default */
        return -1;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->headers);
    return 0;
}

int ws_http_submit(ws_http *h, ws_http_req *rq, ws_http_done_fn done, void *arg, ws_error *err)
{
    if (ws_http_aborted())
        return ws_error_set(err, WS_EINTERNAL, "%s not sent: walship is stopping", rq->method);
    if (rq->easy)
        curl_easy_cleanup(rq->easy); /* resubmission: start clean */
    rq->easy = curl_easy_init();
    if (!rq->easy || setup_easy(h, rq) < 0)
        return ws_error_set(err, WS_ENOMEM, "out of memory setting up an HTTP request");
    rq->h = h;
    rq->done = done;
    rq->done_arg = arg;
    rq->status = 0;
    rq->code = CURLE_OK;
    rq->errbuf[0] = '\0';
    rq->rbody_len = 0;
    rq->body_off = 0;
    clear_resp_headers(rq);
    if (curl_multi_add_handle(h->multi, rq->easy) != CURLM_OK)
        return ws_error_set(err, WS_EINTERNAL, "libcurl refused a request");
    rq->in_flight = 1;
    rq->prev = NULL;
    rq->next = h->active;
    if (h->active)
        h->active->prev = rq;
    h->active = rq;
    return 0;
}

void ws_http_req_resume(ws_http_req *rq)
{
    if (rq->in_flight)
        curl_easy_pause(rq->easy, CURLPAUSE_CONT);
}

void ws_http_req_cancel(ws_http_req *rq)
{
    if (!rq->in_flight)
        return;
    ws_http *h = rq->h;
    rq->in_flight = 0;
    curl_multi_remove_handle(h->multi, rq->easy);
    if (rq->prev)
        rq->prev->next = rq->next;
    else
        h->active = rq->next;
    if (rq->next)
        rq->next->prev = rq->prev;
    rq->prev = rq->next = NULL;
}

long ws_http_req_status(const ws_http_req *rq)
{
    return rq->status;
}

int ws_http_req_curl_code(const ws_http_req *rq)
{
    return (int)rq->code;
}

const char *ws_http_req_errmsg(const ws_http_req *rq)
{
    return rq->errbuf;
}

int ws_http_req_tls_refused(const ws_http_req *rq)
{
    return rq->code == CURLE_PEER_FAILED_VERIFICATION || rq->code == CURLE_SSL_CACERT_BADFILE ||
           rq->code == CURLE_SSL_CERTPROBLEM;
}

const char *ws_http_req_body_text(const ws_http_req *rq, size_t *len)
{
    if (len)
        *len = rq->rbody_len;
    return rq->rbody ? rq->rbody : "";
}

const char *ws_http_req_resp_header(const ws_http_req *rq, const char *name)
{
    for (int i = rq->nrh - 1; i >= 0; i--)
        if (strcasecmp(rq->rh[i].name, name) == 0)
            return rq->rh[i].value;
    return NULL;
}

int ws_http_req_resp_header_at(const ws_http_req *rq, int i, const char **name, const char **value)
{
    if (i < 0 || i >= rq->nrh)
        return 0;
    *name = rq->rh[i].name;
    *value = rq->rh[i].value;
    return 1;
}
