/*
 * pin.h — pinned backups: backup/<id>/walship.pin, a small text object (when, optional
 * note). walship expire never removes a pinned backup, nor the WAL from its start to its
 * stop (docs/retention.md). `walship pin ID [--note TEXT]`, `walship unpin ID` and
 * `walship basebackup --pin` write and remove it; the catalog (catalog.h) sees it in its
 * listing of backup/, so that list and expire need no extra request per backup.
 */
#ifndef WS_REPO_PIN_H
#define WS_REPO_PIN_H

#include <stdint.h>

#include "walship/repo/repo.h"

#define WS_PIN_NAME     "walship.pin"
#define WS_PIN_NOTE_MAX 512

typedef struct ws_pin {
    int64_t pinned_at; /* seconds since the epoch */
    char note[WS_PIN_NOTE_MAX + 1];
} ws_pin;

/* Pins backup id in r (replacing an earlier pin's note). The caller has checked that the
 * backup exists. note may be NULL; it is stored on one line (newlines become spaces). */
int ws_pin_set(ws_repo *r, const char *id, const char *note, ws_error *err);
/* Removes the pin; WS_ENOENT if there was none. */
int ws_pin_clear(ws_repo *r, const char *id, ws_error *err);
/* Reads the pin: WS_ENOENT if the backup is not pinned. */
int ws_pin_get(ws_repo *r, const char *id, ws_pin *pin, ws_error *err);

#endif
