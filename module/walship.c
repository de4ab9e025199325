/*
 * walship.c — archive_library = 'walship' (PostgreSQL 15+): the PostgreSQL side of the
 * archive module. GUCs, the archive callbacks (the PostgreSQL 15 API and, under
 * PG_VERSION_NUM >= 160000, the 16+ API with ArchiveModuleState), logging to the server log,
 * and the archiver's latch and shutdown for the waits. The archiving itself is
 * ws_module_archive (module/client.c): a client of walship's async agent.
 *
 *   archive_mode = on
 *   archive_library = 'walship'
 *   walship.config = '/etc/walship/walship.conf'   # default: walship's own lookup
 *   walship.bin = '/usr/local/bin/walship'          # for the rare cases (ws_module.h)
 *
 * The callback never raises an ERROR (in PostgreSQL 15 the archiver has no error recovery:
 * an ERROR there is a FATAL): a failure is a WARNING with walship's message and "false",
 * which makes the archiver retry the file, as with an archive_command that exits 1.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

#if PG_VERSION_NUM >= 160000
#include "archive/archive_module.h"
#else
#include "postmaster/pgarch.h"
#endif

#include "module/ws_module.h"

#ifndef WS_MODULE_BIN
#define WS_MODULE_BIN "/usr/local/bin/walship"
#endif

PG_MODULE_MAGIC;

static char *ws_guc_config = NULL;
static char *ws_guc_bin = NULL;

void _PG_init(void);

void _PG_init(void)
{
    DefineCustomStringVariable("walship.config",
                               "The walship configuration file the archive module uses.",
                               "Empty: walship's own lookup ($WALSHIP_CONFIG, else "
                               "/etc/walship/walship.conf).",
                               &ws_guc_config, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
    DefineCustomStringVariable("walship.bin",
                               "The walship binary the archive module runs to start the agent.",
                               NULL, &ws_guc_bin, WS_MODULE_BIN, PGC_SIGHUP, 0, NULL, NULL, NULL);
    MarkGUCPrefixReserved("walship");
}

/* The waits sleep on the archiver's latch, so that postmaster death ends them at once
 * (WL_EXIT_ON_PM_DEATH) and a SIGTERM (ShutdownRequestPending) makes the file "not
 * archived" rather than hold the shutdown up. A latch set while waiting is set again at the
 * end: it was meant for the archiver's loop, not for this wait. */
typedef struct ws_nap_state {
    bool latch_seen;
} ws_nap_state;

static int ws_nap(void *arg, int ms)
{
    ws_nap_state *s = (ws_nap_state *)arg;
    int rc;

    if (ShutdownRequestPending)
        return 1;
    rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                   WAIT_EVENT_ARCHIVE_COMMAND);
    if (rc & WL_LATCH_SET) {
        ResetLatch(MyLatch);
        s->latch_seen = true;
    }
    return ShutdownRequestPending ? 1 : 0;
}

static bool ws_archive(const char *file, const char *path)
{
    ws_module_req rq;
    ws_nap_state ns;
    char msg[1536];
    int via_child = 0;
    int rc;

    ns.latch_seen = false;
    rq.config = ws_guc_config;
    rq.bin = ws_guc_bin && *ws_guc_bin ? ws_guc_bin : WS_MODULE_BIN;
    rq.path = path;
    rq.nap = ws_nap;
    rq.nap_arg = &ns;
    rc = ws_module_archive(&rq, msg, sizeof msg, &via_child);
    if (ns.latch_seen)
        SetLatch(MyLatch);
    if (rc == WS_MODULE_OK) {
        elog(DEBUG1, "walship: archived %s%s", file, via_child ? " (through walship push)" : "");
        return true;
    }
    ereport(WARNING, (errmsg("walship: %s was not archived: %s", file, msg)));
    return false;
}

static bool ws_check_configured(void)
{
    return true;
}

static void ws_shutdown(void)
{
    /* Nothing is held between files: the agent is a process of its own and stops after
     * agent-idle-timeout without pushes, as with archive_command. */
}

#if PG_VERSION_NUM >= 160000
/*
 * PostgreSQL 16+ (NOT compiled on the machine this was written on: no server headers for
 * 16-18 were available; see docs/archive-module.md).
 */
static void ws_startup16(ArchiveModuleState *state)
{
    state->private_data = NULL;
}

static bool ws_check16(ArchiveModuleState *state)
{
    (void)state;
    return ws_check_configured();
}

static bool ws_archive16(ArchiveModuleState *state, const char *file, const char *path)
{
    (void)state;
    return ws_archive(file, path);
}

static void ws_shutdown16(ArchiveModuleState *state)
{
    (void)state;
    ws_shutdown();
}

static const ArchiveModuleCallbacks ws_callbacks = {
    .startup_cb = ws_startup16,
    .check_configured_cb = ws_check16,
    .archive_file_cb = ws_archive16,
    .shutdown_cb = ws_shutdown16,
};

extern PGDLLEXPORT const ArchiveModuleCallbacks *_PG_archive_module_init(void);

const ArchiveModuleCallbacks *_PG_archive_module_init(void)
{
    return &ws_callbacks;
}
#else
extern PGDLLEXPORT void _PG_archive_module_init(ArchiveModuleCallbacks *cb);

void _PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
    cb->check_configured_cb = ws_check_configured;
    cb->archive_file_cb = ws_archive;
    cb->shutdown_cb = ws_shutdown;
}
#endif
