/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "launcher/unit-name.h"
#include "shared/util.h"

void unit_name_from_id(uint64_t id, char buf[static UNIT_NAME_SIZE]) {
        snprintf(buf, UNIT_NAME_SIZE, UNIT_NAME_PREFIX "%" PRIu64 UNIT_NAME_SUFFIX, id);
}

int unit_name_to_id(const char *name, uint64_t *ret) {
        const char *digits, *p;
        uint64_t id = 0;

        if (!name || !startswith(name, UNIT_NAME_PREFIX))
                return -EINVAL;
        digits = name + strlen(UNIT_NAME_PREFIX);
        for (p = digits; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned) (*p - '0');
                if (id > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                id = id * 10 + d;
        }
        if (p == digits || (p - digits > 1 && digits[0] == '0') || !streq(p, UNIT_NAME_SUFFIX) || id == 0)
                return -EINVAL;
        *ret = id;
        return 0;
}
