#include "workers.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

typedef struct job {
    gw_job_fn fn;
    void *arg;
    struct job *next;
} job_t;

struct gw_workers {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *head, *tail;
    size_t queued, max_queue;
};

static void *worker_main(void *arg)
{
    gw_workers_t *w = arg;

    /* workers live as long as the process: nothing they hold is ever orphaned at exit */
    for (;;) {
        job_t *j;
        pthread_mutex_lock(&w->lock);
        while (w->head == NULL)
            pthread_cond_wait(&w->cond, &w->lock);
        j = w->head;
        w->head = j->next;
        if (w->head == NULL)
            w->tail = NULL;
        --w->queued;
        pthread_mutex_unlock(&w->lock);
        j->fn(j->arg);
        free(j);
    }
    return NULL;
}

gw_workers_t *gw_workers_create(unsigned n, size_t max_queue)
{
    gw_workers_t *w = calloc(1, sizeof(*w));
    sigset_t all, old;

    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->max_queue = max_queue;
    /* signals belong to the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < n; ++i) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, worker_main, w) == 0)
            pthread_detach(tid);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return w;
}

gw_status_t gw_workers_submit(gw_workers_t *w, gw_job_fn fn, void *arg)
{
    job_t *j = malloc(sizeof(*j));

    if (j == NULL)
        return GW_ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->queued >= w->max_queue) {
        pthread_mutex_unlock(&w->lock);
        free(j);
        return GW_EUNAVAIL;
    }
    if (w->tail != NULL)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    ++w->queued;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return GW_OK;
}
