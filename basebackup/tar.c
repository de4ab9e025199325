/* tar.c — incremental ustar parsing with hostile-name checks (see tar.h). */
#include "basebackup/tar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum tar_state { ST_HEADER, ST_DATA, ST_PAD, ST_ENDED, ST_FAILED } tar_state;

struct ws_tar_parser {
    ws_tar_callbacks cb;
    void *arg;
    tar_state state;
    unsigned char hdr[WS_TAR_BLOCK];
    size_t hfill;
    int zero_blocks;    /* consecutive all-zero header blocks */
    uint64_t remaining; /* data bytes left in the current file */
    size_t pad;         /* padding bytes left after it */
    uint64_t offset;
    ws_tar_entry entry;
    char **links; /* symlink paths seen so far: nothing may be stored below them */
    int nlinks, caplinks;
};

ws_tar_parser *ws_tar_parser_new(const ws_tar_callbacks *cb, void *arg)
{
    ws_tar_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cb = *cb;
    p->arg = arg;
    p->state = ST_HEADER;
    return p;
}

void ws_tar_parser_free(ws_tar_parser *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nlinks; i++)
        free(p->links[i]);
    free(p->links);
    free(p);
}

int ws_tar_parser_ended(const ws_tar_parser *p)
{
    return p->state == ST_ENDED;
}

uint64_t ws_tar_parser_offset(const ws_tar_parser *p)
{
    return p->offset;
}

int ws_tar_path_safe(const char *path)
{
    if (!path[0] || path[0] == '/')
        return 0;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (!slash)
            return 1;
        s = slash + 1;
    }
}

/* A numeric header field: octal digits (space/NUL padded), or base-256 when the high bit of
 * the first byte is set (GNU and PostgreSQL use it for sizes of 8 GiB and more). */
static int tar_number(const unsigned char *f, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (f[0] & 0x80) {
        if (f[0] != 0x80)
            return -1; /* negative, or too large for 64 bits */
        for (size_t i = 1; i < len; i++) {
            if (v >> 56)
                return -1;
            v = (v << 8) | f[i];
        }
        *out = v;
        return 0;
    }
    size_t i = 0;
    while (i < len && f[i] == ' ')
        i++;
    int digits = 0;
    for (; i < len && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v >> 61)
            return -1;
        v = (v << 3) | (uint64_t)(f[i] - '0');
    }
    for (; i < len; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return -1;
    if (!digits)
        return -1;
    *out = v;
    return 0;
}

static int fail(ws_tar_parser *p, ws_error *err, const char *what)
{
    p->state = ST_FAILED;
    return ws_error_set(err, WS_EINVAL, "malformed tar archive at byte %llu: %s",
                        (unsigned long long)p->offset, what);
}

static int check_checksum(const unsigned char *h)
{
    uint64_t want;
    if (tar_number(h + 148, 8, &want) < 0)
        return -1;
    uint64_t sum = 0;
    for (int i = 0; i < WS_TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == want ? 0 : -1;
}

static int below_symlink(const ws_tar_parser *p, const char *path)
{
    for (int i = 0; i < p->nlinks; i++) {
        size_t n = strlen(p->links[i]);
        if (strncmp(path, p->links[i], n) == 0 && (path[n] == '/' || path[n] == '\0'))
            return 1;
    }
    return 0;
}

static int remember_link(ws_tar_parser *p, const char *path, ws_error *err)
{
    if (p->nlinks == p->caplinks) {
        int cap = p->caplinks ? p->caplinks * 2 : 8;
        char **nl = realloc(p->links, (size_t)cap * sizeof *nl);
        if (!nl)
            return ws_error_oom(err);
        p->links = nl;
        p->caplinks = cap;
    }
    if (!(p->links[p->nlinks] = strdup(path)))
        return ws_error_oom(err);
    p->nlinks++;
    return 0;
}

/* Decodes the header block into p->entry and calls begin; sets up the data state. */
static int parse_header(ws_tar_parser *p, ws_error *err)
{
    const unsigned char *h = p->hdr;
    ws_tar_entry *e = &p->entry;
    memset(e, 0, sizeof *e);
    if (memcmp(h + 257, "ustar", 5) != 0)
        return fail(p, err, "not a ustar header");
    if (check_checksum(h) < 0)
        return fail(p, err, "header checksum mismatch");
    char name[101], prefix[156];
    memcpy(name, h, 100);
    name[100] = '\0';
    prefix[0] = '\0';
    if (h[262] == '\0') { /* POSIX "ustar\0": the prefix field is a path prefix */
        memcpy(prefix, h + 345, 155);
        prefix[155] = '\0';
    }
    if (prefix[0])
        snprintf(e->path, sizeof e->path, "%s/%s", prefix, name);
    else
        snprintf(e->path, sizeof e->path, "%s", name);
    /* PostgreSQL names the directories it fakes "./pg_wal/archive_status": a leading "./"
     * means the archive's root, nothing else does */
    while (e->path[0] == '.' && e->path[1] == '/')
        memmove(e->path, e->path + 2, strlen(e->path + 2) + 1);
    size_t plen = strlen(e->path);
    int trailing_slash = plen > 0 && e->path[plen - 1] == '/';
    while (plen > 0 && e->path[plen - 1] == '/')
        e->path[--plen] = '\0';

    uint64_t size, mode, mtime;
    if (tar_number(h + 124, 12, &size) < 0 || tar_number(h + 100, 8, &mode) < 0 ||
        tar_number(h + 136, 12, &mtime) < 0)
        return fail(p, err, "bad numeric field");
    e->mode = (uint32_t)(mode & 07777);
    e->mtime = (int64_t)mtime;
    switch (h[156]) {
    case '\0':
    case '0':
    case '7':
        if (trailing_slash)
            return fail(p, err, "a regular file whose name ends in '/'");
        e->type = WS_TAR_FILE;
        e->size = size;
        break;
    case '5':
        e->type = WS_TAR_DIR;
        size = 0; /* a directory's size field carries no data */
        break;
    case '2':
        e->type = WS_TAR_SYMLINK;
        size = 0;
        memcpy(e->linkname, h + 157, 100);
        e->linkname[100] = '\0';
        if (!e->linkname[0])
            return fail(p, err, "a symlink without a target");
        break;
    default: {
        char what[96];
        snprintf(what, sizeof what, "entry type '%c' (0x%02x) is not a file, directory or symlink",
                 h[156] >= 0x20 && h[156] < 0x7f ? h[156] : '?', h[156]);
        return fail(p, err, what);
    }
    }
    if (!ws_tar_path_safe(e->path)) {
        p->state = ST_FAILED;
        return ws_error_set(err, WS_EINVAL,
                            "refusing tar entry \"%.200s\": not a safe relative path (absolute, "
                            "empty, \".\" or \"..\" component, or control characters)",
                            e->path);
    }
    if (below_symlink(p, e->path)) {
        p->state = ST_FAILED;
        return ws_error_set(err, WS_EINVAL,
                            "refusing tar entry \"%.200s\": it lies below (or replaces) a symlink "
                            "earlier in the archive, which could lead outside it",
                            e->path);
    }
    if (e->type == WS_TAR_SYMLINK && remember_link(p, e->path, err) < 0) {
        p->state = ST_FAILED;
        return -1;
    }
    p->remaining = size;
    p->pad = (size_t)((WS_TAR_BLOCK - size % WS_TAR_BLOCK) % WS_TAR_BLOCK);
    if (p->cb.begin && p->cb.begin(p->arg, e, err) < 0) {
        p->state = ST_FAILED;
        return -1;
    }
    if (size == 0) {
        if (p->cb.end && p->cb.end(p->arg, err) < 0) {
            p->state = ST_FAILED;
            return -1;
        }
        p->state = ST_HEADER;
    } else {
        p->state = ST_DATA;
    }
    return 0;
}

static int all_zero(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int ws_tar_parser_feed(ws_tar_parser *p, const void *buf, size_t len, ws_error *err)
{
    const unsigned char *in = buf;
    while (len > 0) {
        switch (p->state) {
        case ST_FAILED:
            return ws_error_set(err, WS_EINVAL, "tar parser used after a failure");
        case ST_ENDED:
            /* blocking factor padding after the end marker is zeros; anything else is not */
            if (!all_zero(in, len))
                return fail(p, err, "data after the end-of-archive blocks");
            p->offset += len;
            return 0;
        case ST_HEADER: {
            size_t n = WS_TAR_BLOCK - p->hfill;
            if (n > len)
                n = len;
            memcpy(p->hdr + p->hfill, in, n);
            p->hfill += n;
            in += n;
            len -= n;
            p->offset += n;
            if (p->hfill < WS_TAR_BLOCK)
                break;
            p->hfill = 0;
            if (all_zero(p->hdr, WS_TAR_BLOCK)) {
                if (++p->zero_blocks == 2)
                    p->state = ST_ENDED;
                break;
            }
            if (p->zero_blocks)
                return fail(p, err, "a lone zero block inside the archive");
            if (parse_header(p, err) < 0)
                return -1;
            break;
        }
        case ST_DATA: {
            size_t n = p->remaining < len ? (size_t)p->remaining : len;
            if (p->cb.data && p->cb.data(p->arg, in, n, err) < 0) {
                p->state = ST_FAILED;
                return -1;
            }
            in += n;
            len -= n;
            p->offset += n;
            p->remaining -= n;
            if (p->remaining == 0) {
                if (p->cb.end && p->cb.end(p->arg, err) < 0) {
                    p->state = ST_FAILED;
                    return -1;
                }
                p->state = p->pad ? ST_PAD : ST_HEADER;
            }
            break;
        }
        case ST_PAD: {
            size_t n = p->pad < len ? p->pad : len;
            in += n;
            len -= n;
            p->offset += n;
            p->pad -= n;
            if (p->pad == 0)
                p->state = ST_HEADER;
            break;
        }
        }
    }
    return 0;
}

int ws_tar_parser_finish(ws_tar_parser *p, ws_error *err)
{
    switch (p->state) {
    case ST_ENDED:
        return 0;
    case ST_FAILED:
        return ws_error_set(err, WS_EINVAL, "tar archive failed to parse earlier");
    case ST_DATA:
    case ST_PAD:
        return fail(p, err, "truncated inside a file's data");
    case ST_HEADER:
        break;
    }
    return fail(p, err,
                p->hfill ? "truncated inside a header"
                         : "the archive ends without its end-of-archive blocks");
}

int ws_tar_parser_finish_unterminated(ws_tar_parser *p, ws_error *err)
{
    if (p->state == ST_HEADER && p->hfill == 0 && p->zero_blocks == 0) {
        p->state = ST_ENDED;
        return 0;
    }
    if (p->state == ST_HEADER && p->hfill == 0)
        return fail(p, err, "the archive ends after a lone zero block");
    return ws_tar_parser_finish(p, err);
}
