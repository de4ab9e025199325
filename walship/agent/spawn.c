/*
 * spawn.c — starting a background agent (the async push agent, the prefetch agent): a double
 * fork and setsid, so that the agent is reparented to init at once (never a zombie of
 * PostgreSQL's archiver or startup process), in its own session, and outlives the command
 * that started it.
 */
#include "walship/agent/spawn.h"
#include "walship/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void ws_agent_detach(const char *who)
{
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < (int)max; fd++)
        close(fd);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (null > 2)
            close(null);
    }
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    ws_log_setup(who, ws_log_get_level());
}

int ws_agent_spawn(ws_error *err)
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot start the agent: fork");
    if (pid == 0) {
        setsid();
        pid_t p2 = fork();
        if (p2 != 0)
            _exit(p2 < 0 ? 1 : 0);
        return 1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}
