/* Unit tests: the demo's sample data goes through the real sign-in and recording paths, covers
 * the console's channels and stages over 30 days, is marked as sample, keeps the audit trail in
 * time order and verifiable, and is never added to a store that has customers. */
#include "demo_seed.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <string.h>

static char dir[64];
static store_t *st;
static const uint64_t now = 1796000000000ULL; /* 2026-11-30 */
static const char *const providers[] = {"google", "facebook"};

struct seen {
    size_t touchpoints, not_sample, out_of_window;
    int channels[4], stages[7];
    char last_customer[STORE_ID_LEN + 1];
    uint64_t last_ms;
    size_t out_of_order;
};

static int count_tp(const store_tp_t *tp, void *arg)
{
    static const char *const channels[] = {"web", "mobile-app", "contact-centre", "email"};
    static const char *const stages[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy"};
    struct seen *s = arg;

    ++s->touchpoints;
    if (tp->source == NULL || strcmp(tp->source, "sample") != 0)
        ++s->not_sample;
    if (tp->occurred_at_ms + 30 * 86400000ULL < now || tp->occurred_at_ms > now)
        ++s->out_of_window;
    for (int i = 0; i < 4; ++i)
        if (tp->channel != NULL && strcmp(tp->channel, channels[i]) == 0)
            s->channels[i] = 1;
    for (int i = 0; i < 7; ++i)
        if (tp->stage != NULL && strcmp(tp->stage, stages[i]) == 0)
            s->stages[i] = 1;
    return 0;
}

static int trail_in_time_order(json_t *r, void *arg)
{
    struct seen *s = arg;
    uint64_t t = (uint64_t)json_integer_value(json_object_get(r, "ts_ms"));
    if (t < s->last_ms)
        ++s->out_of_order;
    s->last_ms = t;
    return 0;
}

START_TEST(seeds_an_empty_store_through_the_real_paths)
{
    gw_recorder_t *rec;
    size_t created = 0;
    uint64_t customers = 0, audited = 0, first_bad = 0;
    const char *why = NULL;
    struct seen s;

    jg_temp_store_open(dir, sizeof(dir), "jg-demo-seed", &st);
    store_audit_key(st, (const uint8_t *)"0123456789abcdef0123456789abcdef");
    ck_assert_ptr_nonnull(rec = gw_recorder_create(st, 65536));
    ck_assert_int_eq(gw_demo_seed(st, rec, providers, 2, 300, now, &created), GW_OK);
    gw_recorder_stop(rec);
    gw_recorder_free(rec);
    ck_assert_uint_eq(created, 300);
    ck_assert_int_eq(store_count_customers(st, &customers), GW_OK);
    ck_assert_uint_eq(customers, 300);

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(store_touchpoints_foreach(st, 0, count_tp, &s), GW_OK);
    ck_assert_uint_ge(s.touchpoints, 600); /* every customer has a journey, most more than one step */
    ck_assert_uint_eq(s.not_sample, 0);
    ck_assert_uint_eq(s.out_of_window, 0);
    for (int i = 0; i < 4; ++i)
        ck_assert_msg(s.channels[i], "channel %d has no touchpoint", i);
    for (int i = 0; i < 7; ++i)
        ck_assert_msg(s.stages[i], "stage %d is never reached", i);

    /* the trail: sign-ins and refusals, verifiable, in time order as live traffic writes it */
    ck_assert_int_eq(store_audit_verify(st, &audited, &first_bad, &why), GW_OK);
    ck_assert_uint_ge(audited, 300 + 300 / 5);
    ck_assert_int_eq(store_audit_foreach(st, 0, trail_in_time_order, &s), GW_OK);
    ck_assert_uint_eq(s.out_of_order, 0);

    /* a store with customers is left alone */
    ck_assert_ptr_nonnull(rec = gw_recorder_create(st, 1024));
    ck_assert_int_eq(gw_demo_seed(st, rec, providers, 2, 300, now, &created), GW_OK);
    gw_recorder_stop(rec);
    gw_recorder_free(rec);
    ck_assert_uint_eq(created, 0);
    ck_assert_int_eq(store_count_customers(st, &customers), GW_OK);
    ck_assert_uint_eq(customers, 300);
    jg_temp_store_close(&st, dir);
}
END_TEST

START_TEST(refuses_empty_arguments)
{
    size_t created = 1;
    ck_assert_int_eq(gw_demo_seed(NULL, NULL, providers, 2, 10, now, &created), GW_EINVAL);
    ck_assert_uint_eq(created, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("demo_seed");
    TCase *tc = tcase_create("demo_seed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, seeds_an_empty_store_through_the_real_paths);
    tcase_add_test(tc, refuses_empty_arguments);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
