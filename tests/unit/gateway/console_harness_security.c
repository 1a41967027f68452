/*
 * journeygate unit tests — a TEST HARNESS for the console's security endpoints: the functions
 * console_api.h says console.c provides (console_error, console_query, console_period,
 * console_iso_time, console_audit), written here so console_security.c can be built and tested
 * before and apart from console.c. Linked into test_console_security only, never into the product.
 * They do what the contract says, for real: console_audit() writes a synced audit record naming
 * the staff member, console_query() percent-decodes and refuses control characters and bad UTF-8.
 */
#include "console_api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void console_error(console_answer_t *ans, int status, const char *code, const char *message)
{
    json_decref(ans->json);
    ans->status = status;
    ans->json = json_pack("{s:s, s:s}", "error", code, "message", message != NULL ? message : "");
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* well-formed UTF-8 (no overlong forms, no surrogates) */
static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 9;
        unsigned cp = k == 0 ? c : k == 1 ? c & 0x1f : k == 2 ? c & 0x0f : c & 0x07;
        if (k == 9 || i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; ++j) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

int console_query(const console_call_t *call, const char *name, char *out, size_t cap)
{
    const char *q = call->query, *end = call->query + call->query_len;
    size_t nlen = strlen(name);

    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q)), *stop = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *key_end = eq != NULL ? eq : stop;
        if ((size_t)(key_end - q) == nlen && memcmp(q, name, nlen) == 0) {
            size_t n = 0;
            for (const char *p = eq != NULL ? eq + 1 : stop; p < stop; ++p) {
                int c = (unsigned char)*p;
                if (*p == '%') {
                    int h, l;
                    if (stop - p < 3 || (h = hexval(p[1])) < 0 || (l = hexval(p[2])) < 0)
                        return -2;
                    c = h * 16 + l;
                    p += 2;
                } else if (*p == '+') {
                    c = ' ';
                }
                if (n + 1 >= cap || c < 0x20 || c == 0x7f)
                    return -2;
                out[n++] = (char)c;
            }
            out[n] = '\0';
            return utf8_ok((const unsigned char *)out, n) ? (int)n : -2;
        }
        q = stop + 1;
    }
    return -1;
}

static int parse_day(const char *s, uint64_t *ms)
{
    struct tm tm;
    char *end;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 10 || (end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
        return -1;
    if ((t = timegm(&tm)) < 0)
        return -1;
    *ms = (uint64_t)t * 1000;
    return 0;
}

int console_period(const console_call_t *call, console_answer_t *ans, uint64_t *from_ms, uint64_t *to_ms)
{
    char from[32], to[32];
    int nf = console_query(call, "from", from, sizeof(from)), nt = console_query(call, "to", to, sizeof(to));
    uint64_t day = 86400000ull, f, t;

    t = call->now_ms - call->now_ms % day;
    if (nt == -2 || (nt >= 0 && parse_day(to, &t) != 0)) {
        console_error(ans, 400, "invalid_parameter", "to: YYYY-MM-DD");
        return -1;
    }
    if (nf == -2) {
        console_error(ans, 400, "invalid_parameter", "from: YYYY-MM-DD");
        return -1;
    }
    f = t - 29 * day;
    if (nf >= 0 && parse_day(from, &f) != 0) {
        console_error(ans, 400, "invalid_parameter", "from: YYYY-MM-DD");
        return -1;
    }
    if (t < f || (t - f) / day + 1 > 731) {
        console_error(ans, 400, "invalid_parameter", "to: not before from, at most 731 days");
        return -1;
    }
    *from_ms = f;
    *to_ms = t + day;
    return 0;
}

void console_iso_time(uint64_t ms, char out[25])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    /* strftime: the fields' widths are fixed for years 0-9999, which gmtime_r gives for any ms we store */
    gmtime_r(&t, &tm);
    if (strftime(out, 21, "%Y-%m-%dT%H:%M:%S", &tm) != 19)
        snprintf(out, 25, "0000-00-00T00:00:00");
    snprintf(out + 19, 6, ".%03uZ", (unsigned)(ms % 1000));
}

gw_status_t console_audit(const console_call_t *call, const char *event, const char *outcome, const char *customer_id,
                          const char *detail)
{
    char actor[400];
    store_audit_event_t ev;

    snprintf(actor, sizeof(actor), "staff:%s:%s", call->staff->provider, call->staff->email);
    memset(&ev, 0, sizeof(ev));
    ev.event = event;
    ev.outcome = outcome;
    ev.customer_id = customer_id;
    ev.client = call->client;
    ev.user_agent = call->user_agent;
    ev.request_id = call->request_id;
    ev.actor = actor;
    ev.detail = detail;
    return store_audit_write(call->ctx->store, &ev, call->now_ms);
}
