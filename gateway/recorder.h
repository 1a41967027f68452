/*
 * journeygate — touchpoint recording: a bounded queue in front of one writer thread that
 * group-commits batches to the store. Pushing never blocks: a full queue drops the event and
 * counts it. Stopping flushes everything accepted.
 */
#ifndef GW_RECORDER_H
#define GW_RECORDER_H

#include "gw.h"
#include "store.h"

#include <stdint.h>

typedef struct gw_recorder gw_recorder_t;

/** What a request tells about a touchpoint; strings are copied by gw_recorder_push(). */
typedef struct gw_touch {
    const char *customer_id; /* or NULL for an anonymous visitor */
    const char *visitor_id;  /* the anonymous visitor's id when customer_id is NULL */
    const char *channel, *touchpoint, *stage, *route, *method, *provider, *source;
    const char *session;              /* the session's public id ("sid"), never its token */
    const char *user_agent, *referer; /* for the device class and the visit's attribution; never stored raw */
    const char *query;                /* the request's query string (utm_*, gclid, fbclid are read from it) */
    size_t query_len;
    int status;
    uint64_t occurred_at_ms;
} gw_touch_t;

gw_recorder_t *gw_recorder_create(store_t *st, size_t capacity);

/**
 * Queues a touchpoint, encoded (no JSON, no allocation for a usual one); returns 0, or -1 when
 * the queue was full (dropped and counted). Thread-safe, never blocks. The writer thread appends
 * what is queued to the store's log in one commit per batch and merges the log into the
 * customers' chunks when enough has gathered or when idle (see store.h, "Touchpoints").
 */
int gw_recorder_push(gw_recorder_t *r, const gw_touch_t *t);

/**
 * Anonymous touchpoints are held in memory only (an unauthenticated request never writes to
 * disk), at most GW_VISITOR_TOUCHES per visitor (the oldest go first), in GW_VISITORS slots by
 * hash of the visitor id, and within a memory budget (gw_recorder_set_visitor_memory(), by
 * default GW_VISITOR_MEMORY_DEFAULT): past it the least recently seen visitors are forgotten
 * (evicted). A visitor idle for 30 minutes (a visit's end) is forgotten too (expired). Each record
 * is bounded: a UTM value over 200 bytes is not kept, a referrer host is cut at 255.
 * gw_recorder_join() gives a visitor's touchpoints to the customer who signed in on that browser
 * and queues them for the store; a visitor joins one customer at most (its buffer is emptied).
 * Returns the number of touchpoints joined.
 */
#define GW_VISITORS 20000
#define GW_VISITOR_TOUCHES 50
#define GW_VISITOR_MEMORY_DEFAULT (64u * 1024 * 1024)
size_t gw_recorder_join(gw_recorder_t *r, const char *visitor_id, const char *customer_id);

/** Sets the anonymous visitors' memory budget in bytes (evicting at once down to it). Thread-safe. */
void gw_recorder_set_visitor_memory(gw_recorder_t *r, size_t bytes);

/** Forgets the visitors idle for 30 minutes as of now_ms (wall clock); returns how many. Thread-safe. */
size_t gw_recorder_expire_visitors(gw_recorder_t *r, uint64_t now_ms);

/** The anonymous visitors held now and the bytes their touchpoints cost (as the budget counts them). */
void gw_recorder_visitor_usage(gw_recorder_t *r, size_t *visitors, size_t *bytes);

/** Deletes touchpoints older than retention_days at start and then hourly (0: keep forever). */
void gw_recorder_set_retention(gw_recorder_t *r, unsigned retention_days);

/** Writes everything queued, merges the log, then stops the writer. */
void gw_recorder_stop(gw_recorder_t *r);

/** Frees a stopped recorder (after gw_recorder_stop), with the visitors it still held. */
void gw_recorder_free(gw_recorder_t *r);

/**
 * Counters: accepted, dropped (the queue was full), written, and failed: lost, because the store
 * still refused their batch after the writer's retries (a few attempts over up to 30 s, with backoff;
 * none for a store that can never take it, such as a read-only one), or they could not be encoded.
 */
void gw_recorder_counts(gw_recorder_t *r, uint64_t *accepted, uint64_t *dropped, uint64_t *written, uint64_t *failed);

/** How many times the writer tried a failed batch again (each retry counts one). */
uint64_t gw_recorder_retries(gw_recorder_t *r);

/** The device class of a User-Agent: "mobile", "tablet", "desktop", "bot", "app" or "unknown". */
const char *gw_device_class(const char *user_agent);

#endif
