/* Unit tests: anonymous visitors' touchpoints in memory stay within their byte budget, per-visitor
 * cap and idle expiry, and what is evicted or expired is counted. */
#include "metrics.h"
#include "recorder.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char dir[64];
static store_t *st;
static gw_recorder_t *rec;
static char query[2048];

static void setup(void)
{
    char v[201];
    jg_temp_store_open(dir, sizeof(dir), "jg-recorder", &st);
    ck_assert_ptr_nonnull(rec = gw_recorder_create(st, 1024));
    /* a client-chosen campaign: five UTM values at the longest kept (200 bytes) */
    memset(v, 'x', 200);
    v[200] = '\0';
    snprintf(query, sizeof(query), "utm_source=%s&utm_medium=%s&utm_campaign=%s&utm_term=%s&utm_content=%s", v, v, v, v,
             v);
}

static void teardown(void)
{
    gw_recorder_stop(rec);
    gw_recorder_free(rec);
    jg_temp_store_close(&st, dir);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void visit(const char *visitor)
{
    char host[300];
    gw_touch_t t;
    memset(&t, 0, sizeof(t));
    memset(host, 'r', sizeof(host));
    memcpy(host, "https://", 8);
    host[sizeof(host) - 1] = '\0';
    t.visitor_id = visitor;
    t.channel = "web";
    t.touchpoint = "landing";
    t.route = "site";
    t.method = "GET";
    t.referer = host; /* a 290-byte host: cut at 255 */
    t.query = query;
    t.query_len = strlen(query);
    t.status = 200;
    t.occurred_at_ms = wall_ms();
    ck_assert_int_eq(gw_recorder_push(rec, &t), 0);
}

static void id_of(unsigned i, char out[32])
{
    snprintf(out, 32, "visitor-%012u", i);
}

START_TEST(test_visitors_stay_within_the_byte_budget)
{
    uint64_t evicted = gw_metrics_global(GW_GCTR_VISITORS_EVICTED);
    size_t visitors, bytes;
    char id[32];

    gw_recorder_set_visitor_memory(rec, 256 * 1024);
    /* 5,000 visitors with a long campaign each: about 7 MB unbounded */
    for (unsigned i = 0; i < 5000; ++i) {
        id_of(i, id);
        visit(id);
        gw_recorder_visitor_usage(rec, &visitors, &bytes);
        ck_assert_uint_le(bytes, 256 * 1024);
    }
    ck_assert_uint_gt(visitors, 50);
    ck_assert_uint_lt(visitors, 5000);
    /* the least recently seen went first, and were counted */
    ck_assert_uint_eq(gw_metrics_global(GW_GCTR_VISITORS_EVICTED) - evicted, 5000 - visitors);
    id_of(0, id);
    ck_assert_uint_eq(gw_recorder_join(rec, id, "c_old"), 0);
    id_of(4999, id);
    ck_assert_uint_eq(gw_recorder_join(rec, id, "c_new"), 1);
    /* a lower budget evicts at once */
    gw_recorder_set_visitor_memory(rec, 16 * 1024);
    gw_recorder_visitor_usage(rec, &visitors, &bytes);
    ck_assert_uint_le(bytes, 16 * 1024);
    ck_assert_uint_gt(visitors, 0);
}
END_TEST

START_TEST(test_one_visitor_keeps_its_newest_within_the_caps)
{
    size_t visitors, bytes;

    /* a large budget: the per-visitor cap (50, the oldest go first) */
    for (unsigned i = 0; i < 80; ++i)
        visit("visitor-busy-000001");
    ck_assert_uint_eq(gw_recorder_join(rec, "visitor-busy-000001", "c_1"), GW_VISITOR_TOUCHES);
    /* a budget smaller than its 50: a lone visitor loses its oldest touchpoints, never the budget */
    gw_recorder_set_visitor_memory(rec, 8 * 1024);
    for (unsigned i = 0; i < 80; ++i) {
        visit("visitor-busy-000002");
        gw_recorder_visitor_usage(rec, &visitors, &bytes);
        ck_assert_uint_le(bytes, 8 * 1024);
        ck_assert_uint_eq(visitors, 1);
    }
    ck_assert_uint_gt(gw_recorder_join(rec, "visitor-busy-000002", "c_2"), 0);
    gw_recorder_visitor_usage(rec, &visitors, &bytes);
    ck_assert_uint_eq(visitors, 0);
    ck_assert_uint_eq(bytes, 0);
}
END_TEST

START_TEST(test_idle_visitors_expire_after_30_minutes)
{
    uint64_t expired = gw_metrics_global(GW_GCTR_VISITORS_EXPIRED), now;
    size_t visitors, bytes;

    visit("visitor-idle-000001");
    visit("visitor-idle-000002");
    now = wall_ms();
    ck_assert_uint_eq(gw_recorder_expire_visitors(rec, now + 29 * 60 * 1000), 0);
    gw_recorder_visitor_usage(rec, &visitors, &bytes);
    ck_assert_uint_eq(visitors, 2);
    ck_assert_uint_eq(gw_recorder_expire_visitors(rec, now + 31 * 60 * 1000), 2);
    gw_recorder_visitor_usage(rec, &visitors, &bytes);
    ck_assert_uint_eq(visitors, 0);
    ck_assert_uint_eq(bytes, 0);
    ck_assert_uint_eq(gw_metrics_global(GW_GCTR_VISITORS_EXPIRED) - expired, 2);
    ck_assert_uint_eq(gw_recorder_join(rec, "visitor-idle-000001", "c_3"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recorder");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_visitors_stay_within_the_byte_budget);
    tcase_add_test(tc, test_one_visitor_keeps_its_newest_within_the_caps);
    tcase_add_test(tc, test_idle_visitors_expire_after_30_minutes);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
