/*
 * keys.c — `walship cipher change` and `walship cipher rotate` (docs/encryption.md).
 *
 * change: the keyring is opened with cipher-pass / cipher-key-file and rewrapped under
 * cipher-pass-new / cipher-key-file-new: one small object replaced atomically (a crash leaves
 * the old keyring or the new one, so the old or the new secret works, never neither), then read
 * back and opened with the new secret. Objects are not touched.
 * rotate: a new random master key with the next key id becomes current for new objects; the
 * old ones stay in the keyring. The report counts the stored objects per key id.
 * Both hold the keyring lock (repo.h) from reading the keyring to replacing it: a second
 * change or rotate meanwhile is refused, naming the holder (pushes may go on).
 */
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/keys.h"
#include "walship/repo/open.h"
#include "walship/storage/storage.h"
#include "walship/log.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_count {
    ws_repo *r;
    uint64_t by_id[WS_KEYRING_IDS + 1]; /* [0]: unencrypted objects */
    uint32_t id[WS_KEYRING_IDS + 1];
    int nids;
    uint64_t other, failed;
} key_count;

static void count_id(key_count *c, uint32_t id)
{
    for (int i = 0; i < c->nids; i++)
        if (c->id[i] == id) {
            c->by_id[i]++;
            return;
        }
    if (c->nids <= WS_KEYRING_IDS) {
        c->id[c->nids] = id;
        c->by_id[c->nids++] = 1;
    }
}

static int count_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    key_count *c = arg;
    ws_storage_reader *rd;
    ws_error e;
    ws_error_clear(&e);
    unsigned char b[WS_OBJHDR_SIZE + WS_CIPHER_PREFIX];
    size_t n = 0;
    if (ws_storage_open_read(ws_repo_storage(c->r), key, 0, sizeof b, &rd, &e) < 0) {
        c->failed++;
        return 0;
    }
    int rc = ws_storage_read_full(rd, b, sizeof b, &n, &e);
    ws_storage_reader_close(rd);
    ws_objhdr h;
    uint32_t id;
    if (rc < 0)
        c->failed++;
    else if (ws_objhdr_decode(b, n, key, &h, &e) < 0)
        c->other++; /* a marker (walship.started) or a stray file */
    else if (h.encryption == WS_ENC_NONE)
        count_id(c, 0);
    else if (ws_cipher_prefix_key_id(b + WS_OBJHDR_SIZE, n - WS_OBJHDR_SIZE, &id, &e) == 0)
        count_id(c, id);
    else
        c->failed++;
    return 0;
}

static void report_counts(ws_repo *r)
{
    key_count c;
    memset(&c, 0, sizeof c);
    c.r = r;
    static const char *const prefixes[] = {WS_KEY_WAL_PREFIX, WS_KEY_GAP_PREFIX,
                                           WS_KEY_BACKUP_PREFIX};
    ws_error err;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        ws_error_clear(&err);
        if (ws_storage_list(ws_repo_storage(r), prefixes[i], count_cb, &c, &err) < 0) {
            ws_log_err(WS_LOG_WARN, &err);
            return;
        }
    }
    for (int i = 0; i < c.nids; i++)
        if (c.id[i])
            printf("%s: %llu object(s) under key id %u\n", ws_repo_describe(r),
                   (unsigned long long)c.by_id[i], c.id[i]);
        else
            printf("%s: %llu unencrypted object(s)\n", ws_repo_describe(r),
                   (unsigned long long)c.by_id[i]);
    if (c.failed)
        printf("%s: %llu object(s) could not be read\n", ws_repo_describe(r),
               (unsigned long long)c.failed);
}

static int change_one(ws_repo *r, int i, const ws_config *cfg, int rotate)
{
    ws_error err;
    ws_error_clear(&err);
    const ws_keyring *cur;
    if (ws_repo_keyring(r, 0, &cur, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    (void)cur; /* checked the key; the keyring changed is read again under the lock */
    ws_cipher_secret news = *ws_repo_cipher_secret(r);
    if (!rotate) {
        news.pass = ws_config_repo_get(cfg, i, "cipher-pass-new");
        news.key_file = ws_config_repo_get(cfg, i, "cipher-key-file-new");
        news.source = news.pass ? "cipher-pass-new" : "cipher-key-file-new";
        if (!!news.pass == !!news.key_file) {
            ws_log_error("cipher change: set cipher-pass-new (config file or environment) or "
                         "cipher-key-file-new for %s, not both",
                         ws_repo_describe(r));
            return WS_EXIT_USAGE;
        }
    }
    /* Two change/rotate at once would each read the keyring, change their copy and replace
     * it: the last replace wins and the other's new key id is lost (with every object a
     * writer encrypted under it meanwhile). The keyring lock serialises them; the keyring is
     * read again under it, never from a copy read before. */
    char *text = NULL;
    size_t tlen = 0;
    ws_keyring *k = NULL;
    ws_keyring_lock *lock = NULL;
    if (ws_repo_keyring_lock(r, &lock, &err) < 0)
        goto fail;
    if (ws_storage_get_small(ws_repo_storage(r), WS_KEYRING_KEY, WS_KEYRING_MAX, &text, &tlen,
                             &err) < 0 ||
        ws_keyring_open(text, tlen, ws_repo_cipher_secret(r), ws_repo_describe(r), &k, &err) < 0)
        goto fail;
    OPENSSL_cleanse(text, tlen);
    free(text);
    text = NULL;
    if (rotate && ws_keyring_rotate(k, &err) < 0)
        goto fail;
    if (ws_keyring_export(k, &news, &text, &err) < 0 ||
        ws_repo_keyring_lock_check(lock, &err) < 0 || ws_repo_keyring_replace(r, text, &err) < 0)
        goto fail;
    /* read back: the stored keyring opens with the new secret and holds the same keys */
    ws_keyring *back = NULL;
    char *stored = NULL;
    size_t len;
    int ok = ws_storage_get_small(ws_repo_storage(r), WS_KEYRING_KEY, WS_KEYRING_MAX, &stored, &len,
                                  &err) == 0 &&
             ws_keyring_open(stored, len, &news, ws_repo_describe(r), &back, &err) == 0 &&
             ws_keyring_same(back, k);
    free(stored);
    ws_keyring_free(back);
    if (!ok) {
        if (!err.code)
            ws_error_set(&err, WS_EINTERNAL, "the stored keyring differs from the one written");
        goto fail;
    }
    if (rotate)
        printf("%s: new objects now use key id %u (%d key ids in the keyring)\n",
               ws_repo_describe(r), ws_keyring_current(k), ws_keyring_count(k));
    else
        printf("%s: the keyring is now wrapped with %s; the old secret no longer opens it\n",
               ws_repo_describe(r), news.source);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    ws_keyring_free(k);
    ws_repo_keyring_unlock(lock);
    if (rotate)
        report_counts(r);
    return WS_EXIT_OK;
fail:
    ws_error_prefix(&err, "cipher %s of %s", rotate ? "rotate" : "change", ws_repo_describe(r));
    ws_log_err(WS_LOG_ERROR, &err);
    if (text)
        OPENSSL_cleanse(text, strlen(text));
    free(text);
    ws_keyring_free(k);
    ws_repo_keyring_unlock(lock);
    return WS_EXIT_FAIL;
}

int ws_cmd_cipher(const ws_config *cfg)
{
    const char *sub = ws_config_nargs(cfg) == 1 ? ws_config_arg(cfg, 0) : "";
    int rotate = strcmp(sub, "rotate") == 0;
    if (!rotate && strcmp(sub, "change") != 0) {
        ws_log_error("usage: walship cipher change | walship cipher rotate");
        return WS_EXIT_USAGE;
    }
    ws_error err;
    ws_error_clear(&err);
    ws_repo **repos;
    int nrepos;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    int rc = WS_EXIT_OK, any = 0;
    for (int i = 0; i < nrepos; i++) {
        if (!ws_repo_encrypted(repos[i]))
            continue;
        any = 1;
        int one = change_one(repos[i], i, cfg, rotate);
        if (one != WS_EXIT_OK && rc != WS_EXIT_USAGE)
            rc = one;
    }
    if (!any) {
        ws_log_error("cipher %s: no repository has cipher = aes-256-gcm", sub);
        rc = WS_EXIT_USAGE;
    }
    fflush(stdout);
    ws_cmd_close_repos(repos, nrepos);
    return rc;
}
