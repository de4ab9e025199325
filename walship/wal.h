/*
 * wal.h — PostgreSQL WAL file names, segment arithmetic and page-header validation.
 *
 * Names PostgreSQL hands to archive_command / restore_command:
 *   TTTTTTTTXXXXXXXXYYYYYYYY            a segment
 *   TTTTTTTTXXXXXXXXYYYYYYYY.partial    the last, incomplete segment of an old timeline
 *   TTTTTTTTXXXXXXXXYYYYYYYY.XXXXXXXX.backup   a backup history file
 *   TTTTTTTT.history                    a timeline history file
 * The hex is upper case, as PostgreSQL writes it.
 */
#ifndef WS_WAL_H
#define WS_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"

typedef enum ws_wal_kind {
    WS_WAL_NONE = 0,
    WS_WAL_SEGMENT,
    WS_WAL_PARTIAL,
    WS_WAL_BACKUP,  /* backup history file */
    WS_WAL_HISTORY, /* timeline history file */
} ws_wal_kind;

#define WS_WAL_NAME_LEN         24
#define WS_WAL_NAME_MAX         64
#define WS_WAL_SEG_MIN          (1u << 20)
#define WS_WAL_SEG_MAX          (1u << 30)
#define WS_WAL_PAGE_SIZE        8192u
#define WS_WAL_LONG_HEADER_SIZE 40u

typedef struct ws_wal_name {
    ws_wal_kind kind;
    uint32_t tli;
    uint32_t log;        /* XXXXXXXX: segno / segs_per_id */
    uint32_t seg;        /* YYYYYYYY: segno % segs_per_id */
    uint32_t backup_off; /* .backup: the offset part */
    char name[WS_WAL_NAME_MAX];
} ws_wal_name;

/* Parses a bare file name (no directory). Returns -1 with WS_EINVAL saying what the name
 * is not. */
int ws_wal_parse_name(const char *name, ws_wal_name *out, ws_error *err);

const char *ws_wal_kind_name(ws_wal_kind kind);

/* 1 if size is a power of two in [1 MiB, 1 GiB]. */
int ws_wal_seg_size_valid(uint64_t size);
/* Segments per "log id" (the XXXXXXXX step): 0x100000000 / seg_size. */
uint64_t ws_wal_segs_per_id(uint32_t seg_size);
/* Segment number of a segment name for a segment size; -1 if YYYYYYYY is out of range. */
int ws_wal_segno(const ws_wal_name *n, uint32_t seg_size, uint64_t *segno);
/* Formats TTTTTTTTXXXXXXXXYYYYYYYY for (tli, segno); buf holds >= 25 bytes. */
void ws_wal_format_segment(char *buf, uint32_t tli, uint64_t segno, uint32_t seg_size);
/* The segment holding lsn. */
uint64_t ws_wal_lsn_segno(uint64_t lsn, uint32_t seg_size);
/* Formats an LSN as PostgreSQL prints it ("16/B374D848") into out; returns out. */
#define WS_LSN_TEXT 32
char *ws_wal_lsn_text(uint64_t lsn, char out[WS_LSN_TEXT]);
/* Parses "16/B374D848" into an LSN. */
int ws_wal_parse_lsn(const char *s, uint64_t *lsn);

/* The long page header at the start of every segment. */
typedef struct ws_wal_header {
    uint16_t magic;
    uint16_t info;
    uint32_t tli;
    uint64_t pageaddr;
    uint64_t sysid;
    uint32_t seg_size;
    uint32_t blcksz;
    int pg_version; /* major version the magic belongs to (WS_PG_MAJOR_MIN..MAX) */
} ws_wal_header;

/* The PostgreSQL majors walship supports: their WAL is pushed and fetched, their clusters
 * backed up and restored. Older or newer ones are refused with a message naming the range. */
#define WS_PG_MAJOR_MIN 13
#define WS_PG_MAJOR_MAX 18

/* PostgreSQL major version for an xlp_magic (XLOG_PAGE_MAGIC of each release's
 * access/xlog_internal.h), or 0 if unknown. Also knows a few majors below WS_PG_MAJOR_MIN,
 * so that their WAL is refused by name rather than as garbage. */
int ws_wal_magic_version(uint16_t magic);
/* The xlp_magic of a major, or 0 if unknown (the inverse of ws_wal_magic_version). */
uint16_t ws_wal_version_magic(int major);

/* Decodes and validates the first WS_WAL_LONG_HEADER_SIZE bytes of a segment called
 * name whose file is file_size bytes: the magic of a supported major, XLP_LONG_HEADER,
 * xlp_seg_size ==
 * file_size (a power of two 1 MiB..1 GiB), pageaddr == the name's start LSN, 8 kB pages,
 * a timeline no greater than the name's (the first segment of a new timeline may carry
 * the old one). Messages name the file and say what is wrong. */
int ws_wal_check_header(const void *page, size_t len, const ws_wal_name *name, uint64_t file_size,
                        ws_wal_header *out, ws_error *err);

#endif
