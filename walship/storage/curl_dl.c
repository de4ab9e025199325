/* curl_dl.c — loads libcurl on first use (see curl_dl.h for why). */
#include "walship/storage/curl_dl.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

ws_curl_api ws_curl;
static void *curl_lib;

static int sym(void **slot, const char *name, ws_error *err)
{
    /* POSIX allows converting dlsym's void * to a function pointer through memcpy */
    void *p = dlsym(curl_lib, name);
    if (!p)
        return ws_error_set(err, WS_ECONFIG, "libcurl lacks %s: %s", name, dlerror());
    memcpy(slot, &p, sizeof p);
    return 0;
}

int ws_curl_load(ws_error *err)
{
    if (curl_lib)
        return 0;
    void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        ws_error_set(err, WS_ECONFIG, "S3 repositories need libcurl, which cannot be loaded: %s",
                     dlerror());
        ws_error_hint(err, "install libcurl4 (Debian/Ubuntu) or libcurl (RHEL)");
        return -1;
    }
    curl_lib = lib;
    static const struct {
        size_t off;
        const char *name;
    } table[] = {
        {offsetof(ws_curl_api, global_init), "curl_global_init"},
        {offsetof(ws_curl_api, easy_init), "curl_easy_init"},
        {offsetof(ws_curl_api, easy_cleanup), "curl_easy_cleanup"},
        {offsetof(ws_curl_api, easy_setopt), "curl_easy_setopt"},
        {offsetof(ws_curl_api, easy_getinfo), "curl_easy_getinfo"},
        {offsetof(ws_curl_api, easy_pause), "curl_easy_pause"},
        {offsetof(ws_curl_api, easy_strerror), "curl_easy_strerror"},
        {offsetof(ws_curl_api, multi_init), "curl_multi_init"},
        {offsetof(ws_curl_api, multi_cleanup), "curl_multi_cleanup"},
        {offsetof(ws_curl_api, multi_add_handle), "curl_multi_add_handle"},
        {offsetof(ws_curl_api, multi_remove_handle), "curl_multi_remove_handle"},
        {offsetof(ws_curl_api, multi_setopt), "curl_multi_setopt"},
        {offsetof(ws_curl_api, multi_assign), "curl_multi_assign"},
        {offsetof(ws_curl_api, multi_socket_action), "curl_multi_socket_action"},
        {offsetof(ws_curl_api, multi_info_read), "curl_multi_info_read"},
        {offsetof(ws_curl_api, slist_append), "curl_slist_append"},
        {offsetof(ws_curl_api, slist_free_all), "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (sym((void **)((char *)&ws_curl + table[i].off), table[i].name, err) < 0) {
            dlclose(lib);
            curl_lib = NULL;
            return -1;
        }
    if (ws_curl.global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        dlclose(lib);
        curl_lib = NULL;
        return ws_error_set(err, WS_EINTERNAL, "curl_global_init failed");
    }
    return 0;
}
