/* test_timeline.c — timeline history files: parsing, and which timeline recovery reads a
 * segment from (the prefetching fetch's guess of recovery_target_timeline = latest). */
#include "tests/unit/tap.h"
#include "walship/timeline.h"

#include <string.h>

#define MB (16u << 20) /* 16 MiB segments: 0/3000000 is in segment 3 */

static ws_tl_history parse(uint32_t tli, const char *text)
{
    ws_tl_history h;
    ws_error err;
    if (ws_tl_history_parse(tli, text, strlen(text), &h, &err) < 0)
        memset(&h, 0, sizeof h);
    return h;
}

int main(void)
{
    plan_no_plan();
    ws_error err;
    ws_tl_history h2 = parse(2, "1\t0/3000000\tno recovery target specified\n");
    is_int(h2.n, 1, "00000002.history: one ancestor");
    is_int(h2.anc[0].tli, 1, "... timeline 1");
    ok(h2.anc[0].end == 0x3000000, "... left at 0/3000000");
    ws_tl_history bad;
    is_int(ws_tl_history_parse(2, "1 zz\n", 5, &bad, &err), -1, "a malformed line is refused");
    is_int(err.code, WS_ECORRUPT, "... as corrupt");
    ws_tl_history h1 = parse(1, "");
    is_int(h1.n, 0, "timeline 1: no ancestors");

    /* 1 -> 2 at segment 3, 2 -> 3 inside segment 5 (0/5800000) */
    ws_tl_history h3 = parse(
        3, "# comment\n1\t0/3000000\tno recovery target\n\n2\t0/5800000\tbefore 2000-01-01\n");
    is_int(h3.n, 2, "00000003.history: two ancestors (comments and blank lines skipped)");
    uint64_t end;
    ok(ws_tl_history_has(&h3, 2, &end) && end == 0x5800000, "3 has 2, left at 0/5800000");
    ok(ws_tl_history_has(&h3, 3, &end) && end == UINT64_MAX, "3 has itself");
    ok(!ws_tl_history_has(&h3, 4, NULL), "3 does not have 4");

    is_int(ws_tl_segment_tli(&h3, 1, 2, MB), 1, "following 3 from 1: segment 2 on 1");
    is_int(ws_tl_segment_tli(&h3, 1, 3, MB), 2, "segment 3 (holds the switch to 2) on 2");
    is_int(ws_tl_segment_tli(&h3, 1, 4, MB), 2, "segment 4 on 2");
    is_int(ws_tl_segment_tli(&h3, 1, 5, MB), 3, "segment 5 (holds the switch to 3) on 3");
    is_int(ws_tl_segment_tli(&h3, 1, 9, MB), 3, "segment 9 on 3");
    is_int(ws_tl_segment_tli(&h3, 2, 4, MB), 2, "following 3 from 2: segment 4 on 2");
    is_int(ws_tl_segment_tli(&h3, 2, 5, MB), 3, "... segment 5 on 3");
    is_int(ws_tl_segment_tli(NULL, 1, 9, MB), 1, "following nothing: stays on 1");
    is_int(ws_tl_segment_tli(&h3, 3, 9, MB), 3, "on 3 itself: 3");

    /* 4 branched off 1 at segment 2: a sibling of 2 and 3 */
    ws_tl_history h4 = parse(4, "1\t0/2000000\tx\n");
    ws_tl_history all[3] = {h2, h3, h4};
    const ws_tl_history *c = ws_tl_choose(all, 3, 1, 1, MB);
    ok(c && c->tli == 4, "on 1 at segment 1: the newest, 4 (left 1 at segment 2)");
    c = ws_tl_choose(all, 3, 1, 2, MB);
    ok(c && c->tli == 3, "on 1 at segment 2: 4 left 1 before, so 3");
    c = ws_tl_choose(all, 3, 1, 3, MB);
    ok(!c, "on 1 at segment 3 (past every switch): stays on 1");
    c = ws_tl_choose(all, 3, 2, 4, MB);
    ok(c && c->tli == 3, "on 2 at segment 4: 3 (4 does not descend from 2)");
    c = ws_tl_choose(all, 3, 2, 5, MB);
    ok(!c, "on 2 at segment 5 (the switch segment of 3): stays on 2");
    c = ws_tl_choose(all, 2, 3, 7, MB);
    ok(!c, "on 3, nothing newer: stays on 3");
    return done_testing();
}
