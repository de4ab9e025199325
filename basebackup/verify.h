/*
 * verify.h — proof that a backup is whole before its manifest is written: the server's
 * backup_manifest, as it streams in, is checked against what walship stored.
 *
 *   - its Manifest-Checksum must be the SHA-256 of the bytes before it (the manifest itself
 *     arrived intact);
 *   - every file it lists must have been stored, with the same size and checksum (walship's
 *     bytes are the server's): CRC32C, which walship asks for (the server computes it almost
 *     for free, where SHA-256 costs it a second of CPU per GB), or SHA-256 if the manifest
 *     has that;
 *   - and walship must have stored no file it does not list.
 *
 * Paths are the server manifest's: relative to the data directory, tablespace files under
 * pg_tblspc/<oid>/. Memory: one small record per file.
 *
 * Ownership: ws_bb_verify_new returns a checker freed by ws_bb_verify_free.
 */
#ifndef WS_BB_VERIFY_H
#define WS_BB_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "walship/error.h"

typedef struct ws_bb_verify ws_bb_verify;

ws_bb_verify *ws_bb_verify_new(void);
void ws_bb_verify_free(ws_bb_verify *v);

/* A file walship stored: its size, SHA-256 and CRC-32C (ws_bb_crc32c). */
int ws_bb_verify_add(ws_bb_verify *v, const char *path, uint64_t size,
                     const unsigned char sha256[32], uint32_t crc32c, ws_error *err);
/* The next bytes of the server's backup_manifest. */
int ws_bb_verify_feed(ws_bb_verify *v, const void *buf, size_t len, ws_error *err);
/* After the last byte: the checks above; WS_ECORRUPT naming the first discrepancy.
 * *checked (may be NULL) receives the number of files compared. */
int ws_bb_verify_finish(ws_bb_verify *v, uint64_t *checked, ws_error *err);

/* CRC-32C (Castagnoli, as PostgreSQL's manifests), chainable: start with 0, pass the result
 * back in with the next bytes. SSE 4.2's crc32 instruction where the CPU has it, a table
 * otherwise. */
uint32_t ws_bb_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
