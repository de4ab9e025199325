/* test_sanitize.c — ws_sanitize: server text and repository contents become one bounded,
 * printable line (issue 11, "Secrets stay secret"). */
#include "tests/unit/tap.h"
#include "walship/error.h"
#include "walship/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *san(const char *s, size_t n, size_t max)
{
    static char out[1024];
    return ws_sanitize(out, sizeof out, s, n, max);
}

static int has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

int main(void)
{
    plan_no_plan();
    is_str(san("Access Denied", 13, 0), "Access Denied", "plain text is unchanged");
    is_str(san("a\x1b[31mred\r\nX-Injected: 1", 24, 0), "a\\x1b[31mred\\x0d\\x0aX-Injected: 1",
           "ESC, CR and LF become \\xNN");
    is_str(san("tab\there\x7f", 9, 0), "tab\\x09here\\x7f", "TAB and DEL escaped");
    is_str(san("nul\0after", 9, 0), "nul\\x00after", "an embedded NUL is escaped, not an end");
    is_str(san("caf\xc3\xa9 \xe2\x82\xac", 9, 0), "caf\xc3\xa9 \xe2\x82\xac",
           "valid UTF-8 is kept");
    is_str(san("\xc2\x9b"
               "31m",
               5, 0),
           "\\xc2\\x9b31m", "a C1 control (CSI) is escaped");
    is_str(san("\x9b"
               "31m",
               4, 0),
           "\\x9b31m", "a lone continuation byte is escaped");
    is_str(san("\xc0\xaf", 2, 0), "\\xc0\\xaf", "an overlong form is escaped");
    is_str(san("\xed\xa0\x80", 3, 0), "\\xed\\xa0\\x80", "a surrogate is escaped");
    is_str(san("\xe2\x82", 2, 0), "\\xe2\\x82", "a truncated sequence is escaped");

    char big[10240];
    memset(big, 'A', sizeof big);
    const char *r = san(big, sizeof big, WS_SANITIZE_MAX);
    ok(strlen(r) == WS_SANITIZE_MAX + 3 && strcmp(r + WS_SANITIZE_MAX, "...") == 0,
       "10 kB is cut to %d characters and \"...\" (%zu bytes)", WS_SANITIZE_MAX, strlen(r));
    memset(big, '\n', sizeof big);
    r = san(big, sizeof big, WS_SANITIZE_MAX);
    ok(strlen(r) <= 4 * WS_SANITIZE_MAX + 3 && !has_control(r) && strstr(r, "..."),
       "10 kB of newlines: bounded, escaped, marked cut (%zu bytes)", strlen(r));
    char small[16];
    ws_sanitize(small, sizeof small, "\x1b\x1b\x1b\x1b\x1b", 5, 0);
    ok(strlen(small) < sizeof small && !has_control(small) && strstr(small, "..."),
       "the destination size bounds the output at whole escapes: \"%s\"", small);
    ws_sanitize(small, sizeof small, "0123456789ab", 12, 0);
    is_str(small, "0123456789ab", "exactly what fits without a cut");
    ws_sanitize(small, sizeof small, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
                15, 0);
    ok(strcmp(small, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac...") == 0,
       "cut at a character boundary: \"%s\"", small);
    is_str(san("", 0, 0), "", "empty");

    /* ws_log: every line is one line, whatever the message carries */
    char path[] = "/tmp/walship-test-sanitize-XXXXXX";
    int fd = mkstemp(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    ws_log_setup("walship test", WS_LOG_INFO);
    ws_log_error("S3 said: %s",
                 "evil\x1b]0;title\x07\nwalship push: archived 000000010000000000000009");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = "";
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(path);
    buf[n > 0 ? n : 0] = '\0';
    ok(n > 0 && strchr(buf, '\n') == buf + n - 1 && !strchr(buf, '\x1b') && !strchr(buf, '\x07'),
       "ws_log writes one line without control characters: %s", buf);
    ok(strstr(buf, "evil\\x1b]0;title\\x07\\x0awalship push") != NULL,
       "... the injected text shown escaped");
    return done_testing();
}
