/* Unit tests: the per-address token buckets (attempts, free checks, charges, refill, kinds, bounds). */
#include "ratelimit.h"

#include "../check_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1000000u /* an arbitrary start on the monotonic clock, in ms */

static gw_ratelimit_t *limiter(double per_s, double burst)
{
    gw_ratelimit_t *rl = gw_ratelimit_create(64);
    ck_assert_ptr_nonnull(rl);
    gw_ratelimit_set(rl, 0, per_s, burst);
    return rl;
}

/* an attempt: need 1, cost 1 */
static unsigned attempt(gw_ratelimit_t *rl, const char *addr, uint64_t now, int *first)
{
    return gw_ratelimit_take(rl, addr, 0, 1, 1, now, first);
}

START_TEST(test_burst_then_refused_with_the_wait)
{
    /* one token every 10 s, burst 3 */
    gw_ratelimit_t *rl = limiter(0.1, 3);
    int first = 0;

    for (int i = 0; i < 3; ++i)
        ck_assert_uint_eq(attempt(rl, "192.0.2.1", T0, &first), 0);
    ck_assert_uint_eq(attempt(rl, "192.0.2.1", T0, &first), 10); /* 10 s for a whole token */
    ck_assert_int_eq(first, 1);
    first = 0;
    ck_assert_uint_eq(attempt(rl, "192.0.2.1", T0 + 4000, &first), 6); /* 0.4 refilled */
    ck_assert_uint_eq(attempt(rl, "192.0.2.1", T0 + 4500, &first), 6); /* 5.5 s, rounded up */
    ck_assert_int_eq(first, 0);                                        /* the run of refusals was reported */
    ck_assert_uint_eq(attempt(rl, "192.0.2.1", T0 + 11000, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.1", T0 + 11000, &first), 0);
    ck_assert_int_eq(first, 1); /* a new run after a success */
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_refill_stops_at_the_burst)
{
    gw_ratelimit_t *rl = limiter(1, 2);
    int first;

    ck_assert_uint_eq(attempt(rl, "192.0.2.2", T0, &first), 0);
    /* an hour idle refills to 2, not 3600 */
    ck_assert_uint_eq(attempt(rl, "192.0.2.2", T0 + 3600000, &first), 0);
    ck_assert_uint_eq(attempt(rl, "192.0.2.2", T0 + 3600000, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.2", T0 + 3600000, &first), 0);
    /* a clock that reads earlier than the last take refills nothing and breaks nothing */
    ck_assert_uint_ne(attempt(rl, "192.0.2.2", T0, &first), 0);
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_free_checks_and_charges)
{
    gw_ratelimit_t *rl = limiter(0.1, 2);
    int first;

    /* need 1, cost 0 (a callback): allowed while a token remains, and it takes none */
    for (int i = 0; i < 10; ++i)
        ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.3", 0, 1, 0, T0, &first), 0);
    /* need 0, cost 1 (a failed callback): never refused, and the bucket does not go below zero */
    for (int i = 0; i < 5; ++i)
        ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.3", 0, 0, 1, T0, &first), 0);
    ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.3", 0, 1, 0, T0, &first), 10);
    /* 11 s later the bucket holds a token: no debt was carried */
    ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.3", 0, 1, 0, T0 + 11000, &first), 0);
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_addresses_and_kinds_are_separate)
{
    gw_ratelimit_t *rl = limiter(0.1, 1);
    int first;

    gw_ratelimit_set(rl, 1, 0.1, 2);
    ck_assert_uint_eq(attempt(rl, "192.0.2.4", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.4", T0, &first), 0);
    ck_assert_uint_eq(attempt(rl, "192.0.2.5", T0, &first), 0);
    ck_assert_uint_eq(attempt(rl, "2001:db8::4", T0, &first), 0);
    /* the same address, another kind: its own bucket, its own burst */
    ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.4", 1, 1, 1, T0, &first), 0);
    ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.4", 1, 1, 1, T0, &first), 0);
    ck_assert_uint_ne(gw_ratelimit_take(rl, "192.0.2.4", 1, 1, 1, T0, &first), 0);
    /* a kind the table does not have is never limited */
    ck_assert_uint_eq(gw_ratelimit_take(rl, "192.0.2.4", GW_RATELIMIT_KINDS, 1, 1, T0, &first), 0);
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_a_smaller_burst_applies_to_full_buckets)
{
    gw_ratelimit_t *rl = limiter(0.1, 100);
    int first;

    ck_assert_uint_eq(attempt(rl, "192.0.2.6", T0, &first), 0); /* 99 left */
    gw_ratelimit_set(rl, 0, 0.1, 2);
    ck_assert_uint_eq(attempt(rl, "192.0.2.6", T0, &first), 0);
    ck_assert_uint_eq(attempt(rl, "192.0.2.6", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.6", T0, &first), 0);
    /* nonsense settings are ignored */
    gw_ratelimit_set(rl, 0, 0, 5);
    gw_ratelimit_set(rl, 0, 1, -1);
    ck_assert_uint_eq(attempt(rl, "192.0.2.6", T0, &first), 10);
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_memory_is_bounded_however_many_addresses)
{
    /* 100,000 addresses through 64 slots: each lands on a slot; an address whose slot was taken over
     * starts again with a full bucket (the price of the bound), and nothing grows */
    gw_ratelimit_t *rl = limiter(0.1, 1);
    char addr[64], longer[200];
    int first;

    for (unsigned i = 0; i < 100000; ++i) {
        snprintf(addr, sizeof(addr), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        ck_assert_uint_eq(attempt(rl, addr, T0, &first), 0);
        ck_assert_uint_ne(attempt(rl, addr, T0, &first), 0); /* its own second try, at once, is refused */
    }
    /* an address longer than a slot holds (64) is cut, consistently: it is still limited */
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_uint_eq(attempt(rl, longer, T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, longer, T0, &first), 0);
    gw_ratelimit_destroy(rl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_burst_then_refused_with_the_wait);
    tcase_add_test(tc, test_refill_stops_at_the_burst);
    tcase_add_test(tc, test_free_checks_and_charges);
    tcase_add_test(tc, test_addresses_and_kinds_are_separate);
    tcase_add_test(tc, test_a_smaller_burst_applies_to_full_buckets);
    tcase_add_test(tc, test_memory_is_bounded_however_many_addresses);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
