/*
 * recovery.c — what makes the restored directory recover: recovery.signal (standby.signal
 * with --standby) and a marked block at the end of postgresql.auto.conf.
 *
 * restore_command calls this very walship binary with the same repository settings: the
 * config file by path (-c), and the non-secret options that came from the command line or
 * the environment repeated as flags. Secrets are never written there; when they came from
 * the environment, PostgreSQL's environment (or the config file) must supply them, and
 * restore says so.
 *
 * Recovery settings the backup's own postgresql.auto.conf carried (restore_command,
 * recovery_target*) are commented out, since PostgreSQL refuses several targets at once; a
 * block from an earlier walship restore is replaced.
 */
#include "restore/restore.h"
#include "walship/fsutil.h"
#include "walship/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK_BEGIN "# walship restore: begin"
#define BLOCK_END   "# walship restore: end"

typedef struct cmdbuf {
    char *buf;
    size_t len, used;
    int overflow;
    const ws_config *cfg;
    char secrets[256]; /* where the secrets not carried came from: "AWS_ACCESS_KEY_ID, ..." */
} cmdbuf;

static void put(cmdbuf *c, const char *s, size_t n)
{
    if (c->used + n + 1 > c->len) {
        c->overflow = 1;
        return;
    }
    memcpy(c->buf + c->used, s, n);
    c->used += n;
    c->buf[c->used] = '\0';
}

/* One shell word, with restore_command's '%' escaped as "%%". */
static void put_word(cmdbuf *c, const char *w)
{
    int plain = *w != '\0';
    for (const char *p = w; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/.:=,@+-", *p))
            plain = 0;
    put(c, " ", 1);
    if (!plain)
        put(c, "'", 1);
    for (const char *p = w; *p; p++) {
        if (*p == '%')
            put(c, "%%", 2);
        else if (*p == '\'')
            put(c, "'\\''", 4);
        else
            put(c, p, 1);
    }
    if (!plain)
        put(c, "'", 1);
}

/* The options fetch reads (walship/fetch/, the prefetch agent, the repositories' drivers):
 * only these are repeated in restore_command. Anything else (pgconn, which may hold a
 * password; basebackup's and push's settings) has no business in postgresql.auto.conf or
 * in every fetch's argv, where ps shows it to every user. */
static const char *const fetch_keys[] = {
    "log-level",          "fetch-timeout", "fetch-prefetch", "fetch-parallel",
    "agent-idle-timeout", "spool-path",    "io-timeout",     "s3-endpoint",
    "s3-region",          "s3-uri-style",  "s3-ca-file",     "s3-verify-tls",
};

int ws_rs_fetch_uses(const char *key)
{
    /* repoN-<key>: the per-repository form of a key */
    if (strncmp(key, "repo", 4) == 0 && key[4] >= '1' && key[4] <= '9' && key[5] == '-')
        key += 6;
    for (size_t i = 0; i < sizeof fetch_keys / sizeof *fetch_keys; i++)
        if (strcmp(key, fetch_keys[i]) == 0)
            return 1;
    return 0;
}

static void each_setting(void *arg, const char *key, const char *value, int secret)
{
    cmdbuf *c = arg;
    if (secret) {
        size_t n = strlen(c->secrets);
        snprintf(c->secrets + n, sizeof c->secrets - n, "%s%s", n ? ", " : "",
                 ws_config_source(c->cfg, key));
        return;
    }
    if (strcmp(key, "repo") != 0 && !ws_rs_fetch_uses(key))
        return;
    char flag[96];
    snprintf(flag, sizeof flag, "--%s", key);
    put_word(c, flag);
    put_word(c, value);
}

int ws_rs_restore_command(const ws_config *cfg, char *buf, size_t len, ws_error *err)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot find walship's own path");
    exe[n] = '\0';
    cmdbuf c = {buf, len, 0, 0, cfg, ""};
    buf[0] = '\0';
    put_word(&c, exe);
    const char *file = ws_config_file(cfg);
    if (file) {
        char abs[PATH_MAX];
        put_word(&c, "-c");
        put_word(&c, realpath(file, abs) ? abs : file);
    }
    ws_config_each_explicit(cfg, each_setting, &c);
    put(&c, " fetch \"%f\" \"%p\"", 16);
    if (c.overflow)
        return ws_error_set(err, WS_ECONFIG, "the restore_command would be too long");
    memmove(buf, buf + 1, c.used); /* the first word's leading space */
    if (c.secrets[0])
        ws_log_warn("S3 credentials came from the environment (%s): restore_command never "
                    "carries a secret, so fetch (run by PostgreSQL) must read them from %s%s%s "
                    "(s3-key, s3-key-secret, s3-token; chmod 600) or find them in PostgreSQL's "
                    "own environment",
                    c.secrets, file ? "the config file " : "a config file given with -c",
                    file ? file : "", file ? "" : " to restore");
    return 0;
}

/* 'value' as a postgresql.conf string: quotes doubled, backslashes escaped. */
static void conf_string(FILE *f, const char *v)
{
    fputc('\'', f);
    for (const char *p = v; *p; p++) {
        if (*p == '\'')
            fputs("''", f);
        else if (*p == '\\')
            fputs("\\\\", f);
        else
            fputc(*p, f);
    }
    fputc('\'', f);
}

static void setting(FILE *f, const char *key, const char *value)
{
    fprintf(f, "%s = ", key);
    conf_string(f, value);
    fputc('\n', f);
}

void ws_rs_recovery_print(FILE *f, const ws_rs_plan *p, const ws_rs_target *t,
                          const char *restore_command)
{
    fprintf(f, "%s (backup %s)\n", BLOCK_BEGIN, p->info.id);
    setting(f, "restore_command", restore_command);
    switch (t->kind) {
    case WS_RS_TARGET_TIME:
        setting(f, "recovery_target_time", t->value);
        break;
    case WS_RS_TARGET_LSN:
        setting(f, "recovery_target_lsn", t->value);
        break;
    case WS_RS_TARGET_XID:
        setting(f, "recovery_target_xid", t->value);
        break;
    case WS_RS_TARGET_NAME:
        setting(f, "recovery_target_name", t->value);
        break;
    case WS_RS_TARGET_IMMEDIATE:
        setting(f, "recovery_target", "immediate");
        break;
    case WS_RS_TARGET_NONE:
        break;
    }
    if (t->action)
        setting(f, "recovery_target_action", t->action);
    if (t->timeline)
        setting(f, "recovery_target_timeline", t->timeline);
    if (t->archive_off)
        setting(f, "archive_mode", "off");
    fprintf(f, "%s\n", BLOCK_END);
}

static int is_key(const char *line, const char *key)
{
    size_t n = strlen(key);
    return strncmp(line, key, n) == 0 && (line[n] == ' ' || line[n] == '\t' || line[n] == '=');
}

/* A recovery setting of the backup's own that would fight ours (archive_mode too when we
 * turn it off: ALTER SYSTEM may have set it). */
static int ours(const char *line, const ws_rs_target *t)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (t->archive_off && is_key(line, "archive_mode"))
        return 1;
    static const char *keys[] = {
        "restore_command",        "recovery_target",          "recovery_target_time",
        "recovery_target_lsn",    "recovery_target_xid",      "recovery_target_name",
        "recovery_target_action", "recovery_target_timeline", "recovery_target_inclusive"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (is_key(line, keys[i]))
            return 1;
    return 0;
}

static int write_file(const char *path, const char *data, size_t len, ws_error *err)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.walship-restore", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot create %s", tmp);
    size_t w = 0;
    while (w < len) {
        ssize_t k = write(fd, data + w, len - w);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return ws_error_errno(err, WS_EIO, e, "cannot write %s", tmp);
        }
        w += (size_t)k;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        unlink(tmp);
        return ws_error_errno(err, WS_EIO, errno, "cannot write %s", tmp);
    }
    if (rename(tmp, path) < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot rename %s", tmp);
    char dir[PATH_MAX];
    ws_dirname(path, dir, sizeof dir);
    return ws_fsync_dir(dir, err);
}

int ws_rs_recovery_write(const ws_rs_plan *p, const ws_rs_target *t, const char *restore_command,
                         int standby, ws_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/postgresql.auto.conf", p->pgdata);
    char *out = NULL;
    size_t outlen = 0;
    FILE *o = open_memstream(&out, &outlen);
    if (!o)
        return ws_error_oom(err);
    FILE *in = fopen(path, "r");
    if (in) {
        char line[8192];
        int in_block = 0;
        while (fgets(line, sizeof line, in)) {
            if (strncmp(line, BLOCK_BEGIN, strlen(BLOCK_BEGIN)) == 0) {
                in_block = 1;
                continue;
            }
            if (in_block) {
                if (strncmp(line, BLOCK_END, strlen(BLOCK_END)) == 0)
                    in_block = 0;
                continue;
            }
            if (ours(line, t))
                fputs("# commented out by walship restore: ", o);
            fputs(line, o);
        }
        fclose(in);
    } else if (errno != ENOENT) {
        fclose(o);
        free(out);
        return ws_error_errno(err, WS_EIO, errno, "cannot read %s", path);
    }
    ws_rs_recovery_print(o, p, t, restore_command);
    if (fclose(o) != 0) {
        free(out);
        return ws_error_oom(err);
    }
    int rc = write_file(path, out, outlen, err);
    free(out);
    if (rc < 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", p->pgdata, standby ? "standby.signal" : "recovery.signal");
    return write_file(path, "", 0, err);
}
