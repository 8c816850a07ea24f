/* SPDX-License-Identifier: MIT */
#include "front/decode.h"
#include "front/seed.h"

int decode_frame(const char *frame, size_t len, Request *ret, ErrorReply *err) {
        if (seed_frame_detect(frame, len))
                return seed_parse(frame, len, ret, err);
        return request_parse(frame, len, ret, err);
}
