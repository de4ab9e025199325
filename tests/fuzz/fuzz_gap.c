/* fuzz_gap.c — gap records (gap/TTTTTTTTXXXXXXXX/<segment>, walship/repo/gap.c). */
#include "tests/fuzz/fuzz.h"
#include "walship/repo/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, '\0', size))
        return 0; /* ws_repo_gap_get refuses such a record before parsing */
    char *s = fuzz_strndup(data, size);
    if (!s)
        return 0;
    ws_repo_gap g;
    ws_error err;
    if (ws_repo_gap_parse(s, "gap/fuzz", &g, &err) == 0) {
        if (strnlen(g.segment, sizeof g.segment) == sizeof g.segment ||
            strnlen(g.reason, sizeof g.reason) == sizeof g.reason)
            abort();
    }
    free(s);
    return 0;
}
