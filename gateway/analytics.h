/*
 * journeygate — the aggregates behind the console's figures (marketer views and sign-in volume).
 *
 * Figures are never computed by scanning the store on a request: one background thread of its
 * own (no h2o, no event loop) reads every touchpoint (store_touchpoints_foreach) and the sign-in
 * records of the audit trail (store_audit_foreach, incrementally after the last sequence read)
 * into a SNAPSHOT of compact in-memory columns, and publishes it atomically. Queries are pure
 * functions over one snapshot (unit-testable); the console runs them through analytics_call() on a
 * query thread of the analytics (nice 10, like the builder), so figures never take CPU from the
 * proxy's event loops when it needs it. A new snapshot never changes one being read.
 *
 * The snapshot's layout (bytes per touchpoint: 8, plus 4 per customer):
 *   touchpoints, customer by customer, each customer's in time order:
 *     t_s[i]   u32  occurred_at in seconds since the epoch
 *     kind[i]  u32  an index into the kinds table (bits 0..29) | ANONYMOUS (bit 30: recorded
 *                   before sign-in and joined to the customer) | VISIT_START (bit 31)
 *   kinds: the distinct (channel, stage, touchpoint, route, source) of the touchpoints, each a
 *     code into its own string table (a few thousand at most in practice);
 *   customers: off[c] .. off[c + 1] are customer c's touchpoints (so a customer's first touchpoint
 *     ever is t_s[off[c]]); customer ids are not kept (figures show counts, never persons);
 *   sign-in events (audit trail): time, kind (success, failure, refusal), provider, reason, count.
 *
 * Rebuilds: the first at start, then at most every refresh_s seconds and only when
 * store_generation() moved. A full rebuild (not an extension) keeps erasures and retention
 * honest: a deleted customer's touchpoints leave the figures with the next snapshot.
 *
 * Definitions: console/API.md and shared/CONSOLE.md; each answer carries its own "definitions".
 */
#ifndef GW_ANALYTICS_H
#define GW_ANALYTICS_H

#include "gw.h"
#include "config.h"
#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct analytics analytics_t;           /* the builder thread and the current snapshot */
typedef struct analytics_snap analytics_snap_t; /* one immutable snapshot (reference counted) */

/**
 * Starts the background thread (at nice 10: the event loops come first): it builds the first
 * snapshot at once, then rebuilds it every refresh_s seconds (1..86400) when the store changed
 * (store_generation()). Does not wait for the first build (seconds at ten million touchpoints):
 * until it is done analytics_acquire() returns NULL. st must outlive the analytics (call
 * analytics_stop() before store_close()). Returns GW_OK with *out, GW_EINVAL (refresh_s out of
 * range) or GW_ENOMEM. A failed build is logged and the previous snapshot stays.
 */
gw_status_t analytics_start(store_t *st, unsigned refresh_s, analytics_t **out);

/**
 * Stops the threads (a build under way gives up within a few ms; queries already queued still run)
 * and frees the analytics; NULL is a no-op. No analytics_call() may start after it: stop the
 * console's workers first. Snapshots still acquired stay valid until released.
 */
void analytics_stop(analytics_t *a);

/**
 * The current snapshot with a reference for the caller, or NULL while the first build runs (answer
 * 503, retry). Takes a lock only for the pointer load and the increment: never waits for a build.
 */
analytics_snap_t *analytics_acquire(analytics_t *a);

/** Drops a reference; the last one frees the snapshot. NULL is a no-op. */
void analytics_release(analytics_snap_t *s);

/** A query run by analytics_call(): a pure function of the snapshot and its argument (a new JSON object, or NULL). */
typedef json_t *(*analytics_query_fn)(const analytics_snap_t *s, void *arg);

/**
 * Runs fn(current snapshot, arg) on the analytics' query thread, which runs at nice 10 like the
 * builder (so the console's queries take CPU the proxy leaves over), and waits for it: one query at
 * a time, at most 32 waiting. Call it from a worker thread, never an event loop. Returns GW_OK with
 * *out (the caller owns it), GW_EUNAVAIL when there is no snapshot yet, the queue is full or the
 * analytics are stopping (answer 503), GW_ENOMEM when fn returned NULL.
 */
gw_status_t analytics_call(analytics_t *a, analytics_query_fn fn, void *arg, json_t **out);

/** Asks the thread to rebuild now, whatever refresh_s says (tests, and after bulk changes). Does not wait. */
void analytics_refresh(analytics_t *a);

/**
 * Builds a snapshot from the store on the calling thread (what the background thread does; tests
 * and benchmarks call it directly). prev (may be NULL) is the previous snapshot: its sign-in
 * events are kept and the audit trail is read after its last sequence. now_ms is the snapshot's
 * "as of". Returns GW_OK with *out (one reference), GW_ENOMEM or the store's error.
 */
gw_status_t analytics_snap_build(store_t *st, const analytics_snap_t *prev, uint64_t now_ms, analytics_snap_t **out);

/** When the snapshot was built (ms since the epoch), its touchpoints, customers and bytes held. */
uint64_t analytics_snap_as_of(const analytics_snap_t *s);
size_t analytics_snap_touchpoints(const analytics_snap_t *s);
size_t analytics_snap_customers(const analytics_snap_t *s);
size_t analytics_snap_bytes(const analytics_snap_t *s);

/*
 * Queries. Each is a pure function of the snapshot and its arguments, and returns a new JSON
 * object in the shape console/API.md gives (the caller json_decref()s it), or NULL when memory
 * runs out. Periods are [from_ms, to_ms) (console_period()'s). Filters (NULL or "" = none) select
 * CUSTOMERS, as a segment does in Mixpanel or Amplitude: `channel` keeps the customers with a
 * touchpoint on that channel in the period, `stage` those with a touchpoint of that stage in the
 * period; their whole journeys then count.
 */

/** The stage whose reaching counts as a conversion (transitions' "(converted)"). */
#define ANALYTICS_CONVERTED_STAGE "convert"

/** GET overview: the period and the one of the same length just before it. */
json_t *analytics_overview(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms);

/** GET transitions: the first-order channel matrix and the top 20 channel sequences. */
json_t *analytics_transitions(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel,
                              const char *stage);

/**
 * GET paths: person scope; start (NULL: each customer's first touchpoint in the period) is a
 * touchpoint name; steps 2..10 (including the start), top 1..20 nodes per step.
 */
json_t *analytics_paths(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel,
                        const char *stage, const char *start, unsigned steps, unsigned top);

/**
 * GET funnel: stages[0..n) in order (1..10 names), window_days 1..365. The period bounds entry
 * (step 1) only: later steps count up to entry + window, inside or after the period.
 */
json_t *analytics_funnel(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel,
                         const char *const *stages, size_t n, unsigned window_days);

/** GET stages: entries, transitions (regressions marked) and median days in stage. */
json_t *analytics_stages(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, const char *channel);

/**
 * GET inventory: the configuration's routes (their channel, stage, touchpoint, auth, policy,
 * upstream, the identity headers they send upstream) and the ingested kinds of touchpoint, each
 * with its touchpoints in the 30 days before now_ms.
 */
json_t *analytics_inventory(const analytics_snap_t *s, const gw_config_t *cfg, uint64_t now_ms);

/**
 * GET signins/volume: buckets of bucket_s seconds (3600 or 86400) over the period, and the
 * buckets whose failures exceed k times the median of the `trailing` buckets before them.
 */
json_t *analytics_signin_volume(const analytics_snap_t *s, uint64_t from_ms, uint64_t to_ms, unsigned bucket_s);

#endif
