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

int ws_error_oom(ws_error *err)
{
    return ws_error_set(err, WS_ENOMEM, "out of memory");
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

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one. Overlong
 * forms, surrogates and code points above U+10FFFF are invalid. *cp gets the code point. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, min = 0x80, c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

char *ws_sanitize(char *dst, size_t dstlen, const char *src, size_t n, size_t max_chars)
{
    static const char more[] = "...";
    const unsigned char *s = (const unsigned char *)src;
    size_t room = dstlen - sizeof more; /* keep room for "..." and the NUL */
    size_t o = 0, i = 0, chars = 0;
    while (i < n) {
        unsigned cp;
        size_t len = utf8_len(s + i, n - i, &cp);
        int escape = len == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
        size_t need = escape ? 4 * (len ? len : 1) : len;
        if (o + need > room || (max_chars && chars == max_chars))
            break;
        if (escape) {
            for (size_t k = 0; k < (len ? len : 1); k++)
                o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", s[i + k]);
        } else {
            memcpy(dst + o, s + i, len);
            o += len;
        }
        i += len ? len : 1;
        chars++;
    }
    if (i < n) {
        memcpy(dst + o, more, sizeof more - 1);
        o += sizeof more - 1;
    }
    dst[o] = '\0';
    return dst;
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
