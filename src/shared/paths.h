/* SPDX-License-Identifier: MIT */
#pragma once

/* The default paths of the installed service (DESIGN.md, "Files"); each can be overridden on the
 * command line or in the configuration. */

#define CONFIG_PATH_DEFAULT     "/etc/asynctask/asynctask.json"
#define LAUNCHER_SOCKET_DEFAULT "/run/asynctask/launcher.sock"
#define FRONT_SOCKET_DEFAULT    "/run/asynctask/asynctask.sock"

/* The user the front runs as (sysusers.d): the launcher accepts it as a peer, and gives its group access
 * to the launcher's socket. */
#define FRONT_USER "asynctask"
