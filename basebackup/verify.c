/* verify.c — the server's backup_manifest against what walship stored (see verify.h). */
#include "basebackup/verify.h"

#include "walship/stage/stage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (1u << 20)

typedef struct vfile {
    char *path;
    uint64_t size;
    unsigned char sha[32];
    int matched;
} vfile;

struct ws_bb_verify {
    vfile *f;
    size_t n, cap;
    int sorted;
    char *line;
    size_t len, cap_line;
    ws_stage *sha; /* over every byte before the Manifest-Checksum line */
    int have_checksum, checksum_ok;
    char checksum_hex[65];
    uint64_t listed;
};

ws_bb_verify *ws_bb_verify_new(void)
{
    ws_bb_verify *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (!(v->sha = ws_stage_sha256_new(NULL))) {
        free(v);
        return NULL;
    }
    return v;
}

void ws_bb_verify_free(ws_bb_verify *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        free(v->f[i].path);
    free(v->f);
    free(v->line);
    ws_stage_free(v->sha);
    free(v);
}

int ws_bb_verify_add(ws_bb_verify *v, const char *path, uint64_t size,
                     const unsigned char sha256[32], ws_error *err)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        vfile *nf = realloc(v->f, cap * sizeof *nf);
        if (!nf)
            return ws_error_set(err, WS_ENOMEM, "out of memory");
        v->f = nf;
        v->cap = cap;
    }
    vfile *f = &v->f[v->n];
    if (!(f->path = strdup(path)))
        return ws_error_set(err, WS_ENOMEM, "out of memory");
    f->size = size;
    memcpy(f->sha, sha256, 32);
    f->matched = 0;
    v->n++;
    v->sorted = 0;
    return 0;
}

static int cmp_vfile(const void *a, const void *b)
{
    return strcmp(((const vfile *)a)->path, ((const vfile *)b)->path);
}

static vfile *lookup(ws_bb_verify *v, const char *path)
{
    if (!v->n)
        return NULL;
    if (!v->sorted) {
        qsort(v->f, v->n, sizeof *v->f, cmp_vfile);
        v->sorted = 1;
    }
    vfile key = {.path = (char *)path};
    return bsearch(&key, v->f, v->n, sizeof *v->f, cmp_vfile);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A JSON string starting after its opening quote, as PostgreSQL's escape_json writes it:
 * \" \\ \/ \b \f \n \r \t and \u00XX. Returns -1 on anything else. */
static int json_string(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\') {
            s++;
            switch (*s) {
            case '"':
            case '\\':
            case '/':
                c = *s;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                int h[4];
                for (int i = 0; i < 4; i++)
                    if ((h[i] = hexval(s[1 + i])) < 0)
                        return -1;
                if (h[0] || h[1])
                    return -1; /* only control characters are escaped this way */
                c = (char)(h[2] << 4 | h[3]);
                s += 4;
                break;
            }
            default:
                return -1;
            }
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    if (*s != '"')
        return -1;
    out[o] = '\0';
    return 0;
}

static int file_line(ws_bb_verify *v, const char *line, ws_error *err)
{
    char path[4096];
    const char *p;
    if ((p = strstr(line, "\"Path\": \""))) {
        if (json_string(p + 9, path, sizeof path) < 0)
            return ws_error_set(err, WS_ECORRUPT, "backup_manifest: malformed Path in %.200s",
                                line);
    } else if ((p = strstr(line, "\"Encoded-Path\": \""))) {
        size_t o = 0;
        for (p += 17; *p != '"'; p += 2) {
            int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);
            if (lo < 0 || o + 1 >= sizeof path)
                return ws_error_set(err, WS_ECORRUPT, "backup_manifest: malformed Encoded-Path");
            path[o++] = (char)(hi << 4 | lo);
        }
        path[o] = '\0';
    } else {
        return ws_error_set(err, WS_ECORRUPT, "backup_manifest: a file without a path");
    }
    const char *size = strstr(line, "\"Size\": ");
    const char *sum = strstr(line, "\"Checksum\": \"");
    if (!size || !sum)
        return ws_error_set(err, WS_ECORRUPT,
                            "backup_manifest: %s has no size or checksum (was the backup taken "
                            "with MANIFEST_CHECKSUMS 'SHA256'?)",
                            path);
    char *end;
    uint64_t n = strtoull(size + 8, &end, 10);
    unsigned char want[32];
    sum += 13;
    for (int i = 0; i < 32; i++) {
        int hi = hexval(sum[2 * i]), lo = hi < 0 ? -1 : hexval(sum[2 * i + 1]);
        if (lo < 0)
            return ws_error_set(err, WS_ECORRUPT, "backup_manifest: %s: not a SHA-256 checksum",
                                path);
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    v->listed++;
    vfile *f = lookup(v, path);
    if (!f)
        return ws_error_set(err, WS_ECORRUPT,
                            "%s is in the server's backup_manifest but walship did not store it",
                            path);
    if (f->size != n || memcmp(f->sha, want, 32) != 0) {
        char got[65], exp[65];
        ws_sha256_hex(f->sha, got);
        ws_sha256_hex(want, exp);
        return ws_error_set(err, WS_ECORRUPT,
                            "%s: walship stored %" PRIu64 " bytes with SHA-256 %s, the server's "
                            "backup_manifest says %" PRIu64 " bytes, %s",
                            path, f->size, got, n, exp);
    }
    f->matched = 1;
    return 0;
}

static int one_line(ws_bb_verify *v, ws_error *err)
{
    const char *line = v->line;
    while (*line == ' ')
        line++;
    if (strncmp(line, "\"Manifest-Checksum\": \"", 22) == 0) {
        snprintf(v->checksum_hex, sizeof v->checksum_hex, "%.64s", line + 22);
        v->have_checksum = 1;
        return 0;
    }
    if (v->have_checksum)
        return ws_error_set(err, WS_ECORRUPT, "backup_manifest: data after its checksum");
    /* hashed as received, newline included */
    if (ws_stage_write(v->sha, v->line, v->len, err) < 0 ||
        ws_stage_write(v->sha, "\n", 1, err) < 0)
        return -1;
    if (strncmp(line, "{ \"Path\"", 8) == 0 || strncmp(line, "{ \"Encoded-Path\"", 16) == 0)
        return file_line(v, line, err);
    return 0;
}

int ws_bb_verify_feed(ws_bb_verify *v, const void *buf, size_t len, ws_error *err)
{
    const char *in = buf;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n') {
            if (v->len + 1 > v->cap_line) {
                char *nl = realloc(v->line, v->len + 1);
                if (!nl)
                    return ws_error_set(err, WS_ENOMEM, "out of memory");
                v->line = nl;
                v->cap_line = v->len + 1;
            }
            v->line[v->len] = '\0';
            if (one_line(v, err) < 0)
                return -1;
            v->len = 0;
            continue;
        }
        if (v->len + 2 > v->cap_line) {
            if (v->cap_line >= LINE_MAX_BYTES)
                return ws_error_set(err, WS_ECORRUPT, "backup_manifest: line too long");
            size_t cap = v->cap_line ? v->cap_line * 2 : 1024;
            char *nl = realloc(v->line, cap);
            if (!nl)
                return ws_error_set(err, WS_ENOMEM, "out of memory");
            v->line = nl;
            v->cap_line = cap;
        }
        v->line[v->len++] = in[i];
    }
    return 0;
}

int ws_bb_verify_finish(ws_bb_verify *v, uint64_t *checked, ws_error *err)
{
    if (v->len) {
        /* only the checksum line may end the manifest without a newline */
        v->line[v->len] = '\0';
        if (strncmp(v->line, "\"Manifest-Checksum\": \"", 22) != 0)
            return ws_error_set(err, WS_ECORRUPT,
                                "the server's backup_manifest ends inside a line: truncated");
        if (one_line(v, err) < 0)
            return -1;
        v->len = 0;
    }
    if (!v->have_checksum)
        return ws_error_set(err, WS_ECORRUPT,
                            "the server's backup_manifest has no checksum: "
                            "truncated");
    unsigned char digest[32];
    uint64_t n;
    char hex[65];
    if (ws_stage_finish(v->sha, err) < 0)
        return -1;
    ws_stage_sha256_result(v->sha, digest, &n);
    ws_sha256_hex(digest, hex);
    if (strcasecmp(hex, v->checksum_hex) != 0)
        return ws_error_set(err, WS_ECORRUPT,
                            "the server's backup_manifest fails its own checksum (%s, "
                            "Manifest-Checksum says %s)",
                            hex, v->checksum_hex);
    for (size_t i = 0; i < v->n; i++)
        if (!v->f[i].matched)
            return ws_error_set(err, WS_ECORRUPT,
                                "walship stored %s, which the server's backup_manifest does not "
                                "list",
                                v->f[i].path);
    if (checked)
        *checked = v->listed;
    return 0;
}
