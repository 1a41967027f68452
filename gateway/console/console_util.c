/*
 * journeygate — the console's h2o-free helpers every endpoint uses (console_api.h): errors,
 * query parameters, periods, times, the audit record of a staff member's action; and the
 * checks console.c applies to path segments (console_int.h). Pure except console_audit().
 */
#include "console_int.h"

#include "ingest.h"
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000ULL
#define PERIOD_DEFAULT_DAYS 30
#define PERIOD_MAX_DAYS 731

void console_error(console_answer_t *ans, int status, const char *code, const char *message)
{
    json_decref(ans->json);
    ans->status = status;
    ans->json = json_pack("{s:s}", "error", code);
    if (ans->json != NULL && message != NULL)
        json_object_set_new(ans->json, "message", json_string(message));
}

int console_segment_decode(const char *raw, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    if (len == 0 || cap == 0)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        int c = (unsigned char)raw[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            if ((hi = gw_hexval((unsigned char)raw[i + 1])) < 0 || (lo = gw_hexval((unsigned char)raw[i + 2])) < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap || o >= CONSOLE_SEG_MAX)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (memchr(out, '\0', o) != NULL || gw_has_control(out, o) || memchr(out, '/', o) != NULL || !gw_utf8_ok(out, o) ||
        strcmp(out, ".") == 0 || strcmp(out, "..") == 0)
        return -1;
    return (int)o;
}

int console_query(const console_call_t *call, const char *name, char *out, size_t cap)
{
    char *v = NULL;
    int n = gw_query_param(call->query != NULL ? call->query : "", call->query != NULL ? call->query_len : 0, name, &v);
    size_t len;

    if (n == 0)
        return -1;
    if (n != 1 || v == NULL) {
        free(v);
        return -2;
    }
    len = strlen(v);
    if (cap == 0 || len + 1 > cap || gw_has_control(v, len) || !gw_utf8_ok(v, len)) {
        free(v);
        return -2;
    }
    memcpy(out, v, len + 1);
    free(v);
    return (int)len;
}

const char *console_role_name(unsigned bit)
{
    switch (bit) {
    case CONSOLE_MARKETER:
        return "marketer";
    case CONSOLE_SECURITY:
        return "security";
    case CONSOLE_ADMIN:
        return "admin";
    default:
        return NULL;
    }
}

/* the contract's name for gw_iso_time(): one format for every time the gateway shows */
void console_iso_time(uint64_t ms, char out[25])
{
    gw_iso_time(ms, out);
}

/* days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil) */
static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int console_parse_day(const char *s, uint64_t *ms)
{
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y;
    unsigned m, d, leap;

    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; ++i)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
    d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
    if (y < 1970 || m < 1 || m > 12 || d < 1)
        return -1;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 ? leap : 0))
        return -1;
    *ms = (uint64_t)days_from_civil(y, m, d) * DAY_MS;
    return 0;
}

int console_period(const console_call_t *call, console_answer_t *ans, uint64_t *from_ms, uint64_t *to_ms)
{
    char from[16], to[16];
    int nf = console_query(call, "from", from, sizeof(from)), nt = console_query(call, "to", to, sizeof(to));
    uint64_t f, t, today = call->now_ms / DAY_MS * DAY_MS;

    if (nf == -2 || (nf >= 0 && console_parse_day(from, &f) != 0)) {
        console_error(ans, 400, "invalid_parameter", "from: a day as YYYY-MM-DD");
        return -1;
    }
    if (nt == -2 || (nt >= 0 && console_parse_day(to, &t) != 0)) {
        console_error(ans, 400, "invalid_parameter", "to: a day as YYYY-MM-DD");
        return -1;
    }
    if (nt < 0)
        t = nf >= 0 && f + (PERIOD_DEFAULT_DAYS - 1) * DAY_MS < today ? f + (PERIOD_DEFAULT_DAYS - 1) * DAY_MS : today;
    if (nf < 0)
        f = t >= (PERIOD_DEFAULT_DAYS - 1) * DAY_MS ? t - (PERIOD_DEFAULT_DAYS - 1) * DAY_MS : 0;
    if (t < f) {
        console_error(ans, 400, "invalid_parameter", "to: before from");
        return -1;
    }
    if ((t - f) / DAY_MS + 1 > PERIOD_MAX_DAYS) {
        console_error(ans, 400, "invalid_parameter", "to: the period is longer than 731 days");
        return -1;
    }
    *from_ms = f;
    *to_ms = t + DAY_MS; /* to is inclusive: the period ends at the next midnight */
    return 0;
}

void console_actor(const char *provider, const char *email, const char *subject, char *out, size_t cap)
{
    snprintf(out, cap, "staff:%s:%s", provider != NULL ? provider : "",
             email != NULL && email[0] != '\0' ? email
             : subject != NULL                 ? subject
                                               : "");
}

void console_staff_actor(const console_call_t *call, char *out, size_t cap)
{
    console_actor(call->staff->provider, call->staff->email, call->staff->subject, out, cap);
}

gw_status_t console_audit(const console_call_t *call, const char *event, const char *outcome, const char *customer_id,
                          const char *detail)
{
    char actor[600];
    store_audit_event_t ev;

    console_staff_actor(call, actor, sizeof(actor));
    memset(&ev, 0, sizeof(ev));
    ev.event = event;
    ev.outcome = outcome != NULL ? outcome : "success";
    ev.provider = call->staff->provider[0] != '\0' ? call->staff->provider : NULL;
    ev.customer_id = customer_id;
    ev.client = call->client;
    ev.user_agent = call->user_agent;
    ev.request_id = call->request_id;
    ev.actor = actor;
    ev.detail = detail;
    return store_audit_write(call->ctx->store, &ev, gw_wall_ms());
}
