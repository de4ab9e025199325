/* test_manifest_check.c — a manifest is untrusted input: the per-entry checks
 * (ws_manifest_check_entry: clean paths, PostgreSQL's layout of a tablespace) and the parser's
 * comparison of tablespace-count / file-count with the lines it read. */
#include "walship/repo/manifest.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <string.h>

static int check(int kind, uint32_t tsp, const char *path)
{
    ws_manifest_info info;
    memset(&info, 0, sizeof info);
    info.pg_version_num = 150004;
    ws_manifest_entry e;
    memset(&e, 0, sizeof e);
    e.kind = (ws_manifest_kind)kind;
    e.tablespace = tsp;
    snprintf(e.path, sizeof e.path, "%s", path);
    ws_error err;
    ws_error_clear(&err);
    int rc = ws_manifest_check_entry(&info, &e, &err);
    if (rc < 0 && err.code != WS_ECORRUPT)
        diag("unexpected error code %d", err.code);
    return rc == 0;
}

static int parse(const char *body, char *msg, size_t len)
{
    char text[4096];
    snprintf(text, sizeof text,
             "walship-backup-manifest = 1\nid = x\nsystem-identifier = 1\nstart-lsn = 0/1\n"
             "stop-lsn = 0/2\nstart-wal = 000000010000000000000001\n%s",
             body);
    ws_manifest_info mi;
    ws_stage *p = ws_manifest_parser_new(&mi, NULL, NULL);
    ws_error err;
    ws_error_clear(&err);
    int rc = ws_stage_write(p, text, strlen(text), &err);
    if (rc == 0)
        rc = ws_stage_finish(p, &err);
    ws_stage_free(p);
    snprintf(msg, len, "%s", err.msg);
    return rc;
}

int main(void)
{
    plan_no_plan();
    enum { TS = WS_MANIFEST_TABLESPACE, D = WS_MANIFEST_DIR, F = WS_MANIFEST_FILE };

    ok(check(TS, 16384, "/srv/ts"), "a tablespace at /srv/ts");
    ok(!check(TS, 16384, "srv/ts"), "a relative location refused");
    ok(!check(TS, 16384, "/"), "/ refused");
    ok(!check(TS, 16384, "/srv/../etc"), "a location with .. refused");
    ok(!check(TS, 16384, "/srv//ts"), "an empty component refused");
    ok(!check(TS, 16384, "/srv/ts/"), "a trailing slash refused");
    ok(ws_manifest_clean_absolute("/a/b") && !ws_manifest_clean_absolute("/a/./b"),
       "clean_absolute: /a/b yes, /a/./b no");

    ok(check(F, 0, "global/pg_control"), "a data directory file");
    ok(!check(F, 0, "../x"), "../x refused");
    ok(!check(F, 0, "base/../../x"), "base/../../x refused");
    ok(!check(F, 0, "/etc/passwd"), "an absolute path refused");
    ok(!check(D, 0, "a//b"), "an empty component refused");

    ok(check(D, 16384, "PG_15_202209061"), "a tablespace's version directory");
    ok(check(D, 16384, "PG_15_202209061/5"), "a database directory in it");
    ok(check(F, 16384, "PG_15_202209061/5/16385"), "a relation file");
    ok(check(F, 16384, "PG_15_202209061/5/16385_fsm"), "a free space map");
    ok(!check(F, 16384, "authorized_keys"), "authorized_keys at the tablespace's root refused");
    ok(!check(D, 16384, ".ssh"), "a directory .ssh refused");
    ok(!check(F, 16384, "PG_15_202209061/authorized_keys"),
       "a file in the version directory refused");
    ok(!check(F, 16384, "PG_16_202307071/5/1"), "another major version's directory refused");
    ok(!check(D, 16384, "PG_15_202209061/5/sub"), "a directory below a database directory refused");
    ok(!check(F, 16384, "PG_15_202209061/x/1"),
       "a database directory that is not a number refused");
    ok(!check(F, 16384, "PG_15_x/5/1"), "a catalog version that is not a number refused");

    char msg[1024];
    ok(parse("file-count = 0\ntablespace-count = 0\n", msg, sizeof msg) == 0,
       "counts of 0 with no lines: fine (%s)", msg);
    ok(parse("tablespace-count = 0\ntablespace = 16384 /srv/ts\n", msg, sizeof msg) < 0 &&
           strstr(msg, "tablespace-count"),
       "a tablespace line not counted: refused (%s)", msg);
    ok(parse("file-count = 2\nfile = base 0600 1 0 "
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 a -\n",
             msg, sizeof msg) < 0 &&
           strstr(msg, "file-count"),
       "a file line missing: refused (%s)", msg);
    ok(parse("file = base 0600 1 0 "
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 a -\n",
             msg, sizeof msg) == 0,
       "no count lines at all (an older writer): not compared (%s)", msg);
    return done_testing();
}
