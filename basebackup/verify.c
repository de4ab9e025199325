/* verify.c — the server's backup_manifest against what walship stored (see verify.h). */
#include "basebackup/verify.h"

#include "walship/stage/stage.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (1u << 20)

typedef struct vfile {
    char *path;
    uint64_t size;
    unsigned char sha[32];
    uint32_t crc;
    int matched;
} vfile;

/* A server manifest line for a file walship has not reported yet: a file stored as one object
 * is reported once that object is committed, which a writer thread may finish after the
 * server's manifest line for it has arrived. Checked again by ws_bb_verify_finish. */
typedef struct vpending {
    char *path;
    uint64_t size;
    unsigned char want[32];
    int is_sha;
} vpending;

struct ws_bb_verify {
    vfile *f;
    size_t n, cap;
    vpending *p;
    size_t np, cap_p;
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
    for (size_t i = 0; i < v->np; i++)
        free(v->p[i].path);
    free(v->p);
    free(v->line);
    ws_stage_free(v->sha);
    free(v);
}

int ws_bb_verify_add(ws_bb_verify *v, const char *path, uint64_t size,
                     const unsigned char sha256[32], uint32_t crc32c, ws_error *err)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        vfile *nf = realloc(v->f, cap * sizeof *nf);
        if (!nf)
            return ws_error_oom(err);
        v->f = nf;
        v->cap = cap;
    }
    vfile *f = &v->f[v->n];
    if (!(f->path = strdup(path)))
        return ws_error_oom(err);
    f->size = size;
    memcpy(f->sha, sha256, 32);
    f->crc = crc32c;
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

/* The server's entry (size n, checksum want) against what walship stored as f. */
static int match(vfile *f, const char *path, uint64_t n, const unsigned char *want, int is_sha,
                 ws_error *err)
{
    if (is_sha && (f->size != n || memcmp(f->sha, want, 32) != 0)) {
        char got[65], exp[65];
        ws_sha256_hex(f->sha, got);
        ws_sha256_hex(want, exp);
        return ws_error_set(err, WS_ECORRUPT,
                            "%s: walship stored %" PRIu64 " bytes with SHA-256 %s, the server's "
                            "backup_manifest says %" PRIu64 " bytes, %s",
                            path, f->size, got, n, exp);
    }
    uint32_t wcrc = (uint32_t)want[0] | (uint32_t)want[1] << 8 | (uint32_t)want[2] << 16 |
                    (uint32_t)want[3] << 24;
    if (!is_sha && (f->size != n || f->crc != wcrc))
        return ws_error_set(err, WS_ECORRUPT,
                            "%s: walship stored %" PRIu64 " bytes with CRC32C %08" PRIx32
                            ", the server's backup_manifest says %" PRIu64 " bytes, %08" PRIx32,
                            path, f->size, f->crc, n, wcrc);
    f->matched = 1;
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
    const char *alg = strstr(line, "\"Checksum-Algorithm\": \"");
    if (!size || !sum || !alg)
        return ws_error_set(err, WS_ECORRUPT,
                            "backup_manifest: %s has no size or checksum (was the backup taken "
                            "with MANIFEST_CHECKSUMS 'CRC32C'?)",
                            path);
    alg += 23;
    int is_sha = strncmp(alg, "SHA256\"", 7) == 0;
    if (!is_sha && strncmp(alg, "CRC32C\"", 7) != 0)
        return ws_error_set(err, WS_ECORRUPT,
                            "backup_manifest: %s: checksum algorithm %.10s, not CRC32C or SHA256",
                            path, alg);
    char *end;
    uint64_t n = strtoull(size + 8, &end, 10);
    /* SHA-256: its 32 bytes; CRC32C: the 4 bytes of the value as the server's memory holds
     * it (host order: little-endian on the platforms walship builds for) */
    unsigned char want[32];
    int wlen = is_sha ? 32 : 4;
    sum += 13;
    for (int i = 0; i < wlen; i++) {
        int hi = hexval(sum[2 * i]), lo = hi < 0 ? -1 : hexval(sum[2 * i + 1]);
        if (lo < 0)
            return ws_error_set(err, WS_ECORRUPT, "backup_manifest: %s: not a %s checksum", path,
                                is_sha ? "SHA-256" : "CRC32C");
        want[i] = (unsigned char)(hi << 4 | lo);
    }
    if (sum[2 * wlen] != '"')
        return ws_error_set(err, WS_ECORRUPT, "backup_manifest: %s: not a %s checksum", path,
                            is_sha ? "SHA-256" : "CRC32C");
    v->listed++;
    vfile *f = lookup(v, path);
    if (!f) {
        if (v->np == v->cap_p) {
            size_t cap = v->cap_p ? v->cap_p * 2 : 64;
            vpending *np = realloc(v->p, cap * sizeof *np);
            if (!np)
                return ws_error_oom(err);
            v->p = np;
            v->cap_p = cap;
        }
        vpending *pe = &v->p[v->np];
        if (!(pe->path = strdup(path)))
            return ws_error_oom(err);
        pe->size = n;
        memcpy(pe->want, want, sizeof pe->want);
        pe->is_sha = is_sha;
        v->np++;
        return 0;
    }
    return match(f, path, n, want, is_sha, err);
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
                    return ws_error_oom(err);
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
                return ws_error_oom(err);
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
    for (size_t i = 0; i < v->np; i++) {
        vfile *f = lookup(v, v->p[i].path);
        if (!f)
            return ws_error_set(
                err, WS_ECORRUPT,
                "%s is in the server's backup_manifest but walship did not store it", v->p[i].path);
        if (match(f, v->p[i].path, v->p[i].size, v->p[i].want, v->p[i].is_sha, err) < 0)
            return -1;
    }
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

/* ---- CRC-32C ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

/* Three independent crc32 streams over adjacent CRC_STRIPE-byte blocks keep the CPU's CRC unit
 * busy (one crc32q has a latency of ~3 cycles and a throughput of 1): ~3x the speed of one
 * chain on the basebackup's main thread. The streams are joined with crc_shift: the CRC's state
 * after CRC_STRIPE zero bytes is linear in the state, so it is four table look-ups. */
#define CRC_STRIPE 2048
static uint32_t crc_shift_table[4][256];

static uint32_t crc_zero_bytes(uint32_t c, size_t n)
{
    while (n--)
        c = crc_table[c & 0xFF] ^ (c >> 8);
    return c;
}

static uint32_t crc_shift(uint32_t c)
{
    return crc_shift_table[0][c & 0xFF] ^ crc_shift_table[1][(c >> 8) & 0xFF] ^
           crc_shift_table[2][(c >> 16) & 0xFF] ^ crc_shift_table[3][c >> 24];
}

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
    uint32_t basis[32];
    for (int b = 0; b < 32; b++)
        basis[b] = crc_zero_bytes(1u << b, CRC_STRIPE);
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t c = 0;
            for (int b = 0; b < 8; b++)
                if (v & (1u << b))
                    c ^= basis[8 * k + b];
            crc_shift_table[k][v] = c;
        }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *p,
                                                            size_t len)
{
    uint64_t c64 = c;
    while (len && ((uintptr_t)p & 7)) {
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
        len--;
    }
    for (; len >= 3 * CRC_STRIPE; p += 3 * CRC_STRIPE, len -= 3 * CRC_STRIPE) {
        uint64_t a = c64, b = 0, d = 0;
        for (size_t i = 0; i < CRC_STRIPE; i += 8) {
            uint64_t wa, wb, wd;
            memcpy(&wa, p + i, 8);
            memcpy(&wb, p + CRC_STRIPE + i, 8);
            memcpy(&wd, p + 2 * CRC_STRIPE + i, 8);
            a = __builtin_ia32_crc32di(a, wa);
            b = __builtin_ia32_crc32di(b, wb);
            d = __builtin_ia32_crc32di(d, wd);
        }
        c64 = crc_shift(crc_shift((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
    }
    while (len--)
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    return (uint32_t)c64;
}
#endif

uint32_t ws_bb_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = buf;
    uint32_t c = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (crc_hw)
        return ~crc_sse42(c, p, len);
#endif
    while (len--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}
