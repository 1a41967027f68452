/*
 * libFuzzer target: what a client puts in a console API request besides the body (a JSON object
 * jansson parses): a path segment (console_segment_decode) and the query string (console_query,
 * console_period). The input is used whole as a segment and as a query; the oracle checks, apart
 * from the parsers, what every endpoint relies on: a decoded value is 1..255 bytes (segments) or
 * fits its buffer, is valid UTF-8, holds no control character, no '/' (segments) and is never
 * "." or ".."; an accepted period is a non-empty span of whole UTC days of at most 731 days, and
 * a refused one is a 400 naming the parameter.
 */
#include "console_int.h"
#include "ingest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1796774400000ULL /* 2026-12-08T00:00:00Z */
#define DAY 86400000ULL

/* the promises of console_api.h for a decoded text of n bytes */
static void check_text(const char *s, int n, size_t cap)
{
    if (n < 0 || (size_t)n >= cap || strlen(s) != (size_t)n || !gw_utf8_ok(s, (size_t)n))
        abort();
    for (int i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"from", "to", "q", "customer", "before", "after", "limit", "channel", ""};
    const char *in = (const char *)data;
    char seg[CONSOLE_SEG_MAX + 1], val[256];
    console_call_t call;
    console_answer_t ans;
    uint64_t from = 0, to = 0;
    int n;

    /* the input as one path segment */
    if ((n = console_segment_decode(in, size, seg, sizeof(seg))) >= 0) {
        check_text(seg, n, sizeof(seg));
        if (n == 0 || memchr(seg, '/', (size_t)n) != NULL || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
            abort();
    } else if (n != -1) {
        abort();
    }

    /* the input as the query string */
    memset(&call, 0, sizeof(call));
    call.method = "GET";
    call.query = in;
    call.query_len = size;
    call.now_ms = NOW;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        n = console_query(&call, names[i], val, sizeof(val));
        if (n >= 0)
            check_text(val, n, sizeof(val));
        else if (n != -1 && n != -2)
            abort();
    }
    memset(&ans, 0, sizeof(ans));
    if (console_period(&call, &ans, &from, &to) == 0) {
        if (ans.json != NULL || from >= to || from % DAY != 0 || to % DAY != 0 || to - from > 731 * DAY)
            abort();
    } else {
        if (ans.status != 400 || !json_is_object(ans.json) ||
            !json_is_string(json_object_get(ans.json, "message")))
            abort();
        json_decref(ans.json);
    }
    return 0;
}
