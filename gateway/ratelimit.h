/*
 * journeygate — token buckets per client address and kind (sign-in attempts, ingest batches).
 * A fixed table: memory stays bounded however many addresses are seen; a new address takes over
 * the slot its hash lands on with the tokens that slot holds (never a fresh burst). IPv6 clients
 * are keyed by their /64, IPv4-mapped IPv6 addresses as the IPv4 address.
 */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define GW_RATELIMIT_KINDS 4

typedef struct gw_ratelimit gw_ratelimit_t;

/** A table of `slots` buckets (at least 1); every kind starts at 1 token a second, burst 1. */
gw_ratelimit_t *gw_ratelimit_create(size_t slots);
void gw_ratelimit_destroy(gw_ratelimit_t *rl);

/** Sets a kind's refill rate and bucket size (both > 0); buckets keep their tokens, clamped at the next take. */
void gw_ratelimit_set(gw_ratelimit_t *rl, unsigned kind, double per_s, double burst);

/**
 * The bucket key of a client address into out (cap bytes): an IPv4 address as is, an IPv4-mapped
 * IPv6 address as its IPv4 address, any other IPv6 address as its /64 ("2001:db8:1:2::/64"), and
 * anything that is not an address as its text (cut to cap - 1 bytes).
 */
void gw_ratelimit_key(const char *addr, char *out, size_t cap);

/**
 * Refills the bucket of (addr, kind) up to `now_ms`; if it holds at least `need` tokens, takes `cost`
 * of them (never going below zero) and returns 0; otherwise returns the whole seconds until it holds
 * `need` (at least 1), and sets *first when this is the first refusal since the bucket last had enough.
 * need 1, cost 1: an attempt; need 1, cost 0: allowed while tokens remain, free; need 0, cost 1: a
 * charge that is never refused. Thread-safe.
 */
unsigned gw_ratelimit_take(gw_ratelimit_t *rl, const char *addr, unsigned kind, double need, double cost,
                           uint64_t now_ms, int *first);

#endif
