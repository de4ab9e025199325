/* queue.c — the archive backlog against push-queue-max (queue.h, docs/queue-max.md). */
#include "walship/queue.h"

#include "walship/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define READY_SUFFIX ".ready"

int ws_queue_check(const char *path, const ws_wal_name *name, uint64_t seg_size, uint64_t limit,
                   ws_queue_verdict *v, ws_error *err)
{
    memset(v, 0, sizeof *v);
    char dir[PATH_MAX], status[PATH_MAX + 16];
    ws_dirname(path, dir, sizeof dir);
    snprintf(status, sizeof status, "%s/archive_status", dir);
    DIR *d = opendir(status);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* not a pg_wal: no backlog to speak of */
        return ws_error_errno(err, WS_EIO, errno, "cannot read %s", status);
    }
    /* Segments all have the cluster's size, so the backlog needs a stat only for the few
     * history and backup history files; and "among the oldest k" is "fewer than k older". */
    uint64_t nsegs = 0, older = 0;
    int offered = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name), sl = strlen(READY_SUFFIX);
        if (len <= sl || len - sl >= WS_WAL_NAME_MAX || strcmp(de->d_name + len - sl, READY_SUFFIX))
            continue;
        char wal[WS_WAL_NAME_MAX];
        snprintf(wal, sizeof wal, "%.*s", (int)(len - sl), de->d_name);
        ws_wal_name n;
        ws_error ignored;
        if (ws_wal_parse_name(wal, &n, &ignored) < 0)
            continue;
        v->backlog_files++;
        if (n.kind == WS_WAL_SEGMENT || n.kind == WS_WAL_PARTIAL) {
            v->backlog_bytes += seg_size;
        } else {
            char file[PATH_MAX + WS_WAL_NAME_MAX];
            struct stat st;
            snprintf(file, sizeof file, "%s/%s", dir, wal);
            if (stat(file, &st) == 0)
                v->backlog_bytes += (uint64_t)st.st_size;
        }
        if (n.kind != WS_WAL_SEGMENT)
            continue;
        nsegs++;
        int c = strcmp(n.name, name->name);
        if (c < 0)
            older++;
        else if (c == 0)
            offered = 1;
    }
    closedir(d);
    if (v->backlog_bytes <= limit || seg_size == 0)
        return 0;
    uint64_t excess = v->backlog_bytes - limit;
    v->beyond_files = (excess + seg_size - 1) / seg_size;
    if (v->beyond_files > nsegs)
        v->beyond_files = nsegs;
    v->beyond = offered && name->kind == WS_WAL_SEGMENT && older < v->beyond_files;
    return 0;
}
