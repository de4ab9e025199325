/* fuzz_config.c — the configuration file (walship/config.h: key = value lines, quotes,
 * repoN- keys, sizes, durations, booleans), then the restore target parsing of restore/target.c
 * on what it loaded (the target keys may be in the file), and restore's time and LSN text. */
#include "restore/restore.h"
#include "tests/fuzz/fuzz.h"
#include "walship/config.h"
#include "walship/wal.h"

#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int cfg_fd = -1;
static char cfg_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg_fd < 0) {
        static const char *env[] = {"WALSHIP_CONFIG",        "WALSHIP_REPO",
                                    "WALSHIP_LOG_LEVEL",     "AWS_ACCESS_KEY_ID",
                                    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
        for (size_t i = 0; i < sizeof env / sizeof env[0]; i++)
            unsetenv(env[i]);
        cfg_fd = memfd_create("walship-fuzz-config", 0);
        if (cfg_fd < 0)
            abort();
        fchmod(cfg_fd, 0600);
        snprintf(cfg_path, sizeof cfg_path, "/proc/self/fd/%d", cfg_fd);
    }
    /* A first byte below 8 makes the first line the value of a restore target option (they
     * are command-line only) and the rest the file; otherwise all of it is the file. */
    static const char *flags[] = {"--target-time",     "--target-lsn",  "--target-xid",
                                  "--target-name",     "--target",      "--target-action",
                                  "--target-timeline", "--archive-mode"};
    char *value = NULL;
    int argc = 6;
    char *argv[9] = {"walship", "-c", cfg_path, "restore", "--pgdata", "/nonexistent/fuzz"};
    if (size && data[0] < 8) {
        const uint8_t *nl = memchr(data + 1, '\n', size - 1);
        size_t vlen = nl ? (size_t)(nl - data - 1) : size - 1;
        value = fuzz_strndup(data + 1, vlen);
        if (!value)
            return 0;
        argv[argc++] = (char *)flags[data[0]];
        argv[argc++] = value;
        size_t skip = 1 + vlen + (nl ? 1 : 0);
        data += skip;
        size -= skip;
    }
    argv[argc] = NULL;
    if (ftruncate(cfg_fd, 0) < 0 || pwrite(cfg_fd, data, size, 0) != (ssize_t)size)
        abort();
    ws_config *c = NULL;
    ws_error err;
    if (ws_config_load(argc, argv, &c, &err) == 0) {
        ws_rs_target t;
        ws_rs_target_parse(c, &t, &err);
        int n = ws_config_repo_count(c);
        for (int i = 0; i < n && i < 8; i++) {
            ws_storage_config sc;
            ws_config_storage(c, i, &sc, &err); /* strings borrowed from c */
        }
        long l;
        uint64_t u;
        double d;
        int b;
        ws_config_get_long(c, "compress-level", 1, 12, &l, &err);
        ws_config_get_size(c, "push-queue-max", 0, &u, &err);
        ws_config_get_seconds(c, "fetch-timeout", &d, &err);
        ws_config_get_bool(c, "s3-verify-tls", &b, &err);
    }
    ws_config_free(c); /* set even when loading failed */
    free(value);
    /* the values themselves, as restore reads them */
    char *s = fuzz_strndup(data, size < 256 ? size : 256);
    if (s) {
        double t;
        uint64_t lsn;
        ws_rs_parse_time(s, &t);
        ws_wal_parse_lsn(s, &lsn);
        free(s);
    }
    return 0;
}
