/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "front/mariadb.h"
#include "shared/util.h"

#define SYMBOL(name)                                                                                        \
        { #name, offsetof(Mariadb, name) }

static const struct {
        const char *name;
        size_t offset;
} symbols[] = {
        SYMBOL(mysql_init),        SYMBOL(mysql_optionsv),      SYMBOL(mysql_real_connect),
        SYMBOL(mysql_real_query),  SYMBOL(mysql_store_result),  SYMBOL(mysql_use_result),
        SYMBOL(mysql_fetch_row),   SYMBOL(mysql_fetch_lengths), SYMBOL(mysql_free_result),
        SYMBOL(mysql_errno),       SYMBOL(mysql_error),         SYMBOL(mysql_close),
        SYMBOL(mysql_thread_init), SYMBOL(mysql_thread_end),    SYMBOL(mysql_affected_rows),
};

int mariadb_load(const char *soname, Mariadb *ret, char *errbuf, size_t errlen) {
        Mariadb api = {};
        void *handle;

        /* RTLD_NOW: a missing function is found here, not at the first query on the store's thread. */
        handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
                snprintf(errbuf, errlen, "%s", dlerror() ?: soname);
                return -ENOENT;
        }
        for (size_t i = 0; i < ELEMENTSOF(symbols); i++) {
                void *fn = dlsym(handle, symbols[i].name);

                if (!fn) {
                        snprintf(errbuf, errlen, "%s: no %s", soname, symbols[i].name);
                        dlclose(handle);
                        return -ENOENT;
                }
                /* POSIX: a function's address from dlsym() is used through a function pointer. */
                memcpy((char *) &api + symbols[i].offset, &fn, sizeof(fn));
        }
        _Static_assert(sizeof(Mariadb) == ELEMENTSOF(symbols) * sizeof(void *), "every member loaded");
        *ret = api;
        return 0;
}

const Mariadb *mariadb_get(char *errbuf, size_t errlen) {
        static Mariadb api;
        static bool loaded;

        if (!loaded && mariadb_load(MARIADB_SONAME, &api, errbuf, errlen) < 0)
                return NULL;
        loaded = true;
        return &api;
}
