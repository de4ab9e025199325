/* fuzz_cipher.c — the AES-256-GCM frame reader fetch and restore decrypt objects through
 * (ws_stage_decrypt_new, docs/encryption.md) and ws_cipher_prefix_key_id, under a fixed test
 * keyring (fuzz.h: ws_keyring_create from a fixed key file and salt).
 *
 * Input: byte 0 picks the piece size the payload is written in; byte 1 the codec, byte 2 the
 * kind, bytes 3-10 the header's plaintext length (LE), 11-42 its keyed hash; the rest is the
 * object's payload (prefix, frames). Invariant: a payload the stage accepts (finish returns
 * 0) decrypted to exactly the header's length and keyed hash — a forged or damaged one must
 * fail, never pass with other bytes.
 *
 * Seeds: FUZZ_MKSEEDS=DIR build/fuzz/fuzz_cipher writes real objects made by the encrypt
 * stage (several plaintext sizes across frame boundaries) into DIR and exits
 * (tests/fuzz/mkseeds.pl runs it). */
#include "tests/fuzz/fuzz.h"
#include "walship/stage/stage.h"

#define FUZZ_CIPHER_KEY "wal/0000000100000000/000000010000000000000001"
#define FUZZ_CIPHER_HDR 43

static ws_keyring *fuzz_cipher_keyring(void)
{
    static ws_keyring *k;
    if (!k) {
        char *text = NULL;
        ws_error err;
        if (ws_keyring_create(fuzz_secret(), fuzz_kdf_salt, &k, &text, &err) < 0)
            abort();
        free(text);
    }
    return k;
}

typedef struct buf_sink {
    ws_stage base;
    unsigned char *p;
    size_t n, cap;
} buf_sink;

static int bs_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    buf_sink *b = (buf_sink *)st;
    if (!b->p) { /* counting only */
        b->n += len;
        if (len)
            (void)((volatile const char *)buf)[len - 1];
        return 0;
    }
    if (b->n + len > b->cap) {
        size_t cap = (b->n + len) * 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p)
            return ws_error_oom(err);
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, buf, len);
    b->n += len;
    return 0;
}
static int bs_flush(ws_stage *st, ws_error *err)
{
    (void)st;
    (void)err;
    return 0;
}
static void bs_free(ws_stage *st)
{
    (void)st;
}
static const ws_stage_ops bs_ops = {"buf", bs_write, bs_flush, bs_free};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < FUZZ_CIPHER_HDR)
        return 0;
    ws_error err;
    uint32_t id;
    (void)ws_cipher_prefix_key_id(data + FUZZ_CIPHER_HDR, size - FUZZ_CIPHER_HDR, &id, &err);
    size_t piece = data[0] == 0 ? size : 1 + (size_t)data[0] * 257;
    ws_cipher_obj o = {.keyring = fuzz_cipher_keyring(), .key = FUZZ_CIPHER_KEY};
    o.codec = data[1];
    o.kind = data[2];
    for (int i = 7; i >= 0; i--)
        o.length = o.length << 8 | data[3 + i];
    memcpy(o.digest, data + 11, 32);
    data += FUZZ_CIPHER_HDR, size -= FUZZ_CIPHER_HDR;

    buf_sink sink = {{&bs_ops, NULL}, NULL, 0, 0};
    ws_stage *hash = ws_stage_sha256_new(ws_stage_ref_new(&sink.base));
    ws_stage *st = hash ? ws_stage_decrypt_new(&o, hash) : NULL;
    if (!st)
        return 0;
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += piece)
        rc = ws_stage_write(st, data + off, size - off < piece ? size - off : piece, &err);
    if (rc == 0)
        rc = ws_stage_finish(st, &err);
    if (rc == 0) {
        unsigned char sha[32], keyed[32];
        uint64_t len;
        ws_stage_sha256_result(hash, sha, &len);
        if (len != o.length || sink.n != o.length ||
            ws_cipher_keyed_hash(ws_keyring_hash_key(o.keyring), sha, keyed) < 0 ||
            memcmp(keyed, o.digest, 32) != 0)
            abort(); /* accepted a payload that does not match its header */
#ifdef FUZZ_CIPHER_TRACE
        fprintf(stderr, "fuzz_cipher: accepted %llu bytes\n", (unsigned long long)len);
#endif
    }
#ifdef FUZZ_CIPHER_TRACE
    else
        fprintf(stderr, "fuzz_cipher: refused: %s\n", err.msg);
#endif
    ws_stage_free(st);
    return 0;
}

/* ---- seed-making mode ---- */

static int fuzz_cipher_seed(const char *dir, const char *name, uint8_t piece, uint8_t codec,
                            uint8_t kind, const unsigned char *plain, size_t len)
{
    ws_cipher_obj o = {.keyring = fuzz_cipher_keyring(), .key = FUZZ_CIPHER_KEY};
    o.codec = codec, o.kind = kind;
    buf_sink sink = {{&bs_ops, NULL}, malloc(64), 0, 64};
    ws_error err;
    ws_stage *enc = ws_stage_encrypt_new(&o, ws_stage_ref_new(&sink.base));
    ws_stage *head = enc ? ws_stage_sha256_new(enc) : NULL;
    if (!head || !sink.p)
        return -1;
    ws_stage_encrypt_bind(enc, head);
    if (ws_stage_write(head, plain, len, &err) < 0 || ws_stage_finish(head, &err) < 0)
        return -1;
    unsigned char sha[32], keyed[32];
    uint64_t n;
    ws_stage_sha256_result(head, sha, &n);
    if (ws_cipher_keyed_hash(ws_keyring_hash_key(o.keyring), sha, keyed) < 0)
        return -1;
    ws_stage_free(head);
    unsigned char hdr[FUZZ_CIPHER_HDR] = {piece, codec, kind};
    for (int i = 0; i < 8; i++)
        hdr[3 + i] = (unsigned char)(n >> (8 * i));
    memcpy(hdr + 11, keyed, 32);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int rc =
        f && fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr && fwrite(sink.p, 1, sink.n, f) == sink.n
            ? 0
            : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(sink.p);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_MKSEEDS");
    if (!dir || !*dir)
        return 0;
    size_t max = 2 * WS_CIPHER_FRAME + 4321;
    unsigned char *plain = malloc(max);
    if (!plain)
        abort();
    for (size_t i = 0; i < max; i++) /* WAL-like: mostly zero, some structure */
        plain[i] = (unsigned char)(i % 512 < 40 ? (i * 131) >> 3 : 0);
    static const struct {
        const char *name;
        uint8_t piece, codec, kind;
        size_t len;
    } seeds[] = {
        {"empty", 0, 0, 1, 0},
        {"one-byte", 0, 0, 1, 1},
        {"small-lz4", 0, 1, 1, 100},
        {"frame-exact", 0, 1, 1, WS_CIPHER_FRAME},
        {"frame-plus-one", 0, 0, 2, WS_CIPHER_FRAME + 1},
        {"three-frames-pieces", 7, 1, 2, 2 * WS_CIPHER_FRAME + 4321},
        {"small-pieces", 1, 0, 3, 5000},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        if (fuzz_cipher_seed(dir, seeds[i].name, seeds[i].piece, seeds[i].codec, seeds[i].kind,
                             plain, seeds[i].len) < 0) {
            fprintf(stderr, "fuzz_cipher: cannot write seed %s into %s\n", seeds[i].name, dir);
            exit(1);
        }
    free(plain);
    ws_keyring_free(fuzz_cipher_keyring());
    exit(0);
}
