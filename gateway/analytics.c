/*
 * journeygate — the aggregates behind the console's figures: a snapshot of compact columns built
 * from the store on a thread of its own, published atomically, and the queries over one snapshot
 * (see analytics.h for the layout and the definitions).
 *
 * Owns: the builder thread, the snapshots. Reads the store only through store.h, never on an
 * event loop. The queries allocate their own scratch memory and never change a snapshot.
 */
#include "analytics.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODULE "analytics"

#define KIND_MASK 0x3fffffffu
#define F_ANON (1u << 30)  /* recorded before sign-in (a visitor's), joined at sign-in */
#define F_VISIT (1u << 31) /* the first touchpoint of a visit */
#define DAY_S 86400u
#define SEQ_MAX 12         /* channels kept of a sequence; longer ones end with "…" */
#define SEQ_TOP 20         /* sequences listed */
#define DROPOFF_NEXT_TOP 5 /* what the drop-offs of a step did next: the most common touchpoints */
#define SIGNIN_STR_MAX 255 /* providers and reasons kept by name; the rest count as "other" */
#define ANOMALY_K 3.0      /* a bucket is an anomaly when its failures exceed K x the trailing median */
#define INVENTORY_DAYS 30
#define ANALYTICS_NICE 10 /* the builder thread's nice value */
/* the quadratic tables (channel x channel, stage x stage) fold ids past these into one "(other)" */
#define FOLD_CHANNELS 255
#define FOLD_STAGES 63

static const char *const lifecycle[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy"};
#define LIFECYCLE_N (sizeof(lifecycle) / sizeof(lifecycle[0]))

/* ------------------------------------------------------------------ string tables */

/* interned strings: index 0 is "" (absent), ids are dense and stable in insertion order */
struct strtab {
    char **v;
    uint32_t n, cap;
    uint32_t *ht; /* id + 1, 0 = empty slot */
    uint32_t hcap;
};

static uint64_t hash_str(const char *s)
{
    return gw_fnv1a(GW_FNV1A_SEED, s, strlen(s));
}

static int strtab_grow_ht(struct strtab *t)
{
    uint32_t ncap = t->hcap != 0 ? t->hcap * 2 : 64;
    uint32_t *ht = calloc(ncap, sizeof(*ht));
    if (ht == NULL)
        return -1;
    for (uint32_t i = 0; i < t->n; ++i) {
        uint64_t h = hash_str(t->v[i]);
        uint32_t j = (uint32_t)h & (ncap - 1);
        while (ht[j] != 0)
            j = (j + 1) & (ncap - 1);
        ht[j] = i + 1;
    }
    free(t->ht);
    t->ht = ht;
    t->hcap = ncap;
    return 0;
}

/* the id of s, or -1 when absent */
static int64_t strtab_find(const struct strtab *t, const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    if (t->hcap == 0)
        return -1;
    uint32_t j = (uint32_t)hash_str(s) & (t->hcap - 1);
    while (t->ht[j] != 0) {
        if (strcmp(t->v[t->ht[j] - 1], s) == 0)
            return t->ht[j] - 1;
        j = (j + 1) & (t->hcap - 1);
    }
    return -1;
}

/* the id of s (NULL and "" are 0), added when new; -1 when memory runs out */
static int64_t strtab_intern(struct strtab *t, const char *s)
{
    int64_t id;

    if (t->n == 0) { /* id 0: the absent string */
        if ((t->v = malloc(16 * sizeof(*t->v))) == NULL || (t->v[0] = strdup("")) == NULL)
            return -1;
        t->cap = 16;
        t->n = 1;
        if (strtab_grow_ht(t) != 0)
            return -1;
    }
    if ((id = strtab_find(t, s)) >= 0)
        return id;
    if (t->n == KIND_MASK)
        return -1;
    if (t->n == t->cap) {
        char **v = realloc(t->v, 2 * (size_t)t->cap * sizeof(*v));
        if (v == NULL)
            return -1;
        t->v = v;
        t->cap *= 2;
    }
    if ((t->v[t->n] = strdup(s)) == NULL)
        return -1;
    ++t->n;
    if (2 * t->n > t->hcap)
        return strtab_grow_ht(t) == 0 ? (int64_t)t->n - 1 : -1;
    uint32_t j = (uint32_t)hash_str(s) & (t->hcap - 1);
    while (t->ht[j] != 0)
        j = (j + 1) & (t->hcap - 1);
    t->ht[j] = t->n;
    return (int64_t)t->n - 1;
}

static void strtab_clear(struct strtab *t)
{
    for (uint32_t i = 0; i < t->n; ++i)
        free(t->v[i]);
    free(t->v);
    free(t->ht);
    memset(t, 0, sizeof(*t));
}

static size_t strtab_bytes(const struct strtab *t)
{
    size_t b = (size_t)t->cap * sizeof(char *) + (size_t)t->hcap * sizeof(uint32_t);
    for (uint32_t i = 0; i < t->n; ++i)
        b += strlen(t->v[i]) + 1;
    return b;
}

/* ------------------------------------------------------------------ the snapshot */

struct kind {
    uint32_t channel, stage, name, route, source; /* ids in the snapshot's string tables (0: absent) */
};

enum signin_what { SIGNIN_SUCCESS = 0, SIGNIN_FAILURE, SIGNIN_REFUSAL };

struct signin {
    uint32_t t_s;
    uint8_t what;             /* enum signin_what */
    uint8_t provider, reason; /* ids (0: absent; SIGNIN_STR_MAX: "other") */
    uint32_t count;           /* events this record stands for (aggregated refusals) */
};

struct analytics_snap {
    atomic_uint refcnt;
    uint64_t as_of_ms;
    /* touchpoints (columns), customer by customer, each in time order */
    uint32_t *t_s, *kind;
    size_t ntp, cap_tp;
    /* customer c's touchpoints are off[c] .. off[c + 1] */
    uint32_t *off;
    size_t ncust, cap_cust;
    struct kind *kinds;
    uint32_t nkinds, cap_kinds;
    uint32_t *kind_ht, kind_hcap;
    struct strtab channels, stages, names, routes, sources;
    /* sign-in events of the audit trail, in sequence order */
    struct signin *sign;
    size_t nsign, cap_sign;
    struct strtab providers, reasons;
    uint64_t audit_seq; /* the last audit record read */
};

static void snap_free(analytics_snap_t *s)
{
    if (s == NULL)
        return;
    free(s->t_s);
    free(s->kind);
    free(s->off);
    free(s->kinds);
    free(s->kind_ht);
    free(s->sign);
    strtab_clear(&s->channels);
    strtab_clear(&s->stages);
    strtab_clear(&s->names);
    strtab_clear(&s->routes);
    strtab_clear(&s->sources);
    strtab_clear(&s->providers);
    strtab_clear(&s->reasons);
    free(s);
}

void analytics_release(analytics_snap_t *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refcnt, 1) == 1)
        snap_free(s);
}

uint64_t analytics_snap_as_of(const analytics_snap_t *s)
{
    return s->as_of_ms;
}

size_t analytics_snap_touchpoints(const analytics_snap_t *s)
{
    return s->ntp;
}

size_t analytics_snap_customers(const analytics_snap_t *s)
{
    return s->ncust;
}

size_t analytics_snap_bytes(const analytics_snap_t *s)
{
    return sizeof(*s) + s->cap_tp * 2 * sizeof(uint32_t) + (s->cap_cust + 1) * sizeof(uint32_t) +
           s->cap_kinds * sizeof(struct kind) + s->kind_hcap * sizeof(uint32_t) + s->cap_sign * sizeof(struct signin) +
           strtab_bytes(&s->channels) + strtab_bytes(&s->stages) + strtab_bytes(&s->names) + strtab_bytes(&s->routes) +
           strtab_bytes(&s->sources) + strtab_bytes(&s->providers) + strtab_bytes(&s->reasons);
}

/* ------------------------------------------------------------------ building */

struct build {
    analytics_snap_t *s;
    const atomic_int *cancel; /* set: stop reading (the analytics are stopping), or NULL */
    char cust[STORE_ID_LEN + 1];
    int failed;
    /* the last kind's strings: consecutive touchpoints of a customer often share them */
    const struct kind *last;
};

static uint64_t kind_hash(const struct kind *k)
{
    return gw_fnv1a(GW_FNV1A_SEED, k, sizeof(*k));
}

static int kinds_grow_ht(analytics_snap_t *s)
{
    uint32_t ncap = s->kind_hcap != 0 ? s->kind_hcap * 2 : 256;
    uint32_t *ht = calloc(ncap, sizeof(*ht));
    if (ht == NULL)
        return -1;
    for (uint32_t i = 0; i < s->nkinds; ++i) {
        uint32_t j = (uint32_t)kind_hash(&s->kinds[i]) & (ncap - 1);
        while (ht[j] != 0)
            j = (j + 1) & (ncap - 1);
        ht[j] = i + 1;
    }
    free(s->kind_ht);
    s->kind_ht = ht;
    s->kind_hcap = ncap;
    return 0;
}

/* the kind's id, added when new; -1 when memory runs out */
static int64_t kind_intern(analytics_snap_t *s, const struct kind *k)
{
    uint32_t j;

    if (2 * (s->nkinds + 1) > s->kind_hcap && kinds_grow_ht(s) != 0)
        return -1;
    j = (uint32_t)kind_hash(k) & (s->kind_hcap - 1);
    while (s->kind_ht[j] != 0) {
        if (memcmp(&s->kinds[s->kind_ht[j] - 1], k, sizeof(*k)) == 0)
            return s->kind_ht[j] - 1;
        j = (j + 1) & (s->kind_hcap - 1);
    }
    if (s->nkinds == KIND_MASK)
        return -1;
    if (s->nkinds == s->cap_kinds) {
        uint32_t ncap = s->cap_kinds != 0 ? 2 * s->cap_kinds : 64;
        struct kind *v = realloc(s->kinds, ncap * sizeof(*v));
        if (v == NULL)
            return -1;
        s->kinds = v;
        s->cap_kinds = ncap;
    }
    s->kinds[s->nkinds] = *k;
    s->kind_ht[j] = ++s->nkinds;
    return s->nkinds - 1;
}

static int grow_u32(uint32_t **v, size_t need)
{
    uint32_t *n = realloc(*v, need * sizeof(**v));
    if (n == NULL)
        return -1;
    *v = n;
    return 0;
}

static int on_touchpoint(const store_tp_t *tp, void *arg)
{
    struct build *b = arg;
    analytics_snap_t *s = b->s;
    struct kind k;
    int64_t ids[5], kid;

    if (tp->customer_id == NULL)
        return 0;
    if (s->ntp == UINT32_MAX - 1) /* the columns' offsets are 32-bit: further touchpoints are left out */
        return 1;
    if ((s->ntp & 0xffff) == 0 && b->cancel != NULL && atomic_load(b->cancel)) {
        b->failed = 1;
        return 1;
    }
    if (s->ncust == 0 || strncmp(tp->customer_id, b->cust, sizeof(b->cust)) != 0) {
        if (s->ncust + 2 > s->cap_cust) {
            size_t ncap = s->cap_cust != 0 ? 2 * s->cap_cust : 1024;
            if (grow_u32(&s->off, ncap + 1) != 0)
                goto Fail;
            s->cap_cust = ncap;
        }
        s->off[s->ncust++] = (uint32_t)s->ntp;
        snprintf(b->cust, sizeof(b->cust), "%s", tp->customer_id);
    }
    if (s->ntp == s->cap_tp) {
        size_t ncap = s->cap_tp != 0 ? 2 * s->cap_tp : 4096;
        if (grow_u32(&s->t_s, ncap) != 0 || grow_u32(&s->kind, ncap) != 0)
            goto Fail;
        s->cap_tp = ncap;
    }
    if ((ids[0] = strtab_intern(&s->channels, tp->channel)) < 0 ||
        (ids[1] = strtab_intern(&s->stages, tp->stage)) < 0 ||
        (ids[2] = strtab_intern(&s->names, tp->touchpoint)) < 0 ||
        (ids[3] = strtab_intern(&s->routes, tp->route)) < 0 || (ids[4] = strtab_intern(&s->sources, tp->source)) < 0)
        goto Fail;
    k = (struct kind){(uint32_t)ids[0], (uint32_t)ids[1], (uint32_t)ids[2], (uint32_t)ids[3], (uint32_t)ids[4]};
    if ((kid = kind_intern(s, &k)) < 0)
        goto Fail;
    s->t_s[s->ntp] = tp->occurred_at_ms / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(tp->occurred_at_ms / 1000);
    s->kind[s->ntp] = (uint32_t)kid | (tp->visitor_id != NULL && *tp->visitor_id != '\0' ? F_ANON : 0) |
                      (tp->visit_start ? F_VISIT : 0);
    ++s->ntp;
    return 0;
Fail:
    b->failed = 1;
    return 1;
}

static int str_in(const char *s, const char *const *set)
{
    for (; s != NULL && *set != NULL; ++set)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

/* a provider's or a reason's id, "other" past SIGNIN_STR_MAX names */
static int signin_str(struct strtab *t, const char *s, uint8_t *out)
{
    int64_t id = strtab_find(t, s);
    if (id < 0 && t->n >= SIGNIN_STR_MAX)
        id = strtab_intern(t, "other");
    else if (id < 0)
        id = strtab_intern(t, s);
    if (id < 0)
        return -1;
    *out = (uint8_t)id;
    return 0;
}

static int on_audit(json_t *r, void *arg)
{
    struct build *b = arg;
    analytics_snap_t *s = b->s;
    static const char *const succeeded[] = {"callback_succeeded", "token_accepted", NULL};
    static const char *const refused[] = {"callback_refused", "token_refused", "link_refused", NULL};
    const char *ev = json_string_value(json_object_get(r, "event"));
    const char *outcome = json_string_value(json_object_get(r, "outcome"));
    json_int_t ts = json_integer_value(json_object_get(r, "ts_ms"));
    json_int_t count = json_integer_value(json_object_get(r, "count"));
    struct signin e;

    s->audit_seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
    memset(&e, 0, sizeof(e));
    if (str_in(ev, succeeded) && outcome != NULL && strcmp(outcome, "success") == 0)
        e.what = SIGNIN_SUCCESS;
    else if (str_in(ev, refused))
        e.what = SIGNIN_FAILURE;
    else if (ev != NULL && strcmp(ev, "rate_limited") == 0)
        e.what = SIGNIN_REFUSAL;
    else
        return 0;
    e.t_s = ts <= 0 ? 0 : ts / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ts / 1000);
    e.count = count > 0 ? (count > UINT32_MAX ? UINT32_MAX : (uint32_t)count) : 1;
    if (signin_str(&s->providers, json_string_value(json_object_get(r, "provider")), &e.provider) != 0 ||
        signin_str(&s->reasons, json_string_value(json_object_get(r, "reason")), &e.reason) != 0)
        goto Fail;
    if (s->nsign == s->cap_sign) {
        size_t ncap = s->cap_sign != 0 ? 2 * s->cap_sign : 256;
        struct signin *v = realloc(s->sign, ncap * sizeof(*v));
        if (v == NULL)
            goto Fail;
        s->sign = v;
        s->cap_sign = ncap;
    }
    s->sign[s->nsign++] = e;
    return 0;
Fail:
    b->failed = 1;
    return 1;
}

/* the previous snapshot's sign-in events, with the same provider and reason ids */
static int copy_signins(analytics_snap_t *s, const analytics_snap_t *prev)
{
    for (uint32_t i = 1; i < prev->providers.n; ++i)
        if (strtab_intern(&s->providers, prev->providers.v[i]) != (int64_t)i)
            return -1;
    for (uint32_t i = 1; i < prev->reasons.n; ++i)
        if (strtab_intern(&s->reasons, prev->reasons.v[i]) != (int64_t)i)
            return -1;
    if (prev->nsign > 0) {
        if ((s->sign = malloc(prev->nsign * sizeof(*s->sign))) == NULL)
            return -1;
        memcpy(s->sign, prev->sign, prev->nsign * sizeof(*s->sign));
    }
    s->nsign = s->cap_sign = prev->nsign;
    s->audit_seq = prev->audit_seq;
    return 0;
}

static gw_status_t snap_build(store_t *st, const analytics_snap_t *prev, uint64_t now_ms, const atomic_int *cancel,
                              analytics_snap_t **out)
{
    struct build b;
    analytics_snap_t *s = calloc(1, sizeof(*s));
    gw_status_t rc = GW_ENOMEM;

    memset(&b, 0, sizeof(b));
    if (s == NULL)
        return GW_ENOMEM;
    atomic_init(&s->refcnt, 1);
    s->as_of_ms = now_ms;
    b.s = s;
    b.cancel = cancel;
    /* the string tables' id 0 exists even when empty */
    if (strtab_intern(&s->channels, NULL) < 0 || strtab_intern(&s->stages, NULL) < 0 ||
        strtab_intern(&s->names, NULL) < 0 || strtab_intern(&s->routes, NULL) < 0 ||
        strtab_intern(&s->sources, NULL) < 0 || strtab_intern(&s->providers, NULL) < 0 ||
        strtab_intern(&s->reasons, NULL) < 0)
        goto Exit;
    if (prev != NULL && copy_signins(s, prev) != 0)
        goto Exit;
    if ((rc = store_touchpoints_foreach(st, 0, on_touchpoint, &b)) != GW_OK)
        goto Exit;
    if (b.failed) {
        rc = GW_ENOMEM;
        goto Exit;
    }
    if (s->off == NULL && grow_u32(&s->off, 1) != 0) {
        rc = GW_ENOMEM;
        goto Exit;
    }
    s->off[s->ncust] = (uint32_t)s->ntp;
    /* the columns at their size: growth left up to half of them unused */
    if (s->ntp > 0 && s->ntp < s->cap_tp && grow_u32(&s->t_s, s->ntp) == 0 && grow_u32(&s->kind, s->ntp) == 0)
        s->cap_tp = s->ntp;
    if (s->ncust + 1 < s->cap_cust && grow_u32(&s->off, s->ncust + 1) == 0)
        s->cap_cust = s->ncust;
    if ((rc = store_audit_foreach(st, s->audit_seq, on_audit, &b)) != GW_OK)
        goto Exit;
    if (b.failed) {
        rc = GW_ENOMEM;
        goto Exit;
    }
    *out = s;
    return GW_OK;
Exit:
    snap_free(s);
    return rc;
}

gw_status_t analytics_snap_build(store_t *st, const analytics_snap_t *prev, uint64_t now_ms, analytics_snap_t **out)
{
    return snap_build(st, prev, now_ms, NULL, out);
}

/* ------------------------------------------------------------------ the builder thread */

struct analytics {
    store_t *st;
    unsigned refresh_s;
    pthread_t tid;
    pthread_mutex_t mu; /* guards cur (the pointer and taking a reference: never held while building) */
    pthread_cond_t cv;
    atomic_int stop; /* read by a build under way too (it gives up) */
    int kick;
    analytics_snap_t *cur;
    uint64_t gen; /* store_generation() the current snapshot was built at */
    /* the query thread (nice 10 too): analytics_call() hands it queries and waits */
    pthread_t qtid;
    pthread_mutex_t qmu; /* guards the queue, qstop and every job's done */
    pthread_cond_t qcv, donecv;
    struct query_job *head, **tail;
    unsigned queued;
    int qstop;
};

struct query_job {
    analytics_query_fn fn;
    void *arg;
    json_t *out;
    gw_status_t st;
    int done;
    struct query_job *next;
};

#define QUERY_QUEUE_MAX 32 /* queries waiting; past it analytics_call() refuses (the endpoint answers 503) */

analytics_snap_t *analytics_acquire(analytics_t *a)
{
    analytics_snap_t *s;

    pthread_mutex_lock(&a->mu);
    s = a->cur;
    if (s != NULL)
        atomic_fetch_add(&s->refcnt, 1);
    pthread_mutex_unlock(&a->mu);
    return s;
}

void analytics_refresh(analytics_t *a)
{
    pthread_mutex_lock(&a->mu);
    a->kick = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void lower_priority(void)
{
    /* seconds of CPU per rebuild, tens of ms per query: the event loops and workers come first
       (Linux: a thread's nice value is its own) */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ANALYTICS_NICE) != 0)
        GW_LOG(GW_LOG_DEBUG, MODULE, "cannot lower a thread's priority");
}

static void *builder(void *arg)
{
    analytics_t *a = arg;

    lower_priority();

    for (;;) {
        struct timespec until = gw_realtime_in((uint64_t)a->refresh_s * 1000);
        int kick;
        uint64_t gen, t0;
        analytics_snap_t *prev, *next = NULL, *old;
        gw_status_t rc;

        pthread_mutex_lock(&a->mu);
        while (!a->stop && !a->kick && pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0)
            ;
        kick = a->kick;
        a->kick = 0;
        if (a->stop) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        pthread_mutex_unlock(&a->mu);
        gen = store_generation(a->st);
        if (!kick && gen == a->gen && a->cur != NULL) /* only this thread writes cur */
            continue;
        prev = analytics_acquire(a);
        t0 = gw_mono_ms();
        rc = snap_build(a->st, prev, gw_wall_ms(), &a->stop, &next);
        analytics_release(prev);
        if (rc != GW_OK && atomic_load(&a->stop))
            break;
        if (rc != GW_OK) {
            GW_LOG_ERR(MODULE, "rebuilding the figures failed (%s): the previous ones stay", gw_status_str(rc));
            continue;
        }
        GW_LOG(GW_LOG_DEBUG, MODULE, "figures rebuilt: %zu touchpoints, %zu customers, %zu bytes, %llu ms", next->ntp,
               next->ncust, analytics_snap_bytes(next), (unsigned long long)(gw_mono_ms() - t0));
        pthread_mutex_lock(&a->mu);
        old = a->cur;
        a->cur = next;
        a->gen = gen;
        pthread_mutex_unlock(&a->mu);
        analytics_release(old);
    }
    return NULL;
}

static void *query_thread(void *arg)
{
    analytics_t *a = arg;

    lower_priority();
    pthread_mutex_lock(&a->qmu);
    for (;;) {
        struct query_job *j;
        analytics_snap_t *snap;
        while (a->head == NULL && !a->qstop)
            pthread_cond_wait(&a->qcv, &a->qmu);
        if ((j = a->head) == NULL)
            break; /* stopping, and nothing left */
        if ((a->head = j->next) == NULL)
            a->tail = &a->head;
        --a->queued;
        pthread_mutex_unlock(&a->qmu);
        if ((snap = analytics_acquire(a)) == NULL) {
            j->st = GW_EUNAVAIL;
        } else {
            j->out = j->fn(snap, j->arg);
            j->st = j->out != NULL ? GW_OK : GW_ENOMEM;
            analytics_release(snap);
        }
        pthread_mutex_lock(&a->qmu);
        j->done = 1;
        pthread_cond_broadcast(&a->donecv);
    }
    pthread_mutex_unlock(&a->qmu);
    return NULL;
}

gw_status_t analytics_call(analytics_t *a, analytics_query_fn fn, void *arg, json_t **out)
{
    struct query_job j = {fn, arg, NULL, GW_OK, 0, NULL};

    pthread_mutex_lock(&a->qmu);
    if (a->qstop || a->queued >= QUERY_QUEUE_MAX) {
        pthread_mutex_unlock(&a->qmu);
        return GW_EUNAVAIL;
    }
    *a->tail = &j;
    a->tail = &j.next;
    ++a->queued;
    pthread_cond_signal(&a->qcv);
    while (!j.done)
        pthread_cond_wait(&a->donecv, &a->qmu);
    pthread_mutex_unlock(&a->qmu);
    if (j.st == GW_OK)
        *out = j.out;
    return j.st;
}

gw_status_t analytics_start(store_t *st, unsigned refresh_s, analytics_t **out)
{
    analytics_t *a;

    if (refresh_s < 1 || refresh_s > 86400)
        return GW_EINVAL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return GW_ENOMEM;
    a->st = st;
    a->refresh_s = refresh_s;
    a->kick = 1; /* the first build, at once, on the thread: the gateway does not wait for it */
    a->tail = &a->head;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_mutex_init(&a->qmu, NULL);
    pthread_cond_init(&a->qcv, NULL);
    pthread_cond_init(&a->donecv, NULL);
    if (pthread_create(&a->qtid, NULL, query_thread, a) != 0)
        goto Fail;
    if (pthread_create(&a->tid, NULL, builder, a) != 0) {
        pthread_mutex_lock(&a->qmu);
        a->qstop = 1;
        pthread_cond_signal(&a->qcv);
        pthread_mutex_unlock(&a->qmu);
        pthread_join(a->qtid, NULL);
        goto Fail;
    }
    *out = a;
    return GW_OK;
Fail:
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->qcv);
    pthread_cond_destroy(&a->donecv);
    pthread_mutex_destroy(&a->qmu);
    free(a);
    return GW_ENOMEM;
}

void analytics_stop(analytics_t *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->tid, NULL);
    /* the queries queued still run (their callers wait for them), then the thread ends */
    pthread_mutex_lock(&a->qmu);
    a->qstop = 1;
    pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    pthread_join(a->qtid, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->qcv);
    pthread_cond_destroy(&a->donecv);
    pthread_mutex_destroy(&a->qmu);
    analytics_release(a->cur);
    free(a);
}

/* ------------------------------------------------------------------ query helpers */

static uint32_t sec_of(uint64_t ms)
{
    return ms / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ms / 1000);
}

/* the first index in [lo, hi) whose time is >= x (hi when none) */
static size_t lower(const uint32_t *t, size_t lo, size_t hi, uint32_t x)
{
    /* most journeys lie wholly inside or outside a long period: no search then */
    if (lo == hi || t[lo] >= x)
        return lo;
    if (t[hi - 1] < x)
        return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct kind *kind_of(const analytics_snap_t *s, size_t i)
{
    return &s->kinds[s->kind[i] & KIND_MASK];
}

/* a customer filter: ch / st are ids, -1 when not filtered, -2 when the name is unknown (nobody) */
struct seg {
    int64_t ch, st;
};

static struct seg seg_of(const analytics_snap_t *s, const char *channel, const char *stage)
{
    struct seg g = {-1, -1};
    if (channel != NULL && *channel != '\0' && (g.ch = strtab_find(&s->channels, channel)) < 0)
        g.ch = -2;
    if (stage != NULL && *stage != '\0' && (g.st = strtab_find(&s->stages, stage)) < 0)
        g.st = -2;
    return g;
}

/*
 * Customer c's touchpoints in [a, b) into [*i0, *i1); returns whether the customer belongs to the
 * segment (at least one touchpoint in the period, and the filters' touchpoints among them)
 */
static int in_seg(const analytics_snap_t *s, size_t c, uint32_t a, uint32_t b, struct seg g, size_t *i0, size_t *i1)
{
    int ch_ok = g.ch == -1, st_ok = g.st == -1;

    if (g.ch == -2 || g.st == -2)
        return 0;
    *i0 = lower(s->t_s, s->off[c], s->off[c + 1], a);
    *i1 = lower(s->t_s, *i0, s->off[c + 1], b);
    if (*i0 == *i1)
        return 0;
    for (size_t i = *i0; i < *i1 && !(ch_ok && st_ok); ++i) {
        const struct kind *k = kind_of(s, i);
        ch_ok |= (int64_t)k->channel == g.ch;
        st_ok |= (int64_t)k->stage == g.st;
    }
    return ch_ok && st_ok;
}

/* the analytics count in seconds: gw_iso_day() of s_ seconds */
static void iso_day(uint64_t s_, char out[GW_ISO_DAY_LEN])
{
    gw_iso_day(s_ * 1000, out);
}

static double share(uint64_t part, uint64_t whole)
{
    return whole == 0 ? 0.0 : (double)part / (double)whole;
}

/* a new array of {"name_key": name, "value": count} for the n largest counts (all when top is 0), largest first */
struct ranked {
    uint32_t id;
    uint64_t n;
};

static int by_count_desc(const void *x, const void *y)
{
    const struct ranked *a = x, *b = y;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* ------------------------------------------------------------------ overview */

struct period_figures {
    uint64_t seen, multi, fresh, returning, touchpoints, anonymous;
    uint64_t *by_channel; /* [channels.n] */
    uint64_t *by_day;     /* [days * channels.n], only for the current period */
    uint64_t *signins;    /* [providers.n] successful sign-ins */
};

static int period_alloc(const analytics_snap_t *s, int days, struct period_figures *f)
{
    size_t nch = s->channels.n;

    memset(f, 0, sizeof(*f));
    if ((f->by_channel = calloc(nch, sizeof(uint64_t))) == NULL ||
        (f->signins = calloc(s->providers.n + 1, sizeof(uint64_t))) == NULL ||
        (days > 0 && (f->by_day = calloc((size_t)days * nch, sizeof(uint64_t))) == NULL))
        return -1;
    return 0;
}

/* customer c's touchpoints [i0, i1) of the period that begins at a, counted into f */
static void period_tally(const analytics_snap_t *s, size_t c, size_t i0, size_t i1, uint32_t a,
                         struct period_figures *f)
{
    size_t nch = s->channels.n;
    uint32_t first;
    int multi = 0, anon = 0;

    if (i0 == i1)
        return;
    ++f->seen;
    first = kind_of(s, i0)->channel;
    for (size_t i = i0; i < i1; ++i) {
        uint32_t k = s->kind[i], ch = s->kinds[k & KIND_MASK].channel;
        multi |= ch != first;
        anon |= (k & F_ANON) != 0;
        ++f->by_channel[ch];
        if (f->by_day != NULL)
            ++f->by_day[(size_t)((s->t_s[i] - a) / DAY_S) * nch + ch];
    }
    f->touchpoints += i1 - i0;
    f->multi += multi;
    f->anonymous += anon;
    if (s->t_s[s->off[c]] >= a)
        ++f->fresh;
    else
        ++f->returning;
}

/* the period [a, b) into cur (with days by day) and the one before it [pa, a) into prev, in one pass */
static int period_figures(const analytics_snap_t *s, uint32_t pa, uint32_t a, uint32_t b, int days,
                          struct period_figures *cur, struct period_figures *prev)
{
    if (period_alloc(s, days, cur) != 0 || period_alloc(s, 0, prev) != 0)
        return -1;
    for (size_t c = 0; c < s->ncust; ++c) {
        size_t end = s->off[c + 1], p0 = lower(s->t_s, s->off[c], end, pa), i0 = lower(s->t_s, p0, end, a),
               i1 = lower(s->t_s, i0, end, b);
        period_tally(s, c, p0, i0, pa, prev);
        period_tally(s, c, i0, i1, a, cur);
    }
    for (size_t i = 0; i < s->nsign; ++i) {
        const struct signin *e = &s->sign[i];
        if (e->what == SIGNIN_SUCCESS && e->t_s >= pa && e->t_s < b)
            (e->t_s >= a ? cur : prev)->signins[e->provider] += e->count;
    }
    return 0;
}

static void period_clear(struct period_figures *f)
{
    free(f->by_channel);
    free(f->by_day);
    free(f->signins);
}

static json_t *metric(const char *key, json_t *value, json_t *previous)
{
    return json_pack("{s:s, s:o, s:o}", "key", key, "value", value, "previous", previous);
}

/* an array of {"<label>": name, "value", "previous"} over a table's ids, by value, largest first */
static json_t *compare_list(const struct strtab *t, const char *label, const uint64_t *cur, const uint64_t *prev)
{
    json_t *arr = json_array();
    struct ranked *r = malloc((t->n + 1) * sizeof(*r));
    size_t n = 0;

    if (arr == NULL || r == NULL) {
        free(r);
        json_decref(arr);
        return NULL;
    }
    for (uint32_t i = 0; i < t->n; ++i)
        if (cur[i] > 0 || prev[i] > 0)
            r[n++] = (struct ranked){i, cur[i]};
    qsort(r, n, sizeof(*r), by_count_desc);
    for (size_t i = 0; i < n; ++i)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", label, r[i].id == 0 ? "(none)" : t->v[r[i].id], "value",
                                             (json_int_t)cur[r[i].id], "previous", (json_int_t)prev[r[i].id]));
    free(r);
    return arr;
}

json_t *analytics_overview(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms)
{
    uint32_t a = sec_of(from_ms), b = sec_of(to_ms), len = b > a ? b - a : 0;
    uint32_t pa = a > len ? a - len : 0;
    int days = (int)((len + DAY_S - 1) / DAY_S);
    struct period_figures cur, prev;
    json_t *out = NULL, *metrics, *by_day, *defs;
    char d0[11], d1[11], p0[11], p1[11], asof[25];
    size_t nch = s->channels.n;

    memset(&cur, 0, sizeof(cur));
    memset(&prev, 0, sizeof(prev));
    if (period_figures(s, pa, a, b, days, &cur, &prev) != 0)
        goto Exit;
    iso_day(a, d0);
    iso_day(b > a ? b - 1 : a, d1);
    iso_day(pa, p0);
    iso_day(a > 0 ? a - 1 : 0, p1);
    gw_iso_time(s->as_of_ms, asof);
    metrics = json_array();
    json_array_append_new(
        metrics, metric("customers_seen", json_integer((json_int_t)cur.seen), json_integer((json_int_t)prev.seen)));
    json_array_append_new(metrics, metric("multi_channel_share", json_real(share(cur.multi, cur.seen)),
                                          json_real(share(prev.multi, prev.seen))));
    json_array_append_new(
        metrics, metric("new_customers", json_integer((json_int_t)cur.fresh), json_integer((json_int_t)prev.fresh)));
    json_array_append_new(metrics, metric("returning_customers", json_integer((json_int_t)cur.returning),
                                          json_integer((json_int_t)prev.returning)));
    json_array_append_new(metrics, metric("touchpoints", json_integer((json_int_t)cur.touchpoints),
                                          json_integer((json_int_t)prev.touchpoints)));
    json_array_append_new(metrics, metric("anonymous_visitors", json_integer((json_int_t)cur.anonymous),
                                          json_integer((json_int_t)prev.anonymous)));
    by_day = json_array();
    for (int d = 0; d < days; ++d)
        for (size_t ch = 0; ch < nch; ++ch)
            if (cur.by_day[(size_t)d * nch + ch] > 0) {
                char day[11];
                iso_day((uint64_t)a + (uint64_t)d * DAY_S, day);
                json_array_append_new(by_day, json_pack("{s:s, s:s, s:I}", "day", day, "channel",
                                                        ch == 0 ? "(none)" : s->channels.v[ch], "count",
                                                        (json_int_t)cur.by_day[(size_t)d * nch + ch]));
            }
    defs = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "customers_seen",
        "customers with at least one touchpoint in the period", "multi_channel_share",
        "of the customers seen, the share with touchpoints on 2 or more channels in the period", "new_customers",
        "customers whose first touchpoint ever is in the period", "returning_customers",
        "customers seen in the period who had a touchpoint before it", "touchpoints",
        "touchpoints that occurred in the period", "anonymous_visitors",
        "customers seen in the period with touchpoints recorded before they signed in (anonymous visitors who then "
        "signed in: visitors who never sign in are not stored)",
        "signins_by_provider", "successful sign-ins (callback_succeeded, token_accepted) in the period, by provider",
        "as_of", "when the figures were last brought up to date (they are rebuilt in the background)");
    out = json_pack("{s:{s:s, s:s, s:i}, s:{s:s, s:s}, s:o, s:o, s:o, s:o, s:o, s:s}", "period", "from", d0, "to", d1,
                    "days", days, "previous", "from", p0, "to", p1, "metrics", metrics, "signins_by_provider",
                    compare_list(&s->providers, "provider", cur.signins, prev.signins), "touchpoints_by_channel",
                    compare_list(&s->channels, "channel", cur.by_channel, prev.by_channel), "touchpoints_by_day",
                    by_day, "definitions", defs, "as_of", asof);
Exit:
    period_clear(&cur);
    period_clear(&prev);
    return out;
}

/* ------------------------------------------------------------------ transitions */

struct seq_entry {
    uint8_t key[SEQ_MAX]; /* channel ids + 1 (0 ends); 255: more followed */
    uint32_t count;
};

struct seq_table {
    struct seq_entry *v;
    size_t n, cap;
};

static int seq_add(struct seq_table *t, const uint8_t key[SEQ_MAX])
{
    size_t j;

    if (2 * (t->n + 1) > t->cap) {
        size_t ncap = t->cap != 0 ? 2 * t->cap : 1024;
        struct seq_entry *v = calloc(ncap, sizeof(*v));
        if (v == NULL)
            return -1;
        for (size_t i = 0; i < t->cap; ++i)
            if (t->v[i].count != 0) {
                j = gw_fnv1a(GW_FNV1A_SEED, t->v[i].key, SEQ_MAX) & (ncap - 1);
                while (v[j].count != 0)
                    j = (j + 1) & (ncap - 1);
                v[j] = t->v[i];
            }
        free(t->v);
        t->v = v;
        t->cap = ncap;
    }
    j = gw_fnv1a(GW_FNV1A_SEED, key, SEQ_MAX) & (t->cap - 1);
    while (t->v[j].count != 0 && memcmp(t->v[j].key, key, SEQ_MAX) != 0)
        j = (j + 1) & (t->cap - 1);
    if (t->v[j].count == 0) {
        memcpy(t->v[j].key, key, SEQ_MAX);
        ++t->n;
    }
    ++t->v[j].count;
    return 0;
}

static int by_seq_count(const void *x, const void *y)
{
    const struct seq_entry *a = x, *b = y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return memcmp(a->key, b->key, SEQ_MAX);
}

json_t *analytics_transitions(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel,
                              const char *stage)
{
    uint32_t a = sec_of(from_ms), b = sec_of(to_ms);
    struct seg g = seg_of(s, channel, stage);
    int64_t conv = strtab_find(&s->stages, ANALYTICS_CONVERTED_STAGE);
    size_t nch = s->channels.n < FOLD_CHANNELS + 1 ? s->channels.n : FOLD_CHANNELS + 1,
           ncol = nch + 2; /* rows: 0 = (start), 1 + ch; cols: ch, nch = (converted), nch + 1 = (lost) */
    uint64_t *m = calloc((nch + 1) * ncol, sizeof(uint64_t));
    uint32_t *cmap = malloc(nch * sizeof(uint32_t));
    struct seq_table seqs = {NULL, 0, 0};
    json_t *out = NULL, *rows, *cols, *counts, *shares, *sequences;
    size_t nused = 0;

    if (m == NULL || cmap == NULL)
        goto Exit;
    for (size_t c = 0; c < s->ncust; ++c) {
        size_t i0, i1, len = 0;
        uint8_t key[SEQ_MAX];
        int64_t prev = -1;
        int converted = 0;
        if (!in_seg(s, c, a, b, g, &i0, &i1))
            continue;
        memset(key, 0, sizeof(key));
        for (size_t i = i0; i < i1; ++i) {
            const struct kind *k = kind_of(s, i);
            uint32_t ch = k->channel < FOLD_CHANNELS ? k->channel : FOLD_CHANNELS;
            if ((int64_t)ch != prev) { /* consecutive touchpoints on one channel are one step */
                ++m[(size_t)(prev + 1) * ncol + ch];
                if (len < SEQ_MAX)
                    key[len] = ch < 254 ? (uint8_t)(ch + 1) : 254;
                else
                    key[SEQ_MAX - 1] = 255;
                ++len;
                prev = ch;
            }
            if (conv > 0 && (int64_t)k->stage == conv) { /* the journey ends at its conversion */
                converted = 1;
                break;
            }
        }
        ++m[(size_t)(prev + 1) * ncol + (converted ? nch : nch + 1)];
        if (seq_add(&seqs, key) != 0)
            goto Exit;
    }
    /* the channels that appear, in id order */
    for (size_t ch = 0; ch < nch; ++ch) {
        int used = 0;
        for (size_t r = 0; r <= nch && !used; ++r)
            used = m[r * ncol + ch] != 0;
        for (size_t col = 0; col < ncol && !used; ++col)
            used = m[(ch + 1) * ncol + col] != 0;
        if (used)
            cmap[nused++] = (uint32_t)ch;
    }
    rows = json_array();
    cols = json_array();
    counts = json_array();
    shares = json_array();
    json_array_append_new(rows, json_string("(start)"));
    for (size_t i = 0; i < nused; ++i) {
        const char *label = cmap[i] == 0 ? "(none)" : cmap[i] == FOLD_CHANNELS ? "(other)" : s->channels.v[cmap[i]];
        json_array_append_new(rows, json_string(label));
        json_array_append_new(cols, json_string(label));
    }
    json_array_append_new(cols, json_string("(converted)"));
    json_array_append_new(cols, json_string("(lost)"));
    for (size_t r = 0; r <= nused; ++r) {
        size_t row = r == 0 ? 0 : cmap[r - 1] + 1;
        json_t *cr = json_array(), *sr = json_array();
        uint64_t total = 0;
        for (size_t col = 0; col < nused + 2; ++col)
            total += m[row * ncol + (col < nused ? cmap[col] : nch + col - nused)];
        for (size_t col = 0; col < nused + 2; ++col) {
            uint64_t n = m[row * ncol + (col < nused ? cmap[col] : nch + col - nused)];
            json_array_append_new(cr, json_integer((json_int_t)n));
            json_array_append_new(sr, json_real(share(n, total)));
        }
        json_array_append_new(counts, cr);
        json_array_append_new(shares, sr);
    }
    /* the most common sequences */
    sequences = json_array();
    {
        size_t w = 0;
        for (size_t i = 0; i < seqs.cap; ++i)
            if (seqs.v[i].count != 0)
                seqs.v[w++] = seqs.v[i];
        if (w > 1)
            qsort(seqs.v, w, sizeof(*seqs.v), by_seq_count);
        for (size_t i = 0; i < w && i < SEQ_TOP; ++i) {
            json_t *chs = json_array();
            for (size_t j = 0; j < SEQ_MAX && seqs.v[i].key[j] != 0; ++j) {
                uint8_t k = seqs.v[i].key[j];
                json_array_append_new(chs, json_string(k == 255   ? "…"
                                                       : k == 254 ? "(other)"
                                                       : k == 1   ? "(none)"
                                                                  : s->channels.v[k - 1]));
            }
            json_array_append_new(sequences,
                                  json_pack("{s:o, s:I}", "channels", chs, "customers", (json_int_t)seqs.v[i].count));
        }
    }
    out = json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:s}", "rows", rows, "cols", cols, "counts", counts, "shares",
                    shares, "sequences", sequences, "converted_stage", ANALYTICS_CONVERTED_STAGE, "definition",
                    "first-order channel transitions over each customer's consecutive touchpoints in the period "
                    "(touchpoints in a row on one channel are one step), from (start), ending at (converted) when "
                    "the customer reached the stage \"" ANALYTICS_CONVERTED_STAGE "\" (the journey stops there), "
                    "else at (lost); rows are normalised to shares");
Exit:
    free(m);
    free(cmap);
    free(seqs.v);
    return out;
}

/* ------------------------------------------------------------------ paths */

#define PATH_STEPS_MAX 10
#define PATH_TOP_MAX 20

/*
 * customer c's path in the period: touchpoint names with consecutive repeats collapsed, from the
 * first `start` (any when start < 0), at most steps; names[] and times[] receive it. Returns its length.
 */
static size_t path_of(const analytics_snap_t *s, size_t i0, size_t i1, int64_t start, unsigned steps, uint32_t *names,
                      uint32_t *times)
{
    size_t len = 0;
    size_t i = i0;

    if (start >= 0) {
        while (i < i1 && (int64_t)kind_of(s, i)->name != start)
            ++i;
        if (i == i1)
            return 0;
    }
    for (; i < i1 && len < steps; ++i) {
        uint32_t n = kind_of(s, i)->name;
        if (len > 0 && names[len - 1] == n)
            continue;
        names[len] = n;
        times[len] = s->t_s[i];
        ++len;
    }
    return len;
}

json_t *analytics_paths(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel,
                        const char *stage, const char *start, unsigned steps, unsigned top)
{
    uint32_t a = sec_of(from_ms), b = sec_of(to_ms);
    struct seg g = seg_of(s, channel, stage);
    int64_t st = start != NULL && *start != '\0' ? strtab_find(&s->names, start) : -1;
    size_t nn = s->names.n, nodes = top + 2; /* per step: top nodes, Other (top), (drop-off) (top + 1) */
    uint32_t *cnt = NULL, *map = NULL;
    uint64_t *lc = NULL, *lsec = NULL, *ncount = NULL, started = 0;
    uint32_t names[PATH_STEPS_MAX], times[PATH_STEPS_MAX];
    uint32_t(*topid)[PATH_TOP_MAX] = NULL;
    unsigned ntop[PATH_STEPS_MAX];
    struct ranked *r = NULL;
    json_t *out = NULL, *jn, *jl;

    if (steps < 2 || steps > PATH_STEPS_MAX || top < 1 || top > PATH_TOP_MAX)
        return NULL;
    if (start != NULL && *start != '\0' && st <= 0)
        g.ch = -2; /* a start nobody has: an empty graph */
    if ((cnt = calloc((size_t)steps * nn, sizeof(*cnt))) == NULL ||
        (map = calloc((size_t)steps * nn, sizeof(*map))) == NULL ||
        (lc = calloc((size_t)steps * nodes * nodes, sizeof(*lc))) == NULL ||
        (lsec = calloc((size_t)steps * nodes * nodes, sizeof(*lsec))) == NULL ||
        (ncount = calloc((size_t)(steps + 1) * nodes, sizeof(*ncount))) == NULL ||
        (topid = calloc(steps, sizeof(*topid))) == NULL || (r = malloc(nn * sizeof(*r))) == NULL)
        goto Exit;
    /* pass 1: customers per step and touchpoint */
    for (size_t c = 0; c < s->ncust; ++c) {
        size_t i0, i1, len;
        if (!in_seg(s, c, a, b, g, &i0, &i1))
            continue;
        len = path_of(s, i0, i1, st, steps, names, times);
        for (size_t k = 0; k < len; ++k)
            ++cnt[k * nn + names[k]];
    }
    /* the top nodes of each step; the rest map to Other */
    for (unsigned k = 0; k < steps; ++k) {
        size_t n = 0;
        for (size_t i = 0; i < nn; ++i)
            if (cnt[k * nn + i] > 0)
                r[n++] = (struct ranked){(uint32_t)i, cnt[k * nn + i]};
        qsort(r, n, sizeof(*r), by_count_desc);
        ntop[k] = n < top ? (unsigned)n : top;
        for (size_t i = 0; i < nn; ++i)
            map[k * nn + i] = top; /* Other */
        for (unsigned i = 0; i < ntop[k]; ++i) {
            topid[k][i] = r[i].id;
            map[k * nn + r[i].id] = i;
        }
    }
    /* pass 2: nodes and links */
    for (size_t c = 0; c < s->ncust; ++c) {
        size_t i0, i1, len;
        if (!in_seg(s, c, a, b, g, &i0, &i1))
            continue;
        if ((len = path_of(s, i0, i1, st, steps, names, times)) == 0)
            continue;
        ++started;
        for (size_t k = 0; k < len; ++k) {
            uint32_t from = map[k * nn + names[k]];
            ++ncount[k * nodes + from];
            if (k + 1 < len) {
                uint32_t to = map[(k + 1) * nn + names[k + 1]];
                lc[(k * nodes + from) * nodes + to]++;
                lsec[(k * nodes + from) * nodes + to] += times[k + 1] - times[k];
            } else if (k + 1 < steps) { /* the path ends here: a drop-off at the next step */
                lc[(k * nodes + from) * nodes + top + 1]++;
                ++ncount[(k + 1) * nodes + top + 1];
            }
        }
    }
    jn = json_array();
    jl = json_array();
    for (unsigned k = 0; k < steps; ++k)
        for (unsigned i = 0; i < nodes; ++i) {
            char id[STORE_TP_STR_MAX + 32];
            const char *label = i < ntop[k] ? s->names.v[topid[k][i]] : i == top ? "Other" : "(drop-off)";
            uint64_t n = ncount[k * nodes + i];
            if (n == 0 || (i >= ntop[k] && i < top))
                continue;
            snprintf(id, sizeof(id), "%u_%s", k + 1, label);
            json_array_append_new(jn,
                                  json_pack("{s:s, s:i, s:s, s:I, s:f}", "id", id, "step", (int)(k + 1), "touchpoint",
                                            label, "customers", (json_int_t)n, "share", share(n, started)));
            if (i == top + 1 || k + 1 == steps)
                continue;
            for (unsigned j = 0; j < nodes; ++j) {
                uint64_t lcount = lc[(k * nodes + i) * nodes + j];
                char to[STORE_TP_STR_MAX + 32];
                json_t *avg;
                if (lcount == 0)
                    continue;
                snprintf(to, sizeof(to), "%u_%s", k + 2,
                         j < ntop[k + 1] ? s->names.v[topid[k + 1][j]]
                         : j == top      ? "Other"
                                         : "(drop-off)");
                avg =
                    j == top + 1 ? json_null() : json_real((double)lsec[(k * nodes + i) * nodes + j] / (double)lcount);
                json_array_append_new(jl, json_pack("{s:s, s:s, s:I, s:o}", "source", id, "target", to, "customers",
                                                    (json_int_t)lcount, "avg_seconds", avg));
            }
        }
    out = json_pack("{s:s, s:o, s:o, s:I, s:s}", "scope", "person", "nodes", jn, "links", jl, "started",
                    (json_int_t)started, "definition",
                    "person scope: each customer's touchpoints in the period in time order, from their first one (or "
                    "the first start touchpoint), consecutive repeats collapsed; per step the top nodes, the rest as "
                    "Other; a path that ends before the last step links to (drop-off); a link's avg_seconds is the "
                    "mean time between the two steps; share = customers / started");
Exit:
    free(cnt);
    free(map);
    free(lc);
    free(lsec);
    free(ncount);
    free(topid);
    free(r);
    return out;
}

/* ------------------------------------------------------------------ funnel */

json_t *analytics_funnel(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel,
                         const char *const *stages, size_t n, unsigned window_days)
{
    uint32_t a = sec_of(from_ms), b = sec_of(to_ms), window = window_days * DAY_S;
    struct seg g = seg_of(s, channel, NULL);
    size_t nn = s->names.n + 1; /* + "(none)": no touchpoint after the drop-off */
    int64_t ids[10];
    uint64_t reached[10] = {0};
    uint32_t *next = NULL;
    struct ranked *r = NULL;
    json_t *out = NULL, *jsteps, *jnext;

    if (n < 1 || n > 10 || window_days < 1 || window_days > 365)
        return NULL;
    for (size_t k = 0; k < n; ++k)
        ids[k] = strtab_find(&s->stages, stages[k]) > 0 ? strtab_find(&s->stages, stages[k]) : -1;
    if ((next = calloc(n * nn, sizeof(*next))) == NULL || (r = malloc(nn * sizeof(*r))) == NULL)
        goto Exit;
    for (size_t c = 0; c < s->ncust && ids[0] > 0; ++c) {
        size_t i0, i1, pos, end = s->off[c + 1];
        uint32_t until;
        if (!in_seg(s, c, a, b, g, &i0, &i1))
            continue;
        /* entry: the first step-1 touchpoint in the period */
        for (pos = i0; pos < i1 && (int64_t)kind_of(s, pos)->stage != ids[0]; ++pos)
            ;
        if (pos == i1)
            continue;
        ++reached[0];
        until = s->t_s[pos] > UINT32_MAX - window ? UINT32_MAX : s->t_s[pos] + window;
        for (size_t k = 1; k < n; ++k) {
            size_t i = pos + 1;
            /* the next step, after the previous one, within the window (the period does not bound it) */
            while (i < end && s->t_s[i] <= until && (int64_t)kind_of(s, i)->stage != ids[k])
                ++i;
            if (i < end && s->t_s[i] <= until && ids[k] > 0) {
                ++reached[k];
                pos = i;
                continue;
            }
            /* dropped after step k: what they did next */
            ++next[(k - 1) * nn + (pos + 1 < end ? kind_of(s, pos + 1)->name : s->names.n)];
            break;
        }
    }
    jsteps = json_array();
    jnext = json_array();
    for (size_t k = 0; k < n; ++k) {
        json_array_append_new(jsteps,
                              json_pack("{s:s, s:I, s:f, s:f, s:I}", "stage", stages[k], "reached",
                                        (json_int_t)reached[k], "overall", share(reached[k], reached[0]), "step",
                                        k == 0 ? share(reached[0], reached[0]) : share(reached[k], reached[k - 1]),
                                        "dropoff", (json_int_t)(k == 0 ? 0 : reached[k - 1] - reached[k])));
        if (k + 1 < n) {
            size_t m = 0;
            for (size_t i = 0; i < nn; ++i)
                if (next[k * nn + i] > 0)
                    r[m++] = (struct ranked){(uint32_t)i, next[k * nn + i]};
            qsort(r, m, sizeof(*r), by_count_desc);
            for (size_t i = 0; i < m && i < DROPOFF_NEXT_TOP; ++i)
                json_array_append_new(jnext, json_pack("{s:s, s:s, s:I}", "after", stages[k], "touchpoint",
                                                       r[i].id == s->names.n ? "(none)"
                                                       : r[i].id == 0        ? "(unnamed)"
                                                                             : s->names.v[r[i].id],
                                                       "customers", (json_int_t)r[i].n));
        }
    }
    out = json_pack("{s:i, s:o, s:o, s:s}", "window_days", (int)window_days, "steps", jsteps, "next_after_dropoff",
                    jnext, "definition",
                    "customers whose first touchpoint of the first stage is in the period (entry); each next stage "
                    "counts when reached after the previous one within window_days of entry, even after the period "
                    "ends; overall = reached / entered; step = reached / reached at the step before; dropoff = the "
                    "difference; next_after_dropoff: the touchpoint right after the last step they reached");
Exit:
    free(next);
    free(r);
    return out;
}

/* ------------------------------------------------------------------ stages */

static int lifecycle_order(const char *stage)
{
    for (size_t i = 0; i < LIFECYCLE_N; ++i)
        if (strcmp(stage, lifecycle[i]) == 0)
            return (int)i;
    return -1;
}

/* the k-th smallest of v[0..n) (quickselect: linear on average; v is reordered) */
static uint32_t kth(uint32_t *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                ++i;
            while (v[j] > pivot)
                --j;
            if (i <= j) {
                uint32_t t = v[i];
                v[i] = v[j];
                v[j] = t;
                ++i;
                if (j == 0)
                    break;
                --j;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return v[k];
    }
    return v[k];
}

struct u32vec {
    uint32_t *v;
    size_t n, cap;
};

static int u32vec_push(struct u32vec *v, uint32_t x)
{
    if (v->n == v->cap) {
        size_t ncap = v->cap != 0 ? 2 * v->cap : 256;
        uint32_t *nv = realloc(v->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        v->v = nv;
        v->cap = ncap;
    }
    v->v[v->n++] = x;
    return 0;
}

/*
 * durations in whole minutes, counted per minute up to HIST_MINUTES (91 days) and kept one by one
 * beyond: a median in linear time without keeping millions of values
 */
#define HIST_MINUTES (1u << 17)

struct hist {
    uint32_t *bins;
    struct u32vec big;
    uint64_t n;
};

static int hist_add(struct hist *h, uint32_t seconds)
{
    uint32_t m = seconds / 60;
    if (m >= HIST_MINUTES) {
        if (u32vec_push(&h->big, m) != 0)
            return -1;
    } else {
        if (h->bins == NULL && (h->bins = calloc(HIST_MINUTES, sizeof(uint32_t))) == NULL)
            return -1;
        ++h->bins[m];
    }
    ++h->n;
    return 0;
}

/* the k-th smallest duration (from 0), in minutes */
static uint32_t hist_kth(struct hist *h, uint64_t k)
{
    uint64_t below = 0;
    for (uint32_t m = 0; h->bins != NULL && m < HIST_MINUTES; ++m)
        if (k < (below += h->bins[m]))
            return m;
    return kth(h->big.v, h->big.n, k - below);
}

static uint32_t stage_fold(uint32_t id)
{
    return id < FOLD_STAGES ? id : FOLD_STAGES;
}

static const char *stage_label(const analytics_snap_t *s, uint32_t id)
{
    return id == FOLD_STAGES ? "(other)" : s->stages.v[id];
}

/* stages (folded ids) in display order: the lifecycle first, then the others in id order, "(other)" last */
static size_t stage_order(const analytics_snap_t *s, uint32_t *order)
{
    size_t n = 0;
    for (size_t l = 0; l < LIFECYCLE_N; ++l) {
        int64_t id = strtab_find(&s->stages, lifecycle[l]);
        if (id > 0 && id < FOLD_STAGES)
            order[n++] = (uint32_t)id;
    }
    for (uint32_t i = 1; i < s->stages.n && i < FOLD_STAGES; ++i)
        if (lifecycle_order(s->stages.v[i]) < 0)
            order[n++] = i;
    if (s->stages.n > FOLD_STAGES)
        order[n++] = FOLD_STAGES;
    return n;
}

json_t *analytics_stages(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel)
{
    uint32_t a = sec_of(from_ms), b = sec_of(to_ms);
    struct seg g = seg_of(s, channel, NULL);
    size_t ns = s->stages.n < FOLD_STAGES + 1 ? s->stages.n : FOLD_STAGES + 1;
    uint64_t *entered = calloc(ns, sizeof(uint64_t)), *pairs = calloc(ns * ns, sizeof(uint64_t));
    uint32_t *seen = malloc(ns * sizeof(uint32_t)), *pseen = malloc(ns * ns * sizeof(uint32_t));
    uint32_t *order = malloc(ns * sizeof(uint32_t));
    struct hist *dur = calloc(ns, sizeof(*dur));
    json_t *out = NULL, *jst, *jtr;
    size_t no;

    if (entered == NULL || pairs == NULL || seen == NULL || pseen == NULL || order == NULL || dur == NULL)
        goto Exit;
    memset(seen, 0xff, ns * sizeof(uint32_t));
    memset(pseen, 0xff, ns * ns * sizeof(uint32_t));
    for (size_t c = 0; c < s->ncust; ++c) {
        size_t i0, i1;
        uint32_t cur = 0, since = 0;
        if (!in_seg(s, c, a, b, g, &i0, &i1))
            continue;
        /* from the period on: stays entered in it may end after it */
        /* the stage held when the period begins: the last staged touchpoint before it */
        for (size_t i = i0; i > s->off[c] && cur == 0; --i) {
            cur = stage_fold(kind_of(s, i - 1)->stage);
            since = s->t_s[i - 1];
        }
        for (size_t i = i0; i < s->off[c + 1]; ++i) {
            uint32_t st = stage_fold(kind_of(s, i)->stage), t = s->t_s[i];
            if (st == 0 || st == cur)
                continue;
            if (cur != 0 && since >= a && since < b && hist_add(&dur[cur], t - since) != 0)
                goto Exit;
            if (t >= b)
                break; /* the stay entered in the period, if any, has its duration: nothing else counts */
            if (t >= a && t < b) {
                if (seen[st] != (uint32_t)c) {
                    seen[st] = (uint32_t)c;
                    ++entered[st];
                }
                if (cur != 0 && pseen[cur * ns + st] != (uint32_t)c) {
                    pseen[cur * ns + st] = (uint32_t)c;
                    ++pairs[cur * ns + st];
                }
            }
            cur = st;
            since = t;
        }
    }
    no = stage_order(s, order);
    jst = json_array();
    jtr = json_array();
    for (size_t i = 0; i < no; ++i) {
        uint32_t st = order[i];
        json_t *median = json_null();
        if (dur[st].n > 0) {
            uint64_t n = dur[st].n;
            double m = n % 2 == 1 ? hist_kth(&dur[st], n / 2)
                                  : ((double)hist_kth(&dur[st], n / 2 - 1) + hist_kth(&dur[st], n / 2)) / 2;
            median = json_real(m * 60 / DAY_S);
        }
        json_array_append_new(jst, json_pack("{s:s, s:I, s:o}", "stage", stage_label(s, st), "entered",
                                             (json_int_t)entered[st], "median_days", median));
    }
    for (size_t i = 0; i < no; ++i)
        for (size_t j = 0; j < no; ++j) {
            uint32_t f = order[i], t = order[j];
            int of = lifecycle_order(stage_label(s, f)), ot = lifecycle_order(stage_label(s, t));
            if (pairs[f * ns + t] == 0)
                continue;
            json_array_append_new(jtr, json_pack("{s:s, s:s, s:I, s:b}", "from", stage_label(s, f), "to",
                                                 stage_label(s, t), "customers", (json_int_t)pairs[f * ns + t],
                                                 "regression", of >= 0 && ot >= 0 && ot < of));
        }
    out = json_pack(
        "{s:o, s:o, s:s}", "stages", jst, "transitions", jtr, "definition",
        "a customer enters a stage with a touchpoint of that stage when their previous staged touchpoint "
        "(ever) had another stage; entered counts customers entering in the period; transitions count "
        "customers per change in the period (regression: back to an earlier lifecycle stage); "
        "median_days: the median time (to the minute) from entering a stage in the period to entering the next one "
        "(stays not ended yet are left out)");
Exit:
    free(entered);
    free(pairs);
    free(seen);
    free(pseen);
    free(order);
    if (dur != NULL)
        for (size_t i = 0; i < ns; ++i)
            free(dur[i].bins), free(dur[i].big.v);
    free(dur);
    return out;
}

/* ------------------------------------------------------------------ inventory */

json_t *analytics_inventory(const analytics_snap_t *s, const gw_config_t *cfg, uint64_t now_ms)
{
    uint32_t b = sec_of(now_ms), a = b > INVENTORY_DAYS * DAY_S ? b - INVENTORY_DAYS * DAY_S : 0;
    uint64_t *per_kind = calloc(s->nkinds + 1, sizeof(uint64_t));
    int assertion = json_is_object(json_object_get(cfg->doc, "assertion"));
    json_t *out = NULL, *routes, *ingested;

    if (per_kind == NULL)
        return NULL;
    for (size_t c = 0; c < s->ncust; ++c)
        for (size_t i = lower(s->t_s, s->off[c], s->off[c + 1], a); i < s->off[c + 1] && s->t_s[i] < b; ++i)
            ++per_kind[s->kind[i] & KIND_MASK];
    routes = json_array();
    for (size_t r = 0; r < cfg->num_routes; ++r) {
        const gw_route_t *rt = &cfg->routes[r];
        int64_t rid = strtab_find(&s->routes, rt->name);
        uint64_t n = 0;
        /* the headers auth_prepare_upstream() adds when the request has a session: a route without
           auth and without a policy never looks one up */
        int sends = rt->auth != GW_AUTH_NONE || rt->policy != NULL;
        json_t *hdrs = json_array();
        if (sends) {
            static const char *const names[] = {"X-Customer-Id",  "X-Customer-Email",  "X-Auth-Provider",
                                                "X-Auth-Subject", "X-Journey-Channel", "X-Journey-Session"};
            for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i)
                json_array_append_new(hdrs, json_string(names[i]));
            if (assertion)
                json_array_append_new(hdrs, json_string("X-Identity-Assertion"));
        }
        for (uint32_t k = 0; rid > 0 && k < s->nkinds; ++k)
            if (s->kinds[k].route == rid)
                n += per_kind[k];
        json_array_append_new(routes, json_pack("{s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:s, s:o, s:b, s:I}",
                                                "name", rt->name, "host", rt->host, "path_prefix", rt->path_prefix,
                                                "channel", rt->channel, "stage", rt->stage, "touchpoint",
                                                rt->touchpoint, "auth", gw_auth_str(rt->auth), "policy", rt->policy,
                                                "upstream", cfg->upstreams[rt->upstream].name, "identity_headers", hdrs,
                                                "assertion", sends && assertion, "touchpoints_30d", (json_int_t)n));
    }
    ingested = json_array();
    for (uint32_t k = 0; k < s->nkinds; ++k) {
        const struct kind *kd = &s->kinds[k];
        if (kd->source == 0)
            continue;
        json_array_append_new(ingested,
                              json_pack("{s:s, s:s, s:s, s:s?, s:I}", "source", s->sources.v[kd->source], "channel",
                                        s->channels.v[kd->channel], "touchpoint", s->names.v[kd->name], "stage",
                                        kd->stage != 0 ? s->stages.v[kd->stage] : NULL, "touchpoints_30d",
                                        (json_int_t)per_kind[k]));
    }
    out = json_pack("{s:o, s:o}", "routes", routes, "ingested", ingested);
    free(per_kind);
    return out;
}

/* ------------------------------------------------------------------ sign-in volume */

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

json_t *analytics_signin_volume(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, unsigned bucket_s)
{
    uint32_t a = sec_of(from_ms), b = sec_of(to_ms);
    size_t trailing = bucket_s == 3600 ? 24 : 7; /* a day of hours, a week of days */
    size_t nb = b > a ? (b - a + bucket_s - 1) / bucket_s : 0, tot = nb + trailing;
    uint32_t base = a > trailing * bucket_s ? a - (uint32_t)(trailing * bucket_s) : 0;
    size_t np = s->providers.n, nr = s->reasons.n;
    uint64_t *succ = calloc(tot, sizeof(uint64_t)), *fail = calloc(tot, sizeof(uint64_t));
    uint64_t *refus = calloc(nb + 1, sizeof(uint64_t)), *byr = calloc((nb + 1) * nr, sizeof(uint64_t));
    uint64_t *byp = calloc((nb + 1) * np * 2, sizeof(uint64_t)), *win = calloc(trailing, sizeof(uint64_t));
    json_t *out = NULL, *jb, *ja;

    if (bucket_s != 3600 && bucket_s != DAY_S)
        goto Exit;
    if (succ == NULL || fail == NULL || refus == NULL || byr == NULL || byp == NULL || win == NULL)
        goto Exit;
    /* the trailing buckets before the period are counted too (the baseline of the first ones) */
    for (size_t i = 0; i < s->nsign; ++i) {
        const struct signin *e = &s->sign[i];
        size_t k, j;
        if (e->t_s < base || e->t_s >= b)
            continue;
        /* bucket k: trailing + the bucket of the period, or a trailing one before it */
        if (e->t_s >= a)
            k = trailing + (e->t_s - a) / bucket_s;
        else if ((a - 1 - e->t_s) / bucket_s < trailing)
            k = trailing - 1 - (a - 1 - e->t_s) / bucket_s;
        else
            continue;
        if (k >= tot)
            continue;
        if (e->what == SIGNIN_SUCCESS)
            succ[k] += e->count;
        else if (e->what == SIGNIN_FAILURE)
            fail[k] += e->count;
        if (e->t_s < a)
            continue;
        j = (e->t_s - a) / bucket_s;
        if (e->what == SIGNIN_REFUSAL)
            refus[j] += e->count;
        else if (e->what == SIGNIN_FAILURE)
            byr[j * nr + e->reason] += e->count;
        if (e->what != SIGNIN_REFUSAL)
            byp[(j * np + e->provider) * 2 + (e->what == SIGNIN_FAILURE)] += e->count;
    }
    jb = json_array();
    ja = json_array();
    for (size_t j = 0; j < nb; ++j) {
        size_t k = trailing + j;
        char t[25];
        json_t *reasons = json_object(), *provs = json_object();
        double baseline;
        gw_iso_time(((uint64_t)a + (uint64_t)j * bucket_s) * 1000, t);
        for (size_t r = 0; r < nr; ++r)
            if (byr[j * nr + r] > 0)
                json_object_set_new(reasons, r == 0 ? "(none)" : s->reasons.v[r],
                                    json_integer((json_int_t)byr[j * nr + r]));
        for (size_t p = 0; p < np; ++p)
            if (byp[(j * np + p) * 2] > 0 || byp[(j * np + p) * 2 + 1] > 0)
                json_object_set_new(provs, p == 0 ? "(none)" : s->providers.v[p],
                                    json_pack("{s:I, s:I}", "success", (json_int_t)byp[(j * np + p) * 2], "failure",
                                              (json_int_t)byp[(j * np + p) * 2 + 1]));
        json_array_append_new(jb, json_pack("{s:s, s:I, s:I, s:o, s:o, s:I}", "t", t, "success", (json_int_t)succ[k],
                                            "failure", (json_int_t)fail[k], "by_reason", reasons, "by_provider", provs,
                                            "refusals", (json_int_t)refus[j]));
        /* the trailing median of failures: flagged above ANOMALY_K times it (at least 1) */
        memcpy(win, fail + k - trailing, trailing * sizeof(uint64_t));
        qsort(win, trailing, sizeof(uint64_t), cmp_u64);
        baseline = trailing % 2 == 1 ? (double)win[trailing / 2]
                                     : ((double)win[trailing / 2 - 1] + (double)win[trailing / 2]) / 2;
        if ((double)fail[k] > ANOMALY_K * (baseline < 1 ? 1 : baseline))
            json_array_append_new(ja,
                                  json_pack("{s:s, s:I, s:f, s:f}", "t", t, "failures", (json_int_t)fail[k], "baseline",
                                            baseline, "factor", (double)fail[k] / (baseline < 1 ? 1 : baseline)));
    }
    out = json_pack("{s:s, s:o, s:o, s:s}", "bucket", bucket_s == 3600 ? "hour" : "day", "buckets", jb, "anomalies", ja,
                    "definition",
                    "success: callback_succeeded and token_accepted; failure: callback_refused, token_refused and "
                    "link_refused (by_reason: their reasons); refusals: rate_limited; an anomaly is a bucket whose "
                    "failures exceed 3 x the median of the 24 hours (7 days) before it, taken as at least 1");
Exit:
    free(succ);
    free(fail);
    free(refus);
    free(byr);
    free(byp);
    free(win);
    return out;
}
