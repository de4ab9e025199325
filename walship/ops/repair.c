/*
 * repair.c — `walship repo repair [--dry-run]`: re-derives a lost walship.repo.
 *
 * push and basebackup refuse to create an identity in a repository that already holds WAL
 * or backups (repo.h, ws_repo_identity_ensure): the file was removed (an S3 lifecycle rule,
 * a cleanup) and a fresh one would silently drop the check that the stored WAL belongs to
 * the cluster. This command puts it back from what the objects say: the first page header
 * of every stored segment and .partial segment (system identifier, segment size, major
 * version from xlp_magic) and every backup manifest. It refuses when they disagree (two
 * clusters wrote into the repository) or when nothing carries an identity, and writes the
 * file create-only-if-absent, so that it never replaces one.
 *
 * Exit: 0 repaired, or nothing to repair; 1 refused or failed; 2 usage or config error.
 */
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/catalog.h"
#include "walship/repo/keys.h"
#include "walship/repo/open.h"
#include "walship/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDENTITIES 8

/* One identity the objects claim, how many claim it and the first that did. */
typedef struct claim {
    ws_repo_identity id;
    uint64_t segments, backups;
    char example[128];
} claim;

typedef struct evidence {
    claim c[MAX_IDENTITIES];
    int n;
    int more;              /* identities beyond MAX_IDENTITIES */
    uint64_t unreadable;   /* segments whose first page could not be read */
    char first_bad[900];   /* the first such failure */
    uint64_t history_only; /* timeline history files: they carry no identity */
} evidence;

static int same_identity(const ws_repo_identity *a, const ws_repo_identity *b)
{
    return a->sysid == b->sysid && a->pg_version == b->pg_version && a->seg_size == b->seg_size;
}

static void add_claim(evidence *ev, const ws_repo_identity *id, int backup, const char *where)
{
    for (int i = 0; i < ev->n; i++)
        if (same_identity(&ev->c[i].id, id)) {
            if (backup)
                ev->c[i].backups++;
            else
                ev->c[i].segments++;
            return;
        }
    if (ev->n == MAX_IDENTITIES) {
        ev->more = 1;
        return;
    }
    claim *c = &ev->c[ev->n++];
    memset(c, 0, sizeof *c);
    c->id = *id;
    if (backup)
        c->backups = 1;
    else
        c->segments = 1;
    snprintf(c->example, sizeof c->example, "%s", where);
}

/* ---- WAL: the names first (one listing), then each segment's first page ---- */

typedef struct names {
    ws_wal_name *v;
    size_t n, cap;
    int oom;
} names;

static int wal_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    names *l = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    if (!base || ws_wal_parse_name(base + 1, &n, &e) < 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        ws_wal_name *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) {
            l->oom = 1;
            return 1;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return 0;
}

static int gather_wal(ws_repo *r, evidence *ev, ws_error *err)
{
    names l = {0};
    if (ws_storage_list(ws_repo_storage(r), WS_KEY_WAL_PREFIX, wal_cb, &l, err) < 0) {
        free(l.v);
        return -1;
    }
    if (l.oom) {
        free(l.v);
        return ws_error_oom(err);
    }
    for (size_t i = 0; i < l.n; i++) {
        const ws_wal_name *n = &l.v[i];
        if (n->kind == WS_WAL_HISTORY)
            ev->history_only++;
        if (n->kind != WS_WAL_SEGMENT && n->kind != WS_WAL_PARTIAL)
            continue;
        ws_repo_identity id;
        ws_error e;
        ws_error_clear(&e);
        if (ws_repo_wal_identity(r, n, &id, &e) < 0) {
            if (e.code == WS_ENOMEM || e.code == WS_ETRANSIENT || e.code == WS_EAUTH ||
                e.code == WS_ECONFIG) { /* the key: wrong, missing, or no keyring */
                *err = e;
                free(l.v);
                return -1;
            }
            if (!ev->unreadable++)
                snprintf(ev->first_bad, sizeof ev->first_bad, "%s", e.msg);
            continue;
        }
        add_claim(ev, &id, 0, n->name);
    }
    free(l.v);
    return 0;
}

static int gather_backups(ws_repo *r, evidence *ev, ws_error *err)
{
    ws_catalog cat;
    if (ws_catalog_load(r, &cat, err) < 0)
        return -1;
    for (int i = 0; i < cat.n; i++) {
        const ws_manifest_info *m = &cat.backups[i];
        ws_repo_identity id = {WS_REPO_FORMAT, m->sysid, m->pg_version_num / 10000, m->seg_size};
        char where[128];
        snprintf(where, sizeof where, "backup %s", m->id);
        add_claim(ev, &id, 1, where);
    }
    ws_catalog_free(&cat);
    return 0;
}

/* ---- one repository ---- */

static void print_identity(const char *what, const ws_repo_identity *id)
{
    printf("%ssystem-identifier = %" PRIu64 ", pg-version = %d, wal-segment-size = %" PRIu32 "\n",
           what, id->sysid, id->pg_version, id->seg_size);
}

static int refuse_disagreement(ws_repo *r, const evidence *ev)
{
    printf("repository %s: the stored objects disagree about the cluster:\n", ws_repo_describe(r));
    for (int i = 0; i < ev->n; i++) {
        const claim *c = &ev->c[i];
        printf("  %" PRIu64 " segment(s), %" PRIu64 " backup(s), e.g. %s: ", c->segments,
               c->backups, c->example);
        print_identity("", &c->id);
    }
    if (ev->more)
        printf("  (and more)\n");
    ws_log_error("not repairing %s: its WAL and backups belong to %d different clusters; "
                 "walship.repo would vouch for only one of them. HINT: move the other "
                 "cluster's objects to its own repository (the keys above), then run walship "
                 "repo repair again",
                 ws_repo_describe(r), ev->n + ev->more);
    return WS_EXIT_FAIL;
}

static int repair_one(ws_repo *r, int dry_run)
{
    const char *desc = ws_repo_describe(r);
    ws_error err;
    ws_error_clear(&err);
    ws_repo_identity have;
    if (ws_repo_identity_get(r, &have, &err) == 0) {
        printf("repository %s: walship.repo is present, nothing to repair: ", desc);
        print_identity("", &have);
        return WS_EXIT_OK;
    }
    if (err.code != WS_ENOENT) {
        ws_error_prefix(&err, "not repairing %s", desc);
        ws_error_hint(&err, "walship.repo exists but cannot be used; walship never replaces "
                            "it: move it aside (keep a copy), then run walship repo repair");
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    evidence ev;
    memset(&ev, 0, sizeof ev);
    ws_error_clear(&err);
    if (gather_wal(r, &ev, &err) < 0 || gather_backups(r, &ev, &err) < 0) {
        ws_error_prefix(&err, "not repairing %s: reading its objects", desc);
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    if (ev.unreadable)
        ws_log_warn("%s: %" PRIu64 " segment(s) could not be read and were not counted; the "
                    "first: %s",
                    desc, ev.unreadable, ev.first_bad);
    if (ev.n > 1 || ev.more)
        return refuse_disagreement(r, &ev);
    if (ev.n == 0) {
        char found[256];
        int holds = ws_repo_holds_objects(r, found, sizeof found, &err);
        if (holds < 0) {
            ws_log_err(WS_LOG_ERROR, &err);
            return WS_EXIT_FAIL;
        }
        if (!holds && !ev.unreadable) {
            printf("repository %s: no walship.repo and no WAL segment or backup: nothing to "
                   "repair; the first push of a segment creates walship.repo\n",
                   desc);
            return WS_EXIT_OK;
        }
        ws_log_error("not repairing %s: it holds objects (%s) but no readable segment or "
                     "backup manifest says which cluster wrote them. HINT: write walship.repo "
                     "by hand as docs/repository-format.md describes, with the values of "
                     "pg_controldata on the cluster",
                     desc, holds ? found : "unreadable segments");
        return WS_EXIT_FAIL;
    }
    const claim *c = &ev.c[0];
    printf("repository %s: walship.repo is missing; derived from %" PRIu64
           " segment(s) and %" PRIu64 " backup manifest(s) that agree:\n  ",
           desc, c->segments, c->backups);
    print_identity("", &c->id);
    if (dry_run) {
        printf("dry run: walship.repo not written\n");
        return WS_EXIT_OK;
    }
    if (ws_repo_identity_create(r, &c->id, "walship repo repair", &err) < 0) {
        if (err.code == WS_EEXIST) {
            ws_log_error("not repairing %s: walship.repo appeared meanwhile (another walship "
                         "wrote it); run walship repo repair again to see it",
                         desc);
            return WS_EXIT_FAIL;
        }
        ws_error_prefix(&err, "writing walship.repo into %s", desc);
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    printf("wrote %s/walship.repo\n", desc);
    return WS_EXIT_OK;
}

int ws_cmd_repo(const ws_config *cfg)
{
    if (ws_config_nargs(cfg) != 1 || strcmp(ws_config_arg(cfg, 0), "repair") != 0) {
        ws_log_error("usage: walship repo repair [--dry-run]");
        return WS_EXIT_USAGE;
    }
    ws_error err;
    ws_error_clear(&err);
    ws_repo **repos;
    int nrepos;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    int dry_run = ws_config_flag(cfg, "dry-run");
    int rc = WS_EXIT_OK;
    for (int i = 0; i < nrepos; i++)
        if (repair_one(repos[i], dry_run) != WS_EXIT_OK)
            rc = WS_EXIT_FAIL;
    fflush(stdout);
    ws_cmd_close_repos(repos, nrepos);
    return rc;
}
