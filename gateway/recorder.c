#include "recorder.h"

#include "crypto.h"
#include "route.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MODULE "journeys"
#define BATCH 1024
#define VISIT_GAP_MS (30 * 60 * 1000) /* a visit ends after 30 minutes without a touchpoint on that channel */
#define VISIT_SLOTS 8192

struct gw_recorder {
    store_t *st;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t **ring;
    size_t cap, head, count;
    int stopping;
    pthread_t tid, pruner;
    pthread_cond_t prune_cond; /* the pruner's own: a push must always wake the writer, not the pruner */
    unsigned retention_days;
    int has_pruner;
    _Atomic uint64_t accepted, dropped, written, failed;
    /* anonymous visitors: open addressing by hash of the visitor id; guarded by lock */
    struct visitor {
        char id[32];
        uint64_t last_ms;
        json_t *touches; /* array */
    } * visitors;
    /* visits: per (customer, channel), owned by the writer thread only */
    struct {
        uint64_t key_hash, last_ms;
        char visit_id[24];
    } visits[VISIT_SLOTS];
};

const char *gw_device_class(const char *ua)
{
    if (ua == NULL || ua[0] == '\0')
        return "unknown";
    if (strcasestr(ua, "bot") != NULL || strcasestr(ua, "spider") != NULL || strcasestr(ua, "crawl") != NULL)
        return "bot";
    if (strcasestr(ua, "ipad") != NULL || strcasestr(ua, "tablet") != NULL)
        return "tablet";
    if (strcasestr(ua, "mobi") != NULL || strcasestr(ua, "iphone") != NULL || strcasestr(ua, "android") != NULL)
        return "mobile";
    if (strcasestr(ua, "okhttp") != NULL || strcasestr(ua, "cfnetwork") != NULL || strcasestr(ua, "dalvik") != NULL)
        return "app";
    if (strcasestr(ua, "mozilla") != NULL)
        return "desktop";
    return "unknown";
}

static uint64_t hash_str(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a != '\0'; ++a)
        h = (h ^ (unsigned char)*a) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (; *b != '\0'; ++b)
        h = (h ^ (unsigned char)*b) * 1099511628211ULL;
    return h | 1;
}

/* assigns visit_id; returns 1 when this touchpoint starts a visit */
static int assign_visit(gw_recorder_t *r, json_t *tp)
{
    const char *cid = json_string_value(json_object_get(tp, "customer_id"));
    const char *ch = json_string_value(json_object_get(tp, "channel"));
    uint64_t at = (uint64_t)json_integer_value(json_object_get(tp, "occurred_at_ms"));
    uint64_t h = hash_str(cid != NULL ? cid : "", ch != NULL ? ch : "");
    typeof(r->visits[0]) *v = &r->visits[h % VISIT_SLOTS];
    int fresh = v->key_hash != h || at > v->last_ms + VISIT_GAP_MS;

    if (fresh) {
        v->key_hash = h;
        gw_random_token(v->visit_id, sizeof(v->visit_id), 12);
    }
    if (at > v->last_ms || fresh)
        v->last_ms = at;
    json_object_set_new(tp, "visit_id", json_string(v->visit_id));
    return fresh;
}

static void *writer_main(void *arg)
{
    gw_recorder_t *r = arg;
    json_t *batch[BATCH];

    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&r->lock);
        while (r->count == 0 && !r->stopping)
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->count == 0 && r->stopping) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        while (n < BATCH && r->count > 0) {
            batch[n++] = r->ring[r->head];
            r->head = (r->head + 1) % r->cap;
            --r->count;
        }
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; i < n; ++i) {
            /* attribution belongs to the first touchpoint of a visit only */
            if (!assign_visit(r, batch[i]))
                json_object_del(batch[i], "attribution");
        }
        if (store_touchpoints_append(r->st, batch, n) == GW_OK) {
            atomic_fetch_add(&r->written, n);
        } else {
            atomic_fetch_add(&r->failed, n);
            GW_LOG_ERR(MODULE, "could not write %zu touchpoints", n);
        }
        for (size_t i = 0; i < n; ++i)
            json_decref(batch[i]);
    }
    return NULL;
}

gw_recorder_t *gw_recorder_create(store_t *st, size_t capacity)
{
    gw_recorder_t *r = calloc(1, sizeof(*r));
    sigset_t all, old;

    if (r == NULL || (r->ring = calloc(capacity, sizeof(*r->ring))) == NULL) {
        free(r);
        return NULL;
    }
    r->st = st;
    r->cap = capacity;
    if ((r->visitors = calloc(GW_VISITORS, sizeof(*r->visitors))) == NULL) {
        free(r->ring);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    pthread_cond_init(&r->prune_cond, NULL);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_create(&r->tid, NULL, writer_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* the host of a Referer URL, lower-case, into out (cap bytes) */
static void referrer_host(const char *ref, char *out, size_t cap)
{
    const char *p = ref != NULL ? strstr(ref, "://") : NULL;
    size_t n = 0;
    out[0] = '\0';
    if (p == NULL)
        return;
    for (p += 3; *p != '\0' && *p != '/' && *p != '?' && *p != '#' && *p != ':' && n + 1 < cap; ++p)
        out[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    out[n] = '\0';
}

static json_t *attribution(const gw_touch_t *t)
{
    static const char *const utm[] = {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", NULL};
    json_t *a = json_object();
    char host[256];

    referrer_host(t->referer, host, sizeof(host));
    if (host[0] != '\0')
        json_object_set_new(a, "referrer_host", json_string(host));
    for (const char *const *u = utm; *u != NULL; ++u) {
        char *v = NULL;
        if (t->query != NULL && gw_query_param(t->query, t->query_len, *u, &v) == 1 && strlen(v) <= 200)
            json_object_set_new(a, *u, json_string(v));
        free(v);
    }
    if (t->query != NULL) {
        char *v = NULL;
        int click = gw_query_param(t->query, t->query_len, "gclid", &v) > 0;
        free(v);
        v = NULL;
        click |= gw_query_param(t->query, t->query_len, "fbclid", &v) > 0;
        free(v);
        json_object_set_new(a, "click_id", json_boolean(click));
    }
    return a;
}

int gw_recorder_push(gw_recorder_t *r, const gw_touch_t *t)
{
    struct timespec ts;
    char id[48], rnd[16];
    uint64_t now;
    json_t *tp;

    clock_gettime(CLOCK_REALTIME, &ts);
    now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    gw_random_token(rnd, sizeof(rnd), 6);
    /* time-sortable id: milliseconds in fixed-width hex, then randomness */
    snprintf(id, sizeof(id), "tp_%012llx%s", (unsigned long long)t->occurred_at_ms, rnd);
    tp = json_pack("{s:s, s:s?, s:I, s:I, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:s, s:s?, s:s, s:o}", "id", id,
                   "customer_id", t->customer_id, "occurred_at_ms", (json_int_t)t->occurred_at_ms, "received_at_ms",
                   (json_int_t)now, "channel", t->channel, "touchpoint", t->touchpoint, "stage", t->stage, "route",
                   t->route, "method", t->method, "status", t->status, "device", gw_device_class(t->user_agent),
                   "provider", t->provider, "source", t->source != NULL ? t->source : "proxy", "attribution",
                   attribution(t));
    if (tp == NULL)
        return -1;
    if (t->customer_id == NULL) {
        /* an anonymous visitor: kept in memory until a sign-in joins it to a customer */
        uint64_t h = hash_str(t->visitor_id != NULL ? t->visitor_id : "", "visitor");
        struct visitor *v = &r->visitors[h % GW_VISITORS];
        if (t->visitor_id == NULL) {
            json_decref(tp);
            return -1;
        }
        json_object_set_new(tp, "visitor_id", json_string(t->visitor_id));
        pthread_mutex_lock(&r->lock);
        if (strcmp(v->id, t->visitor_id) != 0) {
            /* the slot's previous visitor (never signed in) is forgotten */
            json_decref(v->touches);
            snprintf(v->id, sizeof(v->id), "%s", t->visitor_id);
            v->touches = json_array();
        }
        v->last_ms = now;
        if (json_array_size(v->touches) >= GW_VISITOR_TOUCHES)
            json_array_remove(v->touches, 0);
        json_array_append_new(v->touches, tp);
        pthread_mutex_unlock(&r->lock);
        atomic_fetch_add(&r->accepted, 1);
        return 0;
    }
    pthread_mutex_lock(&r->lock);
    if (r->count == r->cap || r->stopping) {
        pthread_mutex_unlock(&r->lock);
        json_decref(tp);
        atomic_fetch_add(&r->dropped, 1);
        return -1;
    }
    r->ring[(r->head + r->count) % r->cap] = tp;
    ++r->count;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    atomic_fetch_add(&r->accepted, 1);
    return 0;
}

static void *pruner_main(void *arg)
{
    gw_recorder_t *r = arg;
    for (;;) {
        struct timespec ts;
        uint64_t now, deleted = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (store_touchpoints_prune(r->st, now - (uint64_t)r->retention_days * 86400000ULL, &deleted) == GW_OK &&
            deleted > 0)
            GW_LOG_INF(MODULE, "retention: %llu touchpoints older than %u days deleted", (unsigned long long)deleted,
                       r->retention_days);
        /* hourly, waking early to stop */
        pthread_mutex_lock(&r->lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 3600;
        while (!r->stopping) {
            if (pthread_cond_timedwait(&r->prune_cond, &r->lock, &ts) != 0)
                break;
        }
        int stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
    }
    return NULL;
}

void gw_recorder_set_retention(gw_recorder_t *r, unsigned retention_days)
{
    sigset_t all, old;
    if (retention_days == 0 || r->has_pruner)
        return;
    r->retention_days = retention_days;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r->has_pruner = pthread_create(&r->pruner, NULL, pruner_main, r) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void gw_recorder_stop(gw_recorder_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_cond_broadcast(&r->prune_cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->tid, NULL);
    if (r->has_pruner)
        pthread_join(r->pruner, NULL);
}

void gw_recorder_counts(gw_recorder_t *r, uint64_t *accepted, uint64_t *dropped, uint64_t *written, uint64_t *failed)
{
    *accepted = atomic_load(&r->accepted);
    *dropped = atomic_load(&r->dropped);
    *written = atomic_load(&r->written);
    *failed = atomic_load(&r->failed);
}

size_t gw_recorder_join(gw_recorder_t *r, const char *visitor_id, const char *customer_id)
{
    uint64_t h = hash_str(visitor_id, "visitor");
    struct visitor *v = &r->visitors[h % GW_VISITORS];
    size_t joined = 0, i;
    json_t *touches = NULL, *tp;

    pthread_mutex_lock(&r->lock);
    if (strcmp(v->id, visitor_id) == 0) {
        touches = v->touches;
        v->touches = NULL;
        v->id[0] = '\0';
    }
    json_array_foreach(touches, i, tp)
    {
        if (r->count == r->cap || r->stopping) {
            atomic_fetch_add(&r->dropped, 1);
            continue;
        }
        json_object_set_new(tp, "customer_id", json_string(customer_id));
        r->ring[(r->head + r->count) % r->cap] = json_incref(tp);
        ++r->count;
        ++joined;
    }
    if (joined > 0)
        pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    json_decref(touches);
    return joined;
}
