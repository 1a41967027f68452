/*
 * Unit tests: store_customers_find() and the identity_emails index it reads — a customer is found by
 * any email any of its identities carries (verified or not), by its id, or by provider:subject;
 * finding never links; the index follows sign-ins, unlinks and erasures; a format-3 store gets it.
 * And the console's resumable reads: customers and touchpoints after a given customer.
 */
#include "store.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>

static char dir[64];
static store_t *st;

static void setup(void)
{
    jg_temp_store_open(dir, sizeof(dir), "jg-find", &st);
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

static store_login_info_t info;

static gw_status_t login(const char *provider, const char *subject, const char *email, int verified,
                         const char *link_to, char *cid)
{
    store_identity_t id = {provider, subject, email, verified, "Name", NULL};
    store_login_opts_t o = {1 /* auto-link on: finding must still never link */, NULL, link_to, "web"};
    return store_login(st, &id, &o, 1000, cid, &info, NULL);
}

/* the customers a query finds: how many, and whether `want` is among them */
static size_t find(const char *q, const char *want, int *has)
{
    char ids[8][STORE_ID_LEN + 1];
    size_t n = 99;

    ck_assert_int_eq(store_customers_find(st, q, ids, 8, &n), GW_OK);
    *has = 0;
    for (size_t i = 0; i < n; ++i)
        if (want != NULL && strcmp(ids[i], want) == 0)
            *has = 1;
    return n;
}

START_TEST(test_find_facebook_only_by_unverified_email_never_links)
{
    char fb[STORE_ID_LEN + 1], g[STORE_ID_LEN + 1], other[STORE_ID_LEN + 1];
    int has;

    ck_assert_int_eq(login("facebook", "f1", "Pat@Example.com", 0, NULL, fb), GW_OK);
    /* the verified-email index (linking) does not know the address ... */
    ck_assert_int_eq(store_customer_by_email(st, "pat@example.com", other), GW_ENOTFOUND);
    /* ... the finding index does, whatever the case */
    ck_assert_uint_eq(find("PAT@example.COM", fb, &has), 1);
    ck_assert(has);
    /* a Google sign-in proving the same address becomes another customer: nothing linked on it */
    ck_assert_int_eq(login("google", "g1", "pat@example.com", 1, NULL, g), GW_OK);
    ck_assert_int_eq(info.result, STORE_LOGIN_CREATED);
    ck_assert_str_ne(fb, g);
    /* both carry the address: both are found */
    ck_assert_uint_eq(find("pat@example.com", fb, &has), 2);
    ck_assert(has);
    find("pat@example.com", g, &has);
    ck_assert(has);
    /* an address is matched whole, not as a prefix */
    ck_assert_uint_eq(find("pat@example.co", NULL, &has), 0);
    ck_assert_uint_eq(find("at@example.com", NULL, &has), 0);
}
END_TEST

START_TEST(test_find_by_id_and_identity)
{
    char a[STORE_ID_LEN + 1];
    char ids[2][STORE_ID_LEN + 1];
    size_t n;
    int has;

    ck_assert_int_eq(login("google", "sub:with:colons", NULL, 0, NULL, a), GW_OK);
    ck_assert_uint_eq(find(a, a, &has), 1);
    ck_assert(has);
    ck_assert_uint_eq(find("google:sub:with:colons", a, &has), 1);
    ck_assert(has);
    ck_assert_uint_eq(find("google:sub", NULL, &has), 0);
    ck_assert_uint_eq(find("c_aaaaaaaaaaaaaaaaaaaaaaaa", NULL, &has), 0); /* well formed, unknown */
    ck_assert_uint_eq(find("nothing", NULL, &has), 0);
    ck_assert_uint_eq(find(":", NULL, &has), 0);
    ck_assert_int_eq(store_customers_find(st, "", ids, 2, &n), GW_EINVAL);
    {
        char big[STORE_FIND_QUERY_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ck_assert_int_eq(store_customers_find(st, big, ids, 2, &n), GW_EINVAL);
    }
}
END_TEST

START_TEST(test_find_follows_email_change_unlink_and_erase)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    int has, erased = 0;
    unsigned sessions = 0;

    ck_assert_int_eq(login("google", "g1", "first@example.com", 1, NULL, a), GW_OK);
    ck_assert_int_eq(login("facebook", "f1", "fb@example.com", 0, a, b), GW_OK);
    ck_assert_str_eq(a, b);
    find("fb@example.com", a, &has);
    ck_assert(has);
    /* the provider now reports another address: the old one no longer finds the customer */
    ck_assert_int_eq(login("facebook", "f1", "fb2@example.com", 0, NULL, b), GW_OK);
    ck_assert_uint_eq(find("fb@example.com", NULL, &has), 0);
    find("fb2@example.com", a, &has);
    ck_assert(has);
    /* unlink: the identity's address goes, the other stays */
    ck_assert_int_eq(store_unlink(st, a, "facebook", 2000, NULL), GW_OK);
    ck_assert_uint_eq(find("fb2@example.com", NULL, &has), 0);
    find("first@example.com", a, &has);
    ck_assert(has);
    /* two identities carrying one address: erasing one keeps the customer findable by it */
    ck_assert_int_eq(login("oidc", "o1", "FIRST@example.com", 0, a, b), GW_OK);
    ck_assert_int_eq(store_identity_erase(st, "oidc", "o1", b, &erased, NULL), GW_OK);
    ck_assert_int_eq(erased, 0);
    find("first@example.com", a, &has);
    ck_assert(has);
    /* erasing the customer: nothing finds it */
    ck_assert_int_eq(store_customer_delete(st, a, &sessions, NULL), GW_OK);
    ck_assert_uint_eq(find("first@example.com", NULL, &has), 0);
    ck_assert_uint_eq(find(a, NULL, &has), 0);
    /* erasing the last identity erases the customer and its entries */
    ck_assert_int_eq(login("facebook", "f7", "seven@example.com", 0, NULL, b), GW_OK);
    ck_assert_int_eq(store_identity_erase(st, "facebook", "f7", a, &erased, NULL), GW_OK);
    ck_assert_int_eq(erased, 1);
    ck_assert_uint_eq(find("seven@example.com", NULL, &has), 0);
}
END_TEST

START_TEST(test_find_index_built_by_migration_from_format_3)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, idx;
    MDB_val k = {6, "format"}, v = {1, "3"};
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    int has;

    ck_assert_int_eq(login("facebook", "f1", "Old@Example.com", 0, NULL, a), GW_OK);
    ck_assert_int_eq(login("google", "g1", "older@example.com", 1, NULL, b), GW_OK);
    store_close(st);
    st = NULL;
    /* rewrite it as format 3: no finding index */
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "identity_emails", 0, &idx), 0);
    ck_assert_int_eq(mdb_drop(txn, idx, 1), 0);
    ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    /* a read-only open (the CLI) does not migrate: it refuses the older format */
    ck_assert_int_ne(store_open_readonly(dir, &st), GW_OK);
    ck_assert_ptr_null(st);
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    find("old@example.com", a, &has);
    ck_assert(has);
    find("OLDER@example.com", b, &has);
    ck_assert(has);
    store_close(st);
    ck_assert_int_eq(store_open_readonly(dir, &st), GW_OK); /* now format 4 */
}
END_TEST

struct walk {
    char ids[64][STORE_ID_LEN + 1];
    size_t n, stop_at;
};

static int walk_customer(json_t *c, void *arg)
{
    struct walk *w = arg;
    ck_assert_uint_lt(w->n, 64);
    snprintf(w->ids[w->n++], STORE_ID_LEN + 1, "%s", json_string_value(json_object_get(c, "id")));
    return w->stop_at != 0 && w->n == w->stop_at;
}

static int walk_tp(const store_tp_t *tp, void *arg)
{
    struct walk *w = arg;
    ck_assert_uint_lt(w->n, 64);
    snprintf(w->ids[w->n++], STORE_ID_LEN + 1, "%s", tp->customer_id);
    return 0;
}

START_TEST(test_reads_resume_after_a_customer)
{
    char cids[6][STORE_ID_LEN + 1], sub[8];
    struct walk all, part, rest;
    uint64_t merged;

    for (int i = 0; i < 6; ++i) {
        snprintf(sub, sizeof(sub), "r%d", i);
        ck_assert_int_eq(login("google", sub, NULL, 0, NULL, cids[i]), GW_OK);
    }
    memset(&all, 0, sizeof(all));
    ck_assert_int_eq(store_customers_foreach_after(st, NULL, walk_customer, &all), GW_OK);
    ck_assert_uint_eq(all.n, 6);
    /* stop after 2, go on after the second: the rest, none twice */
    memset(&part, 0, sizeof(part));
    part.stop_at = 2;
    ck_assert_int_eq(store_customers_foreach_after(st, NULL, walk_customer, &part), GW_OK);
    memset(&rest, 0, sizeof(rest));
    ck_assert_int_eq(store_customers_foreach_after(st, part.ids[1], walk_customer, &rest), GW_OK);
    ck_assert_uint_eq(rest.n, 4);
    for (size_t i = 0; i < 4; ++i)
        ck_assert_str_eq(rest.ids[i], all.ids[i + 2]);

    /* touchpoints: two per customer, half merged into chunks and half in the log */
    for (int round = 0; round < 2; ++round) {
        uint8_t buf[8192];
        size_t len = 0;
        for (int i = 0; i < 6; ++i) {
            store_tp_t tp;
            memset(&tp, 0, sizeof(tp));
            tp.id = "tp";
            tp.customer_id = cids[i];
            tp.occurred_at_ms = 5000 + (uint64_t)round;
            tp.received_at_ms = tp.occurred_at_ms;
            tp.channel = "web";
            tp.touchpoint = "t";
            len += store_tp_encode(&tp, buf + len, sizeof(buf) - len);
        }
        ck_assert_int_eq(store_touchpoints_append(st, buf, len, 6), GW_OK);
        if (round == 0)
            ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    }
    memset(&rest, 0, sizeof(rest));
    ck_assert_int_eq(store_touchpoints_foreach_after(st, 0, all.ids[3], walk_tp, &rest), GW_OK);
    ck_assert_uint_eq(rest.n, 4); /* customers 4 and 5, both touchpoints each */
    ck_assert_str_eq(rest.ids[0], all.ids[4]);
    ck_assert_str_eq(rest.ids[1], all.ids[4]);
    ck_assert_str_eq(rest.ids[3], all.ids[5]);
    memset(&rest, 0, sizeof(rest));
    ck_assert_int_eq(store_touchpoints_foreach_after(st, 0, all.ids[5], walk_tp, &rest), GW_OK);
    ck_assert_uint_eq(rest.n, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_find");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_find_facebook_only_by_unverified_email_never_links);
    tcase_add_test(tc, test_find_by_id_and_identity);
    tcase_add_test(tc, test_find_follows_email_change_unlink_and_erase);
    tcase_add_test(tc, test_find_index_built_by_migration_from_format_3);
    tcase_add_test(tc, test_reads_resume_after_a_customer);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
