/* Unit tests: the data the console shows — a profile in step with every touchpoint (recorded and
 * ingested), how each identity was linked, visits per channel and device with a campaign click
 * starting its own, and browser noise (touchpoint_skip) that records nothing. */
#include "config.h"
#include "recorder.h"
#include "route.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <jansson.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DESKTOP "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
#define PHONE "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"
#define MIN_MS 60000ULL

static char dir[64];
static store_t *st;

static void setup(void)
{
    jg_temp_store_open(dir, sizeof(dir), "jg-journey-data", &st);
}

static void teardown(void)
{
    jg_temp_store_close(&st, dir);
}

/* a customer signed in with google on the web at now_ms */
static void customer(const char *subject, const char *email, uint64_t now_ms, char id[STORE_ID_LEN + 1])
{
    store_identity_t ident = {"google", subject, email, 1, "Pat", NULL};
    store_login_opts_t opts = {1, NULL, NULL, "web"};
    store_login_info_t info;
    ck_assert_int_eq(store_login(st, &ident, &opts, now_ms, id, &info, NULL), GW_OK);
}

static json_t *profile(const char *id)
{
    json_t *c = NULL;
    ck_assert_int_eq(store_customer_get(st, id, &c), GW_OK);
    return c;
}

static json_int_t at(json_t *o, const char *path1, const char *path2, const char *key)
{
    if (path1 != NULL)
        o = json_object_get(o, path1);
    if (path2 != NULL)
        o = json_object_get(o, path2);
    return json_integer_value(json_object_get(o, key));
}

static int lists(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* one ingested touchpoint, as POST /.auth/touchpoints stores it */
static void ingest(const char *cid, const char *channel, const char *touchpoint, const char *stage, uint64_t when)
{
    static unsigned n;
    char id[32];
    store_tp_t tp;
    int dup = 0;
    memset(&tp, 0, sizeof(tp));
    snprintf(id, sizeof(id), "tp_ingested%u", ++n);
    tp.id = id;
    tp.customer_id = cid;
    tp.occurred_at_ms = tp.received_at_ms = when;
    tp.channel = channel;
    tp.touchpoint = touchpoint;
    tp.stage = stage;
    tp.source = channel;
    ck_assert_int_eq(store_touchpoints_ingest(st, &tp, NULL, 1, &dup), GW_OK);
}

START_TEST(test_ingested_touchpoints_move_channels_and_last_seen)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1];
    json_t *c;

    customer("pat", "pat@example.com", t0, id);
    c = profile(id);
    ck_assert_uint_eq(json_array_size(json_object_get(c, "channels_seen")), 1);
    ck_assert_int_eq(at(c, "channels", "web", "first_seen_ms"), (json_int_t)t0);
    json_decref(c);

    ingest(id, "email", "opened newsletter", "need", t0 + 10 * MIN_MS);
    ingest(id, "mobile", "opened app", "research", t0 + 20 * MIN_MS);
    ingest(id, "store", "bought in store", "convert", t0 + 30 * MIN_MS);
    ingest(id, "contact-centre", "called support", "own", t0 + 40 * MIN_MS);
    c = profile(id);
    ck_assert(lists(json_object_get(c, "channels_seen"), "web"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "email"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "mobile"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "store"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "contact-centre"));
    ck_assert_int_eq(at(c, NULL, NULL, "first_seen_ms"), (json_int_t)t0);
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + 40 * MIN_MS));
    ck_assert_int_eq(at(c, "channels", "email", "first_seen_ms"), (json_int_t)(t0 + 10 * MIN_MS));
    ck_assert_int_eq(at(c, "channels", "contact-centre", "last_seen_ms"), (json_int_t)(t0 + 40 * MIN_MS));
    ck_assert_int_eq(at(c, "stages_reached", NULL, "need"), (json_int_t)(t0 + 10 * MIN_MS));
    ck_assert_int_eq(at(c, "stages_reached", NULL, "own"), (json_int_t)(t0 + 40 * MIN_MS));
    ck_assert_str_eq(json_string_value(json_object_get(c, "stage")), "own");
    json_decref(c);

    /* an earlier stage later does not move the furthest one back */
    ingest(id, "email", "opened newsletter", "need", t0 + 50 * MIN_MS);
    c = profile(id);
    ck_assert_str_eq(json_string_value(json_object_get(c, "stage")), "own");
    ck_assert_int_eq(at(c, "stages_reached", NULL, "need"), (json_int_t)(t0 + 10 * MIN_MS));
    ck_assert_int_eq(at(c, "channels", "email", "last_seen_ms"), (json_int_t)(t0 + 50 * MIN_MS));
    json_decref(c);
}
END_TEST

START_TEST(test_profile_is_rewritten_only_when_something_changed)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1];
    json_t *c;

    customer("sam", "sam@example.com", t0, id);
    ingest(id, "email", "opened", NULL, t0 + MIN_MS);
    /* 30 s later on a known channel: not worth a rewrite */
    ingest(id, "email", "opened", NULL, t0 + MIN_MS + 30000);
    c = profile(id);
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + MIN_MS));
    json_decref(c);
    /* the same once the store was reopened (nothing remembered in memory): the profile says it all */
    store_close(st);
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    ingest(id, "email", "opened", NULL, t0 + MIN_MS + 40000);
    c = profile(id);
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + MIN_MS));
    json_decref(c);
    /* more than a minute later: it moves */
    ingest(id, "email", "opened", NULL, t0 + 3 * MIN_MS);
    c = profile(id);
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + 3 * MIN_MS));
    ck_assert_int_eq(at(c, "channels", "email", "last_seen_ms"), (json_int_t)(t0 + 3 * MIN_MS));
    json_decref(c);
    /* within the minute, but a new stage or channel: it is written */
    ingest(id, "email", "clicked", "research", t0 + 3 * MIN_MS + 1000);
    ingest(id, "social", "liked", NULL, t0 + 3 * MIN_MS + 2000);
    c = profile(id);
    ck_assert_int_eq(at(c, "stages_reached", NULL, "research"), (json_int_t)(t0 + 3 * MIN_MS + 1000));
    ck_assert_int_eq(at(c, "channels", "social", "first_seen_ms"), (json_int_t)(t0 + 3 * MIN_MS + 2000));
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + 3 * MIN_MS + 2000));
    json_decref(c);
}
END_TEST

START_TEST(test_identities_say_how_they_were_linked)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1], other[STORE_ID_LEN + 1];
    store_identity_t fb = {"facebook", "fb-1", "pat@example.com", 1, "Pat", NULL};
    store_identity_t apple = {"apple", "ap-1", NULL, 0, "Pat", NULL};
    store_login_opts_t auto_link = {1, NULL, NULL, "web"}, explicit_link = {0, NULL, NULL, "mobile"};
    store_login_info_t info;
    json_t *c, *ident;
    size_t i;

    customer("pat", "pat@example.com", t0, id);
    ck_assert_int_eq(store_login(st, &fb, &auto_link, t0 + 1, other, &info, NULL), GW_OK);
    ck_assert_str_eq(other, id);
    explicit_link.link_to = id;
    ck_assert_int_eq(store_login(st, &apple, &explicit_link, t0 + 2, other, &info, NULL), GW_OK);
    c = profile(id);
    json_array_foreach(json_object_get(c, "identities"), i, ident)
    {
        const char *p = json_string_value(json_object_get(ident, "provider"));
        const char *by = json_string_value(json_object_get(ident, "linked_by"));
        ck_assert_ptr_nonnull(by);
        ck_assert_str_eq(by, strcmp(p, "google") == 0     ? "first_sign_in"
                             : strcmp(p, "facebook") == 0 ? "verified_email"
                                                          : "explicit_link");
    }
    ck_assert_uint_eq(i, 3);
    /* a sign-in is seen on its channel too */
    ck_assert(lists(json_object_get(c, "channels_seen"), "mobile"));
    ck_assert_int_eq(at(c, "channels", "mobile", "first_seen_ms"), (json_int_t)(t0 + 2));
    json_decref(c);
}
END_TEST

/* ------------------------------------------------------------------ visits, through the recorder */

struct seen {
    store_tp_t tp[16];
    char visit[16][24], campaign[16][64];
    size_t n;
};

static int collect(const store_tp_t *tp, void *arg)
{
    struct seen *s = arg;
    if (s->n < 16) {
        s->tp[s->n] = *tp;
        snprintf(s->visit[s->n], sizeof(s->visit[0]), "%s", tp->visit_id != NULL ? tp->visit_id : "");
        snprintf(s->campaign[s->n], sizeof(s->campaign[0]), "%s", tp->utm_campaign != NULL ? tp->utm_campaign : "");
        ++s->n;
    }
    return 0;
}

static void push(gw_recorder_t *rec, const char *cid, const char *ua, const char *query, uint64_t when)
{
    gw_touch_t t;
    memset(&t, 0, sizeof(t));
    t.customer_id = cid;
    t.channel = "web";
    t.touchpoint = "view";
    t.stage = "research";
    t.route = "shop";
    t.method = "GET";
    t.user_agent = ua;
    t.query = query;
    t.query_len = query != NULL ? strlen(query) : 0;
    t.status = 200;
    t.occurred_at_ms = when;
    ck_assert_int_eq(gw_recorder_push(rec, &t), 0);
}

START_TEST(test_a_second_device_or_a_new_campaign_click_starts_a_visit)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1];
    gw_recorder_t *rec;
    struct seen s;
    json_t *c;

    customer("vic", "vic@example.com", t0, id);
    ck_assert_ptr_nonnull(rec = gw_recorder_create(st, 1024));
    push(rec, id, DESKTOP, "utm_source=news&utm_campaign=spring", t0);                  /* 0: desktop visit */
    push(rec, id, DESKTOP, "page=2", t0 + MIN_MS);                                      /* 1: same visit */
    push(rec, id, PHONE, "utm_source=ads&utm_campaign=paid&gclid=A1", t0 + 3 * MIN_MS); /* 2: phone, a paid click */
    push(rec, id, DESKTOP, NULL, t0 + 4 * MIN_MS); /* 3: the desktop visit goes on */
    push(rec, id, PHONE, NULL, t0 + 5 * MIN_MS);   /* 4: the phone visit goes on */
    push(rec, id, PHONE, "utm_source=ads&utm_campaign=paid&gclid=B2", t0 + 6 * MIN_MS); /* 5: another click */
    push(rec, id, PHONE, "utm_source=ads&utm_campaign=paid&gclid=B2", t0 + 7 * MIN_MS); /* 6: the same click again */
    push(rec, id, DESKTOP, NULL, t0 + 40 * MIN_MS); /* 7: 36 idle minutes: a new visit */
    gw_recorder_stop(rec);
    gw_recorder_free(rec);

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(store_journey(st, id, 0, collect, &s), GW_OK);
    ck_assert_uint_eq(s.n, 8);
    ck_assert(s.tp[0].visit_start);
    ck_assert_str_eq(s.campaign[0], "spring");
    ck_assert(!s.tp[1].visit_start);
    ck_assert_str_eq(s.visit[1], s.visit[0]);
    /* the phone three minutes later: its own visit, with its own attribution */
    ck_assert(s.tp[2].visit_start);
    ck_assert_str_ne(s.visit[2], s.visit[0]);
    ck_assert_str_eq(s.campaign[2], "paid");
    ck_assert_int_eq(s.tp[2].click_id, 2);
    ck_assert_str_eq(s.visit[3], s.visit[0]);
    ck_assert(!s.tp[3].visit_start);
    ck_assert_str_eq(s.visit[4], s.visit[2]);
    /* a click with another click id, within 30 minutes: a new visit; the same one repeated: not */
    ck_assert(s.tp[5].visit_start);
    ck_assert_str_ne(s.visit[5], s.visit[2]);
    ck_assert_str_eq(s.campaign[5], "paid");
    ck_assert(!s.tp[6].visit_start);
    ck_assert_str_eq(s.visit[6], s.visit[5]);
    ck_assert(s.tp[7].visit_start);
    ck_assert_str_ne(s.visit[7], s.visit[3]);
    /* recorded touchpoints keep the profile's devices and channels in step too */
    c = profile(id);
    ck_assert_int_eq(at(c, "devices", "desktop", "last_seen_ms"), (json_int_t)(t0 + 40 * MIN_MS));
    ck_assert_int_eq(at(c, "devices", "mobile", "last_seen_ms"), (json_int_t)(t0 + 7 * MIN_MS));
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + 40 * MIN_MS));
    ck_assert_str_eq(json_string_value(json_object_get(c, "stage")), "research");
    json_decref(c);
}
END_TEST

/* ------------------------------------------------------------------ profiles follow the log */

/* one block of touchpoints through store_touchpoints_append(), as the recorder's writer commits them */
static void append_block(const char *cid, const char *const *channels, const char *device, const char *stage,
                         uint64_t from_ms, size_t n)
{
    uint8_t buf[16384];
    size_t len = 0;
    for (size_t i = 0; i < n; ++i) {
        store_tp_t tp;
        char id[64]; /* "tp_appended" + two numbers of up to 20 digits */
        size_t one;
        memset(&tp, 0, sizeof(tp));
        snprintf(id, sizeof(id), "tp_appended%zu_%llu", i, (unsigned long long)from_ms);
        tp.id = id;
        tp.customer_id = cid;
        tp.occurred_at_ms = tp.received_at_ms = from_ms + i * 1000;
        tp.channel = channels[i % 2];
        tp.touchpoint = "view";
        tp.stage = stage;
        tp.device = device;
        ck_assert_uint_gt(one = store_tp_encode(&tp, buf + len, sizeof(buf) - len), 0);
        len += one;
    }
    ck_assert_int_eq(store_touchpoints_append(st, buf, len, n), GW_OK);
}

START_TEST(test_profiles_follow_the_log_in_their_own_transaction)
{
    static const char *const app_api[] = {"mobile", "api"}, *const store_mail[] = {"store", "email"};
    uint64_t t0 = 1700000000000ULL, merged = 0;
    char id[STORE_ID_LEN + 1];
    json_t *c;

    customer("lee", "lee@example.com", t0, id);
    /* appended: the profile does not follow in the block's own transaction ... */
    append_block(id, app_api, "app", "select", t0 + 10 * MIN_MS, 4);
    c = profile(id);
    ck_assert(!lists(json_object_get(c, "channels_seen"), "mobile"));
    json_decref(c);
    /* ... but once the log is followed, in one transaction of its own */
    ck_assert_int_eq(store_touchpoints_profile(st), GW_OK);
    c = profile(id);
    ck_assert(lists(json_object_get(c, "channels_seen"), "mobile"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "api"));
    ck_assert_int_eq(at(c, "devices", "app", "last_seen_ms"), (json_int_t)(t0 + 10 * MIN_MS + 3000));
    ck_assert_int_eq(at(c, "stages_reached", NULL, "select"), (json_int_t)(t0 + 10 * MIN_MS));
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + 10 * MIN_MS + 3000));
    json_decref(c);
    /* a merge takes the blocks out of the log: their touchpoints go into the profiles first */
    append_block(id, store_mail, "desktop", "convert", t0 + 20 * MIN_MS, 2);
    ck_assert_int_eq(store_touchpoints_merge(st, &merged), GW_OK);
    ck_assert_uint_eq(merged, 6);
    c = profile(id);
    ck_assert(lists(json_object_get(c, "channels_seen"), "store"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "email"));
    ck_assert_str_eq(json_string_value(json_object_get(c, "stage")), "convert");
    ck_assert_int_eq(at(c, "channels", "email", "last_seen_ms"), (json_int_t)(t0 + 20 * MIN_MS + 1000));
    json_decref(c);
    /* following again finds nothing new and changes nothing */
    ck_assert_int_eq(store_touchpoints_profile(st), GW_OK);
    c = profile(id);
    ck_assert_int_eq(at(c, "channels", "mobile", "first_seen_ms"), (json_int_t)(t0 + 10 * MIN_MS));
    json_decref(c);
}
END_TEST

/* polls (no time limit of its own: the test case's timeout bounds it) until the profile lists channel */
static void wait_for_channel(const char *id, const char *channel)
{
    for (;;) {
        json_t *c = profile(id);
        int seen = lists(json_object_get(c, "channels_seen"), channel);
        json_decref(c);
        if (seen)
            return;
        usleep(20 * 1000);
    }
}

START_TEST(test_recorded_touchpoints_reach_the_profile_while_the_recorder_runs)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1];
    gw_recorder_t *rec;
    gw_touch_t t;
    json_t *c;

    customer("kim", "kim@example.com", t0, id);
    ck_assert_ptr_nonnull(rec = gw_recorder_create(st, 1024));
    memset(&t, 0, sizeof(t));
    t.customer_id = id;
    t.channel = "mobile";
    t.touchpoint = "opened app";
    t.stage = "own";
    t.route = "app";
    t.method = "GET";
    t.user_agent = PHONE;
    t.status = 200;
    t.occurred_at_ms = t0 + 5 * MIN_MS;
    ck_assert_int_eq(gw_recorder_push(rec, &t), 0);
    /* no stop, no merge asked for: the writer brings the profile along by itself */
    wait_for_channel(id, "mobile");
    c = profile(id);
    ck_assert_str_eq(json_string_value(json_object_get(c, "stage")), "own");
    ck_assert_int_eq(at(c, "devices", "mobile", "last_seen_ms"), (json_int_t)(t0 + 5 * MIN_MS));
    json_decref(c);
    gw_recorder_stop(rec);
    gw_recorder_free(rec);
}
END_TEST

START_TEST(test_a_killed_writer_loses_no_profile_change)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1];
    int status;
    pid_t pid;
    json_t *c;

    customer("max", "max@example.com", t0, id);
    store_close(st);
    st = NULL;
    /* a process whose writer commits touchpoints and is then killed (SIGKILL: no stop, no merge) */
    if ((pid = fork()) == 0) {
        static const char *const ch[] = {"contact-centre", "email"};
        store_t *child;
        if (store_open(dir, 64, &child) != GW_OK)
            _exit(2);
        st = child;
        append_block(id, ch, "desktop", "loyalty", t0 + 30 * MIN_MS, 3);
        raise(SIGKILL);
        _exit(3);
    }
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* the next open brings the committed touchpoints into the profile */
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    c = profile(id);
    ck_assert(lists(json_object_get(c, "channels_seen"), "contact-centre"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "email"));
    ck_assert_str_eq(json_string_value(json_object_get(c, "stage")), "loyalty");
    ck_assert_int_eq(at(c, NULL, NULL, "last_seen_ms"), (json_int_t)(t0 + 30 * MIN_MS + 2000));
    json_decref(c);
}
END_TEST

/* whether the store's profile_seen database holds a record for cid (read with LMDB itself, the store closed) */
static int seen_record(const char *cid)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {STORE_ID_LEN, (void *)cid}, v;
    int rc;

    store_close(st);
    st = NULL;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "profile_seen", 0, &dbi), 0);
    rc = mdb_get(txn, dbi, &k, &v);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    ck_assert_int_eq(store_open(dir, 64, &st), GW_OK);
    return rc == 0;
}

/* store_customers_foreach() callback: keeps the first customer */
static int first_customer(json_t *customer, void *arg)
{
    json_t **out = arg;
    *out = json_incref(customer);
    return 1;
}

START_TEST(test_what_touchpoints_told_the_profile_is_kept_apart_and_erased_with_it)
{
    uint64_t t0 = 1700000000000ULL;
    char id[STORE_ID_LEN + 1];
    unsigned sessions = 0;
    store_t *ro;
    json_t *c, *stored;

    customer("ada", "ada@example.com", t0, id);
    ingest(id, "email", "opened", "need", t0 + MIN_MS);
    ck_assert(seen_record(id));
    /* every reader sees the profile with it, read-only ones and walks over all customers too */
    ck_assert_int_eq(store_open_readonly(dir, &ro), GW_OK);
    ck_assert_int_eq(store_customer_get(ro, id, &c), GW_OK);
    ck_assert(lists(json_object_get(c, "channels_seen"), "email"));
    ck_assert(lists(json_object_get(c, "channels_seen"), "web"));
    ck_assert_int_eq(at(c, "stages_reached", NULL, "need"), (json_int_t)(t0 + MIN_MS));
    json_decref(c);
    store_close(ro);
    stored = NULL;
    ck_assert_int_eq(store_customers_foreach(st, first_customer, &stored), GW_OK);
    ck_assert_ptr_nonnull(stored);
    ck_assert_int_eq(at(stored, "channels", "email", "first_seen_ms"), (json_int_t)(t0 + MIN_MS));
    json_decref(stored);
    /* erasing the customer erases it too */
    ck_assert_int_eq(store_customer_delete(st, id, &sessions, NULL), GW_OK);
    ck_assert(!seen_record(id));
}
END_TEST

/* ------------------------------------------------------------------ touchpoint_skip */

static char tmpl[] = "/tmp/jg-skip-XXXXXX";

static gw_config_t *load(const char *routes, char *errors, size_t cap)
{
    char path[128], text[2048];
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    FILE *fp;

    snprintf(path, sizeof(path), "%s/cfg.json", tmpl);
    snprintf(text, sizeof(text),
             "{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":8080}],\"public_url\":\"http://127.0.0.1:8080\","
             "\"store\":{\"path\":\"/tmp/jg-unit\"},\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\"}},"
             "\"routes\":[%s]}",
             routes);
    ck_assert_ptr_nonnull(fp = fopen(path, "w"));
    fputs(text, fp);
    fclose(fp);
    gw_config_load(path, &cfg, &errs);
    errors[0] = '\0';
    for (size_t i = 0; i < errs.count; ++i)
        snprintf(errors + strlen(errors), cap - strlen(errors), "%s\n", errs.msgs[i]);
    gw_config_errors_clear(&errs);
    return cfg;
}

static int skipped(const gw_config_t *cfg, size_t route, const char *path)
{
    return gw_route_touchpoint_skipped(&cfg->routes[route], path, strlen(path));
}

START_TEST(test_browser_noise_records_no_touchpoint)
{
    char errors[2048];
    gw_config_t *cfg;

    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    cfg = load("{\"name\":\"site\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":\"shop\",\"auth\":\"none\","
               "\"touchpoint\":\"view\"},"
               "{\"name\":\"all\",\"match\":{\"path_prefix\":\"/all/\"},\"upstream\":\"shop\",\"auth\":\"none\","
               "\"touchpoint\":\"view\",\"touchpoint_skip\":[]},"
               "{\"name\":\"own\",\"match\":{\"path_prefix\":\"/own/\"},\"upstream\":\"shop\",\"auth\":\"none\","
               "\"touchpoint\":\"view\",\"touchpoint_skip\":[\"/own/assets/*\",\"/own/ping\"]}",
               errors, sizeof(errors));
    ck_assert_msg(cfg != NULL, "%s", errors);
    /* by default */
    ck_assert(skipped(cfg, 0, "/favicon.ico"));
    ck_assert(skipped(cfg, 0, "/robots.txt"));
    ck_assert(skipped(cfg, 0, "/apple-touch-icon.png"));
    ck_assert(skipped(cfg, 0, "/apple-touch-icon-120x120-precomposed.png"));
    ck_assert(skipped(cfg, 0, "/sitemap.xml"));
    ck_assert(skipped(cfg, 0, "/.well-known/security.txt"));
    ck_assert(skipped(cfg, 0, "/manifest.json"));
    ck_assert(skipped(cfg, 0, "/browserconfig.xml"));
    ck_assert(!skipped(cfg, 0, "/"));
    ck_assert(!skipped(cfg, 0, "/pricing"));
    ck_assert(!skipped(cfg, 0, "/favicon.ico.html"));
    ck_assert(!skipped(cfg, 0, "/apple-touch-icon.png.txt"));
    ck_assert(!skipped(cfg, 0, "/docs/robots.txt"));
    /* [] records everything */
    ck_assert(!skipped(cfg, 1, "/favicon.ico"));
    /* a route's own list replaces the defaults */
    ck_assert(skipped(cfg, 2, "/own/assets/app.js"));
    ck_assert(skipped(cfg, 2, "/own/ping"));
    ck_assert(!skipped(cfg, 2, "/own/ping/2"));
    ck_assert(!skipped(cfg, 2, "/favicon.ico"));
    gw_config_unref(cfg);

    /* refused, naming the file and the key */
    cfg = load("{\"name\":\"site\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":\"shop\",\"auth\":\"none\","
               "\"touchpoint_skip\":\"/favicon.ico\"},"
               "{\"name\":\"b\",\"match\":{\"path_prefix\":\"/b/\"},\"upstream\":\"shop\",\"auth\":\"none\","
               "\"touchpoint_skip\":[\"favicon.ico\",\"/ok\",\"/a?b\",7,\"/x\\u0001\"]}",
               errors, sizeof(errors));
    ck_assert_ptr_null(cfg);
    ck_assert_msg(strstr(errors, "cfg.json: routes[0].touchpoint_skip: must be a list") != NULL, "%s", errors);
    ck_assert_msg(strstr(errors, "cfg.json: routes[1].touchpoint_skip[0]: must be a path") != NULL, "%s", errors);
    ck_assert_msg(strstr(errors, "routes[1].touchpoint_skip[1]") == NULL, "%s", errors);
    ck_assert_msg(strstr(errors, "routes[1].touchpoint_skip[2]: must be a path") != NULL, "%s", errors);
    ck_assert_msg(strstr(errors, "routes[1].touchpoint_skip[3]: must be a path") != NULL, "%s", errors);
    ck_assert_msg(strstr(errors, "routes[1].touchpoint_skip[4]: must be a path") != NULL, "%s", errors);
    {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journey_data");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ingested_touchpoints_move_channels_and_last_seen);
    tcase_add_test(tc, test_profile_is_rewritten_only_when_something_changed);
    tcase_add_test(tc, test_identities_say_how_they_were_linked);
    tcase_add_test(tc, test_a_second_device_or_a_new_campaign_click_starts_a_visit);
    tcase_add_test(tc, test_profiles_follow_the_log_in_their_own_transaction);
    tcase_add_test(tc, test_recorded_touchpoints_reach_the_profile_while_the_recorder_runs);
    tcase_add_test(tc, test_a_killed_writer_loses_no_profile_change);
    tcase_add_test(tc, test_what_touchpoints_told_the_profile_is_kept_apart_and_erased_with_it);
    tcase_add_test(tc, test_browser_noise_records_no_touchpoint);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
