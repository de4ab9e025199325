/*
 * catalog.h — the backups a repository holds: every backup/<id>/ with its walship.manifest
 * (complete, restorable), oldest first; those without one (incomplete: started, then killed
 * or still running, never restorable), with what they occupy; and those that cannot be read
 * (a corrupt manifest, a directory walship may not list), which must not hide the others.
 * Shared by list, restore and repo repair.
 *
 * A backup marks itself started (WS_CATALOG_STARTED_NAME) before its first data object, so
 * that even one killed before it committed anything is seen.
 *
 * Ownership: ws_catalog_load fills a catalog the caller frees with ws_catalog_free.
 */
#ifndef WS_CATALOG_H
#define WS_CATALOG_H

#include "walship/repo/manifest.h"
#include "walship/repo/keys.h"

/* backup/<id>/walship.started: a small text object written create-only-if-absent before
 * the backup's first data object (docs/repository-format.md, "Backups"). */
#define WS_CATALOG_STARTED_NAME "walship.started"
/* backup/<id>/walship.expiring: written by ws_catalog_remove before it removes the manifest of
 * a complete backup, removed last. A backup that has it is being removed (or a removal was
 * interrupted): never restorable, and expire finishes it at once, without the grace that
 * other incomplete backups get. */
#define WS_CATALOG_EXPIRING_NAME "walship.expiring"

typedef struct ws_catalog_incomplete {
    uint64_t objects, bytes;       /* its stored objects and their bytes */
    uint64_t tmp_files, tmp_bytes; /* the driver's temporary files under it (posix) */
    int started;                   /* it has its WS_CATALOG_STARTED_NAME marker */
    int locked;                    /* it has a lock object (repo/lock.h): read it for liveness */
    int expiring;                  /* its removal was begun (WS_CATALOG_EXPIRING_NAME) */
    int64_t newest_mtime;          /* the storage time of its newest object or temporary file */
} ws_catalog_incomplete;

typedef struct ws_catalog_unreadable {
    char id[WS_MANIFEST_ID_MAX];
    ws_error err; /* why: the manifest or the listing failed */
} ws_catalog_unreadable;

typedef struct ws_catalog {
    ws_manifest_info *backups; /* complete ones, by start time then id */
    int n;
    unsigned char *pinned;                  /* n entries: backups[i] has a pin (repo/pin.h) */
    char **incomplete;                      /* ids, sorted */
    ws_catalog_incomplete *incomplete_info; /* the same order, nincomplete entries */
    int nincomplete;
    ws_catalog_unreadable *unreadable; /* sorted by id */
    int nunreadable;
} ws_catalog;

/* Lists backup/ in r and reads each manifest. A backup whose manifest or directory cannot
 * be read goes into unreadable (and is logged as a warning); the others are still loaded.
 * Fails only when backup/ itself cannot be listed. */
int ws_catalog_load(ws_repo *r, ws_catalog *out, ws_error *err);
void ws_catalog_free(ws_catalog *c);
/* The complete backup with this id, or NULL. */
const ws_manifest_info *ws_catalog_find(const ws_catalog *c, const char *id);

/* Writes the started marker of backup info->id (its id, system identifier, versions and
 * start LSN known) into repos[0..n), create-only-if-absent: WS_EEXIST if an earlier backup
 * holds the id. */
int ws_catalog_mark_started(ws_repo **repos, int n, const ws_manifest_info *info, ws_error *err);

/* What ws_catalog_remove removed. */
typedef struct ws_catalog_removed {
    uint64_t objects, bytes;
    int had_manifest; /* it was a complete backup */
} ws_catalog_removed;

/* Removes backup id from r, in the order that is safe against a crash at any point: a
 * WS_CATALOG_EXPIRING_NAME marker (complete backups), then the manifest, durably (from then on the
 * backup is incomplete, never listed as complete nor restored), then its data objects (many at
 * once: ws_storage_remove_many), and last its lock, its WS_CATALOG_STARTED_NAME marker and the
 * expiring marker, so that a backup half removed is still seen as incomplete, and as being removed,
 * and a later run (expire) finishes the job. Temporary files under it are left to expire's leftover
 * collection. out (may be NULL) says what was removed, also on failure. */
int ws_catalog_remove(ws_repo *r, const char *id, ws_catalog_removed *out, ws_error *err);

#endif
