/* fuzz_lz4.c — the bounded lz4 frame decompression stage fetch and restore read objects
 * through: the input's first byte picks the bound (tiny to 1 MiB) and the piece size. Output
 * beyond the bound must be refused, never written. */
#include "tests/fuzz/fuzz.h"
#include "walship/codec/codec.h"
#include "walship/stage/stage.h"

typedef struct count_sink {
    ws_stage base;
    uint64_t n;
} count_sink;

static int cs_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    (void)err;
    ((count_sink *)st)->n += len;
    if (len)
        (void)((volatile const char *)buf)[len - 1];
    return 0;
}
static int cs_flush(ws_stage *st, ws_error *err)
{
    (void)st;
    (void)err;
    return 0;
}
static void cs_free(ws_stage *st)
{
    (void)st;
}
static const ws_stage_ops cs_ops = {"count", cs_write, cs_flush, cs_free};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint64_t bounds[] = {0, 1, 100, 4096, 65536, 1u << 20, 16u << 20, 333};
    uint64_t max_out = bounds[data[0] & 7];
    size_t piece = (data[0] >> 3) == 0 ? size : 1 + (size_t)(data[0] >> 3) * 97;
    data++, size--;
    count_sink sink = {{&cs_ops, NULL}, 0};
    ws_stage *st = ws_stage_lz4_decompress_new(max_out, &sink.base);
    if (!st)
        return 0;
    ws_error err;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece)
        rc = ws_stage_write(st, data + off, size - off < piece ? size - off : piece, &err);
    if (rc == 0)
        rc = ws_stage_finish(st, &err);
    if (sink.n > max_out)
        abort();
    ws_stage_free(st);
    return 0;
}
