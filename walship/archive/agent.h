/*
 * agent.h — asynchronous push (async = on; docs/async.md).
 *
 * `walship push %p` hands the file to one background agent per spool and waits for its
 * acknowledgement. The agent watches pg_wal/archive_status for .ready files and archives up to
 * push-parallel of them at once through the same pipeline as the in-process push
 * (ws_push_file_store, pipeline.h), on the agents' shared runtime (walship/agent/loop.h), so that
 * by the time PostgreSQL asks for a file it is usually stored already and push answers from the
 * spool at once.
 *
 * An acknowledgement is written only after the file is durable in every sync repository
 * (repoN-mode; catch-up repositories are filled afterwards by the agent, agent.c). It names
 * the agent's set id (the configuration's hash plus a random nonce drawn when the agent
 * started), the file's SHA-256 and size, and the file's identity (device, inode, size, mtime,
 * ctime). Push trusts it only while the agent that wrote it is alive and running the same
 * configuration, and only for the very inode it hashed: a PGDATA restored from a snapshot, a
 * rewritten file or a changed repository never skips an upload.
 */
#ifndef WS_ARCHIVE_AGENT_H
#define WS_ARCHIVE_AGENT_H

#include "walship/agent/spool.h"
#include "walship/archive/pipeline.h"
#include "walship/config.h"

/* The push command with async = on: f is open and validated. Returns the process exit code
 * (0 acknowledged; 1 not archived, with the agent's error text logged; 2 configuration). In
 * the forked agent process this returns the agent's exit code once it has stopped. -1 when
 * f is not in a pg_wal directory (no archive_status beside it): the caller archives it
 * in-process. */
int ws_agent_push(const ws_config *cfg, ws_push_file *f); /* client.c */

/* The agent's job (agent.c), run in the detached agent process: its exit code. */
int ws_agent_main(const ws_config *cfg, const ws_spool *sp);

#endif
