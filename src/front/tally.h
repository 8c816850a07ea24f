/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Counts per owner: a table from an owner's name ("uid:33", "tcp:192.0.2.7": Identity.submitter) to
 * a count and a byte total, O(1) per change. The server counts each peer's connections with one, the
 * ledger each submitter's unfinished tasks and their stdin bytes with another. An owner whose count
 * and bytes both return to zero is dropped, so the table holds only owners with something counted.
 */

#include <stdint.h>

typedef struct Tally Tally;

int tally_new(Tally **ret);
Tally *tally_free(Tally *t);

/* Adds count and bytes (either may be negative) to owner's totals. Removing more than was added is a
 * bug of the caller: the totals stop at zero. -ENOMEM if a new owner cannot be added. */
int tally_add(Tally *t, const char *owner, int64_t count, int64_t bytes);

/* owner's totals (0 and 0 for an owner not in the table). Either pointer may be NULL. */
void tally_get(const Tally *t, const char *owner, uint64_t *ret_count, uint64_t *ret_bytes);

/* Owners in the table. */
uint64_t tally_size(const Tally *t);
