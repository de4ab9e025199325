/* protocol.c — the BASE_BACKUP command per PostgreSQL major (see protocol.h). */
#include "basebackup/protocol.h"

#include "walship/wal.h"

#include <stdio.h>
#include <string.h>

int ws_bb_dialect_for(int server_version_num, ws_bb_dialect *out, ws_error *err)
{
    int major = server_version_num / 10000;
    if (major < WS_PG_MAJOR_MIN || major > WS_PG_MAJOR_MAX) {
        ws_error_set(err, WS_ECONFIG,
                     "the server runs PostgreSQL %d.%d; walship basebackup supports PostgreSQL "
                     "%d to %d",
                     major, server_version_num % 100, WS_PG_MAJOR_MIN, WS_PG_MAJOR_MAX);
        ws_error_hint(err, major < WS_PG_MAJOR_MIN
                               ? "upgrade the cluster (pg_upgrade), or back it up with its own "
                                 "pg_basebackup"
                               : "this walship predates that release: upgrade walship");
        return -1;
    }
    *out = major >= 15 ? WS_BB_TARGET : WS_BB_LEGACY;
    return 0;
}

/* 'text' with quotes doubled, as the replication grammar's string literals */
static int quote(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap < 3)
        return -1;
    buf[n++] = '\'';
    for (; *s; s++) {
        if (n + 4 > cap)
            return -1;
        if (*s == '\'')
            buf[n++] = '\'';
        buf[n++] = *s;
    }
    buf[n++] = '\'';
    buf[n] = '\0';
    return 0;
}

int ws_bb_command(ws_bb_dialect d, const ws_bb_options *o, char *buf, size_t cap, ws_error *err)
{
    char label[2 * 1000 + 3], rate[48] = "";
    if (strlen(o->label) > 1000 || quote(o->label, label, sizeof label) < 0)
        return ws_error_set(err, WS_EINVAL, "the backup label is longer than 1000 bytes");
    int n;
    if (d == WS_BB_TARGET) {
        if (o->max_rate > 0)
            snprintf(rate, sizeof rate, ", MAX_RATE %ld", o->max_rate);
        n = snprintf(buf, cap,
                     "BASE_BACKUP (LABEL %s, PROGRESS true, CHECKPOINT '%s', WAIT false, WAL "
                     "false, MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', TARGET 'client'%s)",
                     label, o->fast ? "fast" : "spread", rate);
    } else {
        if (o->max_rate > 0)
            snprintf(rate, sizeof rate, " MAX_RATE %ld", o->max_rate);
        /* no FAST is a spread checkpoint; NOWAIT: walship waits for the WAL itself */
        n = snprintf(buf, cap,
                     "BASE_BACKUP LABEL %s PROGRESS%s NOWAIT%s MANIFEST 'yes' "
                     "MANIFEST_CHECKSUMS 'CRC32C'",
                     label, o->fast ? " FAST" : "", rate);
    }
    if (n < 0 || (size_t)n >= cap)
        return ws_error_set(err, WS_EINVAL, "the BASE_BACKUP command is too long");
    return 0;
}
