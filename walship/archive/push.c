/*
 * push.c — `walship push WALPATH`, PostgreSQL's archive_command.
 *
 * The story: name the file, refuse anything that is not WAL, check a segment's page header
 * (and that it belongs to the repository's cluster), stream it once through SHA-256 and lz4
 * into every sync repository (repoN-mode), and exit 0 only when each holds it durably. Exit 1
 * otherwise — never more than 125, which would make PostgreSQL's archiver FATAL.
 *
 * The pipeline itself (ws_push_file_store) is pipeline.c. With async = on it runs in the
 * background agent (agent.c on the runtime of walship/agent/, docs/async.md), and this process only
 * validates the file and waits for the agent's acknowledgement.
 *
 * With push-queue-max set, a segment among the oldest of a backlog beyond the limit is not
 * stored: its gap is recorded in every repository, a WARNING names it, and push exits 0 so
 * that PostgreSQL can recycle it (docs/queue-max.md). That check comes before either path.
 */
#include "walship/archive/agent.h"
#include "walship/archive/pipeline.h"
#include "walship/bytes.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/log.h"
#include "walship/queue.h"
#include "walship/repo/catchup.h"
#include "walship/repo/open.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 1 if every repository holds key already (the async agent, or an earlier push whose
 * .done PostgreSQL never wrote): such a file is archived, not dropped. */
static int stored_everywhere(ws_repo **repos, int n, const char *key)
{
    for (int i = 0; i < n; i++) {
        ws_objhdr h;
        ws_error e;
        ws_error_clear(&e);
        if (ws_repo_obj_header(repos[i], key, &h, &e) < 0)
            return 0;
    }
    return 1;
}

/* push-queue-max: 1 if f was dropped (its gap recorded in every sync repository, a WARNING
 * logged); 0 if it is to be archived as usual; -1 with err if the gap could not be recorded
 * everywhere, in which case nothing was dropped and push exits 1. */
static int drop_beyond_queue_max(const ws_config *cfg, const int *catchup, ws_push_file *f,
                                 uint64_t limit, ws_error *err)
{
    if (!limit || f->name.kind != WS_WAL_SEGMENT)
        return 0;
    ws_queue_verdict v;
    if (ws_queue_check(f->path, &f->name, f->size, limit, &v, err) < 0) {
        /* not knowing the backlog is no reason to refuse the file: archive it */
        ws_log_err(WS_LOG_WARN, err);
        ws_error_clear(err);
        return 0;
    }
    if (!v.beyond)
        return 0;
    ws_repo **all;
    int nall;
    if (ws_cmd_open_repos(cfg, &all, &nall, err) < 0)
        return -1;
    /* the sync repositories only (repoN-mode): a catch-up one gets the gap record from them */
    ws_repo *repos[WS_CONFIG_MAX_REPOS];
    int nrepos = 0;
    for (int i = 0; i < nall && i < WS_CONFIG_MAX_REPOS; i++)
        if (!catchup[i])
            repos[nrepos++] = all[i];
    char key[128];
    ws_repo_wal_key(&f->name, key, sizeof key);
    int rc = 0;
    if (stored_everywhere(repos, nrepos, key)) {
        ws_log_info("%s is beyond push-queue-max but already in every repository: not dropped",
                    f->name.name);
        goto out;
    }
    ws_repo_gap g;
    memset(&g, 0, sizeof g);
    snprintf(g.segment, sizeof g.segment, "%s", f->name.name);
    snprintf(g.reason, sizeof g.reason, "%s", WS_GAP_REASON_QUEUE_MAX);
    g.dropped_at = (int64_t)time(NULL);
    g.backlog_files = v.backlog_files;
    g.backlog_bytes = v.backlog_bytes;
    g.limit_bytes = limit;
    /* The gap goes only into a repository of this very cluster, and into every one before
     * PostgreSQL hears "archived": a drop nobody can see later is never made. */
    ws_repo_identity want = {WS_REPO_FORMAT, f->hdr.sysid, f->hdr.pg_version, f->hdr.seg_size};
    char where[1024] = "";
    size_t used = 0;
    for (int i = 0; i < nrepos && rc == 0; i++) {
        int bad_identity = ws_repo_identity_ensure(repos[i], &want, err) < 0;
        if (bad_identity || ws_repo_gap_record(repos[i], &g, err) < 0) {
            if (bad_identity)
                ws_error_prefix(err, "cannot record the gap of %s in %s", f->name.name,
                                ws_repo_describe(repos[i]));
            ws_error_prefix(err, "not dropping %s (beyond push-queue-max)", f->name.name);
            if (!err->hint[0])
                ws_error_hint(err, "a segment is dropped only once its gap is recorded in every "
                                   "repository; PostgreSQL keeps it and retries");
            rc = -1;
            break;
        }
        int k = snprintf(where + used, sizeof where - used, "%s%s", i ? ", " : "",
                         ws_repo_describe(repos[i]));
        if (k > 0 && (size_t)k < sizeof where - used)
            used += (size_t)k;
    }
    if (rc == 0) {
        ws_log_warn("dropped %s without archiving it: the archive backlog is %" PRIu64
                    " files (%.1f MiB), over push-queue-max (%.1f MiB) by %" PRIu64
                    " segment(s), dropped oldest first; the gap is recorded in %s. "
                    "Point-in-time recovery cannot replay past %s: take a new base backup",
                    f->name.name, v.backlog_files, ws_mib(v.backlog_bytes), ws_mib(limit),
                    v.beyond_files, where, f->name.name);
        rc = 1;
    }
out:
    ws_cmd_close_repos(all, nall);
    return rc;
}

int ws_cmd_push(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 1) {
        ws_log_error("usage: walship push WALPATH (archive_command = 'walship push %%p')");
        return WS_EXIT_USAGE;
    }
    const char *path = ws_config_arg(cfg, 0);
    ws_push_opts opts;
    int async;
    uint64_t queue_max;
    int catchup[WS_CONFIG_MAX_REPOS];
    if (ws_push_opts_get(cfg, &opts, &err) < 0 ||
        ws_config_get_bool(cfg, "async", &async, &err) < 0 ||
        ws_config_get_size(cfg, "push-queue-max", WS_WAL_SEG_MIN, &queue_max, &err) < 0 ||
        ws_repo_modes(cfg, catchup, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    ws_push_file f;
    if (ws_push_file_open(path, &f, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    int dropped = drop_beyond_queue_max(cfg, catchup, &f, queue_max, &err);
    if (dropped != 0) {
        if (dropped < 0)
            ws_log_err(WS_LOG_ERROR, &err);
        ws_push_file_close(&f);
        return dropped > 0 ? WS_EXIT_OK : err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    /* async = on: the agent stores the file (docs/async.md); this process only waits for
     * its acknowledgement. */
    if (async) {
        int code = ws_agent_push(cfg, &f);
        if (code >= 0) {
            ws_push_file_close(&f);
            return code;
        }
        ws_log_debug("%s is not in a pg_wal directory: archiving it in-process", path);
    }

    ws_repo **repos;
    int nrepos;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        ws_push_file_close(&f);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    /* repoN-mode = catch-up: not written here; the push agent fills it later from the
     * first sync repository (docs/async.md), or `walship copy --wal` does */
    ws_repo *sync[WS_CONFIG_MAX_REPOS];
    int nsync = 0;
    for (int i = 0; i < nrepos && i < WS_CONFIG_MAX_REPOS; i++)
        if (!catchup[i])
            sync[nsync++] = repos[i];
    ws_objhdr oh;
    int rc = ws_push_file_store(&f, sync, nsync, &opts, &oh, &err);
    ws_cmd_close_repos(repos, nrepos);
    ws_push_file_close(&f);
    return rc < 0 ? WS_EXIT_FAIL : WS_EXIT_OK;
}
