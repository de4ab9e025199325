/* test_gap.c — gap records (walship/repo/gap.c): key, record, read back, list, the first
 * record of a segment wins, bad input and damaged records refused. */
#include "tests/unit/tap.h"
#include "walship/repo/repo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/walship-test-gap-XXXXXX";

static ws_repo_gap gap_of(const char *segment, int64_t when)
{
    ws_repo_gap g;
    memset(&g, 0, sizeof g);
    snprintf(g.segment, sizeof g.segment, "%s", segment);
    snprintf(g.reason, sizeof g.reason, "%s", WS_GAP_REASON_QUEUE_MAX);
    g.dropped_at = when;
    g.backlog_files = 12;
    g.backlog_bytes = 12u << 20;
    g.limit_bytes = 4u << 20;
    return g;
}

int main(void)
{
    plan_no_plan();
    if (!mkdtemp(root))
        bail_out("mkdtemp");
    ws_error err;
    ws_error_clear(&err);
    ws_storage_config sc = {.url = root};
    ws_repo *repo;
    ok(ws_repo_open(&sc, &repo, &err) == 0, "open posix repository");

    ws_wal_name n;
    char key[128];
    ws_wal_parse_name("00000002000000000000000A", &n, &err);
    ok(ws_repo_gap_key(&n, key, sizeof key) == 0, "a segment has a gap key");
    is_str(key, "gap/0000000200000000/00000002000000000000000A", "gap/<tli+log>/<segment>");
    ws_wal_parse_name("00000002.history", &n, &err);
    ok(ws_repo_gap_key(&n, key, sizeof key) < 0, "a history file has none");

    ws_repo_gap g = gap_of("00000001000000000000000C", 1795000000), back;
    ok(ws_repo_gap_record(repo, &g, &err) == 0, "record a gap");
    ok(ws_repo_gap_get(repo, "00000001000000000000000C", &back, &err) == 0, "read it back");
    is_str(back.segment, "00000001000000000000000C", "segment");
    is_str(back.reason, "push-queue-max", "reason");
    is_int(back.dropped_at, 1795000000, "dropped-at");
    is_int((long long)back.backlog_files, 12, "backlog files");
    is_int((long long)back.backlog_bytes, 12 << 20, "backlog bytes");
    is_int((long long)back.limit_bytes, 4 << 20, "limit");

    /* recorded again (a later drop of the same file): success, the first record stays */
    ws_repo_gap later = gap_of("00000001000000000000000C", 1795000999);
    ok(ws_repo_gap_record(repo, &later, &err) == 0, "recording it again succeeds");
    ok(ws_repo_gap_get(repo, "00000001000000000000000C", &back, &err) == 0 &&
           back.dropped_at == 1795000000,
       "... and the first record is kept");
    ok(ws_repo_gap_record(repo, &g, &err) == 0, "the identical record again: success");

    ok(ws_repo_gap_get(repo, "00000001000000000000000D", &back, &err) < 0 && err.code == WS_ENOENT,
       "no record: WS_ENOENT");
    ws_repo_gap bad = gap_of("00000001.history", 1);
    ok(ws_repo_gap_record(repo, &bad, &err) < 0 && err.code == WS_EINVAL,
       "a history file cannot be recorded as a gap");
    bad = gap_of("../../etc", 1);
    ok(ws_repo_gap_record(repo, &bad, &err) < 0 && err.code == WS_EINVAL, "nor a path");

    ws_repo_gap g2 = gap_of("00000001000000000000000B", 1795000100);
    ws_repo_gap g3 = gap_of("000000020000000100000000", 1795000200);
    ok(ws_repo_gap_record(repo, &g3, &err) == 0 && ws_repo_gap_record(repo, &g2, &err) == 0,
       "two more");
    /* stray keys under gap/ are not records */
    ws_storage *s = ws_repo_storage(repo);
    ws_storage_put_small(s, "gap/0000000100000000/notes.txt", 0, "x", 1, NULL, &err);
    ws_storage_put_small(s, "gap/0000000900000000/00000001000000000000000E", 0, "x", 1, NULL, &err);
    ws_repo_gap *list;
    int count;
    ok(ws_repo_gap_list(repo, &list, &count, &err) == 0, "list");
    is_int(count, 3, "three records, stray keys ignored");
    if (count == 3) {
        is_str(list[0].segment, "00000001000000000000000B", "sorted: first");
        is_str(list[1].segment, "00000001000000000000000C", "sorted: second");
        is_str(list[2].segment, "000000020000000100000000", "sorted: third");
        ok(list[0].dropped_at > 0, "storage time as dropped_at");
        is_str(list[0].reason, "", "reason not read by list");
    }
    free(list);

    /* a record that is not one */
    ws_storage_put_small(s, "gap/0000000100000000/000000010000000000000010", 0, "WSHPgarbage", 11,
                         NULL, &err);
    ok(ws_repo_gap_get(repo, "000000010000000000000010", &back, &err) < 0 &&
           err.code == WS_ECORRUPT,
       "a damaged record: WS_ECORRUPT");

    /* an unwritable repository: the record fails, with the repository named */
    char gapdir[512];
    snprintf(gapdir, sizeof gapdir, "%s/gap/0000000300000000", root);
    FILE *f = fopen(gapdir, "w"); /* a file where the directory would go */
    if (f)
        fclose(f);
    ws_repo_gap g4 = gap_of("000000030000000000000001", 1);
    ok(ws_repo_gap_record(repo, &g4, &err) < 0, "recording fails when the key cannot be written");
    ok(strstr(err.msg, "cannot record the gap of 000000030000000000000001 in ") != NULL,
       "... saying which segment and repository: %s", err.msg);

    ws_repo_free(repo);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
