/*
 * read.c — fetch's verified read (read.h), shared by the fetch command (fetch.c) and the
 * prefetch agent's downloads (prefetch.c).
 */
#include "walship/fetch/read.h"

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

int ws_fetch_read(ws_repo *repo, const ws_wal_name *name, const char *key, int fd, const char *what,
                  uint64_t sysid, ws_objhdr *h, ws_error *err)
{
    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot truncate %s", what);
    ws_stage *sink = ws_stage_fd_sink_new(fd, what);
    int rc = sink ? ws_repo_obj_read(repo, key, sink, h, err) : ws_error_oom(err);
    ws_stage_free(sink);
    ws_repo_identity id;
    if (rc == 0 && (name->kind == WS_WAL_SEGMENT || name->kind == WS_WAL_PARTIAL)) {
        unsigned char page[WS_WAL_LONG_HEADER_SIZE];
        ws_wal_header wh;
        ssize_t k = pread(fd, page, sizeof page, 0);
        if (k < 0)
            rc = ws_error_errno(err, WS_EIO, errno, "cannot read back %s", what);
        else if (ws_wal_check_header(page, (size_t)k, name, h->length, &wh, err) < 0) {
            ws_error_prefix(err, "object %s in %s is not the segment it is stored as", key,
                            ws_repo_describe(repo));
            err->code = WS_ECORRUPT;
            rc = -1;
        } else if (sysid && wh.sysid != sysid) {
            rc = ws_error_set(err, WS_ECORRUPT,
                              "object %s in %s belongs to database system %" PRIu64
                              ", not to the repository's %" PRIu64,
                              key, ws_repo_describe(repo), wh.sysid, sysid);
        } else if (sysid && ws_repo_identity_get(repo, &id, err) == 0 && id.seg_size &&
                   h->length != id.seg_size) {
            rc = ws_error_set(err, WS_ECORRUPT,
                              "object %s in %s is a segment of %" PRIu64
                              " bytes; the repository holds segments of %" PRIu32,
                              key, ws_repo_describe(repo), h->length, id.seg_size);
        }
    }
    return rc;
}
