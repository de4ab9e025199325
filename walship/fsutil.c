/* fsutil.c — dirname and directory fsync. */
#include "walship/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ws_dirname(const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, len, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

int ws_fsync_dir(const char *dir, ws_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ws_error_errno(err, WS_EIO, errno, "cannot open directory %s", dir);
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc < 0 && e != EINVAL)
        return ws_error_errno(err, WS_EIO, e, "cannot fsync directory %s", dir);
    return 0;
}
