/*
 * repo.h — the repository layer over storage: identity (walship.repo), WAL keys, and
 * self-describing objects (a 64-byte header + codec payload). docs/repository-format.md is
 * the specification; this is its implementation.
 *
 * Ownership: ws_repo_open returns a repository (owning its storage) freed by ws_repo_free.
 * An object writer belongs to the caller until ws_repo_obj_commit or ws_repo_obj_abort,
 * both of which free it.
 */
#ifndef WS_REPO_H
#define WS_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "walship/codec/cipher.h"
#include "walship/codec/codec.h"
#include "walship/config.h"
#include "walship/error.h"
#include "walship/stage/stage.h"
#include "walship/storage/storage.h"
#include "walship/wal.h"

#define WS_REPO_FORMAT   1
#define WS_REPO_ROOT_KEY "walship.repo"
#define WS_OBJHDR_SIZE   64

typedef enum ws_objkind {
    WS_OBJ_DATA = 0,
    WS_OBJ_SEGMENT = 1,
    WS_OBJ_PARTIAL = 2,
    WS_OBJ_BACKUP = 3,
    WS_OBJ_HISTORY = 4,
    WS_OBJ_GAP = 5, /* a gap record (below) */
} ws_objkind;

typedef struct ws_objhdr {
    uint8_t version;
    uint8_t codec;
    uint8_t encryption;
    uint8_t kind;
    uint32_t header_len;
    uint64_t length; /* plaintext bytes */
    unsigned char sha256[32];
} ws_objhdr;

void ws_objhdr_encode(const ws_objhdr *h, unsigned char out[WS_OBJHDR_SIZE]);
/* Checks magic, version, header check, codec and encryption; key is for messages. */
int ws_objhdr_decode(const unsigned char *buf, size_t len, const char *key, ws_objhdr *h,
                     ws_error *err);
ws_objkind ws_objkind_of(ws_wal_kind k);

typedef struct ws_repo ws_repo;

int ws_repo_open(const ws_storage_config *cfg, ws_repo **out, ws_error *err);
void ws_repo_free(ws_repo *r);
ws_storage *ws_repo_storage(ws_repo *r);
/* Safe to log. */
const char *ws_repo_describe(ws_repo *r);

typedef struct ws_repo_identity {
    int format;
    uint64_t sysid;
    int pg_version;
    uint32_t seg_size;
} ws_repo_identity;

/* Reads walship.repo: WS_ENOENT if the repository has none yet, WS_ECORRUPT if malformed,
 * WS_ECONFIG if its format is newer than this walship. Cached after the first read. */
int ws_repo_identity_get(ws_repo *r, ws_repo_identity *id, ws_error *err);
/* For readers (fetch, the prefetch agent): the identity a repository must have before
 * anything is read from it. A missing walship.repo is not "absent": an empty directory is
 * an unmounted NAS, a wrong bucket or prefix answers 404 for everything. It fails with
 * WS_ETRANSIENT (an outage: the caller retries until its deadline, never reports absence)
 * and a message saying so; WS_ECORRUPT / WS_ECONFIG as ws_repo_identity_get otherwise. */
int ws_repo_identity_require(ws_repo *r, ws_repo_identity *id, ws_error *err);
/* Compares walship.repo with want, failing with WS_EMISMATCH and a message naming both
 * values when the cluster differs. If there is none, creates it from want — but only in a
 * repository that holds no WAL segment, partial or backup history file, gap record or
 * backup object (timeline history files alone do not count): otherwise the identity was
 * lost, and ensure fails with WS_ECORRUPT naming a stored key, with `walship repo repair`
 * (walship/ops/repair.c) in the hint, and writes nothing. */
int ws_repo_identity_ensure(ws_repo *r, const ws_repo_identity *want, ws_error *err);

/* 1 if r holds such an object (its key copied into found, which may be NULL), 0 if not:
 * one listing of wal/, gap/ and backup/ each, stopped at the first key. */
int ws_repo_holds_objects(ws_repo *r, char *found, size_t len, ws_error *err);
/* Writes walship.repo for id, create-only-if-absent (WS_EEXIST if there is one); origin
 * names the writer in its comment line ("the first push", "walship repo repair"). Used by
 * ensure and by repair, which has checked the stored objects first. */
int ws_repo_identity_create(ws_repo *r, const ws_repo_identity *id, const char *origin,
                            ws_error *err);

/* The identity a stored segment or .partial segment carries in its first page header
 * (derive.c): system identifier, segment size, major version from xlp_magic. Reads only the
 * start of the object; the header is checked against name (start LSN, segment size). */
int ws_repo_wal_identity(ws_repo *r, const ws_wal_name *name, ws_repo_identity *id, ws_error *err);

/* The fixed key of a WAL file (docs/repository-format.md); -1 if buf is too small. */
int ws_repo_wal_key(const ws_wal_name *n, char *buf, size_t len);

/* The stored object's header without reading its payload (metadata or a ranged read). */
int ws_repo_obj_header(ws_repo *r, const char *key, ws_objhdr *h, ws_error *err);

/* ---- writing one object to one or more repositories at once ---- */

typedef struct ws_repo_obj_writer ws_repo_obj_writer;

typedef enum ws_put_status {
    WS_PUT_STORED = 0,    /* written now */
    WS_PUT_IDENTICAL = 1, /* already there with the same checksum */
    WS_PUT_FAILED = -1,   /* see err */
} ws_put_status;

typedef struct ws_repo_put_result {
    ws_put_status status;
    ws_objhdr existing; /* for WS_PUT_IDENTICAL and WS_EMISMATCH failures */
    ws_error err;
} ws_repo_put_result;

/* Opens a writer of key in repos[0..n). A repository that cannot be opened for writing is
 * recorded as failed in the results given at commit; the object still goes to the others.
 * Fails only if no repository can be written. size_hint is the exact plaintext length
 * (recorded in the lz4 frame and checked there) or 0 if unknown. */
int ws_repo_obj_create(ws_repo **repos, int n, const char *key, ws_objkind kind, ws_codec codec,
                       int level, uint64_t size_hint, ws_repo_obj_writer **out, ws_error *err);
int ws_repo_obj_write(ws_repo_obj_writer *w, const void *buf, size_t len, ws_error *err);
/* Finishes the payload, writes the header, commits everywhere (create-only-if-absent). An
 * existing object with the same checksum counts as success; a different one fails with
 * WS_EMISMATCH naming both checksums. hdr (may be NULL) receives the new header, results
 * (n entries, may be NULL) the outcome per repository. Returns 0 only if every repository
 * now holds the object; err then describes the first failure. Frees w. */
int ws_repo_obj_commit(ws_repo_obj_writer *w, ws_objhdr *hdr, ws_repo_put_result *results,
                       ws_error *err);
void ws_repo_obj_abort(ws_repo_obj_writer *w);

/* ---- reading ---- */

/* Streams the plaintext of key into dest (a stage chain the caller owns and frees; it is
 * finished here), verifying header, length and SHA-256. A failed verification is
 * WS_ECORRUPT and may come after dest has received bytes: the caller writes to a
 * temporary and publishes only on success. Absence is WS_ENOENT. */
int ws_repo_obj_read(ws_repo *r, const char *key, ws_stage *dest, ws_objhdr *hdr, ws_error *err);
/* The same with flags. WS_OBJ_READ_NO_DIGEST skips the object's SHA-256 (its length is still
 * checked): only for a caller that verifies every byte it keeps against a checksum of its own
 * (restore checks each file against the manifest's SHA-256). */
#define WS_OBJ_READ_NO_DIGEST 1u
int ws_repo_obj_read_ex(ws_repo *r, const char *key, ws_stage *dest, ws_objhdr *hdr, unsigned flags,
                        ws_error *err);
/* The same with a bound: an object whose header claims more than max_len plaintext bytes is
 * refused (WS_ECORRUPT) before its payload is read. The header is untrusted input: every read
 * is bounded anyway by what the key's kind may hold — a WAL segment or .partial the
 * repository's wal-segment-size (1 GiB, PostgreSQL's largest, while the identity is unknown),
 * a history or backup history file WS_REPO_HISTORY_MAX, a gap record WS_REPO_GAP_MAX — and the
 * compressed bytes read are bounded by what a frame of that length can take. Other keys
 * (backup objects) have only the caller's bound: pass the manifest's size there; max_len 0
 * means no bound beyond the key's kind. */
#define WS_REPO_HISTORY_MAX (1u << 20)
#define WS_REPO_GAP_MAX     (64u << 10)
int ws_repo_obj_read_limit(ws_repo *r, const char *key, ws_stage *dest, ws_objhdr *hdr,
                           unsigned flags, uint64_t max_len, ws_error *err);

/* ---- encryption (keyring.c; docs/encryption.md) ----
 *
 * A repository with cipher = aes-256-gcm stores every object encrypted (WAL, history, gap
 * records, backup objects and manifests: everything written through ws_repo_obj_create) and
 * refuses to read an unencrypted one; its plaintext checksums are keyed (HMAC-SHA-256), in
 * the header and in S3 metadata. walship.repo and walship.keyring stay readable. */

/* Reads cipher / cipher-pass / cipher-key-file of repository i (0-based) into r (strings
 * borrowed from cfg, which must outlive r). WS_ECONFIG on a bad combination. */
int ws_repo_cipher_setup(ws_repo *r, const ws_config *cfg, int i, ws_error *err);
/* 1 if r is configured with cipher = aes-256-gcm. */
int ws_repo_encrypted(ws_repo *r);
/* r's secret (borrowed), NULL if cipher is none. */
const ws_cipher_secret *ws_repo_cipher_secret(ws_repo *r);
/* The keyring of r (borrowed from r), read on first use. A writer creates it in a repository
 * without objects and fails with WS_ECONFIG where unencrypted objects are stored; with cipher
 * none, *out is NULL and a writer fails (WS_ECONFIG) if r has a keyring. A key that does not
 * match is WS_EAUTH (cipher.h). */
int ws_repo_keyring(ws_repo *r, int writer, const ws_keyring **out, ws_error *err);
/* Replaces the stored keyring by text (atomically: old or new, never neither). */
int ws_repo_keyring_replace(ws_repo *r, const char *text, ws_error *err);
/* The keyring lock: walship.keyring.lock at the repository root, held by `walship cipher
 * change | rotate` around reading, changing and replacing the keyring, so that two at once
 * never lose a key (the second would replace the first's keyring with one lacking its new
 * key id). Taken create-only-if-absent; on a store that may ignore If-None-Match (S3: the
 * driver with metadata) the taker waits WS_KEYRING_LOCK_SETTLE seconds and reads it back,
 * going on only if its owner token is still there. A lock held by another fails with
 * WS_EEXIST and a message naming its owner (host, pid, age); one older than
 * WS_KEYRING_LOCK_STALE seconds is named as left by a killed command, to be removed by hand
 * (never broken automatically: two breakers could both win). Freed by ws_repo_keyring_unlock,
 * which removes the object only if it is still this lock's. */
#define WS_KEYRING_LOCK_KEY    "walship.keyring.lock"
#define WS_KEYRING_LOCK_STALE  600
#define WS_KEYRING_LOCK_SETTLE 2.0
typedef struct ws_keyring_lock ws_keyring_lock;
int ws_repo_keyring_lock(ws_repo *r, ws_keyring_lock **out, ws_error *err);
/* 0 if the stored lock is still l's; -1 (WS_EEXIST, naming the holder) if not. */
int ws_repo_keyring_lock_check(ws_keyring_lock *l, ws_error *err);
void ws_repo_keyring_unlock(ws_keyring_lock *l);
/* Internal to walship/repo/. */
typedef struct ws_repo_cipher ws_repo_cipher;
ws_repo_cipher **ws_repo_cipher_slot(ws_repo *r);
void ws_repo_cipher_free(ws_repo_cipher *c);

/* ---- gaps: WAL segments push dropped without storing them (gap.c) ----
 *
 * push-queue-max lets push report a segment archived without storing it; before it does, it
 * records the gap in every repository, so that list, verify and restore know that recovery
 * cannot replay past it (docs/repository-format.md, "Gaps"). A record lives at
 * gap/TTTTTTTTXXXXXXXX/<segment>, in the object format, written create-only-if-absent and
 * never removed by walship. The segment's own object always wins: a segment stored under
 * wal/ is present whatever gap record exists for it (a later manual push, or an async agent
 * that finished the upload after push had dropped the file). */

#define WS_GAP_REASON_QUEUE_MAX "push-queue-max"

typedef struct ws_repo_gap {
    char segment[WS_WAL_NAME_MAX]; /* the dropped segment's name */
    char reason[32];               /* WS_GAP_REASON_QUEUE_MAX; "" if not read (list) */
    int64_t dropped_at;            /* seconds since the epoch; from list: the record's mtime */
    uint64_t backlog_files;        /* what push saw: .ready files, their bytes, the limit */
    uint64_t backlog_bytes;
    uint64_t limit_bytes;
} ws_repo_gap;

/* The key of the gap record of a segment; -1 if n is not a segment or buf is too small. */
int ws_repo_gap_key(const ws_wal_name *n, char *buf, size_t len);
/* Records g durably in r (create-only-if-absent). An existing record for the segment counts
 * as success: the first drop is the one remembered. */
int ws_repo_gap_record(ws_repo *r, const ws_repo_gap *g, ws_error *err);
/* Reads the record of segment: WS_ENOENT if there is none, WS_ECORRUPT if malformed. */
int ws_repo_gap_get(ws_repo *r, const char *segment, ws_repo_gap *g, ws_error *err);
/* Every gap record of r, sorted by segment name, from one listing of gap/ (no object is
 * read: reason is "" and dropped_at is the record's storage time). *out is malloc'd (NULL
 * when *n is 0) and freed by the caller with free(). Includes records of segments that were
 * stored after all: the caller checks wal/ when it matters. */
int ws_repo_gap_list(ws_repo *r, ws_repo_gap **out, int *n, ws_error *err);
/* For tests and fuzzing: parses the text of a gap record (NUL-terminated; key is for
 * messages) as ws_repo_gap_get does. WS_ECORRUPT if malformed. */
int ws_repo_gap_parse(const char *text, const char *key, ws_repo_gap *g, ws_error *err);

#endif
