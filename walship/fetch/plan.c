/* plan.c — the prefetch agent's timeline planner (plan.h). */
#include "walship/fetch/plan.h"

#include <stdlib.h>
#include <string.h>

void ws_pf_plan_free(ws_pf_plan *p)
{
    free(p->hist);
    memset(p, 0, sizeof *p);
}

int ws_pf_plan_make(ws_repo **repos, int n, uint32_t base, ws_pf_plan *p, ws_error *err)
{
    ws_error_clear(err);
    memset(p, 0, sizeof *p);
    p->base_tli = base;
    for (int i = 0; i < n && !p->seg_size; i++) {
        ws_repo_identity id;
        ws_error e;
        if (ws_repo_identity_require(repos[i], &id, &e) == 0)
            p->seg_size = id.seg_size;
        else if (!err->msg[0])
            *err = e;
    }
    if (!p->seg_size)
        return -1;
    int failed = 0;
    for (uint32_t t = base + 1; t <= base + WS_PF_PLAN_MAX_NEW; t++) {
        ws_tl_history h;
        int found = 0, outage = 0;
        for (int i = 0; i < n && !found; i++) {
            ws_error e;
            ws_repo_identity id;
            /* a repository without its identity cannot say a history file is absent */
            if (ws_repo_identity_require(repos[i], &id, &e) < 0) {
                outage = 1;
                *err = e;
            } else if (ws_tl_history_load(repos[i], t, &h, &e) == 0)
                found = 1;
            else if (e.code != WS_ENOENT) {
                outage = 1;
                *err = e;
            }
        }
        if (!found) {
            /* not there: the newest timeline is known; unreachable: try again soon */
            failed = outage;
            break;
        }
        ws_tl_history *nh = realloc(p->hist, (size_t)(p->nhist + 1) * sizeof *nh);
        if (!nh) {
            failed = 1;
            ws_error_oom(err);
            break;
        }
        p->hist = nh;
        p->hist[p->nhist++] = h;
    }
    p->valid = 1;
    return failed ? -1 : 0;
}

int ws_pf_plan_ahead(const ws_pf_plan *p, const char *want, long ahead,
                     char (*names)[WS_WAL_NAME_MAX], uint64_t *segno)
{
    ws_wal_name wn;
    ws_error err;
    if (!p->seg_size || ws_wal_parse_name(want, &wn, &err) < 0 || wn.kind != WS_WAL_SEGMENT ||
        ws_wal_segno(&wn, p->seg_size, segno) < 0)
        return -1;
    const ws_tl_history *follow = ws_tl_choose(p->hist, p->nhist, wn.tli, *segno, p->seg_size);
    for (long i = 0; i < ahead; i++) {
        uint64_t s = *segno + 1 + (uint64_t)i;
        uint32_t tli = ws_tl_segment_tli(follow, wn.tli, s, p->seg_size);
        ws_wal_format_segment(names[i], tli, s, p->seg_size);
    }
    return 0;
}
