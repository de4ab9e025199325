/* fuzz_manifest.c — walship's own backup manifest (backup/<id>/walship.manifest): the parser
 * stage, each entry then checked as restore checks it. */
#include "walship/repo/manifest.h"
#include "tests/fuzz/fuzz.h"

static int on_entry(void *arg, const ws_manifest_entry *e, ws_error *err)
{
    const ws_manifest_info *info = arg;
    ws_error e2;
    (void)err;
    if (e->extents)
        (void)strlen(e->extents);
    ws_manifest_check_entry(info, e, &e2);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t piece = 1 + data[0] % 64 * 37;
    data++, size--;
    ws_manifest_info info;
    memset(&info, 0, sizeof info);
    ws_stage *st = ws_manifest_parser_new(&info, on_entry, &info);
    if (!st)
        return 0;
    ws_error err;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece)
        rc = ws_stage_write(st, data + off, size - off < piece ? size - off : piece, &err);
    if (rc == 0)
        ws_stage_finish(st, &err);
    ws_stage_free(st);
    return 0;
}
