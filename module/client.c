/*
 * client.c — the archive module's client of the async agent (ws_module.h). The same spool
 * protocol as `walship push` with async = on (walship/agent/client.c): the agent's
 * acknowledgement of exactly this inode, written by the agent now holding agent.lock and
 * running this configuration, is the only "archived"; its NAME.error or agent.error, new
 * since this call began, is "not archived". Everything else (starting or restarting the agent,
 * the in-process pipeline) is left to a `walship push PATH` child: rare, and that binary
 * already does it right.
 */
#include "module/ws_module.h"

#include "walship/agent/spool.h"
#include "walship/clock.h"
#include "walship/config.h"
#include "walship/error.h"
#include "walship/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a `walship push` child may outlive push-timeout before it is stopped: it
 * enforces the timeout itself; this only bounds a child that hangs. */
#define CHILD_GRACE_S 5.0

static void set_msg(char *msg, size_t len, const char *fmt, const char *a, const char *b)
{
    snprintf(msg, len, fmt, a, b ? b : "");
}

static void nap(const ws_module_req *rq, int ms, int *stop)
{
    if (rq->nap) {
        if (rq->nap(rq->nap_arg, ms))
            *stop = 1;
    } else {
        ws_sleep(ms / 1000.0);
    }
}

/* Runs `walship [-c CONFIG] push PATH` and waits for it, at most timeout + CHILD_GRACE_S. */
static int run_push(const ws_module_req *rq, double timeout, char *msg, size_t len, int *via_child)
{
    const char *argv[6];
    int n = 0;
    argv[n++] = rq->bin;
    if (rq->config && *rq->config) {
        argv[n++] = "-c";
        argv[n++] = rq->config;
    }
    argv[n++] = "push";
    argv[n++] = rq->path;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, len, "cannot start %s push: %s", rq->bin, strerror(errno));
        return WS_MODULE_FAIL;
    }
    if (pid == 0) {
        /* The archiver ignores or handles signals its child must not: restore the
         * defaults, unblock everything, stdin from /dev/null; stdout/stderr stay the
         * server log. Only async-signal-safe calls until exec. */
        static const int sigs[] = {SIGINT,  SIGTERM, SIGQUIT, SIGHUP, SIGPIPE,
                                   SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        int fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 && fd != 0) {
            dup2(fd, 0);
            close(fd);
        }
        execv(rq->bin, (char *const *)argv);
        static const char e[] = "walship archive module: cannot run the walship binary "
                                "(walship.bin)\n";
        ssize_t w = write(2, e, sizeof e - 1);
        (void)w;
        _exit(127);
    }
    *via_child = 1;
    double deadline = ws_now() + timeout + CHILD_GRACE_S;
    int status = 0, stop = 0, ms = 2;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            snprintf(msg, len, "waiting for %s push: %s", rq->bin, strerror(errno));
            return WS_MODULE_FAIL;
        }
        if (stop || ws_now() >= deadline) {
            /* The push client only waits; the agent it may have started is detached and
             * carries on: stopping the client loses nothing. */
            kill(pid, stop ? SIGTERM : SIGKILL);
            double until = ws_now() + 2.0;
            while (waitpid(pid, &status, WNOHANG) == 0 && ws_now() < until)
                ws_sleep(0.01);
            if (waitpid(pid, &status, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
            snprintf(msg, len, "%s push %s %s", rq->bin, rq->path,
                     stop ? "stopped: the archiver is shutting down"
                          : "did not finish within push-timeout; stopped");
            return WS_MODULE_FAIL;
        }
        nap(rq, ms, &stop);
        ms = ms * 2 > 25 ? 25 : ms * 2;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return WS_MODULE_OK;
    if (WIFEXITED(status))
        snprintf(msg, len, "%s push %s exited with status %d (its error is logged above)", rq->bin,
                 rq->path, WEXITSTATUS(status));
    else
        snprintf(msg, len, "%s push %s was killed by signal %d", rq->bin, rq->path,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WS_MODULE_FAIL;
}

static int changed(const struct stat *a, const struct stat *b)
{
    return a->st_ino != b->st_ino || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
           a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_size != b->st_size;
}

static void touch(const ws_spool *sp, const char *name, const char *suffix, int update)
{
    char path[PATH_MAX];
    ws_spool_path(sp, name, suffix, path, sizeof path);
    if (update && (utimensat(AT_FDCWD, path, NULL, 0) == 0 || errno != ENOENT))
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

/* The agent's answer for name: OK, FAIL, or -1 when a child must take over (no agent, or
 * one of another configuration). */
static int wait_agent(const ws_module_req *rq, const ws_spool *sp, const char *name, double timeout,
                      char *msg, size_t len)
{
    struct stat fst;
    if (stat(rq->path, &fst) < 0) {
        set_msg(msg, len, "cannot stat %s: %s", rq->path, strerror(errno));
        return WS_MODULE_FAIL;
    }
    if (!S_ISREG(fst.st_mode)) {
        set_msg(msg, len, "%s is not a regular file%s", rq->path, NULL);
        return WS_MODULE_FAIL;
    }
    double t0 = ws_now(), deadline = t0 + timeout, last_seen = t0;
    touch(sp, "push.seen", "", 1);
    char text[1024], last_text[1024] = "";
    struct stat base_file, base_global, es;
    int have_file = ws_spool_error_read(sp, name, text, sizeof text, &base_file) == 0;
    if (have_file)
        snprintf(last_text, sizeof last_text, "%s", text);
    int have_global = ws_spool_error_read(sp, NULL, text, sizeof text, &base_global) == 0;
    int requested = 0, stop = 0, ms = 1;
    for (;;) {
        long pid = ws_spool_agent_pid(sp);
        ws_spool_state st;
        if (pid == 0)
            return -1;
        if (ws_spool_state_read(sp, &st) == 0 && st.pid == pid) {
            if (strcmp(st.config_id, sp->config_id) != 0)
                return -1;
            ws_spool_ack ack;
            if (ws_spool_ack_read(sp, name, &ack) == 0 && ws_spool_ack_valid(&ack, st.set_id, &fst))
                return WS_MODULE_OK;
            if (!requested) {
                touch(sp, name, ".req", 0);
                requested = 1;
            }
        }
        if (ws_spool_error_read(sp, name, text, sizeof text, &es) == 0 &&
            (!have_file || changed(&es, &base_file))) {
            set_msg(msg, len, "%s%s", text, NULL);
            return WS_MODULE_FAIL;
        }
        if (ws_spool_error_read(sp, NULL, text, sizeof text, &es) == 0 &&
            (!have_global || changed(&es, &base_global))) {
            set_msg(msg, len, "%s%s", text, NULL);
            return WS_MODULE_FAIL;
        }
        if (stop) {
            set_msg(msg, len, "%s not acknowledged yet: the archiver is shutting down%s", name,
                    NULL);
            return WS_MODULE_FAIL;
        }
        if (ws_now() >= deadline) {
            char t[32];
            snprintf(t, sizeof t, "%g", timeout);
            snprintf(msg, len,
                     "%s was not acknowledged by the agent within push-timeout (%s s)%s%s", name, t,
                     last_text[0] ? "; its last error: " : "", last_text);
            return WS_MODULE_FAIL;
        }
        nap(rq, ms, &stop);
        ms = ms * 2 > 25 ? 25 : ms * 2;
        if (ws_now() - last_seen >= 1.0) {
            last_seen = ws_now();
            touch(sp, "push.seen", "", 1);
        }
    }
}

int ws_module_archive(const ws_module_req *rq, char *msg, size_t len, int *via_child)
{
    *via_child = 0;
    msg[0] = '\0';
    const char *base = strrchr(rq->path, '/');
    base = base ? base + 1 : rq->path;
    ws_error err;
    ws_error_clear(&err);
    ws_wal_name wn;
    if (ws_wal_parse_name(base, &wn, &err) < 0) {
        set_msg(msg, len, "%s%s", err.msg, NULL);
        return WS_MODULE_FAIL;
    }
    /* The configuration is read for every file, as each `walship push` would: a changed
     * file takes effect at the next segment. */
    char *argv[6];
    int argc = 0;
    argv[argc++] = (char *)"walship";
    if (rq->config && *rq->config) {
        argv[argc++] = (char *)"-c";
        argv[argc++] = (char *)rq->config;
    }
    argv[argc++] = (char *)"push";
    argv[argc++] = (char *)rq->path;
    argv[argc] = NULL;
    ws_config *cfg = NULL;
    int rc = WS_MODULE_FAIL, async = 0;
    double timeout = 60;
    uint64_t queue_max = 0;
    if (ws_config_load(argc, argv, &cfg, &err) < 0 ||
        ws_config_get_bool(cfg, "async", &async, &err) < 0 ||
        ws_config_get_seconds(cfg, "push-timeout", &timeout, &err) < 0 ||
        ws_config_get_size(cfg, "push-queue-max", WS_WAL_SEG_MIN, &queue_max, &err) < 0) {
        set_msg(msg, len, "%s%s", err.msg, NULL);
        goto out;
    }
    int r = -1;
    if (async && !queue_max) {
        ws_spool sp;
        if (ws_spool_init(&sp, cfg, rq->path, &err) == 0) {
            r = wait_agent(rq, &sp, wn.name, timeout, msg, len);
        } else if (err.code != WS_ENOENT) {
            set_msg(msg, len, "%s%s", err.msg, NULL);
            goto out;
        }
    }
    rc = r >= 0 ? r : run_push(rq, timeout, msg, len, via_child);
out:
    ws_config_free(cfg);
    return rc;
}
