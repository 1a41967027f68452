/* journeygate — token buckets per client address and kind; see ratelimit.h. */
#include "ratelimit.h"

#include "gw.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bucket {
    char addr[64]; /* "" while unused; longer addresses are cut (an IPv6 text form needs 46) */
    uint8_t kind;
    uint8_t limited; /* refused since it last had enough */
    double tokens;
    uint64_t last_ms;
};

struct gw_ratelimit {
    pthread_mutex_t lock;
    double per_s[GW_RATELIMIT_KINDS], burst[GW_RATELIMIT_KINDS];
    size_t slots;
    struct bucket buckets[];
};

gw_ratelimit_t *gw_ratelimit_create(size_t slots)
{
    gw_ratelimit_t *rl;

    if (slots == 0)
        slots = 1;
    if ((rl = calloc(1, sizeof(*rl) + slots * sizeof(rl->buckets[0]))) == NULL)
        return NULL;
    pthread_mutex_init(&rl->lock, NULL);
    rl->slots = slots;
    for (unsigned k = 0; k < GW_RATELIMIT_KINDS; ++k)
        rl->per_s[k] = rl->burst[k] = 1;
    return rl;
}

void gw_ratelimit_destroy(gw_ratelimit_t *rl)
{
    if (rl != NULL) {
        pthread_mutex_destroy(&rl->lock);
        free(rl);
    }
}

void gw_ratelimit_set(gw_ratelimit_t *rl, unsigned kind, double per_s, double burst)
{
    if (kind >= GW_RATELIMIT_KINDS || !(per_s > 0) || !(burst > 0))
        return;
    pthread_mutex_lock(&rl->lock);
    rl->per_s[kind] = per_s;
    rl->burst[kind] = burst;
    pthread_mutex_unlock(&rl->lock);
}

unsigned gw_ratelimit_take(gw_ratelimit_t *rl, const char *addr, unsigned kind, double need, double cost,
                           uint64_t now_ms, int *first)
{
    char key[sizeof(((struct bucket *)0)->addr)];
    unsigned wait = 0;
    struct bucket *b;

    if (kind >= GW_RATELIMIT_KINDS)
        return 0;
    snprintf(key, sizeof(key), "%s", addr);
    pthread_mutex_lock(&rl->lock);
    b = &rl->buckets[(gw_fnv1a(GW_FNV1A_SEED, key, strlen(key)) ^ kind) % rl->slots];
    if (b->kind != kind || strcmp(b->addr, key) != 0) {
        memcpy(b->addr, key, sizeof(key));
        b->kind = (uint8_t)kind;
        b->tokens = rl->burst[kind];
        b->last_ms = now_ms;
        b->limited = 0;
    }
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * rl->per_s[kind];
        b->last_ms = now_ms;
    }
    if (b->tokens > rl->burst[kind])
        b->tokens = rl->burst[kind];
    if (b->tokens >= need) {
        b->tokens = b->tokens > cost ? b->tokens - cost : 0;
        b->limited = 0;
    } else {
        double secs = (need - b->tokens) / rl->per_s[kind];
        if (secs > 1e9)
            secs = 1e9;
        wait = (unsigned)secs;
        if ((double)wait < secs - 1e-6) /* rounded up, but not for a rounding error's sake */
            ++wait;
        if (wait == 0)
            wait = 1;
        *first = !b->limited;
        b->limited = 1;
    }
    pthread_mutex_unlock(&rl->lock);
    return wait;
}
