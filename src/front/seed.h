/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Frames of the old PHP/Swoole clients: serialize($command) . PHP_EOL.
 *   s:N:"<N bytes>";            a string: becomes {"op":"submit","cmd":<the string>}
 *   O:N:"<class>":M:{...}       an object: becomes a submit of the task mapped to <class>,
 *                               with the whole frame as the task's stdin
 * N is a byte count and is checked exactly; the object body is checked for balanced, well-formed
 * serialize() syntax (nested strings, arrays, objects) so a truncated or lying frame is refused.
 */

#include <stdbool.h>
#include <stddef.h>

#include "front/request.h"

/* True if the frame looks like seed serialize() output ("s:" or "O:" first). */
bool seed_frame_detect(const char *frame, size_t len);

/* Parses a seed frame into a submit Request (cmd set for "s:", php_class + stdin for "O:").
 * Returns 0, or -EBADMSG with err->code = ERR_BAD_FRAME and a message saying what is wrong
 * (-ENOMEM with code internal if memory runs out). */
int seed_parse(const char *frame, size_t len, Request *ret, ErrorReply *err);
