/*
 * loop.c — the agents' runtime (loop.h): the loop's handles, closed once so that uv_run
 * returns, and the lifecycle both agents share.
 */
#include "walship/agent/loop.h"
#include "walship/clock.h"
#include "walship/exit.h"
#include "walship/log.h"
#include "walship/repo/open.h"
#include "walship/storage/http.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STOP_GRACE_S  5.0 /* after this, jobs that ignored the abort are left behind */
#define BACKOFF_MAX_S 10.0

/* ---- the handles ---- */

static void on_tick(uv_timer_t *t);
static void on_kick(uv_timer_t *t);
static void on_signal(uv_signal_t *h, int signum);
static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status);

static int loop_init(ws_agent *a, ws_error *err)
{
    ws_agent_loop *l = &a->l;
    if (uv_loop_init(&l->loop) != 0)
        return ws_error_set(err, WS_EINTERNAL, "uv_loop_init failed");
    uv_timer_init(&l->loop, &l->tick);
    uv_timer_init(&l->loop, &l->kick);
    uv_signal_init(&l->loop, &l->sigterm);
    uv_signal_init(&l->loop, &l->sigint);
    l->tick.data = l->kick.data = l->sigterm.data = l->sigint.data = l->watch.data = a;
    uv_signal_start(&l->sigterm, on_signal, SIGTERM);
    uv_signal_start(&l->sigint, on_signal, SIGINT);
    if (uv_fs_event_init(&l->loop, &l->watch) == 0) {
        l->watching = 1;
        int rc = uv_fs_event_start(&l->watch, on_fs_event, a->watch_dir, 0);
        if (rc != 0)
            ws_log_debug("not watching %s (%s): looking every %u ms", a->watch_dir, uv_strerror(rc),
                         a->ops->tick_ms);
    }
    uv_timer_start(&l->tick, on_tick, a->ops->tick_ms, a->ops->tick_ms);
    return 0;
}

static void loop_close(ws_agent_loop *l)
{
    if (l->closed)
        return;
    l->closed = 1;
    if (l->watching)
        uv_close((uv_handle_t *)&l->watch, NULL);
    uv_close((uv_handle_t *)&l->tick, NULL);
    uv_close((uv_handle_t *)&l->kick, NULL);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
    uv_close((uv_handle_t *)&l->sigint, NULL);
}

static void loop_run(ws_agent_loop *l)
{
    uv_run(&l->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&l->loop) != 0)
        ws_log_debug("the agent's loop had handles left at exit");
}

/* ---- stopping ---- */

/* Once stopping and nothing runs on the pool: close every handle so that uv_run returns. */
static void maybe_close(ws_agent *a)
{
    if (a->l.closed || a->inflight > 0 || a->side)
        return;
    loop_close(&a->l);
}

void ws_agent_stop(ws_agent *a, const char *why)
{
    if (!a->stopping || !a->stop_at) {
        if (why)
            ws_log_info("%s; stopping (%d %s in flight aborted)", why, a->inflight, a->ops->jobs);
        a->stop_at = ws_now();
    }
    a->stopping = 1;
    if (a->inflight || a->side)
        ws_http_abort_all();
    maybe_close(a);
}

void ws_agent_settle(ws_agent *a, int kick)
{
    if (a->stopping)
        maybe_close(a);
    else if (kick)
        a->ops->kick(a);
}

int ws_agent_lock_lost(ws_agent *a)
{
    if (ws_spool_lock_current(a->sp, a->lockfd))
        return 0;
    ws_log_warn("%s/agent.lock was replaced; stopping", a->sp->dir);
    a->stopping = 1;
    return 1;
}

double ws_agent_backoff(int failures)
{
    double b = 0.5;
    for (int i = 1; i < failures && b < BACKOFF_MAX_S; i++)
        b *= 2;
    return b > BACKOFF_MAX_S ? BACKOFF_MAX_S : b;
}

/* ---- the callbacks ---- */

static void on_tick(uv_timer_t *t)
{
    ws_agent *a = t->data;
    double now = ws_now();
    if (a->stopping) {
        ws_agent_stop(a, NULL); /* the first time: when, and abort what is in flight */
        if (!a->l.closed && (a->inflight || a->side) && now - a->stop_at > STOP_GRACE_S) {
            ws_log_warn("%d %s still running %g s after %s stopped; exiting without them",
                        a->inflight, a->ops->jobs, STOP_GRACE_S, a->ops->name);
            if (a->ops->abandon)
                a->ops->abandon(a);
            _exit(WS_EXIT_FAIL); /* the lock goes with the process */
        }
        return;
    }
    if (ws_agent_pm_gone(&a->pm)) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "the postmaster (pid %ld) of %s is gone", a->pm.pid,
                 a->pm.pgdata);
        ws_agent_stop(a, why);
        return;
    }
    a->ops->tick(a, now);
    if (!a->stopping && now - a->last_work >= a->idle_timeout) {
        /* whatever is failing: retries nobody asks for do not keep the agent alive */
        ws_log_debug("no request for %g s; exiting", a->idle_timeout);
        if (a->ops->idle)
            a->ops->idle(a);
        ws_agent_stop(a, a->inflight || a->side ? "no request for agent-idle-timeout" : NULL);
    }
    if (a->stopping)
        ws_agent_stop(a, NULL);
}

static void on_kick(uv_timer_t *t)
{
    ws_agent *a = t->data;
    if (!a->stopping)
        a->ops->kick(a);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    ws_agent *a = h->data;
    if (status < 0 || !filename || a->ops->wants(filename))
        if (!a->l.closed && !uv_is_active((uv_handle_t *)&a->l.kick))
            uv_timer_start(&a->l.kick, on_kick, a->ops->kick_ms, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    char why[32];
    snprintf(why, sizeof why, "signal %d", signum);
    ws_agent_stop(h->data, why);
}

/* ---- start and stop ---- */

static int open_sets(ws_agent *a, ws_error *err)
{
    a->sets = calloc((size_t)a->nslots + 1, sizeof *a->sets);
    if (!a->sets)
        return ws_error_oom(err);
    for (int i = 0; i <= a->nslots; i++)
        if (ws_cmd_open_repos(a->cfg, &a->sets[i].repos, &a->sets[i].n, err) < 0)
            return -1;
    return 0;
}

static void close_sets(ws_agent *a)
{
    for (int i = 0; a->sets && i <= a->nslots; i++)
        if (a->sets[i].repos)
            ws_cmd_close_repos(a->sets[i].repos, a->sets[i].n);
    free(a->sets);
    a->sets = NULL;
}

static int run(ws_agent *a, ws_error *err)
{
    if (a->ops->setup(a, err) < 0)
        return -1;
    /* The thread pool is shared with the S3 client's payload hashing (uv_queue_work on each
     * slot's own loop): with every pool thread blocked in a job waiting for its hash, nothing
     * would run it. Set before the pool starts. */
    char pool[16];
    snprintf(pool, sizeof pool, "%d", a->nslots + 4);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    ws_agent_pm_init(&a->pm, a->sp->wal_dir);
    char title[PATH_MAX + 32];
    snprintf(title, sizeof title, "walship: %s agent for %s", a->ops->kind, a->pm.pgdata);
    ws_agent_set_title(title, a->ops->comm);
    ws_agent_log_quiet();
    if (open_sets(a, err) < 0 || loop_init(a, err) < 0)
        return -1;
    a->last_work = ws_now();
    if (a->ops->start(a, err) < 0)
        return -1;
    loop_run(&a->l);
    if (a->ops->finish)
        a->ops->finish(a);
    return 0;
}

/* An agent that cannot run: logs "<name> cannot run: ..." and writes agent.error. */
static void report_failure(const ws_spool *sp, const char *name, ws_error *err)
{
    ws_error_prefix(err, "%s cannot run", name);
    ws_log_err(WS_LOG_ERROR, err);
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s", err->msg, err->hint[0] ? " HINT: " : "", err->hint);
    ws_spool_error_write(sp, NULL, text);
}

int ws_agent_serve(const ws_config *cfg, const ws_spool *sp, const ws_agent_ops *ops, void *job)
{
    ws_error err;
    ws_error_clear(&err);
    ws_agent a;
    memset(&a, 0, sizeof a);
    a.cfg = cfg;
    a.sp = sp;
    a.ops = ops;
    a.job = job;
    a.watch_dir = sp->dir;
    a.lockfd = ws_spool_lock(sp, &err);
    if (a.lockfd == -2)
        return WS_EXIT_OK; /* another client started one first */
    int rc = a.lockfd < 0 ? -1 : run(&a, &err);
    if (rc < 0)
        report_failure(sp, ops->name, &err);
    close_sets(&a);
    if (a.lockfd >= 0)
        close(a.lockfd); /* last: from here on a client may start a new agent */
    return rc < 0 ? (err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL) : WS_EXIT_OK;
}
