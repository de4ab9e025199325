/*
 * spool.h — internal to walship/agent/: the spool directory shared by push and the agent.
 *
 *   <spool>/agent.lock     the agent holds a POSIX write lock on it for its whole life;
 *                          F_GETLK tells push whether one runs, and its pid
 *   <spool>/agent.state    written by the agent once it is ready: pid, config id, set id
 *   <spool>/agent.error    why the last agent could not start or stopped (global error)
 *   <spool>/NAME.ack       NAME is durable in every repository (see ws_spool_ack)
 *   <spool>/NAME.error     the agent's last failure for NAME, shown by the next push
 *
 * The prefetch agent's spool (pg_wal/walship-prefetch, or <spool-path>/prefetch) has the same
 * agent.lock, agent.state and agent.error, and:
 *   <spool>/fetch.want     the segment fetch was last asked for (recovery's position)
 *   <spool>/NAME           a prefetched segment, verified
 *   <spool>/NAME.ok        its proof: the configuration id, SHA-256 and file identity
 *   <spool>/NAME.tmp       a download in progress
 *
 * Every file is written to a temporary name and renamed, so readers see whole files only.
 * Acknowledgements need no fsync: losing one after a crash costs one redundant upload,
 * which the repository answers as "identical".
 */
#ifndef WS_AGENT_SPOOL_H
#define WS_AGENT_SPOOL_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "walship/config.h"
#include "walship/error.h"

typedef struct ws_spool {
    char wal_dir[PATH_MAX];    /* absolute pg_wal */
    char status_dir[PATH_MAX]; /* pg_wal/archive_status */
    char dir[PATH_MAX];        /* the spool */
    char config_id[65];        /* hex SHA-256 of the settings the agent depends on */
} ws_spool;

/* Resolves the directories for the WAL file at wal_path (pg_wal/NAME, relative to the cwd
 * PGDATA) and creates the spool (0700). WS_ENOENT when wal_path's directory has no
 * archive_status (not a pg_wal: the caller archives in-process). */
int ws_spool_init(ws_spool *sp, const ws_config *cfg, const char *wal_path, ws_error *err);
/* The same for the prefetch agent, from fetch's destination path (pg_wal/RECOVERYXLOG): the
 * spool is pg_wal/walship-prefetch, or <spool-path>/prefetch. */
int ws_spool_init_prefetch(ws_spool *sp, const ws_config *cfg, const char *dest_path,
                           ws_error *err);

/* The identity of a file's contents as the kernel knows it: the same inode, unchanged
 * (ctime moves on every write, rename or chmod and cannot be set by a program). */
typedef struct ws_spool_fileid {
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
} ws_spool_fileid;

void ws_spool_fileid_of(const struct stat *st, ws_spool_fileid *id);
int ws_spool_fileid_equal(const ws_spool_fileid *a, const ws_spool_fileid *b);

typedef struct ws_spool_ack {
    char set_id[65];
    char sha256[65];
    ws_spool_fileid file;
    /* .ok only (ws_spool_ok_make sets it, ws_spool_ack_write ignores it): the kernel's boot
     * id when the agent did not fsync the file, "" if it did */
    char boot_id[40];
} ws_spool_ack;

/* 0 and *ack if NAME.ack exists and parses; -1 otherwise (absent or malformed). */
int ws_spool_ack_read(const ws_spool *sp, const char *name, ws_spool_ack *ack);
int ws_spool_ack_write(const ws_spool *sp, const char *name, const ws_spool_ack *ack,
                       ws_error *err);
/* The prefetch agent's proof of a verified segment, NAME.ok: an acknowledgement whose set id
 * is the configuration id of the agent that verified it. */
int ws_spool_ok_read(const ws_spool *sp, const char *name, ws_spool_ack *ack);
int ws_spool_ok_write(const ws_spool *sp, const char *name, const ws_spool_ack *ack, ws_error *err);
/* 1 if ok (NAME.ok) proves that the file now at st is what the agent of configuration
 * config_id verified: same device, inode, size and mtime (the ctime moves when the agent
 * renames the file into place, after writing the proof), and the same boot: a file that was
 * not fsync'd is trusted only until the machine restarts, which may have lost its bytes. */
int ws_spool_ok_valid(const ws_spool_ack *ok, const char *config_id, const struct stat *st);
/* The proof of the verified file st for config_id and its SHA-256 (hex); synced = the file
 * was fsync'd (else the proof carries this boot's id). */
void ws_spool_ok_make(ws_spool_ack *ok, const char *config_id, const char *sha256_hex,
                      const struct stat *st, int synced);
/* The kernel's id of this boot (/proc/sys/kernel/random/boot_id), "" where there is none. */
const char *ws_spool_boot_id(void);
/* 1 if ack proves that the file now at st is archived by the agent whose set id is set_id. */
int ws_spool_ack_valid(const ws_spool_ack *ack, const char *set_id, const struct stat *st);

/* name NULL = the global agent.error. */
int ws_spool_error_write(const ws_spool *sp, const char *name, const char *text);
/* 0 and the text (NUL-terminated, truncated to len) and its stat if it exists; else -1. */
int ws_spool_error_read(const ws_spool *sp, const char *name, char *text, size_t len,
                        struct stat *st);
void ws_spool_error_remove(const ws_spool *sp, const char *name);

typedef struct ws_spool_state {
    long pid;
    char config_id[65];
    char set_id[65];
} ws_spool_state;

int ws_spool_state_read(const ws_spool *sp, ws_spool_state *st);
int ws_spool_state_write(const ws_spool *sp, const ws_spool_state *st, ws_error *err);

/* The pid of the process holding agent.lock, 0 if none (push side: never call this in the
 * agent, whose closing of any descriptor of the lock file would drop its own lock). */
long ws_spool_agent_pid(const ws_spool *sp);
/* Agent side: takes the lock; returns its descriptor, -2 if another agent holds it, -1 on
 * error (err set). */
int ws_spool_lock(const ws_spool *sp, ws_error *err);
/* 1 while the lock file at its path is still the inode locked through fd. */
int ws_spool_lock_current(const ws_spool *sp, int fd);

/* A small spool file <spool>/<fname>, written whole (temporary file + rename) / read (up to
 * len-1 bytes, NUL-terminated; -1 if absent). */
int ws_spool_file_write(const ws_spool *sp, const char *fname, const char *text, ws_error *err);
int ws_spool_file_read(const ws_spool *sp, const char *fname, char *buf, size_t len,
                       struct stat *st);

/* 1 if the directory entry fname is a WAL file name followed by suffix (".ready", ".ack",
 * ".tmp"...); the name is then copied to name (len bytes at most, NUL-terminated). */
int ws_spool_name_of(const char *fname, const char *suffix, char *name, size_t len);

/* len random bytes from the kernel (getrandom); -1 with err if it fails. */
int ws_spool_random(void *buf, size_t len, ws_error *err);

/* path of a spool file: <spool>/<name><suffix>. */
void ws_spool_path(const ws_spool *sp, const char *name, const char *suffix, char *out, size_t len);

#endif
