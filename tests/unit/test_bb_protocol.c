/* test_bb_protocol.c — the BASE_BACKUP dialect and command text per PostgreSQL major. */
#include "basebackup/protocol.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static const char *cmd(ws_bb_dialect d, const char *label, int fast, long rate)
{
    static char buf[4096];
    ws_error err;
    ws_error_clear(&err);
    ws_bb_options o = {label, fast, rate};
    if (ws_bb_command(d, &o, buf, sizeof buf, &err) < 0)
        snprintf(buf, sizeof buf, "ERROR: %s", err.msg);
    return buf;
}

int main(void)
{
    plan_no_plan();
    ws_error err;
    ws_bb_dialect d;

    /* which dialect each major speaks */
    const int versions[] = {130023, 140023, 150015, 160014, 170010, 180004};
    const ws_bb_dialect want[] = {WS_BB_LEGACY, WS_BB_LEGACY, WS_BB_TARGET,
                                  WS_BB_TARGET, WS_BB_TARGET, WS_BB_TARGET};
    for (int i = 0; i < 6; i++) {
        d = 0;
        ok(ws_bb_dialect_for(versions[i], &d, &err) == 0 && d == want[i],
           "PostgreSQL %d: the %s dialect", versions[i] / 10000,
           want[i] == WS_BB_LEGACY ? "13/14 (bare options, one CopyOut per tablespace)"
                                   : "15+ (TARGET 'client')");
    }
    ws_error_clear(&err);
    ok(ws_bb_dialect_for(120022, &d, &err) < 0 && err.code == WS_ECONFIG &&
           strstr(err.msg, "PostgreSQL 12.22; walship basebackup supports PostgreSQL 13 to 18") &&
           strstr(err.hint, "pg_upgrade"),
       "PostgreSQL 12 refused by name: %s (%s)", err.msg, err.hint);
    ws_error_clear(&err);
    ok(ws_bb_dialect_for(190000, &d, &err) < 0 && err.code == WS_ECONFIG &&
           strstr(err.msg, "PostgreSQL 19.0") && strstr(err.hint, "upgrade walship"),
       "a major newer than walship knows refused: %s", err.msg);

    /* the commands */
    is_str(cmd(WS_BB_LEGACY, "nightly", 1, 0),
           "BASE_BACKUP LABEL 'nightly' PROGRESS FAST NOWAIT MANIFEST 'yes' "
           "MANIFEST_CHECKSUMS 'CRC32C'",
           "13/14, fast checkpoint");
    is_str(cmd(WS_BB_LEGACY, "it's", 0, 1024),
           "BASE_BACKUP LABEL 'it''s' PROGRESS NOWAIT MAX_RATE 1024 MANIFEST 'yes' "
           "MANIFEST_CHECKSUMS 'CRC32C'",
           "13/14, spread checkpoint (no FAST), a rate limit, a quote doubled");
    is_str(cmd(WS_BB_TARGET, "nightly", 1, 0),
           "BASE_BACKUP (LABEL 'nightly', PROGRESS true, CHECKPOINT 'fast', WAIT false, WAL "
           "false, MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', TARGET 'client')",
           "15+, fast checkpoint");
    is_str(cmd(WS_BB_TARGET, "it's", 0, 1024),
           "BASE_BACKUP (LABEL 'it''s', PROGRESS true, CHECKPOINT 'spread', WAIT false, WAL "
           "false, MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', TARGET 'client', MAX_RATE 1024)",
           "15+, spread checkpoint, a rate limit, a quote doubled");

    /* a label of 1000 quotes fits (2002 bytes quoted); 1001 bytes do not */
    char label[1002];
    memset(label, '\'', 1000);
    label[1000] = '\0';
    ok(strncmp(cmd(WS_BB_LEGACY, label, 1, 0), "BASE_BACKUP LABEL ''''", 22) == 0 &&
           strlen(cmd(WS_BB_LEGACY, label, 1, 0)) > 2002,
       "a 1000-byte label of quotes fits");
    label[1000] = 'x';
    label[1001] = '\0';
    ok(strstr(cmd(WS_BB_TARGET, label, 1, 0), "ERROR: the backup label is longer than 1000") !=
           NULL,
       "a 1001-byte label refused");
    char small[40];
    ws_bb_options o = {"nightly", 1, 0};
    ok(ws_bb_command(WS_BB_TARGET, &o, small, sizeof small, &err) < 0 &&
           strstr(err.msg, "too long"),
       "a buffer too small refused, not cut");

    return done_testing();
}
