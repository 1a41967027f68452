/* Unit tests: the worker pool keeps a worker for the jobs people wait on, whatever background work queues. */
#include "workers.h"

#include "../check_run.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int gate_open, bg_started, bg_done, fg_done;

/* the tests share one process (CK_FORK=no): each starts from a closed gate and zero counts */
static void reset(void)
{
    pthread_mutex_lock(&lock);
    gate_open = bg_started = bg_done = fg_done = 0;
    pthread_mutex_unlock(&lock);
}

/* background work that holds its worker until the gate opens */
static void blocked_bg(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    ++bg_started;
    pthread_cond_broadcast(&cond);
    while (!gate_open)
        pthread_cond_wait(&cond, &lock);
    ++bg_done;
    pthread_mutex_unlock(&lock);
}

static void fg(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    ++fg_done;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

START_TEST(test_background_work_never_takes_the_last_worker)
{
    gw_workers_t *w;
    int accepted = 0;

    reset();
    w = gw_workers_create(3, 16);

    /* 40 background jobs that never finish on their own: 16 queue, 2 of 3 workers take them */
    for (int i = 0; i < 40; ++i)
        accepted += gw_workers_submit_background(w, blocked_bg, NULL) == GW_OK;
    pthread_mutex_lock(&lock);
    while (bg_started < 2)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    ck_assert_int_le(accepted, 16 + 2);
    /* the jobs a person waits on are still accepted, and run now, on the worker kept for them */
    for (int i = 0; i < 10; ++i)
        ck_assert_int_eq(gw_workers_submit(w, fg, NULL), GW_OK);
    pthread_mutex_lock(&lock);
    while (fg_done < 10)
        pthread_cond_wait(&cond, &lock);
    ck_assert_int_eq(bg_started, 2);
    ck_assert_int_eq(bg_done, 0);
    gate_open = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    /* drain waits for the background queue too */
    ck_assert_int_eq(gw_workers_drain(w, 60000), GW_OK);
    ck_assert_int_eq(bg_done, accepted);
}
END_TEST

static char order[16];
static int norder;

/* a job that notes its letter in order[] */
static void note(void *arg)
{
    pthread_mutex_lock(&lock);
    order[norder++] = *(const char *)arg;
    pthread_mutex_unlock(&lock);
}

START_TEST(test_queued_jobs_go_before_background_work)
{
    /* one worker, held while both queues fill: the jobs people wait on run first */
    gw_workers_t *w;
    static const char b = 'b', f = 'f';

    reset();
    w = gw_workers_create(1, 8);

    ck_assert_int_eq(gw_workers_submit(w, blocked_bg, NULL), GW_OK);
    pthread_mutex_lock(&lock);
    while (bg_started < 1)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    ck_assert_int_eq(gw_workers_submit_background(w, note, (void *)&b), GW_OK);
    ck_assert_int_eq(gw_workers_submit_background(w, note, (void *)&b), GW_OK);
    for (int i = 0; i < 3; ++i)
        ck_assert_int_eq(gw_workers_submit(w, note, (void *)&f), GW_OK);
    pthread_mutex_lock(&lock);
    gate_open = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    ck_assert_int_eq(gw_workers_drain(w, 60000), GW_OK);
    ck_assert_int_eq(norder, 5);
    ck_assert_mem_eq(order, "fffbb", 5);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("workers");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_background_work_never_takes_the_last_worker);
    tcase_add_test(tc, test_queued_jobs_go_before_background_work);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
