/* fuzz_server_manifest.c — PostgreSQL's backup_manifest (JSON) as basebackup/verify.c reads
 * it to check the files it received. The input's first line lists "path size" pairs the
 * verifier is told it received; the rest is the manifest. */
#include "basebackup/verify.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ws_bb_verify *v = ws_bb_verify_new();
    if (!v)
        return 0;
    ws_error err;
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl) {
        char *files = fuzz_strndup(data, (size_t)(nl - data));
        char *save = NULL;
        for (char *t = files ? strtok_r(files, " ", &save) : NULL; t;
             t = strtok_r(NULL, " ", &save)) {
            char *sz = strtok_r(NULL, " ", &save);
            unsigned char digest[32] = {0};
            ws_bb_verify_add(v, t, sz ? strtoull(sz, NULL, 10) : 0, digest, 0xdeadbeefu, &err);
            if (!sz)
                break;
        }
        free(files);
        size -= (size_t)(nl + 1 - data);
        data = nl + 1;
    }
    size_t piece = size / 3 + 1;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece)
        rc = ws_bb_verify_feed(v, data + off, size - off < piece ? size - off : piece, &err);
    uint64_t checked;
    if (rc == 0)
        ws_bb_verify_finish(v, &checked, &err);
    ws_bb_verify_free(v);
    return 0;
}
