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

#include "shared/limits.h"
#include "front/decode.h"
#include "front/request.h"
#include "front/seed.h"
#include "shared/util.h"

#define S(x) x, sizeof(x) - 1

/* Frames as the old PHP clients produce them with serialize(). */
typedef struct GoodSeed {
        const char *name;
        const char *frame;
        size_t len;
        const char *cmd;       /* for s: frames */
        const char *php_class; /* for O: frames; stdin must then be the whole frame */
} GoodSeed;

static const GoodSeed good_seeds[] = {
        {"command", S("s:2:\"ls\";"), "ls", NULL},
        {"command with quotes", S("s:18:\"echo \"hello world\"\";"), "echo \"hello world\"", NULL},
        {"command with ';' and '\"'", S("s:7:\"a\";b;\"c\";"), "a\";b;\"c", NULL},
        {"command in UTF-8", S("s:10:\"echo caf\xc3\xa9\";"), "echo caf\xc3\xa9", NULL},
        {"empty object", S("O:4:\"Lamb\":0:{}"), NULL, "Lamb"},
        {"object with properties",
         S("O:4:\"Lamb\":2:{s:4:\"name\";s:3:\"foo\";s:4:\"args\";a:2:{i:0;s:1:\"a\";i:1;s:1:\"b\";}}"),
         NULL, "Lamb"},
        {"private and protected properties (NUL bytes)",
         S("O:4:\"Lamb\":2:{s:10:\"\0Lamb\0name\";s:1:\"x\";s:7:\"\0*\0prop\";i:7;}"), NULL, "Lamb"},
        {"namespaced class", S("O:12:\"App\\Jobs\\Foo\":0:{}"), NULL, "App\\Jobs\\Foo"},
        {"every scalar type",
         S("O:1:\"A\":11:{s:1:\"n\";N;s:1:\"b\";b:1;s:2:\"b0\";b:0;s:1:\"i\";i:-42;s:1:\"d\";d:0.5;"
           "s:2:\"d2\";d:-INF;s:2:\"d3\";d:NAN;s:2:\"d4\";d:1.0E+25;s:2:\"d5\";d:INF;s:1:\"S\";S:3:"
           "\"\\61bc\";"
           "s:1:\"e\";E:7:\"Suit:Up\";}"),
         NULL, "A"},
        {"nested objects and arrays",
         S("O:1:\"A\":2:{s:1:\"o\";O:1:\"B\":1:{s:1:\"a\";a:1:{i:0;a:0:{}}}s:1:\"x\";a:1:{s:1:\"k\";O:1:"
           "\"C\":0:{}}}"),
         NULL, "A"},
        {"Serializable payload",
         S("O:1:\"A\":1:{s:1:\"c\";C:11:\"ArrayObject\":21:{x:i:0;a:0:{};m:a:0:{}}}"), NULL, "A"},
        {"references", S("O:1:\"A\":3:{s:1:\"a\";i:1;s:1:\"b\";R:2;s:1:\"c\";r:1;}"), NULL, "A"},
        {"integer keys", S("O:1:\"A\":2:{i:0;s:1:\"x\";i:-5;N;}"), NULL, "A"},
        {"non-ASCII class name", S("O:5:\"Caf\xc3\xa9\":0:{}"), NULL, "Caf\xc3\xa9"},
        {"string with every byte value", S("O:1:\"A\":1:{s:1:\"s\";s:4:\"\xff\0\n\"\";}"), NULL, "A"},
};

static void test_seed_good(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(good_seeds); i++) {
                const GoodSeed *c = &good_seeds[i];
                Request req = {};
                ErrorReply err = {};
                int r;

                assert_true(seed_frame_detect(c->frame, c->len));
                r = seed_parse(c->frame, c->len, &req, &err);
                if (r != 0)
                        fail_msg("%s: refused: %s", c->name, err.message);
                assert_int_equal(req.op, OP_SUBMIT);
                if (c->cmd) {
                        assert_string_equal(req.cmd, c->cmd);
                        assert_null(req.php_class);
                        assert_null(req.stdin_data);
                } else {
                        assert_null(req.cmd);
                        assert_string_equal(req.php_class, c->php_class);
                        assert_int_equal(req.stdin_len, c->len);
                        assert_memory_equal(req.stdin_data, c->frame, c->len);
                        assert_int_equal(req.stdin_data[c->len], '\0');
                }
                assert_null(req.task);
                assert_null(req.args);
                assert_null(req.key);
                request_done(&req);

                /* decode_frame sends them here too. */
                r = decode_frame(c->frame, c->len, &req, &err);
                assert_int_equal(r, 0);
                assert_true(c->cmd ? streq(req.cmd, c->cmd) : streq(req.php_class, c->php_class));
                request_done(&req);
        }
}

typedef struct BadSeed {
        const char *frame;
        size_t len;
        const char *message;
} BadSeed;

static const BadSeed bad_seeds[] = {
        /* s: frames */
        {S("s:3:\"ls\";"), "seed frame: string length 3 does not match the data at byte 4"},
        {S("s:1:\"ls\";"), "seed frame: string length 1 does not match the data at byte 4"},
        {S("s:2:\"ls\""), "seed frame: truncated at byte 8, expected ';'"},
        {S("s:2:\"ls\";x"), "seed frame: unexpected bytes after the string at byte 9"},
        {S("s:2:\"ls\";\n"), "seed frame: unexpected bytes after the string at byte 9"},
        {S("s:02:\"ls\";"), "seed frame: string length at byte 2 has a leading zero"},
        {S("s:-2:\"ls\";"), "seed frame: expected a string length at byte 2"},
        {S("s:+2:\"ls\";"), "seed frame: expected a string length at byte 2"},
        {S("s:"), "seed frame: expected a string length at byte 2"},
        {S("s:2"), "seed frame: truncated at byte 3, expected ':'"},
        {S("s:2:ls;"), "seed frame: expected '\"' at byte 4, found 'l'"},
        {S("s:99999999999999999999999:\"x\";"), "seed frame: string length at byte 2 exceeds the frame"},
        {S("s:18446744073709551617:\"x\";"), "seed frame: string length at byte 2 exceeds the frame"},
        {S("s:0:\"\";"), "seed frame: empty command"},
        {S("s:3:\"a\0b\";"), "seed frame: command contains a NUL byte"},
        {S("s:1:\"\xff\";"), "seed frame: command is not valid UTF-8"},
        /* O: frames: structure */
        {S("O:"), "seed frame: expected a class name length at byte 2"},
        {S("O:4:\"Lamb\":1:{s:4:\"name\";s:3:\"foo\";"), "seed frame: truncated at byte 35, expected '}'"},
        {S("O:4:\"Lamb\":1:{s:4:\"name\";s:3:\"foo\""), "seed frame: truncated at byte 34, expected ';'"},
        {S("O:4:\"Lamb\":1:{s:4:\"name\";"), "seed frame: truncated at byte 25, expected a value"},
        {S("O:4:\"Lamb\":2:{s:4:\"name\";s:3:\"foo\";}"),
         "seed frame: object at byte 13 claims 2 elements but has 1"},
        {S("O:4:\"Lamb\":1:{s:4:\"name\";s:3:\"foo\";s:1:\"x\";N;}"),
         "seed frame: object at byte 13 claims 1 elements but has more"},
        {S("O:4:\"Lamb\":0:{}x"), "seed frame: unexpected bytes after the object at byte 15"},
        {S("O:4:\"Lamb\":0:{}\0"), "seed frame: unexpected bytes after the object at byte 15"},
        {S("O:4:\"Lamb\":0:[]"), "seed frame: expected '{' at byte 13, found '['"},
        {S("O:4:\"Lamb\":00:{}"), "seed frame: element count at byte 11 has a leading zero"},
        /* lying lengths, at the top and nested */
        {S("O:5:\"Lamb\":0:{}"), "seed frame: class name length 5 does not match the data at byte 4"},
        {S("O:3:\"Lamb\":0:{}"), "seed frame: class name length 3 does not match the data at byte 4"},
        {S("O:4:\"Lamb\":1:{s:4:\"name\";s:10:\"foo\";}"),
         "seed frame: string length 10 does not match the data at byte 30"},
        {S("O:4:\"Lamb\":1:{s:5:\"name\";s:3:\"foo\";}"),
         "seed frame: string length 5 does not match the data at byte 18"},
        {S("O:1:\"A\":1:{s:1:\"a\";a:2:{i:0;N;}}"),
         "seed frame: array at byte 23 claims 2 elements but has 1"},
        {S("O:1:\"A\":1:{s:1:\"a\";a:1:{i:0;N;i:1;N;}}"),
         "seed frame: array at byte 23 claims 1 elements but has more"},
        {S("O:1:\"A\":1:{s:1:\"a\";O:1:\"B\":1:{}}"),
         "seed frame: object at byte 29 claims 1 elements but has 0"},
        {S("O:1:\"A\":1:{s:1:\"c\";C:1:\"B\":5:{abc}}"),
         "seed frame: custom data length 5 does not match the data at byte 29"},
        {S("O:1:\"A\":1:{s:1:\"s\";S:3:\"\\61b\";}"),
         "seed frame: string length 3 does not match the data at byte 23"},
        /* class names */
        {S("O:0:\"\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:3:\"1ab\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:3:\"a b\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:4:\"\\Foo\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:4:\"Foo\\\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:5:\"A\\\\Bc\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:3:\"A\0B\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:1:\"\xff\":0:{}"), "seed frame: invalid class name at byte 2"},
        {S("O:1:\"A\":1:{s:1:\"o\";O:1:\"-\":0:{}}"), "seed frame: invalid class name at byte 21"},
        /* values */
        {S("O:1:\"A\":1:{d:1.5;N;}"), "seed frame: expected an i: or s: key at byte 11"},
        {S("O:1:\"A\":1:{N;N;}"), "seed frame: expected an i: or s: key at byte 11"},
        {S("O:1:\"A\":1:{s:1:\"a\";x:1;}"), "seed frame: unknown value type 'x' at byte 19"},
        {S("O:1:\"A\":1:{s:1:\"a\";\x01:1;}"), "seed frame: unknown value type 0x01 at byte 19"},
        {S("O:1:\"A\":1:{s:1:\"a\";b:2;}"), "seed frame: expected 0 or 1 at byte 21"},
        {S("O:1:\"A\":1:{s:1:\"a\";b:;}"), "seed frame: expected 0 or 1 at byte 21"},
        {S("O:1:\"A\":1:{s:1:\"a\";i:abc;}"), "seed frame: expected an integer at byte 21"},
        {S("O:1:\"A\":1:{s:1:\"a\";i:1.5;}"), "seed frame: expected ';' at byte 22, found '.'"},
        {S("O:1:\"A\":1:{s:1:\"a\";i:9223372036854775808;}"), "seed frame: integer at byte 21 out of range"},
        {S("O:1:\"A\":1:{s:1:\"a\";i:-9223372036854775809;}"),
         "seed frame: integer at byte 21 out of range"},
        {S("O:1:\"A\":1:{s:1:\"a\";d:1.5.5;}"), "seed frame: expected ';' at byte 24, found '.'"},
        {S("O:1:\"A\":1:{s:1:\"a\";d:e5;}"), "seed frame: expected a number at byte 21"},
        {S("O:1:\"A\":1:{s:1:\"a\";d:1e;}"), "seed frame: bad exponent at byte 23"},
        {S("O:1:\"A\":1:{s:1:\"a\";N:;}"), "seed frame: expected ';' at byte 20, found ':'"},
        {S("O:1:\"A\":1:{s:1:\"a\";r:0;}"), "seed frame: reference 0 at byte 19 points to no earlier value"},
        {S("O:1:\"A\":1:{s:1:\"a\";R:2;}"), "seed frame: reference 2 at byte 19 points to no earlier value"},
        {S("O:1:\"A\":1:{s:1:\"a\";r:-1;}"),
         "seed frame: reference -1 at byte 19 points to no earlier value"},
        {S("O:1:\"A\":1:{s:1:\"a\";S:1:\"\\zz\";}"), "seed frame: bad escape in string at byte 24"},
        {S("O:1:\"A\":1:{s:1:\"a\";S:1:\"\\6\";}"), "seed frame: bad escape in string at byte 24"},
        {S("O:1:\"A\":1:{s:1:\"a\";E:4:\"Suit\";}"), "seed frame: invalid enum name at byte 19"},
        {S("O:1:\"A\":1:{s:1:\"a\";E:5:\"Suit:\";}"), "seed frame: invalid enum name at byte 19"},
        {S("O:1:\"A\":1:{s:1:\"a\";E:6:\"S:U\\ p\";}"), "seed frame: invalid enum name at byte 19"},
};

static void test_seed_bad(void **state) {
        unsigned failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(bad_seeds); i++) {
                const BadSeed *c = &bad_seeds[i];
                Request req = {};
                ErrorReply err = {};
                int r;

                r = seed_parse(c->frame, c->len, &req, &err);
                if (r != -EBADMSG || err.code != ERR_BAD_FRAME || !streq(err.message, c->message)) {
                        print_error("seed %zu '%.*s': got %d %s '%s', want '%s'\n", i, (int) c->len,
                                    c->frame, r, error_code_to_string(err.code), err.message, c->message);
                        failures++;
                }
                assert_null(req.cmd);
                assert_null(req.php_class);
                assert_null(req.stdin_data);
                if (r == 0)
                        request_done(&req);
        }
        assert_int_equal(failures, 0);
}

static void test_seed_detect(void **state) {
        assert_true(seed_frame_detect(S("s:")));
        assert_true(seed_frame_detect(S("O:")));
        assert_true(seed_frame_detect(S("s:2:\"ls\";")));
        assert_false(seed_frame_detect(S("s")));
        assert_false(seed_frame_detect(S("")));
        assert_false(seed_frame_detect(S("S:2:\"ls\";")));
        assert_false(seed_frame_detect(S("o:4:\"Lamb\":0:{}")));
        assert_false(seed_frame_detect(S("a:0:{}")));
        assert_false(seed_frame_detect(S("{\"op\":\"ping\"}")));
        assert_false(seed_frame_detect(S(" s:2:\"ls\";")));

        Request req = {};
        ErrorReply err = {};
        assert_int_equal(seed_parse(S("a:0:{}"), &req, &err), -EBADMSG);
        assert_string_equal(err.message, "seed frame: must start with s: or O:");
}

/* An object nested `levels` deep: O:1:"A":1:{i:0;a:1:{i:0;a:1:{ ... N; }}} */
static char *nested_frame(unsigned levels, size_t *ret_len) {
        size_t cap = 32 + levels * 16, len = 0;
        char *s = malloc(cap);

        assert_non_null(s);
        len += (size_t) snprintf(s + len, cap - len, "O:1:\"A\":1:{i:0;");
        for (unsigned i = 1; i < levels; i++)
                len += (size_t) snprintf(s + len, cap - len, "a:1:{i:0;");
        len += (size_t) snprintf(s + len, cap - len, "N;");
        for (unsigned i = 0; i < levels; i++)
                s[len++] = '}';
        s[len] = '\0';
        *ret_len = len;
        return s;
}

static void test_seed_depth(void **state) {
        Request req = {};
        ErrorReply err = {};
        size_t len;
        char *s;

        s = nested_frame(SEED_DEPTH_MAX, &len);
        assert_int_equal(seed_parse(s, len, &req, &err), 0);
        assert_string_equal(req.php_class, "A");
        request_done(&req);
        free(s);

        s = nested_frame(SEED_DEPTH_MAX + 1, &len);
        assert_int_equal(seed_parse(s, len, &req, &err), -EBADMSG);
        assert_int_equal(err.code, ERR_BAD_FRAME);
        assert_non_null(strstr(err.message, "nesting deeper than 64 levels"));
        free(s);

        /* Far deeper must fail just as cleanly (no stack exhaustion). */
        s = nested_frame(100000, &len);
        assert_int_equal(seed_parse(s, len, &req, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "nesting deeper than 64 levels"));
        free(s);
}

/* Every proper prefix of a valid frame is refused: a truncated frame never passes. */
static void test_seed_truncations(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(good_seeds); i++) {
                const GoodSeed *c = &good_seeds[i];

                for (size_t n = 0; n < c->len; n++) {
                        Request req = {};
                        ErrorReply err = {};

                        if (seed_parse(c->frame, n, &req, &err) != -EBADMSG)
                                fail_msg("%s: prefix of %zu bytes accepted", c->name, n);
                        assert_int_equal(err.code, ERR_BAD_FRAME);
                        assert_true(startswith(err.message, "seed frame: "));
                }
        }
}

/* Changing any length digit of a valid frame by one makes it invalid. */
static void test_seed_lying_lengths(void **state) {
        static const char frame[] =
                "O:4:\"Lamb\":2:{s:4:\"name\";s:3:\"foo\";s:4:\"args\";a:1:{i:0;s:1:\"a\";}}";
        /* offsets of length/count digits in frame */
        static const size_t digits[] = {2, 11, 16, 27, 37, 48, 57};

        for (size_t i = 0; i < ELEMENTSOF(digits); i++)
                for (int delta = -1; delta <= 1; delta += 2) {
                        char buf[sizeof(frame)];
                        Request req = {};
                        ErrorReply err = {};

                        memcpy(buf, frame, sizeof(frame));
                        assert_true(buf[digits[i]] >= '1' && buf[digits[i]] <= '8');
                        buf[digits[i]] = (char) (buf[digits[i]] + delta);
                        if (seed_parse(buf, sizeof(frame) - 1, &req, &err) != -EBADMSG)
                                fail_msg("'%s' accepted", buf);
                }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seed_good),        cmocka_unit_test(test_seed_bad),
                cmocka_unit_test(test_seed_detect),      cmocka_unit_test(test_seed_depth),
                cmocka_unit_test(test_seed_truncations), cmocka_unit_test(test_seed_lying_lengths),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
