/* test_spool_id.c — the configuration id that agents write into agent.state and every proof
 * (.ack, .ok) is derived without the secret, except through a keyed hash whose key never leaves
 * <spool>/config.key (issue 11, "Secrets stay secret"). */
#include "tests/unit/tap.h"
#include "walship/agent/spool.h"
#include "walship/config.h"
#include "walship/stage/stage.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[] = "/tmp/walship-test-spool-id-XXXXXX";
static const char secret[] = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY";

/* The push (prefetch = 0) or prefetch spool's id for this secret (NULL: no credentials). */
static int spool_id(const char *sec, int prefetch, ws_spool *sp, ws_error *err)
{
    char wal[600], *argv[] = {"walship", "--repo", "s3://bucket/prefix", "push", NULL};
    snprintf(wal, sizeof wal, "%s/pg_wal/000000010000000000000001", base);
    if (sec) {
        setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
        setenv("AWS_SECRET_ACCESS_KEY", sec, 1);
    } else { /* no credential at all (s3-key is one too) */
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
    }
    ws_config *c = NULL;
    int rc = ws_config_load(4, argv, &c, err);
    if (rc == 0)
        rc = prefetch ? ws_spool_init_prefetch(sp, c, wal, err) : ws_spool_init(sp, c, wal, err);
    ws_config_free(c);
    return rc;
}

static int contains(const char *path, const char *needle)
{
    char buf[4096] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

int main(void)
{
    plan_no_plan();
    if (!mkdtemp(base))
        return 1;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/pg_wal/archive_status", base);
    char pgwal[700];
    snprintf(pgwal, sizeof pgwal, "%s/pg_wal", base);
    mkdir(pgwal, 0700);
    mkdir(dir, 0700);
    unsetenv("WALSHIP_CONFIG");

    for (int pf = 0; pf <= 1; pf++) {
        const char *kind = pf ? "prefetch spool" : "push spool";
        ws_spool sp;
        ws_error err;
        ws_error_clear(&err);
        char keyfile[PATH_MAX + 16], statefile[PATH_MAX + 16];
        ok(spool_id(secret, pf, &sp, &err) == 0, "%s: id computed: %s", kind, err.msg);
        char id1[65];
        snprintf(id1, sizeof id1, "%s", sp.config_id);
        snprintf(keyfile, sizeof keyfile, "%s/config.key", sp.dir);
        snprintf(statefile, sizeof statefile, "%s/agent.state", sp.dir);
        struct stat st;
        ok(stat(keyfile, &st) == 0 && st.st_size == 32 && (st.st_mode & 0777) == 0600,
           "%s: a 32-byte key, mode 0600", kind);

        /* what an agent writes to disk */
        ws_spool_state state = {12345, "", ""};
        snprintf(state.config_id, sizeof state.config_id, "%s", sp.config_id);
        snprintf(state.set_id, sizeof state.set_id, "%s", sp.config_id);
        ok(ws_spool_state_write(&sp, &state, &err) == 0, "%s: agent.state written", kind);
        unsigned char d[32];
        char hex[65];
        ws_sha256(secret, strlen(secret), d);
        ws_sha256_hex(d, hex);
        ok(!contains(statefile, secret) && !contains(statefile, hex) &&
               !contains(statefile, "wJal"),
           "%s: agent.state holds neither the secret nor its SHA-256", kind);

        ok(spool_id(secret, pf, &sp, &err) == 0 && strcmp(sp.config_id, id1) == 0,
           "%s: the same settings give the same id (the key is kept)", kind);
        ok(spool_id("another-secret", pf, &sp, &err) == 0 && strcmp(sp.config_id, id1) != 0,
           "%s: a new secret gives a new id (the agent restarts with new credentials)", kind);
        char id_none[65];
        ok(spool_id(NULL, pf, &sp, &err) == 0, "%s: id without a secret", kind);
        snprintf(id_none, sizeof id_none, "%s", sp.config_id);
        ok(strcmp(id_none, id1) != 0, "%s: ... differs from the one with it", kind);

        /* The id is not a function of the settings and the secret alone: with another key (a
         * plain hash would be the same), the same secret gives another id. So knowing every
         * setting and guessing the secret right does not reproduce an id read from disk. */
        ok(unlink(keyfile) == 0, "%s: key removed", kind);
        ok(spool_id(secret, pf, &sp, &err) == 0 && strcmp(sp.config_id, id1) != 0,
           "%s: under a new key the same secret gives another id", kind);
        char id2[65];
        snprintf(id2, sizeof id2, "%s", sp.config_id);
        ok(spool_id(NULL, pf, &sp, &err) == 0 && strcmp(sp.config_id, id_none) == 0,
           "%s: without a secret the id does not depend on the key", kind);

        /* a bad key file (planted, truncated, open to others) is replaced, not trusted */
        FILE *f = fopen(keyfile, "w");
        fputs("short", f);
        fclose(f);
        ok(spool_id(secret, pf, &sp, &err) == 0 && strcmp(sp.config_id, id2) != 0 &&
               stat(keyfile, &st) == 0 && st.st_size == 32 && (st.st_mode & 0777) == 0600,
           "%s: a malformed key file is replaced", kind);
        chmod(keyfile, 0644);
        snprintf(id2, sizeof id2, "%s", sp.config_id);
        ok(spool_id(secret, pf, &sp, &err) == 0 && strcmp(sp.config_id, id2) != 0 &&
               stat(keyfile, &st) == 0 && (st.st_mode & 0777) == 0600,
           "%s: a key readable by others is replaced", kind);
    }

    /* a posix repository without credentials writes no key */
    {
        char other[] = "/tmp/walship-test-spool-id2-XXXXXX";
        mkdtemp(other);
        char p[200];
        snprintf(p, sizeof p, "%s/pg_wal", other);
        mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/pg_wal/archive_status", other);
        mkdir(p, 0700);
        unsetenv("AWS_SECRET_ACCESS_KEY");
        unsetenv("AWS_ACCESS_KEY_ID");
        char wal[200], *argv[] = {"walship", "--repo", "/srv/repo", "push", NULL};
        snprintf(wal, sizeof wal, "%s/pg_wal/000000010000000000000001", other);
        ws_config *c = NULL;
        ws_error err;
        ws_spool sp;
        ok(ws_config_load(4, argv, &c, &err) == 0 && ws_spool_init(&sp, c, wal, &err) == 0,
           "posix repository: id computed");
        snprintf(p, sizeof p, "%s/config.key", sp.dir);
        ok(access(p, F_OK) != 0, "posix repository without credentials: no key file");
        ws_config_free(c);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", other);
        if (system(cmd) != 0)
            diag("could not remove %s", other);
    }
    {
        /* the prefetch proof of a file that was not fsync'd is bound to this boot */
        ws_spool sp;
        memset(&sp, 0, sizeof sp);
        snprintf(sp.dir, sizeof sp.dir, "%s", base);
        memset(sp.config_id, 'a', 64); /* a configuration id: 64 hex digits */
        sp.config_id[64] = '\0';
        char f[PATH_MAX];
        snprintf(f, sizeof f, "%s/000000010000000000000007", base);
        FILE *fp = fopen(f, "w");
        fputs("segment", fp);
        fclose(fp);
        struct stat st;
        stat(f, &st);
        const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        const char *boot = ws_spool_boot_id();
        ok(strlen(boot) == 36, "this kernel has a boot id: %s", boot);
        ws_spool_ack a, b;
        ws_error err;
        ws_spool_ok_make(&a, sp.config_id, sha, &st, 0);
        ok(ws_spool_ok_write(&sp, "000000010000000000000007", &a, &err) == 0 &&
               ws_spool_ok_read(&sp, "000000010000000000000007", &b) == 0 &&
               strcmp(b.boot_id, boot) == 0 && ws_spool_ok_valid(&b, sp.config_id, &st),
           "an unsynced file's proof carries the boot id and is valid in this boot");
        snprintf(b.boot_id, sizeof b.boot_id, "%s", "00000000-0000-0000-0000-000000000000");
        ok(!ws_spool_ok_valid(&b, sp.config_id, &st),
           "... and not after a restart (another boot id)");
        ws_spool_ok_make(&a, sp.config_id, sha, &st, 1);
        ok(ws_spool_ok_write(&sp, "000000010000000000000007", &a, &err) == 0 &&
               ws_spool_ok_read(&sp, "000000010000000000000007", &b) == 0 && b.boot_id[0] == 0 &&
               ws_spool_ok_valid(&b, sp.config_id, &st),
           "a synced file's proof has no boot id and is valid");
        char okpath[PATH_MAX + 40];
        snprintf(okpath, sizeof okpath, "%s/000000010000000000000007.ok", base);
        FILE *op = fopen(okpath, "a");
        fputs("boot = \n", op); /* the synced proof above, with an empty boot line */
        fclose(op);
        ok(ws_spool_ok_read(&sp, "000000010000000000000007", &b) < 0,
           "an .ok with an empty boot line is malformed: read fails, nothing is served");
        char other_id[65];
        memset(other_id, 'c', 64);
        other_id[64] = '\0';
        ok(!ws_spool_ok_valid(&b, other_id, &st), "a proof of another configuration is not valid");
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        diag("could not remove %s", base);
    return done_testing();
}
