/* lz4.c — lz4 frame compression and bounded decompression stages (the "lz4" row of the
 * codec table). Compression at level (1 = fastest); content_size, if non-zero, is recorded
 * in the frame header. Decompression fails with WS_ECORRUPT on a malformed frame, on output
 * beyond max_out bytes, on more input than a frame of max_out bytes can take (empty blocks
 * without end), on bytes after the frame, or on a frame that has not ended at finish. */
#include "walship/codec/codec.h"

#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>

#define LZ4_CHUNK (64 * 1024)

/* Compressed output collects in one buffer of about LZ4_OUT_CAP bytes and goes on to next
 * when the next block might not fit: a 16 MiB segment reaches the sink in a dozen writes or
 * so, not one per 64 KiB block. 256 KiB rather than more: every page of it is a page fault
 * in a process that lives for one segment (1 MiB cost ~190 more faults per push). */
#define LZ4_OUT_CAP (256 * 1024)

typedef struct lz4c_stage {
    ws_stage base;
    LZ4F_cctx *ctx;
    LZ4F_preferences_t prefs;
    int begun;
    size_t cap, used, block_bound; /* block_bound: the most one LZ4_CHUNK of input yields */
    char *out;
} lz4c_stage;

static int lz4c_drain(lz4c_stage *s, ws_error *err)
{
    size_t n = s->used;
    s->used = 0;
    return ws_stage_write(s->base.next, s->out, n, err);
}

static int lz4c_begin(lz4c_stage *s, ws_error *err)
{
    size_t n = LZ4F_compressBegin(s->ctx, s->out, s->cap, &s->prefs);
    if (LZ4F_isError(n))
        return ws_error_set(err, WS_EINTERNAL, "lz4: %s", LZ4F_getErrorName(n));
    s->begun = 1;
    s->used = n;
    return 0;
}

static int lz4c_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    lz4c_stage *s = (lz4c_stage *)st;
    if (!s->begun && lz4c_begin(s, err) < 0)
        return -1;
    const char *p = buf;
    while (len) {
        size_t k = len < LZ4_CHUNK ? len : LZ4_CHUNK;
        if (s->cap - s->used < s->block_bound && lz4c_drain(s, err) < 0)
            return -1;
        size_t n = LZ4F_compressUpdate(s->ctx, s->out + s->used, s->cap - s->used, p, k, NULL);
        if (LZ4F_isError(n))
            return ws_error_set(err, WS_EINTERNAL, "lz4: %s", LZ4F_getErrorName(n));
        s->used += n;
        p += k;
        len -= k;
    }
    return 0;
}

static int lz4c_flush(ws_stage *st, ws_error *err)
{
    lz4c_stage *s = (lz4c_stage *)st;
    if (!s->begun && lz4c_begin(s, err) < 0)
        return -1;
    if (s->cap - s->used < s->block_bound && lz4c_drain(s, err) < 0)
        return -1;
    size_t n = LZ4F_compressEnd(s->ctx, s->out + s->used, s->cap - s->used, NULL);
    if (LZ4F_isError(n))
        return ws_error_set(err, WS_EINTERNAL, "lz4: %s", LZ4F_getErrorName(n));
    s->used += n;
    return lz4c_drain(s, err);
}

static void lz4c_free(ws_stage *st)
{
    lz4c_stage *s = (lz4c_stage *)st;
    LZ4F_freeCompressionContext(s->ctx);
    free(s->out);
    free(s);
}

static const ws_stage_ops lz4c_ops = {"lz4-compress", lz4c_write, lz4c_flush, lz4c_free};

ws_stage *ws_stage_lz4_compress_new(int level, uint64_t content_size, ws_stage *next)
{
    lz4c_stage *s = calloc(1, sizeof *s);
    if (!s) {
        ws_stage_free(next);
        return NULL;
    }
    s->base.ops = &lz4c_ops;
    s->base.next = next;
    s->prefs.compressionLevel = level;
    s->prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    /* Independent blocks, as the lz4 CLI writes them: a linked block makes LZ4F copy the
     * previous 64 KiB as the next block's dictionary on every update (an extra memcpy of the
     * whole file) for a ratio gain of a few percent. Readers handle both. */
    s->prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    s->prefs.frameInfo.contentSize = content_size;
    /* compressBound(LZ4_CHUNK) covers a block plus whatever LZ4F still holds, and the end mark */
    s->block_bound = LZ4F_compressBound(LZ4_CHUNK, &s->prefs);
    s->cap = LZ4_OUT_CAP + s->block_bound + LZ4F_HEADER_SIZE_MAX;
    s->out = malloc(s->cap);
    if (!s->out || LZ4F_isError(LZ4F_createCompressionContext(&s->ctx, LZ4F_VERSION))) {
        free(s->out);
        free(s);
        ws_stage_free(next);
        return NULL;
    }
    return &s->base;
}

typedef struct lz4d_stage {
    ws_stage base;
    LZ4F_dctx *ctx;
    uint64_t max_out, produced;
    uint64_t max_in, consumed; /* compressed bytes: bounded too (see lz4_max_input) */
    int ended;                 /* LZ4F_decompress returned 0: the frame is complete */
    char out[LZ4_CHUNK];
} lz4d_stage;

static int lz4d_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    lz4d_stage *s = (lz4d_stage *)st;
    const char *p = buf;
    if (len > s->max_in - s->consumed)
        return ws_error_set(err, WS_ECORRUPT,
                            "lz4 frame is longer than %llu bytes, more than any frame of the %llu "
                            "bytes recorded in the object header (a frame of empty blocks?)",
                            (unsigned long long)s->max_in, (unsigned long long)s->max_out);
    s->consumed += len;
    while (len) {
        if (s->ended)
            return ws_error_set(err, WS_ECORRUPT, "data after the end of the lz4 frame");
        size_t in = len, out = sizeof s->out;
        size_t hint = LZ4F_decompress(s->ctx, s->out, &out, p, &in, NULL);
        if (LZ4F_isError(hint))
            return ws_error_set(err, WS_ECORRUPT, "lz4 frame is damaged: %s",
                                LZ4F_getErrorName(hint));
        if (out) {
            if (s->produced + out > s->max_out)
                return ws_error_set(err, WS_ECORRUPT,
                                    "lz4 frame decompresses to more than the %llu bytes "
                                    "recorded in the object header",
                                    (unsigned long long)s->max_out);
            s->produced += out;
            if (ws_stage_write(st->next, s->out, out, err) < 0)
                return -1;
        }
        if (hint == 0)
            s->ended = 1;
        p += in;
        len -= in;
        if (in == 0 && out == 0)
            return ws_error_set(err, WS_EINTERNAL, "lz4 decompression made no progress");
    }
    return 0;
}

static int lz4d_flush(ws_stage *st, ws_error *err)
{
    lz4d_stage *s = (lz4d_stage *)st;
    /* drain output still buffered inside the decoder */
    for (;;) {
        if (s->ended)
            return 0;
        size_t in = 0, out = sizeof s->out;
        size_t hint = LZ4F_decompress(s->ctx, s->out, &out, NULL, &in, NULL);
        if (LZ4F_isError(hint))
            return ws_error_set(err, WS_ECORRUPT, "lz4 frame is damaged: %s",
                                LZ4F_getErrorName(hint));
        if (out == 0 && hint != 0)
            return ws_error_set(err, WS_ECORRUPT, "lz4 frame is truncated");
        if (s->produced + out > s->max_out)
            return ws_error_set(err, WS_ECORRUPT, "lz4 frame decompresses to too many bytes");
        s->produced += out;
        if (ws_stage_write(st->next, s->out, out, err) < 0)
            return -1;
        if (hint == 0)
            s->ended = 1;
    }
}

static void lz4d_free(ws_stage *st)
{
    lz4d_stage *s = (lz4d_stage *)st;
    LZ4F_freeDecompressionContext(s->ctx);
    free(s);
}

static const ws_stage_ops lz4d_ops = {"lz4-decompress", lz4d_write, lz4d_flush, lz4d_free};

/* The most compressed bytes an honest frame of max_out plaintext bytes can hold. A frame
 * stores a block uncompressed when compression would grow it, so the worst is the plaintext
 * plus 4 bytes per block, the frame header (<= 19), the end mark and a checksum; a 1/64
 * allowance and 4 KiB cover any block size. Without this bound, blocks that decompress to
 * nothing (5 bytes each) would be read for ever without producing a byte. */
static uint64_t lz4_max_input(uint64_t max_out)
{
    if (max_out > UINT64_MAX / 2)
        return UINT64_MAX;
    return max_out + max_out / 64 + 4096;
}

ws_stage *ws_stage_lz4_decompress_new(uint64_t max_out, ws_stage *next)
{
    lz4d_stage *s = calloc(1, sizeof *s);
    if (!s) {
        ws_stage_free(next);
        return NULL;
    }
    s->base.ops = &lz4d_ops;
    s->base.next = next;
    s->max_out = max_out;
    s->max_in = lz4_max_input(max_out);
    if (LZ4F_isError(LZ4F_createDecompressionContext(&s->ctx, LZ4F_VERSION))) {
        free(s);
        ws_stage_free(next);
        return NULL;
    }
    return &s->base;
}
