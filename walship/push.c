/*
 * push.c — `walship push WALPATH`, PostgreSQL's archive_command.
 *
 * The story: name the file, refuse anything that is not WAL, check a segment's page header
 * (and that it belongs to the repository's cluster), stream it once through SHA-256 and lz4
 * into every repository, and exit 0 only when each holds it durably. Exit 1 otherwise —
 * never more than 125, which would make PostgreSQL's archiver FATAL.
 */
#include "walship/cmd.h"
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
        return ws_error_set(err, WS_ENOMEM, "out of memory");
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

static double mib(uint64_t n)
{
    return (double)n / (1024.0 * 1024.0);
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
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    double t0 = ws_now();

    ws_codec codec;
    long level;
    if (ws_codec_parse(ws_config_get(cfg, "compress"), &codec) < 0) {
        ws_log_error("compress = \"%s\" (from %s) is not lz4 or none",
                     ws_config_get(cfg, "compress"), ws_config_source(cfg, "compress"));
        return WS_EXIT_USAGE;
    }
    if (ws_config_get_long(cfg, "compress-level", 1, 12, &level, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }

    ws_wal_name name;
    if (ws_wal_parse_name(base, &name, &err) < 0) {
        ws_error_prefix(&err, "refusing %s", path);
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        ws_log_error("cannot open %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return WS_EXIT_FAIL;
    }
    if (!S_ISREG(st.st_mode)) {
        ws_log_error("refusing %s: not a regular file", path);
        close(fd);
        return WS_EXIT_FAIL;
    }
    uint64_t size = (uint64_t)st.st_size;
    int is_segment = name.kind == WS_WAL_SEGMENT || name.kind == WS_WAL_PARTIAL;
    ws_wal_header hdr;
    int rc;
    if (is_segment) {
        unsigned char page[WS_WAL_LONG_HEADER_SIZE];
        ssize_t k = pread(fd, page, sizeof page, 0);
        rc = k < 0 ? ws_error_errno(&err, WS_EIO, errno, "cannot read %s", path)
                   : ws_wal_check_header(page, (size_t)k, &name, size, &hdr, &err);
    } else {
        rc = check_text_file(fd, &name, size, &err);
    }
    if (rc < 0) {
        ws_error_prefix(&err, "refusing %s", path);
        ws_log_err(WS_LOG_ERROR, &err);
        close(fd);
        return WS_EXIT_FAIL;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif

    ws_repo **repos;
    int nrepos;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        close(fd);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }

    /* The cluster check comes first and is all-or-nothing: WAL of another cluster is
     * written nowhere. A repository that cannot be reached is skipped here and fails the
     * push below, after the others have stored the file. */
    int exit_code = WS_EXIT_OK;
    ws_repo **targets = calloc((size_t)nrepos, sizeof *targets);
    int ntargets = 0;
    if (!targets) {
        ws_log_error("out of memory");
        exit_code = WS_EXIT_FAIL;
    }
    for (int i = 0; i < nrepos && targets; i++) {
        if (is_segment) {
            ws_repo_identity want = {WS_REPO_FORMAT, hdr.sysid, hdr.pg_version, hdr.seg_size};
            if (ws_repo_identity_ensure(repos[i], &want, &err) < 0) {
                ws_error_prefix(&err, "not archiving %s", name.name);
                ws_log_err(WS_LOG_ERROR, &err);
                exit_code = WS_EXIT_FAIL;
                if (err.code == WS_EMISMATCH || err.code == WS_ECORRUPT || err.code == WS_ECONFIG) {
                    ntargets = 0;
                    break;
                }
                continue;
            }
        }
        targets[ntargets++] = repos[i];
    }

    char key[128];
    ws_repo_wal_key(&name, key, sizeof key);
    if (ntargets > 0) {
        ws_repo_obj_writer *w;
        ws_repo_put_result *res = calloc((size_t)ntargets, sizeof *res);
        ws_objhdr oh;
        if (!res || ws_repo_obj_create(targets, ntargets, key, ws_objkind_of(name.kind), codec,
                                       (int)level, size, &w, &err) < 0) {
            ws_log_err(WS_LOG_ERROR, &err);
            exit_code = WS_EXIT_FAIL;
        } else if (stream_file(w, fd, size, path, &err) < 0) {
            ws_repo_obj_abort(w);
            ws_error_prefix(&err, "not archiving %s", name.name);
            ws_log_err(WS_LOG_ERROR, &err);
            exit_code = WS_EXIT_FAIL;
        } else {
            ws_repo_obj_commit(w, &oh, res, &err);
            double ms = (ws_now() - t0) * 1000;
            for (int i = 0; i < ntargets; i++) {
                const char *where = ws_repo_describe(targets[i]);
                if (res[i].status == WS_PUT_STORED)
                    ws_log_info("archived %s (%.1f MiB, %s) to %s in %.0f ms", name.name, mib(size),
                                ws_codec_name(codec), where, ms);
                else if (res[i].status == WS_PUT_IDENTICAL)
                    ws_log_info("%s is already archived in %s with the same contents; "
                                "nothing to do",
                                name.name, where);
                else {
                    ws_error_prefix(&res[i].err, "not archived %s", name.name);
                    ws_log_err(WS_LOG_ERROR, &res[i].err);
                    exit_code = WS_EXIT_FAIL;
                }
            }
        }
        free(res);
    }
    free(targets);
    ws_cmd_close_repos(repos, nrepos);
    close(fd);
    return exit_code;
}
