/* client.c — reaching a background agent from its client (client.h). */
#include "walship/agent/client.h"
#include "walship/agent/spawn.h"
#include "walship/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ws_agent_start(const ws_config *cfg, const ws_spool *sp, const char *who, ws_agent_main_fn main,
                   int *agent_exit, ws_error *err)
{
    int r = ws_agent_spawn(err);
    if (r == 1) {
        ws_agent_detach(who);
        *agent_exit = main(cfg, sp);
    }
    return r;
}

int ws_agent_current(const ws_spool *sp, long pid, ws_spool_state *st)
{
    if (ws_spool_state_read(sp, st) < 0 || st->pid != pid)
        return -1;
    return strcmp(st->config_id, sp->config_id) == 0;
}

void ws_agent_restart(long pid, const char *name)
{
    ws_log_info("%s (pid %ld) runs another configuration; restarting it", name, pid);
    kill((pid_t)pid, SIGTERM);
}

int ws_agent_touch(const ws_spool *sp, const char *fname, int create)
{
    char path[PATH_MAX];
    ws_spool_path(sp, fname, "", path, sizeof path);
    if (utimensat(AT_FDCWD, path, NULL, 0) == 0 || errno != ENOENT)
        return 0;
    if (!create)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    return 0;
}
