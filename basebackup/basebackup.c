/*
 * basebackup.c — `walship basebackup`: a streaming base backup over the replication
 * protocol, straight into the repository.
 *
 * The story: connect (replication=true), IDENTIFY_SYSTEM and refuse a repository of another
 * cluster before any data moves; BASE_BACKUP in the server's dialect (protocol.h): from 15,
 * TARGET 'client' and one CopyOut of typed messages ('n' new archive, 'd' data, 'p' progress,
 * 'm' manifest); in 13 and 14, one CopyOut per tablespace and one for the manifest. Either way
 * each archive runs through the tar parser into the store (packed and parted objects, written
 * by basebackup-parallel threads), the server's backup_manifest into one object; then wait
 * until the WAL from the start to the stop segment is in every repository (WAIT false: the
 * server's own wait polls once a second, ours from 5 ms up to every 100 ms (the backup's last
 * segment is usually archived within tens of milliseconds), and ours is needed anyway: WAL
 * archived elsewhere does not count), and only then write the walship manifest — last,
 * create-only-if-absent. Any failure before that removes what was written; a killed
 * process leaves objects without a manifest, which nothing lists or restores.
 */
#include "walship/repo/catalog.h"
#include "walship/repo/lock.h"
#include "walship/repo/pin.h"
#include "walship/ops/expire.h"
#include "walship/repo/manifest.h"
#include "basebackup/protocol.h"
#include "basebackup/store.h"
#include "basebackup/tar.h"
#include "basebackup/verify.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/catchup.h"
#include "walship/repo/open.h"
#include "walship/clock.h"
#include "walship/bytes.h"
#include "walship/log.h"
#include "walship/ops/ops.h"
#include "walship/pq_dl.h"
#include "walship/progress.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PACK_THRESHOLD (1u << 20)
#define PACK_SIZE      (16u << 20)
/* bytes received and handed to the writer threads, not yet taken by them: this much per
 * writer, and at least one pack (docs/decisions.md) */
#define INFLIGHT_PER_WRITER (4u << 20)
#define POLL_SEC            0.25

typedef struct bb {
    const ws_config *cfg;
    ws_repo **repos; /* the sync repositories (repoN-mode): what the backup is written to */
    int nrepos;
    ws_repo **all; /* every configured repository, opened; idx[i]: repos[i]'s number - 1 */
    int nall, idx[WS_CONFIG_MAX_REPOS], catchup[WS_CONFIG_MAX_REPOS];
    PGconn *conn;
    char id[WS_MANIFEST_ID_MAX];
    int objects_written;  /* something may exist under backup/<id>/: clean up on failure */
    ws_backup_lock *lock; /* held from the started marker until the end (repo/lock.h) */
    ws_manifest_info info;
    ws_manifest_builder *mb;
    ws_bb_store *store;
    ws_bb_verify *verify;
    ws_tar_parser *tar;
    ws_bb_dialect dialect;
    uint32_t *archive_oids; /* tablespace oid of each archive, in the server's order; 0: base */
    int archives_expected, archives_seen, in_manifest;
    double wal_timeout;
    /* progress */
    uint64_t total_bytes, done_bytes;
    double t_start;
    ws_progress progress;
    int tty;
} bb;

/* ---- small helpers ---- */

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || errno || v <= 0)
        return -1;
    while (*end == ' ')
        end++;
    double mul = 1;
    if (!*end || !strcasecmp(end, "B"))
        mul = 1;
    else if (!strcasecmp(end, "kB") || !strcasecmp(end, "KiB") || !strcasecmp(end, "k"))
        mul = 1024.0;
    else if (!strcasecmp(end, "MB") || !strcasecmp(end, "MiB") || !strcasecmp(end, "M"))
        mul = 1024.0 * 1024;
    else if (!strcasecmp(end, "GB") || !strcasecmp(end, "GiB") || !strcasecmp(end, "G"))
        mul = 1024.0 * 1024 * 1024;
    else
        return -1;
    *out = (uint64_t)(v * mul);
    return *out ? 0 : -1;
}

static int pq_fail(bb *b, ws_error *err, const char *what, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(b->conn);
    char clean[512];
    snprintf(clean, sizeof clean, "%s", msg);
    size_t n = strlen(clean);
    while (n && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
        clean[--n] = '\0';
    return ws_error_set(err, WS_ETRANSIENT, "%s: %s", what, clean[0] ? clean : "(no message)");
}

/* Runs a replication command that returns one result set. The caller PQclears *res. */
static int simple_query(bb *b, const char *sql, int min_cols, PGresult **res, ws_error *err)
{
    *res = PQexec(b->conn, sql);
    if (PQresultStatus(*res) != PGRES_TUPLES_OK || PQntuples(*res) < 1 ||
        PQnfields(*res) < min_cols) {
        char what[128];
        snprintf(what, sizeof what, "%s failed", sql);
        pq_fail(b, err, what, *res);
        PQclear(*res);
        *res = NULL;
        return -1;
    }
    return 0;
}

/* ---- connecting and identifying ---- */

static PGconn *connect_pg(const char *pgconn, int replication, ws_error *err)
{
    const char *keys[4], *vals[4];
    int n = 0;
    if (pgconn && *pgconn) {
        keys[n] = "dbname";
        vals[n++] = pgconn;
    }
    if (replication) {
        keys[n] = "replication";
        vals[n++] = "true";
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "walship";
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) {
        ws_error_set(err, WS_ENOMEM, "out of memory connecting to PostgreSQL");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
        size_t l = strlen(msg);
        while (l && msg[l - 1] == '\n')
            msg[--l] = '\0';
        /* libpq's parse errors quote the connection string, password and all: pgconn is
         * secret-capable, so those are not repeated */
        if (strstr(msg, "connection info string") || strstr(msg, "URI") ||
            strstr(msg, "percent-encoded")) {
            ws_error_set(err, WS_ECONFIG,
                         "pgconn is not a valid connection string or URI (libpq's message is not "
                         "shown: it quotes the string, which may hold a password)");
            ws_error_hint(err, "key=value pairs separated by spaces, values with spaces in single "
                               "quotes; or postgresql://user@host/db");
            PQfinish(c);
            return NULL;
        }
        ws_error_set(err, WS_ETRANSIENT, "cannot connect to PostgreSQL%s: %s",
                     replication ? " for replication" : "", msg);
        ws_error_hint(err, "check pgconn / the PG* environment; the role needs the REPLICATION "
                           "attribute and a \"replication\" line in pg_hba.conf");
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* IDENTIFY_SYSTEM and SHOW wal_segment_size; then every repository must belong to this
 * cluster (or be new: it then records this cluster as its owner). */
static int identify(bb *b, ws_error *err)
{
    int version = PQserverVersion(b->conn);
    if (ws_bb_dialect_for(version, &b->dialect, err) < 0)
        return -1;
    b->info.pg_version_num = version;
    PGresult *res;
    if (simple_query(b, "IDENTIFY_SYSTEM", 2, &res, err) < 0)
        return -1;
    char *end;
    errno = 0;
    b->info.sysid = strtoull(PQgetvalue(res, 0, 0), &end, 10);
    int bad = errno || *end;
    PQclear(res);
    if (bad)
        return ws_error_set(err, WS_EINVAL, "IDENTIFY_SYSTEM returned a malformed system id");
    if (simple_query(b, "SHOW wal_segment_size", 1, &res, err) < 0)
        return -1;
    uint64_t seg;
    char segtext[64];
    snprintf(segtext, sizeof segtext, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (parse_size(segtext, &seg) < 0 || !ws_wal_seg_size_valid(seg))
        return ws_error_set(err, WS_EINVAL, "SHOW wal_segment_size returned \"%s\"", segtext);
    b->info.seg_size = (uint32_t)seg;

    ws_repo_identity want = {WS_REPO_FORMAT, b->info.sysid, version / 10000, (uint32_t)seg};
    for (int i = 0; i < b->nrepos; i++) {
        if (ws_repo_identity_ensure(b->repos[i], &want, err) < 0) {
            ws_error_prefix(err, "refusing to back up into %s", ws_repo_describe(b->repos[i]));
            return -1;
        }
    }
    return 0;
}

/* ---- progress ---- */

static void progress(bb *b, int final)
{
    ws_progress_show(&b->progress, b->done_bytes, final);
}

/* ---- the copy stream ---- */

/* Waits for the next CopyData message. Returns its length, -1 at the end of the stream, -2
 * on failure (err set). */
static int next_message(bb *b, char **buf, ws_error *err)
{
    for (;;) {
        int r = PQgetCopyData(b->conn, buf, 1);
        if (r == -2) {
            pq_fail(b, err, "reading the backup stream failed", NULL);
            return -2;
        }
        if (r != 0)
            return r;
        struct pollfd pfd = {PQsocket(b->conn), POLLIN, 0};
        int pr = poll(&pfd, 1, (int)(POLL_SEC * 1000) + 1);
        if (pr < 0 && errno != EINTR) {
            ws_error_errno(err, WS_EIO, errno, "poll on the replication connection");
            return -2;
        }
        progress(b, 0);
        if (pr > 0 && !PQconsumeInput(b->conn)) {
            pq_fail(b, err, "reading the backup stream failed", NULL);
            return -2;
        }
    }
}

static int end_archive(bb *b, ws_error *err)
{
    if (!b->tar)
        return 0;
    int rc = ws_tar_parser_finish(b->tar, err);
    ws_tar_parser_free(b->tar);
    b->tar = NULL;
    return rc;
}

/* The next archive, of tablespace oid (0: the data directory): a fresh tar parser. */
static int begin_archive(bb *b, uint32_t oid, ws_error *err)
{
    b->archives_seen++;
    ws_bb_store_set_tablespace(b->store, oid);
    if (!(b->tar = ws_tar_parser_new(ws_bb_store_tar_callbacks(), b->store)))
        return ws_error_oom(err);
    return 0;
}

static int feed_archive(bb *b, const char *data, int len, ws_error *err)
{
    if (!b->tar)
        return ws_error_set(err, WS_EINVAL, "archive data before any archive began");
    b->done_bytes += (uint64_t)len;
    return ws_tar_parser_feed(b->tar, data, (size_t)len, err);
}

static int feed_manifest(bb *b, const char *data, int len, ws_error *err)
{
    if (ws_bb_store_blob_write(b->store, data, (size_t)len, err) < 0)
        return -1;
    return ws_bb_verify_feed(b->verify, data, (size_t)len, err);
}

static int begin_manifest(bb *b, ws_error *err)
{
    if (end_archive(b, err) < 0 || ws_bb_store_blob_begin(b->store, WS_MANIFEST_SERVER, err) < 0)
        return -1;
    b->in_manifest = 1;
    return 0;
}

/* The server's next CopyOutResponse (what: for the message if it is something else). */
static int expect_copy(bb *b, const char *what, ws_error *err)
{
    PGresult *res = PQgetResult(b->conn);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        char msg[128];
        snprintf(msg, sizeof msg, "the server did not send %s", what);
        pq_fail(b, err, msg, res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* 'n': archive name and tablespace path, each NUL-terminated. */
static int new_archive(bb *b, const char *msg, int len, ws_error *err)
{
    if (end_archive(b, err) < 0)
        return -1;
    const char *name = msg + 1;
    const char *nul = memchr(name, '\0', (size_t)(len - 1));
    if (!nul)
        return ws_error_set(err, WS_EINVAL, "malformed new-archive message");
    const char *loc = nul + 1;
    if (loc >= msg + len || !memchr(loc, '\0', (size_t)(msg + len - loc)))
        return ws_error_set(err, WS_EINVAL, "malformed new-archive message");
    uint32_t oid = 0;
    if (strcmp(name, "base.tar") != 0) {
        char *end;
        unsigned long v = strtoul(name, &end, 10);
        if (end == name || strcmp(end, ".tar") != 0 || v == 0 || v > UINT32_MAX)
            return ws_error_set(err, WS_EINVAL,
                                "refusing archive \"%.100s\": not base.tar or <oid>.tar", name);
        oid = (uint32_t)v;
        /* the tablespace list came in the header; its archive must match one entry */
    }
    ws_log_debug("archive %s (%s)", name, *loc ? loc : "data directory");
    return begin_archive(b, oid, err);
}

/* 15+: one CopyOut of typed messages. */
static int receive_typed(bb *b, ws_error *err)
{
    if (expect_copy(b, "the backup stream", err) < 0)
        return -1;
    for (;;) {
        char *msg;
        int len = next_message(b, &msg, err);
        if (len == -1)
            break;
        if (len < 0)
            return -1;
        int rc = 0;
        switch (len > 0 ? msg[0] : 0) {
        case 'n':
            rc = new_archive(b, msg, len, err);
            break;
        case 'd':
            rc = b->in_manifest ? feed_manifest(b, msg + 1, len - 1, err)
                                : feed_archive(b, msg + 1, len - 1, err);
            break;
        case 'p':
            /* the server's own count of bytes sent; ours (done_bytes) is finer-grained */
            if (len != 9)
                rc = ws_error_set(err, WS_EINVAL, "malformed progress message");
            break;
        case 'm':
            rc = begin_manifest(b, err);
            break;
        default:
            rc = ws_error_set(err, WS_EINVAL, "unknown message type 0x%02x in the backup stream",
                              len > 0 ? (unsigned char)msg[0] : 0);
        }
        PQfreemem(msg);
        progress(b, 0);
        if (rc < 0)
            return -1;
    }
    return end_archive(b, err);
}

/* 13/14: one CopyOut per archive, in the order of the tablespace list (the data directory
 * last), raw tar bytes without the end-of-archive blocks; then one CopyOut of the manifest. */
static int receive_legacy(bb *b, ws_error *err)
{
    for (int i = 0; i <= b->archives_expected; i++) {
        int manifest = i == b->archives_expected;
        if (expect_copy(b, manifest ? "the backup manifest" : "the next archive", err) < 0)
            return -1;
        if ((manifest ? begin_manifest(b, err) : begin_archive(b, b->archive_oids[i], err)) < 0)
            return -1;
        for (;;) {
            char *msg;
            int len = next_message(b, &msg, err);
            if (len == -1)
                break;
            if (len < 0)
                return -1;
            int rc = manifest ? feed_manifest(b, msg, len, err) : feed_archive(b, msg, len, err);
            PQfreemem(msg);
            progress(b, 0);
            if (rc < 0)
                return -1;
        }
        if (!manifest) {
            int rc = ws_tar_parser_finish_unterminated(b->tar, err);
            ws_tar_parser_free(b->tar);
            b->tar = NULL;
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int receive_stream(bb *b, ws_error *err)
{
    if ((b->dialect == WS_BB_LEGACY ? receive_legacy(b, err) : receive_typed(b, err)) < 0)
        return -1;
    if (!b->in_manifest)
        return ws_error_set(err, WS_EINVAL, "the backup stream ended without a backup manifest");
    b->in_manifest = 0;
    if (ws_bb_store_blob_end(b->store, err) < 0 || ws_bb_store_finish(b->store, err) < 0)
        return -1;
    uint64_t checked;
    if (ws_bb_verify_finish(b->verify, &checked, err) < 0)
        return -1;
    ws_log_info("all %" PRIu64 " files match the server's backup_manifest (size and CRC32C)",
                checked);
    if (b->archives_seen != b->archives_expected)
        return ws_error_set(err, WS_EINVAL, "the server sent %d archives, its header announced %d",
                            b->archives_seen, b->archives_expected);
    return 0;
}

/* ---- BASE_BACKUP ---- */

static int label_ok(const char *s)
{
    if (strlen(s) > 1000)
        return 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return 0;
    return 1;
}

/* The id is the UTC start time; a second backup in the same second gets a suffix. */
/* The backup lock and its heartbeat, in every repository (walship/repo/lock.h). */
static int take_lock(bb *b, ws_error *err)
{
    ws_storage_config sc[WS_CONFIG_MAX_REPOS];
    for (int i = 0; i < b->nrepos && i < WS_CONFIG_MAX_REPOS; i++)
        if (ws_config_storage(b->cfg, b->idx[i], &sc[i], err) < 0)
            return -1;
    return ws_backup_lock_take(sc, b->nrepos, b->id, &b->lock, err);
}

static int choose_id(bb *b, ws_error *err)
{
    char stamp[32];
    time_t t = (time_t)b->info.start_time;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int n = 1; n < 100; n++) {
        if (n == 1)
            snprintf(b->id, sizeof b->id, "%s", stamp);
        else
            snprintf(b->id, sizeof b->id, "%s-%d", stamp, n);
        char prefix[64];
        ws_key_backup_prefix(b->id, prefix, sizeof prefix);
        int taken = 0;
        for (int i = 0; i < b->nrepos && !taken; i++) {
            ws_storage_info info;
            char key[128];
            ws_manifest_key(b->id, "data/000001", key, sizeof key);
            if (ws_storage_stat(ws_repo_storage(b->repos[i]), key, &info, err) == 0)
                taken = 1;
            else if (err->code != WS_ENOENT)
                return -1;
            ws_manifest_key(b->id, WS_MANIFEST_NAME, key, sizeof key);
            if (ws_storage_stat(ws_repo_storage(b->repos[i]), key, &info, err) == 0)
                taken = 1;
            else if (err->code != WS_ENOENT)
                return -1;
            ws_manifest_key(b->id, WS_CATALOG_STARTED_NAME, key, sizeof key);
            if (ws_storage_stat(ws_repo_storage(b->repos[i]), key, &info, err) == 0)
                taken = 1;
            else if (err->code != WS_ENOENT)
                return -1;
        }
        if (!taken) {
            ws_error_clear(err);
            snprintf(b->info.id, sizeof b->info.id, "%s", b->id);
            /* the first write: from now on list sees the backup (incomplete until its
             * manifest), even if it is killed before any data object is committed */
            b->objects_written = 1;
            if (ws_catalog_mark_started(b->repos, b->nrepos, &b->info, err) == 0)
                return take_lock(b, err);
            if (err->code != WS_EEXIST)
                return -1;
            /* another backup took the id just now: its objects are not ours to remove */
            b->objects_written = 0;
        }
    }
    return ws_error_set(err, WS_EEXIST, "no free backup id for %s", stamp);
}

/* checkpoint spread: the server answers BASE_BACKUP only once its checkpoint, paced by
 * checkpoint_completion_target, is done. Say so, and on a terminal count the seconds. */
static void wait_checkpoint(bb *b)
{
    ws_log_info("waiting for the server's spread checkpoint (up to checkpoint_timeout x "
                "checkpoint_completion_target; --checkpoint fast does not wait)");
    double t0 = ws_now();
    int shown = 0;
    while (PQisBusy(b->conn)) {
        struct pollfd pfd = {PQsocket(b->conn), POLLIN, 0};
        if (pfd.fd < 0 || poll(&pfd, 1, 1000) < 0 || (pfd.revents && !PQconsumeInput(b->conn)))
            break;
        if (b->tty && PQisBusy(b->conn)) {
            fprintf(stderr, "\rwalship basebackup: waiting for the checkpoint: %.0f s ",
                    ws_now() - t0);
            shown = 1;
        }
    }
    if (shown)
        fputc('\n', stderr);
    if (ws_now() - t0 >= 1)
        ws_log_info("the checkpoint took %.1f s", ws_now() - t0);
}

static int start_backup(bb *b, const char *label, const char *checkpoint, long max_rate,
                        ws_error *err)
{
    char sql[4096];
    ws_bb_options bo = {label, strcmp(checkpoint, "fast") == 0, max_rate};
    if (ws_bb_command(b->dialect, &bo, sql, sizeof sql, err) < 0)
        return -1;
    ws_log_info("starting the backup (checkpoint %s)", checkpoint);
    if (!PQsendQuery(b->conn, sql))
        return pq_fail(b, err, "sending BASE_BACKUP failed", NULL);
    if (strcmp(checkpoint, "spread") == 0)
        wait_checkpoint(b); /* ops (issue 15): say why nothing happens for minutes */

    /* result 1: start LSN and timeline, once the checkpoint is done */
    PGresult *res = PQgetResult(b->conn);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 2) {
        pq_fail(b, err, "the server could not start the backup", res);
        PQclear(res);
        return -1;
    }
    b->info.start_time = ws_repo_wall_time();
    int bad = ws_wal_parse_lsn(PQgetvalue(res, 0, 0), &b->info.start_lsn) < 0;
    b->info.start_tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (bad || b->info.start_tli == 0)
        return ws_error_set(err, WS_EINVAL, "BASE_BACKUP returned a malformed start position");

    /* result 2: tablespaces (oid, location, size in kB); the data directory last, NULLs */
    res = PQgetResult(b->conn);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) < 3) {
        pq_fail(b, err, "the server sent no tablespace list", res);
        PQclear(res);
        return -1;
    }
    if (choose_id(b, err) < 0) {
        PQclear(res);
        return -1;
    }
    b->archives_expected = PQntuples(res);
    if (!(b->archive_oids = calloc((size_t)b->archives_expected + 1, sizeof *b->archive_oids))) {
        PQclear(res);
        return ws_error_oom(err);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        if (!PQgetisnull(res, i, 2))
            b->total_bytes += strtoull(PQgetvalue(res, i, 2), NULL, 10) * 1024;
        if (PQgetisnull(res, i, 0))
            continue;
        ws_manifest_entry e;
        memset(&e, 0, sizeof e);
        e.kind = WS_MANIFEST_TABLESPACE;
        e.tablespace = (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
        snprintf(e.path, sizeof e.path, "%s", PQgetvalue(res, i, 1));
        if (e.tablespace == 0 || ws_manifest_add(b->mb, &e, err) < 0) {
            PQclear(res);
            return e.tablespace ? -1 : ws_error_set(err, WS_EINVAL, "malformed tablespace oid");
        }
        b->archive_oids[i] = e.tablespace;
    }
    PQclear(res);
    ws_log_info("backup %s: start LSN %X/%X on timeline %" PRIu32 ", %d tablespace(s), about "
                "%.1f MiB",
                b->id, (unsigned)(b->info.start_lsn >> 32), (unsigned)b->info.start_lsn,
                b->info.start_tli, b->archives_expected - 1, ws_mib(b->total_bytes));
    return 0;
}

static int finish_backup(bb *b, ws_error *err)
{
    PGresult *res = PQgetResult(b->conn);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) < 2) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        pq_fail(b, err, "the backup failed at its end", res);
        if (state && strcmp(state, "XX001") == 0)
            ws_error_hint(err, "a data page failed its checksum: the cluster has corruption");
        PQclear(res);
        return -1;
    }
    b->info.stop_time = ws_repo_wall_time();
    int bad = ws_wal_parse_lsn(PQgetvalue(res, 0, 0), &b->info.stop_lsn) < 0;
    b->info.stop_tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (bad || b->info.stop_tli == 0 || b->info.stop_lsn < b->info.start_lsn)
        return ws_error_set(err, WS_EINVAL, "BASE_BACKUP returned a malformed stop position");
    /* CommandComplete, then the end of results */
    while ((res = PQgetResult(b->conn))) {
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            pq_fail(b, err, "the backup failed at its end", res);
            PQclear(res);
            return -1;
        }
        PQclear(res);
    }
    return 0;
}

/* ---- completeness: the WAL from start to stop is in every repository ---- */

static int switch_wal(bb *b)
{
    ws_error err;
    ws_error_clear(&err);
    PGconn *c = connect_pg(ws_config_get(b->cfg, "pgconn"), 0, &err);
    if (!c) {
        ws_log_warn("cannot run pg_switch_wal(): %s", err.msg);
        return -1;
    }
    PGresult *res = PQexec(c, "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
                              "ELSE pg_switch_wal() END");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        ws_log_warn("pg_switch_wal() failed: %s", PQresultErrorMessage(res));
    else
        ws_log_info("switched WAL so that the backup's last segment gets archived");
    PQclear(res);
    PQfinish(c);
    return 0;
}

/* The WAL wait's polls: 5, 10, 20, 40, 80 ms, then every 100 ms (a HEAD each on S3). */
#define WAL_POLL_MIN_SEC 0.005
#define WAL_POLL_MAX_SEC 0.1

static int wait_for_wal(bb *b, ws_error *err)
{
    ws_manifest_info *in = &b->info;
    uint64_t first = ws_wal_lsn_segno(in->start_lsn, in->seg_size);
    /* the stop LSN is the end of the backup's last record: its bytes are before it */
    uint64_t last = ws_wal_lsn_segno(in->stop_lsn > 0 ? in->stop_lsn - 1 : 0, in->seg_size);
    if (last < first)
        last = first;
    ws_wal_format_segment(in->start_wal, in->start_tli, first, in->seg_size);
    ws_wal_format_segment(in->stop_wal, in->stop_tli, last, in->seg_size);
    /* across a timeline switch only the stop segment is checked: the earlier ones are on
     * the old timeline's names */
    if (in->start_tli != in->stop_tli)
        first = last;
    double deadline = ws_now() + b->wal_timeout;
    int switched = 0;
    double pause = WAL_POLL_MIN_SEC;
    ws_log_info("waiting for WAL %s..%s to be in the repository", in->start_wal, in->stop_wal);
    for (uint64_t seg = first; seg <= last;) {
        char name[32], key[128];
        ws_wal_format_segment(name, in->stop_tli, seg, in->seg_size);
        ws_wal_name wn;
        if (ws_wal_parse_name(name, &wn, err) < 0 || ws_repo_wal_key(&wn, key, sizeof key) < 0)
            return -1;
        int have = 0;
        ws_error last_err;
        ws_error_clear(&last_err);
        for (int i = 0; i < b->nrepos; i++) {
            ws_objhdr h;
            if (ws_repo_obj_header(b->repos[i], key, &h, &last_err) == 0)
                have++;
            else
                break;
        }
        if (have == b->nrepos) {
            seg++;
            pause = WAL_POLL_MIN_SEC;
            continue;
        }
        double now = ws_now();
        if (now >= deadline) {
            ws_error_set(err, WS_ETRANSIENT,
                         "WAL segment %s, which the backup needs, is not in the repository "
                         "after %.0f s (basebackup-wal-timeout): %s",
                         name, b->wal_timeout, last_err.msg);
            ws_error_hint(err, "check that archive_command is 'walship push %%p' with this "
                               "repository and that it succeeds (pg_stat_archiver)");
            return -1;
        }
        if (!switched && seg == last && now > deadline - b->wal_timeout + 2.0) {
            switched = 1;
            switch_wal(b);
        }
        ws_sleep(pause);
        pause = pause * 2 < WAL_POLL_MAX_SEC ? pause * 2 : WAL_POLL_MAX_SEC;
    }
    return 0;
}

/* ---- the command ---- */

static int read_options(bb *b, const char **label, const char **checkpoint, long *max_rate,
                        ws_bb_store_opts *so, ws_error *err)
{
    *max_rate = 0;
    if (ws_config_get(b->cfg, "basebackup-max-rate") &&
        ws_config_get_long(b->cfg, "basebackup-max-rate", 32, 1048576, max_rate, err) < 0)
        return -1;
    *checkpoint = ws_config_get(b->cfg, "checkpoint");
    if (strcmp(*checkpoint, "fast") != 0 && strcmp(*checkpoint, "spread") != 0)
        return ws_error_set(err, WS_ECONFIG, "checkpoint = \"%s\" (from %s) is not fast or spread",
                            *checkpoint, ws_config_source(b->cfg, "checkpoint"));
    *label = ws_config_get(b->cfg, "label");
    if (*label && !label_ok(*label))
        return ws_error_set(err, WS_ECONFIG,
                            "label is longer than 1000 bytes or has control characters");
    if (ws_config_get_seconds(b->cfg, "basebackup-wal-timeout", &b->wal_timeout, err) < 0)
        return -1;
    if (ws_codec_opts_get(b->cfg, &so->codec, &so->level, err) < 0)
        return -1;
    const char *ps = ws_config_get(b->cfg, "basebackup-part-size");
    if (parse_size(ps, &so->part_size) < 0 || so->part_size < 64 * 1024)
        return ws_error_set(err, WS_ECONFIG,
                            "basebackup-part-size = \"%s\" (from %s) is not a size of 64kB or "
                            "more (e.g. 1GB, 256MB)",
                            ps ? ps : "", ws_config_source(b->cfg, "basebackup-part-size"));
    so->pack_threshold = PACK_THRESHOLD < so->part_size ? PACK_THRESHOLD : so->part_size;
    so->pack_size = PACK_SIZE;
    long parallel;
    if (ws_config_get_long(b->cfg, "basebackup-parallel", 1, 32, &parallel, err) < 0)
        return -1;
    so->parallel = (int)parallel;
    so->max_inflight = (uint64_t)parallel * INFLIGHT_PER_WRITER;
    if (so->max_inflight < so->pack_size)
        so->max_inflight = so->pack_size;
    return 0;
}

/* ---- catch-up repositories (repoN-mode = catch-up) ---- */

typedef struct keylist {
    char **v;
    int n, cap, oom;
} keylist;

static int add_key(void *arg, const char *key, const ws_storage_info *info)
{
    (void)info;
    keylist *l = arg;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return l->oom = 1;
        l->v = nv;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(key)))
        return l->oom = 1;
    l->n++;
    return 0;
}

/* The backup, complete in the sync repositories, copied from the first of them into a
 * catch-up repository as `walship copy --backup ID --wal` would: the started marker, the
 * objects (each read back verified), the WAL from start to stop segment, the manifest last.
 * A failure leaves the backup unlisted there and is a WARNING, never the backup's failure. */
static int fill_catchup_into(bb *b, ws_repo *dst, ws_error *err)
{
    ws_repo *src = b->repos[0];
    ws_repo_identity want = {WS_REPO_FORMAT, b->info.sysid, 0, b->info.seg_size};
    ws_repo_identity sid;
    if (ws_repo_identity_get(src, &sid, err) < 0)
        return -1;
    want.pg_version = sid.pg_version;
    if (ws_repo_identity_ensure(dst, &want, err) < 0)
        return -1;
    char prefix[128], mkey[128];
    if (ws_key_backup_prefix(b->id, prefix, sizeof prefix) < 0 ||
        ws_manifest_key(b->id, WS_MANIFEST_NAME, mkey, sizeof mkey) < 0)
        return ws_error_set(err, WS_EINVAL, "backup id too long: %s", b->id);
    keylist l = {0};
    int rc = 0;
    if (ws_storage_list(ws_repo_storage(src), prefix, add_key, &l, err) < 0 || l.oom)
        rc = l.oom ? ws_error_oom(err) : -1;
    /* the marker first, byte for byte (a small text object, not in the object format) */
    for (int i = 0; rc == 0 && i < l.n; i++) {
        const char *slash = strrchr(l.v[i], '/');
        if (!slash || strcmp(slash + 1, WS_CATALOG_STARTED_NAME) != 0)
            continue;
        char *text = NULL;
        size_t len = 0;
        if (ws_storage_get_small(ws_repo_storage(src), l.v[i], 64 << 10, &text, &len, err) < 0 ||
            (ws_storage_put_small(ws_repo_storage(dst), l.v[i], WS_STORAGE_WRITE_EXCL, text, len,
                                  NULL, err) < 0 &&
             err->code != WS_EEXIST))
            rc = -1;
        else
            ws_error_clear(err);
        free(text);
    }
    for (int i = 0; rc == 0 && i < l.n; i++) {
        const char *slash = strrchr(l.v[i], '/');
        if (strcmp(l.v[i], mkey) == 0 || (slash && strcmp(slash + 1, WS_CATALOG_STARTED_NAME) == 0))
            continue;
        rc = ws_repo_obj_copy(src, dst, l.v[i], 1, NULL, err);
    }
    /* a backup is visible only once its WAL is there */
    uint64_t first = ws_wal_lsn_segno(b->info.start_lsn, b->info.seg_size);
    uint64_t last =
        ws_wal_lsn_segno(b->info.stop_lsn > 0 ? b->info.stop_lsn - 1 : 0, b->info.seg_size);
    if (last < first)
        last = first;
    if (b->info.start_tli != b->info.stop_tli)
        first = last;
    for (uint64_t seg = first; rc == 0 && seg <= last; seg++) {
        char name[32], key[128];
        ws_wal_format_segment(name, b->info.stop_tli, seg, b->info.seg_size);
        ws_wal_name wn;
        if (ws_wal_parse_name(name, &wn, err) < 0 || ws_repo_wal_key(&wn, key, sizeof key) < 0)
            rc = -1;
        else
            rc = ws_repo_obj_copy(src, dst, key, 1, NULL, err);
    }
    if (rc == 0)
        rc = ws_repo_obj_copy(src, dst, mkey, 1, NULL, err);
    for (int i = 0; i < l.n; i++)
        free(l.v[i]);
    free(l.v);
    return rc;
}

static void fill_catchup(bb *b, int i)
{
    ws_error err;
    ws_error_clear(&err);
    if (fill_catchup_into(b, b->all[i], &err) == 0) {
        ws_log_info("backup %s is complete in the catch-up repository %s", b->id,
                    ws_repo_describe(b->all[i]));
        return;
    }
    ws_log_warn("backup %s is complete in every sync repository but not in the catch-up "
                "repository %s (repo%d): %s; `walship copy --to %d --backup %s` can fill it later",
                b->id, ws_repo_describe(b->all[i]), i + 1, err.msg, i + 1, b->id);
}

static int run_backup(bb *b, ws_error *err)
{
    const char *label = NULL, *checkpoint = NULL;
    long max_rate = 0;
    ws_bb_store_opts so;
    memset(&so, 0, sizeof so);
    if (read_options(b, &label, &checkpoint, &max_rate, &so, err) < 0)
        return WS_EXIT_USAGE;
    if (ws_repo_modes(b->cfg, b->catchup, err) < 0)
        return WS_EXIT_USAGE;
    if (ws_cmd_open_repos(b->cfg, &b->all, &b->nall, err) < 0)
        return err->code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    /* repoN-mode = catch-up: filled after the backup is complete in the sync ones */
    if (!(b->repos = calloc((size_t)b->nall, sizeof *b->repos)))
        return ws_error_oom(err), WS_EXIT_FAIL;
    for (int i = 0; i < b->nall && i < WS_CONFIG_MAX_REPOS; i++)
        if (!b->catchup[i]) {
            b->idx[b->nrepos] = i;
            b->repos[b->nrepos++] = b->all[i];
        }
    if (ws_pq_load(err) < 0)
        return WS_EXIT_FAIL;
    if (!(b->conn = connect_pg(ws_config_get(b->cfg, "pgconn"), 1, err)))
        return WS_EXIT_FAIL;
    if (identify(b, err) < 0)
        return WS_EXIT_FAIL;
    if (!(b->mb = ws_manifest_builder_new()))
        return ws_error_oom(err), WS_EXIT_FAIL;

    b->t_start = ws_now();
    char default_label[64];
    if (!label) {
        snprintf(default_label, sizeof default_label, "walship basebackup");
        label = default_label;
    }
    if (start_backup(b, label, checkpoint, max_rate, err) < 0)
        return WS_EXIT_FAIL;
    ws_progress_start(&b->progress, b->total_bytes, b->tty);
    snprintf(b->info.label, sizeof b->info.label, "%s", label);
    so.repos = b->repos;
    so.nrepos = b->nrepos;
    so.id = b->id;
    so.cfg = b->cfg;
    if (!(b->verify = ws_bb_verify_new()))
        return ws_error_oom(err), WS_EXIT_FAIL;
    so.verify = b->verify;
    if (ws_bb_store_new(&so, b->mb, &b->store, err) < 0)
        return WS_EXIT_FAIL;
    b->objects_written = 1;
    if (receive_stream(b, err) < 0 || finish_backup(b, err) < 0)
        return WS_EXIT_FAIL;
    progress(b, 1);
    PQfinish(b->conn);
    b->conn = NULL;

    ws_bb_store_stats st;
    ws_bb_store_get_stats(b->store, &st);
    ws_log_info("backup %s: stop LSN %X/%X on timeline %" PRIu32 ", %" PRIu64 " files, "
                "%.1f MiB in %" PRIu64 " objects (%.1f MiB stored); %d writers, at most %.1f MiB "
                "in flight (bound %.1f MiB)",
                b->id, (unsigned)(b->info.stop_lsn >> 32), (unsigned)b->info.stop_lsn,
                b->info.stop_tli, st.files, ws_mib(st.bytes), st.objects, ws_mib(st.stored_bytes),
                so.parallel, ws_mib(st.peak_inflight), ws_mib(so.max_inflight));
    if (wait_for_wal(b, err) < 0)
        return WS_EXIT_FAIL;
    b->info.original_size = st.bytes;
    b->info.stored_size = st.stored_bytes;
    b->info.file_count = st.files;
    /* expire removes a backup it judged dead (a stale lock) marker last: if the marker is
     * gone, so are objects the manifest would name */
    for (int i = 0; i < b->nrepos; i++) {
        char key[128];
        ws_storage_info si;
        ws_manifest_key(b->id, WS_CATALOG_STARTED_NAME, key, sizeof key);
        if (ws_storage_stat(ws_repo_storage(b->repos[i]), key, &si, err) < 0) {
            if (err->code == WS_ENOENT)
                ws_error_set(err, WS_EIO,
                             "backup %s was removed from %s while it ran (walship expire took "
                             "its lock for a dead one's): no manifest written",
                             b->id, ws_repo_describe(b->repos[i]));
            return WS_EXIT_FAIL;
        }
    }
    /* --pin: before the manifest, so that the backup never exists unpinned */
    for (int i = 0; ws_config_flag(b->cfg, "pin") && i < b->nrepos; i++)
        if (ws_pin_set(b->repos[i], b->id, ws_config_get(b->cfg, "note"), err) < 0)
            return WS_EXIT_FAIL;
    if (ws_manifest_write(b->mb, &b->info, b->repos, b->nrepos, err) < 0)
        return WS_EXIT_FAIL;
    ws_log_info("backup %s complete: %.1f MiB in %.1f s; WAL %s..%s archived", b->id,
                ws_mib(st.bytes), ws_now() - b->t_start, b->info.start_wal, b->info.stop_wal);
    return WS_EXIT_OK;
}

/* The result for metrics-file and notify-url (walship/ops/ops.h). */
static void report(const ws_config *cfg, const bb *b, int rc, const ws_error *err, double w0)
{
    char summary[1024], size[32], stored[32];
    if (rc == WS_EXIT_OK)
        snprintf(summary, sizeof summary, "backup %s complete: %.1f MiB, WAL %s..%s", b->id,
                 ws_mib(b->info.original_size), b->info.start_wal, b->info.stop_wal);
    else
        snprintf(summary, sizeof summary, "%s", err->msg);
    snprintf(size, sizeof size, "%" PRIu64, b->info.original_size);
    snprintf(stored, sizeof stored, "%" PRIu64, b->info.stored_size);
    ws_ops_result res = {"basebackup", rc == WS_EXIT_OK, w0, ws_ops_wallclock(), summary, {{0}}, 0};
    ws_ops_field_add(&res, "backup_id", b->id, 0);
    if (rc == WS_EXIT_OK) {
        ws_ops_field_add(&res, "size_bytes", size, 1);
        ws_ops_field_add(&res, "stored_bytes", stored, 1);
    }
    ws_ops_report(cfg, &res);
}

int ws_cmd_basebackup(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0) {
        ws_log_error("usage: walship basebackup [--pgconn CONNINFO] [--label TEXT] "
                     "[--checkpoint fast|spread] [--pin [--note TEXT]]");
        return WS_EXIT_USAGE;
    }
    if (ws_expire_clock_setup(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    if (ws_ops_config_check(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    bb b;
    memset(&b, 0, sizeof b);
    b.cfg = cfg;
    b.tty = isatty(STDERR_FILENO);
    double w0 = ws_ops_wallclock();
    int rc = run_backup(&b, &err);
    if (rc != WS_EXIT_OK) {
        if (b.tty && b.done_bytes)
            fputc('\n', stderr);
        if (b.id[0])
            ws_error_prefix(&err, "backup %s failed", b.id);
        else
            ws_error_prefix(&err, "backup failed");
        ws_log_err(WS_LOG_ERROR, &err);
    }
    if (b.conn) {
        /* a walsender waiting for WAL archiving notices a closed socket only when it next
         * writes: cancel it, so the server ends the backup now */
        PGcancel *c = PQgetCancel(b.conn);
        char buf[256];
        if (c) {
            PQcancel(c, buf, sizeof buf);
            PQfreeCancel(c);
        }
        PQfinish(b.conn);
    }
    ws_tar_parser_free(b.tar);
    ws_bb_store_free(b.store);
    ws_bb_verify_free(b.verify);
    ws_backup_lock_release(b.lock);
    if (rc != WS_EXIT_OK && b.objects_written) {
        for (int i = 0; i < b.nrepos; i++) {
            ws_error rerr;
            ws_error_clear(&rerr);
            if (ws_catalog_remove(b.repos[i], b.id, NULL, &rerr) < 0)
                ws_log_warn("objects of the failed backup %s remain in %s (not listed as "
                            "complete: it has no manifest): %s",
                            b.id, ws_repo_describe(b.repos[i]), rerr.msg);
        }
        ws_log_info("removed the objects of the failed backup %s; nothing was listed", b.id);
    }
    /* expire-auto: the backup is complete whatever expire says (exit 0); a failure is an
     * ERROR line for the operator */
    for (int i = 0; rc == WS_EXIT_OK && i < b.nall; i++)
        if (b.catchup[i])
            fill_catchup(&b, i);
    if (rc == WS_EXIT_OK && ws_expire_auto(cfg, b.repos, b.nrepos, b.info.sysid, &err) < 0)
        ws_log_err(WS_LOG_ERROR, &err);
    ws_manifest_builder_free(b.mb);
    free(b.archive_oids);
    free(b.repos);
    if (b.all)
        ws_cmd_close_repos(b.all, b.nall);
    report(cfg, &b, rc, &err, w0); /* ops (issue 15): metrics-file, notify-url */
    return rc;
}
