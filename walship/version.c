/*
 * version.c — the `walship --version` report (see version.h).
 */
#include "walship/version.h"

#include <dlfcn.h>
#include <lz4.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "walship/error.h"
#include "walship/pq_dl.h"
#include "walship/storage/curl_dl.h"

#ifndef WS_VERSION
#define WS_VERSION "unknown"
#endif
#ifndef WS_GIT_COMMIT
#define WS_GIT_COMMIT "unknown"
#endif

/* The shims load only the functions walship calls; the version functions are looked up in
 * the already-loaded library (RTLD_NOLOAD: never a second, different copy). */
static void *loaded_sym(const char *soname, const char *name)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return NULL;
    void *f = dlsym(h, name);
    dlclose(h); /* drops only our reference: the shim keeps the library loaded */
    return f;
}

static void print_curl(FILE *out)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_curl_load(&err) < 0) {
        fprintf(out, "libcurl:  not loaded (%s)\n", err.msg);
        return;
    }
    char *(*version)(void) = (char *(*)(void))loaded_sym("libcurl.so.4", "curl_version");
    fprintf(out, "libcurl:  loaded, %s\n", version ? version() : "version unknown");
}

static void print_pq(FILE *out)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_pq_load(&err) < 0) {
        fprintf(out, "libpq:    not loaded (%s)\n", err.msg);
        return;
    }
    int (*version)(void) = (int (*)(void))loaded_sym("libpq.so.5", "PQlibVersion");
    if (!version) {
        fprintf(out, "libpq:    loaded, version unknown\n");
        return;
    }
    int v = version(); /* 150013 = 15.13; 90624 = 9.6.24 */
    if (v >= 100000)
        fprintf(out, "libpq:    loaded, %d.%d\n", v / 10000, v % 10000);
    else
        fprintf(out, "libpq:    loaded, %d.%d.%d\n", v / 10000, v / 100 % 100, v % 100);
}

void ws_version_print(FILE *out)
{
    fprintf(out, "walship %s\n", WS_VERSION);
    fprintf(out, "commit:   %s\n", WS_GIT_COMMIT);
    fprintf(out, "lz4:      %s\n", LZ4_versionString());
    fprintf(out, "OpenSSL:  %s\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(out, "libuv:    %s\n", uv_version_string());
    print_curl(out);
    print_pq(out);
}
