/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Schedules as the client sees them: the idempotency key of a scheduled run (`submit --slot-key`,
 * which the services of the timers run), and `asynctask schedules`, read from the timers in systemd
 * over D-Bus.
 */

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The units asynctask-generator writes for task NAME: TIMER_PREFIX NAME ".timer" and ".service". */
#define CLI_SCHEDULE_UNIT_PREFIX "asynctask-schedule-"

/* The key of the run of task in the slot at slot_usec: "schedule:TASK@2024-06-06T03:00:00Z". The same
 * on every host and for every start of the service in that slot, so that one run is submitted. The
 * slot is the latest elapse of the schedule at or before the time the service runs (shared/calendar.h),
 * not the timer's trigger time that systemd passes as $TRIGGER_TIMER_REALTIME_USEC: it is later than
 * the slot, differs per host, and systemd 252 keeps passing the first trigger's time to later runs.
 * -ENOBUFS when it does not fit. */
int cli_slot_key(const char *task, uint64_t slot_usec, char *buf, size_t size);

/* When the timer unit last elapsed (LastTriggerUSec, realtime), over the system bus: 0 when it never
 * did. The services of scheduled tasks take their slot from it (submit --slot-timer): it is the same
 * however late the service starts, and the slot it elapsed for, its randomized delay and accuracy
 * notwithstanding. -ENOENT when no such timer is loaded, -errno when systemd cannot be asked (why in
 * errbuf). */
int cli_timer_last_trigger(const char *timer, uint64_t *ret_usec, char *errbuf, size_t errbuf_size);

/* One entry of `asynctask schedules --json`: {"task", "timer", "state", "schedule": [...],
 * "next_elapse", "last_trigger"}, times as "2024-06-06T03:00:00.000Z" (as in records) or null (0 or
 * UINT64_MAX: none). state is the timer's load state when it is not "loaded" (a broken timer), else its
 * active state. NULL on OOM. */
cJSON *cli_schedule_entry(const char *timer, const char *load_state, const char *active_state,
                          const char *const *calendars, size_t n_calendars, uint64_t next_usec,
                          uint64_t last_usec);

/* The table of `asynctask schedules`: TASK STATE NEXT LAST SCHEDULE, times in local time. */
void cli_print_schedules(FILE *f, const cJSON *schedules);

/* Lists the loaded timers asynctask-schedule-*.timer over the system bus into a JSON array of
 * cli_schedule_entry(), by task name; a timer whose file is gone is listed only while it is active
 * (its task is no longer scheduled, and it is to be stopped). -ECONNREFUSED, -ENOENT, -EHOSTDOWN ... when
 * systemd cannot be reached (why in errbuf), -EBADMSG for an answer not understood, -ENOMEM. */
int cli_schedules_read(cJSON **ret, char *errbuf, size_t errbuf_size);
