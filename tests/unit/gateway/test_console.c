/* Unit tests: the console's pure helpers (console_util.c) — query parameters, periods, times and
 * the checks on API path segments. */
#include "console_int.h"

#include "../check_run.h"

#include <check.h>
#include <string.h>

#define DAY 86400000ULL
/* 2026-12-07T23:09:43.123Z */
#define NOW 1796684983123ULL

static console_call_t call_with(const char *query)
{
    console_call_t c;
    memset(&c, 0, sizeof(c));
    c.query = query;
    c.query_len = strlen(query);
    c.now_ms = NOW;
    return c;
}

START_TEST(test_query_decodes_and_refuses)
{
    char out[16];
    console_call_t c = call_with("q=a%40b.example&x=1+2&dup=1&dup=2&bad=%C0%AF&ctl=a%0Ab&long=0123456789abcdefXYZ&e=");

    ck_assert_int_eq(console_query(&c, "q", out, sizeof(out)), 11);
    ck_assert_str_eq(out, "a@b.example");
    ck_assert_int_eq(console_query(&c, "x", out, sizeof(out)), 3);
    ck_assert_str_eq(out, "1 2");
    ck_assert_int_eq(console_query(&c, "missing", out, sizeof(out)), -1);
    ck_assert_int_eq(console_query(&c, "dup", out, sizeof(out)), -2);  /* one value or none */
    ck_assert_int_eq(console_query(&c, "bad", out, sizeof(out)), -2);  /* overlong UTF-8 */
    ck_assert_int_eq(console_query(&c, "ctl", out, sizeof(out)), -2);  /* a line break */
    ck_assert_int_eq(console_query(&c, "long", out, sizeof(out)), -2); /* 19 bytes into 16 */
    ck_assert_int_eq(console_query(&c, "e", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    c = call_with("q=%E2%82%AC%F0%9F%98%80");
    ck_assert_int_eq(console_query(&c, "q", out, sizeof(out)), 7); /* € and an emoji */
    c = call_with("q=%ED%A0%80");                                  /* a UTF-16 surrogate */
    ck_assert_int_eq(console_query(&c, "q", out, sizeof(out)), -2);
    c = call_with("q=%E2%82"); /* cut short */
    ck_assert_int_eq(console_query(&c, "q", out, sizeof(out)), -2);
}
END_TEST

START_TEST(test_period_default_bounds_and_refusals)
{
    console_answer_t ans = {0, NULL, NULL};
    uint64_t from, to;
    console_call_t c = call_with("");
    uint64_t today = NOW / DAY * DAY;

    /* the 30 days ending today */
    ck_assert_int_eq(console_period(&c, &ans, &from, &to), 0);
    ck_assert_uint_eq(to, today + DAY);
    ck_assert_uint_eq(from, today - 29 * DAY);
    c = call_with("from=2026-02-27&to=2026-03-01");
    ck_assert_int_eq(console_period(&c, &ans, &from, &to), 0);
    ck_assert_uint_eq((to - from) / DAY, 3); /* 27, 28, 1 March: not a leap year */
    c = call_with("from=2024-02-29&to=2024-02-29");
    ck_assert_int_eq(console_period(&c, &ans, &from, &to), 0);
    ck_assert_uint_eq(to - from, DAY);
    c = call_with("from=2024-12-01");
    ck_assert_int_eq(console_period(&c, &ans, &from, &to), 0);
    ck_assert_uint_eq((to - from) / DAY, 30); /* from and 30 days on */
    ck_assert_ptr_null(ans.json);

    static const char *const bad[] = {"from=2026-02-29",
                                      "from=2026-13-01",
                                      "to=2026-1-01",
                                      "from=2026-12-07&to=2026-12-06",
                                      "from=2024-01-01&to=2026-01-01",
                                      "from=x",
                                      "from=1&from=2",
                                      "to=1969-12-31"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        c = call_with(bad[i]);
        ck_assert_int_eq(console_period(&c, &ans, &from, &to), -1);
        ck_assert_int_eq(ans.status, 400);
        ck_assert_str_eq(json_string_value(json_object_get(ans.json, "error")), "invalid_parameter");
        json_decref(ans.json);
        ans.json = NULL;
    }
    c = call_with("from=2024-01-01&to=2025-12-31"); /* 731 days: the longest */
    ck_assert_int_eq(console_period(&c, &ans, &from, &to), 0);
}
END_TEST

START_TEST(test_iso_time_and_day)
{
    char t[25], d[11];
    console_iso_time(NOW, t);
    ck_assert_str_eq(t, "2026-12-07T23:09:43.123Z");
    console_iso_time(0, t);
    ck_assert_str_eq(t, "1970-01-01T00:00:00.000Z");
    gw_iso_day(NOW, d);
    ck_assert_str_eq(d, "2026-12-07");
}
END_TEST

START_TEST(test_segments)
{
    char out[CONSOLE_SEG_MAX + 1], big[3 * 256 + 1];

    ck_assert_int_eq(console_segment_decode("c_abc", 5, out, sizeof(out)), 5);
    ck_assert_str_eq(out, "c_abc");
    ck_assert_int_eq(console_segment_decode("google%3A123", 12, out, sizeof(out)), 10);
    ck_assert_str_eq(out, "google:123");
    ck_assert_int_eq(console_segment_decode("%E2%82%AC", 9, out, sizeof(out)), 3);
    static const char *const bad[] = {".",   "..",     "%2E", "%2e%2E", "a%2Fb", "a%00b", "a%0Ab",
                                      "%7F", "%C0%AF", "%FF", "%4",     "%zz",   "%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        ck_assert_msg(console_segment_decode(bad[i], strlen(bad[i]), out, sizeof(out)) == -1, "%s", bad[i]);
    ck_assert_int_eq(console_segment_decode("", 0, out, sizeof(out)), -1);
    memset(big, 'a', 255);
    ck_assert_int_eq(console_segment_decode(big, 255, out, sizeof(out)), 255);
    memset(big, 'a', 256);
    ck_assert_int_eq(console_segment_decode(big, 256, out, sizeof(out)), -1);
    for (int i = 0; i < 256; ++i)
        memcpy(big + 3 * i, "%41", 3);
    ck_assert_int_eq(console_segment_decode(big, 3 * 256, out, sizeof(out)), -1);
    ck_assert_int_eq(console_segment_decode(big, 3 * 255, out, sizeof(out)), 255);
}
END_TEST

START_TEST(test_roles_and_actor)
{
    char a[64];
    ck_assert_str_eq(console_role_name(CONSOLE_MARKETER), "marketer");
    ck_assert_str_eq(console_role_name(CONSOLE_ADMIN), "admin");
    ck_assert_ptr_null(console_role_name(CONSOLE_MARKETER | CONSOLE_ADMIN));
    console_actor("google", "ann@example.com", "123", a, sizeof(a));
    ck_assert_str_eq(a, "staff:google:ann@example.com");
    console_actor("facebook", NULL, "10004", a, sizeof(a));
    ck_assert_str_eq(a, "staff:facebook:10004");
    ck_assert_uint_eq(console_roles_for(NULL, "google", "a@b.c", 1, NULL, 0, NOW), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_query_decodes_and_refuses);
    tcase_add_test(tc, test_period_default_bounds_and_refusals);
    tcase_add_test(tc, test_iso_time_and_day);
    tcase_add_test(tc, test_segments);
    tcase_add_test(tc, test_roles_and_actor);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
