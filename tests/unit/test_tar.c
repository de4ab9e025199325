/* test_tar.c — the incremental ustar parser: entries come out whole whatever the input's
 * chunking, large sizes in base-256, and hostile archives are refused before a callback
 * sees the bad entry. */
#include "basebackup/tar.h"
#include "tests/unit/tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building archives ---- */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void octal(unsigned char *f, size_t len, unsigned long long v)
{
    snprintf((char *)f, len, "%0*llo", (int)len - 1, v);
}

/* A header with name (and prefix), type, size; the checksum made right unless bad_sum. */
static void header(buf *b, const char *prefix, const char *name, char type, unsigned long long size,
                   const char *link, int bad_sum)
{
    unsigned char h[512];
    memset(h, 0, sizeof h);
    memcpy(h, name, strlen(name) < 100 ? strlen(name) : 100);
    octal(h + 100, 8, 0600);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    if (size >= 077777777777ULL) { /* base-256 */
        h[124] = 0x80;
        for (int i = 0; i < 8; i++)
            h[135 - i] = (unsigned char)(size >> (8 * i));
    } else {
        octal(h + 124, 12, size);
    }
    octal(h + 136, 12, 1700000000);
    h[156] = (unsigned char)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    if (prefix)
        memcpy(h + 345, prefix, strlen(prefix));
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    if (bad_sum)
        sum++;
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    put(b, h, 512);
}

static void file(buf *b, const char *name, const char *data, size_t n)
{
    header(b, NULL, name, '0', n, NULL, 0);
    put(b, data, n);
    static const unsigned char zeros[512];
    if (n % 512)
        put(b, zeros, 512 - n % 512);
}

static void trailer(buf *b)
{
    static const unsigned char zeros[1024];
    put(b, zeros, sizeof zeros);
}

/* ---- collecting entries ---- */

typedef struct seen {
    char log[4096];
    int begins, ends;
    unsigned long long data;
    int fail_at_begin; /* test a callback failure */
} seen;

static int on_begin(void *arg, const ws_tar_entry *e, ws_error *err)
{
    seen *s = arg;
    s->begins++;
    size_t l = strlen(s->log);
    snprintf(s->log + l, sizeof s->log - l, "%c:%s:%llu:%o%s%s;",
             e->type == WS_TAR_FILE  ? 'f'
             : e->type == WS_TAR_DIR ? 'd'
                                     : 'l',
             e->path, (unsigned long long)e->size, (unsigned)e->mode, e->linkname[0] ? ">" : "",
             e->linkname);
    if (s->fail_at_begin && s->begins == s->fail_at_begin)
        return ws_error_set(err, WS_EIO, "callback says stop");
    return 0;
}

static int on_data(void *arg, const void *b, size_t n, ws_error *err)
{
    (void)b;
    (void)err;
    ((seen *)arg)->data += n;
    return 0;
}

static int on_end(void *arg, ws_error *err)
{
    (void)err;
    ((seen *)arg)->ends++;
    return 0;
}

static const ws_tar_callbacks cb = {on_begin, on_data, on_end};

/* Parses the archive fed in chunks of chunk bytes; returns 0/-1 and the error. unterminated:
 * finish as for PostgreSQL 13/14, whose archives end without the end-of-archive blocks. */
static int parse_as(const buf *b, size_t chunk, seen *s, ws_error *err, int unterminated)
{
    memset(s, 0, sizeof *s);
    ws_error_clear(err);
    ws_tar_parser *p = ws_tar_parser_new(&cb, s);
    int rc = 0;
    for (size_t off = 0; off < b->len && rc == 0; off += chunk) {
        size_t n = b->len - off < chunk ? b->len - off : chunk;
        rc = ws_tar_parser_feed(p, b->p + off, n, err);
    }
    if (rc == 0)
        rc =
            unterminated ? ws_tar_parser_finish_unterminated(p, err) : ws_tar_parser_finish(p, err);
    ws_tar_parser_free(p);
    return rc;
}

static int parse(const buf *b, size_t chunk, seen *s, ws_error *err)
{
    return parse_as(b, chunk, s, err, 0);
}

static int refused(const char *what, buf *b, const char *msg_part)
{
    seen s;
    ws_error err;
    int rc = parse(b, 512, &s, &err);
    int good = rc < 0 && err.code == WS_EINVAL && strstr(err.msg, msg_part);
    ok(good, "refused: %s", what);
    if (!good)
        diag("rc %d code %d msg \"%s\" log \"%s\"", rc, err.code, err.msg, s.log);
    free(b->p);
    memset(b, 0, sizeof *b);
    return good;
}

int main(void)
{
    plan_no_plan();
    seen s;
    ws_error err;

    /* a PostgreSQL-like archive: backup_label, dirs, a symlink, a multi-block file */
    buf a = {0};
    char *big = malloc(70000);
    for (int i = 0; i < 70000; i++)
        big[i] = (char)(i * 7);
    file(&a, "backup_label", "START WAL LOCATION: 0/2000028\n", 30);
    header(&a, NULL, "base/", '5', 0, NULL, 0);
    header(&a, NULL, "./pg_wal/archive_status/", '5', 0, NULL, 0);
    header(&a, NULL, "pg_tblspc/16384/", '2', 0, "/srv/ts1", 0);
    file(&a, "base/1/1259", big, 70000);
    file(&a, "empty", "", 0);
    header(&a, "a-prefix-dir", "file-in-prefix", '0', 0, NULL, 0);
    trailer(&a);
    const char *want = "f:backup_label:30:600;d:base:0:600;d:pg_wal/archive_status:0:600;"
                       "l:pg_tblspc/16384:0:600>/srv/ts1;f:base/1/1259:70000:600;f:empty:0:600;"
                       "f:a-prefix-dir/file-in-prefix:0:600;";
    size_t chunks[] = {1, 7, 511, 512, 513, 4096, 1 << 20};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        int rc = parse(&a, chunks[i], &s, &err);
        if (!ok(rc == 0, "archive parses fed %zu bytes at a time", chunks[i]))
            diag("%s", err.msg);
        is_str(s.log, want, "... entries in order, names normalised (chunk %zu)", chunks[i]);
        is_int(s.data, 70030, "... all file data passed through");
        is_int(s.ends, 7, "... every entry ended");
    }

    /* a truncated archive, and one without its end blocks */
    buf t = {0};
    put(&t, a.p, 512 + 512 + 100);
    ok(parse(&t, 512, &s, &err) < 0 && strstr(err.msg, "truncated"), "truncated data refused");
    t.len = 0;
    put(&t, a.p, 1024);
    ok(parse(&t, 512, &s, &err) < 0 && strstr(err.msg, "end-of-archive"),
       "an archive without end blocks refused");

    /* PostgreSQL 13/14: the archive ends with the CopyDone, between two entries */
    t.len = 0;
    put(&t, a.p, a.len - 1024);
    ok(parse_as(&t, 100, &s, &err, 1) == 0 && !strcmp(s.log, want),
       "unterminated (13/14): the archive without its end blocks parses, every entry: %s", err.msg);
    ok(parse_as(&a, 100, &s, &err, 1) == 0 && !strcmp(s.log, want),
       "unterminated (13/14): ... and one with them too");
    t.len = 0;
    put(&t, a.p, 6 * 512 + 100); /* base/1/1259's data */
    ok(parse_as(&t, 512, &s, &err, 1) < 0 && strstr(err.msg, "truncated inside a file"),
       "unterminated (13/14): cut inside a file's data is still truncated: %s", err.msg);
    t.len = 0;
    put(&t, a.p, 2 * 512 + 300); /* base/'s header */
    ok(parse_as(&t, 512, &s, &err, 1) < 0 && strstr(err.msg, "truncated inside a header"),
       "unterminated (13/14): cut inside a header is still truncated: %s", err.msg);
    t.len = 0;
    put(&t, a.p, a.len - 512);
    ok(parse_as(&t, 512, &s, &err, 1) < 0 && strstr(err.msg, "lone zero block"),
       "unterminated (13/14): one zero block then the end is refused: %s", err.msg);
    free(t.p);

    /* data after the end */
    buf d = {0};
    put(&d, a.p, a.len);
    put(&d, "junk", 4);
    ok(parse(&d, 512, &s, &err) < 0 && strstr(err.msg, "after the end"),
       "data after the end refused");
    d.len = a.len;
    static const unsigned char zeros[2048];
    put(&d, zeros, sizeof zeros);
    ok(parse(&d, 512, &s, &err) == 0, "zero padding after the end accepted");
    free(d.p);
    free(a.p);

    /* base-256 size (> 8 GiB): header only, then cut — the size must decode */
    buf h = {0};
    header(&h, NULL, "huge", '0', 10ULL << 30, NULL, 0);
    parse(&h, 512, &s, &err);
    is_str(s.log, "f:huge:10737418240:600;", "a base-256 size decodes (10 GiB)");
    free(h.p);

    /* hostile names and entries */
    buf b = {0};
    header(&b, NULL, "/etc/passwd", '0', 0, NULL, 0);
    trailer(&b);
    refused("absolute path", &b, "not a safe relative path");
    header(&b, NULL, "../../etc/cron.d/x", '0', 0, NULL, 0);
    trailer(&b);
    refused("leading ..", &b, "not a safe relative path");
    header(&b, NULL, "base/../../x", '0', 0, NULL, 0);
    trailer(&b);
    refused("inner ..", &b, "not a safe relative path");
    header(&b, NULL, "base//x", '0', 0, NULL, 0);
    trailer(&b);
    refused("empty component", &b, "not a safe relative path");
    header(&b, NULL, "base/./x", '0', 0, NULL, 0);
    trailer(&b);
    refused("inner . component", &b, "not a safe relative path");
    header(&b, NULL, "a\nb", '0', 0, NULL, 0);
    trailer(&b);
    refused("control character", &b, "not a safe relative path");
    header(&b, "..", "x", '0', 0, NULL, 0);
    trailer(&b);
    refused(".. in the prefix field", &b, "not a safe relative path");
    header(&b, NULL, "/", '5', 0, NULL, 0);
    trailer(&b);
    refused("the root directory", &b, "not a safe relative path");
    header(&b, NULL, "link/", '2', 0, "/etc", 0);
    header(&b, NULL, "link/passwd", '0', 0, NULL, 0);
    trailer(&b);
    refused("a file below a symlink", &b, "below (or replaces) a symlink");
    header(&b, NULL, "link/", '2', 0, "/etc", 0);
    header(&b, NULL, "link", '0', 0, NULL, 0);
    trailer(&b);
    refused("a file replacing a symlink", &b, "below (or replaces) a symlink");
    header(&b, NULL, "hard", '1', 0, "backup_label", 0);
    trailer(&b);
    refused("a hard link", &b, "entry type '1'");
    header(&b, NULL, "dev", '3', 0, NULL, 0);
    trailer(&b);
    refused("a device", &b, "entry type '3'");
    header(&b, NULL, "././@LongLink", 'L', 100, NULL, 0);
    trailer(&b);
    refused("a GNU long name", &b, "entry type 'L'");
    header(&b, NULL, "x", '0', 0, NULL, 1);
    trailer(&b);
    refused("a bad header checksum", &b, "checksum");
    header(&b, NULL, "dir-file/", '0', 0, NULL, 0);
    trailer(&b);
    refused("a regular file named like a directory", &b, "ends in '/'");
    put(&b, "not a tar archive at all", 24);
    static const unsigned char pad[488];
    put(&b, pad, sizeof pad);
    trailer(&b);
    refused("not ustar", &b, "not a ustar header");
    header(&b, NULL, "a", '0', 0, NULL, 0);
    put(&b, zeros, 512);
    header(&b, NULL, "b", '0', 0, NULL, 0);
    trailer(&b);
    refused("a lone zero block", &b, "lone zero block");

    /* nothing of a refused entry reaches the callbacks */
    header(&b, NULL, "ok", '0', 0, NULL, 0);
    header(&b, NULL, "../bad", '0', 0, NULL, 0);
    trailer(&b);
    parse(&b, 512, &s, &err);
    is_str(s.log, "f:ok:0:600;", "entries before the hostile one passed, the hostile one did not");
    free(b.p);
    memset(&b, 0, sizeof b);

    /* a callback's failure stops the parser and comes back */
    header(&b, NULL, "one", '0', 0, NULL, 0);
    header(&b, NULL, "two", '0', 0, NULL, 0);
    trailer(&b);
    memset(&s, 0, sizeof s);
    s.fail_at_begin = 2;
    ws_tar_parser *p = ws_tar_parser_new(&cb, &s);
    ws_error_clear(&err);
    int rc = ws_tar_parser_feed(p, b.p, b.len, &err);
    ok(rc < 0 && err.code == WS_EIO, "a callback failure stops the parser");
    ok(ws_tar_parser_feed(p, b.p, 1, &err) < 0, "... which then refuses more input");
    ws_tar_parser_free(p);
    free(b.p);

    /* ws_tar_path_safe directly */
    ok(ws_tar_path_safe("base/1/1259"), "safe: base/1/1259");
    ok(ws_tar_path_safe("PG_15_202209061/16384/16385"), "safe: a tablespace path");
    ok(ws_tar_path_safe("..."), "safe: ... is a name");
    ok(!ws_tar_path_safe(""), "unsafe: empty");
    ok(!ws_tar_path_safe(".."), "unsafe: ..");
    ok(!ws_tar_path_safe("a/.."), "unsafe: a/..");
    ok(!ws_tar_path_safe("a/"), "unsafe: trailing slash (empty component)");
    free(big);
    return done_testing();
}
