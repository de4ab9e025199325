/* test_identity.c — the repository identity is never re-created over stored objects, a
 * segment's identity is read from the start of its object (lz4 and none), and the posix
 * driver's temporary files are never keys: listed only on request, never openable. */
#include "tests/unit/tap.h"
#include "walship/bytes.h"
#include "walship/repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEG (1u << 20)

static char root[] = "/tmp/walship-test-identity-XXXXXX";

typedef struct counted {
    int n;
    uint64_t bytes;
    char last[256];
} counted;

static int count_cb(void *arg, const char *key, const ws_storage_info *info)
{
    counted *c = arg;
    c->n++;
    c->bytes += info->size;
    snprintf(c->last, sizeof c->last, "%s", key);
    return 0;
}

/* A 1 MiB segment of cluster sysid, PostgreSQL 15, named name, stored with codec. */
static int store_segment(ws_repo *r, const char *name, uint64_t sysid, ws_codec codec)
{
    ws_wal_name n;
    ws_error err;
    char key[128];
    if (ws_wal_parse_name(name, &n, &err) < 0 || ws_repo_wal_key(&n, key, sizeof key) < 0)
        return -1;
    uint64_t segno;
    ws_wal_segno(&n, SEG, &segno);
    unsigned char *seg = calloc(1, SEG);
    if (!seg)
        return -1;
    ws_put_le16(seg, 0xD110);
    ws_put_le16(seg + 2, 0x0002);
    ws_put_le32(seg + 4, n.tli);
    ws_put_le64(seg + 8, segno * SEG);
    ws_put_le64(seg + 24, sysid);
    ws_put_le32(seg + 32, SEG);
    ws_put_le32(seg + 36, 8192);
    for (size_t i = 8192; i < SEG; i++)
        seg[i] = (unsigned char)(i * 7 >> 3); /* a payload lz4 cannot make nothing of */
    ws_repo_obj_writer *w;
    int rc = ws_repo_obj_create(&r, 1, key, WS_OBJ_SEGMENT, codec, 1, SEG, &w, &err);
    if (rc == 0 && (rc = ws_repo_obj_write(w, seg, SEG, &err)) == 0)
        rc = ws_repo_obj_commit(w, NULL, NULL, &err);
    else if (rc == 0)
        ws_repo_obj_abort(w);
    free(seg);
    return rc;
}

int main(void)
{
    plan_no_plan();
    if (!mkdtemp(root))
        bail_out("mkdtemp");
    ws_error err;
    ws_error_clear(&err);
    ws_storage_config sc = {.url = root};
    ws_repo *r;
    if (ws_repo_open(&sc, &r, &err) < 0)
        bail_out("open: %s", err.msg);
    ws_storage *st = ws_repo_storage(r);

    /* keys */
    ok(!ws_storage_key_valid(".walship.repo.tmp.1.0") &&
           !ws_storage_key_valid("wal/0000000100000000/.000000010000000000000001.tmp.1.0") &&
           !ws_storage_key_valid("a/./b") && !ws_storage_key_valid("a/../b"),
       "no key component starts with '.'");
    ok(ws_storage_key_valid("wal/0000000100000000/000000010000000000000001.partial"),
       "a dot inside a name is fine");

    /* an empty repository gets its identity */
    char found[256] = "x";
    is_int(ws_repo_holds_objects(r, found, sizeof found, &err), 0, "an empty repository");
    is_str(found, "", "... names no key");
    ws_repo_identity want = {WS_REPO_FORMAT, 4242, 15, SEG};
    ok(ws_repo_identity_ensure(r, &want, &err) == 0, "ensure creates walship.repo in it");
    ok(store_segment(r, "000000010000000000000003", 4242, WS_CODEC_LZ4) == 0, "a segment (lz4)");
    ok(store_segment(r, "000000010000000000000004", 4242, WS_CODEC_NONE) == 0, "a segment (none)");

    /* the identity a segment carries */
    ws_wal_name n;
    ws_repo_identity id;
    ws_wal_parse_name("000000010000000000000003", &n, &err);
    ok(ws_repo_wal_identity(r, &n, &id, &err) == 0 && id.sysid == 4242 && id.pg_version == 15 &&
           id.seg_size == SEG,
       "identity from an lz4 segment's first page: %s", err.msg);
    ws_wal_parse_name("000000010000000000000004", &n, &err);
    ok(ws_repo_wal_identity(r, &n, &id, &err) == 0 && id.sysid == 4242,
       "identity from an uncompressed segment: %s", err.msg);
    ws_wal_parse_name("000000010000000000000005", &n, &err);
    ok(ws_repo_wal_identity(r, &n, &id, &err) < 0 && err.code == WS_ENOENT, "absent segment");

    /* walship.repo removed: never re-created over stored WAL */
    ws_repo_free(r);
    ws_repo_open(&sc, &r, &err);
    st = ws_repo_storage(r);
    ws_storage_remove(st, WS_REPO_ROOT_KEY, &err);
    is_int(ws_repo_holds_objects(r, found, sizeof found, &err), 1, "WAL counts as stored objects");
    ok(strncmp(found, "wal/0000000100000000/", 21) == 0, "... naming one: %s", found);
    ok(ws_repo_identity_ensure(r, &want, &err) < 0 && err.code == WS_ECORRUPT &&
           strstr(err.hint, "walship repo repair"),
       "ensure refuses, naming repo repair: %s", err.msg);
    ws_storage_info info;
    ok(ws_storage_stat(st, WS_REPO_ROOT_KEY, &info, &err) < 0 && err.code == WS_ENOENT,
       "... and writes nothing");
    ok(ws_repo_identity_create(r, &want, "a test", &err) == 0, "create writes it");
    ok(ws_repo_identity_create(r, &want, "a test", &err) < 0 && err.code == WS_EEXIST,
       "... only if absent");

    /* history files alone do not make a repository used */
    char hroot[] = "/tmp/walship-test-identity-h-XXXXXX";
    if (!mkdtemp(hroot))
        bail_out("mkdtemp");
    ws_storage_config hc = {.url = hroot};
    ws_repo *h;
    ws_repo_open(&hc, &h, &err);
    ws_storage_put_small(ws_repo_storage(h), "wal/history/00000002.history", 0, "1\t0/3\tx\n", 8,
                         NULL, &err);
    is_int(ws_repo_holds_objects(h, found, sizeof found, &err), 0, "only a history file: unused");
    ok(ws_repo_identity_ensure(h, &want, &err) == 0, "... ensure creates the identity");
    ws_storage_put_small(ws_repo_storage(h), "gap/0000000100000000/000000010000000000000001", 0,
                         "g", 1, NULL, &err);
    ws_storage_put_small(ws_repo_storage(h), "backup/20260101T000000Z/walship.started", 0, "s", 1,
                         NULL, &err);
    ws_storage_remove(ws_repo_storage(h), WS_REPO_ROOT_KEY, &err);
    ws_repo_free(h);
    ws_repo_open(&hc, &h, &err);
    is_int(ws_repo_holds_objects(h, found, sizeof found, &err), 1,
           "a gap record or a backup counts");
    ws_repo_free(h);

    /* temporary files: never keys, listed on request */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/wal/0000000100000000/.000000010000000000000009.tmp.77.0", root);
    FILE *f = fopen(tmp, "w");
    fputs("0123456789", f);
    fclose(f);
    counted c = {0};
    ws_storage_list(st, "wal/", count_cb, &c, &err);
    is_int(c.n, 2, "list shows the two segments, not the temporary file");
    memset(&c, 0, sizeof c);
    int lrc = ws_storage_list_ex(st, "", WS_STORAGE_LIST_TMP, count_cb, NULL, &c, &err);
    ok(lrc == 0 && c.n == 1 && c.bytes == 10,
       "list_ex TMP: the temporary file alone (%d, %llu bytes)", c.n, (unsigned long long)c.bytes);
    is_str(c.last, "wal/0000000100000000/.000000010000000000000009.tmp.77.0", "... by its path");
    ws_storage_reader *rd;
    ok(ws_storage_open_read(st, c.last, 0, 0, &rd, &err) < 0, "a temporary file cannot be opened");
    ws_wal_parse_name("000000010000000000000009", &n, &err);
    ok(ws_repo_wal_identity(r, &n, &id, &err) < 0 && err.code == WS_ENOENT,
       "... nor read as the segment it was for");
    unlink(tmp);

    ws_repo_free(r);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, hroot);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
