/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a JsonReader reports, kept as "key: message" lines, so that a table case can state every
 * message it expects, exactly and in order, as one string. Include after <cmocka.h>.
 */

#include <stdio.h>

#include "shared/json-reader.h"

typedef struct Reports {
        char text[8192];
        size_t len;
        unsigned calls;
        const char *file; /* the file every report must name */
} Reports;

static void reports_capture(const char *file, const char *key, const char *message, void *userdata) {
        Reports *r = userdata;

        assert_string_equal(file, r->file);
        r->calls++;
        int n = snprintf(r->text + r->len, sizeof(r->text) - r->len, "%s%s: %s", r->len ? "\n" : "", key,
                         message);
        assert_true(n > 0 && (size_t) n < sizeof(r->text) - r->len);
        r->len += (size_t) n;
}

/* A reader of `file` reporting into *r, which starts empty. */
static JsonReader reports_reader(Reports *r, const char *file) {
        *r = (Reports){.file = file};
        return (JsonReader){.on_error = reports_capture, .userdata = r, .file = file};
}
