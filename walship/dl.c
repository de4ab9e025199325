/* dl.c — lazy loading of a shared library's functions (see dl.h for why). */
#include "walship/dl.h"

#include <dlfcn.h>
#include <string.h>

int ws_dl_load(void **handle, const char *soname, const char *package, const ws_dl_sym *table,
               size_t n, void *api, ws_error *err)
{
    if (*handle)
        return 0;
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        ws_error_set(err, WS_ECONFIG, "cannot load %s: %s", soname, dlerror());
        ws_error_hint(err, "install %s", package);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        void *p = dlsym(lib, table[i].name);
        if (!p) {
            ws_error_set(err, WS_ECONFIG, "%s lacks %s", soname, table[i].name);
            ws_error_hint(err, "install a newer %s", package);
            dlclose(lib);
            return -1;
        }
        /* POSIX allows a function pointer to be copied out of dlsym's void * */
        memcpy((char *)api + table[i].offset, &p, sizeof p);
    }
    *handle = lib;
    return 0;
}
