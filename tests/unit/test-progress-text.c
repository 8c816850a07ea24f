/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "launcher/progress-text.h"
#include "shared/limits.h"
#include "shared/util.h"

static void assert_notify(const char *msg, size_t len, int want_r, const char *want) {
        _cleanup_free_ char *text = NULL;
        int r = progress_text_from_notify(msg, len, &text);

        assert_int_equal(r, want_r);
        if (want)
                assert_string_equal(text, want);
}

static void test_from_notify(void **state) {
        static const char several[] = "STATUS=10%\nREADY=1\nSTATUS=40% resized 4 of 10\n";

        assert_notify(several, strlen(several), 1, "40% resized 4 of 10");
        assert_notify("STATUS=done", 11, 1, "done");
        assert_notify("STATUS=", 7, 1, "");
        assert_notify("READY=1\nBARRIER=1", 17, 0, NULL);
        assert_notify("", 0, 0, NULL);
        /* A key that only starts like STATUS is another key. */
        assert_notify("XSTATUS=1\nSTATUSX=2", 19, 0, NULL);
        /* A NUL inside the datagram ends the text, as it ends systemd's C string. */
        assert_notify("STATUS=a\0b", 10, 1, "a");
}

static void test_clean(void **state) {
        char longer[PROGRESS_BYTES_MAX + 8];
        _cleanup_free_ char *tabs = progress_text_clean("a\tb\rc\x7f"
                                                        "d",
                                                        7);
        _cleanup_free_ char *cut = NULL, *exact = NULL;

        assert_string_equal(tabs, "a b c d");

        /* 255 ASCII bytes and a two-byte character across the limit: cut before the character. */
        memset(longer, 'a', PROGRESS_BYTES_MAX - 1);
        memcpy(longer + PROGRESS_BYTES_MAX - 1, "\xc3\xa9xyz", 6);
        cut = progress_text_clean(longer, strlen(longer));
        assert_int_equal(strlen(cut), PROGRESS_BYTES_MAX - 1);

        memset(longer, 'b', PROGRESS_BYTES_MAX);
        longer[PROGRESS_BYTES_MAX] = '\0';
        exact = progress_text_clean(longer, strlen(longer));
        assert_int_equal(strlen(exact), PROGRESS_BYTES_MAX);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_from_notify),
                cmocka_unit_test(test_clean),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
