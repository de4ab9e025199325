/*
 * layout.c — the backup's manifest as a plan of what goes where, and the data directory made
 * ready for it.
 *
 * Safety first: every manifest entry is checked before anything is written. Paths must be
 * relative, without empty, "." or ".." components; the only symlinks are pg_tblspc/<oid> of
 * a declared tablespace, and nothing may be written below one (that would be written through
 * it); a tablespace's directory is absolute. A hostile or damaged manifest therefore cannot
 * make restore write outside PGDATA or a tablespace directory.
 *
 * A failed restore must not start by accident: backup_label and global/pg_control are written
 * under temporary names and given their real names at the very end, pg_control last, after
 * everything else is on disk. Without pg_control PostgreSQL refuses to start.
 */
#include "restore/restore.h"
#include "walship/fsutil.h"
#include "walship/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define HELD_SUFFIX ".walship-restore"

/* ---- loading ---- */

static int hex_digest(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

static ws_rs_tablespace *find_ts(ws_rs_plan *p, uint32_t oid)
{
    for (int i = 0; i < p->nts; i++)
        if (p->ts[i].oid == oid)
            return &p->ts[i];
    return NULL;
}

static int add_entry(void *arg, const ws_manifest_entry *me, ws_error *err)
{
    ws_rs_plan *p = arg;
    /* again once the whole manifest is read (ws_rs_plan_validate): the layout of a
     * tablespace depends on the PostgreSQL version, which a forged manifest may put last */
    if (ws_manifest_check_entry(&p->info, me, err) < 0)
        return -1;
    if (me->kind == WS_MANIFEST_TABLESPACE) {
        if (find_ts(p, me->tablespace))
            return ws_error_set(err, WS_ECORRUPT, "tablespace %" PRIu32 " is declared twice",
                                me->tablespace);
        ws_rs_tablespace *nt = realloc(p->ts, (size_t)(p->nts + 1) * sizeof *nt);
        if (!nt)
            return ws_error_oom(err);
        p->ts = nt;
        memset(&p->ts[p->nts], 0, sizeof *p->ts);
        p->ts[p->nts].oid = me->tablespace;
        if (!(p->ts[p->nts++].original = strdup(me->path)))
            return ws_error_oom(err);
        return 0;
    }
    if (me->tablespace && !find_ts(p, me->tablespace))
        return ws_error_set(err, WS_ECORRUPT, "entry %s belongs to undeclared tablespace %" PRIu32,
                            me->path, me->tablespace);
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 1024;
        ws_rs_entry *ne = realloc(p->e, (size_t)cap * sizeof *ne);
        if (!ne)
            return ws_error_oom(err);
        p->e = ne;
        p->cap = cap;
    }
    ws_rs_entry *e = &p->e[p->n];
    memset(e, 0, sizeof *e);
    e->kind = me->kind;
    e->tablespace = me->tablespace;
    e->mode = me->mode & 07777; /* as the backup had it: ws_rs_plan_validate decides */
    e->mtime = me->mtime;
    e->size = me->size;
    if (!(e->path = strdup(me->path)))
        return ws_error_oom(err);
    p->n++;
    if (me->kind == WS_MANIFEST_FILE) {
        if (hex_digest(me->sha256, e->sha256) < 0)
            return ws_error_set(err, WS_ECORRUPT, "file %s has a malformed SHA-256", me->path);
        if (!(e->extents = strdup(me->extents ? me->extents : "-")))
            return ws_error_oom(err);
        e->nextents = strcmp(e->extents, "-") == 0 ? 0 : 1;
        for (const char *c = e->extents; *c; c++)
            e->nextents += *c == ',';
        if ((e->nextents == 0) != (e->size == 0))
            return ws_error_set(err, WS_ECORRUPT, "file %s: size and extents disagree", me->path);
    } else if (me->kind == WS_MANIFEST_SYMLINK) {
        unsigned long oid;
        char rest;
        if (me->tablespace || sscanf(me->path, "pg_tblspc/%lu%c", &oid, &rest) != 1 ||
            !find_ts(p, (uint32_t)oid))
            return ws_error_set(err, WS_ECORRUPT,
                                "symlink %s in the manifest is not a tablespace link; walship "
                                "restores no other symlink",
                                me->path);
        /* PostgreSQL reports a tablespace's location by reading this very link */
        if (strcmp(me->target, find_ts(p, (uint32_t)oid)->original) != 0)
            return ws_error_set(err, WS_ECORRUPT,
                                "symlink %s points to \"%s\", not to tablespace %lu's location "
                                "\"%s\": the manifest was altered",
                                me->path, me->target, oid, find_ts(p, (uint32_t)oid)->original);
    }
    return 0;
}

/* "OID=DIR[,OID=DIR...]" applied to p's tablespaces. */
static int apply_map(ws_rs_plan *p, const char *map, ws_error *err)
{
    for (int i = 0; i < p->nts; i++)
        if (!(p->ts[i].dest = strdup(p->ts[i].original)))
            return ws_error_oom(err);
    if (!map)
        return 0;
    char *copy = strdup(map), *save = NULL;
    if (!copy)
        return ws_error_oom(err);
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end;
        unsigned long oid = eq ? strtoul(item, &end, 10) : 0;
        if (!eq || end != eq || oid == 0 || !ws_manifest_clean_absolute(eq + 1)) {
            rc = ws_error_set(err, WS_ECONFIG,
                              "--tablespace-map \"%s\" is not OID=/absolute/directory", item);
            break;
        }
        ws_rs_tablespace *ts = find_ts(p, (uint32_t)oid);
        if (!ts) {
            rc = ws_error_set(err, WS_ECONFIG, "--tablespace-map: backup %s has no tablespace %lu",
                              p->info.id, oid);
            break;
        }
        free(ts->dest);
        ts->mapped = 1;
        if (!(ts->dest = strdup(eq + 1)))
            rc = ws_error_oom(err);
    }
    free(copy);
    return rc;
}

static char *join(const char *a, const char *b, const char *suffix)
{
    size_t n = strlen(a) + 1 + strlen(b) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s%s", a, b, suffix);
    return s;
}

static int is_held(const ws_rs_entry *e)
{
    return e->kind == WS_MANIFEST_FILE && e->tablespace == 0 &&
           (strcmp(e->path, "global/pg_control") == 0 || strcmp(e->path, "backup_label") == 0);
}

int ws_rs_plan_load(ws_repo *r, const ws_manifest_info *b, const char *pgdata, const char *map,
                    ws_rs_plan *p, ws_error *err)
{
    memset(p, 0, sizeof *p);
    if (pgdata[0] == '/') {
        p->pgdata = strdup(pgdata);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return ws_error_errno(err, WS_EIO, errno, "cannot get the current directory");
        p->pgdata = join(cwd, pgdata, "");
    }
    if (!p->pgdata)
        return ws_error_oom(err);
    size_t l = strlen(p->pgdata);
    while (l > 1 && p->pgdata[l - 1] == '/')
        p->pgdata[--l] = '\0';
    if (ws_manifest_read(r, b->id, &p->info, add_entry, p, err) < 0) {
        ws_error_prefix(err, "backup %s", b->id);
        return -1;
    }
    if (apply_map(p, map, err) < 0)
        return -1;
    /* nothing may be written through a tablespace symlink, nor two entries share a name */
    for (int i = 0; i < p->n; i++) {
        ws_rs_entry *e = &p->e[i];
        if (e->tablespace == 0 && strncmp(e->path, "pg_tblspc/", 10) == 0) {
            const char *rest = strchr(e->path + 10, '/');
            if (rest)
                return ws_error_set(err, WS_ECORRUPT,
                                    "manifest entry %s lies below a tablespace link", e->path);
        }
        const char *root = p->pgdata;
        if (e->tablespace)
            root = find_ts(p, e->tablespace)->dest;
        if (!(e->dest = join(root, e->path, is_held(e) ? HELD_SUFFIX : "")) ||
            (is_held(e) && !(e->final_dest = join(root, e->path, ""))))
            return ws_error_oom(err);
    }
    if (ws_rs_plan_validate(p, err) < 0)
        return -1;
    ws_rs_plan_count(p);
    return 0;
}

void ws_rs_plan_free(ws_rs_plan *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->e[i].path);
        free(p->e[i].dest);
        free(p->e[i].final_dest);
        free(p->e[i].extents);
    }
    free(p->e);
    for (int i = 0; i < p->nts; i++) {
        free(p->ts[i].original);
        free(p->ts[i].dest);
    }
    free(p->ts);
    free(p->pgdata);
    memset(p, 0, sizeof *p);
}

void ws_rs_plan_count(ws_rs_plan *p)
{
    p->files = p->bytes = p->files_write = p->bytes_write = 0;
    for (int i = 0; i < p->n; i++) {
        const ws_rs_entry *e = &p->e[i];
        if (e->kind != WS_MANIFEST_FILE)
            continue;
        p->files++;
        p->bytes += e->size;
        if (!e->keep) {
            p->files_write++;
            p->bytes_write += e->size;
        }
    }
}

/* ---- delta: what is already right ---- */

static int hash_file(const char *path, uint64_t size, unsigned char out[32], int *match_size)
{
    *match_size = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
        close(fd);
        return -1;
    }
    *match_size = 1;
    ws_stage *h = ws_stage_sha256_new(NULL);
    char *buf = malloc(1 << 20);
    ws_error e;
    int rc = h && buf ? 0 : -1;
    while (rc == 0) {
        ssize_t k = read(fd, buf, 1 << 20);
        if (k <= 0) {
            rc = k < 0 ? -1 : 0;
            break;
        }
        rc = ws_stage_write(h, buf, (size_t)k, &e);
    }
    if (rc == 0 && ws_stage_finish(h, &e) == 0)
        ws_stage_sha256_result(h, out, NULL);
    else
        rc = -1;
    ws_stage_free(h);
    free(buf);
    close(fd);
    return rc;
}

/* Whether every directory between root and path (relative) is a real directory: a file
 * reached through a symlinked directory is not where the backup puts it (prepare replaces
 * the link with a directory), so it cannot be kept. */
static int real_parents(const char *root, const char *path)
{
    char buf[PATH_MAX];
    size_t rl = strlen(root);
    if (rl + 1 + strlen(path) >= sizeof buf)
        return 0;
    memcpy(buf, root, rl);
    buf[rl] = '/';
    for (const char *c = path; (c = strchr(c, '/')); c++) {
        size_t n = (size_t)(c - path);
        memcpy(buf + rl + 1, path, n);
        buf[rl + 1 + n] = '\0';
        struct stat st;
        if (lstat(buf, &st) < 0 || !S_ISDIR(st.st_mode))
            return 0;
    }
    return 1;
}

static int delta_one(void *arg, int worker, int i, ws_error *err)
{
    (void)worker;
    (void)err;
    ws_rs_plan *p = arg;
    ws_rs_entry *e = &p->e[i];
    if (e->kind != WS_MANIFEST_FILE || is_held(e))
        return 0;
    const char *root = e->tablespace ? find_ts(p, e->tablespace)->dest : p->pgdata;
    if (!real_parents(root, e->path))
        return 0;
    unsigned char d[32];
    int size_ok;
    if (hash_file(e->dest, e->size, d, &size_ok) == 0 && memcmp(d, e->sha256, 32) == 0)
        e->keep = 1;
    return 0;
}

int ws_rs_plan_delta(ws_rs_plan *p, int threads, ws_error *err)
{
    int rc = ws_rs_parallel(p->n, threads, delta_one, p, NULL, err);
    ws_rs_plan_count(p);
    return rc;
}

/* ---- making the directory ---- */

/* mkdir -p, new directories 0700. */
static int mkdir_p(const char *path, ws_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ws_error_set(err, WS_EINVAL, "path too long: %s", path);
    for (char *c = buf + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return ws_error_errno(err, WS_EIO, errno, "cannot create directory %s", buf);
            *c = save;
            if (!save)
                break;
        }
    }
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return ws_error_set(err, WS_EIO, "%s is not a directory", path);
    return 0;
}

/* The walk that removes what the backup does not have (delta). nftw has no argument: the
 * current root and its sorted entries are file-level, and restore is single-threaded here. */
typedef struct known {
    const char *path;
    ws_manifest_kind kind;
} known;

static known *walk_known;
static int walk_nknown;
static size_t walk_rootlen;
static ws_error *walk_err;
static uint64_t walk_removed;

static int cmp_known(const void *a, const void *b)
{
    return strcmp(((const known *)a)->path, ((const known *)b)->path);
}

static int remove_cb(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    if (ftw->level == 0)
        return 0;
    known key = {fpath + walk_rootlen + 1, WS_MANIFEST_FILE};
    const known *k = bsearch(&key, walk_known, (size_t)walk_nknown, sizeof *walk_known, cmp_known);
    int want_dir = k && k->kind == WS_MANIFEST_DIR, want_file = k && k->kind == WS_MANIFEST_FILE;
    if ((type == FTW_DP && want_dir) || (type == FTW_F && S_ISREG(sb->st_mode) && want_file))
        return 0;
    if ((type == FTW_DP ? rmdir(fpath) : unlink(fpath)) < 0) {
        ws_error_errno(walk_err, WS_EIO, errno, "cannot remove %s", fpath);
        return 1;
    }
    walk_removed++;
    return 0;
}

static int remove_extras(ws_rs_plan *p, uint32_t tsp, const char *root, ws_error *err)
{
    known *k = calloc((size_t)p->n + 1, sizeof *k);
    if (!k)
        return ws_error_oom(err);
    int nk = 0;
    for (int i = 0; i < p->n; i++)
        if (p->e[i].tablespace == tsp && p->e[i].kind != WS_MANIFEST_SYMLINK)
            k[nk++] = (known){p->e[i].path, p->e[i].kind};
    qsort(k, (size_t)nk, sizeof *k, cmp_known);
    walk_known = k;
    walk_nknown = nk;
    walk_rootlen = strlen(root);
    walk_err = err;
    walk_removed = 0;
    int rc = nftw(root, remove_cb, 32, FTW_PHYS | FTW_DEPTH);
    free(k);
    if (rc < 0 && errno != ENOENT)
        return ws_error_errno(err, WS_EIO, errno, "cannot walk %s", root);
    if (rc > 0)
        return -1;
    if (walk_removed)
        ws_log_info("delta: removed %" PRIu64 " entries the backup does not have from %s",
                    walk_removed, root);
    return 0;
}

static int unlink_if(const char *dir, const char *name, ws_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return ws_error_errno(err, WS_EIO, errno, "cannot remove %s", path);
    return 0;
}

int ws_rs_prepare(ws_rs_plan *p, int delta, ws_error *err)
{
    if (mkdir_p(p->pgdata, err) < 0 || chmod(p->pgdata, p->group_access ? 0750 : 0700) < 0)
        return err->code ? -1 : ws_error_errno(err, WS_EIO, errno, "cannot chmod %s", p->pgdata);
    if (delta) {
        /* first of all: a restore that fails from here on must not start */
        static const char *unstartable[] = {"global/pg_control", "backup_label", "recovery.signal",
                                            "standby.signal", "tablespace_map"};
        for (size_t i = 0; i < sizeof unstartable / sizeof *unstartable; i++)
            if (unlink_if(p->pgdata, unstartable[i], err) < 0)
                return -1;
        char global[PATH_MAX];
        snprintf(global, sizeof global, "%s/global", p->pgdata);
        if ((access(global, F_OK) == 0 && ws_fsync_dir(global, err) < 0) ||
            ws_fsync_dir(p->pgdata, err) < 0 || remove_extras(p, 0, p->pgdata, err) < 0)
            return -1;
        for (int i = 0; i < p->nts; i++)
            if (remove_extras(p, p->ts[i].oid, p->ts[i].dest, err) < 0)
                return -1;
    }
    for (int i = 0; i < p->nts; i++)
        if (mkdir_p(p->ts[i].dest, err) < 0)
            return -1;
    for (int i = 0; i < p->n; i++) {
        ws_rs_entry *e = &p->e[i];
        if (e->kind == WS_MANIFEST_DIR) {
            if (mkdir(e->dest, e->mode) < 0 && (errno != EEXIST || mkdir_p(e->dest, err) < 0))
                return err->code ? -1
                                 : ws_error_errno(err, WS_EIO, errno, "cannot create %s", e->dest);
            if (chmod(e->dest, e->mode) < 0)
                return ws_error_errno(err, WS_EIO, errno, "cannot chmod %s", e->dest);
        } else if (e->kind == WS_MANIFEST_SYMLINK) {
            unsigned long oid = strtoul(e->path + 10, NULL, 10);
            char parent[PATH_MAX];
            ws_dirname(e->dest, parent, sizeof parent);
            if (mkdir_p(parent, err) < 0)
                return -1;
            if ((unlink(e->dest) < 0 && errno != ENOENT) ||
                symlink(find_ts(p, (uint32_t)oid)->dest, e->dest) < 0)
                return ws_error_errno(err, WS_EIO, errno, "cannot make the tablespace link %s",
                                      e->dest);
        }
    }
    for (int i = 0; i < p->n; i++) {
        ws_rs_entry *e = &p->e[i];
        if (e->kind != WS_MANIFEST_FILE)
            continue;
        if (e->keep) { /* its bytes are right; its mode and mtime become the backup's too */
            struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
            if (fchmodat(AT_FDCWD, e->dest, e->mode, 0) < 0 ||
                utimensat(AT_FDCWD, e->dest, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return ws_error_errno(err, WS_EIO, errno, "cannot set the mode of %s", e->dest);
            continue;
        }
        int fd = open(e->dest, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == ENOENT) { /* a parent the stream did not list */
            char parent[PATH_MAX];
            ws_dirname(e->dest, parent, sizeof parent);
            if (mkdir_p(parent, err) < 0)
                return -1;
            fd = open(e->dest, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
            return ws_error_errno(err, WS_EIO, errno, "cannot create %s", e->dest);
        int rc = fchmod(fd, e->mode);
        if (rc == 0 && e->size == 0) {
            struct timespec ts[2] = {{(time_t)e->mtime, 0}, {(time_t)e->mtime, 0}};
            rc = futimens(fd, ts);
        }
        if (rc < 0) {
            close(fd);
            return ws_error_errno(err, WS_EIO, errno, "cannot set the mode of %s", e->dest);
        }
        close(fd);
    }
    char wal[PATH_MAX];
    snprintf(wal, sizeof wal, "%s/pg_wal/archive_status", p->pgdata);
    return mkdir_p(wal, err);
}

/* syncfs where it can, else fsync of every written file. */
static int sync_tree(const ws_rs_plan *p, const char *root, ws_error *err)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot open %s", root);
    int rc = syncfs(fd);
    close(fd);
    if (rc == 0)
        return 0;
    for (int i = 0; i < p->n; i++) {
        const ws_rs_entry *e = &p->e[i];
        if (e->kind != WS_MANIFEST_FILE || e->keep)
            continue;
        int f = open(e->dest, O_RDONLY | O_CLOEXEC);
        if (f < 0 || fsync(f) < 0) {
            int en = errno;
            if (f >= 0)
                close(f);
            return ws_error_errno(err, WS_EIO, en, "cannot fsync %s", e->dest);
        }
        close(f);
    }
    return 0;
}

static int give_name(const ws_rs_entry *e, ws_error *err)
{
    if (rename(e->dest, e->final_dest) < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot rename %s to %s", e->dest, e->final_dest);
    char dir[PATH_MAX];
    ws_dirname(e->final_dest, dir, sizeof dir);
    return ws_fsync_dir(dir, err);
}

int ws_rs_finish(ws_rs_plan *p, ws_error *err)
{
    if (sync_tree(p, p->pgdata, err) < 0)
        return -1;
    for (int i = 0; i < p->nts; i++)
        if (sync_tree(p, p->ts[i].dest, err) < 0)
            return -1;
    const ws_rs_entry *control = NULL;
    for (int i = 0; i < p->n; i++) {
        const ws_rs_entry *e = &p->e[i];
        if (!e->final_dest)
            continue;
        if (strcmp(e->path, "global/pg_control") == 0)
            control = e;
        else if (give_name(e, err) < 0)
            return -1;
    }
    if (!control)
        return ws_error_set(err, WS_ECORRUPT, "backup %s has no global/pg_control", p->info.id);
    return give_name(control, err);
}
