/*
 * prefetch.h — the prefetching fetch (fetch-prefetch > 0; docs/async.md, "Prefetching fetch").
 *
 * `walship fetch` of WAL segment N, run by PostgreSQL's startup process with the destination
 * in pg_wal, serves N from the prefetch spool when a verified copy is there (a rename), and
 * tells a background prefetch agent — one per spool, started on demand, exiting after
 * agent-idle-timeout — where recovery is. The agent downloads the next fetch-prefetch segments
 * along the timeline recovery will follow, fetch-parallel at once, each verified before it is
 * kept. fetch never waits for the agent to start; it only waits for a download of N itself
 * that is already in progress.
 *
 * fetch's side is client.c; the agent's job is prefetch.c (its timeline planner plan.h), on
 * the agents' shared runtime (walship/agent/loop.h).
 */
#ifndef WS_FETCH_PREFETCH_H
#define WS_FETCH_PREFETCH_H

#include "walship/agent/spool.h"
#include "walship/config.h"
#include "walship/wal.h"

enum {
    WS_PREFETCH_MISS = 0,    /* fetch N in the foreground */
    WS_PREFETCH_SERVED = 1,  /* dest holds N, verified */
    WS_PREFETCH_AGENT = 2,   /* this is the forked agent process, done: exit with *agent_exit */
    WS_PREFETCH_PENDING = 3, /* fetch N in the foreground, then call ws_prefetch_done */
};

/* Validates fetch-prefetch and fetch-parallel (-1, logged, on a bad value). For a segment
 * fetched into a pg_wal with fetch-prefetch > 0: serves it from the spool if it can (and then
 * records the request for the agent), starts an agent if none runs, and otherwise returns
 * WS_PREFETCH_PENDING. Anything else (a history file, a
 * destination outside pg_wal, prefetch off) returns WS_PREFETCH_MISS at once, having touched
 * nothing. Spool problems are logged and never fail the fetch: it goes to the repository. */
/* The prefetch spool's counters, "hits N misses M\n" (walship metrics --pgdata reads them). */
#define WS_PREFETCH_STATS "fetch.stats"

int ws_prefetch_fetch(const ws_config *cfg, const ws_wal_name *name, const char *dest,
                      int *agent_exit);

/* After the foreground fetch of a WAL_PREFETCH_PENDING segment: found (restored, exit 0)
 * moves the agent to it; otherwise the agent only learns that recovery is alive. */
void ws_prefetch_done(const ws_config *cfg, const ws_wal_name *name, const char *dest, int found);

/* The prefetch agent's job (prefetch.c), run in the detached agent process: its exit code. */
int ws_prefetch_main(const ws_config *cfg, const ws_spool *sp);

#endif
