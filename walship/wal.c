/* wal.c — WAL names, segment arithmetic, long page header validation. */
#include "walship/wal.h"

#include "walship/bytes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XLP_LONG_HEADER 0x0002

static int is_hex_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

static uint32_t hex32(const char *s)
{
    char buf[9];
    memcpy(buf, s, 8);
    buf[8] = '\0';
    return (uint32_t)strtoul(buf, NULL, 16);
}

int ws_wal_parse_name(const char *name, ws_wal_name *out, ws_error *err)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(name);
    if (len >= WS_WAL_NAME_MAX || strchr(name, '/'))
        goto bad;
    if (len == 16 && is_hex_upper(name, 8) && strcmp(name + 8, ".history") == 0) {
        out->kind = WS_WAL_HISTORY;
        out->tli = hex32(name);
    } else if (len >= 24 && is_hex_upper(name, 24)) {
        out->tli = hex32(name);
        out->log = hex32(name + 8);
        out->seg = hex32(name + 16);
        if (len == 24)
            out->kind = WS_WAL_SEGMENT;
        else if (strcmp(name + 24, ".partial") == 0)
            out->kind = WS_WAL_PARTIAL;
        else if (len == 40 && name[24] == '.' && is_hex_upper(name + 25, 8) &&
                 strcmp(name + 33, ".backup") == 0) {
            out->kind = WS_WAL_BACKUP;
            out->backup_off = hex32(name + 25);
        } else
            goto bad;
    } else
        goto bad;
    if (out->tli == 0)
        return ws_error_set(err, WS_EINVAL, "\"%s\" names timeline 0, which does not exist", name);
    memcpy(out->name, name, len + 1);
    return 0;
bad:
    ws_error_set(err, WS_EINVAL,
                 "\"%s\" is not a WAL file name (expected a 24-hex-digit segment, "
                 "TTTTTTTT.history, a .backup or a .partial file)",
                 name);
    return -1;
}

const char *ws_wal_kind_name(ws_wal_kind kind)
{
    switch (kind) {
    case WS_WAL_SEGMENT:
        return "segment";
    case WS_WAL_PARTIAL:
        return "partial segment";
    case WS_WAL_BACKUP:
        return "backup history file";
    case WS_WAL_HISTORY:
        return "timeline history file";
    default:
        return "not WAL";
    }
}

int ws_wal_seg_size_valid(uint64_t size)
{
    return size >= WS_WAL_SEG_MIN && size <= WS_WAL_SEG_MAX && (size & (size - 1)) == 0;
}

uint64_t ws_wal_segs_per_id(uint32_t seg_size)
{
    return UINT64_C(0x100000000) / seg_size;
}

int ws_wal_segno(const ws_wal_name *n, uint32_t seg_size, uint64_t *segno)
{
    uint64_t per = ws_wal_segs_per_id(seg_size);
    if (n->seg >= per)
        return -1;
    *segno = (uint64_t)n->log * per + n->seg;
    return 0;
}

void ws_wal_format_segment(char *buf, uint32_t tli, uint64_t segno, uint32_t seg_size)
{
    uint64_t per = ws_wal_segs_per_id(seg_size);
    snprintf(buf, 25, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32, tli, (uint32_t)(segno / per),
             (uint32_t)(segno % per));
}

uint64_t ws_wal_lsn_segno(uint64_t lsn, uint32_t seg_size)
{
    return lsn / seg_size;
}

char *ws_wal_lsn_text(uint64_t lsn, char out[WS_LSN_TEXT])
{
    snprintf(out, WS_LSN_TEXT, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
    return out;
}

int ws_wal_parse_lsn(const char *s, uint64_t *lsn)
{
    char *end;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1])
        return -1;
    for (const char *p = s; *p; p++)
        if (p != slash &&
            !((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') || (*p >= 'a' && *p <= 'f')))
            return -1;
    unsigned long hi = strtoul(s, &end, 16);
    if (end != slash || hi > 0xFFFFFFFFul)
        return -1;
    unsigned long lo = strtoul(slash + 1, &end, 16);
    if (*end || lo > 0xFFFFFFFFul || slash - s > 8 || strlen(slash + 1) > 8)
        return -1;
    *lsn = ((uint64_t)hi << 32) | lo;
    return 0;
}

/* XLOG_PAGE_MAGIC per major: it changes whenever the WAL format does, at least once per
 * release. The segment-size rules (a power of two, 1 MiB to 1 GiB, chosen at initdb) are the
 * same for every major here (since 11), so they need no column. */
static const struct {
    int major;
    uint16_t magic;
} wal_magics[] = {
    {11, 0xD098}, {12, 0xD101}, {13, 0xD106}, {14, 0xD10D},
    {15, 0xD110}, {16, 0xD113}, {17, 0xD116}, {18, 0xD118},
};

int ws_wal_magic_version(uint16_t magic)
{
    for (size_t i = 0; i < sizeof wal_magics / sizeof wal_magics[0]; i++)
        if (wal_magics[i].magic == magic)
            return wal_magics[i].major;
    return 0;
}

uint16_t ws_wal_version_magic(int major)
{
    for (size_t i = 0; i < sizeof wal_magics / sizeof wal_magics[0]; i++)
        if (wal_magics[i].major == major)
            return wal_magics[i].magic;
    return 0;
}

int ws_wal_check_header(const void *page, size_t len, const ws_wal_name *name, uint64_t file_size,
                        ws_wal_header *out, ws_error *err)
{
    const unsigned char *p = page;
    ws_wal_header h;
    memset(&h, 0, sizeof h);
    if (len < WS_WAL_LONG_HEADER_SIZE)
        return ws_error_set(err, WS_EINVAL,
                            "%s is %" PRIu64 " bytes, too short to be a WAL segment", name->name,
                            file_size);
    h.magic = ws_get_le16(p);
    h.info = ws_get_le16(p + 2);
    h.tli = ws_get_le32(p + 4);
    h.pageaddr = ws_get_le64(p + 8);
    h.sysid = ws_get_le64(p + 24);
    h.seg_size = ws_get_le32(p + 32);
    h.blcksz = ws_get_le32(p + 36);
    h.pg_version = ws_wal_magic_version(h.magic);
    if (!h.pg_version)
        return ws_error_set(err, WS_EINVAL,
                            "%s does not start with a WAL page header of PostgreSQL %d to %d "
                            "(magic 0x%04X) — not a WAL segment, or damaged",
                            name->name, WS_PG_MAJOR_MIN, WS_PG_MAJOR_MAX, h.magic);
    if (h.pg_version < WS_PG_MAJOR_MIN || h.pg_version > WS_PG_MAJOR_MAX) {
        ws_error_set(err, WS_EINVAL,
                     "%s is WAL of PostgreSQL %d (magic 0x%04X); walship supports PostgreSQL "
                     "%d to %d",
                     name->name, h.pg_version, h.magic, WS_PG_MAJOR_MIN, WS_PG_MAJOR_MAX);
        ws_error_hint(err, "upgrade the cluster (pg_upgrade) or archive it with another tool");
        return -1;
    }
    if (!(h.info & XLP_LONG_HEADER))
        return ws_error_set(err, WS_EINVAL,
                            "%s: the first page lacks the long header flag — not the start of a "
                            "WAL segment",
                            name->name);
    if (!ws_wal_seg_size_valid(h.seg_size))
        return ws_error_set(err, WS_EINVAL,
                            "%s: the header's segment size %" PRIu32
                            " is not a power of two between 1 MiB and 1 GiB",
                            name->name, h.seg_size);
    if (file_size != h.seg_size)
        return ws_error_set(err, WS_EINVAL,
                            "segment %s is %" PRIu64 " bytes, expected %" PRIu32
                            " — not a complete WAL segment",
                            name->name, file_size, h.seg_size);
    if (h.blcksz != WS_WAL_PAGE_SIZE)
        return ws_error_set(err, WS_EINVAL,
                            "%s: WAL block size %" PRIu32 " is not supported (expected 8192)",
                            name->name, h.blcksz);
    uint64_t segno;
    if (ws_wal_segno(name, h.seg_size, &segno) < 0)
        return ws_error_set(err, WS_EINVAL,
                            "%s: the name is impossible for a segment size of %" PRIu32 " bytes",
                            name->name, h.seg_size);
    uint64_t start = segno * h.seg_size;
    if (h.pageaddr != start)
        return ws_error_set(err, WS_EINVAL,
                            "%s: the header's page address %X/%X is not the segment's start "
                            "%X/%X — the file was renamed or is damaged",
                            name->name, (unsigned)(h.pageaddr >> 32), (unsigned)h.pageaddr,
                            (unsigned)(start >> 32), (unsigned)start);
    if (h.tli > name->tli || h.tli == 0)
        return ws_error_set(err, WS_EINVAL,
                            "%s: the header's timeline %" PRIu32
                            " does not fit the name's timeline %" PRIu32,
                            name->name, h.tli, name->tli);
    if (out)
        *out = h;
    return 0;
}
