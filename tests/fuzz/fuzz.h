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

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walship/codec/cipher.h"

/* The fixed test secret of fuzz_cipher and fuzz_keyring: a cipher-key-file (HKDF, no scrypt)
 * holding 32 fixed bytes, written once per process to a private temporary file (removed at
 * exit). The keyring ws_keyring_create derives from it and fuzz_kdf_salt is the same every
 * run, so the committed seeds (FUZZ_MKSEEDS=DIR, see fuzz_cipher.c) decrypt under it. */
static const unsigned char fuzz_kdf_salt[33] = "walship-fuzz-fixed-kdf-salt-0001";
static char fuzz_key_path[64];
static void fuzz_key_unlink(void)
{
    if (fuzz_key_path[0])
        unlink(fuzz_key_path);
}
static inline const ws_cipher_secret *fuzz_secret(void)
{
    static ws_cipher_secret s;
    if (!s.key_file) {
        static const unsigned char key[32] = "walship fuzz key file: 32 bytes";
        snprintf(fuzz_key_path, sizeof fuzz_key_path, "/tmp/walship-fuzz-key.XXXXXX");
        int fd = mkstemp(fuzz_key_path);
        if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, key, 32) != 32)
            abort();
        close(fd);
        atexit(fuzz_key_unlink);
        s.key_file = fuzz_key_path;
        s.source = "cipher-key-file (fuzz)";
    }
    return &s;
}

#endif
