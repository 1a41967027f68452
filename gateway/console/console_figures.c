/*
 * journeygate — the console's figure endpoints (console/API.md "Marketer": overview, transitions,
 * paths, funnel, stages, inventory; "Security": signins/volume).
 *
 * Each reads and checks its query parameters, then has the query run over the current analytics
 * snapshot (never the store: analytics.c's builder thread keeps the figures) on the analytics'
 * query thread, which runs at nice 10 so that the console's queries take only the CPU the proxy
 * leaves; the worker thread (console_api.h) waits for the answer. Refusals: 400 for a parameter,
 * 503 while the first snapshot is built, when the query queue is full or memory runs out.
 */
#include "console_api.h"

#include "analytics.h"

#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 255 /* channel, stage and touchpoint names: STORE_TP_STR_MAX */
#define DAY_MS 86400000ULL

/* what a query needs besides the snapshot (each endpoint fills its part) */
struct q {
    uint64_t from, to, now;
    const char *channel, *stage, *start;
    unsigned steps, top, window, bucket_s;
    const char *const *list;
    size_t n;
    const gw_config_t *cfg;
};

static json_t *q_overview(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_overview(s, q->from, q->to);
}

static json_t *q_transitions(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_transitions(s, q->from, q->to, q->channel, q->stage);
}

static json_t *q_paths(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_paths(s, q->from, q->to, q->channel, q->stage, q->start, q->steps, q->top);
}

static json_t *q_funnel(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_funnel(s, q->from, q->to, q->channel, q->list, q->n, q->window);
}

static json_t *q_stages(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_stages(s, q->from, q->to, q->channel);
}

static json_t *q_inventory(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_inventory(s, q->cfg, q->now);
}

static json_t *q_signins(const analytics_snap_t *s, void *arg)
{
    struct q *q = arg;
    return analytics_signin_volume(s, q->from, q->to, q->bucket_s);
}

/* runs the query on the analytics' query thread (nice 10: the proxy comes first) and answers */
static void run(const console_call_t *call, console_answer_t *ans, analytics_query_fn fn, struct q *q)
{
    json_t *out = NULL;
    gw_status_t st;

    if (call->ctx == NULL || call->ctx->analytics == NULL) {
        console_error(ans, 503, "unavailable", "the figures are not available");
        return;
    }
    st = analytics_call(call->ctx->analytics, fn, q, &out);
    if (st == GW_EUNAVAIL) {
        console_error(ans, 503, "unavailable", "the figures are being computed or busy: retry in a few seconds");
        return;
    }
    if (st != GW_OK) {
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
    struct q q = {0};

    if (console_period(call, ans, &q.from, &q.to) != 0)
        return;
    run(call, ans, q_overview, &q);
}

void console_api_transitions(const console_call_t *call, console_answer_t *ans)
{
    struct q q = {0};
    char channel[NAME_MAX_LEN + 1], stage[NAME_MAX_LEN + 1];

    if (console_period(call, ans, &q.from, &q.to) != 0 || filters(call, ans, channel, stage, 1) != 0)
        return;
    q.channel = channel;
    q.stage = stage;
    run(call, ans, q_transitions, &q);
}

void console_api_paths(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char channel[NAME_MAX_LEN + 1], stage[NAME_MAX_LEN + 1], start[NAME_MAX_LEN + 1];
    unsigned steps, top;
    struct q q = {0};

    if (console_period(call, ans, &from, &to) != 0 || filters(call, ans, channel, stage, 1) != 0 ||
        name_param(call, ans, "start", start, sizeof(start),
                   "start: a touchpoint name, at most 255 bytes of UTF-8 without control characters") != 0 ||
        uint_param(call, ans, "steps", 2, 10, 5, &steps, "steps: an integer from 2 to 10") != 0 ||
        uint_param(call, ans, "top", 1, 20, 6, &top, "top: an integer from 1 to 20") != 0)
        return;
    q = (struct q){
        .from = from, .to = to, .channel = channel, .stage = stage, .start = start, .steps = steps, .top = top};
    run(call, ans, q_paths, &q);
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
    struct q q = {0};

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
    q = (struct q){.from = from, .to = to, .channel = channel, .window = window, .list = steps, .n = n};
    run(call, ans, q_funnel, &q);
}

void console_api_stages(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char channel[NAME_MAX_LEN + 1];
    struct q q = {0};

    if (console_period(call, ans, &from, &to) != 0 || filters(call, ans, channel, NULL, 0) != 0)
        return;
    q = (struct q){.from = from, .to = to, .channel = channel};
    run(call, ans, q_stages, &q);
}

void console_api_inventory(const console_call_t *call, console_answer_t *ans)
{
    struct q q = {0};

    if (call->ctx == NULL || call->ctx->cfg == NULL) {
        console_error(ans, 503, "unavailable", "no configuration");
        return;
    }
    q.cfg = call->ctx->cfg;
    q.now = call->now_ms;
    run(call, ans, q_inventory, &q);
}

void console_api_signin_volume(const console_call_t *call, console_answer_t *ans)
{
    uint64_t from, to;
    char bucket[8];
    unsigned bucket_s;
    int n;
    struct q q = {0};

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
    q = (struct q){.from = from, .to = to, .bucket_s = bucket_s};
    run(call, ans, q_signins, &q);
}
