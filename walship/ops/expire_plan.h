/*
 * expire_plan.h — what walship expire keeps and removes in one repository: a pure function
 * of the policy, the complete backups (with their pins), the stored WAL and the time, so
 * that every rule is unit-tested without storage (tests/unit/test_expire_plan.c). The model
 * is docs/retention.md; in short:
 *
 *  - retention-full N: the newest N complete backups (by start time, as list orders them).
 *  - retention-days D: every backup that stopped within the last D days, plus the newest
 *    that stopped before that window.
 *  - retention-daily/weekly/monthly/yearly N: the newest backup (by stop time) of each of
 *    the last N calendar days / ISO weeks (Monday first) / months / years, the current one
 *    included, in UTC or the local time of TZ (local_time = 1).
 *  - a pinned backup, and the newest complete backup, are always kept.
 *  A backup kept by any rule is kept; keep[] records every rule that keeps it.
 *
 *  - WAL: the point-in-time window starts at the start segment of the oldest backup kept by
 *    retention-full / retention-days (or, with neither set, of the oldest backup kept) and
 *    runs to the end of the archive: every WAL object (segment, .partial, .backup) of any
 *    timeline at or after that segment number is kept. A backup kept only by a tier or a pin
 *    keeps the segments from its start to its stop on its start and stop timelines. Every
 *    other WAL object is removed; history files never are. A gap record is removed with the
 *    WAL it describes.
 *
 * Ownership: ws_expire_plan fills a plan freed with ws_expire_plan_free.
 */
#ifndef WS_EXPIRE_PLAN_H
#define WS_EXPIRE_PLAN_H

#include <stdint.h>

#include "walship/repo/manifest.h"
#include "walship/repo/summary.h"

enum {
    WS_KEEP_FULL = 1u << 0,
    WS_KEEP_DAYS = 1u << 1,
    WS_KEEP_DAILY = 1u << 2,
    WS_KEEP_WEEKLY = 1u << 3,
    WS_KEEP_MONTHLY = 1u << 4,
    WS_KEEP_YEARLY = 1u << 5,
    WS_KEEP_PIN = 1u << 6,
    WS_KEEP_NEWEST = 1u << 7,
};
#define WS_KEEP_RULES 8

/* The rule's name as the config key's suffix ("full", "days", "daily", ..., "pin", "newest")
 * for bit i of a keep mask. */
const char *ws_keep_rule_name(int i);

/* 0 = not set; the limits are the config's (expire.c). */
typedef struct ws_retention {
    long full, days, daily, weekly, monthly, yearly;
} ws_retention;

/* 1 if any key is set. */
int ws_retention_any(const ws_retention *p);

typedef struct ws_expire_plan {
    unsigned *keep; /* nb entries: the rules keeping backup i; 0 = removed */
    int nremove;
    int window_from;       /* the backup whose start opens the PITR window; -1: none */
    uint64_t window_segno; /* its start segment number (segments at or after are kept) */
    int *wal_remove;       /* indexes into the summary's objs, oldest first */
    int nwal_remove;
    uint64_t wal_remove_bytes;
    int *gap_remove; /* indexes into the summary's gap_records */
    int ngap_remove;
} ws_expire_plan;

/* b: the complete backups, oldest first (the catalog's order); pinned: nb flags (may be
 * NULL); wal: the repository's WAL summary (may be NULL: no WAL plan); now: seconds since
 * the epoch. With no complete backup nothing is removed. */
int ws_expire_plan_make(const ws_retention *pol, const ws_manifest_info *b, int nb,
                        const unsigned char *pinned, const ws_summary *wal, int64_t now,
                        int local_time, ws_expire_plan *out, ws_error *err);
void ws_expire_plan_free(ws_expire_plan *p);

/* The calendar period of t for a tier (WS_KEEP_DAILY..WS_KEEP_YEARLY): consecutive
 * periods have consecutive numbers (days since 1970-01-01, ISO weeks since the one holding
 * it, months since year 0, years). */
int64_t ws_expire_period(int64_t t, unsigned tier, int local_time);

#endif
