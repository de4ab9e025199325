/* test_s3_driver.c — the S3 storage driver against a live S3 server.
 *
 * Needs a server, so it skips unless WALSHIP_TEST_S3_URL is set; tests/t/1xx_s3_*.t start
 * s3rver / moto_server (tests/lib/WalshipS3.pm) and run it with:
 *   WALSHIP_TEST_S3_URL       s3://bucket/prefix (a fresh prefix per run)
 *   WALSHIP_TEST_S3_ENDPOINT  http(s)://host:port
 *   WALSHIP_TEST_S3_STYLE     host | path
 *   WALSHIP_TEST_S3_CA        CA file (optional)
 *   WALSHIP_TEST_S3_TIMEOUT   seconds (optional)
 *   WALSHIP_TEST_S3_EXCL      1 if the server enforces If-None-Match
 *   WALSHIP_TEST_S3_QUICK     1 to skip the slow parts (pagination, multipart)
 *   WALSHIP_TEST_S3_NO_PAGES  1 to skip only the pagination (1010 PUTs)
 *   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/tap.h"
#include "walship/storage/sigv4.h"
#include "walship/storage/storage.h"

static ws_storage_config cfg;

/* ok() that clears err first and shows it when the test fails. */
#define OKE(cond, name)                                                                            \
    do {                                                                                           \
        ws_error_clear(&err);                                                                      \
        if (!ok(cond, name))                                                                       \
            diag("error: %s", err.msg);                                                            \
    } while (0)

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int count_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    int *n = arg;
    if (strncmp(key, "many/", 5) == 0)
        (*n)++;
    return 0;
}

static void fill(char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (char)(seed >> 16);
    }
}

/* Reads a whole object back with small reads, returns its bytes (malloc'd). */
static char *read_all(ws_storage *s, const char *key, uint64_t off, uint64_t len, size_t *n,
                      ws_error *err)
{
    ws_storage_reader *r;
    *n = 0;
    if (ws_storage_open_read(s, key, off, len, &r, err) < 0)
        return NULL;
    size_t cap = 1 << 20, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        size_t k = 0;
        if (got + 100000 > cap)
            buf = realloc(buf, cap *= 2);
        if (ws_storage_read(r, buf + got, 100000, &k, err) < 0) {
            free(buf);
            ws_storage_reader_close(r);
            return NULL;
        }
        if (!k)
            break;
        got += k;
    }
    ws_storage_reader_close(r);
    *n = got;
    return buf;
}

static void basic(ws_storage *s)
{
    ws_error err;
    ws_meta meta = {0};
    ws_meta_set(&meta, "walship-sha256", "abc123");
    ws_meta_set(&meta, "walship-size", "11");
    OKE(ws_storage_put_small(s, "small/hello", 0, "hello world", 11, &meta, &err) == 0,
        "put a small object with metadata");

    char *buf;
    size_t len;
    OKE(ws_storage_get_small(s, "small/hello", 100, &buf, &len, &err) == 0, "get it back");
    is_mem(buf, len, "hello world", 11, "same bytes");
    free(buf);

    ws_storage_info info;
    OKE(ws_storage_stat(s, "small/hello", &info, &err) == 0, "stat");
    is_int(info.size, 11, "stat size");
    is_str(ws_meta_get(&info.meta, "walship-sha256"), "abc123", "stat returns the metadata");
    ok(info.mtime > 1600000000, "stat mtime");

    char *part = read_all(s, "small/hello", 6, 5, &len, &err);
    is_mem(part, len, "world", 5, "ranged read of bytes 6..10");
    free(part);
    part = read_all(s, "small/hello", 6, 0, &len, &err);
    is_mem(part, len, "world", 5, "ranged read from 6 to the end");
    free(part);

    OKE(ws_storage_put_small(s, "small/empty", 0, "", 0, NULL, &err) == 0, "put empty");
    ok(ws_storage_get_small(s, "small/empty", 10, &buf, &len, &err) == 0 && len == 0, "get empty");
    free(buf);

    ok(ws_storage_stat(s, "small/absent", &info, &err) < 0 && err.code == WS_ENOENT,
       "stat of an absent key is ENOENT (%s)", err.msg);
    ws_storage_reader *r = NULL;
    ok(ws_storage_open_read(s, "small/absent", 0, 0, &r, &err) < 0 && err.code == WS_ENOENT,
       "reading an absent key is ENOENT (%s)", err.msg);

    /* Keys with characters that need encoding in the path. */
    const char *odd = "odd/a b+c$d=e&f~g%h";
    OKE(ws_storage_put_small(s, odd, 0, "x", 1, NULL, &err) == 0, "put key with odd bytes");
    OKE(ws_storage_stat(s, odd, &info, &err) == 0 && info.size == 1, "stat it");

    OKE(ws_storage_remove(s, "small/empty", &err) == 0, "remove");
    ok(ws_storage_stat(s, "small/empty", &info, &err) < 0 && err.code == WS_ENOENT,
       "removed object is gone");
    OKE(ws_storage_remove(s, "small/empty", &err) == 0, "removing an absent key succeeds");

    /* Exclusive create. */
    int rc = ws_storage_put_small(s, "small/hello", WS_STORAGE_WRITE_EXCL, "other", 5, NULL, &err);
    if (env("WALSHIP_TEST_S3_EXCL")) {
        ok(rc < 0 && err.code == WS_EEXIST, "exclusive put over an existing key: EEXIST (%s)",
           err.msg);
        ok(ws_storage_get_small(s, "small/hello", 100, &buf, &len, &err) == 0 && len == 11,
           "and the object is untouched");
        free(buf);
    } else {
        skip(2, "this server ignores If-None-Match");
    }
    OKE(ws_storage_put_small(s, "small/new", WS_STORAGE_WRITE_EXCL, "n", 1, NULL, &err) == 0,
        "exclusive put of a new key");

    /* patch() rewrites the head before commit. */
    ws_storage_writer *w;
    ok(ws_storage_open_write(s, "small/patched", 0, &w, &err) == 0, "open writer");
    ws_storage_write(w, "XXXXX-body", 10, &err);
    ws_storage_patch(w, 0, "HEAD", 4, &err);
    OKE(ws_storage_writer_commit(w, NULL, &err) == 0, "commit patched");
    ok(ws_storage_get_small(s, "small/patched", 100, &buf, &len, &err) == 0, "get patched");
    is_mem(buf, len, "HEADX-body", 10, "patched bytes");
    free(buf);

    /* Abort leaves nothing. */
    ok(ws_storage_open_write(s, "small/aborted", 0, &w, &err) == 0, "open writer to abort");
    ws_storage_write(w, "zzz", 3, &err);
    ws_storage_writer_abort(w);
    ok(ws_storage_stat(s, "small/aborted", &info, &err) < 0 && err.code == WS_ENOENT,
       "an aborted writer leaves no object");
}

static void pages(ws_storage *s)
{
    ws_error err;
    int n = 0, bad = 0;
    char key[64];
    for (int i = 0; i < 1010; i++) {
        snprintf(key, sizeof key, "many/%04d", i);
        if (ws_storage_put_small(s, key, 0, key, strlen(key), NULL, &err) < 0 && !bad++)
            diag("put %s: %s", key, err.msg);
    }
    ok(!bad, "1010 small objects written");
    OKE(ws_storage_list(s, "many/", count_cb, &n, &err) == 0, "list across pages");
    is_int(n, 1010, "every key listed once, relative to the repository root");
}

static void multipart(ws_storage *s)
{
    ws_error err;
    size_t total = (size_t)40 << 20; /* 16 + 16 + 8 MiB: three parts */
    char *data = malloc(total);
    fill(data, total, 42);
    ws_storage_writer *w;
    ok(ws_storage_open_write(s, "big/multi", 0, &w, &err) == 0, "open multipart writer");
    int wrc = 0;
    for (size_t off = 0; off < total && wrc == 0; off += 1000000) {
        size_t k = total - off < 1000000 ? total - off : 1000000;
        wrc = ws_storage_write(w, data + off, k, &err);
    }
    OKE(wrc == 0, "40 MiB written");
    memcpy(data, "PATCHED!", 8);
    ws_storage_patch(w, 0, "PATCHED!", 8, &err);
    OKE(ws_storage_writer_commit(w, NULL, &err) == 0, "multipart commit");
    ws_storage_info info;
    ok(ws_storage_stat(s, "big/multi", &info, &err) == 0, "stat multipart object");
    is_int(info.size, total, "multipart object size");
    size_t len;
    char *back = read_all(s, "big/multi", 0, 0, &len, &err);
    ok(back && len == total && memcmp(back, data, total) == 0,
       "multipart object reads back byte-identical, patch included");
    free(back);
    back = read_all(s, "big/multi", (16u << 20) - 3, 6, &len, &err);
    is_mem(back, len, data + (16u << 20) - 3, 6, "ranged read across a part boundary");
    free(back);

    /* Exactly one part's worth: a single PUT. */
    ok(ws_storage_open_write(s, "big/single", 0, &w, &err) == 0, "open writer");
    ws_storage_write(w, data, 16u << 20, &err);
    ws_meta meta = {0};
    ws_meta_set(&meta, "k", "v");
    OKE(ws_storage_writer_commit(w, &meta, &err) == 0, "16 MiB single PUT");
    ok(ws_storage_stat(s, "big/single", &info, &err) == 0 && info.size == 16u << 20 &&
           ws_meta_get(&info.meta, "k"),
       "16 MiB object stored with metadata");
    free(data);
}

int main(void)
{
    const char *url = env("WALSHIP_TEST_S3_URL");
    if (!url)
        plan_skip_all("needs a live S3 server (tests/t/1xx_s3_*.t run this with one)");
    cfg.url = url;
    cfg.s3_endpoint = env("WALSHIP_TEST_S3_ENDPOINT");
    cfg.s3_uri_style = env("WALSHIP_TEST_S3_STYLE");
    cfg.s3_ca_file = env("WALSHIP_TEST_S3_CA");
    cfg.s3_verify_tls = 1;
    cfg.timeout = env("WALSHIP_TEST_S3_TIMEOUT") ? atof(env("WALSHIP_TEST_S3_TIMEOUT")) : 0;

    ws_storage *s;
    ws_error err;
    if (ws_storage_open(&cfg, &s, &err) < 0)
        bail_out("open %s: %s", url, err.msg);
    ok(strcmp(ws_storage_describe(s), url) == 0 || strncmp(url, "s3://", 5) == 0, "describe: %s",
       ws_storage_describe(s));
    ok(ws_storage_features(s) & WS_STORAGE_FEAT_META, "feature: metadata");

    if (env("WALSHIP_TEST_S3_EXPECT_ERROR")) {
        /* Wrong credentials / TLS refused: every operation fails with the expected code. */
        ws_storage_info info;
        int rc = ws_storage_stat(s, "small/hello", &info, &err);
        printf("# error: %s | %s\n", err.msg, err.hint);
        ok(rc < 0, "operation refused");
        is_str(ws_errcode_name(err.code), env("WALSHIP_TEST_S3_EXPECT_ERROR"), "error code");
        rc = ws_storage_put_small(s, "small/x", 0, "x", 1, NULL, &err);
        printf("# error: %s | %s\n", err.msg, err.hint);
        is_str(ws_errcode_name(err.code), env("WALSHIP_TEST_S3_EXPECT_ERROR"), "put refused too");
        ws_storage_free(s);
        return done_testing();
    }

    basic(s);
    if (!env("WALSHIP_TEST_S3_QUICK")) {
        if (!env("WALSHIP_TEST_S3_NO_PAGES"))
            pages(s);
        multipart(s);
    }
    ws_storage_free(s);
    return done_testing();
}
