/*
 * tar.h — an incremental ustar parser, in the manner of pg_basebackup's astreamer_tar: bytes
 * go in as they arrive from the server, in pieces of any size, and come out as entries
 * (begin → data... → end). Nothing is buffered beyond one 512-byte header, so a file of any
 * size passes through in bounded memory.
 *
 * What PostgreSQL's BASE_BACKUP sends: regular files ('0'), directories ('5') and symlinks to
 * directories ('2', pg_tblspc/<oid>), names of at most 99 bytes with a trailing '/' on
 * directories and symlinks, sizes above 8 GiB in base-256, and (since 15) the two zero
 * blocks that end an archive (13 and 14 end it with the CopyDone instead); a few directories it
 * makes up come as "./pg_wal/...": a leading "./" is dropped. The parser also accepts the ustar
 * prefix field.
 *
 * Hostile input is refused with WS_EINVAL before any callback sees it: bad header checksum,
 * other entry types (hard links, devices, GNU/pax extensions), absolute names, empty, "." or
 * ".." components, control characters, paths below a symlink seen earlier in the archive (a
 * way out of the archive), data after the end-of-archive blocks, a truncated archive.
 *
 * Ownership: ws_tar_parser_new returns a parser freed by ws_tar_parser_free; the entry passed
 * to begin is valid until the next callback.
 */
#ifndef WS_TAR_H
#define WS_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"

#define WS_TAR_BLOCK    512
#define WS_TAR_PATH_MAX 257 /* prefix (155) + '/' + name (100) + NUL */

typedef enum ws_tar_type { WS_TAR_FILE = 0, WS_TAR_DIR, WS_TAR_SYMLINK } ws_tar_type;

typedef struct ws_tar_entry {
    ws_tar_type type;
    char path[WS_TAR_PATH_MAX];     /* relative, no trailing '/' */
    char linkname[WS_TAR_PATH_MAX]; /* symlinks: the target, as stored (may be absolute) */
    uint64_t size;                  /* files: bytes of data; 0 otherwise */
    uint32_t mode;                  /* permission bits */
    int64_t mtime;                  /* seconds since the epoch */
} ws_tar_entry;

/* Each returns 0 to go on, -1 (with err set) to stop the parser; the failure comes back from
 * ws_tar_parser_feed. data is called only for files, end after every entry. */
typedef struct ws_tar_callbacks {
    int (*begin)(void *arg, const ws_tar_entry *e, ws_error *err);
    int (*data)(void *arg, const void *buf, size_t len, ws_error *err);
    int (*end)(void *arg, ws_error *err);
} ws_tar_callbacks;

typedef struct ws_tar_parser ws_tar_parser;

/* NULL when out of memory. cb is copied; arg is passed to every callback. */
ws_tar_parser *ws_tar_parser_new(const ws_tar_callbacks *cb, void *arg);
void ws_tar_parser_free(ws_tar_parser *p);
/* Feeds the next len bytes of the archive. After a failure the parser refuses more input. */
int ws_tar_parser_feed(ws_tar_parser *p, const void *buf, size_t len, ws_error *err);
/* The end of the input: fails (WS_EINVAL) unless the archive ended properly. */
int ws_tar_parser_finish(ws_tar_parser *p, ws_error *err);
/* The same for an archive whose producer does not write the end-of-archive blocks
 * (PostgreSQL 13 and 14's BASE_BACKUP ends each archive with its CopyDone): the input may
 * also end between two entries. Inside a header or a file's data, or after a lone zero block,
 * it is still truncated. */
int ws_tar_parser_finish_unterminated(ws_tar_parser *p, ws_error *err);
/* 1 once the end-of-archive blocks have been read. */
int ws_tar_parser_ended(const ws_tar_parser *p);
/* Bytes of archive consumed so far. */
uint64_t ws_tar_parser_offset(const ws_tar_parser *p);

/* 1 if path is a safe relative path (the rules above, without the symlink rule), else 0. */
int ws_tar_path_safe(const char *path);

#endif
