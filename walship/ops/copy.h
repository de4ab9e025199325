/*
 * copy.h — `walship copy [--from N] [--to M] [--backup ID | --all] [--wal] [--dry-run]
 * [--json]` (issue 19, docs/copy.md): fills one repository from another, for 3-2-1 setups
 * where a repository was down while a backup ran, or was added later.
 *
 * What is copied: with --wal, every WAL object (segments, .partial, history and backup
 * history files) and gap record the target lacks; with --backup ID or --all, those complete
 * backups, each one's objects first and its walship.manifest last, so that a half-copied
 * backup is never listed as complete on the target. Without any of the three: --all --wal.
 * The WAL goes first: a backup is visible only once the WAL it needs is there (the rule
 * basebackup follows); a backup whose start-to-stop segments the target lacks keeps its
 * objects there but not its manifest (an ERROR naming the segment, exit 1).
 *
 * Every object is read back verified from the source (header, length, SHA-256) and written
 * create-only-if-absent through the repository layer, which recompresses it with its codec;
 * one already on the target with the same plaintext SHA-256 counts as copied (a rerun after
 * kill -9 copies only what is missing), one with a different SHA-256 is never overwritten:
 * reported (ERROR naming the key and both checksums) and the command exits 1. The target's
 * identity (walship.repo) must be the source's; an empty target gets the source's.
 *
 * Parallel (copy-parallel objects at once, each worker with its own repository handles);
 * memory per worker is the read and write paths' buffers, whatever the object's size.
 * Progress on a terminal (walship/progress.h).
 *
 * Exit: 0 when everything chosen is on the target, 1 when an object could not be copied or
 * conflicts, 2 for usage errors (nothing written).
 */
#ifndef WS_OPS_COPY_H
#define WS_OPS_COPY_H

#include "walship/config.h"

int ws_cmd_copy(const ws_config *cfg);

#endif
