/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/frame.h"
#include "shared/limits.h"
#include "shared/util.h"

/* Events are rendered as text so that a whole exchange compares in one assertion:
 * a frame is "<bytes>", FRAME_TOO_LARGE is "!". Frames may hold NUL bytes, so lengths are explicit. */
typedef struct Output {
        char buf[4096];
        size_t len;
} Output;

static void output_add(Output *o, const void *p, size_t n) {
        assert_true(o->len + n <= sizeof(o->buf));
        memcpy(o->buf + o->len, p, n);
        o->len += n;
}

static void drain(FrameReader *r, Output *o) {
        const char *line;
        size_t len;
        FrameEvent ev;

        while ((ev = frame_reader_next(r, &line, &len)) != FRAME_NONE) {
                if (ev == FRAME_TOO_LARGE) {
                        output_add(o, "!", 1);
                        continue;
                }
                assert_int_equal(ev, FRAME_LINE);
                assert_true(len > 0);
                assert_int_equal(line[len], '\0'); /* NUL-terminated after len bytes */
                output_add(o, "<", 1);
                output_add(o, line, len);
                output_add(o, ">", 1);
        }
}

#define S(x) x, sizeof(x) - 1

typedef struct FrameCase {
        const char *name;
        size_t max;
        const char *input;
        size_t input_len;
        const char *expect;
        size_t expect_len;
        size_t pending; /* bytes of a half frame left at the end */
} FrameCase;

static const FrameCase frame_cases[] = {
        {"one frame", 8, S("abc\n"), S("<abc>"), 0},
        {"no newline yet", 8, S("abc"), S(""), 3},
        {"pipelined", 8, S("a\nb\nc\n"), S("<a><b><c>"), 0},
        {"pipelined with half frame", 8, S("a\nb\ncd"), S("<a><b>"), 2},
        {"crlf", 8, S("a\r\nb\r\n"), S("<a><b>"), 0},
        {"only one cr dropped", 8, S("a\r\r\n"), S("<a\r>"), 0},
        {"cr alone is data", 8, S("a\rb\n"), S("<a\rb>"), 0},
        {"empty lines skipped", 8, S("\n\r\n\nx\n\r\n"), S("<x>"), 0},
        {"spaces are a frame", 8, S(" \n"), S("< >"), 0},
        {"nul bytes pass", 8, S("a\0b\n\0\n"), S("<a\0b><\0>"), 0},
        {"limit exactly", 8, S("12345678\n"), S("<12345678>"), 0},
        {"limit plus one", 8, S("123456789\n"), S("!"), 0},
        {"limit exactly with crlf", 8, S("12345678\r\n"), S("<12345678>"), 0},
        {"limit plus one with crlf", 8, S("123456789\r\n"), S("!"), 0},
        {"limit plus one, no newline yet", 8, S("123456789"), S("!"), 0},
        {"limit with cr, no newline yet", 8, S("12345678\r"), S(""), 9},
        {"over-long then normal", 8, S("1234567890123\nok\n"), S("!<ok>"), 0},
        {"normal, over-long, normal", 8, S("a\n1234567890123456789\nb\n"), S("<a>!<b>"), 0},
        {"two over-long in a row", 8, S("xxxxxxxxxxxx\nyyyyyyyyyyyyyy\nz\n"), S("!!<z>"), 0},
        {"over-long at end of input", 8, S("a\nxxxxxxxxxxxxxxxxxxx"), S("<a>!"), 0},
        {"over-long with nul bytes", 4, S("\0\0\0\0\0\n\0\n"), S("!<\0>"), 0},
        {"limit 1", 1, S("a\nbc\nd\n"), S("<a>!<d>"), 0},
        {"discarding eats empty lines' newline only once", 4, S("xxxxxxxx\n\nabcd\n"), S("!<abcd>"), 0},
};

/* Every case must give the same events however the input is split. */
static const size_t chunkings[] = {SIZE_MAX, 1, 2, 3, 5, 7, 13};

static void test_frame_table(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(frame_cases); i++) {
                const FrameCase *c = &frame_cases[i];

                for (size_t j = 0; j < ELEMENTSOF(chunkings); j++) {
                        FrameReader *r = NULL;
                        Output o = {};

                        assert_int_equal(frame_reader_new(c->max, &r), 0);
                        for (size_t off = 0; off < c->input_len;) {
                                size_t n = c->input_len - off < chunkings[j] ? c->input_len - off
                                                                             : chunkings[j];
                                assert_int_equal(frame_reader_feed(r, c->input + off, n), 0);
                                off += n;
                                drain(r, &o);
                        }
                        if (o.len != c->expect_len || memcmp(o.buf, c->expect, o.len) != 0)
                                fail_msg("case '%s', chunk %zu: got '%.*s', want '%.*s'", c->name,
                                         chunkings[j], (int) o.len, o.buf, (int) c->expect_len, c->expect);
                        if (frame_reader_pending(r) != c->pending)
                                fail_msg("case '%s', chunk %zu: pending %zu, want %zu", c->name,
                                         chunkings[j], frame_reader_pending(r), c->pending);
                        frame_reader_free(r);
                }
        }
}

static void test_frame_new_limits(void **state) {
        FrameReader *r = NULL;

        assert_int_equal(frame_reader_new(0, &r), -EINVAL);
        assert_null(r);
        assert_int_equal(frame_reader_new(FRAME_READER_MAX + 1, &r), -EINVAL);
        assert_null(r);
        assert_int_equal(frame_reader_new(FRAME_READER_MAX, &r), 0);
        assert_non_null(r);
        assert_null(frame_reader_free(r));
        assert_null(frame_reader_free(NULL));
}

static void test_frame_empty_next(void **state) {
        FrameReader *r = NULL;
        const char *line = (const char *) 0x1;
        size_t len = 77;

        assert_int_equal(frame_reader_new(16, &r), 0);
        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_NONE);
        assert_int_equal(frame_reader_pending(r), 0);
        assert_int_equal(frame_reader_feed(r, "", 0), 0);
        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_NONE);
        /* Out parameters are left alone when there is no frame. */
        assert_ptr_equal(line, (const char *) 0x1);
        assert_int_equal(len, 77);
        frame_reader_free(r);
}

/* A frame of exactly the default limit arriving in read-sized pieces, then one byte more. */
static void test_frame_big_at_limit(void **state) {
        size_t max = FRAME_BYTES_DEFAULT;
        char *data = malloc(max + 2);
        FrameReader *r = NULL;
        const char *line;
        size_t len;

        assert_non_null(data);
        for (size_t i = 0; i < max; i++)
                data[i] = (char) ('a' + i % 26);
        data[max] = '\n';

        assert_int_equal(frame_reader_new(max, &r), 0);
        for (size_t off = 0; off < max + 1; off += 1000) {
                size_t n = max + 1 - off < 1000 ? max + 1 - off : 1000;
                assert_int_equal(frame_reader_feed(r, data + off, n), 0);
                if (off + n < max + 1) {
                        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_NONE);
                        assert_int_equal(frame_reader_pending(r), off + n);
                }
        }
        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_LINE);
        assert_int_equal(len, max);
        assert_memory_equal(line, data, max);
        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_NONE);

        /* One byte more: too large, reported once, as soon as it is certain (before the newline). */
        data[max] = 'x';
        data[max + 1] = '\n';
        for (size_t off = 0; off < max + 1; off += 4096) {
                size_t n = max + 1 - off < 4096 ? max + 1 - off : 4096;
                assert_int_equal(frame_reader_feed(r, data + off, n), 0);
                FrameEvent ev = frame_reader_next(r, &line, &len);
                assert_int_equal(ev, off + n == max + 1 ? FRAME_TOO_LARGE : FRAME_NONE);
        }
        assert_int_equal(frame_reader_pending(r), 0); /* nothing held while discarding */
        assert_int_equal(frame_reader_feed(r, "\nnext\n", 6), 0);
        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_LINE);
        assert_int_equal(len, 4);
        assert_string_equal(line, "next");
        assert_int_equal(frame_reader_next(r, &line, &len), FRAME_NONE);
        frame_reader_free(r);
        free(data);
}

/* Many small frames in one feed: all come out, in order. Done with a large count so that a reader
 * that moved the buffer once per frame (quadratic) would not finish. */
static void test_frame_pipelining(void **state) {
        const size_t count = 200000;
        size_t cap = count * 16, len = 0, got = 0;
        char *data = malloc(cap);
        FrameReader *r = NULL;
        const char *line;
        size_t n;
        FrameEvent ev;

        assert_non_null(data);
        for (size_t i = 0; i < count; i++)
                len += (size_t) snprintf(data + len, cap - len, "f%zu\n", i);

        assert_int_equal(frame_reader_new(64, &r), 0);
        /* In one feed, then again split at an odd size so frames straddle feeds. */
        for (int pass = 0; pass < 2; pass++) {
                size_t chunk = pass == 0 ? len : 4093;

                got = 0;
                for (size_t off = 0; off < len; off += chunk) {
                        assert_int_equal(
                                frame_reader_feed(r, data + off, len - off < chunk ? len - off : chunk), 0);
                        while ((ev = frame_reader_next(r, &line, &n)) == FRAME_LINE) {
                                char want[32];
                                snprintf(want, sizeof(want), "f%zu", got++);
                                assert_string_equal(line, want);
                                assert_int_equal(n, strlen(want));
                        }
                        assert_int_equal(ev, FRAME_NONE);
                }
                assert_int_equal(got, count);
                assert_int_equal(frame_reader_pending(r), 0);
        }
        frame_reader_free(r);
        free(data);
}

static FrameEvent next_event(FrameReader *r, const char **line, size_t *len) {
        return frame_reader_next(r, line, len);
}

static void test_frame_set_max(void **state) {
        FrameReader *r = NULL;
        const char *line;
        size_t len;

        /* A raised limit applies to the next frame. */
        assert_int_equal(frame_reader_new(8, &r), 0);
        assert_int_equal(frame_reader_feed(r, S("1234567890\n")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_TOO_LARGE);
        assert_int_equal(next_event(r, &line, &len), FRAME_NONE);
        frame_reader_set_max(r, 16);
        assert_int_equal(frame_reader_feed(r, S("1234567890\n")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_LINE);
        assert_int_equal(len, 10);
        frame_reader_free(r);

        /* A frame already begun keeps the old limit; the one after it gets the new one. */
        assert_int_equal(frame_reader_new(16, &r), 0);
        assert_int_equal(frame_reader_feed(r, S("1234567890")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_NONE);
        frame_reader_set_max(r, 4);
        assert_int_equal(frame_reader_feed(r, S("\nabcd\nabcde\n")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_LINE);
        assert_string_equal(line, "1234567890");
        assert_int_equal(next_event(r, &line, &len), FRAME_LINE);
        assert_string_equal(line, "abcd");
        assert_int_equal(next_event(r, &line, &len), FRAME_TOO_LARGE);
        assert_int_equal(next_event(r, &line, &len), FRAME_NONE);
        frame_reader_free(r);

        /* Changed while discarding: the rest of the over-long frame is still dropped. */
        assert_int_equal(frame_reader_new(4, &r), 0);
        assert_int_equal(frame_reader_feed(r, S("xxxxxxx")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_TOO_LARGE);
        frame_reader_set_max(r, 100);
        assert_int_equal(frame_reader_feed(r, S("yyyyyyyyyy\nzzzzzzzzzz\n")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_LINE);
        assert_string_equal(line, "zzzzzzzzzz");
        assert_int_equal(next_event(r, &line, &len), FRAME_NONE);

        /* Out-of-range values are clamped rather than left unbounded. */
        frame_reader_set_max(r, 0);
        assert_int_equal(frame_reader_feed(r, S("a\nab\n")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_LINE);
        assert_int_equal(next_event(r, &line, &len), FRAME_TOO_LARGE);
        assert_int_equal(next_event(r, &line, &len), FRAME_NONE);
        frame_reader_free(r);
}

/* An over-long frame is reported with its first bytes, so that the caller can tell what it was: all
 * that is buffered of it when it is cut short, the whole frame when its newline came in the same
 * feed. */
static void test_frame_too_large_head(void **state) {
        FrameReader *r = NULL;
        const char *line;
        size_t len;

        assert_int_equal(frame_reader_new(8, &r), 0);
        assert_int_equal(frame_reader_feed(r, S("s:5:\"ab")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_NONE);
        assert_int_equal(frame_reader_feed(r, S("cde\";xyz")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_TOO_LARGE);
        assert_int_equal(len, 15);
        assert_memory_equal(line, "s:5:\"abcde\";xyz", 15);
        assert_int_equal(frame_reader_feed(r, S("rest\nO:123456789\nok\n")), 0);
        assert_int_equal(next_event(r, &line, &len), FRAME_TOO_LARGE);
        assert_int_equal(len, 11);
        assert_memory_equal(line, "O:123456789", 11);
        assert_int_equal(next_event(r, &line, &len), FRAME_LINE);
        assert_string_equal(line, "ok");
        frame_reader_free(r);
}

/* After a frame is handed out, the caller may keep using the pointer until its next call. */
static void test_frame_line_stays_valid(void **state) {
        FrameReader *r = NULL;
        const char *a, *b;
        size_t la, lb;

        assert_int_equal(frame_reader_new(32, &r), 0);
        assert_int_equal(frame_reader_feed(r, S("first\nsecond\nthi")), 0);
        assert_int_equal(next_event(r, &a, &la), FRAME_LINE);
        assert_string_equal(a, "first");
        assert_int_equal(next_event(r, &b, &lb), FRAME_LINE);
        assert_string_equal(b, "second");
        assert_int_equal(next_event(r, &b, &lb), FRAME_NONE);
        assert_int_equal(frame_reader_pending(r), 3);
        assert_int_equal(frame_reader_feed(r, S("rd\n")), 0);
        assert_int_equal(next_event(r, &b, &lb), FRAME_LINE);
        assert_string_equal(b, "third");
        frame_reader_free(r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_frame_table),
                cmocka_unit_test(test_frame_new_limits),
                cmocka_unit_test(test_frame_empty_next),
                cmocka_unit_test(test_frame_big_at_limit),
                cmocka_unit_test(test_frame_pipelining),
                cmocka_unit_test(test_frame_set_max),
                cmocka_unit_test(test_frame_line_stays_valid),
                cmocka_unit_test(test_frame_too_large_head),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
