/*
 * ws_module.h — the walship side of the archive module (module/client.c), kept free of
 * PostgreSQL's headers so that it compiles with walship's own flags; module/walship.c is the
 * PostgreSQL side (callbacks, GUCs, logging) and calls only this.
 *
 * ws_module_archive archives one file the way `walship push %p` does, without a process per
 * file: it reads the configuration, hands the file to the async agent through the spool
 * (walship/agent/spool.h: NAME.req, push.seen) and waits for its acknowledgement. It runs no
 * thread, no event loop and no network code in the caller's process. The rare cases — no
 * agent running (start one), an agent of another configuration (restart it), async = off,
 * push-queue-max set, a file outside pg_wal — run `walship push PATH` as a child process,
 * whose exit status is the answer (docs/decisions.md, "The archive module").
 */
#ifndef WS_MODULE_H
#define WS_MODULE_H

#include <stddef.h>

/* Sleeps up to ms milliseconds (waking early is fine); returns nonzero if the caller must
 * give up now (shutdown requested): the file is then reported as not archived. */
typedef int (*ws_module_nap_fn)(void *arg, int ms);

typedef struct ws_module_req {
    const char *config; /* walship config file; NULL or "" for walship's default lookup */
    const char *bin;    /* the walship binary run for the rare cases */
    const char *path;   /* the file, as the archiver names it (pg_wal/NAME, cwd = PGDATA) */
    ws_module_nap_fn nap;
    void *nap_arg;
} ws_module_req;

enum {
    WS_MODULE_OK = 0,   /* durable in every repository */
    WS_MODULE_FAIL = 1, /* not archived; msg says why (the archiver retries) */
};

/* Returns WS_MODULE_OK or WS_MODULE_FAIL with msg (NUL-terminated, at most len bytes, no
 * secrets) set. Never waits past push-timeout (plus a few seconds for a child to exit).
 * *via_child is set to 1 when a `walship push` child gave the answer (its own messages are
 * then in the server log already, on its stderr). */
int ws_module_archive(const ws_module_req *rq, char *msg, size_t len, int *via_child);

#endif
