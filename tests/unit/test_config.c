/* test_config.c — flag > environment > file > default; errors name the file and line. */
#include "tests/unit/tap.h"
#include "walship/config.h"
#include "walship/storage/storage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char conf[] = "/tmp/walship-test-config-XXXXXX";

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
}

static void write_conf_bytes(const char *text, size_t len, mode_t mode)
{
    FILE *f = fopen(conf, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    chmod(conf, mode);
}

static int load(ws_config **c, ws_error *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "walship";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    *c = NULL;
    return ws_config_load(argc, argv, c, err);
}

int main(void)
{
    plan_no_plan();
    int fd = mkstemp(conf);
    close(fd);
    ws_config *c;
    ws_error err;
    ws_storage_config sc;

    unsetenv("WALSHIP_LOG_LEVEL");
    unsetenv("WALSHIP_REPO");
    unsetenv("WALSHIP_CONFIG");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    write_conf("# comment\n\nlog-level = warn\nrepo = /from/file\ncompress-level=\"3\"\n"
               "s3-region = eu-west-1\nrepo2 = s3://b/p\nrepo2-s3-region = us-west-2\n");

    ok(load(&c, &err, 5, "-c", conf, "push", "x") == 0, "loads");
    is_str(ws_config_get(c, "log-level"), "warn", "file beats default");
    is_str(ws_config_get(c, "compress"), "lz4", "default when unset");
    {
        int on = 0;
        ok(ws_config_get_bool(c, "async", &on, &err) == 0 && on == 1,
           "async push is on by default (docs/decisions.md)");
        is_str(ws_config_get(c, "fetch-prefetch"), "8", "fetch prefetches 8 segments by default");
    }
    is_str(ws_config_get(c, "compress-level"), "3", "quoted value unquoted");
    is_str(ws_config_command(c), "push", "command");
    is_int(ws_config_nargs(c), 1, "one positional");
    is_int(ws_config_repo_count(c), 2, "two repositories from the file");
    ok(ws_config_storage(c, 0, &sc, &err) == 0 && strcmp(sc.url, "/from/file") == 0 &&
           strcmp(sc.s3_region, "eu-west-1") == 0,
       "repo1 uses the plain s3-region");
    ok(ws_config_storage(c, 1, &sc, &err) == 0 && strcmp(sc.url, "s3://b/p") == 0 &&
           strcmp(sc.s3_region, "us-west-2") == 0 && sc.s3_verify_tls == 1,
       "repo2-s3-region overrides for repo2; TLS verified by default");
    ok(strstr(ws_config_source(c, "log-level"), conf) != NULL &&
           strstr(ws_config_source(c, "log-level"), ":3"),
       "source names file and line: %s", ws_config_source(c, "log-level"));
    ws_config_free(c);

    setenv("WALSHIP_LOG_LEVEL", "debug", 1);
    setenv("WALSHIP_REPO", "/from/env", 1);
    ok(load(&c, &err, 3, "--config", conf, "fetch") == 0, "loads with env");
    is_str(ws_config_get(c, "log-level"), "debug", "env beats file");
    is_int(ws_config_repo_count(c), 1, "env repos replace the file's");
    ok(ws_config_storage(c, 0, &sc, &err) == 0 && strcmp(sc.url, "/from/env") == 0, "env repo");
    ws_config_free(c);

    ok(load(&c, &err, 7, "-c", conf, "--log-level=error", "--repo", "/a", "--repo=/b", "push") == 0,
       "loads with flags");
    is_str(ws_config_get(c, "log-level"), "error", "flag beats env");
    is_int(ws_config_repo_count(c), 2, "repeated --repo gives two repositories");
    ok(ws_config_storage(c, 1, &sc, &err) == 0 && strcmp(sc.url, "/b") == 0 &&
           strcmp(sc.s3_region, "us-west-2") == 0,
       "repo2-* settings apply to the second --repo");
    ok(ws_config_flag(c, "log-level") && !ws_config_flag(c, "json"), "flag presence");
    ws_config_free(c);
    unsetenv("WALSHIP_LOG_LEVEL");
    unsetenv("WALSHIP_REPO");

    write_conf("repo = /x\nlog-levle = info\n");
    ok(load(&c, &err, 3, "-c", conf) < 0 && err.code == WS_ECONFIG &&
           strstr(err.msg, "unknown key \"log-levle\"") && strstr(err.msg, ":2"),
       "unknown key names file and line: %s", err.msg);
    ws_config_free(c);
    write_conf("repo = /x\n\njust words\n");
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, ":3") && strstr(err.msg, "key = value"),
       "malformed line names file and line: %s", err.msg);
    ws_config_free(c);
    write_conf("repo3 = /x\n");
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "repo2"), "gap in repoN refused");
    ws_config_free(c);
    write_conf("repo = /x\nrepo1-log-level = info\n");
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "unknown key"),
       "per-repo form of a global key refused");
    ws_config_free(c);
    ok(load(&c, &err, 3, "-c", "/nonexistent/walship.conf") < 0 &&
           strstr(err.msg, "/nonexistent/walship.conf"),
       "missing config file named: %s", err.msg);
    ws_config_free(c);
    ok(load(&c, &err, 2, "--bogus") < 0 && strstr(err.msg, "--bogus"), "unknown option named");
    ws_config_free(c);
    ok(load(&c, &err, 3, "--s3-key-secret", "hunter2") < 0 && !strstr(err.msg, "hunter2") &&
           strstr(err.msg, "command line"),
       "secret refused on the command line, not echoed: %s", err.msg);
    ws_config_free(c);
    ok(load(&c, &err, 2, "--repo") < 0 && strstr(err.msg, "needs a value"), "missing value");
    ws_config_free(c);

    write_conf("repo = /x\ns3-key-secret = fromfile\n");
    setenv("AWS_SECRET_ACCESS_KEY", "fromenv", 1);
    ok(load(&c, &err, 3, "-c", conf) == 0 && ws_config_storage(c, 0, &sc, &err) == 0 &&
           strcmp(sc.s3_key_secret, "fromenv") == 0,
       "AWS_SECRET_ACCESS_KEY (environment) beats the file");
    ws_config_free(c);
    unsetenv("AWS_SECRET_ACCESS_KEY");

    write_conf("repo = /x\nfetch-timeout = 2min\ns3-verify-tls = off\ncompress-level = 99\n");
    double secs;
    long lv;
    int b;
    ok(load(&c, &err, 3, "-c", conf) == 0, "loads typed values");
    ok(ws_config_get_seconds(c, "fetch-timeout", &secs, &err) == 0 && secs == 120, "2min = 120s");
    ok(ws_config_get_bool(c, "s3-verify-tls", &b, &err) == 0 && b == 0, "bool off");
    ok(ws_config_get_long(c, "compress-level", 1, 12, &lv, &err) < 0 &&
           strstr(err.msg, "compress-level") && strstr(err.msg, ":4"),
       "out-of-range value names its source: %s", err.msg);
    ws_config_free(c);
    ok(load(&c, &err, 4, "push", "--", "-weird") == 0 && ws_config_nargs(c) == 1 &&
           strcmp(ws_config_arg(c, 0), "-weird") == 0,
       "-- ends options");
    ws_config_free(c);

    /* ---- secrets stay secret (issue 11) ---- */
    static const char secret[] = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY";
    char text[512];
    snprintf(text, sizeof text, "repo = /x\ns3-key-secret = %s\n", secret);
    write_conf_bytes(text, strlen(text), 0644);
    ok(load(&c, &err, 3, "-c", conf) < 0 && err.code == WS_ECONFIG && strstr(err.msg, conf) &&
           strstr(err.msg, "0644") && strstr(err.msg, "s3-key-secret") &&
           strstr(err.hint, "chmod 600") && strstr(err.hint, conf) && !strstr(err.msg, secret) &&
           !strstr(err.hint, secret),
       "a world-readable file with a secret is refused, naming file, mode and fix: %s HINT: %s",
       err.msg, err.hint);
    ws_config_free(c);
    chmod(conf, 0600);
    ok(load(&c, &err, 3, "-c", conf) == 0, "the same file at 0600 loads");
    ws_config_free(c);
    snprintf(text, sizeof text, "repo = /x\nrepo2 = /y\nrepo2-s3-token = %s\n", secret);
    write_conf_bytes(text, strlen(text), 0604);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "s3-token") &&
           strstr(err.msg, "line 3") && strstr(err.msg, "0604"),
       "a per-repository secret counts too: %s", err.msg);
    ws_config_free(c);
    snprintf(text, sizeof text, "repo = /x\npgconn = host=db password=%s\n", secret);
    write_conf_bytes(text, strlen(text), 0644);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "pgconn") && !strstr(err.msg, secret),
       "a pgconn with password= is a secret: %s", err.msg);
    ws_config_free(c);
    write_conf_bytes("repo = /x\npgconn = host=db\n", 27, 0644);
    ok(load(&c, &err, 3, "-c", conf) == 0, "a file without secrets may be readable: %s", err.msg);
    ws_config_free(c);
    snprintf(text, sizeof text, "repo = /x\ns3-key-secret = %s\n", secret);
    write_conf_bytes(text, strlen(text), 0660);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "0660"),
       "group-writable is refused: %s", err.msg);
    ws_config_free(c);
    if (geteuid() == 0) {
        chmod(conf, 0640);
        ok(load(&c, &err, 3, "-c", conf) == 0,
           "root-owned 0640 is allowed (as PostgreSQL's ssl_key_file): %s", err.msg);
        ws_config_free(c);
        ok(chown(conf, 65534, 0) == 0, "file given to another owner");
        ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "0640"),
           "0640 owned by a non-root user is refused: %s", err.msg);
        ws_config_free(c);
        ok(chown(conf, 0, 0) == 0, "owner restored");
    }

    /* parse errors never echo line content */
    snprintf(text, sizeof text, "repo = /x\ns3-key-secret: %s\n", secret);
    write_conf_bytes(text, strlen(text), 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, ":2") &&
           strstr(err.msg, "\"s3-key-secret\"") && !strstr(err.msg, "wJal") &&
           !strstr(err.hint, "wJal"),
       "a malformed secret line names file, line and key, not the value: %s HINT: %s", err.msg,
       err.hint);
    ws_config_free(c);
    snprintf(text, sizeof text, "repo = /x\ns3-key-secret %s==\n", secret);
    write_conf_bytes(text, strlen(text), 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, ":2") && !strstr(err.msg, "wJal") &&
           !strstr(err.hint, "wJal"),
       "an '=' inside the secret does not make it a key: %s", err.msg);
    ws_config_free(c);
    snprintf(text, sizeof text, "repo = /x\n%s\n", secret);
    write_conf_bytes(text, strlen(text), 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, ":2") && !strstr(err.msg, "wJal"),
       "a pasted secret alone on a line is not echoed: %s", err.msg);
    ws_config_free(c);

    /* duplicates, NUL bytes, files that are not files */
    write_conf_bytes("repo = /x\nlog-level = info\nrepo1 = /y\n", 38, 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, conf) && strstr(err.msg, "twice") &&
           strstr(err.msg, "lines 1 and 3"),
       "repo and repo1 twice: both lines named: %s", err.msg);
    ws_config_free(c);
    snprintf(text, sizeof text, "repo = /x\ns3-key-secret = a%s\ns3-key-secret = b%s\n", secret,
             secret);
    write_conf_bytes(text, strlen(text), 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, "lines 2 and 3") &&
           strstr(err.msg, "s3-key-secret") && !strstr(err.msg, "wJal"),
       "a duplicated secret: lines named, values not: %s", err.msg);
    ws_config_free(c);
    write_conf_bytes("repo = /x\nrepo2 = /y\nrepo2-s3-region = a\ns3-region = b\n", 52, 0600);
    ok(load(&c, &err, 3, "-c", conf) == 0, "repo2-s3-region and s3-region are different keys");
    ws_config_free(c);
    write_conf_bytes("repo = /x\nlog-level = in\0fo\n", 28, 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, conf) && strstr(err.msg, ":2") &&
           strstr(err.msg, "NUL"),
       "a NUL byte: file and line: %s", err.msg);
    ws_config_free(c);
    write_conf_bytes("repo = /x\n\0\n", 12, 0600);
    ok(load(&c, &err, 3, "-c", conf) < 0 && strstr(err.msg, ":2") && strstr(err.msg, "NUL"),
       "a line that is only a NUL byte: %s", err.msg);
    ws_config_free(c);
    alarm(20); /* the old code read /dev/zero for ever and blocked on a FIFO */
    time_t t0 = time(NULL);
    ok(load(&c, &err, 3, "-c", "/dev/zero") < 0 && err.code == WS_ECONFIG &&
           strstr(err.msg, "/dev/zero") && strstr(err.msg, "not a regular file") &&
           strstr(err.msg, "character device"),
       "-c /dev/zero refused: %s", err.msg);
    ws_config_free(c);
    ok(load(&c, &err, 3, "-c", "/tmp") < 0 && strstr(err.msg, "a directory"), "-c DIR refused: %s",
       err.msg);
    ws_config_free(c);
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s.fifo", conf);
    ok(mkfifo(fifo, 0600) == 0, "a FIFO");
    ok(load(&c, &err, 3, "-c", fifo) < 0 && strstr(err.msg, fifo) && strstr(err.msg, "a FIFO"),
       "-c FIFO refused without blocking: %s", err.msg);
    ws_config_free(c);
    unlink(fifo);
    ok(time(NULL) - t0 < 5, "refused at once");
    alarm(0);

    /* copy (issue 19): archive-timeout is push-timeout's deprecated alias; --repo N picks */
    write_conf("repo1 = /a\nrepo2 = s3://b/p\nrepo2-s3-region = us-west-2\n"
               "archive-timeout = 7s\n");
    ws_error_clear(&err);
    ok(load(&c, &err, 6, "-c", conf, "--repo", "2", "push", "x") == 0, "--repo 2 loads: %s",
       err.msg);
    secs = 0;
    ok(ws_config_get_seconds(c, "push-timeout", &secs, &err) == 0 && secs == 7,
       "archive-timeout = 7s is read as push-timeout");
    ok(strstr(ws_config_source(c, "push-timeout"), conf) != NULL,
       "... its source is the file's line");
    is_int(ws_config_repo_count(c), 1, "--repo 2: one repository");
    ok(ws_config_storage(c, 0, &sc, &err) == 0 && strcmp(sc.url, "s3://b/p") == 0 &&
           strcmp(sc.s3_region, "us-west-2") == 0,
       "--repo 2 is repo2, with repo2-s3-region");
    ws_config_free(c);
    ok(load(&c, &err, 5, "-c", conf, "--repo", "3", "list") < 0 && err.code == WS_ECONFIG &&
           strstr(err.msg, "--repo 3"),
       "--repo 3 of 2: %s", err.msg);
    ws_config_free(c);
    ok(load(&c, &err, 7, "-c", conf, "--repo", "1", "--repo", "/x", "list") < 0 &&
           strstr(err.msg, "not both"),
       "numbers and URLs mixed: %s", err.msg);
    ws_config_free(c);
    ok(load(&c, &err, 7, "-c", conf, "--repo", "2", "--repo", "1", "list") == 0 &&
           ws_config_repo_count(c) == 2 && ws_config_storage(c, 0, &sc, &err) == 0 &&
           strcmp(sc.url, "s3://b/p") == 0,
       "--repo 2 --repo 1: in the order given");
    ws_config_free(c);
    unlink(conf);
    return done_testing();
}
