/*
 * summary.h — the WAL a repository holds, per timeline: the stored range, its gaps (missing
 * segments), the runs push-queue-max dropped (gap records), history files, .partial and
 * backup history files, and every stored WAL object with its size. Shared by list, expire and
 * verify, so that they agree on what "stored" means.
 *
 * Ownership: ws_summary_load / ws_summary_build fill a summary the caller frees with
 * ws_summary_free (also after a failure). Pointers into it live until then.
 */
#ifndef WS_REPO_SUMMARY_H
#define WS_REPO_SUMMARY_H

#include <stdint.h>

#include "walship/repo/repo.h"

typedef struct ws_summary_gap {
    uint64_t first, last; /* segment numbers, inclusive */
    uint64_t dropped;     /* how many of them push-queue-max dropped */
} ws_summary_gap;

/* A run of consecutive dropped segments; dropped_at is the earliest record's time. */
typedef struct ws_summary_drop {
    uint64_t first, last;
    int64_t dropped_at;
} ws_summary_drop;

typedef struct ws_summary_tl {
    uint32_t tli;
    uint64_t first, last, count; /* count 0: only dropped segments, first/last unset */
    uint64_t bytes;              /* stored bytes of its segments */
    ws_summary_gap *gaps;
    int ngaps;
    ws_summary_drop *drops;
    int ndrops;
} ws_summary_tl;

/* One stored WAL object (segment, .partial, .backup or .history). */
typedef struct ws_summary_obj {
    ws_wal_name name;
    uint64_t size;
    int64_t mtime;
} ws_summary_obj;

typedef struct ws_summary_names {
    char **v;
    int n, cap;
} ws_summary_names;

typedef struct ws_summary {
    uint32_t seg_size;
    ws_summary_tl *tl; /* by timeline */
    int ntl;
    ws_summary_obj *objs; /* every stored WAL object, sorted by name (timeline, then segment) */
    int nobjs;
    uint64_t bytes;                                  /* of all of objs */
    ws_summary_names history, partial, backup_files; /* names, sorted */
    ws_repo_gap *gap_records;                        /* every gap record, sorted */
    int ngap_records;
} ws_summary;

/* Lists wal/ and gap/ of r (one listing each) and summarises them for segment size seg_size
 * (the repository identity's). Keys that are not WAL names are ignored. */
int ws_summary_load(ws_repo *r, uint32_t seg_size, ws_summary *out, ws_error *err);
/* The same from objects already known (pure: unit tests). objs and gaps are copied; neither
 * needs to be sorted. */
int ws_summary_build(const ws_summary_obj *objs, int nobjs, const ws_repo_gap *gaps, int ngaps,
                     uint32_t seg_size, ws_summary *out, ws_error *err);
void ws_summary_free(ws_summary *s);
/* The timeline entry of tli, or NULL. */
const ws_summary_tl *ws_summary_timeline(const ws_summary *s, uint32_t tli);

#endif
