/* cipher.c — the keyring and the AES-256-GCM frame stages (cipher.h, docs/encryption.md). */
#include "walship/codec/cipher.h"

#include "walship/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYRING_FORMAT 1
#define SCRYPT_N       32768 /* 2^15: 32 MiB, ~0.1 s; stored in the keyring, so it can grow */
#define SCRYPT_R       8
#define SCRYPT_P       1
/* The most a keyring read from the repository may make scrypt use (128 * N * r bytes): its
 * parameters are repository data, and whoever can write the bucket must not be able to make
 * every push allocate gigabytes. 8 times what walship writes. */
#define SCRYPT_MAXMEM ((uint64_t)256 << 20)
#define WRAP_LEN      (12 + 32 + 16) /* nonce, wrapped key, tag */
#define SALT_LEN      32

static const unsigned char prefix_magic[4] = {'W', 'S', 'E', '1'};

/* ---- primitives ---- */

static int gcm(EVP_CIPHER_CTX *c, int enc, const unsigned char key[32],
               const unsigned char nonce[12], const unsigned char *aad, size_t aad_len,
               const unsigned char *in, size_t len, unsigned char *out, unsigned char tag[16])
{
    int n;
    if ((enc ? EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, nonce, NULL)
             : EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), key, nonce, NULL)) != 1)
        return -1;
    if (aad_len && EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
        return -1;
    if (len && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1)
        return -1;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
        return -1;
    if (EVP_CipherFinal_ex(c, out + len, &n) != 1)
        return -1; /* decrypt: the tag does not verify */
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        return -1;
    return 0;
}

int ws_cipher_gcm_seal(const unsigned char key[32], const unsigned char nonce[12],
                       const unsigned char *aad, size_t aad_len, const unsigned char *in,
                       size_t len, unsigned char *out, unsigned char tag[16], ws_error *err)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int rc = c ? gcm(c, 1, key, nonce, aad, aad_len, in, len, out, tag) : -1;
    EVP_CIPHER_CTX_free(c);
    return rc < 0 ? ws_error_set(err, WS_EINTERNAL, "AES-256-GCM encryption failed") : 0;
}

int ws_cipher_gcm_open(const unsigned char key[32], const unsigned char nonce[12],
                       const unsigned char *aad, size_t aad_len, const unsigned char *in,
                       size_t len, const unsigned char tag[16], unsigned char *out, ws_error *err)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int rc = c ? gcm(c, 0, key, nonce, aad, aad_len, in, len, out, (unsigned char *)tag) : -1;
    EVP_CIPHER_CTX_free(c);
    return rc < 0 ? ws_error_set(err, WS_ECORRUPT, "authentication failed") : 0;
}

static int hkdf(const unsigned char *ikm, size_t ikm_len, const unsigned char *salt,
                size_t salt_len, const char *info, unsigned char *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!kc)
        return -1;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    int rc = EVP_KDF_derive(kc, out, out_len, p) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(kc);
    return rc;
}

static int scrypt(const char *pass, const unsigned char *salt, uint64_t n, uint32_t r, uint32_t p,
                  unsigned char out[32])
{
    uint64_t maxmem = SCRYPT_MAXMEM + (1 << 20); /* OpenSSL counts a little more than 128 N r */
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!kc)
        return -1;
    OSSL_PARAM prm[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass, strlen(pass)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SALT_LEN),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int rc = EVP_KDF_derive(kc, out, 32, prm) == 1 ? 0 : -1;
    EVP_KDF_CTX_free(kc);
    return rc;
}

int ws_cipher_keyed_hash(const unsigned char hash_key[32], const unsigned char sha256[32],
                         unsigned char out[32])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    EVP_MAC_free(m);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                      OSSL_PARAM_construct_end()};
    size_t n;
    int rc = c && EVP_MAC_init(c, hash_key, 32, p) == 1 &&
                     EVP_MAC_update(c, (const unsigned char *)"walship-keyed-1", 15) == 1 &&
                     EVP_MAC_update(c, sha256, 32) == 1 && EVP_MAC_final(c, out, &n, 32) == 1
                 ? 0
                 : -1;
    EVP_MAC_CTX_free(c);
    return rc;
}

/* ---- the KEK ---- */

typedef struct kdf_params {
    int key_file; /* 0 = scrypt */
    uint64_t n;
    uint32_t r, p;
    unsigned char salt[SALT_LEN];
} kdf_params;

static int read_key_file(const char *path, unsigned char out[32], ws_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return ws_error_errno(err, WS_ECONFIG, errno, "cannot open cipher-key-file %s", path);
    struct stat st;
    unsigned char buf[33];
    ssize_t n = -1;
    int rc = -1;
    if (fstat(fd, &st) < 0)
        ws_error_errno(err, WS_ECONFIG, errno, "cannot stat cipher-key-file %s", path);
    else if (!S_ISREG(st.st_mode))
        ws_error_set(err, WS_ECONFIG, "cipher-key-file %s is not a regular file", path);
    else if (st.st_mode & 077)
        ws_error_set(err, WS_ECONFIG,
                     "cipher-key-file %s is readable by others (mode %04o); refused: "
                     "chmod 600 it",
                     path, (unsigned)(st.st_mode & 07777));
    else if ((n = read(fd, buf, sizeof buf)) != 32)
        ws_error_set(err, WS_ECONFIG, "cipher-key-file %s does not hold exactly 32 bytes", path);
    else {
        memcpy(out, buf, 32);
        rc = 0;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return rc;
}

/* KEKs derived from passphrases in this process, by SHA-256(salt, parameters, passphrase). */
#define KEK_CACHE 4
static struct {
    int valid;
    unsigned char id[32], kek[32];
} kek_cache[KEK_CACHE];
static int kek_next;
static pthread_mutex_t kek_mu = PTHREAD_MUTEX_INITIALIZER;

static int derive_kek(const ws_cipher_secret *s, const kdf_params *kp, unsigned char kek[32],
                      ws_error *err)
{
    if (kp->key_file) {
        if (!s->key_file)
            return ws_error_set(err, WS_EAUTH,
                                "the repository's keyring is wrapped with a key file: set "
                                "cipher-key-file, not cipher-pass");
        unsigned char raw[32];
        if (read_key_file(s->key_file, raw, err) < 0)
            return -1;
        int rc = hkdf(raw, 32, kp->salt, SALT_LEN, "walship-kek-1", kek, 32);
        OPENSSL_cleanse(raw, sizeof raw);
        return rc < 0 ? ws_error_set(err, WS_EINTERNAL, "HKDF failed") : 0;
    }
    if (!s->pass)
        return ws_error_set(err, WS_EAUTH,
                            "the repository's keyring is wrapped with a passphrase: set "
                            "cipher-pass, not cipher-key-file");
    /* scrypt once per process for one passphrase, salt and parameters: the async agent's job
     * slots each open the repository, and would each pay ~0.1 s of CPU and 32 MiB */
    unsigned char id[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int idn;
    uint64_t prm[3] = {kp->n, kp->r, kp->p};
    int have_id = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(md, kp->salt, SALT_LEN) == 1 &&
                  EVP_DigestUpdate(md, prm, sizeof prm) == 1 &&
                  EVP_DigestUpdate(md, s->pass, strlen(s->pass)) == 1 &&
                  EVP_DigestFinal_ex(md, id, &idn) == 1;
    EVP_MD_CTX_free(md);
    pthread_mutex_lock(&kek_mu);
    for (int i = 0; have_id && i < KEK_CACHE; i++)
        if (kek_cache[i].valid && CRYPTO_memcmp(kek_cache[i].id, id, 32) == 0) {
            memcpy(kek, kek_cache[i].kek, 32);
            pthread_mutex_unlock(&kek_mu);
            OPENSSL_cleanse(id, sizeof id);
            return 0;
        }
    int rc = scrypt(s->pass, kp->salt, kp->n, kp->r, kp->p, kek);
    if (rc == 0 && have_id) {
        int slot = kek_next++ % KEK_CACHE;
        memcpy(kek_cache[slot].id, id, 32);
        memcpy(kek_cache[slot].kek, kek, 32);
        kek_cache[slot].valid = 1;
    }
    pthread_mutex_unlock(&kek_mu);
    OPENSSL_cleanse(id, sizeof id);
    if (rc < 0)
        return ws_error_set(err, WS_EINTERNAL, "scrypt failed (N %llu, r %u, p %u)",
                            (unsigned long long)kp->n, kp->r, kp->p);
    return 0;
}

/* ---- the keyring ---- */

struct ws_keyring {
    kdf_params kp;         /* of the text it was opened from, and its KEK: a reopen of the */
    unsigned char kek[32]; /* same text skips scrypt (ws_keyring_reopen) */
    int have_kek;
    uint32_t current;
    int n;
    uint32_t id[WS_KEYRING_IDS];
    unsigned char key[WS_KEYRING_IDS][32];
    unsigned char hash_key[32];
};

void ws_keyring_free(ws_keyring *k)
{
    if (!k)
        return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

uint32_t ws_keyring_current(const ws_keyring *k)
{
    return k->current;
}

int ws_keyring_count(const ws_keyring *k)
{
    return k->n;
}

uint32_t ws_keyring_id(const ws_keyring *k, int i)
{
    return k->id[i];
}

const unsigned char *ws_keyring_hash_key(const ws_keyring *k)
{
    return k->hash_key;
}

int ws_keyring_same(const ws_keyring *a, const ws_keyring *b)
{
    if (a->n != b->n || a->current != b->current ||
        CRYPTO_memcmp(a->hash_key, b->hash_key, 32) != 0)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->id[i] != b->id[i] || CRYPTO_memcmp(a->key[i], b->key[i], 32) != 0)
            return 0;
    return 1;
}

static const unsigned char *keyring_key(const ws_keyring *k, uint32_t id)
{
    for (int i = 0; i < k->n; i++)
        if (k->id[i] == id)
            return k->key[i];
    return NULL;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[b[i] >> 4];
        out[2 * i + 1] = h[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* GCM under the KEK; the AAD is the entry's name, so an entry cannot stand in for another. */
static int wrap(const unsigned char kek[32], const char *name, const unsigned char key[32],
                char out[2 * WRAP_LEN + 1], ws_error *err)
{
    unsigned char w[WRAP_LEN];
    if (RAND_bytes(w, 12) != 1)
        return ws_error_set(err, WS_EINTERNAL, "no random bytes to be had");
    if (ws_cipher_gcm_seal(kek, w, (const unsigned char *)name, strlen(name), key, 32, w + 12,
                           w + 44, err) < 0)
        return -1;
    hex(w, WRAP_LEN, out);
    return 0;
}

static int unwrap(const unsigned char kek[32], const char *name, const char *text,
                  unsigned char key[32])
{
    unsigned char w[WRAP_LEN];
    ws_error e;
    if (unhex(text, w, WRAP_LEN) < 0)
        return -2;
    return ws_cipher_gcm_open(kek, w, (const unsigned char *)name, strlen(name), w + 12, 32, w + 44,
                              key, &e);
}

/* The keyring's text with the keys of k wrapped under s's KEK (kdf salt: salt, or random). If
 * derive is set, k's keys are first derived from that KEK (a new keyring, see create). */
static int export_with(ws_keyring *k, const ws_cipher_secret *s, const unsigned char *kdf_salt,
                       int derive, char **text, ws_error *err)
{
    kdf_params kp = {.key_file = s->key_file != NULL, .n = SCRYPT_N, .r = SCRYPT_R, .p = SCRYPT_P};
    if (kdf_salt)
        memcpy(kp.salt, kdf_salt, SALT_LEN);
    else if (RAND_bytes(kp.salt, SALT_LEN) != 1)
        return ws_error_set(err, WS_EINTERNAL, "no random bytes to be had");
    unsigned char kek[32];
    if (derive_kek(s, &kp, kek, err) < 0)
        return -1;
    if (derive && (hkdf(kek, 32, kp.salt, SALT_LEN, "walship-master-1", k->key[0], 32) < 0 ||
                   hkdf(kek, 32, kp.salt, SALT_LEN, "walship-hash-1", k->hash_key, 32) < 0)) {
        OPENSSL_cleanse(kek, sizeof kek);
        return ws_error_set(err, WS_EINTERNAL, "HKDF failed");
    }
    size_t cap = 1024 + (size_t)k->n * (2 * WRAP_LEN + 32);
    char *t = malloc(cap), salt[2 * SALT_LEN + 1], w[2 * WRAP_LEN + 1], name[32];
    if (!t) {
        OPENSSL_cleanse(kek, sizeof kek);
        return ws_error_oom(err);
    }
    hex(kp.salt, SALT_LEN, salt);
    size_t off = (size_t)snprintf(
        t, cap,
        "# walship keyring: the wrapped keys of an encrypted repository; do not edit, do not "
        "remove (docs/encryption.md)\nwalship-keyring = %d\ncipher = aes-256-gcm\nkdf = %s\n",
        KEYRING_FORMAT, kp.key_file ? "key-file" : "scrypt");
    if (!kp.key_file)
        off +=
            (size_t)snprintf(t + off, cap - off, "scrypt-n = %llu\nscrypt-r = %u\nscrypt-p = %u\n",
                             (unsigned long long)kp.n, kp.r, kp.p);
    off += (size_t)snprintf(t + off, cap - off, "salt = %s\ncurrent = %u\n", salt, k->current);
    int rc = wrap(kek, "hash-key", k->hash_key, w, err);
    if (rc == 0)
        off += (size_t)snprintf(t + off, cap - off, "hash-key = %s\n", w);
    for (int i = 0; rc == 0 && i < k->n; i++) {
        snprintf(name, sizeof name, "key-%u", k->id[i]);
        if ((rc = wrap(kek, name, k->key[i], w, err)) == 0)
            off += (size_t)snprintf(t + off, cap - off, "%s = %s\n", name, w);
    }
    OPENSSL_cleanse(kek, sizeof kek);
    if (rc < 0) {
        free(t);
        return -1;
    }
    *text = t;
    return 0;
}

int ws_keyring_export(const ws_keyring *k, const ws_cipher_secret *s, char **text, ws_error *err)
{
    *text = NULL;
    return export_with((ws_keyring *)k, s, NULL, 0, text, err);
}

int ws_keyring_create(const ws_cipher_secret *s, const unsigned char *salt, ws_keyring **out,
                      char **text, ws_error *err)
{
    *out = NULL;
    *text = NULL;
    ws_keyring *k = calloc(1, sizeof *k);
    if (!k)
        return ws_error_oom(err);
    k->n = 1;
    k->id[0] = k->current = 1;
    if (export_with(k, s, salt, 1, text, err) < 0) {
        ws_keyring_free(k);
        return -1;
    }
    *out = k;
    return 0;
}

int ws_keyring_rotate(ws_keyring *k, ws_error *err)
{
    if (k->n == WS_KEYRING_IDS)
        return ws_error_set(err, WS_ECONFIG, "the keyring holds %d master keys already",
                            WS_KEYRING_IDS);
    uint32_t next = 0;
    for (int i = 0; i < k->n; i++)
        if (k->id[i] > next)
            next = k->id[i];
    if (RAND_bytes(k->key[k->n], 32) != 1)
        return ws_error_set(err, WS_EINTERNAL, "no random bytes to be had");
    k->id[k->n++] = next + 1;
    k->current = next + 1;
    return 0;
}

static int same_kdf(const kdf_params *a, const kdf_params *b)
{
    return a->key_file == b->key_file && a->n == b->n && a->r == b->r && a->p == b->p &&
           memcmp(a->salt, b->salt, SALT_LEN) == 0;
}

int ws_keyring_open(const char *text, size_t len, const ws_cipher_secret *s, const char *where,
                    ws_keyring **out, ws_error *err)
{
    return ws_keyring_reopen(NULL, text, len, s, where, out, err);
}

int ws_keyring_reopen(const ws_keyring *prev, const char *text, size_t len,
                      const ws_cipher_secret *s, const char *where, ws_keyring **out, ws_error *err)
{
    *out = NULL;
    if (len > WS_KEYRING_MAX || memchr(text, '\0', len))
        return ws_error_set(err, WS_ECORRUPT, "the keyring of %s is not a keyring", where);
    kdf_params kp = {0};
    int format = -1, have_salt = 0, kdf_seen = 0;
    long current = -1;
    char hash_w[2 * WRAP_LEN + 8] = "";
    struct {
        uint32_t id;
        char w[2 * WRAP_LEN + 8];
    } *ent = calloc(WS_KEYRING_IDS, sizeof *ent);
    ws_keyring *k = calloc(1, sizeof *k);
    if (!ent || !k) {
        free(ent);
        free(k);
        return ws_error_oom(err);
    }
    int n = 0;
    const char *line = text, *end = text + len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        char buf[256], key[32], val[200];
        snprintf(buf, sizeof buf, "%.*s", (int)(ll < sizeof buf ? ll : sizeof buf - 1), line);
        line += ll + (nl ? 1 : 0);
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        if (sscanf(buf, "%31[a-z0-9-] = %199s", key, val) != 2)
            goto bad;
        unsigned id;
        if (strcmp(key, "walship-keyring") == 0)
            format = atoi(val);
        else if (strcmp(key, "cipher") == 0) {
            if (strcmp(val, "aes-256-gcm") != 0)
                goto bad;
        } else if (strcmp(key, "kdf") == 0) {
            kdf_seen = 1;
            if (strcmp(val, "key-file") == 0)
                kp.key_file = 1;
            else if (strcmp(val, "scrypt") != 0)
                goto bad;
        } else if (strcmp(key, "scrypt-n") == 0)
            kp.n = strtoull(val, NULL, 10);
        else if (strcmp(key, "scrypt-r") == 0)
            kp.r = (uint32_t)strtoul(val, NULL, 10);
        else if (strcmp(key, "scrypt-p") == 0)
            kp.p = (uint32_t)strtoul(val, NULL, 10);
        else if (strcmp(key, "salt") == 0)
            have_salt = unhex(val, kp.salt, SALT_LEN) == 0;
        else if (strcmp(key, "current") == 0)
            current = atol(val);
        else if (strcmp(key, "hash-key") == 0)
            snprintf(hash_w, sizeof hash_w, "%s", val);
        else if (sscanf(key, "key-%u", &id) == 1 && id > 0 && n < WS_KEYRING_IDS) {
            ent[n].id = id;
            snprintf(ent[n].w, sizeof ent[n].w, "%s", val);
            n++;
        }
    }
    if (format > KEYRING_FORMAT) {
        free(ent);
        free(k);
        ws_error_set(err, WS_ECONFIG, "the keyring of %s has format %d; this walship reads %d",
                     where, format, KEYRING_FORMAT);
        ws_error_hint(err, "upgrade walship");
        return -1;
    }
    if (format != KEYRING_FORMAT || !kdf_seen || !have_salt || current < 1 || !hash_w[0] ||
        n == 0 ||
        (!kp.key_file && (kp.n < 2 || kp.n > (1u << 24) || (kp.n & (kp.n - 1)) || kp.r < 1 ||
                          kp.r > 64 || kp.p < 1 || kp.p > 16 || 128 * kp.n * kp.r > SCRYPT_MAXMEM)))
        goto bad;
    unsigned char kek[32];
    if (prev && prev->have_kek && same_kdf(&prev->kp, &kp))
        memcpy(kek, prev->kek, 32);
    else if (derive_kek(s, &kp, kek, err) < 0) {
        free(ent);
        ws_keyring_free(k);
        if (err->code == WS_EAUTH)
            ws_error_prefix(err, "the key does not match repository %s (key id %ld)", where,
                            current);
        return -1;
    }
    int rc = unwrap(kek, "hash-key", hash_w, k->hash_key);
    for (int i = 0; rc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "key-%u", ent[i].id);
        k->id[i] = ent[i].id;
        rc = unwrap(kek, name, ent[i].w, k->key[i]);
    }
    k->kp = kp;
    memcpy(k->kek, kek, 32);
    k->have_kek = 1;
    OPENSSL_cleanse(kek, sizeof kek);
    free(ent);
    k->n = n;
    k->current = (uint32_t)current;
    if (rc == -2)
        goto bad_k;
    if (rc < 0) {
        ws_keyring_free(k);
        ws_error_set(err, WS_EAUTH,
                     "the key does not match repository %s (key id %ld): %s unwraps nothing in "
                     "its keyring",
                     where, current,
                     s->source     ? s->source
                     : kp.key_file ? "cipher-key-file"
                                   : "cipher-pass");
        ws_error_hint(err, "set the passphrase or key file this repository was encrypted with");
        return -1;
    }
    if (!keyring_key(k, k->current))
        goto bad_k;
    *out = k;
    return 0;
bad:
    free(ent);
bad_k:
    ws_keyring_free(k);
    return ws_error_set(err, WS_ECORRUPT, "the keyring of %s (" WS_KEYRING_KEY ") is malformed",
                        where);
}

/* ---- frames ---- */

/* The per-object key and nonce base, and the digest the AAD of every frame starts with. */
static int object_keys(const ws_cipher_obj *o, const unsigned char master[32],
                       const unsigned char prefix[WS_CIPHER_PREFIX], unsigned char key[32],
                       unsigned char nonce[12], unsigned char ctx[32])
{
    unsigned char km[44];
    if (hkdf(master, 32, prefix + 16, SALT_LEN, "walship-object-1", km, sizeof km) < 0)
        return -1;
    memcpy(key, km, 32);
    memcpy(nonce, km + 32, 12);
    OPENSSL_cleanse(km, sizeof km);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char cb[2] = {o->codec, o->kind};
    unsigned int n;
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                     EVP_DigestUpdate(md, "walship-aead-1", 15) == 1 &&
                     EVP_DigestUpdate(md, o->key, strlen(o->key) + 1) == 1 &&
                     EVP_DigestUpdate(md, cb, 2) == 1 &&
                     EVP_DigestUpdate(md, prefix, WS_CIPHER_PREFIX) == 1 &&
                     EVP_DigestFinal_ex(md, ctx, &n) == 1
                 ? 0
                 : -1;
    EVP_MD_CTX_free(md);
    return rc;
}

typedef struct frame_stage {
    ws_stage base;
    EVP_CIPHER_CTX *c;
    int enc, started, failed;
    const ws_stage *hash;       /* encrypt: the final frame's length and plaintext SHA-256 */
    unsigned char hash_key[32]; /* encrypt: of the keyed hash bound in the final frame */
    uint64_t length;            /* decrypt: from the header */
    unsigned char digest[32];
    const ws_keyring *keyring; /* decrypt: borrowed until the prefix is read (constructor) */
    ws_cipher_obj obj;
    char objkey[512];
    unsigned char key[32], nonce[12], ctx[32];
    unsigned char prefix[WS_CIPHER_PREFIX];
    uint64_t counter;
    size_t fill;
    unsigned char *in, *out; /* WS_CIPHER_FRAME + 16 each */
} frame_stage;

static void frame_nonce(const frame_stage *s, unsigned char n[12])
{
    memcpy(n, s->nonce, 12);
    for (int i = 0; i < 8; i++)
        n[4 + i] ^= (unsigned char)(s->counter >> (56 - 8 * i));
}

static size_t frame_aad(const frame_stage *s, int final, unsigned char aad[32 + 9 + 40])
{
    memcpy(aad, s->ctx, 32);
    ws_put_le64(aad + 32, s->counter);
    aad[40] = (unsigned char) final;
    if (!final)
        return 41;
    uint64_t length = s->length;
    unsigned char digest[32];
    memcpy(digest, s->digest, 32);
    if (s->enc) {
        unsigned char sha[32] = {0};
        length = 0;
        if (s->hash)
            ws_stage_sha256_result(s->hash, sha, &length);
        if (ws_cipher_keyed_hash(s->hash_key, sha, digest) < 0)
            memset(digest, 0, 32); /* the reader's tag check fails: never a silent pass */
        OPENSSL_cleanse(sha, sizeof sha);
    }
    ws_put_le64(aad + 41, length);
    memcpy(aad + 49, digest, 32);
    return 81;
}

static int seal(frame_stage *s, int final, ws_error *err)
{
    unsigned char n[12], aad[81];
    frame_nonce(s, n);
    size_t al = frame_aad(s, final, aad);
    if (gcm(s->c, 1, s->key, n, aad, al, s->in, s->fill, s->out, s->out + s->fill) < 0)
        return ws_error_set(err, WS_EINTERNAL, "AES-256-GCM encryption failed");
    size_t len = s->fill + 16;
    s->fill = 0;
    s->counter++;
    return ws_stage_write(s->base.next, s->out, len, err);
}

static int enc_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    frame_stage *s = (frame_stage *)st;
    if (!s->started) {
        s->started = 1;
        if (ws_stage_write(st->next, s->prefix, WS_CIPHER_PREFIX, err) < 0)
            return -1;
    }
    const unsigned char *p = buf;
    while (len) {
        if (s->fill == WS_CIPHER_FRAME && seal(s, 0, err) < 0) /* more follows: not final */
            return -1;
        size_t k = WS_CIPHER_FRAME - s->fill;
        if (k > len)
            k = len;
        memcpy(s->in + s->fill, p, k);
        s->fill += k;
        p += k;
        len -= k;
    }
    return 0;
}

static int enc_flush(ws_stage *st, ws_error *err)
{
    frame_stage *s = (frame_stage *)st;
    if (!s->started) {
        s->started = 1;
        if (ws_stage_write(st->next, s->prefix, WS_CIPHER_PREFIX, err) < 0)
            return -1;
    }
    return seal(s, 1, err);
}

static int open_frame(frame_stage *s, size_t len, int final, ws_error *err)
{
    unsigned char n[12], aad[81];
    frame_nonce(s, n);
    size_t al = frame_aad(s, final, aad);
    size_t clen = len - 16;
    if (gcm(s->c, 0, s->key, n, aad, al, s->in, clen, s->out, s->in + clen) < 0) {
        s->failed = 1;
        return ws_error_set(err, WS_ECORRUPT,
                            "encrypted frame %llu fails authentication (a changed, moved, "
                            "removed, duplicated or reordered frame, a truncated or extended "
                            "payload, or an object copied from another key or header)",
                            (unsigned long long)s->counter);
    }
    s->counter++;
    s->fill = 0;
    return ws_stage_write(s->base.next, s->out, clen, err);
}

static int read_prefix(frame_stage *s, ws_error *err)
{
    uint32_t id;
    if (ws_cipher_prefix_key_id(s->prefix, WS_CIPHER_PREFIX, &id, err) < 0)
        return -1;
    if (ws_get_le32(s->prefix + 8) != WS_CIPHER_FRAME)
        return ws_error_set(err, WS_ECORRUPT, "encrypted payload has frame size %u, not %u",
                            ws_get_le32(s->prefix + 8), WS_CIPHER_FRAME);
    const unsigned char *master = s->keyring ? keyring_key(s->keyring, id) : NULL;
    if (!master)
        return ws_error_set(err, WS_ECORRUPT,
                            "encrypted with key id %u, which the repository's keyring does not "
                            "hold",
                            id);
    if (object_keys(&s->obj, master, s->prefix, s->key, s->nonce, s->ctx) < 0)
        return ws_error_set(err, WS_EINTERNAL, "HKDF failed");
    s->keyring = NULL;
    return 0;
}

static int dec_write(ws_stage *st, const void *buf, size_t len, ws_error *err)
{
    frame_stage *s = (frame_stage *)st;
    const unsigned char *p = buf;
    if (s->failed)
        return ws_error_set(err, WS_ECORRUPT, "encrypted payload failed before");
    while (len && !s->started) {
        size_t k = WS_CIPHER_PREFIX - s->fill;
        if (k > len)
            k = len;
        memcpy(s->prefix + s->fill, p, k);
        s->fill += k;
        p += k;
        len -= k;
        if (s->fill == WS_CIPHER_PREFIX) {
            s->fill = 0;
            s->started = 1;
            if (read_prefix(s, err) < 0) {
                s->failed = 1;
                return -1;
            }
        }
    }
    while (len) {
        /* a whole frame with more bytes after it is not the last one */
        if (s->fill == WS_CIPHER_FRAME + 16 && open_frame(s, s->fill, 0, err) < 0)
            return -1;
        size_t k = WS_CIPHER_FRAME + 16 - s->fill;
        if (k > len)
            k = len;
        memcpy(s->in + s->fill, p, k);
        s->fill += k;
        p += k;
        len -= k;
    }
    return 0;
}

static int dec_flush(ws_stage *st, ws_error *err)
{
    frame_stage *s = (frame_stage *)st;
    if (s->failed)
        return ws_error_set(err, WS_ECORRUPT, "encrypted payload failed before");
    if (!s->started || s->fill < 16)
        return ws_error_set(err, WS_ECORRUPT,
                            "encrypted payload is truncated (frame %llu incomplete)",
                            (unsigned long long)s->counter);
    return open_frame(s, s->fill, 1, err);
}

static void frame_free(ws_stage *st)
{
    frame_stage *s = (frame_stage *)st;
    EVP_CIPHER_CTX_free(s->c);
    if (s->in)
        OPENSSL_cleanse(s->in, WS_CIPHER_FRAME + 16);
    if (s->out)
        OPENSSL_cleanse(s->out, WS_CIPHER_FRAME + 16);
    free(s->in);
    free(s->out);
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

static const ws_stage_ops enc_ops = {"aes-256-gcm-encrypt", enc_write, enc_flush, frame_free};
static const ws_stage_ops dec_ops = {"aes-256-gcm-decrypt", dec_write, dec_flush, frame_free};

static frame_stage *frame_new(const ws_cipher_obj *o, const ws_stage_ops *ops, ws_stage *next)
{
    frame_stage *s = calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->base.ops = ops;
    s->base.next = next;
    s->obj = *o;
    snprintf(s->objkey, sizeof s->objkey, "%s", o->key ? o->key : "");
    s->obj.key = s->objkey;
    s->obj.keyring = NULL;
    s->obj.fixed_salt = NULL;
    s->c = EVP_CIPHER_CTX_new();
    s->in = malloc(WS_CIPHER_FRAME + 16);
    s->out = malloc(WS_CIPHER_FRAME + 16);
    if (!s->c || !s->in || !s->out) {
        frame_free(&s->base);
        goto fail;
    }
    return s;
fail:
    ws_stage_free(next);
    return NULL;
}

ws_stage *ws_stage_encrypt_new(const ws_cipher_obj *o, ws_stage *next)
{
    const unsigned char *master = keyring_key(o->keyring, o->keyring->current);
    frame_stage *s = frame_new(o, &enc_ops, next);
    if (!s)
        return NULL;
    s->enc = 1;
    memcpy(s->hash_key, o->keyring->hash_key, 32);
    memcpy(s->prefix, prefix_magic, 4);
    ws_put_le32(s->prefix + 4, o->keyring->current);
    ws_put_le32(s->prefix + 8, WS_CIPHER_FRAME);
    if (o->fixed_salt)
        memcpy(s->prefix + 16, o->fixed_salt, SALT_LEN);
    if ((!o->fixed_salt && RAND_bytes(s->prefix + 16, SALT_LEN) != 1) || !master ||
        object_keys(&s->obj, master, s->prefix, s->key, s->nonce, s->ctx) < 0) {
        s->base.next = NULL;
        frame_free(&s->base);
        ws_stage_free(next);
        return NULL;
    }
    return &s->base;
}

void ws_stage_encrypt_bind(ws_stage *enc, const ws_stage *hash)
{
    ((frame_stage *)enc)->hash = hash;
}

ws_stage *ws_stage_decrypt_new(const ws_cipher_obj *o, ws_stage *next)
{
    frame_stage *s = frame_new(o, &dec_ops, next);
    if (!s)
        return NULL;
    s->keyring = o->keyring;
    s->length = o->length;
    memcpy(s->digest, o->digest, 32);
    return &s->base;
}

int ws_cipher_prefix_key_id(const unsigned char *prefix, size_t len, uint32_t *id, ws_error *err)
{
    if (len < WS_CIPHER_PREFIX || memcmp(prefix, prefix_magic, 4) != 0)
        return ws_error_set(err, WS_ECORRUPT, "encrypted payload does not start with WSE1");
    *id = ws_get_le32(prefix + 4);
    return 0;
}
