/* repo.c — repository identity, WAL keys, object writing and verified reading. */
#include "walship/repo/repo.h"
#include "walship/clock.h"

#include <openssl/crypto.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define META_SHA256 "walship-sha256"
#define META_LENGTH "walship-length"
#define META_CODEC  "walship-codec"
#define META_HMAC   "walship-hmac" /* encrypted objects: the keyed hash, never the SHA-256 */
#define META_CIPHER "walship-cipher"
#define READ_CHUNK  (256 * 1024)

struct ws_repo {
    ws_storage *storage;
    int have_identity;
    ws_repo_identity identity;
    ws_repo_cipher *cipher; /* keyring.c */
};

ws_repo_cipher **ws_repo_cipher_slot(ws_repo *r)
{
    return &r->cipher;
}

int ws_repo_open(const ws_storage_config *cfg, ws_repo **out, ws_error *err)
{
    *out = NULL;
    ws_repo *r = calloc(1, sizeof *r);
    if (!r)
        return ws_error_oom(err);
    if (ws_storage_open(cfg, &r->storage, err) < 0) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void ws_repo_free(ws_repo *r)
{
    if (!r)
        return;
    ws_storage_free(r->storage);
    ws_repo_cipher_free(r->cipher);
    free(r);
}

ws_storage *ws_repo_storage(ws_repo *r)
{
    return r->storage;
}

const char *ws_repo_describe(ws_repo *r)
{
    return ws_storage_describe(r->storage);
}

/* ---- identity ---- */

static int parse_identity(const char *text, const char *where, ws_repo_identity *id, ws_error *err)
{
    memset(id, 0, sizeof *id);
    int seen = 0;
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char buf[256];
        if (n >= sizeof buf)
            n = sizeof buf - 1;
        memcpy(buf, line, n);
        buf[n] = '\0';
        line += nl ? n + 1 : n;
        char key[64], value[128];
        if (buf[0] == '#' || buf[0] == '\0')
            continue;
        if (sscanf(buf, " %63[a-z-] = %127s", key, value) != 2)
            return ws_error_set(err, WS_ECORRUPT, "%s: malformed line \"%s\"", where, buf);
        char *end;
        unsigned long long v = strtoull(value, &end, 10);
        int numeric = *end == '\0';
        if (strcmp(key, "format") == 0 && numeric) {
            id->format = (int)v;
            seen |= 1;
        } else if (strcmp(key, "system-identifier") == 0 && numeric) {
            id->sysid = v;
            seen |= 2;
        } else if (strcmp(key, "pg-version") == 0 && numeric) {
            id->pg_version = (int)v;
            seen |= 4;
        } else if (strcmp(key, "wal-segment-size") == 0 && numeric) {
            id->seg_size = (uint32_t)v;
            seen |= 8;
        }
    }
    if (seen & 1 && id->format > WS_REPO_FORMAT) {
        ws_error_set(err, WS_ECONFIG, "%s has repository format %d; this walship reads format %d",
                     where, id->format, WS_REPO_FORMAT);
        ws_error_hint(err, "upgrade walship");
        return -1;
    }
    if (seen != 15)
        return ws_error_set(err, WS_ECORRUPT,
                            "%s lacks format, system-identifier, pg-version "
                            "or wal-segment-size",
                            where);
    return 0;
}

int ws_repo_identity_get(ws_repo *r, ws_repo_identity *id, ws_error *err)
{
    if (r->have_identity) {
        *id = r->identity;
        return 0;
    }
    char where[600];
    snprintf(where, sizeof where, "%s/%s", ws_repo_describe(r), WS_REPO_ROOT_KEY);
    /* A store that is not atomic (s3rver writes an object in place) can show an identity
     * another process is creating right now, incomplete: such a reading is retried a few
     * times before it counts as corrupt. On an atomic store a retry reads the same bytes. */
    int rc = -1;
    for (int attempt = 0; attempt < 4; attempt++) {
        if (attempt) {
            ws_sleep(0.25);
        }
        char *text;
        size_t len;
        if (ws_storage_get_small(r->storage, WS_REPO_ROOT_KEY, 4096, &text, &len, err) < 0)
            return -1;
        rc = parse_identity(text, where, id, err);
        free(text);
        if (rc == 0 || err->code != WS_ECORRUPT)
            break;
    }
    if (rc == 0) {
        r->identity = *id;
        r->have_identity = 1;
    }
    return rc;
}

int ws_repo_identity_require(ws_repo *r, ws_repo_identity *id, ws_error *err)
{
    if (ws_repo_identity_get(r, id, err) == 0)
        return 0;
    if (err->code == WS_ENOENT) {
        ws_error_set(err, WS_ETRANSIENT,
                     "repository %s has no %s: it is not mounted, not a walship repository, or "
                     "the wrong bucket or prefix; nothing in it can be trusted to be absent",
                     ws_repo_describe(r), WS_REPO_ROOT_KEY);
        ws_error_hint(err, "mount the repository, or fix repo in the config (for S3: the bucket "
                           "and prefix, s3-endpoint)");
    }
    return -1;
}

static int compare_identity(ws_repo *r, const ws_repo_identity *have, const ws_repo_identity *want,
                            ws_error *err)
{
    if (have->sysid != want->sysid) {
        ws_error_set(err, WS_EMISMATCH,
                     "repository %s belongs to the cluster with system identifier %" PRIu64
                     ", not this one (%" PRIu64 ")",
                     ws_repo_describe(r), have->sysid, want->sysid);
        ws_error_hint(err, "each cluster needs its own repository (or S3 prefix); check repo in "
                           "the config");
        return -1;
    }
    if (have->seg_size != want->seg_size)
        return ws_error_set(err, WS_EMISMATCH,
                            "repository %s holds WAL segments of %" PRIu32
                            " bytes, this segment is %" PRIu32,
                            ws_repo_describe(r), have->seg_size, want->seg_size);
    if (have->pg_version != want->pg_version) {
        ws_error_set(err, WS_EMISMATCH,
                     "repository %s holds WAL of PostgreSQL %d, this segment is PostgreSQL %d",
                     ws_repo_describe(r), have->pg_version, want->pg_version);
        ws_error_hint(err, "after a major upgrade, archive into a new repository");
        return -1;
    }
    return 0;
}

/* What a first look for stored objects found: the first key, in which prefix. */
typedef struct holds_scan {
    char key[256];
} holds_scan;

static int holds_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    holds_scan *h = arg;
    /* Timeline history files are stored before the first segment after a promotion, and a
     * backup history file can be (the async agent pushes several files at once, and this tiny
     * one finishes first): neither carries a system identifier, so neither makes a repository
     * "used" (docs/repository-format.md). */
    size_t n = strlen(key);
    if (strncmp(key, "wal/history/", 12) == 0 || (n > 7 && strcmp(key + n - 7, ".backup") == 0))
        return 0;
    snprintf(h->key, sizeof h->key, "%s", key);
    return 1; /* one key is enough: stop listing */
}

int ws_repo_holds_objects(ws_repo *r, char *found, size_t len, ws_error *err)
{
    static const char *const prefixes[] = {"wal/", "gap/", "backup/"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        holds_scan h = {""};
        if (ws_storage_list(r->storage, prefixes[i], holds_cb, &h, err) < 0) {
            ws_error_prefix(err, "looking for stored objects in %s", ws_repo_describe(r));
            return -1;
        }
        if (h.key[0]) {
            if (found && len)
                snprintf(found, len, "%s", h.key);
            return 1;
        }
    }
    if (found && len)
        found[0] = '\0';
    return 0;
}

int ws_repo_identity_create(ws_repo *r, const ws_repo_identity *id, const char *origin,
                            ws_error *err)
{
    char text[768], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(text, sizeof text,
                     "# walship repository — written once by %s; do not edit\n"
                     "format = %d\nsystem-identifier = %" PRIu64 "\npg-version = %d\n"
                     "wal-segment-size = %" PRIu32 "\ncreated = %s\ncreated-by = walship %s\n",
                     origin ? origin : "the first push", WS_REPO_FORMAT, id->sysid, id->pg_version,
                     id->seg_size, stamp, WS_VERSION);
    if (n < 0 || (size_t)n >= sizeof text)
        return ws_error_set(err, WS_EINTERNAL, "walship.repo text too long");
    if (ws_storage_put_small(r->storage, WS_REPO_ROOT_KEY, WS_STORAGE_WRITE_EXCL, text, (size_t)n,
                             NULL, err) < 0)
        return -1;
    r->identity = *id;
    r->identity.format = WS_REPO_FORMAT;
    r->have_identity = 1;
    return 0;
}

int ws_repo_identity_ensure(ws_repo *r, const ws_repo_identity *want, ws_error *err)
{
    /* every writer comes here before its first object or marker: an encrypted repository
     * gets its keyring (or the key is checked against it) before anything else is stored */
    const ws_keyring *kr;
    if (ws_repo_keyring(r, 1, &kr, err) < 0)
        return -1;
    ws_repo_identity have;
    if (ws_repo_identity_get(r, &have, err) == 0)
        return compare_identity(r, &have, want, err);
    if (err->code != WS_ENOENT)
        return -1;
    /* No identity: a new repository, or one whose walship.repo was removed (an S3
     * lifecycle rule, a careless cleanup). A fresh identity in the second case would take
     * over a repository whose objects may be another cluster's: only an empty one gets it. */
    char found[256];
    int holds = ws_repo_holds_objects(r, found, sizeof found, err);
    if (holds < 0)
        return -1;
    /* A writer creates the identity before its first object: one that stored a segment
     * since our first look (the async agent pushes several at once) has created it. */
    if (holds && ws_repo_identity_get(r, &have, err) == 0)
        return compare_identity(r, &have, want, err);
    if (holds && err->code != WS_ENOENT)
        return -1;
    if (holds) {
        ws_error_set(err, WS_ECORRUPT,
                     "repository %s has no " WS_REPO_ROOT_KEY " but holds objects (%s): its "
                     "identity was removed; refusing to create a new one, which would drop the "
                     "check that the stored WAL belongs to this cluster",
                     ws_repo_describe(r), found);
        ws_error_hint(err, "run \"walship repo repair\" to re-derive " WS_REPO_ROOT_KEY
                           " from the stored WAL and backups (docs/repository-format.md); keep "
                           "lifecycle rules away from " WS_REPO_ROOT_KEY " (docs/s3.md)");
        return -1;
    }
    ws_error_clear(err);
    if (ws_repo_identity_create(r, want, NULL, err) == 0)
        return 0;
    if (err->code != WS_EEXIST)
        return -1;
    /* another push created it first: compare with the winner's */
    if (ws_repo_identity_get(r, &have, err) < 0)
        return -1;
    return compare_identity(r, &have, want, err);
}

/* ---- keys ---- */

int ws_repo_wal_key(const ws_wal_name *n, char *buf, size_t len)
{
    int k;
    if (n->kind == WS_WAL_HISTORY)
        k = snprintf(buf, len, "wal/history/%s", n->name);
    else if (n->kind != WS_WAL_NONE)
        k = snprintf(buf, len, "wal/%.16s/%s", n->name, n->name);
    else
        return -1;
    return k < 0 || (size_t)k >= len ? -1 : 0;
}

/* ---- object header lookup ---- */

int ws_repo_obj_header(ws_repo *r, const char *key, ws_objhdr *h, ws_error *err)
{
    if (ws_storage_features(r->storage) & WS_STORAGE_FEAT_META) {
        ws_storage_info info;
        if (ws_storage_stat(r->storage, key, &info, err) < 0)
            return -1;
        const char *sha = ws_meta_get(&info.meta, META_SHA256);
        const char *len = ws_meta_get(&info.meta, META_LENGTH);
        const char *codec = ws_meta_get(&info.meta, META_CODEC);
        const char *cipher = ws_meta_get(&info.meta, META_CIPHER);
        int enc = cipher && strcmp(cipher, "aes-256-gcm") == 0;
        if (enc)
            sha = ws_meta_get(&info.meta, META_HMAC);
        ws_codec c;
        if (sha && len && codec && strlen(sha) == 64 && ws_codec_parse(codec, &c) == 0 &&
            (enc || !cipher)) {
            memset(h, 0, sizeof *h);
            h->version = 1;
            h->codec = (uint8_t)c;
            h->encryption = enc ? WS_ENC_AES256GCM : WS_ENC_NONE;
            h->header_len = WS_OBJHDR_SIZE;
            h->length = strtoull(len, NULL, 10);
            for (int i = 0; i < 32; i++) {
                unsigned v;
                if (sscanf(sha + 2 * i, "%2x", &v) != 1)
                    goto ranged;
                h->sha256[i] = (unsigned char)v;
            }
            return 0;
        }
    }
ranged:;
    ws_storage_reader *rd;
    if (ws_storage_open_read(r->storage, key, 0, WS_OBJHDR_SIZE, &rd, err) < 0)
        return -1;
    unsigned char buf[WS_OBJHDR_SIZE];
    size_t n;
    int rc = ws_storage_read_full(rd, buf, sizeof buf, &n, err);
    ws_storage_reader_close(rd);
    if (rc < 0)
        return -1;
    return ws_objhdr_decode(buf, n, key, h, err);
}

/* ---- writing ---- */

struct ws_repo_obj_writer {
    int n;
    ws_repo **repos;
    ws_storage_writer **w; /* NULL where open failed */
    ws_repo_put_result *open_results;
    char key[512];
    ws_objkind kind;
    ws_codec codec;
    /* The write chains (codec.h), owning their sinks: one for the unencrypted repositories
     * together, one per encrypted repository (its own object key and keyed hash); a tee in
     * front when there are several. */
    ws_stage *head;
    ws_stage **sha;          /* per repository: the hash of its chain (NULL where open failed) */
    uint8_t *enc;            /* per repository: the header's encryption byte */
    unsigned char (*hk)[32]; /* per encrypted repository: its hash key (copied, wiped) */
};

static void obj_writer_free(ws_repo_obj_writer *w)
{
    ws_stage_free(w->head);
    free(w->w);
    free(w->sha);
    free(w->enc);
    if (w->hk)
        OPENSSL_cleanse(w->hk, (size_t)w->n * sizeof *w->hk);
    free(w->hk);
    free(w->open_results);
    free(w);
}

void ws_repo_obj_abort(ws_repo_obj_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        ws_storage_writer_abort(w->w[i]);
    obj_writer_free(w);
}

int ws_repo_obj_create(ws_repo **repos, int n, const char *key, ws_objkind kind, ws_codec codec,
                       int level, uint64_t size_hint, ws_repo_obj_writer **out, ws_error *err)
{
    *out = NULL;
    ws_repo_obj_writer *w = calloc(1, sizeof *w);
    if (!w)
        return ws_error_oom(err);
    w->n = n;
    w->repos = repos;
    w->kind = kind;
    w->codec = codec;
    snprintf(w->key, sizeof w->key, "%s", key);
    w->w = calloc((size_t)n, sizeof *w->w);
    w->sha = calloc((size_t)n, sizeof *w->sha);
    w->enc = calloc((size_t)n, sizeof *w->enc);
    w->hk = calloc((size_t)n, sizeof *w->hk);
    w->open_results = calloc((size_t)n, sizeof *w->open_results);
    ws_storage_writer **live = calloc((size_t)n, sizeof *live);
    ws_stage **branch = calloc((size_t)n + 1, sizeof *branch);
    const ws_keyring **kr = calloc((size_t)n, sizeof *kr);
    if (!w->w || !w->sha || !w->enc || !w->hk || !w->open_results || !live || !branch || !kr) {
        free(live);
        free(branch);
        free(kr);
        obj_writer_free(w);
        return ws_error_oom(err);
    }
    int nlive = 0, nenc = 0, first_fail = -1;
    unsigned char placeholder[WS_OBJHDR_SIZE] = {0};
    for (int i = 0; i < n; i++) {
        ws_repo_put_result *res = &w->open_results[i];
        if (ws_repo_keyring(repos[i], 1, &kr[i], &res->err) < 0 ||
            ws_storage_open_write(repos[i]->storage, key, WS_STORAGE_WRITE_EXCL, &w->w[i],
                                  &res->err) < 0 ||
            ws_storage_write(w->w[i], placeholder, sizeof placeholder, &res->err) < 0) {
            ws_storage_writer_abort(w->w[i]);
            w->w[i] = NULL;
            res->status = WS_PUT_FAILED;
            if (first_fail < 0)
                first_fail = i;
            continue;
        }
        if (kr[i])
            nenc++;
        else
            live[nlive++] = w->w[i];
    }
    if (nlive == 0 && nenc == 0) {
        *err = w->open_results[first_fail].err;
        free(live);
        free(branch);
        free(kr);
        obj_writer_free(w);
        return -1;
    }
    ws_chain_opts co = {.codec = codec, .level = level, .size_hint = size_hint};
    int nb = 0, rc = 0;
    ws_stage *plain_sha = NULL;
    if (nlive) {
        ws_stage *sink = ws_stage_storage_sink_new(live, nlive);
        rc = sink ? ws_codec_write_chain(&co, sink, &branch[nb], &plain_sha, err)
                  : ws_error_oom(err);
        nb += rc == 0;
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!w->w[i])
            continue;
        if (!kr[i]) {
            w->sha[i] = plain_sha;
            continue;
        }
        ws_cipher_obj cobj = {
            .keyring = kr[i], .key = key, .codec = (uint8_t)codec, .kind = (uint8_t)kind};
        ws_chain_opts eo = co;
        eo.cipher = &cobj;
        ws_stage *sink = ws_stage_storage_sink_new(&w->w[i], 1);
        rc = sink ? ws_codec_write_chain(&eo, sink, &branch[nb], &w->sha[i], err)
                  : ws_error_oom(err);
        nb += rc == 0;
        w->enc[i] = WS_ENC_AES256GCM;
        memcpy(w->hk[i], ws_keyring_hash_key(kr[i]), 32);
    }
    free(live);
    free(kr);
    if (rc == 0 && nb == 1)
        w->head = branch[0];
    else if (rc == 0 && !(w->head = ws_stage_tee_new(branch, nb)))
        rc = ws_error_oom(err); /* the tee freed the branches */
    else if (rc < 0)
        for (int b = 0; b < nb; b++)
            ws_stage_free(branch[b]);
    free(branch);
    if (rc < 0) {
        ws_repo_obj_abort(w);
        return -1;
    }
    *out = w;
    return 0;
}

int ws_repo_obj_write(ws_repo_obj_writer *w, const void *buf, size_t len, ws_error *err)
{
    return ws_stage_write(w->head, buf, len, err);
}

static int same_object(const ws_objhdr *a, const ws_objhdr *b)
{
    return a->length == b->length && a->encryption == b->encryption &&
           memcmp(a->sha256, b->sha256, 32) == 0;
}

int ws_repo_obj_commit(ws_repo_obj_writer *w, ws_objhdr *hdr_out, ws_repo_put_result *results,
                       ws_error *err)
{
    ws_objhdr h;
    memset(&h, 0, sizeof h);
    if (ws_stage_finish(w->head, err) < 0) {
        ws_repo_obj_abort(w);
        return -1;
    }
    h.version = 1;
    h.codec = (uint8_t)w->codec;
    h.kind = (uint8_t)w->kind;
    h.header_len = WS_OBJHDR_SIZE;
    int have_hdr = 0;

    int failures = 0, first_fail = -1;
    for (int i = 0; i < w->n; i++) {
        ws_repo_put_result local = {0}, *res = results ? &results[i] : &local;
        *res = w->open_results[i];
        if (!w->w[i])
            goto failed;
        /* this repository's header: its chain's SHA-256, keyed where encrypted; the caller's
         * copy has the plaintext SHA-256 (a backup manifest records it) */
        h.encryption = w->enc[i];
        ws_stage_sha256_result(w->sha[i], h.sha256, &h.length);
        if (hdr_out && !have_hdr++)
            *hdr_out = h;
        if (h.encryption && ws_cipher_keyed_hash(w->hk[i], h.sha256, h.sha256) < 0) {
            ws_error_set(&res->err, WS_EINTERNAL, "HMAC-SHA-256 failed");
            ws_storage_writer_abort(w->w[i]);
            w->w[i] = NULL;
            goto failed;
        }
        unsigned char enc[WS_OBJHDR_SIZE];
        ws_objhdr_encode(&h, enc);
        char hex[65], len[32];
        ws_sha256_hex(h.sha256, hex);
        snprintf(len, sizeof len, "%" PRIu64, h.length);
        ws_meta meta = {0};
        ws_meta_set(&meta, h.encryption ? META_HMAC : META_SHA256, hex);
        ws_meta_set(&meta, META_LENGTH, len);
        ws_meta_set(&meta, META_CODEC, ws_codec_name(w->codec));
        if (h.encryption)
            ws_meta_set(&meta, META_CIPHER, "aes-256-gcm");
        ws_storage_writer *sw = w->w[i];
        w->w[i] = NULL;
        ws_error_clear(&res->err);
        if (ws_storage_patch(sw, 0, enc, sizeof enc, &res->err) < 0) {
            ws_storage_writer_abort(sw);
            goto failed;
        }
        if (ws_storage_writer_commit(sw, &meta, &res->err) == 0) {
            res->status = WS_PUT_STORED;
            continue;
        }
        if (res->err.code == WS_EEXIST) {
            ws_error cmp_err;
            ws_error_clear(&cmp_err);
            if (ws_repo_obj_header(w->repos[i], w->key, &res->existing, &cmp_err) < 0) {
                res->err = cmp_err;
                ws_error_prefix(&res->err, "%s exists already and its checksum cannot be read",
                                w->key);
                goto failed;
            }
            if (same_object(&res->existing, &h)) {
                res->status = WS_PUT_IDENTICAL;
                continue;
            }
            char old[65];
            ws_sha256_hex(res->existing.sha256, old);
            ws_error_set(&res->err, WS_EMISMATCH,
                         "%s is already in repository %s with different contents (stored "
                         "SHA-256 %s, %" PRIu64 " bytes; this file SHA-256 %s, %" PRIu64
                         " bytes); the stored copy is kept",
                         w->key, ws_repo_describe(w->repos[i]), old, res->existing.length, hex,
                         h.length);
            ws_error_hint(&res->err,
                          "two clusters may be archiving into one repository, or this cluster "
                          "was restored without a new timeline; check archive_command");
        }
    failed:
        res->status = WS_PUT_FAILED;
        failures++;
        if (first_fail < 0) {
            first_fail = i;
            *err = res->err;
        }
    }
    obj_writer_free(w);
    return failures ? -1 : 0;
}

/* ---- reading ---- */

int ws_repo_obj_read(ws_repo *r, const char *key, ws_stage *dest, ws_objhdr *hdr_out, ws_error *err)
{
    return ws_repo_obj_read_limit(r, key, dest, hdr_out, 0, 0, err);
}

int ws_repo_obj_read_ex(ws_repo *r, const char *key, ws_stage *dest, ws_objhdr *hdr_out,
                        unsigned flags, ws_error *err)
{
    return ws_repo_obj_read_limit(r, key, dest, hdr_out, flags, 0, err);
}

#define WAL_SEGMENT_MAX (1ull << 30) /* PostgreSQL's largest wal_segment_size */

/* What an object under key may hold at most, from the key alone (docs/repository-format.md:
 * wal/history/NAME, wal/TTTTTTTTXXXXXXXX/NAME, gap/...); 0 = no bound known (backups). *what
 * names the kind for messages. */
static uint64_t key_limit(ws_repo *r, const char *key, const char **what)
{
    *what = "this object";
    if (strncmp(key, "gap/", 4) == 0) {
        *what = "a gap record";
        return WS_REPO_GAP_MAX;
    }
    if (strncmp(key, "wal/", 4) != 0)
        return 0;
    const char *base = strrchr(key, '/') + 1;
    ws_wal_name n;
    ws_error e;
    if (ws_wal_parse_name(base, &n, &e) < 0)
        return 0;
    if (n.kind == WS_WAL_SEGMENT || n.kind == WS_WAL_PARTIAL) {
        *what = "a WAL segment";
        return r->have_identity ? r->identity.seg_size : WAL_SEGMENT_MAX;
    }
    *what = n.kind == WS_WAL_HISTORY ? "a history file" : "a backup history file";
    return WS_REPO_HISTORY_MAX;
}

int ws_repo_obj_read_limit(ws_repo *r, const char *key, ws_stage *dest, ws_objhdr *hdr_out,
                           unsigned flags, uint64_t max_len, ws_error *err)
{
    const char *what;
    uint64_t limit = key_limit(r, key, &what);
    if (max_len && (!limit || max_len < limit)) {
        limit = max_len;
        what = "this object";
    }
    ws_storage_reader *rd;
    if (ws_storage_open_read(r->storage, key, 0, 0, &rd, err) < 0)
        return -1;
    unsigned char hb[WS_OBJHDR_SIZE];
    size_t n;
    ws_objhdr h;
    ws_stage *sha = NULL, *head = NULL;
    int rc = -1;
    if (ws_storage_read_full(rd, hb, sizeof hb, &n, err) < 0 ||
        ws_objhdr_decode(hb, n, key, &h, err) < 0)
        goto out;
    if (limit && h.length > limit) {
        ws_error_set(err, WS_ECORRUPT,
                     "object %s claims %" PRIu64 " bytes, more than %s may hold (%" PRIu64
                     "): refused unread",
                     key, h.length, what, limit);
        goto out;
    }
    const ws_keyring *kr;
    if (ws_repo_keyring(r, 0, &kr, err) < 0)
        goto out;
    if (h.encryption && !kr) {
        ws_error_set(err, WS_ECONFIG,
                     "object %s is encrypted (aes-256-gcm) but cipher is none here", key);
        ws_error_hint(err, "set cipher = aes-256-gcm and its cipher-pass or cipher-key-file");
        goto out;
    }
    if (!h.encryption && kr) {
        ws_error_set(err, WS_ECORRUPT,
                     "object %s is not encrypted, in an encrypted repository: refused (an "
                     "object put there by something other than walship?)",
                     key);
        goto out;
    }
    ws_cipher_obj cobj = {
        .keyring = kr, .key = key, .codec = h.codec, .kind = h.kind, .length = h.length};
    memcpy(cobj.digest, h.sha256, 32);
    ws_chain_opts co = {.codec = (ws_codec)h.codec,
                        .no_digest = !!(flags & WS_OBJ_READ_NO_DIGEST),
                        .cipher = kr ? &cobj : NULL};
    if (ws_codec_read_chain(&co, h.length, dest, &head, &sha, err) < 0)
        goto out;
    char *buf = malloc(READ_CHUNK);
    if (!buf) {
        ws_error_oom(err);
        goto out;
    }
    for (;;) {
        if (ws_storage_read(rd, buf, READ_CHUNK, &n, err) < 0)
            break;
        if (n == 0) {
            rc = 0;
            break;
        }
        if (ws_stage_write(head, buf, n, err) < 0)
            break;
    }
    free(buf);
    if (rc < 0 || (rc = ws_stage_finish(head, err)) < 0) {
        if (err->code == WS_ECORRUPT)
            ws_error_prefix(err, "object %s", key);
        rc = -1;
        goto out;
    }
    unsigned char digest[32], plain[32];
    uint64_t length;
    if (flags & WS_OBJ_READ_NO_DIGEST) {
        length = ws_stage_count(sha);
        memcpy(digest, h.sha256, 32);
    } else {
        ws_stage_sha256_result(sha, digest, &length);
        memcpy(plain, digest, 32);
        if (kr && ws_cipher_keyed_hash(ws_keyring_hash_key(kr), plain, digest) < 0) {
            rc = ws_error_set(err, WS_EINTERNAL, "HMAC-SHA-256 failed");
            goto out;
        }
    }
    if (length != h.length) {
        rc = ws_error_set(err, WS_ECORRUPT,
                          "object %s holds %" PRIu64 " bytes, its header says %" PRIu64, key,
                          length, h.length);
    } else if (memcmp(digest, h.sha256, 32) != 0) {
        char want[65], got[65];
        ws_sha256_hex(h.sha256, want);
        ws_sha256_hex(digest, got);
        rc = ws_error_set(err, WS_ECORRUPT, "object %s fails verification: SHA-256 %s, expected %s",
                          key, got, want);
    }
    if (hdr_out) {
        *hdr_out = h;
        if (kr && !(flags & WS_OBJ_READ_NO_DIGEST)) /* as the writer's: the plaintext SHA-256 */
            memcpy(hdr_out->sha256, plain, 32);
    }
out:
    ws_stage_free(head); /* our stages; the chain borrows dest */
    ws_storage_reader_close(rd);
    return rc;
}
