/*
 * queue.h — push-queue-max (docs/queue-max.md): which files of PostgreSQL's archive backlog
 * are beyond the limit, so that push may drop them (record a gap, report them archived)
 * instead of letting pg_wal fill the disk.
 *
 * The backlog is what PostgreSQL still has to archive: the .ready files in
 * pg_wal/archive_status. When it holds more than the limit, the oldest WAL segments (by name,
 * the order PostgreSQL archives them in) are the ones beyond it, as many as it takes to bring
 * the rest under the limit. Timeline history files, backup history files and .partial
 * segments count towards the backlog but are never beyond the limit: recovery needs them and
 * they are few.
 */
#ifndef WS_QUEUE_H
#define WS_QUEUE_H

#include <stdint.h>

#include "walship/error.h"
#include "walship/wal.h"

typedef struct ws_queue_verdict {
    int beyond;             /* 1: the file is among the oldest beyond the limit */
    uint64_t backlog_files; /* .ready files beside the file (itself included) */
    uint64_t backlog_bytes; /* and their bytes */
    uint64_t beyond_files;  /* how many of the oldest segments are beyond the limit */
} ws_queue_verdict;

/* Looks at the backlog beside path (a WAL segment named name, seg_size bytes, like every
 * segment of its cluster) against limit bytes. A file that is not in a pg_wal (no
 * archive_status beside it) or that PostgreSQL is not offering (no NAME.ready) is never
 * beyond. -1 with err if archive_status exists but cannot be read. */
int ws_queue_check(const char *path, const ws_wal_name *name, uint64_t seg_size, uint64_t limit,
                   ws_queue_verdict *v, ws_error *err);

#endif
