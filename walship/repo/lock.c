/* lock.c — the backup lock and its heartbeat thread (lock.h). */
#include "walship/repo/lock.h"
#include "walship/error.h"
#include "walship/log.h"
#include "walship/repo/keys.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int64_t clock_offset;

int64_t ws_repo_wall_time(void)
{
    return (int64_t)time(NULL) + atomic_load(&clock_offset);
}

void ws_repo_set_clock_offset(int64_t seconds)
{
    atomic_store(&clock_offset, seconds);
}

struct ws_backup_lock {
    ws_storage **st;
    int n;
    char key[128];
    char host[256];
    long pid;
    int64_t started;
    pthread_t thread;
    int have_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static int write_lock(ws_backup_lock *l, ws_storage *st, ws_error *err)
{
    char text[768];
    int len = snprintf(text, sizeof text,
                       "# walship backup lock: the backup is running while heartbeat is recent\n"
                       "host = %s\npid = %ld\nstarted = %" PRId64 "\nheartbeat = %" PRId64 "\n",
                       l->host, l->pid, l->started, ws_repo_wall_time());
    if (len < 0 || (size_t)len >= sizeof text)
        return ws_error_set(err, WS_EINTERNAL, "backup lock text too long");
    return ws_storage_put_small(st, l->key, 0, text, (size_t)len, NULL, err);
}

static void *heartbeat(void *arg)
{
    ws_backup_lock *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += WS_BACKUP_LOCK_REFRESH;
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
            ;
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->n; i++) {
            ws_error e;
            ws_error_clear(&e);
            if (write_lock(l, l->st[i], &e) < 0)
                ws_log_warn("refreshing the backup lock %s in %s: %s", l->key,
                            ws_storage_describe(l->st[i]), e.msg);
        }
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void lock_free(ws_backup_lock *l)
{
    for (int i = 0; i < l->n; i++)
        ws_storage_free(l->st[i]);
    free(l->st);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int ws_backup_lock_take(const ws_storage_config *cfgs, int n, const char *id, ws_backup_lock **out,
                        ws_error *err)
{
    *out = NULL;
    ws_backup_lock *l = calloc(1, sizeof *l);
    if (!l || !(l->st = calloc((size_t)(n ? n : 1), sizeof *l->st))) {
        free(l);
        return ws_error_oom(err);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (ws_key_backup_object(id, WS_BACKUP_LOCK_NAME, l->key, sizeof l->key) < 0) {
        lock_free(l);
        return ws_error_set(err, WS_EINTERNAL, "invalid backup id \"%s\"", id);
    }
    if (gethostname(l->host, sizeof l->host - 1) < 0)
        snprintf(l->host, sizeof l->host, "unknown");
    for (char *c = l->host; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            *c = '_';
    l->pid = (long)getpid();
    l->started = ws_repo_wall_time();
    for (int i = 0; i < n; i++) {
        if (ws_storage_open(&cfgs[i], &l->st[i], err) < 0 || (l->n++, 0) ||
            write_lock(l, l->st[i], err) < 0) {
            ws_error_prefix(err, "taking the backup lock %s", l->key);
            ws_backup_lock_release(l);
            return -1;
        }
    }
    if (pthread_create(&l->thread, NULL, heartbeat, l) != 0) {
        ws_backup_lock_release(l);
        return ws_error_set(err, WS_EINTERNAL, "cannot start the backup lock's heartbeat");
    }
    l->have_thread = 1;
    *out = l;
    return 0;
}

void ws_backup_lock_release(ws_backup_lock *l)
{
    if (!l)
        return;
    if (l->have_thread) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    for (int i = 0; i < l->n; i++) {
        ws_error e;
        ws_error_clear(&e);
        if (ws_storage_remove(l->st[i], l->key, &e) < 0)
            ws_log_warn("removing the backup lock %s from %s: %s (it goes stale in %d s)", l->key,
                        ws_storage_describe(l->st[i]), e.msg, WS_BACKUP_LOCK_STALE);
    }
    lock_free(l);
}

static int field(const char *text, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && strncmp(p + nl, " = ", 3) == 0) {
            const char *v = p + nl + 3, *e = strchr(v, '\n');
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= len)
                vl = len - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
    }
    return -1;
}

int ws_backup_lock_read(ws_repo *r, const char *id, ws_backup_lock_info *info, ws_error *err)
{
    memset(info, 0, sizeof *info);
    char key[128], *text = NULL, v[64];
    size_t len;
    if (ws_key_backup_object(id, WS_BACKUP_LOCK_NAME, key, sizeof key) < 0)
        return ws_error_set(err, WS_EINTERNAL, "invalid backup id \"%s\"", id);
    if (ws_storage_get_small(ws_repo_storage(r), key, 4096, &text, &len, err) < 0)
        return -1;
    int ok =
        field(text, "host", info->host, sizeof info->host) == 0 &&
        field(text, "pid", v, sizeof v) == 0 && (info->pid = strtol(v, NULL, 10), 1) &&
        field(text, "started", v, sizeof v) == 0 && (info->started = strtoll(v, NULL, 10), 1) &&
        field(text, "heartbeat", v, sizeof v) == 0 && (info->heartbeat = strtoll(v, NULL, 10)) > 0;
    free(text);
    if (!ok)
        return ws_error_set(err, WS_ECORRUPT, "%s in %s is not a backup lock", key,
                            ws_repo_describe(r));
    return 0;
}

int ws_backup_lock_live(const ws_backup_lock_info *info, int64_t now, int64_t stale)
{
    return now - info->heartbeat < stale;
}
