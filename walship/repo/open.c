/* open.c — the configured repositories, opened (open.h). */
#include "walship/repo/open.h"

#include <stdlib.h>

int ws_cmd_open_repos(const ws_config *cfg, ws_repo ***repos, int *n, ws_error *err)
{
    *repos = NULL;
    *n = 0;
    int count = ws_config_repo_count(cfg);
    if (count == 0) {
        ws_error_set(err, WS_ECONFIG, "no repository configured");
        ws_error_hint(err, "set repo = /path/or/s3://bucket in the config file, or pass --repo");
        return -1;
    }
    ws_repo **r = calloc((size_t)count, sizeof *r);
    if (!r)
        return ws_error_oom(err);
    for (int i = 0; i < count; i++) {
        ws_storage_config sc;
        if (ws_config_storage(cfg, i, &sc, err) < 0 || ws_repo_open(&sc, &r[i], err) < 0 ||
            ws_repo_cipher_setup(r[i], cfg, i, err) < 0) {
            i += r[i] != NULL; /* opened: closed below */
            ws_cmd_close_repos(r, i);
            return -1;
        }
    }
    *repos = r;
    *n = count;
    return 0;
}

void ws_cmd_close_repos(ws_repo **repos, int n)
{
    for (int i = 0; i < n; i++)
        ws_repo_free(repos[i]);
    free(repos);
}
