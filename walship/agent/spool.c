/* spool.c — the spool directory shared by async push and its agent (spool.h). */
#include "walship/agent/spool.h"
#include "walship/fsutil.h"

#include "walship/stage/stage.h"
#include "walship/wal.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void ws_spool_path(const ws_spool *sp, const char *name, const char *suffix, char *out, size_t len)
{
    snprintf(out, len, "%s/%s%s", sp->dir, name, suffix);
}

/* ---- the configuration's id: what the agent depends on, hashed ---- */

typedef struct idbuf {
    char *s;
    size_t len, cap;
    int oom;
} idbuf;

static void idbuf_add(idbuf *b, const char *a, const char *c)
{
    size_t need = strlen(a) + strlen(c) + 3;
    if (b->len + need > b->cap) {
        size_t cap = (b->cap + need) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    b->len += (size_t)sprintf(b->s + b->len, "%s=%s\n", a, c);
}

typedef struct id_ctx {
    const ws_config *cfg;
    idbuf *b;       /* the settings, hashed plainly */
    idbuf *secrets; /* the credentials, only ever hashed with the spool's key */
    int repo;
} id_ctx;

static void id_option(void *arg, const char *key, const char *value_name, const char *def,
                      const char *help)
{
    (void)value_name;
    (void)def;
    (void)help;
    id_ctx *c = arg;
    /* Settings of the push process alone: changing them must not restart the agent. */
    static const char *skip[] = {"config", "json", "help", "version", "log-level", "push-timeout"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(key, skip[i]) == 0)
            return;
    const char *v = ws_config_repo_get(c->cfg, c->repo, key);
    if (ws_config_key_secret(key)) {
        if (v)
            idbuf_add(c->secrets, key, v);
        return;
    }
    idbuf_add(c->b, key, v ? v : "\x01");
}

/* ---- the spool's key: new credentials must restart the agent, yet the ids on disk must not
 * let anyone test guesses of a secret. So the credentials enter the id only through SipHash
 * (a keyed PRF) under 256 random bits kept in <spool>/config.key (0600), never in the id. */

#define SPOOL_KEY_LEN 32

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* SipHash-2-4 (Aumasson and Bernstein) of data under the 128-bit key k. */
static uint64_t siphash24(const unsigned char k[16], const unsigned char *data, size_t len)
{
    uint64_t k0 = le64(k), k1 = le64(k + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull,
             v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = le64(data + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)data[full + i] << (8 * i);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Reads <spool>/config.key: 0 and the key, 1 if absent, -1 if it is not a valid key file. */
static int key_read(const char *path, unsigned char key[SPOOL_KEY_LEN])
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == SPOOL_KEY_LEN &&
        (st.st_mode & 077) == 0)
        n = read(fd, key, SPOOL_KEY_LEN);
    close(fd);
    return n == SPOOL_KEY_LEN ? 0 : -1;
}

/* The spool's key, created on first use: written whole to a temporary file, then linked into
 * place, so that concurrent first users agree on one key (link fails if another won). A key
 * file that is not valid (wrong size or mode) is replaced: ids change and agents restart. */
static int spool_key(const char *dir, unsigned char key[SPOOL_KEY_LEN], ws_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/config.key", dir);
    int r = key_read(path, key);
    if (r == 0)
        return 0;
    unsigned char fresh[SPOOL_KEY_LEN];
    if (ws_spool_random(fresh, sizeof fresh, err) < 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot create %s", tmp);
    int ok = write(fd, fresh, sizeof fresh) == (ssize_t)sizeof fresh && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && r == 1 && link(tmp, path) < 0 && errno != EEXIST)
        ok = 0;
    if (ok && r < 0 && rename(tmp, path) < 0)
        ok = 0;
    int e = errno;
    unlink(tmp);
    if (!ok)
        return ws_error_errno(err, WS_EIO, e, "cannot write %s", path);
    if (key_read(path, key) != 0)
        return ws_error_set(err, WS_EIO, "%s is not a valid key file", path);
    return 0;
}

/* Appends "secrets=<SipHash-2-4 of the credentials under the spool's key, 256 bits>" to b. */
static int add_secrets(idbuf *b, const idbuf *secrets, const char *dir, ws_error *err)
{
    unsigned char key[SPOOL_KEY_LEN];
    if (spool_key(dir, key, err) < 0)
        return -1;
    char hex[65];
    for (int k = 0; k < 4; k++) {
        /* four independent 128-bit keys drawn from the 256-bit key and a lane number */
        unsigned char lane[16];
        memcpy(lane, key + (k & 1) * 16, 16);
        lane[0] ^= (unsigned char)(k << 1);
        uint64_t h = siphash24(lane, (const unsigned char *)secrets->s, secrets->len);
        snprintf(hex + 16 * k, 17, "%016" PRIx64, h);
    }
    memset(key, 0, sizeof key);
    idbuf_add(b, "secrets", hex);
    return 0;
}

/* Four 64-bit FNV-1a hashes with different seeds, as 64 hex digits: the prefetch spool's
 * configuration id. fetch computes it on its hit path, where initialising OpenSSL for one
 * SHA-256 would cost more than the rest of the hit together; the id only tells one walship
 * configuration from another (anyone who can write the spool can write pg_wal anyway). No
 * credential enters it but through add_secrets. */
static void fnv_hex(const char *s, size_t len, char out[65])
{
    static const uint64_t seeds[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull,
                                      0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full};
    for (int k = 0; k < 4; k++) {
        uint64_t h = seeds[k];
        for (size_t i = 0; i < len; i++) {
            h ^= (unsigned char)s[i];
            h *= 0x100000001b3ull;
        }
        snprintf(out + 16 * k, 17, "%016" PRIx64, h);
    }
}

static void idbuf_wipe(idbuf *b)
{
    if (b->s)
        memset(b->s, 0, b->cap);
    free(b->s);
}

static int config_id(const ws_config *cfg, const char *dir, char out[65], int fast, ws_error *err)
{
    idbuf b = {0}, secrets = {0};
    int n = ws_config_repo_count(cfg), rc = -1;
    if (n == 0) {
        ws_error_set(err, WS_ECONFIG, "no repository configured");
        ws_error_hint(err, "set repo = /path/or/s3://bucket in the config file, or pass --repo");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        ws_storage_config sc;
        if (ws_config_storage(cfg, i, &sc, err) < 0)
            goto out;
        char k[16];
        snprintf(k, sizeof k, "repo%d", i + 1);
        idbuf_add(&b, k, sc.url);
        id_ctx c = {cfg, &b, &secrets, i};
        ws_config_each_option(id_option, &c);
    }
    if (b.oom || secrets.oom) {
        ws_error_oom(err);
        goto out;
    }
    if (secrets.len && add_secrets(&b, &secrets, dir, err) < 0)
        goto out;
    if (b.oom) {
        ws_error_oom(err);
        goto out;
    }
    if (fast) {
        fnv_hex(b.s, b.len, out);
    } else {
        unsigned char d[32];
        ws_sha256(b.s, b.len, d);
        ws_sha256_hex(d, out);
    }
    rc = 0;
out:
    idbuf_wipe(&secrets);
    free(b.s);
    return rc;
}

/* pg_wal from a path in it; the spool: spool-path[/sub], else pg_wal/deflt. */
static int spool_init(ws_spool *sp, const ws_config *cfg, const char *wal_path, const char *deflt,
                      const char *sub, ws_error *err)
{
    memset(sp, 0, sizeof *sp);
    char dir[PATH_MAX];
    ws_dirname(wal_path, dir, sizeof dir);
    if (!realpath(dir, sp->wal_dir))
        return ws_error_errno(err, WS_EIO, errno, "cannot resolve %s", dir);
    if (strlen(sp->wal_dir) > PATH_MAX - 64)
        return ws_error_set(err, WS_EINVAL, "path too long: %s", sp->wal_dir);
    snprintf(sp->status_dir, sizeof sp->status_dir, "%s/archive_status", sp->wal_dir);
    struct stat st;
    if (stat(sp->status_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return ws_error_set(err, WS_ENOENT, "%s has no archive_status directory: not a pg_wal",
                            sp->wal_dir);
    const char *spool = ws_config_get(cfg, "spool-path");
    if (spool && *spool) {
        if (spool[0] != '/')
            return ws_error_set(err, WS_ECONFIG,
                                "spool-path = \"%s\" (from %s) is not an absolute path", spool,
                                ws_config_source(cfg, "spool-path"));
        if (strlen(spool) > PATH_MAX - 128)
            return ws_error_set(err, WS_ECONFIG, "spool-path is too long");
        if (sub) {
            if (mkdir(spool, 0700) < 0 && errno != EEXIST)
                return ws_error_errno(err, WS_EIO, errno, "cannot create the spool %s", spool);
            snprintf(sp->dir, sizeof sp->dir, "%s/%s", spool, sub);
        } else {
            snprintf(sp->dir, sizeof sp->dir, "%s", spool);
        }
    } else {
        snprintf(sp->dir, sizeof sp->dir, "%s/%s", sp->wal_dir, deflt);
    }
    if (mkdir(sp->dir, 0700) < 0 && errno != EEXIST)
        return ws_error_errno(err, WS_EIO, errno, "cannot create the spool %s", sp->dir);
    return config_id(cfg, sp->dir, sp->config_id, sub != NULL, err);
}

int ws_spool_init(ws_spool *sp, const ws_config *cfg, const char *wal_path, ws_error *err)
{
    return spool_init(sp, cfg, wal_path, "walship", NULL, err);
}

int ws_spool_init_prefetch(ws_spool *sp, const ws_config *cfg, const char *dest_path, ws_error *err)
{
    return spool_init(sp, cfg, dest_path, "walship-prefetch", "prefetch", err);
}

/* ---- small files, written whole ---- */

static int write_whole(const char *path, const char *text, ws_error *err)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot create %s", tmp);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t k = write(fd, text + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            ws_error_errno(err, WS_EIO, errno, "cannot write %s", tmp);
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)k;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        ws_error_errno(err, WS_EIO, errno, "cannot write %s", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Reads up to len-1 bytes of path; -1 if absent or unreadable. */
static int read_whole(const char *path, char *buf, size_t len, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (st && fstat(fd, st) < 0) {
        close(fd);
        return -1;
    }
    size_t off = 0;
    while (off < len - 1) {
        ssize_t k = read(fd, buf + off, len - 1 - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    buf[off] = '\0';
    close(fd);
    return 0;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* ---- acknowledgements ---- */

void ws_spool_fileid_of(const struct stat *st, ws_spool_fileid *id)
{
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (uint64_t)st->st_size;
    id->mtime_s = (int64_t)st->st_mtim.tv_sec;
    id->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
    id->ctime_s = (int64_t)st->st_ctim.tv_sec;
    id->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

int ws_spool_fileid_equal(const ws_spool_fileid *a, const ws_spool_fileid *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
           a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* boot: the .ok proof's boot id, NULL or "" for none (an .ack never has one) */
static int ack_write(const ws_spool *sp, const char *name, const char *suffix,
                     const ws_spool_ack *a, const char *boot, ws_error *err)
{
    char path[PATH_MAX], text[512];
    ws_spool_path(sp, name, suffix, path, sizeof path);
    const ws_spool_fileid *f = &a->file;
    snprintf(text, sizeof text,
             "set = %s\nsha256 = %s\nsize = %" PRIu64 "\nfile = %" PRIu64 " %" PRIu64 " %" PRId64
             " %" PRId64 " %" PRId64 " %" PRId64 "\n",
             a->set_id, a->sha256, f->size, f->dev, f->ino, f->mtime_s, f->mtime_ns, f->ctime_s,
             f->ctime_ns);
    if (boot && boot[0]) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "boot = %s\n", boot);
    }
    return write_whole(path, text, err);
}

static int ack_read(const ws_spool *sp, const char *name, const char *suffix, ws_spool_ack *a)
{
    char path[PATH_MAX], text[512];
    ws_spool_path(sp, name, suffix, path, sizeof path);
    if (read_whole(path, text, sizeof text, NULL) < 0)
        return -1;
    memset(a, 0, sizeof *a);
    ws_spool_fileid *f = &a->file;
    if (sscanf(text,
               "set = %64s\nsha256 = %64s\nsize = %" SCNu64 "\nfile = %" SCNu64 " %" SCNu64
               " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64,
               a->set_id, a->sha256, &f->size, &f->dev, &f->ino, &f->mtime_s, &f->mtime_ns,
               &f->ctime_s, &f->ctime_ns) != 9)
        return -1;
    const char *boot = strstr(text, "\nboot = ");
    if (boot && sscanf(boot, "\nboot = %39s", a->boot_id) != 1)
        return -1;
    return is_hex64(a->set_id) && is_hex64(a->sha256) ? 0 : -1;
}

int ws_spool_ack_write(const ws_spool *sp, const char *name, const ws_spool_ack *a, ws_error *err)
{
    return ack_write(sp, name, ".ack", a, NULL, err);
}

int ws_spool_ack_read(const ws_spool *sp, const char *name, ws_spool_ack *a)
{
    return ack_read(sp, name, ".ack", a);
}

int ws_spool_ok_write(const ws_spool *sp, const char *name, const ws_spool_ack *a, ws_error *err)
{
    return ack_write(sp, name, ".ok", a, a->boot_id, err);
}

int ws_spool_ok_read(const ws_spool *sp, const char *name, ws_spool_ack *a)
{
    return ack_read(sp, name, ".ok", a);
}

int ws_spool_ack_valid(const ws_spool_ack *a, const char *set_id, const struct stat *st)
{
    ws_spool_fileid now;
    ws_spool_fileid_of(st, &now);
    return strcmp(a->set_id, set_id) == 0 && ws_spool_fileid_equal(&a->file, &now);
}

static char boot_id[40];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void boot_read(void)
{
    char buf[64];
    if (read_whole("/proc/sys/kernel/random/boot_id", buf, sizeof buf, NULL) == 0 &&
        sscanf(buf, "%39s", boot_id) != 1)
        boot_id[0] = '\0';
}

const char *ws_spool_boot_id(void)
{
    pthread_once(&boot_once, boot_read);
    return boot_id;
}

void ws_spool_ok_make(ws_spool_ack *ok, const char *config_id, const char *sha256_hex,
                      const struct stat *st, int synced)
{
    memset(ok, 0, sizeof *ok);
    snprintf(ok->set_id, sizeof ok->set_id, "%s", config_id);
    snprintf(ok->sha256, sizeof ok->sha256, "%s", sha256_hex);
    ws_spool_fileid_of(st, &ok->file);
    ok->file.ctime_s = ok->file.ctime_ns = 0;
    if (!synced)
        snprintf(ok->boot_id, sizeof ok->boot_id, "%s", ws_spool_boot_id());
}

int ws_spool_ok_valid(const ws_spool_ack *ok, const char *config_id, const struct stat *st)
{
    ws_spool_fileid now;
    ws_spool_fileid_of(st, &now);
    now.ctime_s = now.ctime_ns = 0;
    return strcmp(ok->set_id, config_id) == 0 && ws_spool_fileid_equal(&ok->file, &now) &&
           (!ok->boot_id[0] || strcmp(ok->boot_id, ws_spool_boot_id()) == 0);
}

/* ---- small files ---- */

int ws_spool_file_write(const ws_spool *sp, const char *fname, const char *text, ws_error *err)
{
    char path[PATH_MAX];
    ws_spool_path(sp, fname, "", path, sizeof path);
    return write_whole(path, text, err);
}

int ws_spool_file_read(const ws_spool *sp, const char *fname, char *buf, size_t len,
                       struct stat *st)
{
    char path[PATH_MAX];
    ws_spool_path(sp, fname, "", path, sizeof path);
    return read_whole(path, buf, len, st);
}

/* ---- errors ---- */

int ws_spool_error_write(const ws_spool *sp, const char *name, const char *text)
{
    char path[PATH_MAX];
    ws_spool_path(sp, name ? name : "agent", ".error", path, sizeof path);
    ws_error err;
    char line[1024];
    snprintf(line, sizeof line, "%s\n", text);
    return write_whole(path, line, &err);
}

int ws_spool_error_read(const ws_spool *sp, const char *name, char *text, size_t len,
                        struct stat *st)
{
    char path[PATH_MAX];
    ws_spool_path(sp, name ? name : "agent", ".error", path, sizeof path);
    if (read_whole(path, text, len, st) < 0)
        return -1;
    text[strcspn(text, "\n")] = '\0';
    return 0;
}

void ws_spool_error_remove(const ws_spool *sp, const char *name)
{
    char path[PATH_MAX];
    ws_spool_path(sp, name ? name : "agent", ".error", path, sizeof path);
    unlink(path);
}

/* ---- the agent's state and lock ---- */

int ws_spool_state_write(const ws_spool *sp, const ws_spool_state *s, ws_error *err)
{
    char path[PATH_MAX], text[256];
    ws_spool_path(sp, "agent", ".state", path, sizeof path);
    snprintf(text, sizeof text, "pid = %ld\nconfig = %s\nset = %s\n", s->pid, s->config_id,
             s->set_id);
    return write_whole(path, text, err);
}

int ws_spool_state_read(const ws_spool *sp, ws_spool_state *s)
{
    char path[PATH_MAX], text[256];
    ws_spool_path(sp, "agent", ".state", path, sizeof path);
    if (read_whole(path, text, sizeof text, NULL) < 0)
        return -1;
    memset(s, 0, sizeof *s);
    if (sscanf(text, "pid = %ld\nconfig = %64s\nset = %64s", &s->pid, s->config_id, s->set_id) != 3)
        return -1;
    return is_hex64(s->config_id) && is_hex64(s->set_id) ? 0 : -1;
}

long ws_spool_agent_pid(const ws_spool *sp)
{
    char path[PATH_MAX];
    ws_spool_path(sp, "agent", ".lock", path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    long pid = 0;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
        pid = (long)fl.l_pid;
    close(fd);
    return pid;
}

int ws_spool_lock(const ws_spool *sp, ws_error *err)
{
    char path[PATH_MAX];
    ws_spool_path(sp, "agent", ".lock", path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot open %s", path);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        int e = errno;
        close(fd);
        if (e == EACCES || e == EAGAIN)
            return -2;
        return ws_error_errno(err, WS_EIO, e, "cannot lock %s", path);
    }
    return fd;
}

int ws_spool_lock_current(const ws_spool *sp, int fd)
{
    char path[PATH_MAX];
    ws_spool_path(sp, "agent", ".lock", path, sizeof path);
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int ws_spool_name_of(const char *fname, const char *suffix, char *name, size_t len)
{
    size_t n = strlen(fname), k = strlen(suffix);
    if (n <= k || strcmp(fname + n - k, suffix) != 0 || n - k >= len)
        return 0;
    memcpy(name, fname, n - k);
    name[n - k] = '\0';
    ws_wal_name wn;
    ws_error err;
    return ws_wal_parse_name(name, &wn, &err) == 0;
}

int ws_spool_random(void *buf, size_t len, ws_error *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t k = getrandom((unsigned char *)buf + got, len - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ws_error_errno(err, WS_EINTERNAL, errno, "getrandom");
        got += (size_t)k;
    }
    return 0;
}
