/*
 * metrics.c — `walship metrics` and metrics-file (docs/metrics.md): the Prometheus text
 * exposition of every configured repository, and the last result of each job.
 *
 * The repository metrics are read from the repository itself (one listing of wal/, gap/ and
 * backup/), so any host that can read the repository can export them. The jobs' results
 * (basebackup, verify, check, ...) have no other home than metrics-file: each job rewrites the
 * file with its own result and carries the others' walship_job_* lines over from the file as
 * it was. A lock file beside it (PATH.lock) keeps two jobs from losing each other's line.
 */
#include "walship/repo/keys.h"
#include "walship/repo/catalog.h"
#include "walship/repo/catchup.h"
#include "walship/clock.h"
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/repo/open.h"
#include "walship/storage/storage.h"
#include "walship/fsutil.h"
#include "walship/fetch/prefetch.h"
#include "walship/log.h"
#include "walship/ops/ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- one repository ---- */

typedef struct repo_figures {
    int up;
    uint64_t sysid;
    int backups, incomplete, unreadable;
    const ws_manifest_info *newest;
    uint64_t wal_segments, wal_bytes, wal_objects;
    char newest_wal[WS_WAL_NAME_MAX];
    int64_t newest_wal_mtime;
    uint32_t newest_tli;
    uint64_t newest_segno;
    int gaps;
} repo_figures;

static int wal_cb(void *arg, const char *key, const ws_storage_info *info)
{
    repo_figures *f = arg;
    const char *base = strrchr(key, '/');
    ws_wal_name n;
    ws_error e;
    if (!base || ws_wal_parse_name(base + 1, &n, &e) < 0)
        return 0;
    f->wal_objects++;
    f->wal_bytes += info->size;
    if (n.kind != WS_WAL_SEGMENT)
        return 0;
    f->wal_segments++;
    /* names sort by timeline, then position */
    if (strcmp(n.name, f->newest_wal) > 0) {
        snprintf(f->newest_wal, sizeof f->newest_wal, "%s", n.name);
        f->newest_wal_mtime = info->mtime;
    }
    return 0;
}

static void label(FILE *f, const char *v)
{
    fputc('"', f);
    for (const char *c = v; *c; c++) {
        if (*c == '\\' || *c == '"')
            fprintf(f, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", f);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

typedef struct family {
    const char *name, *type, *help;
} family;

static const family repo_families[] = {
    {"walship_repo_up", "gauge", "1 if the repository's walship.repo could be read, else 0"},
    {"walship_backups", "gauge", "complete backups (with a manifest) in the repository"},
    {"walship_backups_incomplete", "gauge", "backups started but never completed"},
    {"walship_backups_unreadable", "gauge", "backups whose manifest or directory cannot be read"},
    {"walship_backup_newest_completion_timestamp_seconds", "gauge",
     "when the newest complete backup stopped (seconds since the epoch)"},
    {"walship_backup_newest_size_bytes", "gauge", "file bytes of the newest complete backup"},
    {"walship_backup_newest_stored_bytes", "gauge",
     "bytes the newest complete backup occupies in the repository"},
    {"walship_backup_newest_duration_seconds", "gauge", "how long the newest complete backup took"},
    {"walship_wal_segments", "gauge", "WAL segments stored"},
    {"walship_wal_stored_bytes", "gauge",
     "bytes of every WAL object stored (segments, history, "
     "partial and backup history files)"},
    {"walship_wal_newest_segment_timestamp_seconds", "gauge",
     "when the newest WAL segment (highest timeline and position) was stored"},
    {"walship_wal_newest_timeline", "gauge", "timeline of the newest WAL segment stored"},
    {"walship_wal_newest_segment_number", "gauge",
     "position of the newest WAL segment stored (segment number: start LSN / segment size)"},
    {"walship_wal_gap_records", "gauge",
     "segments push-queue-max dropped (gap records; recovery cannot cross them)"},
};
#define NREPO_FAMILIES (sizeof repo_families / sizeof repo_families[0])

static int figures_value(const repo_figures *r, size_t i, double *v)
{
    const ws_manifest_info *b = r->newest;
    switch (i) {
    case 0:
        *v = r->up;
        return 1;
    case 1:
        *v = r->backups;
        return r->up;
    case 2:
        *v = r->incomplete;
        return r->up;
    case 3:
        *v = r->unreadable;
        return r->up;
    case 4:
        *v = b ? (double)b->stop_time : 0;
        return b != NULL;
    case 5:
        *v = b ? (double)b->original_size : 0;
        return b != NULL;
    case 6:
        *v = b ? (double)b->stored_size : 0;
        return b != NULL;
    case 7:
        *v = b ? (double)(b->stop_time - b->start_time) : 0;
        return b != NULL;
    case 8:
        *v = (double)r->wal_segments;
        return r->up;
    case 9:
        *v = (double)r->wal_bytes;
        return r->up;
    case 10:
        *v = (double)r->newest_wal_mtime;
        return r->up && r->newest_wal[0];
    case 11:
        *v = r->newest_tli;
        return r->up && r->newest_wal[0];
    case 12:
        *v = (double)r->newest_segno;
        return r->up && r->newest_wal[0];
    case 13:
        *v = r->gaps;
        return r->up;
    }
    return 0;
}

/* ---- the jobs' results, carried over from metrics-file ---- */

#define JOB_MAX 16

typedef struct job_line {
    char job[24];
    double last_run, success, duration, last_success;
    int has_last_success;
} job_line;

static const family job_families[] = {
    {"walship_job_last_run_timestamp_seconds", "gauge", "when the job last finished"},
    {"walship_job_last_success", "gauge", "1 if the job's last run succeeded, else 0"},
    {"walship_job_last_duration_seconds", "gauge", "how long the job's last run took"},
    {"walship_job_last_success_timestamp_seconds", "gauge", "when the job last succeeded"},
};

static int job_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static job_line *job_get(job_line *jobs, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(jobs[i].job, name) == 0)
            return &jobs[i];
    if (*n >= JOB_MAX || strlen(name) >= sizeof jobs->job || !job_name_ok(name))
        return NULL;
    job_line *j = &jobs[(*n)++];
    memset(j, 0, sizeof *j);
    snprintf(j->job, sizeof j->job, "%s", name);
    return j;
}

static void jobs_read(const char *path, job_line *jobs, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char metric[96], job[32];
        double v;
        if (sscanf(line, "walship_job_%95[a-z_]{job=\"%31[a-z_-]\"} %lf", metric, job, &v) != 3)
            continue;
        job_line *j = job_get(jobs, n, job);
        if (!j)
            continue;
        if (strcmp(metric, "last_run_timestamp_seconds") == 0)
            j->last_run = v;
        else if (strcmp(metric, "last_success") == 0)
            j->success = v;
        else if (strcmp(metric, "last_duration_seconds") == 0)
            j->duration = v;
        else if (strcmp(metric, "last_success_timestamp_seconds") == 0) {
            j->last_success = v;
            j->has_last_success = 1;
        }
    }
    fclose(f);
}

static void repo_collect(const ws_config *cfg, int i, repo_figures *f, ws_catalog *cat, char *desc,
                         size_t dlen)
{
    ws_storage_config sc;
    ws_repo *r = NULL;
    ws_error e;
    ws_error_clear(&e);
    memset(f, 0, sizeof *f);
    snprintf(desc, dlen, "repo%d", i + 1);
    if (ws_config_storage(cfg, i, &sc, &e) < 0 || ws_repo_open(&sc, &r, &e) < 0) {
        ws_log_warn("metrics: repository %d: %s", i + 1, e.msg);
        return;
    }
    snprintf(desc, dlen, "%s", ws_repo_describe(r));
    ws_repo_identity id;
    if (ws_repo_identity_get(r, &id, &e) < 0) {
        ws_log_warn("metrics: %s", e.msg);
        ws_repo_free(r);
        return;
    }
    f->up = 1;
    f->sysid = id.sysid;
    if (ws_catalog_load(r, cat, &e) == 0) {
        f->backups = cat->n;
        f->incomplete = cat->nincomplete;
        f->unreadable = cat->nunreadable;
        for (int k = 0; k < cat->n; k++)
            if (!f->newest || cat->backups[k].stop_time >= f->newest->stop_time)
                f->newest = &cat->backups[k];
    } else {
        f->up = 0;
        ws_log_warn("metrics: %s", e.msg);
    }
    if (ws_storage_list(ws_repo_storage(r), WS_KEY_WAL_PREFIX, wal_cb, f, &e) < 0) {
        f->up = 0;
        ws_log_warn("metrics: %s", e.msg);
    }
    if (f->newest_wal[0]) {
        ws_wal_name n;
        if (ws_wal_parse_name(f->newest_wal, &n, &e) == 0 &&
            ws_wal_segno(&n, id.seg_size, &f->newest_segno) == 0)
            f->newest_tli = n.tli;
    }
    ws_repo_gap *gaps = NULL;
    int ngaps = 0;
    if (ws_repo_gap_list(r, &gaps, &ngaps, &e) == 0)
        f->gaps = ngaps;
    free(gaps);
    ws_repo_free(r);
}

/* ---- the local cluster (--pgdata): what waits to be archived ---- */

typedef struct local_figures {
    uint64_t ready_files, ready_bytes;
    int64_t oldest_ready_mtime; /* 0: none */
    int64_t last_error;         /* newest *.error / agent.error in the spool; 0: none */
    int have_prefetch;          /* the prefetch spool's counters were read */
    unsigned long long prefetch_hits, prefetch_misses;
} local_figures;

static void scan_local(const char *pgdata, const char *spool, local_figures *lf)
{
    char dir[PATH_MAX], path[PATH_MAX * 2];
    memset(lf, 0, sizeof *lf);
    snprintf(dir, sizeof dir, "%s/pg_wal/archive_status", pgdata);
    DIR *d = opendir(dir);
    struct dirent *e;
    struct stat st;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".ready") != 0)
            continue;
        lf->ready_files++;
        snprintf(path, sizeof path, "%s/pg_wal/%.*s", pgdata, (int)(n - 6), e->d_name);
        if (stat(path, &st) == 0) {
            lf->ready_bytes += (uint64_t)st.st_size;
            if (!lf->oldest_ready_mtime || st.st_mtime < lf->oldest_ready_mtime)
                lf->oldest_ready_mtime = st.st_mtime;
        }
    }
    if (d)
        closedir(d);
    if (spool)
        snprintf(dir, sizeof dir, "%s", spool);
    else
        snprintf(dir, sizeof dir, "%s/pg_wal/walship", pgdata);
    d = opendir(dir);
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".error") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && st.st_mtime > lf->last_error)
            lf->last_error = st.st_mtime;
    }
    if (d)
        closedir(d);
    /* the prefetching fetch's hits and misses (fetch/client.c), in its own spool */
    if (spool)
        snprintf(path, sizeof path, "%s/prefetch/%s", spool, WS_PREFETCH_STATS);
    else
        snprintf(path, sizeof path, "%s/pg_wal/walship-prefetch/%s", pgdata, WS_PREFETCH_STATS);
    FILE *f = fopen(path, "re");
    if (f) {
        lf->have_prefetch =
            fscanf(f, "hits %llu misses %llu", &lf->prefetch_hits, &lf->prefetch_misses) == 2;
        fclose(f);
    }
}

static void write_local(FILE *out, const char *pgdata, const local_figures *lf)
{
    static const family fams[] = {
        {"walship_archive_ready_files", "gauge",
         "WAL files PostgreSQL has marked .ready and "
         "walship has not archived yet"},
        {"walship_archive_ready_bytes", "gauge", "their bytes"},
        {"walship_archive_oldest_ready_timestamp_seconds", "gauge",
         "mtime of the oldest of them (0: none waits)"},
        {"walship_agent_last_error_timestamp_seconds", "gauge",
         "when the async push agent last recorded a failure in its spool (0: none there)"},
    };
    double v[4] = {(double)lf->ready_files, (double)lf->ready_bytes, (double)lf->oldest_ready_mtime,
                   (double)lf->last_error};
    for (int k = 0; k < 4; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s{pgdata=", fams[k].name, fams[k].help,
                fams[k].name, fams[k].type, fams[k].name);
        label(out, pgdata);
        fprintf(out, "} %.17g\n", v[k]);
    }
    if (!lf->have_prefetch)
        return;
    static const family pf[] = {
        {"walship_prefetch_hits_total", "counter",
         "segments the prefetching fetch served from its spool"},
        {"walship_prefetch_misses_total", "counter",
         "segments the prefetching fetch had to download in the foreground"},
    };
    unsigned long long pv[2] = {lf->prefetch_hits, lf->prefetch_misses};
    for (int k = 0; k < 2; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s{pgdata=", pf[k].name, pf[k].help, pf[k].name,
                pf[k].type, pf[k].name);
        label(out, pgdata);
        fprintf(out, "} %llu\n", pv[k]);
    }
}

int ws_metrics_write(const ws_config *cfg, const ws_ops_result *res, FILE *out, ws_error *err)
{
    int n = ws_config_repo_count(cfg);
    repo_figures *figs = calloc((size_t)n + 1, sizeof *figs);
    ws_catalog *cats = calloc((size_t)n + 1, sizeof *cats);
    char(*descs)[512] = calloc((size_t)n + 1, sizeof *descs);
    if (!figs || !cats || !descs) {
        free(figs);
        free(cats);
        free(descs);
        return ws_error_oom(err);
    }
    for (int i = 0; i < n; i++)
        repo_collect(cfg, i, &figs[i], &cats[i], descs[i], sizeof descs[i]);
    for (size_t k = 0; k < NREPO_FAMILIES; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", repo_families[k].name, repo_families[k].help,
                repo_families[k].name, repo_families[k].type);
        for (int i = 0; i < n; i++) {
            double v;
            if (!figures_value(&figs[i], k, &v))
                continue;
            fprintf(out, "%s{repo=", repo_families[k].name);
            label(out, descs[i]);
            fprintf(out, "} %.17g\n", v);
        }
    }
    /* repoN-mode = catch-up: the backlog behind the first sync repository, by listing */
    uint64_t cfiles[WS_CONFIG_MAX_REPOS], cbytes[WS_CONFIG_MAX_REPOS];
    int cknown[WS_CONFIG_MAX_REPOS] = {0}, ncatch = 0;
    for (int i = 0; i < n && i < WS_CONFIG_MAX_REPOS; i++) {
        int src;
        ws_error e;
        ws_error_clear(&e);
        int rc = ws_catchup_backlog_cfg(cfg, i, &src, &cfiles[i], &cbytes[i], &e);
        if (rc == 0)
            cknown[i] = 1, ncatch++;
        else if (rc < 0)
            ws_log_warn("metrics: repository %d's catch-up backlog: %s", i + 1, e.msg);
    }
    for (int k = 0; ncatch && k < 2; k++) {
        const char *name = k ? "walship_catchup_backlog_bytes" : "walship_catchup_backlog_files";
        fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", name,
                k ? "stored bytes of the WAL a catch-up repository lacks (repoN-mode)"
                  : "WAL files a catch-up repository lacks (repoN-mode)",
                name);
        for (int i = 0; i < n && i < WS_CONFIG_MAX_REPOS; i++) {
            if (!cknown[i])
                continue;
            fprintf(out, "%s{repo=", name);
            label(out, descs[i]);
            fprintf(out, "} %" PRIu64 "\n", k ? cbytes[i] : cfiles[i]);
        }
    }
    job_line jobs[JOB_MAX];
    int njobs = 0;
    const char *path = ws_config_get(cfg, "metrics-file");
    if (path)
        jobs_read(path, jobs, &njobs);
    if (res) {
        job_line *j = job_get(jobs, &njobs, res->job);
        if (j) {
            j->last_run = res->finished;
            j->success = res->ok ? 1 : 0;
            j->duration = res->finished - res->started;
            if (res->ok) {
                j->last_success = res->finished;
                j->has_last_success = 1;
            }
        }
    }
    for (size_t k = 0; k < sizeof job_families / sizeof job_families[0]; k++) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", job_families[k].name, job_families[k].help,
                job_families[k].name, job_families[k].type);
        for (int i = 0; i < njobs; i++) {
            double v = k == 0   ? jobs[i].last_run
                       : k == 1 ? jobs[i].success
                       : k == 2 ? jobs[i].duration
                                : jobs[i].last_success;
            if (k == 3 && !jobs[i].has_last_success)
                continue;
            fprintf(out, "%s{job=\"%s\"} %.17g\n", job_families[k].name, jobs[i].job, v);
        }
    }
    const char *pgdata = ws_config_get(cfg, "pgdata");
    if (pgdata && *pgdata) {
        local_figures lf;
        scan_local(pgdata, ws_config_get(cfg, "spool-path"), &lf);
        write_local(out, pgdata, &lf);
    }
    for (int i = 0; i < n; i++)
        ws_catalog_free(&cats[i]);
    free(figs);
    free(cats);
    free(descs);
    if (fflush(out) != 0 || ferror(out))
        return ws_error_errno(err, WS_EIO, errno, "cannot write the metrics");
    return 0;
}

int ws_metrics_file_update(const ws_config *cfg, const ws_ops_result *res, ws_error *err)
{
    const char *path = ws_config_get(cfg, "metrics-file");
    if (!path || !*path)
        return 0;
    char lock[4096], tmp[4096], dir[4096];
    snprintf(lock, sizeof lock, "%s.lock", path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0)
        return ws_error_errno(err, WS_EIO, errno, "metrics-file: cannot open %s", lock);
    flock(lfd, LOCK_EX);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        ws_error_errno(err, WS_EIO, errno, "metrics-file: cannot create %s", tmp);
        if (fd >= 0)
            close(fd);
        goto out;
    }
    fchmod(fd, 0644); /* node_exporter reads it, whatever the umask */
    if (ws_metrics_write(cfg, res, f, err) < 0 || fsync(fd) < 0) {
        if (!err->msg[0])
            ws_error_errno(err, WS_EIO, errno, "metrics-file: cannot write %s", tmp);
        fclose(f);
        unlink(tmp);
        goto out;
    }
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        ws_error_errno(err, WS_EIO, errno, "metrics-file: cannot write %s", path);
        unlink(tmp);
        goto out;
    }
    ws_dirname(path, dir, sizeof dir);
    ws_fsync_dir(dir, err);
    rc = 0;
out:
    close(lfd); /* releases the lock */
    return rc;
}

int ws_cmd_metrics(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0) {
        ws_log_error("usage: walship metrics");
        return WS_EXIT_USAGE;
    }
    if (ws_config_repo_count(cfg) == 0) {
        ws_log_error("no repository configured; HINT: set repo = /path/or/s3://bucket in the "
                     "config file, or pass --repo");
        return WS_EXIT_USAGE;
    }
    if (ws_metrics_write(cfg, NULL, stdout, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    return WS_EXIT_OK;
}
