/*
 * journeygate unit tests — the console's stream for the endpoint tests (see console_harness.h).
 * TEST CODE ONLY: console.c implements these for the product.
 */
#include "console_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t harness_gone_after;

int console_stream_begin(const console_call_t *call, console_answer_t *ans, const char *content_type,
                         const char *filename)
{
    console_stream_t *s = calloc(1, sizeof(*s));
    (void)call;
    if (s == NULL)
        return -1;
    snprintf(s->content_type, sizeof(s->content_type), "%s", content_type);
    snprintf(s->filename, sizeof(s->filename), "%s", filename);
    s->gone_after = harness_gone_after;
    ans->stream = s;
    ans->status = 200;
    return 0;
}

int console_stream_write(console_answer_t *ans, const char *data, size_t len)
{
    console_stream_t *s = ans->stream;

    if (s->gone_after != 0 && s->len >= s->gone_after) {
        ++s->refused;
        return -1;
    }
    ++s->writes;
    if (len > s->largest_write)
        s->largest_write = len;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap != 0 ? s->cap : 4096;
        while (cap < s->len + len + 1)
            cap *= 2;
        s->data = realloc(s->data, cap);
        s->cap = cap;
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = '\0';
    return 0;
}

void harness_answer_clear(console_answer_t *ans)
{
    json_decref(ans->json);
    if (ans->stream != NULL) {
        free(ans->stream->data);
        free(ans->stream);
    }
    memset(ans, 0, sizeof(*ans));
}
