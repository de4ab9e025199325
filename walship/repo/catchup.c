/* catchup.c — repoN-mode, catch-up backlogs and the one-object copy (catchup.h). */
#include "walship/repo/catchup.h"
#include "walship/codec/cipher.h"
#include "walship/repo/keys.h"
#include "walship/stage/stage.h"
#include "walship/storage/storage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ws_repo_modes(const ws_config *cfg, int *catchup, ws_error *err)
{
    int n = ws_config_repo_count(cfg), source = -1;
    const char *where = ws_config_source(cfg, "mode");
    if (where && strcmp(where, "default") != 0)
        return ws_error_set(err, WS_ECONFIG,
                            "mode (from %s) is a per-repository setting: write repoN-mode "
                            "(repo2-mode = catch-up)",
                            where);
    for (int i = 0; i < n && i < WS_CONFIG_MAX_REPOS; i++) {
        const char *m = ws_config_repo_get(cfg, i, "mode");
        if (!m || strcmp(m, "sync") == 0) {
            catchup[i] = 0;
            if (source < 0)
                source = i;
        } else if (strcmp(m, "catch-up") == 0) {
            catchup[i] = 1;
        } else {
            return ws_error_set(err, WS_ECONFIG, "repo%d-mode = \"%s\" is not sync or catch-up",
                                i + 1, m);
        }
    }
    if (n > 0 && source < 0) {
        ws_error_set(err, WS_ECONFIG,
                     "every repository is repoN-mode = catch-up: at least one must be sync");
        ws_error_hint(err, "push acknowledges a file once every sync repository holds it; "
                           "set repo1-mode = sync (the default)");
        return -1;
    }
    return source < 0 ? 0 : source;
}

/* ---- listing ---- */

typedef struct keys {
    ws_catchup_item *v;
    int n, cap, oom;
} keys;

static int add_key(void *arg, const char *key, const ws_storage_info *info)
{
    keys *s = arg;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        ws_catchup_item *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return 1;
        }
        s->v = nv;
        s->cap = cap;
    }
    if (!(s->v[s->n].key = strdup(key))) {
        s->oom = 1;
        return 1;
    }
    s->v[s->n++].size = info->size;
    return 0;
}

static void keys_free(keys *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i].key);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* 0 history file, 1 gap record, 2 segment (and .partial, backup history file) */
static int rank(const char *key)
{
    if (strncmp(key, WS_KEY_HISTORY_PREFIX, strlen(WS_KEY_HISTORY_PREFIX)) == 0)
        return 0;
    return strncmp(key, WS_KEY_GAP_PREFIX, strlen(WS_KEY_GAP_PREFIX)) == 0 ? 1 : 2;
}

/* history files and gap records: small, always wanted, never "expired" */
static int is_history(const char *key)
{
    return rank(key) < 2;
}

/* history files first (a timeline's history is needed before its segments), the gap records
 * (so that a drop is known before the segments around it), then the segments by name */
static int cmp_key(const void *a, const void *b)
{
    const char *x = ((const ws_catchup_item *)a)->key, *y = ((const ws_catchup_item *)b)->key;
    int rx = rank(x), ry = rank(y);
    if (rx != ry)
        return rx - ry;
    return strcmp(x, y);
}

static int list_wal(ws_repo *r, keys *s, ws_error *err)
{
    if ((ws_storage_list(ws_repo_storage(r), WS_KEY_WAL_PREFIX, add_key, s, err) < 0 ||
         (!s->oom &&
          ws_storage_list(ws_repo_storage(r), WS_KEY_GAP_PREFIX, add_key, s, err) < 0)) &&
        !s->oom) {
        keys_free(s);
        return -1;
    }
    if (s->oom) {
        keys_free(s);
        return ws_error_oom(err);
    }
    if (s->n > 1)
        qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_key);
    return 0;
}

int ws_catchup_backlog_of(ws_repo *src, ws_repo *dst, ws_catchup_backlog *b, ws_error *err)
{
    memset(b, 0, sizeof *b);
    keys s = {0}, d = {0};
    if (list_wal(dst, &d, err) < 0)
        return -1;
    if (list_wal(src, &s, err) < 0) {
        keys_free(&d);
        return -1;
    }
    /* the oldest segment dst holds: what lies before it there was expired, not missed */
    const char *oldest = NULL;
    for (int i = 0; i < d.n && !oldest; i++)
        if (!is_history(d.v[i].key))
            oldest = d.v[i].key;
    if (oldest && !is_history(d.v[d.n - 1].key))
        snprintf(b->dst_newest, sizeof b->dst_newest, "%s", d.v[d.n - 1].key);
    int k = 0, j = 0;
    for (int i = 0; i < s.n; i++) {
        ws_catchup_item *it = &s.v[i];
        while (j < d.n && cmp_key(&d.v[j], it) < 0)
            j++;
        int have = j < d.n && strcmp(d.v[j].key, it->key) == 0;
        int expired = !is_history(it->key) && oldest && strcmp(it->key, oldest) < 0;
        if (have || expired) {
            free(it->key);
            continue;
        }
        b->bytes += it->size;
        s.v[k++] = *it;
    }
    keys_free(&d);
    b->v = s.v;
    b->n = k;
    return 0;
}

int ws_catchup_backlog_after(ws_repo *src, const char *after, ws_catchup_backlog *b, ws_error *err)
{
    memset(b, 0, sizeof *b);
    keys s = {0};
    if (list_wal(src, &s, err) < 0)
        return -1;
    int k = 0;
    for (int i = 0; i < s.n; i++) {
        ws_catchup_item *it = &s.v[i];
        if (is_history(it->key) || (after && *after && strcmp(it->key, after) <= 0)) {
            free(it->key);
            continue;
        }
        b->bytes += it->size;
        s.v[k++] = *it;
    }
    b->v = s.v;
    b->n = k;
    return 0;
}

void ws_catchup_backlog_free(ws_catchup_backlog *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->v[i].key);
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* ---- one object ---- */

/* A stage handing the plaintext to the target's object writer. */
typedef struct into_writer {
    ws_stage base;
    ws_repo_obj_writer *w;
} into_writer;

static int into_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    return ws_repo_obj_write(((into_writer *)st)->w, buf, len, err);
}

static int into_flush(ws_stage *st, ws_error *err)
{
    (void)st;
    (void)err;
    return 0;
}

static void into_free(ws_stage *st)
{
    free(st);
}

static const ws_stage_ops into_ops = {"copy", into_write, into_flush, into_free};

static int differs(ws_repo *dst, const char *key, const unsigned char want[32], const ws_objhdr *t,
                   ws_error *err)
{
    char a[65], b[65];
    ws_sha256_hex(want, a);
    if (t->encryption) /* an encrypted target keeps only a keyed hash: named as such */
        return ws_error_set(err, WS_EMISMATCH,
                            "%s already holds a different %s (%llu bytes whose keyed hash does "
                            "not match the source's plaintext, SHA-256 %s): left alone, not "
                            "copied",
                            ws_repo_describe(dst), key, (unsigned long long)t->length, a);
    ws_sha256_hex(t->sha256, b);
    return ws_error_set(err, WS_EMISMATCH,
                        "%s already holds a different %s (SHA-256 %s, the source's is %s): left "
                        "alone, not copied",
                        ws_repo_describe(dst), key, b, a);
}

static int discard_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    (void)st;
    (void)buf;
    (void)len;
    (void)err;
    return 0;
}

static const ws_stage_ops discard_ops = {"copy-verify", discard_write, into_flush, into_free};

int ws_repo_obj_fill(ws_repo *src, const char *key, const ws_objhdr *h, ws_repo_obj_writer *w,
                     ws_objhdr *rh, ws_error *err)
{
    into_writer *s = calloc(1, sizeof *s);
    if (!s)
        return ws_error_oom(err);
    s->base.ops = &into_ops;
    s->w = w;
    /* bounded by the header just read: a source object growing under us is refused */
    int rc = ws_repo_obj_read_limit(src, key, &s->base, rh, 0, h->length, err);
    ws_stage_free(&s->base);
    return rc;
}

int ws_repo_obj_stored_header(ws_repo *r, const char *key, ws_objhdr *h, ws_error *err)
{
    ws_storage_reader *rd;
    if (ws_storage_open_read(ws_repo_storage(r), key, 0, WS_OBJHDR_SIZE, &rd, err) < 0)
        return -1;
    unsigned char buf[WS_OBJHDR_SIZE];
    size_t n;
    int rc = ws_storage_read_full(rd, buf, sizeof buf, &n, err);
    ws_storage_reader_close(rd);
    if (rc < 0)
        return -1;
    return ws_objhdr_decode(buf, n, key, h, err);
}

int ws_repo_obj_same(ws_repo *src, const ws_objhdr *h, ws_repo *dst, const ws_objhdr *t,
                     const char *key, unsigned char plain[32], int *src_failed, ws_error *err)
{
    *src_failed = 0;
    if (!h->encryption) {
        memcpy(plain, h->sha256, 32);
    } else { /* only a keyed hash: the source is read, verified (with its key), to learn it */
        ws_stage *v = calloc(1, sizeof *v);
        if (!v)
            return ws_error_oom(err);
        v->ops = &discard_ops;
        ws_objhdr rh;
        int rc = ws_repo_obj_read_limit(src, key, v, &rh, 0, h->length, err);
        ws_stage_free(v);
        if (rc < 0) {
            *src_failed = 1;
            return -1;
        }
        memcpy(plain, rh.sha256, 32);
    }
    if (t->length != h->length)
        return 0;
    if (!t->encryption)
        return memcmp(t->sha256, plain, 32) == 0;
    const ws_keyring *kr;
    if (ws_repo_keyring(dst, 0, &kr, err) < 0)
        return -1;
    if (!kr)
        return ws_error_set(err, WS_ECONFIG,
                            "%s: object is encrypted (aes-256-gcm) but cipher is "
                            "none here",
                            key);
    unsigned char keyed[32];
    if (ws_cipher_keyed_hash(ws_keyring_hash_key(kr), plain, keyed) < 0)
        return ws_error_set(err, WS_EINTERNAL, "HMAC-SHA-256 failed");
    return memcmp(keyed, t->sha256, 32) == 0;
}

int ws_repo_obj_copy(ws_repo *src, ws_repo *dst, const char *key, int level, int *stored,
                     ws_error *err)
{
    int dummy;
    if (!stored)
        stored = &dummy;
    *stored = 0;
    ws_objhdr h, t;
    /* the stored header, not S3 metadata: it carries the kind the copy must keep */
    if (ws_repo_obj_stored_header(src, key, &h, err) < 0)
        return -1;
    ws_error e;
    ws_error_clear(&e);
    if (ws_repo_obj_header(dst, key, &t, &e) == 0) {
        unsigned char plain[32];
        int src_failed, m = ws_repo_obj_same(src, &h, dst, &t, key, plain, &src_failed, err);
        if (m < 0)
            return -1;
        return m ? 0 : differs(dst, key, plain, &t, err);
    }
    if (e.code != WS_ENOENT) {
        *err = e;
        return -1;
    }
    ws_repo_obj_writer *w = NULL;
    ws_repo *targets[1] = {dst};
    /* the target's writer encrypts under the target's keyring (or not at all): the plaintext
     * read from the source is re-encrypted, never its stored bytes copied */
    if (ws_repo_obj_create(targets, 1, key, (ws_objkind)h.kind, (ws_codec)h.codec, level, h.length,
                           &w, err) < 0)
        return -1;
    ws_objhdr rh;
    if (ws_repo_obj_fill(src, key, &h, w, &rh, err) < 0) {
        ws_repo_obj_abort(w);
        return -1;
    }
    ws_repo_put_result res;
    memset(&res, 0, sizeof res);
    if (ws_repo_obj_commit(w, NULL, &res, err) < 0) {
        if (err->code == WS_EMISMATCH)
            return differs(dst, key, rh.sha256, &res.existing, err);
        return -1;
    }
    *stored = res.status != WS_PUT_IDENTICAL;
    return 0;
}

int ws_catchup_backlog_cfg(const ws_config *cfg, int i, int *source, uint64_t *files,
                           uint64_t *bytes, ws_error *err)
{
    int catchup[WS_CONFIG_MAX_REPOS];
    int src = ws_repo_modes(cfg, catchup, err);
    if (src < 0)
        return -1;
    *source = src;
    *files = *bytes = 0;
    if (i < 0 || i >= WS_CONFIG_MAX_REPOS || !catchup[i])
        return 1;
    ws_storage_config sc;
    ws_repo *s = NULL, *d = NULL;
    int rc = -1;
    if (ws_config_storage(cfg, src, &sc, err) == 0 && ws_repo_open(&sc, &s, err) == 0 &&
        ws_config_storage(cfg, i, &sc, err) == 0 && ws_repo_open(&sc, &d, err) == 0) {
        ws_catchup_backlog b;
        if (ws_catchup_backlog_of(s, d, &b, err) == 0) {
            *files = (uint64_t)b.n;
            *bytes = b.bytes;
            ws_catchup_backlog_free(&b);
            rc = 0;
        }
    }
    if (s)
        ws_repo_free(s);
    if (d)
        ws_repo_free(d);
    return rc;
}
