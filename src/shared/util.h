/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Small helpers shared by every module: scoped cleanup, ownership transfer,
 * string comparison and time. Header only; nothing here does I/O.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_     __attribute__((noreturn))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership out of a _cleanup_ variable: returns the value and clears the variable. */
#define TAKE_PTR(p)                                                                                         \
        ({                                                                                                  \
                __typeof__(p) _taken = (p);                                                                 \
                (p) = NULL;                                                                                 \
                _taken;                                                                                     \
        })

#define TAKE_FD(fd)                                                                                         \
        ({                                                                                                  \
                int _taken = (fd);                                                                          \
                (fd) = -1;                                                                                  \
                _taken;                                                                                     \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0)
                (void) close(*fd);
}

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

/* Defines FUNCp(), for _cleanup_(FUNCp) on a variable of type TYPE* that FUNC(TYPE*) frees (FUNC
 * accepts NULL, as every destructor here does): one line per owned type instead of one body each. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                             \
        static inline void func##p(type *p) {                                                               \
                if (*p)                                                                                     \
                        (void) func(*p);                                                                    \
        }

#define _cleanup_free_   _cleanup_(freep)
#define _cleanup_close_  _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* NULL-terminated arrays of malloc'd strings (argv, environments). */
static inline void strv_free(char **v) {
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

static inline void strv_freep(char ***v) {
        strv_free(*v);
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Microseconds on CLOCK_MONOTONIC (timers, deadlines) and CLOCK_REALTIME (records shown to people). */
static inline uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

#define USEC_PER_SEC  1000000ULL
#define USEC_PER_MSEC 1000ULL
