/*
 * tap.h — a tiny TAP producer for walship's C unit tests.
 *
 *     #include "tests/unit/tap.h"
 *
 *     int main(void)
 *     {
 *         plan(3);                          // or plan_no_plan()
 *         ok(1 + 1 == 2, "arithmetic on %s", "ints");
 *         is_int(ws_parse("7"), 7, "parse %d", 7);
 *         is_str(name, "000000010000000000000001", "segment name");
 *         return done_testing();            // 0 only if every test passed and the plan held
 *     }
 *
 * ok / is_int / is_str / is_mem are macros that record the caller's file and line, so a
 * failure says which assertion failed ("at tests/unit/test_wal.c line 42."). Every test name
 * is a printf format. Each returns 1 when the test passed, 0 when it failed.
 *
 * Test lines and note() go to stdout, diagnostics to stderr, both flushed line by line so that
 * a crash (or a sanitizer report) leaves everything printed before it in order.
 */
#ifndef WS_TESTS_TAP_H
#define WS_TESTS_TAP_H

#include <stddef.h>

#define TAP_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))

/* Declares how many tests will run; call once, before the first test. */
void plan(int n);
/* No count up front: done_testing() prints the plan at the end. */
void plan_no_plan(void);
/* Skips the whole file: prints "1..0 # SKIP reason" and exits 0. */
_Noreturn void plan_skip_all(const char *fmt, ...) TAP_PRINTF(1, 2);

/* Prints the closing plan if needed and returns the exit status for main(): 0 if every test
 * passed and the plan held, otherwise non-zero (the number of failures, at most 254, or 255
 * for a plan mismatch). */
int done_testing(void);

/* Diagnostics: diag() to stderr (shown by prove), note() to stdout (shown with -v). */
void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
void note(const char *fmt, ...) TAP_PRINTF(1, 2);

/* Records n skipped tests with a reason. */
void skip(int n, const char *fmt, ...) TAP_PRINTF(2, 3);

/* Stops the whole run: prints "Bail out! reason" and exits 255. */
_Noreturn void bail_out(const char *fmt, ...) TAP_PRINTF(1, 2);

#define ok(cond, ...) tap_ok_at(__FILE__, __LINE__, (cond) ? 1 : 0, __VA_ARGS__)
#define is_int(got, want, ...)                                                                     \
    tap_is_int_at(__FILE__, __LINE__, (long long)(got), (long long)(want), __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str_at(__FILE__, __LINE__, (got), (want), __VA_ARGS__)
/* Compares two byte ranges; on failure shows the lengths and the first differing offset. */
#define is_mem(got, got_len, want, want_len, ...)                                                  \
    tap_is_mem_at(__FILE__, __LINE__, (got), (got_len), (want), (want_len), __VA_ARGS__)

/* The functions behind the macros. */
int tap_ok_at(const char *file, int line, int pass, const char *fmt, ...) TAP_PRINTF(4, 5);
int tap_is_int_at(const char *file, int line, long long got, long long want, const char *fmt, ...)
    TAP_PRINTF(5, 6);
int tap_is_str_at(const char *file, int line, const char *got, const char *want, const char *fmt,
                  ...) TAP_PRINTF(5, 6);
int tap_is_mem_at(const char *file, int line, const void *got, size_t got_len, const void *want,
                  size_t want_len, const char *fmt, ...) TAP_PRINTF(7, 8);

#endif
