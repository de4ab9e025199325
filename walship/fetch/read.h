/*
 * read.h — fetch's verified read (read.c), shared by the fetch command and the prefetch agent.
 */
#ifndef WS_FETCH_READ_H
#define WS_FETCH_READ_H

#include <stdint.h>

#include "walship/error.h"
#include "walship/repo/repo.h"
#include "walship/wal.h"

/* The plaintext of key from repo into fd (truncated first; what names it in messages),
 * verified — object header, length, SHA-256, and for a segment its page header against name
 * (the right segment) and, if sysid is not 0 (the caller read the identity), the database
 * system identifier and the repository's segment size. -1 with err: WS_ENOENT absent,
 * WS_ETRANSIENT worth retrying, WS_ECORRUPT a failed verification (fd then holds bytes not
 * to be used). Thread-safe as long as repo is used by this call alone. */
int ws_fetch_read(ws_repo *repo, const ws_wal_name *name, const char *key, int fd, const char *what,
                  uint64_t sysid, ws_objhdr *h, ws_error *err);

#endif
