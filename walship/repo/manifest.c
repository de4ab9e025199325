/* manifest.c — rendering and parsing the walship backup manifest (see manifest.h). */
#include "walship/repo/manifest.h"
#include "walship/clock.h"
#include "walship/repo/keys.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES (4u << 20) /* an extent list of a huge file in small parts */

int ws_manifest_key(const char *id, const char *name, char *buf, size_t len)
{
    return ws_key_backup_object(id, name, buf, len);
}

static int needs_escape(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '%';
}

void ws_manifest_encode(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)in; *c && o + 4 <= outlen; c++) {
        if (needs_escape(*c)) {
            out[o++] = '%';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        } else {
            out[o++] = (char)*c;
        }
    }
    out[o] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int ws_manifest_decode(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *c = in; *c; c++) {
        if (o + 1 >= outlen)
            return -1;
        if (*c == '%') {
            int hi = hexval(c[1]), lo = hi < 0 ? -1 : hexval(c[2]);
            if (lo < 0)
                return -1;
            out[o++] = (char)(hi << 4 | lo);
            c += 2;
        } else {
            out[o++] = *c;
        }
    }
    out[o] = '\0';
    return 0;
}

void ws_manifest_format_time(int64_t t, char out[32])
{
    ws_utc_text(t, out);
}

/* ---- builder ---- */

struct ws_manifest_builder {
    char *buf;
    size_t len, cap;
    int tablespaces;
    uint64_t files;
};

ws_manifest_builder *ws_manifest_builder_new(void)
{
    return calloc(1, sizeof(ws_manifest_builder));
}

void ws_manifest_builder_free(ws_manifest_builder *b)
{
    if (!b)
        return;
    free(b->buf);
    free(b);
}

static int append(ws_manifest_builder *b, const char *s, size_t n, ws_error *err)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb)
            return ws_error_set(err, WS_ENOMEM, "out of memory building the backup manifest");
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

static int appendf(ws_manifest_builder *b, ws_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int appendf(ws_manifest_builder *b, ws_error *err, const char *fmt, ...)
{
    char small[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ws_error_set(err, WS_EINTERNAL, "manifest formatting failed");
    if ((size_t)n < sizeof small)
        return append(b, small, (size_t)n, err);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return ws_error_oom(err);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = append(b, big, (size_t)n, err);
    free(big);
    return rc;
}

static void tsp_name(uint32_t tsp, char out[16])
{
    if (tsp == 0)
        strcpy(out, "base");
    else
        snprintf(out, 16, "%" PRIu32, tsp);
}

int ws_manifest_add(ws_manifest_builder *b, const ws_manifest_entry *e, ws_error *err)
{
    char path[3 * WS_MANIFEST_PATH_MAX + 1], target[3 * WS_MANIFEST_PATH_MAX + 1], tsp[16];
    ws_manifest_encode(e->path, path, sizeof path);
    tsp_name(e->tablespace, tsp);
    switch (e->kind) {
    case WS_MANIFEST_TABLESPACE:
        b->tablespaces++;
        return appendf(b, err, "tablespace = %" PRIu32 " %s\n", e->tablespace, path);
    case WS_MANIFEST_DIR:
        return appendf(b, err, "dir = %s %04o %" PRId64 " %s\n", tsp, (unsigned)e->mode, e->mtime,
                       path);
    case WS_MANIFEST_SYMLINK:
        ws_manifest_encode(e->target, target, sizeof target);
        return appendf(b, err, "symlink = %s %04o %" PRId64 " %s %s\n", tsp, (unsigned)e->mode,
                       e->mtime, path, target);
    case WS_MANIFEST_FILE:
        b->files++;
        return appendf(b, err, "file = %s %04o %" PRId64 " %" PRIu64 " %s %s %s\n", tsp,
                       (unsigned)e->mode, e->mtime, e->size, e->sha256, path,
                       e->extents && *e->extents ? e->extents : "-");
    }
    return ws_error_set(err, WS_EINTERNAL, "unknown manifest entry kind");
}

int ws_manifest_add_pending(ws_manifest_builder *b, const ws_manifest_entry *e, size_t *slot,
                            ws_error *err)
{
    if (e->kind != WS_MANIFEST_FILE)
        return ws_error_set(err, WS_EINTERNAL, "only a file line has a SHA-256 to fill in");
    char tsp[16];
    tsp_name(e->tablespace, tsp);
    /* the digest follows "file = TSP MODE MTIME SIZE " */
    int pre = snprintf(NULL, 0, "file = %s %04o %" PRId64 " %" PRIu64 " ", tsp, (unsigned)e->mode,
                       e->mtime, e->size);
    ws_manifest_entry p = *e;
    memset(p.sha256, '?', 64); /* not hex: a line never filled in cannot be read back */
    p.sha256[64] = '\0';
    size_t at = b->len;
    if (pre < 0 || ws_manifest_add(b, &p, err) < 0)
        return pre < 0 ? ws_error_set(err, WS_EINTERNAL, "manifest formatting failed") : -1;
    *slot = at + (size_t)pre;
    return 0;
}

void ws_manifest_set_sha256(ws_manifest_builder *b, size_t slot, const char hex[65])
{
    if (slot + 64 <= b->len)
        memcpy(b->buf + slot, hex, 64);
}

int ws_manifest_write(ws_manifest_builder *b, const ws_manifest_info *in, ws_repo **repos, int n,
                      ws_error *err)
{
    char label[3 * WS_MANIFEST_LABEL_MAX + 4], start[32], stop[32], slsn[32], elsn[32];
    ws_manifest_encode(in->label, label, sizeof label);
    ws_manifest_format_time(in->start_time, start);
    ws_manifest_format_time(in->stop_time, stop);
    ws_wal_lsn_text(in->start_lsn, slsn);
    ws_wal_lsn_text(in->stop_lsn, elsn);
    char head[8192];
    int hn = snprintf(head, sizeof head,
                      "# walship backup manifest: written last; the backup exists once this does\n"
                      "walship-backup-manifest = %d\n"
                      "id = %s\n"
                      "label = %s\n"
                      "system-identifier = %" PRIu64 "\n"
                      "pg-version-num = %d\n"
                      "wal-segment-size = %" PRIu32 "\n"
                      "start-lsn = %s\n"
                      "start-timeline = %" PRIu32 "\n"
                      "stop-lsn = %s\n"
                      "stop-timeline = %" PRIu32 "\n"
                      "start-wal = %s\n"
                      "stop-wal = %s\n"
                      "start-time = %s\n"
                      "stop-time = %s\n"
                      "original-size = %" PRIu64 "\n"
                      "stored-size = %" PRIu64 "\n"
                      "file-count = %" PRIu64 "\n"
                      "tablespace-count = %d\n"
                      "server-manifest = %s\n"
                      "created-by = walship %s\n",
                      WS_MANIFEST_VERSION, in->id, label[0] ? label : "%00", in->sysid,
                      in->pg_version_num, in->seg_size, slsn, in->start_tli, elsn, in->stop_tli,
                      in->start_wal, in->stop_wal, start, stop, in->original_size, in->stored_size,
                      b->files, b->tablespaces, WS_MANIFEST_SERVER, WS_VERSION);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return ws_error_set(err, WS_EINTERNAL, "backup manifest header too long");
    char key[256];
    if (ws_manifest_key(in->id, WS_MANIFEST_NAME, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id \"%s\" too long", in->id);
    ws_repo_obj_writer *w;
    if (ws_repo_obj_create(repos, n, key, WS_OBJ_DATA, WS_CODEC_LZ4, 1, 0, &w, err) < 0)
        return -1;
    if (ws_repo_obj_write(w, head, (size_t)hn, err) < 0 ||
        (b->len && ws_repo_obj_write(w, b->buf, b->len, err) < 0)) {
        ws_repo_obj_abort(w);
        return -1;
    }
    return ws_repo_obj_commit(w, NULL, NULL, err);
}

/* ---- checking an entry ---- */

/* Relative, non-empty, no empty/"."/".." component; *depth receives the component count. */
static int clean_relative(const char *p, int *depth)
{
    *depth = 0;
    if (!*p || *p == '/')
        return 0;
    for (const char *c = p;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        ++*depth;
        if (!slash)
            return 1;
        c = slash + 1;
    }
}

int ws_manifest_clean_absolute(const char *p)
{
    int depth;
    return p[0] == '/' && (p[1] == '\0' || clean_relative(p + 1, &depth));
}

static int all_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* PostgreSQL's layout of a tablespace as BASE_BACKUP sends it: the version directory
 * PG_<major>_<catalog version>, database directories in it, their files. */
static int tablespace_layout(const ws_manifest_info *info, const ws_manifest_entry *e, int depth)
{
    const char *slash = strchr(e->path, '/');
    size_t first = slash ? (size_t)(slash - e->path) : strlen(e->path);
    char major[16];
    int ml = snprintf(major, sizeof major, "PG_%d_", info->pg_version_num / 10000);
    if (info->pg_version_num >= 100000) {
        if (first <= (size_t)ml || strncmp(e->path, major, (size_t)ml) != 0 ||
            !all_digits(e->path + ml, first - (size_t)ml))
            return 0;
    } else if (first < 6 || strncmp(e->path, "PG_", 3) != 0) {
        return 0;
    }
    if (e->kind == WS_MANIFEST_DIR) {
        if (depth == 1)
            return 1;
        return depth == 2 && all_digits(slash + 1, strlen(slash + 1));
    }
    if (e->kind != WS_MANIFEST_FILE || depth != 3)
        return 0;
    const char *db = slash + 1, *name = strchr(db, '/');
    return all_digits(db, (size_t)(name - db));
}

int ws_manifest_check_entry(const ws_manifest_info *info, const ws_manifest_entry *e, ws_error *err)
{
    int depth;
    if (e->kind == WS_MANIFEST_TABLESPACE) {
        if (!ws_manifest_clean_absolute(e->path) || strcmp(e->path, "/") == 0)
            return ws_error_set(err, WS_ECORRUPT,
                                "tablespace %" PRIu32 " has the location \"%s\", not an absolute "
                                "path (without ., .. or empty components)",
                                e->tablespace, e->path);
        return 0;
    }
    if (!clean_relative(e->path, &depth))
        return ws_error_set(err, WS_ECORRUPT,
                            "manifest entry \"%s\" would be written outside the %s directory",
                            e->path, e->tablespace ? "tablespace's" : "data");
    if (e->tablespace && !tablespace_layout(info, e, depth))
        return ws_error_set(err, WS_ECORRUPT,
                            "manifest entry \"%s\" of tablespace %" PRIu32 " is not where "
                            "PostgreSQL keeps a tablespace's files (PG_<major>_<catalog "
                            "version>/<database oid>/<file>): the manifest was altered",
                            e->path, e->tablespace);
    return 0;
}

/* ---- parser ---- */

enum {
    REQ_VERSION = 1 << 0,
    REQ_ID = 1 << 1,
    REQ_SYSID = 1 << 2,
    REQ_START = 1 << 3,
    REQ_STOP = 1 << 4,
    REQ_WAL = 1 << 5,
    REQ_ALL = (1 << 6) - 1,
};

typedef struct parser_stage {
    ws_stage base;
    ws_manifest_info *info;
    ws_manifest_entry_fn fn;
    void *arg;
    char *line;
    size_t len, cap;
    unsigned seen;
    uint64_t lineno;
    uint64_t files;               /* file lines seen */
    int64_t declared_tablespaces; /* the tablespace-count line, -1 if absent */
    int declared_files;           /* whether a file-count line was there */
} parser_stage;

static int bad(parser_stage *p, ws_error *err, const char *what)
{
    return ws_error_set(err, WS_ECORRUPT, "backup manifest line %" PRIu64 ": %s", p->lineno, what);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    *out = strtoull(s, &end, 10);
    return *end ? -1 : 0;
}

static int parse_lsn(const char *s, uint64_t *out)
{
    unsigned hi, lo;
    char extra;
    if (sscanf(s, "%X/%X%c", &hi, &lo, &extra) != 2)
        return -1;
    *out = (uint64_t)hi << 32 | lo;
    return 0;
}

static int parse_tsp(const char *s, uint32_t *out)
{
    uint64_t v;
    if (strcmp(s, "base") == 0) {
        *out = 0;
        return 0;
    }
    if (parse_u64(s, &v) < 0 || v == 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Splits s at spaces into at most max tokens; returns the count. */
static int tokens(char *s, char **tok, int max)
{
    int n = 0;
    while (*s && n < max) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        tok[n++] = s;
        while (*s && *s != ' ')
            s++;
        if (*s)
            *s++ = '\0';
    }
    while (*s == ' ')
        s++;
    return *s ? max + 1 : n;
}

static int body_line(parser_stage *p, const char *key, char *value, ws_error *err)
{
    ws_manifest_entry e;
    memset(&e, 0, sizeof e);
    char *t[8];
    int nt = tokens(value, t, 8);
    uint64_t v = 0;
    if (strcmp(key, "tablespace") == 0) {
        e.kind = WS_MANIFEST_TABLESPACE;
        if (nt != 2 || parse_tsp(t[0], &e.tablespace) < 0 || e.tablespace == 0 ||
            ws_manifest_decode(t[1], e.path, sizeof e.path) < 0)
            return bad(p, err, "malformed tablespace line");
        p->info->tablespace_count++;
    } else {
        int want = strcmp(key, "dir") == 0 ? 4 : strcmp(key, "symlink") == 0 ? 5 : 7;
        e.kind = want == 4 ? WS_MANIFEST_DIR : want == 5 ? WS_MANIFEST_SYMLINK : WS_MANIFEST_FILE;
        if (nt != want || parse_tsp(t[0], &e.tablespace) < 0)
            return bad(p, err, "malformed entry line");
        char *end;
        e.mode = (uint32_t)strtoul(t[1], &end, 8);
        if (*end || parse_u64(t[2][0] == '-' ? t[2] + 1 : t[2], &v) < 0)
            return bad(p, err, "malformed mode or mtime");
        e.mtime = t[2][0] == '-' ? -(int64_t)v : (int64_t)v;
        if (e.kind == WS_MANIFEST_DIR) {
            if (ws_manifest_decode(t[3], e.path, sizeof e.path) < 0)
                return bad(p, err, "malformed path");
        } else if (e.kind == WS_MANIFEST_SYMLINK) {
            if (ws_manifest_decode(t[3], e.path, sizeof e.path) < 0 ||
                ws_manifest_decode(t[4], e.target, sizeof e.target) < 0)
                return bad(p, err, "malformed symlink");
        } else {
            if (parse_u64(t[3], &e.size) < 0 || strlen(t[4]) != 64 ||
                ws_manifest_decode(t[5], e.path, sizeof e.path) < 0)
                return bad(p, err, "malformed file line");
            memcpy(e.sha256, t[4], 65);
            e.extents = t[6];
            p->files++;
        }
    }
    return p->fn ? p->fn(p->arg, &e, err) : 0;
}

static int header_line(parser_stage *p, const char *key, const char *value, ws_error *err)
{
    ws_manifest_info *in = p->info;
    uint64_t v = 0;
    int ok = 1;
    if (strcmp(key, "walship-backup-manifest") == 0) {
        ok = parse_u64(value, &v) == 0;
        if (ok && v > WS_MANIFEST_VERSION) {
            ws_error_set(err, WS_ECONFIG,
                         "backup manifest version %" PRIu64
                         " is newer than this walship reads (%d)",
                         v, WS_MANIFEST_VERSION);
            ws_error_hint(err, "upgrade walship");
            return -1;
        }
        in->version = (int)v;
        p->seen |= REQ_VERSION;
    } else if (strcmp(key, "id") == 0) {
        ok = strlen(value) < sizeof in->id;
        snprintf(in->id, sizeof in->id, "%s", value);
        p->seen |= REQ_ID;
    } else if (strcmp(key, "label") == 0) {
        ok = ws_manifest_decode(value, in->label, sizeof in->label) == 0;
    } else if (strcmp(key, "system-identifier") == 0) {
        ok = parse_u64(value, &in->sysid) == 0;
        p->seen |= REQ_SYSID;
    } else if (strcmp(key, "pg-version-num") == 0) {
        ok = parse_u64(value, &v) == 0;
        in->pg_version_num = (int)v;
    } else if (strcmp(key, "wal-segment-size") == 0) {
        ok = parse_u64(value, &v) == 0;
        in->seg_size = (uint32_t)v;
    } else if (strcmp(key, "start-lsn") == 0) {
        ok = parse_lsn(value, &in->start_lsn) == 0;
        p->seen |= REQ_START;
    } else if (strcmp(key, "stop-lsn") == 0) {
        ok = parse_lsn(value, &in->stop_lsn) == 0;
        p->seen |= REQ_STOP;
    } else if (strcmp(key, "start-timeline") == 0) {
        ok = parse_u64(value, &v) == 0;
        in->start_tli = (uint32_t)v;
    } else if (strcmp(key, "stop-timeline") == 0) {
        ok = parse_u64(value, &v) == 0;
        in->stop_tli = (uint32_t)v;
    } else if (strcmp(key, "start-wal") == 0) {
        snprintf(in->start_wal, sizeof in->start_wal, "%s", value);
        p->seen |= REQ_WAL;
    } else if (strcmp(key, "stop-wal") == 0) {
        snprintf(in->stop_wal, sizeof in->stop_wal, "%s", value);
    } else if (strcmp(key, "start-time") == 0) {
        ok = ws_utc_parse(value, &in->start_time) == 0;
    } else if (strcmp(key, "stop-time") == 0) {
        ok = ws_utc_parse(value, &in->stop_time) == 0;
    } else if (strcmp(key, "original-size") == 0) {
        ok = parse_u64(value, &in->original_size) == 0;
    } else if (strcmp(key, "stored-size") == 0) {
        ok = parse_u64(value, &in->stored_size) == 0;
    } else if (strcmp(key, "file-count") == 0) {
        ok = parse_u64(value, &in->file_count) == 0;
        p->declared_files = 1;
    } else if (strcmp(key, "tablespace-count") == 0) {
        ok = parse_u64(value, &v) == 0 && v < INT32_MAX;
        p->declared_tablespaces = (int64_t)v;
    }
    /* other keys (server-manifest, created-by, later additions) are informational: an older
     * reader skips what it does not know */
    return ok ? 0 : bad(p, err, "malformed value");
}

static int parse_line(parser_stage *p, ws_error *err)
{
    p->lineno++;
    char *s = p->line;
    if (!*s || *s == '#')
        return 0;
    char *eq = strstr(s, " = ");
    if (!eq)
        return bad(p, err, "expected \"key = value\"");
    *eq = '\0';
    const char *key = s;
    char *value = eq + 3;
    if (!strcmp(key, "tablespace") || !strcmp(key, "dir") || !strcmp(key, "symlink") ||
        !strcmp(key, "file")) {
        if (!(p->seen & REQ_VERSION))
            return bad(p, err, "entries before the walship-backup-manifest line");
        return body_line(p, key, value, err);
    }
    return header_line(p, key, value, err);
}

static int parser_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    parser_stage *p = (parser_stage *)st;
    const char *in = buf;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n') {
            p->line[p->len] = '\0';
            if (parse_line(p, err) < 0)
                return -1;
            p->len = 0;
            continue;
        }
        if (in[i] == '\0')
            return bad(p, err, "NUL byte");
        if (p->len + 2 > p->cap) {
            if (p->cap >= LINE_MAX_BYTES)
                return bad(p, err, "line too long");
            size_t cap = p->cap * 2;
            char *nl = realloc(p->line, cap);
            if (!nl)
                return ws_error_oom(err);
            p->line = nl;
            p->cap = cap;
        }
        p->line[p->len++] = in[i];
    }
    return 0;
}

static int parser_flush(ws_stage *st, ws_error *err)
{
    parser_stage *p = (parser_stage *)st;
    if (p->len)
        return bad(p, err, "the last line has no newline (truncated)");
    if ((p->seen & REQ_ALL) != REQ_ALL)
        return ws_error_set(err, WS_ECORRUPT,
                            "backup manifest lacks one of walship-backup-manifest, id, "
                            "system-identifier, start-lsn, stop-lsn, start-wal");
    /* the counts are written beside the lines: a line added or removed by hand shows */
    if (p->declared_tablespaces >= 0 && p->declared_tablespaces != p->info->tablespace_count)
        return ws_error_set(err, WS_ECORRUPT,
                            "backup manifest declares %" PRId64 " tablespace(s) "
                            "(tablespace-count) but has %d tablespace lines: it was altered",
                            p->declared_tablespaces, p->info->tablespace_count);
    if (p->declared_files && p->info->file_count != p->files)
        return ws_error_set(err, WS_ECORRUPT,
                            "backup manifest declares %" PRIu64 " files (file-count) but has "
                            "%" PRIu64 " file lines: it was altered",
                            p->info->file_count, p->files);
    return 0;
}

static void parser_free(ws_stage *st)
{
    parser_stage *p = (parser_stage *)st;
    free(p->line);
    free(p);
}

static const ws_stage_ops parser_ops = {"manifest-parser", parser_write, parser_flush, parser_free};

ws_stage *ws_manifest_parser_new(ws_manifest_info *info, ws_manifest_entry_fn fn, void *arg)
{
    parser_stage *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cap = 4096;
    p->line = malloc(p->cap);
    if (!p->line) {
        free(p);
        return NULL;
    }
    p->base.ops = &parser_ops;
    p->declared_tablespaces = -1;
    p->info = info;
    p->fn = fn;
    p->arg = arg;
    memset(info, 0, sizeof *info);
    return &p->base;
}

int ws_manifest_read(ws_repo *r, const char *id, ws_manifest_info *info, ws_manifest_entry_fn fn,
                     void *arg, ws_error *err)
{
    char key[256];
    if (ws_manifest_key(id, WS_MANIFEST_NAME, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id \"%s\" too long", id);
    ws_stage *p = ws_manifest_parser_new(info, fn, arg);
    if (!p)
        return ws_error_oom(err);
    int rc = ws_repo_obj_read(r, key, p, NULL, err);
    ws_stage_free(p);
    if (rc == 0 && strcmp(info->id, id) != 0)
        rc = ws_error_set(err, WS_ECORRUPT, "%s names backup \"%s\"", key, info->id);
    return rc;
}
