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
