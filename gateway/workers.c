#include "workers.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>

typedef struct job {
    gw_job_fn fn;
    void *arg;
    struct job *next;
} job_t;

/* a FIFO of jobs; len counts what waits in it */
typedef struct job_queue {
    job_t *head, *tail;
    size_t len;
} job_queue_t;

struct gw_workers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_queue_t fg;
    size_t max_queue, running;
    pthread_cond_t idle;
    /* background jobs: a queue of their own, taken only when no other job waits, by n - 1 workers at most */
    job_queue_t bg;
    size_t bg_running, bg_max_running;
};

/* takes the oldest job of q (lock held), or NULL when q is empty */
static job_t *queue_pop(job_queue_t *q)
{
    job_t *j = q->head;

    if (j != NULL) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        --q->len;
    }
    return j;
}

/* the next job a worker may take (lock held), or NULL; *bg says which queue it came from */
static job_t *next_job(gw_workers_t *w, int *bg)
{
    job_t *j;
    if ((j = queue_pop(&w->fg)) != NULL) {
        *bg = 0;
        return j;
    }
    if (w->bg.head != NULL && w->bg_running < w->bg_max_running) {
        j = queue_pop(&w->bg);
        ++w->bg_running;
        *bg = 1;
        return j;
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    gw_workers_t *w = arg;

    /* workers live as long as the process: nothing they hold is ever orphaned at exit */
    for (;;) {
        job_t *j;
        int bg = 0;
        pthread_mutex_lock(&w->lock);
        while ((j = next_job(w, &bg)) == NULL)
            pthread_cond_wait(&w->cond, &w->lock);
        ++w->running;
        pthread_mutex_unlock(&w->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&w->lock);
        if (bg)
            --w->bg_running; /* this worker looks for its next job itself: no wake-up needed */
        if (--w->running == 0 && w->fg.len == 0 && w->bg.len == 0)
            pthread_cond_broadcast(&w->idle);
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

int gw_thread_start(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(tid, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

gw_workers_t *gw_workers_create(unsigned n, size_t max_queue)
{
    gw_workers_t *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->idle, NULL);
    w->max_queue = max_queue;
    w->bg_max_running = n > 1 ? n - 1 : 1;
    for (unsigned i = 0; i < n; ++i) {
        pthread_t tid;
        if (gw_thread_start(&tid, worker_main, w) == 0)
            pthread_detach(tid);
    }
    return w;
}

/* appends fn(arg) to q; GW_EUNAVAIL when q already holds max_queue jobs */
static gw_status_t enqueue(gw_workers_t *w, job_queue_t *q, gw_job_fn fn, void *arg)
{
    job_t *j = malloc(sizeof(*j));

    if (j == NULL)
        return GW_ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (q->len >= w->max_queue) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return GW_EUNAVAIL;
    }
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    ++q->len;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return GW_OK;
}

gw_status_t gw_workers_submit(gw_workers_t *w, gw_job_fn fn, void *arg)
{
    return enqueue(w, &w->fg, fn, arg);
}

gw_status_t gw_workers_submit_background(gw_workers_t *w, gw_job_fn fn, void *arg)
{
    return enqueue(w, &w->bg, fn, arg);
}

gw_status_t gw_workers_drain(gw_workers_t *w, unsigned timeout_ms)
{
    struct timespec deadline = gw_realtime_in(timeout_ms);
    gw_status_t st = GW_OK;

    pthread_mutex_lock(&w->lock);
    while (w->fg.len > 0 || w->bg.len > 0 || w->running > 0) {
        if (pthread_cond_timedwait(&w->idle, &w->lock, &deadline) != 0) {
            st = GW_ETIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return st;
}
