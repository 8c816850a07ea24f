/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One frame from a client, whichever protocol it speaks: a seed frame (front/seed.h) or a JSON request
 * (front/request.h). Both parsers fill the same Request; this is the one place that chooses.
 */

#include <stdbool.h>
#include <stddef.h>

#include "front/request.h"
#include "shared/protocol.h"

/* Parses one frame as FrameReader delivers it. Returns 0 and fills *ret, or a negative errno and
 * fills *err, as request_parse() and seed_parse() do. */
int decode_frame(const char *frame, size_t len, Request *ret, ErrorReply *err);
