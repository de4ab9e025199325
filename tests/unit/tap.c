/*
 * tap.c — see tap.h. Output follows Test::More's wording so prove users feel at home.
 */
#include "tests/unit/tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int planned = -1; /* -1: no plan yet; -2: plan_no_plan */
static int run;
static int failed;
static int done;

/* Formats a test name into buf, keeping the TAP line intact: newlines become spaces and '#'
 * is escaped (it would start a directive). */
static void format_name(char *buf, size_t size, const char *fmt, va_list ap)
{
    char raw[512];
    size_t j = 0;

    vsnprintf(raw, sizeof raw, fmt, ap);
    for (size_t i = 0; raw[i] != '\0' && j + 2 < size; i++) {
        char c = raw[i];
        if (c == '\n' || c == '\r')
            c = ' ';
        if (c == '#')
            buf[j++] = '\\';
        buf[j++] = c;
    }
    buf[j] = '\0';
}

/* Writes "# " + message on each line of the message to f. */
static void vcomment(FILE *f, const char *fmt, va_list ap)
{
    char msg[4096];
    const char *p = msg;

    vsnprintf(msg, sizeof msg, fmt, ap);
    fflush(stdout);
    do {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "# %.*s\n", len, p);
        p = nl ? nl + 1 : NULL;
    } while (p != NULL && *p != '\0');
    fflush(f);
}

static void comment(FILE *f, const char *fmt, ...) TAP_PRINTF(2, 3);
static void comment(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomment(f, fmt, ap);
    va_end(ap);
}

void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomment(stderr, fmt, ap);
    va_end(ap);
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomment(stdout, fmt, ap);
    va_end(ap);
}

void plan(int n)
{
    if (planned != -1)
        bail_out("plan() called twice");
    if (n < 0)
        bail_out("plan(%d): the number of tests cannot be negative", n);
    planned = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

void plan_no_plan(void)
{
    if (planned != -1)
        bail_out("plan_no_plan() after a plan");
    planned = -2;
}

void plan_skip_all(const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    format_name(reason, sizeof reason, fmt, ap);
    va_end(ap);
    printf("1..0 # SKIP %s\n", reason);
    fflush(stdout);
    exit(0);
}

void bail_out(const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    printf("Bail out!  %s\n", reason);
    fflush(stdout);
    exit(255);
}

/* Prints the result line and, on failure, where the assertion is. Returns pass. */
static int result(const char *file, int line, int pass, const char *fmt, va_list ap)
{
    char name[512];

    if (done)
        bail_out("a test ran after done_testing()");
    format_name(name, sizeof name, fmt, ap);
    run++;
    if (!pass)
        failed++;
    printf("%sok %d%s%s\n", pass ? "" : "not ", run, name[0] ? " - " : "", name);
    fflush(stdout);
    if (!pass) {
        if (name[0])
            comment(stderr, "  Failed test '%s'\n  at %s line %d.", name, file, line);
        else
            comment(stderr, "  Failed test at %s line %d.", file, line);
    }
    return pass;
}

int tap_ok_at(const char *file, int line, int pass, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result(file, line, pass, fmt, ap);
    va_end(ap);
    return pass;
}

int tap_is_int_at(const char *file, int line, long long got, long long want, const char *fmt, ...)
{
    int pass = got == want;
    va_list ap;

    va_start(ap, fmt);
    result(file, line, pass, fmt, ap);
    va_end(ap);
    if (!pass)
        comment(stderr, "         got: %lld (0x%llx)\n    expected: %lld (0x%llx)", got,
                (unsigned long long)got, want, (unsigned long long)want);
    return pass;
}

int tap_is_str_at(const char *file, int line, const char *got, const char *want, const char *fmt,
                  ...)
{
    int pass = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
    va_list ap;

    va_start(ap, fmt);
    result(file, line, pass, fmt, ap);
    va_end(ap);
    if (!pass)
        comment(stderr, "         got: %s%s%s\n    expected: %s%s%s", got ? "'" : "",
                got ? got : "NULL", got ? "'" : "", want ? "'" : "", want ? want : "NULL",
                want ? "'" : "");
    return pass;
}

/* Appends up to 16 bytes of p around offset at as hex to buf. */
static void hex_window(char *buf, size_t size, const unsigned char *p, size_t len, size_t at)
{
    size_t start = at >= 8 ? at - 8 : 0;
    size_t end = start + 16 < len ? start + 16 : len;
    size_t used = 0;

    buf[0] = '\0';
    if (p == NULL) {
        snprintf(buf, size, "NULL");
        return;
    }
    used += (size_t)snprintf(buf + used, size - used, "@%zu:", start);
    for (size_t i = start; i < end && used + 5 < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i == at ? " [%02x]" : " %02x", p[i]);
    if (end == start && used + 8 < size)
        snprintf(buf + used, size - used, " (end)");
}

int tap_is_mem_at(const char *file, int line, const void *got, size_t got_len, const void *want,
                  size_t want_len, const char *fmt, ...)
{
    const unsigned char *g = got, *w = want;
    size_t min = got_len < want_len ? got_len : want_len;
    size_t diff = min;
    int pass;
    va_list ap;

    if (g == NULL || w == NULL) {
        pass = g == w && got_len == want_len;
        diff = 0;
    } else {
        for (size_t i = 0; i < min; i++) {
            if (g[i] != w[i]) {
                diff = i;
                break;
            }
        }
        pass = got_len == want_len && diff == min;
    }

    va_start(ap, fmt);
    result(file, line, pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        char gh[128], wh[128];
        hex_window(gh, sizeof gh, g, got_len, diff);
        hex_window(wh, sizeof wh, w, want_len, diff);
        comment(stderr,
                "    got %zu bytes, expected %zu bytes; first difference at offset %zu\n"
                "         got: %s\n    expected: %s",
                got_len, want_len, diff, gh, wh);
    }
    return pass;
}

void skip(int n, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    format_name(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n; i++) {
        run++;
        printf("ok %d # skip %s\n", run, reason);
    }
    fflush(stdout);
}

int done_testing(void)
{
    if (done)
        return failed ? (failed > 254 ? 254 : failed) : 0;
    done = 1;
    if (planned < 0) {
        if (run == 0) {
            printf("1..0\n");
            fflush(stdout);
            diag("No tests run!");
            return 255;
        }
        printf("1..%d\n", run);
        fflush(stdout);
    } else if (planned != run) {
        diag("Looks like you planned %d test%s but ran %d.", planned, planned == 1 ? "" : "s", run);
        return 255;
    }
    if (failed) {
        diag("Looks like you failed %d test%s of %d.", failed, failed == 1 ? "" : "s", run);
        return failed > 254 ? 254 : failed;
    }
    return 0;
}
