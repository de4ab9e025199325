/*
 * client.h — what a client of a background agent (push with async = on, the prefetching
 * fetch) does to reach it: start one when none runs, tell an agent of another configuration
 * to make way, and show that a live client asks for work.
 */
#ifndef WS_AGENT_CLIENT_H
#define WS_AGENT_CLIENT_H

#include "walship/agent/spool.h"
#include "walship/config.h"
#include "walship/error.h"

/* An agent's job, run in the detached process: returns its exit code. */
typedef int (*ws_agent_main_fn)(const ws_config *cfg, const ws_spool *sp);

/* Starts a detached agent for sp (spawn.h). In the agent process this returns 1 once main
 * has returned, with *agent_exit its exit code: the caller returns that at once, and any
 * descriptor it had open is closed already. In the caller it returns 0; -1 with err. */
int ws_agent_start(const ws_config *cfg, const ws_spool *sp, const char *who, ws_agent_main_fn main,
                   int *agent_exit, ws_error *err);

/* The agent pid holding sp's lock, as its agent.state shows it: 1 running this configuration
 * (*st filled), 0 running another one, -1 not known (no state yet, or another pid's). */
int ws_agent_current(const ws_spool *sp, long pid, ws_spool_state *st);

/* Asks agent pid, which runs another configuration (another repository, new credentials),
 * to stop: it finishes what it has started and exits, and the next client starts a new one.
 * name is "the agent", "the prefetch agent". */
void ws_agent_restart(long pid, const char *name);

/* Moves the mtime of <spool>/fname (a live client asks), creating the file if create; -1 if
 * it is absent and not created. */
int ws_agent_touch(const ws_spool *sp, const char *fname, int create);

#endif
