#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* latency histogram bucket bounds, seconds (Prometheus "le") */
static const double bucket_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NUM_BUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

struct gw_metrics_thread {
    _Atomic uint64_t requests[GW_METRICS_MAX_ROUTES][5]; /* by status class 1xx..5xx */
    _Atomic uint64_t upstream_errors[GW_METRICS_MAX_ROUTES][GW_UPERR_COUNT];
    _Atomic uint64_t buckets[NUM_BUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t duration_sum_us;
    _Atomic uint64_t counters[GW_CTR_COUNT];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static char *route_names[GW_METRICS_MAX_ROUTES];
static unsigned num_route_names;
static gw_metrics_thread_t *_Atomic threads[GW_METRICS_MAX_THREADS];
static _Atomic long open_connections;
static _Atomic uint64_t global_counters[GW_GCTR_COUNT];

void gw_metrics_global_add(gw_global_counter_t counter, uint64_t n)
{
    if ((unsigned)counter < GW_GCTR_COUNT)
        atomic_fetch_add_explicit(&global_counters[counter], n, memory_order_relaxed);
}

uint64_t gw_metrics_global(gw_global_counter_t counter)
{
    return (unsigned)counter < GW_GCTR_COUNT ? atomic_load(&global_counters[counter]) : 0;
}

/* sign-in outcomes: rare events, so one small locked table (bounded: label values come from code and config) */
#define MAX_LOGIN_SERIES 256
static struct {
    char provider[40], outcome[16], reason[48];
    uint64_t count;
} login_series[MAX_LOGIN_SERIES];
static unsigned num_login_series;

void gw_metrics_login(const char *provider, const char *outcome, const char *reason)
{
    unsigned i;

    if (provider == NULL)
        provider = "";
    if (reason == NULL)
        reason = "";
    pthread_mutex_lock(&registry_lock);
    for (i = 0; i < num_login_series; ++i)
        if (strcmp(login_series[i].provider, provider) == 0 && strcmp(login_series[i].outcome, outcome) == 0 &&
            strcmp(login_series[i].reason, reason) == 0)
            break;
    if (i == num_login_series && num_login_series < MAX_LOGIN_SERIES) {
        snprintf(login_series[i].provider, sizeof(login_series[i].provider), "%s", provider);
        snprintf(login_series[i].outcome, sizeof(login_series[i].outcome), "%s", outcome);
        snprintf(login_series[i].reason, sizeof(login_series[i].reason), "%s", reason);
        ++num_login_series;
    }
    if (i < num_login_series)
        ++login_series[i].count;
    pthread_mutex_unlock(&registry_lock);
}

unsigned gw_metrics_route_index(const char *name)
{
    unsigned i, found = 0;

    pthread_mutex_lock(&registry_lock);
    if (num_route_names == 0)
        route_names[num_route_names++] = strdup("(none)");
    for (i = 1; i < num_route_names; ++i) {
        if (route_names[i] != NULL && strcmp(route_names[i], name) == 0) {
            found = i;
            break;
        }
    }
    if (found == 0 && num_route_names < GW_METRICS_MAX_ROUTES) {
        route_names[num_route_names] = strdup(name);
        if (route_names[num_route_names] != NULL)
            found = num_route_names++;
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}

gw_metrics_thread_t *gw_metrics_thread(unsigned index)
{
    gw_metrics_thread_t *m;

    if (index >= GW_METRICS_MAX_THREADS)
        index = GW_METRICS_MAX_THREADS - 1;
    if ((m = atomic_load(&threads[index])) != NULL)
        return m;
    pthread_mutex_lock(&registry_lock);
    if ((m = atomic_load(&threads[index])) == NULL) {
        m = calloc(1, sizeof(*m));
        if (m == NULL)
            abort(); /* start-up allocation: nothing sensible to do without it */
        atomic_store(&threads[index], m);
    }
    pthread_mutex_unlock(&registry_lock);
    return m;
}

#define INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)

void gw_metrics_request(gw_metrics_thread_t *m, unsigned route, int status, uint64_t duration_us)
{
    unsigned cls = status >= 100 && status < 600 ? (unsigned)(status / 100 - 1) : 4;
    size_t b;

    if (route >= GW_METRICS_MAX_ROUTES)
        route = 0;
    INC(m->requests[route][cls]);
    for (b = 0; b < NUM_BUCKETS; ++b)
        if ((double)duration_us <= bucket_le[b] * 1e6)
            break;
    INC(m->buckets[b]);
    atomic_fetch_add_explicit(&m->duration_sum_us, duration_us, memory_order_relaxed);
}

void gw_metrics_upstream_error(gw_metrics_thread_t *m, unsigned route, gw_upstream_error_t kind)
{
    if (route >= GW_METRICS_MAX_ROUTES)
        route = 0;
    INC(m->upstream_errors[route][kind]);
}

void gw_metrics_count(gw_metrics_thread_t *m, gw_counter_t counter)
{
    INC(m->counters[counter]);
}

void gw_metrics_connections_add(int delta)
{
    atomic_fetch_add_explicit(&open_connections, delta, memory_order_relaxed);
}

/* a growable text buffer with a hard cap */
typedef struct textbuf {
    char *buf;
    size_t len, cap;
    int failed;
} textbuf_t;

static void tb_printf(textbuf_t *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(textbuf_t *tb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (tb->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(tb->buf + tb->len, tb->cap - tb->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            tb->failed = 1;
            return;
        }
        if ((size_t)n < tb->cap - tb->len) {
            tb->len += (size_t)n;
            return;
        }
        if (tb->cap >= 16 * 1024 * 1024) {
            tb->failed = 1;
            return;
        }
        char *grown = realloc(tb->buf, tb->cap * 2);
        if (grown == NULL) {
            tb->failed = 1;
            return;
        }
        tb->buf = grown;
        tb->cap *= 2;
    }
}

static uint64_t sum_threads(size_t offset)
{
    uint64_t total = 0;
    for (unsigned t = 0; t < GW_METRICS_MAX_THREADS; ++t) {
        gw_metrics_thread_t *m = atomic_load(&threads[t]);
        if (m != NULL)
            total += atomic_load_explicit((_Atomic uint64_t *)((char *)m + offset), memory_order_relaxed);
    }
    return total;
}

#define SUM(field) sum_threads(offsetof(gw_metrics_thread_t, field))

char *gw_metrics_render(size_t *len)
{
    /* name, labels, help (a family's HELP and TYPE come before its first series) */
    static const char *const counters_shown[GW_CTR_COUNT][3] = {
        {"journeygate_connections_accepted_total", "", "Client connections accepted."},
        {"journeygate_connections_rejected_total", "",
         "Client connections closed at once: over limits.max_connections."},
        {"journeygate_header_limit_rejected_total", "", "Requests answered 431: too many or too large headers."},
        {"journeygate_header_timeout_total", "", "Connections closed before a complete request head arrived."},
        {"journeygate_config_reloads_total", "{result=\"ok\"}", "Configuration reloads (SIGHUP), by result."},
        {"journeygate_config_reloads_total", "{result=\"failed\"}", NULL},
        {"journeygate_touchpoints_recorded_total", "", "Touchpoints queued for the store."},
        {"journeygate_touchpoints_dropped_total", "", "Touchpoints dropped because the recording queue was full."},
        {"journeygate_rate_limited_total", "{bucket=\"signin\"}",
         "Requests answered 429 by the per-address rate limits, by bucket."},
        {"journeygate_rate_limited_total", "{bucket=\"ingest\"}", NULL},
    };
    static const char *const uperr_names[GW_UPERR_COUNT] = {"refused", "timeout", "other"};
    static const char *const globals_shown[GW_GCTR_COUNT][3] = {
        {"journeygate_audit_refusals_unwritten_total", "{why=\"aggregated\"}",
         "Refusal audit records not written on their own, by why: aggregated (counted in a record with a count), "
         "over_limit (past the per-interval cap) and lost (queue full or write failed); the last two are counted "
         "in audit_gap records."},
        {"journeygate_audit_refusals_unwritten_total", "{why=\"over_limit\"}", NULL},
        {"journeygate_audit_refusals_unwritten_total", "{why=\"lost\"}", NULL},
        {"journeygate_visitors_forgotten_total", "{why=\"evicted\"}",
         "Anonymous visitors whose in-memory touchpoints were dropped, by why: evicted (over "
         "journeys.visitor_memory) or expired (idle 30 minutes)."},
        {"journeygate_visitors_forgotten_total", "{why=\"expired\"}", NULL},
        {"journeygate_touchpoints_lost_total", "", "Touchpoints the store did not take after the writer's retries."},
    };
    textbuf_t tb = {malloc(16384), 0, 16384, 0};
    unsigned nroutes;
    char *names[GW_METRICS_MAX_ROUTES];

    if (tb.buf == NULL)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    nroutes = num_route_names;
    memcpy(names, route_names, sizeof(names[0]) * nroutes);
    pthread_mutex_unlock(&registry_lock);

    tb_printf(&tb, "# HELP journeygate_requests_total Requests answered, by route and status class.\n"
                   "# TYPE journeygate_requests_total counter\n");
    for (unsigned r = 0; r < nroutes; ++r)
        for (unsigned c = 0; c < 5; ++c) {
            uint64_t v = SUM(requests[r][c]);
            if (v != 0)
                tb_printf(&tb, "journeygate_requests_total{route=\"%s\",code=\"%uxx\"} %llu\n", names[r], c + 1,
                          (unsigned long long)v);
        }
    tb_printf(&tb, "# HELP journeygate_upstream_errors_total Upstream failures, by route and kind.\n"
                   "# TYPE journeygate_upstream_errors_total counter\n");
    for (unsigned r = 1; r < nroutes; ++r)
        for (unsigned k = 0; k < GW_UPERR_COUNT; ++k)
            tb_printf(&tb, "journeygate_upstream_errors_total{route=\"%s\",kind=\"%s\"} %llu\n", names[r],
                      uperr_names[k], (unsigned long long)SUM(upstream_errors[r][k]));
    tb_printf(&tb, "# HELP journeygate_request_duration_seconds Time from request start to response end.\n"
                   "# TYPE journeygate_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= NUM_BUCKETS; ++b) {
        cumulative += SUM(buckets[b]);
        if (b < NUM_BUCKETS)
            tb_printf(&tb, "journeygate_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[b],
                      (unsigned long long)cumulative);
        else
            tb_printf(&tb, "journeygate_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                      (unsigned long long)cumulative);
    }
    tb_printf(&tb, "journeygate_request_duration_seconds_sum %.6f\n", (double)SUM(duration_sum_us) / 1e6);
    tb_printf(&tb, "journeygate_request_duration_seconds_count %llu\n", (unsigned long long)cumulative);
    for (unsigned c = 0; c < GW_CTR_COUNT; ++c) {
        const char *const *k = counters_shown[c];
        if (k[2] != NULL)
            tb_printf(&tb, "# HELP %s %s\n# TYPE %s counter\n", k[0], k[2], k[0]);
        tb_printf(&tb, "%s%s %llu\n", k[0], k[1], (unsigned long long)SUM(counters[c]));
    }
    for (unsigned c = 0; c < GW_GCTR_COUNT; ++c) {
        const char *const *k = globals_shown[c];
        if (k[2] != NULL)
            tb_printf(&tb, "# HELP %s %s\n# TYPE %s counter\n", k[0], k[2], k[0]);
        tb_printf(&tb, "%s%s %llu\n", k[0], k[1], (unsigned long long)atomic_load(&global_counters[c]));
    }
    tb_printf(&tb, "# HELP journeygate_logins_total Sign-ins (browser and mobile), by provider, outcome and reason.\n"
                   "# TYPE journeygate_logins_total counter\n");
    pthread_mutex_lock(&registry_lock);
    for (unsigned i = 0; i < num_login_series; ++i)
        tb_printf(&tb, "journeygate_logins_total{provider=\"%s\",outcome=\"%s\",reason=\"%s\"} %llu\n",
                  login_series[i].provider, login_series[i].outcome, login_series[i].reason,
                  (unsigned long long)login_series[i].count);
    pthread_mutex_unlock(&registry_lock);
    tb_printf(&tb,
              "# HELP journeygate_connections_open Client connections open now.\n"
              "# TYPE journeygate_connections_open gauge\njourneygate_connections_open %ld\n",
              atomic_load(&open_connections));
    if (tb.failed) {
        free(tb.buf);
        return NULL;
    }
    *len = tb.len;
    return tb.buf;
}
