/* pin.c — pinned backups (pin.h). */
#include "walship/repo/pin.h"
#include "walship/repo/keys.h"
#include "walship/repo/lock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int pin_key(const char *id, char *key, size_t len, ws_error *err)
{
    if (ws_key_backup_object(id, WS_PIN_NAME, key, len) < 0)
        return ws_error_set(err, WS_EINVAL, "invalid backup id \"%s\"", id);
    return 0;
}

int ws_pin_set(ws_repo *r, const char *id, const char *note, ws_error *err)
{
    char key[128], clean[WS_PIN_NOTE_MAX + 1], text[WS_PIN_NOTE_MAX + 256];
    if (pin_key(id, key, sizeof key, err) < 0)
        return -1;
    snprintf(clean, sizeof clean, "%s", note ? note : "");
    for (char *c = clean; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    int len = snprintf(text, sizeof text,
                       "# walship pin: walship expire never removes this backup\n"
                       "pinned-at = %" PRId64 "\nnote = %s\n",
                       ws_repo_wall_time(), clean);
    if (len < 0 || (size_t)len >= sizeof text)
        return ws_error_set(err, WS_EINTERNAL, "pin text too long");
    return ws_storage_put_small(ws_repo_storage(r), key, 0, text, (size_t)len, NULL, err);
}

int ws_pin_clear(ws_repo *r, const char *id, ws_error *err)
{
    char key[128];
    ws_storage_info info;
    if (pin_key(id, key, sizeof key, err) < 0 ||
        ws_storage_stat(ws_repo_storage(r), key, &info, err) < 0)
        return -1;
    return ws_storage_remove(ws_repo_storage(r), key, err);
}

int ws_pin_get(ws_repo *r, const char *id, ws_pin *pin, ws_error *err)
{
    char key[128], *text = NULL;
    size_t len;
    memset(pin, 0, sizeof *pin);
    if (pin_key(id, key, sizeof key, err) < 0 ||
        ws_storage_get_small(ws_repo_storage(r), key, 4096, &text, &len, err) < 0)
        return -1;
    const char *p = strstr(text, "pinned-at = ");
    if (p)
        pin->pinned_at = strtoll(p + 12, NULL, 10);
    p = strstr(text, "\nnote = ");
    if (p) {
        p += 8;
        size_t n = strcspn(p, "\n");
        if (n > WS_PIN_NOTE_MAX)
            n = WS_PIN_NOTE_MAX;
        memcpy(pin->note, p, n);
        pin->note[n] = '\0';
    }
    free(text);
    return 0;
}
