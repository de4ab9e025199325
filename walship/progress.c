/* progress.c — a progress line for long work (progress.h). */
#include "walship/progress.h"
#include "walship/bytes.h"
#include "walship/clock.h"
#include "walship/log.h"

#include <stdio.h>
#include <unistd.h>

#define PROGRESS_TTY_SEC 0.25
#define PROGRESS_LOG_SEC 5.0

void ws_progress_start(ws_progress *p, uint64_t total, int tty)
{
    p->tty = tty < 0 ? isatty(STDERR_FILENO) : tty;
    p->total = total;
    p->t_start = p->t_last = ws_now();
}

void ws_progress_show(ws_progress *p, uint64_t done, int final)
{
    double now = ws_now();
    if (!final && now - p->t_last < (p->tty ? PROGRESS_TTY_SEC : PROGRESS_LOG_SEC))
        return;
    p->t_last = now;
    if (ws_log_get_level() < WS_LOG_INFO)
        return;
    double el = now - p->t_start;
    double rate = el > 0 ? ws_mib(done) / el : 0;
    char line[256];
    if (p->total > 0 && done <= p->total) {
        double eta = rate > 0 ? (ws_mib(p->total) - ws_mib(done)) / rate : 0;
        snprintf(line, sizeof line, "%.1f/%.1f MiB (%.0f%%), %.1f MiB/s, ETA %.0f s", ws_mib(done),
                 ws_mib(p->total), 100.0 * (double)done / (double)p->total, rate, eta);
    } else {
        snprintf(line, sizeof line, "%.1f MiB, %.1f MiB/s", ws_mib(done), rate);
    }
    if (p->tty)
        fprintf(stderr, "\r%-72s%s", line, final ? "\n" : "");
    else if (!final)
        ws_log_info("progress: %s", line);
}
