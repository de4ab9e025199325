/* storage.c — driver selection and the thin wrappers over ws_storage_ops. */
#include "walship/storage/storage.h"

#include <stdlib.h>
#include <string.h>

int ws_meta_set(ws_meta *m, const char *key, const char *value)
{
    if (strlen(key) >= WS_META_KEY_MAX || strlen(value) >= WS_META_VALUE_MAX)
        return -1;
    int i;
    for (i = 0; i < m->n; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            break;
    if (i == m->n) {
        if (m->n == WS_META_MAX)
            return -1;
        m->n++;
    }
    strcpy(m->kv[i].key, key);
    strcpy(m->kv[i].value, value);
    return 0;
}

const char *ws_meta_get(const ws_meta *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->kv[i].key, key) == 0)
            return m->kv[i].value;
    return NULL;
}

int ws_storage_open(const ws_storage_config *cfg, ws_storage **out, ws_error *err)
{
    const char *url = cfg->url;
    *out = NULL;
    if (!url || !*url)
        return ws_error_set(err, WS_ECONFIG, "no repository configured");
    if (strncmp(url, "s3://", 5) == 0)
        return ws_storage_s3_open(cfg, out, err);
    if (strncmp(url, "file://", 7) == 0)
        url += 7;
    if (url[0] != '/') {
        ws_error_set(err, WS_ECONFIG, "repository \"%s\" is neither an absolute path nor s3://",
                     cfg->url);
        ws_error_hint(err, "use repo = /var/lib/walship, file:///mnt/nas/walship or "
                           "s3://bucket/prefix");
        return -1;
    }
    return ws_storage_posix_open(cfg, url, out, err);
}

void ws_storage_free(ws_storage *s)
{
    if (s)
        s->ops->free(s);
}

int ws_storage_key_valid(const char *key)
{
    if (!key || !*key || key[0] == '/')
        return 0;
    const char *p = key;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || p[0] == '.') /* ".", "..", and the drivers' temporary files */
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return 0;
        if (!slash)
            break;
        p = slash + 1;
        if (!*p)
            return 0; /* trailing slash */
    }
    return 1;
}

int ws_storage_open_read(ws_storage *s, const char *key, uint64_t off, uint64_t len,
                         ws_storage_reader **out, ws_error *err)
{
    return s->ops->open_read(s, key, off, len, out, err);
}

int ws_storage_open_write(ws_storage *s, const char *key, unsigned flags, ws_storage_writer **out,
                          ws_error *err)
{
    return s->ops->open_write(s, key, flags, out, err);
}

int ws_storage_stat(ws_storage *s, const char *key, ws_storage_info *info, ws_error *err)
{
    memset(info, 0, sizeof *info);
    return s->ops->stat(s, key, info, err);
}

int ws_storage_list(ws_storage *s, const char *prefix, ws_storage_list_cb cb, void *arg,
                    ws_error *err)
{
    return s->ops->list(s, prefix, cb, arg, err);
}

int ws_storage_list_ex(ws_storage *s, const char *prefix, unsigned flags, ws_storage_list_cb cb,
                       ws_storage_list_err_cb on_err, void *arg, ws_error *err)
{
    if (s->ops->list_ex)
        return s->ops->list_ex(s, prefix, flags, cb, on_err, arg, err);
    if (flags & WS_STORAGE_LIST_TMP)
        return 0;
    return s->ops->list(s, prefix, cb, arg, err);
}

int ws_storage_remove(ws_storage *s, const char *key, ws_error *err)
{
    return s->ops->remove(s, key, err);
}

int ws_storage_remove_many(ws_storage *s, const char *const *keys, size_t n, size_t *done,
                           ws_error *err)
{
    size_t d = 0;
    if (done)
        *done = 0;
    if (s->ops->remove_many)
        return s->ops->remove_many(s, keys, n, done, err);
    for (; d < n; d++) {
        if (s->ops->remove(s, keys[d], err) < 0)
            break;
        if (done)
            *done = d + 1;
    }
    return d == n ? 0 : -1;
}

int ws_storage_remove_tmp(ws_storage *s, const char *name, ws_error *err)
{
    if (!s->ops->remove_tmp)
        return ws_error_set(err, WS_EINTERNAL, "%s keeps no temporary files", s->ops->name);
    return s->ops->remove_tmp(s, name, err);
}

void ws_storage_set_deadline(ws_storage *s, double deadline)
{
    if (s->ops->set_deadline)
        s->ops->set_deadline(s, deadline);
}

const char *ws_storage_describe(ws_storage *s)
{
    return s->ops->describe(s);
}

unsigned ws_storage_features(ws_storage *s)
{
    return s->ops->features;
}

int ws_storage_read(ws_storage_reader *r, void *buf, size_t len, size_t *n, ws_error *err)
{
    return r->ops->read(r, buf, len, n, err);
}

int ws_storage_read_full(ws_storage_reader *r, void *buf, size_t len, size_t *n, ws_error *err)
{
    size_t got = 0;
    while (got < len) {
        size_t k = 0;
        if (r->ops->read(r, (char *)buf + got, len - got, &k, err) < 0)
            return -1;
        if (k == 0)
            break;
        got += k;
    }
    *n = got;
    return 0;
}

void ws_storage_reader_close(ws_storage_reader *r)
{
    if (r)
        r->ops->close(r);
}

int ws_storage_write(ws_storage_writer *w, const void *buf, size_t len, ws_error *err)
{
    return w->ops->write(w, buf, len, err);
}

int ws_storage_patch(ws_storage_writer *w, uint64_t off, const void *buf, size_t len, ws_error *err)
{
    if (off + len > WS_STORAGE_PATCH_MAX)
        return ws_error_set(err, WS_EINTERNAL, "patch beyond the first %d bytes",
                            WS_STORAGE_PATCH_MAX);
    return w->ops->patch(w, off, buf, len, err);
}

int ws_storage_writer_commit(ws_storage_writer *w, const ws_meta *meta, ws_error *err)
{
    return w->ops->commit(w, meta, err);
}

void ws_storage_writer_abort(ws_storage_writer *w)
{
    if (w)
        w->ops->abort(w);
}

int ws_storage_get_small(ws_storage *s, const char *key, size_t max, char **buf, size_t *len,
                         ws_error *err)
{
    ws_storage_reader *r;
    *buf = NULL;
    *len = 0;
    if (ws_storage_open_read(s, key, 0, 0, &r, err) < 0)
        return -1;
    char *b = malloc(max + 2);
    if (!b) {
        ws_storage_reader_close(r);
        return ws_error_set(err, WS_ENOMEM, "out of memory reading %s", key);
    }
    size_t n = 0;
    int rc = ws_storage_read_full(r, b, max + 1, &n, err);
    ws_storage_reader_close(r);
    if (rc < 0) {
        free(b);
        return -1;
    }
    if (n > max) {
        free(b);
        return ws_error_set(err, WS_ECORRUPT, "%s is larger than %zu bytes", key, max);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

int ws_storage_put_small(ws_storage *s, const char *key, unsigned flags, const void *buf,
                         size_t len, const ws_meta *meta, ws_error *err)
{
    ws_storage_writer *w;
    if (ws_storage_open_write(s, key, flags, &w, err) < 0)
        return -1;
    if (len && ws_storage_write(w, buf, len, err) < 0) {
        ws_storage_writer_abort(w);
        return -1;
    }
    return ws_storage_writer_commit(w, meta, err);
}
