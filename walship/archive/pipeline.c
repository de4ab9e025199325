/*
 * pipeline.c — the per-file store pipeline (pipeline.h): the WAL file PostgreSQL offers,
 * validated, then streamed once through SHA-256 and the codec into every repository. The
 * in-process push (push.c) and the async agent's jobs (agent.c) run it alike.
 */
#include "walship/archive/pipeline.h"
#include "walship/bytes.h"
#include "walship/clock.h"
#include "walship/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
