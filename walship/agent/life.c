/* life.c — an agent's process title, the postmaster it serves, its quiet log (life.h). */
#include "walship/agent/life.h"
#include "walship/log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* ---- the process title ---- */

static char *title_area; /* the original argv[0]... : what /proc/PID/cmdline shows */
static size_t title_size;
/* volatile: stores the compiler must keep, so that the copies stay reachable (LeakSanitizer) */
static char **volatile saved_argv, **volatile saved_environ;

char **ws_agent_save_argv(int argc, char **argv)
{
    /* The area is argv's strings and the environment's that follow them contiguously. */
    char *end = NULL;
    for (int i = 0; i < argc; i++)
        if (i == 0 || end + 1 == argv[i])
            end = argv[i] + strlen(argv[i]);
    if (!end)
        return argv;
    int n = 0;
    for (; environ[n]; n++)
        if (end + 1 == environ[n])
            end = environ[n] + strlen(environ[n]);
    /* Copies first: getenv and the configuration (which keeps pointers into argv) read
     * these from now on. Out of memory: no title, the original area stays untouched. */
    char **env = calloc((size_t)n + 1, sizeof *env), **av = calloc((size_t)argc + 1, sizeof *av);
    int ok = env && av;
    for (int i = 0; ok && i < n; i++)
        ok = (env[i] = strdup(environ[i])) != NULL;
    for (int i = 0; ok && i < argc; i++)
        ok = (av[i] = strdup(argv[i])) != NULL;
    if (!ok) {
        for (int i = 0; env && i < n; i++)
            free(env[i]);
        for (int i = 0; av && i < argc; i++)
            free(av[i]);
        free(env);
        free(av);
        return argv;
    }
    environ = saved_environ = env;
    saved_argv = av;
    title_area = argv[0];
    title_size = (size_t)(end - argv[0]) + 1;
    return av;
}

void ws_agent_set_title(const char *title, const char *comm)
{
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (!title_area || title_size < 2)
        return;
    size_t n = strlen(title);
    if (n > title_size - 1)
        n = title_size - 1;
    memcpy(title_area, title, n);
    /* NUL padding: ps shows the title alone, not what was behind it */
    memset(title_area + n, 0, title_size - n);
}

/* ---- the postmaster ---- */

static int same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

/* The first line of PGDATA/postmaster.pid: the postmaster's pid (PostgreSQL's miscinit.c). */
static long pidfile_pid(const char *pgdata)
{
    char path[PATH_MAX + 32], line[32];
    snprintf(path, sizeof path, "%s/postmaster.pid", pgdata);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    long pid = 0;
    if (fgets(line, sizeof line, f)) {
        char *e;
        pid = strtol(line, &e, 10);
        if (e == line || (*e && *e != '\n') || pid <= 0)
            pid = 0;
    }
    fclose(f);
    return pid;
}

static int pid_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

void ws_agent_pm_init(ws_agent_pm *pm, const char *wal_dir)
{
    memset(pm, 0, sizeof *pm);
    char cwd[PATH_MAX], wal[PATH_MAX + 8];
    if (getcwd(cwd, sizeof cwd)) {
        snprintf(wal, sizeof wal, "%s/pg_wal", cwd);
        if (same_dir(wal, wal_dir))
            snprintf(pm->pgdata, sizeof pm->pgdata, "%s", cwd);
    }
    if (!pm->pgdata[0]) {
        snprintf(pm->pgdata, sizeof pm->pgdata, "%s", wal_dir);
        char *slash = strrchr(pm->pgdata, '/');
        if (slash && slash != pm->pgdata)
            *slash = '\0';
    }
    long pid = pidfile_pid(pm->pgdata);
    if (pid > 0 && pid_alive(pid))
        pm->pid = pid;
    if (pm->pid)
        ws_log_debug("serving the postmaster %ld of %s", pm->pid, pm->pgdata);
    else
        ws_log_debug("no postmaster runs in %s: exiting when idle only", pm->pgdata);
}

int ws_agent_pm_gone(const ws_agent_pm *pm)
{
    if (!pm->pid)
        return 0;
    /* a new postmaster in the same PGDATA has its own archiver: this agent is not its */
    return pidfile_pid(pm->pgdata) != pm->pid || !pid_alive(pm->pid);
}

/* ---- one line per kind of failure ---- */

#define KINDS_MAX 256

static pthread_mutex_t kinds_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t kinds[KINDS_MAX];
static int nkinds;

/* FNV-1a of msg with every run of hex digits that holds a decimal digit (WAL names, counts,
 * milliseconds, pids) left out. */
static uint64_t kind_of(const char *msg)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = msg; *p;) {
        if (isxdigit((unsigned char)*p)) {
            const char *q = p;
            int digit = 0;
            while (isxdigit((unsigned char)*q))
                digit |= isdigit((unsigned char)*q++);
            if (digit) {
                h = (h ^ '#') * 0x100000001b3ull;
                p = q;
                continue;
            }
            for (; p < q; p++)
                h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
            continue;
        }
        h = (h ^ (unsigned char)*p++) * 0x100000001b3ull;
    }
    return h;
}

static ws_log_level quiet_filter(ws_log_level level, const char *msg)
{
    uint64_t k = kind_of(msg);
    int seen = 0;
    pthread_mutex_lock(&kinds_mu);
    for (int i = 0; i < nkinds && !seen; i++)
        seen = kinds[i] == k;
    if (!seen && nkinds < KINDS_MAX)
        kinds[nkinds++] = k;
    else
        seen = 1; /* a full table: the log stays bounded */
    pthread_mutex_unlock(&kinds_mu);
    return seen ? WS_LOG_DEBUG : level;
}

void ws_agent_log_quiet(void)
{
    ws_log_set_filter(quiet_filter);
}

void ws_agent_log_reset(void)
{
    pthread_mutex_lock(&kinds_mu);
    nkinds = 0;
    pthread_mutex_unlock(&kinds_mu);
}
