/*
 * journeygate — a customer's profile kept in step with the customer's touchpoints: the channels,
 * devices and lifecycle stages seen, and when (see store_int.h, store_seen_t).
 *
 * Owned by the store. store_tp.c calls store_profiles_seen() for the touchpoint log: the recorder's
 * blocks in a transaction of their own after them (store_tp_profiles(): every block past the
 * profiles' mark, gathered here per customer, then each profile once in customer id order) or in
 * the merge that takes them out of the log; an ingested block in its own transaction. store.c calls
 * store_profile_seen() at sign-in. A profile is rewritten only when its touchpoints tell it
 * something new: a channel, device or stage it did not have, first_seen moving earlier, or a last
 * seen time (the customer's, a channel's, a device's) moving by more than STORE_SEEN_SLACK_MS.
 * What each profile already says is remembered in memory (struct seen_cache below), so a block of
 * touchpoints of customers whose profiles are up to date reads and parses no profile at all.
 *
 * Profile fields written here (names read by the console; see README "Customers"):
 *   channels_seen   ["web", "email"]                       (in the order first seen)
 *   first_seen_ms, last_seen_ms
 *   channels        {"web": {"first_seen_ms": N, "last_seen_ms": N}}
 *   devices         {"desktop": {"last_seen_ms": N}}
 *   stages_reached  {"need": FIRST_MS, ...}                (lifecycle stages only)
 *   stage           the furthest of stages_reached in the order need ... advocacy
 */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *const lifecycle[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy"};
/* the device classes gw_device_class() gives; a profile's other devices are never cached */
static const char *const device_classes[] = {"mobile", "tablet", "desktop", "bot", "app", "unknown"};
#define NSTAGES (sizeof(lifecycle) / sizeof(lifecycle[0]))
#define NDEVICES (sizeof(device_classes) / sizeof(device_classes[0]))

int store_stage_index(const char *stage)
{
    for (size_t i = 0; stage != NULL && i < NSTAGES; ++i)
        if (strcmp(stage, lifecycle[i]) == 0)
            return (int)i;
    return -1;
}

static int device_index(const char *device)
{
    for (size_t i = 0; device != NULL && i < NDEVICES; ++i)
        if (strcmp(device, device_classes[i]) == 0)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------ what one block says */

void store_seen_reset(store_seen_t *s)
{
    memset(s, 0, sizeof(*s));
}

int store_seen_add(store_seen_t *s, const char *channel, const char *device, const char *stage, uint64_t at_ms)
{
    size_t i;
    int si = store_stage_index(stage);

    if (channel != NULL) {
        for (i = 0; i < s->nch && strcmp(s->ch[i].name, channel) != 0; ++i)
            ;
        if (i == s->nch) {
            if (s->nch == STORE_SEEN_MAX)
                return -1;
            s->ch[s->nch].name = channel;
            s->ch[s->nch].first_ms = s->ch[s->nch].last_ms = at_ms;
            ++s->nch;
        } else {
            if (at_ms < s->ch[i].first_ms)
                s->ch[i].first_ms = at_ms;
            if (at_ms > s->ch[i].last_ms)
                s->ch[i].last_ms = at_ms;
        }
    }
    if (device != NULL) {
        for (i = 0; i < s->ndev && strcmp(s->dev[i].name, device) != 0; ++i)
            ;
        if (i == s->ndev) {
            if (s->ndev == STORE_SEEN_MAX)
                return -1;
            s->dev[s->ndev].name = device;
            s->dev[s->ndev].last_ms = at_ms;
            ++s->ndev;
        } else if (at_ms > s->dev[i].last_ms) {
            s->dev[i].last_ms = at_ms;
        }
    }
    if (si >= 0 && (s->stage_ms[si] == 0 || at_ms < s->stage_ms[si]))
        s->stage_ms[si] = at_ms;
    if (s->first_ms == 0 || at_ms < s->first_ms)
        s->first_ms = at_ms;
    if (at_ms > s->last_ms)
        s->last_ms = at_ms;
    s->any = 1;
    return 0;
}

/* ------------------------------------------------------------------ the profile's JSON */

static json_t *child_object(json_t *o, const char *k)
{
    json_t *c = json_object_get(o, k);
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(o, k, c);
    }
    return c;
}

/*
 * o[k] = v when o[k] is missing, not a number, or (earlier ? above v : below v). Returns 0 when
 * nothing changed, 1 when a later time moved by at most slack_ms, 2 for any other change.
 */
static int set_bound(json_t *o, const char *k, uint64_t v, int earlier, uint64_t slack_ms)
{
    json_t *x = json_object_get(o, k);
    int has = json_is_integer(x) && json_integer_value(x) >= 0;
    uint64_t old = has ? (uint64_t)json_integer_value(x) : 0;
    if (has && (earlier ? old <= v : old >= v))
        return 0;
    json_object_set_new(o, k, json_integer((json_int_t)v));
    return has && !earlier && old + slack_ms >= v ? 1 : 2;
}

/* the largest of two set_bound() answers */
#define CHANGED(c, r)                                                                                                  \
    do {                                                                                                               \
        int r_ = (r);                                                                                                  \
        if (r_ > (c))                                                                                                  \
            (c) = r_;                                                                                                  \
    } while (0)

int store_profile_seen(json_t *cust, const store_seen_t *s, uint64_t slack_ms)
{
    json_t *seen = json_object_get(cust, "channels_seen"), *channels, *devices, *stages, *x;
    const char *key;
    int changed = 0, furthest = -1;

    if (!s->any)
        return 0;
    if (!json_is_array(seen)) {
        seen = json_array();
        json_object_set_new(cust, "channels_seen", seen);
    }
    channels = child_object(cust, "channels");
    devices = child_object(cust, "devices");
    stages = child_object(cust, "stages_reached");
    CHANGED(changed, set_bound(cust, "first_seen_ms", s->first_ms, 1, slack_ms));
    CHANGED(changed, set_bound(cust, "last_seen_ms", s->last_ms, 0, slack_ms));
    for (size_t i = 0; i < s->nch; ++i) {
        json_t *c = json_object_get(channels, s->ch[i].name);
        size_t k;
        int listed = 0;
        json_array_foreach(seen, k, x) listed |= json_is_string(x) && strcmp(json_string_value(x), s->ch[i].name) == 0;
        if (!listed) {
            json_array_append_new(seen, json_string(s->ch[i].name));
            changed = 2;
        }
        if (!json_is_object(c)) {
            c = json_object();
            json_object_set_new(channels, s->ch[i].name, c);
        }
        CHANGED(changed, set_bound(c, "first_seen_ms", s->ch[i].first_ms, 1, slack_ms));
        CHANGED(changed, set_bound(c, "last_seen_ms", s->ch[i].last_ms, 0, slack_ms));
    }
    for (size_t i = 0; i < s->ndev; ++i) {
        json_t *d = json_object_get(devices, s->dev[i].name);
        if (!json_is_object(d)) {
            d = json_object();
            json_object_set_new(devices, s->dev[i].name, d);
        }
        CHANGED(changed, set_bound(d, "last_seen_ms", s->dev[i].last_ms, 0, slack_ms));
    }
    for (size_t i = 0; i < NSTAGES; ++i)
        if (s->stage_ms[i] != 0)
            CHANGED(changed, set_bound(stages, lifecycle[i], s->stage_ms[i], 1, slack_ms));
    json_object_foreach(stages, key, x)
    {
        int si = store_stage_index(key);
        if (si > furthest)
            furthest = si;
    }
    if (furthest >= 0) {
        x = json_object_get(cust, "stage");
        if (!json_is_string(x) || strcmp(json_string_value(x), lifecycle[furthest]) != 0) {
            json_object_set_new(cust, "stage", json_string(lifecycle[furthest]));
            changed = 2;
        }
    }
    return changed;
}

/* ------------------------------------------------------------------ what the profiles already say */

/*
 * A 2-way set-associative cache of what each recently touched customer's profile says, by the hash
 * of the customer id: 65,536 sets of 2 entries of 128 bytes (16 MiB of address space, only the
 * pages in use cost memory). An entry is a lower bound of the profile (profiles only gain channels,
 * devices and stages, and their times only widen), so it can tell "nothing new" for sure; anything
 * it cannot tell goes to the profile itself. Entries are updated only after their transaction
 * committed (store_seen_pending_t). Guarded by its lock (the recorder's writer and ingestion
 * workers write blocks, one write transaction at a time, but apply pending entries after it).
 */
#define SETS 65536
#define WAYS 2
#define CACHE_CH 6

struct entry {
    uint64_t h, first_ms, last_ms;
    uint32_t tick;
    uint8_t stages, nch, pad[2];
    uint32_t ch_h[CACHE_CH], ch_first_s[CACHE_CH], ch_last_s[CACHE_CH];
    uint32_t dev_last_s[NDEVICES]; /* 0: not on the profile */
};

struct store_seen_cache {
    pthread_mutex_t lock;
    uint32_t tick;
    struct entry e[SETS * WAYS];
};

static pthread_mutex_t cache_make_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The cache and the gathering table are large and live as long as the store: mapped on their own,
 * zeroed, pages made as touched. From malloc they would take the writer thread's arena (once
 * glibc's mmap threshold has grown past them), and LMDB's multi-megabyte page buffers of each
 * commit would then go to a heap made and unmapped again for every transaction, every page faulted
 * anew (a third of the writer's time in journey_bench).
 */
static void *big_zeroed(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static struct store_seen_cache *cache_of(store_t *st)
{
    struct store_seen_cache *c = __atomic_load_n(&st->seen_cache, __ATOMIC_ACQUIRE);
    if (c != NULL)
        return c; /* made once, freed only by store_close() */
    pthread_mutex_lock(&cache_make_lock);
    if ((c = st->seen_cache) == NULL && (c = big_zeroed(sizeof(*c))) != NULL) {
        pthread_mutex_init(&c->lock, NULL);
        __atomic_store_n(&st->seen_cache, c, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&cache_make_lock);
    return c;
}

void store_seen_cache_free(store_t *st)
{
    if (st->seen_cache != NULL) {
        pthread_mutex_destroy(&st->seen_cache->lock);
        munmap(st->seen_cache, sizeof(*st->seen_cache));
        st->seen_cache = NULL;
    }
}

static uint32_t name_hash(const char *s)
{
    uint64_t h = gw_fnv1a(GW_FNV1A_SEED, s, strlen(s));
    return (uint32_t)(h ^ (h >> 32)) | 1;
}

static struct entry *cache_find(struct store_seen_cache *c, uint64_t h)
{
    struct entry *set = &c->e[(h % SETS) * WAYS];
    for (int w = 0; w < WAYS; ++w)
        if (set[w].h == h)
            return &set[w];
    return NULL;
}

/* whether the entry already says everything s says (within the slack); the lock held */
static int cache_covers(const struct entry *e, const store_seen_t *s)
{
    if (s->first_ms < e->first_ms || s->last_ms > e->last_ms + STORE_SEEN_SLACK_MS)
        return 0;
    for (size_t i = 0; i < s->nch; ++i) {
        uint32_t h = name_hash(s->ch[i].name);
        size_t k;
        for (k = 0; k < e->nch && e->ch_h[k] != h; ++k)
            ;
        if (k == e->nch || s->ch[i].first_ms / 1000 < e->ch_first_s[k] ||
            s->ch[i].last_ms > (uint64_t)e->ch_last_s[k] * 1000 + STORE_SEEN_SLACK_MS)
            return 0;
    }
    for (size_t i = 0; i < s->ndev; ++i) {
        int d = device_index(s->dev[i].name);
        if (d < 0 || e->dev_last_s[d] == 0 ||
            s->dev[i].last_ms > (uint64_t)e->dev_last_s[d] * 1000 + STORE_SEEN_SLACK_MS)
            return 0;
    }
    for (size_t i = 0; i < NSTAGES; ++i)
        if (s->stage_ms[i] != 0 && !(e->stages & (1u << i)))
            return 0;
    return 1;
}

static uint64_t get_ms(json_t *o, const char *k)
{
    json_t *x = json_object_get(o, k);
    return json_is_integer(x) && json_integer_value(x) > 0 ? (uint64_t)json_integer_value(x) : 0;
}

/* what the profile says, as an entry for customer hash h */
static void entry_from(struct entry *e, uint64_t h, json_t *cust)
{
    json_t *x;
    const char *k;

    memset(e, 0, sizeof(*e));
    e->h = h;
    e->first_ms = get_ms(cust, "first_seen_ms");
    e->last_ms = get_ms(cust, "last_seen_ms");
    json_object_foreach(json_object_get(cust, "stages_reached"), k, x)
    {
        int si = store_stage_index(k);
        if (si >= 0)
            e->stages |= (uint8_t)(1u << si);
    }
    json_object_foreach(json_object_get(cust, "channels"), k, x)
    {
        if (e->nch == CACHE_CH)
            break;
        /* in seconds: a touchpoint less than a second before a channel's first one may leave it as it is */
        e->ch_h[e->nch] = name_hash(k);
        e->ch_first_s[e->nch] = (uint32_t)(get_ms(x, "first_seen_ms") / 1000);
        e->ch_last_s[e->nch] = (uint32_t)(get_ms(x, "last_seen_ms") / 1000);
        ++e->nch;
    }
    json_object_foreach(json_object_get(cust, "devices"), k, x)
    {
        int d = device_index(k);
        uint64_t at = get_ms(x, "last_seen_ms") / 1000;
        if (d >= 0 && at > 0)
            e->dev_last_s[d] = (uint32_t)at;
    }
}

void store_seen_pending_free(store_seen_pending_t *p)
{
    free(p->v);
    p->v = NULL;
    p->n = p->cap = 0;
}

void store_seen_pending_apply(store_t *st, store_seen_pending_t *p)
{
    struct store_seen_cache *c = p->n > 0 ? cache_of(st) : NULL;
    if (c != NULL) {
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < p->n; ++i) {
            const struct entry *n = (const struct entry *)p->v + i;
            struct entry *set = &c->e[(n->h % SETS) * WAYS], *to = cache_find(c, n->h);
            if (to == NULL) /* the way used least recently */
                to = set[0].h == 0 || (set[1].h != 0 && set[0].tick <= set[1].tick) ? &set[0] : &set[1];
            *to = *n;
            to->tick = ++c->tick;
        }
        pthread_mutex_unlock(&c->lock);
    }
    p->n = 0;
}

static int pending_add(store_seen_pending_t *p, const struct entry *e)
{
    if (p->n == p->cap) {
        size_t cap = p->cap > 0 ? p->cap * 2 : 256;
        void *v = realloc(p->v, cap * sizeof(struct entry));
        if (v == NULL)
            return ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    ((struct entry *)p->v)[p->n++] = *e;
    return 0;
}

/* the JSON profile itself, rewritten when s tells it something new (what the seen record cannot hold) */
static int profile_json_seen(store_t *st, MDB_txn *txn, const char *cid, uint64_t h, const store_seen_t *s,
                             struct entry *e, int *remember)
{
    MDB_val k = {STORE_ID_LEN, (void *)cid}, v;
    json_t *cust;
    int rc = 0;

    if ((rc = mdb_get(txn, st->customers, &k, &v)) != 0)
        return rc == MDB_NOTFOUND ? 0 : rc; /* erased meanwhile: its touchpoints make no profile */
    if ((cust = json_loadb(v.mv_data, v.mv_size, 0, NULL)) == NULL)
        return 0;           /* not a profile this version can read: left alone */
    entry_from(e, h, cust); /* what it says before: remembered when it is not rewritten */
    if (store_profile_seen(cust, s, STORE_SEEN_SLACK_MS) == 2) {
        char *text = json_dumps(cust, JSON_COMPACT | JSON_SORT_KEYS);
        if (text == NULL) {
            json_decref(cust);
            return ENOMEM;
        }
        v.mv_size = strlen(text);
        v.mv_data = text;
        rc = mdb_put(txn, st->customers, &k, &v, 0);
        free(text);
        entry_from(e, h, cust);
    }
    *remember = rc == 0;
    json_decref(cust);
    return rc;
}

/* ------------------------------------------------------------------ the seen record (profile_seen) */

/*
 * What touchpoints told a customer's profile is kept apart from the profile's JSON, in the small
 * database profile_seen (customer id -> this record), and merged into the profile whenever it is
 * read (store_profile_merge_seen()): moving it costs no JSON parse and print, and a page holds the
 * records of dozens of customers. Sign-ins still write the JSON itself; a reader sees the union.
 *
 * Record (integers big-endian): u8 version (1) | u8 channels | u8 devices | u8 stages (bit i:
 *   lifecycle[i]) | u64 first_ms | u64 last_ms | u64 per stage bit set (first reached, need first) |
 *   per channel: u8 length, name, NUL, u64 first_ms, u64 last_ms | per device: u8 length, name, NUL,
 *   u64 last_ms. Names end in NUL in place: a decoded store_seen_t points into the value.
 */
#define SEEN_VERSION 1
#define SEEN_REC_MAX (20 + NSTAGES * 8 + STORE_SEEN_MAX * (2 + 255 + 16) + STORE_SEEN_MAX * (2 + 255 + 8))

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; --i, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
        v = v << 8 | p[i];
    return v;
}

static size_t put_name(uint8_t *p, const char *name)
{
    size_t n = strlen(name);
    if (n > 255)
        n = 255; /* records never hold longer ones */
    p[0] = (uint8_t)n;
    memcpy(p + 1, name, n);
    p[1 + n] = '\0';
    return n + 2;
}

static size_t seen_encode(const store_seen_t *s, uint8_t *out)
{
    size_t n = 20;
    uint8_t stages = 0;
    out[0] = SEEN_VERSION;
    out[1] = (uint8_t)s->nch;
    out[2] = (uint8_t)s->ndev;
    put64(out + 4, s->first_ms);
    put64(out + 12, s->last_ms);
    for (size_t i = 0; i < NSTAGES; ++i)
        if (s->stage_ms[i] != 0) {
            stages |= (uint8_t)(1u << i);
            put64(out + n, s->stage_ms[i]);
            n += 8;
        }
    out[3] = stages;
    for (size_t i = 0; i < s->nch; ++i) {
        n += put_name(out + n, s->ch[i].name);
        put64(out + n, s->ch[i].first_ms);
        put64(out + n + 8, s->ch[i].last_ms);
        n += 16;
    }
    for (size_t i = 0; i < s->ndev; ++i) {
        n += put_name(out + n, s->dev[i].name);
        put64(out + n, s->dev[i].last_ms);
        n += 8;
    }
    return n;
}

/* a name at p + *n of a record of len bytes; NULL when the record ends or is malformed */
static const char *get_name(const uint8_t *p, size_t len, size_t *n, size_t then)
{
    size_t l;
    const char *name;
    if (*n + 1 > len || *n + 1 + (l = p[*n]) + 1 + then > len || p[*n + 1 + l] != '\0')
        return NULL;
    name = (const char *)p + *n + 1;
    *n += l + 2;
    return name;
}

/* 0, or -1 when the record is not one this version wrote (then s says nothing) */
static int seen_decode(const uint8_t *p, size_t len, store_seen_t *s)
{
    size_t n = 20;
    store_seen_reset(s);
    if (len < 20 || p[0] != SEEN_VERSION || p[1] > STORE_SEEN_MAX || p[2] > STORE_SEEN_MAX)
        return -1;
    s->first_ms = get64(p + 4);
    s->last_ms = get64(p + 12);
    for (size_t i = 0; i < NSTAGES; ++i)
        if (p[3] & (1u << i)) {
            if (n + 8 > len)
                goto Bad;
            s->stage_ms[i] = get64(p + n);
            n += 8;
        }
    for (s->nch = 0; s->nch < p[1]; ++s->nch) {
        if ((s->ch[s->nch].name = get_name(p, len, &n, 16)) == NULL)
            goto Bad;
        s->ch[s->nch].first_ms = get64(p + n);
        s->ch[s->nch].last_ms = get64(p + n + 8);
        n += 16;
    }
    for (s->ndev = 0; s->ndev < p[2]; ++s->ndev) {
        if ((s->dev[s->ndev].name = get_name(p, len, &n, 8)) == NULL)
            goto Bad;
        s->dev[s->ndev].last_ms = get64(p + n);
        n += 8;
    }
    s->any = s->last_ms != 0;
    return 0;
Bad:
    store_seen_reset(s);
    return -1;
}

/* into gains what from says; -1 when the union needs more channels or devices than a store_seen_t holds */
static int seen_merge(store_seen_t *into, const store_seen_t *from)
{
    int bad = 0;
    for (size_t i = 0; i < from->nch; ++i)
        bad |= store_seen_add(into, from->ch[i].name, NULL, NULL, from->ch[i].first_ms) |
               store_seen_add(into, from->ch[i].name, NULL, NULL, from->ch[i].last_ms);
    for (size_t i = 0; i < from->ndev; ++i)
        bad |= store_seen_add(into, NULL, from->dev[i].name, NULL, from->dev[i].last_ms);
    for (size_t i = 0; i < NSTAGES; ++i)
        if (from->stage_ms[i] != 0)
            store_seen_add(into, NULL, NULL, lifecycle[i], from->stage_ms[i]);
    if (from->any) {
        store_seen_add(into, NULL, NULL, NULL, from->first_ms);
        store_seen_add(into, NULL, NULL, NULL, from->last_ms);
    }
    return bad ? -1 : 0;
}

/* a later time: 0 the same, 1 moved by at most slack_ms, 2 more */
static int moved(uint64_t before, uint64_t now, uint64_t slack_ms)
{
    return now == before ? 0 : now > before + slack_ms ? 2 : 1;
}

/*
 * How now (old merged with more, seen_merge(): old's channels and devices keep their places) differs
 * from old, as store_profile_seen() answers: 0 nothing, 1 only last-seen times within the slack, 2 more.
 */
static int seen_change(const store_seen_t *old, const store_seen_t *now, uint64_t slack_ms)
{
    int c = 0;
    if (!old->any || now->nch != old->nch || now->ndev != old->ndev || now->first_ms < old->first_ms)
        return 2;
    for (size_t i = 0; i < NSTAGES; ++i)
        if (now->stage_ms[i] != old->stage_ms[i])
            return 2;
    for (size_t i = 0; i < now->nch; ++i)
        if (now->ch[i].first_ms < old->ch[i].first_ms)
            return 2;
    CHANGED(c, moved(old->last_ms, now->last_ms, slack_ms));
    for (size_t i = 0; i < now->nch; ++i)
        CHANGED(c, moved(old->ch[i].last_ms, now->ch[i].last_ms, slack_ms));
    for (size_t i = 0; i < now->ndev; ++i)
        CHANGED(c, moved(old->dev[i].last_ms, now->dev[i].last_ms, slack_ms));
    return c;
}

/* what a seen record says, as a cache entry (a lower bound of the profile a reader sees) */
static void entry_from_seen(struct entry *e, uint64_t h, const store_seen_t *s)
{
    memset(e, 0, sizeof(*e));
    e->h = h;
    e->first_ms = s->first_ms;
    e->last_ms = s->last_ms;
    for (size_t i = 0; i < NSTAGES; ++i)
        if (s->stage_ms[i] != 0)
            e->stages |= (uint8_t)(1u << i);
    for (size_t i = 0; i < s->nch && e->nch < CACHE_CH; ++i, ++e->nch) {
        e->ch_h[e->nch] = name_hash(s->ch[i].name);
        e->ch_first_s[e->nch] = (uint32_t)(s->ch[i].first_ms / 1000);
        e->ch_last_s[e->nch] = (uint32_t)(s->ch[i].last_ms / 1000);
    }
    for (size_t i = 0; i < s->ndev; ++i) {
        int d = device_index(s->dev[i].name);
        if (d >= 0 && s->dev[i].last_ms >= 1000)
            e->dev_last_s[d] = (uint32_t)(s->dev[i].last_ms / 1000);
    }
}

int store_profiles_seen(store_t *st, MDB_txn *txn, const char *cid, const store_seen_t *s, store_seen_pending_t *p)
{
    struct store_seen_cache *c = cache_of(st);
    uint64_t h = gw_fnv1a(GW_FNV1A_SEED, cid, STORE_ID_LEN);
    MDB_val k = {STORE_ID_LEN, (void *)cid}, v;
    store_seen_t old, now;
    struct entry e;
    int rc = 0, remember = 0;

    if (!s->any)
        return 0;
    if (c != NULL) {
        struct entry *hit;
        int covered;
        pthread_mutex_lock(&c->lock);
        hit = cache_find(c, h);
        covered = hit != NULL && cache_covers(hit, s);
        if (hit != NULL)
            hit->tick = ++c->tick;
        pthread_mutex_unlock(&c->lock);
        if (covered)
            return 0;
    }
    rc = mdb_get(txn, st->profile_seen, &k, &v);
    if (rc == 0)
        seen_decode(v.mv_data, v.mv_size, &old); /* one this version cannot read is written anew */
    else if (rc == MDB_NOTFOUND)
        store_seen_reset(&old);
    else
        return rc;
    now = old;
    if (seen_merge(&now, s) != 0) {
        /* more channels or devices than the record holds: into the JSON profile itself */
        rc = profile_json_seen(st, txn, cid, h, s, &e, &remember);
    } else if (seen_change(&old, &now, STORE_SEEN_SLACK_MS) == 2) {
        uint8_t rec[SEEN_REC_MAX];
        MDB_val cv;
        if ((rc = mdb_get(txn, st->customers, &k, &cv)) != 0)
            return rc == MDB_NOTFOUND ? 0 : rc; /* erased meanwhile: its touchpoints make no profile */
        v.mv_size = seen_encode(&now, rec);
        v.mv_data = rec;
        if ((rc = mdb_put(txn, st->profile_seen, &k, &v, 0)) == 0) {
            entry_from_seen(&e, h, &now);
            remember = 1;
        }
    } else {
        entry_from_seen(&e, h, &old); /* what is stored; now differs by at most the slack */
        remember = 1;
    }
    if (rc == 0 && remember && p != NULL)
        rc = pending_add(p, &e);
    return rc;
}

typedef __typeof__(((store_seen_t *)NULL)->ch[0]) seen_channel_t;

static int by_first_seen(const void *a, const void *b)
{
    const seen_channel_t *x = a, *y = b;
    return x->first_ms < y->first_ms ? -1 : x->first_ms > y->first_ms;
}

void store_profile_merge_seen(store_t *st, MDB_txn *txn, const void *key, size_t klen, json_t *cust)
{
    MDB_val k = {klen, (void *)key}, v;
    store_seen_t s;
    if (!st->profile_seen_ok || klen != STORE_ID_LEN || !json_is_object(cust) ||
        mdb_get(txn, st->profile_seen, &k, &v) != 0 || seen_decode(v.mv_data, v.mv_size, &s) != 0)
        return;
    /* channels_seen lists them in the order first seen */
    qsort(s.ch, s.nch, sizeof(s.ch[0]), by_first_seen);
    store_profile_seen(cust, &s, 0);
}

int store_profile_seen_delete(store_t *st, MDB_txn *txn, const char *cid)
{
    MDB_val k = {STORE_ID_LEN, (void *)cid};
    int rc = mdb_del(txn, st->profile_seen, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------------ many touchpoints, each profile once */

/*
 * What a run of touchpoints tells each of its customers, gathered before any profile is looked at:
 * one store_seen_t per customer, found by the customer id's hash (open addressing). ACC_MAX customers
 * at most (about 7 MiB; only the pages in use cost memory): a run that touches more is applied in
 * parts, each in customer id order. Made on first use, freed by store_close().
 */
#define ACC_MAX 16384
#define ACC_SLOTS (4 * ACC_MAX) /* a power of two */

struct acc_cust {
    const char *cid;
    uint64_t h;
    uint32_t slot; /* where slot[] points at it */
    store_seen_t seen;
};

struct store_seen_acc {
    size_t n;
    uint32_t slot[ACC_SLOTS]; /* index into v + 1; 0 empty */
    struct acc_cust *order[ACC_MAX];
    struct acc_cust v[ACC_MAX];
};

void store_seen_acc_free(store_t *st)
{
    if (st->seen_acc != NULL)
        munmap(st->seen_acc, sizeof(*st->seen_acc));
    st->seen_acc = NULL;
}

void store_seen_gather_reset(store_t *st)
{
    struct store_seen_acc *a = st->seen_acc;
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; ++i)
        a->slot[a->v[i].slot] = 0;
    a->n = 0;
}

static int by_cid(const void *x, const void *y)
{
    const struct acc_cust *a = *(const struct acc_cust *const *)x, *b = *(const struct acc_cust *const *)y;
    return memcmp(a->cid, b->cid, STORE_ID_LEN);
}

int store_seen_flush(store_t *st, MDB_txn *txn, store_seen_pending_t *p)
{
    struct store_seen_acc *a = st->seen_acc;
    int rc = 0;

    if (a == NULL || a->n == 0)
        return 0;
    /* in key order: the profiles' pages are visited once each, in sequence */
    for (size_t i = 0; i < a->n; ++i)
        a->order[i] = &a->v[i];
    qsort(a->order, a->n, sizeof(a->order[0]), by_cid);
    for (size_t i = 0; i < a->n && rc == 0; ++i)
        rc = store_profiles_seen(st, txn, a->order[i]->cid, &a->order[i]->seen, p);
    store_seen_gather_reset(st);
    return rc;
}

int store_seen_gather(store_t *st, MDB_txn *txn, const char *cid, uint64_t h, const store_tp_t *tp,
                      store_seen_pending_t *p)
{
    struct store_seen_acc *a = st->seen_acc;
    struct acc_cust *c = NULL;
    uint32_t i;
    int rc;

    if (a == NULL && (a = st->seen_acc = big_zeroed(sizeof(*a))) == NULL)
        return ENOMEM;
    for (i = (uint32_t)(h & (ACC_SLOTS - 1)); a->slot[i] != 0; i = (i + 1) & (ACC_SLOTS - 1)) {
        struct acc_cust *x = &a->v[a->slot[i] - 1];
        if (x->h == h && memcmp(x->cid, cid, STORE_ID_LEN) == 0) {
            c = x;
            break;
        }
    }
    if (c == NULL) {
        if (a->n == ACC_MAX) {
            if ((rc = store_seen_flush(st, txn, p)) != 0)
                return rc;
            return store_seen_gather(st, txn, cid, h, tp, p);
        }
        c = &a->v[a->n];
        c->cid = cid;
        c->h = h;
        c->slot = i;
        store_seen_reset(&c->seen);
        a->slot[i] = (uint32_t)++a->n;
    }
    if (store_seen_add(&c->seen, tp->channel, tp->device, tp->stage, tp->occurred_at_ms) != 0) {
        /* more channels or devices than one store_seen_t holds: what it has first */
        if ((rc = store_profiles_seen(st, txn, cid, &c->seen, p)) != 0)
            return rc;
        store_seen_reset(&c->seen);
        store_seen_add(&c->seen, tp->channel, tp->device, tp->stage, tp->occurred_at_ms);
    }
    return 0;
}
