/* keys.c — the repository's keys and prefixes (keys.h). */
#include "walship/repo/keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int fits(int k, size_t len)
{
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

static int id_ok(const char *id)
{
    return id && *id && !strchr(id, '/');
}

int ws_key_backup_prefix(const char *id, char *buf, size_t len)
{
    if (!id_ok(id))
        return -1;
    return fits(snprintf(buf, len, WS_KEY_BACKUP_PREFIX "%s/", id), len);
}

int ws_key_backup_object(const char *id, const char *name, char *buf, size_t len)
{
    if (!id_ok(id) || !name || !*name)
        return -1;
    return fits(snprintf(buf, len, WS_KEY_BACKUP_PREFIX "%s/%s", id, name), len);
}

int ws_key_backup_id(const char *key, char *id, size_t len)
{
    size_t p = strlen(WS_KEY_BACKUP_PREFIX);
    if (strncmp(key, WS_KEY_BACKUP_PREFIX, p) != 0)
        return -1;
    const char *s = key + p, *slash = strchr(s, '/');
    if (!slash || slash == s || (size_t)(slash - s) >= len)
        return -1;
    memcpy(id, s, (size_t)(slash - s));
    id[slash - s] = '\0';
    return 0;
}

const char *ws_key_backup_name(const char *key)
{
    size_t p = strlen(WS_KEY_BACKUP_PREFIX);
    if (strncmp(key, WS_KEY_BACKUP_PREFIX, p) != 0)
        return NULL;
    const char *slash = strchr(key + p, '/');
    return slash && slash != key + p ? slash + 1 : NULL;
}

int ws_key_wal_timeline_prefix(uint32_t tli, char *buf, size_t len)
{
    return fits(snprintf(buf, len, WS_KEY_WAL_PREFIX "%08" PRIX32, tli), len);
}

int ws_key_gap_timeline_prefix(uint32_t tli, char *buf, size_t len)
{
    return fits(snprintf(buf, len, WS_KEY_GAP_PREFIX "%08" PRIX32, tli), len);
}
