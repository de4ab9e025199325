/* report.c — the end of a job: metrics-file and notify-url (ops.h). Never fails the job. */
#include "walship/log.h"
#include "walship/ops/ops.h"

#include <string.h>

int ws_ops_log_setup(const ws_config *cfg, const char *command, ws_error *err)
{
    static const char *stamped[] = {"verify", "check", "drill", "metrics"};
    int on = 0;
    for (size_t i = 0; i < sizeof stamped / sizeof stamped[0]; i++)
        on |= strcmp(command, stamped[i]) == 0;
    if (ws_config_get(cfg, "log-timestamps") &&
        ws_config_get_bool(cfg, "log-timestamps", &on, err) < 0)
        return -1;
    ws_log_set_timestamps(on);
    return 0;
}

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
