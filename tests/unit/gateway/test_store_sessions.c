/*
 * Unit tests: sessions that follow what they stood on (unlink, identity erasure, link), the purge
 * of expired sessions, and a store whose map another process grew (MDB_MAP_RESIZED).
 */
#include "store.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static store_t *st;

static void setup(void)
{
    jg_temp_store_open(dir, sizeof(dir), "jg-sess", &st);
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

static void login(const char *provider, const char *subject, const char *link_to, char *cid)
{
    store_identity_t id = {provider, subject, NULL, 0, "Name", NULL};
    store_login_opts_t o = {0, NULL, link_to, "web"};
    store_login_info_t info;
    ck_assert_int_eq(store_login(st, &id, &o, 1000, cid, &info, NULL), GW_OK);
}

/* a session as auth.c makes one: through (provider, subject), counting `linked` identities */
static void session(uint8_t tag, const char *cid, const char *provider, const char *subject, unsigned linked,
                    uint64_t expires_ms, uint64_t last_seen_ms, uint64_t idle_ms)
{
    uint8_t h[32] = {tag};
    json_t *s = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "customer_id", cid, "provider", provider, "subject",
                          subject, "linked_providers", (json_int_t)linked, "expires_ms", (json_int_t)expires_ms,
                          "last_seen_ms", (json_int_t)last_seen_ms, "idle_timeout_ms", (json_int_t)idle_ms);
    ck_assert_int_eq(store_session_put(st, h, s), GW_OK);
    json_decref(s);
}

/* the session's linked_providers, or -1 when it is gone */
static int linked_of(uint8_t tag)
{
    uint8_t h[32] = {tag};
    json_t *s = NULL;
    int n;
    if (store_session_get(st, h, &s) == GW_ENOTFOUND)
        return -1;
    n = (int)json_integer_value(json_object_get(s, "linked_providers"));
    json_decref(s);
    return n;
}

#define FAR 4000000000000ULL /* a time far in the future (ms) */

START_TEST(test_unlink_ends_the_identitys_sessions_and_refreshes_the_others)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    uint64_t gen;
    unsigned removed = 0;

    login("google", "g1", NULL, a);
    session(1, a, "google", "g1", 1, FAR, 1000, 0);
    login("facebook", "f1", a, b);
    ck_assert_str_eq(a, b);
    /* the link counts at once for the session made before it */
    ck_assert_int_eq(linked_of(1), 2);
    session(2, a, "facebook", "f1", 2, FAR, 1000, 0);
    session(3, a, "facebook", "f1", 2, FAR, 1000, 0);
    gen = store_session_generation(st);
    ck_assert_int_eq(store_unlink(st, a, "facebook", 2000, NULL), GW_OK);
    ck_assert_uint_ne(store_session_generation(st), gen); /* every cache reads again */
    ck_assert_int_eq(linked_of(2), -1);
    ck_assert_int_eq(linked_of(3), -1);
    ck_assert_int_eq(linked_of(1), 1);
    /* the index lost the ended sessions too: only the Google one remains to erase */
    ck_assert_int_eq(store_customer_delete(st, a, &removed, NULL), GW_OK);
    ck_assert_uint_eq(removed, 1);
}
END_TEST

START_TEST(test_identity_erasure_ends_only_that_identitys_sessions)
{
    char a[STORE_ID_LEN + 1], owner[STORE_ID_LEN + 1];
    int erased = -1;

    login("google", "g2", NULL, a);
    login("facebook", "f2", a, owner);
    session(1, a, "google", "g2", 2, FAR, 1000, 0);
    session(2, a, "facebook", "f2", 2, FAR, 1000, 0);
    session(3, a, "facebook", "another-subject", 2, FAR, 1000, 0); /* not that identity: stays */
    ck_assert_int_eq(store_identity_erase(st, "facebook", "f2", owner, &erased, NULL), GW_OK);
    ck_assert_int_eq(erased, 0);
    ck_assert_int_eq(linked_of(2), -1);
    ck_assert_int_eq(linked_of(1), 1);
    ck_assert_int_eq(linked_of(3), 1);
    /* the last identity takes the customer and every session */
    ck_assert_int_eq(store_identity_erase(st, "google", "g2", owner, &erased, NULL), GW_OK);
    ck_assert_int_eq(erased, 1);
    ck_assert_int_eq(linked_of(1), -1);
    ck_assert_int_eq(linked_of(3), -1);
}
END_TEST

START_TEST(test_purge_deletes_expired_and_idle_sessions_only)
{
    char a[STORE_ID_LEN + 1];
    uint64_t purged = 99, gen, now = 1000000;
    unsigned removed = 0;

    login("google", "g3", NULL, a);
    session(1, a, "google", "g3", 1, now - 1, now - 10, 0);     /* past its absolute expiry */
    session(2, a, "google", "g3", 1, FAR, now - 5000, 4000);    /* idle for longer than its timeout */
    session(3, a, "google", "g3", 1, FAR, now - 1000, 4000);    /* idle, but not for long enough */
    session(4, a, "google", "g3", 1, now + 1, now - 100000, 0); /* bearer-like: no idle timeout */
    {
        uint8_t h[32] = {5};
        json_t *broken = json_pack("{s:s}", "customer_id", a); /* no expiry at all: never usable */
        ck_assert_int_eq(store_session_put(st, h, broken), GW_OK);
        json_decref(broken);
    }
    gen = store_session_generation(st);
    ck_assert_int_eq(store_sessions_purge(st, now, &purged), GW_OK);
    ck_assert_uint_eq(purged, 3);
    ck_assert_uint_ne(store_session_generation(st), gen);
    ck_assert_int_eq(linked_of(1), -1);
    ck_assert_int_eq(linked_of(2), -1);
    ck_assert_int_eq(linked_of(5), -1);
    ck_assert_int_eq(linked_of(3), 1);
    ck_assert_int_eq(linked_of(4), 1);
    /* nothing more to do: the generation stays */
    gen = store_session_generation(st);
    ck_assert_int_eq(store_sessions_purge(st, now, &purged), GW_OK);
    ck_assert_uint_eq(purged, 0);
    ck_assert_uint_eq(store_session_generation(st), gen);
    ck_assert_int_eq(store_customer_delete(st, a, &removed, NULL), GW_OK);
    ck_assert_uint_eq(removed, 2); /* the purged sessions left the customer's index too */
}
END_TEST

START_TEST(test_purge_walks_many_batches)
{
    char a[STORE_ID_LEN + 1];
    uint64_t purged = 0;
    json_t *s;

    login("google", "g4", NULL, a);
    s = json_pack("{s:s, s:s, s:s, s:I, s:I}", "customer_id", a, "provider", "google", "subject", "g4", "expires_ms",
                  (json_int_t)10, "last_seen_ms", (json_int_t)1);
    store_set_durable(st, 0);
    for (unsigned i = 0; i < 5000; ++i) {
        uint8_t h[32] = {0};
        memcpy(h, &i, sizeof(i));
        h[31] = (uint8_t)(i & 1); /* every other one fresh */
        json_object_set_new(s, "expires_ms", json_integer((i & 1) ? (json_int_t)FAR : 10));
        ck_assert_int_eq(store_session_put(st, h, s), GW_OK);
    }
    store_set_durable(st, 1);
    json_decref(s);
    ck_assert_int_eq(store_sessions_purge(st, 1000, &purged), GW_OK);
    ck_assert_uint_eq(purged, 2500);
    ck_assert_int_eq(store_sessions_purge(st, 1000, &purged), GW_OK);
    ck_assert_uint_eq(purged, 0);
}
END_TEST

/* another process opens the store with a 64 MB map and commits far more than this one's 1 MB map holds */
static void grow_elsewhere(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi meta;
        MDB_val k = {5, "probe"}, v = {8 << 20, NULL};
        int ok = mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0 &&
                 mdb_env_set_mapsize(env, 64UL << 20) == 0 && mdb_env_open(env, dir, 0, 0600) == 0 &&
                 mdb_txn_begin(env, NULL, 0, &txn) == 0 && mdb_dbi_open(txn, "meta", 0, &meta) == 0 &&
                 mdb_put(txn, meta, &k, &v, MDB_RESERVE) == 0 && (memset(v.mv_data, 0, v.mv_size), 1) &&
                 mdb_txn_commit(txn) == 0;
        _exit(ok ? 0 : 1);
    }
    {
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

START_TEST(test_map_grown_by_another_process_is_adopted)
{
    char a[STORE_ID_LEN + 1], b[STORE_ID_LEN + 1];
    json_t *c = NULL;

    store_close(st);
    ck_assert_int_eq(store_open(dir, 1, &st), GW_OK);
    login("google", "g6", NULL, a);
    grow_elsewhere();
    /* a read, then a write, both go on */
    ck_assert_int_eq(store_customer_get(st, a, &c), GW_OK);
    json_decref(c);
    login("google", "g7", NULL, b);
    ck_assert_int_eq(store_customer_by_identity(st, "google", "g7", a), GW_OK);
    ck_assert_str_eq(a, b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_sessions");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_unlink_ends_the_identitys_sessions_and_refreshes_the_others);
    tcase_add_test(tc, test_identity_erasure_ends_only_that_identitys_sessions);
    tcase_add_test(tc, test_purge_deletes_expired_and_idle_sessions_only);
    tcase_add_test(tc, test_purge_walks_many_batches);
    tcase_add_test(tc, test_map_grown_by_another_process_is_adopted);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
