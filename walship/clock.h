/*
 * clock.h — time for deadlines and pauses: a monotonic clock in seconds and a sleep that
 * finishes its whole interval across signals. Core: includes nothing of walship's.
 */
#ifndef WS_CLOCK_H
#define WS_CLOCK_H

#include <stdint.h>

/* Monotonic clock in seconds (CLOCK_MONOTONIC), for deadlines and durations. */
double ws_now(void);

/* Sleeps s seconds (s <= 0 returns at once), resuming after EINTR. */
void ws_sleep(double s);

/* Seconds since the epoch as ISO-8601 UTC ("2026-12-02T01:49:28Z") into out; returns out. */
char *ws_utc_text(int64_t t, char out[32]);
/* Parses that form (nothing else, nothing after it) into *t; -1 if s is not one. */
int ws_utc_parse(const char *s, int64_t *t);

#endif
