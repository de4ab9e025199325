/*
 * store.c — tar entries into packed and parted repository objects (see store.h): what goes
 * into which object, each file's extents, SHA-256 and manifest line. The objects are written
 * by the thread queue of objqueue.h; this file runs on the stream's thread (the caller's)
 * alone.
 */
#include "basebackup/store.h"
#include "basebackup/objqueue.h"

#include "walship/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A file that is exactly one object: its manifest line and check wait for the commit. */
typedef struct pending_file {
    char *path; /* its path in the server's manifest */
    uint64_t size;
    uint32_t crc;
    size_t slot;
} pending_file;

struct ws_bb_store {
    ws_bb_store_opts o;
    ws_manifest_builder *mb;
    uint32_t tablespace;
    ws_bb_oq *q;
    uint64_t files, bytes; /* regular files and their bytes */

    ws_bb_obj *pack; /* gathered whole, then handed over */
    ws_bb_obj *part; /* the current part of a large file, or the blob: handed over as it comes */

    /* the file being stored */
    ws_manifest_entry entry;
    int in_file;
    int packed;         /* its bytes go into the pack */
    ws_stage *hasher;   /* per-file SHA-256, NULL when the file is a single object */
    uint64_t file_left; /* bytes still to come */
    uint64_t part_left; /* bytes still to go into the current part */
    uint32_t crc;       /* its CRC-32C, for the server's manifest (verify) */
    char *extents;
    size_t ext_len, ext_cap;
};

static void pending_free(void *tag)
{
    pending_file *p = tag;
    free(p->path);
    free(p);
}

/* A file that is exactly one object, committed: its digest is the object's. */
static int pending_done(void *arg, void *tag, const ws_objhdr *hdr, ws_error *err)
{
    ws_bb_store *s = arg;
    pending_file *p = tag;
    char hex[65];
    ws_sha256_hex(hdr->sha256, hex);
    ws_manifest_set_sha256(s->mb, p->slot, hex);
    if (s->o.verify &&
        ws_bb_verify_add(s->o.verify, p->path, p->size, hdr->sha256, p->crc, err) < 0)
        return -1;
    return 0;
}

int ws_bb_store_new(const ws_bb_store_opts *o, ws_manifest_builder *mb, ws_bb_store **out,
                    ws_error *err)
{
    *out = NULL;
    ws_bb_store *s = calloc(1, sizeof *s);
    if (!s)
        return ws_error_oom(err);
    s->o = *o;
    s->mb = mb;
    *out = s;
    ws_bb_oq_opts qo = {
        .repos = o->repos,
        .nrepos = o->nrepos,
        .cfg = o->cfg,
        .id = o->id,
        .codec = o->codec,
        .level = o->level,
        .parallel = o->parallel,
        .max_inflight = o->max_inflight,
        .gather_max = o->pack_size,
        .committed = pending_done,
        .tag_free = pending_free,
        .arg = s,
    };
    return ws_bb_oq_new(&qo, &s->q, err);
}

void ws_bb_store_free(ws_bb_store *s)
{
    if (!s)
        return;
    /* s->part, once queued, is the queue's; the pack is queued only when closed */
    ws_bb_oq_free(s->q);
    ws_bb_oq_drop(s->pack);
    ws_stage_free(s->hasher);
    free(s->extents);
    free(s);
}

void ws_bb_store_set_tablespace(ws_bb_store *s, uint32_t oid)
{
    s->tablespace = oid;
}

void ws_bb_store_get_stats(ws_bb_store *s, ws_bb_store_stats *out)
{
    ws_bb_oq_stats qs;
    ws_bb_oq_get_stats(s->q, &qs);
    out->files = s->files;
    out->bytes = s->bytes;
    out->objects = qs.objects;
    out->stored_bytes = qs.stored_bytes;
    out->peak_inflight = qs.peak_inflight;
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
            return ws_error_oom(err);
        s->extents = ne;
        s->ext_cap = cap;
    }
    memcpy(s->extents + s->ext_len, one, (size_t)n + 1);
    s->ext_len += (size_t)n;
    return 0;
}

/* The path the server's manifest gives a file: tablespace files under pg_tblspc/<oid>/. */
static void server_path(const ws_manifest_entry *e, char *out, size_t len)
{
    if (e->tablespace)
        snprintf(out, len, "pg_tblspc/%" PRIu32 "/%s", e->tablespace, e->path);
    else
        snprintf(out, len, "%s", e->path);
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
    s->crc = 0;
    s->packed = te->size > 0 && te->size < s->o.pack_threshold;
    if (te->size == 0)
        return 0;
    if (s->packed) {
        if (s->pack && ws_bb_obj_written(s->pack) + te->size > s->o.pack_size) {
            ws_bb_obj *full = s->pack;
            s->pack = NULL;
            if (ws_bb_oq_close(s->q, full, err) < 0)
                return -1;
        }
        if (!s->pack && ws_bb_oq_open(s->q, NULL, 0, 0, &s->pack, err) < 0)
            return -1;
        if (ext_add(s, ws_bb_obj_rel(s->pack), ws_bb_obj_written(s->pack), te->size, err) < 0)
            return -1;
    } else {
        s->part_left = te->size < s->o.part_size ? te->size : s->o.part_size;
        if (ws_bb_oq_open(s->q, NULL, s->part_left, 1, &s->part, err) < 0 ||
            ext_add(s, ws_bb_obj_rel(s->part), 0, s->part_left, err) < 0)
            return -1;
    }
    if (s->packed || te->size > s->o.part_size) {
        if (!(s->hasher = ws_stage_sha256_new(NULL)))
            return ws_error_oom(err);
    }
    return 0;
}

/* Closes the current part (it is now the writers'). */
static int part_close(ws_bb_store *s, ws_error *err)
{
    ws_bb_obj *j = s->part;
    s->part = NULL;
    return ws_bb_oq_close(s->q, j, err);
}

static int on_data(void *arg, const void *buf, size_t len, ws_error *err)
{
    ws_bb_store *s = arg;
    if (!s->in_file)
        return 0;
    s->file_left -= len;
    s->bytes += len;
    if (s->o.verify)
        s->crc = ws_bb_crc32c(s->crc, buf, len);
    if (s->hasher && ws_stage_write(s->hasher, buf, len, err) < 0)
        return -1;
    if (s->packed)
        return ws_bb_oq_put(s->q, s->pack, buf, len, err);
    const char *p = buf;
    while (len > 0) {
        if (s->part_left == 0) {
            /* the current part is full: hand it over and start the next */
            if (part_close(s, err) < 0)
                return -1;
            uint64_t rest = s->file_left + len;
            s->part_left = rest < s->o.part_size ? rest : s->o.part_size;
            if (ws_bb_oq_open(s->q, NULL, s->part_left, 1, &s->part, err) < 0 ||
                ext_add(s, ws_bb_obj_rel(s->part), 0, s->part_left, err) < 0)
                return -1;
        }
        size_t n = len < s->part_left ? len : (size_t)s->part_left;
        if (ws_bb_oq_put(s->q, s->part, p, n, err) < 0)
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
    e->extents = s->ext_len ? s->extents : "-";
    s->files++;
    char path[WS_MANIFEST_PATH_MAX + 32];
    server_path(e, path, sizeof path);
    if (e->size > 0 && !s->hasher) {
        /* exactly one object: its digest is the object's, known once it is committed */
        pending_file *p = calloc(1, sizeof *p);
        if (!p || !(p->path = strdup(path))) {
            free(p);
            return ws_error_oom(err);
        }
        p->size = e->size;
        p->crc = s->crc;
        if (ws_manifest_add_pending(s->mb, e, &p->slot, err) < 0) {
            pending_free(p);
            return -1;
        }
        ws_bb_obj_set_tag(s->part, p);
        return part_close(s, err);
    }
    unsigned char digest[32];
    if (e->size == 0) {
        ws_sha256("", 0, digest);
    } else {
        uint64_t n;
        if (!s->packed && part_close(s, err) < 0)
            return -1;
        if (ws_stage_finish(s->hasher, err) < 0)
            return -1;
        ws_stage_sha256_result(s->hasher, digest, &n);
        ws_stage_free(s->hasher);
        s->hasher = NULL;
    }
    ws_sha256_hex(digest, e->sha256);
    if (s->o.verify && ws_bb_verify_add(s->o.verify, path, e->size, digest, s->crc, err) < 0)
        return -1;
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
    if (s->part)
        return ws_error_set(err, WS_EINTERNAL, "blob inside a file");
    return ws_bb_oq_open(s->q, name, 0, 1, &s->part, err);
}

int ws_bb_store_blob_write(ws_bb_store *s, const void *buf, size_t len, ws_error *err)
{
    if (!s->part)
        return ws_error_set(err, WS_EINTERNAL, "blob data without a blob");
    return ws_bb_oq_put(s->q, s->part, buf, len, err);
}

int ws_bb_store_blob_end(ws_bb_store *s, ws_error *err)
{
    if (!s->part)
        return ws_error_set(err, WS_EINTERNAL, "blob end without a blob");
    return part_close(s, err);
}

int ws_bb_store_finish(ws_bb_store *s, ws_error *err)
{
    if (s->in_file || s->part)
        return ws_error_set(err, WS_EINTERNAL, "backup stream ended inside a file");
    if (s->pack) {
        ws_bb_obj *j = s->pack;
        s->pack = NULL;
        if (ws_bb_oq_close(s->q, j, err) < 0)
            return -1;
    }
    return ws_bb_oq_finish(s->q, err);
}
