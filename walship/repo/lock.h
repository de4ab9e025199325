/*
 * lock.h — the backup lock: how any process (another host included, posix or S3) tells a
 * base backup that is running from one that died.
 *
 * A running backup owns backup/<id>/walship.lock, a small text object holding its owner
 * (host, pid), when it started and its heartbeat: the wall-clock time of the last refresh.
 * A thread of the backup rewrites it every WS_BACKUP_LOCK_REFRESH seconds, into every
 * repository the backup writes. A lock whose heartbeat is older than WS_BACKUP_LOCK_STALE
 * (docs/retention.md) belongs to a dead backup: killed, its machine gone. The heartbeat is
 * written by the owner's clock and judged by the reader's: the stale limit is ten refreshes,
 * which also absorbs clock skew between hosts of a few minutes.
 *
 * The wall clock of every repository time (backup start/stop, heartbeats, expire's "now") is
 * ws_repo_wall_time: time(2) shifted by the test-only test-clock-offset setting
 * (docs/retention.md, "Testing"), so that a test can take backups "days apart".
 *
 * Ownership: ws_backup_lock_take returns a lock freed by ws_backup_lock_release.
 */
#ifndef WS_REPO_LOCK_H
#define WS_REPO_LOCK_H

#include <stdint.h>

#include "walship/repo/repo.h"

#define WS_BACKUP_LOCK_NAME    "walship.lock"
#define WS_BACKUP_LOCK_REFRESH 30  /* seconds between heartbeats */
#define WS_BACKUP_LOCK_STALE   300 /* a heartbeat older than this: the owner is dead */

/* Seconds since the epoch, shifted by ws_repo_set_clock_offset (tests only). */
int64_t ws_repo_wall_time(void);
void ws_repo_set_clock_offset(int64_t seconds);

typedef struct ws_backup_lock_info {
    char host[256];
    long pid;
    int64_t started, heartbeat; /* seconds since the epoch, the owner's clock */
} ws_backup_lock_info;

typedef struct ws_backup_lock ws_backup_lock;

/* Writes the lock of backup id into each of the n repositories cfgs names (its own
 * connections: the refresh thread never touches the caller's repositories) and starts the
 * heartbeat thread. The strings of cfgs must outlive the lock. Fails if a lock cannot be
 * written anywhere; later refresh failures are logged (a warning) and retried. */
int ws_backup_lock_take(const ws_storage_config *cfgs, int n, const char *id, ws_backup_lock **out,
                        ws_error *err);
/* Stops the heartbeat and removes the lock objects (best effort: a lock left behind goes
 * stale). NULL is a no-op. */
void ws_backup_lock_release(ws_backup_lock *l);

/* The lock of backup id in r: WS_ENOENT if there is none, WS_ECORRUPT if unreadable. */
int ws_backup_lock_read(ws_repo *r, const char *id, ws_backup_lock_info *info, ws_error *err);
/* 1 if the lock's heartbeat is younger than stale seconds at now (a lock from the future,
 * a skewed clock, counts as live). */
int ws_backup_lock_live(const ws_backup_lock_info *info, int64_t now, int64_t stale);

#endif
