/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The memory store's ledger across a clean restart. On a clean stop the front writes every record
 * it holds to a file in its state directory, and loads (then removes) that file at the next start,
 * so a package upgrade or `systemctl restart` loses no queued, running or failed task. A crash still
 * loses the memory store's ledger (use the MySQL store for that). One JSON object per line; the first
 * line names the format and its version; the task names an admin paused come first, then the records.
 */

#include <stddef.h>

#include "front/ledger.h"

#define SNAPSHOT_FILE_NAME "ledger.snapshot"

/* Writes all records of l to path atomically (a temporary file, fsync, rename). Returns the number
 * of records written, or a negative errno. */
int snapshot_save(Ledger *l, const char *path);

/* Adds the records in path to l (ledger_adopt) and removes the file. A missing file is no error (0
 * records). Lines that cannot be read are skipped and counted in *ret_skipped. Returns the number of
 * records loaded, or a negative errno (nothing is removed then). */
int snapshot_load(const char *path, Ledger *l, size_t *ret_skipped);
