/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Calendar expressions (systemd.time(7)) evaluated by `systemd-analyze calendar`, which runs PID 1's
 * own calendar code: the elapses found here are the ones a task's timer elapses at, time zones and
 * daylight saving time included. systemd 252 has no JSON output for this verb, so its text is read:
 * one "Next elapse:" or "Iter. #N:" line per elapse in local time, each followed by a "(in UTC):" line
 * unless local time is UTC. Times are to the second, as that text gives them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CALENDAR_ANALYZE_PROGRAM "systemd-analyze"

/* Elapses asked of systemd-analyze at once (--iterations=). */
#define CALENDAR_BATCH 32

/* "2024-06-06T03:00:00Z" and its NUL. */
#define CALENDAR_UTC_BYTES 21

/* The elapses in the text systemd-analyze calendar writes for one expression, in microseconds since
 * the epoch: up to max of them, in order, fewer when it says "never". -EBADMSG when the text is not
 * what systemd-analyze writes. */
int calendar_parse_elapses(const char *text, uint64_t *ret, size_t max, size_t *ret_n);

/* Runs systemd-analyze calendar: the first n (at most CALENDAR_BATCH) elapses of expr strictly after
 * base_usec, fewer when it has no more. -ENOENT when systemd-analyze is not installed; -EINVAL when it
 * refused the expression, with the first line of its message in errbuf (if not NULL); -EBADMSG when
 * its output is not understood; -ETIMEDOUT; -errno. */
int calendar_next_elapses(const char *expr, uint64_t base_usec, size_t n, uint64_t *ret, size_t *ret_n,
                          char *errbuf, size_t errbuf_size);

/* The latest elapse of any of the expressions at or before at_usec: the slot that a timer of these
 * expressions elapsing at at_usec belongs to, also when its RandomizedDelaySec= or AccuracySec= made
 * it late (as long as not by a whole slot). -ESRCH when there was none in the last 34 years; the
 * errors of calendar_next_elapses(). */
int calendar_latest_elapse(char *const *exprs, size_t n, uint64_t at_usec, uint64_t *ret);

/* The shortest time between two slots of the expressions together (elapses in the same second are
 * one slot), over the next CALENDAR_BATCH elapses of each after base_usec; UINT64_MAX when there are
 * fewer than two. The errors of calendar_next_elapses(). */
int calendar_shortest_gap(char *const *exprs, size_t n, uint64_t base_usec, uint64_t *ret_usec);

/* usec as "2024-06-06T03:00:00Z" (UTC, to the second): the scheduled time in a slot's key. */
char *calendar_format_utc(uint64_t usec, char buf[static CALENDAR_UTC_BYTES]);
