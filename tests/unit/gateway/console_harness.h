/*
 * journeygate unit tests — the TEST HARNESS of the console's endpoint files (console_marketer.c,
 * console_security.c, console_figures.c): the one part of console_api.h that only console.c (h2o)
 * can provide, the stream. console_error, console_query, console_period, console_iso_time and
 * console_audit are the real ones (gw_console_util). Never linked into the product. The "stream"
 * collects what the endpoint writes into memory, and can play a client that goes away after some
 * bytes.
 */
#ifndef JG_CONSOLE_HARNESS_H
#define JG_CONSOLE_HARNESS_H

#include "console_api.h"

#include <stddef.h>

/** What a streamed answer wrote, as console.c would have sent it. */
struct console_stream {
    char content_type[64], filename[64];
    char *data; /* NUL-terminated */
    size_t len, cap;
    size_t writes;        /* console_stream_write() calls the client took */
    size_t refused;       /* calls answered -1 (the client had gone): an endpoint stops at the first */
    size_t largest_write; /* the largest chunk handed over */
    size_t gone_after;    /* the client "goes away" once this many bytes were taken (0: never) */
};

/** Sets harness_gone_after before an endpoint streams: the next stream's client leaves after n bytes. */
extern size_t harness_gone_after;

/** Frees the answer's JSON and stream (after a test looked at them) and zeroes it. */
void harness_answer_clear(console_answer_t *ans);

#endif
