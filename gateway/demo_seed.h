/*
 * journeygate — sample data for `journeygate demo` (demo_seed.c says what it holds and how it
 * is marked as sample). No h2o here: it writes through the store and the recorder.
 */
#ifndef GW_DEMO_SEED_H
#define GW_DEMO_SEED_H

#include "gw.h"
#include "recorder.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/**
 * Gives an EMPTY store `customers` sample customers, signed in over the 30 days before now_ms
 * with one of `providers` (num_providers names of configured providers), each with a journey
 * queued on the recorder `rec`, and about one failed sign-in per five customers in the trail.
 * A store that already has a customer is left as it is (GW_OK, *created = 0).
 *
 * created (may be NULL): the customers made. Touchpoints reach the store when the recorder's
 * writer commits them: this call waits (at most 10 s) until the writer has committed the sample's,
 * so that figures built right after it (the console's first snapshot) include them.
 * Returns GW_OK; GW_EINVAL for NULL or empty arguments or now_ms before 30 days after the epoch;
 * GW_ENOMEM; or the store's error (what was written before it stays, in time order).
 * Writes as a bulk load (store_set_durable(0), then 1: one sync at the end), so nothing else may
 * write the store meanwhile. Blocks on the store: call it from the main thread before serving.
 */
gw_status_t gw_demo_seed(store_t *st, gw_recorder_t *rec, const char *const *providers, size_t num_providers,
                         size_t customers, uint64_t now_ms, size_t *created);

#endif
