/*
 * client.c — fetch's side of the prefetching fetch: serve segment N from the prefetch
 * spool when the agent has verified it, tell the agent where recovery is (fetch.want), and
 * make sure an agent runs.
 *
 * A spooled segment is served only with its proof NAME.ok, written by the agent before it
 * renamed the verified download into place: the agent's configuration id (the same
 * repositories and settings as this fetch), the SHA-256 it verified, and the file's identity
 * (device, inode, size, mtime). A file planted or rewritten in the spool has another inode or
 * mtime and is not served; its page header is checked against the name once more as well.
 */
#include "walship/agent/client.h"
#include "walship/agent/spool.h"
#include "walship/clock.h"
#include "walship/fetch/prefetch.h"
#include "walship/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* 1 and dest in place if the spool holds name verified; 0 otherwise. */
static int serve(const ws_spool *sp, const ws_wal_name *name, const char *dest)
{
    char path[PATH_MAX];
    ws_spool_path(sp, name->name, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    ws_spool_ack ok;
    ws_error err;
    ws_error_clear(&err);
    const char *why = NULL;
    if (fstat(fd, &st) < 0)
        why = "cannot stat it";
    else if (ws_spool_ok_read(sp, name->name, &ok) < 0)
        why = "it has no proof of verification (.ok)";
    else if (!ws_spool_ok_valid(&ok, sp->config_id, &st))
        why = "it is not the file the prefetch agent verified";
    else {
        unsigned char page[WS_WAL_LONG_HEADER_SIZE];
        ssize_t k = pread(fd, page, sizeof page, 0);
        if (k < 0 ||
            ws_wal_check_header(page, (size_t)k, name, (uint64_t)st.st_size, NULL, &err) < 0)
            why = k < 0 ? "cannot read it" : err.msg;
    }
    if (why) {
        ws_log_warn("not serving %s from the prefetch spool: %s; fetching it from the repository",
                    name->name, why);
        close(fd);
        return 0;
    }
    /* The previous segment at dest (PostgreSQL leaves RECOVERYXLOG in place) is moved into the
     * spool first, for the agent to delete: freeing its blocks in a rename over it costs
     * milliseconds, here where replay waits. */
    char old[PATH_MAX];
    snprintf(old, sizeof old, "%s/fetch.%ld.old", sp->dir, (long)getpid());
    rename(dest, old); /* absent, or on another file system: the rename below replaces it */
    if (rename(path, dest) < 0) {
        ws_log_debug("cannot rename %s to %s: %s", path, dest, strerror(errno));
        close(fd);
        return 0;
    }
    struct stat ds;
    int same = stat(dest, &ds) == 0 && ds.st_dev == st.st_dev && ds.st_ino == st.st_ino;
    close(fd);
    if (!same) /* replaced between the check and the rename: fetch it afresh */
        return 0;
    /* No fsync of pg_wal and no removal of the proof (the agent drops proofs without their
     * file): the segment's bytes were fsync'd by the agent, and PostgreSQL reads %p at once
     * and keeps nothing of it across a crash (recovery fetches again; a standby that keeps the
     * file renames it durably itself). A directory fsync would wait for the journal, behind
     * the agent's writes. */
    ws_log_info("restored %s from the prefetch spool", name->name);
    return 1;
}

/* The agent is downloading name right now (NAME.tmp): waiting for it beats a second download.
 * Waits while the download is there and the agent alive, at most limit seconds; then serves
 * it if it arrived. */
static int wait_inflight(const ws_spool *sp, const ws_wal_name *name, const char *dest,
                         double limit)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    ws_spool_path(sp, name->name, ".tmp", tmp, sizeof tmp);
    ws_spool_path(sp, name->name, "", path, sizeof path);
    if (access(tmp, F_OK) != 0)
        return 0;
    double t0 = ws_now(), nap = 0.001;
    while (access(tmp, F_OK) == 0 && ws_now() - t0 < limit && ws_spool_agent_pid(sp) != 0) {
        ws_sleep(nap);
        nap = nap * 2 > 0.02 ? 0.02 : nap * 2;
    }
    if (access(path, F_OK) != 0)
        return 0;
    ws_log_debug("waited %.3f s for the prefetch agent's download of %s", ws_now() - t0,
                 name->name);
    return serve(sp, name, dest);
}

/* Tells the agent where recovery is. A segment restored moves it there: the agent drops what
 * lies before and fetches what lies after. A segment not restored (absent: the end of the
 * archive, or PostgreSQL probing a newer timeline first) only shows that recovery is alive:
 * fetch.want's mtime moves, its segment stays. */
static void note(const ws_spool *sp, const ws_wal_name *name, int found)
{
    ws_error err;
    if (!found && ws_agent_touch(sp, "fetch.want", 0) == 0)
        return;
    char text[WS_WAL_NAME_MAX + 2];
    snprintf(text, sizeof text, "%s\n", found ? name->name : "");
    if (ws_spool_file_write(sp, "fetch.want", text, &err) < 0)
        ws_log_err(WS_LOG_WARN, &err);
}

/* Counts a hit (served from the spool) or a miss (a segment the foreground fetch restored) in
 * <spool>/fetch.stats, "hits N misses M", for walship metrics --pgdata. Fetches run one at a
 * time (the startup process) but the file is locked anyway; any failure only loses a count. */
static void count(const ws_spool *sp, int hit)
{
    char path[PATH_MAX], buf[96] = "";
    ws_spool_path(sp, WS_PREFETCH_STATS, "", path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX) == 0) {
        unsigned long long h = 0, m = 0;
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = '\0';
            if (sscanf(buf, "hits %llu misses %llu", &h, &m) != 2)
                h = m = 0;
        }
        *(hit ? &h : &m) += 1;
        int k = snprintf(buf, sizeof buf, "hits %llu misses %llu\n", h, m);
        if (pwrite(fd, buf, (size_t)k, 0) == k && ftruncate(fd, k) < 0)
            ws_log_debug("%s: cannot truncate", path);
    }
    close(fd);
}

int ws_prefetch_fetch(const ws_config *cfg, const ws_wal_name *name, const char *dest,
                      int *agent_exit)
{
    ws_error err;
    ws_error_clear(&err);
    long ahead, parallel;
    double idle, limit;
    if (ws_config_get_long(cfg, "fetch-prefetch", 0, 256, &ahead, &err) < 0 ||
        ws_config_get_long(cfg, "fetch-parallel", 1, 32, &parallel, &err) < 0 ||
        ws_config_get_seconds(cfg, "agent-idle-timeout", &idle, &err) < 0 ||
        ws_config_get_seconds(cfg, "fetch-timeout", &limit, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return -1;
    }
    if (ahead == 0 || name->kind != WS_WAL_SEGMENT)
        return WS_PREFETCH_MISS;
    double t0 = ws_now();
    ws_spool sp;
    if (ws_spool_init_prefetch(&sp, cfg, dest, &err) < 0) {
        if (err.code == WS_ECONFIG) {
            ws_log_err(WS_LOG_ERROR, &err);
            return -1;
        }
        if (err.code != WS_ENOENT) /* WS_ENOENT: not restoring into a pg_wal */
            ws_log_warn("no prefetching: %s", err.msg);
        return WS_PREFETCH_MISS;
    }
    int served = serve(&sp, name, dest) || wait_inflight(&sp, name, dest, limit);
    if (served) {
        note(&sp, name, 1);
        count(&sp, 1);
        ws_log_debug("served %s in %.2f ms (spool, proof, page header, rename)", name->name,
                     (ws_now() - t0) * 1e3);
    }
    long pid = ws_spool_agent_pid(&sp);
    if (pid == 0) {
        int r = ws_agent_start(cfg, &sp, "walship prefetch", ws_prefetch_main, agent_exit, &err);
        if (r == 1)
            return WS_PREFETCH_AGENT;
        if (r < 0)
            ws_log_err(WS_LOG_WARN, &err);
        else
            ws_log_debug("started the prefetch agent for %s", sp.dir);
    } else {
        ws_spool_state st;
        if (ws_agent_current(&sp, pid, &st) == 0)
            ws_agent_restart(pid, "the prefetch agent");
    }
    return served ? WS_PREFETCH_SERVED : WS_PREFETCH_PENDING;
}

void ws_prefetch_done(const ws_config *cfg, const ws_wal_name *name, const char *dest, int found)
{
    ws_spool sp;
    ws_error err;
    if (ws_spool_init_prefetch(&sp, cfg, dest, &err) == 0) {
        note(&sp, name, found);
        if (found)
            count(&sp, 0);
    }
}
