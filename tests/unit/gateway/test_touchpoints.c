/*
 * Unit tests: touchpoints in the store — the record format, the log and its merge into per-customer
 * chunks, reads across both, erasure, retention, idempotent ingestion, the format 2 -> 3 migration,
 * and the sessions-removed generation.
 */
#include "store.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_ID_NUL 35 /* 30-byte header, the id's length byte, "tp_1", then its NUL */

static char dir[64];
static store_t *st;
static char cust[3][STORE_ID_LEN + 1];

static void setup(void)
{
    store_login_info_t info;
    jg_temp_store_open(dir, sizeof(dir), "jg-tp", &st);
    for (int i = 0; i < 3; ++i) {
        char sub[8];
        store_identity_t id = {"google", sub, NULL, 0, NULL, NULL};
        store_login_opts_t o = {0, NULL, NULL, "web"};
        snprintf(sub, sizeof(sub), "s%d", i);
        ck_assert_int_eq(store_login(st, &id, &o, 1000, cust[i], &info, NULL), GW_OK);
    }
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

/* appends one block: touchpoint k of customer c at time at (channel by k) */
static void append(const int *c, const uint64_t *at, size_t n)
{
    uint8_t buf[64 * 1024];
    size_t len = 0;
    for (size_t i = 0; i < n; ++i) {
        char id[32], name[32];
        store_tp_t tp;
        memset(&tp, 0, sizeof(tp));
        snprintf(id, sizeof(id), "tp_%llu", (unsigned long long)at[i]);
        snprintf(name, sizeof(name), "t%llu", (unsigned long long)at[i]);
        tp.id = id;
        tp.customer_id = cust[c[i]];
        tp.occurred_at_ms = at[i];
        tp.received_at_ms = at[i] + 1;
        tp.channel = at[i] % 2 ? "mobile" : "web";
        tp.touchpoint = name;
        tp.status = 200;
        len += store_tp_encode(&tp, buf + len, sizeof(buf) - len);
    }
    ck_assert_int_eq(store_touchpoints_append(st, buf, len, n), GW_OK);
}

struct seen {
    uint64_t at[256];
    char cid[256][STORE_ID_LEN + 1];
    size_t n, stop_after;
};

static int collect(const store_tp_t *tp, void *arg)
{
    struct seen *s = arg;
    ck_assert_uint_lt(s->n, 256);
    s->at[s->n] = tp->occurred_at_ms;
    snprintf(s->cid[s->n], sizeof(s->cid[0]), "%s", tp->customer_id);
    ck_assert_uint_eq(tp->status, 200);
    ck_assert_str_eq(tp->channel, tp->occurred_at_ms % 2 ? "mobile" : "web");
    ++s->n;
    return s->stop_after != 0 && s->n == s->stop_after;
}

static struct seen journey(int c, uint64_t since)
{
    struct seen s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(store_journey(st, cust[c], since, collect, &s), GW_OK);
    return s;
}

START_TEST(test_tp_record_round_trip)
{
    store_tp_t a, b;
    uint8_t buf[STORE_TP_RECORD_MAX];
    char long_str[300];
    size_t n;

    memset(&a, 0, sizeof(a));
    a.id = "tp_1";
    a.customer_id = "c_aaaaaaaaaaaaaaaaaaaaaaaa";
    a.occurred_at_ms = 1700000000123ULL;
    a.received_at_ms = 1700000000456ULL;
    a.seq = 42;
    a.status = 404;
    a.click_id = 2;
    a.visit_start = 1;
    a.channel = "web";
    a.touchpoint = "checkout";
    a.utm_source = "news";
    a.extra = "{\"attributes\":{\"x\":1}}";
    a.extra_len = strlen(a.extra);
    n = store_tp_encode(&a, buf, sizeof(buf));
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(store_tp_decode(buf, n, &b), n);
    ck_assert_str_eq(b.id, "tp_1");
    ck_assert_str_eq(b.customer_id, a.customer_id);
    ck_assert_uint_eq(b.occurred_at_ms, a.occurred_at_ms);
    ck_assert_uint_eq(b.received_at_ms, a.received_at_ms);
    ck_assert_uint_eq(b.seq, 42);
    ck_assert_int_eq(b.status, 404);
    ck_assert_int_eq(b.click_id, 2);
    ck_assert_int_eq(b.visit_start, 1);
    ck_assert_str_eq(b.touchpoint, "checkout");
    ck_assert_str_eq(b.utm_source, "news");
    ck_assert_ptr_null(b.stage);
    ck_assert_ptr_null(b.visitor_id);
    ck_assert_uint_eq(b.extra_len, a.extra_len);
    {
        json_t *j = store_tp_json(&b);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "attributes"), "x")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(j, "utm_source")), "news");
        ck_assert(json_is_true(json_object_get(j, "click_id")));
        ck_assert(json_is_true(json_object_get(j, "visit_start")));
        ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 404);
        /* times in ISO 8601 UTC with milliseconds, as console/API.md has them */
        ck_assert_str_eq(json_string_value(json_object_get(j, "occurred_at")), "2023-11-14T22:13:20.123Z");
        ck_assert_str_eq(json_string_value(json_object_get(j, "received_at")), "2023-11-14T22:13:20.456Z");
        json_decref(j);
    }
    /* truncated or corrupted records are refused, never read past their end */
    for (size_t cut = 0; cut < n; ++cut)
        ck_assert_uint_eq(store_tp_decode(buf, cut, &b), 0);
    buf[REC_ID_NUL] ^= 0xff; /* the id's NUL gone */
    ck_assert_uint_eq(store_tp_decode(buf, n, &b), 0);
    /* too long: refused, not truncated */
    memset(long_str, 'x', sizeof(long_str) - 1);
    long_str[sizeof(long_str) - 1] = '\0';
    a.touchpoint = long_str;
    ck_assert_uint_eq(store_tp_encode(&a, buf, sizeof(buf)), 0);
    a.touchpoint = "ok";
    ck_assert_uint_eq(store_tp_encode(&a, buf, 20), 0);
}
END_TEST

START_TEST(test_tp_log_and_chunks_read_in_time_order)
{
    int c1[] = {0, 1, 0, 0, 2};
    uint64_t t1[] = {500, 10, 100, 300, 7};
    int c2[] = {0, 1, 0};
    uint64_t t2[] = {200, 5, 400};
    uint64_t unmerged = 0, merged = 0;
    struct seen s;

    append(c1, t1, 5);
    ck_assert_int_eq(store_touchpoints_unmerged(st, &unmerged), GW_OK);
    ck_assert_uint_eq(unmerged, 5);
    /* in the log only */
    s = journey(0, 0);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_uint_eq(s.at[0], 100);
    ck_assert_uint_eq(s.at[2], 500);
    ck_assert_str_eq(s.cid[0], cust[0]);
    ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    ck_assert_uint_eq(merged, 5);
    ck_assert_int_eq(store_touchpoints_unmerged(st, &unmerged), GW_OK);
    ck_assert_uint_eq(unmerged, 0);
    /* part merged, part in the log, earlier times arriving later */
    append(c2, t2, 3);
    s = journey(0, 0);
    ck_assert_uint_eq(s.n, 5);
    for (size_t i = 0; i < 5; ++i)
        ck_assert_uint_eq(s.at[i], 100 * (i + 1));
    s = journey(0, 250);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_uint_eq(s.at[0], 300);
    s = journey(1, 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_uint_eq(s.at[0], 5);
    /* a callback that stops */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    ck_assert_int_eq(store_journey(st, cust[0], 0, collect, &s), GW_OK);
    ck_assert_uint_eq(s.n, 2);
    /* everything, customer by customer, each in time order, merged or not */
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(store_touchpoints_foreach(st, 0, collect, &s), GW_OK);
    ck_assert_uint_eq(s.n, 8);
    for (size_t i = 1; i < s.n; ++i) {
        int c = strcmp(s.cid[i - 1], s.cid[i]);
        ck_assert_int_le(c, 0);
        if (c == 0)
            ck_assert_uint_lt(s.at[i - 1], s.at[i]);
    }
    /* and the same after merging everything */
    ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    {
        struct seen again;
        memset(&again, 0, sizeof(again));
        ck_assert_int_eq(store_touchpoints_foreach(st, 0, collect, &again), GW_OK);
        ck_assert_uint_eq(again.n, 8);
        ck_assert_mem_eq(again.at, s.at, sizeof(s.at[0]) * 8);
    }
    /* unknown customer: nothing */
    ck_assert_int_eq(store_journey(st, "c_zzzzzzzzzzzzzzzzzzzzzzzz", 0, collect, &s), GW_OK);
    ck_assert_int_eq(store_journey(st, "short", 0, collect, &s), GW_ENOTFOUND);
}
END_TEST

/* a customer with one touchpoint per merge gets a few full chunks, not one chunk per touchpoint */
START_TEST(test_tp_small_merges_fill_the_last_chunk)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat ms;
    uint64_t merged;
    int c[] = {0};

    for (uint64_t i = 0; i < 200; ++i) {
        uint64_t at[] = {1000 + i};
        append(c, at, 1);
        ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
        ck_assert_uint_eq(merged, 1);
    }
    ck_assert_uint_eq(journey(0, 0).n, 200);
    store_close(st);
    st = NULL;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "touchpoints", 0, &dbi), 0);
    ck_assert_int_eq(mdb_stat(txn, dbi, &ms), 0);
    ck_assert_uint_le(ms.ms_entries, 10); /* ~60-byte records, ~4 KB chunks */
    ck_assert_uint_ge(ms.ms_entries, 2);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    ck_assert_uint_eq(journey(0, 0).n, 200);
}
END_TEST

START_TEST(test_tp_erasure_removes_merged_and_unmerged)
{
    int c1[] = {0, 1, 0};
    uint64_t t1[] = {1, 2, 3};
    int c2[] = {0, 1};
    uint64_t t2[] = {4, 5};
    unsigned sessions = 0;
    uint64_t merged;

    append(c1, t1, 3);
    ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    append(c2, t2, 2);
    ck_assert_int_eq(store_customer_delete(st, cust[0], &sessions, NULL), GW_OK);
    ck_assert_uint_eq(journey(0, 0).n, 0);
    ck_assert_uint_eq(journey(1, 0).n, 2);
    {
        struct seen s;
        memset(&s, 0, sizeof(s));
        ck_assert_int_eq(store_touchpoints_foreach(st, 0, collect, &s), GW_OK);
        ck_assert_uint_eq(s.n, 2);
    }
}
END_TEST

START_TEST(test_tp_retention_prunes_whole_and_partial_chunks)
{
    int c[] = {0, 0, 0, 1, 1, 2};
    uint64_t t[] = {10, 20, 30, 11, 12, 40};
    uint64_t deleted = 0;
    struct seen s;

    append(c, t, 6);
    ck_assert_int_eq(store_touchpoints_prune(st, 25, &deleted), GW_OK);
    ck_assert_uint_eq(deleted, 4);
    s = journey(0, 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert_uint_eq(s.at[0], 30);
    ck_assert_uint_eq(journey(1, 0).n, 0);
    ck_assert_uint_eq(journey(2, 0).n, 1);
    ck_assert_int_eq(store_touchpoints_prune(st, 25, &deleted), GW_OK);
    ck_assert_uint_eq(deleted, 0);
}
END_TEST

START_TEST(test_tp_ingest_is_idempotent)
{
    store_tp_t tp[2];
    const char *keys[2] = {"k1", NULL};
    int dup[2];
    struct seen s;

    memset(tp, 0, sizeof(tp));
    for (int i = 0; i < 2; ++i) {
        tp[i].id = i == 0 ? "tp_a" : "tp_b";
        tp[i].customer_id = cust[1];
        tp[i].occurred_at_ms = 100 + (uint64_t)i * 2;
        tp[i].channel = "web";
        tp[i].touchpoint = "call";
        tp[i].status = 200;
        tp[i].source = "crm";
    }
    ck_assert_int_eq(store_touchpoints_ingest(st, tp, keys, 2, dup), GW_OK);
    ck_assert_int_eq(dup[0], 0);
    ck_assert_int_eq(dup[1], 0);
    ck_assert_int_eq(store_touchpoints_ingest(st, tp, keys, 2, dup), GW_OK);
    ck_assert_int_eq(dup[0], 1); /* the same key again: not written twice */
    ck_assert_int_eq(dup[1], 0); /* no key: written again */
    s = journey(1, 0);
    ck_assert_uint_eq(s.n, 3);
}
END_TEST

/* rewrites the store as format 2 with these JSON touchpoints of customer c (key: customer + be64 time + be64 seq) */
static void write_format2(int c, const uint64_t *t, const uint64_t *q, const char *const *texts, size_t n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, old;
    MDB_val k = {6, "format"}, v = {1, "2"};

    store_close(st);
    st = NULL;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    mdb_dbi_open(txn, "meta", 0, &meta);
    ck_assert_int_eq(mdb_dbi_open(txn, "touchpoints", MDB_CREATE, &old), 0);
    mdb_put(txn, meta, &k, &v, 0);
    for (size_t i = 0; i < n; ++i) {
        uint8_t key[STORE_ID_LEN + 16];
        MDB_val kk = {sizeof(key), key}, vv = {strlen(texts[i]), (void *)texts[i]};
        memcpy(key, cust[c], STORE_ID_LEN);
        for (int b = 0; b < 8; ++b) {
            key[STORE_ID_LEN + b] = (uint8_t)(t[i] >> (56 - 8 * b));
            key[STORE_ID_LEN + 8 + b] = (uint8_t)(q[i] >> (56 - 8 * b));
        }
        ck_assert_int_eq(mdb_put(txn, old, &kk, &vv, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
}

/* format 2 kept touchpoints as JSON; opening migrates them into chunks, numbered below new ones */
START_TEST(test_tp_migrates_format_2)
{
    uint64_t t[3], q[3], at[] = {5000};
    char text[3][512];
    const char *texts[3];
    int c[] = {0};

    for (int i = 0; i < 3; ++i) {
        t[i] = 1000 + (uint64_t)i;
        q[i] = (123456789ULL << 20) + (uint64_t)i;
        snprintf(text[i], sizeof(text[i]),
                 "{\"id\":\"tp_old%d\",\"occurred_at_ms\":%llu,\"received_at_ms\":1,\"channel\":\"%s\","
                 "\"touchpoint\":\"t\",\"status\":200}",
                 i, (unsigned long long)t[i], t[i] % 2 ? "mobile" : "web");
        texts[i] = text[i];
    }
    write_format2(0, t, q, texts, 3);
    ck_assert_uint_eq(journey(0, 0).n, 3);
    /* new touchpoints are numbered above the migrated ones (no chunk key used twice), and come after them */
    append(c, at, 1);
    {
        struct seen s = journey(0, 0);
        ck_assert_uint_eq(s.n, 4);
        ck_assert_uint_eq(s.at[3], 5000);
    }
}
END_TEST

static int first_json(const store_tp_t *tp, void *arg)
{
    *(json_t **)arg = store_tp_json(tp);
    return 1;
}

/* the fields without a place of their own survive the migration */
START_TEST(test_tp_migrated_fields)
{
    const char *texts[] = {"{\"id\":\"tp_x\",\"occurred_at_ms\":7,\"channel\":\"web\",\"touchpoint\":\"t\",\"status\":"
                           "\"done\",\"attribution\":{\"utm_source\":\"ad\",\"click_id\":false},"
                           "\"attributes\":{\"plan\":\"gold\"},\"visit_id\":\"v1\"}"};
    uint64_t t[] = {7}, q[] = {1};
    json_t *j = NULL;

    write_format2(2, t, q, texts, 1);
    ck_assert_int_eq(store_journey(st, cust[2], 0, first_json, &j), GW_OK);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "customer_id")), cust[2]);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "done");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "attributes"), "plan")), "gold");
    ck_assert_str_eq(json_string_value(json_object_get(j, "utm_source")), "ad");
    ck_assert(json_is_false(json_object_get(j, "click_id")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "visit_id")), "v1");
    json_decref(j);
}
END_TEST

START_TEST(test_session_generation_moves_only_on_removals)
{
    uint8_t hash[32] = {9};
    json_t *s = json_pack("{s:s}", "customer_id", cust[1]);
    int c[] = {1};
    uint64_t at[] = {1}, g0, g1, g2;

    ck_assert_int_eq(store_session_put(st, hash, s), GW_OK);
    json_decref(s);
    g0 = store_session_generation(st);
    append(c, at, 1); /* touchpoints, logins and new sessions do not invalidate cached sessions */
    ck_assert_uint_eq(store_session_generation(st), g0);
    ck_assert_int_eq(store_session_delete(st, hash, NULL), GW_OK);
    g1 = store_session_generation(st);
    ck_assert_uint_ne(g1, g0);
    {
        unsigned n = 0;
        ck_assert_int_eq(store_customer_delete(st, cust[2], &n, NULL), GW_OK);
    }
    g2 = store_session_generation(st);
    ck_assert_uint_ne(g2, g1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("touchpoints");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tp_record_round_trip);
    tcase_add_test(tc, test_tp_log_and_chunks_read_in_time_order);
    tcase_add_test(tc, test_tp_small_merges_fill_the_last_chunk);
    tcase_add_test(tc, test_tp_erasure_removes_merged_and_unmerged);
    tcase_add_test(tc, test_tp_retention_prunes_whole_and_partial_chunks);
    tcase_add_test(tc, test_tp_ingest_is_idempotent);
    tcase_add_test(tc, test_tp_migrates_format_2);
    tcase_add_test(tc, test_tp_migrated_fields);
    tcase_add_test(tc, test_session_generation_moves_only_on_removals);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
