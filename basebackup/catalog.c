/* catalog.c — the backups of a repository (catalog.h). */
#include "basebackup/catalog.h"
#include "walship/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ids {
    char **v;
    int n, cap;
} ids;

static int ids_add(ids *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static void ids_free(ids *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and removes repeats. */
static void ids_unique(ids *l)
{
    if (l->n == 0)
        return;
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_str);
    int o = 0;
    for (int i = 0; i < l->n; i++) {
        if (o > 0 && strcmp(l->v[o - 1], l->v[i]) == 0) {
            free(l->v[i]);
            continue;
        }
        l->v[o++] = l->v[i];
    }
    l->n = o;
}

typedef struct scan {
    ids all, manifests;
    int oom;
} scan;

static int backup_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    scan *s = arg;
    const char *id = key + strlen("backup/");
    const char *slash = strchr(id, '/');
    if (!slash || (size_t)(slash - id) >= WS_MANIFEST_ID_MAX)
        return 0;
    char buf[WS_MANIFEST_ID_MAX];
    snprintf(buf, sizeof buf, "%.*s", (int)(slash - id), id);
    if (strcmp(slash + 1, WS_MANIFEST_NAME) == 0 && ids_add(&s->manifests, buf) < 0)
        s->oom = 1;
    /* keys of one backup usually come together: skip the cheap repeats here */
    for (int i = s->all.n - 1; i >= 0 && i >= s->all.n - 4; i--)
        if (strcmp(s->all.v[i], buf) == 0)
            return 0;
    if (ids_add(&s->all, buf) < 0)
        s->oom = 1;
    return 0;
}

static int cmp_backup(const void *a, const void *b)
{
    const ws_manifest_info *x = a, *y = b;
    if (x->start_time != y->start_time)
        return x->start_time < y->start_time ? -1 : 1;
    return strcmp(x->id, y->id);
}

int ws_catalog_load(ws_repo *r, ws_catalog *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    scan s;
    memset(&s, 0, sizeof s);
    ids incomplete = {0};
    int rc = -1;
    if (ws_storage_list(ws_repo_storage(r), "backup/", backup_cb, &s, err) < 0)
        goto out;
    if (s.oom)
        goto oom;
    ids_unique(&s.all);
    ids_unique(&s.manifests);
    out->backups = calloc((size_t)s.manifests.n + 1, sizeof *out->backups);
    if (!out->backups)
        goto oom;
    for (int i = 0; i < s.all.n; i++) {
        const char *id = s.all.v[i];
        if (!s.manifests.n ||
            !bsearch(&id, s.manifests.v, (size_t)s.manifests.n, sizeof *s.manifests.v, cmp_str)) {
            if (ids_add(&incomplete, id) < 0)
                goto oom;
            continue;
        }
        ws_error e;
        ws_error_clear(&e);
        if (ws_manifest_read(r, id, &out->backups[out->n], NULL, NULL, &e) < 0) {
            ws_error_prefix(&e, "backup %s", id);
            ws_log_err(WS_LOG_WARN, &e);
            continue;
        }
        out->n++;
    }
    if (out->n)
        qsort(out->backups, (size_t)out->n, sizeof *out->backups, cmp_backup);
    out->incomplete = incomplete.v;
    out->nincomplete = incomplete.n;
    incomplete.v = NULL;
    incomplete.n = 0;
    rc = 0;
    goto out;
oom:
    ws_error_set(err, WS_ENOMEM, "out of memory");
out:
    ids_free(&s.all);
    ids_free(&s.manifests);
    ids_free(&incomplete);
    if (rc < 0)
        ws_catalog_free(out);
    return rc;
}

void ws_catalog_free(ws_catalog *c)
{
    free(c->backups);
    for (int i = 0; i < c->nincomplete; i++)
        free(c->incomplete[i]);
    free(c->incomplete);
    memset(c, 0, sizeof *c);
}

const ws_manifest_info *ws_catalog_find(const ws_catalog *c, const char *id)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->backups[i].id, id) == 0)
            return &c->backups[i];
    return NULL;
}
