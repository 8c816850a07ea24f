/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * How a task's argv reaches it through asynctask-exec (src/asynctask-exec.c): the systemd executor
 * puts the arguments of a unit's ExecStart= in hex when one of them holds a byte that systemd does
 * not write back unchanged into the transient unit's file (docs/systemd.md, "How arguments reach a
 * task"). Header only, shared by the executor and the helper; nothing here does I/O.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Bytes that systemd 252 does not read back unchanged from the unit file it writes for a transient
 * unit: "$" and ";" come back as "\$" and "\;". Conservatively also "\" (an escape character in the
 * file) and everything outside printable ASCII (written C-escaped). Every other byte is kept. */
static inline bool exec_byte_round_trips(unsigned char c) {
        return c >= 0x20 && c <= 0x7e && c != '$' && c != ';' && c != '\\';
}

/* Whether argv (the program's path is argv[0]) must go through asynctask-exec. */
static inline bool exec_argv_needs_helper(char *const *argv) {
        for (size_t i = 0; argv[i]; i++)
                for (const unsigned char *p = (const unsigned char *) argv[i]; *p; p++)
                        if (!exec_byte_round_trips(*p))
                                return true;
        return false;
}

/* s in lowercase hex ("" for ""); NULL when out of memory. */
static inline char *exec_hex_encode(const char *s) {
        static const char digits[] = "0123456789abcdef";
        size_t n = strlen(s);
        char *out = malloc(2 * n + 1);

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[(unsigned char) s[i] >> 4];
                out[2 * i + 1] = digits[(unsigned char) s[i] & 0xf];
        }
        out[2 * n] = 0;
        return out;
}

static inline int exec_hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Decodes the lowercase hex string hex into a new string. Returns NULL and sets *error to what is
 * wrong (odd length, a character that is not [0-9a-f], a NUL byte, out of memory). */
static inline char *exec_hex_decode(const char *hex, const char **error) {
        size_t n = strlen(hex);
        char *out;

        if (n % 2 != 0) {
                *error = "odd number of hex digits";
                return NULL;
        }
        out = malloc(n / 2 + 1);
        if (!out) {
                *error = "out of memory";
                return NULL;
        }
        for (size_t i = 0; i < n / 2; i++) {
                int hi = exec_hex_digit(hex[2 * i]), lo = exec_hex_digit(hex[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        *error = "not a lowercase hex digit";
                        free(out);
                        return NULL;
                }
                if (hi == 0 && lo == 0) {
                        *error = "encodes a NUL byte";
                        free(out);
                        return NULL;
                }
                out[i] = (char) (hi << 4 | lo);
        }
        out[n / 2] = 0;
        return out;
}
