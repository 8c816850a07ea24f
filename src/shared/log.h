/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Daemon logging. Goes to the journal with structured fields when the process runs under systemd
 * (JOURNAL_STREAM is set or stderr is not a tty and the journal socket exists), else to stderr as
 * "asynctaskd[pid]: <level>: message". Only top-level handlers log; parsers and stores return errors.
 */

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

#include "shared/util.h"

void log_open(const char *identifier);
void log_set_max_level(int level);  /* LOG_DEBUG .. LOG_ERR; default LOG_INFO */
int log_parse_level(const char *s); /* "debug", "info", "notice", "warning", "err"; -EINVAL otherwise */

/* Returns -abs(error) when error != 0, so "return log_error_errno(r, ...)" works; %m prints error. */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *fmt, ...)
        _printf_(6, 7);

/* Same, with extra journal fields: task id (0 = none) and unit name (NULL = none). */
int log_task_internal(int level, int error, uint64_t task_id, const char *task_name, const char *unit,
                      const char *fmt, ...) _printf_(6, 7);

/* Same as log_task_internal(), for an event of the journal catalog: message_id is one of
 * shared/message-ids.h (journalctl -x explains it; journalctl MESSAGE_ID=... finds it). */
int log_event_internal(int level, const char *message_id, uint64_t task_id, const char *task_name,
                       const char *unit, const char *fmt, ...) _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                                   \
        log_internal(level, error, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_debug(...)                       log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)                        log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)                      log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...)                     log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)                       log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warning_errno(error, ...)        log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)          log_full_errno(LOG_ERR, error, __VA_ARGS__)
#define log_task(level, id, name, unit, ...) log_task_internal(level, 0, id, name, unit, __VA_ARGS__)
#define log_event(level, message_id, ...)    log_event_internal(level, message_id, 0, NULL, NULL, __VA_ARGS__)
#define log_task_event(level, message_id, id, name, unit, ...)                                              \
        log_event_internal(level, message_id, id, name, unit, __VA_ARGS__)
