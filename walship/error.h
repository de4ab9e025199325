/*
 * error.h — walship's error reporting: every fallible function returns an int status
 * (0 = success, -1 = failure) and fills a caller-owned ws_error.
 *
 * The code classifies the failure so callers can decide what to do (retry, report
 * "absent", abort recovery) without parsing text; msg says what failed and why, hint says
 * what the operator should do next. Secrets never go into either.
 */
#ifndef WS_ERROR_H
#define WS_ERROR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum ws_errcode {
    WS_EOK = 0,
    WS_ENOENT,     /* authoritatively absent (ENOENT, HTTP 404) */
    WS_EEXIST,     /* exists already (create-only-if-absent lost) */
    WS_EINVAL,     /* bad input: not WAL, truncated, malformed */
    WS_ECONFIG,    /* bad configuration or usage */
    WS_EMISMATCH,  /* wrong cluster, different content under the same name */
    WS_ECORRUPT,   /* stored object fails verification */
    WS_EIO,        /* local I/O failure (disk, permission) */
    WS_ETRANSIENT, /* worth retrying: network error, 5xx, timeout */
    WS_EAUTH,      /* credentials refused (HTTP 403) */
    WS_ENOMEM,
    WS_EINTERNAL,
} ws_errcode;

typedef struct ws_error {
    ws_errcode code;
    char msg[768];
    char hint[256];
} ws_error;

/* Clears err to "no error". */
void ws_error_clear(ws_error *err);

/* Sets code and message (printf-style) and clears the hint; returns -1 so callers can
 * write `return ws_error_set(err, WS_EINVAL, "...")`. err may be NULL. */
int ws_error_set(ws_error *err, ws_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ws_error_set, with errno's text appended as ": <strerror>". */
int ws_error_errno(ws_error *err, ws_errcode code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ws_error_set(err, WS_ENOMEM, "out of memory"): returns -1. */
int ws_error_oom(ws_error *err);

/* Sets the "what to do next" hint. */
void ws_error_hint(ws_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the message with context ("reading wal/...: " + old message). */
void ws_error_prefix(ws_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies n bytes of untrusted text (an S3 <Message>, a reason phrase, repository contents)
 * into dst as one printable line: control characters (C0, DEL, C1), bytes that are not valid
 * UTF-8 become \xNN escapes; the result is cut at whole characters to fit
 * dstlen (and to at most max_chars characters when max_chars > 0), ending in "..." when
 * anything was left out. dst is always NUL-terminated (dstlen >= 8). Returns dst. */
char *ws_sanitize(char *dst, size_t dstlen, const char *src, size_t n, size_t max_chars);
/* The bound for server-supplied text in a message: 200 characters. */
#define WS_SANITIZE_MAX 200

/* A short name for a code ("absent", "corrupt", ...), for logs and JSON. */
const char *ws_errcode_name(ws_errcode code);

#endif
