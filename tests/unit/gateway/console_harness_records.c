/*
 * journeygate unit tests — the console harness for console_marketer.c's tests (see
 * console_harness_records.h). TEST CODE ONLY: console.c implements these for the product.
 */
#include "console_harness_records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t harness_gone_after;

void console_error(console_answer_t *ans, int status, const char *code, const char *message)
{
    json_decref(ans->json);
    ans->status = status;
    ans->json = json_pack("{s:s}", "error", code);
    if (message != NULL)
        json_object_set_new(ans->json, "message", json_string(message));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* whether n bytes are valid UTF-8 (no overlongs, surrogates or code points past U+10FFFF) */
static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], len, cp;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return 0;
        if (i + len > n)
            return 0;
        for (unsigned k = 1; k < len; ++k) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += len;
    }
    return 1;
}

int console_query(const console_call_t *call, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = call->query, *end = call->query + call->query_len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
        const char *stop = amp != NULL ? amp : end;
        eq = memchr(p, '=', (size_t)(stop - p));
        if ((size_t)((eq != NULL ? eq : stop) - p) == nlen && memcmp(p, name, nlen) == 0) {
            size_t o = 0;
            for (const char *v = eq != NULL ? eq + 1 : stop; v < stop; ++v) {
                int c = (unsigned char)*v;
                if (*v == '+')
                    c = ' ';
                else if (*v == '%') {
                    int h, l;
                    if (stop - v < 3 || (h = hexval(v[1])) < 0 || (l = hexval(v[2])) < 0)
                        return -2;
                    c = h << 4 | l;
                    v += 2;
                }
                if (o + 1 >= cap)
                    return -2;
                out[o++] = (char)c;
            }
            out[o] = '\0';
            if (gw_has_control(out, o) || !utf8_ok((const unsigned char *)out, o))
                return -2;
            return (int)o;
        }
        p = stop + 1;
    }
    return -1;
}

static int parse_day(const char *s, uint64_t *ms)
{
    struct tm tm;
    int y, m, d;
    char extra;
    time_t t;

    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || s[4] != '-' || s[7] != '-')
        return -1;
    if (y < 2000 || y > 2200 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    t = timegm(&tm);
    {
        struct tm back;
        gmtime_r(&t, &back);
        if (back.tm_mday != d) /* 2026-02-30 */
            return -1;
    }
    *ms = (uint64_t)t * 1000;
    return 0;
}

int console_period(const console_call_t *call, console_answer_t *ans, uint64_t *from_ms, uint64_t *to_ms)
{
    char f[16], t[16];
    int fn = console_query(call, "from", f, sizeof(f)), tn = console_query(call, "to", t, sizeof(t));
    uint64_t day = 86400000ULL, today = call->now_ms / day * day, from, to;

    if (tn == -2 || (tn >= 0 && parse_day(t, &to) != 0)) {
        console_error(ans, 400, "invalid_parameter", "to: must be a day as YYYY-MM-DD");
        return -1;
    }
    if (fn == -2 || (fn >= 0 && parse_day(f, &from) != 0)) {
        console_error(ans, 400, "invalid_parameter", "from: must be a day as YYYY-MM-DD");
        return -1;
    }
    if (tn < 0)
        to = today;
    if (fn < 0)
        from = to - 29 * day;
    if (to < from || (to - from) / day + 1 > 731) {
        console_error(ans, 400, "invalid_parameter", "to: must be on or after from, at most 731 days later");
        return -1;
    }
    *from_ms = from;
    *to_ms = to + day;
    return 0;
}

void console_iso_time(uint64_t ms, char out[25])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[64];
    gmtime_r(&t, &tm);
    /* a wider buffer first: the compiler cannot see that every field keeps to its width */
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
    memcpy(out, buf, 24);
    out[24] = '\0';
}

gw_status_t console_audit(const console_call_t *call, const char *event, const char *outcome, const char *customer_id,
                          const char *detail)
{
    char actor[600];
    store_audit_event_t ev;

    memset(&ev, 0, sizeof(ev));
    snprintf(actor, sizeof(actor), "staff:%s:%s", call->staff->provider, call->staff->email);
    ev.event = event;
    ev.outcome = outcome;
    ev.customer_id = customer_id;
    ev.detail = detail;
    ev.actor = actor;
    ev.client = call->client;
    ev.user_agent = call->user_agent;
    ev.request_id = call->request_id;
    return store_audit_write(call->ctx->store, &ev, call->now_ms);
}

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
