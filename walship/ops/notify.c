/*
 * notify.c — notify-url (docs/notify.md): a job's result as a JSON POST that Slack,
 * Mattermost and generic webhook receivers accept: {"text": "...", "job": ..., "ok": ...,
 * and the job's figures}. The URL is a secret (it authorises posting): it comes from the
 * config file or the environment only, and messages name its host alone. Delivery is bounded
 * by notify-timeout and never changes the job's outcome.
 */
#include "walship/log.h"
#include "walship/ops/ops.h"
#include "walship/storage/http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The host[:port] of url, without user info, for messages. */
static void url_host(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    snprintf(out, len, "%.*s", (int)(end - p), p);
}

static void iso(double t, char out[32])
{
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The body into a malloc'd string. */
static char *body_of(const ws_ops_result *res, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char t1[32], t2[32], text[2048];
    iso(res->started, t1);
    iso(res->finished, t2);
    snprintf(text, sizeof text, "%s %s on %s: %s", res->ok ? "OK" : "FAILED", res->job, host,
             res->summary ? res->summary : "");
    fprintf(f, "{\"text\":");
    ws_ops_json_str(f, text);
    fprintf(f, ",\"job\":");
    ws_ops_json_str(f, res->job);
    fprintf(f, ",\"ok\":%s,\"status\":\"%s\",\"host\":", res->ok ? "true" : "false",
            res->ok ? "success" : "failure");
    ws_ops_json_str(f, host);
    fprintf(f, ",\"started\":\"%s\",\"finished\":\"%s\",\"duration_seconds\":%.3f,\"summary\":", t1,
            t2, res->finished - res->started);
    ws_ops_json_str(f, res->summary);
    for (int i = 0; i < res->nfields; i++) {
        fprintf(f, ",");
        ws_ops_json_str(f, res->fields[i].key);
        fprintf(f, ":");
        if (res->fields[i].num)
            fprintf(f, "%s", res->fields[i].value);
        else
            ws_ops_json_str(f, res->fields[i].value);
    }
    fprintf(f, "}");
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void done_cb(ws_http_req *rq, void *arg)
{
    (void)rq;
    *(int *)arg = 1;
}

int ws_ops_config_check(const ws_config *cfg, ws_error *err)
{
    const char *on = ws_config_get(cfg, "notify-on");
    if (on && strcmp(on, "always") != 0 && strcmp(on, "failure") != 0)
        return ws_error_set(err, WS_ECONFIG,
                            "notify-on = \"%s\" (from %s) is not failure or always", on,
                            ws_config_source(cfg, "notify-on"));
    double timeout;
    if (ws_config_get_seconds(cfg, "notify-timeout", &timeout, err) < 0)
        return -1;
    const char *url = ws_config_get(cfg, "notify-url");
    if (url && *url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        char host[256];
        url_host(url, host, sizeof host);
        return ws_error_set(err, WS_ECONFIG,
                            "notify-url (host %s) is not an http:// or https:// URL", host);
    }
    return 0;
}

int ws_notify_send(const ws_config *cfg, const ws_ops_result *res, ws_error *err)
{
    const char *url = ws_config_get(cfg, "notify-url");
    if (!url || !*url)
        return 0;
    if (ws_ops_config_check(cfg, err) < 0)
        return -1;
    const char *on = ws_config_get(cfg, "notify-on");
    if (res->ok && !(on && strcmp(on, "always") == 0))
        return 0;
    char host[256];
    url_host(url, host, sizeof host);
    double timeout;
    if (ws_config_get_seconds(cfg, "notify-timeout", &timeout, err) < 0)
        return -1;
    if (timeout <= 0)
        timeout = 10;
    size_t len = 0;
    char *body = body_of(res, &len);
    if (!body)
        return ws_error_oom(err);
    long ms = (long)(timeout * 1000);
    ws_http_opts ho = {NULL, 1, ms, (long)timeout + 1};
    ws_http *h = NULL;
    int rc = -1;
    if (ws_http_new(&ho, &h, err) < 0) {
        free(body);
        return -1;
    }
    ws_http_req *rq = ws_http_req_new("POST", url);
    int done = 0;
    if (!rq || ws_http_req_header(rq, "Content-Type", "application/json") < 0) {
        ws_error_oom(err);
        goto out;
    }
    ws_http_req_body(rq, body, len);
    ws_http_req_timeout(rq, ms);
    if (ws_http_submit(h, rq, done_cb, &done, err) < 0) {
        ws_error_prefix(err, "notification to %s", host);
        goto out;
    }
    ws_http_run_until(h, &done);
    long status = ws_http_req_status(rq);
    if (status >= 200 && status < 300) {
        ws_log_debug("notification sent to %s (HTTP %ld)", host, status);
        rc = 0;
    } else if (status)
        ws_error_set(err, WS_ETRANSIENT, "notification to %s refused: HTTP %ld", host, status);
    else
        /* curl's message may quote the URL: only the host is named */
        ws_error_set(err, WS_ETRANSIENT,
                     "notification to %s failed: no response within %.0f s "
                     "or connection refused (curl error %d)",
                     host, timeout, ws_http_req_curl_code(rq));
out:
    if (rq)
        ws_http_req_free(rq);
    ws_http_free(h);
    free(body);
    return rc;
}
