/*
 * push.c — `walship push WALPATH`, PostgreSQL's archive_command.
 *
 * The story: name the file, refuse anything that is not WAL, check a segment's page header
 * (and that it belongs to the repository's cluster), stream it once through SHA-256 and lz4
 * into every repository, and exit 0 only when each holds it durably. Exit 1 otherwise —
 * never more than 125, which would make PostgreSQL's archiver FATAL.
 *
 * With async = on the same pipeline (ws_push_file_store) runs in the background agent
 * (walship/agent/, docs/async.md), and this process only validates the file and waits for
 * the agent's acknowledgement.
 *
 * With push-queue-max set, a segment among the oldest of a backlog beyond the limit is not
 * stored: its gap is recorded in every repository, a WARNING names it, and push exits 0 so
 * that PostgreSQL can recycle it (docs/queue-max.md). That check comes before either path.
 */
#include "walship/cmd.h"
#include "walship/bytes.h"
#include "walship/agent/agent.h"
#include "walship/log.h"
#include "walship/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PUSH_CHUNK    (256 * 1024)
#define TEXT_FILE_MAX (1024 * 1024)

/* History and backup history files are small text files PostgreSQL writes itself. */
static int check_text_file(int fd, const ws_wal_name *n, uint64_t size, ws_error *err)
{
    if (size > TEXT_FILE_MAX)
        return ws_error_set(err, WS_EINVAL, "%s is %" PRIu64 " bytes, too large for a %s", n->name,
                            size, ws_wal_kind_name(n->kind));
    char buf[4096];
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    if (k < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot read %s", n->name);
    buf[k] = '\0';
    if (memchr(buf, '\0', (size_t)k))
        return ws_error_set(err, WS_EINVAL, "%s is binary, not a %s", n->name,
                            ws_wal_kind_name(n->kind));
    if (n->kind == WS_WAL_BACKUP && !strstr(buf, "START WAL LOCATION:"))
        return ws_error_set(err, WS_EINVAL,
                            "%s lacks \"START WAL LOCATION:\" — not a backup history file",
                            n->name);
    if (n->kind == WS_WAL_HISTORY) {
        /* every line: blank, a # comment, or "<parent tli>\t<switch LSN>\t<reason>" */
        for (char *line = buf; *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            unsigned tli;
            char lsn[32];
            if (*line && *line != '#' && sscanf(line, "%u %31s", &tli, lsn) != 2)
                return ws_error_set(err, WS_EINVAL,
                                    "%s has a line that is not \"timeline<TAB>LSN<TAB>reason\" "
                                    "— not a timeline history file",
                                    n->name);
            if (!nl)
                break;
            line = nl + 1;
        }
    }
    return 0;
}

static int stream_file(ws_repo_obj_writer *w, int fd, uint64_t size, const char *path,
                       ws_error *err)
{
    char *buf = malloc(PUSH_CHUNK);
    if (!buf)
        return ws_error_oom(err);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t k = read(fd, buf, PUSH_CHUNK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = ws_error_errno(err, WS_EIO, errno, "cannot read %s", path);
            break;
        }
        if (k == 0)
            break;
        total += (uint64_t)k;
        if (ws_repo_obj_write(w, buf, (size_t)k, err) < 0) {
            rc = -1;
            break;
        }
    }
    free(buf);
    if (rc == 0 && total != size)
        rc = ws_error_set(err, WS_EINVAL,
                          "%s changed size while being read (%" PRIu64 " bytes, then %" PRIu64 ")",
                          path, size, total);
    return rc;
}

int ws_push_opts_get(const ws_config *cfg, ws_push_opts *o, ws_error *err)
{
    return ws_codec_opts_get(cfg, &o->codec, &o->level, err);
}

int ws_push_file_open(const char *path, ws_push_file *f, ws_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = path;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (ws_wal_parse_name(base, &f->name, err) < 0) {
        ws_error_prefix(err, "refusing %s", path);
        return -1;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0 || fstat(f->fd, &f->st) < 0) {
        ws_error_errno(err, WS_EIO, errno, "cannot open %s", path);
        ws_push_file_close(f);
        return -1;
    }
    if (!S_ISREG(f->st.st_mode)) {
        ws_error_set(err, WS_EINVAL, "refusing %s: not a regular file", path);
        ws_push_file_close(f);
        return -1;
    }
    f->size = (uint64_t)f->st.st_size;
    f->is_segment = f->name.kind == WS_WAL_SEGMENT || f->name.kind == WS_WAL_PARTIAL;
    int rc;
    if (f->is_segment) {
        unsigned char page[WS_WAL_LONG_HEADER_SIZE];
        ssize_t k = pread(f->fd, page, sizeof page, 0);
        rc = k < 0 ? ws_error_errno(err, WS_EIO, errno, "cannot read %s", path)
                   : ws_wal_check_header(page, (size_t)k, &f->name, f->size, &f->hdr, err);
    } else {
        rc = check_text_file(f->fd, &f->name, f->size, err);
    }
    if (rc < 0) {
        ws_error_prefix(err, "refusing %s", path);
        ws_push_file_close(f);
        return -1;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    return 0;
}

void ws_push_file_close(ws_push_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

int ws_push_file_store(ws_push_file *f, ws_repo **repos, int nrepos, const ws_push_opts *o,
                       ws_objhdr *oh, ws_error *err)
{
    const ws_wal_name *name = &f->name;
    double t0 = ws_now();
    int failed = 0;
    ws_error first;
    ws_error_clear(&first);
#define FAIL_WITH(e)                                                                               \
    do {                                                                                           \
        ws_log_err(WS_LOG_ERROR, (e));                                                             \
        if (!failed++)                                                                             \
            first = *(e);                                                                          \
    } while (0)

    /* The cluster check comes first and is all-or-nothing: WAL of another cluster is
     * written nowhere. A repository that cannot be reached is skipped here and fails the
     * push below, after the others have stored the file. */
    ws_repo **targets = calloc((size_t)nrepos, sizeof *targets);
    int ntargets = 0;
    if (!targets)
        return ws_error_oom(err);
    for (int i = 0; i < nrepos; i++) {
        if (f->is_segment) {
            ws_error e;
            ws_error_clear(&e);
            ws_repo_identity want = {WS_REPO_FORMAT, f->hdr.sysid, f->hdr.pg_version,
                                     f->hdr.seg_size};
            if (ws_repo_identity_ensure(repos[i], &want, &e) < 0) {
                ws_error_prefix(&e, "not archiving %s", name->name);
                FAIL_WITH(&e);
                if (e.code == WS_EMISMATCH || e.code == WS_ECORRUPT || e.code == WS_ECONFIG) {
                    ntargets = 0;
                    break;
                }
                continue;
            }
        }
        targets[ntargets++] = repos[i];
    }

    char key[128];
    ws_repo_wal_key(name, key, sizeof key);
    if (ntargets > 0) {
        ws_repo_obj_writer *w;
        ws_repo_put_result *res = calloc((size_t)ntargets, sizeof *res);
        ws_error e;
        ws_error_clear(&e);
        if (!res) {
            ws_error_oom(&e);
            FAIL_WITH(&e);
        } else if (ws_repo_obj_create(targets, ntargets, key, ws_objkind_of(name->kind), o->codec,
                                      o->level, f->size, &w, &e) < 0) {
            FAIL_WITH(&e);
        } else if (stream_file(w, f->fd, f->size, f->path, &e) < 0) {
            ws_repo_obj_abort(w);
            ws_error_prefix(&e, "not archiving %s", name->name);
            FAIL_WITH(&e);
        } else {
            ws_repo_obj_commit(w, oh, res, &e);
            double ms = (ws_now() - t0) * 1000;
            for (int i = 0; i < ntargets; i++) {
                const char *where = ws_repo_describe(targets[i]);
                if (res[i].status == WS_PUT_STORED)
                    ws_log_info("archived %s (%.1f MiB, %s) to %s in %.0f ms", name->name,
                                ws_mib(f->size), ws_codec_name(o->codec), where, ms);
                else if (res[i].status == WS_PUT_IDENTICAL)
                    ws_log_info("%s is already archived in %s with the same contents; "
                                "nothing to do",
                                name->name, where);
                else {
                    ws_error_prefix(&res[i].err, "not archived %s", name->name);
                    FAIL_WITH(&res[i].err);
                }
            }
        }
        free(res);
    }
#undef FAIL_WITH
    free(targets);
    if (failed) {
        *err = first;
        return -1;
    }
    return 0;
}

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

/* push-queue-max: 1 if f was dropped (its gap recorded in every repository, a WARNING
 * logged); 0 if it is to be archived as usual; -1 with err if the gap could not be recorded
 * everywhere, in which case nothing was dropped and push exits 1. */
static int drop_beyond_queue_max(const ws_config *cfg, ws_push_file *f, uint64_t limit,
                                 ws_error *err)
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
    ws_repo **repos;
    int nrepos;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, err) < 0)
        return -1;
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
    ws_cmd_close_repos(repos, nrepos);
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
    if (ws_push_opts_get(cfg, &opts, &err) < 0 ||
        ws_config_get_bool(cfg, "async", &async, &err) < 0 ||
        ws_config_get_size(cfg, "push-queue-max", WS_WAL_SEG_MIN, &queue_max, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    ws_push_file f;
    if (ws_push_file_open(path, &f, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    int dropped = drop_beyond_queue_max(cfg, &f, queue_max, &err);
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
    ws_objhdr oh;
    int rc = ws_push_file_store(&f, repos, nrepos, &opts, &oh, &err);
    ws_cmd_close_repos(repos, nrepos);
    ws_push_file_close(&f);
    return rc < 0 ? WS_EXIT_FAIL : WS_EXIT_OK;
}
