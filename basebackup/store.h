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
 * Objects are written in parallel (the thread queue, objqueue.h; this module is the content
 * logic, on the caller's thread): the caller's thread (the replication stream) hands each
 * object's bytes to `parallel` writer threads, each with its own repository handles, which
 * hash, compress, write and commit (fsync) them. The bytes handed over and not yet taken by a
 * writer are bounded by max_inflight (or one pack, when a pack is larger): past it the
 * caller's thread waits, and the server's stream waits with it. A pack is gathered whole
 * before it is handed over (at most pack_size); a part streams to its writer as it arrives.
 * Memory is thus about max_inflight + pack_size + the writers' own buffers, whatever the
 * cluster's size.
 *
 * Every file's SHA-256 is recorded: computed on the caller's thread for packed and multi-part
 * files, taken from the object header for a file that is exactly one object (its manifest
 * line is completed, and the file checked against the server's manifest, once its object is
 * committed). A failed object fails the store: the next call returns its error, and
 * ws_bb_store_finish returns only once every object is committed (or one failed).
 *
 * Ownership: ws_bb_store_new returns a store freed by ws_bb_store_free (which stops the
 * writers and aborts every object not yet committed). The manifest builder, the verifier, the
 * repositories and the configuration are borrowed; the writers open repositories of their
 * own from the configuration.
 */
#ifndef WS_BB_STORE_H
#define WS_BB_STORE_H

#include <stdint.h>

#include "walship/repo/manifest.h"
#include "basebackup/tar.h"
#include "basebackup/verify.h"
#include "walship/config.h"
#include "walship/repo/repo.h"

typedef struct ws_bb_store_opts {
    ws_repo **repos; /* the caller's (stats and cleanup); writers open their own from cfg */
    int nrepos;
    const ws_config *cfg; /* the repositories the writers open */
    const char *id;       /* backup id: objects go under backup/<id>/ */
    ws_codec codec;
    int level;
    uint64_t part_size;      /* > 0 */
    uint64_t pack_threshold; /* files below this size are packed */
    uint64_t pack_size;      /* a pack is closed once it holds this much */
    int parallel;            /* writer threads, >= 1 */
    uint64_t max_inflight;   /* bytes handed to writers and not yet taken, > 0 */
    ws_bb_verify *verify;    /* if not NULL, told of every file stored (borrowed) */
} ws_bb_store_opts;

typedef struct ws_bb_store ws_bb_store;

/* Starts the writer threads (each opening its repositories). */
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

/* Commits the open pack and waits until every object is committed: 0 only if all were. */
int ws_bb_store_finish(ws_bb_store *s, ws_error *err);

typedef struct ws_bb_store_stats {
    uint64_t files, bytes;  /* regular files and their bytes */
    uint64_t objects;       /* objects committed */
    uint64_t stored_bytes;  /* their stored size in the first repository */
    uint64_t peak_inflight; /* the most bytes handed over and not yet taken at once */
} ws_bb_store_stats;
void ws_bb_store_get_stats(ws_bb_store *s, ws_bb_store_stats *out);

#endif
