/* fuzz_tar.c — the incremental ustar parser (BASE_BACKUP streams), fed in pieces whose sizes
 * come from the input's first byte, finished both ways. */
#include "basebackup/tar.h"
#include "tests/fuzz/fuzz.h"

static int on_begin(void *arg, const ws_tar_entry *e, ws_error *err)
{
    (void)arg;
    (void)err;
    if (!ws_tar_path_safe(e->path))
        abort(); /* the parser promised to refuse it */
    return 0;
}
static int on_data(void *arg, const void *buf, size_t len, ws_error *err)
{
    (void)err;
    *(uint64_t *)arg += len;
    if (len)
        (void)((volatile const char *)buf)[len - 1];
    return 0;
}
static int on_end(void *arg, ws_error *err)
{
    (void)arg;
    (void)err;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = 1 + (data[0] % 4 == 0   ? 1
                        : data[0] % 4 == 1 ? 511
                        : data[0] % 4 == 2 ? 513
                                           : 8192);
    int unterminated = data[0] & 0x80;
    data++, size--;
    uint64_t bytes = 0;
    ws_tar_callbacks cb = {on_begin, on_data, on_end};
    ws_tar_parser *p = ws_tar_parser_new(&cb, &bytes);
    if (!p)
        return 0;
    ws_error err;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece)
        rc = ws_tar_parser_feed(p, data + off, size - off < piece ? size - off : piece, &err);
    if (rc == 0) {
        if (unterminated)
            ws_tar_parser_finish_unterminated(p, &err);
        else
            ws_tar_parser_finish(p, &err);
    }
    if (ws_tar_parser_offset(p) > size)
        abort();
    ws_tar_parser_free(p);
    return 0;
}
