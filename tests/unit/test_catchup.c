/* test_catchup.c — catch-up backlogs and the one-object copy (walship/repo/catchup.c): the
 * backlog is what the source holds and the target lacks (history files and gap records first,
 * then segments by name), segments older than the target's oldest are not backlog (expired
 * there), a copy is read back verified and never overwrites a different object. */
#include "tests/unit/tap.h"
#include "walship/config.h"
#include "walship/repo/catchup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/walship-test-catchup-XXXXXX";

static int put(ws_repo *r, const char *name, const char *text)
{
    ws_error err;
    ws_wal_name n;
    char key[128];
    if (ws_wal_parse_name(name, &n, &err) < 0 || ws_repo_wal_key(&n, key, sizeof key) < 0)
        return -1;
    ws_repo_obj_writer *w;
    ws_repo *rs[1] = {r};
    if (ws_repo_obj_create(rs, 1, key, ws_objkind_of(n.kind), WS_CODEC_NONE, 1, strlen(text), &w,
                           &err) < 0)
        return -1;
    if (ws_repo_obj_write(w, text, strlen(text), &err) < 0) {
        ws_repo_obj_abort(w);
        return -1;
    }
    return ws_repo_obj_commit(w, NULL, NULL, &err);
}

static ws_repo *open_repo(const char *sub)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, sub);
    ws_storage_config sc = {.url = path};
    ws_repo *r = NULL;
    ws_error err;
    if (ws_repo_open(&sc, &r, &err) < 0)
        bail_out("open %s: %s", path, err.msg);
    return r;
}

int main(void)
{
    plan_no_plan();
    if (!mkdtemp(root))
        bail_out("mkdtemp");
    ws_repo *src = open_repo("src"), *dst = open_repo("dst");
    ws_error err;
    ws_error_clear(&err);
    const char *segs[] = {"000000010000000000000001", "000000010000000000000002",
                          "000000010000000000000003", "000000010000000000000004",
                          "000000010000000000000005"};
    for (int i = 0; i < 5; i++)
        ok(put(src, segs[i], segs[i]) == 0, "source: %s", segs[i]);
    ok(put(src, "00000002.history", "1\t0/5000000\tno recovery target specified\n") == 0,
       "source: a history file");
    ws_repo_gap g;
    memset(&g, 0, sizeof g);
    snprintf(g.segment, sizeof g.segment, "000000010000000000000006");
    snprintf(g.reason, sizeof g.reason, "%s", WS_GAP_REASON_QUEUE_MAX);
    g.dropped_at = 1795000000;
    ok(ws_repo_gap_record(src, &g, &err) == 0, "source: a gap record");

    ws_catchup_backlog b;
    ok(ws_catchup_backlog_of(src, dst, &b, &err) == 0, "backlog of an empty target");
    is_int(b.n, 7, "everything: 5 segments, the history file, the gap record");
    ok(b.n == 7 && strstr(b.v[0].key, "history") && strncmp(b.v[1].key, "gap/", 4) == 0 &&
           strstr(b.v[2].key, segs[0]),
       "oldest first: history, gap, then segments by name");
    ok(b.bytes > 0, "with their stored bytes");
    is_str(b.dst_newest, "", "the target has no segment");
    ws_catchup_backlog_free(&b);

    /* the target holds 3 (1 and 2 expired there): they are not backlog */
    ok(put(dst, segs[2], segs[2]) == 0, "target: %s only", segs[2]);
    ok(ws_catchup_backlog_of(src, dst, &b, &err) == 0, "backlog");
    is_int(b.n, 4, "history, gap, 4 and 5: what the target expired is not backlog");
    ok(strstr(b.dst_newest, segs[2]) != NULL, "the target's newest segment: %s", b.dst_newest);
    int stored = 0, copied = 0;
    for (int i = 0; i < b.n; i++) {
        ok(ws_repo_obj_copy(src, dst, b.v[i].key, 1, &stored, &err) == 0, "copy %s", b.v[i].key);
        copied += stored;
    }
    is_int(copied, 4, "each written now");
    ok(ws_repo_obj_copy(src, dst, b.v[0].key, 1, &stored, &err) == 0 && stored == 0,
       "copied again: already there with the same contents");
    ws_catchup_backlog_free(&b);
    ok(ws_catchup_backlog_of(src, dst, &b, &err) == 0 && b.n == 0, "the backlog is now empty");
    ws_catchup_backlog_free(&b);

    /* the estimate while the target is down: the source's segments after the newest seen */
    ok(ws_catchup_backlog_after(src, "wal/0000000100000000/000000010000000000000003", &b, &err) ==
               0 &&
           b.n == 2,
       "after 3: 4 and 5");
    ws_catchup_backlog_free(&b);
    ok(ws_catchup_backlog_after(src, "", &b, &err) == 0 && b.n == 5, "after nothing: 5 segments");
    ws_catchup_backlog_free(&b);

    /* a different object under the key on the target is never overwritten */
    ws_repo *other = open_repo("other");
    ok(put(other, segs[4], "something else") == 0, "another target holds a different %s", segs[4]);
    ws_wal_name n;
    char key[128];
    ws_wal_parse_name(segs[4], &n, &err);
    ws_repo_wal_key(&n, key, sizeof key);
    ws_error_clear(&err);
    ok(ws_repo_obj_copy(src, other, key, 1, &stored, &err) < 0 && err.code == WS_EMISMATCH,
       "copy refused: WS_EMISMATCH");
    ok(strstr(err.msg, "already holds a different") != NULL, "... saying so: %s", err.msg);
    ws_error_clear(&err);
    ok(ws_repo_obj_copy(src, dst, "wal/0000000100000000/000000010000000000000009", 1, &stored,
                        &err) < 0 &&
           err.code == WS_ENOENT,
       "a key the source lacks: WS_ENOENT");

    /* an encrypted target: the object it holds is compared by the plaintext's keyed hash
     * under its own hash key, never by the two headers' bytes (a false "different" there would
     * stop every catch-up round and basebackup's copy at the first object already present) */
    {
        char kf[300], url[300];
        snprintf(kf, sizeof kf, "%s/repo.key", root);
        snprintf(url, sizeof url, "%s/enc", root);
        FILE *f = fopen(kf, "w");
        for (int i = 0; f && i < 32; i++)
            fputc(i * 7 + 3, f);
        if (f)
            fclose(f);
        chmod(kf, 0600);
        char *argv[] = {"walship",           "--repo", url,    "--cipher", "aes-256-gcm",
                        "--cipher-key-file", kf,       "list", NULL};
        ws_config *cfg = NULL;
        ws_repo *enc = open_repo("enc");
        ws_repo_identity id = {.format = 1, .sysid = 7, .pg_version = 150000, .seg_size = 1 << 20};
        ws_error_clear(&err);
        int ready = ws_config_load(8, argv, &cfg, &err) == 0 &&
                    ws_repo_cipher_setup(enc, cfg, 0, &err) == 0 &&
                    ws_repo_identity_ensure(enc, &id, &err) == 0;
        if (!ok(ready, "an encrypted target (key file)"))
            diag("%s", err.msg);
        ws_wal_parse_name(segs[0], &n, &err);
        ws_repo_wal_key(&n, key, sizeof key);
        if (!ok(ready && ws_repo_obj_copy(src, enc, key, 1, &stored, &err) == 0 && stored == 1,
                "copied into it (re-encrypted)"))
            diag("%s", err.msg);
        if (!ok(ready && ws_repo_obj_copy(src, enc, key, 1, &stored, &err) == 0 && stored == 0,
                "copied again: already there with the same plaintext, not a conflict"))
            diag("%s", err.msg);
        ws_repo_free(enc);
        ws_config_free(cfg);
    }

    ws_repo_free(src);
    ws_repo_free(dst);
    ws_repo_free(other);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
