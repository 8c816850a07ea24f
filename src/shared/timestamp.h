/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Reading the fixed-width UTC date and time that asynctask prints ("2024-06-06T03:00:00.25Z") and that
 * systemd's tools print ("Thu 2024-06-06 03:00:00 UTC"): one scanner for both, so a date that is not
 * a real one (February 31st, hour 24) is refused the same way everywhere.
 */

#include <stdbool.h>
#include <stdint.h>

/* Reads exactly n decimal digits at *p into *ret and moves *p past them; false if one is not a digit. */
bool scan_digits(const char **p, unsigned n, int *ret);

/* Moves *p past c if it is the next character; false otherwise. */
bool scan_char(const char **p, char c);

/* Reads "YYYY-MM-DD<separator>HH:MM:SS" at *p as UTC, moves *p past it and stores the seconds since
 * the epoch. -EINVAL if it is malformed or not a real date, a leap second included (neither asynctask
 * nor systemd prints one). */
int scan_utc_date_time(const char **p, char separator, int64_t *ret_sec);
