/*
 * drill.c — `walship drill [--backup ID|latest] [--target-...] [--query SQL --expect TEXT]
 * [--keep] [--json]` (docs/drill.md): the restore test an operator runs by hand, with the trap
 * removed.
 *
 *   1. the backup (restore's choice: restore/restore.h) restored into a scratch directory under
 *      drill-path, every tablespace mapped into it, always with archive_mode = off;
 *   2. PostgreSQL of the backup's major (drill-bindir, else /usr/lib/postgresql/<major>/bin)
 *      started there on a free port, listening on a private socket directory only; as
 *      drill-user when walship runs as root (PostgreSQL refuses root);
 *   3. waits (drill-timeout) until recovery has reached the target: paused there (a target
 *      with action pause), or done (no target: the end of the archive, which the replayed
 *      position is checked against, so that a missing segment that ended recovery early is a
 *      failure and not a pass);
 *   4. --query's first value compared with --expect;
 *   5. the server stopped, everything removed (unless --keep), also on SIGINT / SIGTERM.
 *
 * Reports the RTO: restore seconds, replay seconds, WAL replayed, total. Exit 0 passed,
 * 1 failed (the step and why), 2 usage.
 */
#include "restore/restore.h"
#include "walship/clock.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/keys.h"
#include "walship/repo/open.h"
#include "walship/storage/storage.h"
#include "walship/log.h"
#include "walship/ops/ops.h"
#include "walship/pq_dl.h"
#include "walship/timeline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

typedef struct drill {
    const ws_config *cfg;
    char scratch[PATH_MAX], pgdata[PATH_MAX], sock[PATH_MAX], log[PATH_MAX];
    char bindir[PATH_MAX];
    int port;
    uid_t uid;
    gid_t gid;
    int drop; /* run the server as uid/gid */
    int started;
    double restore_s, replay_s, total_s;
    uint64_t replayed;
    int reached;
    char step[32];
    char result[1024]; /* the query's value */
    ws_error err;
} drill;

/* ---- processes ---- */

/* Runs argv (as d->uid when dropping), waits for it; its output goes to the server log. */
static int run_wait(drill *d, char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_APPEND | O_CREAT, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (d->drop && (setgroups(0, NULL) < 0 || setgid(d->gid) < 0 || setuid(d->uid) < 0))
            _exit(126);
        if (chdir(d->scratch) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static long postmaster_pid(const drill *d)
{
    char path[PATH_MAX + 32], line[64];
    snprintf(path, sizeof path, "%s/postmaster.pid", d->pgdata);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long pid = 0;
    if (fgets(line, sizeof line, f))
        pid = strtol(line, NULL, 10);
    fclose(f);
    return pid > 0 && kill((pid_t)pid, 0) == 0 ? pid : 0;
}

/* Whether process pid's command line names something in the scratch directory. walship's own
 * processes are not dumpable (PR_SET_DUMPABLE 0: secrets), so another process of the same
 * user cannot read their cwd; their command line stays readable, and the prefetch agent's
 * process title names the PGDATA it serves ("walship: prefetch agent for DIR"). */
static int cmdline_names(const char *pid, const char *scratch)
{
    char path[300], buf[4096];
    snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    const char *at = strstr(buf, scratch);
    size_t len = strlen(scratch);
    return at && (at[len] == '/' || at[len] == ' ' || at[len] == '\0');
}

/* Processes whose working directory lies in the scratch directory (the server, the fetch
 * prefetch agent it may have started), or, where the cwd cannot be read, whose command line
 * names it. */
static int leftovers(const drill *d, int sig)
{
    DIR *p = opendir("/proc");
    if (!p)
        return 0;
    int n = 0;
    size_t len = strlen(d->scratch);
    struct dirent *e;
    while ((e = readdir(p))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char link[300], cwd[PATH_MAX];
        snprintf(link, sizeof link, "/proc/%s/cwd", e->d_name);
        ssize_t k = readlink(link, cwd, sizeof cwd - 1);
        int ours;
        if (k > 0) {
            cwd[k] = '\0';
            ours = strncmp(cwd, d->scratch, len) == 0 && (cwd[len] == '/' || cwd[len] == '\0');
        } else {
            ours = errno == EACCES && cmdline_names(e->d_name, d->scratch);
        }
        if (ours) {
            n++;
            if (sig)
                kill((pid_t)atol(e->d_name), sig);
        }
    }
    closedir(p);
    return n;
}

static void stop_server(drill *d)
{
    if (!d->started)
        return;
    char *argv[] = {NULL, "-D", d->pgdata, "-m", "fast", "-w", "-t", "60", "stop", NULL};
    char pg_ctl[PATH_MAX + 16];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", d->bindir);
    argv[0] = pg_ctl;
    if (postmaster_pid(d)) {
        run_wait(d, argv);
        long pid = postmaster_pid(d);
        if (pid)
            kill((pid_t)pid, SIGKILL);
    }
    /* the prefetch agent leaves soon after its postmaster (agent/life.h); then it is told */
    for (int i = 0; i < 50 && leftovers(d, 0); i++)
        ws_sleep(0.1);
    if (leftovers(d, SIGTERM))
        for (int i = 0; i < 30 && leftovers(d, 0); i++)
            ws_sleep(0.1);
    /* what is still there is killed, again and again until none is left: a restore_command's
     * fetch may fork its prefetch agent between two scans, and a killed process keeps its cwd
     * until the kernel has torn it down. Every process that can start another has its cwd
     * here, so once a scan finds none, none can appear (nothing the drill started outlives it) */
    for (int i = 0; i < 200 && leftovers(d, SIGKILL); i++)
        ws_sleep(0.05);
    d->started = 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int chown_cb_uid, chown_cb_gid;
static int chown_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return lchown(path, (uid_t)chown_cb_uid, (gid_t)chown_cb_gid) < 0 ? -1 : 0;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return 54320;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    int port = 54320;
    if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* The last FATAL / PANIC / ERROR line of the server log, for the reason. */
static void log_reason(const drill *d, char *out, size_t len)
{
    FILE *f = fopen(d->log, "r");
    out[0] = '\0';
    if (!f)
        return;
    char line[1024];
    int after = 0; /* the line after a FATAL: its DETAIL says why */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *m = strstr(line, "FATAL:");
        if (!m)
            m = strstr(line, "PANIC:");
        if (m) {
            snprintf(out, len, "%s", m);
            after = 1;
        } else if (after && (m = strstr(line, "DETAIL:"))) {
            size_t used = strlen(out);
            snprintf(out + used, len - used, " %s", m);
            after = 0;
        } else
            after = 0;
    }
    fclose(f);
}

/* ---- what a drill killed with SIGKILL left: cleaned by the next one ---- */

#define DRILL_PID_FILE "walship-drill.pid"

/* Every drill-path/walship-drill-* whose walship-drill.pid names a dead process: its server
 * stopped, its processes ended, the directory removed. A directory without the file (a drill
 * killed before it wrote it, or someone else's) is left alone. */
static void clean_stale(const char *base, const char *bindir_cfg, int drop, uid_t uid, gid_t gid)
{
    DIR *dir = opendir(base);
    if (!dir)
        return;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (strncmp(e->d_name, "walship-drill-", 14) != 0)
            continue;
        drill old;
        memset(&old, 0, sizeof old);
        snprintf(old.scratch, sizeof old.scratch, "%s/%s", base, e->d_name);
        char pidf[PATH_MAX + 32], line[64];
        snprintf(pidf, sizeof pidf, "%s/" DRILL_PID_FILE, old.scratch);
        FILE *f = fopen(pidf, "r");
        if (!f)
            continue;
        long pid = 0;
        char bindir[PATH_MAX] = "";
        if (fgets(line, sizeof line, f))
            pid = strtol(line, NULL, 10);
        if (fgets(bindir, sizeof bindir, f))
            bindir[strcspn(bindir, "\n")] = '\0';
        fclose(f);
        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to judge) */
        snprintf(old.pgdata, sizeof old.pgdata, "%s/pgdata", old.scratch);
        snprintf(old.log, sizeof old.log, "%s/server.log", old.scratch);
        snprintf(old.bindir, sizeof old.bindir, "%s",
                 bindir[0] ? bindir : (bindir_cfg ? bindir_cfg : ""));
        old.drop = drop;
        old.uid = uid;
        old.gid = gid;
        old.started = old.bindir[0] != '\0';
        ws_log_warn("drill: removing %s, left by a drill (pid %ld) that was killed", old.scratch,
                    pid);
        stop_server(&old);
        leftovers(&old, SIGKILL);
        nftw(old.scratch, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
    }
    closedir(dir);
}

/* ---- the end of the archive recovery from the backup should reach ---- */

typedef struct endscan {
    uint32_t tlis[64];
    int ntli;
    char newest[64][WS_WAL_NAME_MAX]; /* per timeline */
} endscan;

static int end_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    endscan *s = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    if (!base || ws_wal_parse_name(base + 1, &n, &e) < 0 || n.kind != WS_WAL_SEGMENT)
        return 0;
    int i = 0;
    while (i < s->ntli && s->tlis[i] != n.tli)
        i++;
    if (i == s->ntli) {
        if (s->ntli == 64)
            return 0;
        s->tlis[s->ntli++] = n.tli;
        s->newest[i][0] = '\0';
    }
    if (strcmp(n.name, s->newest[i]) > 0)
        snprintf(s->newest[i], sizeof s->newest[i], "%s", n.name);
    return 0;
}

/* The start LSN of the newest segment on the newest timeline whose lineage holds tli; 0 if
 * none. name receives the segment. */
static uint64_t archive_end(ws_repo *r, uint32_t tli, uint32_t seg_size, char name[64])
{
    endscan s;
    ws_error e;
    memset(&s, 0, sizeof s);
    name[0] = '\0';
    if (ws_storage_list(ws_repo_storage(r), WS_KEY_WAL_PREFIX, end_cb, &s, &e) < 0)
        return 0;
    int best = -1;
    for (int i = 0; i < s.ntli; i++) {
        ws_tl_history h;
        if (s.tlis[i] != tli &&
            (ws_tl_history_load(r, s.tlis[i], &h, &e) < 0 || !ws_tl_history_has(&h, tli, NULL)))
            continue;
        if (best < 0 || s.tlis[i] > s.tlis[best])
            best = i;
    }
    if (best < 0)
        return 0;
    ws_wal_name n;
    uint64_t segno;
    if (ws_wal_parse_name(s.newest[best], &n, &e) < 0 || ws_wal_segno(&n, seg_size, &segno) < 0)
        return 0;
    snprintf(name, 64, "%s", s.newest[best]);
    return segno * seg_size;
}

/* ---- the steps ---- */

static int fail(drill *d, const char *step, ws_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(drill *d, const char *step, ws_errcode code, const char *fmt, ...)
{
    snprintf(d->step, sizeof d->step, "%s", step);
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof d->err.msg];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ws_error_set(&d->err, code, "%s: %s", step, msg);
    return -1;
}

static int restore_step(drill *d, ws_rs_target *t, ws_repo **repos, int nrepos, int threads,
                        const ws_manifest_info **out, ws_catalog *cat, ws_rs_plan *plan,
                        int *repo_index)
{
    ws_error e;
    ws_error_clear(&e);
    for (int i = 0; i < nrepos; i++) {
        ws_catalog c;
        if (ws_catalog_load(repos[i], &c, &e) < 0)
            continue;
        if (c.n > 0) {
            *cat = c;
            *repo_index = i;
            break;
        }
        ws_catalog_free(&c);
    }
    if (*repo_index < 0)
        return fail(d, "restore", WS_ENOENT, "no repository holds a complete backup%s%s",
                    e.msg[0] ? ": " : "", e.msg);
    ws_repo *r = repos[*repo_index];
    char why[256], command[4096];
    const ws_manifest_info *b = ws_rs_choose_backup(
        r, cat, ws_config_get(d->cfg, "backup") ? ws_config_get(d->cfg, "backup") : "latest", t,
        why, sizeof why, &e);
    if (!b)
        return fail(d, "restore", e.code, "%s", e.msg);
    *out = b;
    /* every tablespace into the scratch directory: a drill never writes where the cluster's own
     * tablespaces live */
    char map[8192] = "";
    size_t used = 0;
    if (ws_rs_plan_load(r, b, d->pgdata, NULL, plan, &e) < 0)
        return fail(d, "restore", e.code, "%s", e.msg);
    for (int i = 0; i < plan->nts; i++)
        used +=
            (size_t)snprintf(map + used, sizeof map - used, "%s%" PRIu32 "=%s/tablespace/%" PRIu32,
                             i ? "," : "", plan->ts[i].oid, d->scratch, plan->ts[i].oid);
    if (plan->nts) {
        ws_rs_plan_free(plan);
        memset(plan, 0, sizeof *plan);
        if (used >= sizeof map || ws_rs_plan_load(r, b, d->pgdata, map, plan, &e) < 0)
            return fail(d, "restore", e.code, "%s", e.msg);
    }
    double t0 = ws_now();
    if (ws_rs_check_gaps(r, b, t, &e) < 0 || ws_rs_check_targets(plan, 0, &e) < 0 ||
        ws_rs_restore_command(d->cfg, command, sizeof command, &e) < 0 ||
        ws_rs_prepare(plan, 0, &e) < 0 ||
        ws_rs_extract(plan, d->cfg, repo_index, 1, threads, &e) < 0 ||
        ws_rs_recovery_write(plan, t, command, 0, &e) < 0 || ws_rs_finish(plan, &e) < 0)
        return fail(d, "restore", e.code, "%s", e.msg);
    d->restore_s = ws_now() - t0;
    ws_log_info("drill: restored backup %s (%s) into %s in %.1f s", b->id, why, d->pgdata,
                d->restore_s);
    return 0;
}

static int start_step(drill *d, const ws_manifest_info *b)
{
    int major = b->pg_version_num / 10000;
    const char *bindir = ws_config_get(d->cfg, "drill-bindir");
    if (bindir)
        snprintf(d->bindir, sizeof d->bindir, "%s", bindir);
    else
        snprintf(d->bindir, sizeof d->bindir, "/usr/lib/postgresql/%d/bin", major);
    char pg_ctl[PATH_MAX + 16], opts[PATH_MAX + 512];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", d->bindir);
    if (access(pg_ctl, X_OK) < 0)
        return fail(d, "start", WS_ECONFIG,
                    "no PostgreSQL %d server binaries in %s (the backup is of PostgreSQL %d): set "
                    "drill-bindir",
                    major, d->bindir, major);
    if (d->drop) {
        chown_cb_uid = (int)d->uid;
        chown_cb_gid = (int)d->gid;
        if (nftw(d->scratch, chown_cb, 32, FTW_PHYS) < 0)
            return fail(d, "start", WS_EIO, "cannot hand %s to the server's user: %s", d->scratch,
                        strerror(errno));
    }
    char pidf[PATH_MAX + 32];
    snprintf(pidf, sizeof pidf, "%s/" DRILL_PID_FILE, d->scratch);
    FILE *pf = fopen(pidf, "a"); /* the next drill stops this server if we are killed */
    if (pf) {
        fprintf(pf, "%s\n", d->bindir);
        fclose(pf);
    }
    d->port = free_port();
    /* command-line settings win over postgresql.conf and postgresql.auto.conf: a private
     * socket directory, no TCP, no archiving, read-only queries during recovery */
    snprintf(opts, sizeof opts,
             "-p %d -k %s -c listen_addresses='' -c archive_mode=off -c hot_standby=on "
             "-c logging_collector=off -c shared_preload_libraries=''",
             d->port, d->sock);
    char *argv[] = {pg_ctl, "-D", d->pgdata, "-l", d->log, "-o", opts, "-W", "start", NULL};
    d->started = 1;
    int rc = run_wait(d, argv);
    if (rc != 0)
        return fail(d, "start", WS_EIO, "pg_ctl start exited %d (server log %s)", rc, d->log);
    return 0;
}

static int wait_step(drill *d, const ws_manifest_info *b, const ws_rs_target *t, ws_repo *r,
                     double timeout)
{
    double t0 = ws_now(), deadline = t0 + timeout;
    char conninfo[PATH_MAX + 64];
    snprintf(conninfo, sizeof conninfo, "host=%s port=%d dbname=postgres", d->sock, d->port);
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {conninfo, "walship drill", NULL};
    char end_name[64];
    uint64_t end =
        t->kind == WS_RS_TARGET_NONE ? archive_end(r, b->stop_tli, b->seg_size, end_name) : 0;
    for (;;) {
        if (interrupted)
            return fail(d, "recovery", WS_EINTERNAL, "interrupted by signal %d", (int)interrupted);
        if (ws_now() > deadline)
            return fail(d, "recovery", WS_ETRANSIENT,
                        "the target was not reached within drill-timeout (%.0f s)", timeout);
        if (!postmaster_pid(d) && ws_now() - t0 > 2) {
            char why[1024];
            log_reason(d, why, sizeof why);
            d->started = 0;
            return fail(d, "recovery", WS_ECORRUPT, "the server stopped before the target: %s",
                        why[0] ? why : "see its log");
        }
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        if (c && PQstatus(c) == CONNECTION_OK) {
            PGresult *res = PQexec(c, "SELECT pg_is_in_recovery(), "
                                      "CASE WHEN pg_is_in_recovery() THEN "
                                      "pg_is_wal_replay_paused() ELSE false END, "
                                      "coalesce(pg_last_wal_replay_lsn()::text, '')");
            int done = 0;
            if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
                int in_rec = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
                int paused = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
                uint64_t lsn = 0;
                ws_wal_parse_lsn(PQgetvalue(res, 0, 2), &lsn);
                if (!in_rec || (paused && t->kind != WS_RS_TARGET_NONE)) {
                    done = 1;
                    d->replay_s = ws_now() - t0;
                    d->replayed = lsn > b->start_lsn ? lsn - b->start_lsn : 0;
                    char l1[WS_LSN_TEXT], l2[WS_LSN_TEXT];
                    if (end && lsn < end) {
                        PQclear(res);
                        PQfinish(c);
                        /* the first segment from there on that the repository lacks */
                        char seg[32] = "", key[128];
                        uint32_t tli = b->stop_tli;
                        for (uint64_t sn = ws_wal_lsn_segno(lsn, b->seg_size);
                             !seg[0] && sn <= ws_wal_lsn_segno(end, b->seg_size); sn++) {
                            char name[32];
                            ws_wal_name wn;
                            ws_objhdr oh;
                            ws_error e;
                            ws_wal_format_segment(name, tli, sn, b->seg_size);
                            if (ws_wal_parse_name(name, &wn, &e) == 0 &&
                                ws_repo_wal_key(&wn, key, sizeof key) == 0 &&
                                ws_repo_obj_header(r, key, &oh, &e) < 0)
                                snprintf(seg, sizeof seg, "%s", name);
                        }
                        return fail(d, "recovery", WS_ENOENT,
                                    "recovery ended at %s, before the end of the archive (%s, "
                                    "%s): %s%s%s",
                                    ws_wal_lsn_text(lsn, l1), end_name, ws_wal_lsn_text(end, l2),
                                    seg[0] ? "segment " : "the server could not read on", seg,
                                    seg[0] ? " is missing from the repository" : "");
                    }
                    d->reached = 1;
                }
            }
            PQclear(res);
            PQfinish(c);
            if (done)
                return 0;
        } else if (c)
            PQfinish(c);
        ws_sleep(0.2);
    }
}

static int query_step(drill *d, const char *query, const char *expect)
{
    char conninfo[PATH_MAX + 64];
    snprintf(conninfo, sizeof conninfo, "host=%s port=%d dbname=postgres", d->sock, d->port);
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {conninfo, "walship drill", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        int r = fail(d, "query", WS_ETRANSIENT, "cannot connect: %s",
                     c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return r;
    }
    PGresult *res = PQexec(c, query);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 || PQnfields(res) < 1)
        rc = fail(d, "query", WS_EINVAL, "the query failed or returned no row: %s",
                  PQresultErrorMessage(res));
    else {
        snprintf(d->result, sizeof d->result, "%s", PQgetvalue(res, 0, 0));
        if (expect && strcmp(d->result, expect) != 0)
            rc = fail(d, "query", WS_EMISMATCH, "returned \"%s\", expected \"%s\"", d->result,
                      expect);
    }
    PQclear(res);
    PQfinish(c);
    return rc;
}

int ws_cmd_drill(const ws_config *cfg)
{
    drill d;
    memset(&d, 0, sizeof d);
    d.cfg = cfg;
    ws_error_clear(&d.err);
    ws_error err;
    ws_error_clear(&err);
    const char *query = ws_config_get(cfg, "query"), *expect = ws_config_get(cfg, "expect");
    int keep = ws_config_flag(cfg, "keep"), json = ws_config_flag(cfg, "json");
    if (ws_config_nargs(cfg) != 0 || (expect && !query)) {
        ws_log_error("usage: walship drill [--backup ID|latest] [--target-...] [--query SQL "
                     "[--expect TEXT]] [--keep] [--json]");
        return WS_EXIT_USAGE;
    }
    ws_rs_target t;
    long threads;
    double timeout;
    if (ws_rs_target_parse(cfg, &t, &err) < 0 ||
        ws_config_get_long(cfg, "restore-parallel", 1, 32, &threads, &err) < 0 ||
        ws_config_get_seconds(cfg, "drill-timeout", &timeout, &err) < 0 ||
        ws_ops_config_check(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    t.archive_off = 1; /* a drill never archives into the repositories */
    if (t.action && strcmp(t.action, "shutdown") == 0) {
        ws_log_error("--target-action shutdown: the drill's server would stop at the target, "
                     "before it can be checked; use pause (the default) or promote");
        return WS_EXIT_USAGE;
    }
    if (t.kind != WS_RS_TARGET_NONE && !t.action)
        t.action = "pause"; /* hot_standby on: queries run while recovery waits at the target */
    if (geteuid() == 0) {
        const char *user = ws_config_get(cfg, "drill-user");
        struct passwd *pw = getpwnam(user ? user : "postgres");
        if (!pw) {
            ws_log_error("running as root: PostgreSQL refuses root, and there is no user \"%s\" "
                         "to run the drill's server as (drill-user)",
                         user ? user : "postgres");
            return WS_EXIT_USAGE;
        }
        d.uid = pw->pw_uid;
        d.gid = pw->pw_gid;
        d.drop = 1;
    }
    const char *base = ws_config_get(cfg, "drill-path");
    clean_stale(base ? base : "/var/tmp", ws_config_get(cfg, "drill-bindir"), d.drop, d.uid, d.gid);
    snprintf(d.scratch, sizeof d.scratch, "%s/walship-drill-XXXXXX", base ? base : "/var/tmp");
    if (!mkdtemp(d.scratch)) {
        ws_log_error("cannot create a scratch directory under %s (drill-path): %s",
                     base ? base : "/var/tmp", strerror(errno));
        return WS_EXIT_FAIL;
    }
    {
        char pidf[PATH_MAX + 32];
        snprintf(pidf, sizeof pidf, "%s/" DRILL_PID_FILE, d.scratch);
        FILE *pf = fopen(pidf, "w");
        if (pf) {
            fprintf(pf, "%ld\n", (long)getpid());
            fclose(pf);
        }
    }
    snprintf(d.pgdata, sizeof d.pgdata, "%s/pgdata", d.scratch);
    snprintf(d.sock, sizeof d.sock, "%s/sock", d.scratch);
    snprintf(d.log, sizeof d.log, "%s/server.log", d.scratch);
    mkdir(d.sock, 0700);
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    double w0 = ws_ops_wallclock(), t0 = ws_now();
    ws_repo **repos = NULL;
    int nrepos = 0, repo_index = -1, rc = WS_EXIT_FAIL;
    ws_catalog cat;
    memset(&cat, 0, sizeof cat);
    ws_rs_plan plan;
    memset(&plan, 0, sizeof plan);
    const ws_manifest_info *b = NULL;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        fail(&d, "restore", err.code, "%s", err.msg);
        if (err.code == WS_ECONFIG)
            rc = WS_EXIT_USAGE;
        goto out;
    }
    if (ws_pq_load(&err) < 0) {
        fail(&d, "start", err.code, "%s", err.msg);
        goto out;
    }
    if (restore_step(&d, &t, repos, nrepos, (int)threads, &b, &cat, &plan, &repo_index) < 0 ||
        start_step(&d, b) < 0 || wait_step(&d, b, &t, repos[repo_index], timeout) < 0 ||
        (query && query_step(&d, query, expect) < 0))
        goto out;
    rc = WS_EXIT_OK;
out:
    stop_server(&d);
    d.total_s = ws_now() - t0;
    if (!keep)
        nftw(d.scratch, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc != WS_EXIT_OK && d.err.msg[0])
        ws_log_err(WS_LOG_ERROR, &d.err);
    if (keep)
        ws_log_info("drill: kept %s (--keep): remove it yourself", d.scratch);
    char wal[32];
    ws_ops_human_bytes(d.replayed, wal);
    if (json) {
        printf("{\"ok\":%s,\"backup\":", rc == WS_EXIT_OK ? "true" : "false");
        if (b)
            ws_ops_json_str(stdout, b->id);
        else
            printf("null");
        printf(",\"failed_step\":");
        if (rc != WS_EXIT_OK)
            ws_ops_json_str(stdout, d.step[0] ? d.step : "restore");
        else
            printf("null");
        printf(",\"error\":");
        if (rc != WS_EXIT_OK)
            ws_ops_json_str(stdout, d.err.msg);
        else
            printf("null");
        printf(",\"target_reached\":%s,\"restore_seconds\":%.3f,\"replay_seconds\":%.3f,"
               "\"total_seconds\":%.3f,\"wal_replayed_bytes\":%" PRIu64 ",\"query_result\":",
               d.reached ? "true" : "false", d.restore_s, d.replay_s, d.total_s, d.replayed);
        if (query && d.reached && d.result[0])
            ws_ops_json_str(stdout, d.result);
        else
            printf("null");
        printf(",\"kept\":");
        if (keep)
            ws_ops_json_str(stdout, d.scratch);
        else
            printf("null");
        printf("}\n");
    } else {
        printf("drill %s: backup %s; restore %.1f s, replay %.1f s (%s of WAL), total %.1f s; "
               "target %s%s%s\n",
               rc == WS_EXIT_OK ? "PASSED" : "FAILED", b ? b->id : "-", d.restore_s, d.replay_s,
               wal, d.total_s, d.reached ? "reached" : "not reached",
               query && rc == WS_EXIT_OK ? "; query returned " : "",
               query && rc == WS_EXIT_OK ? d.result : "");
        if (rc != WS_EXIT_OK)
            printf("failed at %s\n", d.err.msg);
    }
    fflush(stdout);
    char summary[1200], rs[32], ps[32], ts[32], wb[32];
    if (rc == WS_EXIT_OK)
        snprintf(summary, sizeof summary,
                 "drill of backup %s passed: restore %.1f s, replay %.1f s, total %.1f s",
                 b ? b->id : "-", d.restore_s, d.replay_s, d.total_s);
    else
        snprintf(summary, sizeof summary, "drill failed at %s", d.err.msg);
    snprintf(rs, sizeof rs, "%.3f", d.restore_s);
    snprintf(ps, sizeof ps, "%.3f", d.replay_s);
    snprintf(ts, sizeof ts, "%.3f", d.total_s);
    snprintf(wb, sizeof wb, "%" PRIu64, d.replayed);
    ws_ops_result res = {"drill", rc == WS_EXIT_OK, w0, ws_ops_wallclock(), summary, {{0}}, 0};
    ws_ops_field_add(&res, "backup_id", b ? b->id : "", 0);
    ws_ops_field_add(&res, "restore_seconds", rs, 1);
    ws_ops_field_add(&res, "replay_seconds", ps, 1);
    ws_ops_field_add(&res, "total_seconds", ts, 1);
    ws_ops_field_add(&res, "wal_replayed_bytes", wb, 1);
    ws_ops_report(cfg, &res);
    ws_rs_plan_free(&plan);
    ws_catalog_free(&cat);
    ws_cmd_close_repos(repos, nrepos);
    if (interrupted)
        return 128 + (int)interrupted;
    return rc;
}
