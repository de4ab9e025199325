/*
 * dl.h — loading a shared library and a table of its functions at first use.
 *
 * libcurl and libpq each drag in a large dependency tree (TLS, Kerberos, LDAP, ...) whose
 * mapping and relocation cost every process that links them ~14 ms of CPU. push and fetch
 * run once per WAL file and need neither for a posix repository, so the S3 driver and the
 * replication client load theirs with ws_dl_load when they are first used.
 */
#ifndef WS_DL_H
#define WS_DL_H

#include <stddef.h>

#include "walship/error.h"

typedef struct ws_dl_sym {
    const char *name;
    size_t offset; /* of the function pointer in the caller's API struct */
} ws_dl_sym;

/* dlopen(soname) and fill api's function pointers from table. Idempotent per *handle
 * (pass the same static void *). package names what to install when the library is
 * missing, for the hint. */
int ws_dl_load(void **handle, const char *soname, const char *package, const ws_dl_sym *table,
               size_t n, void *api, ws_error *err);

#endif
