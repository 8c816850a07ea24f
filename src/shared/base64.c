/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>

#include "shared/base64.h"
#include "shared/util.h"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len) {
        const unsigned char *p = data;
        char *out, *o;

        if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        out = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;

        o = out;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t left = len - i;

                if (left > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (left > 2)
                        v |= p[i + 2];
                *o++ = b64_alphabet[(v >> 18) & 63];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
                *o++ = left > 2 ? b64_alphabet[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Strict: length a multiple of 4, only alphabet characters, '=' only as the last one or two characters,
 * and the unused bits before padding zero (so each byte string has exactly one encoding). */
int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = NULL;
        size_t n = 0;

        if (len % 4 != 0)
                return -EINVAL;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int v[4];
                unsigned pad = 0;

                for (size_t k = 0; k < 4; k++) {
                        char c = s[i + k];

                        if (c == '=' && last && k >= 2) {
                                v[k] = 0;
                                pad++;
                                continue;
                        }
                        if (pad > 0) /* data after padding */
                                return -EINVAL;
                        v[k] = b64_value(c);
                        if (v[k] < 0)
                                return -EINVAL;
                }
                if (pad == 2 && (v[1] & 0x0f))
                        return -EINVAL;
                if (pad == 1 && (v[2] & 0x03))
                        return -EINVAL;

                uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 |
                             (uint32_t) v[3];
                out[n++] = (char) (w >> 16);
                if (pad < 2)
                        out[n++] = (char) (w >> 8 & 0xff);
                if (pad < 1)
                        out[n++] = (char) (w & 0xff);
        }
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}
