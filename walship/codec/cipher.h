/*
 * cipher.h — client-side authenticated encryption (AES-256-GCM, OpenSSL 3 EVP only):
 * the keyring of an encrypted repository and the encrypt / decrypt stages of the codec
 * chains (codec.h). docs/encryption.md is the specification (threat model, key hierarchy,
 * frame format); docs/repository-format.md has the byte layout.
 *
 * Key hierarchy: cipher-pass (scrypt, salt and parameters in the keyring) or cipher-key-file
 * (32 bytes, HKDF with the keyring's salt) gives the key-encryption key (KEK); it wraps (GCM,
 * AAD = the entry's name) the repository's master keys, one per key id, and a hash key that
 * never rotates (the keyed hash of the plaintext, so duplicates are still recognised after a
 * rotation). Each object gets its own key and nonce base: HKDF-SHA256(master key of its key
 * id, a random 32-byte salt in the object, "walship-object-1").
 *
 * Ownership: a keyring is the caller's (ws_keyring_free wipes every key with
 * OPENSSL_cleanse). The stages copy what they need (object key, AAD context) and wipe it when
 * freed; the decrypt stage borrows the keyring until it has read the payload's prefix (the
 * keyring must outlive the chain). Secrets are never put into an
 * error message.
 */
#ifndef WS_CIPHER_H
#define WS_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"
#include "walship/stage/stage.h"

/* The encryption byte of the object header. */
#define WS_ENC_NONE      0
#define WS_ENC_AES256GCM 1

#define WS_CIPHER_KEY_LEN 32
#define WS_CIPHER_FRAME   (64 * 1024) /* plaintext bytes per frame (the last: 0 to this) */
#define WS_CIPHER_TAG_LEN 16
#define WS_CIPHER_PREFIX  48 /* "WSE1", key id, frame size, reserved, salt (32) */
#define WS_KEYRING_KEY    "walship.keyring"
#define WS_KEYRING_MAX    (64u << 10)
#define WS_KEYRING_IDS    64 /* master keys a keyring holds at most */

/* Where the KEK comes from; exactly one of pass / key_file. Borrowed. */
typedef struct ws_cipher_secret {
    const char *pass;     /* cipher-pass */
    const char *key_file; /* cipher-key-file: 32 bytes, mode 0600 (or stricter) */
    const char *source;   /* for messages: "cipher-pass (from /etc/walship.conf:3)" */
} ws_cipher_secret;

typedef struct ws_keyring ws_keyring;

/* A new keyring: master key id 1 (current) and the hash key, wrapped under s's KEK, whose
 * KDF salt is salt (32 bytes; NULL: random). The two keys are derived from the KEK with HKDF
 * (distinct labels), so two writers creating the keyring of one repository at once with the
 * same secret and salt create the same keys: a race between them is harmless even where the
 * storage cannot create-only-if-absent. A later `cipher change` rewraps them under a new KEK;
 * `cipher rotate` adds random ones. *text (malloc'd, the caller frees) is what to store at
 * WS_KEYRING_KEY. */
int ws_keyring_create(const ws_cipher_secret *s, const unsigned char *salt, ws_keyring **out,
                      char **text, ws_error *err);
/* 1 if a and b hold the same keys under the same ids. */
int ws_keyring_same(const ws_keyring *a, const ws_keyring *b);
/* Parses and unwraps a stored keyring with s. A KEK that unwraps nothing (wrong passphrase or
 * key file) fails with WS_EAUTH and a message saying the key does not match the repository's
 * keyring (key id N), where names the repository; a malformed keyring is WS_ECORRUPT, a
 * newer format WS_ECONFIG. */
int ws_keyring_open(const char *text, size_t len, const ws_cipher_secret *s, const char *where,
                    ws_keyring **out, ws_error *err);
/* The same, reusing prev's KEK (no scrypt) when text has prev's KDF salt and parameters:
 * a writer re-reading the keyring to see a rotation. prev may be NULL. */
int ws_keyring_reopen(const ws_keyring *prev, const char *text, size_t len,
                      const ws_cipher_secret *s, const char *where, ws_keyring **out,
                      ws_error *err);
/* The keyring's text wrapped under s (a new passphrase or key file: `cipher change`), with a
 * new KDF salt; same keys, same ids. */
int ws_keyring_export(const ws_keyring *k, const ws_cipher_secret *s, char **text, ws_error *err);
/* Adds a random master key with the next id and makes it current (`cipher rotate`). */
int ws_keyring_rotate(ws_keyring *k, ws_error *err);
uint32_t ws_keyring_current(const ws_keyring *k);
/* The number of master keys and the id of the i-th. */
int ws_keyring_count(const ws_keyring *k);
uint32_t ws_keyring_id(const ws_keyring *k, int i);
/* The key of the keyed hash that replaces the plaintext SHA-256 in an encrypted object's
 * header and metadata. */
const unsigned char *ws_keyring_hash_key(const ws_keyring *k);
/* The keyed hash of a plaintext whose SHA-256 is sha256: HMAC-SHA-256(hash key,
 * "walship-keyed-1" || sha256). Streams hash once (SHA-256); the key is applied at the end. */
int ws_cipher_keyed_hash(const unsigned char hash_key[32], const unsigned char sha256[32],
                         unsigned char out[32]);
void ws_keyring_free(ws_keyring *k);

/* What binds a payload to its object: the AAD of every frame holds a digest of the object's
 * key name, codec, kind and the payload prefix; the final frame's also the plaintext length
 * and keyed hash of the object header. Borrowed by the constructors. */
typedef struct ws_cipher_obj {
    const ws_keyring *keyring;
    const char *key; /* the object's storage key (wal/.../NAME) */
    uint8_t codec, kind;
    /* read: the header's length and keyed hash (checked by the final frame's tag) */
    uint64_t length;
    unsigned char digest[32];
    /* tests only: a fixed salt (known-answer vectors); NULL = random */
    const unsigned char *fixed_salt;
} ws_cipher_obj;

/* Encrypts into frames (prefix, then ciphertext + tag per frame). hash is the SHA-256 stage
 * whose result gives the final frame's length and (keyed) hash (finished before this one: it
 * is upstream). Constructor failure frees next. */
ws_stage *ws_stage_encrypt_new(const ws_cipher_obj *o, ws_stage *next);
void ws_stage_encrypt_bind(ws_stage *enc, const ws_stage *hash);
/* Decrypts and authenticates frame by frame: no plaintext of a frame reaches next before its
 * tag verifies. A frame that fails, a payload truncated, extended, reordered, or copied from
 * another key fails with WS_ECORRUPT naming the frame. A key id the keyring does not hold is
 * WS_ECORRUPT too (named). Constructor failure frees next. */
ws_stage *ws_stage_decrypt_new(const ws_cipher_obj *o, ws_stage *next);

/* The key id recorded in an encrypted payload's prefix; -1 (WS_ECORRUPT) if it is not one. */
int ws_cipher_prefix_key_id(const unsigned char *prefix, size_t len, uint32_t *id, ws_error *err);

/* One AES-256-GCM seal / open, the primitive under every frame (exposed for the NIST
 * vectors: the frame stages call exactly this). open returns -1 (WS_ECORRUPT) on a tag
 * mismatch and leaves out unspecified. */
int ws_cipher_gcm_seal(const unsigned char key[32], const unsigned char nonce[12],
                       const unsigned char *aad, size_t aad_len, const unsigned char *in,
                       size_t len, unsigned char *out, unsigned char tag[16], ws_error *err);
int ws_cipher_gcm_open(const unsigned char key[32], const unsigned char nonce[12],
                       const unsigned char *aad, size_t aad_len, const unsigned char *in,
                       size_t len, const unsigned char tag[16], unsigned char *out, ws_error *err);

#endif
