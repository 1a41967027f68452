/*
 * journeygate — the console's figure endpoints (console/API.md "Marketer": overview, transitions,
 * paths, funnel, stages, inventory; "Security": signins/volume).
 *
 * Each reads and checks its query parameters, takes the current analytics snapshot (never the
 * store: the figures are kept by analytics.c's own thread) and answers the query's JSON. Runs on
 * a worker thread (console_api.h); a snapshot is held only for the call.
 */
#include "console_api.h"

#include "analytics.h"

#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 255 /* channel, stage and touchpoint names: STORE_TP_STR_MAX */
#define DAY_MS 86400000ULL

/* the snapshot, or NULL after a 503 (no analytics running) */
static analytics_snap_t *snap_of(const console_call_t *call, console_answer_t *ans)
{
    if (call->ctx == NULL || call->ctx->analytics == NULL) {
        console_error(ans, 503, "unavailable", "the figures are not available");
        return NULL;
    }
    analytics_snap_t *s = analytics_acquire(call->ctx->analytics);
    if (s == NULL) /* the first build since the gateway started is under way */
        console_error(ans, 503, "unavailable", "the figures are being computed: retry in a few seconds");
    return s;
}

/* the answer, or a 503 when the query ran out of memory; releases the snapshot */
static void answer(console_answer_t *ans, analytics_snap_t *s, json_t *out)
{
    analytics_release(s);
    if (out == NULL) {
        console_error(ans, 503, "unavailable", "out of memory: try again");
        return;
    }
    ans->status = 200;
    ans->json = out;
}

static int bad(console_answer_t *ans, const char *message)
{
    console_error(ans, 400, "invalid_parameter", message);
    return -1;
}

/* an optional name parameter into out (NUL-terminated, "" when absent); -1 after a 400 */
static int name_param(const console_call_t *call, console_answer_t *ans, const char *name, char *out, size_t cap,
                      const char *message)
{
    int n = console_query(call, name, out, cap);
    if (n == -1) {
        out[0] = '\0';
        return 0;
    }
    if (n < 0)
        return bad(ans, message);
    return 0;
}

/* an optional integer parameter in [min, max] (decimal digits only), def when absent; -1 after a 400 */
static int uint_param(const console_call_t *call, console_answer_t *ans, const char *name, unsigned min, unsigned max,
                      unsigned def, unsigned *out, const char *message)
{
    char buf[16];
    int n = console_query(call, name, buf, sizeof(buf));
    unsigned long v = 0;

    if (n == -1) {
        *out = def;
        return 0;
    }
    if (n <= 0 || n > 9)
        return bad(ans, message);
    for (int i = 0; i < n; ++i) {
        if (buf[i] < '0' || buf[i] > '9')
            return bad(ans, message);
        v = v * 10 + (unsigned long)(buf[i] - '0');
    }
    if (v < min || v > max)
        return bad(ans, message);
    *out = (unsigned)v;
    return 0;
}

/* the segment filters `channel` and (when with_stage) `stage`; -1 after a 400 */
static int filters(const console_call_t *call, console_answer_t *ans, char channel[NAME_MAX_LEN + 1],
                   char stage[NAME_MAX_LEN + 1], int with_stage)
{
    if (name_param(call, ans, "channel", channel, NAME_MAX_LEN + 1,
                   "channel: at most 255 bytes of UTF-8 without control characters") != 0)
        return -1;
    if (with_stage && name_param(call, ans, "stage", stage, NAME_MAX_LEN + 1,
                                 "stage: at most 255 bytes of UTF-8 without control characters") != 0)
        return -1;
    return 0;
}

void console_api_overview(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    analytics_snap_t *s;

    if (console_period(call, ans, &from, &to) != 0 || (s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_overview(s, from, to));
}

void console_api_transitions(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char channel[NAME_MAX_LEN + 1], stage[NAME_MAX_LEN + 1];
    analytics_snap_t *s;

    if (console_period(call, ans, &from, &to) != 0 || filters(call, ans, channel, stage, 1) != 0 ||
        (s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_transitions(s, from, to, channel, stage));
}

void console_api_paths(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char channel[NAME_MAX_LEN + 1], stage[NAME_MAX_LEN + 1], start[NAME_MAX_LEN + 1];
    unsigned steps, top;
    analytics_snap_t *s;

    if (console_period(call, ans, &from, &to) != 0 || filters(call, ans, channel, stage, 1) != 0 ||
        name_param(call, ans, "start", start, sizeof(start),
                   "start: a touchpoint name, at most 255 bytes of UTF-8 without control characters") != 0 ||
        uint_param(call, ans, "steps", 2, 10, 5, &steps, "steps: an integer from 2 to 10") != 0 ||
        uint_param(call, ans, "top", 1, 20, 6, &top, "top: an integer from 1 to 20") != 0 ||
        (s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_paths(s, from, to, channel, stage, start, steps, top));
}

void console_api_funnel(const console_call_t *call, console_answer_t *ans)
{
    static const char *const def[] = {"need", "research", "select", "convert"};
    uint64_t from, to;
    char channel[NAME_MAX_LEN + 1], list[10 * (NAME_MAX_LEN + 1)];
    const char *steps[10];
    size_t n = 0;
    unsigned window;
    int len;
    analytics_snap_t *s;

    if (console_period(call, ans, &from, &to) != 0 || filters(call, ans, channel, NULL, 0) != 0 ||
        uint_param(call, ans, "window_days", 1, 365, 14, &window, "window_days: an integer from 1 to 365") != 0)
        return;
    if ((len = console_query(call, "steps", list, sizeof(list))) == -1) {
        for (; n < sizeof(def) / sizeof(def[0]); ++n)
            steps[n] = def[n];
    } else {
        char *p = list, *comma;
        if (len < 0) {
            bad(ans, "steps: at most 10 comma-separated stage names");
            return;
        }
        /* "a,b,c": 1 to 10 names, each 1..255 bytes */
        for (;;) {
            if ((comma = strchr(p, ',')) != NULL)
                *comma = '\0';
            if (*p == '\0' || strlen(p) > NAME_MAX_LEN || n == 10) {
                bad(ans, "steps: 1 to 10 comma-separated stage names, none empty");
                return;
            }
            steps[n++] = p;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    if ((s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_funnel(s, from, to, channel, steps, n, window));
}

void console_api_stages(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char channel[NAME_MAX_LEN + 1];
    analytics_snap_t *s;

    if (console_period(call, ans, &from, &to) != 0 || filters(call, ans, channel, NULL, 0) != 0 ||
        (s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_stages(s, from, to, channel));
}

void console_api_inventory(const console_call_t *call, console_answer_t *ans)
{
    analytics_snap_t *s;

    if (call->ctx == NULL || call->ctx->cfg == NULL) {
        console_error(ans, 503, "unavailable", "no configuration");
        return;
    }
    if ((s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_inventory(s, call->ctx->cfg, call->now_ms));
}

void console_api_signin_volume(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char bucket[8];
    unsigned bucket_s;
    int n;
    analytics_snap_t *s;

    if (console_period(call, ans, &from, &to) != 0)
        return;
    n = console_query(call, "bucket", bucket, sizeof(bucket));
    if (n == -1) /* hours for a week or less, else days */
        bucket_s = to - from <= 7 * DAY_MS ? 3600 : 86400;
    else if (n > 0 && strcmp(bucket, "hour") == 0)
        bucket_s = 3600;
    else if (n > 0 && strcmp(bucket, "day") == 0)
        bucket_s = 86400;
    else {
        bad(ans, "bucket: hour or day");
        return;
    }
    if (bucket_s == 3600 && to - from > 31 * DAY_MS) {
        bad(ans, "bucket: hour buckets cover at most 31 days");
        return;
    }
    if ((s = snap_of(call, ans)) == NULL)
        return;
    answer(ans, s, analytics_signin_volume(s, from, to, bucket_s));
}
