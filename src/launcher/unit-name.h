/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The name of the transient unit of one run: "asynctask-<id>.service". The systemd executor creates
 * units by this name and recognizes its own among all of PID 1's units by it.
 */

#include <stdint.h>

#define UNIT_NAME_PREFIX "asynctask-"
#define UNIT_NAME_SUFFIX ".service"
/* Room for the longest name, a 20-digit id, and its NUL. */
#define UNIT_NAME_SIZE 64

/* Writes the unit name of run id into buf. */
void unit_name_from_id(uint64_t id, char buf[static UNIT_NAME_SIZE]);

/* The id of a unit name this executor creates: "asynctask-<digits>.service", no sign, no leading
 * zero, not 0, fitting in uint64. -EINVAL for any other name, -ERANGE for an id too large. */
int unit_name_to_id(const char *name, uint64_t *ret);
