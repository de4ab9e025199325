/*
 * life.h — what decides how long a background agent (async push, prefetch) lives, and how
 * it shows itself: docs/async.md, "Lifecycle".
 *
 * An agent serves one cluster, named by its PGDATA. It exits
 *   - after agent-idle-timeout without a request from a live client, whatever is failing
 *     (retries of work nobody asks for any more do not keep it alive);
 *   - within a second or two of SIGTERM or SIGINT: transfers in flight are aborted
 *     (ws_http_abort_all) rather than waited for;
 *   - soon after the postmaster that PGDATA/postmaster.pid named when it started is gone
 *     (ws_agent_pm_*): its work is only useful to that server.
 * Its log lines are one per kind of failure (ws_agent_log_quiet), its process title
 * "walship: push agent for PGDATA" (ws_agent_set_title).
 */
#ifndef WS_AGENT_LIFE_H
#define WS_AGENT_LIFE_H

#include <limits.h>

/* main(): moves argv and environ out of the memory the kernel shows as the command line
 * (as PostgreSQL's ps_status.c does), so that an agent can overwrite it with its title.
 * Returns the copy of argv the program uses from here on (owned by this module). */
char **ws_agent_save_argv(int argc, char **argv);
/* Shows title in ps (the command-line area saved above, truncated to its size) and comm
 * (prctl PR_SET_NAME, 15 bytes) in top and pkill. */
void ws_agent_set_title(const char *title, const char *comm);

/* The cluster an agent serves: PGDATA is the working directory when its pg_wal is wal_dir
 * (archive_command and restore_command run there), else wal_dir's parent. */
typedef struct ws_agent_pm {
    char pgdata[PATH_MAX];
    long pid; /* the postmaster seen at start; 0 = none: the agent lives by its idle timeout */
} ws_agent_pm;

/* Finds PGDATA and the live postmaster of postmaster.pid. */
void ws_agent_pm_init(ws_agent_pm *pm, const char *wal_dir);
/* 1 once that postmaster is gone: postmaster.pid removed, naming another process, or its
 * process dead. 0 while it runs, or if there was none at start. */
int ws_agent_pm_gone(const ws_agent_pm *pm);

/* From here on, in this process, a warning or an error of a kind already logged (the same
 * text once numbers and WAL names are left out) is logged at debug level, until
 * ws_agent_log_reset (a success: the next failure is news again). Thread-safe. */
void ws_agent_log_quiet(void);
void ws_agent_log_reset(void);

#endif
