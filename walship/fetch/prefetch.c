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
 * The timeline: recovery with recovery_target_timeline = latest (PostgreSQL's default)
 * follows the newest timeline whose history contains the current one; from the switch point
 * on — the segment holding it included — it reads the new timeline's segments. The agent
 * probes the repository for the history files of the timelines after the requested
 * segment's (TLI+1, TLI+2, ... up to the first absent, as PostgreSQL does), and follows the
 * newest one that branched off the current lineage at or after the requested segment. A
 * request for an old timeline's segment at or past its switch point shows that recovery
 * stays on that timeline (another recovery_target_timeline): the agent then prefetches
 * along it. A wrong guess costs downloads, never a wrong file: every file is served by name.
 */
#include "walship/agent/life.h"
#include "walship/agent/spool.h"
#include "walship/cmd.h"
#include "walship/fsutil.h"
#include "walship/log.h"
#include "walship/stage/stage.h"
#include "walship/storage/http.h"
#include "walship/timeline.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define TICK_MS          200
#define SWEEP_EVERY_S    1.0
#define PLAN_MAX_AGE_S   5.0 /* newer timelines are looked for again after this */
#define ABSENT_RETRY_S   2.0 /* an absent segment is asked for again after this */
#define BACKOFF_MAX_S    10.0
#define MAX_NEW_TIMELINE 256 /* history files probed past the current timeline, at most */
#define STOP_GRACE_S     5.0 /* after this, jobs that ignored the abort are left behind */

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
    ws_repo **repos;
    int nrepos;
    int busy;
    char name[WS_WAL_NAME_MAX];
    int result;
    int corrupt;
    ws_error err;
} pf_slot;

typedef struct pf_plan {
    int valid;
    uint32_t base_tli; /* the timeline it was made for */
    double at;
    uint32_t seg_size;
    int nhist; /* hist[i] is timeline base_tli + 1 + i */
    ws_tl_history *hist;
} pf_plan;

struct pf_agent {
    const ws_config *cfg;
    const ws_spool *sp;
    ws_agent_loop l;
    int nslots, inflight;
    pf_slot *slots;
    long ahead;
    /* last_work: the last request (fetch.want); failures and retries do not count */
    double idle_timeout, last_work, last_sweep, stop_at;
    ws_agent_pm pm;
    int lockfd;
    int stopping;
    /* the last request */
    int have_want;
    char want[WS_WAL_NAME_MAX];
    uint32_t want_tli;
    uint64_t want_segno; /* valid once seg_size is known */
    struct stat want_st;
    int have_want_st;
    /* the timeline plan, made on the pool with its own repositories */
    pf_plan plan;
    ws_repo **prepos;
    int nprepos;
    uv_work_t pwork;
    int planning;
    uint32_t pbase; /* job input */
    pf_plan pnew;   /* job output */
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
static void maybe_close(pf_agent *a);

/* Stops taking work and aborts the downloads in flight (each job removes its NAME.tmp). */
static void stop(pf_agent *a, const char *why)
{
    if (!a->stopping || !a->stop_at) {
        if (why)
            ws_log_info("%s; stopping (%d download(s) in flight aborted)", why, a->inflight);
        a->stop_at = ws_now();
    }
    a->stopping = 1;
    if (a->inflight || a->planning)
        ws_http_abort_all();
    maybe_close(a);
}

static int path_index(const pf_agent *a, const char *name)
{
    for (int i = 0; i < a->npath; i++)
        if (strcmp(a->path[i].name, name) == 0)
            return i;
    return -1;
}

static int slot_busy_with(const pf_agent *a, const char *name)
{
    for (int i = 0; i < a->nslots; i++)
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

static void plan_free(pf_plan *p)
{
    free(p->hist);
    memset(p, 0, sizeof *p);
}

static void plan_work(uv_work_t *w)
{
    pf_agent *a = w->data;
    pf_plan *p = &a->pnew;
    ws_error_clear(&a->perr);
    a->pfailed = 0;
    memset(p, 0, sizeof *p);
    p->base_tli = a->pbase;
    for (int i = 0; i < a->nprepos && !p->seg_size; i++) {
        ws_repo_identity id;
        ws_error e;
        if (ws_repo_identity_require(a->prepos[i], &id, &e) == 0)
            p->seg_size = id.seg_size;
        else if (!a->perr.msg[0])
            a->perr = e;
    }
    if (!p->seg_size) {
        a->pfailed = 1;
        return;
    }
    for (uint32_t t = a->pbase + 1; t <= a->pbase + MAX_NEW_TIMELINE; t++) {
        ws_tl_history h;
        int found = 0, outage = 0;
        for (int i = 0; i < a->nprepos && !found; i++) {
            ws_error e;
            ws_repo_identity id;
            /* a repository without its identity cannot say a history file is absent */
            if (ws_repo_identity_require(a->prepos[i], &id, &e) < 0) {
                outage = 1;
                a->perr = e;
            } else if (ws_tl_history_load(a->prepos[i], t, &h, &e) == 0)
                found = 1;
            else if (e.code != WS_ENOENT) {
                outage = 1;
                a->perr = e;
            }
        }
        if (!found) {
            /* not there: the newest timeline is known; unreachable: try again soon */
            a->pfailed = outage;
            break;
        }
        ws_tl_history *nh = realloc(p->hist, (size_t)(p->nhist + 1) * sizeof *nh);
        if (!nh) {
            a->pfailed = 1;
            ws_error_oom(&a->perr);
            break;
        }
        p->hist = nh;
        p->hist[p->nhist++] = h;
    }
    p->valid = 1;
}

static void plan_done(uv_work_t *w, int status)
{
    pf_agent *a = w->data;
    a->planning = 0;
    double now = ws_now();
    if (status == 0 && a->pnew.valid) {
        plan_free(&a->plan);
        a->plan = a->pnew;
        a->plan.at = now;
        memset(&a->pnew, 0, sizeof a->pnew);
        if (!a->pfailed)
            a->plan_failures = 0;
        a->path_dirty = 1;
        ws_log_debug("timeline plan from %08" PRIX32 ": %d newer timeline(s) in the repository",
                     a->plan.base_tli, a->plan.nhist);
    } else {
        plan_free(&a->pnew);
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
    if (a->stopping)
        maybe_close(a);
    else
        schedule(a);
}

static void start_plan(pf_agent *a)
{
    a->planning = 1;
    a->pbase = a->want_tli;
    a->pwork.data = a;
    if (uv_queue_work(&a->l.loop, &a->pwork, plan_work, plan_done) != 0)
        a->planning = 0;
}

/* Rebuilds the list of segments ahead of the last request, keeping what is known of them. */
static void rebuild_path(pf_agent *a)
{
    ws_wal_name wn;
    ws_error err;
    uint64_t segno;
    if (ws_wal_parse_name(a->want, &wn, &err) < 0 ||
        ws_wal_segno(&wn, a->plan.seg_size, &segno) < 0)
        return;
    a->want_segno = segno;
    const ws_tl_history *follow =
        ws_tl_choose(a->plan.hist, a->plan.nhist, a->want_tli, segno, a->plan.seg_size);
    pf_entry *np = calloc((size_t)a->ahead, sizeof *np);
    if (!np)
        return;
    for (long i = 0; i < a->ahead; i++) {
        uint64_t s = segno + 1 + (uint64_t)i;
        uint32_t tli = ws_tl_segment_tli(follow, a->want_tli, s, a->plan.seg_size);
        ws_wal_format_segment(np[i].name, tli, s, a->plan.seg_size);
        int old = path_index(a, np[i].name);
        if (old >= 0)
            np[i] = a->path[old];
    }
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

static int has_suffix(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n <= k || strcmp(s + n - k, suffix) != 0)
        return 0;
    *stem = n - k;
    return 1;
}

static void sweep(pf_agent *a)
{
    a->last_sweep = ws_now();
    DIR *d = opendir(a->sp->dir);
    if (!d) {
        if (errno == ENOENT) {
            ws_log_info("%s is gone; stopping", a->sp->dir);
            a->stopping = 1;
        }
        return;
    }
    char *seen = calloc((size_t)(a->npath ? a->npath : 1), 1);
    struct dirent *de;
    while ((de = readdir(d))) {
        char name[WS_WAL_NAME_MAX], path[PATH_MAX];
        size_t stem;
        ws_wal_name wn;
        ws_error err;
        if (has_suffix(de->d_name, ".old", &stem)) {
            /* the segment a fetch moved out of its way (pfclient.c) */
            snprintf(path, sizeof path, "%s/%s", a->sp->dir, de->d_name);
            unlink(path);
            continue;
        }
        if (has_suffix(de->d_name, ".tmp", &stem) || has_suffix(de->d_name, ".ok", &stem)) {
            if (stem >= sizeof name)
                continue;
            memcpy(name, de->d_name, stem);
            name[stem] = '\0';
            if (ws_wal_parse_name(name, &wn, &err) < 0 || slot_busy_with(a, name))
                continue;
            ws_spool_path(a->sp, name, "", path, sizeof path);
            if (de->d_name[stem + 1] == 't' || access(path, F_OK) != 0) {
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
    for (int i = 0; i < s->nrepos && !ok; i++) {
        ws_repo_identity id;
        ws_error e;
        ws_error_clear(&e);
        /* no identity (unmounted, wrong prefix) is an outage, never an absent segment */
        if (ws_repo_identity_require(s->repos[i], &id, &e) < 0) {
            if (!s->err.msg[0])
                s->err = e;
            continue;
        }
        if (ws_fetch_read(s->repos[i], &wn, key, fd, tmp, id.sysid, &h, &e) == 0) {
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
    struct stat st;
    if (ok && (fsync(fd) < 0 || fstat(fd, &st) < 0)) {
        ws_error_errno(&s->err, WS_EIO, errno, "cannot fsync %s", tmp);
        ok = 0;
    }
    if (ok) {
        /* the proof first, then the name fetch looks for */
        ws_spool_ack proof;
        char hex[65];
        ws_sha256_hex(h.sha256, hex);
        ws_spool_ok_make(&proof, sp->config_id, hex, &st);
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
    if (absent == s->nrepos)
        s->result = JOB_ABSENT;
}

static void job_done(uv_work_t *w, int status)
{
    pf_slot *s = w->data;
    pf_agent *a = s->a;
    s->busy = 0;
    a->inflight--;
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
            double b = 0.5;
            for (int k = 1; k < e->failures && b < BACKOFF_MAX_S; k++)
                b *= 2;
            e->retry_at = now + (b > BACKOFF_MAX_S ? BACKOFF_MAX_S : b);
        }
    }
    if (a->stopping)
        maybe_close(a);
    else
        schedule(a);
}

static void start_job(pf_agent *a, pf_slot *s, pf_entry *e)
{
    s->busy = 1;
    e->state = ST_BUSY;
    snprintf(s->name, sizeof s->name, "%s", e->name);
    s->work.data = s;
    a->inflight++;
    if (uv_queue_work(&a->l.loop, &s->work, job_work, job_done) != 0) {
        s->busy = 0;
        e->state = ST_NONE;
        a->inflight--;
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
    a->last_work = ws_now(); /* fetch ran: recovery is alive */
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
    if (a->stopping)
        return;
    double now = ws_now();
    if (read_want(a))
        a->path_dirty = 1;
    if (!a->have_want)
        return;
    int stale =
        !a->plan.valid || a->plan.base_tli != a->want_tli || now - a->plan.at > PLAN_MAX_AGE_S;
    if (stale && !a->planning && now >= a->plan_retry_at)
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
        while (next_slot < a->nslots && a->slots[next_slot].busy)
            next_slot++;
        if (next_slot == a->nslots)
            break;
        start_job(a, &a->slots[next_slot], e);
    }
}

/* Downloads still running long after the abort (a hung file system): their temporary
 * files are removed and the agent exits without them. */
static void abandon(pf_agent *a)
{
    ws_log_warn("%d download(s) still running %g s after the prefetch agent stopped; exiting "
                "without them",
                a->inflight, STOP_GRACE_S);
    for (int i = 0; i < a->nslots; i++)
        if (a->slots[i].busy) {
            char tmp[PATH_MAX];
            ws_spool_path(a->sp, a->slots[i].name, ".tmp", tmp, sizeof tmp);
            unlink(tmp);
        }
    _exit(WS_EXIT_FAIL);
}

static void on_tick(uv_timer_t *t)
{
    pf_agent *a = t->data;
    double now = ws_now();
    if (a->stopping) {
        stop(a, NULL); /* the first time: when, and abort what is in flight */
        if (!a->l.closed && (a->inflight || a->planning) && now - a->stop_at > STOP_GRACE_S)
            abandon(a);
        return;
    }
    if (ws_agent_pm_gone(&a->pm)) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "the postmaster (pid %ld) of %s is gone", a->pm.pid,
                 a->pm.pgdata);
        stop(a, why);
        return;
    }
    if (!ws_spool_lock_current(a->sp, a->lockfd)) {
        ws_log_warn("%s/agent.lock was replaced; stopping", a->sp->dir);
        a->stopping = 1;
    }
    if (!a->stopping && now - a->last_sweep >= SWEEP_EVERY_S)
        sweep(a);
    schedule(a);
    if (!a->stopping && now - a->last_work >= a->idle_timeout) {
        /* whatever is failing: retries nobody asks for do not keep the agent alive */
        ws_log_debug("no request for %g s; exiting", a->idle_timeout);
        stop(a, a->inflight || a->planning ? "no request for agent-idle-timeout" : NULL);
    }
    if (a->stopping)
        stop(a, NULL);
}

static void on_kick(uv_timer_t *t)
{
    schedule(t->data);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    pf_agent *a = h->data;
    if (status < 0 || !filename || strcmp(filename, "fetch.want") == 0)
        ws_agent_loop_kick(&a->l, on_kick, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    char why[32];
    snprintf(why, sizeof why, "signal %d", signum);
    stop(h->data, why);
}

static void maybe_close(pf_agent *a)
{
    if (a->l.closed || a->inflight > 0 || a->planning)
        return;
    ws_agent_loop_close(&a->l);
}

/* ---- start and stop ---- */

static int open_sets(pf_agent *a, ws_error *err)
{
    a->slots = calloc((size_t)a->nslots, sizeof *a->slots);
    if (!a->slots)
        return ws_error_oom(err);
    for (int i = 0; i < a->nslots; i++) {
        a->slots[i].a = a;
        if (ws_cmd_open_repos(a->cfg, &a->slots[i].repos, &a->slots[i].nrepos, err) < 0)
            return -1;
    }
    return ws_cmd_open_repos(a->cfg, &a->prepos, &a->nprepos, err);
}

static void close_sets(pf_agent *a)
{
    for (int i = 0; a->slots && i < a->nslots; i++)
        if (a->slots[i].repos)
            ws_cmd_close_repos(a->slots[i].repos, a->slots[i].nrepos);
    free(a->slots);
    if (a->prepos)
        ws_cmd_close_repos(a->prepos, a->nprepos);
}

static int run(pf_agent *a, ws_error *err)
{
    long parallel;
    if (ws_config_get_long(a->cfg, "fetch-prefetch", 1, 256, &a->ahead, err) < 0 ||
        ws_config_get_long(a->cfg, "fetch-parallel", 1, 32, &parallel, err) < 0 ||
        ws_config_get_seconds(a->cfg, "agent-idle-timeout", &a->idle_timeout, err) < 0)
        return -1;
    a->nslots = (int)(parallel < a->ahead ? parallel : a->ahead);
    /* OpenSSL initialises itself at its first use, allocating that thread's error state; on a
     * pool thread that state outlives the thread's last job and is lost at exit. Its first use
     * here is on this thread (the configuration id no longer hashes with it). */
    unsigned char d[32];
    ws_sha256(a->sp->config_id, strlen(a->sp->config_id), d);
    char pool[16];
    snprintf(pool, sizeof pool, "%d", a->nslots + 4);
    setenv("UV_THREADPOOL_SIZE", pool, 1);
    ws_agent_pm_init(&a->pm, a->sp->wal_dir);
    char title[PATH_MAX + 32];
    snprintf(title, sizeof title, "walship: prefetch agent for %s", a->pm.pgdata);
    ws_agent_set_title(title, "walship fetch");
    ws_agent_log_quiet();
    if (open_sets(a, err) < 0)
        return -1;
    if (ws_agent_loop_init(&a->l, a, a->sp->dir, on_fs_event, on_tick, TICK_MS, on_signal, err) < 0)
        return -1;

    a->last_work = ws_now();
    ws_spool_state mine = {(long)getpid(), "", ""};
    snprintf(mine.config_id, sizeof mine.config_id, "%s", a->sp->config_id);
    snprintf(mine.set_id, sizeof mine.set_id, "%s", a->sp->config_id);
    if (ws_spool_state_write(a->sp, &mine, err) < 0)
        return -1;
    ws_spool_error_remove(a->sp, NULL);
    ws_log_debug("prefetch agent %ld started on %s (%ld ahead, %d in parallel)", (long)getpid(),
                 a->sp->wal_dir, a->ahead, a->nslots);
    sweep(a);
    schedule(a);
    ws_agent_loop_run(&a->l);
    /* nothing is ahead any more: leave no segment behind in pg_wal */
    a->npath = 0;
    sweep(a);
    return 0;
}

int ws_prefetch_main(const ws_config *cfg, const ws_spool *sp)
{
    ws_error err;
    ws_error_clear(&err);
    pf_agent a;
    memset(&a, 0, sizeof a);
    a.cfg = cfg;
    a.sp = sp;
    a.lockfd = ws_spool_lock(sp, &err);
    if (a.lockfd == -2)
        return 0; /* another fetch started one first */
    int rc = a.lockfd < 0 ? -1 : run(&a, &err);
    if (rc < 0)
        ws_agent_report_failure(sp, "the prefetch agent", &err);
    close_sets(&a);
    plan_free(&a.plan);
    plan_free(&a.pnew);
    free(a.path);
    if (a.lockfd >= 0)
        close(a.lockfd);
    return rc < 0 ? (err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL) : WS_EXIT_OK;
}
