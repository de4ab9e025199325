/*
 * log.h — one line per event on stderr, prefixed "walship <command>: ", which is what
 * PostgreSQL copies into its log for archive_command and restore_command.
 */
#ifndef WS_LOG_H
#define WS_LOG_H

#include "walship/error.h"

typedef enum ws_log_level { WS_LOG_ERROR = 0, WS_LOG_WARN, WS_LOG_INFO, WS_LOG_DEBUG } ws_log_level;

/* The prefix (e.g. "walship push") and threshold; the defaults are "walship" and info. */
void ws_log_setup(const char *prefix, ws_log_level level);
/* log-timestamps: each line starts with the UTC time, ISO-8601 with milliseconds
 * ("2026-12-02T01:10:00.123Z walship verify: ..."). Off by default. */
void ws_log_set_timestamps(int on);
ws_log_level ws_log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 on anything else. */
int ws_log_parse_level(const char *s, ws_log_level *out);

void ws_log(ws_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ws_log_error(...) ws_log(WS_LOG_ERROR, __VA_ARGS__)
#define ws_log_warn(...)  ws_log(WS_LOG_WARN, __VA_ARGS__)
#define ws_log_info(...)  ws_log(WS_LOG_INFO, __VA_ARGS__)
#define ws_log_debug(...) ws_log(WS_LOG_DEBUG, __VA_ARGS__)

/* A process-wide filter (a long-running agent's, that logs one line per kind of failure):
 * called with each warning or error's text, it returns the level to log it at. */
typedef ws_log_level (*ws_log_filter_fn)(ws_log_level level, const char *msg);
void ws_log_set_filter(ws_log_filter_fn fn);

/* Logs err at level: "<msg>" then, if set, "HINT: <hint>" on the same line. */
void ws_log_err(ws_log_level level, const ws_error *err);

#endif
