/*
 * stage.h — composable stream stages (DESIGN seam 2), in the manner of pg_basebackup's
 * bbstreamer: a chain of small stages, each passing bytes on to the next.
 *
 *   push:  file → sha256 → lz4 compress → storage sink (one or several writers)
 *   fetch: object payload → lz4 decompress (bounded) → sha256 → fd sink
 * (the codec chains are built by walship/codec/codec.h).
 *
 * Ownership, as PostgreSQL's astreamer: every stage owns its next. ws_stage_free frees a
 * stage and everything after it, so freeing the head frees the chain. A constructor that
 * fails frees the next it was given, so a chain is built from the sink outwards without
 * clean-up code: s = a_new(b_new(sink)); if (!s) ... (nothing to free). The one stage that
 * does not own its next is ws_stage_ref_new's: it lets a chain pass bytes on into a stage
 * its caller keeps (a read chain ending in the caller's destination). ws_stage_finish
 * flushes a stage and then its next, so finishing the head finishes the chain (through a
 * ref too). Stages are single-threaded; the pipeline that drives them decides on which
 * thread they run.
 */
#ifndef WS_STAGE_H
#define WS_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"
#include "walship/storage/storage.h"

typedef struct ws_stage ws_stage;

typedef struct ws_stage_ops {
    const char *name;
    int (*write)(ws_stage *st, const void *buf, size_t len, ws_error *err);
    /* Flushes what the stage holds into next (finish of next is done by ws_stage_finish). */
    int (*flush)(ws_stage *st, ws_error *err);
    void (*free)(ws_stage *st);
} ws_stage_ops;

struct ws_stage {
    const ws_stage_ops *ops;
    ws_stage *next;
};

int ws_stage_write(ws_stage *st, const void *buf, size_t len, ws_error *err);
/* Flushes st and every stage after it, in order. */
int ws_stage_finish(ws_stage *st, ws_error *err);
/* Frees st and every stage after it (up to and including a ref stage, not beyond). */
void ws_stage_free(ws_stage *st);
/* The same as ws_stage_free (kept for the callers that name the whole chain). */
void ws_stage_chain_free(ws_stage *st);

/* Passes everything on to next, which it does not own: freeing the ref frees only the ref. */
ws_stage *ws_stage_ref_new(ws_stage *next);
/* Writes everything into each of n chains (owned: freed with the tee; finishing the tee
 * finishes each). The array is copied. On failure the branches are freed. */
ws_stage *ws_stage_tee_new(ws_stage **branches, int n);
/* Counts the bytes that pass on to next (which may be NULL: a counting sink). */
ws_stage *ws_stage_count_new(ws_stage *next);
uint64_t ws_stage_count(const ws_stage *st);
/* Collects everything in memory, at most max bytes: more fails with WS_ECORRUPT "<what> is
 * larger than <max> bytes". The data stays NUL-terminated; valid until the stage is freed. */
ws_stage *ws_stage_mem_sink_new(size_t max, const char *what);
const char *ws_stage_mem_data(const ws_stage *st, size_t *len);

/* SHA-256 of everything that passes through, and its length; passes bytes on to next (which
 * may be NULL: a pure hashing sink). The digest is valid after ws_stage_finish. */
ws_stage *ws_stage_sha256_new(ws_stage *next);
/* The same, hashing on a helper thread while the caller's thread carries the bytes on to
 * next (lz4 on one core, SHA-256 on the other): the bytes are copied into a small ring of
 * buffers, so memory stays bounded (4 x 256 KiB). */
ws_stage *ws_stage_sha256_threaded_new(ws_stage *next);
void ws_stage_sha256_result(const ws_stage *st, unsigned char digest[32], uint64_t *length);
/* Hex of a 32-byte digest into out (65 bytes). */
void ws_sha256_hex(const unsigned char digest[32], char out[65]);
/* One-shot SHA-256. */
void ws_sha256(const void *buf, size_t len, unsigned char digest[32]);

/* The codec stages (lz4, none) are declared in walship/codec/codec.h. */

/* Writes everything into n storage writers (not owned: the caller commits or aborts them).
 * If a writer fails, the stage fails. */
ws_stage *ws_stage_storage_sink_new(ws_storage_writer **writers, int n);
/* Writes everything to fd (not owned, not fsync'd), remembering what for messages. */
ws_stage *ws_stage_fd_sink_new(int fd, const char *what);

#endif
