/*
 * store.h — where a base backup's files go: the tar stages' sink. Each tar entry becomes a
 * manifest line; each regular file's bytes become repository objects under
 * backup/<id>/data/NNNNNN (docs/repository-format.md, "Backups"):
 *
 *   - files smaller than pack_threshold are packed together, one after another, into
 *     pack objects of about pack_size (one object write instead of hundreds: a data
 *     directory is mostly small files, and each object costs a file, an fsync and a rename);
 *   - larger files get objects of their own, cut into parts of part_size bytes.
 *
 * Every file's SHA-256 is recorded: computed on the side for packed and multi-part files,
 * taken from the object header for a file that is exactly one object.
 *
 * Ownership: ws_bb_store_new returns a store freed by ws_bb_store_free (which aborts any
 * object still open). The manifest builder and the repositories are borrowed.
 */
#ifndef WS_BB_STORE_H
#define WS_BB_STORE_H

#include <stdint.h>

#include "basebackup/manifest.h"
#include "basebackup/tar.h"
#include "basebackup/verify.h"
#include "walship/repo/repo.h"

typedef struct ws_bb_store_opts {
    ws_repo **repos;
    int nrepos;
    const char *id; /* backup id: objects go under backup/<id>/ */
    ws_codec codec;
    int level;
    uint64_t part_size;      /* > 0 */
    uint64_t pack_threshold; /* files below this size are packed */
    uint64_t pack_size;      /* a pack is closed once it holds this much */
    ws_bb_verify *verify;    /* if not NULL, told of every file stored (borrowed) */
} ws_bb_store_opts;

typedef struct ws_bb_store ws_bb_store;

int ws_bb_store_new(const ws_bb_store_opts *o, ws_manifest_builder *mb, ws_bb_store **out,
                    ws_error *err);
void ws_bb_store_free(ws_bb_store *s);

/* The tablespace the next entries belong to (0 = the data directory). */
void ws_bb_store_set_tablespace(ws_bb_store *s, uint32_t oid);
/* Callbacks for ws_tar_parser_new, with the store as arg. */
const ws_tar_callbacks *ws_bb_store_tar_callbacks(void);

/* Stores a whole stream (the server's backup_manifest) as the one object backup/<id>/name. */
int ws_bb_store_blob_begin(ws_bb_store *s, const char *name, ws_error *err);
int ws_bb_store_blob_write(ws_bb_store *s, const void *buf, size_t len, ws_error *err);
int ws_bb_store_blob_end(ws_bb_store *s, ws_error *err);

/* Commits the open pack. */
int ws_bb_store_finish(ws_bb_store *s, ws_error *err);

typedef struct ws_bb_store_stats {
    uint64_t files, bytes; /* regular files and their bytes */
    uint64_t objects;      /* objects committed */
    uint64_t stored_bytes; /* their stored size in the first repository */
} ws_bb_store_stats;
void ws_bb_store_get_stats(const ws_bb_store *s, ws_bb_store_stats *out);

/* Removes every object under backup/<id>/ from every repository (a failed backup's
 * leftovers); best effort, logs what it cannot remove. */
void ws_bb_store_remove_all(ws_repo **repos, int n, const char *id);

#endif
