/* fuzz.h — what the libFuzzer targets share (tests/fuzz/README.md). Each target defines
 * LLVMFuzzerTestOneInput; tests/unit/test_fuzz_regress.c links the same files with a main
 * that replays tests/fuzz/regress/<target>/ and the seed corpora. */
#ifndef WS_FUZZ_H
#define WS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated malloc'd copy of data (the parsers under test take C strings). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
