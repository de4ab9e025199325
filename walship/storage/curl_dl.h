/*
 * curl_dl.h — libcurl, loaded when the first S3 repository is opened rather than at process
 * start. libcurl's dependency tree (TLS, Kerberos, LDAP, IDN, ...) costs some 14 ms of CPU to
 * map and relocate in every process that links it; push and fetch run once per WAL file and
 * most use no S3 at all. Include this instead of <curl/curl.h>: the curl_* calls below then go
 * through a table filled by ws_curl_load().
 */
#ifndef WS_CURL_DL_H
#define WS_CURL_DL_H

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "walship/error.h"

typedef struct ws_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    CURLcode (*easy_pause)(CURL *h, int bitmask);
    const char *(*easy_strerror)(CURLcode code);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
} ws_curl_api;

extern ws_curl_api ws_curl;

/* Loads libcurl (libcurl.so.4) and runs curl_global_init once; later calls return at once.
 * Fails with a message that says which package to install. Not thread-safe: call it from the
 * main thread before starting any. */
int ws_curl_load(ws_error *err);

#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init         ws_curl.global_init
#define curl_easy_init           ws_curl.easy_init
#define curl_easy_cleanup        ws_curl.easy_cleanup
#define curl_easy_setopt         ws_curl.easy_setopt
#define curl_easy_getinfo        ws_curl.easy_getinfo
#define curl_easy_pause          ws_curl.easy_pause
#define curl_easy_strerror       ws_curl.easy_strerror
#define curl_multi_init          ws_curl.multi_init
#define curl_multi_cleanup       ws_curl.multi_cleanup
#define curl_multi_add_handle    ws_curl.multi_add_handle
#define curl_multi_remove_handle ws_curl.multi_remove_handle
#define curl_multi_setopt        ws_curl.multi_setopt
#define curl_multi_assign        ws_curl.multi_assign
#define curl_multi_socket_action ws_curl.multi_socket_action
#define curl_multi_info_read     ws_curl.multi_info_read
#define curl_slist_append        ws_curl.slist_append
#define curl_slist_free_all      ws_curl.slist_free_all

#endif
