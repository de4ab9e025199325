/* store.c — tar entries into packed and parted repository objects (see store.h). */
#include "basebackup/store.h"

#include "walship/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An object being written: a pack, a part of a large file, or a blob. */
typedef struct open_obj {
    ws_repo_obj_writer *w;
    char rel[32];     /* "data/000042", relative to backup/<id>/ */
    uint64_t written; /* plaintext bytes so far */
} open_obj;

struct ws_bb_store {
    ws_bb_store_opts o;
    ws_manifest_builder *mb;
    uint32_t tablespace;
    unsigned next_obj;
    ws_bb_store_stats stats;

    open_obj pack; /* w == NULL when no pack is open */
    open_obj part; /* the current object of a large file, or the blob */

    /* the file being stored */
    ws_manifest_entry entry;
    int in_file;
    int packed;         /* its bytes go into the pack */
    ws_stage *hasher;   /* per-file SHA-256, NULL when the file is a single object */
    uint64_t file_left; /* bytes still to come */
    uint64_t part_left; /* bytes still to go into the current part */
    char *extents;
    size_t ext_len, ext_cap;
};

int ws_bb_store_new(const ws_bb_store_opts *o, ws_manifest_builder *mb, ws_bb_store **out,
                    ws_error *err)
{
    ws_bb_store *s = calloc(1, sizeof *s);
    if (!s)
        return ws_error_set(err, WS_ENOMEM, "out of memory");
    s->o = *o;
    s->mb = mb;
    s->next_obj = 1;
    *out = s;
    return 0;
}

void ws_bb_store_free(ws_bb_store *s)
{
    if (!s)
        return;
    ws_repo_obj_abort(s->pack.w);
    ws_repo_obj_abort(s->part.w);
    ws_stage_free(s->hasher);
    free(s->extents);
    free(s);
}

void ws_bb_store_set_tablespace(ws_bb_store *s, uint32_t oid)
{
    s->tablespace = oid;
}

void ws_bb_store_get_stats(const ws_bb_store *s, ws_bb_store_stats *out)
{
    *out = s->stats;
}

static int obj_open(ws_bb_store *s, open_obj *ob, const char *rel, uint64_t size_hint,
                    ws_error *err)
{
    char key[256];
    if (rel)
        snprintf(ob->rel, sizeof ob->rel, "%s", rel);
    else
        snprintf(ob->rel, sizeof ob->rel, "data/%06u", s->next_obj++);
    if (ws_manifest_key(s->o.id, ob->rel, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id too long");
    ob->written = 0;
    return ws_repo_obj_create(s->o.repos, s->o.nrepos, key, WS_OBJ_DATA, s->o.codec, s->o.level,
                              size_hint, &ob->w, err);
}

static int obj_write(open_obj *ob, const void *buf, size_t len, ws_error *err)
{
    ob->written += len;
    return ws_repo_obj_write(ob->w, buf, len, err);
}

static int obj_commit(ws_bb_store *s, open_obj *ob, ws_objhdr *hdr, ws_error *err)
{
    ws_repo_obj_writer *w = ob->w;
    ob->w = NULL;
    if (ws_repo_obj_commit(w, hdr, NULL, err) < 0)
        return -1;
    s->stats.objects++;
    char key[256];
    ws_storage_info info;
    ws_error serr;
    ws_error_clear(&serr);
    ws_manifest_key(s->o.id, ob->rel, key, sizeof key);
    /* the stored size is informational (list's "stored" column): a failed stat is no failure */
    if (ws_storage_stat(ws_repo_storage(s->o.repos[0]), key, &info, &serr) == 0)
        s->stats.stored_bytes += info.size;
    return 0;
}

static int ext_add(ws_bb_store *s, const char *rel, uint64_t off, uint64_t len, ws_error *err)
{
    char one[96];
    int n = snprintf(one, sizeof one, "%s%s@%" PRIu64 "+%" PRIu64, s->ext_len ? "," : "", rel, off,
                     len);
    if (s->ext_len + (size_t)n + 1 > s->ext_cap) {
        size_t cap = s->ext_cap ? s->ext_cap * 2 : 256;
        while (cap < s->ext_len + (size_t)n + 1)
            cap *= 2;
        char *ne = realloc(s->extents, cap);
        if (!ne)
            return ws_error_set(err, WS_ENOMEM, "out of memory");
        s->extents = ne;
        s->ext_cap = cap;
    }
    memcpy(s->extents + s->ext_len, one, (size_t)n + 1);
    s->ext_len += (size_t)n;
    return 0;
}

/* ---- tar callbacks ---- */

static int on_begin(void *arg, const ws_tar_entry *te, ws_error *err)
{
    ws_bb_store *s = arg;
    ws_manifest_entry *e = &s->entry;
    memset(e, 0, sizeof *e);
    e->tablespace = s->tablespace;
    e->mode = te->mode;
    e->mtime = te->mtime;
    snprintf(e->path, sizeof e->path, "%s", te->path);
    if (te->type == WS_TAR_DIR) {
        e->kind = WS_MANIFEST_DIR;
        return ws_manifest_add(s->mb, e, err);
    }
    if (te->type == WS_TAR_SYMLINK) {
        e->kind = WS_MANIFEST_SYMLINK;
        snprintf(e->target, sizeof e->target, "%s", te->linkname);
        return ws_manifest_add(s->mb, e, err);
    }
    e->kind = WS_MANIFEST_FILE;
    e->size = te->size;
    s->in_file = 1;
    s->ext_len = 0;
    if (s->extents)
        s->extents[0] = '\0';
    s->file_left = te->size;
    s->packed = te->size > 0 && te->size < s->o.pack_threshold;
    if (te->size == 0)
        return 0;
    if (s->packed) {
        if (s->pack.w && s->pack.written + te->size > s->o.pack_size &&
            obj_commit(s, &s->pack, NULL, err) < 0)
            return -1;
        if (!s->pack.w && obj_open(s, &s->pack, NULL, 0, err) < 0)
            return -1;
        if (ext_add(s, s->pack.rel, s->pack.written, te->size, err) < 0)
            return -1;
    } else {
        s->part_left = te->size < s->o.part_size ? te->size : s->o.part_size;
        if (obj_open(s, &s->part, NULL, s->part_left, err) < 0 ||
            ext_add(s, s->part.rel, 0, s->part_left, err) < 0)
            return -1;
    }
    if (s->packed || te->size > s->o.part_size) {
        if (!(s->hasher = ws_stage_sha256_new(NULL)))
            return ws_error_set(err, WS_ENOMEM, "out of memory");
    }
    return 0;
}

static int on_data(void *arg, const void *buf, size_t len, ws_error *err)
{
    ws_bb_store *s = arg;
    if (!s->in_file)
        return 0;
    s->file_left -= len;
    s->stats.bytes += len;
    if (s->hasher && ws_stage_write(s->hasher, buf, len, err) < 0)
        return -1;
    if (s->packed)
        return obj_write(&s->pack, buf, len, err);
    const char *p = buf;
    while (len > 0) {
        if (s->part_left == 0) {
            /* the current part is full: seal it and start the next */
            if (obj_commit(s, &s->part, NULL, err) < 0)
                return -1;
            uint64_t rest = s->file_left + len;
            s->part_left = rest < s->o.part_size ? rest : s->o.part_size;
            if (obj_open(s, &s->part, NULL, s->part_left, err) < 0 ||
                ext_add(s, s->part.rel, 0, s->part_left, err) < 0)
                return -1;
        }
        size_t n = len < s->part_left ? len : (size_t)s->part_left;
        if (obj_write(&s->part, p, n, err) < 0)
            return -1;
        p += n;
        len -= n;
        s->part_left -= n;
    }
    return 0;
}

static int on_end(void *arg, ws_error *err)
{
    ws_bb_store *s = arg;
    if (!s->in_file)
        return 0;
    s->in_file = 0;
    ws_manifest_entry *e = &s->entry;
    unsigned char digest[32];
    if (e->size == 0) {
        ws_sha256("", 0, digest);
    } else if (!s->packed) {
        ws_objhdr h;
        if (obj_commit(s, &s->part, &h, err) < 0)
            return -1;
        memcpy(digest, h.sha256, 32);
    }
    if (s->hasher) {
        uint64_t n;
        if (ws_stage_finish(s->hasher, err) < 0)
            return -1;
        ws_stage_sha256_result(s->hasher, digest, &n);
        ws_stage_free(s->hasher);
        s->hasher = NULL;
    }
    ws_sha256_hex(digest, e->sha256);
    if (s->o.verify) {
        /* the server's manifest names tablespace files by their path under pg_tblspc */
        char path[WS_MANIFEST_PATH_MAX + 32];
        if (e->tablespace)
            snprintf(path, sizeof path, "pg_tblspc/%" PRIu32 "/%s", e->tablespace, e->path);
        else
            snprintf(path, sizeof path, "%s", e->path);
        if (ws_bb_verify_add(s->o.verify, path, e->size, digest, err) < 0)
            return -1;
    }
    e->extents = s->ext_len ? s->extents : "-";
    s->stats.files++;
    return ws_manifest_add(s->mb, e, err);
}

static const ws_tar_callbacks store_cb = {on_begin, on_data, on_end};

const ws_tar_callbacks *ws_bb_store_tar_callbacks(void)
{
    return &store_cb;
}

/* ---- blobs ---- */

int ws_bb_store_blob_begin(ws_bb_store *s, const char *name, ws_error *err)
{
    return obj_open(s, &s->part, name, 0, err);
}

int ws_bb_store_blob_write(ws_bb_store *s, const void *buf, size_t len, ws_error *err)
{
    if (!s->part.w)
        return ws_error_set(err, WS_EINTERNAL, "blob data without a blob");
    return obj_write(&s->part, buf, len, err);
}

int ws_bb_store_blob_end(ws_bb_store *s, ws_error *err)
{
    if (!s->part.w)
        return ws_error_set(err, WS_EINTERNAL, "blob end without a blob");
    return obj_commit(s, &s->part, NULL, err);
}

int ws_bb_store_finish(ws_bb_store *s, ws_error *err)
{
    if (s->in_file)
        return ws_error_set(err, WS_EINTERNAL, "backup stream ended inside a file");
    if (s->pack.w)
        return obj_commit(s, &s->pack, NULL, err);
    return 0;
}

/* ---- cleanup ---- */

typedef struct key_list {
    char **keys;
    int n, cap;
} key_list;

static int collect_key(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    key_list *l = arg;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **nk = realloc(l->keys, (size_t)cap * sizeof *nk);
        if (!nk)
            return 1;
        l->keys = nk;
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key)))
        return 1;
    l->n++;
    return 0;
}

void ws_bb_store_remove_all(ws_repo **repos, int n, const char *id)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "backup/%s/", id);
    for (int i = 0; i < n; i++) {
        key_list l = {0};
        ws_error err;
        ws_error_clear(&err);
        ws_storage *st = ws_repo_storage(repos[i]);
        if (ws_storage_list(st, prefix, collect_key, &l, &err) < 0)
            ws_log_warn("cannot list %s in %s to remove the failed backup's objects: %s", prefix,
                        ws_repo_describe(repos[i]), err.msg);
        int left = 0;
        for (int k = 0; k < l.n; k++) {
            if (ws_storage_remove(st, l.keys[k], &err) < 0)
                left++;
            free(l.keys[k]);
        }
        free(l.keys);
        if (left)
            ws_log_warn("%d objects of the failed backup %s remain in %s (not visible: it has "
                        "no manifest)",
                        left, id, ws_repo_describe(repos[i]));
    }
}
