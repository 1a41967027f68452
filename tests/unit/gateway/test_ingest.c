/*
 * Unit tests: validation of ingested touchpoints (gw_ingest_parse) and of /.auth/token bodies
 * (gw_token_request_parse), one table row per class of bad input, and the text check they share.
 */
#include "ingest.h"

#include "../check_run.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000000ULL /* 2027-01-15, in ms */
#define CID "c_abcdefghijklmnopqrstuv27"

static const gw_known_provider_t provs[] = {{"google", "oidc"}, {"facebook", "facebook"}};

/* one event's fields, without the braces, after the good customer_id/channel/touchpoint unless it names its own */
struct row {
    const char *event; /* the whole event object's JSON */
    const char *why;   /* NULL: accepted; otherwise a part of the error */
};

static const struct row rows[] = {
    /* the three identifier forms, complete */
    {"{\"customer_id\":\"" CID "\",\"channel\":\"store\",\"touchpoint\":\"t\"}", NULL},
    {"{\"email\":\"kim@example.com\",\"channel\":\"store\",\"touchpoint\":\"t\"}", NULL},
    {"{\"provider\":\"google\",\"subject\":\"1234\",\"channel\":\"store\",\"touchpoint\":\"t\"}", NULL},
    {"{\"provider\":\"facebook\",\"subject\":\"1234\",\"channel\":\"store\",\"touchpoint\":\"t\"}", NULL},
    /* missing or incomplete forms */
    {"{\"subject\":\"1234\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "together"},
    {"{\"provider\":\"google\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "together"},
    {"{\"channel\":\"store\",\"touchpoint\":\"t\"}", "exactly one"},
    {"{\"customer_id\":\"" CID "\",\"email\":\"kim@example.com\",\"channel\":\"s\",\"touchpoint\":\"t\"}",
     "exactly one"},
    {"{\"email\":\"kim@example.com\",\"subject\":\"1\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "exactly one"},
    /* unknown provider, and one named with a different case or a suffix */
    {"{\"provider\":\"github\",\"subject\":\"1234\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "not configured"},
    {"{\"provider\":\"Google\",\"subject\":\"1234\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "not configured"},
    {"{\"provider\":\"google\\u0000x\",\"subject\":\"1\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "provider"},
    /* wrong types */
    {"{\"customer_id\":7,\"channel\":\"store\",\"touchpoint\":\"t\"}", "customer_id"},
    {"{\"customer_id\":null,\"channel\":\"store\",\"touchpoint\":\"t\"}", "customer_id"},
    {"{\"email\":[\"kim@example.com\"],\"channel\":\"store\",\"touchpoint\":\"t\"}", "email"},
    {"{\"provider\":true,\"subject\":\"1\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "provider"},
    {"{\"provider\":\"google\",\"subject\":1234,\"channel\":\"store\",\"touchpoint\":\"t\"}", "subject"},
    {"{\"customer_id\":\"" CID "\",\"channel\":1,\"touchpoint\":\"t\"}", "channel"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":{}}", "touchpoint"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"stage\":1}", "stage"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"idempotency_key\":1}", "idempotency_key"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"status\":true}", "status"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":[]}", "attributes"},
    {"[]", "object"},
    {"\"event\"", "object"},
    /* fields the contract does not have */
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"ip\":\"1.2.3.4\"}", "unknown field"},
    /* identifiers in their exact form */
    {"{\"customer_id\":\"c_abcdefghijklmnopqrstuv2\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "customer_id"},
    {"{\"customer_id\":\"c_abcdefghijklmnopqrstuv28\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "customer_id"},
    {"{\"customer_id\":\"C_abcdefghijklmnopqrstuv27\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "customer_id"},
    {"{\"email\":\"kim\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "email"},
    {"{\"email\":\"@example.com\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "email"},
    {"{\"email\":\"kim@\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "email"},
    {"{\"email\":\"kim @example.com\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "email"},
    {"{\"email\":\"j\\u00fcrg@example.com\",\"channel\":\"s\",\"touchpoint\":\"t\"}", NULL},
    {"{\"provider\":\"google\",\"subject\":\"caf\\u00e9\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "subject"},
    {"{\"provider\":\"google\",\"subject\":\"\",\"channel\":\"store\",\"touchpoint\":\"t\"}", "subject"},
    /* control characters: CR, LF, NUL, tab, ESC, DEL, C1 (NEL) */
    {"{\"provider\":\"google\",\"subject\":\"1\\r\\n2\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "subject"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"a\\rb\"}", "touchpoint"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"a\\nb\"}", "touchpoint"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\\u0000\",\"touchpoint\":\"t\"}", "channel"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"a\\tb\"}", "touchpoint"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"a\\u001b[2J\"}", "touchpoint"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"a\\u007f\"}", "touchpoint"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"a\\u0085\"}", "touchpoint"},
    {"{\"email\":\"kim@example.com\\n\",\"channel\":\"s\",\"touchpoint\":\"t\"}", "email"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"idempotency_key\":\"a\\nb\"}",
     "idempotency_key"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"status\":\"a\\u0000\"}", "status"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"a\\nb\":1}}", "attribute"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"a\":\"x\\ry\"}}",
     "attribute"},
    /* other text is fine */
    {"{\"customer_id\":\"" CID "\",\"channel\":\"caf\\u00e9\",\"touchpoint\":\"\\ud83d\\ude00 \\u2014 ok\"}", NULL},
    /* time */
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":1700000000000}", NULL},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":-1}", "time"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":1700000000}", "time"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":1800086400001}", "time"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":9223372036854775807}", "time"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":1.7e12}", "time"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"time\":\"1700000000000\"}", "time"},
    /* stage and status */
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"stage\":\"own\",\"status\":200}", NULL},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"stage\":\"buy\"}", "stage"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"stage\":\"own\\u0000x\"}", "stage"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"status\":99}", "status"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"status\":65536}", "status"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"status\":\"\"}", "status"},
    /* attributes: scalar values only, bounded */
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"a\":\"x\",\"b\":1,"
     "\"c\":1.5,\"d\":true,\"e\":null}}",
     NULL},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"a\":{\"b\":1}}}",
     "attribute"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"a\":[1]}}", "attribute"},
    {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"\":1}}", "attribute"},
};

/* a string of n copies of c, into a static buffer */
static const char *repeat(char c, size_t n)
{
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    memset(b, c, n);
    b[n] = '\0';
    return b;
}

static gw_ingest_batch_t parse_one(const char *event, const char **problem)
{
    gw_ingest_batch_t b;
    char *body = malloc(strlen(event) + 32);
    gw_status_t st;

    sprintf(body, "{\"events\":[%s]}", event);
    st = gw_ingest_parse(body, strlen(body), provs, 2, NOW, &b, problem);
    free(body);
    ck_assert_msg(st == GW_OK, "%s: the body is refused whole: %s", event, *problem != NULL ? *problem : "");
    ck_assert_uint_eq(b.total, 1);
    ck_assert_uint_eq(b.count + b.error_count, 1);
    return b;
}

/* the error of a single event, or NULL when accepted */
static void expect_event(const char *event, const char *why)
{
    const char *problem;
    gw_ingest_batch_t b = parse_one(event, &problem);

    if (why == NULL) {
        ck_assert_msg(b.count == 1, "%s: refused: %s", event, b.error_count ? b.errors[0].reason : "");
    } else {
        ck_assert_msg(b.error_count == 1, "%s: accepted, expected an error about %s", event, why);
        ck_assert_uint_eq(b.errors[0].index, 0);
        ck_assert_msg(strstr(b.errors[0].reason, why) != NULL, "%s: %s, expected %s", event, b.errors[0].reason, why);
    }
    gw_ingest_batch_free(&b);
}

START_TEST(test_event_table)
{
    expect_event(rows[_i].event, rows[_i].why);
}
END_TEST

START_TEST(test_lengths_at_and_over_the_bounds)
{
    char ev[8192];
    /* the field's value goes between pre and post */
    const struct {
        const char *pre, *post;
        size_t ok; /* the longest accepted; 0: only the over-long case */
        const char *why;
    } b[] = {
        {"{\"customer_id\":\"" CID "\",\"channel\":\"", "\",\"touchpoint\":\"t\"}", GW_INGEST_CHANNEL_MAX, "channel"},
        {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"", "\"}", GW_INGEST_TOUCHPOINT_MAX,
         "touchpoint"},
        {"{\"provider\":\"google\",\"subject\":\"", "\",\"channel\":\"s\",\"touchpoint\":\"t\"}", GW_INGEST_SUBJECT_MAX,
         "subject"},
        {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"idempotency_key\":\"", "\"}",
         GW_INGEST_IDEMPOTENCY_MAX, "idempotency_key"},
        {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"status\":\"", "\"}",
         GW_INGEST_STATUS_TEXT_MAX, "status"},
        {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"", "\":1}}",
         GW_INGEST_ATTR_KEY_MAX, "attribute"},
        {"{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\",\"attributes\":{\"a\":\"", "\"}}",
         GW_INGEST_ATTR_VALUE_MAX, "attribute"},
        {"{\"email\":\"", "@example.com\",\"channel\":\"s\",\"touchpoint\":\"t\"}", 64, "email"},
        {"{\"provider\":\"", "\",\"subject\":\"1\",\"channel\":\"s\",\"touchpoint\":\"t\"}", 0, "provider"},
    };
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); ++i) {
        if (b[i].ok > 0) {
            snprintf(ev, sizeof(ev), "%s%s%s", b[i].pre, repeat('a', b[i].ok), b[i].post);
            expect_event(ev, NULL);
        }
        snprintf(ev, sizeof(ev), "%s%s%s", b[i].pre,
                 repeat('a', b[i].ok > 0 ? b[i].ok + 1 : GW_INGEST_PROVIDER_MAX + 1), b[i].post);
        expect_event(ev, b[i].why);
    }
    /* a whole address over 254 */
    snprintf(ev, sizeof(ev), "{\"email\":\"a@%s.com\",\"channel\":\"s\",\"touchpoint\":\"t\"}", repeat('d', 250));
    expect_event(ev, "email");
}
END_TEST

START_TEST(test_attribute_count_and_size)
{
    char ev[65536];
    size_t n;

    for (size_t count = GW_INGEST_ATTRS_MAX; count <= GW_INGEST_ATTRS_MAX + 1; ++count) {
        n = (size_t)snprintf(ev, sizeof(ev),
                             "{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\","
                             "\"attributes\":{");
        for (size_t i = 0; i < count; ++i)
            n += (size_t)snprintf(ev + n, sizeof(ev) - n, "%s\"k%zu\":%zu", i ? "," : "", i, i);
        snprintf(ev + n, sizeof(ev) - n, "}}");
        expect_event(ev, count == GW_INGEST_ATTRS_MAX ? NULL : "at most 32");
    }
    /* each value within its bound, but the whole over what a record holds */
    n = (size_t)snprintf(ev, sizeof(ev),
                         "{\"customer_id\":\"" CID "\",\"channel\":\"s\",\"touchpoint\":\"t\","
                         "\"attributes\":{");
    for (size_t i = 0; i < 16; ++i)
        n += (size_t)snprintf(ev + n, sizeof(ev) - n, "%s\"k%zu\":\"%s\"", i ? "," : "", i,
                              repeat('v', GW_INGEST_ATTR_VALUE_MAX));
    snprintf(ev + n, sizeof(ev) - n, "}}");
    expect_event(ev, "15 KB");
}
END_TEST

START_TEST(test_accepted_events_are_typed)
{
    const char *body = "{\"events\":[{\"email\":\"x\"},"
                       "{\"provider\":\"google\",\"subject\":\"s-1\",\"channel\":\"email\",\"touchpoint\":\"opened\","
                       "\"stage\":\"loyalty\",\"time\":1700000000123,\"idempotency_key\":\"k1\",\"status\":204},"
                       "{\"customer_id\":\"" CID "\",\"channel\":\"store\",\"touchpoint\":\"paid\",\"status\":\"ok\","
                       "\"attributes\":{\"total\":12}}]}";
    const char *problem;
    gw_ingest_batch_t b;

    ck_assert_int_eq(gw_ingest_parse(body, strlen(body), provs, 2, NOW, &b, &problem), GW_OK);
    ck_assert_uint_eq(b.total, 3);
    ck_assert_uint_eq(b.error_count, 1);
    ck_assert_uint_eq(b.errors[0].index, 0);
    ck_assert_uint_eq(b.count, 2);
    ck_assert_uint_eq(b.events[0].index, 1);
    ck_assert_str_eq(b.events[0].provider, "google");
    ck_assert_str_eq(b.events[0].subject, "s-1");
    ck_assert_ptr_null(b.events[0].customer_id);
    ck_assert_ptr_null(b.events[0].email);
    ck_assert_str_eq(b.events[0].stage, "loyalty");
    ck_assert_int_eq(b.events[0].has_time, 1);
    ck_assert_uint_eq(b.events[0].time_ms, 1700000000123ULL);
    ck_assert_str_eq(b.events[0].idempotency_key, "k1");
    ck_assert_int_eq(b.events[0].status, 204);
    ck_assert_ptr_null(b.events[0].extra);
    ck_assert_uint_eq(b.events[1].index, 2);
    ck_assert_str_eq(b.events[1].customer_id, CID);
    ck_assert_int_eq(b.events[1].has_time, 0);
    ck_assert_int_eq(b.events[1].status, 0);
    ck_assert_ptr_null(b.events[1].stage);
    ck_assert_str_eq(b.events[1].extra, "{\"status\":\"ok\",\"attributes\":{\"total\":12}}");
    ck_assert_uint_eq(b.events[1].extra_len, strlen(b.events[1].extra));
    gw_ingest_batch_free(&b);
}
END_TEST

/* what cannot be taken event by event: the body is refused whole */
START_TEST(test_bodies_refused_whole)
{
    static const char *const bodies[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"events\":[]}",
        "{\"events\":{}}",
        "{\"events\":\"x\"}",
        "{\"events\":[{}],\"more\":1}",
        "{\"events\":[{}],\"events\":[{}]}",
        "{\"events\":[{\"channel\":\"\xff\"}]}",     /* not UTF-8 */
        "{\"events\":[{\"channel\":\"\xc0\xaf\"}]}", /* an overlong form */
        "{\"events\":[{\"channel\":\"\\udc00\"}]}",  /* a lone surrogate */
        "{\"events\":[{\"a\\u0000\":1}]}",           /* a NUL in a field name */
    };
    char *big;
    const char *problem;
    gw_ingest_batch_t b;
    size_t n;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); ++i) {
        ck_assert_msg(gw_ingest_parse(bodies[i], strlen(bodies[i]), provs, 2, NOW, &b, &problem) == GW_EINVAL, "%s",
                      bodies[i]);
        ck_assert_ptr_nonnull(problem);
        ck_assert_ptr_null(b.root);
    }
    ck_assert_int_eq(gw_ingest_parse(NULL, 0, provs, 2, NOW, &b, &problem), GW_EINVAL);
    /* 1001 events */
    big = malloc(16 * 1024);
    n = (size_t)sprintf(big, "{\"events\":[");
    for (int i = 0; i <= GW_INGEST_EVENTS_MAX; ++i)
        n += (size_t)sprintf(big + n, "%s{}", i ? "," : "");
    sprintf(big + n, "]}");
    ck_assert_int_eq(gw_ingest_parse(big, strlen(big), provs, 2, NOW, &b, &problem), GW_EINVAL);
    /* 1000: every one refused on its own */
    sprintf(big + n - 3, "]}");
    ck_assert_int_eq(gw_ingest_parse(big, strlen(big), provs, 2, NOW, &b, &problem), GW_OK);
    ck_assert_uint_eq(b.total, GW_INGEST_EVENTS_MAX);
    ck_assert_uint_eq(b.error_count, GW_INGEST_EVENTS_MAX);
    ck_assert_uint_eq(b.errors[999].index, 999);
    gw_ingest_batch_free(&b);
    free(big);
    ck_assert_int_eq(gw_ingest_parse("{}", GW_INGEST_BODY_MAX + 1, provs, 2, NOW, &b, &problem), GW_ETOOBIG);
}
END_TEST

START_TEST(test_no_providers_configured)
{
    const char *body =
        "{\"events\":[{\"provider\":\"google\",\"subject\":\"1\",\"channel\":\"s\",\"touchpoint\":\"t\"}]}";
    const char *problem;
    gw_ingest_batch_t b;

    ck_assert_int_eq(gw_ingest_parse(body, strlen(body), NULL, 0, NOW, &b, &problem), GW_OK);
    ck_assert_uint_eq(b.error_count, 1);
    ck_assert_str_eq(b.errors[0].reason, "provider is not configured");
    gw_ingest_batch_free(&b);
}
END_TEST

struct token_row {
    const char *body;
    int ok;          /* 1: accepted */
    size_t provider; /* when accepted */
    const char *why; /* when refused */
};

static const struct token_row token_rows[] = {
    {"{\"provider\":\"google\",\"id_token\":\"a.b.c\"}", 1, 0, NULL},
    {"{\"provider\":\"facebook\",\"access_token\":\"EAAB123\"}", 1, 1, NULL},
    {"{\"provider\":\"google\",\"id_token\":\"a.b.c\",\"ignored\":[1]}", 1, 0, NULL},
    {"{\"provider\":\"github\",\"id_token\":\"a.b.c\"}", 0, 0, "unknown provider"},
    {"{\"provider\":7,\"id_token\":\"a.b.c\"}", 0, 0, "unknown provider"},
    {"{\"provider\":\"goo\\ngle\",\"id_token\":\"a.b.c\"}", 0, 0, "unknown provider"},
    {"{\"id_token\":\"a.b.c\"}", 0, 0, "unknown provider"},
    {"{\"provider\":\"google\"}", 0, 0, "id_token"},
    {"{\"provider\":\"google\",\"access_token\":\"x\"}", 0, 0, "id_token"},
    {"{\"provider\":\"facebook\",\"id_token\":\"x\"}", 0, 0, "access_token"},
    {"{\"provider\":\"google\",\"id_token\":1}", 0, 0, "id_token"},
    {"{\"provider\":\"google\",\"id_token\":\"\"}", 0, 0, "id_token"},
    {"{\"provider\":\"google\",\"id_token\":\"a\\r\\nb\"}", 0, 0, "id_token"},
    {"{\"provider\":\"google\",\"id_token\":\"a b\"}", 0, 0, "id_token"},
    {"{\"provider\":\"google\",\"id_token\":\"a\\u00e9\"}", 0, 0, "id_token"},
    {"{\"provider\":\"google\",\"id_token\":\"a\\u0000\"}", 0, 0, "JSON object"},
    {"[\"google\"]", 0, 0, "JSON object"},
    {"{\"provider\":\"google\",\"provider\":\"facebook\",\"id_token\":\"x\"}", 0, 0, "JSON object"},
    {"", 0, 0, "JSON object"},
};

START_TEST(test_token_table)
{
    const struct token_row *r = &token_rows[_i];
    gw_token_request_t t;
    const char *problem = NULL;
    gw_status_t st = gw_token_request_parse(r->body, strlen(r->body), provs, 2, &t, &problem);

    if (r->ok) {
        ck_assert_msg(st == GW_OK, "%s: %s", r->body, problem);
        ck_assert_uint_eq(t.provider, r->provider);
        ck_assert_ptr_nonnull(t.token);
        json_decref(t.root);
    } else {
        ck_assert_msg(st == GW_EINVAL, "%s: accepted", r->body);
        ck_assert_msg(strstr(problem, r->why) != NULL, "%s: %s, expected %s", r->body, problem, r->why);
        ck_assert_ptr_null(t.root);
    }
}
END_TEST

START_TEST(test_token_lengths)
{
    char body[GW_TOKEN_MAX + 64];
    gw_token_request_t t;
    const char *problem;

    snprintf(body, sizeof(body), "{\"provider\":\"google\",\"id_token\":\"%s\"}", repeat('a', 4000));
    ck_assert_int_eq(gw_token_request_parse(body, strlen(body), provs, 2, &t, &problem), GW_OK);
    json_decref(t.root);
    snprintf(body, sizeof(body), "{\"provider\":\"google\",\"id_token\":\"%s%s%s\"}", repeat('a', 4000),
             repeat('b', 4000), repeat('c', 193));
    ck_assert_int_eq(gw_token_request_parse(body, strlen(body), provs, 2, &t, &problem), GW_EINVAL);
    ck_assert_int_eq(gw_token_request_parse(body, GW_TOKEN_BODY_MAX + 1, provs, 2, &t, &problem), GW_EINVAL);
}
END_TEST

START_TEST(test_text_check)
{
    static const struct {
        const char *s;
        int ok, ascii_ok;
    } t[] = {
        {"plain", 1, 1},
        {"caf\xc3\xa9", 1, 0},
        {"\xe2\x80\x94", 1, 0},
        {"\xf0\x9f\x98\x80", 1, 0},
        {"a\rb", 0, 0},
        {"a\nb", 0, 0},
        {"\x1f", 0, 0},
        {"\x7f", 0, 0},
        {"\xc2\x85", 0, 0},
        {"\xc2\x9f", 0, 0},
        {"\xc2\xa0", 1, 0},
        {"\xc0\x80", 0, 0},
        {"\xe0\x80\xaf", 0, 0},
        {"\xed\xa0\x80", 0, 0},
        {"\xf4\x90\x80\x80", 0, 0},
        {"\xf5\x80\x80\x80", 0, 0},
        {"\x80", 0, 0},
        {"\xc3", 0, 0},
        {"\xe2\x80", 0, 0},
        {"\xc3(", 0, 0},
        {"\xf0\x9f\x98", 0, 0},
        {"\xef\xbf\xbf", 1, 0},
        {" ~", 1, 1},
        {"", 1, 1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
        ck_assert_msg(gw_text_ok(t[i].s, strlen(t[i].s), 0) == t[i].ok, "row %zu", i);
        ck_assert_msg(gw_text_ok(t[i].s, strlen(t[i].s), 1) == t[i].ascii_ok, "row %zu ascii", i);
    }
    ck_assert_int_eq(gw_text_ok("a\0b", 3, 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("ingest");

    tcase_add_loop_test(tc, test_event_table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
    tcase_add_test(tc, test_lengths_at_and_over_the_bounds);
    tcase_add_test(tc, test_attribute_count_and_size);
    tcase_add_test(tc, test_accepted_events_are_typed);
    tcase_add_test(tc, test_bodies_refused_whole);
    tcase_add_test(tc, test_no_providers_configured);
    tcase_add_loop_test(tc, test_token_table, 0, (int)(sizeof(token_rows) / sizeof(token_rows[0])));
    tcase_add_test(tc, test_token_lengths);
    tcase_add_test(tc, test_text_check);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
