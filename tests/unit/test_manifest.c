/* test_manifest.c — the walship backup manifest: percent-encoding, and a manifest written
 * to a repository and read back with every field and entry intact. */
#include "walship/repo/manifest.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[] = "/tmp/walship-test-manifest-XXXXXX";

typedef struct got {
    int n;
    char log[4096];
} got;

static int entry_cb(void *arg, const ws_manifest_entry *e, ws_error *err)
{
    (void)err;
    got *g = arg;
    g->n++;
    size_t l = strlen(g->log);
    snprintf(g->log + l, sizeof g->log - l, "%d|%u|%s|%s|%o|%lld|%llu|%.8s|%s;", (int)e->kind,
             e->tablespace, e->path, e->target, (unsigned)e->mode, (long long)e->mtime,
             (unsigned long long)e->size, e->sha256, e->extents ? e->extents : "");
    return 0;
}

int main(void)
{
    plan_no_plan();
    char enc[256], dec[256];
    ws_manifest_encode("a b%c\n\xc3\xa9", enc, sizeof enc);
    is_str(enc, "a%20b%25c%0A%C3%A9", "percent-encoding of space, %%, newline, UTF-8");
    ok(ws_manifest_decode(enc, dec, sizeof dec) == 0, "decodes");
    is_str(dec, "a b%c\n\xc3\xa9", "... back to the original");
    ok(ws_manifest_decode("%G1", dec, sizeof dec) < 0, "a malformed escape is refused");
    ok(ws_manifest_decode("%4", dec, sizeof dec) < 0, "a truncated escape is refused");

    if (!mkdtemp(root))
        bail_out("mkdtemp failed");
    ws_storage_config sc = {.url = root};
    ws_repo *r;
    ws_error err;
    ws_error_clear(&err);
    if (ws_repo_open(&sc, &r, &err) < 0)
        bail_out("%s", err.msg);

    ws_manifest_builder *b = ws_manifest_builder_new();
    ws_manifest_entry e;
    memset(&e, 0, sizeof e);
    e.kind = WS_MANIFEST_TABLESPACE;
    e.tablespace = 16384;
    snprintf(e.path, sizeof e.path, "/srv/my ts");
    ok(ws_manifest_add(b, &e, &err) == 0, "add a tablespace");
    memset(&e, 0, sizeof e);
    e.kind = WS_MANIFEST_DIR;
    e.mode = 0700;
    e.mtime = 1700000000;
    snprintf(e.path, sizeof e.path, "pg_wal");
    ok(ws_manifest_add(b, &e, &err) == 0, "add a directory");
    e.kind = WS_MANIFEST_SYMLINK;
    snprintf(e.path, sizeof e.path, "pg_tblspc/16384");
    snprintf(e.target, sizeof e.target, "/srv/my ts");
    ok(ws_manifest_add(b, &e, &err) == 0, "add a symlink");
    memset(&e, 0, sizeof e);
    e.kind = WS_MANIFEST_FILE;
    e.tablespace = 16384;
    e.mode = 0600;
    e.mtime = 1700000001;
    e.size = 12;
    memset(e.sha256, 'a', 64);
    snprintf(e.path, sizeof e.path, "PG_15_202209061/5/16385");
    e.extents = "data/000001@0+6,data/000002@0+6";
    ok(ws_manifest_add(b, &e, &err) == 0, "add a file");

    ws_manifest_info in, out;
    memset(&in, 0, sizeof in);
    snprintf(in.id, sizeof in.id, "20261122T031500Z");
    snprintf(in.label, sizeof in.label, "nightly = %s", "100%");
    in.sysid = 7441205870386880275ULL;
    in.pg_version_num = 150004;
    in.seg_size = 16777216;
    in.start_lsn = 0x100000028ULL;
    in.stop_lsn = 0x100000138ULL;
    in.start_tli = in.stop_tli = 3;
    snprintf(in.start_wal, sizeof in.start_wal, "000000030000000100000000");
    snprintf(in.stop_wal, sizeof in.stop_wal, "000000030000000100000000");
    in.start_time = 1795000000;
    in.stop_time = 1795000042;
    in.original_size = 1234567;
    in.stored_size = 234567;
    if (!ok(ws_manifest_write(b, &in, &r, 1, &err) == 0, "manifest written"))
        diag("%s", err.msg);
    ok(ws_manifest_write(b, &in, &r, 1, &err) == 0, "the same manifest again: identical, fine");
    ws_manifest_info other = in;
    snprintf(other.label, sizeof other.label, "another");
    ok(ws_manifest_write(b, &other, &r, 1, &err) < 0 && err.code == WS_EMISMATCH,
       "a different manifest for the same id: refused, never overwritten");
    ws_manifest_builder_free(b);

    got g = {0};
    if (!ok(ws_manifest_read(r, in.id, &out, entry_cb, &g, &err) == 0, "read back"))
        diag("%s", err.msg);
    is_str(out.id, in.id, "id");
    is_str(out.label, in.label, "label with spaces, '=' and '%%'");
    ok(out.sysid == in.sysid, "system identifier");
    is_int(out.pg_version_num, 150004, "pg version");
    is_int(out.seg_size, 16777216, "segment size");
    ok(out.start_lsn == in.start_lsn && out.stop_lsn == in.stop_lsn, "LSNs");
    is_int(out.start_tli, 3, "timeline");
    is_str(out.stop_wal, in.stop_wal, "stop WAL");
    is_int(out.start_time, in.start_time, "start time");
    is_int(out.stop_time, in.stop_time, "stop time");
    ok(out.original_size == 1234567 && out.stored_size == 234567, "sizes");
    is_int(out.file_count, 1, "file count");
    is_int(out.tablespace_count, 1, "tablespace count");
    is_int(g.n, 4, "four entries reported");
    is_str(g.log,
           "0|16384|/srv/my ts||0|0|0||;"
           "1|0|pg_wal||700|1700000000|0||;"
           "2|0|pg_tblspc/16384|/srv/my ts|700|1700000000|0||;"
           "3|16384|PG_15_202209061/5/16385||600|1700000001|12|aaaaaaaa|data/000001@0+6,data/"
           "000002@0+6;",
           "entries round-trip");
    ok(ws_manifest_read(r, "20990101T000000Z", &out, NULL, NULL, &err) < 0 && err.code == WS_ENOENT,
       "an absent manifest is WS_ENOENT");

    /* the parser refuses damage */
    const char *bad[] = {
        "walship-backup-manifest = 1\nid = x\n",                         /* missing keys */
        "file = base 0600 1 2 abc x -\n",                                /* before the version */
        "walship-backup-manifest = 1\nfile = base 0600 1 2 short x -\n", /* bad sha */
        "walship-backup-manifest = 1\nstart-lsn = zz\n",                 /* bad LSN */
        "walship-backup-manifest = 9\n",                                 /* newer version */
        "walship-backup-manifest = 1\nno equals sign\n",
        "walship-backup-manifest = 1\nid = x", /* no final newline */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_manifest_info mi;
        ws_stage *p = ws_manifest_parser_new(&mi, NULL, NULL);
        ws_error_clear(&err);
        int rc = ws_stage_write(p, bad[i], strlen(bad[i]), &err);
        if (rc == 0)
            rc = ws_stage_finish(p, &err);
        ok(rc < 0 && (err.code == WS_ECORRUPT || err.code == WS_ECONFIG),
           "damaged manifest %zu refused (%s)", i, err.msg);
        ws_stage_free(p);
    }

    ws_repo_free(r);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
