/* fuzz_timeline.c — timeline history files and the choices made from them. */
#include "tests/fuzz/fuzz.h"
#include "walship/timeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ws_tl_history h[2];
    ws_error err;
    uint32_t tli = size ? 2u + data[0] % 8 : 2;
    if (ws_tl_history_parse(tli, (const char *)data, size, &h[0], &err) != 0)
        return 0;
    if (h[0].n < 0 || h[0].n > WS_TL_MAX_ANCESTORS)
        abort();
    uint64_t end;
    for (uint32_t t = 0; t < 12; t++)
        ws_tl_history_has(&h[0], t, &end);
    h[1] = h[0];
    for (uint64_t seg = 0; seg < 64; seg += 7) {
        ws_tl_choose(h, 2, 1, seg, 16u << 20);
        ws_tl_segment_tli(&h[0], 1, seg, 16u << 20);
        ws_tl_segment_tli(&h[0], 1, seg, 1u << 20);
    }
    return 0;
}
