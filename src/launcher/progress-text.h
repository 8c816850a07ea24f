/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A task's progress text, as the launcher passes it on: the STATUS= of a notification datagram
 * (sd_notify(3), direct executor) or a unit's StatusText (systemd executor). Pure, no I/O.
 */

#include <stddef.h>

/* s[0..len) made fit for one line of `asynctask list`: cut to at most PROGRESS_BYTES_MAX bytes without
 * splitting a UTF-8 sequence, control characters turned into spaces. NULL on OOM. */
char *progress_text_clean(const char *s, size_t len);

/* The value of the last STATUS= assignment of a notification datagram, cleaned. Returns 1 and *ret, 0
 * when it has none (READY=1, BARRIER=1, ...), or -ENOMEM. */
int progress_text_from_notify(const char *msg, size_t len, char **ret);
