/* test_queue.c — the archive backlog against push-queue-max (walship/queue.c) on a fake
 * pg_wal: which files are beyond the limit, what counts, what is never dropped. */
#include "tests/unit/tap.h"
#include "walship/queue.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1u << 20)

static char root[] = "/tmp/walship-test-queue-XXXXXX";

static void touch(const char *rel, size_t size)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
        bail_out("cannot create %s", p);
    close(fd);
}

static void ready(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "pg_wal/archive_status/%s.ready", name);
    touch(rel, 0);
}

/* the verdict for pg_wal/<name> with limit */
static ws_queue_verdict check(const char *name, uint64_t limit)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pg_wal/%s", root, name);
    ws_wal_name n;
    ws_error err;
    ws_queue_verdict v;
    memset(&v, 0xff, sizeof v);
    if (ws_wal_parse_name(name, &n, &err) < 0 || ws_queue_check(path, &n, MiB, limit, &v, &err) < 0)
        diag("check %s: %s", name, err.msg);
    return v;
}

int main(void)
{
    plan_no_plan();
    if (!mkdtemp(root))
        bail_out("mkdtemp");
    char p[512];
    snprintf(p, sizeof p, "%s/pg_wal", root);
    mkdir(p, 0700);

    ws_queue_verdict v = check("000000010000000000000001", 3 * MiB);
    ok(v.beyond == 0 && v.backlog_files == 0, "no archive_status: not a pg_wal, nothing beyond");

    snprintf(p, sizeof p, "%s/pg_wal/archive_status", root);
    mkdir(p, 0700);
    const char *segs[] = {"000000010000000000000001", "000000010000000000000002",
                          "000000010000000000000003", "000000010000000000000004",
                          "000000010000000000000005", "000000010000000000000006"};
    for (int i = 0; i < 6; i++)
        ready(segs[i]);
    touch("pg_wal/archive_status/000000010000000000000000.done", 0);
    touch("pg_wal/archive_status/garbage.ready", 0);

    v = check(segs[0], 6 * MiB);
    ok(!v.beyond, "backlog equal to the limit: nothing beyond");
    is_int((long long)v.backlog_files, 6, "six .ready files (.done and non-WAL ignored)");
    is_int((long long)v.backlog_bytes, 6 * MiB, "six segments' bytes");

    v = check(segs[0], 4 * MiB);
    ok(v.beyond, "6 MiB over 4 MiB: the oldest is beyond");
    is_int((long long)v.beyond_files, 2, "two segments beyond");
    ok(check(segs[1], 4 * MiB).beyond, "the second oldest too");
    ok(!check(segs[2], 4 * MiB).beyond, "the third is kept");
    ok(!check(segs[5], 4 * MiB).beyond, "the newest is kept");
    ok(!check("000000010000000000000000", 1 * MiB).beyond,
       "a file PostgreSQL is not offering (.done) is never beyond");
    v = check(segs[5], 1 * MiB);
    ok(!v.beyond && v.beyond_files == 5, "1 MiB: five beyond, the newest kept");

    /* history and backup history files count, but are never beyond; nor are .partial */
    touch("pg_wal/00000002.history", 42);
    ready("00000002.history");
    touch("pg_wal/000000010000000000000003.00000028.backup", 300);
    ready("000000010000000000000003.00000028.backup");
    ready("000000010000000000000006.partial");
    ready("000000020000000000000006");
    v = check(segs[0], 8 * MiB);
    is_int((long long)v.backlog_files, 10, "ten .ready files");
    is_int((long long)v.backlog_bytes, 8 * MiB + 342, "8 segments (.partial included) + 342 bytes");
    ok(v.beyond && v.beyond_files == 1, "342 bytes over: one segment beyond, the oldest");
    ok(!check(segs[1], 8 * MiB).beyond, "the second is kept");
    v = check("00000002.history", 1 * MiB);
    ok(!v.beyond, "a history file is never beyond");
    v = check("000000010000000000000006.partial", 1 * MiB);
    ok(!v.beyond, "a .partial segment is never beyond");
    ok(check("000000020000000000000006", 3 * MiB).beyond == 0,
       "the newest timeline's segment is kept at 3 MiB");
    ok(check(segs[5], 3 * MiB).beyond, "timeline 1 sorts before timeline 2: its last is beyond");

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        diag("could not remove %s", root);
    return done_testing();
}
