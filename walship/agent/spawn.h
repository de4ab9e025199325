/*
 * spawn.h — starting a background agent as a detached process (double fork + setsid).
 */
#ifndef WS_AGENT_SPAWN_H
#define WS_AGENT_SPAWN_H

#include "walship/error.h"

/* Returns 1 in the agent, which then calls ws_agent_detach and its main loop; 0 in the
 * caller (the intermediate child is already reaped); -1 on error. */
int ws_agent_spawn(ws_error *err);
/* In the new agent: stdin/stdout to /dev/null, every descriptor above 2 closed (stderr is
 * PostgreSQL's log), umask 077, SIGPIPE and SIGHUP ignored, log lines prefixed by who. */
void ws_agent_detach(const char *who);

#endif
