/* test_config.c — flag > environment > file > default; errors name the file and line. */
#include "tests/unit/tap.h"
#include "walship/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char conf[] = "/tmp/walship-test-config-XXXXXX";

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
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
    unlink(conf);
    return done_testing();
}
