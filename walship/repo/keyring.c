/*
 * keyring.c — the encryption settings of one repository and its keyring object
 * (walship.keyring at the repository root; docs/encryption.md). The keyring is read on first
 * use and kept for the repository's lifetime; a writer creates it in a repository that holds
 * no objects, and refuses to turn encryption on where objects are stored unencrypted.
 */
#include "walship/repo/repo.h"
#include "walship/clock.h"
#include "walship/log.h"
#include "walship/repo/lock.h" /* ws_repo_wall_time */

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYRING_REFRESH 5.0 /* seconds */
#define RETIRED_MAX     64  /* rotations one process sees; beyond, it keeps its keys */

struct ws_repo_cipher {
    int on;
    ws_cipher_secret secret; /* strings borrowed from the configuration */
    char source[160];
    ws_keyring *keyring;
    double loaded_at;                 /* ws_now() when keyring was read */
    ws_keyring *retired[RETIRED_MAX]; /* replaced by a re-read (a rotation) */
    int nretired;
    int checked_plain; /* cipher none: checked once that r has no keyring */
};

void ws_repo_cipher_free(ws_repo_cipher *c)
{
    if (!c)
        return;
    ws_keyring_free(c->keyring);
    for (int i = 0; i < c->nretired; i++)
        ws_keyring_free(c->retired[i]);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

int ws_repo_cipher_setup(ws_repo *r, const ws_config *cfg, int i, ws_error *err)
{
    const char *cipher = ws_config_repo_get(cfg, i, "cipher");
    const char *pass = ws_config_repo_get(cfg, i, "cipher-pass");
    const char *file = ws_config_repo_get(cfg, i, "cipher-key-file");
    if (!cipher || strcmp(cipher, "none") == 0)
        return 0;
    if (strcmp(cipher, "aes-256-gcm") != 0)
        return ws_error_set(err, WS_ECONFIG, "cipher = \"%s\" is not aes-256-gcm or none", cipher);
    if (!!pass == !!file) {
        ws_error_set(
            err, WS_ECONFIG, "cipher = aes-256-gcm for repository %s needs %s", ws_repo_describe(r),
            pass ? "cipher-pass or cipher-key-file, not both" : "cipher-pass or cipher-key-file");
        ws_error_hint(err, "set cipher-pass in the config file (mode 0600) or WALSHIP_CIPHER_PASS "
                           "in the environment, or cipher-key-file (docs/encryption.md)");
        return -1;
    }
    if (pass && !*pass)
        return ws_error_set(err, WS_ECONFIG, "cipher-pass is empty");
    ws_repo_cipher **slot = ws_repo_cipher_slot(r);
    ws_repo_cipher *c = calloc(1, sizeof *c);
    if (!c)
        return ws_error_oom(err);
    c->on = 1;
    c->secret.pass = pass;
    c->secret.key_file = file;
    snprintf(c->source, sizeof c->source, "%s (from %s)", pass ? "cipher-pass" : "cipher-key-file",
             ws_config_source(cfg, pass ? "cipher-pass" : "cipher-key-file"));
    c->secret.source = c->source;
    ws_repo_cipher_free(*slot);
    *slot = c;
    return 0;
}

int ws_repo_encrypted(ws_repo *r)
{
    ws_repo_cipher *c = *ws_repo_cipher_slot(r);
    return c && c->on;
}

const ws_cipher_secret *ws_repo_cipher_secret(ws_repo *r)
{
    ws_repo_cipher *c = *ws_repo_cipher_slot(r);
    return c && c->on ? &c->secret : NULL;
}

static int first_key(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    snprintf(arg, 256, "%s", key);
    return 1; /* stop */
}

static int create_keyring(ws_repo *r, ws_repo_cipher *c, ws_error *err)
{
    char found[256] = "";
    int holds = ws_repo_holds_objects(r, found, sizeof found, err);
    if (holds < 0)
        return -1;
    /* history files alone do not make a repository "used" for its identity, but they would
     * be unencrypted objects in an encrypted one */
    if (!holds && ws_storage_list(ws_repo_storage(r), "wal/history/", first_key, found, err) < 0)
        return -1;
    holds = holds || found[0];
    if (holds) {
        ws_error_set(err, WS_ECONFIG,
                     "repository %s holds unencrypted objects (%s): turning encryption on for it "
                     "is refused",
                     ws_repo_describe(r), found);
        ws_error_hint(err, "encrypt into a new repository or prefix (docs/encryption.md), or "
                           "set cipher = none for this one");
        return -1;
    }
    /* the KDF salt of a new keyring comes from the repository's location, so writers that
     * create it at once (async agent slots, several hosts) create the same keys (cipher.h) */
    unsigned char salt[32];
    char seed[600];
    snprintf(seed, sizeof seed, "walship-keyring-salt-1:%s", ws_repo_describe(r));
    ws_sha256(seed, strlen(seed), salt);
    ws_keyring *k, *back = NULL;
    char *text, *stored = NULL;
    size_t len;
    if (ws_keyring_create(&c->secret, salt, &k, &text, err) < 0)
        return -1;
    int rc = ws_storage_put_small(ws_repo_storage(r), WS_KEYRING_KEY, WS_STORAGE_WRITE_EXCL, text,
                                  strlen(text), NULL, err);
    free(text);
    /* read it back: where the storage cannot refuse a second create, another writer's keyring
     * (another secret) may have replaced ours; ours is used only if it is the stored one */
    if (rc == 0 &&
        (rc = ws_storage_get_small(ws_repo_storage(r), WS_KEYRING_KEY, WS_KEYRING_MAX, &stored,
                                   &len, err)) == 0 &&
        (rc = ws_keyring_open(stored, len, &c->secret, ws_repo_describe(r), &back, err)) == 0 &&
        !ws_keyring_same(k, back))
        rc = ws_error_set(err, WS_ETRANSIENT,
                          "another writer created the keyring of %s at the same time with other "
                          "keys: retry",
                          ws_repo_describe(r));
    free(stored);
    ws_keyring_free(back);
    if (rc < 0) {
        ws_keyring_free(k);
        return -1;
    }
    c->keyring = k;
    c->loaded_at = ws_now();
    return 0;
}

int ws_repo_keyring(ws_repo *r, int writer, const ws_keyring **out, ws_error *err)
{
    *out = NULL;
    ws_repo_cipher *c = *ws_repo_cipher_slot(r);
    ws_storage *s = ws_repo_storage(r);
    if (!c || !c->on) {
        if (!writer || (c && c->checked_plain))
            return 0;
        /* cipher none: never add plaintext objects to an encrypted repository */
        ws_storage_info info;
        if (ws_storage_stat(s, WS_KEYRING_KEY, &info, err) == 0) {
            ws_error_set(err, WS_ECONFIG,
                         "repository %s is encrypted (it has " WS_KEYRING_KEY
                         ") but cipher is none here: refusing to store an unencrypted object "
                         "in it",
                         ws_repo_describe(r));
            ws_error_hint(err, "set cipher = aes-256-gcm and its cipher-pass or cipher-key-file");
            return -1;
        }
        if (err->code != WS_ENOENT)
            return -1;
        ws_error_clear(err);
        if (!c) {
            if (!(c = calloc(1, sizeof *c)))
                return ws_error_oom(err);
            *ws_repo_cipher_slot(r) = c;
        }
        c->checked_plain = 1;
        return 0;
    }
    if (c->keyring && writer && ws_now() - c->loaded_at > KEYRING_REFRESH) {
        /* a long-lived writer (the async agent) sees a `cipher rotate` within
         * KEYRING_REFRESH seconds; the re-read reuses the KEK unless the salt changed */
        char *text = NULL;
        size_t len;
        ws_keyring *fresh = NULL;
        ws_error e;
        ws_error_clear(&e);
        if (ws_storage_get_small(s, WS_KEYRING_KEY, WS_KEYRING_MAX, &text, &len, &e) == 0 &&
            ws_keyring_reopen(c->keyring, text, len, &c->secret, ws_repo_describe(r), &fresh, &e) ==
                0 &&
            !ws_keyring_same(fresh, c->keyring) && c->nretired < RETIRED_MAX) {
            /* a writer or reader of this repository may still hold the old one (its decrypt
             * stage, an open object): retired, freed with the repository */
            c->retired[c->nretired++] = c->keyring;
            c->keyring = fresh;
            fresh = NULL;
        } /* else the keys already held still write readable objects */
        ws_keyring_free(fresh);
        if (text) {
            OPENSSL_cleanse(text, len);
            free(text);
        }
        c->loaded_at = ws_now();
    }
    if (c->keyring) {
        *out = c->keyring;
        return 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        char *text = NULL;
        size_t len;
        if (ws_storage_get_small(s, WS_KEYRING_KEY, WS_KEYRING_MAX, &text, &len, err) == 0) {
            int rc = ws_keyring_open(text, len, &c->secret, ws_repo_describe(r), &c->keyring, err);
            c->loaded_at = ws_now();
            OPENSSL_cleanse(text, len);
            free(text);
            if (rc < 0)
                return -1;
            *out = c->keyring;
            return 0;
        }
        if (err->code != WS_ENOENT)
            return -1;
        if (!writer) {
            ws_error_set(err, WS_ECONFIG,
                         "repository %s has no " WS_KEYRING_KEY
                         " but cipher = aes-256-gcm here: it is not an encrypted repository",
                         ws_repo_describe(r));
            ws_error_hint(err, "set cipher = none to read it, or check repo");
            return -1;
        }
        ws_error_clear(err);
        if (create_keyring(r, c, err) == 0) {
            *out = c->keyring;
            return 0;
        }
        if (err->code != WS_EEXIST)
            return -1;
        ws_error_clear(err); /* another writer created it first: read theirs */
    }
    return ws_error_set(err, WS_ETRANSIENT, "the keyring of %s cannot be read",
                        ws_repo_describe(r));
}

int ws_repo_keyring_replace(ws_repo *r, const char *text, ws_error *err)
{
    /* put_small without EXCL replaces atomically (posix: temporary + rename; S3: one PUT), so
     * a crash leaves the old keyring or the new one, never neither */
    return ws_storage_put_small(ws_repo_storage(r), WS_KEYRING_KEY, 0, text, strlen(text), NULL,
                                err);
}

/* ---- the keyring lock (repo.h) ---- */

struct ws_keyring_lock {
    ws_repo *r;
    char token[64];
    char text[512];
    size_t len;
};

static void lock_describe(const char *text, size_t len, char *out, size_t outlen, int64_t *age)
{
    char host[128] = "?";
    long pid = 0;
    long long started = 0;
    char buf[512];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (sscanf(line, "host = %127s", host) == 1)
            continue;
        if (sscanf(line, "pid = %ld", &pid) == 1)
            continue;
        (void)sscanf(line, "started = %lld", &started);
    }
    *age = started ? ws_repo_wall_time() - (int64_t)started : -1;
    snprintf(out, outlen, "host %s, pid %ld, taken %lld s ago", host, pid, (long long)*age);
}

static int lock_held(ws_repo *r, const char *text, size_t len, ws_error *err)
{
    char who[256];
    int64_t age;
    lock_describe(text, len, who, sizeof who, &age);
    ws_error_set(err, WS_EEXIST,
                 "another walship cipher change or rotate holds the keyring lock of %s (%s): "
                 "refused, nothing changed",
                 ws_repo_describe(r), who);
    if (age > WS_KEYRING_LOCK_STALE)
        ws_error_hint(err,
                      "the lock is older than %d s: a killed cipher command left it; if none is "
                      "running, remove " WS_KEYRING_LOCK_KEY " from the repository and rerun",
                      WS_KEYRING_LOCK_STALE);
    else
        ws_error_hint(err, "run one cipher change or rotate at a time; rerun once it is done");
    return -1;
}

/* 1 if the stored lock is l's, 0 if it is another's (err set), -1 on error. */
static int lock_ours(ws_keyring_lock *l, ws_error *err)
{
    char *text = NULL;
    size_t len;
    if (ws_storage_get_small(ws_repo_storage(l->r), WS_KEYRING_LOCK_KEY, 4096, &text, &len, err) <
        0) {
        if (err->code == WS_ENOENT)
            ws_error_set(err, WS_EEXIST, "the keyring lock of %s vanished while held",
                         ws_repo_describe(l->r));
        return -1;
    }
    int ours = len == l->len && memcmp(text, l->text, len) == 0;
    if (!ours)
        lock_held(l->r, text, len, err);
    free(text);
    return ours;
}

int ws_repo_keyring_lock(ws_repo *r, ws_keyring_lock **out, ws_error *err)
{
    *out = NULL;
    ws_storage *s = ws_repo_storage(r);
    char *text = NULL;
    size_t len;
    /* a lock already there: refused before writing anything */
    if (ws_storage_get_small(s, WS_KEYRING_LOCK_KEY, 4096, &text, &len, err) == 0) {
        lock_held(r, text, len, err);
        free(text);
        return -1;
    }
    if (err->code != WS_ENOENT)
        return -1;
    ws_error_clear(err);
    ws_keyring_lock *l = calloc(1, sizeof *l);
    if (!l)
        return ws_error_oom(err);
    l->r = r;
    unsigned char rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        free(l);
        return ws_error_set(err, WS_EINTERNAL, "RAND_bytes failed");
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(l->token + 2 * i, 3, "%02x", rnd[i]);
    char host[128] = "unknown";
    if (gethostname(host, sizeof host - 1) < 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    int n = snprintf(l->text, sizeof l->text,
                     "# walship keyring lock: a cipher change or rotate is running\n"
                     "owner = %s\nhost = %s\npid = %ld\nstarted = %lld\n",
                     l->token, host, (long)getpid(), (long long)ws_repo_wall_time());
    if (n < 0 || (size_t)n >= sizeof l->text) {
        free(l);
        return ws_error_set(err, WS_EINTERNAL, "keyring lock text too long");
    }
    l->len = (size_t)n;
    if (ws_storage_put_small(s, WS_KEYRING_LOCK_KEY, WS_STORAGE_WRITE_EXCL, l->text, l->len, NULL,
                             err) < 0) {
        if (err->code == WS_EEXIST) {
            ws_error_clear(err);
            if (ws_storage_get_small(s, WS_KEYRING_LOCK_KEY, 4096, &text, &len, err) == 0) {
                lock_held(r, text, len, err);
                free(text);
            } else {
                ws_error_set(err, WS_EEXIST,
                             "another walship cipher change or rotate holds the keyring lock "
                             "of %s: refused, nothing changed",
                             ws_repo_describe(r));
            }
        }
        free(l);
        return -1;
    }
    /* A store that ignores If-None-Match (s3rver, some S3-compatible servers) lets a second
     * PUT replace the first: each taker waits WS_KEYRING_LOCK_SETTLE seconds, then reads the
     * lock back and goes on only if it still holds its own owner token. Two takers' PUTs
     * both land after both checked for absence, so within a moment of each other: the one
     * whose PUT came first reads the other's token and is refused. posix (link(2)) needs no
     * wait; S3 is the only driver with object metadata. */
    if (ws_storage_features(s) & WS_STORAGE_FEAT_META)
        ws_sleep(WS_KEYRING_LOCK_SETTLE);
    if (lock_ours(l, err) != 1) {
        free(l);
        return -1;
    }
    *out = l;
    return 0;
}

int ws_repo_keyring_lock_check(ws_keyring_lock *l, ws_error *err)
{
    return lock_ours(l, err) == 1 ? 0 : -1;
}

void ws_repo_keyring_unlock(ws_keyring_lock *l)
{
    if (!l)
        return;
    ws_error e;
    ws_error_clear(&e);
    if (lock_ours(l, &e) == 1 &&
        ws_storage_remove(ws_repo_storage(l->r), WS_KEYRING_LOCK_KEY, &e) < 0)
        ws_log_err(WS_LOG_WARN, &e);
    free(l);
}
