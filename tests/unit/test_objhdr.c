/* test_objhdr.c — object header encode/decode, corruption detection, WAL keys. */
#include "tests/unit/tap.h"
#include "walship/repo/repo.h"

#include <string.h>

int main(void)
{
    plan_no_plan();
    ws_objhdr h = {0}, d;
    ws_error err;
    h.codec = WS_CODEC_LZ4;
    h.kind = WS_OBJ_SEGMENT;
    h.length = 16777216;
    for (int i = 0; i < 32; i++)
        h.sha256[i] = (unsigned char)(i * 7);
    unsigned char buf[WS_OBJHDR_SIZE];
    ws_objhdr_encode(&h, buf);
    ok(memcmp(buf, "WSHP", 4) == 0 && buf[4] == 1 && buf[8] == 64, "magic, version, length");
    ok(ws_objhdr_decode(buf, sizeof buf, "k", &d, &err) == 0 && d.codec == WS_CODEC_LZ4 &&
           d.kind == WS_OBJ_SEGMENT && d.length == 16777216 && memcmp(d.sha256, h.sha256, 32) == 0,
       "round trip");
    int all_detected = 1;
    for (int i = 0; i < WS_OBJHDR_SIZE; i++) {
        unsigned char c[WS_OBJHDR_SIZE];
        memcpy(c, buf, sizeof c);
        c[i] ^= 0x10;
        if (ws_objhdr_decode(c, sizeof c, "k", &d, &err) == 0)
            all_detected = 0;
    }
    ok(all_detected, "a flipped bit anywhere in the header is detected");
    ok(ws_objhdr_decode(buf, 10, "k", &d, &err) < 0 && err.code == WS_ECORRUPT,
       "short header is corrupt");
    h.encryption = 2; /* 1 is aes-256-gcm */
    ws_objhdr_encode(&h, buf);
    ok(ws_objhdr_decode(buf, sizeof buf, "k", &d, &err) < 0 && strstr(err.msg, "encrypted"),
       "unknown encryption refused: %s", err.msg);
    h.encryption = 0;
    h.codec = 9;
    ws_objhdr_encode(&h, buf);
    ok(ws_objhdr_decode(buf, sizeof buf, "k", &d, &err) < 0 && strstr(err.msg, "codec"),
       "unknown codec refused");

    ws_wal_name n;
    char key[128];
    ws_wal_parse_name("0000000200000001000000FE", &n, &err);
    ok(ws_repo_wal_key(&n, key, sizeof key) == 0, "segment key");
    is_str(key, "wal/0000000200000001/0000000200000001000000FE", "segment key layout");
    ws_wal_parse_name("00000003.history", &n, &err);
    ws_repo_wal_key(&n, key, sizeof key);
    is_str(key, "wal/history/00000003.history", "history key layout");
    ws_wal_parse_name("000000010000000000000002.00000028.backup", &n, &err);
    ws_repo_wal_key(&n, key, sizeof key);
    is_str(key, "wal/0000000100000000/000000010000000000000002.00000028.backup", "backup key");
    ws_wal_parse_name("000000010000000000000009.partial", &n, &err);
    ws_repo_wal_key(&n, key, sizeof key);
    is_str(key, "wal/0000000100000000/000000010000000000000009.partial", "partial key");
    ws_codec c;
    ok(ws_codec_parse("lz4", &c) == 0 && c == WS_CODEC_LZ4 && ws_codec_parse("none", &c) == 0 &&
           c == WS_CODEC_NONE && ws_codec_parse("gzip", &c) < 0,
       "codec names");
    return done_testing();
}
