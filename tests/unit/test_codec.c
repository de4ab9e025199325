/* test_codec.c — the codec table, the compress option reader, the chain builders, and stage
 * ownership (each stage frees its next; a ref stage does not; a failed constructor frees the
 * next it was given). */
#include "tests/unit/tap.h"
#include "walship/codec/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int freed;

/* A sink that counts its frees (ownership checks). */
static int probe_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    (void)st, (void)buf, (void)len, (void)err;
    return 0;
}
static void probe_free(ws_stage *st)
{
    freed++;
    free(st);
}
static const ws_stage_ops probe_ops = {"probe", probe_write, NULL, probe_free};
static ws_stage *probe_new(void)
{
    ws_stage *s = calloc(1, sizeof *s);
    s->ops = &probe_ops;
    return s;
}

static int load(const char *env_compress, const char *env_level, ws_codec *c, int *level,
                ws_error *err)
{
    char *argv[] = {"walship", NULL};
    ws_config *cfg;
    if (env_compress)
        setenv("WALSHIP_COMPRESS", env_compress, 1);
    else
        unsetenv("WALSHIP_COMPRESS");
    if (env_level)
        setenv("WALSHIP_COMPRESS_LEVEL", env_level, 1);
    else
        unsetenv("WALSHIP_COMPRESS_LEVEL");
    if (ws_config_load(1, argv, &cfg, err) < 0)
        return -2;
    int rc = ws_codec_opts_get(cfg, c, level, err);
    ws_config_free(cfg);
    return rc;
}

int main(void)
{
    plan_no_plan();
    ws_error err;
    unsetenv("WALSHIP_CONFIG");
    char conf[] = "/tmp/walship-test-codec-XXXXXX";
    close(mkstemp(conf)); /* empty, 0600 */
    setenv("WALSHIP_CONFIG", conf, 1);

    /* the table */
    ok(ws_codec_get(WS_CODEC_LZ4) && strcmp(ws_codec_get(WS_CODEC_LZ4)->name, "lz4") == 0,
       "lz4 row");
    ok(ws_codec_get(WS_CODEC_NONE) && !ws_codec_get(WS_CODEC_NONE)->compress_new, "none row");
    ok(!ws_codec_get(200), "an unknown id has no row");
    ok(ws_codec_find("lz4") == ws_codec_get(WS_CODEC_LZ4) && !ws_codec_find("gzip"), "by name");
    is_str(ws_codec_names(), "lz4 | none", "names for messages");
    is_str(ws_codec_name(WS_CODEC_LZ4), "lz4", "name of id");

    /* the option reader */
    ws_codec c;
    int level;
    ws_error_clear(&err);
    int rc = load(NULL, NULL, &c, &level, &err);
    ok(rc == 0 && c == WS_CODEC_LZ4 && level == 1, "default: lz4 at its default level") ||
        (diag("rc %d: %s", rc, err.msg), 0);
    ok(load("lz4", "12", &c, &level, &err) == 0 && level == 12, "lz4 level 12");
    ws_error_clear(&err);
    ok(load("lz4", "13", &c, &level, &err) == -1 && err.code == WS_ECONFIG,
       "lz4 level 13 is out of lz4's range") ||
        (diag("%s", err.msg), 0);
    ws_error_clear(&err);
    ok(load("gzip", NULL, &c, &level, &err) == -1 && err.code == WS_ECONFIG &&
           strstr(err.msg, "\"gzip\"") && strstr(err.msg, "lz4 | none"),
       "an unknown codec is named, with the known ones") ||
        (diag("%s", err.msg), 0);
    ok(load("none", NULL, &c, &level, &err) == 0 && c == WS_CODEC_NONE, "none");
    unsetenv("WALSHIP_COMPRESS");
    unsetenv("WALSHIP_COMPRESS_LEVEL");

    /* ownership: freeing the head frees the chain; a ref stops there */
    freed = 0;
    ws_stage *p = probe_new();
    ws_stage *chain = ws_stage_count_new(ws_stage_sha256_new(p));
    ws_stage_free(chain);
    is_int(freed, 1, "freeing the head frees the sink at the end of the chain");
    freed = 0;
    p = probe_new();
    chain = ws_stage_count_new(ws_stage_ref_new(p));
    ws_stage_free(chain);
    is_int(freed, 0, "a ref stage does not free what it borrows");
    ws_stage_free(p);
    is_int(freed, 1, "... its owner does");

    /* mem sink and count */
    ws_stage *m = ws_stage_mem_sink_new(8, "thing");
    ws_stage *cnt = ws_stage_count_new(ws_stage_ref_new(m));
    ws_error_clear(&err);
    ok(ws_stage_write(cnt, "abcd", 4, &err) == 0 && ws_stage_write(cnt, "efgh", 4, &err) == 0,
       "mem sink takes up to its bound");
    size_t len;
    ok(strcmp(ws_stage_mem_data(m, &len), "abcdefgh") == 0 && len == 8, "... NUL-terminated");
    ok(ws_stage_write(cnt, "i", 1, &err) == -1 && err.code == WS_ECORRUPT &&
           strcmp(err.msg, "thing is larger than 8 bytes") == 0,
       "one byte more is refused, named") ||
        (diag("%s", err.msg), 0);
    is_int((int)ws_stage_count(cnt), 9, "count saw every byte offered");
    ws_stage_free(cnt);
    ws_stage_free(m);

    /* write chain → read chain, every codec */
    static char plain[300000];
    for (size_t i = 0; i < sizeof plain; i++)
        plain[i] = (char)(i % 251 < 100 ? 'a' : i * 7);
    const ws_codec all[] = {WS_CODEC_NONE, WS_CODEC_LZ4};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        const char *name = ws_codec_name(all[k]);
        ws_stage *payload = ws_stage_mem_sink_new(sizeof plain + 4096, "payload");
        ws_stage *head, *hash;
        ws_chain_opts wo = {.codec = all[k], .level = 1, .size_hint = sizeof plain};
        ws_error_clear(&err);
        ok(ws_codec_write_chain(&wo, ws_stage_ref_new(payload), &head, &hash, &err) == 0 &&
               ws_stage_write(head, plain, sizeof plain, &err) == 0 &&
               ws_stage_finish(head, &err) == 0,
           "%s: write chain", name) ||
            (diag("%s", err.msg), 0);
        unsigned char d1[32], d2[32];
        uint64_t l1, l2;
        ws_stage_sha256_result(hash, d1, &l1);
        ws_stage_free(head);
        size_t plen;
        const char *pl = ws_stage_mem_data(payload, &plen);
        ws_stage *out = ws_stage_mem_sink_new(sizeof plain, "plaintext");
        ws_chain_opts ro = {.codec = all[k]};
        ok(ws_codec_read_chain(&ro, sizeof plain, out, &head, &hash, &err) == 0 &&
               ws_stage_write(head, pl, plen, &err) == 0 && ws_stage_finish(head, &err) == 0,
           "%s: read chain", name) ||
            (diag("%s", err.msg), 0);
        ws_stage_sha256_result(hash, d2, &l2);
        ws_stage_free(head);
        size_t olen;
        const char *o = ws_stage_mem_data(out, &olen);
        ok(olen == sizeof plain && memcmp(o, plain, olen) == 0 && l1 == l2 &&
               memcmp(d1, d2, 32) == 0,
           "%s: round trip, same digest both ways", name);
        /* one byte short of the length: the bounded decompressor refuses */
        ws_stage_free(out);
        out = ws_stage_mem_sink_new(sizeof plain, "plaintext");
        ws_error_clear(&err);
        ok(ws_codec_read_chain(&ro, sizeof plain - 1, out, &head, &hash, &err) == 0 &&
               (ws_stage_write(head, pl, plen, &err) < 0 || ws_stage_finish(head, &err) < 0) &&
               err.code == WS_ECORRUPT,
           "%s: more than the header's length is refused", name) ||
            (diag("%s", err.msg), 0);
        ws_stage_free(head);
        ws_stage_free(out);
        ws_stage_free(payload);
    }
    ws_chain_opts bad = {.codec = (ws_codec)77};
    ws_stage *h1, *h2, *o1 = ws_stage_mem_sink_new(1, "x");
    ws_error_clear(&err);
    ok(ws_codec_read_chain(&bad, 1, o1, &h1, &h2, &err) == -1 && err.code == WS_ECONFIG,
       "read chain of an unknown codec: WS_ECONFIG");
    ws_stage_free(o1);
    unlink(conf);
    return done_testing();
}
