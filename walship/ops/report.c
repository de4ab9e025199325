/* report.c — the end of a job: metrics-file and notify-url (ops.h). Never fails the job. */
#include "walship/log.h"
#include "walship/ops/ops.h"

void ws_ops_report(const ws_config *cfg, const ws_ops_result *res)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_metrics_file_update(cfg, res, &err) < 0)
        ws_log_warn("could not update metrics-file: %s", err.msg);
    ws_error_clear(&err);
    if (ws_notify_send(cfg, res, &err) < 0)
        ws_log_warn("%s (the %s result stands)", err.msg, res->job);
}
