/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The StartTransientUnit call of one run: from the task definition and the launch (id, attempt, argv,
 * stdin) to the unit's name and every property it gets. Pure: it only fills in a message, which may
 * come from a bus that never connected, so tests read back what the executor would send.
 *
 * What a unit's properties hold, any local user can read (systemctl show, and the unit's file PID 1
 * writes under /run/systemd/transient/): so no secret goes into one. A run's stdin is passed as a
 * file descriptor (StandardInputFileDescriptor=), a task's "credentials" as the paths PID 1 loads
 * them from (LoadCredential=). The task's "environment" is not secret, and docs say so.
 */

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "launcher/executor.h"

#define UNIT_PROPERTIES_SLICE "asynctask.slice"

/* The helper that runs an argv systemd would not keep (asynctask-exec): the path compiled in, until
 * the executor has found it (exec-helper.h); a variable so that tests can point it elsewhere. */
extern const char *unit_properties_exec_helper;

/* "asynctask task <id> (<name>)", the name cut to 200 bytes at a character boundary (D-Bus strings
 * are UTF-8) and its control characters (a raw command may hold newlines) shown as spaces. NULL when
 * out of memory. */
char *unit_properties_description(uint64_t id, const char *name);

/* Appends the properties of launch l, each an "(sv)", to m, inside its open "a(sv)". stdin_fd: the
 * task's standard input (the message takes a copy of the descriptor), required when l has stdin
 * (-EINVAL without), else -1. */
int unit_properties_append(sd_bus_message *m, const Launch *l, int stdin_fd);

/* The whole StartTransientUnit call of launch l on bus, ready to send. */
int unit_properties_new_start(sd_bus *bus, const Launch *l, int stdin_fd, sd_bus_message **ret);

/* A copy of the StartTransientUnit call start (a sent message is sealed and cannot be sent again),
 * with stdin_fd in place of the standard input it passes, if any. */
int unit_properties_copy_start(sd_bus *bus, sd_bus_message *start, int stdin_fd, sd_bus_message **ret);
