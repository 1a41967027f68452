/*
 * journeygate — the audit trail's records of refusals (policy denials, refused sign-in callbacks,
 * rate limiting): events that change nothing, that anyone can cause at will, and that must
 * neither fill the disk nor hold up sign-ins.
 *
 * They are written by one thread of their own (never the worker pool that sign-ins use), several
 * records per synced transaction, and bounded three ways:
 * - aggregation: per key (the caller's: e.g. customer, route and reason), the first refusal of an
 *   interval is written; the repeats are counted and written as one record with "count" when the
 *   interval ends (or at stop, or when another key takes the slot over);
 * - a cap per interval on the records written, separately for refusals of signed-in customers and
 *   of anonymous clients; what goes past it is counted;
 * - a bounded queue; what does not fit, or fails to be written, is counted.
 * Whatever is counted and not written gets an `audit_gap` record with the count at the end of the
 * interval (reason `over_limit` or `lost`): the trail says what it is missing, never silently.
 */
#ifndef GW_AUDITQ_H
#define GW_AUDITQ_H

#include "gw.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gw_auditq gw_auditq_t;

/**
 * Starts the writer. interval_ms: the aggregation interval (at least 10 ms); per_interval: records
 * per interval and class (signed-in, anonymous; at least 1); queue: records waiting at most (at
 * least 1). The store must outlive the queue. NULL when out of memory.
 */
gw_auditq_t *gw_auditq_create(store_t *st, uint64_t interval_ms, unsigned per_interval, size_t queue);

/**
 * Records one refusal. key identifies what repeats aggregate on (NUL-terminated; the caller
 * includes the event name); ev's strings are copied; now_ms is the record's wall-clock time.
 * Thread-safe, never blocks on the store: fit for an event-loop thread.
 */
void gw_auditq_refusal(gw_auditq_t *q, const char *key, const store_audit_event_t *ev, uint64_t now_ms);

/** Ends the interval now and returns once its records (aggregates and gaps included) are written. */
void gw_auditq_flush(gw_auditq_t *q);

/** Flushes (as gw_auditq_flush), stops the writer and frees the queue. NULL is ignored. */
void gw_auditq_destroy(gw_auditq_t *q);

#endif
