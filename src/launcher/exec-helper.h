/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where the launcher finds asynctask-exec, the helper that runs a task whose arguments systemd would
 * not keep (src/exec/). The packages and make install put it next to the launcher
 * (LIBEXECDIR/asynctask/), and a build tree has both in one directory: so it is looked for next to
 * the running program first, and a launcher compiled for one LIBEXECDIR and installed in another
 * finds it all the same. The path compiled in is the fallback.
 */

#include <stdbool.h>

#define EXEC_HELPER_NAME     "asynctask-exec"
#define EXEC_HELPER_COMPILED LIBEXECDIR "/asynctask/" EXEC_HELPER_NAME

/* Whether path is a regular file this process may execute. */
bool exec_helper_is_executable(const char *path);

/* The helper next to program (an absolute path: the running executable) if it is an executable file
 * there and its path is one systemd keeps as it is in ExecStart=; else the path compiled in. NULL
 * only when out of memory. */
char *exec_helper_find(const char *program);

/* The running program's path; NULL without /proc. (A path ending in " (deleted)" after the file was
 * replaced still names its directory.) */
char *exec_helper_self(void);
