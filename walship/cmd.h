/*
 * cmd.h — what every command shares: exit codes (docs/exit-codes.md) and opening the
 * configured repositories. Each command is a function taking the loaded configuration and
 * returning the process exit code.
 */
#ifndef WS_CMD_H
#define WS_CMD_H

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

/* Monotonic clock in seconds. */
double ws_now(void);

int ws_cmd_push(const ws_config *cfg);
int ws_cmd_fetch(const ws_config *cfg);

#endif
