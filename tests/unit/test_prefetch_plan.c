/* test_prefetch_plan.c — the prefetch agent's timeline planner (walship/fetch/plan.h): the
 * history files it finds in a repository, and the segments it leads recovery to next. */
#include "tests/unit/tap.h"
#include "walship/fetch/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEG (16u << 20) /* 16 MiB segments: 0/3000000 is in segment 3 */

static void put_history(ws_repo *repo, uint32_t tli, const char *text)
{
    char name[32], key[128];
    ws_wal_name wn;
    ws_error err;
    ws_repo_obj_writer *w;
    snprintf(name, sizeof name, "%08X.history", tli);
    if (ws_wal_parse_name(name, &wn, &err) < 0 || ws_repo_wal_key(&wn, key, sizeof key) < 0 ||
        ws_repo_obj_create(&repo, 1, key, ws_objkind_of(wn.kind), WS_CODEC_NONE, 1, strlen(text),
                           &w, &err) < 0 ||
        ws_repo_obj_write(w, text, strlen(text), &err) < 0 ||
        ws_repo_obj_commit(w, NULL, NULL, &err) < 0)
        bail_out("cannot store %s: %s", name, err.msg);
}

/* The names the plan leads to after want, joined by spaces. */
static const char *ahead(const ws_pf_plan *p, const char *want, long n)
{
    static char out[512];
    char names[8][WS_WAL_NAME_MAX];
    uint64_t segno;
    if (n > 8 || ws_pf_plan_ahead(p, want, n, names, &segno) < 0)
        return "(none)";
    out[0] = '\0';
    for (long i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? " " : "", names[i]);
    return out;
}

int main(void)
{
    plan_no_plan();
    char root[] = "/tmp/walship-test-plan-XXXXXX";
    if (!mkdtemp(root))
        bail_out("mkdtemp");
    ws_error err;
    ws_storage_config sc = {.url = root};
    ws_repo *repo;
    if (ws_repo_open(&sc, &repo, &err) < 0)
        bail_out("open: %s", err.msg);
    ws_pf_plan p;

    /* no identity: the repository cannot say anything is absent */
    is_int(ws_pf_plan_make(&repo, 1, 1, &p, &err), -1, "no walship.repo: the plan fails");
    ok(!p.valid, "... and is not usable");
    ok(err.msg[0] != '\0', "... with the repository's error (%s)", err.msg);
    ws_pf_plan_free(&p);

    ws_repo_identity id = {WS_REPO_FORMAT, 4242, 16, SEG};
    if (ws_repo_identity_ensure(repo, &id, &err) < 0)
        bail_out("identity: %s", err.msg);

    /* only timeline 1: recovery stays on it */
    is_int(ws_pf_plan_make(&repo, 1, 1, &p, &err), 0, "timeline 1, no history: complete");
    ok(p.valid && p.seg_size == SEG && p.nhist == 0 && p.base_tli == 1,
       "... segment size from the identity, no newer timeline");
    is_str(ahead(&p, "000000010000000000000002", 3),
           "000000010000000000000003 000000010000000000000004 000000010000000000000005",
           "the next three segments on timeline 1");
    ws_pf_plan_free(&p);

    /* 1 -> 2 at 0/5000000 (segment 5), 2 -> 3 inside segment 7 (0/7800000) */
    put_history(repo, 2, "1\t0/5000000\tno recovery target specified\n");
    put_history(repo, 3, "1\t0/5000000\tx\n2\t0/7800000\ty\n");
    is_int(ws_pf_plan_make(&repo, 1, 1, &p, &err), 0, "two newer timelines: complete");
    ok(p.valid && p.nhist == 2 && p.hist[0].tli == 2 && p.hist[1].tli == 3,
       "... the histories of 2 and 3, probed up to the first absent (4)");
    is_str(ahead(&p, "000000010000000000000003", 5),
           "000000010000000000000004 000000020000000000000005 000000020000000000000006 "
           "000000030000000000000007 000000030000000000000008",
           "from 1 at segment 3: the newest (3), each switch segment on the new timeline");
    is_str(ahead(&p, "000000010000000000000006", 2),
           "000000010000000000000007 000000010000000000000008",
           "on 1 past its switch point (another recovery_target_timeline): stays on 1");
    ok(ws_pf_plan_ahead(&p, "00000002.history", 1, NULL, NULL) < 0, "a history file: no plan");
    ws_pf_plan_free(&p);

    /* recovery on timeline 2: the plan is made for 2 (3 only) */
    is_int(ws_pf_plan_make(&repo, 1, 2, &p, &err), 0, "the plan for timeline 2");
    ok(p.valid && p.nhist == 1 && p.hist[0].tli == 3, "... holds 3 alone");
    is_str(ahead(&p, "000000020000000000000006", 2),
           "000000030000000000000007 000000030000000000000008", "from 2 at 6: on to 3 at 7");
    ws_pf_plan_free(&p);

    /* a history file that is not one: the plan stops there, partial */
    put_history(repo, 4, "this is not a history file\n");
    ok(ws_pf_plan_make(&repo, 1, 1, &p, &err) == -1 && err.code == WS_ECORRUPT,
       "a malformed history file fails the plan, to be made again (%s)", err.msg);
    ok(p.valid && p.nhist == 2, "... which is partial: usable, with the timelines before it");
    ws_pf_plan_free(&p);

    ws_repo_free(repo);
    char cmd[sizeof root + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
