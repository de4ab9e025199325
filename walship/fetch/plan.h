/*
 * plan.h — the prefetch agent's timeline planner: which segments recovery will ask for next.
 *
 * Recovery with recovery_target_timeline = latest (PostgreSQL's default) follows the newest
 * timeline whose history contains the current one; from the switch point on — the segment
 * holding it included — it reads the new timeline's segments. The plan for recovery on
 * timeline T holds the history files of the timelines after T found in the repository
 * (T+1, T+2, ... up to the first absent, as PostgreSQL probes them); the segments ahead of a
 * request follow the newest timeline that branched off the current lineage at or after the
 * requested segment (ws_tl_choose). A request for an old timeline's segment at or past its
 * switch point shows that recovery stays on that timeline: the plan then leads along it.
 * A wrong guess costs downloads, never a wrong file: every file is served by name.
 */
#ifndef WS_FETCH_PLAN_H
#define WS_FETCH_PLAN_H

#include <stdint.h>

#include "walship/error.h"
#include "walship/repo/repo.h"
#include "walship/timeline.h"
#include "walship/wal.h"

#define WS_PF_PLAN_MAX_NEW 256 /* history files probed past the plan's timeline, at most */

typedef struct ws_pf_plan {
    int valid;         /* usable: seg_size known, hist what was found */
    uint32_t base_tli; /* the timeline it was made for */
    double at;         /* when it was made (the caller's clock; ws_pf_plan_make leaves 0) */
    uint32_t seg_size;
    int nhist; /* hist[i] is timeline base_tli + 1 + i */
    ws_tl_history *hist;
} ws_pf_plan;

/* Makes *p for recovery on timeline base from repos (the first identity that reads gives
 * the segment size). 0 when complete. -1 with err when a repository could not say (an
 * outage: no identity, a history file unreadable) or out of memory: p->valid then tells
 * whether what was read is usable (partial), to be made again soon. *p is the caller's to
 * free with ws_pf_plan_free either way. Blocking: run it on a pool thread with repos of
 * its own. */
int ws_pf_plan_make(ws_repo **repos, int n, uint32_t base, ws_pf_plan *p, ws_error *err);
void ws_pf_plan_free(ws_pf_plan *p);

/* The ahead segments recovery will ask for after segment want (a WAL segment name), along
 * the timeline the plan leads it: names[0..ahead), and *segno, want's segment number. -1 if
 * want is not a segment name or the plan has no segment size. */
int ws_pf_plan_ahead(const ws_pf_plan *p, const char *want, long ahead,
                     char (*names)[WS_WAL_NAME_MAX], uint64_t *segno);

#endif
