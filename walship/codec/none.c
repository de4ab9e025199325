/* none.c — the "none" row of the codec table: the payload is the plaintext, bounded by the
 * length its header records. */
#include "walship/codec/codec.h"

#include <stdlib.h>

typedef struct none_stage {
    ws_stage base;
    uint64_t max_out, passed;
} none_stage;

static int none_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    none_stage *s = (none_stage *)st;
    if (len > s->max_out - s->passed)
        return ws_error_set(err, WS_ECORRUPT, "payload is longer than its header says");
    s->passed += len;
    return ws_stage_write(st->next, buf, len, err);
}

static void none_free(ws_stage *st)
{
    free(st);
}

static const ws_stage_ops none_ops = {"none", none_write, NULL, none_free};

ws_stage *ws_stage_none_decompress_new(uint64_t max_out, ws_stage *next)
{
    none_stage *s = calloc(1, sizeof *s);
    if (!s) {
        ws_stage_free(next);
        return NULL;
    }
    s->base.ops = &none_ops;
    s->base.next = next;
    s->max_out = max_out;
    return &s->base;
}
