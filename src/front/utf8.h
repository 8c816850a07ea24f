/* SPDX-License-Identifier: MIT */
#pragma once

/* UTF-8 validation for client bytes: JSON requests, seed frames and the text quoted back in
 * messages must be valid UTF-8 (shortest form, no surrogates, at most U+10FFFF). */

#include <stddef.h>

/* Length of the UTF-8 sequence starting at s (1..4), or 0 if it is not a valid, shortest-form
 * encoding of a scalar value. avail is the number of bytes readable at s (at least 1). */
size_t utf8_sequence_len(const unsigned char *s, size_t avail);

/* Length of the longest valid UTF-8 prefix of s[0..len). */
size_t utf8_valid_len(const char *s, size_t len);
