/*
 * progress.h — progress of long work (basebackup, restore): on a terminal, one line on
 * stderr redrawn in place (MiB done/total, percent, rate, ETA); otherwise an info log line
 * every few seconds. Quiet below log-level info.
 */
#ifndef WS_PROGRESS_H
#define WS_PROGRESS_H

#include <stdint.h>

typedef struct ws_progress {
    int tty;
    uint64_t total; /* 0 if unknown */
    double t_start, t_last;
} ws_progress;

/* tty: -1 to ask isatty(stderr). */
void ws_progress_start(ws_progress *p, uint64_t total, int tty);
/* Shows done if the last report is old enough (or final). */
void ws_progress_show(ws_progress *p, uint64_t done, int final);

#endif
