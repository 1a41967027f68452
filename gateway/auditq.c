/* journeygate — aggregated, bounded refusal records for the audit trail; see auditq.h. */
#include "auditq.h"

#include "crypto.h"
#include "metrics.h"
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODULE "audit"
#define AGG_SLOTS 4096 /* keys aggregated at once; a key whose slot is taken over has its count written first */

/* one record to write: the event with its strings in the same allocation */
struct arec {
    store_audit_event_t ev;
    uint64_t count; /* 0: a record of its own; else how many events it stands for */
    uint64_t at_ms;
    char strings[];
};

struct agg {
    char *key;          /* NULL: a free slot */
    struct arec *first; /* the first refusal of the interval: the aggregate's fields */
    uint64_t repeats;   /* refusals after the first in this interval */
};

struct gw_auditq {
    store_t *st;
    uint64_t interval_ms;
    unsigned per_interval;
    size_t cap;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t tid;
    struct arec **queue;
    size_t queued;
    unsigned written[2];     /* records queued this interval, per class (0 anonymous, 1 signed in) */
    uint64_t over_limit;     /* events past the cap this interval */
    uint64_t lost;           /* events that could not be queued or written, not yet in a gap record */
    uint64_t flush_asked;    /* a flush asked for (generation) ... */
    uint64_t flush_done;     /* ... and the last one done */
    uint64_t interval_start; /* monotonic ms */
    int stopping;
    struct agg table[AGG_SLOTS];
};

static size_t slen(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 0;
}

static const char *put(char **at, const char *s)
{
    char *p = *at;
    size_t n;
    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    memcpy(p, s, n);
    *at += n;
    return p;
}

/* a copy of ev; the request's own ids only when keep_request (an aggregate stands for many requests) */
static struct arec *arec_new(const store_audit_event_t *ev, uint64_t count, uint64_t at_ms, int keep_request)
{
    size_t n = slen(ev->event) + slen(ev->outcome) + slen(ev->reason) + slen(ev->provider) + slen(ev->customer_id) +
               slen(ev->subject) + slen(ev->client) + slen(ev->user_agent) + slen(ev->flow_id) + slen(ev->request_id) +
               slen(ev->actor) + slen(ev->route) + slen(ev->detail);
    struct arec *r = malloc(sizeof(*r) + n);
    char *at;
    if (r == NULL)
        return NULL;
    at = r->strings;
    memset(&r->ev, 0, sizeof(r->ev));
    r->ev.event = put(&at, ev->event);
    r->ev.outcome = put(&at, ev->outcome);
    r->ev.reason = put(&at, ev->reason);
    r->ev.provider = put(&at, ev->provider);
    r->ev.customer_id = put(&at, ev->customer_id);
    r->ev.subject = put(&at, ev->subject);
    r->ev.client = put(&at, ev->client);
    /* who was refused, and where: part of what repeats aggregate on (the caller's key holds them) */
    r->ev.actor = put(&at, ev->actor);
    r->ev.route = put(&at, ev->route);
    r->ev.detail = put(&at, ev->detail);
    if (keep_request) {
        r->ev.user_agent = put(&at, ev->user_agent);
        r->ev.flow_id = put(&at, ev->flow_id);
        r->ev.request_id = put(&at, ev->request_id);
    }
    r->count = count;
    r->at_ms = at_ms;
    return r;
}

/* the events a record stands for */
static uint64_t weight(const struct arec *r)
{
    return r->count > 0 ? r->count : 1;
}

/* queues a record under the cap of its class (lock held); takes r; counts what does not fit */
static void enqueue(gw_auditq_t *q, struct arec *r)
{
    unsigned cls;
    if (r == NULL)
        return;
    cls = r->ev.customer_id != NULL;
    if (q->written[cls] >= q->per_interval) {
        q->over_limit += weight(r);
        gw_metrics_global_add(GW_GCTR_AUDIT_OVER_LIMIT, weight(r));
        free(r);
        return;
    }
    if (q->queued >= q->cap) {
        q->lost += weight(r);
        gw_metrics_global_add(GW_GCTR_AUDIT_LOST, weight(r));
        free(r);
        return;
    }
    ++q->written[cls];
    q->queue[q->queued++] = r;
    pthread_cond_signal(&q->wake);
}

/* the slot's aggregate (if any repeats) is queued and the slot emptied (lock held) */
static void close_slot(gw_auditq_t *q, struct agg *a, uint64_t at_ms)
{
    if (a->key == NULL)
        return;
    if (a->repeats > 0) {
        struct arec *r = arec_new(&a->first->ev, a->repeats, at_ms, 0);
        if (r != NULL) {
            enqueue(q, r);
        } else {
            q->lost += a->repeats;
            gw_metrics_global_add(GW_GCTR_AUDIT_LOST, a->repeats);
        }
    }
    free(a->key);
    free(a->first);
    a->key = NULL;
    a->first = NULL;
    a->repeats = 0;
}

void gw_auditq_refusal(gw_auditq_t *q, const char *key, const store_audit_event_t *ev, uint64_t now_ms)
{
    struct agg *a;
    struct arec *r;

    if (q == NULL)
        return;
    a = &q->table[gw_fnv1a(GW_FNV1A_SEED, key, strlen(key)) % AGG_SLOTS];
    pthread_mutex_lock(&q->lock);
    if (a->key != NULL && strcmp(a->key, key) == 0) {
        ++a->repeats;
        pthread_mutex_unlock(&q->lock);
        gw_metrics_global_add(GW_GCTR_AUDIT_AGGREGATED, 1);
        return;
    }
    close_slot(q, a, now_ms);
    /* the slot remembers the key even when its first record goes past the cap: repeats stay cheap */
    if ((a->key = strdup(key)) != NULL && (a->first = arec_new(ev, 0, now_ms, 0)) == NULL) {
        free(a->key);
        a->key = NULL;
    }
    if ((r = arec_new(ev, 0, now_ms, 1)) != NULL) {
        enqueue(q, r);
    } else {
        ++q->lost;
        gw_metrics_global_add(GW_GCTR_AUDIT_LOST, 1);
    }
    pthread_mutex_unlock(&q->lock);
}

/* a gap record for n events (lock held: it goes into out, past the cap and the queue's bound) */
static struct arec *gap(const char *reason, uint64_t n)
{
    store_audit_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.event = "audit_gap";
    ev.outcome = "dropped";
    ev.reason = reason;
    return arec_new(&ev, n, gw_wall_ms(), 0);
}

static void *writer_main(void *arg)
{
    gw_auditq_t *q = arg;
    struct arec **batch = calloc(q->cap + 2, sizeof(*batch));
    const store_audit_event_t **evs = calloc(q->cap + 2, sizeof(*evs));
    uint64_t *counts = calloc(q->cap + 2, sizeof(*counts)), *times = calloc(q->cap + 2, sizeof(*times));

    pthread_mutex_lock(&q->lock);
    for (;;) {
        uint64_t now = gw_mono_ms(), flush_gen = q->flush_asked;
        int end = q->stopping || q->flush_asked != q->flush_done || now >= q->interval_start + q->interval_ms;
        size_t n = 0;
        gw_status_t st;

        if (!end && q->queued == 0) {
            struct timespec ts = gw_realtime_in(q->interval_start + q->interval_ms - now);
            pthread_cond_timedwait(&q->wake, &q->lock, &ts);
            continue;
        }
        if (end) {
            /* the interval's aggregates, then a new interval (its cap counts them), then the gaps */
            uint64_t at = gw_wall_ms();
            q->written[0] = q->written[1] = 0;
            for (size_t i = 0; i < AGG_SLOTS; ++i)
                close_slot(q, &q->table[i], at);
            q->interval_start = now;
        }
        for (size_t i = 0; i < q->queued; ++i)
            batch[n++] = q->queue[i];
        q->queued = 0;
        if (end && q->over_limit > 0 && (batch[n] = gap("over_limit", q->over_limit)) != NULL) {
            ++n;
            q->over_limit = 0;
        }
        if (end && q->lost > 0 && (batch[n] = gap("lost", q->lost)) != NULL) {
            ++n;
            q->lost = 0;
        }
        pthread_mutex_unlock(&q->lock);

        for (size_t i = 0; i < n; ++i) {
            evs[i] = &batch[i]->ev;
            counts[i] = batch[i]->count;
            times[i] = batch[i]->at_ms;
        }
        st = batch != NULL && evs != NULL && counts != NULL && times != NULL
                 ? store_audit_write_batch(q->st, evs, counts, times, n)
                 : GW_ENOMEM;

        pthread_mutex_lock(&q->lock);
        if (st != GW_OK) {
            uint64_t missing = 0;
            for (size_t i = 0; i < n; ++i)
                missing += weight(batch[i]);
            /* counted, and said in the next interval's gap record (a gap record lost is counted again) */
            q->lost += missing;
            gw_metrics_global_add(GW_GCTR_AUDIT_LOST, missing);
            GW_LOG_ERR(MODULE, "could not write %zu refusal records: %s", n, gw_status_str(st));
        }
        for (size_t i = 0; i < n; ++i)
            free(batch[i]);
        if (end) {
            q->flush_done = flush_gen;
            pthread_cond_broadcast(&q->done);
            if (q->stopping)
                break;
        }
    }
    pthread_mutex_unlock(&q->lock);
    free(batch);
    free(evs);
    free(counts);
    free(times);
    return NULL;
}

gw_auditq_t *gw_auditq_create(store_t *st, uint64_t interval_ms, unsigned per_interval, size_t queue)
{
    gw_auditq_t *q = calloc(1, sizeof(*q));

    if (q == NULL || (q->queue = calloc(queue > 0 ? queue : 1, sizeof(*q->queue))) == NULL) {
        free(q);
        return NULL;
    }
    q->st = st;
    q->interval_ms = interval_ms >= 10 ? interval_ms : 10;
    q->per_interval = per_interval > 0 ? per_interval : 1;
    q->cap = queue > 0 ? queue : 1;
    q->interval_start = gw_mono_ms();
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    pthread_cond_init(&q->done, NULL);
    if (gw_thread_start(&q->tid, writer_main, q) != 0) {
        free(q->queue);
        free(q);
        return NULL;
    }
    return q;
}

void gw_auditq_flush(gw_auditq_t *q)
{
    uint64_t gen;
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    gen = ++q->flush_asked;
    pthread_cond_signal(&q->wake);
    while (q->flush_done < gen && !q->stopping)
        pthread_cond_wait(&q->done, &q->lock);
    pthread_mutex_unlock(&q->lock);
}

void gw_auditq_destroy(gw_auditq_t *q)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->tid, NULL);
    /* the writer closed every slot and wrote the queue on its way out */
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
    pthread_cond_destroy(&q->done);
    free(q->queue);
    free(q);
}
