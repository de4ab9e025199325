/*
 * s3.c — the S3 storage driver (storage.h): open, configure, free, stat (HEAD with user
 * metadata), remove (DELETE) and list (ListObjectsV2). The reader is s3_read.c, the writer
 * s3_write.c, batch removal and multipart leftovers s3_delete.c; s3_driver.h describes the
 * whole driver.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "walship/log.h"
#include "walship/storage/s3_driver.h"

/* ---- stat (HEAD) ---- */

static int64_t parse_http_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%a, %d %b %Y %H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

int64_t ws_s3_parse_iso_date(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

int ws_s3_drv_stat(ws_storage *st, const char *key, ws_storage_info *info, ws_error *err)
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
            info.mtime = ws_s3_parse_iso_date(lm);
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

static const ws_storage_ops s3_ops = {"s3",
                                      WS_STORAGE_FEAT_META | WS_STORAGE_FEAT_RANGE,
                                      ws_s3_drv_open_read,
                                      ws_s3_drv_open_write,
                                      ws_s3_drv_stat,
                                      s3_list,
                                      s3_remove,
                                      s3_describe,
                                      s3_free,
                                      ws_s3_drv_list_ex,
                                      s3_set_deadline,
                                      ws_s3_drv_remove_many,
                                      ws_s3_drv_remove_tmp};

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
