/*
 * s3_driver.h — the parts of the S3 storage driver shared by its files (internal: nothing
 * outside walship/storage/s3*.c includes it). The driver is split by what it does:
 *   s3.c        open/configure/free, stat (HEAD), remove (DELETE), list (ListObjectsV2)
 *   s3_read.c   the streamed, resumed reader (GET with Range)
 *   s3_write.c  the writer (PUT, or multipart above WS_S3_PART_SIZE)
 *   s3_delete.c many keys at once (DeleteObjects, 1000 a request) and the leftovers of
 *               interrupted multipart uploads (ListMultipartUploads, AbortMultipartUpload)
 * all on s3_client.h (one signed request with retries).
 *
 * The driver (storage.h) on s3_client: GET (ranged), PUT / multipart
 * upload, HEAD with user metadata, ListObjectsV2, DELETE.
 *
 * Repository keys map to "<prefix>/<key>" in the bucket; list strips the prefix again.
 *
 * Writers buffer in memory. Up to WS_S3_PART_SIZE the object goes up in one PUT at commit.
 * Beyond it the writer switches to a multipart upload: parts 2.. go up in parallel (at most
 * S3_PARTS_IN_FLIGHT at once) while the caller keeps writing, but part 1 is held back until
 * commit because patch() may still rewrite the first WS_STORAGE_PATCH_MAX bytes.
 * Metadata is only known at commit, after CreateMultipartUpload was sent, so multipart
 * objects carry no user metadata: stat returns an empty meta for them and the repository
 * layer falls back to the object header (a ranged read).
 *
 * WS_STORAGE_WRITE_EXCL is "If-None-Match: *" on the PUT (and on the multipart completion);
 * servers that ignore the header (s3rver, older MinIO/Ceph) silently overwrite — the
 * repository layer's stat before push still catches the ordinary duplicate.
 */
#ifndef WS_S3_DRIVER_H
#define WS_S3_DRIVER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "walship/storage/s3_client.h"
#include "walship/storage/storage.h"

#define WS_S3_PART_SIZE    (16u << 20)
#define S3_PARTS_IN_FLIGHT 4
#define S3_READ_BUFFER     (1u << 20)
#define S3_READ_RESUMES    100 /* each resume follows progress; this only stops a loop */
/* A download slower than this for the low-speed time (io-timeout / 3, 2..30 s) is cut: a
 * body trickling a byte at a time must not hold a fetch or a restore for hours. */
#define S3_READ_LOW_SPEED 1024L
/* An attempt that brought less than this before it was cut is little progress: a download is
 * resumed after at most S3_READ_SMALL_RESUMES of those, so that a trickle (a byte at a time,
 * cut by the low-speed limit each time) ends instead of being resumed for hours. */
#define S3_RESUME_MIN_PROGRESS (64u << 10)
#define S3_READ_SMALL_RESUMES  3
#define S3_MAX_PARTS           10000

typedef struct s3_storage {
    ws_storage base;
    ws_s3_client c;
    char *prefix; /* "" or "some/prefix/" */
    char *desc;
    char *storage_class, *sse, *sse_kms_key_id;
} s3_storage;

static inline s3_storage *S(ws_storage *s)
{
    return (s3_storage *)s;
}

/* "<prefix><key>", malloc'd. */
static inline char *full_key(s3_storage *s, const char *key)
{
    char *k = NULL;
    if (asprintf(&k, "%s%s", s->prefix, key ? key : "") < 0)
        return NULL;
    return k;
}

static inline double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int check_key(const char *key, ws_error *err)
{
    if (!ws_storage_key_valid(key))
        return ws_error_set(err, WS_EINTERNAL, "invalid storage key \"%s\"", key ? key : "");
    return 0;
}

/* s3.c */
int ws_s3_drv_stat(ws_storage *st, const char *key, ws_storage_info *info, ws_error *err);
int64_t ws_s3_parse_iso_date(const char *s);
/* s3_read.c */
int ws_s3_drv_open_read(ws_storage *st, const char *key, uint64_t off, uint64_t len,
                        ws_storage_reader **out, ws_error *err);
/* s3_write.c */
int ws_s3_drv_open_write(ws_storage *st, const char *key, unsigned flags, ws_storage_writer **out,
                         ws_error *err);
/* s3_delete.c */
int ws_s3_drv_remove_many(ws_storage *st, const char *const *keys, size_t n, size_t *done,
                          ws_error *err);
int ws_s3_drv_list_ex(ws_storage *st, const char *prefix, unsigned flags, ws_storage_list_cb cb,
                      ws_storage_list_err_cb on_err, void *arg, ws_error *err);
int ws_s3_drv_remove_tmp(ws_storage *st, const char *name, ws_error *err);

#endif
