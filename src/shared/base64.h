/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Base64 (RFC 4648, with padding) used for stdin. decode returns -EINVAL on bad input. */
char *base64_encode(const void *data, size_t len);
int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);
