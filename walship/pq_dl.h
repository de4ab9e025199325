/*
 * pq_dl.h — libpq, loaded when basebackup first connects rather than at process start.
 * libpq's dependency tree (GSSAPI, LDAP, TLS) costs every process that links it milliseconds
 * of mapping and relocation; push and fetch run once per WAL file and never talk to the
 * server. Include this instead of <libpq-fe.h>: the PQ* calls below then go through a table
 * filled by ws_pq_load(). Only the functions listed here may be called.
 */
#ifndef WS_PQ_DL_H
#define WS_PQ_DL_H

#include <libpq-fe.h>

#include "walship/error.h"

typedef struct ws_pq_api {
    PGconn *(*connectdbParams)(const char *const *keywords, const char *const *values,
                               int expand_dbname);
    ConnStatusType (*status)(const PGconn *conn);
    char *(*errorMessage)(const PGconn *conn);
    void (*finish)(PGconn *conn);
    int (*serverVersion)(const PGconn *conn);
    int (*socket)(const PGconn *conn);
    int (*setnonblocking)(PGconn *conn, int arg);
    int (*consumeInput)(PGconn *conn);
    int (*isBusy)(PGconn *conn);
    PGresult *(*exec)(PGconn *conn, const char *query);
    int (*sendQuery)(PGconn *conn, const char *query);
    PGresult *(*getResult)(PGconn *conn);
    ExecStatusType (*resultStatus)(const PGresult *res);
    char *(*resultErrorMessage)(const PGresult *res);
    char *(*resultErrorField)(const PGresult *res, int fieldcode);
    int (*ntuples)(const PGresult *res);
    int (*nfields)(const PGresult *res);
    char *(*getvalue)(const PGresult *res, int row, int col);
    int (*getisnull)(const PGresult *res, int row, int col);
    void (*clear)(PGresult *res);
    int (*getCopyData)(PGconn *conn, char **buffer, int async);
    void (*freemem)(void *ptr);
    PGcancel *(*getCancel)(PGconn *conn);
    int (*cancel)(PGcancel *cancel, char *errbuf, int errbufsize);
    void (*freeCancel)(PGcancel *cancel);
} ws_pq_api;

extern ws_pq_api ws_pq;

/* Loads libpq (libpq.so.5); later calls return at once. Fails with a message that says which
 * package to install. Not thread-safe: call it from the main thread before starting any. */
int ws_pq_load(ws_error *err);

#define PQconnectdbParams    ws_pq.connectdbParams
#define PQstatus             ws_pq.status
#define PQerrorMessage       ws_pq.errorMessage
#define PQfinish             ws_pq.finish
#define PQserverVersion      ws_pq.serverVersion
#define PQsocket             ws_pq.socket
#define PQsetnonblocking     ws_pq.setnonblocking
#define PQconsumeInput       ws_pq.consumeInput
#define PQisBusy             ws_pq.isBusy
#define PQexec               ws_pq.exec
#define PQsendQuery          ws_pq.sendQuery
#define PQgetResult          ws_pq.getResult
#define PQresultStatus       ws_pq.resultStatus
#define PQresultErrorMessage ws_pq.resultErrorMessage
#define PQresultErrorField   ws_pq.resultErrorField
#define PQntuples            ws_pq.ntuples
#define PQnfields            ws_pq.nfields
#define PQgetvalue           ws_pq.getvalue
#define PQgetisnull          ws_pq.getisnull
#define PQclear              ws_pq.clear
#define PQgetCopyData        ws_pq.getCopyData
#define PQfreemem            ws_pq.freemem
#define PQgetCancel          ws_pq.getCancel
#define PQcancel             ws_pq.cancel
#define PQfreeCancel         ws_pq.freeCancel

#endif
