/*
 * ops.h — the operations commands (issue 15) and what other jobs call to be watched:
 *
 *   verify.c   `walship verify`: every object read and checked as restore and fetch would,
 *              WAL continuity per timeline, each backup's WAL (docs/verify.md)
 *   metrics.c  `walship metrics` and metrics-file (Prometheus text, docs/metrics.md)
 *   notify.c   notify-url: a JSON POST with the result of a job (docs/notify.md)
 *   check.c    `walship check`: the running cluster archives into every repository now
 *   drill.c    `walship drill`: a backup restored, started, queried and removed; its RTO
 *   report.c   the end of a job: metrics-file rewritten, notification sent
 *   json.c     small output helpers shared by the commands
 *
 * Nothing here ever fails the job it reports on: ws_ops_report logs what it could not do as a
 * warning and returns.
 *
 * Ownership: every string a ws_ops_result holds is borrowed for the duration of the call.
 */
#ifndef WS_OPS_H
#define WS_OPS_H

#include <stdint.h>
#include <stdio.h>

#include "walship/config.h"
#include "walship/error.h"

int ws_cmd_verify(const ws_config *cfg);
int ws_cmd_metrics(const ws_config *cfg);
int ws_cmd_check(const ws_config *cfg);
int ws_cmd_drill(const ws_config *cfg);

/* log-timestamps (on | off): when unset, on for verify, check, drill and metrics (run by cron
 * and timers), off for the others (push and fetch write into PostgreSQL's log, which stamps
 * its lines; basebackup's timer sets it in contrib/). -1 with WS_ECONFIG for a bad value. */
int ws_ops_log_setup(const ws_config *cfg, const char *command, ws_error *err);

/* ---- a job's result, for metrics-file and notifications ---- */

#define WS_OPS_FIELDS_MAX 12

typedef struct ws_ops_field {
    const char *key;   /* [a-z_]+ */
    const char *value; /* text, or a number when num */
    int num;
} ws_ops_field;

typedef struct ws_ops_result {
    const char *job; /* "basebackup", "verify", "check", "drill", "expire" */
    int ok;
    double started, finished; /* seconds since the epoch (ws_ops_wallclock) */
    const char *summary;      /* one line: what happened */
    ws_ops_field fields[WS_OPS_FIELDS_MAX];
    int nfields;
} ws_ops_result;

/* Seconds since the epoch, with fractions. */
double ws_ops_wallclock(void);
/* Adds a field (ignored when full). */
void ws_ops_field_add(ws_ops_result *r, const char *key, const char *value, int num);

/* The end of a job: rewrites metrics-file when set (repository metrics plus the last result of
 * every job), and posts to notify-url when set and notify-on asks for this result. Failures
 * are logged as warnings; the job's exit code never depends on them. */
void ws_ops_report(const ws_config *cfg, const ws_ops_result *res);
/* The settings ws_ops_report will use (notify-url's scheme, notify-on, notify-timeout), checked
 * before a job starts: WS_ECONFIG naming the bad one (and of notify-url, its host only). */
int ws_ops_config_check(const ws_config *cfg, ws_error *err);

/* ---- metrics (metrics.c) ---- */

/* Writes the Prometheus text exposition of every configured repository into f, followed by the
 * last result of each job as recorded in metrics-file (when set), with res (may be NULL) in
 * place of its job's previous one. Repository failures are metrics (walship_repo_up 0), not
 * errors; -1 only when f cannot be written. */
int ws_metrics_write(const ws_config *cfg, const ws_ops_result *res, FILE *f, ws_error *err);
/* Rewrites metrics-file atomically (temporary file, fsync, rename; mode 0644 so that
 * node_exporter can read it) with ws_metrics_write's text. 0 when metrics-file is not set. */
int ws_metrics_file_update(const ws_config *cfg, const ws_ops_result *res, ws_error *err);

/* ---- notifications (notify.c) ---- */

/* Posts res as JSON ({"text": ..., "job": ..., "ok": ..., fields}) to notify-url, bounded by
 * notify-timeout. 0 when sent (2xx) or not configured / not wanted (notify-on = failure and
 * res->ok); -1 with err (naming the host only, never the URL) otherwise. */
int ws_notify_send(const ws_config *cfg, const ws_ops_result *res, ws_error *err);

/* ---- output helpers (json.c) ---- */

/* s as a JSON string, quotes included. */
void ws_ops_json_str(FILE *f, const char *s);
/* "1.5 GiB" into out. */
void ws_ops_human_bytes(uint64_t n, char out[32]);

#endif
