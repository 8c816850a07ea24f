/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A run's standard input as a sealed memfd, handed to PID 1 as a file descriptor
 * (StandardInputFileDescriptor=) instead of inline bytes: inline (StandardInputData=), every local
 * user could read it with systemctl show, and PID 1 would write it into the unit's world-readable
 * file under /run/systemd/transient/. Only the task (and root) can read a descriptor.
 */

#include <stddef.h>

/* A memfd holding data, sealed (no write, shrink or grow, no more seals: every reader sees exactly
 * data), at offset 0, close-on-exec. Returns the descriptor or -errno. */
int stdin_memfd_new(const void *data, size_t size);

/* A new open file description of memfd fd, read-only, at offset 0. Each start call gets its own, so
 * that a reader of one (a task whose unit the previous call created after all) never moves the
 * offset another reads from. Returns the descriptor or -errno. */
int stdin_memfd_reopen(int fd);
