/* SPDX-License-Identifier: MIT */
#include <linux/limits.h> /* PATH_MAX */
#include <sys/stat.h>

#include "launcher/exec-helper.h"
#include "shared/exec-hex.h"
#include "shared/util.h"

bool exec_helper_is_executable(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *exec_helper_find(const char *program) {
        const char *slash = program && program[0] == '/' ? strrchr(program, '/') : NULL;
        _cleanup_free_ char *path = NULL;

        if (slash) {
                if (asprintf(&path, "%.*s/" EXEC_HELPER_NAME, (int) (slash - program), program) < 0)
                        return NULL;
                if (!exec_argv_needs_helper((char *const[]){path, NULL}) && exec_helper_is_executable(path))
                        return TAKE_PTR(path);
        }
        return strdup(EXEC_HELPER_COMPILED);
}

char *exec_helper_self(void) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

        if (n <= 0)
                return NULL;
        buf[n] = '\0';
        return strdup(buf);
}
