/* Unit tests: configuration validation (table-driven), sizes, CIDR ranges, secrets. */
#include "config.h"

#include <arpa/inet.h>
#include "../check_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BASE_HEAD "\"listen\":[{\"address\":\"127.0.0.1\",\"port\":8080}],\"public_url\":\"http://127.0.0.1:8080\","
#define BASE_STORE "\"store\":{\"path\":\"/tmp/jg-unit\"},"
#define BASE_UP "\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\"}},"
#define BASE_ROUTES                                                                                                    \
    "\"routes\":[{\"name\":\"site\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":\"shop\",\"auth\":\"none\"}]"
#define VALID "{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES "}"

static char tmpdir[] = "/tmp/jg-unit-XXXXXX";

static char *write_file(const char *name, const char *text)
{
    static char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* loads text; returns the joined error messages ("" when valid) */
static char *load_text(const char *text, gw_config_t **out)
{
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    char *path = write_file("cfg.json", text), *joined;
    size_t total = 1;

    gw_config_load(path, &cfg, &errs);
    for (size_t i = 0; i < errs.count; ++i)
        total += strlen(errs.msgs[i]) + 1;
    joined = calloc(1, total);
    for (size_t i = 0, off = 0; i < errs.count; ++i) {
        size_t n = strlen(errs.msgs[i]);
        memcpy(joined + off, errs.msgs[i], n);
        joined[off + n] = '\n';
        off += n + 1;
    }
    gw_config_errors_clear(&errs);
    if (out != NULL)
        *out = cfg;
    else
        gw_config_unref(cfg);
    return joined;
}

START_TEST(test_config_valid_minimal)
{
    gw_config_t *cfg = NULL;
    char *errs = load_text(VALID, &cfg);

    ck_assert_msg(errs[0] == '\0', "unexpected errors: %s", errs);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->num_routes, 1);
    ck_assert_uint_eq(cfg->routes[0].auth, GW_AUTH_NONE);
    ck_assert_str_eq(cfg->routes[0].channel, "web");
    ck_assert_uint_eq(cfg->limits.max_header_count, 64);
    ck_assert_uint_eq(cfg->upstreams[0].timeout_ms, 30000);
    gw_config_unref(cfg);
    free(errs);
}
END_TEST

START_TEST(test_config_console_roles)
{
    gw_config_t *cfg = NULL;
    char *errs = load_text(VALID, &cfg);

    ck_assert_int_eq(cfg->has_console, 0); /* absent: the console is off */
    gw_config_unref(cfg);
    free(errs);
    errs = load_text("{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES
                     ",\"policies\":{\"m\":{\"rules\":[]},\"s\":{\"rules\":[]}},"
                     "\"console\":{\"roles\":{\"marketer\":\"m\",\"admin\":\"s\"}}}",
                     &cfg);
    ck_assert_msg(errs[0] == '\0', "unexpected errors: %s", errs);
    ck_assert_int_eq(cfg->has_console, 1);
    ck_assert_str_eq(cfg->console_policy[0], "m");
    ck_assert_ptr_null(cfg->console_policy[1]);
    ck_assert_str_eq(cfg->console_policy[2], "s");
    gw_config_unref(cfg);
    free(errs);
}
END_TEST

static const struct {
    const char *text;
    const char *expect; /* substring of the messages, after the file name */
} bad_cases[] = {
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"routs\":[]}", "routs: unknown key"},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":"
     "\"shop\",\"auth\":\"none\"},{\"name\":\"a\",\"match\":{\"path_prefix\":\"/x\"},\"upstream\":\"shop\",\"auth\":"
     "\"none\"}]}",
     "routes[1].name: duplicate route name"},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":"
     "\"nope\",\"auth\":\"none\"}]}",
     "routes[0].upstream: no upstream named \"nope\""},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":"
     "\"shop\",\"auth\":\"session\"}]}",
     "routes[0].policy: is required when auth is not \"none\""},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"api\"},\"upstream\":"
     "\"shop\",\"auth\":\"none\"}]}",
     "routes[0].match.path_prefix: must be a path"},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":"
     "\"shop\",\"auth\":\"maybe\"}]}",
     "routes[0].auth: must be one of"},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":"
     "\"shop\",\"auth\":\"none\",\"stage\":\"buy\"}]}",
     "routes[0].stage: must be one of"},
    {"{" BASE_HEAD BASE_STORE BASE_UP "\"routes\":[{\"name\":\"a\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":"
     "\"shop\",\"auth\":\"none\",\"max_body_size\":\"lots\"}]}",
     "routes[0].max_body_size: must be a size"},
    {"{" BASE_HEAD BASE_STORE "\"upstreams\":{\"shop\":{\"url\":\"ftp://x\"}}," BASE_ROUTES "}",
     "upstreams.shop.url: must be an absolute http:// or https:// URL"},
    {"{" BASE_HEAD BASE_STORE
     "\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\",\"timeout_s\":\"30\"}}," BASE_ROUTES "}",
     "upstreams.shop.timeout_s: must be a number of seconds"},
    {"{" BASE_HEAD BASE_STORE
     "\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\",\"timeout_s\":0}}," BASE_ROUTES "}",
     "upstreams.shop.timeout_s: must be between"},
    {"{\"listen\":[{\"address\":\"localhost\",\"port\":70000}],\"public_url\":\"x\"," BASE_STORE BASE_UP BASE_ROUTES
     "}",
     "listen[0].address: must be an IPv4 or IPv6 address"},
    {"{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":70000}],\"public_url\":\"http://a\"," BASE_STORE BASE_UP
         BASE_ROUTES "}",
     "listen[0].port: must be between 1 and 65535"},
    {"{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":1,\"tls\":{\"cert\":\"/nonexistent/c.pem\",\"key\":\"/"
     "nonexistent/"
     "k.pem\"}}],\"public_url\":\"http://a\"," BASE_STORE BASE_UP BASE_ROUTES "}",
     "listen[0].tls.cert: cannot read file /nonexistent/c.pem"},
    {"{" BASE_HEAD BASE_UP BASE_ROUTES "}", "store: is required"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"limits\":{\"header_timeout_s\":-1}}",
     "limits.header_timeout_s: must be between"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"limits\":{\"max_header_count\":500}}",
     "limits.max_header_count: must be between 8 and 99"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"trusted_proxies\":[\"10.0.0.0/33\"]}",
     "trusted_proxies[0]: must be an IP address or CIDR range"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"x\","
     "\"client_secret\":\"s\",\"issuer\":\"http://127.0.0.1:9999\"}}}",
     "providers.google.issuer: plain http:// is refused"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"x\","
     "\"client_secret_file\":\"/nonexistent/secret\"}}}",
     "providers.google.client_secret_file: cannot read file /nonexistent/secret"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"x\","
     "\"client_secret_env\":\"JG_UNIT_NOT_SET\"}}}",
     "providers.google.client_secret_env: environment variable JG_UNIT_NOT_SET is not set"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"providers\":{\"fb\":{\"type\":\"myspace\"}}}",
     "providers.fb.type: must be one of google, facebook, oidc"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES
     ",\"policies\":{\"p\":{\"rules\":[{\"allow\":{\"signed_in\":\"yes\"}}]}}}",
     "policies.p.rules[0].allow.signed_in: must be true or false"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"policies\":{\"p\":{\"rules\":[{\"permit\":{}}]}}}",
     "policies.p.rules[0]: must be exactly one of"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"threads\":1,\"threads\":2}", "duplicate object key"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES, "line "},
    {"[]", "(top): must be an object"},
    /* console: roles name policies; unknown keys and empty role sets are refused */
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"console\":{\"roles\":{\"marketer\":\"nope\"}}}",
     "console.roles.marketer: no policy named \"nope\" in policies"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES
     ",\"policies\":{\"p\":{\"rules\":[]}},\"console\":{\"roles\":{\"owner\":\"p\"}}}",
     "console.roles.owner: unknown key"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"console\":{\"roles\":{}}}",
     "console.roles: must name at least one of marketer, security, admin"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"console\":{}}", "console.roles: is required"},
    {"{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES ",\"console\":{\"roles\":{},\"theme\":1}}",
     "console.theme: unknown key"},
};

START_TEST(test_config_errors_table)
{
    char *errs = load_text(bad_cases[_i].text, NULL);
    char want[512];

    snprintf(want, sizeof(want), "%s/cfg.json: ", tmpdir);
    ck_assert_msg(strstr(errs, want) == errs, "case %d: messages must start with the file name: %s", _i, errs);
    ck_assert_msg(strstr(errs, bad_cases[_i].expect) != NULL, "case %d: want '%s' in:\n%s", _i, bad_cases[_i].expect,
                  errs);
    free(errs);
}
END_TEST

/* every error is reported, not only the first */
START_TEST(test_config_reports_every_error)
{
    char *errs = load_text("{\"listen\":[],\"bogus\":1,\"upstreams\":{},\"routes\":[]}", NULL);
    ck_assert_ptr_nonnull(strstr(errs, "bogus: unknown key"));
    ck_assert_ptr_nonnull(strstr(errs, "listen: is required"));
    ck_assert_ptr_nonnull(strstr(errs, "public_url: is required"));
    ck_assert_ptr_nonnull(strstr(errs, "store: is required"));
    ck_assert_ptr_nonnull(strstr(errs, "upstreams: is required"));
    ck_assert_ptr_nonnull(strstr(errs, "routes: is required"));
    free(errs);
}
END_TEST

START_TEST(test_config_secret_sources)
{
    char text[2048];
    char *secret_path = strdup(write_file("google.secret", "s3cret-value\n"));
    char *errs;

    snprintf(text, sizeof(text),
             "{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES
             ",\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"x\",\"client_secret_file\":\"%s\"}}}",
             secret_path);
    errs = load_text(text, NULL);
    ck_assert_msg(errs[0] == '\0', "%s", errs);
    ck_assert_ptr_null(strstr(errs, "s3cret"));
    free(errs);

    setenv("JG_UNIT_SECRET", "from-env", 1);
    errs = load_text("{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES
                     ",\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"x\",\"client_secret_env\":"
                     "\"JG_UNIT_SECRET\"}}}",
                     NULL);
    ck_assert_msg(errs[0] == '\0', "%s", errs);
    free(errs);

    /* two sources at once is ambiguous */
    snprintf(text, sizeof(text),
             "{" BASE_HEAD BASE_STORE BASE_UP BASE_ROUTES
             ",\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"x\",\"client_secret\":\"inline-secret\","
             "\"client_secret_file\":\"%s\"}}}",
             secret_path);
    errs = load_text(text, NULL);
    ck_assert_ptr_nonnull(strstr(errs, "providers.google.client_secret: set only one of"));
    ck_assert_ptr_null(strstr(errs, "inline-secret"));
    free(errs);
    free(secret_path);
}
END_TEST

START_TEST(test_config_design_example_is_valid)
{
    /* the complete example of shared/DESIGN.md, with its files made real */
    char text[4096], dir[256];
    char *errs;

    snprintf(dir, sizeof(dir), "%s", tmpdir);
    write_file("session.key", "k\n");
    write_file("google.secret", "g\n");
    write_file("facebook.secret", "f\n");
    write_file("audit.key", "a\n");
    write_file("ingest.keys", "i\n");
    write_file("admin.token", "t\n");
    snprintf(text, sizeof(text),
             "{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":8080}],\"public_url\":\"http://127.0.0.1:8080\","
             "\"threads\":2,\"store\":{\"path\":\"/var/lib/journeygate\",\"map_size_mb\":1024},"
             "\"session\":{\"cookie_name\":\"jg_session\",\"secret_file\":\"%s/session.key\",\"ttl_s\":43200,"
             "\"idle_timeout_s\":3600},"
             "\"providers\":{\"google\":{\"type\":\"google\",\"client_id\":\"123.apps.googleusercontent.com\","
             "\"client_secret_file\":\"%s/google.secret\",\"issuer\":\"https://accounts.google.com\","
             "\"mobile_client_ids\":[\"456.apps.googleusercontent.com\"]},"
             "\"facebook\":{\"type\":\"facebook\",\"app_id\":\"789\",\"app_secret_file\":\"%s/facebook.secret\","
             "\"graph_url\":\"https://graph.facebook.com/v19.0\",\"dialog_url\":"
             "\"https://www.facebook.com/v19.0/dialog/oauth\",\"trust_email\":false}},"
             "\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\",\"timeout_s\":30}},"
             "\"routes\":[{\"name\":\"api\",\"match\":{\"path_prefix\":\"/api/\"},\"upstream\":\"shop\",\"channel\":"
             "\"mobile\",\"touchpoint\":\"api\",\"auth\":\"bearer\",\"policy\":\"customers\"},"
             "{\"name\":\"site\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":\"shop\",\"channel\":\"web\","
             "\"touchpoint\":\"site\",\"auth\":\"session\",\"policy\":\"customers\"}],"
             "\"policies\":{\"customers\":{\"rules\":[{\"allow\":{\"signed_in\":true}}]}},"
             "\"linking\":{\"auto_link_verified_email\":true},\"audit\":{\"key_file\":\"%s/audit.key\"},"
             "\"ingest\":{\"api_keys_file\":\"%s/ingest.keys\"},"
             "\"admin\":{\"listen\":{\"address\":\"127.0.0.1\",\"port\":9090},\"token_file\":\"%s/admin.token\"}}",
             dir, dir, dir, dir, dir, dir);
    errs = load_text(text, NULL);
    ck_assert_msg(errs[0] == '\0', "%s", errs);
    free(errs);
}
END_TEST

START_TEST(test_parse_size)
{
    static const struct {
        const char *in;
        int ok;
        uint64_t want;
    } cases[] = {{"0", 1, 0},
                 {"512", 1, 512},
                 {"64KB", 1, 65536},
                 {"1MB", 1, 1048576},
                 {"1 MB", 1, 1048576},
                 {"2gb", 1, 2147483648ULL},
                 {"1m", 1, 1048576},
                 {"", 0, 0},
                 {"MB", 0, 0},
                 {"-1", 0, 0},
                 {"1TB", 0, 0},
                 {"1.5MB", 0, 0},
                 {"99999999999999999999", 0, 0},
                 {"18446744073709551615GB", 0, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        uint64_t v = 0;
        int rc = gw_parse_size(cases[i].in, &v);
        ck_assert_msg((rc == 0) == cases[i].ok, "%s", cases[i].in);
        if (cases[i].ok)
            ck_assert_msg(v == cases[i].want, "%s", cases[i].in);
    }
}
END_TEST

START_TEST(test_cidr)
{
    gw_cidr_t list[3];
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;

    ck_assert_int_eq(gw_cidr_parse("10.0.0.0/8", &list[0]), 0);
    ck_assert_int_eq(gw_cidr_parse("192.168.1.7", &list[1]), 0);
    ck_assert_int_eq(gw_cidr_parse("fd00::/8", &list[2]), 0);
    ck_assert_int_ne(gw_cidr_parse("10.0.0.0/40", &list[0]), 0);
    ck_assert_int_ne(gw_cidr_parse("nope", &list[0]), 0);
    ck_assert_int_ne(gw_cidr_parse("10.0.0.0/", &list[0]), 0);
    ck_assert_int_eq(gw_cidr_parse("10.0.0.0/8", &list[0]), 0);

    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    inet_pton(AF_INET, "10.200.3.4", &a4.sin_addr);
    ck_assert(gw_cidr_match(list, 3, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "11.0.0.1", &a4.sin_addr);
    ck_assert(!gw_cidr_match(list, 3, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "192.168.1.7", &a4.sin_addr);
    ck_assert(gw_cidr_match(list, 3, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "192.168.1.8", &a4.sin_addr);
    ck_assert(!gw_cidr_match(list, 3, (struct sockaddr *)&a4));

    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "fd12::1", &a6.sin6_addr);
    ck_assert(gw_cidr_match(list, 3, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &a6.sin6_addr);
    ck_assert(gw_cidr_match(list, 3, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
    ck_assert(!gw_cidr_match(list, 3, (struct sockaddr *)&a6));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    int status;

    if (mkdtemp(tmpdir) == NULL)
        return 1;
    unsetenv("JG_UNIT_NOT_SET");
    tcase_add_test(tc, test_config_valid_minimal);
    tcase_add_test(tc, test_config_console_roles);
    tcase_add_loop_test(tc, test_config_errors_table, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(tc, test_config_reports_every_error);
    tcase_add_test(tc, test_config_secret_sources);
    tcase_add_test(tc, test_config_design_example_is_valid);
    tcase_add_test(tc, test_parse_size);
    tcase_add_test(tc, test_cidr);
    suite_add_tcase(s, tc);
    status = jg_check_run(s);
    {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            return 1;
    }
    return status;
}
