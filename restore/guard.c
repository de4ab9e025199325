/*
 * guard.c — what restore may touch, decided before anything is written.
 *
 * PGDATA is restore's own unless a postmaster runs there. Outside PGDATA, restore writes only
 * into the tablespace directories of the plan, and --delta also removes and rewrites files
 * there: a directory that holds files is restore's only when this PGDATA's own
 * pg_tblspc/<oid> link already points to it or the operator named it with --tablespace-map.
 * Otherwise it is likely another cluster's (the backup's source still uses the original
 * location), and delta would delete that cluster's relations.
 *
 * A running cluster's tablespace is never touched, mapped or not. A tablespace directory does
 * not name its cluster, so the running clusters are found through /proc: every PostgreSQL
 * process runs in its data directory (the postmaster chdirs there), whose postmaster.pid names
 * a live postmaster and whose pg_tblspc links name its tablespaces. Processes of other users
 * cannot be inspected; their files cannot be written by this user either, unless restore runs
 * as root (docs/restore.md says not to).
 */
#include "restore/restore.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 1 if dir has entries, 0 if empty, -1 (errno) if it cannot be read; ENOENT is empty. */
static int dir_has_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            found = 1;
            break;
        }
    closedir(d);
    return found;
}

/* The pid of a live postmaster whose postmaster.pid is in dir, else 0. */
static long live_postmaster(const char *dir)
{
    char pidfile[PATH_MAX];
    if (snprintf(pidfile, sizeof pidfile, "%s/postmaster.pid", dir) >= (int)sizeof pidfile)
        return 0;
    FILE *f = fopen(pidfile, "r");
    if (!f)
        return 0;
    long pid = 0;
    int got = fscanf(f, "%ld", &pid);
    fclose(f);
    if (got == 1 && pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
        return pid;
    return 0;
}

/* Whether link (a symlink) resolves to the directory whose real path is real. */
static int link_resolves_to(const char *link, const char *real)
{
    struct stat st;
    char got[PATH_MAX];
    return lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && realpath(link, got) &&
           strcmp(got, real) == 0;
}

/* Whether one of datadir's pg_tblspc links resolves to real. */
static int has_tablespace(const char *datadir, const char *real)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/pg_tblspc", datadir) >= (int)sizeof dir)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        char link[PATH_MAX];
        if (de->d_name[0] != '.' &&
            snprintf(link, sizeof link, "%s/%s", dir, de->d_name) < (int)sizeof link)
            found = link_resolves_to(link, real);
    }
    closedir(d);
    return found;
}

/* Whether /proc/<pid> is a PostgreSQL process (its comm: "postgres", or "postmaster"). */
static int is_postgres(const char *pid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%s/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(comm, sizeof comm, f) != NULL;
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    return ok && (strcmp(comm, "postgres") == 0 || strcmp(comm, "postmaster") == 0);
}

/* The data directory (into owner) and postmaster pid of a running cluster that has the
 * directory real as a tablespace; 0 if none is found. */
static long running_owner(const char *real, char *owner, size_t len)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    long pm = 0;
    struct dirent *de;
    char last[PATH_MAX] = ""; /* a cluster's processes share their cwd: look at it once */
    while (!pm && (de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9' || !is_postgres(de->d_name))
            continue;
        char cwdlink[64], cwd[PATH_MAX];
        snprintf(cwdlink, sizeof cwdlink, "/proc/%s/cwd", de->d_name);
        ssize_t n = readlink(cwdlink, cwd, sizeof cwd - 1);
        if (n <= 0)
            continue;
        cwd[n] = '\0';
        if (strcmp(cwd, last) == 0)
            continue;
        snprintf(last, sizeof last, "%s", cwd);
        long pid = live_postmaster(cwd);
        if (pid && has_tablespace(cwd, real)) {
            pm = pid;
            snprintf(owner, len, "%s", cwd);
        }
    }
    closedir(d);
    return pm;
}

static int check_pgdata(const ws_rs_plan *p, int delta, ws_error *err)
{
    struct stat st;
    if (stat(p->pgdata, &st) == 0 && !S_ISDIR(st.st_mode))
        return ws_error_set(err, WS_EINVAL, "%s exists and is not a directory", p->pgdata);
    long pid = live_postmaster(p->pgdata);
    if (pid) {
        ws_error_set(err, WS_EINVAL, "a postmaster (pid %ld) is running in %s", pid, p->pgdata);
        ws_error_hint(err,
                      "stop it first (pg_ctl -D %s stop); restore never writes under a "
                      "running server",
                      p->pgdata);
        return -1;
    }
    if (delta)
        return 0;
    int has = dir_has_entries(p->pgdata);
    if (has < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot read %s", p->pgdata);
    if (has) {
        ws_error_set(err, WS_EINVAL, "%s is not empty", p->pgdata);
        ws_error_hint(err, "restore into an empty directory, or add --delta to restore over it "
                           "(files that already match the backup are kept, the rest rewritten "
                           "or removed)");
        return -1;
    }
    return 0;
}

/* One tablespace directory that holds files. */
static int check_tablespace(const ws_rs_plan *p, const ws_rs_tablespace *ts, int delta,
                            ws_error *err)
{
    char real[PATH_MAX], link[PATH_MAX], owner[PATH_MAX];
    if (!realpath(ts->dest, real))
        return ws_error_errno(err, WS_EIO, errno, "cannot resolve %s", ts->dest);
    long pm = running_owner(real, owner, sizeof owner);
    if (pm) {
        ws_error_set(err, WS_EINVAL,
                     "tablespace %" PRIu32 "'s directory %s is a tablespace of the running "
                     "cluster in %s (postmaster pid %ld): restore never touches it",
                     ts->oid, ts->dest, owner, pm);
        ws_error_hint(
            err, "give tablespace %" PRIu32 " another place with --tablespace-map %" PRIu32 "=DIR",
            ts->oid, ts->oid);
        return -1;
    }
    snprintf(link, sizeof link, "%s/pg_tblspc/%" PRIu32, p->pgdata, ts->oid);
    int own = link_resolves_to(link, real);
    if (!delta) {
        ws_error_set(err, WS_EINVAL, "tablespace %" PRIu32 "'s directory %s is not empty", ts->oid,
                     ts->dest);
        if (own)
            ws_error_hint(err,
                          "it is this data directory's own (pg_tblspc/%" PRIu32 " points to it): "
                          "add --delta to restore over it, or give it another place with "
                          "--tablespace-map %" PRIu32 "=DIR",
                          ts->oid, ts->oid);
        else
            ws_error_hint(err,
                          "give it another place with --tablespace-map %" PRIu32 "=DIR (it is "
                          "not this data directory's: it may be another cluster's)",
                          ts->oid);
        return -1;
    }
    if (own || ts->mapped)
        return 0;
    ws_error_set(err, WS_EINVAL,
                 "tablespace %" PRIu32 "'s directory %s is not empty and not this data "
                 "directory's own (%s does not point to it): --delta removes and rewrites files "
                 "only in PGDATA and its own tablespaces, never in another cluster's",
                 ts->oid, ts->dest, link);
    ws_error_hint(err,
                  "give it another place with --tablespace-map %" PRIu32 "=DIR (naming the "
                  "directory itself there says it is this data directory's to rewrite)",
                  ts->oid);
    return -1;
}

int ws_rs_check_targets(const ws_rs_plan *p, int delta, ws_error *err)
{
    if (check_pgdata(p, delta, err) < 0)
        return -1;
    for (int i = 0; i < p->nts; i++) {
        int has = dir_has_entries(p->ts[i].dest);
        if (has < 0)
            return ws_error_errno(err, WS_EIO, errno, "cannot read %s", p->ts[i].dest);
        if (has && check_tablespace(p, &p->ts[i], delta, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- the plan as a whole, before the first write ---- */

/* path made absolute through the longest existing ancestor's real path (symlinks resolved),
 * the rest appended as given: where a write would really land. */
static int resolved(const char *path, char *out, size_t len)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    size_t cut = strlen(buf);
    for (;;) {
        char save = buf[cut];
        buf[cut] = '\0';
        char real[PATH_MAX];
        if (realpath(cut ? buf : "/", real)) {
            buf[cut] = save;
            const char *rest = buf + cut;
            int n = snprintf(out, len, "%s%s", strcmp(real, "/") == 0 && *rest ? "" : real, rest);
            return n < 0 || (size_t)n >= len ? -1 : 0;
        }
        buf[cut] = save;
        if (cut == 0)
            return -1;
        while (cut > 0 && buf[--cut] != '/')
            ;
    }
}

/* Whether a lies in b or is b. */
static int within(const char *a, const char *b)
{
    size_t n = strlen(b);
    if (strcmp(b, "/") == 0)
        return 1;
    return strncmp(a, b, n) == 0 && (a[n] == '/' || a[n] == '\0');
}

static int check_locations(const ws_rs_plan *p, ws_error *err)
{
    char pg[PATH_MAX], *real = calloc((size_t)p->nts + 1, PATH_MAX);
    if (!real)
        return ws_error_oom(err);
    int rc = 0;
    if (resolved(p->pgdata, pg, sizeof pg) < 0)
        rc = ws_error_set(err, WS_EINVAL, "cannot resolve %s", p->pgdata);
    for (int i = 0; rc == 0 && i < p->nts; i++) {
        const ws_rs_tablespace *ts = &p->ts[i];
        char *ri = real + (size_t)i * PATH_MAX;
        if (resolved(ts->dest, ri, PATH_MAX) < 0) {
            rc = ws_error_set(err, WS_EINVAL, "cannot resolve %s", ts->dest);
        } else if (within(ri, pg) || within(pg, ri)) {
            rc = ws_error_set(err, WS_ECORRUPT,
                              "tablespace %" PRIu32 "'s directory %s %s the data directory %s",
                              ts->oid, ts->dest, within(ri, pg) ? "lies in" : "holds", p->pgdata);
        }
        for (int k = 0; rc == 0 && k < i; k++)
            if (within(ri, real + (size_t)k * PATH_MAX) || within(real + (size_t)k * PATH_MAX, ri))
                rc = ws_error_set(err, WS_ECORRUPT,
                                  "the directories of tablespaces %" PRIu32 " (%s) and %" PRIu32
                                  " (%s) lie in one another",
                                  p->ts[k].oid, p->ts[k].dest, ts->oid, ts->dest);
    }
    if (rc < 0 && err->code == WS_ECORRUPT)
        ws_error_hint(err, "a backup of PostgreSQL cannot have that: the manifest was altered, or "
                           "--tablespace-map / --pgdata name such a place");
    free(real);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* No two entries land on one name (the held files' temporary names included). */
static int check_unique(const ws_rs_plan *p, ws_error *err)
{
    char **names = calloc((size_t)p->n * 2 + 1, sizeof *names);
    if (!names)
        return ws_error_oom(err);
    size_t n = 0;
    for (int i = 0; i < p->n; i++) {
        names[n++] = p->e[i].dest;
        if (p->e[i].final_dest)
            names[n++] = p->e[i].final_dest;
    }
    qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            rc = ws_error_set(err, WS_ECORRUPT, "the manifest has %s twice", names[i]);
    free(names);
    return rc;
}

/* PostgreSQL's modes, whatever the manifest says: 0700/0600, or 0750/0640 when the backup's
 * data directory allowed group access (initdb -g), which PostgreSQL itself reads from the
 * directory's mode: the global directory exactly 0750 (PostgreSQL accepts 0700 or 0750 and
 * nothing else). The manifest's other bits (0777, setuid, sticky) are never applied. */
static void decide_modes(ws_rs_plan *p)
{
    p->group_access = 0;
    for (int i = 0; i < p->n; i++)
        if (p->e[i].kind == WS_MANIFEST_DIR && p->e[i].tablespace == 0 &&
            strcmp(p->e[i].path, "global") == 0)
            p->group_access = (p->e[i].mode & 07777) == 0750;
    for (int i = 0; i < p->n; i++) {
        ws_rs_entry *e = &p->e[i];
        if (e->kind == WS_MANIFEST_DIR)
            e->mode = p->group_access ? 0750 : 0700;
        else
            e->mode = p->group_access ? 0640 : 0600;
    }
}

int ws_rs_plan_validate(ws_rs_plan *p, ws_error *err)
{
    for (int i = 0; i < p->n; i++) {
        const ws_rs_entry *e = &p->e[i];
        ws_manifest_entry me;
        memset(&me, 0, sizeof me);
        me.kind = e->kind;
        me.tablespace = e->tablespace;
        snprintf(me.path, sizeof me.path, "%s", e->path);
        if (e->tablespace && ws_manifest_check_entry(&p->info, &me, err) < 0)
            return -1;
    }
    if (check_locations(p, err) < 0 || check_unique(p, err) < 0 || ws_rs_check_extents(p, err) < 0)
        return -1;
    decide_modes(p);
    return 0;
}
