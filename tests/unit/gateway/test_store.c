/* Unit tests: the LMDB store — login, linking, unlink, erasure, sessions, migration, map growth. */
#include "store.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static store_t *st;

static void setup(void)
{
    jg_temp_store_open(dir, sizeof(dir), "jg-store", &st);
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

static store_login_info_t info;

static gw_status_t login(const char *provider, const char *subject, const char *email, int verified, int auto_link,
                         const char *link_to, char *cid)
{
    static const char *const blocked[] = {"shared@test.example", NULL};
    store_identity_t id = {provider, subject, email, verified, "Name", NULL};
    store_login_opts_t o = {auto_link, blocked, link_to, "web"};
    return store_login(st, &id, &o, 1000, cid, &info, NULL);
}

START_TEST(test_store_login_creates_then_returns)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    json_t *c = NULL;

    ck_assert_int_eq(login("google", "1", "A@Example.com", 1, 0, NULL, a), GW_OK);
    ck_assert_int_eq(info.result, STORE_LOGIN_CREATED);
    ck_assert_int_eq(login("google", "1", "a@example.com", 1, 0, NULL, b), GW_OK);
    ck_assert_int_eq(info.result, STORE_LOGIN_RETURNING);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(store_customer_by_email(st, "a@EXAMPLE.com", b), GW_OK);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(store_customer_get(st, a, &c), GW_OK);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "profile"), "email")), "a@example.com");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "channels_seen"), 0)), "web");
    json_decref(c);
}
END_TEST

START_TEST(test_store_auto_link_rules)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];

    ck_assert_int_eq(login("google", "g1", "x@example.com", 1, 1, NULL, a), GW_OK);
    /* verified on both sides: linked */
    ck_assert_int_eq(login("facebook", "f1", "x@example.com", 1, 1, NULL, b), GW_OK);
    ck_assert_int_eq(info.result, STORE_LOGIN_AUTO_LINKED);
    ck_assert_str_eq(a, b);
    /* merge protection: a second Google identity with the same email is not linked */
    ck_assert_int_eq(login("google", "g2", "x@example.com", 1, 1, NULL, b), GW_OK);
    ck_assert_str_eq(info.auto_link_skipped, "same_provider");
    ck_assert_str_ne(a, b);
    /* unverified: never linked */
    ck_assert_int_eq(login("oidc", "o1", "x@example.com", 0, 1, NULL, b), GW_OK);
    ck_assert_str_eq(info.auto_link_skipped, "unverified_email");
    ck_assert_str_ne(a, b);
    /* blocked values are never used to link */
    ck_assert_int_eq(login("google", "g9", "shared@test.example", 1, 1, NULL, a), GW_OK);
    ck_assert_int_eq(login("facebook", "f9", "shared@test.example", 1, 1, NULL, b), GW_OK);
    ck_assert_str_eq(info.auto_link_skipped, "blocked_email");
    ck_assert_str_ne(a, b);
    /* auto-link off: not linked */
    ck_assert_int_eq(login("google", "g3", "y@example.com", 1, 0, NULL, a), GW_OK);
    ck_assert_int_eq(login("facebook", "f3", "y@example.com", 1, 0, NULL, b), GW_OK);
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_store_explicit_link_and_conflict)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1], c[STORE_ID_LEN + 1];
    json_t *cust = NULL;

    ck_assert_int_eq(login("google", "g1", NULL, 0, 0, NULL, a), GW_OK);
    ck_assert_int_eq(login("facebook", "f1", NULL, 0, 0, a, b), GW_OK);
    ck_assert_int_eq(info.result, STORE_LOGIN_LINKED);
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(login("facebook", "f2", NULL, 0, 0, NULL, c), GW_OK);
    /* f2 belongs to c: linking it to a is refused and changes nothing */
    ck_assert_int_eq(login("facebook", "f2", NULL, 0, 0, a, b), GW_EDENIED);
    ck_assert_str_eq(info.conflict_customer, c);
    ck_assert_int_eq(store_customer_get(st, a, &cust), GW_OK);
    ck_assert_uint_eq(json_array_size(json_object_get(cust, "identities")), 2);
    json_decref(cust);
}
END_TEST

START_TEST(test_store_unlink_and_erase)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    uint8_t h1[32] = {1}, h2[32] = {2};
    json_t *s = json_pack("{s:s}", "customer_id", "x"), *got = NULL;
    unsigned sessions = 0;
    int erased = 0;

    ck_assert_int_eq(login("google", "g1", "z@example.com", 1, 0, NULL, a), GW_OK);
    ck_assert_int_eq(login("facebook", "f1", NULL, 0, 0, a, b), GW_OK);
    ck_assert_int_eq(store_unlink(st, a, "twitter", 1, NULL), GW_ENOTFOUND);
    ck_assert_int_eq(store_unlink(st, a, "facebook", 1, NULL), GW_OK);
    ck_assert_int_eq(store_customer_by_identity(st, "facebook", "f1", b), GW_ENOTFOUND);
    ck_assert_int_eq(store_unlink(st, a, "google", 1, NULL), GW_EDENIED); /* never the last */

    json_object_set_new(s, "customer_id", json_string(a));
    ck_assert_int_eq(store_session_put(st, h1, s), GW_OK);
    ck_assert_int_eq(store_session_put(st, h2, s), GW_OK);
    ck_assert_int_eq(store_customer_delete(st, a, &sessions, NULL), GW_OK);
    ck_assert_uint_eq(sessions, 2);
    ck_assert_int_eq(store_session_get(st, h1, &got), GW_ENOTFOUND);
    ck_assert_int_eq(store_customer_get(st, a, &got), GW_ENOTFOUND);
    ck_assert_int_eq(store_customer_by_email(st, "z@example.com", b), GW_ENOTFOUND);
    ck_assert_int_eq(store_customer_by_identity(st, "google", "g1", b), GW_ENOTFOUND);
    ck_assert_int_eq(store_customer_delete(st, a, &sessions, NULL), GW_ENOTFOUND);

    /* erasing one of two identities keeps the customer; the last one erases it */
    ck_assert_int_eq(login("google", "g5", NULL, 0, 0, NULL, a), GW_OK);
    ck_assert_int_eq(login("facebook", "f5", NULL, 0, 0, a, b), GW_OK);
    ck_assert_int_eq(store_identity_erase(st, "facebook", "f5", b, &erased, NULL), GW_OK);
    ck_assert_int_eq(erased, 0);
    ck_assert_int_eq(store_identity_erase(st, "google", "g5", b, &erased, NULL), GW_OK);
    ck_assert_int_eq(erased, 1);
    ck_assert_int_eq(store_customer_get(st, a, &got), GW_ENOTFOUND);
    json_decref(s);
}
END_TEST

START_TEST(test_store_map_grows_when_full)
{
    char cid[STORE_ID_LEN + 1], sub[32];
    uint64_t n = 0;

    store_close(st);
    ck_assert_int_eq(store_open(dir, 1, &st), GW_OK); /* 1 MB: far too small for what follows */
    for (int i = 0; i < 3000; ++i) {
        snprintf(sub, sizeof(sub), "s%d", i);
        ck_assert_int_eq(login("google", sub, NULL, 0, 0, NULL, cid), GW_OK);
    }
    ck_assert_int_eq(store_count_customers(st, &n), GW_OK);
    ck_assert_uint_eq(n, 3000);
}
END_TEST

START_TEST(test_store_migrates_format_1)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, sessions;
    MDB_val k = {6, "format"}, v = {1, "1"};
    uint8_t hash[32] = {7};
    char cid[STORE_ID_LEN + 1];
    unsigned removed = 0;
    json_t *got = NULL;

    ck_assert_int_eq(login("google", "old", NULL, 0, 0, NULL, cid), GW_OK);
    store_close(st);
    st = NULL;
    /* rewrite it as format 1: a session without the customer index */
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    mdb_dbi_open(txn, "meta", 0, &meta);
    mdb_dbi_open(txn, "sessions", 0, &sessions);
    mdb_put(txn, meta, &k, &v, 0);
    {
        char text[128];
        int n = snprintf(text, sizeof(text), "{\"customer_id\":\"%s\"}", cid);
        MDB_val sk = {32, hash}, sv = {(size_t)n, text};
        mdb_put(txn, sessions, &sk, &sv, 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    ck_assert_int_eq(store_customer_delete(st, cid, &removed, NULL), GW_OK);
    ck_assert_uint_eq(removed, 1); /* found through the index the migration built */
    ck_assert_int_eq(store_session_get(st, hash, &got), GW_ENOTFOUND);
}
END_TEST

START_TEST(test_store_refuses_newer_format)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val k = {6, "format"}, v = {2, "99"};
    store_t *other = NULL;

    store_close(st);
    st = NULL;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", 0, &meta);
    mdb_put(txn, meta, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    ck_assert_int_eq(store_open(dir, 64, &other), GW_EINVAL);
    ck_assert_int_eq(store_open_readonly(dir, &other), GW_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_store_login_creates_then_returns);
    tcase_add_test(tc, test_store_auto_link_rules);
    tcase_add_test(tc, test_store_explicit_link_and_conflict);
    tcase_add_test(tc, test_store_unlink_and_erase);
    tcase_add_test(tc, test_store_map_grows_when_full);
    tcase_add_test(tc, test_store_migrates_format_1);
    tcase_add_test(tc, test_store_refuses_newer_format);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
