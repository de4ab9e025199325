/*
 * stage.h — composable stream stages (DESIGN seam 2), in the manner of pg_basebackup's
 * bbstreamer: a chain of small stages, each passing bytes on to the next.
 *
 *   push:  file → sha256 → lz4 compress → storage sink (one or several writers)
 *   fetch: object payload → lz4 decompress (bounded) → sha256 → fd sink
 *
 * A stage owns nothing downstream: ws_stage_chain_free frees a whole chain from the head,
 * ws_stage_free one stage. ws_stage_finish flushes a stage and then finishes its next
 * stage, so finishing the head finishes the chain. Stages are single-threaded; the
 * pipeline that drives them decides on which thread they run.
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
void ws_stage_free(ws_stage *st);
/* Frees st and every stage after it. */
void ws_stage_chain_free(ws_stage *st);

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

/* lz4 frame compression at level (1 = fastest). content_size, if non-zero, is recorded in
 * the frame header. */
ws_stage *ws_stage_lz4_compress_new(int level, uint64_t content_size, ws_stage *next);
/* lz4 frame decompression; fails with WS_ECORRUPT on a malformed frame, on output beyond
 * max_out bytes, on more input than a frame of max_out bytes can take (empty blocks without
 * end), on bytes after the frame, or on a frame that has not ended at finish. */
ws_stage *ws_stage_lz4_decompress_new(uint64_t max_out, ws_stage *next);

/* Writes everything into n storage writers (not owned: the caller commits or aborts them).
 * If a writer fails, the stage fails. */
ws_stage *ws_stage_storage_sink_new(ws_storage_writer **writers, int n);
/* Writes everything to fd (not owned, not fsync'd), remembering what for messages. */
ws_stage *ws_stage_fd_sink_new(int fd, const char *what);

#endif
