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
    /* 100,000 addresses through 64 slots: nothing grows, and a newcomer taking over a slot gets the
     * level the slot has, never a fresh burst, so at one instant the table as a whole hands out at
     * most slots x burst attempts however many addresses come */
    gw_ratelimit_t *rl = limiter(0.1, 1);
    char addr[64], longer[200];
    unsigned allowed = 0;
    int first;

    for (unsigned i = 0; i < 100000; ++i) {
        snprintf(addr, sizeof(addr), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        allowed += attempt(rl, addr, T0, &first) == 0;
        ck_assert_uint_ne(attempt(rl, addr, T0, &first), 0); /* its own second try, at once, is refused */
    }
    ck_assert_uint_le(allowed, 64);
    ck_assert_uint_gt(allowed, 0);
    /* an address longer than a slot holds (64) is cut, consistently: it is still limited */
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert_uint_eq(attempt(rl, longer, T0 + 3600000, &first), 0);
    ck_assert_uint_ne(attempt(rl, longer, T0 + 3600000, &first), 0);
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_ipv6_is_keyed_by_its_64)
{
    gw_ratelimit_t *rl = limiter(0.1, 1);
    char key[64];
    int first;

    /* every address of one /64 shares a bucket: a subscriber picks any of 2^64 addresses */
    ck_assert_uint_eq(attempt(rl, "2001:db8:1:2::1", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "2001:db8:1:2::2", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "2001:db8:1:2:ffff:ffff:ffff:ffff", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "2001:0DB8:0001:0002:0:0:0:7", T0, &first), 0); /* another spelling */
    ck_assert_uint_ne(attempt(rl, "2001:db8:1:2::9%eth0", T0, &first), 0);        /* a zone index */
    /* the next /64 is another client */
    ck_assert_uint_eq(attempt(rl, "2001:db8:1:3::1", T0, &first), 0);
    /* an IPv4-mapped IPv6 address is the IPv4 client (a dual-stack listener reports it so) */
    ck_assert_uint_eq(attempt(rl, "192.0.2.77", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "::ffff:192.0.2.77", T0, &first), 0);
    ck_assert_uint_eq(attempt(rl, "::ffff:192.0.2.78", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.78", T0, &first), 0);
    /* the keys themselves */
    gw_ratelimit_key("2001:db8:1:2:3:4:5:6", key, sizeof(key));
    ck_assert_str_eq(key, "2001:db8:1:2::/64");
    gw_ratelimit_key("::ffff:10.0.0.1", key, sizeof(key));
    ck_assert_str_eq(key, "10.0.0.1");
    gw_ratelimit_key("198.51.100.3", key, sizeof(key));
    ck_assert_str_eq(key, "198.51.100.3");
    gw_ratelimit_key("not an address", key, sizeof(key));
    ck_assert_str_eq(key, "not an address");
    gw_ratelimit_destroy(rl);
}
END_TEST

START_TEST(test_taking_over_a_slot_never_refills_it)
{
    /* one slot: every address lands on it, as two addresses whose hashes meet do in a larger table */
    gw_ratelimit_t *rl = gw_ratelimit_create(1);
    unsigned allowed = 0;
    int first;

    gw_ratelimit_set(rl, 0, 0.1, 3);
    gw_ratelimit_set(rl, 1, 0.1, 6);
    for (int i = 0; i < 3; ++i)
        ck_assert_uint_eq(attempt(rl, "192.0.2.10", T0, &first), 0);
    /* two addresses taking turns, and many new ones: none gets a fresh burst */
    for (unsigned i = 0; i < 100; ++i) {
        char addr[32];
        snprintf(addr, sizeof(addr), "198.51.100.%u", i);
        allowed += attempt(rl, i % 2 == 0 ? "192.0.2.10" : "192.0.2.11", T0, &first) == 0;
        allowed += attempt(rl, addr, T0, &first) == 0;
    }
    ck_assert_uint_eq(allowed, 0);
    /* nor does another kind of bucket landing on the slot: it gets the same share of its own burst */
    ck_assert_uint_ne(gw_ratelimit_take(rl, "192.0.2.10", 1, 1, 1, T0, &first), 0);
    /* refill still works: 20 s later the slot holds 2 of 6 (its last kind), a third: 1 of 3 */
    ck_assert_uint_eq(attempt(rl, "192.0.2.12", T0 + 20000, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.12", T0 + 20000, &first), 0);
    /* an unused slot starts full */
    gw_ratelimit_destroy(rl);
    rl = gw_ratelimit_create(1);
    gw_ratelimit_set(rl, 0, 0.1, 2);
    ck_assert_uint_eq(attempt(rl, "192.0.2.13", T0, &first), 0);
    ck_assert_uint_eq(attempt(rl, "192.0.2.13", T0, &first), 0);
    ck_assert_uint_ne(attempt(rl, "192.0.2.13", T0, &first), 0);
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
    tcase_add_test(tc, test_ipv6_is_keyed_by_its_64);
    tcase_add_test(tc, test_taking_over_a_slot_never_refills_it);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
