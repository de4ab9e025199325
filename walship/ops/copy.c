/*
 * copy.c — `walship copy` (copy.h): one repository's backups and WAL into another.
 *
 *   1. options checked (nothing is opened before they are right);
 *   2. the source's identity, and the target's: equal, or created from the source's on an
 *      empty target;
 *   3. --wal: every key under wal/ and gap/ of the source, copied where the target lacks it;
 *   4. each backup chosen: its objects (and start marker), then, only if every one is on the
 *      target, its walship.manifest;
 *   5. a summary (text or --json); exit 1 if anything was not copied.
 *
 * An object is copied by reading its plaintext from the source through the repository layer
 * (which verifies header, length and SHA-256 as it streams) into an object writer of the
 * target (create-only-if-absent, the same kind and codec). A copy that fails verification is
 * aborted, never committed. Before reading, both headers are compared (a HEAD or a ranged
 * read each): an object already on the target with the same SHA-256 is not read at all.
 */
#include "walship/ops/copy.h"
#include "walship/ops/ops.h"

#include "walship/repo/keys.h"
#include "walship/repo/catalog.h"
#include "walship/repo/catchup.h"
#include "walship/repo/manifest.h"
#include "restore/restore.h" /* ws_rs_parallel: the bounded worker pool restore uses */
#include "walship/bytes.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/open.h"
#include "walship/storage/storage.h"
#include "walship/log.h"
#include "walship/progress.h"
#include "walship/repo/repo.h"
#include "walship/wal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum status {
    ST_PENDING = 0,
    ST_COPIED,    /* written now */
    ST_IDENTICAL, /* already on the target with the same SHA-256 */
    ST_WOULD,     /* --dry-run: would be copied */
    ST_CONFLICT,  /* a different object under the key on the target: left alone */
    ST_FAILED,    /* not copied: the source copy is bad, or a storage error */
} status;

typedef struct item {
    char *key;
    uint64_t size; /* stored bytes on the source, from its listing */
    status st;
} item;

typedef struct items {
    item *v;
    int n, cap;
    int oom;
    const char *skip; /* a key not to list (the manifest, copied last) */
} items;

typedef struct counts {
    atomic_int copied, identical, would, conflict, failed;
    atomic_uint_fast64_t bytes; /* stored bytes of the objects copied now */
} counts;

typedef struct job {
    ws_repo ***repos; /* per worker: every configured repository */
    int from, to;
    int dry;
    int level;
    item *v;
    int n;
    counts *c;
    atomic_uint_fast64_t done; /* source bytes dealt with, for progress */
    ws_progress progress;
} job;

static int add_item(void *arg, const char *key, const ws_storage_info *info)
{
    items *s = arg;
    if (s->skip && strcmp(key, s->skip) == 0)
        return 0;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        item *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) {
            s->oom = 1;
            return 1;
        }
        s->v = nv;
        s->cap = cap;
    }
    item *it = &s->v[s->n];
    if (!(it->key = strdup(key))) {
        s->oom = 1;
        return 1;
    }
    it->size = info->size;
    it->st = ST_PENDING;
    s->n++;
    return 0;
}

static void items_free(items *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i].key);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const item *)a)->key, ((const item *)b)->key);
}

/* Every key under prefix in r, sorted (WAL oldest first: a killed copy leaves the archive
 * without holes at its start). */
static int list_keys(ws_repo *r, const char *prefix, items *s, ws_error *err)
{
    if (ws_storage_list(ws_repo_storage(r), prefix, add_item, s, err) < 0 && !s->oom)
        return -1;
    if (s->oom)
        return ws_error_oom(err);
    if (s->n > 1)
        qsort(s->v, (size_t)s->n, sizeof *s->v, cmp_item);
    return 0;
}

/* ---- one object ---- */

static int is_marker(const char *key)
{
    const char *slash = strrchr(key, '/');
    return slash && strcmp(slash + 1, WS_CATALOG_STARTED_NAME) == 0 &&
           strncmp(key, WS_KEY_BACKUP_PREFIX, strlen(WS_KEY_BACKUP_PREFIX)) == 0;
}

static status conflict(ws_repo *dst, const char *key, const unsigned char want[32],
                       const unsigned char have[32])
{
    char a[65], b[65];
    ws_sha256_hex(want, a);
    ws_sha256_hex(have, b);
    ws_log_error("%s already holds a different %s (SHA-256 %s, the source's is %s): left alone, "
                 "not copied",
                 ws_repo_describe(dst), key, b, a);
    return ST_CONFLICT;
}

static status failed(ws_repo *r, const char *key, ws_error *e)
{
    ws_log_error("%s: %s: %s%s%s: not copied", ws_repo_describe(r), key, e->msg,
                 e->hint[0] ? " HINT: " : "", e->hint);
    return ST_FAILED;
}

/* The start marker is a small text object, not in the object format: copied byte for byte. */
static status copy_marker(ws_repo *src, ws_repo *dst, const char *key, int dry)
{
    ws_error e;
    ws_error_clear(&e);
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    status st;
    if (ws_storage_get_small(ws_repo_storage(src), key, 64 << 10, &a, &alen, &e) < 0) {
        st = failed(src, key, &e);
    } else if (ws_storage_get_small(ws_repo_storage(dst), key, 64 << 10, &b, &blen, &e) == 0) {
        if (blen == alen && memcmp(a, b, alen) == 0) {
            st = ST_IDENTICAL;
        } else { /* another backup was started under this id there */
            ws_log_error("%s already holds a different %s (another backup started under this "
                         "id): left alone, the backup is not copied",
                         ws_repo_describe(dst), key);
            st = ST_CONFLICT;
        }
    } else if (e.code != WS_ENOENT) {
        st = failed(dst, key, &e);
    } else if (dry) {
        st = ST_WOULD;
    } else {
        ws_error_clear(&e);
        if (ws_storage_put_small(ws_repo_storage(dst), key, WS_STORAGE_WRITE_EXCL, a, alen, NULL,
                                 &e) < 0)
            st = e.code == WS_EEXIST ? ST_IDENTICAL : failed(dst, key, &e);
        else
            st = ST_COPIED;
    }
    free(a);
    free(b);
    return st;
}

/* The conflict message: plaintext SHA-256 on both sides where the target's is known; an
 * encrypted target keeps only a keyed hash, which is named as such. */
static status conflict_with(ws_repo *dst, const char *key, const unsigned char want[32],
                            const ws_objhdr *t)
{
    if (!t->encryption)
        return conflict(dst, key, want, t->sha256);
    char a[65];
    ws_sha256_hex(want, a);
    ws_log_error("%s already holds a different %s (%" PRIu64 " bytes whose keyed hash does not "
                 "match the source's plaintext, SHA-256 %s): left alone, not copied",
                 ws_repo_describe(dst), key, t->length, a);
    return ST_CONFLICT;
}

static status copy_object(ws_repo *src, ws_repo *dst, const char *key, int dry, int level)
{
    ws_error e;
    ws_error_clear(&e);
    ws_objhdr h, t;
    if (ws_repo_obj_stored_header(src, key, &h, &e) < 0)
        return failed(src, key, &e);
    ws_error_clear(&e);
    if (ws_repo_obj_header(dst, key, &t, &e) == 0) {
        /* duplicate detection by the plaintext's SHA-256, in the target's terms */
        unsigned char plain[32];
        int src_failed, m = ws_repo_obj_same(src, &h, dst, &t, key, plain, &src_failed, &e);
        if (m < 0)
            return failed(src_failed ? src : dst, key, &e);
        return m ? ST_IDENTICAL : conflict_with(dst, key, plain, &t);
    }
    if (e.code != WS_ENOENT)
        return failed(dst, key, &e);
    if (dry)
        return ST_WOULD;
    ws_error_clear(&e);
    ws_repo_obj_writer *w = NULL;
    ws_repo *targets[1] = {dst};
    /* the target's writer encrypts under the target's keyring (or not at all): the plaintext
     * read from the source is re-encrypted, never its stored bytes copied */
    if (ws_repo_obj_create(targets, 1, key, (ws_objkind)h.kind, (ws_codec)h.codec, level, h.length,
                           &w, &e) < 0)
        return failed(dst, key, &e);
    ws_objhdr rh;
    if (ws_repo_obj_fill(src, key, &h, w, &rh, &e) < 0) {
        ws_repo_obj_abort(w);
        return failed(src, key, &e);
    }
    ws_repo_put_result res;
    memset(&res, 0, sizeof res);
    if (ws_repo_obj_commit(w, NULL, &res, &e) < 0) {
        if (e.code == WS_EMISMATCH)
            return conflict_with(dst, key, rh.sha256, &res.existing);
        return failed(dst, key, &e);
    }
    return res.status == WS_PUT_IDENTICAL ? ST_IDENTICAL : ST_COPIED;
}

static int copy_one(void *arg, int worker, int i, ws_error *err)
{
    (void)err;
    job *j = arg;
    item *it = &j->v[i];
    ws_repo *src = j->repos[worker][j->from], *dst = j->repos[worker][j->to];
    it->st = is_marker(it->key) ? copy_marker(src, dst, it->key, j->dry)
                                : copy_object(src, dst, it->key, j->dry, j->level);
    switch (it->st) {
    case ST_COPIED:
        atomic_fetch_add(&j->c->copied, 1);
        atomic_fetch_add(&j->c->bytes, it->size);
        ws_log_debug("copied %s", it->key);
        break;
    case ST_IDENTICAL:
        atomic_fetch_add(&j->c->identical, 1);
        break;
    case ST_WOULD:
        atomic_fetch_add(&j->c->would, 1);
        break;
    case ST_CONFLICT:
        atomic_fetch_add(&j->c->conflict, 1);
        break;
    default:
        atomic_fetch_add(&j->c->failed, 1);
        break;
    }
    atomic_fetch_add(&j->done, it->size);
    return 0; /* one object's failure does not stop the others: it is counted */
}

static void tick(void *arg)
{
    job *j = arg;
    ws_progress_show(&j->progress, atomic_load(&j->done), 0);
}

/* Copies v[0..n) on threads workers; 0 if every one is now on the target (or would be). */
static int run_items(job *j, item *v, int n, int threads, ws_error *err)
{
    if (n == 0)
        return 0;
    j->v = v;
    j->n = n;
    atomic_store(&j->done, 0);
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].size;
    int show = n > 1; /* not for the marker and the manifest alone */
    if (show)
        ws_progress_start(&j->progress, total, -1);
    int rc = ws_rs_parallel(n, threads < n ? threads : n, copy_one, j, show ? tick : NULL, err);
    if (show)
        ws_progress_show(&j->progress, atomic_load(&j->done), 1);
    if (rc < 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (v[i].st != ST_COPIED && v[i].st != ST_IDENTICAL && v[i].st != ST_WOULD)
            return 1;
    return 0;
}

/* ---- output ---- */

typedef struct backup_result {
    char id[WS_MANIFEST_ID_MAX];
    const char *state; /* "complete", "incomplete", "would copy" */
} backup_result;

/* ---- the command ---- */

static int parse_repo_index(const ws_config *cfg, const char *key, int nrepos, int *out,
                            ws_error *err)
{
    const char *v = ws_config_get(cfg, key);
    if (!v) {
        *out = -1;
        return 0;
    }
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > nrepos)
        return ws_error_set(err, WS_ECONFIG,
                            "--%s %s: not a configured repository (1 to %d, in the order of "
                            "repo1, repo2, ...)",
                            key, v, nrepos);
    *out = (int)n - 1;
    return 0;
}

/* The target's identity is the source's: created from it on an empty target. */
static int check_identity(ws_repo *src, ws_repo *dst, int dry, ws_error *err)
{
    ws_repo_identity sid, tid;
    if (ws_repo_identity_get(src, &sid, err) < 0) {
        if (err->code == WS_ENOENT)
            ws_error_set(err, WS_EINVAL, "%s has no identity (walship.repo): nothing to copy",
                         ws_repo_describe(src));
        return -1;
    }
    ws_error e;
    ws_error_clear(&e);
    if (ws_repo_identity_get(dst, &tid, &e) == 0) {
        if (tid.sysid != sid.sysid || tid.pg_version != sid.pg_version ||
            tid.seg_size != sid.seg_size) {
            ws_error_set(err, WS_EMISMATCH,
                         "%s belongs to another cluster (system identifier %" PRIu64
                         ", PostgreSQL %d, WAL segment size %" PRIu32 ") than %s (%" PRIu64
                         ", %d, %" PRIu32 "): nothing copied",
                         ws_repo_describe(dst), tid.sysid, tid.pg_version, tid.seg_size,
                         ws_repo_describe(src), sid.sysid, sid.pg_version, sid.seg_size);
            ws_error_hint(err, "copy into a repository of the same cluster, or an empty one");
            return -1;
        }
        return 0;
    }
    if (e.code != WS_ENOENT) {
        *err = e;
        return -1;
    }
    if (dry) {
        ws_log_info("%s has no identity yet: copy would create it from %s", ws_repo_describe(dst),
                    ws_repo_describe(src));
        return 0;
    }
    /* created only in a repository that holds no object (otherwise: repo repair) */
    return ws_repo_identity_ensure(dst, &sid, err);
}

/* Whether dst holds every WAL segment backup b needs to become consistent (start to stop
 * segment; across a timeline switch the stop segment): a backup is visible only once its WAL
 * is there, in a copy as in basebackup. 1 yes, 0 no (logged), -1 on error. */
static int target_has_wal(ws_repo *dst, const ws_manifest_info *b, ws_error *err)
{
    uint64_t first = ws_wal_lsn_segno(b->start_lsn, b->seg_size);
    uint64_t last = ws_wal_lsn_segno(b->stop_lsn > 0 ? b->stop_lsn - 1 : 0, b->seg_size);
    if (last < first)
        last = first;
    if (b->start_tli != b->stop_tli)
        first = last;
    for (uint64_t seg = first; seg <= last; seg++) {
        char name[32], key[128];
        ws_wal_format_segment(name, b->stop_tli, seg, b->seg_size);
        ws_wal_name wn;
        if (ws_wal_parse_name(name, &wn, err) < 0 || ws_repo_wal_key(&wn, key, sizeof key) < 0)
            return -1;
        ws_objhdr h;
        ws_error e;
        ws_error_clear(&e);
        if (ws_repo_obj_header(dst, key, &h, &e) < 0) {
            if (e.code != WS_ENOENT) {
                *err = e;
                return -1;
            }
            ws_log_error("backup %s needs WAL segment %s, which %s lacks: its walship.manifest "
                         "is not copied (copy the WAL too: --wal)",
                         b->id, name, ws_repo_describe(dst));
            return 0;
        }
    }
    return 1;
}

/* One backup: its objects, then its manifest if every object and its WAL are there. */
static int copy_backup(job *j, ws_repo *src, const ws_manifest_info *b, int wal, int threads,
                       backup_result *out, ws_error *err)
{
    const char *id = b->id;
    char prefix[128], mkey[128];
    snprintf(out->id, sizeof out->id, "%s", id);
    out->state = "incomplete";
    if (ws_key_backup_prefix(id, prefix, sizeof prefix) < 0 ||
        ws_manifest_key(id, WS_MANIFEST_NAME, mkey, sizeof mkey) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id too long: %s", id);
    items s;
    memset(&s, 0, sizeof s);
    s.skip = mkey;
    if (list_keys(src, prefix, &s, err) < 0) {
        items_free(&s);
        return -1;
    }
    /* the marker first, as basebackup writes it; then the data objects in parallel */
    int start = 0;
    for (int i = 0; i < s.n; i++)
        if (is_marker(s.v[i].key)) {
            item m = s.v[i];
            s.v[i] = s.v[0];
            s.v[0] = m;
            start = 1;
            break;
        }
    int rc = start ? run_items(j, s.v, 1, 1, err) : 0;
    if (rc == 0)
        rc = run_items(j, s.v + start, s.n - start, threads, err);
    if (rc == 0 && !(j->dry && wal)) { /* a dry run has not copied the WAL it would */
        int have = target_has_wal(j->repos[0][j->to], b, err);
        rc = have < 0 ? -1 : !have;
    }
    if (rc == 0) {
        item m = {mkey, 0, ST_PENDING};
        ws_storage_info info;
        if (ws_storage_stat(ws_repo_storage(src), mkey, &info, err) == 0)
            m.size = info.size;
        rc = run_items(j, &m, 1, 1, err);
        if (rc == 0)
            out->state = m.st == ST_WOULD ? "would copy" : "complete";
    }
    if (rc > 0)
        ws_log_error("backup %s is not complete in %s: its walship.manifest is not copied until "
                     "every object is; fix the cause and rerun walship copy",
                     id, ws_repo_describe(j->repos[0][j->to]));
    else if (rc == 0)
        ws_log_info("backup %s %s in %s", id, j->dry ? "would be copied" : "is complete",
                    ws_repo_describe(j->repos[0][j->to]));
    items_free(&s);
    return rc < 0 ? -1 : rc;
}

static void print_summary(FILE *f, int json, const char *from, const char *to, const job *j,
                          const counts *c, const backup_result *b, int nb, int wal, double secs)
{
    uint64_t bytes = atomic_load(&c->bytes);
    if (!j->dry)
        ws_log_info("copied %d objects (%.1f MiB stored) from %s to %s in %.1f s (%.1f MiB/s); "
                    "%d already there, %d conflicts, %d failed",
                    atomic_load(&c->copied), ws_mib(bytes), from, to, secs,
                    secs > 0 ? ws_mib(bytes) / secs : 0.0, atomic_load(&c->identical),
                    atomic_load(&c->conflict), atomic_load(&c->failed));
    if (!json) {
        if (j->dry)
            fprintf(f,
                    "walship copy (dry run: nothing is changed) from %s to %s: %d objects to "
                    "copy, %d already there, %d conflicts, %d unreadable\n",
                    from, to, atomic_load(&c->would), atomic_load(&c->identical),
                    atomic_load(&c->conflict), atomic_load(&c->failed));
        return;
    }
    fprintf(f, "{\"from\": ");
    ws_ops_json_str(f, from);
    fprintf(f, ", \"to\": ");
    ws_ops_json_str(f, to);
    fprintf(f,
            ", \"dry_run\": %s, \"wal\": %s, \"objects\": {\"copied\": %d, \"identical\": %d, "
            "\"would_copy\": %d, \"conflicts\": %d, \"failed\": %d}, \"bytes_copied\": %" PRIu64
            ", \"seconds\": %.3f, \"backups\": [",
            j->dry ? "true" : "false", wal ? "true" : "false", atomic_load(&c->copied),
            atomic_load(&c->identical), atomic_load(&c->would), atomic_load(&c->conflict),
            atomic_load(&c->failed), bytes, secs);
    for (int i = 0; i < nb; i++) {
        fprintf(f, "%s{\"id\": ", i ? ", " : "");
        ws_ops_json_str(f, b[i].id);
        fprintf(f, ", \"state\": ");
        ws_ops_json_str(f, b[i].state);
        fputc('}', f);
    }
    fprintf(f, "]}\n");
}

static int copy_to(const ws_config *cfg, ws_repo ***repos, int nrepos, int from, int to,
                   int threads, int level, ws_error *err)
{
    (void)nrepos;
    int dry = ws_config_flag(cfg, "dry-run"), json = ws_config_flag(cfg, "json");
    const char *backup = ws_config_get(cfg, "backup");
    int all = ws_config_flag(cfg, "all"), wal = ws_config_flag(cfg, "wal");
    if (!backup && !all && !wal)
        all = wal = 1;
    ws_repo *src = repos[0][from], *dst = repos[0][to];
    double t0 = ws_now();
    counts c;
    memset(&c, 0, sizeof c);
    job j;
    memset(&j, 0, sizeof j);
    j.repos = repos;
    j.from = from;
    j.to = to;
    j.dry = dry;
    j.level = level;
    j.c = &c;
    ws_catalog cat;
    memset(&cat, 0, sizeof cat);
    backup_result *res = NULL;
    int nres = 0, incomplete = 0, rc = -1;
    if (check_identity(src, dst, dry, err) < 0)
        goto out;
    if (backup || all) {
        if (ws_catalog_load(src, &cat, err) < 0)
            goto out;
        if (backup && !ws_catalog_find(&cat, backup)) {
            ws_error_set(err, WS_ENOENT, "no complete backup %s in %s", backup,
                         ws_repo_describe(src));
            ws_error_hint(err, "walship list shows the backups");
            goto out;
        }
        if (!(res = calloc((size_t)cat.n + 1, sizeof *res))) {
            ws_error_oom(err);
            goto out;
        }
    }
    if (wal) {
        items s;
        memset(&s, 0, sizeof s);
        int r = list_keys(src, WS_KEY_WAL_PREFIX, &s, err);
        if (r == 0)
            r = list_keys(src, WS_KEY_GAP_PREFIX, &s, err);
        if (r == 0)
            r = run_items(&j, s.v, s.n, threads, err);
        items_free(&s);
        if (r < 0)
            goto out;
        incomplete |= r;
    }
    for (int i = 0; res && i < cat.n; i++) {
        if (backup && strcmp(cat.backups[i].id, backup) != 0)
            continue;
        int r = copy_backup(&j, src, &cat.backups[i], wal, threads, &res[nres++], err);
        if (r < 0)
            goto out;
        incomplete |= r;
    }
    print_summary(stdout, json, ws_repo_describe(src), ws_repo_describe(dst), &j, &c, res, nres,
                  wal, ws_now() - t0);
    rc = incomplete ? 1 : 0;
out:
    free(res);
    ws_catalog_free(&cat);
    return rc;
}

int ws_cmd_copy(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0 || (ws_config_get(cfg, "backup") && ws_config_flag(cfg, "all"))) {
        ws_log_error("usage: walship copy [--from N] [--to M] [--backup ID | --all] [--wal] "
                     "[--dry-run] [--json] (see walship help copy)");
        return WS_EXIT_USAGE;
    }
    int nrepos = ws_config_repo_count(cfg), from, to;
    long threads, level;
    if (nrepos < 2) {
        ws_log_error("walship copy needs two repositories (repo1, repo2, ... in the config file, "
                     "or --repo twice); %d configured",
                     nrepos);
        return WS_EXIT_USAGE;
    }
    if (parse_repo_index(cfg, "from", nrepos, &from, &err) < 0 ||
        parse_repo_index(cfg, "to", nrepos, &to, &err) < 0 ||
        ws_config_get_long(cfg, "copy-parallel", 1, 32, &threads, &err) < 0 ||
        ws_config_get_long(cfg, "compress-level", 1, 12, &level, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    if (from < 0)
        from = 0;
    if (to == from) {
        ws_log_error("--from %d and --to %d name the same repository", from + 1, to + 1);
        return WS_EXIT_USAGE;
    }
    ws_repo ***repos = calloc((size_t)threads, sizeof *repos);
    int *nr = calloc((size_t)threads, sizeof *nr);
    int rc = WS_EXIT_FAIL, opened = 0;
    if (!repos || !nr) {
        ws_error_oom(&err);
        goto out;
    }
    for (; opened < threads; opened++)
        if (ws_cmd_open_repos(cfg, &repos[opened], &nr[opened], &err) < 0)
            goto out;
    rc = WS_EXIT_OK;
    for (int t = 0; t < nrepos; t++) {
        if (t == from || (to >= 0 && t != to))
            continue;
        int r = copy_to(cfg, repos, nrepos, from, t, (int)threads, (int)level, &err);
        if (r < 0) {
            ws_log_err(WS_LOG_ERROR, &err);
            rc = err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
            ws_error_clear(&err);
        } else if (r > 0) {
            rc = WS_EXIT_FAIL;
        }
    }
out:
    if (rc != WS_EXIT_OK && err.msg[0])
        ws_log_err(WS_LOG_ERROR, &err);
    for (int w = 0; repos && w < opened; w++)
        ws_cmd_close_repos(repos[w], nr[w]);
    free(repos);
    free(nr);
    return rc;
}
