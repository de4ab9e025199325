/*
 * prefetch.c — the prefetch agent: one per prefetch spool, started by fetch, detached.
 *
 * fetch writes the segment recovery asked for last into fetch.want. The agent works out the
 * next fetch-prefetch segments recovery will ask for — along the timeline it will follow,
 * read from the history files in the repository — and downloads them, fetch-parallel at once,
 * as jobs on the libuv thread pool. Each job uses fetch's verified reader (object header,
 * length, SHA-256, the page header against the name, the repository's system identifier)
 * into NAME.tmp, writes the proof NAME.ok and only then renames NAME.tmp to NAME, where fetch
 * finds it. The storage drivers are synchronous and not thread-safe, so every job slot, and
 * the planning job, owns its own set of open repositories, as in the push agent.
 *
 * The spool holds at most the fetch-prefetch segments ahead of the last request, plus the
 * downloads in flight: whatever else is there (segments recovery has passed, segments of a
 * timeline it does not follow, files without a valid proof) is removed. Absence in the
 * repository is remembered for ABSENT_RETRY_S only, and segments after an absent one wait
 * for it, so that an agent at the end of the archive asks for one object every few seconds.
 *
 * The timeline recovery will follow is the planner's (plan.h), made on the pool with a
 * set of repositories of its own. The lifecycle (lock, title, idle timeout, postmaster
 * watch, signals) is the agents' shared runtime, walship/agent/loop.h.
 */
#include "walship/agent/loop.h"
#include "walship/agent/spool.h"
#include "walship/clock.h"
#include "walship/fetch/plan.h"
#include "walship/fetch/prefetch.h"
#include "walship/fetch/read.h"
#include "walship/log.h"
#include "walship/stage/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define TICK_MS        200
#define SWEEP_EVERY_S  1.0
#define PLAN_MAX_AGE_S 5.0 /* newer timelines are looked for again after this */
#define ABSENT_RETRY_S 2.0 /* an absent segment is asked for again after this */

enum { ST_NONE = 0, ST_BUSY, ST_HAVE, ST_ABSENT, ST_FAILED };
enum { JOB_OK = 0, JOB_ABSENT, JOB_FAILED };

typedef struct pf_agent pf_agent;

typedef struct pf_entry { /* one segment recovery will ask for */
    char name[WS_WAL_NAME_MAX];
    int state;
    int failures;
    double retry_at;
} pf_entry;

typedef struct pf_slot {
    pf_agent *a;
    uv_work_t work;
    const ws_agent_repos *set;
    int busy;
    char name[WS_WAL_NAME_MAX];
    int result;
    int corrupt;
    ws_error err;
} pf_slot;

struct pf_agent {
    ws_agent *rt; /* the runtime: cfg, sp, slots' repositories, inflight, stopping */
    const ws_spool *sp;
    pf_slot *slots;
    long ahead;
    double last_sweep;
    /* the last request */
    int have_want;
    char want[WS_WAL_NAME_MAX];
    uint32_t want_tli;
    uint64_t want_segno; /* valid once seg_size is known */
    struct stat want_st;
    int have_want_st;
    /* the timeline plan: the side job, on the pool with the last set */
    ws_pf_plan plan;
    const ws_agent_repos *pset;
    uv_work_t pwork;
    uint32_t pbase;  /* job input */
    ws_pf_plan pnew; /* job output */
    ws_error perr;
    int pfailed;
    double plan_retry_at;
    int plan_failures; /* in a row */
    /* the segments ahead */
    pf_entry *path;
    int npath;
    int path_dirty; /* a new request or a new plan */
};

static void schedule(pf_agent *a);

static int path_index(const pf_agent *a, const char *name)
{
    for (int i = 0; i < a->npath; i++)
        if (strcmp(a->path[i].name, name) == 0)
            return i;
    return -1;
}

static int slot_busy_with(const pf_agent *a, const char *name)
{
    for (int i = 0; i < a->rt->nslots; i++)
        if (a->slots[i].busy && strcmp(a->slots[i].name, name) == 0)
            return 1;
    return 0;
}

static void remove_segment(const pf_agent *a, const char *name)
{
    char path[PATH_MAX];
    ws_spool_path(a->sp, name, "", path, sizeof path);
    unlink(path);
    ws_spool_path(a->sp, name, ".ok", path, sizeof path);
    unlink(path);
}

/* ---- the plan: which timeline, from the history files ---- */

static void plan_work(uv_work_t *w)
{
    pf_agent *a = w->data;
    a->pfailed = ws_pf_plan_make(a->pset->repos, a->pset->n, a->pbase, &a->pnew, &a->perr) < 0;
}

static void plan_done(uv_work_t *w, int status)
{
    pf_agent *a = w->data;
    a->rt->side = 0;
    double now = ws_now();
    if (status == 0 && a->pnew.valid) {
        ws_pf_plan_free(&a->plan);
        a->plan = a->pnew;
        a->plan.at = now;
        memset(&a->pnew, 0, sizeof a->pnew);
        if (!a->pfailed)
            a->plan_failures = 0;
        a->path_dirty = 1;
        ws_log_debug("timeline plan from %08" PRIX32 ": %d newer timeline(s) in the repository",
                     a->plan.base_tli, a->plan.nhist);
    } else {
        ws_pf_plan_free(&a->pnew);
    }
    if (a->pfailed) {
        /* once per outage: fetch reports the outage itself */
        ws_log(a->plan_failures++ ? WS_LOG_DEBUG : WS_LOG_WARN,
               "cannot read the timeline history from the repository (will retry): %s",
               a->perr.msg[0] ? a->perr.msg : "job cancelled");
        a->plan_retry_at = now + 1.0;
        if (a->plan.valid && a->plan.base_tli == a->pbase)
            a->plan.at = now - PLAN_MAX_AGE_S + 1.0; /* partial: look again in a second */
    }
    ws_agent_settle(a->rt, 1);
}

static void start_plan(pf_agent *a)
{
    a->rt->side = 1;
    a->pbase = a->want_tli;
    a->pwork.data = a;
    if (uv_queue_work(&a->rt->l.loop, &a->pwork, plan_work, plan_done) != 0)
        a->rt->side = 0;
}

/* Rebuilds the list of segments ahead of the last request, keeping what is known of them. */
static void rebuild_path(pf_agent *a)
{
    char(*names)[WS_WAL_NAME_MAX] = calloc((size_t)a->ahead, sizeof *names);
    pf_entry *np = calloc((size_t)a->ahead, sizeof *np);
    if (!names || !np || ws_pf_plan_ahead(&a->plan, a->want, a->ahead, names, &a->want_segno) < 0) {
        free(names);
        free(np);
        return;
    }
    for (long i = 0; i < a->ahead; i++) {
        snprintf(np[i].name, sizeof np[i].name, "%s", names[i]);
        int old = path_index(a, np[i].name);
        if (old >= 0)
            np[i] = a->path[old];
    }
    free(names);
    free(a->path);
    a->path = np;
    a->npath = (int)a->ahead;
}

/* ---- the spool: keep exactly the verified segments ahead ---- */

/* 1 if the file name in the spool is a verified download (fetch's own check). */
static int verified(const pf_agent *a, const char *name, const char **why, ws_error *err)
{
    char path[PATH_MAX];
    ws_spool_path(a->sp, name, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "cannot open it";
        return 0;
    }
    struct stat st;
    ws_spool_ack ok;
    ws_wal_name wn;
    int good = 0;
    if (fstat(fd, &st) < 0)
        *why = "cannot stat it";
    else if (ws_spool_ok_read(a->sp, name, &ok) < 0)
        *why = "it has no proof of verification (.ok)";
    else if (!ws_spool_ok_valid(&ok, a->sp->config_id, &st))
        *why = "it is not the file that was verified";
    else if (ws_wal_parse_name(name, &wn, err) < 0)
        *why = err->msg;
    else {
        unsigned char page[WS_WAL_LONG_HEADER_SIZE];
        ssize_t k = pread(fd, page, sizeof page, 0);
        if (k < 0 || ws_wal_check_header(page, (size_t)k, &wn, (uint64_t)st.st_size, NULL, err) < 0)
            *why = k < 0 ? "cannot read it" : err->msg;
        else
            good = 1;
    }
    close(fd);
    return good;
}

static void sweep(pf_agent *a)
{
    a->last_sweep = ws_now();
    DIR *d = opendir(a->sp->dir);
    if (!d) {
        if (errno == ENOENT) {
            ws_log_info("%s is gone; stopping", a->sp->dir);
            a->rt->stopping = 1;
        }
        return;
    }
    char *seen = calloc((size_t)(a->npath ? a->npath : 1), 1);
    struct dirent *de;
    while ((de = readdir(d))) {
        char name[WS_WAL_NAME_MAX], path[PATH_MAX];
        size_t n = strlen(de->d_name);
        ws_wal_name wn;
        ws_error err;
        if (n > 4 && strcmp(de->d_name + n - 4, ".old") == 0) {
            /* the segment a fetch moved out of its way (client.c) */
            snprintf(path, sizeof path, "%s/%s", a->sp->dir, de->d_name);
            unlink(path);
            continue;
        }
        int tmp = ws_spool_name_of(de->d_name, ".tmp", name, sizeof name);
        if (tmp || ws_spool_name_of(de->d_name, ".ok", name, sizeof name)) {
            if (slot_busy_with(a, name))
                continue;
            ws_spool_path(a->sp, name, "", path, sizeof path);
            if (tmp || access(path, F_OK) != 0) {
                /* a download an earlier agent left, a proof without its file */
                snprintf(path, sizeof path, "%s/%s", a->sp->dir, de->d_name);
                unlink(path);
            }
            continue;
        }
        if (ws_wal_parse_name(de->d_name, &wn, &err) < 0 || wn.kind != WS_WAL_SEGMENT ||
            slot_busy_with(a, de->d_name))
            continue;
        int i = path_index(a, de->d_name);
        const char *why = NULL;
        if (i < 0) {
            if (verified(a, de->d_name, &why, &err))
                ws_log_debug("dropped %s from the prefetch spool: not ahead of recovery",
                             de->d_name);
            else
                ws_log_warn("removed %s from the prefetch spool: %s", de->d_name, why);
            remove_segment(a, de->d_name);
            continue;
        }
        if (verified(a, de->d_name, &why, &err)) {
            a->path[i].state = ST_HAVE;
            seen[i] = 1;
        } else {
            ws_log_warn("removed %s from the prefetch spool: %s", de->d_name, why);
            remove_segment(a, de->d_name);
            if (a->path[i].state == ST_HAVE)
                a->path[i].state = ST_NONE;
        }
    }
    closedir(d);
    for (int i = 0; i < a->npath; i++)
        if (a->path[i].state == ST_HAVE && !(seen && seen[i]))
            a->path[i].state = ST_NONE; /* served, or removed by hand: fetch it again */
    free(seen);
}

/* ---- downloads on the thread pool ---- */

static void job_work(uv_work_t *w)
{
    pf_slot *s = w->data;
    const ws_spool *sp = s->a->sp;
    ws_error_clear(&s->err);
    s->result = JOB_FAILED;
    s->corrupt = 0;
    ws_wal_name wn;
    char key[128], tmp[PATH_MAX], path[PATH_MAX];
    if (ws_wal_parse_name(s->name, &wn, &s->err) < 0 || ws_repo_wal_key(&wn, key, sizeof key) < 0)
        return;
    ws_spool_path(sp, s->name, ".tmp", tmp, sizeof tmp);
    ws_spool_path(sp, s->name, "", path, sizeof path);
    unlink(tmp);
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        ws_error_errno(&s->err, WS_EIO, errno, "cannot create %s", tmp);
        return;
    }
    int absent = 0, ok = 0;
    ws_objhdr h;
    for (int i = 0; i < s->set->n && !ok; i++) {
        ws_repo_identity id;
        ws_error e;
        ws_error_clear(&e);
        /* no identity (unmounted, wrong prefix) is an outage, never an absent segment */
        if (ws_repo_identity_require(s->set->repos[i], &id, &e) < 0) {
            if (!s->err.msg[0])
                s->err = e;
            continue;
        }
        if (ws_fetch_read(s->set->repos[i], &wn, key, fd, tmp, id.sysid, &h, &e) == 0) {
            ok = 1;
        } else if (e.code == WS_ENOENT) {
            absent++;
        } else {
            if (e.code == WS_ECORRUPT)
                s->corrupt = 1;
            if (!s->err.msg[0] || e.code == WS_ECORRUPT)
                s->err = e;
        }
    }
    /* No fsync where the kernel has a boot id: the proof carries it, and a file is served
     * only in the boot that wrote it (a crash that loses page-cache bytes is a restart). A
     * process killed mid-way loses nothing the kernel has. Replay then waits for no journal
     * commit per segment, and a segment served and recycled before writeback is never
     * written to disk at all. */
    int synced = ws_spool_boot_id()[0] == '\0';
    struct stat st;
    if (ok && ((synced && fsync(fd) < 0) || fstat(fd, &st) < 0)) {
        ws_error_errno(&s->err, WS_EIO, errno, "cannot fsync %s", tmp);
        ok = 0;
    }
    if (ok) {
        /* the proof first, then the name fetch looks for */
        ws_spool_ack proof;
        char hex[65];
        ws_sha256_hex(h.sha256, hex);
        ws_spool_ok_make(&proof, sp->config_id, hex, &st, synced);
        if (ws_spool_ok_write(sp, s->name, &proof, &s->err) < 0)
            ok = 0;
        else if (rename(tmp, path) < 0) {
            ws_error_errno(&s->err, WS_EIO, errno, "cannot rename %s", tmp);
            ok = 0;
        }
    }
    close(fd);
    if (ok) {
        s->result = JOB_OK;
        return;
    }
    unlink(tmp);
    if (absent == s->set->n)
        s->result = JOB_ABSENT;
}

static void job_done(uv_work_t *w, int status)
{
    pf_slot *s = w->data;
    pf_agent *a = s->a;
    s->busy = 0;
    a->rt->inflight--;
    double now = ws_now();
    int i = path_index(a, s->name);
    pf_entry *e = i >= 0 ? &a->path[i] : NULL;
    if (status != 0) {
        s->result = JOB_FAILED;
        ws_error_set(&s->err, WS_EINTERNAL, "download of %s cancelled", s->name);
    }
    if (s->result == JOB_OK) {
        ws_log_debug("prefetched %s", s->name);
        ws_agent_log_reset(); /* the next failure is news */
        if (!e) {
            remove_segment(a, s->name); /* recovery moved on meanwhile */
        } else {
            e->state = ST_HAVE;
            e->failures = 0;
        }
    } else if (s->result == JOB_ABSENT) {
        ws_log_debug("%s is not in the repository (yet)", s->name);
        if (e) {
            e->state = ST_ABSENT;
            e->retry_at = now + ABSENT_RETRY_S;
        }
    } else {
        if (s->corrupt)
            ws_log_error("%s failed verification and was not kept: %s", s->name, s->err.msg);
        else /* the first failure of a segment; fetch reports an outage itself */
            ws_log(e && e->failures ? WS_LOG_DEBUG : WS_LOG_WARN,
                   "cannot prefetch %s (will retry): %s", s->name, s->err.msg);
        if (e) {
            e->state = ST_FAILED;
            e->failures++;
            e->retry_at = now + ws_agent_backoff(e->failures);
        }
    }
    ws_agent_settle(a->rt, 1);
}

static void start_job(pf_agent *a, pf_slot *s, pf_entry *e)
{
    s->busy = 1;
    e->state = ST_BUSY;
    snprintf(s->name, sizeof s->name, "%s", e->name);
    s->work.data = s;
    a->rt->inflight++;
    if (uv_queue_work(&a->rt->l.loop, &s->work, job_work, job_done) != 0) {
        s->busy = 0;
        e->state = ST_NONE;
        a->rt->inflight--;
    }
}

/* ---- deciding ---- */

/* Reads fetch.want; 1 if it changed (a new request, even for the same segment). */
static int read_want(pf_agent *a)
{
    char text[WS_WAL_NAME_MAX + 8];
    struct stat st;
    if (ws_spool_file_read(a->sp, "fetch.want", text, sizeof text, &st) < 0)
        return 0;
    if (a->have_want_st && st.st_ino == a->want_st.st_ino &&
        st.st_mtim.tv_sec == a->want_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == a->want_st.st_mtim.tv_nsec)
        return 0;
    a->want_st = st;
    a->have_want_st = 1;
    a->rt->last_work = ws_now(); /* fetch ran: recovery is alive */
    text[strcspn(text, "\n")] = '\0';
    ws_wal_name wn;
    ws_error err;
    if (ws_wal_parse_name(text, &wn, &err) < 0 || wn.kind != WS_WAL_SEGMENT)
        return 0;
    if (a->have_want && strcmp(a->want, wn.name) == 0)
        return 0;
    a->have_want = 1;
    snprintf(a->want, sizeof a->want, "%s", wn.name);
    a->want_tli = wn.tli;
    return 1;
}

static void schedule(pf_agent *a)
{
    if (a->rt->stopping)
        return;
    double now = ws_now();
    if (read_want(a))
        a->path_dirty = 1;
    if (!a->have_want)
        return;
    int stale =
        !a->plan.valid || a->plan.base_tli != a->want_tli || now - a->plan.at > PLAN_MAX_AGE_S;
    if (stale && !a->rt->side && now >= a->plan_retry_at)
        start_plan(a);
    if (!a->plan.valid || a->plan.base_tli != a->want_tli)
        return;
    if (a->path_dirty) {
        a->path_dirty = 0;
        rebuild_path(a);
        sweep(a);
    }
    int next_slot = 0;
    for (int i = 0; i < a->npath; i++) {
        pf_entry *e = &a->path[i];
        if (e->state == ST_BUSY || e->state == ST_HAVE)
            continue;
        if (e->state == ST_ABSENT && now < e->retry_at)
            break; /* what follows an absent segment waits for it */
        if (e->state == ST_FAILED && now < e->retry_at)
            continue;
        while (next_slot < a->rt->nslots && a->slots[next_slot].busy)
            next_slot++;
        if (next_slot == a->rt->nslots)
            break;
        start_job(a, &a->slots[next_slot], e);
    }
}

/* ---- the agent's part of the runtime (ws_agent_ops) ---- */

/* Downloads still running long after the abort (a hung file system): their temporary
 * files are removed; the process exits without them. */
static void abandon(ws_agent *rt)
{
    pf_agent *a = rt->job;
    for (int i = 0; i < rt->nslots; i++)
        if (a->slots[i].busy) {
            char tmp[PATH_MAX];
            ws_spool_path(a->sp, a->slots[i].name, ".tmp", tmp, sizeof tmp);
            unlink(tmp);
        }
}

static void on_tick(ws_agent *rt, double now)
{
    pf_agent *a = rt->job;
    ws_agent_lock_lost(rt);
    if (!rt->stopping && now - a->last_sweep >= SWEEP_EVERY_S)
        sweep(a);
    schedule(a);
}

static void on_kick(ws_agent *rt)
{
    schedule(rt->job);
}

static int wants(const char *filename)
{
    return strcmp(filename, "fetch.want") == 0;
}

static int setup(ws_agent *rt, ws_error *err)
{
    pf_agent *a = rt->job;
    a->rt = rt;
    long parallel;
    if (ws_config_get_long(rt->cfg, "fetch-prefetch", 1, 256, &a->ahead, err) < 0 ||
        ws_config_get_long(rt->cfg, "fetch-parallel", 1, 32, &parallel, err) < 0 ||
        ws_config_get_seconds(rt->cfg, "agent-idle-timeout", &rt->idle_timeout, err) < 0)
        return -1;
    rt->nslots = (int)(parallel < a->ahead ? parallel : a->ahead);
    rt->watch_dir = a->sp->dir;
    a->slots = calloc((size_t)rt->nslots, sizeof *a->slots);
    if (!a->slots)
        return ws_error_oom(err);
    /* OpenSSL initialises itself at its first use, allocating that thread's error state; on a
     * pool thread that state outlives the thread's last job and is lost at exit. Its first use
     * here is on this thread (the configuration id no longer hashes with it). */
    unsigned char d[32];
    ws_sha256(a->sp->config_id, strlen(a->sp->config_id), d);
    return 0;
}

static int start(ws_agent *rt, ws_error *err)
{
    pf_agent *a = rt->job;
    for (int i = 0; i < rt->nslots; i++) {
        a->slots[i].a = a;
        a->slots[i].set = &rt->sets[i];
    }
    a->pset = &rt->sets[rt->nslots];
    ws_spool_state mine = {(long)getpid(), "", ""};
    snprintf(mine.config_id, sizeof mine.config_id, "%s", a->sp->config_id);
    snprintf(mine.set_id, sizeof mine.set_id, "%s", a->sp->config_id);
    if (ws_spool_state_write(a->sp, &mine, err) < 0)
        return -1;
    ws_spool_error_remove(a->sp, NULL);
    ws_log_debug("prefetch agent %ld started on %s (%ld ahead, %d in parallel)", (long)getpid(),
                 a->sp->wal_dir, a->ahead, rt->nslots);
    sweep(a);
    schedule(a);
    return 0;
}

/* nothing is ahead any more: leave no segment behind in pg_wal */
static void finish(ws_agent *rt)
{
    pf_agent *a = rt->job;
    a->npath = 0;
    sweep(a);
}

static const ws_agent_ops prefetch_ops = {
    .kind = "prefetch",
    .comm = "walship fetch",
    .name = "the prefetch agent",
    .jobs = "download(s)",
    .tick_ms = TICK_MS,
    .kick_ms = 0,
    .setup = setup,
    .start = start,
    .tick = on_tick,
    .kick = on_kick,
    .wants = wants,
    .abandon = abandon,
    .finish = finish,
};

int ws_prefetch_main(const ws_config *cfg, const ws_spool *sp)
{
    pf_agent a;
    memset(&a, 0, sizeof a);
    a.sp = sp;
    int code = ws_agent_serve(cfg, sp, &prefetch_ops, &a);
    free(a.slots);
    ws_pf_plan_free(&a.plan);
    ws_pf_plan_free(&a.pnew);
    free(a.path);
    return code;
}
