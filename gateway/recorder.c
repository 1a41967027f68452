#include "recorder.h"

#include "crypto.h"
#include "metrics.h"
#include "route.h"
#include "workers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MODULE "journeys"
#define BATCH 16384           /* touchpoints per commit at most */
#define SLOT_INLINE 240       /* a queued record up to this size lives in its slot; larger ones are allocated */
#define MERGE_AT (256 * 1024) /* log touchpoints that make the writer merge them into chunks */
#define IDLE_MERGE_MS 1000    /* ... or this long without a touchpoint to write */
#define WAKE_AT 8192          /* queued touchpoints that wake the writer at once (at most a quarter of the queue) ... */
#define WRITER_NICE 5         /* see lower_priority() */
#define COMMIT_EVERY_MS 200   /* ... else it commits what is queued this often: one sync for many */
/*
 * The customers' profiles follow what the writer committed at most this long after the last time
 * (store_touchpoints_profile(): each touched profile once for all those batches, in key order), not
 * in every batch's transaction: a profile may lag a touchpoint by about this much. A merge does it too.
 */
#define PROFILE_EVERY_MS 1000
#define VISIT_GAP_MS                                                                                                   \
    (30 * 60 * 1000)      /* a visit ends after 30 minutes without a touchpoint on that channel and device */
#define VISIT_SLOTS 65536 /* (customer, channel, device) triples whose visit is remembered */
/*
 * A campaign click's signature travels from gw_recorder_push() to the writer in the queued record's
 * visit_id field (which the writer always overwrites with the real visit id): CAMPAIGN_MARK and 16 hex
 * digits of a hash of the utm_* values and the gclid/fbclid value. The click id's value is never stored.
 */
#define CAMPAIGN_MARK '~'
/*
 * A commit that fails for a reason that may pass (a full disk, an I/O error, no memory) is tried
 * again with the same batch after RETRY_FIRST_MS, doubling up to RETRY_MAX_MS apart, for RETRY_FOR_MS
 * (RETRY_STOPPING_MS once the gateway stops); meanwhile the queue absorbs new touchpoints. What still
 * cannot be written is counted lost (gw_recorder_counts(), journeygate_touchpoints_lost_total) and logged.
 */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 5000
#define RETRY_FOR_MS 30000
#define RETRY_STOPPING_MS 2000

/* one queued touchpoint: an encoded store record (store_tp_encode) */
struct slot {
    uint32_t len;
    uint8_t *heap; /* when len > SLOT_INLINE */
    uint8_t inl[SLOT_INLINE];
};

struct gw_recorder {
    store_t *st;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot *ring;
    size_t cap, head, count, wake_at;
    int stopping, writer_waiting;
    pthread_t tid, pruner;
    pthread_cond_t prune_cond; /* the pruner's own: a push must always wake the writer, not the pruner */
    unsigned retention_days;
    int has_pruner;
    _Atomic uint64_t accepted, dropped, written, failed, retries; /* failed: lost after the retries */
    /*
     * anonymous visitors: a slot per hash of the visitor id, on a list from the most recently seen
     * to the least (the oldest are expired and evicted from its end); guarded by lock
     */
    struct visitor {
        char id[32]; /* "" while unused */
        uint64_t last_ms;
        unsigned n;
        size_t bytes;               /* what its touchpoints cost (counted in visitor_bytes) */
        struct vtouch *head, *tail; /* encoded records, oldest first */
        uint32_t newer, older;      /* list neighbours: slot index + 1, 0 for none */
    } * visitors;
    uint32_t newest, oldest; /* the list's ends: slot index + 1, 0 for none */
    size_t visitor_bytes, visitor_budget, visitor_count;
    /* visits: per (customer, channel, device), owned by the writer thread only */
    struct {
        uint64_t key_hash, last_ms;
        uint64_t campaign; /* the signature of the campaign click that started it, 0 for none */
        char visit_id[24];
    } visits[VISIT_SLOTS];
};

/* one anonymous touchpoint held in memory */
struct vtouch {
    struct vtouch *next;
    uint32_t len;
    uint8_t data[];
};

/* what a held touchpoint costs: the record, its header and the allocator's own (about 16 bytes) */
#define VTOUCH_COST(len) (sizeof(struct vtouch) + (len) + 16)

/* a and b, with a byte no string holds between them; never 0 (0 marks a free slot) */
static uint64_t hash_str(const char *a, const char *b)
{
    uint64_t h = gw_fnv1a(GW_FNV1A_SEED, a, strlen(a));
    h = gw_fnv1a(h, "\xff", 1);
    return gw_fnv1a(h, b, strlen(b)) | 1;
}

static const char *device_class_of(const char *ua)
{
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

const char *gw_device_class(const char *ua)
{
    /* a client sends the same User-Agent on every request: a small per-thread cache by its hash */
    static __thread struct {
        uint64_t hash;
        const char *cls;
    } cache[64];
    uint64_t h;
    const char *cls;

    if (ua == NULL || ua[0] == '\0')
        return "unknown";
    h = hash_str(ua, "");
    if (cache[h % 64].hash == h)
        return cache[h % 64].cls;
    cls = device_class_of(ua);
    cache[h % 64].hash = h;
    cache[h % 64].cls = cls;
    return cls;
}

/* touchpoint and visit ids are unique labels, not secrets: a per-thread generator seeded from the CSPRNG */
static uint64_t id_random(void)
{
    static __thread uint64_t state;
    uint64_t z;
    if (state == 0 && (gw_random_bytes(&state, sizeof(state)) != GW_OK || state == 0))
        state = (uint64_t)(uintptr_t)&state ^ (uint64_t)time(NULL);
    z = (state += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* n characters of the base64url alphabet (n <= 10 per 64 random bits) */
static void id_chars(char *out, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t r = id_random();
    for (size_t i = 0; i < n; ++i, r >>= 6)
        out[i] = b64[r & 63];
    out[n] = '\0';
}

/* "tp_" + the time in 12 hex digits (ids sort by time) + 8 random characters */
static void tp_id(char out[24], uint64_t at_ms)
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "tp_", 3);
    for (int i = 0; i < 12; ++i)
        out[3 + i] = hex[(at_ms >> (44 - 4 * i)) & 15];
    id_chars(out + 15, 8);
}

/* the campaign signature a queued record carries in its visit_id (see CAMPAIGN_MARK), 0 for none */
static uint64_t campaign_of(const store_tp_t *tp)
{
    uint64_t sig = 0;
    const char *v = tp->visit_id;
    if (v == NULL || v[0] != CAMPAIGN_MARK || strlen(v) != 17)
        return 0;
    for (int i = 1; i <= 16; ++i)
        sig = sig << 4 | (uint64_t)(v[i] <= '9' ? v[i] - '0' : v[i] - 'a' + 10);
    return sig;
}

/*
 * The visit the touchpoint belongs to, per customer (or visitor), channel and device (CONSOLE.md
 * "Visits"): a new one after VISIT_GAP_MS without a touchpoint, or at a campaign click other than
 * the one that started the current visit. The first touchpoint of a visit keeps its attribution.
 */
static void assign_visit(gw_recorder_t *r, store_tp_t *tp, char visit_id[24])
{
    const char *who = tp->customer_id != NULL ? tp->customer_id : tp->visitor_id != NULL ? tp->visitor_id : "";
    uint64_t h = hash_str(who, tp->channel != NULL ? tp->channel : ""), campaign = campaign_of(tp);
    typeof(r->visits[0]) *v;
    int fresh;

    h = gw_fnv1a(h, "\xff", 1);
    h = gw_fnv1a(h, tp->device != NULL ? tp->device : "", tp->device != NULL ? strlen(tp->device) : 0) | 1;
    v = &r->visits[h % VISIT_SLOTS];
    fresh = v->key_hash != h || tp->occurred_at_ms > v->last_ms + VISIT_GAP_MS ||
            (campaign != 0 && campaign != v->campaign);
    if (fresh) {
        v->key_hash = h;
        v->campaign = campaign;
        id_chars(v->visit_id, 8);
        id_chars(v->visit_id + 8, 8);
    }
    if (tp->occurred_at_ms > v->last_ms || fresh)
        v->last_ms = tp->occurred_at_ms;
    memcpy(visit_id, v->visit_id, 24);
    tp->visit_id = visit_id;
    tp->visit_start = fresh;
    if (!fresh) {
        tp->referrer_host = tp->utm_source = tp->utm_medium = tp->utm_campaign = tp->utm_term = tp->utm_content = NULL;
        tp->click_id = 0;
    }
}

static const uint8_t *slot_data(const struct slot *s)
{
    return s->len > SLOT_INLINE ? s->heap : s->inl;
}

/* a record into the ring (lock held); 0, or -1 when full. heap: the record already allocated, or NULL */
static int ring_put(gw_recorder_t *r, const uint8_t *rec, size_t len, uint8_t *heap)
{
    struct slot *s;
    if (r->count == r->cap || r->stopping)
        return -1;
    s = &r->ring[(r->head + r->count) % r->cap];
    s->len = (uint32_t)len;
    if (len > SLOT_INLINE)
        s->heap = heap;
    else
        memcpy(s->inl, rec, len);
    /*
     * A wake-up per push would cost a system call each: the writer is woken when the queue stops
     * being empty and when it is a quarter full; in between it commits every COMMIT_EVERY_MS.
     */
    ++r->count;
    if ((r->count == 1 || r->count == r->wake_at) && r->writer_waiting)
        pthread_cond_signal(&r->cond);
    return 0;
}

/*
 * The writer and the pruner run at a lower priority than the event loops: when the CPUs are
 * busy, proxied requests go first and the queue absorbs the difference (Linux: a thread's nice).
 */
static void lower_priority(void)
{
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE) != 0)
        GW_LOG_INF(MODULE, "could not lower the touchpoint writer's priority");
}

/* counts touchpoints that will never reach the store, where operators look: the log and /metrics */
static void count_lost(gw_recorder_t *r, size_t n, const char *why)
{
    atomic_fetch_add(&r->failed, n);
    gw_metrics_global_add(GW_GCTR_TOUCHPOINTS_LOST, n);
    GW_LOG_ERR(MODULE, "%zu touchpoints lost: %s", n, why);
}

/* appends a batch, trying again while the failure may pass (see RETRY_FOR_MS); the store's last answer */
static gw_status_t append_retrying(gw_recorder_t *r, const uint8_t *block, size_t len, size_t n)
{
    uint64_t start = gw_mono_ms(), delay = RETRY_FIRST_MS;
    gw_status_t s;

    while ((s = store_touchpoints_append(r->st, block, len, n)) != GW_OK) {
        struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000};
        int stopping;
        if (s == GW_EINVAL)
            break; /* never passes: a read-only store, or a batch the store refuses */
        pthread_mutex_lock(&r->lock);
        stopping = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (gw_mono_ms() + delay > start + (stopping ? RETRY_STOPPING_MS : RETRY_FOR_MS))
            break;
        atomic_fetch_add(&r->retries, 1);
        GW_LOG_WARNING(MODULE, "could not write %zu touchpoints (%s): trying again in %llu ms", n, gw_status_str(s),
                       (unsigned long long)delay);
        nanosleep(&ts, NULL);
        delay = delay * 2 < RETRY_MAX_MS ? delay * 2 : RETRY_MAX_MS;
    }
    return s;
}

/* the profiles in step with what the writer committed (PROFILE_EVERY_MS); a failure is tried again next time */
static void follow_profiles(gw_recorder_t *r, uint64_t *unprofiled, uint64_t *last_profile)
{
    *last_profile = gw_mono_ms();
    if (store_touchpoints_profile(r->st) == GW_OK)
        *unprofiled = 0;
    else
        GW_LOG_ERR(MODULE, "could not bring the customers' profiles in step with their touchpoints");
}

static void *writer_main(void *arg)
{
    gw_recorder_t *r = arg;
    uint8_t *block = malloc((size_t)BATCH * (SLOT_INLINE + 64));
    size_t block_cap = (size_t)BATCH * (SLOT_INLINE + 64);
    uint64_t unmerged = 0, last_write = gw_mono_ms(), unprofiled = 0, last_profile = last_write;

    lower_priority();

    store_touchpoints_unmerged(r->st, &unmerged);
    for (;;) {
        size_t n, head, len = 0, m = 0;
        int stop, idle_merge = 0;

        pthread_mutex_lock(&r->lock);
        for (;;) {
            struct timespec ts;
            uint64_t now = gw_mono_ms(), wait_ms;
            if (r->stopping || r->count >= r->wake_at || (r->count > 0 && now >= last_write + COMMIT_EVERY_MS) ||
                (unprofiled > 0 && now >= last_profile + PROFILE_EVERY_MS))
                break;
            if (r->count == 0 && unmerged > 0 && now >= last_write + IDLE_MERGE_MS) {
                idle_merge = 1;
                break;
            }
            wait_ms = r->count > 0   ? last_write + COMMIT_EVERY_MS - now
                      : unmerged > 0 ? last_write + IDLE_MERGE_MS - now
                                     : 3600 * 1000;
            if (unprofiled > 0 && last_profile + PROFILE_EVERY_MS - now < wait_ms)
                wait_ms = last_profile + PROFILE_EVERY_MS - now;
            ts = gw_realtime_in(wait_ms);
            r->writer_waiting = 1;
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
            r->writer_waiting = 0;
        }
        stop = r->count == 0 && r->stopping;
        head = r->head;
        n = r->count < BATCH ? r->count : BATCH;
        pthread_mutex_unlock(&r->lock);
        if (stop || idle_merge) {
            uint64_t merged = 0;
            /* the merge brings the profiles along first */
            if (unmerged > 0 && store_touchpoints_merge(r->st, &merged) != GW_OK)
                GW_LOG_ERR(MODULE, "could not merge the touchpoint log");
            else
                unprofiled = 0;
            unmerged = 0;
            last_write = last_profile = gw_mono_ms();
            if (stop)
                break;
            continue;
        }
        if (n == 0) { /* woken for the profiles only */
            follow_profiles(r, &unprofiled, &last_profile);
            continue;
        }
        /* the slots [head, head + n) are the writer's until it gives them back below */
        for (size_t i = 0; i < n; ++i) {
            struct slot *s = &r->ring[(head + i) % r->cap];
            store_tp_t tp;
            char visit_id[24];
            size_t rl;
            if (block != NULL && store_tp_decode(slot_data(s), s->len, &tp) != 0) {
                assign_visit(r, &tp, visit_id);
                if (len + s->len + 32 > block_cap) {
                    uint8_t *bigger = realloc(block, block_cap * 2);
                    if (bigger != NULL) {
                        block = bigger;
                        block_cap *= 2;
                    }
                }
                if ((rl = store_tp_encode(&tp, block + len, block_cap - len)) != 0) {
                    len += rl;
                    ++m;
                }
            }
            if (s->len > SLOT_INLINE)
                free(s->heap);
            s->heap = NULL;
        }
        pthread_mutex_lock(&r->lock);
        r->head = (r->head + n) % r->cap;
        r->count -= n;
        pthread_mutex_unlock(&r->lock);
        if (m > 0) {
            gw_status_t s = append_retrying(r, block, len, m);
            if (s == GW_OK) {
                atomic_fetch_add(&r->written, m);
                unmerged += m;
                unprofiled += m;
            } else {
                char why[96];
                snprintf(why, sizeof(why), "the store refused them (%s)", gw_status_str(s));
                count_lost(r, m, why);
            }
        }
        if (m < n)
            count_lost(r, n - m, "could not be encoded for the store");
        last_write = gw_mono_ms();
        if (unmerged >= MERGE_AT) {
            uint64_t merged = 0;
            if (store_touchpoints_merge(r->st, &merged) != GW_OK)
                GW_LOG_ERR(MODULE, "could not merge the touchpoint log");
            else
                unprofiled = 0;
            unmerged = 0;
            last_profile = gw_mono_ms();
        } else if (unprofiled > 0 && last_write >= last_profile + PROFILE_EVERY_MS) {
            follow_profiles(r, &unprofiled, &last_profile);
        }
    }
    free(block);
    return NULL;
}

gw_recorder_t *gw_recorder_create(store_t *st, size_t capacity)
{
    gw_recorder_t *r = calloc(1, sizeof(*r));

    if (r == NULL || (r->ring = calloc(capacity, sizeof(*r->ring))) == NULL) {
        free(r);
        return NULL;
    }
    r->st = st;
    r->cap = capacity;
    r->wake_at = capacity / 4 < WAKE_AT ? (capacity / 4 > 0 ? capacity / 4 : 1) : WAKE_AT;
    r->visitor_budget = GW_VISITOR_MEMORY_DEFAULT;
    if ((r->visitors = calloc(GW_VISITORS, sizeof(*r->visitors))) == NULL) {
        free(r->ring);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    pthread_cond_init(&r->prune_cond, NULL);
    gw_thread_start(&r->tid, writer_main, r);
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

/* a query parameter's value when short enough to keep, into out; "" otherwise */
static const char *utm(const gw_touch_t *t, const char *name, char *out, size_t cap)
{
    char *v = NULL;
    out[0] = '\0';
    if (gw_query_param(t->query, t->query_len, name, &v) == 1 && strlen(v) <= 200 && strlen(v) < cap)
        snprintf(out, cap, "%s", v);
    free(v);
    return out[0] != '\0' ? out : NULL;
}

static int has(const gw_touch_t *t, const char *needle)
{
    return t->query != NULL && memmem(t->query, t->query_len, needle, strlen(needle)) != NULL;
}

/* the visitor list (lock held) */
static void list_unlink(gw_recorder_t *r, struct visitor *v)
{
    if (v->newer != 0)
        r->visitors[v->newer - 1].older = v->older;
    else
        r->newest = v->older;
    if (v->older != 0)
        r->visitors[v->older - 1].newer = v->newer;
    else
        r->oldest = v->newer;
    v->newer = v->older = 0;
}

static void list_push_newest(gw_recorder_t *r, struct visitor *v)
{
    uint32_t self = (uint32_t)(v - r->visitors) + 1;
    v->newer = 0;
    v->older = r->newest;
    if (r->newest != 0)
        r->visitors[r->newest - 1].newer = self;
    r->newest = self;
    if (r->oldest == 0)
        r->oldest = self;
}

/* a visitor's oldest touchpoint is dropped (lock held) */
static void visitor_drop_oldest(gw_recorder_t *r, struct visitor *v)
{
    struct vtouch *t = v->head;
    if (t == NULL)
        return;
    v->head = t->next;
    if (v->head == NULL)
        v->tail = NULL;
    --v->n;
    v->bytes -= VTOUCH_COST(t->len);
    r->visitor_bytes -= VTOUCH_COST(t->len);
    free(t);
}

/* a visitor and its touchpoints are forgotten, its slot freed (lock held) */
static void visitor_forget(gw_recorder_t *r, struct visitor *v)
{
    while (v->head != NULL)
        visitor_drop_oldest(r, v);
    list_unlink(r, v);
    v->id[0] = '\0';
    v->n = 0;
    --r->visitor_count;
}

/* visitors idle for a visit's gap are forgotten: oldest first, so it stops at the first one still active */
static size_t visitors_expire(gw_recorder_t *r, uint64_t now_ms)
{
    size_t n = 0;
    while (r->oldest != 0) {
        struct visitor *o = &r->visitors[r->oldest - 1];
        if (o->last_ms + VISIT_GAP_MS > now_ms)
            break;
        visitor_forget(r, o);
        ++n;
    }
    if (n > 0)
        gw_metrics_global_add(GW_GCTR_VISITORS_EXPIRED, n);
    return n;
}

size_t gw_recorder_expire_visitors(gw_recorder_t *r, uint64_t now_ms)
{
    size_t n;
    pthread_mutex_lock(&r->lock);
    n = visitors_expire(r, now_ms);
    pthread_mutex_unlock(&r->lock);
    return n;
}

void gw_recorder_set_visitor_memory(gw_recorder_t *r, size_t bytes)
{
    pthread_mutex_lock(&r->lock);
    r->visitor_budget = bytes;
    while (r->visitor_bytes > r->visitor_budget && r->oldest != 0) {
        visitor_forget(r, &r->visitors[r->oldest - 1]);
        gw_metrics_global_add(GW_GCTR_VISITORS_EVICTED, 1);
    }
    pthread_mutex_unlock(&r->lock);
}

void gw_recorder_visitor_usage(gw_recorder_t *r, size_t *visitors, size_t *bytes)
{
    pthread_mutex_lock(&r->lock);
    *visitors = r->visitor_count;
    *bytes = r->visitor_bytes;
    pthread_mutex_unlock(&r->lock);
}

int gw_recorder_push(gw_recorder_t *r, const gw_touch_t *t)
{
    store_tp_t tp;
    char id[24], host[256], us[201], um[201], uc[201], ut[201], uo[201], campaign[18];
    uint8_t rec[8192], *heap = NULL;
    size_t len;
    int rc;

    memset(&tp, 0, sizeof(tp));
    tp_id(id, t->occurred_at_ms);
    tp.id = id;
    tp.customer_id = t->customer_id;
    tp.visitor_id = t->customer_id == NULL ? t->visitor_id : NULL;
    tp.occurred_at_ms = t->occurred_at_ms;
    tp.received_at_ms = gw_wall_ms();
    tp.channel = t->channel;
    tp.touchpoint = t->touchpoint;
    tp.stage = t->stage;
    tp.route = t->route;
    tp.method = t->method;
    tp.status = t->status;
    tp.device = gw_device_class(t->user_agent);
    tp.provider = t->provider;
    tp.source = t->source != NULL ? t->source : "proxy";
    tp.session = t->session;
    /* the visit's attribution, kept by the writer only on the first touchpoint of a visit */
    referrer_host(t->referer, host, sizeof(host));
    tp.referrer_host = host[0] != '\0' ? host : NULL;
    if (has(t, "utm_")) {
        tp.utm_source = utm(t, "utm_source", us, sizeof(us));
        tp.utm_medium = utm(t, "utm_medium", um, sizeof(um));
        tp.utm_campaign = utm(t, "utm_campaign", uc, sizeof(uc));
        tp.utm_term = utm(t, "utm_term", ut, sizeof(ut));
        tp.utm_content = utm(t, "utm_content", uo, sizeof(uo));
    }
    if (t->query != NULL) {
        char *v = NULL, *w = NULL;
        uint64_t sig = GW_FNV1A_SEED;
        int click = has(t, "gclid") && gw_query_param(t->query, t->query_len, "gclid", &v) > 0;
        click = (has(t, "fbclid") && gw_query_param(t->query, t->query_len, "fbclid", &w) > 0) || click;
        tp.click_id = click ? 2 : 1;
        if (click || tp.utm_source != NULL || tp.utm_medium != NULL || tp.utm_campaign != NULL || tp.utm_term != NULL ||
            tp.utm_content != NULL) {
            /* a campaign click: its signature tells the writer whether it starts a new visit */
            const char *parts[] = {tp.utm_source, tp.utm_medium, tp.utm_campaign, tp.utm_term, tp.utm_content, v, w};
            for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); ++i) {
                sig = gw_fnv1a(sig, parts[i] != NULL ? parts[i] : "", parts[i] != NULL ? strlen(parts[i]) : 0);
                sig = gw_fnv1a(sig, "\xff", 1);
            }
            sig |= 1; /* never 0, which means none */
            campaign[0] = CAMPAIGN_MARK;
            for (int i = 0; i < 16; ++i)
                campaign[1 + i] = "0123456789abcdef"[(sig >> (60 - 4 * i)) & 15];
            campaign[17] = '\0';
            tp.visit_id = campaign;
        }
        free(v);
        free(w);
    }
    if ((t->customer_id == NULL && t->visitor_id == NULL) || (len = store_tp_encode(&tp, rec, sizeof(rec))) == 0) {
        atomic_fetch_add(&r->dropped, 1);
        return -1;
    }
    if (t->customer_id == NULL) {
        /* an anonymous visitor: kept in memory until a sign-in joins it to a customer */
        size_t at = hash_str(t->visitor_id, "visitor") % GW_VISITORS;
        struct visitor *v = &r->visitors[at];
        struct vtouch *copy = malloc(sizeof(*copy) + len);
        if (copy == NULL || strlen(t->visitor_id) >= sizeof(v->id)) {
            free(copy);
            atomic_fetch_add(&r->dropped, 1);
            return -1;
        }
        copy->next = NULL;
        copy->len = (uint32_t)len;
        memcpy(copy->data, rec, len);
        pthread_mutex_lock(&r->lock);
        visitors_expire(r, tp.received_at_ms);
        if (v->id[0] != '\0' && strcmp(v->id, t->visitor_id) != 0) {
            /* the slot's previous visitor (never signed in) is forgotten */
            visitor_forget(r, v);
            gw_metrics_global_add(GW_GCTR_VISITORS_EVICTED, 1);
        }
        if (v->id[0] == '\0') {
            snprintf(v->id, sizeof(v->id), "%s", t->visitor_id);
            ++r->visitor_count;
        } else {
            list_unlink(r, v);
        }
        list_push_newest(r, v);
        v->last_ms = tp.received_at_ms;
        if (v->tail != NULL)
            v->tail->next = copy;
        else
            v->head = copy;
        v->tail = copy;
        ++v->n;
        v->bytes += VTOUCH_COST(len);
        r->visitor_bytes += VTOUCH_COST(len);
        if (v->n > GW_VISITOR_TOUCHES)
            visitor_drop_oldest(r, v);
        /* over the budget: the least recently seen visitors go first; a lone visitor loses its oldest */
        while (r->visitor_bytes > r->visitor_budget && r->oldest != 0) {
            struct visitor *o = &r->visitors[r->oldest - 1];
            if (o != v) {
                visitor_forget(r, o);
                gw_metrics_global_add(GW_GCTR_VISITORS_EVICTED, 1);
            } else if (v->n > 1) {
                visitor_drop_oldest(r, v);
            } else {
                visitor_forget(r, v);
                gw_metrics_global_add(GW_GCTR_VISITORS_EVICTED, 1);
            }
        }
        pthread_mutex_unlock(&r->lock);
        atomic_fetch_add(&r->accepted, 1);
        return 0;
    }
    if (len > SLOT_INLINE) {
        if ((heap = malloc(len)) == NULL) {
            atomic_fetch_add(&r->dropped, 1);
            return -1;
        }
        memcpy(heap, rec, len);
    }
    pthread_mutex_lock(&r->lock);
    rc = ring_put(r, rec, len, heap);
    pthread_mutex_unlock(&r->lock);
    if (rc != 0) {
        free(heap);
        atomic_fetch_add(&r->dropped, 1);
        return -1;
    }
    atomic_fetch_add(&r->accepted, 1);
    return 0;
}

static void *pruner_main(void *arg)
{
    gw_recorder_t *r = arg;
    lower_priority();
    for (;;) {
        struct timespec ts;
        uint64_t now, deleted = 0;
        now = gw_wall_ms();
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
    if (retention_days == 0 || r->has_pruner)
        return;
    r->retention_days = retention_days;
    r->has_pruner = gw_thread_start(&r->pruner, pruner_main, r) == 0;
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

uint64_t gw_recorder_retries(gw_recorder_t *r)
{
    return atomic_load(&r->retries);
}

void gw_recorder_free(gw_recorder_t *r)
{
    if (r == NULL)
        return;
    while (r->oldest != 0)
        visitor_forget(r, &r->visitors[r->oldest - 1]);
    /* the writer wrote every queued record before it stopped: the ring holds nothing of its own */
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    pthread_cond_destroy(&r->prune_cond);
    free(r->visitors);
    free(r->ring);
    free(r);
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
    struct visitor *v = &r->visitors[hash_str(visitor_id, "visitor") % GW_VISITORS];
    size_t joined = 0;

    pthread_mutex_lock(&r->lock);
    if (v->id[0] != '\0' && strcmp(v->id, visitor_id) == 0) {
        for (struct vtouch *t = v->head; t != NULL; t = t->next) {
            store_tp_t tp;
            uint8_t rec[8192], *heap = NULL;
            size_t len = 0;
            if (store_tp_decode(t->data, t->len, &tp) != 0) {
                tp.customer_id = customer_id;
                len = store_tp_encode(&tp, rec, sizeof(rec));
            }
            if (len > SLOT_INLINE && (heap = malloc(len)) != NULL)
                memcpy(heap, rec, len);
            if (len == 0 || (len > SLOT_INLINE && heap == NULL) || ring_put(r, rec, len, heap) != 0) {
                free(heap);
                atomic_fetch_add(&r->dropped, 1);
            } else {
                ++joined;
            }
        }
        /* a visitor joins one customer at most */
        visitor_forget(r, v);
    }
    pthread_mutex_unlock(&r->lock);
    return joined;
}
