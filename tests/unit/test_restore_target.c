/* test_restore_target.c — restore's target parsing: timestamps with and without zones,
 * fractions, malformed input; one target at most; actions and timelines checked. */
#include "restore/restore.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

static ws_config *load(int argc, char **argv)
{
    ws_config *c = NULL;
    ws_error err;
    unsetenv("WALSHIP_CONFIG");
    if (ws_config_load(argc, argv, &c, &err) < 0) {
        ws_config_free(c);
        return NULL;
    }
    return c;
}

/* The target borrows strings from the config: it lives until the next parse. */
static ws_config *last;

static int parse(int argc, char **argv, ws_rs_target *t, ws_error *err)
{
    ws_config_free(last);
    last = load(argc, argv);
    if (!last)
        return -2;
    return ws_rs_target_parse(last, t, err);
}

int main(void)
{
    plan_no_plan();
    double t;
    ok(ws_rs_parse_time("2026-11-22 14:30:00+00", &t) == 0 && t == 1795357800.0,
       "a UTC time with +00");
    ok(ws_rs_parse_time("2026-11-22T14:30:00Z", &t) == 0 && t == 1795357800.0, "ISO with T and Z");
    ok(ws_rs_parse_time("2026-11-22 15:30:00+01:00", &t) == 0 && t == 1795357800.0,
       "an offset +01:00 is the same moment");
    ok(ws_rs_parse_time("2026-11-22 09:00:00-0530", &t) == 0 && t == 1795357800.0,
       "an offset -0530 too");
    ok(ws_rs_parse_time("2026-11-22 14:30:00.25 UTC", &t) == 0 && t == 1795357800.25,
       "fractions and UTC");
    setenv("TZ", "UTC", 1);
    ok(ws_rs_parse_time("2026-11-22 14:30:00", &t) == 0 && t == 1795357800.0,
       "no zone: local time (TZ=UTC here)");
    static const char *bad[] = {"",
                                "yesterday",
                                "2026-11-22",
                                "2026-13-01 00:00:00",
                                "2026-11-22 25:00:00",
                                "2026-11-22 14:30:00 PST",
                                "2026-11-22 14:30:00+",
                                "2026-11-22 14:30:00.",
                                "2026-11-22 14:30:00+00 trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ok(ws_rs_parse_time(bad[i], &t) == -1, "\"%s\" is refused", bad[i]);

    ws_rs_target tg;
    ws_error err;
    char *a1[] = {"walship", "restore", "--target-lsn", "0/3000060", "--target-action", "promote"};
    ok(parse(6, a1, &tg, &err) == 0 && tg.kind == WS_RS_TARGET_LSN && tg.lsn == 0x3000060 &&
           strcmp(tg.action, "promote") == 0,
       "--target-lsn with promote");
    char *a2[] = {"walship", "restore", "--target-lsn", "0/3", "--target-xid", "900"};
    ok(parse(6, a2, &tg, &err) == -1 && err.code == WS_ECONFIG && strstr(err.msg, "combined"),
       "two targets are refused: %s", err.msg);
    char *a3[] = {"walship", "restore", "--target-xid", "12a"};
    ok(parse(4, a3, &tg, &err) == -1 && strstr(err.msg, "not a transaction id"),
       "a malformed xid: %s", err.msg);
    char *a4[] = {"walship", "restore", "--target", "latest"};
    ok(parse(4, a4, &tg, &err) == -1 && strstr(err.msg, "immediate"),
       "--target takes only immediate: %s", err.msg);
    char *a5[] = {"walship", "restore", "--target", "immediate", "--target-action", "explode"};
    ok(parse(6, a5, &tg, &err) == -1 && strstr(err.msg, "explode"), "a bad action: %s", err.msg);
    char *a6[] = {"walship", "restore", "--target-action", "promote"};
    ok(parse(4, a6, &tg, &err) == -1 && strstr(err.msg, "needs a recovery target"),
       "an action without a target: %s", err.msg);
    char *a7[] = {"walship", "restore", "--target-timeline", "0"};
    ok(parse(4, a7, &tg, &err) == -1 && strstr(err.msg, "timeline"), "timeline 0: %s", err.msg);
    char *a8[] = {"walship",           "restore", "--target-time", "2026-11-22 14:30:00+00",
                  "--target-timeline", "2"};
    ok(parse(6, a8, &tg, &err) == 0 && tg.kind == WS_RS_TARGET_TIME && tg.time == 1795357800.0 &&
           strcmp(tg.timeline, "2") == 0,
       "a time target on timeline 2");
    char *a9[] = {"walship", "restore", "--target-time", "noon"};
    ok(parse(4, a9, &tg, &err) == -1 && strstr(err.hint, "YYYY-MM-DD"),
       "a malformed time gets a hint showing the format");
    char *a10[] = {"walship", "restore", "--target-name", "before-migration"};
    ok(parse(4, a10, &tg, &err) == 0 && tg.kind == WS_RS_TARGET_NAME, "a restore point name");
    char *a11[] = {"walship", "restore"};
    ok(parse(2, a11, &tg, &err) == 0 && tg.kind == WS_RS_TARGET_NONE, "no target");
    char *m1[] = {"walship", "restore"};
    ok(parse(2, m1, &tg, &err) == 0 && tg.archive_off == 1 && tg.force == 0,
       "archive-mode defaults to off, force to no");
    char *m2[] = {"walship", "restore", "--archive-mode", "preserve", "--force"};
    ok(parse(5, m2, &tg, &err) == 0 && tg.archive_off == 0 && tg.force == 1,
       "--archive-mode preserve, --force");
    char *m3[] = {"walship", "restore", "--archive-mode", "on"};
    ok(parse(4, m3, &tg, &err) == -1 && err.code == WS_ECONFIG &&
           strstr(err.msg, "off or preserve"),
       "--archive-mode on is refused: %s", err.msg);

    ok(ws_rs_fetch_uses("fetch-timeout") && ws_rs_fetch_uses("repo2-s3-endpoint") &&
           ws_rs_fetch_uses("io-timeout"),
       "fetch reads fetch-timeout, repo2-s3-endpoint, io-timeout");
    ok(!ws_rs_fetch_uses("pgconn") && !ws_rs_fetch_uses("label") &&
           !ws_rs_fetch_uses("basebackup-parallel") && !ws_rs_fetch_uses("repo1-pgconn") &&
           !ws_rs_fetch_uses("s3-key-secret"),
       "fetch does not read pgconn, label, basebackup-parallel, s3-key-secret");
    ws_config_free(last);
    return done_testing();
}
