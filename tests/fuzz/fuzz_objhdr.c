/* fuzz_objhdr.c — the 64-byte object header every repository object starts with. */
#include "tests/fuzz/fuzz.h"
#include "walship/repo/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ws_objhdr h;
    ws_error err;
    if (ws_objhdr_decode(data, size, "wal/fuzz", &h, &err) == 0) {
        unsigned char out[WS_OBJHDR_SIZE], again[WS_OBJHDR_SIZE];
        ws_objhdr h2;
        ws_objhdr_encode(&h, out);
        /* what decodes re-encodes to a header that decodes to the same fields */
        if (ws_objhdr_decode(out, sizeof out, "wal/fuzz", &h2, &err) != 0)
            abort();
        ws_objhdr_encode(&h2, again);
        if (memcmp(out, again, sizeof out) != 0)
            abort();
    }
    return 0;
}
