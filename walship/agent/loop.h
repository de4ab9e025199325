/*
 * loop.h — the runtime both background agents run in: the push agent's job
 * (walship/archive/agent.c) and the prefetch agent's (walship/fetch/prefetch.c).
 *
 * One libuv loop per agent process: a watched directory (uv_fs_event, where the platform has
 * it), a tick in case an event is lost, a "kick" timer that batches a burst of events, and
 * SIGTERM/SIGINT. The agent's jobs run the synchronous pipelines on the loop's thread pool,
 * each slot with its own set of open repositories (the storage drivers are synchronous and
 * not thread-safe: docs/decisions.md); the loop thread only decides.
 *
 * The lifecycle (life.h) is written here once for both: the agent lock, the process title,
 * the quiet log, the postmaster watch, the idle timeout, stopping on a signal (transfers in
 * flight aborted, ws_http_abort_all), the grace after which jobs that ignore the abort are
 * left behind, and the exit code. An agent supplies its work as ws_agent_ops.
 */
#ifndef WS_AGENT_LOOP_H
#define WS_AGENT_LOOP_H

#include <uv.h>

#include "walship/agent/life.h"
#include "walship/agent/spool.h"
#include "walship/config.h"
#include "walship/error.h"
#include "walship/repo/repo.h"

/* The handles an agent's loop has. */
typedef struct ws_agent_loop {
    uv_loop_t loop;
    uv_fs_event_t watch;
    uv_timer_t tick, kick;
    uv_signal_t sigterm, sigint;
    int watching, closed;
} ws_agent_loop;

/* One set of open repositories, used by one job at a time. */
typedef struct ws_agent_repos {
    ws_repo **repos;
    int n;
} ws_agent_repos;

typedef struct ws_agent ws_agent;

/* What an agent does; the runtime calls these on the loop thread. */
typedef struct ws_agent_ops {
    const char *kind; /* "push": the process title "walship: push agent for PGDATA" */
    const char *comm; /* what top and pkill show: "walship push" */
    const char *name; /* "the agent": "the agent cannot run: ..." */
    const char *jobs; /* what a slot's job is, plural: "file(s)" in flight */
    unsigned tick_ms;
    unsigned kick_ms; /* how long a kick waits for more events */
    /* Reads the settings; sets nslots (jobs at once, >= 1), idle_timeout and watch_dir. */
    int (*setup)(ws_agent *a, ws_error *err);
    /* The repositories are open and the loop is ready: announce the agent, start working. */
    int (*start)(ws_agent *a, ws_error *err);
    /* Every tick while the agent runs (not stopping, its postmaster alive). */
    void (*tick)(ws_agent *a, double now);
    /* A kick: an event in the watched directory that wants says may mean work. */
    void (*kick)(ws_agent *a);
    int (*wants)(const char *filename); /* filename NULL: unknown */
    /* Optional: agent-idle-timeout has passed; called before the agent stops. */
    void (*idle)(ws_agent *a);
    /* Optional: jobs outlived the grace after the stop; called before the process exits
     * without them (_exit(WS_EXIT_FAIL): the lock goes with the process). */
    void (*abandon)(ws_agent *a);
    /* Optional: the loop has returned after a clean stop. */
    void (*finish)(ws_agent *a);
} ws_agent_ops;

struct ws_agent {
    const ws_config *cfg;
    const ws_spool *sp;
    const ws_agent_ops *ops;
    void *job; /* the agent's own state, given to ws_agent_serve */
    ws_agent_loop l;
    ws_agent_pm pm;
    int lockfd;
    /* set by setup */
    int nslots;
    double idle_timeout;
    const char *watch_dir;
    /* sets[i] for slot i's jobs, sets[nslots] for the side job (a periodic check, a plan) */
    ws_agent_repos *sets;
    /* kept by the agent: slot jobs on the pool, and whether its side job is */
    int inflight, side;
    int stopping;
    /* last_work: the last request of a live client or work done; failures and retries do not
     * count (life.h) */
    double last_work, stop_at;
};

/* The agent's whole life in the detached agent process: takes <spool>/agent.lock (0 at once
 * if another agent holds it), runs until stopped, reports an agent that cannot run
 * (agent.error) and returns the process exit code. job stays the caller's. */
int ws_agent_serve(const ws_config *cfg, const ws_spool *sp, const ws_agent_ops *ops, void *job);

/* Stops taking work and aborts the transfers in flight (why NULL: not logged). Their jobs
 * fail at once; the loop closes once none is left. */
void ws_agent_stop(ws_agent *a, const char *why);
/* In a job's done callback, after inflight or side is counted down: closes the loop when
 * stopping and nothing is left on the pool, else looks for work if kick. */
void ws_agent_settle(ws_agent *a, int kick);
/* 1 (and stopping, logged) if <spool>/agent.lock is no longer the file this agent locked. */
int ws_agent_lock_lost(ws_agent *a);
/* The wait before retrying after failures failures in a row: 0.5 s doubling, 10 s at most. */
double ws_agent_backoff(int failures);

#endif
