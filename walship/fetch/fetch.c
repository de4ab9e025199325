/*
 * fetch.c — `walship fetch WALNAME DESTPATH`, PostgreSQL's restore_command.
 *
 * One direct lookup per repository, in order. The object is decompressed and verified
 * (length, SHA-256, and for segments the page header against the requested name) into a
 * temporary file beside DESTPATH, which is fsync'd and renamed into place only then.
 *
 * Exit codes carry PostgreSQL's meaning: 0 restored; 1 absent everywhere (end of archive,
 * or a timeline probe); 126 for anything else once the retry deadline has passed, so that
 * archive recovery aborts instead of promoting early on a file that exists but could not
 * be read (the verified read itself is read.c, shared with the prefetch agent). In standby mode
 * (standby.signal in the cwd, which is PGDATA) PostgreSQL keeps retrying after any non-zero status,
 * so there a failure is logged and exits 1.
 *
 * Nothing is absent until the repository is known to be the right one: each repository's
 * identity (walship.repo) is read first, once per process. A missing one (an unmounted NAS
 * mount point, a wrong bucket or prefix) is an outage, retried until fetch-timeout, never
 * "absent"; one of another database system (the PGDATA's pg_control, when fetch runs in a
 * PGDATA as restore_command does) fails at once. Every segment's system identifier is checked
 * against the identity's. fetch-timeout is the deadline of every wait inside fetch: the
 * storage's retries and transfers are bounded by what is left of it.
 *
 * A fetch killed by PostgreSQL's shutdown (SIGTERM, SIGQUIT, SIGINT) removes its temporary
 * file before it dies of the signal; one killed harder (SIGKILL) leaves it, and the next
 * fetch into the same directory removes it once its pid is dead.
 */
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/fetch/prefetch.h"
#include "walship/fetch/read.h"
#include "walship/fsutil.h"
#include "walship/log.h"
#include "walship/repo/open.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef enum { TRY_OK, TRY_ABSENT, TRY_RETRY, TRY_FAILED } try_result;

/* ---- the temporary file: removed on a shutdown signal, and after a dead fetch ---- */

static char tmp_path[PATH_MAX];
static volatile sig_atomic_t tmp_live;

/* Async-signal-safe: unlink, sigaction and raise only. Dying of the signal itself (not
 * exit 1) tells PostgreSQL that the command was killed, as it expects at shutdown. */
static void on_shutdown_signal(int sig)
{
    if (tmp_live)
        unlink(tmp_path);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    raise(sig);
}

static void catch_shutdown_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGQUIT, SIGINT, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_shutdown_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* The pid of a temporary file name "<something>.walship.<pid>.tmp", exactly; 0 if it is not
 * one. */
static long tmp_pid(const char *fname)
{
    static const char mid[] = ".walship.", end[] = ".tmp";
    size_t n = strlen(fname);
    if (n < sizeof mid + sizeof end || strcmp(fname + n - (sizeof end - 1), end) != 0)
        return 0;
    size_t d = n - (sizeof end - 1); /* one past the last digit */
    size_t b = d;
    while (b > 0 && fname[b - 1] >= '0' && fname[b - 1] <= '9')
        b--;
    if (b == d || d - b > 9 || b < sizeof mid || fname[b] == '0')
        return 0;
    if (strncmp(fname + b - (sizeof mid - 1), mid, sizeof mid - 1) != 0)
        return 0;
    return strtol(fname + b, NULL, 10);
}

/* Removes the temporary files of fetches that died (SIGKILL, a crash) from dest's directory:
 * those whose pid is not alive. A live pid's file is kept, whoever it is. */
static void remove_stale_tmps(const char *dest)
{
    char dir[PATH_MAX];
    ws_dirname(dest, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        long pid = tmp_pid(de->d_name);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (EPERM: alive as another user) */
        char path[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path ||
            lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlink(path) == 0)
            ws_log_info("removed %s, left by a fetch (pid %ld) that is gone", path, pid);
    }
    closedir(d);
}

/* ---- which repository ---- */

/* The system identifier in ./global/pg_control when the cwd is a PGDATA (restore_command
 * runs there), else 0. ControlFileData starts with it, in the machine's byte order. */
static uint64_t cluster_sysid(void)
{
    if (access("PG_VERSION", F_OK) != 0)
        return 0;
    int fd = open("global/pg_control", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    uint64_t sysid = 0;
    if (pread(fd, &sysid, sizeof sysid, 0) != (ssize_t)sizeof sysid)
        sysid = 0;
    close(fd);
    return sysid;
}

/* The repository's identity, checked against the cluster's when it is known. */
static try_result check_repo(ws_repo *repo, uint64_t cluster, ws_repo_identity *id, ws_error *err)
{
    if (ws_repo_identity_require(repo, id, err) < 0)
        return err->code == WS_ETRANSIENT ? TRY_RETRY : TRY_FAILED;
    if (cluster && id->sysid != cluster) {
        ws_error_set(err, WS_EMISMATCH,
                     "repository %s belongs to database system %" PRIu64
                     ", not to this cluster's %" PRIu64 " (global/pg_control)",
                     ws_repo_describe(repo), id->sysid, cluster);
        ws_error_hint(err, "restore_command names another cluster's repository; check repo in "
                           "the config");
        return TRY_FAILED;
    }
    return TRY_OK;
}

/* Restores name from one repository into dest via a temporary file. */
static try_result fetch_from(ws_repo *repo, const ws_wal_name *name, const char *key,
                             const char *dest, uint64_t cluster, ws_error *err)
{
    ws_repo_identity id;
    try_result tr = check_repo(repo, cluster, &id, err);
    if (tr != TRY_OK)
        return tr;
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.walship.%ld.tmp", dest, (long)getpid()) >=
        sizeof tmp) {
        ws_error_set(err, WS_EINVAL, "destination path %s is too long", dest);
        return TRY_FAILED;
    }
    memcpy(tmp_path, tmp, sizeof tmp);
    tmp_live = 1;
    unlink(tmp);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        tmp_live = 0;
        ws_error_errno(err, WS_EIO, errno, "cannot create %s", tmp);
        return TRY_FAILED;
    }
    ws_objhdr h;
    int rc = ws_fetch_read(repo, name, key, fd, tmp, id.sysid, &h, err);
    if (rc == 0 && fsync(fd) < 0)
        rc = ws_error_errno(err, WS_EIO, errno, "cannot fsync %s", tmp);
    if (close(fd) < 0 && rc == 0)
        rc = ws_error_errno(err, WS_EIO, errno, "cannot close %s", tmp);
    if (rc == 0 && rename(tmp, dest) < 0)
        rc = ws_error_errno(err, WS_EIO, errno, "cannot rename %s to %s", tmp, dest);
    if (rc < 0)
        unlink(tmp);
    tmp_live = 0;
    if (rc < 0) {
        if (err->code == WS_ENOENT)
            return TRY_ABSENT;
        return err->code == WS_ETRANSIENT ? TRY_RETRY : TRY_FAILED;
    }
    char dir[PATH_MAX];
    ws_dirname(dest, dir, sizeof dir);
    if (ws_fsync_dir(dir, err) < 0)
        ws_log(WS_LOG_WARN, "%s", err->msg); /* the file is complete; only its name may not be */
    return TRY_OK;
}

int ws_cmd_fetch(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 2) {
        ws_log_error("usage: walship fetch WALNAME DESTPATH (restore_command = 'walship fetch "
                     "%%f %%p')");
        return WS_EXIT_USAGE;
    }
    const char *wal = ws_config_arg(cfg, 0), *dest = ws_config_arg(cfg, 1);
    int standby = access("standby.signal", F_OK) == 0;
    int fatal = standby ? WS_EXIT_FAIL : WS_EXIT_FETCH_FATAL;
    double deadline;
    if (ws_config_get_seconds(cfg, "fetch-timeout", &deadline, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    ws_wal_name name;
    if (ws_wal_parse_name(wal, &name, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    double t0 = ws_now();
    int agent_exit = 0, pf = ws_prefetch_fetch(cfg, &name, dest, &agent_exit);
    switch (pf) {
    case WS_PREFETCH_SERVED:
        return WS_EXIT_OK;
    case WS_PREFETCH_AGENT:
        return agent_exit; /* the forked prefetch agent, done */
    case WS_PREFETCH_MISS:
    case WS_PREFETCH_PENDING:
        break;
    default:
        return WS_EXIT_USAGE;
    }
    /* A miss: this fetch writes a temporary file into dest's directory; the ones left by
     * fetches that died go first (a prefetch hit writes none and does not look). */
    remove_stale_tmps(dest);
    catch_shutdown_signals(); /* not before: a forked prefetch agent has its own */
    char key[128];
    ws_repo_wal_key(&name, key, sizeof key);

    ws_repo **repos;
    int n;
    if (ws_cmd_open_repos(cfg, &repos, &n, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : fatal;
    }
    /* fetch-timeout is the deadline of every wait below, the storage's own included */
    for (int i = 0; i < n; i++)
        ws_storage_set_deadline(ws_repo_storage(repos[i]), t0 + deadline);
    uint64_t cluster = cluster_sysid();
    /* per repository: 0 = still to try, 1 = absent, 2 = failed for good */
    int *state = calloc((size_t)n, sizeof *state);
    if (!state) {
        ws_cmd_close_repos(repos, n);
        return fatal;
    }
    char last[sizeof err.msg] = "";
    double backoff = 0.1;
    int code = -1;
    while (code < 0) {
        int pending = 0;
        for (int i = 0; i < n && code < 0; i++) {
            if (state[i])
                continue;
            ws_error_clear(&err);
            switch (fetch_from(repos[i], &name, key, dest, cluster, &err)) {
            case TRY_OK:
                ws_log_info("restored %s from %s", name.name, ws_repo_describe(repos[i]));
                code = WS_EXIT_OK;
                break;
            case TRY_ABSENT:
                state[i] = 1;
                break;
            case TRY_RETRY:
                ws_log(WS_LOG_WARN, "%s (will retry)", err.msg);
                snprintf(last, sizeof last, "%s", err.msg);
                pending++;
                break;
            case TRY_FAILED:
                ws_log_err(WS_LOG_ERROR, &err);
                state[i] = 2;
                break;
            }
        }
        if (code >= 0)
            break;
        int absent = 0;
        for (int i = 0; i < n; i++)
            absent += state[i] == 1;
        if (absent == n) {
            ws_log_info("%s is not in the archive", name.name);
            code = WS_EXIT_FAIL;
        } else if (pending == 0 || ws_now() - t0 + backoff > deadline) {
            ws_log_error("could not restore %s%s%s; %s", name.name,
                         pending ? " before fetch-timeout: " : "", pending ? last : "",
                         standby ? "the standby will ask again"
                                 : "stopping recovery rather than ending it early at a file "
                                   "that exists but could not be read");
            code = fatal;
        } else {
            ws_sleep(backoff);
            backoff = backoff * 2 > 5 ? 5 : backoff * 2;
        }
    }
    free(state);
    ws_cmd_close_repos(repos, n);
    if (pf == WS_PREFETCH_PENDING)
        ws_prefetch_done(cfg, &name, dest, code == WS_EXIT_OK);
    return code;
}
