/*
 * journeygate — shared definitions: the project status codes and logging.
 *
 * Every module returns gw_status_t; gw_status_str() names a code for logs and
 * gw_status_http() is the one table from a status to an HTTP answer.
 */
#ifndef GW_H
#define GW_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GW_VERSION "0.1.0"

typedef enum gw_status {
    GW_OK = 0,
    GW_EINVAL,    /* bad input: caller or network */
    GW_ENOTFOUND, /* normal "not there" result */
    GW_EDENIED,   /* refused by policy or authentication */
    GW_ETOOBIG,   /* a size limit was hit */
    GW_EUPSTREAM, /* upstream refused or failed */
    GW_ETIMEOUT,  /* a peer did not answer in time */
    GW_EIO,       /* local I/O failure (files, sockets) */
    GW_ENOMEM,    /* allocation failed */
    GW_EUNAVAIL,  /* temporarily unable to serve */
} gw_status_t;

/**
 * FNV-1a (64-bit) over n bytes, continuing from h (GW_FNV1A_SEED to start): a fast,
 * non-cryptographic hash for in-memory tables and the touchpoint log's index (stored: never change it).
 */
#define GW_FNV1A_SEED 1469598103934665603ULL
static inline uint64_t gw_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; ++i)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/** Whether n bytes hold a C0 control character or DEL: what may never reach a header line or a log. */
static inline int gw_has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/** The value of one hex digit (either case), or -1 when c is not one: for percent-decoding. */
static inline int gw_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/** The wall clock (CLOCK_REALTIME) in ms since the epoch: for times that are stored or shown. */
static inline uint64_t gw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/** A monotonic clock in ms: for intervals and deadlines, which a change of the wall clock must not move. */
static inline uint64_t gw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/** The CLOCK_REALTIME instant ms from now: the deadline pthread_cond_timedwait() takes. */
static inline struct timespec gw_realtime_in(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ++ts.tv_sec;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/**
 * "2026-12-07T23:09:43.123Z": the UTC time of ms since the epoch, ISO 8601 with milliseconds, as
 * every stored, exported or logged time is shown. out receives 24 characters and a NUL; returns out.
 * Thread-safe.
 */
#define GW_ISO_TIME_LEN 25
char *gw_iso_time(uint64_t ms, char out[GW_ISO_TIME_LEN]);

/** The UTC day (YYYY-MM-DD) holding ms since the epoch into out[GW_ISO_DAY_LEN]; returns out. Thread-safe. */
#define GW_ISO_DAY_LEN 11
char *gw_iso_day(uint64_t ms, char out[GW_ISO_DAY_LEN]);

/** Short stable name of a status ("ok", "invalid", ...). Never NULL. */
const char *gw_status_str(gw_status_t st);

/** The HTTP status that answers a request failing with st (200 for GW_OK). */
int gw_status_http(gw_status_t st);

typedef enum gw_log_level { GW_LOG_ERROR = 0, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG } gw_log_level_t;

/** Current threshold; messages above it are skipped before formatting. */
extern gw_log_level_t gw_log_threshold;

/**
 * Writes one JSON line to stderr: {"ts","level","module","msg"}. Thread-safe (one write(2) per line).
 * Callers never pass secrets, tokens, cookies or codes.
 */
void gw_log_write(gw_log_level_t level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define GW_LOG(level, module, ...)                                                                                     \
    do {                                                                                                               \
        if ((level) <= gw_log_threshold)                                                                               \
            gw_log_write((level), (module), __VA_ARGS__);                                                              \
    } while (0)
#define GW_LOG_ERR(module, ...) GW_LOG(GW_LOG_ERROR, module, __VA_ARGS__)
#define GW_LOG_WARNING(module, ...) GW_LOG(GW_LOG_WARN, module, __VA_ARGS__)
#define GW_LOG_INF(module, ...) GW_LOG(GW_LOG_INFO, module, __VA_ARGS__)

#endif
