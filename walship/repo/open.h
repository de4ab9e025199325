/*
 * open.h — the configured repositories, opened. Every command and agent that reads or writes
 * the repositories starts here.
 */
#ifndef WS_REPO_OPEN_H
#define WS_REPO_OPEN_H

#include "walship/config.h"
#include "walship/error.h"
#include "walship/repo/repo.h"

/* Opens every configured repository into *repos (malloc'd array of *n, freed with
 * ws_cmd_close_repos). Fails with WS_ECONFIG if none is configured. */
int ws_cmd_open_repos(const ws_config *cfg, ws_repo ***repos, int *n, ws_error *err);
void ws_cmd_close_repos(ws_repo **repos, int n);

#endif
