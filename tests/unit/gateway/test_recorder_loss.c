/*
 * Unit tests: the touchpoint writer keeps a batch the store refused and tries it again (a real
 * failure: the data file may not grow past RLIMIT_FSIZE, so LMDB's commit fails with EFBIG until
 * the limit is raised), and what can never be written is counted lost, in the recorder and /metrics.
 */
#include "metrics.h"
#include "recorder.h"
#include "store.h"

#include "../check_run.h"
#include "temp_store.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static store_t *st;
static gw_recorder_t *r;
static gw_recorder_t *kept[8]; /* stopped, never freed (as in the gateway): they stay reachable here */
static unsigned nkept;

static void setup(void)
{
    jg_temp_store_open(dir, sizeof(dir), "jg-rec", &st);
}

static void teardown(void)
{
    if (r != NULL && nkept < sizeof(kept) / sizeof(kept[0]))
        kept[nkept++] = r;
    r = NULL;
    jg_temp_store_close(&st, dir);
}

/* n touchpoints of about 1.5 KB each: any batch of 50 or more needs the data file to grow by more than 64 KB */
static void push(unsigned n)
{
    char route[241], long_text[241];
    memset(long_text, 'x', 240);
    long_text[240] = '\0';
    for (unsigned i = 0; i < n; ++i) {
        gw_touch_t t = {0};
        snprintf(route, sizeof(route), "/shop/item/%u/%.200s", i, long_text);
        t.customer_id = "c_aaaaaaaaaaaaaaaaaaaaaaaa";
        t.channel = "web";
        t.touchpoint = long_text;
        t.stage = long_text;
        t.route = route;
        t.method = "GET";
        t.provider = long_text;
        t.source = long_text;
        t.session = long_text;
        t.user_agent = "Mozilla/5.0 (X11; Linux x86_64)";
        t.status = 200;
        t.occurred_at_ms = 1700000000000ULL + i;
        ck_assert_int_eq(gw_recorder_push(r, &t), 0);
    }
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

struct counts {
    uint64_t accepted, dropped, written, failed;
};

static struct counts counts_of(void)
{
    struct counts c;
    gw_recorder_counts(r, &c.accepted, &c.dropped, &c.written, &c.failed);
    return c;
}

static uint64_t lost_metric(void)
{
    size_t len;
    char *text = gw_metrics_render(&len), *p;
    unsigned long long v = 0;
    ck_assert_ptr_nonnull(text);
    p = strstr(text, "\njourneygate_touchpoints_lost_total ");
    ck_assert_ptr_nonnull(p);
    v = strtoull(p + strlen("\njourneygate_touchpoints_lost_total "), NULL, 10);
    free(text);
    return v;
}

START_TEST(test_failed_commit_is_retried_with_the_same_batch)
{
    char file[128];
    struct stat sb;
    struct rlimit old, tight;
    struct counts c;
    uint64_t lost_before = lost_metric();

    {
        /* about 1 MB in the store first: the limit below must leave room for other files (Check's own) */
        char *big = malloc(900000);
        json_t *status;
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 899999);
        big[899999] = '\0';
        status = json_pack("{s:s}", "filler", big);
        free(big);
        ck_assert_int_eq(store_deletion_put(st, "filler", status), GW_OK);
        json_decref(status);
    }
    snprintf(file, sizeof(file), "%s/data.mdb", dir);
    ck_assert_int_eq(stat(file, &sb), 0);
    ck_assert_int_gt(sb.st_size, 800000);
    signal(SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG instead of killing the process */
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    tight = old;
    tight.rlim_cur = (rlim_t)sb.st_size + 65536;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &tight), 0);

    ck_assert_ptr_nonnull(r = gw_recorder_create(st, 65536));
    push(2000); /* about 3 MB: whatever the writer takes first, the commit needs the file to grow */
    for (int i = 0; i < 600 && gw_recorder_retries(r) < 2; ++i)
        pause_ms(50);
    ck_assert_uint_ge(gw_recorder_retries(r), 2);
    c = counts_of();
    ck_assert_uint_eq(c.written, 0);
    ck_assert_uint_eq(c.failed, 0); /* not lost: still being tried */

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0); /* the disk has room again */
    for (int i = 0; i < 600 && counts_of().written < 2000; ++i)
        pause_ms(50);
    c = counts_of();
    ck_assert_uint_eq(c.written, 2000);
    ck_assert_uint_eq(c.failed, 0);
    ck_assert_uint_eq(lost_metric(), lost_before);
    gw_recorder_stop(r);
    {
        uint64_t unmerged = 1;
        ck_assert_int_eq(store_touchpoints_unmerged(st, &unmerged), GW_OK);
        ck_assert_uint_eq(unmerged, 0); /* written, then merged at the stop */
    }
}
END_TEST

START_TEST(test_what_can_never_be_written_is_counted_lost)
{
    struct counts c;
    uint64_t lost_before = lost_metric();

    store_close(st);
    ck_assert_int_eq(store_open_readonly(dir, &st), GW_OK); /* every commit is refused */
    ck_assert_ptr_nonnull(r = gw_recorder_create(st, 65536));
    push(300);
    gw_recorder_stop(r); /* writes (or loses) everything accepted */
    c = counts_of();
    ck_assert_uint_eq(c.accepted, 300);
    ck_assert_uint_eq(c.written, 0);
    ck_assert_uint_eq(c.failed, 300);
    ck_assert_uint_eq(lost_metric(), lost_before + 300);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recorder_loss");
    TCase *tc = tcase_create("core");

    gw_log_threshold = GW_LOG_ERROR;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_failed_commit_is_retried_with_the_same_batch);
    tcase_add_test(tc, test_what_can_never_be_written_is_counted_lost);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
