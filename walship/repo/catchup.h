/*
 * catchup.h — repoN-mode = sync | catch-up (issue 15, "Several locations without one stalling
 * the others"; docs/async.md, "Catch-up repositories").
 *
 * push acknowledges a file once it is durable in every sync repository; a catch-up repository
 * is filled afterwards, by the push agent, from the first sync repository (the source), oldest
 * first. Its backlog is not recorded anywhere: it is computed by listing, the WAL objects the
 * source holds that the catch-up repository lacks (docs/decisions.md, "Catch-up backlog by
 * listing"). What the target expired (older than its oldest WAL object) is not backlog.
 *
 * Ownership: a backlog's keys are the caller's, freed by ws_catchup_backlog_free.
 */
#ifndef WS_REPO_CATCHUP_H
#define WS_REPO_CATCHUP_H

#include <stdint.h>

#include "walship/config.h"
#include "walship/error.h"
#include "walship/repo/repo.h"

/* Reads repoN-mode of every configured repository into catchup[i] (1 = catch-up; at least
 * WS_CONFIG_MAX_REPOS entries) and returns the index of the first sync repository, the
 * source of the catch-up copies. -1 with WS_ECONFIG naming the setting for a value that is
 * not sync or catch-up, or when no repository is sync. */
int ws_repo_modes(const ws_config *cfg, int *catchup, ws_error *err);

typedef struct ws_catchup_item {
    char *key;
    uint64_t size; /* stored bytes in the source */
} ws_catchup_item;

typedef struct ws_catchup_backlog {
    ws_catchup_item *v; /* oldest first: history files, gap records, then segments by name */
    int n;
    uint64_t bytes;       /* stored bytes of the n objects in the source */
    char dst_newest[128]; /* ws_catchup_backlog_of: the newest WAL segment key dst holds */
} ws_catchup_backlog;

/* The WAL objects (wal/) and gap records (gap/) src holds and dst lacks, from one listing of
 * each; of the segments, only those after dst's oldest WAL segment (all if it has none). -1 with
 * err when either cannot be listed. */
int ws_catchup_backlog_of(ws_repo *src, ws_repo *dst, ws_catchup_backlog *b, ws_error *err);
void ws_catchup_backlog_free(ws_catchup_backlog *b);
/* While dst cannot be listed: the WAL segments of src after the key after ("" or NULL: all
 * of them), a lower bound of dst's backlog (the agent keeps the newest key it saw in dst). */
int ws_catchup_backlog_after(ws_repo *src, const char *after, ws_catchup_backlog *b, ws_error *err);

/* For metrics and check: the backlog of configured repository i (0-based) behind the source
 * (*source its index), both opened here and closed. 0 with *files, *bytes when i is catch-up;
 * 1 when it is sync (nothing computed); -1 with err when either cannot be listed or the modes
 * are wrong. */
int ws_catchup_backlog_cfg(const ws_config *cfg, int i, int *source, uint64_t *files,
                           uint64_t *bytes, ws_error *err);

/* ---- one object from one repository into another (walship copy, catch-up, basebackup) ---- */

/* The stored header of key in r, read from the object itself (a ranged read of its first
 * bytes): S3 metadata does not carry the kind, which a copy must keep (an encrypted object's
 * associated data binds it). */
int ws_repo_obj_stored_header(ws_repo *r, const char *key, ws_objhdr *h, ws_error *err);

/* Streams src's object key (stored header h, read with ws_repo_obj_stored_header) verified
 * into w, bounded by h's length; *rh gets the verified header (the plaintext SHA-256). -1 with
 * err; w is left to the caller (commit or abort). */
int ws_repo_obj_fill(ws_repo *src, const char *key, const ws_objhdr *h, ws_repo_obj_writer *w,
                     ws_objhdr *rh, ws_error *err);

/* Whether dst, whose header for key is t, holds the same plaintext as src's object with stored
 * header h. Compared in dst's terms: an encrypted repository keeps a keyed hash under its own
 * hash key, so never the two headers' bytes (two keyrings, or one side plain, differ for the
 * same plaintext). An encrypted src is read and verified (its key) to learn the plaintext's
 * SHA-256. plain gets it. 1 the same, 0 different, -1 with err (*src_failed 1 when reading src
 * failed, 0 when dst's keyring did). */
int ws_repo_obj_same(ws_repo *src, const ws_objhdr *h, ws_repo *dst, const ws_objhdr *t,
                     const char *key, unsigned char plain[32], int *src_failed, ws_error *err);

/* Copies one object key from src to dst as `walship copy` does: read back verified from src
 * (header, length, SHA-256 or keyed hash), written create-only-if-absent into dst with src's
 * codec at level, re-encrypted under dst's keyring when dst is encrypted. 0 when dst now holds
 * it (*stored 1 if written now, 0 if it was there already with the same plaintext); -1 with
 * err otherwise (WS_EMISMATCH: dst holds a different object under key, left alone). stored
 * may be NULL. */
int ws_repo_obj_copy(ws_repo *src, ws_repo *dst, const char *key, int level, int *stored,
                     ws_error *err);

#endif
