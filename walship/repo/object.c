/* object.c — the object header (docs/repository-format.md, "Object format"). */
#include "walship/repo/repo.h"

#include "walship/bytes.h"

#include <string.h>

static const unsigned char magic[4] = {'W', 'S', 'H', 'P'};

void ws_objhdr_encode(const ws_objhdr *h, unsigned char out[WS_OBJHDR_SIZE])
{
    memset(out, 0, WS_OBJHDR_SIZE);
    memcpy(out, magic, 4);
    out[4] = h->version ? h->version : 1;
    out[5] = h->codec;
    out[6] = h->encryption;
    out[7] = h->kind;
    ws_put_le32(out + 8, WS_OBJHDR_SIZE);
    ws_put_le64(out + 16, h->length);
    memcpy(out + 24, h->sha256, 32);
    unsigned char check[32];
    ws_sha256(out, 60, check);
    memcpy(out + 60, check, 4);
}

int ws_objhdr_decode(const unsigned char *buf, size_t len, const char *key, ws_objhdr *h,
                     ws_error *err)
{
    memset(h, 0, sizeof *h);
    if (len < WS_OBJHDR_SIZE)
        return ws_error_set(err, WS_ECORRUPT,
                            "object %s is %zu bytes, shorter than its %d-byte header", key, len,
                            WS_OBJHDR_SIZE);
    if (memcmp(buf, magic, 4) != 0)
        return ws_error_set(err, WS_ECORRUPT, "object %s does not start with walship's magic", key);
    unsigned char check[32];
    ws_sha256(buf, 60, check);
    if (memcmp(check, buf + 60, 4) != 0)
        return ws_error_set(err, WS_ECORRUPT, "object %s has a damaged header (check mismatch)",
                            key);
    h->version = buf[4];
    h->codec = buf[5];
    h->encryption = buf[6];
    h->kind = buf[7];
    h->header_len = ws_get_le32(buf + 8);
    h->length = ws_get_le64(buf + 16);
    memcpy(h->sha256, buf + 24, 32);
    if (h->version != 1 || h->header_len != WS_OBJHDR_SIZE) {
        ws_error_set(err, WS_ECONFIG,
                     "object %s has format version %u, which this walship "
                     "cannot read",
                     key, h->version);
        ws_error_hint(err, "upgrade walship");
        return -1;
    }
    if (!ws_codec_get(h->codec))
        return ws_error_set(err, WS_ECONFIG, "object %s uses codec %u, unknown to this walship",
                            key, h->codec);
    if (h->encryption != WS_ENC_NONE && h->encryption != WS_ENC_AES256GCM)
        return ws_error_set(err, WS_ECONFIG,
                            "object %s is encrypted (scheme %u), which this walship cannot read",
                            key, h->encryption);
    return 0;
}

ws_objkind ws_objkind_of(ws_wal_kind k)
{
    switch (k) {
    case WS_WAL_SEGMENT:
        return WS_OBJ_SEGMENT;
    case WS_WAL_PARTIAL:
        return WS_OBJ_PARTIAL;
    case WS_WAL_BACKUP:
        return WS_OBJ_BACKUP;
    case WS_WAL_HISTORY:
        return WS_OBJ_HISTORY;
    default:
        return WS_OBJ_DATA;
    }
}
