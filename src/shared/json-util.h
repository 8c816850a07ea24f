/* SPDX-License-Identifier: MIT */
#pragma once

/* Scoped cleanup for cJSON trees, shared by every module that parses or builds JSON. */

#include <cjson/cJSON.h>

static inline void cjson_deletep(cJSON **p) {
        cJSON_Delete(*p);
}
