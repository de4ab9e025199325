/* test_verify.c — the server's backup_manifest checked against what walship stored: a
 * matching set passes in any chunking; a missing, extra, changed or truncated entry, or a
 * broken Manifest-Checksum, fails naming it. */
#include "basebackup/verify.h"
#include "tests/unit/tap.h"
#include "walship/stage/stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char sha_a[32], sha_b[32], sha_c[32];
static char hex_a[65], hex_b[65], hex_c[65];

/* A PostgreSQL 15-style manifest of the files given, with a correct checksum unless
 * break_sum. */
static char *manifest(const char *files, int break_sum)
{
    static char body[8192];
    snprintf(body, sizeof body,
             "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
             "\"Files\": [\n%s],\n"
             "\"WAL-Ranges\": [\n"
             "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n"
             "],\n",
             files);
    unsigned char d[32];
    char hex[65];
    ws_sha256(body, strlen(body), d);
    ws_sha256_hex(d, hex);
    if (break_sum)
        hex[0] = hex[0] == '0' ? '1' : '0';
    char *out = malloc(strlen(body) + 128);
    sprintf(out, "%s\"Manifest-Checksum\": \"%s\"}\n", body, hex);
    return out;
}

static ws_bb_verify *stored(void)
{
    ws_bb_verify *v = ws_bb_verify_new();
    ws_error err;
    ws_bb_verify_add(v, "backup_label", 5, sha_a, 0, &err);
    ws_bb_verify_add(v, "pg_tblspc/16384/PG_15_1/5/16385", 8192, sha_b, 0, &err);
    ws_bb_verify_add(v, "dir with \"quote\"/f\tile", 3, sha_c, 0, &err);
    /* CRC-32C of "123456789" is 0xE3069283; the manifest has its bytes as stored: 839206e3 */
    ws_bb_verify_add(v, "global/crc", 9, sha_a, ws_bb_crc32c(0, "123456789", 9), &err);
    return v;
}

static int check(const char *m, size_t chunk, uint64_t *n, ws_error *err)
{
    ws_bb_verify *v = stored();
    ws_error_clear(err);
    int rc = 0;
    size_t len = strlen(m);
    for (size_t off = 0; off < len && rc == 0; off += chunk)
        rc = ws_bb_verify_feed(v, m + off, len - off < chunk ? len - off : chunk, err);
    if (rc == 0)
        rc = ws_bb_verify_finish(v, n, err);
    ws_bb_verify_free(v);
    return rc;
}

int main(void)
{
    plan_no_plan();
    ws_sha256("a", 1, sha_a);
    ws_sha256("b", 1, sha_b);
    ws_sha256("c", 1, sha_c);
    ws_sha256_hex(sha_a, hex_a);
    ws_sha256_hex(sha_b, hex_b);
    ws_sha256_hex(sha_c, hex_c);

    char files[4096];
    const char *fmt = "{ \"Path\": \"backup_label\", \"Size\": 5, \"Last-Modified\": \"2026-11-22 "
                      "03:15:00 GMT\", \"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"%s\" "
                      "},\n"
                      "{ \"Path\": \"pg_tblspc/16384/PG_15_1/5/16385\", \"Size\": 8192, "
                      "\"Last-Modified\": \"2026-11-22 03:15:00 GMT\", \"Checksum-Algorithm\": "
                      "\"SHA256\", \"Checksum\": \"%s\" },\n"
                      "{ \"Path\": \"dir with \\\"quote\\\"/f\\tile\", \"Size\": 3, "
                      "\"Last-Modified\": \"2026-11-22 03:15:00 GMT\", \"Checksum-Algorithm\": "
                      "\"SHA256\", \"Checksum\": \"%s\" },\n"
                      "{ \"Path\": \"global/crc\", \"Size\": 9, \"Last-Modified\": \"2026-11-22 "
                      "03:15:00 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": "
                      "\"839206e3\" }\n";
    snprintf(files, sizeof files, fmt, hex_a, hex_b, hex_c);
    char *good = manifest(files, 0);
    ws_error err;
    uint64_t n = 0;
    size_t chunks[] = {1, 3, 100, 1 << 16};
    for (size_t i = 0; i < 4; i++) {
        int rc = check(good, chunks[i], &n, &err);
        ok(rc == 0, "a matching manifest passes (chunks of %zu)", chunks[i]);
        if (rc)
            diag("%s", err.msg);
        is_int(n, 4, "... four files compared (SHA-256 and CRC32C)");
    }

    /* Encoded-Path: hex of the name */
    char enc[4096];
    snprintf(enc, sizeof enc, fmt, hex_a, hex_b, hex_c);
    char *p = strstr(enc, "{ \"Path\": \"backup_label\"");
    memmove(p + 44, p + 24, strlen(p + 24) + 1);
    memcpy(p, "{ \"Encoded-Path\": \"6261636b75705f6c6162656c\"", 44);
    char *m = manifest(enc, 0);
    ok(check(m, 7, &n, &err) == 0, "Encoded-Path is decoded");
    if (err.msg[0])
        diag("%s", err.msg);
    free(m);

    m = manifest(files, 1);
    ok(check(m, 100, &n, &err) < 0 && strstr(err.msg, "fails its own checksum"),
       "a broken Manifest-Checksum fails");
    free(m);

    size_t gl = strlen(good);
    char *trunc = strdup(good);
    trunc[gl / 2] = '\0';
    ok(check(trunc, 100, &n, &err) < 0 && strstr(err.msg, "truncated"),
       "a truncated manifest fails");
    free(trunc);

    char changed[4096];
    snprintf(changed, sizeof changed, fmt, hex_a, hex_c, hex_c);
    m = manifest(changed, 0);
    ok(check(m, 100, &n, &err) < 0 && strstr(err.msg, "pg_tblspc/16384/PG_15_1/5/16385: walship "
                                                      "stored"),
       "a different checksum fails, naming the file");
    free(m);

    char extra[4096];
    snprintf(extra, sizeof extra,
             "%s{ \"Path\": \"global/pg_control\", \"Size\": 1, \"Checksum-Algorithm\": "
             "\"SHA256\", \"Checksum\": \"%s\" }\n",
             files, hex_a);
    m = manifest(extra, 0);
    ok(check(m, 100, &n, &err) < 0 && strstr(err.msg, "global/pg_control is in the server"),
       "a file walship did not store fails");
    free(m);

    char fewer[4096];
    snprintf(fewer, sizeof fewer, fmt, hex_a, hex_b, hex_c);
    *strstr(fewer, "{ \"Path\": \"dir with") = '\0';
    m = manifest(fewer, 0);
    ok(check(m, 100, &n, &err) < 0 && strstr(err.msg, "does not list"),
       "a stored file the server does not list fails");
    free(m);

    ok(ws_bb_crc32c(0, "123456789", 9) == 0xE3069283u, "CRC-32C check value");
    ok(ws_bb_crc32c(ws_bb_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u, "... chained");
    char big[1000];
    for (int i = 0; i < 1000; i++)
        big[i] = (char)(i * 7);
    ok(ws_bb_crc32c(ws_bb_crc32c(0, big, 3), big + 3, 997) == ws_bb_crc32c(0, big, 1000),
       "... chained across unaligned lengths");
    {
        /* the three-stream SSE4.2 path (3 x 2048-byte stripes) against a bit-wise CRC-32C,
         * over lengths and alignments around the stripe boundaries */
        static unsigned char buf[3 * 2048 * 4 + 64];
        uint32_t x = 12345;
        for (size_t i = 0; i < sizeof buf; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (unsigned char)(x >> 16);
        }
        static const size_t lens[] = {0,    1,     7,     8,     6143,  6144, 6145,
                                      6151, 12288, 12300, 18431, 24576, 24583};
        int bad = 0;
        for (size_t off = 0; off < 9; off++)
            for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
                uint32_t c = 0xFFFFFFFFu;
                for (size_t i = 0; i < lens[k]; i++) {
                    c ^= buf[off + i];
                    for (int b = 0; b < 8; b++)
                        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                }
                if (ws_bb_crc32c(0, buf + off, lens[k]) != ~c)
                    bad++;
            }
        ok(bad == 0, "CRC-32C of 117 lengths x alignments equals the bit-wise CRC (%d differ)",
           bad);
        uint32_t whole = ws_bb_crc32c(0, buf, 20000);
        ok(ws_bb_crc32c(ws_bb_crc32c(0, buf, 6150), buf + 6150, 13850) == whole,
           "... and chains across the stripes");
    }

    char crcbad[4096];
    snprintf(crcbad, sizeof crcbad, fmt, hex_a, hex_b, hex_c);
    memcpy(strstr(crcbad, "839206e3"), "839206e4", 8);
    m = manifest(crcbad, 0);
    ok(check(m, 100, &n, &err) < 0 && strstr(err.msg, "global/crc: walship stored 9 bytes with "
                                                      "CRC32C e3069283"),
       "a different CRC32C fails, naming the file");
    free(m);

    char alg[4096];
    snprintf(alg, sizeof alg, fmt, hex_a, hex_b, hex_c);
    memcpy(strstr(alg, "\"CRC32C\""), "\"CRC32X\"", 8);
    m = manifest(alg, 0);
    ok(check(m, 100, &n, &err) < 0 && strstr(err.msg, "not CRC32C or SHA256"),
       "an unknown checksum algorithm fails");
    free(m);

    /* a file stored as one object is reported when its object commits, which a writer thread
     * may finish after the server's manifest line for it arrived: checked at finish */
    for (int wrong = 0; wrong < 2; wrong++) {
        ws_bb_verify *v = ws_bb_verify_new();
        ws_error_clear(&err);
        ws_bb_verify_add(v, "backup_label", 5, sha_a, 0, &err);
        ws_bb_verify_add(v, "dir with \"quote\"/f\tile", 3, sha_c, 0, &err);
        ws_bb_verify_add(v, "global/crc", 9, sha_a, ws_bb_crc32c(0, "123456789", 9), &err);
        int rc = ws_bb_verify_feed(v, good, strlen(good), &err);
        if (rc == 0)
            rc = ws_bb_verify_add(v, "pg_tblspc/16384/PG_15_1/5/16385", 8192, wrong ? sha_c : sha_b,
                                  0, &err);
        if (rc == 0)
            rc = ws_bb_verify_finish(v, &n, &err);
        if (wrong)
            ok(rc < 0 && strstr(err.msg, "pg_tblspc/16384/PG_15_1/5/16385: walship stored"),
               "a file reported after its manifest line is still checked: a mismatch fails");
        else
            ok(rc == 0 && n == 4, "a file reported after its manifest line passes");
        ws_bb_verify_free(v);
    }

    free(good);
    return done_testing();
}
