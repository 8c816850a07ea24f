/* SPDX-License-Identifier: MIT */
#include "front/utf8.h"

/* Length of the UTF-8 sequence starting at s (1..4), or 0 if it is not a valid, shortest-form
 * encoding of a scalar value. */
size_t utf8_sequence_len(const unsigned char *s, size_t avail) {
        unsigned char c = s[0];

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                return avail >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (c >= 0xe0 && c <= 0xef) {
                if (avail < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
                        return 0;
                if (c == 0xe0 && s[1] < 0xa0) /* overlong */
                        return 0;
                if (c == 0xed && s[1] >= 0xa0) /* UTF-16 surrogate */
                        return 0;
                return 3;
        }
        if (c >= 0xf0 && c <= 0xf4) {
                if (avail < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                        return 0;
                if (c == 0xf0 && s[1] < 0x90) /* overlong */
                        return 0;
                if (c == 0xf4 && s[1] >= 0x90) /* past U+10FFFF */
                        return 0;
                return 4;
        }
        return 0;
}

size_t utf8_valid_len(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        while (p < end) {
                size_t n;

                if (*p < 0x80) {
                        p++;
                        continue;
                }
                n = utf8_sequence_len(p, (size_t) (end - p));
                if (n == 0)
                        break;
                p += n;
        }
        return (size_t) (p - (const unsigned char *) s);
}
