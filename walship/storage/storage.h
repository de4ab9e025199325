/*
 * storage.h — the storage driver seam. Everything above this header (repository layer,
 * push, fetch, backup, restore) talks to a ws_storage and never knows which driver is
 * behind it. Drivers: posix (posix.c: local disk or NAS) and s3 (s3.c).
 *
 * Keys are relative, '/'-separated, never start with '/', and no component is empty or
 * starts with '.' (so no "." or ".."; ws_storage_key_valid checks). Names starting with '.'
 * are the drivers' own: posix's temporary files live there, outside every key a reader can
 * ask for. Each driver maps keys under its root (a directory, or a bucket + prefix).
 *
 * Semantics every driver guarantees:
 *  - A writer's bytes become visible under the key only at commit, all at once: nobody ever
 *    sees a partial object. Commit returns only once the object is durable (posix: file and
 *    directory fsync'd; S3: the PUT / CompleteMultipartUpload acknowledged).
 *  - WS_STORAGE_WRITE_EXCL: commit fails with WS_EEXIST if the key exists, and never
 *    overwrites it (posix: link(2); S3: If-None-Match: *).
 *  - Absence is reported as code WS_ENOENT and nothing else is; transient failures
 *    (network, 5xx, timeouts after the driver's own retries) as WS_ETRANSIENT.
 *
 * Ownership: ws_storage_open returns a storage the caller frees with ws_storage_free.
 * Readers and writers belong to the caller until ws_storage_reader_close /
 * ws_storage_writer_commit / ws_storage_writer_abort, each of which frees them (commit
 * frees the writer whether or not it succeeds).
 *
 * Threads: one storage, reader or writer is used by one thread at a time.
 */
#ifndef WS_STORAGE_H
#define WS_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"

/* User metadata on an object: small string pairs (S3 x-amz-meta-*; posix keeps none). */
#define WS_META_MAX       8
#define WS_META_KEY_MAX   48
#define WS_META_VALUE_MAX 160
typedef struct ws_meta {
    int n;
    struct {
        char key[WS_META_KEY_MAX];     /* lowercase [a-z0-9-] */
        char value[WS_META_VALUE_MAX]; /* printable ASCII */
    } kv[WS_META_MAX];
} ws_meta;

/* Adds or replaces key; returns -1 if full or too long. */
int ws_meta_set(ws_meta *m, const char *key, const char *value);
/* The value for key, or NULL. */
const char *ws_meta_get(const ws_meta *m, const char *key);

typedef struct ws_storage_info {
    uint64_t size; /* stored bytes */
    int64_t mtime; /* seconds since the epoch, 0 if unknown */
    ws_meta meta;  /* filled only by drivers with WS_STORAGE_FEAT_META */
} ws_storage_info;

enum {
    WS_STORAGE_FEAT_META = 1u << 0,  /* stat returns the user metadata given at commit */
    WS_STORAGE_FEAT_RANGE = 1u << 1, /* open_read honours off/len without reading the rest */
};

enum { WS_STORAGE_WRITE_EXCL = 1u << 0 };

/* A writer may rewrite its first WS_STORAGE_PATCH_MAX bytes before commit (the object
 * header, whose checksum is known only once the payload has streamed through). */
#define WS_STORAGE_PATCH_MAX 4096

typedef struct ws_storage ws_storage;
typedef struct ws_storage_reader ws_storage_reader;
typedef struct ws_storage_writer ws_storage_writer;

/* Called once per key found by list, in no particular order; return non-zero to stop. */
typedef int (*ws_storage_list_cb)(void *arg, const char *key, const ws_storage_info *info);
/* Called by ws_storage_list_ex for a part of the tree that cannot be listed (posix: a
 * directory without permission), prefix ending in '/'; return non-zero to stop. */
typedef int (*ws_storage_list_err_cb)(void *arg, const char *prefix, const ws_error *err);

enum {
    /* List the driver's temporary files (what interrupted writes left behind) instead of
     * objects. Their "keys" are not valid keys: no reader can open them. */
    WS_STORAGE_LIST_TMP = 1u << 0,
};

typedef struct ws_storage_ops {
    const char *name; /* "posix", "s3" */
    unsigned features;
    /* len 0 = to the end. */
    int (*open_read)(ws_storage *s, const char *key, uint64_t off, uint64_t len,
                     ws_storage_reader **out, ws_error *err);
    int (*open_write)(ws_storage *s, const char *key, unsigned flags, ws_storage_writer **out,
                      ws_error *err);
    int (*stat)(ws_storage *s, const char *key, ws_storage_info *info, ws_error *err);
    int (*list)(ws_storage *s, const char *prefix, ws_storage_list_cb cb, void *arg, ws_error *err);
    /* Removing an absent key succeeds. */
    int (*remove)(ws_storage *s, const char *key, ws_error *err);
    /* A description safe to log (no secrets): "/var/lib/walship", "s3://bucket/prefix". */
    const char *(*describe)(ws_storage *s);
    void (*free)(ws_storage *s);
    /* Optional (NULL: ws_storage_list_ex falls back to list). flags WS_STORAGE_LIST_*;
     * on_err may be NULL (an unreadable part then fails the listing). */
    int (*list_ex)(ws_storage *s, const char *prefix, unsigned flags, ws_storage_list_cb cb,
                   ws_storage_list_err_cb on_err, void *arg, ws_error *err);
    /* Optional (NULL: the driver's calls cannot be bounded, e.g. posix reads): see
     * ws_storage_set_deadline. */
    void (*set_deadline)(ws_storage *s, double deadline);
    /* Optional (NULL: one remove per key): see ws_storage_remove_many. */
    int (*remove_many)(ws_storage *s, const char *const *keys, size_t n, size_t *done,
                       ws_error *err);
    /* Optional (NULL: the driver keeps no temporary files): removes one name reported by a
     * WS_STORAGE_LIST_TMP listing (posix: the file; S3: aborts the multipart upload). */
    int (*remove_tmp)(ws_storage *s, const char *name, ws_error *err);
} ws_storage_ops;

struct ws_storage {
    const ws_storage_ops *ops;
};

typedef struct ws_storage_reader_ops {
    /* Reads up to len bytes; *n = 0 means the end. */
    int (*read)(ws_storage_reader *r, void *buf, size_t len, size_t *n, ws_error *err);
    void (*close)(ws_storage_reader *r);
} ws_storage_reader_ops;

struct ws_storage_reader {
    const ws_storage_reader_ops *ops;
};

typedef struct ws_storage_writer_ops {
    int (*write)(ws_storage_writer *w, const void *buf, size_t len, ws_error *err);
    /* Overwrites bytes [off, off+len) already written; off+len <= WS_STORAGE_PATCH_MAX. */
    int (*patch)(ws_storage_writer *w, uint64_t off, const void *buf, size_t len, ws_error *err);
    /* Makes the object durable and visible; meta may be NULL. Frees w. */
    int (*commit)(ws_storage_writer *w, const ws_meta *meta, ws_error *err);
    /* Discards everything written. Frees w. */
    void (*abort)(ws_storage_writer *w);
} ws_storage_writer_ops;

struct ws_storage_writer {
    const ws_storage_writer_ops *ops;
};

/* Settings a driver may need; the repository layer fills them from the configuration. */
typedef struct ws_storage_config {
    const char *url; /* /abs/path, file:///abs/path or s3://bucket[/prefix] */
    /* S3 (ignored by posix) */
    const char *s3_endpoint;  /* host[:port] or http(s)://host[:port]; NULL = AWS */
    const char *s3_region;    /* NULL = us-east-1 */
    const char *s3_uri_style; /* "host" or "path"; NULL = host */
    const char *s3_ca_file;
    int s3_verify_tls; /* default 1 */
    const char *s3_storage_class;
    const char *s3_sse; /* "AES256" | "aws:kms" */
    const char *s3_sse_kms_key_id;
    const char *s3_key;        /* access key id */
    const char *s3_key_secret; /* secret access key: never logged */
    const char *s3_token;      /* session token: never logged */
    double timeout;            /* overall deadline per operation, seconds (0 = default) */
} ws_storage_config;

/* Opens the driver the URL names. */
int ws_storage_open(const ws_storage_config *cfg, ws_storage **out, ws_error *err);
void ws_storage_free(ws_storage *s);

/* 1 if key is a valid relative key, else 0. */
int ws_storage_key_valid(const char *key);

/* Thin wrappers over the ops, so callers read as ws_storage_stat(s, key, ...). */
int ws_storage_open_read(ws_storage *s, const char *key, uint64_t off, uint64_t len,
                         ws_storage_reader **out, ws_error *err);
int ws_storage_open_write(ws_storage *s, const char *key, unsigned flags, ws_storage_writer **out,
                          ws_error *err);
int ws_storage_stat(ws_storage *s, const char *key, ws_storage_info *info, ws_error *err);
int ws_storage_list(ws_storage *s, const char *prefix, ws_storage_list_cb cb, void *arg,
                    ws_error *err);
/* list with flags, and on_err (may be NULL) told of each part that cannot be listed while
 * the rest still is. A driver that keeps no temporary files lists none for
 * WS_STORAGE_LIST_TMP. S3 lists its unfinished multipart uploads there (ListMultipartUploads;
 * mtime = when the upload was initiated); a server that does not implement the listing
 * (s3rver) lists none, with a debug message. */
int ws_storage_list_ex(ws_storage *s, const char *prefix, unsigned flags, ws_storage_list_cb cb,
                       ws_storage_list_err_cb on_err, void *arg, ws_error *err);
int ws_storage_remove(ws_storage *s, const char *key, ws_error *err);
/* Removes keys[0..n) (absent ones succeed), in batches where the driver can (S3:
 * DeleteObjects, 1000 keys a request; posix: several threads). Keys are removed in about the
 * order given: every key before index *done (may be NULL) is removed, even on failure, so a
 * caller that orders keys oldest first can stop and resume safely. */
int ws_storage_remove_many(ws_storage *s, const char *const *keys, size_t n, size_t *done,
                           ws_error *err);
/* Removes a temporary file of an interrupted write, named as a WS_STORAGE_LIST_TMP listing
 * reported it (posix: ".<name>.tmp.<pid>.<n>"; S3: "<key>?uploadId=<id>", a multipart upload
 * never completed). A driver without them fails with WS_EINTERNAL. */
int ws_storage_remove_tmp(ws_storage *s, const char *name, ws_error *err);
/* Bounds every later operation of s — retries, backoff sleeps, and each transfer, streamed
 * reads included — by an absolute deadline on the CLOCK_MONOTONIC clock (seconds, as
 * ws_now()); 0 removes it. Each operation still stops at its own timeout (io-timeout) if that
 * comes first. fetch sets it to the end of fetch-timeout. */
void ws_storage_set_deadline(ws_storage *s, double deadline);
const char *ws_storage_describe(ws_storage *s);
unsigned ws_storage_features(ws_storage *s);

int ws_storage_read(ws_storage_reader *r, void *buf, size_t len, size_t *n, ws_error *err);
/* Reads exactly len bytes unless the object ends first; *n says how many. */
int ws_storage_read_full(ws_storage_reader *r, void *buf, size_t len, size_t *n, ws_error *err);
void ws_storage_reader_close(ws_storage_reader *r);
int ws_storage_write(ws_storage_writer *w, const void *buf, size_t len, ws_error *err);
int ws_storage_patch(ws_storage_writer *w, uint64_t off, const void *buf, size_t len,
                     ws_error *err);
int ws_storage_writer_commit(ws_storage_writer *w, const ws_meta *meta, ws_error *err);
void ws_storage_writer_abort(ws_storage_writer *w);

/* Convenience: a whole small object in or out (root metadata, manifests). *buf is
 * malloc'd, NUL-terminated, freed by the caller; objects over max are refused. */
int ws_storage_get_small(ws_storage *s, const char *key, size_t max, char **buf, size_t *len,
                         ws_error *err);
int ws_storage_put_small(ws_storage *s, const char *key, unsigned flags, const void *buf,
                         size_t len, const ws_meta *meta, ws_error *err);

/* Driver constructors (called by ws_storage_open). */
int ws_storage_posix_open(const ws_storage_config *cfg, const char *path, ws_storage **out,
                          ws_error *err);
int ws_storage_s3_open(const ws_storage_config *cfg, ws_storage **out, ws_error *err);

#endif
