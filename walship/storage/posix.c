/*
 * posix.c — the storage driver for a local or NAS-mounted directory.
 *
 * Atomic, durable writes: bytes go to a hidden temporary file beside the final name
 * (".<name>.tmp.<pid>.<n>", 0600), which is fsync'd and then linked (EXCL: link(2) fails if
 * the name exists, so nothing is overwritten) or renamed into place; the directory is then
 * fsync'd. Directories are created 0700, each fsync'd into its parent.
 */
#include "walship/storage/storage.h"

#include "walship/fsutil.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct posix_storage {
    ws_storage base;
    char *root;
} posix_storage;

typedef struct posix_reader {
    ws_storage_reader base;
    int fd;
    uint64_t left; /* UINT64_MAX = to the end */
    char key[PATH_MAX];
} posix_reader;

typedef struct posix_writer {
    ws_storage_writer base;
    posix_storage *s;
    int fd;
    unsigned flags;
    char key[PATH_MAX];
    char tmp[PATH_MAX];
    char final[PATH_MAX];
} posix_writer;

static int path_of(posix_storage *s, const char *key, char *buf, size_t len, ws_error *err)
{
    if (!ws_storage_key_valid(key))
        return ws_error_set(err, WS_EINTERNAL, "invalid repository key \"%s\"", key);
    if ((size_t)snprintf(buf, len, "%s/%s", s->root, key) >= len)
        return ws_error_set(err, WS_EINVAL, "path too long for key %s", key);
    return 0;
}

static int io_code(int e)
{
    return e == ENOENT ? WS_ENOENT : WS_EIO;
}

/* mkdir -p of path's parent directories below (and including) the root, each 0700 and
 * fsync'd into its parent when created. */
static int make_parents(posix_storage *s, const char *path, ws_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = '\0';
    struct stat st;
    if (stat(buf, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return ws_error_set(err, WS_EIO, "%s exists and is not a directory", buf);
        return 0;
    }
    if (errno != ENOENT)
        return ws_error_errno(err, WS_EIO, errno, "cannot stat %s", buf);
    size_t rootlen = strlen(s->root);
    if (strlen(buf) > rootlen && make_parents(s, buf, err) < 0)
        return -1;
    if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
        ws_error_errno(err, WS_EIO, errno, "cannot create directory %s", buf);
        if (errno == EACCES || errno == EROFS)
            ws_error_hint(err, "the repository must be writable by the user running walship "
                               "(usually postgres)");
        return -1;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", buf);
    char *ps = strrchr(parent, '/');
    if (ps && ps != parent) {
        *ps = '\0';
        return ws_fsync_dir(parent, err);
    }
    return 0;
}

static int posix_read(ws_storage_reader *r_, void *buf, size_t len, size_t *n, ws_error *err)
{
    posix_reader *r = (posix_reader *)r_;
    if (r->left < len)
        len = (size_t)r->left;
    *n = 0;
    if (len == 0)
        return 0;
    for (;;) {
        ssize_t k = read(r->fd, buf, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ws_error_errno(err, WS_EIO, errno, "cannot read %s", r->key);
        *n = (size_t)k;
        if (r->left != UINT64_MAX)
            r->left -= (uint64_t)k;
        return 0;
    }
}

static void posix_reader_close(ws_storage_reader *r_)
{
    posix_reader *r = (posix_reader *)r_;
    close(r->fd);
    free(r);
}

static const ws_storage_reader_ops posix_reader_ops = {posix_read, posix_reader_close};

static int posix_open_read(ws_storage *s_, const char *key, uint64_t off, uint64_t len,
                           ws_storage_reader **out, ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    char path[PATH_MAX];
    *out = NULL;
    if (path_of(s, key, path, sizeof path, err) < 0)
        return -1;
    /* O_NONBLOCK: a FIFO planted in place of an object must not hang the open (a device
     * would not block either); the fstat below then refuses anything but a regular file,
     * and for a regular file the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        ws_error_errno(err, io_code(e), e, "cannot open %s", path);
        if (e == EACCES)
            ws_error_hint(err, "the repository must be readable by the user running walship");
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return ws_error_errno(err, WS_EIO, e, "cannot stat %s", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        ws_error_set(err, WS_ECORRUPT, "%s is not a regular file (%s): refused as an object", path,
                     S_ISFIFO(st.st_mode)                         ? "a FIFO"
                     : S_ISDIR(st.st_mode)                        ? "a directory"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                  : "not a file");
        ws_error_hint(err, "only walship writes the repository; remove what is there");
        return -1;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return ws_error_errno(err, WS_EIO, e, "cannot read %s", path);
    }
    if (off && lseek(fd, (off_t)off, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return ws_error_errno(err, WS_EIO, e, "cannot seek in %s", path);
    }
    posix_reader *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return ws_error_oom(err);
    }
    r->base.ops = &posix_reader_ops;
    r->fd = fd;
    r->left = len ? len : UINT64_MAX;
    snprintf(r->key, sizeof r->key, "%s", path);
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    *out = &r->base;
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static int posix_write(ws_storage_writer *w_, const void *buf, size_t len, ws_error *err)
{
    posix_writer *w = (posix_writer *)w_;
    if (write_all(w->fd, buf, len) < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot write %s", w->tmp);
    return 0;
}

static int posix_patch(ws_storage_writer *w_, uint64_t off, const void *buf, size_t len,
                       ws_error *err)
{
    posix_writer *w = (posix_writer *)w_;
    ssize_t k = pwrite(w->fd, buf, len, (off_t)off);
    if (k < 0 || (size_t)k != len)
        return ws_error_errno(err, WS_EIO, k < 0 ? errno : EIO, "cannot write %s", w->tmp);
    return 0;
}

static void posix_abort(ws_storage_writer *w_)
{
    posix_writer *w = (posix_writer *)w_;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->tmp);
    free(w);
}

static int posix_commit(ws_storage_writer *w_, const ws_meta *meta, ws_error *err)
{
    posix_writer *w = (posix_writer *)w_;
    (void)meta; /* posix keeps no metadata: the object header carries the checksum */
    if (fsync(w->fd) < 0) {
        ws_error_errno(err, WS_EIO, errno, "cannot fsync %s", w->tmp);
        posix_abort(w_);
        return -1;
    }
    int rc = close(w->fd);
    w->fd = -1;
    if (rc < 0) {
        ws_error_errno(err, WS_EIO, errno, "cannot close %s", w->tmp);
        posix_abort(w_);
        return -1;
    }
    if (w->flags & WS_STORAGE_WRITE_EXCL) {
        if (link(w->tmp, w->final) < 0) {
            int e = errno;
            ws_error_errno(err, e == EEXIST ? WS_EEXIST : WS_EIO, e, "cannot store %s", w->key);
            posix_abort(w_);
            return -1;
        }
        unlink(w->tmp);
    } else if (rename(w->tmp, w->final) < 0) {
        ws_error_errno(err, WS_EIO, errno, "cannot rename %s to %s", w->tmp, w->final);
        posix_abort(w_);
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", w->final);
    *strrchr(dir, '/') = '\0';
    rc = ws_fsync_dir(dir, err);
    free(w);
    return rc;
}

static const ws_storage_writer_ops posix_writer_ops = {posix_write, posix_patch, posix_commit,
                                                       posix_abort};

static int posix_open_write(ws_storage *s_, const char *key, unsigned flags,
                            ws_storage_writer **out, ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    /* the async agent writes from several threads: keep temporary names distinct */
    static atomic_uint counter;
    *out = NULL;
    posix_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ws_error_oom(err);
    w->base.ops = &posix_writer_ops;
    w->s = s;
    w->flags = flags;
    w->fd = -1;
    snprintf(w->key, sizeof w->key, "%s", key);
    if (path_of(s, key, w->final, sizeof w->final, err) < 0 || make_parents(s, w->final, err) < 0) {
        free(w);
        return -1;
    }
    const char *base = strrchr(w->final, '/') + 1;
    int dirlen = (int)(base - w->final);
    for (int attempt = 0; attempt < 100; attempt++) {
        if ((size_t)snprintf(w->tmp, sizeof w->tmp, "%.*s.%s.tmp.%ld.%u", dirlen, w->final, base,
                             (long)getpid(), atomic_fetch_add(&counter, 1)) >= sizeof w->tmp) {
            free(w);
            return ws_error_set(err, WS_EINVAL, "path too long for key %s", key);
        }
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0 || errno != EEXIST)
            break;
    }
    if (w->fd < 0) {
        int e = errno;
        ws_error_errno(err, WS_EIO, e, "cannot create %s", w->tmp);
        if (e == EACCES || e == EROFS)
            ws_error_hint(err, "the repository must be writable by the user running walship "
                               "(usually postgres)");
        free(w);
        return -1;
    }
    *out = &w->base;
    return 0;
}

static int posix_stat(ws_storage *s_, const char *key, ws_storage_info *info, ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    char path[PATH_MAX];
    if (path_of(s, key, path, sizeof path, err) < 0)
        return -1;
    struct stat st;
    if (stat(path, &st) < 0)
        return ws_error_errno(err, io_code(errno), errno, "cannot stat %s", path);
    if (!S_ISREG(st.st_mode))
        return ws_error_set(err, WS_EIO, "%s is not a regular file", path);
    info->size = (uint64_t)st.st_size;
    info->mtime = st.st_mtime;
    return 0;
}

/* A temporary file of open_write: ".<name>.tmp.<pid>.<n>". */
static int is_tmp_name(const char *name)
{
    return name[0] == '.' && strstr(name, ".tmp.") != NULL;
}

typedef struct list_how {
    unsigned flags;
    ws_storage_list_cb cb;
    ws_storage_list_err_cb on_err;
    void *arg;
} list_how;

static int list_dir(posix_storage *s, const char *relpath, const char *prefix, const list_how *how,
                    ws_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", s->root, *relpath ? "/" : "", relpath);
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        ws_error_errno(err, WS_EIO, errno, "cannot list %s", path);
        if (!how->on_err || !*relpath)
            return -1;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/", relpath);
        return how->on_err(how->arg, sub, err) ? 1 : 0;
    }
    struct dirent *de;
    int rc = 0;
    int want_tmp = (how->flags & WS_STORAGE_LIST_TMP) != 0;
    while (rc == 0 && (de = readdir(d))) {
        /* ".", "..", and temporary files, which are never objects */
        if (de->d_name[0] == '.' && !(want_tmp && is_tmp_name(de->d_name)))
            continue;
        char key[PATH_MAX];
        if ((size_t)snprintf(key, sizeof key, "%s%s%s", relpath, *relpath ? "/" : "", de->d_name) >=
            sizeof key)
            continue;
        size_t kl = strlen(key), pl = strlen(prefix);
        /* descend only where the prefix can still match */
        if (strncmp(key, prefix, kl < pl ? kl : pl) != 0)
            continue;
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", s->root, key);
        struct stat st;
        if (lstat(full, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && de->d_name[0] != '.')
            rc = list_dir(s, key, prefix, how, err);
        else if (S_ISREG(st.st_mode) && kl >= pl && want_tmp == (de->d_name[0] == '.')) {
            ws_storage_info info;
            memset(&info, 0, sizeof info);
            info.size = (uint64_t)st.st_size;
            info.mtime = st.st_mtime;
            if (how->cb(how->arg, key, &info))
                rc = 1;
        }
    }
    closedir(d);
    return rc < 0 ? -1 : rc;
}

static int posix_list(ws_storage *s_, const char *prefix, ws_storage_list_cb cb, void *arg,
                      ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    list_how how = {0, cb, NULL, arg};
    return list_dir(s, "", prefix ? prefix : "", &how, err) < 0 ? -1 : 0;
}

static int posix_list_ex(ws_storage *s_, const char *prefix, unsigned flags, ws_storage_list_cb cb,
                         ws_storage_list_err_cb on_err, void *arg, ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    list_how how = {flags, cb, on_err, arg};
    return list_dir(s, "", prefix ? prefix : "", &how, err) < 0 ? -1 : 0;
}

/* The removal is made durable (the directory fsync'd): expire removes a backup's manifest
 * first and its objects after, and a crash must never bring the manifest back without them. */
static int posix_remove(ws_storage *s_, const char *key, ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    char path[PATH_MAX], dir[PATH_MAX];
    if (path_of(s, key, path, sizeof path, err) < 0)
        return -1;
    if (unlink(path) < 0) {
        if (errno == ENOENT)
            return 0;
        return ws_error_errno(err, WS_EIO, errno, "cannot remove %s", path);
    }
    ws_dirname(path, dir, sizeof dir);
    return ws_fsync_dir(dir, err);
}

/* ---- many removals at once: POSIX_RM_THREADS threads over the keys, in order ---- */

#define POSIX_RM_THREADS 8

typedef struct rm_job {
    posix_storage *s;
    const char *const *keys;
    size_t n;
    atomic_size_t next;
    pthread_mutex_t mu;
    size_t first_failed; /* n if none */
    ws_error err;
} rm_job;

static void *rm_thread(void *arg)
{
    rm_job *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            return NULL;
        char path[PATH_MAX];
        ws_error e;
        ws_error_clear(&e);
        int bad = path_of(j->s, j->keys[i], path, sizeof path, &e) < 0;
        if (!bad && unlink(path) < 0 && errno != ENOENT) {
            ws_error_errno(&e, WS_EIO, errno, "cannot remove %s", path);
            bad = 1;
        }
        if (bad) {
            pthread_mutex_lock(&j->mu);
            if (i < j->first_failed) {
                j->first_failed = i;
                j->err = e;
            }
            pthread_mutex_unlock(&j->mu);
            atomic_store(&j->next, j->n); /* stop handing out keys */
        }
    }
}

/* Removes dir and its parents while they are empty, down to the second level below the root
 * (wal/, backup/ and gap/ themselves stay): what expire leaves of a removed backup or WAL
 * directory. A writer that loses the race to a removed directory fails once and is retried. */
static void prune_dirs(posix_storage *s, const char *dir)
{
    char d[PATH_MAX];
    size_t rl = strlen(s->root);
    snprintf(d, sizeof d, "%s", dir);
    for (;;) {
        if (strncmp(d, s->root, rl) != 0 || d[rl] != '/' || !strchr(d + rl + 1, '/'))
            return;
        if (rmdir(d) < 0)
            return;
        char parent[PATH_MAX];
        ws_dirname(d, parent, sizeof parent);
        ws_error e;
        ws_fsync_dir(parent, &e);
        snprintf(d, sizeof d, "%s", parent);
    }
}

/* The directories of keys[0..n), each fsync'd once (keys of one directory come together). */
static int rm_sync_dirs(posix_storage *s, const char *const *keys, size_t n, ws_error *err)
{
    char last[PATH_MAX] = "";
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX], dir[PATH_MAX];
        if (path_of(s, keys[i], path, sizeof path, err) < 0)
            return -1;
        ws_dirname(path, dir, sizeof dir);
        if (strcmp(dir, last) == 0)
            continue;
        snprintf(last, sizeof last, "%s", dir);
        ws_error e;
        if (ws_fsync_dir(dir, &e) < 0 && e.code != WS_ENOENT) {
            if (err)
                *err = e;
            return -1;
        }
        prune_dirs(s, dir);
    }
    return 0;
}

static int posix_remove_many(ws_storage *s_, const char *const *keys, size_t n, size_t *done,
                             ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    rm_job j = {.s = s, .keys = keys, .n = n, .first_failed = n};
    atomic_init(&j.next, 0);
    pthread_mutex_init(&j.mu, NULL);
    ws_error_clear(&j.err);
    pthread_t t[POSIX_RM_THREADS];
    int nt = 0;
    size_t want = n / 64 + 1;
    for (; nt < POSIX_RM_THREADS && (size_t)nt < want; nt++)
        if (pthread_create(&t[nt], NULL, rm_thread, &j) != 0)
            break;
    if (nt == 0)
        rm_thread(&j);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&j.mu);
    /* threads finish out of order: only the keys before the first failure count as done */
    size_t ok = j.first_failed;
    if (rm_sync_dirs(s, keys, ok, err) < 0)
        return -1;
    if (done)
        *done = ok;
    if (ok < n) {
        if (err)
            *err = j.err;
        return -1;
    }
    return 0;
}

/* A name from a WS_STORAGE_LIST_TMP listing: "<dir>/.<name>.tmp.<pid>.<n>". */
static int posix_remove_tmp(ws_storage *s_, const char *name, ws_error *err)
{
    posix_storage *s = (posix_storage *)s_;
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    char dirpart[PATH_MAX];
    snprintf(dirpart, sizeof dirpart, "%.*s", slash ? (int)(slash - name) : 0, name);
    if (!is_tmp_name(base) || (dirpart[0] && !ws_storage_key_valid(dirpart)))
        return ws_error_set(err, WS_EINTERNAL, "not a temporary file name: \"%s\"", name);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", s->root, name) >= sizeof path)
        return ws_error_set(err, WS_EINVAL, "path too long for %s", name);
    if (unlink(path) < 0 && errno != ENOENT)
        return ws_error_errno(err, WS_EIO, errno, "cannot remove %s", path);
    return 0;
}

static const char *posix_describe(ws_storage *s_)
{
    return ((posix_storage *)s_)->root;
}

static void posix_free(ws_storage *s_)
{
    posix_storage *s = (posix_storage *)s_;
    free(s->root);
    free(s);
}

static const ws_storage_ops posix_ops = {
    "posix",    WS_STORAGE_FEAT_RANGE, posix_open_read,  posix_open_write, posix_stat,
    posix_list, posix_remove,          posix_describe,   posix_free,       posix_list_ex,
    NULL,       posix_remove_many,     posix_remove_tmp,
};

int ws_storage_posix_open(const ws_storage_config *cfg, const char *path, ws_storage **out,
                          ws_error *err)
{
    (void)cfg;
    *out = NULL;
    if (path[0] != '/')
        return ws_error_set(err, WS_ECONFIG, "repository path %s is not absolute", path);
    posix_storage *s = calloc(1, sizeof *s);
    if (!s || !(s->root = strdup(path))) {
        free(s);
        return ws_error_oom(err);
    }
    size_t n = strlen(s->root);
    while (n > 1 && s->root[n - 1] == '/')
        s->root[--n] = '\0';
    s->base.ops = &posix_ops;
    *out = &s->base;
    return 0;
}
