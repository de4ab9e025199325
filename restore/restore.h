/*
 * restore.h — `walship restore` (docs/restore.md): a base backup back into a data directory,
 * and the recovery configuration that takes it to the target.
 *
 * The story, one file each:
 *   target.c    the recovery target from the options, and the backup that can reach it
 *   layout.c    the manifest as a plan: every entry's destination, checked to stay inside
 *               PGDATA or its tablespace; the directories made ready
 *   guard.c     what restore may touch: PGDATA's state (empty, running, delta), tablespace
 *               directories (another cluster's, a running cluster's)
 *   extract.c   objects downloaded, decompressed, split into files and verified, in parallel
 *   recovery.c  recovery.signal / standby.signal and the marked postgresql.auto.conf block
 *   cmd.c       the command: options, the plan, the order in which it is carried out
 *
 * Ownership: a plan from ws_rs_plan_load is freed by ws_rs_plan_free; everything it points to
 * belongs to it.
 */
#ifndef WS_RESTORE_H
#define WS_RESTORE_H

#include <stdint.h>
#include <stdio.h>

#include "walship/repo/catalog.h"
#include "walship/repo/manifest.h"
#include "walship/config.h"
#include "walship/error.h"
#include "walship/repo/repo.h"

/* ---- the target (target.c) ---- */

typedef enum ws_rs_target_kind {
    WS_RS_TARGET_NONE = 0, /* to the end of the archive */
    WS_RS_TARGET_TIME,
    WS_RS_TARGET_LSN,
    WS_RS_TARGET_XID,
    WS_RS_TARGET_NAME,
    WS_RS_TARGET_IMMEDIATE,
} ws_rs_target_kind;

typedef struct ws_rs_target {
    ws_rs_target_kind kind;
    const char *value;    /* as given (borrowed from the config) */
    double time;          /* TIME: seconds since the epoch */
    uint64_t lsn;         /* LSN */
    const char *action;   /* pause | promote | shutdown, or NULL */
    const char *timeline; /* latest | current | N, or NULL */
    int archive_off;      /* --archive-mode off (the default): archive_mode = off is written */
    int force;            /* --force: a target beyond the archive only warns */
} ws_rs_target;

/* Reads and checks the target options (and --archive-mode, --force); WS_ECONFIG naming the
 * bad one. */
int ws_rs_target_parse(const ws_config *cfg, ws_rs_target *t, ws_error *err);

/* "2026-11-22 14:30:00[.123][+01[:00]|Z]" (or with 'T') → seconds since the epoch; a time
 * without a zone is local time. -1 if malformed. */
int ws_rs_parse_time(const char *s, double *out);

/* Chooses the backup (--backup ID | latest | the newest that ends before a time or LSN
 * target on the timeline recovery will follow). *why receives a sentence for the plan. */
const ws_manifest_info *ws_rs_choose_backup(ws_repo *r, const ws_catalog *cat,
                                            const char *backup_opt, const ws_rs_target *t,
                                            char *why, size_t whylen, ws_error *err);

/* Gap records (push-queue-max) after the backup's end, whose segment was never stored:
 * a target known to lie beyond the first is refused (WS_ENOENT); otherwise a warning says
 * that recovery will stop there. */
int ws_rs_check_gaps(ws_repo *r, const ws_manifest_info *b, const ws_rs_target *t, ws_error *err);

/* When recovery will follow a timeline that branched off the newest backup's (a drill or a
 * test promoted and archived into this repository: replay would leave the newest backup's
 * timeline at the branch point and lose what was written there since), a sentence naming
 * both timelines and the branch point into note; "" otherwise. */
int ws_rs_timeline_note(ws_repo *r, const ws_catalog *cat, const ws_rs_target *t, char *note,
                        size_t len, ws_error *err);

/* A time or LSN target past the newest WAL segment archived on the timeline recovery follows
 * (PostgreSQL would stop with "recovery ended before configured recovery target was
 * reached"): refused (WS_EINVAL) naming that segment and its object's mtime, or with --force
 * a warning. For a time target the segment object's mtime is the bound: a segment is stored
 * after its last record was written. */
int ws_rs_check_archive_end(ws_repo *r, const ws_manifest_info *b, const ws_rs_target *t,
                            ws_error *err);

/* ---- the plan (layout.c) ---- */

typedef struct ws_rs_entry {
    ws_manifest_kind kind;
    uint32_t tablespace;
    char *path;       /* relative to PGDATA or the tablespace directory */
    char *dest;       /* absolute; for held files, the temporary name */
    char *final_dest; /* held files: the real name, given at the very end */
    uint32_t mode;
    int64_t mtime;
    uint64_t size;
    unsigned char sha256[32];
    char *extents; /* "-" or "data/NNNNNN@OFF+LEN,..." */
    int nextents;
    int keep; /* delta: already there with this size and SHA-256 */
} ws_rs_entry;

typedef struct ws_rs_tablespace {
    uint32_t oid;
    char *original;
    char *dest;
    int mapped; /* dest was named with --tablespace-map */
} ws_rs_tablespace;

typedef struct ws_rs_plan {
    ws_manifest_info info;
    char *pgdata; /* absolute */
    ws_rs_entry *e;
    int n, cap;
    ws_rs_tablespace *ts;
    int nts;
    int pgdata_exists;
    int group_access; /* the backup's PGDATA allowed group access: 0750/0640, else 0700/0600 */
    /* filled by ws_rs_plan_delta / counted by ws_rs_plan_count */
    uint64_t files, bytes, files_write, bytes_write;
} ws_rs_plan;

/* Reads the backup's manifest into a plan, mapping tablespaces (map: "OID=DIR[,...]" or
 * NULL) and refusing any entry that would land outside PGDATA or its tablespace. */
int ws_rs_plan_load(ws_repo *r, const ws_manifest_info *b, const char *pgdata, const char *map,
                    ws_rs_plan *p, ws_error *err);
void ws_rs_plan_free(ws_rs_plan *p);
/* The whole plan checked before the first write (guard.c; ws_rs_plan_load calls it): every
 * tablespace entry in PostgreSQL's layout, tablespace directories neither in PGDATA nor
 * holding it nor in one another (symlinks resolved), no name twice, every extent well-formed
 * and no two overlapping; then every mode set to PostgreSQL's (0700/0600, or 0750/0640 with
 * group access), never the manifest's. WS_ECORRUPT for what a real backup cannot hold. */
int ws_rs_plan_validate(ws_rs_plan *p, ws_error *err);
/* Counts what is to be written (after delta marks what is kept). */
void ws_rs_plan_count(ws_rs_plan *p);

/* What restore may touch (guard.c): refuses a PGDATA where a postmaster runs, a non-empty
 * tablespace directory of a running cluster (found through /proc: its processes' working
 * directory is their data directory, whose pg_tblspc links name its tablespaces), and
 * unless delta a non-empty PGDATA or tablespace directory. With delta, a non-empty tablespace
 * directory outside PGDATA must be this PGDATA's own (its pg_tblspc/<oid> link points there)
 * or named with --tablespace-map: delta removes and rewrites files, never another cluster's. */
int ws_rs_check_targets(const ws_rs_plan *p, int delta, ws_error *err);
/* Delta: marks files already right (size and SHA-256), hashing on threads threads. */
int ws_rs_plan_delta(ws_rs_plan *p, int threads, ws_error *err);
/* Makes the directories and tablespace symlinks, creates (truncated) every file to be
 * written; delta: first removes what would let a failed restore start (global/pg_control,
 * backup_label, signal files), and what the backup does not have. */
int ws_rs_prepare(ws_rs_plan *p, int delta, ws_error *err);
/* Gives held files their real names (pg_control last), syncs every file system written. */
int ws_rs_finish(ws_rs_plan *p, ws_error *err);

/* ---- the bytes (extract.c) ---- */

/* Every file's extents parsed and checked (well-formed, summing to its size, none
 * overlapping another in an object), without downloading anything. */
int ws_rs_check_extents(ws_rs_plan *p, ws_error *err);

/* Runs fn(arg, worker, i, err) for i in [0, n) on threads threads (worker in [0, threads));
 * the first failure stops the others from taking more and is returned in err. tick (may be
 * NULL) is called on the calling thread about every 200 ms while they run. */
typedef int (*ws_rs_job_fn)(void *arg, int worker, int i, ws_error *err);
int ws_rs_parallel(int n, int threads, ws_rs_job_fn fn, void *arg, void (*tick)(void *arg),
                   ws_error *err);

/* Downloads every object a file to write needs, threads at once (each with its own
 * repositories from cfg), writes the files and verifies each against its SHA-256. Each object
 * is read from the repositories order[0..norder) (indices into cfg's, in priority order, each
 * holding this very backup: the same manifest SHA-256) until one copy verifies: a corrupt,
 * missing or unreadable copy is a WARNING naming repository and key; none valid fails with
 * WS_ECORRUPT naming every repository tried (with one repository, its own error). A failure
 * of the restore's own files is never retried elsewhere. Shows progress (walship/progress.h). */
int ws_rs_extract(ws_rs_plan *p, const ws_config *cfg, const int *order, int norder, int threads,
                  ws_error *err);

/* ---- recovery configuration (recovery.c) ---- */

/* Whether fetch reads key (plain or repoN-<key>): only those are repeated in restore_command,
 * never pgconn (it may hold a password) nor any secret. */
int ws_rs_fetch_uses(const char *key);
/* The restore_command line's value (without the outer quotes of postgresql.auto.conf). */
int ws_rs_restore_command(const ws_config *cfg, char *buf, size_t len, ws_error *err);
/* The marked block's lines into f (for the plan) or into PGDATA/postgresql.auto.conf, then
 * the signal file (standby.signal if standby). */
void ws_rs_recovery_print(FILE *f, const ws_rs_plan *p, const ws_rs_target *t,
                          const char *restore_command);
int ws_rs_recovery_write(const ws_rs_plan *p, const ws_rs_target *t, const char *restore_command,
                         int standby, ws_error *err);

#endif
