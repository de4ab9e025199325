/*
 * codec.h — the codec table and the chains that turn plaintext into an object payload and
 * back, in the manner of pgBackRest's compress helper (compress/helper.c): one row per codec
 * (name, id stored in the object header, level range and default, the constructors of its
 * compress and decompress stages). Nothing outside this folder tests a codec id.
 *
 * Adding a codec is one file (its two stage constructors and its input bound) and one row in
 * codec.c's table.
 *
 * Write chain:  plaintext → hash → compress → [encrypt] → sink
 * Read chain:   payload → [decrypt] → decompress (bounded) → hash (or count) → dest
 *
 * Ownership (walship/stage/stage.h): every stage owns its next. A write chain owns the sink
 * handed to it; a read chain borrows dest (ws_stage_ref_new), so the caller frees dest.
 */
#ifndef WS_CODEC_H
#define WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "walship/codec/cipher.h"
#include "walship/config.h"
#include "walship/error.h"
#include "walship/stage/stage.h"

/* The codec byte of the object header (docs/repository-format.md). */
typedef enum ws_codec { WS_CODEC_NONE = 0, WS_CODEC_LZ4 = 1, WS_CODEC_ZSTD = 2 } ws_codec;

typedef struct ws_codec_info {
    ws_codec id;
    const char *name;
    int level_min, level_max, level_default;
    /* NULL: the payload is the plaintext (no stage). content_size is the exact plaintext
     * length if known (0 if not). */
    ws_stage *(*compress_new)(int level, uint64_t content_size, ws_stage *next);
    /* Fails with WS_ECORRUPT on a malformed payload, on output beyond max_out bytes, on
     * more input than max_out plaintext bytes can honestly take, on a payload not ended at
     * finish. */
    ws_stage *(*decompress_new)(uint64_t max_out, ws_stage *next);
} ws_codec_info;

/* The row of id, or NULL if this walship does not know it. */
const ws_codec_info *ws_codec_get(int id);
/* The row named name, or NULL. */
const ws_codec_info *ws_codec_find(const char *name);
/* "lz4" / "none" → codec; -1 if unknown. */
int ws_codec_parse(const char *s, ws_codec *out);
const char *ws_codec_name(ws_codec c);
/* "lz4 | none" for help texts and messages (static). */
const char *ws_codec_names(void);

/* The one reader of the compress and compress-level options: the codec, and the level
 * checked against that codec's range (compress-level unset: the codec's default). -1 with
 * WS_ECONFIG naming the bad value and where it came from. */
int ws_codec_opts_get(const ws_config *cfg, ws_codec *codec, int *level, ws_error *err);

/* lz4 frame stages (lz4.c). */
ws_stage *ws_stage_lz4_compress_new(int level, uint64_t content_size, ws_stage *next);
ws_stage *ws_stage_lz4_decompress_new(uint64_t max_out, ws_stage *next);
/* "none": passes at most max_out bytes on ("longer than its header says" beyond). */
ws_stage *ws_stage_none_decompress_new(uint64_t max_out, ws_stage *next);

/* What a chain does besides the codec. */
typedef struct ws_chain_opts {
    ws_codec codec;
    int level;
    uint64_t size_hint; /* exact plaintext length, 0 if unknown */
    int no_digest;      /* read: count bytes instead of hashing (the caller verifies) */
    /* encryption (cipher.h), or NULL: the encrypt / decrypt stage sits between compression
     * and the storage (the hash stays the plaintext's SHA-256; the header's keyed hash is
     * ws_cipher_keyed_hash of it) */
    const ws_cipher_obj *cipher;
} ws_chain_opts;

/* Builds hash → compress → [encrypt] → sink. On success *head is the chain (free with
 * ws_stage_free: it frees sink too) and *hash the hashing stage (ws_stage_sha256_result
 * after finish). On failure sink has been freed. */
int ws_codec_write_chain(const ws_chain_opts *o, ws_stage *sink, ws_stage **head, ws_stage **hash,
                         ws_error *err);
/* Builds [decrypt] → decompress (bounded by max_out) → hash or count → dest (borrowed).
 * *hash is the SHA-256 stage, or with no_digest the count stage (ws_stage_count). A codec
 * unknown here fails with WS_ECONFIG. */
int ws_codec_read_chain(const ws_chain_opts *o, uint64_t max_out, ws_stage *dest, ws_stage **head,
                        ws_stage **hash, ws_error *err);

#endif
