/* pq_dl.c — loads libpq on first use (see pq_dl.h and walship/dl.h for why). */
#include "walship/pq_dl.h"

#include "walship/dl.h"

ws_pq_api ws_pq;

#define SYM(field, name)                                                                           \
    {                                                                                              \
        name, offsetof(ws_pq_api, field)                                                           \
    }

static const ws_dl_sym pq_syms[] = {
    SYM(connectdbParams, "PQconnectdbParams"),
    SYM(status, "PQstatus"),
    SYM(errorMessage, "PQerrorMessage"),
    SYM(finish, "PQfinish"),
    SYM(serverVersion, "PQserverVersion"),
    SYM(socket, "PQsocket"),
    SYM(setnonblocking, "PQsetnonblocking"),
    SYM(consumeInput, "PQconsumeInput"),
    SYM(isBusy, "PQisBusy"),
    SYM(exec, "PQexec"),
    SYM(sendQuery, "PQsendQuery"),
    SYM(getResult, "PQgetResult"),
    SYM(resultStatus, "PQresultStatus"),
    SYM(resultErrorMessage, "PQresultErrorMessage"),
    SYM(resultErrorField, "PQresultErrorField"),
    SYM(ntuples, "PQntuples"),
    SYM(nfields, "PQnfields"),
    SYM(getvalue, "PQgetvalue"),
    SYM(getisnull, "PQgetisnull"),
    SYM(clear, "PQclear"),
    SYM(getCopyData, "PQgetCopyData"),
    SYM(freemem, "PQfreemem"),
    SYM(getCancel, "PQgetCancel"),
    SYM(cancel, "PQcancel"),
    SYM(freeCancel, "PQfreeCancel"),
};

int ws_pq_load(ws_error *err)
{
    static void *lib;
    if (ws_dl_load(&lib, "libpq.so.5", "libpq5 (Debian/Ubuntu) or libpq (RHEL)", pq_syms,
                   sizeof pq_syms / sizeof pq_syms[0], &ws_pq, err) < 0) {
        ws_error_prefix(err, "basebackup needs libpq");
        return -1;
    }
    return 0;
}
