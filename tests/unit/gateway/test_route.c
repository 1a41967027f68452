/* Unit tests: path normalisation, route matching, reserved header names (table-driven). */
#include "route.h"

#include "../check_run.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *in;
    const char *out; /* NULL: refused */
} norm_cases[] = {
    {"/", "/"},
    {"/a/b", "/a/b"},
    {"/a/b/", "/a/b/"},
    {"//admin", "/admin"},
    {"/a//b///c", "/a/b/c"},
    {"/a/./b", "/a/b"},
    {"/a/../b", "/b"},
    {"/a/b/..", "/a/"},
    {"/a/b/.", "/a/b/"},
    {"/..", "/"},
    {"/../../etc/passwd", "/etc/passwd"},
    {"/public/../admin", "/admin"},
    {"/public/%2e%2e/admin", "/admin"},
    {"/public/%2E%2E/admin", "/admin"},
    {"/public/.%2e/admin", "/admin"},
    {"/%61dmin", "/admin"},
    {"/adm%69n/x", "/admin/x"},
    {"/a%2fb", "/a%2Fb"},
    {"/a%2Fb/../c", "/c"},
    {"/%7euser", "/~user"},
    {"/caf%c3%a9", "/caf%C3%A9"},
    {"/a%20b", "/a%20b"},
    {"/a;b", "/a;b"},
    {"/%00", "/%00"},
    {"/a%", NULL},
    {"/a%2", NULL},
    {"/a%zz", NULL},
    {"/a\\b", NULL},
    {"/a\tb", NULL},
    {"/a\rb", NULL},
    {"relative", NULL},
    {"*", NULL},
    {"", NULL},
};

START_TEST(test_path_normalize_table)
{
    const char *in = norm_cases[_i].in, *want = norm_cases[_i].out;
    char *out = NULL;
    size_t len = 0;
    gw_status_t st = gw_path_normalize(in, strlen(in), &out, &len);

    if (want == NULL) {
        ck_assert_msg(st == GW_EINVAL, "'%s' should be refused", in);
    } else {
        ck_assert_msg(st == GW_OK, "'%s' refused", in);
        ck_assert_str_eq(out, want);
        ck_assert_uint_eq(len, strlen(want));
    }
    free(out);
}
END_TEST

START_TEST(test_path_normalize_is_idempotent)
{
    const char *in = norm_cases[_i].in;
    char *once = NULL, *twice = NULL;
    size_t l1, l2;

    if (gw_path_normalize(in, strlen(in), &once, &l1) != GW_OK)
        return;
    ck_assert_int_eq(gw_path_normalize(once, l1, &twice, &l2), GW_OK);
    ck_assert_str_eq(once, twice);
    free(once);
    free(twice);
}
END_TEST

static gw_route_t mkroute(const char *host, const char *prefix)
{
    gw_route_t r;
    memset(&r, 0, sizeof(r));
    r.host = (char *)host;
    r.path_prefix = (char *)prefix;
    r.path_prefix_len = strlen(prefix);
    return r;
}

START_TEST(test_route_match_order_and_boundaries)
{
    gw_route_t routes[] = {mkroute("api.example.com", "/"), mkroute(NULL, "/admin"), mkroute(NULL, "/api/"),
                           mkroute("*.shop.test", "/"), mkroute(NULL, "/")};
    static const struct {
        const char *host, *path;
        long want;
    } cases[] = {
        {"api.example.com", "/anything", 0},
        {"API.Example.COM:8443", "/x", 0},
        {"api.example.com.", "/x", 0},
        {"other.test", "/admin", 1},
        {"other.test", "/admin/users", 1},
        {"other.test", "/adminx", 4},
        {"other.test", "/api/v1", 2},
        {"other.test", "/api", 4},
        {"a.shop.test", "/", 3},
        {"a.b.shop.test", "/", 3},
        {"shop.test", "/", 4},
        {"evilshop.test", "/", 4},
        {NULL, "/admin", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        long got = gw_route_match(routes, 5, cases[i].host, cases[i].host ? strlen(cases[i].host) : 0, cases[i].path,
                                  strlen(cases[i].path));
        ck_assert_msg(got == cases[i].want, "host %s path %s: got %ld want %ld", cases[i].host, cases[i].path, got,
                      cases[i].want);
    }
}
END_TEST

START_TEST(test_route_match_none)
{
    gw_route_t routes[] = {mkroute(NULL, "/api/")};
    ck_assert_int_eq(gw_route_match(routes, 1, "h", 1, "/other", 6), -1);
}
END_TEST

/* a normalised path reaches the same route however it was spelled */
START_TEST(test_route_match_after_normalisation)
{
    gw_route_t routes[] = {mkroute(NULL, "/admin/"), mkroute(NULL, "/")};
    static const char *const spellings[] = {
        "/admin/x", "//admin/x", "/public/../admin/x", "/%61dmin/x", "/public/%2e%2e/admin/x", "/./admin/./x"};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); ++i) {
        char *n;
        size_t len;
        ck_assert_int_eq(gw_path_normalize(spellings[i], strlen(spellings[i]), &n, &len), GW_OK);
        ck_assert_msg(gw_route_match(routes, 2, NULL, 0, n, len) == 0, "%s reached another route", spellings[i]);
        free(n);
    }
}
END_TEST

static const struct {
    const char *name;
    int reserved;
} header_cases[] = {
    {"X-Customer-Id", 1},
    {"x-customer-email", 1},
    {"X_CUSTOMER_ID", 1},
    {"x_customer-id", 1},
    {"X-Auth-Provider", 1},
    {"x_auth_subject", 1},
    {"X-Journey-Channel", 1},
    {"X-JOURNEY_SESSION", 1},
    {"X-Identity-Assertion", 1},
    {"x_identity_assertion", 1},
    {"X-Customer", 0},
    {"X-Customers-Id", 0},
    {"X-Authorization", 0},
    {"Authorization", 0},
    {"X-Forwarded-For", 0},
    {"Cookie", 0},
    {"X-Auth", 0},
    {"", 0},
};

START_TEST(test_header_is_reserved_table)
{
    const char *n = header_cases[_i].name;
    ck_assert_msg(gw_header_is_reserved(n, strlen(n)) == header_cases[_i].reserved, "%s", n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_path_normalize_table, 0, sizeof(norm_cases) / sizeof(norm_cases[0]));
    tcase_add_loop_test(tc, test_path_normalize_is_idempotent, 0, sizeof(norm_cases) / sizeof(norm_cases[0]));
    tcase_add_test(tc, test_route_match_order_and_boundaries);
    tcase_add_test(tc, test_route_match_none);
    tcase_add_test(tc, test_route_match_after_normalisation);
    tcase_add_loop_test(tc, test_header_is_reserved_table, 0, sizeof(header_cases) / sizeof(header_cases[0]));
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
