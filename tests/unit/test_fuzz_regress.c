/* test_fuzz_regress.c — replays every fuzz input kept in the tree through the same harness code
 * the libFuzzer targets run (tests/fuzz/fuzz_*.c, each entry point renamed here): the
 * regression inputs of bugs the fuzzers found (tests/fuzz/regress/<target>/) and the seed
 * corpora (tests/fuzz/corpus/<target>/). A regressed parser crashes, trips a sanitizer
 * (make check SANITIZE=1) or an abort() of a harness invariant, which fails this test.
 * The tree is found from the working directory (make check runs at the top) or
 * WALSHIP_SRC_DIR. */
#include "tests/unit/tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fuzz_wal_one
#include "tests/fuzz/fuzz_wal.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_objhdr_one
#include "tests/fuzz/fuzz_objhdr.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_gap_one
#include "tests/fuzz/fuzz_gap.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_timeline_one
#include "tests/fuzz/fuzz_timeline.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tar_one
#include "tests/fuzz/fuzz_tar.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_manifest_one
#include "tests/fuzz/fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_server_manifest_one
#include "tests/fuzz/fuzz_server_manifest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_s3_xml_one
#include "tests/fuzz/fuzz_s3_xml.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_http_headers_one
#include "tests/fuzz/fuzz_http_headers.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_lz4_one
#include "tests/fuzz/fuzz_lz4.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "tests/fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
/* the targets with a seed-making mode: their LLVMFuzzerInitialize renamed too (not called) */
#define LLVMFuzzerTestOneInput fuzz_cipher_one
#define LLVMFuzzerInitialize   fuzz_cipher_mkseeds
#include "tests/fuzz/fuzz_cipher.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_keyring_one
#define LLVMFuzzerInitialize   fuzz_keyring_mkseeds
#include "tests/fuzz/fuzz_keyring.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_pin_one
#define LLVMFuzzerInitialize   fuzz_pin_mkseeds
#include "tests/fuzz/fuzz_pin.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize

static const struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
} targets[] = {
    {"wal", fuzz_wal_one},
    {"objhdr", fuzz_objhdr_one},
    {"gap", fuzz_gap_one},
    {"timeline", fuzz_timeline_one},
    {"tar", fuzz_tar_one},
    {"manifest", fuzz_manifest_one},
    {"server_manifest", fuzz_server_manifest_one},
    {"s3_xml", fuzz_s3_xml_one},
    {"http_headers", fuzz_http_headers_one},
    {"lz4", fuzz_lz4_one},
    {"config", fuzz_config_one},
    {"cipher", fuzz_cipher_one},
    {"keyring", fuzz_keyring_one},
    {"pin", fuzz_pin_one},
};

/* Runs every file of dir through one; the number run, -1 if dir cannot be read. */
static int replay(const char *dir, int (*one)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        struct stat st;
        if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
            fclose(f);
            continue;
        }
        size_t len = (size_t)st.st_size;
        uint8_t *buf = malloc(len ? len : 1);
        if (buf && fread(buf, 1, len, f) == len) {
            one(buf, len);
            n++;
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    return n;
}

int main(void)
{
    plan_no_plan();
    const char *src = getenv("WALSHIP_SRC_DIR");
    char root[4096];
    snprintf(root, sizeof root, "%s/tests/fuzz/corpus", src && *src ? src : ".");
    struct stat st;
    ok(stat(root, &st) == 0 && S_ISDIR(st.st_mode), "seed corpora found at %s", root);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src && *src ? src : ".",
                 targets[i].name);
        int seeds = replay(dir, targets[i].one);
        ok(seeds > 0, "%s: %d seed inputs replayed", targets[i].name, seeds);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", src && *src ? src : ".",
                 targets[i].name);
        int regress = replay(dir, targets[i].one);
        ok(1, "%s: %d regression inputs replayed", targets[i].name, regress < 0 ? 0 : regress);
    }
    return done_testing();
}
