/*
 * manifest.h — the walship backup manifest (docs/repository-format.md, "Backups"): what a
 * backup is, and where every byte of every file lives. It is the object
 * backup/<id>/walship.manifest, written last with create-only-if-absent: a backup exists once
 * its manifest does, and never before.
 *
 * The text is UTF-8 "key = value" lines: the backup's facts first, then one line per
 * tablespace, directory, symlink and file. Paths, labels and locations are percent-encoded
 * (space, '%', control and non-ASCII bytes as %XX), so every field is one token.
 *
 * Ownership: a builder from ws_manifest_builder_new is freed by ws_manifest_builder_free. A
 * parser stage from ws_manifest_parser_new is an ordinary stage (ws_stage_free); the info it
 * fills and the entries it reports belong to the caller / are valid during the callback.
 */
#ifndef WS_MANIFEST_H
#define WS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"
#include "walship/repo/repo.h"
#include "walship/stage/stage.h"

#define WS_MANIFEST_VERSION   1
#define WS_MANIFEST_NAME      "walship.manifest"
#define WS_MANIFEST_SERVER    "backup_manifest"
#define WS_MANIFEST_ID_MAX    40
#define WS_MANIFEST_LABEL_MAX 1024
#define WS_MANIFEST_PATH_MAX  1024

/* The facts of one backup (the manifest's header lines). */
typedef struct ws_manifest_info {
    int version;
    char id[WS_MANIFEST_ID_MAX];
    char label[WS_MANIFEST_LABEL_MAX + 1];
    uint64_t sysid;
    int pg_version_num; /* server_version_num, e.g. 150004 */
    uint32_t seg_size;
    uint64_t start_lsn, stop_lsn;
    uint32_t start_tli, stop_tli;
    char start_wal[32], stop_wal[32]; /* first and last WAL segment recovery needs */
    int64_t start_time, stop_time;    /* seconds since the epoch, UTC */
    uint64_t original_size;           /* bytes of file data */
    uint64_t stored_size;             /* bytes of the backup's objects, headers included */
    uint64_t file_count;
    int tablespace_count;
} ws_manifest_info;

typedef enum ws_manifest_kind {
    WS_MANIFEST_TABLESPACE = 0,
    WS_MANIFEST_DIR,
    WS_MANIFEST_SYMLINK,
    WS_MANIFEST_FILE,
} ws_manifest_kind;

/* One body line. tablespace is 0 for the data directory (written "base"), else the oid. */
typedef struct ws_manifest_entry {
    ws_manifest_kind kind;
    uint32_t tablespace;
    char path[WS_MANIFEST_PATH_MAX];   /* decoded; for tablespaces, the original location */
    char target[WS_MANIFEST_PATH_MAX]; /* symlinks: the decoded target */
    uint32_t mode;
    int64_t mtime;
    uint64_t size;
    char sha256[65];
    const char *extents; /* files: "-" or "data/NNNNNN@OFF+LEN,..." (see the format doc) */
} ws_manifest_entry;

/* "backup/<id>/<name>" into buf; -1 if it does not fit. */
int ws_manifest_key(const char *id, const char *name, char *buf, size_t len);

/* Percent-encoding of one token; out has room for 3 * strlen(in) + 1. */
void ws_manifest_encode(const char *in, char *out, size_t outlen);
/* Decoding; -1 on a malformed escape or overflow. */
int ws_manifest_decode(const char *in, char *out, size_t outlen);
/* "YYYY-MM-DDTHH:MM:SSZ" (21 bytes with NUL). */
void ws_manifest_format_time(int64_t t, char out[32]);

/* ---- writing ---- */

typedef struct ws_manifest_builder ws_manifest_builder;

ws_manifest_builder *ws_manifest_builder_new(void);
void ws_manifest_builder_free(ws_manifest_builder *b);
/* Body lines, kept in memory (some 200 bytes a file) until ws_manifest_write. */
int ws_manifest_add(ws_manifest_builder *b, const ws_manifest_entry *e, ws_error *err);
/* A file line whose SHA-256 is not known yet (its object is still being written): *slot
 * receives where the digest goes, for ws_manifest_set_sha256. Until then the line holds a
 * placeholder that no reader accepts. */
int ws_manifest_add_pending(ws_manifest_builder *b, const ws_manifest_entry *e, size_t *slot,
                            ws_error *err);
void ws_manifest_set_sha256(ws_manifest_builder *b, size_t slot, const char hex[65]);
/* Renders info + body and stores backup/<info->id>/walship.manifest in repos[0..n),
 * create-only-if-absent. */
int ws_manifest_write(ws_manifest_builder *b, const ws_manifest_info *info, ws_repo **repos, int n,
                      ws_error *err);

/* ---- reading ---- */

/* Called for every body line; return -1 (with err) to stop. May be NULL. */
typedef int (*ws_manifest_entry_fn)(void *arg, const ws_manifest_entry *e, ws_error *err);

/* A sink stage that parses manifest text into *info and reports body lines to fn. Fails
 * (WS_ECORRUPT) on a malformed line, at finish on a missing required key or when the
 * tablespace-count / file-count lines disagree with the lines there. */
ws_stage *ws_manifest_parser_new(ws_manifest_info *info, ws_manifest_entry_fn fn, void *arg);

/* ---- checking (a manifest is untrusted input: restore writes where it says) ---- */

/* Whether p is absolute without empty, "." or ".." components (and no trailing slash). */
int ws_manifest_clean_absolute(const char *p);
/* One entry on its own (info: the manifest's facts): a tablespace location is clean and
 * absolute, not "/"; every other path is relative without empty, "." or ".." components;
 * a tablespace's entries follow PostgreSQL's layout of one (PG_<major>_<catversion>, its
 * <database oid> directories, their files), so a tampered line cannot put a file like
 * authorized_keys at a tablespace location. WS_ECORRUPT naming the path. Checks that need
 * every entry (counts, overlaps, nesting) are the reader's: the parser compares the counts at
 * its end, restore the rest before its first write. */
int ws_manifest_check_entry(const ws_manifest_info *info, const ws_manifest_entry *e,
                            ws_error *err);

/* Reads and verifies backup/<id>/walship.manifest from r. WS_ENOENT if absent. */
int ws_manifest_read(ws_repo *r, const char *id, ws_manifest_info *info, ws_manifest_entry_fn fn,
                     void *arg, ws_error *err);

#endif
