/* fuzz_wal.c — WAL file names (ws_wal_parse_name), LSN text (ws_wal_parse_lsn) and the long
 * page header (ws_wal_check_header). Input: a name line, then the bytes of a first page. */
#include "tests/fuzz/fuzz.h"
#include "walship/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t nlen = nl ? (size_t)(nl - data) : size;
    char *name = fuzz_strndup(data, nlen);
    if (!name)
        return 0;
    ws_error err;
    ws_wal_name n;
    uint64_t lsn;
    ws_wal_parse_lsn(name, &lsn);
    if (ws_wal_parse_name(name, &n, &err) == 0) {
        const uint8_t *page = nl ? nl + 1 : data + size;
        size_t plen = (size_t)(data + size - page);
        uint64_t segno;
        ws_wal_segno(&n, 16u << 20, &segno);
        ws_wal_header h;
        for (uint64_t fs = WS_WAL_SEG_MIN; fs <= (64u << 20); fs <<= 2)
            ws_wal_check_header(page, plen, &n, fs, &h, &err);
        if (plen >= WS_WAL_LONG_HEADER_SIZE) {
            /* the segment size the header itself claims (xlp_seg_size, offset 32) */
            uint32_t seg;
            memcpy(&seg, page + 32, sizeof seg);
            ws_wal_check_header(page, plen, &n, seg, &h, &err);
        }
    }
    free(name);
    return 0;
}
