/* test_read_bounds.c — reads bounded against an untrusted object header (issue 11): the key's
 * kind bounds the plaintext length, a caller may bound it further, an lz4 frame of empty blocks
 * stops at the input cap, and a repository without walship.repo is an outage to a reader. */
#include "tests/unit/tap.h"
#include "walship/repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char root[] = "/tmp/walship-test-bounds-XXXXXX";

static int put(ws_repo *repo, const char *key, size_t len, ws_error *err)
{
    char *data = calloc(1, len ? len : 1);
    ws_repo_obj_writer *w;
    int rc = ws_repo_obj_create(&repo, 1, key, WS_OBJ_DATA, WS_CODEC_LZ4, 1, len, &w, err);
    if (rc == 0 && ws_repo_obj_write(w, data, len, err) < 0) {
        ws_repo_obj_abort(w);
        rc = -1;
    } else if (rc == 0) {
        rc = ws_repo_obj_commit(w, NULL, NULL, err);
    }
    free(data);
    return rc;
}

int main(void)
{
    plan_no_plan();
    ws_error err;
    ws_error_clear(&err);
    if (!mkdtemp(root))
        return 1;
    ws_storage_config sc = {0};
    sc.url = root;
    ws_repo *repo;
    ok(ws_repo_open(&sc, &repo, &err) == 0, "open %s", root);

    /* a reader's identity: absent is an outage, never "absent" */
    ws_repo_identity id;
    ok(ws_repo_identity_require(repo, &id, &err) < 0 && err.code == WS_ETRANSIENT &&
           strstr(err.msg, "has no walship.repo"),
       "no identity: WS_ETRANSIENT, not WS_ENOENT: %.100s", err.msg);

    /* a history file claiming more than 1 MiB is refused before its payload is read */
    const char *hist = "wal/history/00000002.history";
    ok(put(repo, hist, WS_REPO_HISTORY_MAX + 1, &err) == 0, "a 1 MiB + 1 history object stored");
    ws_stage *sink = ws_stage_sha256_new(NULL);
    ok(ws_repo_obj_read(repo, hist, sink, NULL, &err) < 0 && err.code == WS_ECORRUPT &&
           strstr(err.msg, "more than a history file may hold"),
       "read refused: %.120s", err.msg);
    ws_stage_free(sink);

    /* a segment before the identity is known: up to 1 GiB; after it, the segment size */
    const char *seg = "wal/0000000100000000/000000010000000000000003";
    ok(put(repo, seg, 2u << 20, &err) == 0, "a 2 MiB segment object stored");
    sink = ws_stage_sha256_new(NULL);
    ok(ws_repo_obj_read(repo, seg, sink, NULL, &err) == 0, "identity unknown: read (1 GiB bound)");
    ws_stage_free(sink);
    /* ensure refuses to create an identity beside stored WAL (it was lost): create it with
     * the segment out of the way, then store the segment again */
    ok(ws_storage_remove(ws_repo_storage(repo), seg, &err) == 0, "the segment removed");
    ws_repo_identity want = {1, 42, 15, 1u << 20};
    ok(ws_repo_identity_ensure(repo, &want, &err) == 0, "identity of 1 MiB segments");
    ok(put(repo, seg, 2u << 20, &err) == 0, "the 2 MiB segment object stored again");
    sink = ws_stage_sha256_new(NULL);
    ok(ws_repo_obj_read(repo, seg, sink, NULL, &err) < 0 && err.code == WS_ECORRUPT &&
           strstr(err.msg, "more than a WAL segment may hold (1048576)"),
       "identity known: a 2 MiB segment refused: %.120s", err.msg);
    ws_stage_free(sink);

    /* a backup object: the caller's bound */
    const char *bk = "backup/x/data/1";
    ok(put(repo, bk, 5000, &err) == 0, "a 5000-byte backup object stored");
    sink = ws_stage_sha256_new(NULL);
    ok(ws_repo_obj_read_limit(repo, bk, sink, NULL, 0, 4999, &err) < 0 && err.code == WS_ECORRUPT &&
           strstr(err.msg, "claims 5000 bytes"),
       "bound 4999: refused: %.120s", err.msg);
    ws_stage_free(sink);
    sink = ws_stage_sha256_new(NULL);
    ok(ws_repo_obj_read_limit(repo, bk, sink, NULL, 0, 5000, &err) == 0, "bound 5000: read");
    ws_stage_free(sink);

    /* an lz4 frame of empty blocks: cut at the input cap, not read for ever */
    ws_stage *null_sink = ws_stage_sha256_new(NULL);
    ws_stage *lz = ws_stage_lz4_decompress_new(1000, null_sink);
    static const unsigned char hdr[] = {0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7};
    static const unsigned char empty[] = {0x01, 0x00, 0x00, 0x00, 0x00};
    int rc = ws_stage_write(lz, hdr, sizeof hdr, &err);
    size_t fed = sizeof hdr;
    while (rc == 0 && fed < (1u << 24)) {
        rc = ws_stage_write(lz, empty, sizeof empty, &err);
        fed += sizeof empty;
    }
    ok(rc < 0 && err.code == WS_ECORRUPT && strstr(err.msg, "empty blocks") && fed < 10000,
       "empty blocks stop after %zu bytes: %.120s", fed, err.msg);
    ws_stage_chain_free(lz);

    ws_repo_free(repo);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    system(cmd);
    return done_testing();
}
