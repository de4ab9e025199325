/*
 * protocol.h — the BASE_BACKUP dialect of each PostgreSQL major walship backs up (13 to 18).
 *
 * 15 and later: options in parentheses with TARGET 'client'; the reply is one CopyOut of
 * typed messages ('n' new archive, 'd' data, 'p' progress, 'm' manifest), each archive a tar
 * stream ended by its two zero blocks.
 *
 * 13 and 14: bare options (FAST, NOWAIT: no TARGET, no WAL unless asked); after the start
 * position and the tablespace list, one CopyOut per tablespace in the list's order (the data
 * directory last), each raw tar bytes that the server does not end with the end-of-archive
 * blocks (pg_basebackup added them), then one CopyOut of the backup_manifest; then the stop
 * position. Both dialects ask for a manifest with CRC32C checksums, for the same checks.
 *
 * walship calls no backup function (pg_backup_start / pg_start_backup): BASE_BACKUP does
 * that in the walsender; pg_switch_wal, which walship calls, has its name since 10.
 */
#ifndef WS_BB_PROTOCOL_H
#define WS_BB_PROTOCOL_H

#include <stddef.h>

#include "walship/error.h"

typedef enum ws_bb_dialect {
    WS_BB_LEGACY = 1, /* 13, 14 */
    WS_BB_TARGET = 2, /* 15 and later */
} ws_bb_dialect;

typedef struct ws_bb_options {
    const char *label; /* quoted here; at most 1000 bytes, no control characters */
    int fast;          /* checkpoint fast (else spread) */
    long max_rate;     /* kB/s; 0 = unlimited */
} ws_bb_options;

/* The dialect of a server (PQserverVersion, e.g. 140023). A major outside WS_PG_MAJOR_MIN..
 * WS_PG_MAJOR_MAX is WS_ECONFIG with a message naming it and the supported range. */
int ws_bb_dialect_for(int server_version_num, ws_bb_dialect *out, ws_error *err);

/* Writes the BASE_BACKUP command into buf (cap bytes; 4096 is always enough). */
int ws_bb_command(ws_bb_dialect d, const ws_bb_options *o, char *buf, size_t cap, ws_error *err);

#endif
