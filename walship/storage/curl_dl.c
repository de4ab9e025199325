/* curl_dl.c — loads libcurl on first use (see curl_dl.h and walship/dl.h for why). */
#include "walship/storage/curl_dl.h"

#include "walship/dl.h"

ws_curl_api ws_curl;

#define SYM(field, name)                                                                           \
    {                                                                                              \
        name, offsetof(ws_curl_api, field)                                                         \
    }

static const ws_dl_sym curl_syms[] = {
    SYM(global_init, "curl_global_init"),
    SYM(easy_init, "curl_easy_init"),
    SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_setopt, "curl_easy_setopt"),
    SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_pause, "curl_easy_pause"),
    SYM(easy_strerror, "curl_easy_strerror"),
    SYM(multi_init, "curl_multi_init"),
    SYM(multi_cleanup, "curl_multi_cleanup"),
    SYM(multi_add_handle, "curl_multi_add_handle"),
    SYM(multi_remove_handle, "curl_multi_remove_handle"),
    SYM(multi_setopt, "curl_multi_setopt"),
    SYM(multi_assign, "curl_multi_assign"),
    SYM(multi_socket_action, "curl_multi_socket_action"),
    SYM(multi_info_read, "curl_multi_info_read"),
    SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"),
};

int ws_curl_load(ws_error *err)
{
    static void *lib;
    static int initialised;
    if (ws_dl_load(&lib, "libcurl.so.4", "libcurl4 (Debian/Ubuntu) or libcurl (RHEL)", curl_syms,
                   sizeof curl_syms / sizeof curl_syms[0], &ws_curl, err) < 0) {
        ws_error_prefix(err, "S3 repositories need libcurl");
        return -1;
    }
    if (!initialised) {
        if (ws_curl.global_init(CURL_GLOBAL_ALL) != CURLE_OK)
            return ws_error_set(err, WS_EINTERNAL, "curl_global_init failed");
        initialised = 1;
    }
    return 0;
}
