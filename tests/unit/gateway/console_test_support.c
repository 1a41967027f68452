/*
 * journeygate unit tests — A TEST HARNESS, never linked into journeygate: the helpers of
 * console_api.h that console.c implements in the product (console_error, console_query,
 * console_period, console_iso_time), written here to the contract's words so the endpoint files
 * can be unit-tested without the HTTP side. The endpoints' answers are what the tests check; this
 * file only hands them their parameters.
 */
#include "console_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void console_error(console_answer_t *ans, int status, const char *code, const char *message)
{
    json_decref(ans->json);
    ans->status = status;
    ans->json = json_pack("{s:s, s:s?}", "error", code, "message", message);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int console_query(const console_call_t *call, const char *name, char *out, size_t cap)
{
    const char *p = call->query, *end = call->query + call->query_len;
    size_t nlen = strlen(name);

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq != NULL && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            size_t n = 0;
            for (const char *q = eq + 1; q < stop; ++q) {
                int c = (unsigned char)*q;
                if (c == '%') {
                    if (stop - q < 3 || hexval(q[1]) < 0 || hexval(q[2]) < 0)
                        return -2;
                    c = hexval(q[1]) * 16 + hexval(q[2]);
                    q += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (c < 0x20 || c == 0x7f || n + 1 >= cap)
                    return -2;
                out[n++] = (char)c;
            }
            out[n] = '\0';
            /* UTF-8 (no overlong forms checked beyond the lead byte: a harness, not the product's check) */
            for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)out[i];
                size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
                if (k == 0 || i + k > n)
                    return -2;
                for (size_t j = 1; j < k; ++j)
                    if (((unsigned char)out[i + j] >> 6) != 2)
                        return -2;
                i += k;
            }
            return (int)n;
        }
        p = stop + 1;
    }
    return -1;
}

/* "YYYY-MM-DD" -> ms at 00:00 UTC, or -1 */
static int parse_day(const char *s, uint64_t *ms)
{
    struct tm tm;
    char *end;

    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 10 || (end = strptime(s, "%Y-%m-%d", &tm)) == NULL || *end != '\0')
        return -1;
    *ms = (uint64_t)timegm(&tm) * 1000;
    return 0;
}

int console_period(const console_call_t *call, console_answer_t *ans, uint64_t *from_ms, uint64_t *to_ms)
{
    char f[16], t[16];
    int nf = console_query(call, "from", f, sizeof(f)), nt = console_query(call, "to", t, sizeof(t));
    uint64_t today = call->now_ms / 86400000 * 86400000, from, to;

    if (nt == -1)
        to = today;
    else if (nt < 0 || parse_day(t, &to) != 0) {
        console_error(ans, 400, "invalid_parameter", "to: a date YYYY-MM-DD");
        return -1;
    }
    if (nf == -1)
        from = to - 29 * 86400000ULL;
    else if (nf < 0 || parse_day(f, &from) != 0) {
        console_error(ans, 400, "invalid_parameter", "from: a date YYYY-MM-DD");
        return -1;
    }
    if (to < from || (to - from) / 86400000 + 1 > 731) {
        console_error(ans, 400, "invalid_parameter", "to: on or after from, at most 731 days");
        return -1;
    }
    *from_ms = from;
    *to_ms = to + 86400000;
    return 0;
}

void console_iso_time(uint64_t ms, char out[25])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char d[20];
    gmtime_r(&t, &tm);
    strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 25, "%s.%03uZ", d, (unsigned)(ms % 1000));
}
