/* Unit tests: refusal records are aggregated per key, capped per interval with a counted gap, verified. */
#include "auditq.h"
#include "metrics.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];
static store_t *st;

static void setup(void)
{
    static const uint8_t key[32] = {1, 2, 3};
    jg_temp_store_open(dir, sizeof(dir), "jg-auditq", &st);
    store_audit_key(st, key);
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

/* the trail's records, oldest first */
static int collect(json_t *rec, void *arg)
{
    json_array_append(arg, rec);
    return 0;
}

static json_t *trail(void)
{
    json_t *all = json_array();
    uint64_t count = 0, bad = 0;
    const char *why = NULL;
    ck_assert_int_eq(store_audit_foreach(st, 0, collect, all), GW_OK);
    ck_assert_int_eq(store_audit_verify(st, &count, &bad, &why), GW_OK);
    ck_assert_uint_eq(count, json_array_size(all));
    return all;
}

/* records of an event (and reason when not NULL); *sum gets the events they stand for */
static size_t records(json_t *all, const char *event, const char *reason, uint64_t *sum)
{
    size_t i, n = 0;
    json_t *r;
    *sum = 0;
    json_array_foreach(all, i, r)
    {
        const char *re = json_string_value(json_object_get(r, "reason"));
        if (strcmp(json_string_value(json_object_get(r, "event")), event) != 0 ||
            (reason != NULL && (re == NULL || strcmp(re, reason) != 0)))
            continue;
        ++n;
        *sum += json_is_integer(json_object_get(r, "count")) ? (uint64_t)json_integer_value(json_object_get(r, "count"))
                                                             : 1;
    }
    return n;
}

static store_audit_event_t denied(const char *customer, const char *client)
{
    store_audit_event_t ev = {"policy_denied", "refused", "staff", NULL, customer, NULL, client, "ua", NULL,
                              "req",           NULL,      NULL,    NULL};
    return ev;
}

START_TEST(test_repeats_become_one_record_with_a_count)
{
    /* a long interval: only the explicit flush ends it */
    gw_auditq_t *q = gw_auditq_create(st, 3600 * 1000, 100, 64);
    store_audit_event_t ev = denied("c_1", "192.0.2.1");
    uint64_t before = gw_metrics_global(GW_GCTR_AUDIT_AGGREGATED), sum;
    json_t *all;

    for (int i = 0; i < 5000; ++i)
        gw_auditq_refusal(q, "policy_denied|c_1|admin", &ev, 1000 + (uint64_t)i);
    gw_auditq_flush(q);
    all = trail();
    /* the first on its own (with its request), then one record counting the 4,999 repeats */
    ck_assert_uint_eq(json_array_size(all), 2);
    ck_assert_ptr_null(json_object_get(json_array_get(all, 0), "count"));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(all, 0), "request_id")), "req");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(all, 1), "count")), 4999);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(all, 1), "customer_id")), "c_1");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(all, 1), "reason")), "staff");
    ck_assert_uint_eq(records(all, "policy_denied", NULL, &sum), 2);
    ck_assert_uint_eq(sum, 5000);
    ck_assert_uint_eq(gw_metrics_global(GW_GCTR_AUDIT_AGGREGATED) - before, 4999);
    json_decref(all);
    /* the next interval starts afresh: its first is written again; destroy writes the aggregate */
    for (int i = 0; i < 3; ++i)
        gw_auditq_refusal(q, "policy_denied|c_1|admin", &ev, 9000);
    gw_auditq_destroy(q);
    all = trail();
    ck_assert_uint_eq(records(all, "policy_denied", NULL, &sum), 4);
    ck_assert_uint_eq(sum, 5003);
    json_decref(all);
}
END_TEST

START_TEST(test_the_cap_per_interval_leaves_a_counted_gap)
{
    gw_auditq_t *q = gw_auditq_create(st, 3600 * 1000, 10, 4096);
    uint64_t before = gw_metrics_global(GW_GCTR_AUDIT_OVER_LIMIT), sum;
    json_t *all;
    char key[128], client[64];

    /* 1,000 anonymous clients (spoofed addresses), each refused twice: 2,000 events */
    for (int i = 0; i < 1000; ++i) {
        store_audit_event_t ev = {"callback_refused",
                                  "refused",
                                  "state_unknown",
                                  "google",
                                  NULL,
                                  NULL,
                                  client,
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL};
        snprintf(client, sizeof(client), "10.0.%d.%d", i / 256, i % 256);
        snprintf(key, sizeof(key), "callback_refused|%s", client);
        gw_auditq_refusal(q, key, &ev, 1000);
        gw_auditq_refusal(q, key, &ev, 1001);
    }
    /* a signed-in customer's refusal has a cap of its own: an anonymous flood does not crowd it out */
    {
        store_audit_event_t ev = denied("c_2", "192.0.2.2");
        gw_auditq_refusal(q, "policy_denied|c_2", &ev, 1002);
    }
    gw_auditq_flush(q);
    all = trail();
    /* 10 anonymous records in the interval, 10 aggregates at its end (the next interval's cap counts
     * them), the customer's record, and one gap counting what went past the cap */
    ck_assert_uint_le(records(all, "callback_refused", NULL, &sum), 20);
    ck_assert_uint_ge(records(all, "callback_refused", NULL, &sum), 10);
    ck_assert_uint_eq(records(all, "policy_denied", NULL, &sum), 1);
    ck_assert_uint_eq(records(all, "audit_gap", "over_limit", &sum), 1);
    ck_assert_uint_ge(sum, 1000 - 10);
    ck_assert_uint_le(json_array_size(all), 20 + 1 + 1);
    json_decref(all);
    gw_auditq_destroy(q);
    all = trail();
    /* at stop: a gap for the aggregates that went past the new interval's cap */
    ck_assert_uint_le(json_array_size(all), 20 + 1 + 2);
    {
        uint64_t written, gaps;
        records(all, "callback_refused", NULL, &written);
        records(all, "audit_gap", NULL, &gaps);
        ck_assert_uint_eq(written + gaps, 2000); /* every event is in the trail: on its own or counted */
    }
    {
        uint64_t gaps;
        records(all, "audit_gap", "over_limit", &gaps);
        ck_assert_uint_eq(gw_metrics_global(GW_GCTR_AUDIT_OVER_LIMIT) - before, gaps);
    }
    json_decref(all);
}
END_TEST

START_TEST(test_what_does_not_fit_the_queue_is_said_in_the_trail)
{
    /* a queue of one record and 20,000 distinct refusals pushed faster than a synced write: the ones
     * that found the queue full are counted and said in an audit_gap record, never silently lost */
    gw_auditq_t *q = gw_auditq_create(st, 3600 * 1000, 1000000, 1);
    uint64_t before = gw_metrics_global(GW_GCTR_AUDIT_LOST), written, lost;
    json_t *all;
    char key[64];

    for (int i = 0; i < 20000; ++i) {
        store_audit_event_t ev = denied("c_3", "192.0.2.3");
        snprintf(key, sizeof(key), "policy_denied|c_3|%d", i);
        gw_auditq_refusal(q, key, &ev, 1000);
    }
    gw_auditq_destroy(q);
    all = trail();
    records(all, "policy_denied", NULL, &written);
    records(all, "audit_gap", "lost", &lost);
    ck_assert_uint_eq(written + lost, 20000);
    ck_assert_uint_eq(gw_metrics_global(GW_GCTR_AUDIT_LOST) - before, lost);
    json_decref(all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("auditq");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_repeats_become_one_record_with_a_count);
    tcase_add_test(tc, test_the_cap_per_interval_leaves_a_counted_gap);
    tcase_add_test(tc, test_what_does_not_fit_the_queue_is_said_in_the_trail);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
