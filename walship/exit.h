/*
 * exit.h — the process exit codes every command returns (docs/exit-codes.md). Core: includes
 * nothing.
 */
#ifndef WS_EXIT_H
#define WS_EXIT_H

enum {
    WS_EXIT_OK = 0,
    WS_EXIT_FAIL = 1,  /* push: not archived (PostgreSQL retries); fetch: absent */
    WS_EXIT_USAGE = 2, /* usage or configuration error */
    /* fetch: anything but absence; > 125 makes PostgreSQL abort recovery rather than end it
     * early on a file that exists but could not be read */
    WS_EXIT_FETCH_FATAL = 126,
};

#endif
