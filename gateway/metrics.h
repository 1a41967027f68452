/*
 * journeygate — Prometheus metrics.
 *
 * Counters live in per-thread blocks (one writer each, relaxed atomics) and are
 * summed when /metrics is scraped, so recording costs no shared cache line.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define GW_METRICS_MAX_ROUTES 256
#define GW_METRICS_MAX_THREADS 256

typedef enum gw_upstream_error {
    GW_UPERR_REFUSED = 0,
    GW_UPERR_TIMEOUT,
    GW_UPERR_OTHER,
    GW_UPERR_COUNT
} gw_upstream_error_t;

typedef enum gw_counter {
    GW_CTR_CONN_ACCEPTED = 0,
    GW_CTR_CONN_REJECTED,   /* over limits.max_connections */
    GW_CTR_HEADER_REJECTED, /* answered 431 */
    GW_CTR_HEADER_TIMEOUT,  /* closed before a complete request head */
    GW_CTR_RELOAD_OK,
    GW_CTR_RELOAD_FAILED,
    GW_CTR_TOUCHPOINTS_RECORDED, /* queued for the store */
    GW_CTR_TOUCHPOINTS_DROPPED,  /* the queue was full */
    GW_CTR_RATE_LIMITED_SIGNIN,  /* answered 429: the address's sign-in bucket was empty */
    GW_CTR_RATE_LIMITED_INGEST,  /* answered 429: the address's ingest bucket was empty */
    GW_CTR_COUNT
} gw_counter_t;

typedef struct gw_metrics_thread gw_metrics_thread_t;

/* process-wide counters of background threads (no event-loop thread's block is theirs to write) */
typedef enum gw_global_counter {
    GW_GCTR_AUDIT_AGGREGATED = 0, /* refusals counted into another record instead of one of their own */
    GW_GCTR_AUDIT_OVER_LIMIT,     /* refusal records past the per-interval cap, counted in an audit_gap record */
    GW_GCTR_AUDIT_LOST,           /* refusal records that could not be queued or written, counted in audit_gap */
    GW_GCTR_VISITORS_EVICTED,     /* anonymous visitors forgotten to stay within journeys.visitor_memory */
    GW_GCTR_VISITORS_EXPIRED,     /* anonymous visitors forgotten after 30 idle minutes */
    GW_GCTR_TOUCHPOINTS_LOST,     /* touchpoints the store did not take after the writer's retries */
    GW_GCTR_COUNT
} gw_global_counter_t;

/** Adds n to a process-wide counter. Thread-safe. */
void gw_metrics_global_add(gw_global_counter_t counter, uint64_t n);

/** A process-wide counter's value (for tests and the /metrics page). */
uint64_t gw_metrics_global(gw_global_counter_t counter);

/**
 * Index of the metrics series for a route name; the same name always gets the same
 * index (across reloads). Index 0 is "(none)": requests that matched no route.
 * Past GW_METRICS_MAX_ROUTES names, returns 0. Thread-safe.
 */
unsigned gw_metrics_route_index(const char *name);

/** The block of thread `index` (created on first use; never freed). */
gw_metrics_thread_t *gw_metrics_thread(unsigned index);

void gw_metrics_request(gw_metrics_thread_t *m, unsigned route, int status, uint64_t duration_us);
void gw_metrics_upstream_error(gw_metrics_thread_t *m, unsigned route, gw_upstream_error_t kind);
void gw_metrics_count(gw_metrics_thread_t *m, gw_counter_t counter);

/** Open client connections, across threads. */
void gw_metrics_connections_add(int delta);

/** Counts one sign-in outcome (login or mobile token) by provider, outcome and reason. Thread-safe. */
void gw_metrics_login(const char *provider, const char *outcome, const char *reason);

/** Renders the Prometheus text exposition; returns a malloc'ed buffer the caller frees, or NULL. */
char *gw_metrics_render(size_t *len);

#endif
