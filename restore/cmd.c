/*
 * cmd.c — `walship restore --pgdata DIR [...]`: the command, in the order it does things.
 *
 *   1. options and the recovery target; the repository (the first that holds a complete
 *      backup) and the backup that can reach the target; a time or LSN target beyond the
 *      newest archived segment refused (unless --force); a warning when recovery follows a
 *      timeline that branched off the newest backup's;
 *      every repository's catalog is read, and the backup's manifest taken from the first
 *      repository whose copy verifies (a damaged copy is a WARNING); its objects are read
 *      from every repository whose manifest states the same SHA-256 (extract.c), in order;
 *   2. the plan from its manifest, the whole of it checked (nothing written yet); --dry-run
 *      prints it here and stops;
 *   3. PGDATA refused if a postmaster runs there, or if it is not empty without --delta; a
 *      tablespace directory refused if a running cluster has it, or (with files in it) if it
 *      is not this PGDATA's own under --delta, or at all without; --delta hashes what is
 *      there to keep what already matches;
 *   4. directories, tablespace links, files (backup_label and pg_control under temporary
 *      names), in parallel, verified;
 *   5. the recovery configuration; then everything synced, backup_label named, and
 *      pg_control named last: only now can the directory start.
 */
#include "restore/restore.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/open.h"
#include "walship/bytes.h"
#include "walship/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void print_plan(FILE *f, const ws_rs_plan *p, const char *why, const char *repo,
                       const ws_rs_target *t, const char *restore_command, int delta, int standby,
                       const char *tlnote)
{
    const ws_manifest_info *b = &p->info;
    char start[32], stop[32], slsn[32], elsn[32];
    ws_manifest_format_time(b->start_time, start);
    ws_manifest_format_time(b->stop_time, stop);
    ws_wal_lsn_text(b->start_lsn, slsn);
    ws_wal_lsn_text(b->stop_lsn, elsn);
    fprintf(f, "walship restore plan (dry run: nothing is changed)\n");
    fprintf(f, "  repository   %s\n", repo);
    fprintf(f, "  backup       %s%s%s%s: %s\n", b->id, b->label[0] ? " (label \"" : "", b->label,
            b->label[0] ? "\")" : "", why);
    fprintf(f, "               %s to %s, LSN %s to %s, timeline %" PRIu32 "\n", start, stop, slsn,
            elsn, b->stop_tli);
    if (tlnote[0])
        fprintf(f, "  timeline     WARNING: %s\n", tlnote);
    fprintf(f, "  pgdata       %s (%s)\n", p->pgdata,
            p->pgdata_exists ? (delta ? "exists: delta" : "exists") : "will be created");
    for (int i = 0; i < p->nts; i++)
        fprintf(f, "  tablespace   %" PRIu32 " -> %s%s\n", p->ts[i].oid, p->ts[i].dest,
                strcmp(p->ts[i].dest, p->ts[i].original) ? " (mapped)" : "");
    fprintf(f, "  files        %" PRIu64 " of %" PRIu64 " to write (%.1f of %.1f MiB)",
            p->files_write, p->files, ws_mib(p->bytes_write), ws_mib(p->bytes));
    if (delta)
        fprintf(f, ", %" PRIu64 " kept", p->files - p->files_write);
    fprintf(f, "\n  signal       %s\n", standby ? "standby.signal" : "recovery.signal");
    fprintf(f, "  archiving    %s\n",
            t->archive_off ? "off in the restored cluster (--archive-mode off)"
                           : "as the backup had it (--archive-mode preserve)");
    fprintf(f, "  postgresql.auto.conf gets:\n");
    ws_rs_recovery_print(f, p, t, restore_command);
}

static int cmp_backup(const void *a, const void *b)
{
    const ws_manifest_info *x = a, *y = b;
    if (x->start_time != y->start_time)
        return x->start_time < y->start_time ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The complete backups of every loaded catalog into out (sorted as a catalog is), each id
 * once, with the facts of the first repository listing it. Incomplete backups are only
 * counted (choose_backup's hint); the lists are not copied. Freed with ws_catalog_free. */
static int merge_catalogs(const ws_catalog *cats, const int *loaded, int n, ws_catalog *out,
                          ws_error *err)
{
    memset(out, 0, sizeof *out);
    int total = 0;
    for (int i = 0; i < n; i++)
        if (loaded[i])
            total += cats[i].n;
    if (!(out->backups = calloc((size_t)total + 1, sizeof *out->backups)))
        return ws_error_oom(err);
    for (int i = 0; i < n; i++)
        for (int k = 0; loaded[i] && k < cats[i].n; k++)
            if (!ws_catalog_find(out, cats[i].backups[k].id))
                out->backups[out->n++] = cats[i].backups[k];
    if (out->n > 1)
        qsort(out->backups, (size_t)out->n, sizeof *out->backups, cmp_backup);
    /* only counted, for choose_backup's hint: the lists themselves are not copied */
    for (int i = 0; i < n; i++)
        if (loaded[i])
            out->nincomplete += cats[i].nincomplete;
    return 0;
}

/* Appends ", what" to a list of repositories tried. */
static void tried_add(char *buf, size_t len, const char *what)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", what);
}

/* The repositories objects of backup b are read from, in priority order (order, *norder),
 * and the one whose manifest is used (*source): the first whose copy of the manifest reads
 * back whole and verified (header, length, SHA-256); a corrupt or unreadable copy is a
 * WARNING naming repository and key. A repository is used for objects only when its
 * manifest object states the same SHA-256 and length as that copy, even if its own copy is
 * damaged: the same backup, never a mix of two under one id. Fails when no repository has
 * a valid copy, naming each one tried. */
static int choose_sources(ws_repo **repos, const int *loaded, int n, const ws_manifest_info *b,
                          int *order, int *norder, int *source, ws_error *err)
{
    char key[128], tried[1024] = "";
    if (ws_manifest_key(b->id, WS_MANIFEST_NAME, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id too long: %s", b->id);
    ws_objhdr want;
    memset(&want, 0, sizeof want);
    ws_error first;
    ws_error_clear(&first);
    *source = -1;
    *norder = 0;
    for (int i = 0; i < n; i++) {
        ws_error e;
        ws_error_clear(&e);
        ws_objhdr h;
        if (!loaded[i]) {
            tried_add(tried, sizeof tried, ws_repo_describe(repos[i]));
            continue; /* its catalog's failure is already logged */
        }
        ws_stage *sink = ws_stage_sha256_new(NULL);
        if (!sink)
            return ws_error_oom(err);
        int rc = ws_repo_obj_read_limit(repos[i], key, sink, &h, 0, 0, &e);
        ws_stage_free(sink);
        if (rc < 0) {
            if (n > 1 && e.code != WS_ENOENT)
                ws_log_warn("%s: %s: %s", ws_repo_describe(repos[i]), key, e.msg);
            if (!first.msg[0])
                first = e;
            tried_add(tried, sizeof tried, ws_repo_describe(repos[i]));
            continue;
        }
        want = h;
        *source = i;
        break; /* the others: their headers below say whether they hold this backup */
    }
    if (*source < 0) {
        if (n == 1) {
            *err = first;
            return -1;
        }
        return ws_error_set(err, WS_ECORRUPT,
                            "backup %s: no repository holds a valid copy of %s (tried %s; "
                            "first: %s)",
                            b->id, key, tried, first.msg);
    }
    for (int i = 0; i < n; i++) {
        if (!loaded[i])
            continue;
        ws_objhdr h;
        ws_error e;
        ws_error_clear(&e);
        if (i != *source && ws_repo_obj_header(repos[i], key, &h, &e) < 0) {
            if (e.code != WS_ENOENT)
                ws_log_warn("%s: %s: %s; backup %s is not read from there",
                            ws_repo_describe(repos[i]), key, e.msg, b->id);
            continue;
        }
        if (i != *source && (h.length != want.length || memcmp(h.sha256, want.sha256, 32) != 0)) {
            char a[65], c[65];
            ws_sha256_hex(h.sha256, a);
            ws_sha256_hex(want.sha256, c);
            ws_log_warn("%s holds a different backup %s (manifest SHA-256 %.16s..., "
                        "not %.16s... as in %s): not read from there",
                        ws_repo_describe(repos[i]), b->id, a, c, ws_repo_describe(repos[*source]));
            continue;
        }
        order[(*norder)++] = i;
    }
    return 0;
}

int ws_cmd_restore(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    const char *pgdata = ws_config_get(cfg, "pgdata");
    if (ws_config_nargs(cfg) != 0 || !pgdata || !*pgdata) {
        ws_log_error("usage: walship restore --pgdata DIR [--backup ID|latest] [--target-time TS "
                     "| --target-lsn LSN | --target-xid XID | --target-name NAME | --target "
                     "immediate] [...] (see walship help restore)");
        return WS_EXIT_USAGE;
    }
    int delta = ws_config_flag(cfg, "delta"), dry = ws_config_flag(cfg, "dry-run");
    int standby = ws_config_flag(cfg, "standby");
    ws_rs_target t;
    long threads;
    if (ws_rs_target_parse(cfg, &t, &err) < 0 ||
        ws_config_get_long(cfg, "restore-parallel", 1, 32, &threads, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    ws_repo **repos = NULL;
    int nrepos = 0, rc = WS_EXIT_FAIL, started = 0, repo_index = -1, norder = 0;
    ws_catalog *cats = NULL;
    int *loaded = NULL, *order = NULL;
    ws_catalog cat;
    memset(&cat, 0, sizeof cat);
    ws_rs_plan plan;
    memset(&plan, 0, sizeof plan);
    char why[256], command[4096];
    double t0 = ws_now();
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        rc = err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
        goto out;
    }
    cats = calloc((size_t)nrepos, sizeof *cats);
    loaded = calloc((size_t)nrepos, sizeof *loaded);
    order = calloc((size_t)nrepos, sizeof *order);
    if (!cats || !loaded || !order) {
        ws_error_oom(&err);
        goto out;
    }
    /* every repository's catalog; r: the first that can be read and holds a complete backup */
    for (int i = 0; i < nrepos; i++) {
        ws_error e;
        ws_error_clear(&e);
        if (ws_catalog_load(repos[i], &cats[i], &e) < 0) {
            ws_error_prefix(&e, "%s", ws_repo_describe(repos[i]));
            ws_log_err(WS_LOG_WARN, &e);
            err = e;
            continue;
        }
        loaded[i] = 1;
        if (repo_index < 0 || (cats[repo_index].n == 0 && cats[i].n > 0))
            repo_index = i;
    }
    if (repo_index < 0)
        goto out;
    /* the backups of every repository, the first (in priority order) to list an id giving its
     * facts: a backup whose manifest is corrupt in one is still restored from another */
    if (merge_catalogs(cats, loaded, nrepos, &cat, &err) < 0)
        goto out;
    ws_repo *r = repos[repo_index];
    const ws_manifest_info *b =
        ws_rs_choose_backup(r, &cat, ws_config_get(cfg, "backup"), &t, why, sizeof why, &err);
    if (b) {
        /* WAL, gaps and timelines from the first repository listing the chosen backup */
        for (int i = 0; i < nrepos; i++)
            if (loaded[i] && ws_catalog_find(&cats[i], b->id)) {
                r = repos[i];
                break;
            }
    }
    char tlnote[512] = "";
    int source = -1;
    if (!b || ws_rs_check_gaps(r, b, &t, &err) < 0 || ws_rs_check_archive_end(r, b, &t, &err) < 0 ||
        ws_rs_timeline_note(r, &cat, &t, tlnote, sizeof tlnote, &err) < 0 ||
        choose_sources(repos, loaded, nrepos, b, order, &norder, &source, &err) < 0 ||
        ws_rs_plan_load(repos[source], b, pgdata, ws_config_get(cfg, "tablespace-map"), &plan,
                        &err) < 0)
        goto out;
    r = repos[source];
    struct stat st;
    plan.pgdata_exists = stat(plan.pgdata, &st) == 0;
    if (ws_rs_check_targets(&plan, delta, &err) < 0 ||
        ws_rs_restore_command(cfg, command, sizeof command, &err) < 0)
        goto out;
    if (delta && plan.pgdata_exists && ws_rs_plan_delta(&plan, (int)threads, &err) < 0)
        goto out;
    if (tlnote[0])
        ws_log_warn("%s", tlnote);
    if (dry) {
        char from[1024], objs[768] = "";
        for (int k = 0; k < norder; k++) /* the repositories objects are read from, in order */
            tried_add(objs, sizeof objs, ws_repo_describe(repos[order[k]]));
        if (norder > 1)
            snprintf(from, sizeof from,
                     "%s (the manifest); each object from the first valid copy in %s",
                     ws_repo_describe(r), objs);
        else
            snprintf(from, sizeof from, "%s", ws_repo_describe(r));
        print_plan(stdout, &plan, why, from, &t, command, delta, standby, tlnote);
        rc = fflush(stdout) == 0 ? WS_EXIT_OK : WS_EXIT_FAIL;
        goto out;
    }
    ws_log_info("restoring backup %s (%s) into %s: %" PRIu64 " files, %.1f MiB to write%s", b->id,
                why, plan.pgdata, plan.files_write, ws_mib(plan.bytes_write),
                delta ? " (delta)" : "");
    started = 1;
    if (ws_rs_prepare(&plan, delta, &err) < 0 ||
        ws_rs_extract(&plan, cfg, order, norder, (int)threads, &err) < 0 ||
        ws_rs_recovery_write(&plan, &t, command, standby, &err) < 0 ||
        ws_rs_finish(&plan, &err) < 0)
        goto out;
    ws_log_info("restored backup %s into %s: %" PRIu64 " files written (%.1f MiB), %" PRIu64
                " kept, in %.1f s",
                b->id, plan.pgdata, plan.files_write, ws_mib(plan.bytes_write),
                plan.files - plan.files_write, ws_now() - t0);
    ws_log_info("next: start PostgreSQL (pg_ctl -D %s start); it replays WAL through walship "
                "fetch%s",
                plan.pgdata, t.kind != WS_RS_TARGET_NONE ? " up to the target" : "");
    if (t.archive_off)
        ws_log_info("archiving is off in the restored cluster (--archive-mode off): it will not "
                    "archive into the repositories. If it is to become the primary, restore with "
                    "--archive-mode preserve instead (docs/restore.md)");
    rc = WS_EXIT_OK;
out:
    if (rc == WS_EXIT_FAIL && err.code == WS_ECONFIG)
        rc = WS_EXIT_USAGE;
    if (rc != WS_EXIT_OK && err.msg[0]) {
        if (started)
            ws_error_hint(&err,
                          "%s is incomplete and cannot start (no global/pg_control); fix "
                          "the cause, then rerun walship restore with --delta to finish it",
                          plan.pgdata);
        ws_log_err(WS_LOG_ERROR, &err);
    }
    ws_rs_plan_free(&plan);
    ws_catalog_free(&cat);
    for (int i = 0; cats && i < nrepos; i++)
        ws_catalog_free(&cats[i]);
    free(cats);
    free(loaded);
    free(order);
    ws_cmd_close_repos(repos, nrepos);
    return rc;
}
