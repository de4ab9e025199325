/* catalog.c — the backups of a repository (catalog.h). */
#include "walship/repo/catalog.h"
#include "walship/repo/lock.h"
#include "walship/repo/pin.h"
#include "walship/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What one listing of backup/ says about one id. */
typedef struct entry {
    char id[WS_MANIFEST_ID_MAX];
    int manifest, unreadable, pinned;
    ws_catalog_incomplete inc;
    ws_error err; /* unreadable: why */
} entry;

typedef struct scan {
    entry *v;
    int n, cap;
    int oom;
} scan;

/* The entry of the id that key (below backup/) belongs to; NULL if key names none. */
static entry *entry_of(scan *s, const char *key)
{
    char id[WS_MANIFEST_ID_MAX];
    if (ws_key_backup_id(key, id, sizeof id) < 0)
        return NULL;
    size_t len = strlen(id);
    /* keys of one backup usually come together: the last entry first */
    for (int i = s->n - 1; i >= 0; i--)
        if (strlen(s->v[i].id) == len && memcmp(s->v[i].id, id, len) == 0)
            return &s->v[i];
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 32;
        entry *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return NULL;
        }
        s->v = nv;
        s->cap = cap;
    }
    entry *e = &s->v[s->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, len);
    return e;
}

static int object_cb(void *arg, const char *key, const ws_storage_info *info)
{
    scan *s = arg;
    entry *e = entry_of(s, key);
    if (!e)
        return s->oom;
    const char *name = ws_key_backup_name(key);
    if (strcmp(name, WS_MANIFEST_NAME) == 0)
        e->manifest = 1;
    else if (strcmp(name, WS_CATALOG_STARTED_NAME) == 0)
        e->inc.started = 1;
    else if (strcmp(name, WS_BACKUP_LOCK_NAME) == 0)
        e->inc.locked = 1;
    else if (strcmp(name, WS_CATALOG_EXPIRING_NAME) == 0)
        e->inc.expiring = 1;
    else if (strcmp(name, WS_PIN_NAME) == 0)
        e->pinned = 1;
    if (info->mtime > e->inc.newest_mtime)
        e->inc.newest_mtime = info->mtime;
    e->inc.objects++;
    e->inc.bytes += info->size;
    return 0;
}

static int tmp_cb(void *arg, const char *key, const ws_storage_info *info)
{
    scan *s = arg;
    entry *e = entry_of(s, key);
    if (!e)
        return s->oom;
    e->inc.tmp_files++;
    e->inc.tmp_bytes += info->size;
    if (info->mtime > e->inc.newest_mtime)
        e->inc.newest_mtime = info->mtime;
    return 0;
}

/* A part of backup/ that cannot be listed: the backup it belongs to is unreadable. */
static int unlistable_cb(void *arg, const char *prefix, const ws_error *err)
{
    scan *s = arg;
    entry *e = entry_of(s, prefix);
    if (!e)
        return s->oom ? 1 : 0; /* backup/ itself: the caller's listing fails */
    if (!e->unreadable) {
        e->unreadable = 1;
        e->err = *err;
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->id, ((const entry *)b)->id);
}

static int cmp_backup(const void *a, const void *b)
{
    const ws_manifest_info *x = a, *y = b;
    if (x->start_time != y->start_time)
        return x->start_time < y->start_time ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* Sorts each entry into complete, incomplete or unreadable. */
static int classify(ws_repo *r, scan *s, ws_catalog *out)
{
    int n = s->n ? s->n : 1;
    out->backups = calloc((size_t)n, sizeof *out->backups);
    out->incomplete = calloc((size_t)n, sizeof *out->incomplete);
    out->incomplete_info = calloc((size_t)n, sizeof *out->incomplete_info);
    out->unreadable = calloc((size_t)n, sizeof *out->unreadable);
    out->pinned = calloc((size_t)n, 1);
    if (!out->backups || !out->incomplete || !out->incomplete_info || !out->unreadable ||
        !out->pinned)
        return -1;
    for (int i = 0; i < s->n; i++) {
        entry *e = &s->v[i];
        if (!e->unreadable && e->manifest) {
            ws_error_clear(&e->err);
            if (ws_manifest_read(r, e->id, &out->backups[out->n], NULL, NULL, &e->err) == 0) {
                out->n++;
                continue;
            }
            e->unreadable = 1;
        }
        if (e->unreadable) {
            ws_catalog_unreadable *u = &out->unreadable[out->nunreadable++];
            snprintf(u->id, sizeof u->id, "%s", e->id);
            u->err = e->err;
            ws_error_prefix(&u->err, "backup %s cannot be read", e->id);
            ws_log_err(WS_LOG_WARN, &u->err);
            continue;
        }
        if (!(out->incomplete[out->nincomplete] = strdup(e->id)))
            return -1;
        out->incomplete_info[out->nincomplete++] = e->inc;
    }
    if (out->n)
        qsort(out->backups, (size_t)out->n, sizeof *out->backups, cmp_backup);
    for (int i = 0; i < out->n; i++) {
        entry key;
        memset(&key, 0, sizeof key);
        snprintf(key.id, sizeof key.id, "%s", out->backups[i].id);
        const entry *e = s->n ? bsearch(&key, s->v, (size_t)s->n, sizeof *s->v, cmp_entry) : NULL;
        out->pinned[i] = e && e->pinned;
    }
    return 0;
}

int ws_catalog_load(ws_repo *r, ws_catalog *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    scan s;
    memset(&s, 0, sizeof s);
    ws_storage *st = ws_repo_storage(r);
    int rc = -1;
    /* the objects, then the driver's temporary files: a backup killed before its first
     * commit may have nothing else (and on posix, those from before walship.started) */
    if (ws_storage_list_ex(st, WS_KEY_BACKUP_PREFIX, 0, object_cb, unlistable_cb, &s, err) < 0 ||
        ws_storage_list_ex(st, WS_KEY_BACKUP_PREFIX, WS_STORAGE_LIST_TMP, tmp_cb, unlistable_cb, &s,
                           err) < 0)
        goto out;
    if (s.n > 1)
        qsort(s.v, (size_t)s.n, sizeof *s.v, cmp_entry);
    if (s.oom || classify(r, &s, out) < 0) {
        ws_error_oom(err);
        goto out;
    }
    rc = 0;
out:
    free(s.v);
    if (rc < 0)
        ws_catalog_free(out);
    return rc;
}

void ws_catalog_free(ws_catalog *c)
{
    free(c->backups);
    for (int i = 0; c->incomplete && i < c->nincomplete; i++)
        free(c->incomplete[i]);
    free(c->incomplete);
    free(c->incomplete_info);
    free(c->unreadable);
    free(c->pinned);
    memset(c, 0, sizeof *c);
}

const ws_manifest_info *ws_catalog_find(const ws_catalog *c, const char *id)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->backups[i].id, id) == 0)
            return &c->backups[i];
    return NULL;
}

int ws_catalog_mark_started(ws_repo **repos, int n, const ws_manifest_info *info, ws_error *err)
{
    char key[128], text[1024], when[32];
    if (ws_manifest_key(info->id, WS_CATALOG_STARTED_NAME, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINTERNAL, "backup id %s too long", info->id);
    ws_manifest_format_time(info->start_time, when);
    int len = snprintf(text, sizeof text,
                       "# walship backup in progress: it exists only once walship.manifest does\n"
                       "walship-backup-started = 1\nid = %s\nsystem-identifier = %" PRIu64
                       "\npg-version-num = %d\nwal-segment-size = %" PRIu32
                       "\nstart-lsn = %X/%X\nstart-timeline = %" PRIu32
                       "\nstarted = %s\ncreated-by = walship %s\n",
                       info->id, info->sysid, info->pg_version_num, info->seg_size,
                       (unsigned)(info->start_lsn >> 32), (unsigned)info->start_lsn,
                       info->start_tli, when, WS_VERSION);
    if (len < 0 || (size_t)len >= sizeof text)
        return ws_error_set(err, WS_EINTERNAL, "backup marker too long");
    for (int i = 0; i < n; i++)
        if (ws_storage_put_small(ws_repo_storage(repos[i]), key, WS_STORAGE_WRITE_EXCL, text,
                                 (size_t)len, NULL, err) < 0) {
            ws_error_prefix(err, "marking backup %s started in %s", info->id,
                            ws_repo_describe(repos[i]));
            return -1;
        }
    return 0;
}

/* ---- removing a backup ---- */

typedef struct key_list {
    char **keys;
    uint64_t *sizes;
    size_t n, cap;
    int oom;
} key_list;

static int collect_key(void *arg, const char *key, const ws_storage_info *info)
{
    key_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **nk = realloc(l->keys, cap * sizeof *nk);
        if (nk)
            l->keys = nk;
        uint64_t *ns = realloc(l->sizes, cap * sizeof *ns);
        if (ns)
            l->sizes = ns;
        if (!nk || !ns) {
            l->oom = 1;
            return 1;
        }
        l->cap = cap;
    }
    if (!(l->keys[l->n] = strdup(key))) {
        l->oom = 1;
        return 1;
    }
    l->sizes[l->n++] = info->size;
    return 0;
}

/* 0: the manifest, 1: data objects, 2: the lock, 3: the started marker, 4: the expiring
 * marker. */
static int removal_rank(const char *key)
{
    const char *name = ws_key_backup_name(key);
    if (!name)
        return 1;
    if (strcmp(name, WS_MANIFEST_NAME) == 0)
        return 0;
    if (strcmp(name, WS_BACKUP_LOCK_NAME) == 0)
        return 2;
    if (strcmp(name, WS_CATALOG_STARTED_NAME) == 0)
        return 3;
    if (strcmp(name, WS_CATALOG_EXPIRING_NAME) == 0)
        return 4;
    return 1;
}

int ws_catalog_remove(ws_repo *r, const char *id, ws_catalog_removed *out, ws_error *err)
{
    ws_catalog_removed dummy;
    if (!out)
        out = &dummy;
    memset(out, 0, sizeof *out);
    char prefix[WS_MANIFEST_ID_MAX + 16];
    if (ws_key_backup_prefix(id, prefix, sizeof prefix) < 0)
        return ws_error_set(err, WS_EINTERNAL, "invalid backup id \"%s\"", id);
    ws_storage *st = ws_repo_storage(r);
    key_list l = {0};
    int rc = -1;
    if (ws_storage_list(st, prefix, collect_key, &l, err) < 0)
        goto done;
    if (l.oom) {
        ws_error_oom(err);
        goto done;
    }
    int has_manifest = 0, has_marker = 0;
    for (size_t i = 0; i < l.n; i++) {
        has_manifest |= removal_rank(l.keys[i]) == 0;
        has_marker |= removal_rank(l.keys[i]) == 4;
    }
    if (has_manifest && !has_marker) {
        /* durable before the manifest goes: a crash in between leaves a backup that says it
         * is being removed */
        char mk[WS_MANIFEST_ID_MAX + 48];
        static const char text[] = "# walship: this backup is being removed\n";
        ws_storage_info mi = {.size = sizeof text - 1};
        if (ws_key_backup_object(id, WS_CATALOG_EXPIRING_NAME, mk, sizeof mk) < 0 ||
            ws_storage_put_small(st, mk, 0, text, sizeof text - 1, NULL, err) < 0)
            goto done;
        if (collect_key(&l, mk, &mi) != 0) {
            ws_error_oom(err);
            goto done;
        }
    }
    /* by rank, stable within one: one pass per rank into an ordered array */
    const char **order = malloc((l.n ? l.n : 1) * sizeof *order);
    uint64_t *osize = malloc((l.n ? l.n : 1) * sizeof *osize);
    if (!order || !osize) {
        free(order);
        free(osize);
        ws_error_oom(err);
        goto done;
    }
    size_t k = 0, rank_end[5] = {0};
    for (int rank = 0; rank < 5; rank++) {
        for (size_t i = 0; i < l.n; i++)
            if (removal_rank(l.keys[i]) == rank) {
                order[k] = l.keys[i];
                osize[k++] = l.sizes[i];
            }
        rank_end[rank] = k;
    }
    size_t pos = 0;
    rc = 0;
    for (int rank = 0; rank < 5 && rc == 0; rank++) {
        size_t n = rank_end[rank] - pos, done = 0;
        if (n == 0)
            continue;
        /* the manifest alone (posix makes a single remove durable before returning) */
        if (rank == 0) {
            rc = ws_storage_remove(st, order[pos], err);
            done = rc == 0 ? 1 : 0;
            out->had_manifest = rc == 0;
        } else {
            rc = ws_storage_remove_many(st, order + pos, n, &done, err);
        }
        for (size_t i = 0; i < done; i++) {
            out->objects++;
            out->bytes += osize[pos + i];
        }
        pos += n;
    }
    free(order);
    free(osize);
    if (rc < 0)
        ws_error_prefix(err, "removing backup %s from %s", id, ws_repo_describe(r));
done:
    for (size_t i = 0; i < l.n; i++)
        free(l.keys[i]);
    free(l.keys);
    free(l.sizes);
    return rc;
}
