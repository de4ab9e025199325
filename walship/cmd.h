/*
 * cmd.h — what every command shares: exit codes (docs/exit-codes.md) and opening the
 * configured repositories. Each command is a function taking the loaded configuration and
 * returning the process exit code.
 */
#ifndef WS_CMD_H
#define WS_CMD_H

#include <sys/stat.h>

#include "walship/clock.h"
#include "walship/config.h"
#include "walship/repo/repo.h"

enum {
    WS_EXIT_OK = 0,
    WS_EXIT_FAIL = 1,  /* push: not archived (PostgreSQL retries); fetch: absent */
    WS_EXIT_USAGE = 2, /* usage or configuration error */
    /* fetch: anything but absence; > 125 makes PostgreSQL abort recovery rather than end it
     * early on a file that exists but could not be read */
    WS_EXIT_FETCH_FATAL = 126,
};

/* Opens every configured repository into *repos (malloc'd array of *n, freed with
 * ws_cmd_close_repos). Fails with WS_ECONFIG if none is configured. */
int ws_cmd_open_repos(const ws_config *cfg, ws_repo ***repos, int *n, ws_error *err);
void ws_cmd_close_repos(ws_repo **repos, int n);

/* ---- push's pipeline (push.c), shared by the in-process path and the async agent ---- */

typedef struct ws_push_opts {
    ws_codec codec;
    int level;
} ws_push_opts;

/* compress and compress-level; -1 with WS_ECONFIG naming the bad value. */
int ws_push_opts_get(const ws_config *cfg, ws_push_opts *o, ws_error *err);

/* A WAL file PostgreSQL offers, open and validated (name, regular file, page header or
 * text format). path is borrowed; st is the fstat taken at open. */
typedef struct ws_push_file {
    const char *path;
    ws_wal_name name;
    int fd;
    uint64_t size;
    int is_segment;
    ws_wal_header hdr; /* segments only */
    struct stat st;
} ws_push_file;

int ws_push_file_open(const char *path, ws_push_file *f, ws_error *err);
void ws_push_file_close(ws_push_file *f);
/* Streams f once into every repository (cluster check first, all or nothing). Returns 0
 * only when each holds it durably, *oh (may be NULL) then has its header (SHA-256); else
 * -1 with err = the first failure. Logs one line per repository. Reads f->fd from its
 * current offset (0 after open). Thread-safe as long as repos is used by this call alone. */
int ws_push_file_store(ws_push_file *f, ws_repo **repos, int n, const ws_push_opts *o,
                       ws_objhdr *oh, ws_error *err);

/* fetch's reader (fetch.c), shared with the prefetch agent: the plaintext of key from repo
 * into fd (truncated first; what names it in messages), verified — object header, length,
 * SHA-256, and for a segment its page header against name (the right segment) and, if sysid
 * is not 0 (the caller read the identity), the database system identifier and the
 * repository's segment size. -1 with err: WS_ENOENT absent, WS_ETRANSIENT
 * worth retrying, WS_ECORRUPT a failed verification (fd then holds bytes not to be used). */
int ws_fetch_read(ws_repo *repo, const ws_wal_name *name, const char *key, int fd, const char *what,
                  uint64_t sysid, ws_objhdr *h, ws_error *err);

int ws_cmd_push(const ws_config *cfg);
int ws_cmd_fetch(const ws_config *cfg);
int ws_cmd_basebackup(const ws_config *cfg);
int ws_cmd_list(const ws_config *cfg);
int ws_cmd_restore(const ws_config *cfg);
int ws_cmd_repo(const ws_config *cfg); /* repo repair (repair.c) */
int ws_cmd_cipher(const ws_config *cfg); /* cipher change | rotate (keys.c) */

#endif
