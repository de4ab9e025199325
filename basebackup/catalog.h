/*
 * catalog.h — the backups a repository holds: every backup/<id>/ with its walship.manifest
 * (complete, restorable), oldest first, and the ids of those without one (incomplete: killed
 * midway, never restorable). Shared by list and restore.
 *
 * Ownership: ws_catalog_load fills a catalog the caller frees with ws_catalog_free.
 */
#ifndef WS_CATALOG_H
#define WS_CATALOG_H

#include "basebackup/manifest.h"

typedef struct ws_catalog {
    ws_manifest_info *backups; /* complete ones, by start time then id */
    int n;
    char **incomplete; /* ids, sorted */
    int nincomplete;
} ws_catalog;

/* Lists backup/ in r and reads each manifest. A manifest that cannot be read is logged as a
 * warning and left out (one damaged backup must not hide the others). */
int ws_catalog_load(ws_repo *r, ws_catalog *out, ws_error *err);
void ws_catalog_free(ws_catalog *c);
/* The complete backup with this id, or NULL. */
const ws_manifest_info *ws_catalog_find(const ws_catalog *c, const char *id);

#endif
