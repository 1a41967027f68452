/* journeygate — token buckets per client address and kind; see ratelimit.h. */
#include "ratelimit.h"

#include "gw.h"

#include <arpa/inet.h>
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

void gw_ratelimit_key(const char *addr, char *out, size_t cap)
{
    char text[INET6_ADDRSTRLEN + 16];
    const char *zone;
    uint8_t a6[16];
    size_t n;

    /* a zone index ("fe80::1%eth0") names an interface, not another client */
    zone = strchr(addr, '%');
    n = zone != NULL ? (size_t)(zone - addr) : strlen(addr);
    if (n < sizeof(text)) {
        memcpy(text, addr, n);
        text[n] = '\0';
        if (inet_pton(AF_INET6, text, a6) == 1) {
            static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            char buf[INET6_ADDRSTRLEN];
            if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
                /* ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1 */
                snprintf(out, cap, "%u.%u.%u.%u", a6[12], a6[13], a6[14], a6[15]);
                return;
            }
            /* one subscriber gets a whole /64 and may pick any address in it */
            memset(a6 + 8, 0, 8);
            if (inet_ntop(AF_INET6, a6, buf, sizeof(buf)) != NULL) {
                snprintf(out, cap, "%s/64", buf);
                return;
            }
        }
    }
    snprintf(out, cap, "%s", addr);
}

unsigned gw_ratelimit_take(gw_ratelimit_t *rl, const char *addr, unsigned kind, double need, double cost,
                           uint64_t now_ms, int *first)
{
    char key[sizeof(((struct bucket *)0)->addr)];
    unsigned wait = 0;
    struct bucket *b;

    if (kind >= GW_RATELIMIT_KINDS)
        return 0;
    gw_ratelimit_key(addr, key, sizeof(key));
    pthread_mutex_lock(&rl->lock);
    b = &rl->buckets[(gw_fnv1a(GW_FNV1A_SEED, key, strlen(key)) ^ kind) % rl->slots];
    if (b->kind != kind || strcmp(b->addr, key) != 0) {
        /*
         * A newcomer takes the slot over with the level the slot has now (its previous holder's
         * tokens, refilled below), never a fresh burst: otherwise two addresses whose hashes meet,
         * or an attacker cycling addresses, would each refill the other's bucket at every turn.
         * An unused slot starts full. A newcomer that lands on a drained slot waits for the refill
         * like the address it replaced; with RATE_SLOTS slots that is rare for real clients.
         */
        if (b->addr[0] == '\0') {
            b->tokens = rl->burst[kind];
            b->last_ms = now_ms;
        } else if (b->kind != kind) {
            /* the previous holder's level, refilled at its own kind's rate, as a share of this kind's burst */
            unsigned old = b->kind;
            if (now_ms > b->last_ms)
                b->tokens += (double)(now_ms - b->last_ms) / 1000.0 * rl->per_s[old];
            if (b->tokens > rl->burst[old])
                b->tokens = rl->burst[old];
            b->tokens = b->tokens / rl->burst[old] * rl->burst[kind];
            b->last_ms = now_ms;
        }
        memcpy(b->addr, key, sizeof(key));
        b->kind = (uint8_t)kind;
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
