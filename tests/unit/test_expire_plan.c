/* test_expire_plan.c — the retention plan (walship/ops/expire_plan.c) checked rule by rule
 * against hand-computed answers, the WAL summary it reads (walship/repo/summary.c), the key
 * builders (walship/repo/keys.c) and the catalog's removal order on posix storage. */
#include "tests/unit/tap.h"
#include "walship/ops/expire_plan.h"
#include "walship/repo/catalog.h"
#include "walship/repo/keys.h"
#include "walship/repo/lock.h"
#include "walship/repo/pin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DAY  86400
#define SEG  (16u << 20)
#define BASE ((int64_t)1767225600) /* 2026-01-01 00:00:00 UTC, a Thursday */

/* Backup k: starts in segment 10*k+2 of timeline 1, stops in 10*k+3; stops at t. */
static ws_manifest_info backup(int k, int64_t t)
{
    ws_manifest_info m;
    memset(&m, 0, sizeof m);
    snprintf(m.id, sizeof m.id, "B%02d", k);
    m.seg_size = SEG;
    m.start_tli = m.stop_tli = 1;
    m.start_lsn = (uint64_t)(10 * k + 2) * SEG + 40;
    m.stop_lsn = (uint64_t)(10 * k + 3) * SEG + 100;
    m.start_time = t - 60;
    m.stop_time = t;
    m.sysid = 42;
    return m;
}

static unsigned keep_of(const ws_retention *pol, const ws_manifest_info *b, int nb,
                        const unsigned char *pins, int64_t now, int i)
{
    ws_expire_plan p;
    ws_error err;
    if (ws_expire_plan_make(pol, b, nb, pins, NULL, now, 0, &p, &err) < 0)
        return 0xdead;
    unsigned k = p.keep[i];
    ws_expire_plan_free(&p);
    return k;
}

/* A summary of segments 0..n-1 on timeline 1 (and some on 2), a history file and gap
 * records. */
static int wal_of(int n, ws_summary *w)
{
    ws_summary_obj *o = calloc((size_t)n + 4, sizeof *o);
    int k = 0;
    ws_error err;
    for (int i = 0; i < n; i++) {
        char name[32];
        ws_wal_format_segment(name, 1, (uint64_t)i, SEG);
        ws_wal_parse_name(name, &o[k].name, &err);
        o[k++].size = 1000;
    }
    ws_wal_parse_name("00000002.history", &o[k].name, &err);
    o[k++].size = 50;
    char name[64];
    ws_wal_format_segment(name, 2, 5, SEG); /* a timeline 2 segment below every window */
    ws_wal_parse_name(name, &o[k].name, &err);
    o[k++].size = 1000;
    ws_wal_format_segment(name, 1, 3, SEG);
    strcat(name, ".00000028.backup");
    ws_wal_parse_name(name, &o[k].name, &err);
    o[k++].size = 300;
    ws_repo_gap g[2];
    memset(g, 0, sizeof g);
    ws_wal_format_segment(g[0].segment, 1, 1, SEG);
    ws_wal_format_segment(g[1].segment, 1, (uint64_t)n + 5, SEG);
    int rc = ws_summary_build(o, k, g, 2, SEG, w, &err);
    free(o);
    return rc;
}

static int removed_name(const ws_expire_plan *p, const ws_summary *w, const char *name)
{
    for (int i = 0; i < p->nwal_remove; i++)
        if (strcmp(w->objs[p->wal_remove[i]].name.name, name) == 0)
            return 1;
    return 0;
}

int main(void)
{
    plan_no_plan();
    ws_error err;

    /* ---- keys ---- */
    char key[128], id[64];
    ok(ws_key_backup_prefix("20260101T000000Z", key, sizeof key) == 0 &&
           strcmp(key, "backup/20260101T000000Z/") == 0,
       "backup prefix");
    ok(ws_key_backup_object("X", "data/000001", key, sizeof key) == 0 &&
           strcmp(key, "backup/X/data/000001") == 0,
       "backup object key");
    ok(ws_key_backup_prefix("a/b", key, sizeof key) < 0 && ws_key_backup_prefix("", key, 8) < 0,
       "an id with a slash, or empty, is refused");
    ok(ws_key_backup_id("backup/ID1/walship.manifest", id, sizeof id) == 0 &&
           strcmp(id, "ID1") == 0,
       "the id of a backup key");
    ok(ws_key_backup_id("wal/x/y", id, sizeof id) < 0 && ws_key_backup_id("backup/x", id, 64) < 0,
       "keys that are not a backup's");
    is_str(ws_key_backup_name("backup/ID1/data/7"), "data/7", "the name inside a backup");
    ok(ws_key_wal_timeline_prefix(0x1A, key, sizeof key) == 0 && strcmp(key, "wal/0000001A") == 0,
       "WAL prefix of a timeline");
    ok(ws_key_backup_prefix("abc", key, 8) < 0, "a buffer too small is refused");

    /* ---- periods ---- */
    is_int(ws_expire_period(BASE, WS_KEEP_DAILY, 0), 20454, "day number of 2026-01-01");
    is_int(ws_expire_period(BASE + 4 * DAY - 1, WS_KEEP_WEEKLY, 0),
           ws_expire_period(BASE, WS_KEEP_WEEKLY, 0), "Thursday to Sunday: the same ISO week");
    is_int(ws_expire_period(BASE + 4 * DAY, WS_KEEP_WEEKLY, 0),
           ws_expire_period(BASE, WS_KEEP_WEEKLY, 0) + 1, "Monday starts the next ISO week");
    is_int(ws_expire_period(BASE, WS_KEEP_MONTHLY, 0) -
               ws_expire_period(BASE - 1, WS_KEEP_MONTHLY, 0),
           1, "months are consecutive across a year");
    is_int(ws_expire_period(BASE, WS_KEEP_YEARLY, 0), 2026, "year");

    /* ---- backup rules: 20 backups, one a day at noon, 2026-01-01 .. 2026-01-20 ---- */
    ws_manifest_info b[40];
    int nb = 20;
    for (int i = 0; i < nb; i++)
        b[i] = backup(i, BASE + i * DAY + DAY / 2);
    int64_t now = BASE + 19 * DAY + DAY / 2 + 3600; /* an hour after the last */
    ws_retention pol;

    memset(&pol, 0, sizeof pol);
    pol.full = 3;
    int kept = 0;
    for (int i = 0; i < nb; i++)
        kept += keep_of(&pol, b, nb, NULL, now, i) != 0;
    is_int(kept, 3, "full 3: three kept");
    ok(keep_of(&pol, b, nb, NULL, now, 17) == WS_KEEP_FULL, "full 3: the third newest by full");
    ok(keep_of(&pol, b, nb, NULL, now, 19) == (WS_KEEP_FULL | WS_KEEP_NEWEST),
       "the newest: full and newest");
    is_int(keep_of(&pol, b, nb, NULL, now, 16), 0, "full 3: the fourth newest goes");

    memset(&pol, 0, sizeof pol);
    pol.days = 5; /* window from now - 5 days: backups stopping at or after it, + one before */
    kept = 0;
    for (int i = 0; i < nb; i++)
        kept += (keep_of(&pol, b, nb, NULL, now, i) & WS_KEEP_DAYS) != 0;
    /* stops at day 15.5+: i = 15 (stop = now - 4d - 1h) .. 19 → 5, plus i = 14 */
    is_int(kept, 6, "days 5: five in the window and the newest before it");
    ok(keep_of(&pol, b, nb, NULL, now, 14) & WS_KEEP_DAYS, "days 5: the one before the window");
    is_int(keep_of(&pol, b, nb, NULL, now, 13), 0, "days 5: older ones go");

    memset(&pol, 0, sizeof pol);
    pol.daily = 7;
    kept = 0;
    for (int i = 0; i < nb; i++)
        kept += keep_of(&pol, b, nb, NULL, now, i) != 0;
    is_int(kept, 7, "daily 7: the newest of each of 7 days");
    is_int(keep_of(&pol, b, nb, NULL, now, 12), 0, "daily 7: the 8th day back goes");

    /* two backups on one day: only the later is the day's */
    ws_manifest_info two[3] = {backup(0, BASE + 3600), backup(1, BASE + 7200),
                               backup(2, BASE + DAY + 3600)};
    memset(&pol, 0, sizeof pol);
    pol.daily = 5;
    is_int(keep_of(&pol, two, 3, NULL, BASE + DAY + 7200, 0), 0,
           "daily: the earlier of a day goes");
    ok(keep_of(&pol, two, 3, NULL, BASE + DAY + 7200, 1) == WS_KEEP_DAILY,
       "daily: the later of the day stays");

    /* weekly 2 over 20 days from Thursday 01-01: weeks of 01-12 (Mon) .. 01-18 and 01-19 .. */
    memset(&pol, 0, sizeof pol);
    pol.weekly = 2;
    unsigned wk[20];
    for (int i = 0; i < nb; i++)
        wk[i] = keep_of(&pol, b, nb, NULL, now, i);
    ok(wk[17] == WS_KEEP_WEEKLY, "weekly 2: Sunday 01-18 is its week's newest");
    ok(wk[19] == (WS_KEEP_WEEKLY | WS_KEEP_NEWEST), "weekly 2: the current week's newest");
    ok(wk[10] == 0 && wk[18] == 0 && wk[3] == 0, "weekly 2: the others go");

    /* monthly 2 and yearly 1 across 400 days, a backup every 10 days */
    ws_manifest_info y[40];
    for (int i = 0; i < 40; i++)
        y[i] = backup(i, BASE + (int64_t)i * 10 * DAY + 3600);
    int64_t ynow = y[39].stop_time + 60;
    memset(&pol, 0, sizeof pol);
    pol.monthly = 2;
    kept = 0;
    for (int i = 0; i < 40; i++)
        kept += (keep_of(&pol, y, 40, NULL, ynow, i) & WS_KEEP_MONTHLY) != 0;
    is_int(kept, 2, "monthly 2: two months");
    memset(&pol, 0, sizeof pol);
    pol.yearly = 2;
    kept = 0;
    for (int i = 0; i < 40; i++)
        kept += (keep_of(&pol, y, 40, NULL, ynow, i) & WS_KEEP_YEARLY) != 0;
    is_int(kept, 2, "yearly 2: the newest of 2026 and of 2027");
    ok(keep_of(&pol, y, 40, NULL, ynow, 36) & WS_KEEP_YEARLY,
       "yearly 2: 2026-12-27 is 2026's newest");

    /* pins */
    unsigned char pins[20] = {0};
    pins[2] = 1;
    memset(&pol, 0, sizeof pol);
    pol.full = 1;
    ok(keep_of(&pol, b, nb, pins, now, 2) == WS_KEEP_PIN, "a pinned backup is kept by its pin");
    is_int(keep_of(&pol, b, nb, pins, now, 3), 0, "its neighbour goes");

    /* ---- WAL ---- */
    ws_summary w;
    ok(wal_of(200, &w) == 0, "summary built");
    is_int(w.ntl, 2, "two timelines");
    is_int(w.tl[0].count, 200, "timeline 1: 200 segments");
    is_int(w.history.n, 1, "one history file");
    is_int(w.backup_files.n, 1, "one backup history file");
    is_int(w.tl[0].ndrops, 1, "the gap record past the end is a dropped run");
    ws_expire_plan p;
    memset(&pol, 0, sizeof pol);
    pol.full = 2; /* B18, B19: window from segment 182 */
    pins[2] = 1;  /* B02: its own range, segments 22 .. 23 */
    ok(ws_expire_plan_make(&pol, b, nb, pins, &w, now, 0, &p, &err) == 0, "plan");
    is_int(p.window_from, 18, "the window opens at the oldest full backup");
    is_int((long long)p.window_segno, 182, "at its start segment");
    char nm[64];
    ws_wal_format_segment(nm, 1, 181, SEG);
    ok(removed_name(&p, &w, nm), "a segment just before the window goes");
    ws_wal_format_segment(nm, 1, 182, SEG);
    ok(!removed_name(&p, &w, nm), "the window's first segment stays");
    ws_wal_format_segment(nm, 1, 22, SEG);
    ok(!removed_name(&p, &w, nm), "the pinned backup's start segment stays");
    ws_wal_format_segment(nm, 1, 23, SEG);
    ok(!removed_name(&p, &w, nm), "and its stop segment");
    ws_wal_format_segment(nm, 1, 24, SEG);
    ok(removed_name(&p, &w, nm), "the segment after the pinned backup goes");
    ok(!removed_name(&p, &w, "00000002.history"), "history files stay");
    ws_wal_format_segment(nm, 2, 5, SEG);
    ok(removed_name(&p, &w, nm), "an old segment of another timeline goes");
    ws_wal_format_segment(nm, 1, 3, SEG);
    strcat(nm, ".00000028.backup");
    ok(removed_name(&p, &w, nm), "an old backup history file goes");
    is_int(p.nwal_remove, 200 - 18 - 2 + 2, "removed: 180 segments outside, + 2 others");
    int sorted = 1;
    for (int i = 1; i < p.nwal_remove; i++) {
        const ws_wal_name *a = &w.objs[p.wal_remove[i - 1]].name,
                          *c = &w.objs[p.wal_remove[i]].name;
        uint64_t sa, sc;
        char ba[32], bc[32];
        ws_wal_name x, z;
        snprintf(ba, sizeof ba, "%.24s", a->name);
        snprintf(bc, sizeof bc, "%.24s", c->name);
        ws_wal_parse_name(ba, &x, &err);
        ws_wal_parse_name(bc, &z, &err);
        ws_wal_segno(&x, SEG, &sa);
        ws_wal_segno(&z, SEG, &sc);
        if (sa > sc)
            sorted = 0;
    }
    ok(sorted, "WAL goes oldest first");
    is_int(p.ngap_remove, 1, "the gap record of removed WAL goes, the one past the end stays");
    ws_expire_plan_free(&p);

    /* GFS only: the window opens at the oldest kept backup */
    memset(&pol, 0, sizeof pol);
    pol.daily = 3;
    ok(ws_expire_plan_make(&pol, b, nb, NULL, &w, now, 0, &p, &err) == 0 && p.window_from == 17,
       "tiers only: the window opens at the oldest kept backup");
    ws_expire_plan_free(&p);

    /* no backup: nothing removed */
    ok(ws_expire_plan_make(&pol, b, 0, NULL, &w, now, 0, &p, &err) == 0 && p.nwal_remove == 0 &&
           p.window_from == -1,
       "no complete backup: no WAL removed");
    ws_expire_plan_free(&p);
    ws_summary_free(&w);

    /* ---- the catalog's removal order, pins and the lock on posix ---- */
    char root[] = "/tmp/walship-test-expire-XXXXXX";
    if (!mkdtemp(root))
        return 1;
    ws_storage_config sc = {0};
    sc.url = root;
    ws_repo *r;
    ok(ws_repo_open(&sc, &r, &err) == 0, "posix repository");
    const char *names[] = {"data/000001", "data/000002", WS_CATALOG_STARTED_NAME, WS_MANIFEST_NAME};
    for (int i = 0; i < 4; i++) {
        ws_key_backup_object("X1", names[i], key, sizeof key);
        ws_storage_put_small(ws_repo_storage(r), key, 0, "x", 1, NULL, &err);
    }
    ok(ws_pin_set(r, "X1", "keep\nforever", &err) == 0, "pinned");
    ws_pin pin;
    ok(ws_pin_get(r, "X1", &pin, &err) == 0 && strcmp(pin.note, "keep forever") == 0,
       "the pin's note, on one line");
    ws_backup_lock *lk;
    ok(ws_backup_lock_take(&sc, 1, "X1", &lk, &err) == 0, "lock taken");
    ws_backup_lock_info li;
    ok(ws_backup_lock_read(r, "X1", &li, &err) == 0 && li.pid == (long)getpid() &&
           ws_backup_lock_live(&li, ws_repo_wall_time(), WS_BACKUP_LOCK_STALE),
       "the lock names this process and is live");
    ok(!ws_backup_lock_live(&li, ws_repo_wall_time() + WS_BACKUP_LOCK_STALE + 1,
                            WS_BACKUP_LOCK_STALE),
       "a heartbeat older than the stale limit is dead");
    ws_backup_lock_release(lk);
    ok(ws_backup_lock_read(r, "X1", &li, &err) < 0 && err.code == WS_ENOENT,
       "release removes the lock");
    ws_catalog_removed rm;
    ok(ws_catalog_remove(r, "X1", &rm, &err) == 0 && rm.objects == 6 && rm.had_manifest,
       "a backup removed: its 5 objects and the expiring marker");
    ws_catalog cat;
    ok(ws_catalog_load(r, &cat, &err) == 0 && cat.n == 0 && cat.nincomplete == 0,
       "nothing left of it");
    ws_catalog_free(&cat);
    ws_repo_free(r);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
