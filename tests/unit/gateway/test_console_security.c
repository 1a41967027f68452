/*
 * journeygate unit tests — the console's security endpoints (gateway/console/console_security.c)
 * against a real store in a temporary directory and a real configuration with its policy set.
 * The helpers are the real ones (console_util.c); console.c's stream comes from console_harness.c.
 */
#include "console_api.h"

#include "../check_run.h"
#include "crypto.h"
#include "pol.h"
#include "policy_glue.h"
#include "temp_store.h"

#include <check.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1796602800000ull /* 2026-12-07T00:20:00Z */

static char dir[64];
static store_t *st;
static gw_config_t *cfg;
static console_ctx_t ctx;
static console_staff_t staff;

static const char *config_text =
    "{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":18080}],\"public_url\":\"http://127.0.0.1:18080\","
    "\"store\":{\"path\":\"/tmp/unused\"},\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\"}},"
    "\"routes\":[{\"name\":\"staff\",\"match\":{\"path_prefix\":\"/staff/\"},\"upstream\":\"shop\",\"channel\":\"web\","
    "\"auth\":\"session\",\"policy\":\"staff_only\"},"
    "{\"name\":\"vip\",\"match\":{\"path_prefix\":\"/vip/\"},\"upstream\":\"shop\",\"channel\":\"web\","
    "\"auth\":\"session\",\"policy\":\"two_providers\"},"
    "{\"name\":\"open\",\"match\":{\"path_prefix\":\"/"
    "\"},\"upstream\":\"shop\",\"channel\":\"web\",\"auth\":\"none\"}],"
    "\"policies\":{\"staff_only\":{\"description\":\"people of example.com\",\"rules\":[{\"allow\":{\"email_domain\":"
    "[\"example.com\"],\"email_verified\":true}}]},"
    "\"two_providers\":{\"rules\":[{\"deny\":{\"email_verified\":false}},{\"allow\":{\"min_linked_providers\":2}}]}}}";

static void setup(void)
{
    uint8_t key[32];
    gw_config_errors_t errs = {NULL, 0};
    json_t *doc = json_loads(config_text, 0, NULL);

    jg_temp_store_open(dir, sizeof(dir), "jg-console-sec", &st);
    memset(key, 7, sizeof(key));
    store_audit_key(st, key);
    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(gw_config_from_json(doc, "/tmp/console-test.json", &cfg, &errs), GW_OK);
    ck_assert_int_eq(gw_policies_attach(cfg, &errs), GW_OK);
    gw_config_errors_clear(&errs);
    json_decref(doc);
    ctx.store = st;
    ctx.analytics = NULL;
    ctx.cfg = cfg;
    memset(&staff, 0, sizeof(staff));
    snprintf(staff.provider, sizeof(staff.provider), "google");
    snprintf(staff.email, sizeof(staff.email), "alice@example.com");
    snprintf(staff.name, sizeof(staff.name), "Alice");
    snprintf(staff.session, sizeof(staff.session), "0123456789abcdef");
    staff.roles = CONSOLE_SECURITY | CONSOLE_ADMIN;
}

static void teardown(void)
{
    gw_config_unref(cfg);
    jg_temp_store_close(&st, dir);
}

/* calls an endpoint as console.c would: path split at '/', query raw, body a JSON text (NULL: GET) */
static console_answer_t call_ep(console_endpoint_fn fn, const char *path, const char *query, const char *body)
{
    char buf[1024];
    const char *segs[16];
    size_t n = 0;
    console_answer_t ans = {0, NULL, NULL};
    console_call_t call;
    json_t *b = body != NULL ? json_loads(body, 0, NULL) : NULL;

    /* split at '/', as console.c hands the path over */
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf; *p != '\0' && n < 16;) {
        char *slash = strchr(p, '/');
        segs[n++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    memset(&call, 0, sizeof(call));
    call.ctx = &ctx;
    call.staff = &staff;
    call.method = body != NULL ? "POST" : "GET";
    call.segs = segs;
    call.nsegs = n;
    call.query = query != NULL ? query : "";
    call.query_len = strlen(call.query);
    call.body = b;
    call.request_id = "req-1";
    call.client = "192.0.2.9";
    call.user_agent = "test-agent";
    call.now_ms = NOW_MS;
    if (body != NULL)
        ck_assert_ptr_nonnull(b);
    fn(&call, &ans);
    json_decref(b);
    if (ans.status == 0)
        ans.status = 200;
    ck_assert_ptr_nonnull(ans.json);
    return ans;
}

static void expect_status(console_endpoint_fn fn, const char *path, const char *query, const char *body, int status)
{
    console_answer_t a = call_ep(fn, path, query, body);
    if (a.status != status) {
        char *t = json_dumps(a.json, 0);
        ck_abort_msg("%s?%s %s: status %d, wanted %d: %s", path, query != NULL ? query : "", body != NULL ? body : "",
                     a.status, status, t);
    }
    json_decref(a.json);
}

static void login(const char *provider, const char *subject, const char *email, const char *name, const char *link_to,
                  char cid[STORE_ID_LEN + 1], uint64_t at)
{
    store_identity_t id = {provider, subject, email, 1, name, NULL};
    store_login_opts_t o = {1, NULL, link_to, "web"};
    store_login_info_t info;
    store_audit_event_t ev = {"callback_succeeded",
                              "success",
                              NULL,
                              provider,
                              NULL,
                              subject,
                              "192.0.2.1",
                              "ua",
                              "flowx",
                              NULL,
                              NULL,
                              NULL,
                              NULL};
    ck_assert_int_eq(store_login(st, &id, &o, at, cid, &info, &ev), GW_OK);
}

/* a session as auth.c new_session() writes it; its token hash into hash */
static void session(const char *cid, const char *provider, const char *subject, const char *kind, uint64_t expires,
                    uint8_t hash[32])
{
    char token[64];
    json_t *s;

    ck_assert_int_eq(gw_random_token(token, sizeof(token), 32), GW_OK);
    gw_sha256(token, strlen(token), hash);
    s = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:i, s:s}", "sid", "sid1",
                  "customer_id", cid, "provider", provider, "subject", subject, "email", "x@example.com",
                  "email_verified", 1, "kind", kind, "channel", "web", "created_ms", (json_int_t)(NOW_MS - 1000),
                  "last_seen_ms", (json_int_t)(NOW_MS - 500), "expires_ms", (json_int_t)expires, "idle_timeout_ms",
                  (json_int_t)0, "csrf", "c", "linked_providers", 1, "hd", "example.com");
    ck_assert_int_eq(store_session_put(st, hash, s), GW_OK);
    json_decref(s);
}

static void write_event(const char *event, const char *outcome, const char *provider, uint64_t ts)
{
    store_audit_event_t ev = {event, outcome, NULL, provider, NULL, NULL, "198.51.100.7",
                              NULL,  NULL,    NULL, NULL,     NULL, NULL};
    const store_audit_event_t *one = &ev;
    ck_assert_int_eq(store_audit_write_batch(st, &one, NULL, &ts, 1), GW_OK);
}

/* the newest audit record (new reference) */
static int last_cb(json_t *r, void *arg)
{
    json_decref(*(json_t **)arg);
    *(json_t **)arg = json_incref(r);
    return 0;
}

static json_t *last_record(void)
{
    json_t *r = NULL;
    uint64_t last;
    ck_assert_int_eq(store_audit_last(st, &last), GW_OK);
    ck_assert_int_eq(store_audit_foreach(st, last > 0 ? last - 1 : 0, last_cb, &r), GW_OK);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const char *sget(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ------------------------------------------------------------------ audit */

START_TEST(test_audit_pages_newest_first_with_filters)
{
    char cid[STORE_ID_LEN + 1], q[128];
    size_t seen = 0, expected = 0;
    uint64_t before = 0, prev_seq = UINT64_MAX;
    json_t *r;

    login("google", "g-1", "bob@example.com", "Bob", NULL, cid, NOW_MS - 5000);
    for (int i = 0; i < 230; ++i) {
        store_audit_event_t ev = {i % 3 == 0 ? "callback_refused" : "rate_limited",
                                  i % 2 == 0 ? "refused" : "success",
                                  NULL,
                                  i % 4 == 0 ? "facebook" : "google",
                                  i % 5 == 0 ? cid : NULL,
                                  NULL,
                                  "198.51.100.7",
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL};
        ck_assert_int_eq(store_audit_write(st, &ev, NOW_MS - 4000 + (uint64_t)i), GW_OK);
        if (i % 3 == 0 && i % 2 == 0 && i % 4 != 0)
            ++expected;
    }
    /* pages of 7: event, outcome and provider all must hold; newest first across pages */
    do {
        console_answer_t a;
        if (before > 0)
            snprintf(q, sizeof(q), "event=callback_refused&outcome=refused&provider=google&limit=7&before=%llu",
                     (unsigned long long)before);
        else
            snprintf(q, sizeof(q), "event=callback_refused&outcome=refused&provider=google&limit=7");
        a = call_ep(console_api_audit, "audit", q, NULL);
        ck_assert_int_eq(a.status, 200);
        size_t i;
        ck_assert_uint_le(json_array_size(json_object_get(a.json, "records")), 7);
        json_array_foreach(json_object_get(a.json, "records"), i, r)
        {
            uint64_t seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
            ck_assert_uint_lt(seq, prev_seq);
            prev_seq = seq;
            ck_assert_str_eq(sget(r, "event"), "callback_refused");
            ck_assert_str_eq(sget(r, "outcome"), "refused");
            ck_assert_str_eq(sget(r, "provider"), "google");
            ck_assert_ptr_nonnull(strstr(sget(r, "time"), "2026-12-07T00:19:"));
            ++seen;
        }
        before = (uint64_t)json_integer_value(json_object_get(a.json, "next_before"));
        ck_assert(before > 0 || json_is_null(json_object_get(a.json, "next_before")));
        json_decref(a.json);
    } while (before > 0);
    ck_assert_uint_eq(seen, expected);

    /* a customer's records carry the customer's name and email (looked up once per call) */
    {
        console_answer_t a = call_ep(console_api_audit, "audit", "customer=", NULL);
        ck_assert_int_eq(a.status, 400);
        json_decref(a.json);
        snprintf(q, sizeof(q), "customer=%s&limit=500", cid);
        a = call_ep(console_api_audit, "audit", q, NULL);
        ck_assert_int_eq(a.status, 200);
        ck_assert_uint_eq(json_array_size(json_object_get(a.json, "records")), 46 + 2); /* + login, created */
        r = json_array_get(json_object_get(a.json, "records"), 0);
        ck_assert_str_eq(sget(r, "customer_id"), cid);
        ck_assert_str_eq(sget(r, "customer_name"), "Bob");
        ck_assert_str_eq(sget(r, "customer_email"), "bob@example.com");
        ck_assert(json_is_null(json_object_get(r, "actor")));
        ck_assert(json_is_null(json_object_get(a.json, "next_before")));
        json_decref(a.json);
    }
    /* a period: only records inside it (UTC days) */
    {
        console_answer_t a = call_ep(console_api_audit, "audit", "from=2026-12-08&to=2026-12-09", NULL);
        ck_assert_int_eq(a.status, 200);
        ck_assert_uint_eq(json_array_size(json_object_get(a.json, "records")), 0);
        json_decref(a.json);
        a = call_ep(console_api_audit, "audit", "from=2026-12-07&to=2026-12-07&client=198.51.100.7&limit=500", NULL);
        ck_assert_uint_eq(json_array_size(json_object_get(a.json, "records")), 230);
        json_decref(a.json);
    }
}
END_TEST

START_TEST(test_audit_period_waits_for_late_refusals)
{
    uint64_t day = NOW_MS - NOW_MS % 86400000ull; /* 2026-12-07T00:00:00Z */
    console_answer_t a;

    write_event("too_old", "success", NULL, day - 3 * 3600000ull);
    write_event("in_period", "success", NULL, day + 10000);
    /* a refusal held back by its aggregation interval is written after it, with its own earlier time */
    write_event("rate_limited", "refused", NULL, day - 30000);
    a = call_ep(console_api_audit, "audit", "from=2026-12-07&to=2026-12-07", NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "records")), 1);
    ck_assert_str_eq(sget(json_array_get(json_object_get(a.json, "records"), 0), "event"), "in_period");
    ck_assert(json_is_null(json_object_get(a.json, "next_before")));
    json_decref(a.json);
}
END_TEST

START_TEST(test_audit_hostile_parameters)
{
    static const char *const bad[] = {
        "outcome=forged",
        "outcome=success%0a",
        "event=a%0db",
        "event=Callback",
        "event=%ff%fe",
        "provider=goo%01gle",
        "provider=google;drop",
        "customer=c_short",
        "customer=c_AAAAAAAAAAAAAAAAAAAAAAAA",
        "client=evil.example",
        "client=1.2.3.4%00",
        "before=0",
        "before=-1",
        "before=12abc",
        "before=99999999999999999999999",
        "limit=0",
        "limit=501",
        "limit=1e3",
        "from=2026-13-01",
        "from=2026-12-07&to=2026-01-01",
        "to=yesterday",
        "event=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "event=%",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        expect_status(console_api_audit, "audit", bad[i], NULL, 400);
    expect_status(console_api_audit, "audit", "outcome=refused&limit=500&unknown=1", NULL, 200);
    expect_status(console_api_audit_flow, "audit/flow/a.b", NULL, NULL, 400);
    expect_status(console_api_audit_flow, "audit/flow/nosuchflow", NULL, NULL, 404);
    expect_status(console_api_audit_chain, "audit/chain", "full=yes", NULL, 400);
}
END_TEST

START_TEST(test_audit_scan_is_bounded)
{
    enum { N = 50050, BATCH = 2000, BOUND = 50000 };
    store_audit_event_t needle = {"needle", "success", NULL, NULL, NULL, NULL, NULL,
                                  NULL,     "deep",    NULL, NULL, NULL, NULL};
    store_audit_event_t hay = {"hay", "success", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const store_audit_event_t *evs[BATCH];
    uint64_t times[BATCH], next;
    console_answer_t a;
    char q[64];

    ck_assert_int_eq(store_audit_write(st, &needle, NOW_MS - 10000), GW_OK);
    ck_assert_int_eq(store_set_durable(st, 0), GW_OK);
    for (size_t i = 0; i < BATCH; ++i) {
        evs[i] = &hay;
        times[i] = NOW_MS - 5000;
    }
    for (size_t done = 0; done < N; done += BATCH)
        ck_assert_int_eq(store_audit_write_batch(st, evs, NULL, times, N - done < BATCH ? N - done : BATCH), GW_OK);
    ck_assert_int_eq(store_set_durable(st, 1), GW_OK);
    /* the first call stops after examining its bound, with nothing found, and says where to go on */
    a = call_ep(console_api_audit, "audit", "event=needle", NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "records")), 0);
    next = (uint64_t)json_integer_value(json_object_get(a.json, "next_before"));
    /* records N + 1 down to the bound's last: the next page starts before that one */
    ck_assert_uint_eq(next, N + 1 - BOUND + 1);
    json_decref(a.json);
    snprintf(q, sizeof(q), "event=needle&before=%llu", (unsigned long long)next);
    a = call_ep(console_api_audit, "audit", q, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "records")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(a.json, "records"), 0), "seq")),
                     1);
    ck_assert(json_is_null(json_object_get(a.json, "next_before")));
    json_decref(a.json);
    /* a flow's search is bounded the same way, and says it may have missed older steps */
    ck_assert_int_eq(store_audit_write(st, &needle, NOW_MS - 4000), GW_OK);
    a = call_ep(console_api_audit_flow, "audit/flow/deep", NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "steps")), 1);
    ck_assert(json_is_false(json_object_get(a.json, "complete")));
    json_decref(a.json);
}
END_TEST

/* ------------------------------------------------------------------ the chain */

/*
 * What an attacker with file access does, by the test tool the integration tests use
 * (tests/tools/audit_tamper.c), from another process while the store stays open here, as it
 * would in a running gateway: "edit" changes a record and keeps its stored hash, "edit-rehash"
 * also recomputes that hash.
 */
static void tamper(const char *op, uint64_t seq)
{
    const char *tool = getenv("JG_AUDIT_TAMPER");
    char cmd[512];

    ck_assert_msg(tool != NULL, "JG_AUDIT_TAMPER names the audit_tamper tool (CTest sets it)");
    ck_assert_int_lt(snprintf(cmd, sizeof(cmd), "'%s' '%s' %s %llu", tool, dir, op, (unsigned long long)seq),
                     (int)sizeof(cmd));
    ck_assert_int_eq(system(cmd), 0);
}

static json_t *chain(const char *query)
{
    console_answer_t a = call_ep(console_api_audit_chain, "audit/chain", query, NULL);
    ck_assert_int_eq(a.status, 200);
    return a.json;
}

START_TEST(test_chain_verified_then_broken)
{
    json_t *c;

    c = chain(NULL);
    ck_assert_str_eq(sget(c, "state"), "verified");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "count")), 0);
    ck_assert(json_is_null(json_object_get(c, "signed_head")));
    json_decref(c);
    for (int i = 0; i < 40; ++i)
        write_event("rate_limited", "refused", "google", NOW_MS - 1000 + (uint64_t)i);
    c = chain("full=1");
    ck_assert_str_eq(sget(c, "state"), "verified");
    ck_assert_str_eq(sget(c, "check"), "full");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "count")), 40);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "verified_up_to")), 40);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "head_seq")), 40);
    ck_assert_uint_eq(strlen(sget(c, "signed_head")), 64);
    ck_assert(json_is_null(json_object_get(c, "first_broken")));
    ck_assert(json_is_null(json_object_get(c, "why")));
    json_decref(c);
    /* again, with records appended: only those are walked, from the verified mark */
    for (int i = 0; i < 5; ++i)
        write_event("rate_limited", "refused", "google", NOW_MS - 500 + (uint64_t)i);
    c = chain(NULL);
    ck_assert_str_eq(sget(c, "state"), "verified");
    ck_assert_str_eq(sget(c, "check"), "incremental");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "verified_up_to")), 45);
    json_decref(c);

    /*
     * A record in the middle changed after it was verified: resuming from the mark does not read it
     * again (the answer says the check was incremental); a full walk names it.
     */
    tamper("edit", 17);
    c = chain(NULL);
    ck_assert_str_eq(sget(c, "check"), "incremental");
    ck_assert_str_eq(sget(c, "state"), "verified");
    json_decref(c);
    c = chain("full=1");
    ck_assert_str_eq(sget(c, "state"), "broken");
    ck_assert_str_eq(sget(c, "check"), "full");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "first_broken")), 17);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "verified_up_to")), 16);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "head_seq")), 45);
    ck_assert_str_eq(sget(c, "why"), "a record was changed");
    json_decref(c);
    /* broken stays broken: the mark was dropped, every call walks from the start */
    c = chain(NULL);
    ck_assert_str_eq(sget(c, "state"), "broken");
    ck_assert_str_eq(sget(c, "check"), "full");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "first_broken")), 17);
    json_decref(c);
}
END_TEST

START_TEST(test_chain_resume_catches_a_rewritten_mark)
{
    static const char *const ops[] = {"edit", "edit-rehash"};
    json_t *c;

    /* the record the verification resumes from is changed, keeping or recomputing its own hash */
    for (size_t i = 0; i < 2; ++i) {
        uint64_t mark;
        for (int j = 0; j < 30; ++j)
            write_event("rate_limited", "refused", "google", NOW_MS - 1000 + (uint64_t)j);
        ck_assert_int_eq(store_audit_last(st, &mark), GW_OK);
        c = chain(i == 0 ? "full=1" : NULL);
        ck_assert_str_eq(sget(c, "state"), "verified");
        ck_assert_int_eq(json_integer_value(json_object_get(c, "verified_up_to")), (json_int_t)mark);
        json_decref(c);
        tamper(ops[i], mark);
        for (int j = 0; j < 3; ++j)
            write_event("rate_limited", "refused", "google", NOW_MS - 500 + (uint64_t)j);
        c = chain(NULL);
        ck_assert_str_eq(sget(c, "check"), "incremental");
        ck_assert_str_eq(sget(c, "state"), "broken");
        ck_assert_int_eq(json_integer_value(json_object_get(c, "first_broken")), (json_int_t)mark);
        ck_assert_str_eq(sget(c, "why"), "a record verified before was changed");
        json_decref(c);
        if (i == 0) {
            /* the next round starts from a sound chain: a fresh store */
            jg_temp_store_close(&st, dir);
            jg_temp_store_open(dir, sizeof(dir), "jg-console-sec", &st);
            {
                uint8_t key[32];
                memset(key, 7, sizeof(key));
                store_audit_key(st, key);
            }
            ctx.store = st;
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ the store's walks */

struct seqs {
    uint64_t seq[64];
    size_t n, stop_after;
};

static int seqs_cb(uint64_t seq, json_t *r, void *arg)
{
    struct seqs *c = arg;
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "seq")), (json_int_t)seq);
    c->seq[c->n++] = seq;
    return c->n == c->stop_after;
}

START_TEST(test_store_audit_walks_backwards)
{
    struct seqs c;
    static const uint64_t befores[] = {0, 11, 1000, 6, 1, 2};
    static const size_t firsts[] = {10, 10, 10, 5, 0, 1};

    for (int i = 0; i < 10; ++i)
        write_event("e", "success", NULL, NOW_MS + (uint64_t)i);
    for (size_t t = 0; t < sizeof(befores) / sizeof(befores[0]); ++t) {
        memset(&c, 0, sizeof(c));
        ck_assert_int_eq(store_audit_foreach_reverse(st, befores[t], seqs_cb, &c), GW_OK);
        ck_assert_uint_eq(c.n, firsts[t]);
        for (size_t i = 0; i < c.n; ++i)
            ck_assert_uint_eq(c.seq[i], firsts[t] - i);
    }
    /* a record missing (removed behind the store's back): the walk goes past the gap */
    tamper("delete", 5);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(store_audit_foreach_reverse(st, 5, seqs_cb, &c), GW_OK);
    ck_assert_uint_eq(c.n, 4);
    ck_assert_uint_eq(c.seq[0], 4);
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    ck_assert_int_eq(store_audit_foreach_reverse(st, 0, seqs_cb, &c), GW_OK);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_uint_eq(c.seq[2], 8);
}
END_TEST

struct hashes {
    uint8_t h[8][32];
    size_t n;
};

static int hashes_cb(const uint8_t token_hash[32], json_t *session, void *arg)
{
    struct hashes *c = arg;
    ck_assert_ptr_nonnull(json_string_value(json_object_get(session, "customer_id")));
    memcpy(c->h[c->n++], token_hash, 32);
    return 0;
}

START_TEST(test_store_customer_sessions_lists_only_theirs)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    uint8_t h[3][32];
    struct hashes c;

    login("google", "s-1", "kim@example.com", "Kim", NULL, a, NOW_MS - 9000);
    login("google", "s-2", "lee@example.com", "Lee", NULL, b, NOW_MS - 9000);
    session(a, "google", "s-1", "cookie", NOW_MS + 1000, h[0]);
    session(a, "google", "s-1", "bearer", NOW_MS + 1000, h[1]);
    session(b, "google", "s-2", "cookie", NOW_MS + 1000, h[2]);
    ck_assert_int_eq(store_session_delete(st, h[1], NULL), GW_OK);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(store_customer_sessions(st, a, hashes_cb, &c), GW_OK);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(memcmp(c.h[0], h[0], 32), 0);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(store_customer_sessions(st, "c_aaaaaaaaaaaaaaaaaaaaaaaa", hashes_cb, &c), GW_OK);
    ck_assert_int_eq(store_customer_sessions(st, "short", hashes_cb, &c), GW_OK);
    ck_assert_uint_eq(c.n, 0);
}
END_TEST

/* ------------------------------------------------------------------ one flow */

START_TEST(test_flow_in_order_with_durations)
{
    char cid[STORE_ID_LEN + 1];
    console_answer_t a;
    json_t *steps;
    static const char *const events[] = {"login_started", "callback_refused", "callback_succeeded"};
    static const uint64_t at[] = {0, 120, 500};

    login("google", "g-9", "carol@example.com", "Carol", NULL, cid, NOW_MS - 60000);
    for (int i = 0; i < 3; ++i) {
        store_audit_event_t ev = {events[i],
                                  i == 1 ? "refused" : "success",
                                  i == 1 ? "state_unknown" : NULL,
                                  "google",
                                  i == 2 ? cid : NULL,
                                  NULL,
                                  NULL,
                                  NULL,
                                  "F-low_1",
                                  NULL,
                                  NULL,
                                  NULL,
                                  NULL};
        write_event("noise", "success", NULL, NOW_MS - 3000);
        ck_assert_int_eq(store_audit_write(st, &ev, NOW_MS - 2000 + at[i]), GW_OK);
    }
    a = call_ep(console_api_audit_flow, "audit/flow/F-low_1", NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    steps = json_object_get(a.json, "steps");
    ck_assert_uint_eq(json_array_size(steps), 3);
    for (size_t i = 0; i < 3; ++i) {
        json_t *s = json_array_get(steps, i);
        ck_assert_str_eq(sget(s, "event"), events[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "ms_since_start")), (json_int_t)at[i]);
    }
    ck_assert_str_eq(sget(json_array_get(steps, 1), "reason"), "state_unknown");
    ck_assert_str_eq(sget(a.json, "customer_id"), cid);
    ck_assert_str_eq(sget(a.json, "customer_name"), "Carol");
    ck_assert(json_is_true(json_object_get(a.json, "complete")));
    json_decref(a.json);
}
END_TEST

/* ------------------------------------------------------------------ a customer's page */

START_TEST(test_customer_security_page)
{
    char cid[STORE_ID_LEN + 1], other[STORE_ID_LEN + 1], path[96], hex[65];
    uint8_t h1[32], h2[32], h3[32], h4[32];
    console_answer_t a;
    json_t *sessions, *r, *s;
    size_t i;
    char *text;

    login("google", "g-2", "dave@example.com", "Dave", NULL, cid, NOW_MS - 90000);
    login("facebook", "f-2", "dave@fb.example", "Dave F", cid, cid, NOW_MS - 80000);
    login("google", "g-3", "erin@example.com", "Erin", NULL, other, NOW_MS - 70000);
    session(cid, "google", "g-2", "cookie", NOW_MS + 3600000, h1);
    session(cid, "facebook", "f-2", "bearer", NOW_MS + 7200000, h2);
    session(cid, "google", "g-2", "cookie", NOW_MS - 1, h3); /* expired: not shown */
    session(other, "google", "g-3", "cookie", NOW_MS + 3600000, h4);
    snprintf(path, sizeof(path), "customers/%s/security", cid);
    a = call_ep(console_api_customer_security, path, NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(sget(json_object_get(a.json, "customer"), "id"), cid);
    /* the profile keeps the latest verified email: the facebook sign-in came last */
    ck_assert_str_eq(sget(json_object_get(a.json, "customer"), "email"), "dave@fb.example");
    sessions = json_object_get(a.json, "sessions");
    ck_assert_uint_eq(json_array_size(sessions), 2);
    json_array_foreach(sessions, i, s)
    {
        const uint8_t *h = strcmp(sget(s, "kind"), "cookie") == 0 ? h1 : h2;
        gw_hex(h, 8, hex);
        ck_assert_str_eq(sget(s, "id"), hex);
        ck_assert_str_eq(sget(s, "provider"), h == h1 ? "google" : "facebook");
        ck_assert_str_eq(sget(s, "channel"), "web");
        ck_assert_ptr_nonnull(sget(s, "created"));
        ck_assert_ptr_nonnull(sget(s, "expires"));
    }
    /* never the token, nor the whole hash */
    text = json_dumps(a.json, 0);
    gw_hex(h1, 32, hex);
    ck_assert_ptr_null(strstr(text, hex));
    ck_assert_ptr_null(strstr(text, "csrf"));
    free(text);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "identities")), 2);
    r = json_array_get(json_object_get(a.json, "identities"), 0);
    ck_assert_str_eq(sget(r, "linked_by"), "first_sign_in");
    ck_assert_str_eq(sget(json_array_get(json_object_get(a.json, "identities"), 1), "linked_by"), "explicit_link");
    /* the customer's events, newest first: the viewing itself was recorded before the page was read */
    r = json_array_get(json_object_get(a.json, "events"), 0);
    ck_assert_str_eq(sget(r, "event"), "console_view_security");
    ck_assert_str_eq(sget(r, "actor"), "staff:google:alice@example.com");
    ck_assert_str_eq(sget(r, "customer_id"), cid);
    json_array_foreach(json_object_get(a.json, "events"), i, r) ck_assert_str_eq(sget(r, "customer_id"), cid);
    json_decref(a.json);

    expect_status(console_api_customer_security, "customers/c_aaaaaaaaaaaaaaaaaaaaaaaa/security", NULL, NULL, 404);
    expect_status(console_api_customer_security, "customers/nope/security", NULL, NULL, 400);
}
END_TEST

/* ------------------------------------------------------------------ staff actions */

START_TEST(test_revoke_one_then_all)
{
    char cid[STORE_ID_LEN + 1], path[96], body[96], hex[17];
    uint8_t h1[32], h2[32], h3[32];
    json_t *s = NULL, *r;
    console_answer_t a;
    uint64_t gen;

    login("google", "g-4", "frank@example.com", "Frank", NULL, cid, NOW_MS - 9000);
    session(cid, "google", "g-4", "cookie", NOW_MS + 3600000, h1);
    session(cid, "google", "g-4", "bearer", NOW_MS + 3600000, h2);
    session(cid, "google", "g-4", "cookie", NOW_MS + 3600000, h3);
    snprintf(path, sizeof(path), "customers/%s/sessions/revoke", cid);

    static const char *const bad[] = {"{}",
                                      "{\"all\":false}",
                                      "{\"all\":1}",
                                      "{\"session\":12}",
                                      "{\"session\":\"zz\"}",
                                      "{\"session\":\"0123456789ABCDEF\"}",
                                      "{\"session\":\"0123456789abcdef\",\"all\":true}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        expect_status(console_api_revoke_sessions, path, NULL, bad[i], 400);
    expect_status(console_api_revoke_sessions, path, NULL, "{\"session\":\"0123456789abcdef\"}", 404);
    expect_status(console_api_revoke_sessions, "customers/c_aaaaaaaaaaaaaaaaaaaaaaaa/sessions/revoke", NULL,
                  "{\"all\":true}", 404);

    gen = store_session_generation(st);
    gw_hex(h2, 8, hex);
    snprintf(body, sizeof(body), "{\"session\":\"%s\"}", hex);
    a = call_ep(console_api_revoke_sessions, path, NULL, body);
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "revoked")), 1);
    json_decref(a.json);
    ck_assert_int_eq(store_session_get(st, h2, &s), GW_ENOTFOUND);
    ck_assert_int_eq(store_session_get(st, h1, &s), GW_OK);
    json_decref(s);
    ck_assert_uint_ne(store_session_generation(st), gen);
    r = last_record();
    ck_assert_str_eq(sget(r, "event"), "session_revoked");
    ck_assert_str_eq(sget(r, "actor"), "staff:google:alice@example.com");
    ck_assert_str_eq(sget(r, "customer_id"), cid);
    ck_assert_ptr_nonnull(strstr(sget(r, "detail"), hex));
    json_decref(r);

    gen = store_session_generation(st);
    a = call_ep(console_api_revoke_sessions, path, NULL, "{\"all\":true}");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "revoked")), 2);
    json_decref(a.json);
    ck_assert_int_eq(store_session_get(st, h1, &s), GW_ENOTFOUND);
    ck_assert_int_eq(store_session_get(st, h3, &s), GW_ENOTFOUND);
    ck_assert_uint_ne(store_session_generation(st), gen);
    /* nothing left: nothing revoked, and the attempt is on record */
    a = call_ep(console_api_revoke_sessions, path, NULL, "{\"all\":true}");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "revoked")), 0);
    json_decref(a.json);
    r = last_record();
    ck_assert_str_eq(sget(r, "event"), "console_revoke_sessions");
    ck_assert_str_eq(sget(r, "actor"), "staff:google:alice@example.com");
    json_decref(r);
}
END_TEST

START_TEST(test_unlink_refuses_the_last_identity)
{
    char cid[STORE_ID_LEN + 1], path[96];
    uint8_t h1[32], h2[32];
    json_t *r, *cust;
    console_answer_t a;

    login("google", "g-5", "gina@example.com", "Gina", NULL, cid, NOW_MS - 9000);
    login("facebook", "f-5", NULL, "Gina F", cid, cid, NOW_MS - 8000);
    session(cid, "facebook", "f-5", "bearer", NOW_MS + 3600000, h1);
    session(cid, "google", "g-5", "cookie", NOW_MS + 3600000, h2);
    snprintf(path, sizeof(path), "customers/%s/unlink", cid);
    expect_status(console_api_unlink, path, NULL, "{\"provider\":\"bad name\"}", 400);
    expect_status(console_api_unlink, path, NULL, "{\"provider\":[]}", 400);
    expect_status(console_api_unlink, path, NULL, "{\"provider\":\"twitter\"}", 404);
    expect_status(console_api_unlink, "customers/c_aaaaaaaaaaaaaaaaaaaaaaaa/unlink", NULL, "{\"provider\":\"google\"}",
                  404);

    a = call_ep(console_api_unlink, path, NULL, "{\"provider\":\"facebook\"}");
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(sget(a.json, "unlinked"), "facebook");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "sessions_ended")), 1);
    json_decref(a.json);
    r = last_record();
    ck_assert_str_eq(sget(r, "event"), "identity_unlinked");
    ck_assert_str_eq(sget(r, "actor"), "staff:google:alice@example.com");
    ck_assert_str_eq(sget(r, "customer_id"), cid);
    ck_assert_str_eq(sget(r, "provider"), "facebook");
    json_decref(r);
    ck_assert_int_eq(store_customer_get(st, cid, &cust), GW_OK);
    ck_assert_uint_eq(json_array_size(json_object_get(cust, "identities")), 1);
    json_decref(cust);

    a = call_ep(console_api_unlink, path, NULL, "{\"provider\":\"google\"}");
    ck_assert_int_eq(a.status, 409);
    ck_assert_str_eq(sget(a.json, "error"), "last_identity");
    json_decref(a.json);
}
END_TEST

START_TEST(test_erase_needs_the_matching_confirmation)
{
    char cid[STORE_ID_LEN + 1], path[96], body[96];
    uint8_t h1[32];
    json_t *r, *cust = NULL;
    console_answer_t a;

    login("google", "g-6", "hank@example.com", "Hank", NULL, cid, NOW_MS - 9000);
    session(cid, "google", "g-6", "cookie", NOW_MS + 3600000, h1);
    snprintf(path, sizeof(path), "customers/%s/erase", cid);
    expect_status(console_api_erase, path, NULL, "{}", 400);
    expect_status(console_api_erase, path, NULL, "{\"confirm\":true}", 400);
    expect_status(console_api_erase, path, NULL, "{\"confirm\":\"c_aaaaaaaaaaaaaaaaaaaaaaaa\"}", 409);
    expect_status(console_api_erase, path, NULL, "{\"confirm\":\"yes\"}", 409);
    ck_assert_int_eq(store_customer_get(st, cid, &cust), GW_OK);
    json_decref(cust);

    snprintf(body, sizeof(body), "{\"confirm\":\"%s\"}", cid);
    a = call_ep(console_api_erase, path, NULL, body);
    ck_assert_int_eq(a.status, 200);
    ck_assert(json_is_true(json_object_get(a.json, "erased")));
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "sessions_ended")), 1);
    json_decref(a.json);
    ck_assert_int_eq(store_customer_get(st, cid, &cust), GW_ENOTFOUND);
    r = last_record();
    ck_assert_str_eq(sget(r, "event"), "erasure");
    ck_assert_str_eq(sget(r, "actor"), "staff:google:alice@example.com");
    ck_assert_str_eq(sget(r, "customer_id"), cid);
    json_decref(r);
    expect_status(console_api_erase, path, NULL, body, 404);
}
END_TEST

/* ------------------------------------------------------------------ policies */

START_TEST(test_policies_and_explain)
{
    char cid[STORE_ID_LEN + 1], two[STORE_ID_LEN + 1], q[128];
    uint8_t h[32];
    console_answer_t a;
    json_t *p, *r;
    size_t i;

    a = call_ep(console_api_policies, "policies", NULL, NULL);
    ck_assert_int_eq(a.status, 200);
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "policies")), 2);
    json_array_foreach(json_object_get(a.json, "policies"), i, p)
    {
        if (strcmp(sget(p, "name"), "staff_only") == 0) {
            ck_assert_str_eq(sget(p, "description"), "people of example.com");
            r = json_array_get(json_object_get(p, "rules"), 0);
            ck_assert_str_eq(sget(r, "effect"), "allow");
            ck_assert(json_is_true(json_object_get(json_object_get(r, "conditions"), "email_verified")));
        } else {
            ck_assert_str_eq(sget(json_array_get(json_object_get(p, "rules"), 0), "effect"), "deny");
        }
    }
    ck_assert_uint_eq(json_array_size(json_object_get(a.json, "routes")), 3);
    r = json_array_get(json_object_get(a.json, "routes"), 2);
    ck_assert_str_eq(sget(r, "auth"), "none");
    ck_assert(json_is_null(json_object_get(r, "policy")));
    json_decref(a.json);

    login("google", "g-7", "ivy@example.com", "Ivy", NULL, cid, NOW_MS - 9000);
    login("google", "g-8", "jo@other.example", "Jo", NULL, two, NOW_MS - 9000);
    login("facebook", "f-8", "jo@fb.example", "Jo", two, two, NOW_MS - 8000);

    snprintf(q, sizeof(q), "customer=%s&route=staff", cid);
    a = call_ep(console_api_explain, "policies/explain", q, NULL);
    ck_assert(json_is_null(json_object_get(json_object_get(a.json, "facts"), "hd")));
    json_decref(a.json);
    /* hd comes from a session through the identity: it came from a signed ID token */
    session(cid, "google", "g-7", "cookie", NOW_MS + 3600000, h);
    a = call_ep(console_api_explain, "policies/explain", q, NULL);
    ck_assert_str_eq(sget(json_object_get(a.json, "facts"), "hd"), "example.com");
    ck_assert_str_eq(sget(json_object_get(a.json, "facts"), "email"), "ivy@example.com");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a.json, "facts"), "session_age_s")), 0);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(sget(a.json, "decision"), "allow");
    ck_assert_str_eq(sget(a.json, "policy"), "staff_only");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "rule")), 0);
    ck_assert_ptr_nonnull(strstr(sget(a.json, "explanation"), "decision: allow by rule 0"));
    json_decref(a.json);
    r = last_record();
    ck_assert_str_eq(sget(r, "event"), "console_explain");
    ck_assert_str_eq(sget(r, "actor"), "staff:google:alice@example.com");
    ck_assert_str_eq(sget(r, "customer_id"), cid);
    json_decref(r);

    snprintf(q, sizeof(q), "customer=%s&route=staff", two);
    a = call_ep(console_api_explain, "policies/explain", q, NULL);
    ck_assert_str_eq(sget(a.json, "decision"), "deny");
    ck_assert(json_is_null(json_object_get(a.json, "rule")));
    json_decref(a.json);
    snprintf(q, sizeof(q), "customer=%s&route=vip", two); /* latest sign-in: facebook; two identities */
    a = call_ep(console_api_explain, "policies/explain", q, NULL);
    ck_assert_str_eq(sget(a.json, "decision"), "allow");
    ck_assert_int_eq(json_integer_value(json_object_get(a.json, "rule")), 1);
    ck_assert_str_eq(sget(json_object_get(a.json, "facts"), "provider"), "facebook");
    json_decref(a.json);
    snprintf(q, sizeof(q), "customer=%s&route=vip", cid);
    a = call_ep(console_api_explain, "policies/explain", q, NULL);
    ck_assert_str_eq(sget(a.json, "decision"), "deny");
    json_decref(a.json);

    snprintf(q, sizeof(q), "customer=%s&route=nope", cid);
    expect_status(console_api_explain, "policies/explain", q, NULL, 400);
    snprintf(q, sizeof(q), "customer=%s", cid);
    expect_status(console_api_explain, "policies/explain", q, NULL, 400);
    expect_status(console_api_explain, "policies/explain", "route=staff", NULL, 400);
    expect_status(console_api_explain, "policies/explain", "customer=c_aaaaaaaaaaaaaaaaaaaaaaaa&route=staff", NULL,
                  404);
    expect_status(console_api_explain, "policies/explain", "customer=c_aaaaaaaaaaaaaaaaaaaaaaaa&route=st%0aaff", NULL,
                  400);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("console_security");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_audit_pages_newest_first_with_filters);
    tcase_add_test(tc, test_audit_period_waits_for_late_refusals);
    tcase_add_test(tc, test_audit_hostile_parameters);
    tcase_add_test(tc, test_audit_scan_is_bounded);
    tcase_add_test(tc, test_chain_verified_then_broken);
    tcase_add_test(tc, test_chain_resume_catches_a_rewritten_mark);
    tcase_add_test(tc, test_store_audit_walks_backwards);
    tcase_add_test(tc, test_store_customer_sessions_lists_only_theirs);
    tcase_add_test(tc, test_flow_in_order_with_durations);
    tcase_add_test(tc, test_customer_security_page);
    tcase_add_test(tc, test_revoke_one_then_all);
    tcase_add_test(tc, test_unlink_refuses_the_last_identity);
    tcase_add_test(tc, test_erase_needs_the_matching_confirmation);
    tcase_add_test(tc, test_policies_and_explain);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return jg_check_run(suite());
}
