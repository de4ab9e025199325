/* codec.c — the codec table, the compress option reader and the two chain builders. */
#include "walship/codec/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row per codec. A new codec: its file (compress/decompress constructors) and a row. */
static const ws_codec_info codecs[] = {
    {WS_CODEC_NONE, "none", 0, 0, 0, NULL, ws_stage_none_decompress_new},
    {WS_CODEC_LZ4, "lz4", 1, 12, 1, ws_stage_lz4_compress_new, ws_stage_lz4_decompress_new},
};
#define NCODECS (sizeof codecs / sizeof codecs[0])

const ws_codec_info *ws_codec_get(int id)
{
    for (size_t i = 0; i < NCODECS; i++)
        if ((int)codecs[i].id == id)
            return &codecs[i];
    return NULL;
}

const ws_codec_info *ws_codec_find(const char *name)
{
    for (size_t i = 0; name && i < NCODECS; i++)
        if (strcmp(codecs[i].name, name) == 0)
            return &codecs[i];
    return NULL;
}

int ws_codec_parse(const char *s, ws_codec *out)
{
    const ws_codec_info *c = ws_codec_find(s);
    if (!c)
        return -1;
    *out = c->id;
    return 0;
}

const char *ws_codec_name(ws_codec c)
{
    const ws_codec_info *i = ws_codec_get((int)c);
    return i ? i->name : "unknown";
}

const char *ws_codec_names(void)
{
    static char names[128];
    if (!names[0]) {
        size_t off = 0;
        /* the last row first: the compressing codecs, then none */
        for (size_t k = NCODECS; k-- > 0;) {
            int n =
                snprintf(names + off, sizeof names - off, "%s%s", off ? " | " : "", codecs[k].name);
            if (n < 0 || (size_t)n >= sizeof names - off)
                break;
            off += (size_t)n;
        }
    }
    return names;
}

int ws_codec_opts_get(const ws_config *cfg, ws_codec *codec, int *level, ws_error *err)
{
    const char *name = ws_config_get(cfg, "compress");
    const ws_codec_info *c = ws_codec_find(name);
    if (!c)
        return ws_error_set(err, WS_ECONFIG, "compress = \"%s\" (from %s) is not %s",
                            name ? name : "", ws_config_source(cfg, "compress"), ws_codec_names());
    *codec = c->id;
    *level = c->level_default;
    /* a codec without levels ignores compress-level; unset, each codec has its default */
    const char *src = ws_config_source(cfg, "compress-level");
    if (c->level_max == 0 || !src || strcmp(src, "default") == 0)
        return 0;
    long v;
    if (ws_config_get_long(cfg, "compress-level", c->level_min, c->level_max, &v, err) < 0)
        return -1;
    *level = (int)v;
    return 0;
}

int ws_codec_write_chain(const ws_chain_opts *o, ws_stage *sink, ws_stage **head, ws_stage **hash,
                         ws_error *err)
{
    *head = *hash = NULL;
    const ws_codec_info *c = ws_codec_get((int)o->codec);
    if (!c) {
        ws_stage_free(sink);
        return ws_error_set(err, WS_EINTERNAL, "codec %d is not in the codec table", o->codec);
    }
    ws_stage *s = sink, *enc = NULL;
    if (s && o->cipher)
        s = enc = ws_stage_encrypt_new(o->cipher, s);
    if (s && c->compress_new)
        s = c->compress_new(o->level, o->size_hint, s);
    /* SHA-256 on this thread: with SHA-NI it runs at ~2 GB/s, a few ms per segment, while a
     * helper thread costs a copy of every byte and a futex hand-off per 256 KiB
     * (docs/benchmarks.md, push). The async agent gets its parallelism from pushing several
     * files at once. */
    if (s)
        s = ws_stage_sha256_new(s);
    if (!s)
        return ws_error_oom(err); /* each constructor freed its next on failure */
    if (enc)
        ws_stage_encrypt_bind(enc, s); /* the final frame binds the length and keyed hash */
    *head = *hash = s;
    return 0;
}

int ws_codec_read_chain(const ws_chain_opts *o, uint64_t max_out, ws_stage *dest, ws_stage **head,
                        ws_stage **hash, ws_error *err)
{
    *head = *hash = NULL;
    const ws_codec_info *c = ws_codec_get((int)o->codec);
    if (!c)
        return ws_error_set(err, WS_ECONFIG, "codec %d is unknown to this walship", o->codec);
    ws_stage *s = ws_stage_ref_new(dest);
    if (s && o->no_digest)
        s = ws_stage_count_new(s);
    else if (s)
        s = ws_stage_sha256_new(s);
    ws_stage *h = s;
    if (s)
        s = c->decompress_new(max_out, s);
    if (s && o->cipher)
        s = ws_stage_decrypt_new(o->cipher, s);
    if (!s)
        return ws_error_oom(err);
    *head = s;
    *hash = h;
    return 0;
}
