/*
 * version.h — `walship --version`: what an operator pastes into a bug report.
 *
 * Prints walship's version and the git commit it was built from (WS_GIT_COMMIT, set by the
 * Makefile from `git describe --always --dirty`, "unknown" outside git), then the libraries
 * it found at run time: lz4, OpenSSL and libuv (linked), and whether libcurl and libpq load
 * through their dl shims (walship/storage/curl_dl.h, walship/pq_dl.h) with their versions.
 */
#ifndef WS_VERSION_H
#define WS_VERSION_H

#include <stdio.h>

/* Writes the report to out. A library that does not load is reported on its line, with the
 * shim's message; it is not an error: only S3 needs libcurl and only basebackup needs libpq. */
void ws_version_print(FILE *out);

#endif
