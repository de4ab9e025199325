/*
 * fsutil.h — small file-system helpers shared by the posix driver, fetch and the agent.
 */
#ifndef WS_FSUTIL_H
#define WS_FSUTIL_H

#include <stddef.h>

#include "walship/error.h"

/* The directory part of path into out ("." for a bare name, "/" for "/x"). */
void ws_dirname(const char *path, char *out, size_t len);

/* fsync(2) of a directory, so that a link or rename in it is durable. File systems that
 * cannot fsync a directory (EINVAL, some NAS clients) count as success. */
int ws_fsync_dir(const char *dir, ws_error *err);

#endif
