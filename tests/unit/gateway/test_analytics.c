/*
 * Unit tests: the console's aggregates (analytics.c) over a real store, every figure computed by
 * hand from the journeys below, and the figure endpoints (console_figures.c) with the real
 * console_api.h helpers of console_util.c (parameters in, the API.md shapes out).
 *
 * Days are counted from 2026-11-01 (day 0); the period is days 10..19 ("2026-11-11".."2026-11-20"),
 * the previous one days 0..9. Journeys ("name channel stage"):
 *   A: d2 home web need | d12 home web need, +1h pricing web research, d13 newsletter email (crm, no
 *      stage), d14 checkout web convert, d15 docs web research (a regression)   -> returning, 2 channels
 *   B: d11 home web need, +1h home web need (a repeat), +2h pricing mobile research, d15 app mobile -> new
 *   C: d18 home web need, then after the period d21 pricing research, d22 plan select, d23 checkout
 *      convert (a late converter, inside a 14-day window)                      -> new
 *   D: d5 home web need (the previous period only)
 *   E: d16 home web need, recorded as an anonymous visitor before sign-in      -> new, anonymous
 */
#include "analytics.h"
#include "console_api.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_S 1793491200ULL /* 2026-11-01T00:00:00Z */
#define DAY_S 86400ULL
#define AT(d, h) ((BASE_S + (uint64_t)(d)*DAY_S + (uint64_t)(h)*3600) * 1000)
#define FROM AT(10, 0)
#define TO AT(20, 0)

static char dir[64];
static store_t *st;
static char cust[5][STORE_ID_LEN + 1];
static analytics_snap_t *snap;

struct tpdef {
    int c;
    int day, hour;
    const char *name, *channel, *stage;
    int anonymous;
};

static const struct tpdef journeys[] = {
    {0, 2, 0, "home", "web", "need", 0},
    {0, 12, 0, "home", "web", "need", 0},
    {0, 12, 1, "pricing", "web", "research", 0},
    {0, 13, 0, "newsletter", "email", NULL, 0},
    {0, 14, 0, "checkout", "web", "convert", 0},
    {0, 15, 0, "docs", "web", "research", 0},
    {1, 11, 0, "home", "web", "need", 0},
    {1, 11, 1, "home", "web", "need", 0},
    {1, 11, 2, "pricing", "mobile", "research", 0},
    {1, 15, 0, "app", "mobile", NULL, 0},
    {2, 18, 0, "home", "web", "need", 0},
    {2, 21, 0, "pricing", "web", "research", 0},
    {2, 22, 0, "plan", "web", "select", 0},
    {2, 23, 0, "checkout", "web", "convert", 0},
    {3, 5, 0, "home", "web", "need", 0},
    {4, 16, 0, "home", "web", "need", 1},
};
#define NJ (sizeof(journeys) / sizeof(journeys[0]))

static void audit(const char *event, const char *outcome, const char *reason, uint64_t at, uint64_t count)
{
    store_audit_event_t ev;
    const store_audit_event_t *evs[1] = {&ev};
    memset(&ev, 0, sizeof(ev));
    ev.event = event;
    ev.outcome = outcome;
    ev.reason = reason;
    ev.provider = "google";
    ck_assert_int_eq(store_audit_write_batch(st, evs, &count, &at, 1), GW_OK);
}

static void setup(void)
{
    uint8_t buf[16 * 1024];
    size_t len = 0, n = 0;
    store_tp_t ing;

    jg_temp_store_open(dir, sizeof(dir), "jg-analytics", &st);
    for (int i = 0; i < 5; ++i) {
        char sub[8];
        store_identity_t id = {"google", sub, NULL, 0, NULL, NULL};
        store_login_opts_t o = {0, NULL, NULL, "web"};
        store_login_info_t info;
        snprintf(sub, sizeof(sub), "s%d", i);
        ck_assert_int_eq(store_login(st, &id, &o, 1000, cust[i], &info, NULL), GW_OK);
    }
    /* the recorded touchpoints in one block (as the recorder writes them); the email one is ingested */
    for (size_t i = 0; i < NJ; ++i) {
        const struct tpdef *d = &journeys[i];
        char id[16];
        store_tp_t tp;
        if (strcmp(d->channel, "email") == 0)
            continue;
        memset(&tp, 0, sizeof(tp));
        snprintf(id, sizeof(id), "tp_%zu", i);
        tp.id = id;
        tp.customer_id = cust[d->c];
        tp.occurred_at_ms = tp.received_at_ms = AT(d->day, d->hour);
        tp.channel = d->channel;
        tp.touchpoint = d->name;
        tp.stage = d->stage;
        tp.route = strcmp(d->channel, "web") == 0 ? "site" : "app";
        tp.visitor_id = d->anonymous ? "v_1" : NULL;
        tp.status = 200;
        len += store_tp_encode(&tp, buf + len, sizeof(buf) - len);
        ++n;
    }
    ck_assert_int_eq(store_touchpoints_append(st, buf, len, n), GW_OK);
    memset(&ing, 0, sizeof(ing));
    ing.id = "tp_ing";
    ing.customer_id = cust[0];
    ing.occurred_at_ms = ing.received_at_ms = AT(13, 0);
    ing.channel = "email";
    ing.touchpoint = "newsletter";
    ing.source = "crm";
    {
        int dup = 0;
        ck_assert_int_eq(store_touchpoints_ingest(st, &ing, NULL, 1, &dup), GW_OK);
    }
    /* sign-ins: one success in the previous period; in the period at d11 01:xx one success, two
       failures (state_unknown) and 3 rate-limit refusals; at d12 03:xx five failures (an anomaly) */
    audit("callback_succeeded", "success", NULL, AT(3, 0), 0);
    audit("callback_succeeded", "success", NULL, AT(11, 1) + 60000, 0);
    audit("callback_refused", "refused", "state_unknown", AT(11, 1) + 120000, 0);
    audit("callback_refused", "refused", "state_unknown", AT(11, 1) + 180000, 0);
    audit("rate_limited", "refused", "login", AT(11, 1) + 240000, 3);
    audit("customer_created", "success", NULL, AT(11, 1), 0); /* not a sign-in */
    for (int i = 0; i < 5; ++i)
        audit("token_refused", "refused", "bad_signature", AT(12, 3) + (uint64_t)i * 1000, 0);
    ck_assert_int_eq(analytics_snap_build(st, NULL, AT(20, 0), &snap), GW_OK);
}

static void teardown(void)
{
    analytics_release(snap);
    snap = NULL;
    jg_temp_store_close(&st, dir);
}

/* ------------------------------------------------------------------ JSON helpers */

static json_int_t metric(json_t *o, const char *key, const char *which)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(o, "metrics"), i,
                       m) if (strcmp(json_string_value(json_object_get(m, "key")), key) ==
                              0) return json_integer_value(json_object_get(m, which));
    ck_abort_msg("no metric %s", key);
    return -1;
}

static double metric_real(json_t *o, const char *key, const char *which)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(o, "metrics"), i,
                       m) if (strcmp(json_string_value(json_object_get(m, "key")), key) ==
                              0) return json_number_value(json_object_get(m, which));
    ck_abort_msg("no metric %s", key);
    return -1;
}

/* the index of s in a JSON array of strings, or -1 */
static int index_of(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (strcmp(json_string_value(v), s) == 0) return (int)i;
    return -1;
}

/* the element of arr whose member key equals value, or NULL */
static json_t *find(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(json_object_get(v, key));
        if (s != NULL && strcmp(s, value) == 0)
            return v;
    }
    return NULL;
}

static json_t *find2(json_t *arr, const char *k1, const char *v1, const char *k2, const char *v2)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *a = json_string_value(json_object_get(v, k1)), *b = json_string_value(json_object_get(v, k2));
        if (a != NULL && b != NULL && strcmp(a, v1) == 0 && strcmp(b, v2) == 0)
            return v;
    }
    return NULL;
}

static json_int_t ival(json_t *o, const char *key)
{
    ck_assert_msg(o != NULL, "missing object for %s", key);
    ck_assert_msg(json_is_integer(json_object_get(o, key)), "%s is not an integer", key);
    return json_integer_value(json_object_get(o, key));
}

static double rval(json_t *o, const char *key)
{
    ck_assert_msg(o != NULL && json_is_number(json_object_get(o, key)), "%s is not a number", key);
    return json_number_value(json_object_get(o, key));
}

#define ck_assert_near(x, y)                                                                                           \
    ck_assert_msg(fabs((double)(x) - (double)(y)) < 1e-9, "%.12g != %.12g", (double)(x), (double)(y))

/* ------------------------------------------------------------------ the snapshot */

START_TEST(test_snapshot_columns)
{
    ck_assert_uint_eq(analytics_snap_touchpoints(snap), NJ);
    ck_assert_uint_eq(analytics_snap_customers(snap), 5);
    ck_assert_uint_gt(analytics_snap_bytes(snap), NJ * 8);
    ck_assert_uint_eq(analytics_snap_as_of(snap), AT(20, 0));
}
END_TEST

START_TEST(test_overview_new_returning_across_the_boundary)
{
    json_t *o = analytics_overview(snap, FROM, TO), *ch;

    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "period"), "from")), "2026-11-11");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "period"), "to")), "2026-11-20");
    ck_assert_int_eq(ival(json_object_get(o, "period"), "days"), 10);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "previous"), "from")), "2026-11-01");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "previous"), "to")), "2026-11-10");
    ck_assert_int_eq(metric(o, "customers_seen", "value"), 4);           /* A B C E */
    ck_assert_int_eq(metric(o, "customers_seen", "previous"), 2);        /* A D */
    ck_assert_near(metric_real(o, "multi_channel_share", "value"), 0.5); /* A (web, email), B (web, mobile) */
    ck_assert_near(metric_real(o, "multi_channel_share", "previous"), 0.0);
    ck_assert_int_eq(metric(o, "new_customers", "value"), 3);       /* B C E: first touchpoint ever in the period */
    ck_assert_int_eq(metric(o, "returning_customers", "value"), 1); /* A: seen on day 2 */
    ck_assert_int_eq(metric(o, "new_customers", "previous"), 2);
    ck_assert_int_eq(metric(o, "returning_customers", "previous"), 0);
    ck_assert_int_eq(metric(o, "touchpoints", "value"), 11);
    ck_assert_int_eq(metric(o, "touchpoints", "previous"), 2);
    ck_assert_int_eq(metric(o, "anonymous_visitors", "value"), 1);
    ch = find(json_object_get(o, "touchpoints_by_channel"), "channel", "web");
    ck_assert_int_eq(ival(ch, "value"), 8);
    ck_assert_int_eq(ival(ch, "previous"), 2);
    ck_assert_int_eq(ival(find(json_object_get(o, "touchpoints_by_channel"), "channel", "mobile"), "value"), 2);
    ck_assert_int_eq(ival(find(json_object_get(o, "signins_by_provider"), "provider", "google"), "value"), 1);
    ck_assert_int_eq(ival(find(json_object_get(o, "signins_by_provider"), "provider", "google"), "previous"), 1);
    /* day 11: B's two web touchpoints (the mobile one is another row) */
    ck_assert_int_eq(
        ival(find2(json_object_get(o, "touchpoints_by_day"), "day", "2026-11-12", "channel", "web"), "count"), 2);
    ck_assert_int_eq(
        ival(find2(json_object_get(o, "touchpoints_by_day"), "day", "2026-11-12", "channel", "mobile"), "count"), 1);
    ck_assert_ptr_nonnull(json_object_get(json_object_get(o, "definitions"), "customers_seen"));
    ck_assert_str_eq(json_string_value(json_object_get(o, "as_of")), "2026-11-21T00:00:00.000Z");
    json_decref(o);
}
END_TEST

START_TEST(test_transitions_matrix_rows_sum_to_one)
{
    json_t *o = analytics_transitions(snap, FROM, TO, NULL, NULL), *rows, *cols, *counts, *shares, *seq;
    int web, email, mobile, conv, lost, rweb, rstart;
    double sum = 0;
    size_t i;
    json_t *v;

    ck_assert_ptr_nonnull(o);
    rows = json_object_get(o, "rows");
    cols = json_object_get(o, "cols");
    counts = json_object_get(o, "counts");
    shares = json_object_get(o, "shares");
    rstart = index_of(rows, "(start)");
    rweb = index_of(rows, "web");
    web = index_of(cols, "web");
    email = index_of(cols, "email");
    mobile = index_of(cols, "mobile");
    conv = index_of(cols, "(converted)");
    lost = index_of(cols, "(lost)");
    ck_assert_int_eq(rstart, 0);
    ck_assert(web >= 0 && email >= 0 && mobile >= 0 && conv >= 0 && lost >= 0 && rweb > 0);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, rstart), web)), 4);
    /* web -> email (A), web -> mobile (B), web -> (converted) (A), web -> (lost) (C, E) */
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, rweb), email)), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, rweb), mobile)), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, rweb), conv)), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, rweb), lost)), 2);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, rweb), web)),
                     0); /* repeats are one step */
    json_array_foreach(json_array_get(shares, rweb), i, v) sum += json_number_value(v);
    ck_assert_near(sum, 1.0);
    ck_assert_near(json_number_value(json_array_get(json_array_get(shares, rweb), lost)), 0.4);
    ck_assert_str_eq(json_string_value(json_object_get(o, "converted_stage")), "convert");
    /* sequences: [web] x2 (C, E) first */
    seq = json_array_get(json_object_get(o, "sequences"), 0);
    ck_assert_int_eq(ival(seq, "customers"), 2);
    ck_assert_int_eq(json_array_size(json_object_get(seq, "channels")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(seq, "channels"), 0)), "web");
    ck_assert_int_eq(json_array_size(json_object_get(o, "sequences")), 3);
    json_decref(o);
}
END_TEST

START_TEST(test_transitions_filters)
{
    json_t *o = analytics_transitions(snap, FROM, TO, "mobile", NULL), *rows, *cols, *counts;

    /* only B: (start) -> web -> mobile -> (lost) */
    rows = json_object_get(o, "rows");
    cols = json_object_get(o, "cols");
    counts = json_object_get(o, "counts");
    ck_assert_int_eq(index_of(cols, "email"), -1);
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(counts, 0), index_of(cols, "web"))), 1);
    ck_assert_int_eq(
        json_integer_value(json_array_get(json_array_get(counts, index_of(rows, "mobile")), index_of(cols, "(lost)"))),
        1);
    json_decref(o);
    /* stage convert in the period: only A */
    o = analytics_transitions(snap, FROM, TO, NULL, "convert");
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(json_object_get(o, "counts"), 0),
                                                       index_of(json_object_get(o, "cols"), "web"))),
                     1);
    json_decref(o);
    /* an unknown channel: nobody */
    o = analytics_transitions(snap, FROM, TO, "fax", NULL);
    ck_assert_int_eq(json_array_size(json_object_get(o, "sequences")), 0);
    json_decref(o);
}
END_TEST

START_TEST(test_paths_repeats_collapsed_dropoffs)
{
    json_t *o = analytics_paths(snap, FROM, TO, NULL, NULL, NULL, 5, 6), *nodes, *links, *l;

    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "scope")), "person");
    ck_assert_int_eq(ival(o, "started"), 4);
    nodes = json_object_get(o, "nodes");
    links = json_object_get(o, "links");
    ck_assert_int_eq(ival(find(nodes, "id", "1_home"), "customers"), 4);
    /* B's "home, home" is one step: B's step 2 is pricing */
    ck_assert_int_eq(ival(find(nodes, "id", "2_pricing"), "customers"), 2);
    ck_assert_near(rval(find(nodes, "id", "2_pricing"), "share"), 0.5);
    ck_assert_ptr_null(find(nodes, "id", "2_home"));
    ck_assert_int_eq(ival(find(nodes, "id", "2_(drop-off)"), "customers"), 2); /* C, E */
    l = find2(links, "source", "1_home", "target", "2_pricing");
    ck_assert_int_eq(ival(l, "customers"), 2);
    ck_assert_near(rval(l, "avg_seconds"), 5400.0); /* A: 1 h; B: 2 h from the first home of the run */
    ck_assert_int_eq(ival(find2(links, "source", "2_pricing", "target", "3_app"), "customers"), 1);
    ck_assert_int_eq(ival(find2(links, "source", "3_app", "target", "4_(drop-off)"), "customers"), 1);
    ck_assert_int_eq(ival(find2(links, "source", "4_checkout", "target", "5_docs"), "customers"), 1);
    json_decref(o);
    /* from a chosen start, and Other with top 1 at step 2 (newsletter and app tie: one is Other) */
    o = analytics_paths(snap, FROM, TO, NULL, NULL, "pricing", 3, 1);
    ck_assert_int_eq(ival(o, "started"), 2);
    ck_assert_int_eq(ival(find(json_object_get(o, "nodes"), "id", "1_pricing"), "customers"), 2);
    ck_assert_int_eq(ival(find(json_object_get(o, "nodes"), "id", "2_Other"), "customers"), 1);
    json_decref(o);
}
END_TEST

START_TEST(test_funnel_late_converter_inside_window)
{
    static const char *const steps[] = {"need", "research", "select", "convert"};
    json_t *o = analytics_funnel(snap, FROM, TO, NULL, steps, 4, 14), *s, *next;

    ck_assert_ptr_nonnull(o);
    s = json_object_get(o, "steps");
    ck_assert_int_eq(ival(json_array_get(s, 0), "reached"), 4); /* A B C E entered in the period */
    ck_assert_int_eq(ival(json_array_get(s, 1), "reached"), 3); /* A B, and C after the period */
    ck_assert_int_eq(ival(json_array_get(s, 2), "reached"), 1); /* C */
    ck_assert_int_eq(ival(json_array_get(s, 3), "reached"), 1); /* C, on day 23: the period bounds entry only */
    ck_assert_near(rval(json_array_get(s, 3), "overall"), 0.25);
    ck_assert_near(rval(json_array_get(s, 2), "step"), 1.0 / 3);
    ck_assert_int_eq(ival(json_array_get(s, 2), "dropoff"), 2);
    ck_assert_int_eq(ival(json_array_get(s, 0), "dropoff"), 0);
    next = json_object_get(o, "next_after_dropoff");
    ck_assert_int_eq(ival(find2(next, "after", "need", "touchpoint", "(none)"), "customers"), 1);         /* E */
    ck_assert_int_eq(ival(find2(next, "after", "research", "touchpoint", "newsletter"), "customers"), 1); /* A */
    ck_assert_int_eq(ival(find2(next, "after", "research", "touchpoint", "app"), "customers"), 1);        /* B */
    json_decref(o);
    /* a 2-day window: C's research (3 days after entry) is too late */
    o = analytics_funnel(snap, FROM, TO, NULL, steps, 4, 2);
    ck_assert_int_eq(ival(json_array_get(json_object_get(o, "steps"), 1), "reached"), 2);
    ck_assert_int_eq(ival(json_array_get(json_object_get(o, "steps"), 3), "reached"), 0);
    json_decref(o);
    /* channel mobile: only B */
    o = analytics_funnel(snap, FROM, TO, "mobile", steps, 4, 14);
    ck_assert_int_eq(ival(json_array_get(json_object_get(o, "steps"), 0), "reached"), 1);
    json_decref(o);
}
END_TEST

START_TEST(test_stages_entries_regressions_medians)
{
    json_t *o = analytics_stages(snap, FROM, TO, NULL), *s, *t;

    ck_assert_ptr_nonnull(o);
    s = json_object_get(o, "stages");
    t = json_object_get(o, "transitions");
    /* lifecycle order first */
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(s, 0), "stage")), "need");
    ck_assert_int_eq(ival(find(s, "stage", "need"), "entered"), 3);     /* B C E (A entered on day 2) */
    ck_assert_int_eq(ival(find(s, "stage", "research"), "entered"), 2); /* A B */
    ck_assert_int_eq(ival(find(s, "stage", "convert"), "entered"), 1);  /* A (C converts after the period) */
    ck_assert_int_eq(ival(find(s, "stage", "select"), "entered"), 0);
    /* need: B 2 h, C 3 days (ends after the period) -> median 1.541666 days */
    ck_assert_near(rval(find(s, "stage", "need"), "median_days"), (7200.0 + 3 * 86400.0) / 2 / 86400.0);
    ck_assert_near(rval(find(s, "stage", "research"), "median_days"), 47.0 / 24); /* A's first stay */
    ck_assert_near(rval(find(s, "stage", "convert"), "median_days"), 1.0);
    ck_assert(json_is_null(json_object_get(find(s, "stage", "select"), "median_days")));
    ck_assert_int_eq(ival(find2(t, "from", "need", "to", "research"), "customers"), 2);
    ck_assert(json_is_false(json_object_get(find2(t, "from", "need", "to", "research"), "regression")));
    ck_assert_int_eq(ival(find2(t, "from", "convert", "to", "research"), "customers"), 1);
    ck_assert(json_is_true(json_object_get(find2(t, "from", "convert", "to", "research"), "regression")));
    json_decref(o);
}
END_TEST

static gw_config_t *test_config(void)
{
    const char *text =
        "{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":8080}],\"public_url\":\"http://127.0.0.1:8080\","
        "\"store\":{\"path\":\"/tmp/jg-unit\"},\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\"}},"
        "\"routes\":[{\"name\":\"site\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":\"shop\",\"auth\":\"none\","
        "\"touchpoint\":\"view\",\"stage\":\"need\"},"
        "{\"name\":\"app\",\"match\":{\"path_prefix\":\"/app\"},\"upstream\":\"shop\",\"auth\":\"session\","
        "\"channel\":\"mobile\",\"policy\":\"signed_in\"}],"
        "\"policies\":{\"signed_in\":{\"rules\":[{\"allow\":{\"signed_in\":true}}]}}}";
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;

    ck_assert_ptr_nonnull(doc);
    if (gw_config_from_json(doc, "test", &cfg, &errs) != GW_OK)
        ck_abort_msg("config: %s", errs.count > 0 ? errs.msgs[0] : "?");
    gw_config_errors_clear(&errs);
    json_decref(doc);
    return cfg;
}

START_TEST(test_inventory_routes_and_ingested)
{
    gw_config_t *cfg = test_config();
    json_t *o = analytics_inventory(snap, cfg, AT(20, 0)), *site, *app, *ing;

    ck_assert_ptr_nonnull(o);
    site = find(json_object_get(o, "routes"), "name", "site");
    app = find(json_object_get(o, "routes"), "name", "app");
    ck_assert_int_eq(ival(site, "touchpoints_30d"), 10); /* web, days -10..19: A 5, B 2, C 1, D 1, E 1 */
    ck_assert_int_eq(ival(app, "touchpoints_30d"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(site, "auth")), "none");
    ck_assert_int_eq(json_array_size(json_object_get(site, "identity_headers")), 0); /* no auth, no policy */
    ck_assert_int_eq(index_of(json_object_get(app, "identity_headers"), "X-Customer-Id"), 0);
    ck_assert(json_is_false(json_object_get(app, "assertion")));
    ck_assert_str_eq(json_string_value(json_object_get(app, "upstream")), "shop");
    ing = find(json_object_get(o, "ingested"), "source", "crm");
    ck_assert_str_eq(json_string_value(json_object_get(ing, "touchpoint")), "newsletter");
    ck_assert_int_eq(ival(ing, "touchpoints_30d"), 1);
    json_decref(o);
    /* 30 days before day 40: nothing */
    o = analytics_inventory(snap, cfg, AT(60, 0));
    ck_assert_int_eq(ival(find(json_object_get(o, "routes"), "name", "site"), "touchpoints_30d"), 0);
    json_decref(o);
    gw_config_unref(cfg);
}
END_TEST

START_TEST(test_signin_volume_buckets_and_anomalies)
{
    json_t *o = analytics_signin_volume(snap, AT(11, 0), AT(13, 0), 3600), *b, *a;

    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_array_size(json_object_get(o, "buckets")), 48);
    b = find(json_object_get(o, "buckets"), "t", "2026-11-12T01:00:00.000Z");
    ck_assert_int_eq(ival(b, "success"), 1);
    ck_assert_int_eq(ival(b, "failure"), 2);
    ck_assert_int_eq(ival(b, "refusals"), 3); /* one record standing for 3 */
    ck_assert_int_eq(ival(json_object_get(b, "by_reason"), "state_unknown"), 2);
    ck_assert_int_eq(ival(json_object_get(json_object_get(b, "by_provider"), "google"), "failure"), 2);
    a = json_object_get(o, "anomalies");
    ck_assert_int_eq(json_array_size(a), 1); /* 2 failures are not above 3 x 1; 5 are */
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "t")), "2026-11-13T03:00:00.000Z");
    ck_assert_int_eq(ival(json_array_get(a, 0), "failures"), 5);
    json_decref(o);
    o = analytics_signin_volume(snap, FROM, TO, 86400);
    b = find(json_object_get(o, "buckets"), "t", "2026-11-12T00:00:00.000Z");
    ck_assert_int_eq(ival(b, "failure"), 2);
    json_decref(o);
}
END_TEST

START_TEST(test_snapshot_rebuild_reads_audit_incrementally)
{
    analytics_snap_t *next;
    audit("token_accepted", "success", NULL, AT(11, 5), 0);
    ck_assert_int_eq(analytics_snap_build(st, snap, AT(20, 0), &next), GW_OK);
    {
        json_t *o = analytics_signin_volume(next, AT(11, 0), AT(12, 0), 3600);
        ck_assert_int_eq(ival(find(json_object_get(o, "buckets"), "t", "2026-11-12T01:00:00.000Z"), "success"), 1);
        ck_assert_int_eq(ival(find(json_object_get(o, "buckets"), "t", "2026-11-12T05:00:00.000Z"), "success"), 1);
        json_decref(o);
    }
    analytics_release(next);
}
END_TEST

START_TEST(test_many_channels_and_stages_fold_into_other)
{
    static uint8_t buf[300 * 256];
    size_t len = 0;
    analytics_snap_t *big;
    json_t *o;

    /* D walks 300 channels and 300 stages on day 17: the quadratic tables stay bounded */
    for (int i = 0; i < 300; ++i) {
        char id[16], ch[16], stg[16];
        store_tp_t tp;
        memset(&tp, 0, sizeof(tp));
        snprintf(id, sizeof(id), "tp_many_%d", i);
        snprintf(ch, sizeof(ch), "ch%d", i);
        snprintf(stg, sizeof(stg), "st%d", i);
        tp.id = id;
        tp.customer_id = cust[3];
        tp.occurred_at_ms = tp.received_at_ms = AT(17, 0) + (uint64_t)i * 1000;
        tp.channel = ch;
        tp.stage = stg;
        tp.touchpoint = "x";
        len += store_tp_encode(&tp, buf + len, sizeof(buf) - len);
    }
    ck_assert_int_eq(store_touchpoints_append(st, buf, len, 300), GW_OK);
    ck_assert_int_eq(analytics_snap_build(st, NULL, AT(20, 0), &big), GW_OK);
    o = analytics_transitions(big, FROM, TO, NULL, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_ge(index_of(json_object_get(o, "rows"), "(other)"), 0);
    ck_assert_int_le(json_array_size(json_object_get(o, "rows")), 257);
    json_decref(o);
    o = analytics_stages(big, FROM, TO, NULL);
    ck_assert_ptr_nonnull(find(json_object_get(o, "stages"), "stage", "(other)"));
    ck_assert_int_le(json_array_size(json_object_get(o, "stages")), 64);
    ck_assert_int_eq(ival(find(json_object_get(o, "stages"), "stage", "need"), "entered"), 3); /* unchanged */
    json_decref(o);
    analytics_release(big);
}
END_TEST

/* ------------------------------------------------------------------ the endpoints, through the harness */

/* waits (bounded) for the analytics' first snapshot: analytics_start() does not build it itself */
static void wait_ready(analytics_t *a)
{
    for (int i = 0; i < 6000; ++i) {
        analytics_snap_t *s = analytics_acquire(a);
        struct timespec ts = {0, 10000000};
        if (s != NULL) {
            analytics_release(s);
            return;
        }
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("no snapshot after 60 s");
}

static json_t *call(analytics_t *a, const gw_config_t *cfg, console_endpoint_fn fn, const char *query, int *status)
{
    console_ctx_t ctx = {st, a, cfg};
    console_staff_t staff;
    console_call_t c;
    console_answer_t ans = {0, NULL, NULL};

    memset(&staff, 0, sizeof(staff));
    memset(&c, 0, sizeof(c));
    c.ctx = &ctx;
    c.staff = &staff;
    c.method = "GET";
    c.query = query;
    c.query_len = strlen(query);
    c.now_ms = AT(19, 12);
    fn(&c, &ans);
    *status = ans.status;
    ck_assert_ptr_nonnull(ans.json);
    return ans.json;
}

START_TEST(test_endpoints_shapes_and_refusals)
{
    analytics_t *a = NULL;
    gw_config_t *cfg = test_config();
    int status;
    json_t *o;

    ck_assert_int_eq(analytics_start(st, 3600, &a), GW_OK);
    wait_ready(a);
    o = call(a, cfg, console_api_overview, "from=2026-11-11&to=2026-11-20", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(metric(o, "customers_seen", "value"), 4);
    json_decref(o);
    /* the default period: the 30 days ending today (day 19) */
    o = call(a, cfg, console_api_overview, "", &status);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "period"), "to")), "2026-11-20");
    ck_assert_int_eq(ival(json_object_get(o, "period"), "days"), 30);
    json_decref(o);
    o = call(a, cfg, console_api_transitions, "from=2026-11-11&to=2026-11-20&channel=mobile", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_array(json_object_get(o, "shares")) && json_is_array(json_object_get(o, "sequences")));
    json_decref(o);
    o = call(a, cfg, console_api_paths, "from=2026-11-11&to=2026-11-20&start=pricing&steps=3&top=1", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(ival(o, "started"), 2);
    json_decref(o);
    o = call(a, cfg, console_api_funnel, "from=2026-11-11&to=2026-11-20&steps=need,research&window_days=2", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(ival(o, "window_days"), 2);
    ck_assert_int_eq(json_array_size(json_object_get(o, "steps")), 2);
    ck_assert_int_eq(ival(json_array_get(json_object_get(o, "steps"), 1), "reached"), 2);
    json_decref(o);
    o = call(a, cfg, console_api_stages, "from=2026-11-11&to=2026-11-20", &status);
    ck_assert_int_eq(status, 200);
    ck_assert(json_is_array(json_object_get(o, "transitions")));
    json_decref(o);
    o = call(a, cfg, console_api_inventory, "", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(o, "routes")), 2);
    json_decref(o);
    o = call(a, cfg, console_api_signin_volume, "from=2026-11-12&to=2026-11-13", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(o, "bucket")), "hour"); /* a short period: hours */
    json_decref(o);
    /* refusals: each bad parameter named */
    {
        static const struct {
            console_endpoint_fn fn;
            const char *query, *names;
        } bad[] = {
            {console_api_paths, "steps=1", "steps"},
            {console_api_paths, "steps=11", "steps"},
            {console_api_paths, "top=x", "top"},
            {console_api_paths, "start=%01", "start"},
            {console_api_funnel, "steps=need,,convert", "steps"},
            {console_api_funnel, "steps=a,b,c,d,e,f,g,h,i,j,k", "steps"},
            {console_api_funnel, "window_days=0", "window_days"},
            {console_api_funnel, "window_days=366", "window_days"},
            {console_api_transitions, "channel=%ff", "channel"},
            {console_api_signin_volume, "bucket=week", "bucket"},
            {console_api_signin_volume, "from=2026-01-01&to=2026-11-13&bucket=hour", "bucket"},
            {console_api_overview, "from=2026-13-01", "from"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
            o = call(a, cfg, bad[i].fn, bad[i].query, &status);
            ck_assert_msg(status == 400, "%s: %d", bad[i].query, status);
            ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "invalid_parameter");
            ck_assert_msg(
                strncmp(json_string_value(json_object_get(o, "message")), bad[i].names, strlen(bad[i].names)) == 0,
                "%s: %s", bad[i].query, json_string_value(json_object_get(o, "message")));
            json_decref(o);
        }
    }
    analytics_stop(a);
    /* no analytics: 503 */
    o = call(NULL, cfg, console_api_overview, "", &status);
    ck_assert_int_eq(status, 503);
    ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "unavailable");
    json_decref(o);
    gw_config_unref(cfg);
}
END_TEST

START_TEST(test_background_rebuild_publishes_a_new_snapshot)
{
    analytics_t *a = NULL;
    analytics_snap_t *s0, *s1;
    uint8_t buf[1024];
    store_tp_t tp;
    size_t len;

    ck_assert_int_eq(analytics_start(st, 3600, &a), GW_OK);
    wait_ready(a);
    s0 = analytics_acquire(a);
    ck_assert_uint_eq(analytics_snap_touchpoints(s0), NJ);
    memset(&tp, 0, sizeof(tp));
    tp.id = "tp_new";
    tp.customer_id = cust[3];
    tp.occurred_at_ms = tp.received_at_ms = AT(17, 0);
    tp.channel = "store";
    tp.touchpoint = "visit";
    len = store_tp_encode(&tp, buf, sizeof(buf));
    ck_assert_int_eq(store_touchpoints_append(st, buf, len, 1), GW_OK);
    analytics_refresh(a);
    /* the rebuild is asynchronous: wait for it (bounded), the old snapshot staying valid meanwhile */
    for (int i = 0; i < 500; ++i) {
        s1 = analytics_acquire(a);
        if (s1 != s0)
            break;
        analytics_release(s1);
        s1 = NULL;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_ptr_nonnull(s1);
    ck_assert_uint_eq(analytics_snap_touchpoints(s1), NJ + 1);
    ck_assert_uint_eq(analytics_snap_touchpoints(s0), NJ);
    analytics_release(s1);
    analytics_release(s0);
    analytics_stop(a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("analytics");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_snapshot_columns);
    tcase_add_test(tc, test_overview_new_returning_across_the_boundary);
    tcase_add_test(tc, test_transitions_matrix_rows_sum_to_one);
    tcase_add_test(tc, test_transitions_filters);
    tcase_add_test(tc, test_paths_repeats_collapsed_dropoffs);
    tcase_add_test(tc, test_funnel_late_converter_inside_window);
    tcase_add_test(tc, test_stages_entries_regressions_medians);
    tcase_add_test(tc, test_inventory_routes_and_ingested);
    tcase_add_test(tc, test_signin_volume_buckets_and_anomalies);
    tcase_add_test(tc, test_snapshot_rebuild_reads_audit_incrementally);
    tcase_add_test(tc, test_many_channels_and_stages_fold_into_other);
    tcase_add_test(tc, test_endpoints_shapes_and_refusals);
    tcase_add_test(tc, test_background_rebuild_publishes_a_new_snapshot);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
