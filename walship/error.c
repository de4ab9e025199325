/* error.c — the ws_error helpers. */
#include "walship/error.h"

#include <stdio.h>
#include <string.h>

void ws_error_clear(ws_error *err)
{
    if (!err)
        return;
    err->code = WS_EOK;
    err->msg[0] = '\0';
    err->hint[0] = '\0';
}

int ws_error_set(ws_error *err, ws_errcode code, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    err->hint[0] = '\0';
    return -1;
}

int ws_error_errno(ws_error *err, ws_errcode code, int errnum, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
    err->code = code;
    err->hint[0] = '\0';
    return -1;
}

void ws_error_hint(ws_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
}

void ws_error_prefix(ws_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t pl = strnlen(prefix, sizeof prefix);
    if (pl + 2 >= sizeof err->msg)
        return;
    memcpy(err->msg, prefix, pl);
    memcpy(err->msg + pl, ": ", 2);
    size_t room = sizeof err->msg - pl - 3;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + pl + 2, old, ol);
    err->msg[pl + 2 + ol] = '\0';
}

const char *ws_errcode_name(ws_errcode code)
{
    switch (code) {
    case WS_EOK:
        return "ok";
    case WS_ENOENT:
        return "absent";
    case WS_EEXIST:
        return "exists";
    case WS_EINVAL:
        return "invalid";
    case WS_ECONFIG:
        return "config";
    case WS_EMISMATCH:
        return "mismatch";
    case WS_ECORRUPT:
        return "corrupt";
    case WS_EIO:
        return "io";
    case WS_ETRANSIENT:
        return "transient";
    case WS_EAUTH:
        return "auth";
    case WS_ENOMEM:
        return "nomem";
    case WS_EINTERNAL:
        return "internal";
    }
    return "unknown";
}
