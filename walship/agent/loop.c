/*
 * loop.c — what the push agent's and the prefetch agent's libuv loops share: a directory
 * watched (uv_fs_event, where the platform has it), a periodic tick in case an event is lost,
 * a "kick" timer to batch a burst of events, SIGTERM/SIGINT; closing them all once so that
 * uv_run returns; and reporting an agent that cannot run.
 */
#include "walship/agent/spool.h"
#include "walship/log.h"

#include <signal.h>
#include <stdio.h>

int ws_agent_loop_init(ws_agent_loop *l, void *data, const char *watch_dir, uv_fs_event_cb on_event,
                       uv_timer_cb on_tick, unsigned tick_ms, uv_signal_cb on_signal, ws_error *err)
{
    if (uv_loop_init(&l->loop) != 0)
        return ws_error_set(err, WS_EINTERNAL, "uv_loop_init failed");
    uv_timer_init(&l->loop, &l->tick);
    uv_timer_init(&l->loop, &l->kick);
    uv_signal_init(&l->loop, &l->sigterm);
    uv_signal_init(&l->loop, &l->sigint);
    l->tick.data = l->kick.data = l->sigterm.data = l->sigint.data = l->watch.data = data;
    uv_signal_start(&l->sigterm, on_signal, SIGTERM);
    uv_signal_start(&l->sigint, on_signal, SIGINT);
    if (uv_fs_event_init(&l->loop, &l->watch) == 0) {
        l->watching = 1;
        int rc = uv_fs_event_start(&l->watch, on_event, watch_dir, 0);
        if (rc != 0)
            ws_log_debug("not watching %s (%s): looking every %u ms", watch_dir, uv_strerror(rc),
                         tick_ms);
    }
    uv_timer_start(&l->tick, on_tick, tick_ms, tick_ms);
    return 0;
}

void ws_agent_loop_kick(ws_agent_loop *l, uv_timer_cb on_kick, unsigned delay_ms)
{
    if (!l->closed && !uv_is_active((uv_handle_t *)&l->kick))
        uv_timer_start(&l->kick, on_kick, delay_ms, 0);
}

void ws_agent_loop_close(ws_agent_loop *l)
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

void ws_agent_loop_run(ws_agent_loop *l)
{
    uv_run(&l->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&l->loop) != 0)
        ws_log_debug("the agent's loop had handles left at exit");
}

void ws_agent_report_failure(const ws_spool *sp, const char *what, ws_error *err)
{
    ws_error_prefix(err, "%s cannot run", what);
    ws_log_err(WS_LOG_ERROR, err);
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s", err->msg, err->hint[0] ? " HINT: " : "", err->hint);
    ws_spool_error_write(sp, NULL, text);
}
