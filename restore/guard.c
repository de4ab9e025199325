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
