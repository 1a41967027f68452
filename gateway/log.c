#include "gw.h"

#include <jansson.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

gw_log_level_t gw_log_threshold = GW_LOG_INFO;

const char *gw_status_str(gw_status_t st)
{
    switch (st) {
    case GW_OK:
        return "ok";
    case GW_EINVAL:
        return "invalid";
    case GW_ENOTFOUND:
        return "not_found";
    case GW_EDENIED:
        return "denied";
    case GW_ETOOBIG:
        return "too_big";
    case GW_EUPSTREAM:
        return "upstream_error";
    case GW_ETIMEOUT:
        return "timeout";
    case GW_EIO:
        return "io_error";
    case GW_ENOMEM:
        return "no_memory";
    case GW_EUNAVAIL:
        return "unavailable";
    }
    return "unknown";
}

int gw_status_http(gw_status_t st)
{
    switch (st) {
    case GW_OK:
        return 200;
    case GW_EINVAL:
        return 400;
    case GW_ENOTFOUND:
        return 404;
    case GW_EDENIED:
        return 403;
    case GW_ETOOBIG:
        return 413;
    case GW_EUPSTREAM:
        return 502;
    case GW_ETIMEOUT:
        return 504;
    case GW_EIO:
    case GW_ENOMEM:
        return 500;
    case GW_EUNAVAIL:
        return 503;
    }
    return 500;
}

static const char *level_name(gw_log_level_t level)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return (unsigned)level < 4 ? names[level] : "info";
}

char *gw_iso_time(uint64_t ms, char out[GW_ISO_TIME_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char day[24];

    /* strftime into a wider buffer, then the first 19 characters: a year past 9999 cannot overrun out */
    if (gmtime_r(&secs, &tm) == NULL || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        snprintf(day, sizeof(day), "1970-01-01T00:00:00");
    snprintf(out, GW_ISO_TIME_LEN, "%.19s.%03uZ", day, (unsigned)(ms % 1000));
    return out;
}

char *gw_iso_day(uint64_t ms, char out[GW_ISO_DAY_LEN])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL || strftime(out, GW_ISO_DAY_LEN, "%Y-%m-%d", &tm) == 0)
        snprintf(out, GW_ISO_DAY_LEN, "1970-01-01");
    return out;
}

void gw_log_write(gw_log_level_t level, const char *module, const char *fmt, ...)
{
    char msg[1024], ts[40], line[2048];
    struct timespec now;
    struct tm tm;
    va_list ap;
    json_t *obj;
    size_t len;

    va_start(ap, fmt);
    /* truncation of an over-long message is acceptable for a log line */
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    if (strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        ts[0] = '\0';

    obj = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", level_name(level), "module", module, "msg", msg);
    if (obj == NULL)
        return;
    len = json_dumpb(obj, line, sizeof(line) - 1, JSON_COMPACT);
    json_decref(obj);
    if (len == 0 || len > sizeof(line) - 1)
        return;
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, len) < 0) {
        /* nowhere left to report a failed log write */
    }
}
