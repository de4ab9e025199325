/*
 * pipeline.h — push's per-file store pipeline (pipeline.c), shared by the in-process push
 * (push.c) and the async agent's jobs (agent.c).
 */
#ifndef WS_ARCHIVE_PIPELINE_H
#define WS_ARCHIVE_PIPELINE_H

#include <stdint.h>
#include <sys/stat.h>

#include "walship/config.h"
#include "walship/error.h"
#include "walship/repo/repo.h"
#include "walship/wal.h"

typedef struct ws_push_opts {
    ws_codec codec;
    int level;
} ws_push_opts;

/* compress and compress-level; -1 with WS_ECONFIG naming the bad value. */
int ws_push_opts_get(const ws_config *cfg, ws_push_opts *o, ws_error *err);

/* A WAL file PostgreSQL offers, open and validated (name, regular file, page header or
 * text format). path is borrowed; st is the fstat taken at open. */
typedef struct ws_push_file {
    const char *path;
    ws_wal_name name;
    int fd;
    uint64_t size;
    int is_segment;
    ws_wal_header hdr; /* segments only */
    struct stat st;
} ws_push_file;

int ws_push_file_open(const char *path, ws_push_file *f, ws_error *err);
void ws_push_file_close(ws_push_file *f);
/* Streams f once into every repository (cluster check first, all or nothing). Returns 0
 * only when each holds it durably, *oh (may be NULL) then has its header (SHA-256); else
 * -1 with err = the first failure. Logs one line per repository. Reads f->fd from its
 * current offset (0 after open). Thread-safe as long as repos is used by this call alone. */
int ws_push_file_store(ws_push_file *f, ws_repo **repos, int n, const ws_push_opts *o,
                       ws_objhdr *oh, ws_error *err);

#endif
