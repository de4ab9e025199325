/*
 * clock.h — time for deadlines and pauses: a monotonic clock in seconds and a sleep that
 * finishes its whole interval across signals. Core: includes nothing of walship's.
 */
#ifndef WS_CLOCK_H
#define WS_CLOCK_H

/* Monotonic clock in seconds (CLOCK_MONOTONIC), for deadlines and durations. */
double ws_now(void);

/* Sleeps s seconds (s <= 0 returns at once), resuming after EINTR. */
void ws_sleep(double s);

#endif
