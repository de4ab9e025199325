/*
 * client.c — `walship push %p` with async = on: answer from the spool when the agent has
 * acknowledged exactly this file, else make sure the agent runs and wait for its answer.
 */
#include "walship/agent/client.h"
#include "walship/agent/spool.h"
#include "walship/archive/agent.h"
#include "walship/clock.h"
#include "walship/exit.h"
#include "walship/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* After starting an agent, how long to let it take the lock before starting another. */
#define SPAWN_GRACE_S 2.0
#define SPAWN_MAX     5

/* Whether an error file is new since the push began (each write is a rename, so a new file
 * has another inode or mtime). */
static int changed(const struct stat *a, const struct stat *b)
{
    return a->st_ino != b->st_ino || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
           a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_size != b->st_size;
}

static int check_settings(const ws_config *cfg, double *timeout, ws_error *err)
{
    long n;
    double idle;
    if (ws_config_get_seconds(cfg, "push-timeout", timeout, err) < 0 ||
        ws_config_get_long(cfg, "push-parallel", 1, 32, &n, err) < 0 ||
        ws_config_get_seconds(cfg, "agent-idle-timeout", &idle, err) < 0)
        return -1;
    return 0;
}

/* Asks the agent to archive name even when PostgreSQL has no .ready for it (a manual push),
 * or again after a mismatching acknowledgement. */
static void request(const ws_spool *sp, const char *name)
{
    char path[PATH_MAX];
    ws_spool_path(sp, name, ".req", path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

/* Tells the agent that a push, a live client, asks for work: push.seen's mtime moves. The
 * agent exits after agent-idle-timeout without one (docs/async.md, "Lifecycle"). */
static void seen(const ws_spool *sp)
{
    ws_agent_touch(sp, "push.seen", 1);
}

int ws_agent_push(const ws_config *cfg, ws_push_file *f)
{
    ws_error err;
    ws_error_clear(&err);
    double timeout;
    if (check_settings(cfg, &timeout, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    ws_spool sp;
    if (ws_spool_init(&sp, cfg, f->path, &err) < 0) {
        if (err.code == WS_ENOENT)
            return -1; /* not in a pg_wal: the caller archives in-process */
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    const char *name = f->name.name;
    double t0 = ws_now(), deadline = t0 + timeout, last_spawn = -1e9, nap = 0.002, last_seen = t0;
    seen(&sp);
    int spawns = 0, requested = 0;
    long termed = 0;
    char text[1024], last_text[1024] = "";
    struct stat base_file, base_global, es;
    int have_file = ws_spool_error_read(&sp, name, text, sizeof text, &base_file) == 0;
    if (have_file)
        snprintf(last_text, sizeof last_text, "%s", text);
    int have_global = ws_spool_error_read(&sp, NULL, text, sizeof text, &base_global) == 0;

    for (;;) {
        long pid = ws_spool_agent_pid(&sp);
        ws_spool_state st;
        int current;
        if (pid == 0) {
            if (spawns < SPAWN_MAX && ws_now() - last_spawn > SPAWN_GRACE_S) {
                spawns++;
                last_spawn = ws_now();
                int agent_exit,
                    r = ws_agent_start(cfg, &sp, "walship agent", ws_agent_main, &agent_exit, &err);
                if (r < 0) {
                    ws_log_err(WS_LOG_ERROR, &err);
                    return WS_EXIT_FAIL;
                }
                if (r == 1) {
                    f->fd = -1; /* closed when the agent detached */
                    return agent_exit;
                }
                ws_log_debug("started the agent for %s", sp.dir);
            }
        } else if ((current = ws_agent_current(&sp, pid, &st)) >= 0) {
            if (!current) {
                /* It runs an older configuration: it finishes what it has started and
                 * exits; then a new one starts. */
                if (termed != pid) {
                    ws_agent_restart(pid, "the agent");
                    termed = pid;
                }
            } else {
                ws_spool_ack ack;
                if (ws_spool_ack_read(&sp, name, &ack) == 0 &&
                    ws_spool_ack_valid(&ack, st.set_id, &f->st)) {
                    ws_log_debug("%s acknowledged by the agent (sha256 %.16s...)", name,
                                 ack.sha256);
                    return WS_EXIT_OK;
                }
                if (!requested) {
                    request(&sp, name);
                    requested = 1;
                }
            }
        }
        if (termed && (pid == 0 || pid == termed)) {
            /* The agent this push restarted aborts its jobs (life.h): their errors are not
             * this push's answer; the new agent's are. */
            have_file = ws_spool_error_read(&sp, name, text, sizeof text, &base_file) == 0;
            have_global = ws_spool_error_read(&sp, NULL, text, sizeof text, &base_global) == 0;
        } else if (ws_spool_error_read(&sp, name, text, sizeof text, &es) == 0) {
            if (!have_file || changed(&es, &base_file)) {
                ws_log_error("%s", text);
                return WS_EXIT_FAIL;
            }
        }
        if (ws_spool_error_read(&sp, NULL, text, sizeof text, &es) == 0) {
            if (!have_global || changed(&es, &base_global)) {
                ws_log_error("%s", text);
                return WS_EXIT_FAIL;
            }
        }
        if (ws_now() >= deadline) {
            ws_log_error("%s was not acknowledged by the agent within push-timeout (%g s)%s%s",
                         name, timeout, last_text[0] ? "; its last error: " : "", last_text);
            return WS_EXIT_FAIL;
        }
        ws_sleep(nap);
        nap = nap * 2 > 0.025 ? 0.025 : nap * 2;
        if (ws_now() - last_seen >= 1.0) {
            last_seen = ws_now();
            seen(&sp);
        }
    }
}
