/* fuzz_keyring.c — the keyring reader every encrypted repository is opened through
 * (ws_keyring_open on the text stored at walship.keyring), with a fixed cipher-key-file
 * secret (fuzz.h; no scrypt runs: a scrypt keyring with a key-file secret is refused before
 * any KDF). Invariant: a keyring that opens can be exported under the same secret and the
 * export opens to the same keys (what `cipher change` relies on).
 *
 * Seeds: FUZZ_MKSEEDS=DIR build/fuzz/fuzz_keyring writes keyrings made by ws_keyring_create,
 * ws_keyring_rotate and ws_keyring_export (key-file and scrypt) into DIR and exits. */
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    if (!text)
        return 0;
    ws_keyring *k = NULL;
    ws_error err;
    if (ws_keyring_open(text, size, fuzz_secret(), "fuzz", &k, &err) == 0) {
        int n = ws_keyring_count(k);
        if (n < 1 || n > WS_KEYRING_IDS)
            abort();
        int have_current = 0;
        for (int i = 0; i < n; i++)
            have_current |= ws_keyring_id(k, i) == ws_keyring_current(k);
        if (!have_current)
            abort(); /* opened a keyring whose current key is not in it */
        (void)ws_keyring_hash_key(k)[31];
        char *again = NULL;
        ws_keyring *k2 = NULL;
        if (ws_keyring_export(k, fuzz_secret(), &again, &err) < 0 ||
            ws_keyring_open(again, strlen(again), fuzz_secret(), "fuzz", &k2, &err) < 0 ||
            !ws_keyring_same(k, k2) || ws_keyring_current(k2) != ws_keyring_current(k))
            abort(); /* what opened does not survive its own export */
        ws_keyring_free(k2);
        free(again);
        ws_keyring_free(k);
#ifdef FUZZ_KEYRING_TRACE
        fprintf(stderr, "fuzz_keyring: opened, %d keys\n", n);
    } else {
        fprintf(stderr, "fuzz_keyring: refused: %s\n", err.msg);
#endif
    }
    free(text);
    return 0;
}

/* ---- seed-making mode ---- */

static void fuzz_keyring_seed(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "fuzz_keyring: cannot write seed %s\n", path);
        exit(1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_MKSEEDS");
    if (!dir || !*dir)
        return 0;
    ws_keyring *k;
    char *text;
    ws_error err;
    if (ws_keyring_create(fuzz_secret(), fuzz_kdf_salt, &k, &text, &err) < 0)
        abort();
    fuzz_keyring_seed(dir, "created", text);
    free(text);
    if (ws_keyring_rotate(k, &err) < 0 || ws_keyring_export(k, fuzz_secret(), &text, &err) < 0)
        abort();
    fuzz_keyring_seed(dir, "rotated-2", text);
    free(text);
    for (int i = 0; i < 3; i++)
        if (ws_keyring_rotate(k, &err) < 0)
            abort();
    if (ws_keyring_export(k, fuzz_secret(), &text, &err) < 0)
        abort();
    fuzz_keyring_seed(dir, "rotated-5", text);
    free(text);
    /* a passphrase keyring: opened with the key file, refused before scrypt runs */
    ws_cipher_secret pass = {.pass = "fuzz passphrase", .source = "cipher-pass (fuzz)"};
    if (ws_keyring_export(k, &pass, &text, &err) < 0)
        abort();
    fuzz_keyring_seed(dir, "scrypt", text);
    free(text);
    ws_keyring_free(k);
    exit(0);
}
