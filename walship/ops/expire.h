/*
 * expire.h — `walship expire`, `walship pin`, `walship unpin` (docs/retention.md), and the
 * expire that a successful basebackup runs (expire-auto).
 */
#ifndef WS_OPS_EXPIRE_H
#define WS_OPS_EXPIRE_H

#include <stdint.h>

#include "walship/config.h"
#include "walship/ops/expire_plan.h"
#include "walship/repo/repo.h"

int ws_cmd_expire(const ws_config *cfg);
int ws_cmd_pin(const ws_config *cfg);
int ws_cmd_unpin(const ws_config *cfg);

/* The policy of repository repo (0-based) and whether its tiers use local time (TZ set from
 * retention-timezone); WS_ECONFIG naming the key and its source for a bad value. */
int ws_expire_policy(const ws_config *cfg, int repo, ws_retention *pol, int *local_time,
                     ws_error *err);

/* Applies the test-only test-clock-offset setting (repo/lock.h, ws_repo_wall_time);
 * WS_ECONFIG if it is not a whole number of seconds. */
int ws_expire_clock_setup(const ws_config *cfg, ws_error *err);

/* basebackup's expire-auto: expires repos[0..n) (configured repositories, in order) for the
 * cluster sysid, if expire-auto is on and a policy is set. Prints its report to stderr
 * through the log. 0 done or nothing to do, -1 with err. */
int ws_expire_auto(const ws_config *cfg, ws_repo **repos, int n, uint64_t sysid, ws_error *err);

#endif
