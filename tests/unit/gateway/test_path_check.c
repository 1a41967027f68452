/*
 * Unit tests: the request-path check (paths an upstream could read as another path), the
 * override headers removed before proxying, Host syntax and known hosts, /.auth/ body limits.
 */
#include "route.h"

#include "../check_run.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *path;
    gw_path_verdict_t want;
} path_cases[] = {
    {"/", GW_PATH_OK},
    {"/admin/x", GW_PATH_OK},
    {"/a/b/", GW_PATH_OK},
    {"//admin", GW_PATH_OK}, /* collapsed by normalisation, routed as /admin */
    {"/%61dmin", GW_PATH_OK},
    {"/caf%C3%A9", GW_PATH_OK},
    {"/caf\xC3\xA9", GW_PATH_OK},
    {"/%E2%82%AC/%F0%9F%98%80", GW_PATH_OK},
    /* not UTF-8 once decoded: overlong dots and slashes, stray or cut-short sequences, surrogates */
    {"/public/%c0%ae%c0%ae/admin", GW_PATH_INVALID_UTF8},
    {"/public/%e0%80%ae./admin", GW_PATH_INVALID_UTF8},
    {"/public/..%c0%afadmin", GW_PATH_INVALID_UTF8},
    {"/public/..%c1%9cadmin", GW_PATH_INVALID_UTF8},
    {"/caf%E9", GW_PATH_INVALID_UTF8},
    {"/caf\xE9", GW_PATH_INVALID_UTF8},
    {"/%C3/%A9", GW_PATH_INVALID_UTF8},
    {"/%80", GW_PATH_INVALID_UTF8},
    {"/%ED%A0%80", GW_PATH_INVALID_UTF8},
    {"/%F4%90%80%80", GW_PATH_INVALID_UTF8},
    {"/%F8%88%80%80%80", GW_PATH_INVALID_UTF8},
    {"/a%20b", GW_PATH_OK},
    {"/a.b/c..d/...", GW_PATH_OK},
    {"/.well-known/x", GW_PATH_OK},
    {"/.auth/login/google", GW_PATH_OK},
    {"/a%25/b", GW_PATH_OK}, /* "%" itself, decoded once */
    {"/a%2541", GW_PATH_OK}, /* "%41" after one decoding: harmless even decoded twice */
    {"/100%25", GW_PATH_OK},
    {"/public/%252e%252e/admin", GW_PATH_DOUBLE_ENCODED},
    {"/public/..%252Fadmin", GW_PATH_DOUBLE_ENCODED},
    {"/x%255c", GW_PATH_DOUBLE_ENCODED},
    {"/x%253B", GW_PATH_DOUBLE_ENCODED},
    {"/x%2500", GW_PATH_DOUBLE_ENCODED},
    {"/x%2525", GW_PATH_DOUBLE_ENCODED},
    /* encoded slash and backslash, any case */
    {"/public/..%2Fadmin/x", GW_PATH_ENCODED_SLASH},
    {"/admin%2fx", GW_PATH_ENCODED_SLASH},
    {"/admin%2Fx", GW_PATH_ENCODED_SLASH},
    {"/x%5cadmin", GW_PATH_ENCODED_SLASH},
    {"/x%5Cadmin", GW_PATH_ENCODED_SLASH},
    {"/a\\b", GW_PATH_BACKSLASH},
    {"/..\\admin", GW_PATH_BACKSLASH},
    /* path parameters: Tomcat, Spring and IIS resolve "..;" as ".." */
    {"/x/..;/admin/", GW_PATH_PARAMETER},
    {"/admin;foo/x", GW_PATH_PARAMETER},
    {"/a;", GW_PATH_PARAMETER},
    {"/x/%3B/admin", GW_PATH_PARAMETER},
    {"/x/%3b", GW_PATH_PARAMETER},
    /* dot segments, plain or encoded */
    {"/public/../admin", GW_PATH_DOT_SEGMENT},
    {"/public/%2e%2e/admin", GW_PATH_DOT_SEGMENT},
    {"/public/%2E%2E/admin", GW_PATH_DOT_SEGMENT},
    {"/public/.%2e/admin", GW_PATH_DOT_SEGMENT},
    {"/public/%2e./admin", GW_PATH_DOT_SEGMENT},
    {"/a/./b", GW_PATH_DOT_SEGMENT},
    {"/a/%2e/b", GW_PATH_DOT_SEGMENT},
    {"/a/..", GW_PATH_DOT_SEGMENT},
    {"/a/.", GW_PATH_DOT_SEGMENT},
    {"/..", GW_PATH_DOT_SEGMENT},
    {"/.", GW_PATH_DOT_SEGMENT},
    /* control characters, raw or decoded */
    {"/a%00b", GW_PATH_CONTROL},
    {"/a%0d%0aX-Evil:%201", GW_PATH_CONTROL},
    {"/a%0A", GW_PATH_CONTROL},
    {"/a%7f", GW_PATH_CONTROL},
    {"/a\tb", GW_PATH_CONTROL},
    {"/a\x01", GW_PATH_CONTROL},
    {"/admin#/x", GW_PATH_FRAGMENT},
    /* malformed */
    {"", GW_PATH_MALFORMED},
    {"admin", GW_PATH_MALFORMED},
    {"*", GW_PATH_MALFORMED},
    {"/a%", GW_PATH_MALFORMED},
    {"/a%2", GW_PATH_MALFORMED},
    {"/a%zz", GW_PATH_MALFORMED},
    {"/a%2g", GW_PATH_MALFORMED},
};

START_TEST(test_path_check_table)
{
    const char *p = path_cases[_i].path;
    gw_path_verdict_t got = gw_path_check(p, strlen(p));
    ck_assert_msg(got == path_cases[_i].want, "'%s': got %s, want %s", p, gw_path_verdict_str(got),
                  gw_path_verdict_str(path_cases[_i].want));
}
END_TEST

START_TEST(test_path_check_embedded_nul)
{
    /* a raw NUL inside the length is a control character, not the end of the path */
    ck_assert_int_eq(gw_path_check("/a\0b", 4), GW_PATH_CONTROL);
    /* the length bounds the check: an escape cut by it is malformed */
    ck_assert_int_eq(gw_path_check("/a%2F", 4), GW_PATH_MALFORMED);
}
END_TEST

static const struct {
    const char *name;
    int override;
} override_cases[] = {
    {"X-HTTP-Method-Override", 1},
    {"x-http-method-override", 1},
    {"X_HTTP_METHOD_OVERRIDE", 1},
    {"X-HTTP-Method", 1},
    {"X-Method-Override", 1},
    {"X-Original-URL", 1},
    {"X-Original-URI", 1},
    {"X-Rewrite-URL", 1},
    {"X-Forwarded-Prefix", 1},
    {"X-Forwarded-Port", 1},
    {"X-Real-IP", 1},
    {"X-HTTP-Method-Overrides", 0},
    {"X-HTTP-Method-Overrid", 0},
    {"X-Forwarded-For", 0}, /* rebuilt by the gateway itself */
    {"Content-Type", 0},
    {"", 0},
};

START_TEST(test_header_is_override_table)
{
    const char *n = override_cases[_i].name;
    ck_assert_msg(gw_header_is_override(n, strlen(n)) == override_cases[_i].override, "%s", n);
}
END_TEST

static const struct {
    const char *host;
    int valid;
} host_cases[] = {
    {"example.com", 1},
    {"example.com:8443", 1},
    {"a-b_c.example.com.", 1},
    {"127.0.0.1:80", 1},
    {"[::1]", 1},
    {"[::1]:8080", 1},
    {"[::ffff:1.2.3.4]", 1},
    {"", 0},
    {":80", 0},
    {"example.com:", 1}, /* an empty port is allowed by RFC 3986 */
    {"example.com:123456", 0},
    {"example.com:8a", 0},
    {"exa mple.com", 0},
    {"example.com\r\nX-Evil: 1", 0},
    {"example.com\x01", 0},
    {"user@example.com", 0},
    {"example.com/path", 0},
    {"[::1", 0},
    {"[]", 0},
    {"[::1]x", 0},
    {"[zz::1]", 0},
};

START_TEST(test_host_valid_table)
{
    const char *h = host_cases[_i].host;
    ck_assert_msg(gw_host_valid(h, strlen(h)) == host_cases[_i].valid, "'%s'", h);
}
END_TEST

START_TEST(test_host_known)
{
    gw_route_t routes[2];
    gw_config_t cfg;
    const char *pub = "shop.example.com:8443"; /* public_url https://shop.example.com:8443/base */

    memset(routes, 0, sizeof(routes));
    memset(&cfg, 0, sizeof(cfg));
    routes[0].host = "*.api.example.com";
    routes[1].host = NULL;
    cfg.routes = routes;
    cfg.num_routes = 2;
    cfg.public_authority = pub;
    cfg.public_authority_len = strlen(pub);
    ck_assert(gw_host_known(&cfg, "shop.example.com", 16));
    ck_assert(gw_host_known(&cfg, "SHOP.example.com:443", 20));
    ck_assert(gw_host_known(&cfg, "v1.api.example.com", 18));
    ck_assert(!gw_host_known(&cfg, "api.example.com", 15));
    ck_assert(!gw_host_known(&cfg, "evil.example", 12));
    ck_assert(!gw_host_known(&cfg, "shop.example.com.evil", 21));
    cfg.num_routes = 1;
    cfg.public_authority = NULL;
    cfg.public_authority_len = 0;
    ck_assert(!gw_host_known(&cfg, "shop.example.com", 16));
}
END_TEST

START_TEST(test_auth_body_limit)
{
#define LIM(p) gw_auth_body_limit(p, strlen(p))
    ck_assert_uint_eq(LIM("/.auth/touchpoints"), GW_AUTH_INGEST_BODY_MAX);
    ck_assert_uint_eq(LIM("/.auth/token"), GW_AUTH_FORM_BODY_MAX);
    ck_assert_uint_eq(LIM("/.auth/logout"), GW_AUTH_FORM_BODY_MAX);
    ck_assert_uint_eq(LIM("/.auth/unlink/google"), GW_AUTH_FORM_BODY_MAX);
    ck_assert_uint_eq(LIM("/.auth/facebook/data-deletion"), GW_AUTH_FORM_BODY_MAX);
    ck_assert_uint_eq(LIM("/.auth/login/google/callback"), GW_AUTH_FORM_BODY_MAX);
    ck_assert_uint_eq(LIM("/.auth/login/google"), 0);
    ck_assert_uint_eq(LIM("/.auth/login/callback"), 0);
    ck_assert_uint_eq(LIM("/.auth/me"), 0);
    ck_assert_uint_eq(LIM("/.auth/health"), 0);
    ck_assert_uint_eq(LIM("/.auth/tokenx"), 0);
    ck_assert_uint_eq(LIM("/.auth/unlink/"), 0);
    ck_assert_uint_eq(LIM("/.auth/nothing"), 0);
#undef LIM
}
END_TEST

/* a request head's header lines, "name: value" each, NULL-terminated */
static gw_framing_t framing(const char *const *lines, uint64_t *cl, int *chunked)
{
    gw_header_view_t h[16];
    size_t n = 0;

    for (; lines[n] != NULL; ++n) {
        const char *colon = strchr(lines[n], ':');
        h[n].name = lines[n];
        h[n].name_len = (size_t)(colon - lines[n]);
        h[n].value = colon + 2;
        h[n].value_len = strlen(colon + 2);
    }
    return gw_framing_check(h, n, cl, chunked);
}

static const struct {
    const char *lines[5];
    gw_framing_t want;
    uint64_t cl;
    int chunked;
} framing_cases[] = {
    {{"Host: a", NULL}, GW_FRAMING_OK, UINT64_MAX, 0},
    {{"Host: a", "Content-Length: 5", NULL}, GW_FRAMING_OK, 5, 0},
    {{"content-length: 0", NULL}, GW_FRAMING_OK, 0, 0},
    {{"Content-Length: 5", "CONTENT-LENGTH: 5", NULL}, GW_FRAMING_OK, 5, 0},
    {{"Transfer-Encoding: chunked", NULL}, GW_FRAMING_OK, UINT64_MAX, 1},
    {{"Content-Length: 5", "Content-Length: 6", NULL}, GW_FRAMING_LENGTHS_DIFFER, 0, 0},
    {{"Content-Length: 5", "content-length: 50", NULL}, GW_FRAMING_LENGTHS_DIFFER, 0, 0},
    {{"Content-Length: 5, 5", NULL}, GW_FRAMING_BAD_LENGTH, 0, 0},
    {{"Content-Length: -1", NULL}, GW_FRAMING_BAD_LENGTH, 0, 0},
    {{"Content-Length: +5", NULL}, GW_FRAMING_BAD_LENGTH, 0, 0},
    {{"Content-Length: 99999999999999999999", NULL}, GW_FRAMING_BAD_LENGTH, 0, 0},
    {{"Content-Length: ", NULL}, GW_FRAMING_BAD_LENGTH, 0, 0},
    {{"Content-Length: 5", "Transfer-Encoding: chunked", NULL}, GW_FRAMING_LENGTH_AND_TE, 0, 0},
    {{"Transfer-Encoding: chunked", "Content-Length: 5", NULL}, GW_FRAMING_LENGTH_AND_TE, 0, 0},
    {{"transfer-encoding: chunked", "Transfer-Encoding: chunked", NULL}, GW_FRAMING_SEVERAL_TE, 0, 0},
    {{"Host: a", "host: b", NULL}, GW_FRAMING_SEVERAL_HOSTS, 0, 0},
};

START_TEST(test_framing_table)
{
    uint64_t cl = 42;
    int chunked = 42;
    gw_framing_t got = framing(framing_cases[_i].lines, &cl, &chunked);

    ck_assert_msg(got == framing_cases[_i].want, "case %d: got %d", _i, (int)got);
    if (got == GW_FRAMING_OK) {
        ck_assert_uint_eq(cl, framing_cases[_i].cl);
        ck_assert_int_eq(chunked, framing_cases[_i].chunked);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("path_check");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_path_check_table, 0, sizeof(path_cases) / sizeof(path_cases[0]));
    tcase_add_test(tc, test_path_check_embedded_nul);
    tcase_add_loop_test(tc, test_header_is_override_table, 0, sizeof(override_cases) / sizeof(override_cases[0]));
    tcase_add_loop_test(tc, test_host_valid_table, 0, sizeof(host_cases) / sizeof(host_cases[0]));
    tcase_add_test(tc, test_host_known);
    tcase_add_test(tc, test_auth_body_limit);
    tcase_add_loop_test(tc, test_framing_table, 0, sizeof(framing_cases) / sizeof(framing_cases[0]));
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
