/*
 * agent.c — the async push agent: one per spool, detached from the archiver.
 *
 * A libuv loop watches pg_wal/archive_status (uv_fs_event, plus a rescan every TICK_MS in
 * case an event is lost), takes .ready files oldest first (timeline history files first, as
 * PostgreSQL does) and runs push's pipeline for up to push-parallel of them at once on the
 * libuv thread pool. The storage drivers are synchronous and not thread-safe, so every slot
 * owns its own set of open repositories: a job uses its slot's set alone. The loop thread
 * only decides, and writes acknowledgements and errors when a job is done.
 *
 * Its lifecycle (lock, title, idle timeout, postmaster watch, signals, the thread pool's
 * size) is the agents' shared runtime, walship/agent/loop.h; this file is the push job.
 *
 * Jobs write the sync repositories only (repoN-mode). Side jobs on the pool, one of each at
 * a time: the walship.repo check, the catch-up round that fills catch-up repositories from
 * the first sync one (walship/repo/catchup.h), and the archive-failure notification (one per
 * notify-interval). The agent's metrics file is written on the loop thread (docs/async.md).
 */
#include "walship/agent/loop.h"
#include "walship/agent/spool.h"
#include "walship/archive/agent.h"
#include "walship/archive/pipeline.h"
#include "walship/bytes.h"
#include "walship/clock.h"
#include "walship/log.h"
#include "walship/ops/ops.h"
#include "walship/repo/catchup.h"
#include "walship/repo/keys.h"
#include "walship/repo/open.h"
#include "walship/storage/http.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define TICK_MS       500
#define CLEAN_EVERY_S 10.0
#define CHECK_EVERY_S 30.0
/* catch-up rounds: at least this far apart while push stores new files, a relist this often
 * when nothing changed, this long of copying at most per round, retries up to this apart */
#define CATCHUP_MIN_S     1.0
#define CATCHUP_IDLE_S    30.0
#define CATCHUP_BUDGET_S  20.0
#define CATCHUP_BACKOFF_S 30.0
#define METRICS_EVERY_S   5.0

typedef struct agent agent;

/* One catch-up repository as the last round saw it. */
typedef struct catchup_repo {
    int known; /* the backlog below was computed */
    uint64_t files, bytes;
    uint64_t copied; /* by this agent */
    int failing;
    char error[512];
    char newest[128]; /* the newest WAL segment key seen in it: the estimate while it is down */
} catchup_repo;

typedef struct file_entry {
    char name[WS_WAL_NAME_MAX];
    int busy;
    int acked; /* acknowledged by this agent: nothing to do until PostgreSQL renames it */
    int failures;
    double next_try;
    int seen; /* in the last scan */
} file_entry;

typedef struct slot {
    agent *a;
    uv_work_t work;
    const ws_agent_repos *set;
    ws_repo *sync[WS_CONFIG_MAX_REPOS]; /* the set's sync repositories: what a job writes */
    int nsync;
    int busy;
    /* the job */
    char name[WS_WAL_NAME_MAX];
    char path[PATH_MAX + WS_WAL_NAME_MAX];
    int rc;
    ws_error err;
    ws_objhdr oh;
    struct stat before, after;
} slot;

struct agent {
    ws_agent *rt; /* the runtime: cfg, sp, slots' repositories, inflight, stopping */
    const ws_spool *sp;
    ws_push_opts opts;
    slot *slots;
    /* the side job: the periodic check of walship.repo, on the pool with the last set */
    const ws_agent_repos *vset;
    uv_work_t vwork;
    char root[WS_CONFIG_MAX_REPOS][65]; /* hex SHA-256 of walship.repo; "" not seen yet */
    char vroot[WS_CONFIG_MAX_REPOS][65];
    int vok[WS_CONFIG_MAX_REPOS];
    char set_id[65];
    file_entry *files;
    int nfiles, capfiles;
    double last_clean, last_check;
    struct timespec seen_mtime;
    /* repoN-mode = catch-up: one round at a time on the pool, with its own repositories */
    int catchup[WS_CONFIG_MAX_REPOS], source, ncatchup;
    ws_repo **crepos;
    int ncrepos;
    uv_work_t cwork;
    int crunning, cdirty, cfailures;
    double cnext, cstarted;
    atomic_int cstop;
    catchup_repo cr[WS_CONFIG_MAX_REPOS];    /* the job's, while it runs */
    catchup_repo shown[WS_CONFIG_MAX_REPOS]; /* the last round's, for metrics */
    /* archive failures: counted, notified at most once per notify-interval (a job on the
     * pool bounded by notify-timeout), written to the agent's metrics file */
    uint64_t failures_total, failures_unsent;
    double last_failure, last_success, last_notify, notify_interval;
    char last_error[512];
    int nrunning, mdirty, vrunning;
    uv_work_t nwork;
    char nsummary[768];
    uint64_t nfailures;
    char metrics_path[PATH_MAX];
    double last_metrics;
    int metrics_warned; /* one WARNING per agent for a metrics file it cannot write */
};

static void scan(agent *a);

/* ---- the file table ---- */

static file_entry *find_file(agent *a, const char *name, int create)
{
    for (int i = 0; i < a->nfiles; i++)
        if (strcmp(a->files[i].name, name) == 0)
            return &a->files[i];
    if (!create)
        return NULL;
    if (a->nfiles == a->capfiles) {
        int cap = a->capfiles ? a->capfiles * 2 : 64;
        file_entry *nf = realloc(a->files, (size_t)cap * sizeof *nf);
        if (!nf)
            return NULL;
        a->files = nf;
        a->capfiles = cap;
    }
    file_entry *e = &a->files[a->nfiles++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return e;
}

/* PostgreSQL's order (pgarch.c): timeline history files first, then by name. */
static int ready_cmp(const void *x, const void *y)
{
    const file_entry *a = *(file_entry *const *)x, *b = *(file_entry *const *)y;
    int ha = strstr(a->name, ".history") != NULL, hb = strstr(b->name, ".history") != NULL;
    if (ha != hb)
        return hb - ha;
    return strcmp(a->name, b->name);
}

/* ---- jobs on the thread pool ---- */

static void job_work(uv_work_t *w)
{
    slot *s = w->data;
    ws_error_clear(&s->err);
    ws_push_file f;
    s->rc = ws_push_file_open(s->path, &f, &s->err);
    if (s->rc < 0)
        return;
    s->before = f.st;
    s->rc = ws_push_file_store(&f, s->sync, s->nsync, &s->a->opts, &s->oh, &s->err);
    if (fstat(f.fd, &s->after) < 0)
        memset(&s->after, 0, sizeof s->after);
    ws_push_file_close(&f);
}

static void job_done(uv_work_t *w, int status)
{
    slot *s = w->data;
    agent *a = s->a;
    const ws_spool *sp = a->sp;
    file_entry *e = find_file(a, s->name, 1);
    ws_spool_fileid before, after;
    ws_spool_fileid_of(&s->before, &before);
    ws_spool_fileid_of(&s->after, &after);
    if (status == 0 && s->rc == 0 && !ws_spool_fileid_equal(&before, &after)) {
        s->rc = ws_error_set(&s->err, WS_EINVAL, "%s changed while being archived", s->name);
    }
    if (status == 0 && s->rc == 0) {
        /* Durable in every repository: only now may push say "archived". */
        ws_spool_ack ack;
        snprintf(ack.set_id, sizeof ack.set_id, "%s", a->set_id);
        ws_sha256_hex(s->oh.sha256, ack.sha256);
        ack.file = before;
        ws_error err;
        if (ws_spool_ack_write(sp, s->name, &ack, &err) < 0) {
            ws_log_err(WS_LOG_ERROR, &err);
            if (e) {
                e->failures++;
                e->next_try = ws_now() + 1;
            }
        } else {
            ws_spool_error_remove(sp, s->name);
            char req[PATH_MAX];
            ws_spool_path(sp, s->name, ".req", req, sizeof req);
            unlink(req);
            if (e) {
                e->acked = 1;
                e->failures = 0;
            }
            ws_agent_log_reset(); /* the next failure is news */
            a->rt->last_work = ws_now();
            a->last_success = ws_ops_wallclock();
            a->cdirty = 1; /* a new file for the catch-up repositories */
            a->mdirty = 1;
        }
    } else {
        if (status != 0)
            ws_error_set(&s->err, WS_EINTERNAL, "job for %s cancelled", s->name);
        char text[1024];
        if (s->err.hint[0])
            snprintf(text, sizeof text, "%s HINT: %s", s->err.msg, s->err.hint);
        else
            snprintf(text, sizeof text, "%s", s->err.msg);
        /* the pipeline logged its own failures; an open failure is logged here */
        if (s->before.st_ino == 0)
            ws_log_error("%s", text);
        ws_spool_error_write(sp, s->name, text);
        if (status == 0) { /* a cancelled job (the agent stopping) is no archive failure */
            a->failures_total++;
            a->failures_unsent++;
            a->last_failure = ws_ops_wallclock();
            snprintf(a->last_error, sizeof a->last_error, "%s: %s", s->name, text);
            a->mdirty = 1;
        }
        if (e) {
            e->failures++;
            e->next_try = ws_now() + ws_agent_backoff(e->failures);
        }
    }
    if (e)
        e->busy = 0;
    s->busy = 0;
    a->rt->inflight--;
    ws_agent_settle(a->rt, 1);
}

static void start_job(agent *a, slot *s, file_entry *e)
{
    s->busy = 1;
    e->busy = 1;
    snprintf(s->name, sizeof s->name, "%s", e->name);
    snprintf(s->path, sizeof s->path, "%s/%s", a->sp->wal_dir, e->name);
    memset(&s->before, 0, sizeof s->before);
    memset(&s->after, 0, sizeof s->after);
    s->work.data = s;
    a->rt->inflight++;
    int rc = uv_queue_work(&a->rt->l.loop, &s->work, job_work, job_done);
    if (rc != 0) {
        ws_log_error("cannot queue %s: %s", e->name, uv_strerror(rc));
        s->busy = 0;
        e->busy = 0;
        a->rt->inflight--;
    }
}

/* ---- scanning ---- */

/* Adds the WAL names of dir's entries ending in suffix to the table, marked seen. */
static void collect(agent *a, const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT && strcmp(dir, a->sp->status_dir) == 0) {
            ws_log_info("%s is gone; stopping", dir);
            a->rt->stopping = 1;
        }
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char name[WS_WAL_NAME_MAX];
        if (!ws_spool_name_of(de->d_name, suffix, name, sizeof name))
            continue;
        file_entry *e = find_file(a, name, 1);
        if (e)
            e->seen = 1;
    }
    closedir(d);
}

/* 1 if name needs archiving: it exists and this agent has not acknowledged this inode. */
static int needs_work(agent *a, file_entry *e)
{
    if (e->acked)
        return 0;
    char path[PATH_MAX + WS_WAL_NAME_MAX];
    snprintf(path, sizeof path, "%s/%s", a->sp->wal_dir, e->name);
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    ws_spool_ack ack;
    if (ws_spool_ack_read(a->sp, e->name, &ack) == 0 && ws_spool_ack_valid(&ack, a->set_id, &st)) {
        e->acked = 1;
        return 0;
    }
    return 1;
}

static void scan(agent *a)
{
    if (a->rt->stopping)
        return;
    for (int i = 0; i < a->nfiles; i++)
        a->files[i].seen = 0;
    collect(a, a->sp->status_dir, ".ready");
    collect(a, a->sp->dir, ".req");
    if (a->rt->stopping) {
        ws_agent_settle(a->rt, 0);
        return;
    }
    /* forget files PostgreSQL is done with */
    int k = 0;
    for (int i = 0; i < a->nfiles; i++)
        if (a->files[i].seen || a->files[i].busy)
            a->files[k++] = a->files[i];
    a->nfiles = k;

    double now = ws_now();
    file_entry **todo = malloc((size_t)(a->nfiles ? a->nfiles : 1) * sizeof *todo);
    if (!todo)
        return;
    int ntodo = 0;
    for (int i = 0; i < a->nfiles; i++) {
        file_entry *e = &a->files[i];
        if (e->busy || !needs_work(a, e)) {
            if (e->acked && !e->busy) {
                char req[PATH_MAX];
                ws_spool_path(a->sp, e->name, ".req", req, sizeof req);
                unlink(req);
            }
            continue;
        }
        if (now < e->next_try)
            continue;
        todo[ntodo++] = e;
    }
    qsort(todo, (size_t)ntodo, sizeof *todo, ready_cmp);
    int next = 0;
    for (int i = 0; i < a->rt->nslots && next < ntodo; i++)
        if (!a->slots[i].busy)
            start_job(a, &a->slots[i], todo[next++]);
    free(todo);
}

/* ---- housekeeping ---- */

/* Acknowledgements, errors and requests for files PostgreSQL has recycled or removed. */
static void clean_spool(agent *a)
{
    DIR *d = opendir(a->sp->dir);
    if (!d)
        return;
    struct dirent *de;
    static const char *suffixes[] = {".ack", ".error", ".req"};
    while ((de = readdir(d))) {
        for (size_t i = 0; i < 3; i++) {
            char name[WS_WAL_NAME_MAX], path[PATH_MAX + WS_WAL_NAME_MAX];
            if (!ws_spool_name_of(de->d_name, suffixes[i], name, sizeof name))
                continue;
            snprintf(path, sizeof path, "%s/%s", a->sp->wal_dir, name);
            if (access(path, F_OK) == 0 || errno != ENOENT)
                continue;
            file_entry *e = find_file(a, name, 0);
            if (e && e->busy)
                continue;
            snprintf(path, sizeof path, "%s/%s", a->sp->dir, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* On the pool: walship.repo of every repository, hashed. A repository replaced under a
 * running agent (wiped and re-created) must not be written through its cached identity
 * nor keep its acknowledgements: the agent stops and the next push starts a fresh one. */
static void check_work(uv_work_t *w)
{
    agent *a = w->data;
    for (int i = 0; i < a->vset->n; i++) {
        char *text = NULL;
        size_t len;
        ws_error err;
        a->vok[i] = 1;
        if (ws_storage_get_small(ws_repo_storage(a->vset->repos[i]), WS_REPO_ROOT_KEY, 65536, &text,
                                 &len, &err) == 0) {
            unsigned char d[32];
            ws_sha256(text, len, d);
            ws_sha256_hex(d, a->vroot[i]);
        } else if (err.code == WS_ENOENT) {
            snprintf(a->vroot[i], sizeof a->vroot[i], "absent");
        } else {
            a->vok[i] = 0; /* unreachable: judged at the next check */
        }
        free(text);
    }
}

static void check_done(uv_work_t *w, int status)
{
    agent *a = w->data;
    a->rt->side--;
    a->vrunning = 0;
    for (int i = 0; status == 0 && i < a->vset->n; i++) {
        if (!a->vok[i])
            continue;
        int absent = strcmp(a->vroot[i], "absent") == 0;
        if (a->root[i][0] && strcmp(a->root[i], "absent") != 0 && strcmp(a->root[i], a->vroot[i]))
            if (!a->rt->stopping) {
                ws_log_warn("the repository %s was %s under the agent; restarting it",
                            ws_repo_describe(a->vset->repos[i]), absent ? "emptied" : "replaced");
                a->rt->stopping = 1;
            }
        memcpy(a->root[i], a->vroot[i], sizeof a->root[i]);
    }
    ws_agent_settle(a->rt, 0);
}

static void periodic_checks(agent *a, double now)
{
    a->last_check = now;
    if (ws_agent_lock_lost(a->rt))
        return;
    ws_spool_state st;
    if (ws_spool_state_read(a->sp, &st) < 0 || st.pid != (long)getpid() ||
        strcmp(st.set_id, a->set_id) != 0) {
        ws_spool_state mine = {(long)getpid(), "", ""};
        snprintf(mine.config_id, sizeof mine.config_id, "%s", a->sp->config_id);
        snprintf(mine.set_id, sizeof mine.set_id, "%s", a->set_id);
        ws_error err;
        if (ws_spool_state_write(a->sp, &mine, &err) < 0)
            ws_log_err(WS_LOG_WARN, &err);
    }
    if (!a->vrunning) {
        a->vrunning = 1;
        a->rt->side++;
        a->vwork.data = a;
        if (uv_queue_work(&a->rt->l.loop, &a->vwork, check_work, check_done) != 0) {
            a->rt->side--;
            a->vrunning = 0;
        }
    }
}

/* A push ran since the last look (it touches push.seen while it waits): a live client. */
static void note_requests(agent *a, double now)
{
    char path[PATH_MAX];
    struct stat st;
    ws_spool_path(a->sp, "push.seen", "", path, sizeof path);
    if (stat(path, &st) < 0)
        return;
    if (st.st_mtim.tv_sec != a->seen_mtime.tv_sec || st.st_mtim.tv_nsec != a->seen_mtime.tv_nsec) {
        a->seen_mtime = st.st_mtim;
        a->rt->last_work = now;
    }
}

/* ---- catch-up repositories (repoN-mode = catch-up) ----
 *
 * A round on the pool: for each catch-up repository, the backlog by listing (the WAL objects
 * the source, the first sync repository, holds and it lacks: walship/repo/catchup.h), then
 * copies oldest first, each read back verified from the source, until the backlog is done,
 * CATCHUP_BUDGET_S has passed, the agent stops or a copy fails (the repository is down: its
 * backlog grows until the next round). Push never waits for it. */

/* The agent is stopping: set on a tick, and seen through the runtime's abort of every
 * transfer (ws_http_abort_all), which the job thread can read safely. */
static int catchup_stopping(agent *a)
{
    return atomic_load(&a->cstop) || ws_http_aborted();
}

static void catchup_work(uv_work_t *w)
{
    agent *a = w->data;
    double t0 = ws_now();
    ws_repo *src = a->crepos[a->source];
    for (int i = 0; i < a->ncrepos && !catchup_stopping(a); i++) {
        if (!a->catchup[i])
            continue;
        catchup_repo *c = &a->cr[i];
        ws_repo *dst = a->crepos[i];
        ws_catchup_backlog b;
        ws_error err;
        ws_error_clear(&err);
        ws_repo_identity sid;
        int rc = ws_repo_identity_get(src, &sid, &err);
        if (rc == 0)
            rc = ws_repo_identity_ensure(dst, &sid, &err); /* an empty one gets the source's */
        if (rc == 0)
            rc = ws_catchup_backlog_of(src, dst, &b, &err);
        if (rc < 0) {
            c->failing = 1;
            snprintf(c->error, sizeof c->error, "%s", err.msg);
            /* down: what the source holds after the newest segment seen there, at least */
            ws_error e2;
            if (ws_catchup_backlog_after(src, c->newest, &b, &e2) == 0) {
                c->known = 1;
                c->files = (uint64_t)b.n;
                c->bytes = b.bytes;
                ws_catchup_backlog_free(&b);
            }
            continue;
        }
        c->known = 1;
        c->files = (uint64_t)b.n;
        c->bytes = b.bytes;
        if (strcmp(b.dst_newest, c->newest) > 0)
            snprintf(c->newest, sizeof c->newest, "%s", b.dst_newest);
        c->failing = 0;
        c->error[0] = '\0';
        for (int k = 0; k < b.n && !catchup_stopping(a); k++) {
            if (ws_now() - t0 > CATCHUP_BUDGET_S)
                break;
            int stored = 0;
            ws_error_clear(&err);
            if (ws_repo_obj_copy(src, dst, b.v[k].key, a->opts.level, &stored, &err) < 0) {
                c->failing = 1;
                snprintf(c->error, sizeof c->error, "%s: %s", b.v[k].key, err.msg);
                break;
            }
            c->files--;
            c->bytes -= b.v[k].size < c->bytes ? b.v[k].size : c->bytes;
            if (strncmp(b.v[k].key, WS_KEY_WAL_PREFIX, strlen(WS_KEY_WAL_PREFIX)) == 0 &&
                strncmp(b.v[k].key, WS_KEY_HISTORY_PREFIX, strlen(WS_KEY_HISTORY_PREFIX)) != 0 &&
                strcmp(b.v[k].key, c->newest) > 0)
                snprintf(c->newest, sizeof c->newest, "%s", b.v[k].key);
            if (stored)
                c->copied++;
        }
        ws_catchup_backlog_free(&b);
    }
}

static void catchup_done(uv_work_t *w, int status)
{
    agent *a = w->data;
    a->rt->side--;
    a->crunning = 0;
    double now = ws_now();
    int failing = 0;
    uint64_t left = 0, copied = 0;
    for (int i = 0; status == 0 && i < a->ncrepos; i++) {
        if (!a->catchup[i])
            continue;
        catchup_repo *c = &a->cr[i], *was = &a->shown[i];
        copied += c->copied - was->copied;
        if (c->failing && !was->failing)
            ws_log_warn("catch-up repository %s is behind (%" PRIu64 " file(s), %.1f MiB): %s; "
                        "archiving goes on into the sync repositories",
                        ws_repo_describe(a->crepos[i]), c->files, ws_mib(c->bytes), c->error);
        else if (!c->failing && was->failing)
            ws_log_info("catch-up repository %s is reachable again",
                        ws_repo_describe(a->crepos[i]));
        if (c->failing)
            failing = 1;
        left += c->files;
        *was = *c;
    }
    a->mdirty = 1;
    if (copied) {
        ws_log_debug("catch-up: %" PRIu64 " file(s) copied, %" PRIu64 " left", copied, left);
        a->rt->last_work = now; /* draining a backlog is work: the agent stays */
    }
    if (failing) {
        a->cfailures++;
        double b = ws_agent_backoff(a->cfailures) * 3;
        a->cnext = now + (b > CATCHUP_BACKOFF_S ? CATCHUP_BACKOFF_S : b);
    } else {
        a->cfailures = 0;
        a->cnext = now + (left ? 0 : CATCHUP_IDLE_S);
    }
    ws_agent_settle(a->rt, 0);
}

static void catchup_maybe(agent *a, double now)
{
    if (!a->ncatchup || a->crunning || a->rt->stopping)
        return;
    if (now < a->cnext && !(a->cdirty && !a->cfailures && now - a->cstarted >= CATCHUP_MIN_S))
        return;
    a->cdirty = 0;
    a->crunning = 1;
    a->cstarted = now;
    a->rt->side++;
    a->cwork.data = a;
    if (uv_queue_work(&a->rt->l.loop, &a->cwork, catchup_work, catchup_done) != 0) {
        a->rt->side--;
        a->crunning = 0;
    }
}

/* ---- archive failures: a notification per notify-interval, the agent's metrics file ---- */

static void notify_work(uv_work_t *w)
{
    agent *a = w->data;
    ws_ops_result r;
    memset(&r, 0, sizeof r);
    r.job = "push";
    r.ok = 0;
    r.started = r.finished = ws_ops_wallclock();
    r.summary = a->nsummary;
    char count[32];
    snprintf(count, sizeof count, "%" PRIu64, a->nfailures);
    ws_ops_field_add(&r, "failures", count, 1);
    ws_error err;
    ws_error_clear(&err);
    if (ws_notify_send(a->rt->cfg, &r, &err) < 0) {
        ws_error_prefix(&err, "cannot notify of archive failures");
        ws_log_err(WS_LOG_WARN, &err);
    }
}

static void notify_done(uv_work_t *w, int status)
{
    (void)status;
    agent *a = w->data;
    a->rt->side--;
    a->nrunning = 0;
    ws_agent_settle(a->rt, 0);
}

/* At most one notification per notify-interval, counting the failures since the last one;
 * sent on the pool (bounded by notify-timeout), never holding up a job. */
static void notify_maybe(agent *a)
{
    if (!a->failures_unsent || a->nrunning || a->rt->stopping ||
        !ws_config_get(a->rt->cfg, "notify-url"))
        return;
    double now = ws_ops_wallclock();
    if (!a->last_notify) { /* an earlier agent's, so that a restart does not notify again */
        char buf[64];
        if (ws_spool_file_read(a->sp, "notify.last", buf, sizeof buf, NULL) == 0)
            a->last_notify = strtod(buf, NULL);
    }
    if (a->last_notify && now - a->last_notify < a->notify_interval)
        return;
    char stamp[64];
    ws_error werr;
    snprintf(stamp, sizeof stamp, "%.3f\n", now);
    if (ws_spool_file_write(a->sp, "notify.last", stamp, &werr) < 0)
        ws_log_err(WS_LOG_WARN, &werr);
    snprintf(a->nsummary, sizeof a->nsummary,
             "%" PRIu64 " archive failure(s) in %s since %s; the last: %s", a->failures_unsent,
             a->sp->wal_dir, a->last_notify ? "the last notice" : "the agent started",
             a->last_error);
    a->nfailures = a->failures_unsent;
    a->failures_unsent = 0;
    a->last_notify = now;
    a->nrunning = 1;
    a->rt->side++;
    a->nwork.data = a;
    if (uv_queue_work(&a->rt->l.loop, &a->nwork, notify_work, notify_done) != 0) {
        a->rt->side--;
        a->nrunning = 0;
    }
}

static void metrics_label(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* metrics-file set: the agent's own textfile beside it (walship-push.prom for walship.prom):
 * written whole (temporary file, rename) on the loop thread, at most every METRICS_EVERY_S
 * and only after a change. Small, no repository is read: the numbers the agent has. */
static void metrics_maybe(agent *a, double now, int force)
{
    if (!a->metrics_path[0] || (!a->mdirty && !force) ||
        (!force && now - a->last_metrics < METRICS_EVERY_S))
        return;
    a->mdirty = 0;
    a->last_metrics = now;
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", a->metrics_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        if (!a->metrics_warned++)
            ws_log_warn("cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f,
            "# HELP walship_push_failures_total files the push agent failed to archive (each "
            "try)\n# TYPE walship_push_failures_total counter\n"
            "walship_push_failures_total %" PRIu64 "\n",
            a->failures_total);
    fprintf(f,
            "# HELP walship_push_last_failure_timestamp_seconds when the push agent last failed "
            "to archive a file (0: never)\n"
            "# TYPE walship_push_last_failure_timestamp_seconds gauge\n"
            "walship_push_last_failure_timestamp_seconds %.3f\n",
            a->last_failure);
    fprintf(f,
            "# HELP walship_push_last_success_timestamp_seconds when the push agent last "
            "archived a file (0: not yet)\n"
            "# TYPE walship_push_last_success_timestamp_seconds gauge\n"
            "walship_push_last_success_timestamp_seconds %.3f\n",
            a->last_success);
    if (a->ncatchup) {
        static const char *fam[2][2] = {
            {"walship_catchup_backlog_files", "WAL files the catch-up repository lacks"},
            {"walship_catchup_backlog_bytes", "stored bytes of the WAL the catch-up repository "
                                              "lacks"}};
        for (int k = 0; k < 2; k++) {
            fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", fam[k][0], fam[k][1], fam[k][0]);
            for (int i = 0; i < a->ncrepos; i++) {
                if (!a->catchup[i] || !a->shown[i].known)
                    continue;
                fprintf(f, "%s{repo=", fam[k][0]);
                metrics_label(f, ws_repo_describe(a->crepos[i]));
                fprintf(f, "} %" PRIu64 "\n", k ? a->shown[i].bytes : a->shown[i].files);
            }
        }
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || chmod(tmp, 0644) < 0 || rename(tmp, a->metrics_path) < 0) {
        if (!a->metrics_warned++)
            ws_log_warn("cannot write %s: %s", a->metrics_path, strerror(errno));
        unlink(tmp);
    }
}

/* ---- the agent's part of the runtime (ws_agent_ops) ---- */

static void on_tick(ws_agent *rt, double now)
{
    agent *a = rt->job;
    note_requests(a, now);
    if (now - a->last_check >= CHECK_EVERY_S)
        periodic_checks(a, now);
    if (!rt->stopping && now - a->last_clean >= CLEAN_EVERY_S) {
        a->last_clean = now;
        clean_spool(a);
    }
    scan(a);
    catchup_maybe(a, now);
    notify_maybe(a);
    metrics_maybe(a, now, 0);
    if (rt->stopping)
        atomic_store(&a->cstop, 1);
}

static void on_kick(ws_agent *rt)
{
    scan(rt->job);
}

static int wants(const char *filename)
{
    return strstr(filename, ".ready") != NULL;
}

static void on_idle(ws_agent *rt)
{
    clean_spool(rt->job);
    metrics_maybe(rt->job, ws_now(), 1);
}

/* ---- start and stop ---- */

static int setup(ws_agent *rt, ws_error *err)
{
    agent *a = rt->job;
    a->rt = rt;
    long parallel;
    if (ws_push_opts_get(rt->cfg, &a->opts, err) < 0 ||
        ws_config_get_long(rt->cfg, "push-parallel", 1, 32, &parallel, err) < 0 ||
        ws_config_get_seconds(rt->cfg, "agent-idle-timeout", &rt->idle_timeout, err) < 0 ||
        ws_config_get_seconds(rt->cfg, "notify-interval", &a->notify_interval, err) < 0)
        return -1;
    if ((a->source = ws_repo_modes(rt->cfg, a->catchup, err)) < 0)
        return -1;
    for (int i = 0; i < ws_config_repo_count(rt->cfg) && i < WS_CONFIG_MAX_REPOS; i++)
        a->ncatchup += a->catchup[i];
    /* the agent's metrics beside metrics-file: walship.prom -> walship-push.prom */
    const char *mf = ws_config_get(rt->cfg, "metrics-file");
    if (mf && *mf) {
        size_t l = strlen(mf);
        if (l > 5 && strcmp(mf + l - 5, ".prom") == 0)
            snprintf(a->metrics_path, sizeof a->metrics_path, "%.*s-push.prom", (int)(l - 5), mf);
        else
            snprintf(a->metrics_path, sizeof a->metrics_path, "%s.push.prom", mf);
    }
    rt->nslots = (int)parallel;
    rt->watch_dir = a->sp->status_dir;
    a->slots = calloc((size_t)rt->nslots, sizeof *a->slots);
    if (!a->slots)
        return ws_error_oom(err);

    unsigned char r[32];
    char nonce[65], both[140];
    if (ws_spool_random(r, sizeof r, err) < 0)
        return -1;
    ws_sha256_hex(r, nonce);
    snprintf(both, sizeof both, "%s %s", a->sp->config_id, nonce);
    unsigned char d[32];
    ws_sha256(both, strlen(both), d);
    ws_sha256_hex(d, a->set_id);
    return 0;
}

static int start(ws_agent *rt, ws_error *err)
{
    (void)err;
    agent *a = rt->job;
    for (int i = 0; i < rt->nslots; i++) {
        slot *s = &a->slots[i];
        s->a = a;
        s->set = &rt->sets[i];
        for (int k = 0; k < s->set->n && k < WS_CONFIG_MAX_REPOS; k++)
            if (!a->catchup[k])
                s->sync[s->nsync++] = s->set->repos[k];
    }
    if (a->ncatchup && ws_cmd_open_repos(rt->cfg, &a->crepos, &a->ncrepos, err) < 0)
        return -1;
    a->cdirty = 1; /* the first round at once: the backlog left by the last agent */
    a->vset = &rt->sets[rt->nslots];
    double now = ws_now();
    a->last_clean = now;
    periodic_checks(a, now); /* writes agent.state: from here on push trusts this agent */
    ws_spool_error_remove(a->sp, NULL);
    ws_log_debug("agent %ld started on %s (%d in parallel)", (long)getpid(), a->sp->wal_dir,
                 rt->nslots);
    clean_spool(a);
    scan(a);
    return 0;
}

static const ws_agent_ops push_ops = {
    .kind = "push",
    .comm = "walship push",
    .name = "the agent",
    .jobs = "file(s)",
    .tick_ms = TICK_MS,
    .kick_ms = 2, /* batch a burst of events */
    .setup = setup,
    .start = start,
    .tick = on_tick,
    .kick = on_kick,
    .wants = wants,
    .idle = on_idle,
};

int ws_agent_main(const ws_config *cfg, const ws_spool *sp)
{
    agent a;
    memset(&a, 0, sizeof a);
    a.sp = sp;
    int code = ws_agent_serve(cfg, sp, &push_ops, &a);
    if (a.crepos)
        ws_cmd_close_repos(a.crepos, a.ncrepos);
    free(a.slots);
    free(a.files);
    return code;
}
