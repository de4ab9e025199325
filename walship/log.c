/* log.c — stderr logging, one line per event. */
#include "walship/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static char log_prefix[64] = "walship";
static ws_log_level log_level = WS_LOG_INFO;
static ws_log_filter_fn log_filter;
static int log_timestamps;

void ws_log_set_timestamps(int on)
{
    log_timestamps = on;
}

void ws_log_setup(const char *prefix, ws_log_level level)
{
    if (prefix)
        snprintf(log_prefix, sizeof log_prefix, "%s", prefix);
    log_level = level;
}

ws_log_level ws_log_get_level(void)
{
    return log_level;
}

int ws_log_parse_level(const char *s, ws_log_level *out)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (ws_log_level)i;
            return 0;
        }
    return -1;
}

static const char *level_tag(ws_log_level level)
{
    switch (level) {
    case WS_LOG_ERROR:
        return "ERROR: ";
    case WS_LOG_WARN:
        return "WARNING: ";
    case WS_LOG_DEBUG:
        return "DEBUG: ";
    default:
        return "";
    }
}

void ws_log(ws_log_level level, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char text[2048], line[2048];
    va_list ap;
    va_start(ap, fmt);
    int tn = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (tn < 0)
        tn = 0;
    if (log_filter && level <= WS_LOG_WARN && (level = log_filter(level, text)) > log_level)
        return;
    char stamp[40] = "";
    if (log_timestamps) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t k = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + k, sizeof stamp - k, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    int n = snprintf(line, sizeof line, "%s%s: %s", stamp, log_prefix, level_tag(level));
    if (n < 0 || (size_t)n >= sizeof line - 16)
        n = 0;
    /* Messages carry text walship does not control (server replies, repository contents):
     * no control character reaches PostgreSQL's log or a terminal, and a line stays a line. */
    size_t tl = (size_t)tn < sizeof text ? (size_t)tn : sizeof text - 1;
    ws_sanitize(line + n, sizeof line - 1 - (size_t)n, text, tl, 0);
    /* one write per line so concurrent writers to PostgreSQL's log do not interleave */
    size_t len = strlen(line);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}

void ws_log_set_filter(ws_log_filter_fn fn)
{
    log_filter = fn;
}

void ws_log_err(ws_log_level level, const ws_error *err)
{
    if (err->hint[0])
        ws_log(level, "%s HINT: %s", err->msg, err->hint);
    else
        ws_log(level, "%s", err->msg);
}
