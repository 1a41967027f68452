/*
 * Unit tests: the console's records of customers (console_marketer.c) with the real helpers
 * (console_util.c) and console_harness.c's stream (standing in for console.c's) against a real temporary store:
 * the JSON shapes of console/API.md, 400 on hostile parameters, 404, the views on record in the
 * audit trail before anything is shown, the CSV exports (quoting, the formula guard, filters,
 * part by part, a client that goes away), and a journey of 10,000 touchpoints paged exactly once.
 */
#include "console_api.h"
#include "console_harness.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1796644800000ULL /* 2026-12-07T12:00:00Z */
#define DAY_MS 86400000ULL

static char dir[64];
static store_t *st;
static console_ctx_t ctx;
static console_staff_t staff;
static char ann[STORE_ID_LEN + 1], bob[STORE_ID_LEN + 1];

static void login(const char *provider, const char *subject, const char *email, int verified, const char *name,
                  const char *link_to, char *cid)
{
    store_identity_t id = {provider, subject, email, verified, name, NULL};
    store_login_opts_t o = {1, NULL, link_to, "web"};
    store_login_info_t info;
    ck_assert_int_eq(store_login(st, &id, &o, NOW_MS - 20 * DAY_MS, cid, &info, NULL), GW_OK);
}

static void setup(void)
{
    static const uint8_t key[32] = {42};
    char other[STORE_ID_LEN + 1];

    jg_temp_store_open(dir, sizeof(dir), "jg-conrec", &st);
    store_audit_key(st, key);
    memset(&staff, 0, sizeof(staff));
    snprintf(staff.provider, sizeof(staff.provider), "google");
    snprintf(staff.email, sizeof(staff.email), "alice@staff.example");
    snprintf(staff.name, sizeof(staff.name), "Alice Analyst");
    staff.roles = CONSOLE_MARKETER;
    ctx.store = st;
    login("google", "g-ann", "ann@example.com", 1, "Ann Example", NULL, ann);
    login("facebook", "f-ann", "Ann.FB@example.com", 0, "Ann FB", ann, other);
    login("facebook", "f-bob", "bob@example.com", 0, "Bob Builder", NULL, bob);
    harness_gone_after = 0;
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

/* calls fn with the path "a/b/c" (segments split at '/') and the raw query */
static void run(console_endpoint_fn fn, const char *path, const char *query, console_answer_t *ans)
{
    static char buf[512];
    static const char *segs[8];
    console_call_t call;
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = strtok(buf, "/"); p != NULL && n < 8; p = strtok(NULL, "/"))
        segs[n++] = p;
    memset(&call, 0, sizeof(call));
    memset(ans, 0, sizeof(*ans));
    call.ctx = &ctx;
    call.staff = &staff;
    call.method = "GET";
    call.segs = segs;
    call.nsegs = n;
    call.query = query;
    call.query_len = strlen(query);
    call.request_id = "req-1";
    call.client = "192.0.2.1";
    call.user_agent = "test";
    call.now_ms = NOW_MS;
    fn(&call, ans);
}

/* the answer is a 400 naming the parameter */
static void expect_400(console_endpoint_fn fn, const char *path, const char *query, const char *param)
{
    console_answer_t ans;
    const char *msg;
    run(fn, path, query, &ans);
    ck_assert_msg(ans.status == 400, "%s?%s: status %d, not 400", path, query, ans.status);
    ck_assert_ptr_null(ans.stream);
    ck_assert_str_eq(json_string_value(json_object_get(ans.json, "error")), "invalid_parameter");
    msg = json_string_value(json_object_get(ans.json, "message"));
    ck_assert_ptr_nonnull(msg);
    ck_assert_msg(strncmp(msg, param, strlen(param)) == 0 && msg[strlen(param)] == ':', "%s?%s: \"%s\" names not %s",
                  path, query, msg, param);
    harness_answer_clear(&ans);
}

static void expect_404(console_endpoint_fn fn, const char *path, const char *query)
{
    console_answer_t ans;
    run(fn, path, query, &ans);
    ck_assert_msg(ans.status == 404, "%s?%s: status %d, not 404", path, query, ans.status);
    ck_assert_ptr_null(ans.stream);
    ck_assert_str_eq(json_string_value(json_object_get(ans.json, "error")), "not_found");
    harness_answer_clear(&ans);
}

/* the newest audit record (new reference), or NULL */
static int keep_last(json_t *rec, void *arg)
{
    json_t **last = arg;
    json_decref(*last);
    *last = json_incref(rec);
    return 0;
}

static json_t *last_audit(void)
{
    json_t *last = NULL;
    ck_assert_int_eq(store_audit_foreach(st, 0, keep_last, &last), GW_OK);
    return last;
}

struct count {
    const char *event;
    size_t n;
};

static int count_cb(json_t *rec, void *arg)
{
    struct count *c = arg;
    c->n += strcmp(json_string_value(json_object_get(rec, "event")), c->event) == 0;
    return 0;
}

static size_t audits(const char *event)
{
    struct count c = {event, 0};
    ck_assert_int_eq(store_audit_foreach(st, 0, count_cb, &c), GW_OK);
    return c.n;
}

/* one block of touchpoints: tps[i] for customer cids[i] */
static void append(store_tp_t *tps, size_t n)
{
    size_t cap = n * 1024 + 65536, len = 0;
    uint8_t *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; ++i) {
        size_t one = store_tp_encode(&tps[i], buf + len, cap - len);
        ck_assert_uint_gt(one, 0);
        len += one;
    }
    ck_assert_int_eq(store_touchpoints_append(st, buf, len, n), GW_OK);
    free(buf);
}

static void has_keys(json_t *obj, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; ++i)
        ck_assert_msg(json_object_get(obj, keys[i]) != NULL, "no \"%s\"", keys[i]);
}

/* ------------------------------------------------------------------ search */

START_TEST(test_search_finds_by_any_email_id_and_identity)
{
    static const char *const summary_keys[] = {"id",         "name",      "email", "providers", "channels",
                                               "first_seen", "last_seen", "stage", NULL};
    console_answer_t ans;
    json_t *c;
    size_t before = audits("console_view_profile");

    /* Bob signed in only with Facebook, which did not verify his address: found by it */
    run(console_api_customers_search, "customers", "q=BOB%40example.com", &ans);
    ck_assert_int_eq(ans.status, 0);
    ck_assert_uint_eq(json_array_size(json_object_get(ans.json, "customers")), 1);
    c = json_array_get(json_object_get(ans.json, "customers"), 0);
    has_keys(c, summary_keys);
    ck_assert_uint_eq(json_object_size(c), 8);
    ck_assert_str_eq(json_string_value(json_object_get(c, "id")), bob);
    ck_assert_str_eq(json_string_value(json_object_get(c, "name")), "Bob Builder");
    ck_assert_str_eq(json_string_value(json_object_get(c, "email")), "bob@example.com");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "providers"), 0)), "facebook");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "channels"), 0)), "web");
    ck_assert_str_eq(json_string_value(json_object_get(c, "first_seen")), "2026-11-17T12:00:00.000Z");
    ck_assert(json_is_null(json_object_get(c, "stage")));
    harness_answer_clear(&ans);

    /* Ann by the unverified address of her second identity, by id, and by provider:subject */
    run(console_api_customers_search, "customers", "q=ann.fb%40EXAMPLE.com", &ans);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(ans.json, "customers"), 0), "id")), ann);
    ck_assert_uint_eq(
        json_array_size(json_object_get(json_array_get(json_object_get(ans.json, "customers"), 0), "providers")), 2);
    harness_answer_clear(&ans);
    {
        char q[64];
        snprintf(q, sizeof(q), "q=%s&limit=5", ann);
        run(console_api_customers_search, "customers", q, &ans);
        ck_assert_uint_eq(json_array_size(json_object_get(ans.json, "customers")), 1);
        harness_answer_clear(&ans);
    }
    run(console_api_customers_search, "customers", "q=facebook%3Af-bob", &ans);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(ans.json, "customers"), 0), "id")), bob);
    harness_answer_clear(&ans);
    run(console_api_customers_search, "customers", "q=+nobody%40example.com+", &ans);
    ck_assert_int_eq(ans.status, 0);
    ck_assert_uint_eq(json_array_size(json_object_get(ans.json, "customers")), 0);
    harness_answer_clear(&ans);
    ck_assert_uint_eq(audits("console_view_profile"), before); /* a search is not a profile view */
}
END_TEST

START_TEST(test_search_refuses_hostile_parameters)
{
    char q[700];

    expect_400(console_api_customers_search, "customers", "", "q");
    expect_400(console_api_customers_search, "customers", "q=", "q");
    expect_400(console_api_customers_search, "customers", "q=+++", "q");
    expect_400(console_api_customers_search, "customers", "q=a%01b%40example.com", "q");
    expect_400(console_api_customers_search, "customers", "q=a%0ab", "q");
    expect_400(console_api_customers_search, "customers", "q=%ff%fe", "q"); /* not UTF-8 */
    expect_400(console_api_customers_search, "customers", "q=%zz", "q");
    memset(q, 'a', sizeof(q) - 1);
    memcpy(q, "q=", 2);
    q[sizeof(q) - 1] = '\0';
    expect_400(console_api_customers_search, "customers", q, "q");
    expect_400(console_api_customers_search, "customers", "q=x&limit=0", "limit");
    expect_400(console_api_customers_search, "customers", "q=x&limit=201", "limit");
    expect_400(console_api_customers_search, "customers", "q=x&limit=-1", "limit");
    expect_400(console_api_customers_search, "customers", "q=x&limit=1e3", "limit");
    expect_400(console_api_customers_search, "customers", "q=x&limit=99999999999999999999", "limit");
}
END_TEST

/* ------------------------------------------------------------------ profile */

/* rewrites a customer's stored record as the recorder keeps it now (channels, devices, stages, consent) */
static void enrich(const char *cid)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {STORE_ID_LEN, (void *)cid}, v;
    json_t *c;
    char *text;

    store_close(st);
    st = NULL;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", 0, &dbi), 0);
    ck_assert_int_eq(mdb_get(txn, dbi, &k, &v), 0);
    c = json_loadb(v.mv_data, v.mv_size, 0, NULL);
    ck_assert_ptr_nonnull(c);
    json_object_set_new(c, "channels",
                        json_pack("{s:{s:I,s:I}, s:{s:I,s:I}}", "mobile", "first_seen_ms",
                                  (json_int_t)(NOW_MS - 5 * DAY_MS), "last_seen_ms", (json_int_t)(NOW_MS - DAY_MS),
                                  "web", "first_seen_ms", (json_int_t)(NOW_MS - 20 * DAY_MS), "last_seen_ms",
                                  (json_int_t)(NOW_MS - 2 * DAY_MS)));
    json_object_set_new(c, "devices",
                        json_pack("{s:{s:I}, s:{s:I}}", "desktop", "last_seen_ms", (json_int_t)(NOW_MS - 2 * DAY_MS),
                                  "mobile", "last_seen_ms", (json_int_t)(NOW_MS - DAY_MS)));
    json_object_set_new(c, "stages_reached",
                        json_pack("{s:I, s:I}", "research", (json_int_t)(NOW_MS - 3 * DAY_MS), "need",
                                  (json_int_t)(NOW_MS - 20 * DAY_MS)));
    json_object_set_new(c, "stage", json_string("research"));
    json_object_set_new(c, "consent", json_pack("{s:s}", "analytics", "granted"));
    json_object_set_new(json_array_get(json_object_get(c, "identities"), 1), "linked_by", json_string("explicit_link"));
    text = json_dumps(c, JSON_COMPACT);
    v.mv_size = strlen(text);
    v.mv_data = text;
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(text);
    json_decref(c);
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    ctx.store = st;
}

START_TEST(test_profile_shape_and_view_on_record)
{
    static const char *const keys[] = {"id",        "name",  "email",          "picture",    "created",  "first_seen",
                                       "last_seen", "stage", "stages_reached", "identities", "channels", "devices",
                                       "consent",   NULL};
    static const char *const ident_keys[] = {"provider",  "subject",    "email", "email_verified", "name", "linked_at",
                                             "linked_by", "last_login", NULL};
    static const uint8_t key[32] = {42};
    char path[64];
    console_answer_t ans;
    json_t *p, *ids, *rec;

    enrich(ann);
    store_audit_key(st, key);
    snprintf(path, sizeof(path), "customers/%s", ann);
    run(console_api_customer, path, "", &ans);
    ck_assert_int_eq(ans.status, 0);
    p = ans.json;
    has_keys(p, keys);
    ck_assert_str_eq(json_string_value(json_object_get(p, "name")), "Ann FB");           /* the latest sign-in's name */
    ck_assert_str_eq(json_string_value(json_object_get(p, "email")), "ann@example.com"); /* the verified one */
    ck_assert_str_eq(json_string_value(json_object_get(p, "created")), "2026-11-17T12:00:00.000Z");
    ck_assert_str_eq(json_string_value(json_object_get(p, "stage")), "research");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "stages_reached"), 0)), "need");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "stages_reached"), 1)), "research");
    ids = json_object_get(p, "identities");
    ck_assert_uint_eq(json_array_size(ids), 2);
    has_keys(json_array_get(ids, 0), ident_keys);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 0), "linked_by")), "first_sign_in");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 1), "linked_by")), "explicit_link");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 1), "email")), "Ann.FB@example.com");
    ck_assert(json_is_false(json_object_get(json_array_get(ids, 1), "email_verified")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ids, 1), "linked_at")),
                     "2026-11-17T12:00:00.000Z");
    /* channels by first seen, with their times; devices latest first */
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(p, "channels"), 0), "channel")),
                     "web");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(p, "channels"), 1), "last_seen")),
                     "2026-12-06T12:00:00.000Z");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(p, "devices"), 0), "device")),
                     "mobile");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p, "consent"), "analytics")), "granted");
    harness_answer_clear(&ans);

    /* on record: who looked, at whom */
    rec = last_audit();
    ck_assert_str_eq(json_string_value(json_object_get(rec, "event")), "console_view_profile");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "actor")), "staff:google:alice@staff.example");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "customer_id")), ann);
    json_decref(rec);
    /* a customer known from a sign-in only: its channel with the sign-in's time; no devices; consent null */
    snprintf(path, sizeof(path), "customers/%s", bob);
    run(console_api_customer, path, "", &ans);
    ck_assert(json_is_string(json_object_get(json_array_get(json_object_get(ans.json, "channels"), 0), "first_seen")));
    ck_assert_uint_eq(json_array_size(json_object_get(ans.json, "devices")), 0);
    ck_assert(json_is_null(json_object_get(ans.json, "consent")));
    harness_answer_clear(&ans);
}
END_TEST

START_TEST(test_profile_refusals_and_audit_failure)
{
    char path[64];
    console_answer_t ans;
    size_t views = audits("console_view_profile");

    expect_400(console_api_customer, "customers/c_bad", "", "customer");
    expect_400(console_api_customer, "customers/c_AAAAAAAAAAAAAAAAAAAAAAAA", "", "customer");
    expect_400(console_api_customer, "customers/c_aaaaaaaaaaaaaaaaaaaaaaa1", "", "customer");
    expect_404(console_api_customer, "customers/c_aaaaaaaaaaaaaaaaaaaaaaaa", "");
    ck_assert_uint_eq(audits("console_view_profile"), views); /* nothing shown, nothing recorded */

    /* the view cannot be recorded (a store that refuses writes): 503, and nothing of Ann is shown */
    store_close(st);
    ck_assert_int_eq(store_open_readonly(dir, &st), GW_OK);
    ctx.store = st;
    snprintf(path, sizeof(path), "customers/%s", ann);
    run(console_api_customer, path, "", &ans);
    ck_assert_int_eq(ans.status, 503);
    ck_assert_ptr_null(json_object_get(ans.json, "identities"));
    {
        char *text = json_dumps(ans.json, 0);
        ck_assert_ptr_null(strstr(text, "Ann"));
        free(text);
    }
    harness_answer_clear(&ans);
    snprintf(path, sizeof(path), "customers/%s/journey", ann);
    run(console_api_journey, path, "", &ans);
    ck_assert_int_eq(ans.status, 503);
    ck_assert_ptr_null(json_object_get(ans.json, "touchpoints"));
    harness_answer_clear(&ans);
    run(console_api_export, "export/customers.csv", "q=ann%40example.com", &ans);
    ck_assert_int_eq(ans.status, 503);
    ck_assert_ptr_null(ans.stream);
    harness_answer_clear(&ans);
}
END_TEST

/* ------------------------------------------------------------------ journey */

#define JOURNEY_N 10000

START_TEST(test_journey_pages_10000_touchpoints_exactly_once_in_order)
{
    static store_tp_t tps[JOURNEY_N];
    static char idbuf[JOURNEY_N][16];
    char path[96], query[96];
    const char *next = NULL;
    char cursor[64] = "";
    size_t seen = 0, calls = 0, views = audits("console_view_journey");
    uint64_t merged = 0;

    /* three touchpoints a millisecond: the cursor must tell them apart by sequence */
    for (size_t i = 0; i < JOURNEY_N; ++i) {
        memset(&tps[i], 0, sizeof(tps[i]));
        snprintf(idbuf[i], sizeof(idbuf[i]), "tp_%05zu", i);
        tps[i].id = idbuf[i];
        tps[i].customer_id = ann;
        tps[i].occurred_at_ms = NOW_MS - 10 * DAY_MS + i / 3;
        tps[i].received_at_ms = tps[i].occurred_at_ms + 5;
        tps[i].channel = i % 2 ? "mobile" : "web";
        tps[i].touchpoint = "viewed";
        tps[i].status = 200;
    }
    /* the first half merged into chunks, the second still in the log: pages read across both */
    append(tps, JOURNEY_N / 2);
    ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    ck_assert_uint_eq(merged, JOURNEY_N / 2);
    for (size_t i = JOURNEY_N / 2; i < JOURNEY_N; i += 1000)
        append(tps + i, 1000);
    snprintf(path, sizeof(path), "customers/%s/journey", ann);
    do {
        console_answer_t ans;
        json_t *list, *tp;
        size_t i;
        snprintf(query, sizeof(query), "limit=%d%s%s", calls % 2 ? 777 : 2000, cursor[0] ? "&after=" : "", cursor);
        run(console_api_journey, path, query, &ans);
        ck_assert_int_eq(ans.status, 0);
        ++calls;
        list = json_object_get(ans.json, "touchpoints");
        ck_assert_uint_le(json_array_size(list), calls % 2 ? 2000 : 777);
        json_array_foreach(list, i, tp)
        {
            ck_assert_uint_lt(seen, JOURNEY_N);
            ck_assert_str_eq(json_string_value(json_object_get(tp, "id")), idbuf[seen]);
            ++seen;
        }
        next = json_string_value(json_object_get(ans.json, "next"));
        ck_assert(next != NULL || json_is_null(json_object_get(ans.json, "next")));
        snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
        harness_answer_clear(&ans);
    } while (cursor[0] != '\0' && calls < 100);
    ck_assert_uint_eq(seen, JOURNEY_N);
    ck_assert_uint_eq(audits("console_view_journey"), views + calls); /* once per call */
    {
        /* the default page is 500 */
        console_answer_t ans;
        run(console_api_journey, path, "", &ans);
        ck_assert_uint_eq(json_array_size(json_object_get(ans.json, "touchpoints")), 500);
        ck_assert(json_is_string(json_object_get(ans.json, "next")));
        harness_answer_clear(&ans);
    }
}
END_TEST

START_TEST(test_journey_fields_and_anonymous)
{
    static const char *const keys[] = {"id",         "occurred_at",   "received_at", "channel",    "touchpoint",
                                       "stage",      "route",         "method",      "status",     "device",
                                       "provider",   "source",        "session",     "visit_id",   "visit_start",
                                       "visitor_id", "referrer_host", "utm_source",  "utm_medium", "utm_campaign",
                                       "utm_term",   "utm_content",   "click_id",    "attributes", NULL};
    static const char extra[] = "{\"status\":\"resolved\",\"attributes\":{\"agent\":\"42\"}}";
    store_tp_t tp[3];
    char path[96];
    console_answer_t ans;
    json_t *list, *a, *b, *c, *rec;

    memset(tp, 0, sizeof(tp));
    /* before sign-in: a visitor's touchpoint, joined to Ann at sign-in (it keeps its visitor id) */
    tp[0].id = "tp_anon";
    tp[0].customer_id = ann;
    tp[0].visitor_id = "v_0123456789abcdef";
    tp[0].occurred_at_ms = NOW_MS - 3 * DAY_MS;
    tp[0].received_at_ms = NOW_MS - 3 * DAY_MS + 7;
    tp[0].channel = "web";
    tp[0].touchpoint = "viewed pricing";
    tp[0].stage = "research";
    tp[0].route = "site";
    tp[0].method = "GET";
    tp[0].status = 200;
    tp[0].device = "desktop";
    tp[0].source = "proxy";
    tp[0].visit_id = "vis_1";
    tp[0].visit_start = 1;
    tp[0].click_id = 2;
    tp[0].referrer_host = "www.google.com";
    tp[0].utm_source = "google";
    tp[0].utm_medium = "cpc";
    tp[0].utm_campaign = "winter";
    tp[1] = tp[0];
    tp[1].id = "tp_signed";
    tp[1].visitor_id = NULL;
    tp[1].visit_start = 0;
    tp[1].click_id = 0;
    tp[1].referrer_host = tp[1].utm_source = tp[1].utm_medium = tp[1].utm_campaign = NULL;
    tp[1].occurred_at_ms += 1000;
    tp[1].provider = "google";
    tp[1].session = "s_abc";
    tp[2] = tp[1];
    tp[2].id = "tp_call";
    tp[2].occurred_at_ms += 1000;
    tp[2].channel = "contact_centre";
    tp[2].status = 0;
    tp[2].source = "callcentre";
    tp[2].extra = extra;
    tp[2].extra_len = strlen(extra);
    tp[2].route = "not \xff UTF-8"; /* a damaged record shows as null, not as a failed page */
    append(tp, 3);

    snprintf(path, sizeof(path), "customers/%s/journey", ann);
    run(console_api_journey, path, "limit=10", &ans);
    ck_assert_int_eq(ans.status, 0);
    ck_assert(json_is_null(json_object_get(ans.json, "next")));
    list = json_object_get(ans.json, "touchpoints");
    ck_assert_uint_eq(json_array_size(list), 3);
    a = json_array_get(list, 0);
    b = json_array_get(list, 1);
    c = json_array_get(list, 2);
    has_keys(a, keys);
    has_keys(b, keys);
    ck_assert(json_is_true(json_object_get(a, "anonymous")));
    ck_assert_ptr_null(json_object_get(b, "anonymous"));
    ck_assert_str_eq(json_string_value(json_object_get(a, "occurred_at")), "2026-12-04T12:00:00.000Z");
    ck_assert_str_eq(json_string_value(json_object_get(a, "received_at")), "2026-12-04T12:00:00.007Z");
    ck_assert_str_eq(json_string_value(json_object_get(a, "utm_campaign")), "winter");
    ck_assert(json_is_true(json_object_get(a, "click_id")));
    ck_assert(json_is_true(json_object_get(a, "visit_start")));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "status")), 200);
    ck_assert(json_is_null(json_object_get(b, "utm_campaign")));
    ck_assert(json_is_null(json_object_get(b, "click_id")));
    ck_assert_str_eq(json_string_value(json_object_get(b, "session")), "s_abc");
    ck_assert_str_eq(json_string_value(json_object_get(c, "status")), "resolved");
    ck_assert(json_is_null(json_object_get(c, "route")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "attributes"), "agent")), "42");
    harness_answer_clear(&ans);
    rec = last_audit();
    ck_assert_str_eq(json_string_value(json_object_get(rec, "event")), "console_view_journey");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "actor")), "staff:google:alice@staff.example");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "customer_id")), ann);
    json_decref(rec);
}
END_TEST

START_TEST(test_journey_refuses_hostile_parameters)
{
    char path[96];
    size_t views = audits("console_view_journey");

    snprintf(path, sizeof(path), "customers/%s/journey", ann);
    expect_400(console_api_journey, path, "after=zz", "after");
    expect_400(console_api_journey, path, "after=0000000000000000000000000000000", "after");   /* 31 */
    expect_400(console_api_journey, path, "after=000000000000000000000000000000000", "after"); /* 33 */
    expect_400(console_api_journey, path, "after=0000000000000000000000000000000G", "after");
    expect_400(console_api_journey, path, "after=000000000000000%0a0000000000000000", "after");
    expect_400(console_api_journey, path, "limit=2001", "limit");
    expect_400(console_api_journey, path, "limit=0", "limit");
    expect_400(console_api_journey, path, "limit=%2B5", "limit");
    expect_400(console_api_journey, "customers/c_x/journey", "", "customer");
    expect_404(console_api_journey, "customers/c_aaaaaaaaaaaaaaaaaaaaaaaa/journey", "");
    ck_assert_uint_eq(audits("console_view_journey"), views);
}
END_TEST

/* ------------------------------------------------------------------ exports */

/* the lines of a CSV text (CRLF-separated; a quoted cell may hold a line break) */
static size_t csv_rows(const char *s)
{
    size_t rows = 0;
    int quoted = 0;
    for (; *s != '\0'; ++s) {
        if (*s == '"')
            quoted = !quoted;
        else if (!quoted && s[0] == '\r' && s[1] == '\n')
            ++rows;
    }
    return rows;
}

START_TEST(test_export_touchpoints_csv)
{
    static const char extra[] = "{\"attributes\":{\"note\":\"=1+1\"}}";
    store_tp_t tp[4];
    console_answer_t ans;
    char q[160];
    const char *csv;
    json_t *rec;

    memset(tp, 0, sizeof(tp));
    tp[0].id = "tp_a";
    tp[0].customer_id = ann;
    tp[0].occurred_at_ms = NOW_MS - 2 * DAY_MS;
    tp[0].received_at_ms = NOW_MS - 2 * DAY_MS + 3;
    tp[0].channel = "web";
    tp[0].touchpoint = "said \"hi\", then left";
    tp[0].stage = "need";
    tp[0].status = 200;
    tp[0].visit_start = 1;
    tp[0].click_id = 1;
    tp[0].utm_campaign = "=HYPERLINK(\"http://evil.example\")";
    tp[0].utm_source = "@sum";
    tp[0].utm_medium = "-2+3";
    tp[0].utm_term = "+cmd";
    tp[1] = tp[0];
    tp[1].id = "tp_b";
    tp[1].visit_start = 0;
    tp[1].utm_campaign = tp[1].utm_source = tp[1].utm_medium = tp[1].utm_term = NULL;
    tp[1].channel = "mobile";
    tp[1].touchpoint = "line\nbreak";
    tp[1].stage = "convert";
    tp[1].extra = extra;
    tp[1].extra_len = strlen(extra);
    tp[2] = tp[1];
    tp[2].id = "tp_old";
    tp[2].occurred_at_ms = NOW_MS - 60 * DAY_MS; /* before the default period */
    tp[3] = tp[1];
    tp[3].id = "tp_bob";
    tp[3].customer_id = bob;
    tp[3].touchpoint = "bob";
    append(tp, 4);

    run(console_api_export, "export/touchpoints.csv", "", &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_ptr_nonnull(ans.stream);
    ck_assert_ptr_null(ans.json);
    ck_assert_str_eq(ans.stream->filename, "touchpoints.csv");
    ck_assert_ptr_nonnull(strstr(ans.stream->content_type, "text/csv"));
    csv = ans.stream->data;
    ck_assert_msg(strncmp(csv,
                          "id,customer_id,occurred_at,received_at,channel,touchpoint,stage,route,method,status,device,"
                          "provider,source,session,visit_id,visit_start,visitor_id,anonymous,referrer_host,utm_source,"
                          "utm_medium,utm_campaign,utm_term,utm_content,click_id,attributes\r\n",
                          230) == 0,
                  "header: %.300s", csv);
    ck_assert_uint_eq(csv_rows(csv), 4); /* header + tp_a, tp_b, tp_bob */
    ck_assert_ptr_null(strstr(csv, "tp_old"));
    /* RFC 4180 quoting; ISO times; the formula guard */
    ck_assert_ptr_nonnull(strstr(csv, ",2026-12-05T12:00:00.000Z,2026-12-05T12:00:00.003Z,web,"
                                      "\"said \"\"hi\"\", then left\",need,"));
    ck_assert_ptr_nonnull(strstr(csv, ",\"line\nbreak\","));
    ck_assert_ptr_nonnull(strstr(csv, ",\"'@sum\",\"'-2+3\",\"'=HYPERLINK(\"\"http://evil.example\"\")\",\"'+cmd\","));
    ck_assert_ptr_nonnull(strstr(csv, ",\"{\"\"note\"\":\"\"=1+1\"\"}\"\r\n"));
    ck_assert_ptr_null(strstr(csv, ",=HYPERLINK"));
    ck_assert_ptr_null(strstr(csv, ",@sum"));
    harness_answer_clear(&ans);
    rec = last_audit();
    ck_assert_str_eq(json_string_value(json_object_get(rec, "event")), "console_export");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "actor")), "staff:google:alice@staff.example");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(rec, "detail")), "from=2026-11-08 to=2026-12-07"));
    json_decref(rec);

    /* filters: channel, stage, customer, period */
    run(console_api_export, "export/touchpoints.csv", "channel=mobile&stage=convert", &ans);
    ck_assert_uint_eq(csv_rows(ans.stream->data), 3); /* tp_b and tp_bob */
    ck_assert_ptr_null(strstr(ans.stream->data, "tp_a"));
    harness_answer_clear(&ans);
    snprintf(q, sizeof(q), "customer=%s&from=2026-09-01&to=2026-12-07", ann);
    run(console_api_export, "export/touchpoints.csv", q, &ans);
    ck_assert_uint_eq(csv_rows(ans.stream->data), 4); /* tp_old, tp_a, tp_b */
    ck_assert_ptr_null(strstr(ans.stream->data, "tp_bob"));
    ck_assert_ptr_nonnull(strstr(ans.stream->data, "tp_old"));
    harness_answer_clear(&ans);
    rec = last_audit();
    ck_assert_str_eq(json_string_value(json_object_get(rec, "customer_id")), ann);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(rec, "detail")), ann));
    json_decref(rec);
    run(console_api_export, "export/touchpoints.csv", "from=2026-12-06&to=2026-12-06", &ans);
    ck_assert_uint_eq(csv_rows(ans.stream->data), 1); /* the header only */
    harness_answer_clear(&ans);
}
END_TEST

START_TEST(test_export_refuses_hostile_parameters)
{
    char q[300];
    size_t exports = audits("console_export");

    expect_400(console_api_export, "export/touchpoints.csv", "stage=nirvana", "stage");
    expect_400(console_api_export, "export/touchpoints.csv", "from=2026-13-01", "from");
    expect_400(console_api_export, "export/touchpoints.csv", "from=2026-02-30", "from");
    expect_400(console_api_export, "export/touchpoints.csv", "to=yesterday", "to");
    expect_400(console_api_export, "export/touchpoints.csv", "from=2020-01-01&to=2026-01-01", "to");
    expect_400(console_api_export, "export/touchpoints.csv", "channel=we%00b", "channel");
    memset(q, 'w', sizeof(q) - 1);
    memcpy(q, "channel=", 8);
    q[sizeof(q) - 1] = '\0';
    expect_400(console_api_export, "export/touchpoints.csv", q, "channel");
    expect_400(console_api_export, "export/touchpoints.csv", "customer=c_nope", "customer");
    expect_400(console_api_export, "export/customers.csv", "q=%1b%5b31m", "q");
    expect_404(console_api_export, "export/touchpoints.csv", "customer=c_aaaaaaaaaaaaaaaaaaaaaaaa");
    expect_404(console_api_export, "export/audit.csv", "");
    ck_assert_uint_eq(audits("console_export"), exports);
}
END_TEST

#define MANY_CUSTOMERS 300
#define TP_EACH 40

START_TEST(test_export_part_by_part_every_touchpoint_once)
{
    static char cids[MANY_CUSTOMERS][STORE_ID_LEN + 1];
    static char ids[MANY_CUSTOMERS * TP_EACH][24];
    static store_tp_t tps[MANY_CUSTOMERS * TP_EACH];
    console_answer_t ans;
    size_t n = 0;
    uint64_t merged;

    for (int c = 0; c < MANY_CUSTOMERS; ++c) {
        char sub[16];
        snprintf(sub, sizeof(sub), "m%d", c);
        login("google", sub, NULL, 0, "Many", NULL, cids[c]);
        for (int k = 0; k < TP_EACH; ++k, ++n) {
            memset(&tps[n], 0, sizeof(tps[n]));
            snprintf(ids[n], sizeof(ids[n]), "tp_%03d_%02d_", c, k);
            tps[n].id = ids[n];
            tps[n].customer_id = cids[c];
            tps[n].occurred_at_ms = NOW_MS - DAY_MS - (uint64_t)k * 60000;
            tps[n].received_at_ms = tps[n].occurred_at_ms;
            tps[n].channel = "web";
            tps[n].touchpoint = "a touchpoint with a fairly long name to fill the export";
        }
    }
    append(tps, n / 2);
    ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    append(tps + n / 2, n - n / 2);
    run(console_api_export, "export/touchpoints.csv", "", &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_uint_eq(csv_rows(ans.stream->data), n + 1);
    for (size_t i = 0; i < n; ++i) {
        const char *at = strstr(ans.stream->data, ids[i]);
        ck_assert_msg(at != NULL, "%s missing", ids[i]);
        ck_assert_msg(strstr(at + 1, ids[i]) == NULL, "%s twice", ids[i]);
    }
    /* written as it is read, in chunks of at most 64 KB, not as one block at the end */
    ck_assert_uint_gt(ans.stream->writes, 5);
    ck_assert_uint_le(ans.stream->largest_write, 64 * 1024);
    harness_answer_clear(&ans);

    /* every customer, in parts too */
    run(console_api_export, "export/customers.csv", "", &ans);
    ck_assert_uint_eq(csv_rows(ans.stream->data), MANY_CUSTOMERS + 2 + 1);
    for (int c = 0; c < MANY_CUSTOMERS; ++c)
        ck_assert_ptr_nonnull(strstr(ans.stream->data, cids[c]));
    harness_answer_clear(&ans);

    /* the client goes away after the first part: the export stops at the next write */
    harness_gone_after = 1;
    run(console_api_export, "export/touchpoints.csv", "", &ans);
    ck_assert_uint_eq(ans.stream->writes, 1);
    ck_assert_uint_eq(ans.stream->refused, 1);
    harness_answer_clear(&ans);
}
END_TEST

START_TEST(test_export_customers_csv)
{
    char other[STORE_ID_LEN + 1];
    console_answer_t ans;
    const char *csv;
    json_t *rec;

    login("google", "g-eve", "eve@example.com", 1, "=HYPERLINK(\"x\")", NULL, other);
    login("google", "g-sm", "smith@example.com", 1, "Smith, \"J\"", NULL, other);
    run(console_api_export, "export/customers.csv", "q=BOB%40example.com", &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_str_eq(ans.stream->filename, "customers.csv");
    csv = ans.stream->data;
    ck_assert(strncmp(csv,
                      "id,name,email,email_verified,picture,created,first_seen,last_seen,stage,stages_reached,"
                      "providers,identity_emails,channels,devices,consent,attributes\r\n",
                      150) == 0);
    ck_assert_uint_eq(csv_rows(csv), 2);
    ck_assert_ptr_nonnull(strstr(csv, bob));
    ck_assert_ptr_nonnull(strstr(csv, ",Bob Builder,bob@example.com,false,,2026-11-17T12:00:00.000Z,"));
    harness_answer_clear(&ans);
    rec = last_audit();
    ck_assert_str_eq(json_string_value(json_object_get(rec, "event")), "console_export");
    ck_assert_str_eq(json_string_value(json_object_get(rec, "customer_id")), bob);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "detail")), "customers.csv q=BOB@example.com");
    json_decref(rec);

    run(console_api_export, "export/customers.csv", "", &ans);
    csv = ans.stream->data;
    ck_assert_uint_eq(csv_rows(csv), 5);
    ck_assert_ptr_nonnull(strstr(csv, ",\"'=HYPERLINK(\"\"x\"\")\",eve@example.com,true,"));
    ck_assert_ptr_nonnull(strstr(csv, ",\"Smith, \"\"J\"\"\",smith@example.com,"));
    ck_assert_ptr_nonnull(strstr(csv, ",google; facebook,ann@example.com; Ann.FB@example.com,web,"));
    harness_answer_clear(&ans);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("console_records");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_search_finds_by_any_email_id_and_identity);
    tcase_add_test(tc, test_search_refuses_hostile_parameters);
    tcase_add_test(tc, test_profile_shape_and_view_on_record);
    tcase_add_test(tc, test_profile_refusals_and_audit_failure);
    tcase_add_test(tc, test_journey_pages_10000_touchpoints_exactly_once_in_order);
    tcase_add_test(tc, test_journey_fields_and_anonymous);
    tcase_add_test(tc, test_journey_refuses_hostile_parameters);
    tcase_add_test(tc, test_export_touchpoints_csv);
    tcase_add_test(tc, test_export_refuses_hostile_parameters);
    tcase_add_test(tc, test_export_part_by_part_every_touchpoint_once);
    tcase_add_test(tc, test_export_customers_csv);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
