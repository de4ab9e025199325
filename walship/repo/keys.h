/*
 * keys.h — every key and prefix of the repository format (docs/repository-format.md), built
 * in one place: nothing outside walship/repo/ writes "wal/", "backup/" or "gap/" by hand.
 *
 *   walship.repo                         the identity (repo.h)
 *   wal/TTTTTTTTXXXXXXXX/<segment>       WAL segments, .partial and .backup files
 *   wal/history/<TTTTTTTT.history>       timeline history files
 *   gap/TTTTTTTTXXXXXXXX/<segment>       gap records (repo.h, "gaps")
 *   backup/<id>/<name>                   a base backup's objects, manifest and markers
 *
 * Every builder writes a NUL-terminated key into buf and returns 0, or -1 if buf is too
 * small or an argument cannot form a valid key (an empty id, an id with '/').
 */
#ifndef WS_REPO_KEYS_H
#define WS_REPO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define WS_KEY_WAL_PREFIX     "wal/"
#define WS_KEY_HISTORY_PREFIX "wal/history/"
#define WS_KEY_GAP_PREFIX     "gap/"
#define WS_KEY_BACKUP_PREFIX  "backup/"

/* "backup/<id>/" */
int ws_key_backup_prefix(const char *id, char *buf, size_t len);
/* "backup/<id>/<name>" (name may contain '/': "data/000001") */
int ws_key_backup_object(const char *id, const char *name, char *buf, size_t len);
/* The id of a key under backup/ ("backup/<id>/..."), copied into id; -1 if key is not one. */
int ws_key_backup_id(const char *key, char *id, size_t len);
/* The part of a backup key after "backup/<id>/", or NULL if key is not one. */
const char *ws_key_backup_name(const char *key);
/* "wal/TTTTTTTT": every WAL directory of timeline tli starts with it (a listing prefix). */
int ws_key_wal_timeline_prefix(uint32_t tli, char *buf, size_t len);
/* "gap/TTTTTTTT": every gap record of timeline tli starts with it. */
int ws_key_gap_timeline_prefix(uint32_t tli, char *buf, size_t len);

#endif
