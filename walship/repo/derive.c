/*
 * derive.c — what a stored WAL object says about the cluster that wrote it: the long page
 * header at the start of every segment carries the system identifier, the segment size and
 * (through xlp_magic) the major version. `walship repo repair` re-derives a lost
 * walship.repo from it (repo.h).
 *
 * Only the first page is needed, so only the start of the object is read (a ranged read of
 * the object header and one lz4 block): a repair can afford to look at every segment.
 */
#include "walship/repo/repo.h"

#include <stdio.h>
#include <string.h>

/* The object header, an lz4 frame header and one 64 KiB block (walship writes 64 KiB
 * blocks), with room to spare. */
#define PREFIX_READ (WS_OBJHDR_SIZE + 96 * 1024)

/* Keeps the first WS_WAL_LONG_HEADER_SIZE plaintext bytes, drops the rest. */
typedef struct capture_stage {
    ws_stage base;
    unsigned char page[WS_WAL_LONG_HEADER_SIZE];
    size_t n;
} capture_stage;

static int capture_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    (void)err;
    capture_stage *c = (capture_stage *)st;
    size_t take = sizeof c->page - c->n;
    if (take > len)
        take = len;
    memcpy(c->page + c->n, buf, take);
    c->n += take;
    return 0;
}

static void capture_free(ws_stage *st)
{
    (void)st; /* lives on the caller's stack */
}

static const ws_stage_ops capture_ops = {"capture", capture_write, NULL, capture_free};

/* Feeds the payload from rd into head until cap holds a whole long page header. */
static int read_page(ws_storage_reader *rd, ws_stage *head, capture_stage *cap, ws_error *err)
{
    char buf[16 * 1024];
    while (cap->n < sizeof cap->page) {
        size_t n;
        if (ws_storage_read(rd, buf, sizeof buf, &n, err) < 0)
            return -1;
        if (n == 0) {
            /* the whole object was shorter than the read: an encrypted one's only frame is
             * its last, authenticated and passed on only at finish */
            if (ws_stage_finish(head, err) < 0 && cap->n < sizeof cap->page)
                return -1;
            ws_error_clear(err);
            break;
        }
        if (ws_stage_write(head, buf, n, err) < 0)
            return -1;
    }
    return 0;
}

int ws_repo_wal_identity(ws_repo *r, const ws_wal_name *name, ws_repo_identity *id, ws_error *err)
{
    char key[128];
    if ((name->kind != WS_WAL_SEGMENT && name->kind != WS_WAL_PARTIAL) ||
        ws_repo_wal_key(name, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "%s is not a WAL segment", name->name);
    /* an encrypted object: the first page is in the first lz4 block, which may span the
     * first two cipher frames (each authenticated on its own, so a prefix decrypts) */
    size_t want = PREFIX_READ + WS_CIPHER_PREFIX + 2 * (WS_CIPHER_FRAME + WS_CIPHER_TAG_LEN);
    ws_storage_reader *rd;
    if (ws_storage_open_read(ws_repo_storage(r), key, 0, want, &rd, err) < 0)
        return -1;
    unsigned char hb[WS_OBJHDR_SIZE];
    size_t n;
    ws_objhdr h;
    capture_stage cap = {{&capture_ops, NULL}, {0}, 0};
    ws_stage *head = &cap.base, *count = NULL;
    int rc = -1;
    if (ws_storage_read_full(rd, hb, sizeof hb, &n, err) < 0 ||
        ws_objhdr_decode(hb, n, key, &h, err) < 0)
        goto out;
    /* the repository's key: a repair of an encrypted repository needs it (its keyring is a
     * separate object, kept when walship.repo is lost); without it, refused by name */
    const ws_keyring *kr = NULL;
    if (ws_repo_keyring(r, 0, &kr, err) < 0) {
        ws_error_prefix(err, "deriving the identity from %s", key);
        goto out;
    }
    if (h.encryption && !kr) {
        ws_error_set(err, WS_ECONFIG,
                     "object %s is encrypted (aes-256-gcm) but cipher is none here: the "
                     "identity is in its first page, which only the repository's key reads",
                     key);
        ws_error_hint(err, "set cipher = aes-256-gcm and the repository's cipher-pass or "
                           "cipher-key-file, then rerun walship repo repair");
        goto out;
    }
    if (!h.encryption && kr) {
        ws_error_set(err, WS_ECORRUPT,
                     "object %s is not encrypted, in an encrypted repository: not evidence", key);
        goto out;
    }
    ws_cipher_obj cobj = {
        .keyring = kr, .key = key, .codec = h.codec, .kind = h.kind, .length = h.length};
    memcpy(cobj.digest, h.sha256, 32);
    /* the whole object is not read: no digest; the page header is checked below, and an
     * encrypted frame is authenticated before a byte of it is passed on */
    ws_chain_opts co = {.codec = (ws_codec)h.codec, .no_digest = 1, .cipher = kr ? &cobj : NULL};
    if (ws_codec_read_chain(&co, h.length, &cap.base, &head, &count, err) < 0) {
        head = &cap.base;
        goto out;
    }
    if (read_page(rd, head, &cap, err) < 0) {
        ws_error_prefix(err, "object %s", key);
        goto out;
    }
    ws_wal_header wh;
    if (ws_wal_check_header(cap.page, cap.n, name, h.length, &wh, err) < 0) {
        ws_error_prefix(err, "object %s", key);
        goto out;
    }
    id->format = WS_REPO_FORMAT;
    id->sysid = wh.sysid;
    id->pg_version = wh.pg_version;
    id->seg_size = wh.seg_size;
    rc = 0;
out:
    if (head != &cap.base)
        ws_stage_free(head);
    ws_storage_reader_close(rd);
    return rc;
}
