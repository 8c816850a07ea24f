/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What systemd reports about a run's unit, and the RunResult it amounts to. Pure: the executor feeds
 * in the properties it reads from PID 1 (PropertiesChanged payloads, GetAll replies) and the result
 * of the start job (JobRemoved), and reports what comes out.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "shared/limits.h"
#include "shared/run-result.h"

/* What is known of a unit; unit_result_props_update() fills it in from D-Bus property lists. */
typedef struct UnitProps {
        char load_state[32];
        char active_state[32];
        char sub_state[32];
        char result[32];
        int32_t exec_main_code; /* CLD_EXITED, CLD_KILLED, CLD_DUMPED or 0 */
        int32_t exec_main_status;
        uint64_t exec_main_exit_usec;
        uint64_t active_enter_usec; /* 0: the unit never became active */
        uint32_t job_id;
        uint64_t cpu_nsec;    /* UINT64_MAX: unknown */
        uint64_t memory_peak; /* UINT64_MAX: unknown or not provided (systemd < 255) */
        /* StatusText (the task's STATUS=), one byte longer than the progress it becomes, so that
         * progress_text_clean() sees text that was cut and cuts it at a character boundary. */
        char status_text[PROGRESS_BYTES_MAX + 2];
} UnitProps;

/* Nothing known yet. */
void unit_result_props_init(UnitProps *p);

/* Reads the properties of interest from an a{sv} (a PropertiesChanged payload or a GetAll reply),
 * skipping the others. Properties read before a parse error stay updated. */
int unit_result_props_update(UnitProps *p, sd_bus_message *m);

/* No job pending, and the unit is down (inactive/failed) or, with RemainAfterExit=, its main
 * process has exited successfully ("active (exited)"). */
bool unit_result_props_finished(const UnitProps *p);

/* The name of one of systemd's own exit statuses (200..245: setting up the process failed before
 * the program ran), or NULL. */
const char *unit_result_exit_status_name(int status);

/* What a finished unit amounts to. start_job_result is the start job's result from JobRemoved
 * ("done", "failed", ...; "" or NULL when unknown: a unit found at start, or JobRemoved not seen
 * yet). cancelled: a stop was requested, which wins over what the stop made of the unit. */
void unit_result_decode(const UnitProps *p, const char *start_job_result, bool cancelled, RunResult *ret);

/* Whether a finished unit failed before its program ran for a reason of PID 1's own that a new unit
 * of the same name does not meet: 219/CGROUP (PID 1 had not created, or had just removed, the unit's
 * cgroup when its child tried to enter it, as happens shortly after a daemon-reexec). Every other
 * status of systemd's (217/USER, 203/EXEC, ...) comes from the definition or the host and would fail
 * again. The evidence is unit_result_decode()'s for "never ran": never when the unit became active or
 * its start job is "done" (then 219 is the program's own exit status). */
bool unit_result_start_transient(const UnitProps *p, const char *start_job_result);

/* A run whose unit could not be created: "resources" with message, or "cancelled" when a stop was
 * requested before the start went through. */
void unit_result_start_failed(const char *unit, const char *message, bool cancelled, RunResult *ret);
