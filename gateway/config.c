#include "config.h"
#include "metrics.h"
#include "route.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ERRORS 200
#define MAX_SECRET_BYTES 4096

/* validation context: every problem is collected, none stops the walk */
typedef struct vctx {
    const char *label;
    gw_config_errors_t *errs;
    int failed;
} vctx_t;

static void verr(vctx_t *v, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void verr(vctx_t *v, const char *path, const char *fmt, ...)
{
    char msg[512], *line;
    va_list ap;
    int n;

    v->failed = 1;
    if (v->errs->count >= MAX_ERRORS)
        return;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    n = snprintf(NULL, 0, "%s: %s: %s", v->label, path[0] != '\0' ? path : "(top)", msg);
    if (n < 0 || (line = malloc((size_t)n + 1)) == NULL)
        return;
    snprintf(line, (size_t)n + 1, "%s: %s: %s", v->label, path[0] != '\0' ? path : "(top)", msg);
    char **grown = realloc(v->errs->msgs, (v->errs->count + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(line);
        return;
    }
    v->errs->msgs = grown;
    v->errs->msgs[v->errs->count++] = line;
}

void gw_config_errors_clear(gw_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; ++i)
        free(errs->msgs[i]);
    free(errs->msgs);
    errs->msgs = NULL;
    errs->count = 0;
}

/* joins a parent path and a key: "routes[2]" + "name" -> "routes[2].name" */
static void join(char *dst, size_t dstlen, const char *parent, const char *key)
{
    int n = snprintf(dst, dstlen, "%s%s%s", parent, parent[0] != '\0' ? "." : "", key);
    if (n < 0 || (size_t)n >= dstlen)
        snprintf(dst, dstlen, "%s", "(path too long)");
}

static void join_index(char *dst, size_t dstlen, const char *parent, size_t index)
{
    int n = snprintf(dst, dstlen, "%s[%zu]", parent, index);
    if (n < 0 || (size_t)n >= dstlen)
        snprintf(dst, dstlen, "%s", "(path too long)");
}

static int key_allowed(const char *key, const char *const *allowed)
{
    for (; *allowed != NULL; ++allowed)
        if (strcmp(key, *allowed) == 0)
            return 1;
    return 0;
}

/* reports unknown keys; returns 0 when obj is not an object (reported too) */
static int check_object(vctx_t *v, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *val;
    char sub[256];

    if (!json_is_object(obj)) {
        verr(v, path, "must be an object");
        return 0;
    }
    json_object_foreach(obj, key, val)
    {
        (void)val;
        if (!key_allowed(key, allowed)) {
            join(sub, sizeof(sub), path, key);
            verr(v, sub, "unknown key");
        }
    }
    return 1;
}

static char *xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* string member; returns a borrowed pointer or NULL (missing, reported if required, or wrong type) */
static const char *get_str(vctx_t *v, json_t *obj, const char *path, const char *key, int required)
{
    json_t *val = json_object_get(obj, key);
    char sub[256];

    join(sub, sizeof(sub), path, key);
    if (val == NULL || json_is_null(val)) {
        if (required)
            verr(v, sub, "is required");
        return NULL;
    }
    if (!json_is_string(val)) {
        verr(v, sub, "must be a string");
        return NULL;
    }
    if (json_string_length(val) == 0) {
        verr(v, sub, "must not be empty");
        return NULL;
    }
    if (strlen(json_string_value(val)) != json_string_length(val)) {
        verr(v, sub, "must not contain NUL characters");
        return NULL;
    }
    return json_string_value(val);
}

/* integer member in [min, max]; returns 1 when present and valid */
static int get_int(vctx_t *v, json_t *obj, const char *path, const char *key, long long min, long long max,
                   long long *out)
{
    json_t *val = json_object_get(obj, key);
    char sub[256];

    if (val == NULL)
        return 0;
    join(sub, sizeof(sub), path, key);
    if (!json_is_integer(val)) {
        verr(v, sub, "must be an integer");
        return 0;
    }
    if (json_integer_value(val) < min || json_integer_value(val) > max) {
        verr(v, sub, "must be between %lld and %lld", min, max);
        return 0;
    }
    *out = json_integer_value(val);
    return 1;
}

/* a duration in seconds (integer or decimal), converted to ms; in [min_ms, max_ms] */
static int get_duration(vctx_t *v, json_t *obj, const char *path, const char *key, uint32_t min_ms, uint32_t max_ms,
                        uint32_t *out_ms)
{
    json_t *val = json_object_get(obj, key);
    char sub[256];
    double s;

    if (val == NULL)
        return 0;
    join(sub, sizeof(sub), path, key);
    if (!json_is_number(val)) {
        verr(v, sub, "must be a number of seconds");
        return 0;
    }
    s = json_number_value(val);
    if (!(s * 1000.0 >= (double)min_ms && s * 1000.0 <= (double)max_ms)) {
        verr(v, sub, "must be between %g and %g seconds", min_ms / 1000.0, max_ms / 1000.0);
        return 0;
    }
    *out_ms = (uint32_t)(s * 1000.0 + 0.5);
    return 1;
}

static int get_bool(vctx_t *v, json_t *obj, const char *path, const char *key, int *out)
{
    json_t *val = json_object_get(obj, key);
    char sub[256];

    if (val == NULL)
        return 0;
    join(sub, sizeof(sub), path, key);
    if (!json_is_boolean(val)) {
        verr(v, sub, "must be true or false");
        return 0;
    }
    *out = json_is_true(val);
    return 1;
}

int gw_parse_size(const char *s, uint64_t *out)
{
    uint64_t n = 0, mult = 1;
    const char *p = s;

    if (s == NULL || !isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); ++p) {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    while (*p == ' ')
        ++p;
    if (*p == '\0' || strcasecmp(p, "B") == 0)
        mult = 1;
    else if (strcasecmp(p, "KB") == 0 || strcasecmp(p, "K") == 0 || strcasecmp(p, "KiB") == 0)
        mult = 1024;
    else if (strcasecmp(p, "MB") == 0 || strcasecmp(p, "M") == 0 || strcasecmp(p, "MiB") == 0)
        mult = 1024 * 1024;
    else if (strcasecmp(p, "GB") == 0 || strcasecmp(p, "G") == 0 || strcasecmp(p, "GiB") == 0)
        mult = 1024ULL * 1024 * 1024;
    else
        return -1;
    if (n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

static int get_size(vctx_t *v, json_t *obj, const char *path, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    json_t *val = json_object_get(obj, key);
    char sub[256];
    uint64_t n;

    if (val == NULL)
        return 0;
    join(sub, sizeof(sub), path, key);
    if (json_is_integer(val) && json_integer_value(val) >= 0) {
        n = (uint64_t)json_integer_value(val);
    } else if (json_is_string(val) && gw_parse_size(json_string_value(val), &n) == 0) {
        /* parsed */
    } else {
        verr(v, sub, "must be a size: bytes as an integer, or a string such as \"64KB\" or \"1MB\"");
        return 0;
    }
    if (n < min || n > max) {
        verr(v, sub, "must be between %" PRIu64 " and %" PRIu64 " bytes", min, max);
        return 0;
    }
    *out = n;
    return 1;
}

/* validates an absolute http(s) URL; insecure_ok lets plain http through */
static int check_url(vctx_t *v, const char *path, const char *url, int insecure_ok)
{
    const char *rest;

    if (strncmp(url, "https://", 8) == 0) {
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        if (!insecure_ok) {
            verr(v, path, "plain http:// is refused here (set \"insecure_http\": true only for local stand-ins)");
            return 0;
        }
        rest = url + 7;
    } else {
        verr(v, path, "must be an absolute http:// or https:// URL");
        return 0;
    }
    if (*rest == '\0' || *rest == '/' || *rest == ':') {
        verr(v, path, "has no host");
        return 0;
    }
    for (const char *p = url; *p != '\0'; ++p) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\' || *p == '#') {
            verr(v, path, "contains a character not allowed in a URL");
            return 0;
        }
    }
    return 1;
}

static int get_url(vctx_t *v, json_t *obj, const char *path, const char *key, int required, int insecure_ok,
                   const char **out)
{
    const char *s = get_str(v, obj, path, key, required);
    char sub[256];

    if (s == NULL)
        return 0;
    join(sub, sizeof(sub), path, key);
    if (!check_url(v, sub, s, insecure_ok))
        return 0;
    *out = s;
    return 1;
}

static int check_readable_file(vctx_t *v, const char *path, const char *file)
{
    struct stat st;

    if (stat(file, &st) != 0) {
        verr(v, path, "cannot read file %s: %s", file, strerror(errno));
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        verr(v, path, "%s is not a regular file", file);
        return 0;
    }
    if (access(file, R_OK) != 0) {
        verr(v, path, "cannot read file %s: %s", file, strerror(errno));
        return 0;
    }
    return 1;
}

static int get_file(vctx_t *v, json_t *obj, const char *path, const char *key, int required, const char **out)
{
    const char *s = get_str(v, obj, path, key, required);
    char sub[256];

    if (s == NULL)
        return 0;
    join(sub, sizeof(sub), path, key);
    if (!check_readable_file(v, sub, s))
        return 0;
    *out = s;
    return 1;
}

/* reads a secret file: first line, trailing newline removed; never logged */
static char *read_secret_file(vctx_t *v, const char *path, const char *file)
{
    char buf[MAX_SECRET_BYTES + 1];
    FILE *fp;
    size_t n;

    if ((fp = fopen(file, "r")) == NULL) {
        verr(v, path, "cannot read file %s: %s", file, strerror(errno));
        return NULL;
    }
    n = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    if (n > MAX_SECRET_BYTES) {
        verr(v, path, "%s is larger than %d bytes", file, MAX_SECRET_BYTES);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        --n;
    buf[n] = '\0';
    if (n == 0) {
        verr(v, path, "%s is empty", file);
        return NULL;
    }
    return strdup(buf);
}

/*
 * A secret given as KEY (inline), KEY_file or KEY_env. At most one may be set.
 * Returns a heap copy (caller frees), or NULL when absent or invalid.
 */
static char *get_secret(vctx_t *v, json_t *obj, const char *path, const char *key, int required)
{
    char k_file[64], k_env[64], sub[256];
    const char *inline_s, *file, *env;
    int n = 0;

    snprintf(k_file, sizeof(k_file), "%s_file", key);
    snprintf(k_env, sizeof(k_env), "%s_env", key);
    inline_s = get_str(v, obj, path, key, 0);
    file = get_str(v, obj, path, k_file, 0);
    env = get_str(v, obj, path, k_env, 0);
    n = (inline_s != NULL) + (file != NULL) + (env != NULL);
    if (n > 1) {
        join(sub, sizeof(sub), path, key);
        verr(v, sub, "set only one of %s, %s and %s", key, k_file, k_env);
        return NULL;
    }
    if (inline_s != NULL)
        return strdup(inline_s);
    if (file != NULL) {
        join(sub, sizeof(sub), path, k_file);
        return read_secret_file(v, sub, file);
    }
    if (env != NULL) {
        const char *val = getenv(env);
        join(sub, sizeof(sub), path, k_env);
        if (val == NULL || val[0] == '\0') {
            verr(v, sub, "environment variable %s is not set", env);
            return NULL;
        }
        return strdup(val);
    }
    if (required) {
        join(sub, sizeof(sub), path, key);
        verr(v, sub, "is required (inline, %s or %s)", k_file, k_env);
    }
    return NULL;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* a list of non-empty strings; returns the array or NULL */
static json_t *get_str_list(vctx_t *v, json_t *obj, const char *path, const char *key)
{
    json_t *arr = json_object_get(obj, key), *item;
    char sub[256], isub[280];
    size_t i;

    if (arr == NULL)
        return NULL;
    join(sub, sizeof(sub), path, key);
    if (!json_is_array(arr)) {
        verr(v, sub, "must be a list of strings");
        return NULL;
    }
    json_array_foreach(arr, i, item)
    {
        if (!json_is_string(item) || json_string_length(item) == 0) {
            join_index(isub, sizeof(isub), sub, i);
            verr(v, isub, "must be a non-empty string");
        }
    }
    return arr;
}

int gw_cidr_parse(const char *s, gw_cidr_t *out)
{
    char buf[64], *slash;
    long bits;
    char *end;

    if (strlen(s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, strlen(s) + 1);
    memset(out, 0, sizeof(*out));
    if ((slash = strchr(buf, '/')) != NULL)
        *slash++ = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->bits = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->bits = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        errno = 0;
        bits = strtol(slash, &end, 10);
        if (*slash == '\0' || *end != '\0' || errno != 0 || bits < 0 || bits > (long)out->bits)
            return -1;
        out->bits = (unsigned)bits;
    }
    return 0;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rem = bits % 8;

    if (memcmp(a, b, bytes) != 0)
        return 0;
    if (rem == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

int gw_cidr_match(const gw_cidr_t *list, size_t n, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    int have4 = 0, have6 = 0;

    if (sa->sa_family == AF_INET) {
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        have4 = 1;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        have6 = 1;
        /* an IPv4-mapped address matches IPv4 ranges too */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(v6, mapped, 12) == 0) {
            memcpy(v4, v6 + 12, 4);
            have4 = 1;
        }
    }
    for (size_t i = 0; i < n; ++i) {
        if (list[i].family == AF_INET && have4 && prefix_equal(v4, list[i].addr, list[i].bits))
            return 1;
        if (list[i].family == AF_INET6 && have6 && prefix_equal(v6, list[i].addr, list[i].bits))
            return 1;
    }
    return 0;
}

static void load_listen(vctx_t *v, json_t *obj, const char *path, gw_listen_t *out)
{
    static const char *const keys[] = {"address", "port", "tls", NULL};
    static const char *const tls_keys[] = {"cert", "key", NULL};
    const char *addr, *cert = NULL, *key = NULL;
    long long port = 0;
    char sub[256];
    struct in6_addr a6;
    struct in_addr a4;

    if (!check_object(v, obj, path, keys))
        return;
    addr = get_str(v, obj, path, "address", 1);
    if (addr != NULL && inet_pton(AF_INET, addr, &a4) != 1 && inet_pton(AF_INET6, addr, &a6) != 1) {
        join(sub, sizeof(sub), path, "address");
        verr(v, sub, "must be an IPv4 or IPv6 address");
        addr = NULL;
    }
    if (json_object_get(obj, "port") == NULL) {
        join(sub, sizeof(sub), path, "port");
        verr(v, sub, "is required");
    } else {
        get_int(v, obj, path, "port", 1, 65535, &port);
    }
    json_t *tls = json_object_get(obj, "tls");
    if (tls != NULL) {
        join(sub, sizeof(sub), path, "tls");
        if (check_object(v, tls, sub, tls_keys)) {
            get_file(v, tls, sub, "cert", 1, &cert);
            get_file(v, tls, sub, "key", 1, &key);
        }
    }
    out->address = xstrdup(addr);
    out->port = (uint16_t)port;
    out->tls_cert = xstrdup(cert);
    out->tls_key = xstrdup(key);
}

/* a token bucket's `limits.RATE_KEY` (tokens a minute, > 0) and `limits.BURST_KEY` (at least 1), both at most 1e6 */
static void get_rate(vctx_t *v, json_t *obj, const char *rate_key, const char *burst_key, double *rate, double *burst)
{
    json_t *r = json_object_get(obj, rate_key), *b = json_object_get(obj, burst_key);
    char what[64];

    if (r != NULL && (!json_is_number(r) || json_number_value(r) <= 0 || json_number_value(r) > 1e6)) {
        snprintf(what, sizeof(what), "limits.%s", rate_key);
        verr(v, what, "must be a positive number");
    } else if (r != NULL) {
        *rate = json_number_value(r);
    }
    if (b != NULL && (!json_is_number(b) || json_number_value(b) < 1 || json_number_value(b) > 1e6)) {
        snprintf(what, sizeof(what), "limits.%s", burst_key);
        verr(v, what, "must be a number of at least 1");
    } else if (b != NULL) {
        *burst = json_number_value(b);
    }
}

static void load_limits(vctx_t *v, json_t *obj, gw_limits_t *lim)
{
    static const char *const keys[] = {"max_connections",        "max_header_count",     "max_header_bytes",
                                       "header_timeout_s",       "idle_timeout_s",       "drain_timeout_s",
                                       "max_body_size",          "auth_rate_per_minute", "auth_burst",
                                       "ingest_rate_per_minute", "ingest_burst",         NULL};
    long long n;

    lim->max_connections = 10000;
    lim->max_header_count = 64;
    lim->max_header_bytes = 32 * 1024;
    lim->header_timeout_ms = 10000;
    lim->idle_timeout_ms = 60000;
    lim->drain_timeout_ms = 30000;
    lim->max_body_bytes = 1024 * 1024;
    lim->auth_rate_per_minute = 60;
    lim->auth_burst = 20;
    lim->ingest_rate_per_minute = 600;
    lim->ingest_burst = 60;
    if (obj == NULL || !check_object(v, obj, "limits", keys))
        return;
    if (get_int(v, obj, "limits", "max_connections", 1, 1000000, &n))
        lim->max_connections = (uint32_t)n;
    /* h2o's parser refuses more than 100 header lines by itself; the gateway's cap sits below that */
    if (get_int(v, obj, "limits", "max_header_count", 8, 99, &n))
        lim->max_header_count = (uint32_t)n;
    get_size(v, obj, "limits", "max_header_bytes", 1024, 256 * 1024, &lim->max_header_bytes);
    get_duration(v, obj, "limits", "header_timeout_s", 100, 300000, &lim->header_timeout_ms);
    get_duration(v, obj, "limits", "idle_timeout_s", 100, 3600000, &lim->idle_timeout_ms);
    get_duration(v, obj, "limits", "drain_timeout_s", 0, 3600000, &lim->drain_timeout_ms);
    get_size(v, obj, "limits", "max_body_size", 0, 1024ULL * 1024 * 1024, &lim->max_body_bytes);
    get_rate(v, obj, "auth_rate_per_minute", "auth_burst", &lim->auth_rate_per_minute, &lim->auth_burst);
    get_rate(v, obj, "ingest_rate_per_minute", "ingest_burst", &lim->ingest_rate_per_minute, &lim->ingest_burst);
}

static void load_upstream(vctx_t *v, const char *name, json_t *obj, gw_upstream_t *out)
{
    static const char *const keys[] = {"url", "timeout_s", "keepalive_s", "websocket", NULL};
    char path[256], sub[300];
    const char *url = NULL;

    join(path, sizeof(path), "upstreams", name);
    out->name = strdup(name);
    out->timeout_ms = 30000;
    out->keepalive_ms = 10000;
    out->websocket = 1;
    if (!check_object(v, obj, path, keys))
        return;
    /* upstreams are the operator's own backends: plain http on a private network is normal */
    if (get_url(v, obj, path, "url", 1, 1, &url)) {
        join(sub, sizeof(sub), path, "url");
        if (strchr(url, '?') != NULL) {
            verr(v, sub, "must not contain a query");
            url = NULL;
        }
    }
    out->url = xstrdup(url);
    get_duration(v, obj, path, "timeout_s", 100, 3600000, &out->timeout_ms);
    get_duration(v, obj, path, "keepalive_s", 0, 3600000, &out->keepalive_ms);
    get_bool(v, obj, path, "websocket", &out->websocket);
}

static int valid_token_chars(const char *s)
{
    for (; *s != '\0'; ++s)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/*
 * A route's "touchpoint_skip": a list of request paths that record no touchpoint, each starting
 * with '/', where '*' matches any characters (a trailing one makes a prefix); [] records every
 * request. Absent: GW_TOUCHPOINT_SKIP_DEFAULT.
 */
static void load_touchpoint_skip(vctx_t *v, json_t *obj, const char *path, gw_route_t *r)
{
    static const char *const defaults[] = GW_TOUCHPOINT_SKIP_DEFAULT;
    json_t *list = json_object_get(obj, "touchpoint_skip"), *e;
    char sub[128], esub[160];
    size_t i, n = 0;

    if (list == NULL) {
        while (defaults[n] != NULL)
            ++n;
        if ((r->touchpoint_skip = calloc(n, sizeof(*r->touchpoint_skip))) != NULL)
            for (i = 0; i < n; ++i)
                if ((r->touchpoint_skip[r->num_touchpoint_skip] = strdup(defaults[i])) != NULL)
                    ++r->num_touchpoint_skip;
        return;
    }
    join(sub, sizeof(sub), path, "touchpoint_skip");
    if (!json_is_array(list)) {
        verr(v, sub, "must be a list of paths (\"/favicon.ico\", \"/assets/*\"), or [] to record every request");
        return;
    }
    if (json_array_size(list) > GW_TOUCHPOINT_SKIP_MAX) {
        verr(v, sub, "must hold at most %d paths", GW_TOUCHPOINT_SKIP_MAX);
        return;
    }
    if (json_array_size(list) == 0 ||
        (r->touchpoint_skip = calloc(json_array_size(list), sizeof(*r->touchpoint_skip))) == NULL)
        return;
    json_array_foreach(list, i, e)
    {
        const char *s = json_string_value(e);
        int ok = s != NULL && s[0] == '/' && json_string_length(e) <= GW_TOUCHPOINT_SKIP_LEN &&
                 strlen(s) == json_string_length(e);
        for (const char *p = s; ok && *p != '\0'; ++p)
            ok = (unsigned char)*p > 0x20 && *p != 0x7f && *p != '?' && *p != '#' && *p != '\\';
        join_index(esub, sizeof(esub), sub, i);
        if (!ok) {
            verr(v, esub,
                 "must be a path starting with '/' of at most %d bytes, without spaces, control characters, "
                 "'?', '#' or '\\' ('*' matches any characters)",
                 GW_TOUCHPOINT_SKIP_LEN);
            continue;
        }
        if ((r->touchpoint_skip[r->num_touchpoint_skip] = strdup(s)) != NULL)
            ++r->num_touchpoint_skip;
    }
}

static void load_route(vctx_t *v, gw_config_t *cfg, json_t *obj, size_t index)
{
    static const char *const keys[] = {"name",   "match", "upstream",      "channel",    "touchpoint",      "stage",
                                       "policy", "auth",  "max_body_size", "path_check", "touchpoint_skip", NULL};
    static const char *const match_keys[] = {"host", "path_prefix", NULL};
    static const char *const stages[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy", NULL};
    gw_route_t *r = &cfg->routes[index];
    char path[64], sub[128];
    const char *s;
    json_t *match;

    join_index(path, sizeof(path), "routes", index);
    r->max_body_bytes = cfg->limits.max_body_bytes;
    r->auth = GW_AUTH_SESSION;
    if (!check_object(v, obj, path, keys))
        return;
    if ((s = get_str(v, obj, path, "name", 1)) != NULL) {
        join(sub, sizeof(sub), path, "name");
        if (!valid_token_chars(s) || strlen(s) > 64)
            verr(v, sub, "must be 1-64 characters of letters, digits, '-', '_' or '.'");
        for (size_t j = 0; j < index; ++j)
            if (cfg->routes[j].name != NULL && strcmp(cfg->routes[j].name, s) == 0)
                verr(v, sub, "duplicate route name \"%s\" (also routes[%zu])", s, j);
        r->name = strdup(s);
    }
    join(sub, sizeof(sub), path, "match");
    if ((match = json_object_get(obj, "match")) == NULL) {
        verr(v, sub, "is required");
    } else if (check_object(v, match, sub, match_keys)) {
        char msub[160];
        if ((s = get_str(v, match, sub, "host", 0)) != NULL) {
            join(msub, sizeof(msub), sub, "host");
            char *host = strdup(s);
            for (char *p = host; *p != '\0'; ++p) {
                *p = (char)tolower((unsigned char)*p);
                if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '*' || *p == '[' || *p == ']' ||
                      *p == ':'))
                    verr(v, msub, "must be a host name");
            }
            r->host = host;
        }
        if ((s = get_str(v, match, sub, "path_prefix", 1)) != NULL) {
            join(msub, sizeof(msub), sub, "path_prefix");
            char *norm = NULL;
            size_t norm_len;
            if (s[0] != '/' || strchr(s, '?') != NULL || strchr(s, '#') != NULL) {
                verr(v, msub, "must be a path starting with '/' (no query or fragment)");
            } else if (gw_path_normalize(s, strlen(s), &norm, &norm_len) != GW_OK) {
                verr(v, msub, "is not a valid path");
            } else {
                r->path_prefix = norm;
                r->path_prefix_len = norm_len;
            }
        }
    }
    if ((s = get_str(v, obj, path, "upstream", 1)) != NULL) {
        size_t u;
        for (u = 0; u < cfg->num_upstreams; ++u)
            if (cfg->upstreams[u].name != NULL && strcmp(cfg->upstreams[u].name, s) == 0)
                break;
        if (u == cfg->num_upstreams) {
            join(sub, sizeof(sub), path, "upstream");
            verr(v, sub, "no upstream named \"%s\" in upstreams", s);
        }
        r->upstream = u;
    }
    s = get_str(v, obj, path, "channel", 0);
    r->channel = strdup(s != NULL ? s : "web");
    r->channel_explicit = s != NULL;
    r->touchpoint = xstrdup(get_str(v, obj, path, "touchpoint", 0));
    if ((s = get_str(v, obj, path, "stage", 0)) != NULL) {
        if (!key_allowed(s, stages)) {
            join(sub, sizeof(sub), path, "stage");
            verr(v, sub, "must be one of need, research, select, convert, own, loyalty, advocacy");
        }
        r->stage = strdup(s);
    }
    if ((s = get_str(v, obj, path, "auth", 0)) != NULL) {
        join(sub, sizeof(sub), path, "auth");
        if (strcmp(s, "none") == 0)
            r->auth = GW_AUTH_NONE;
        else if (strcmp(s, "session") == 0)
            r->auth = GW_AUTH_SESSION;
        else if (strcmp(s, "bearer") == 0)
            r->auth = GW_AUTH_BEARER;
        else if (strcmp(s, "any") == 0)
            r->auth = GW_AUTH_ANY;
        else
            verr(v, sub, "must be one of session, bearer, any, none");
    }
    if ((s = get_str(v, obj, path, "policy", 0)) != NULL) {
        json_t *policies = json_object_get(cfg->doc, "policies");
        if (!json_is_object(policies) || json_object_get(policies, s) == NULL) {
            join(sub, sizeof(sub), path, "policy");
            verr(v, sub, "no policy named \"%s\" in policies", s);
        }
        r->policy = strdup(s);
    } else if (r->auth != GW_AUTH_NONE) {
        join(sub, sizeof(sub), path, "policy");
        verr(v, sub, "is required when auth is not \"none\"");
    }
    get_size(v, obj, path, "max_body_size", 0, 1024ULL * 1024 * 1024, &r->max_body_bytes);
    if ((s = get_str(v, obj, path, "path_check", 0)) != NULL) {
        if (strcmp(s, "off") == 0) {
            r->path_check_off = 1;
        } else if (strcmp(s, "strict") != 0) {
            join(sub, sizeof(sub), path, "path_check");
            verr(v, sub, "must be \"strict\" (the default) or \"off\"");
        }
    }
    load_touchpoint_skip(v, obj, path, r);
    if (r->name != NULL)
        r->metrics_index = gw_metrics_route_index(r->name);
}

static void load_provider(vctx_t *v, const char *name, json_t *obj)
{
    static const char *const oidc_keys[] = {"type",
                                            "client_id",
                                            "client_secret",
                                            "client_secret_file",
                                            "client_secret_env",
                                            "issuer",
                                            "discovery_url",
                                            "authorization_endpoint",
                                            "token_endpoint",
                                            "jwks_uri",
                                            "userinfo_endpoint",
                                            "scopes",
                                            "mobile_client_ids",
                                            "hd",
                                            "token_endpoint_auth",
                                            "insecure_http",
                                            "ca_file",
                                            "display_name",
                                            "algorithms",
                                            "http_timeout_s",
                                            "jwks_min_refresh_s",
                                            NULL};
    static const char *const fb_keys[] = {
        "type",          "app_id",     "app_secret",   "app_secret_file", "app_secret_env",
        "graph_url",     "dialog_url", "api_version",  "trust_email",     "scopes",
        "insecure_http", "ca_file",    "display_name", "http_timeout_s",  NULL};
    char path[256], sub[300];
    const char *type, *s, *url;
    int insecure = 0;
    char *secret;

    join(path, sizeof(path), "providers", name);
    if (!json_is_object(obj)) {
        verr(v, path, "must be an object");
        return;
    }
    if (!valid_token_chars(name) || strlen(name) > 32)
        verr(v, path, "provider names are 1-32 characters of letters, digits, '-', '_' or '.'");
    if ((type = get_str(v, obj, path, "type", 1)) == NULL)
        return;
    get_bool(v, obj, path, "insecure_http", &insecure);
    get_file(v, obj, path, "ca_file", 0, &s);
    get_str(v, obj, path, "display_name", 0);
    get_str_list(v, obj, path, "scopes");
    {
        uint32_t ms;
        long long n;
        get_duration(v, obj, path, "http_timeout_s", 100, 120000, &ms);
        get_int(v, obj, path, "jwks_min_refresh_s", 0, 86400, &n);
    }
    join(sub, sizeof(sub), path, "type");
    if (strcmp(type, "google") == 0 || strcmp(type, "oidc") == 0) {
        static const char *const url_keys[] = {
            "issuer", "discovery_url", "authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint",
            NULL};
        check_object(v, obj, path, oidc_keys);
        get_str(v, obj, path, "client_id", 1);
        secret = get_secret(v, obj, path, "client_secret", 1);
        free_secret(secret);
        for (const char *const *k = url_keys; *k != NULL; ++k)
            get_url(v, obj, path, *k, strcmp(type, "oidc") == 0 && strcmp(*k, "issuer") == 0, insecure, &url);
        get_str_list(v, obj, path, "mobile_client_ids");
        get_str_list(v, obj, path, "algorithms");
        json_t *hd = json_object_get(obj, "hd");
        if (hd != NULL && !json_is_string(hd))
            get_str_list(v, obj, path, "hd");
        if ((s = get_str(v, obj, path, "token_endpoint_auth", 0)) != NULL && strcmp(s, "client_secret_basic") != 0 &&
            strcmp(s, "client_secret_post") != 0) {
            join(sub, sizeof(sub), path, "token_endpoint_auth");
            verr(v, sub, "must be client_secret_basic or client_secret_post");
        }
    } else if (strcmp(type, "facebook") == 0) {
        check_object(v, obj, path, fb_keys);
        get_str(v, obj, path, "app_id", 1);
        secret = get_secret(v, obj, path, "app_secret", 1);
        free_secret(secret);
        get_url(v, obj, path, "graph_url", 0, insecure, &url);
        get_url(v, obj, path, "dialog_url", 0, insecure, &url);
        get_str(v, obj, path, "api_version", 0);
        int b;
        get_bool(v, obj, path, "trust_email", &b);
    } else {
        verr(v, sub, "must be one of google, facebook, oidc");
    }
}

static void load_policy(vctx_t *v, const char *name, json_t *obj)
{
    static const char *const keys[] = {"rules", "description", NULL};
    static const char *const cond_keys[] = {"signed_in",
                                            "providers",
                                            "email_domain",
                                            "email_verified",
                                            "hd",
                                            "emails_file",
                                            "min_linked_providers",
                                            "channels",
                                            "methods",
                                            "max_session_age_s",
                                            NULL};
    char path[256], sub[300], rsub[320], csub[360];
    json_t *rules, *rule, *cond;
    size_t i;
    const char *f;
    long long n;
    int b;

    join(path, sizeof(path), "policies", name);
    /* a string names a policy file: the policy engine loads and checks it (errors name that file) */
    if (json_is_string(obj) && json_string_length(obj) > 0)
        return;
    if (!check_object(v, obj, path, keys))
        return;
    get_str(v, obj, path, "description", 0);
    join(sub, sizeof(sub), path, "rules");
    rules = json_object_get(obj, "rules");
    if (!json_is_array(rules)) {
        verr(v, sub, "must be a list of {\"allow\": {...}} or {\"deny\": {...}} rules");
        return;
    }
    json_array_foreach(rules, i, rule)
    {
        join_index(rsub, sizeof(rsub), sub, i);
        if (!json_is_object(rule) || json_object_size(rule) != 1 ||
            ((cond = json_object_get(rule, "allow")) == NULL && (cond = json_object_get(rule, "deny")) == NULL)) {
            verr(v, rsub, "must be exactly one of {\"allow\": {...}} or {\"deny\": {...}}");
            continue;
        }
        join(csub, sizeof(csub), rsub, json_object_get(rule, "allow") != NULL ? "allow" : "deny");
        if (!check_object(v, cond, csub, cond_keys))
            continue;
        get_bool(v, cond, csub, "signed_in", &b);
        get_bool(v, cond, csub, "email_verified", &b);
        get_str_list(v, cond, csub, "providers");
        get_str_list(v, cond, csub, "email_domain");
        get_str_list(v, cond, csub, "hd");
        get_str_list(v, cond, csub, "channels");
        get_str_list(v, cond, csub, "methods");
        get_file(v, cond, csub, "emails_file", 0, &f);
        get_int(v, cond, csub, "min_linked_providers", 1, 16, &n);
        get_int(v, cond, csub, "max_session_age_s", 1, 100LL * 365 * 86400, &n);
    }
}

static void load_sections(vctx_t *v, gw_config_t *cfg, json_t *doc)
{
    json_t *obj, *item_list;
    const char *s, *key;
    long long n;
    int b;
    char sub[256];

    /* store */
    if ((obj = json_object_get(doc, "store")) == NULL) {
        verr(v, "store", "is required");
    } else {
        static const char *const keys[] = {"path", "map_size_mb", NULL};
        cfg->store_map_size_mb = 1024;
        if (check_object(v, obj, "store", keys)) {
            cfg->store_path = xstrdup(get_str(v, obj, "store", "path", 1));
            if (get_int(v, obj, "store", "map_size_mb", 1, 1024LL * 1024, &n))
                cfg->store_map_size_mb = (uint64_t)n;
        }
    }
    /* session */
    if ((obj = json_object_get(doc, "session")) != NULL) {
        static const char *const keys[] = {"cookie_name", "secret_file", "ttl_s", "idle_timeout_s", NULL};
        uint32_t ms;
        if (check_object(v, obj, "session", keys)) {
            if ((s = get_str(v, obj, "session", "cookie_name", 0)) != NULL && (!valid_token_chars(s) || strlen(s) > 64))
                verr(v, "session.cookie_name", "must be 1-64 characters of letters, digits, '-', '_' or '.'");
            get_file(v, obj, "session", "secret_file", 0, &s);
            get_duration(v, obj, "session", "ttl_s", 60000, 365U * 86400U * 10U, &ms);
            get_duration(v, obj, "session", "idle_timeout_s", 60000, 365U * 86400U * 10U, &ms);
        }
    }
    /* providers */
    if ((obj = json_object_get(doc, "providers")) != NULL) {
        json_t *p;
        if (!json_is_object(obj))
            verr(v, "providers", "must be an object of name -> provider");
        else
            json_object_foreach(obj, key, p) load_provider(v, key, p);
    }
    /* policies */
    if ((obj = json_object_get(doc, "policies")) != NULL) {
        json_t *p;
        if (!json_is_object(obj))
            verr(v, "policies", "must be an object of name -> policy");
        else
            json_object_foreach(obj, key, p) load_policy(v, key, p);
    }
    /* linking, audit, ingest */
    if ((obj = json_object_get(doc, "linking")) != NULL) {
        static const char *const keys[] = {"auto_link_verified_email", "blocked_emails", NULL};
        if (check_object(v, obj, "linking", keys)) {
            get_bool(v, obj, "linking", "auto_link_verified_email", &b);
            get_str_list(v, obj, "linking", "blocked_emails");
        }
    }
    if ((obj = json_object_get(doc, "audit")) != NULL) {
        static const char *const keys[] = {
            "key_file", "syslog", "syslog_socket", "refusal_interval_s", "refusals_per_interval", NULL};
        if (check_object(v, obj, "audit", keys)) {
            get_int(v, obj, "audit", "refusal_interval_s", 1, 86400, &n);
            get_int(v, obj, "audit", "refusals_per_interval", 1, 1000000, &n);
            get_file(v, obj, "audit", "key_file", 0, &s);
            get_bool(v, obj, "audit", "syslog", &b);
            get_str(v, obj, "audit", "syslog_socket", 0);
        }
    }
    if ((obj = json_object_get(doc, "ingest")) != NULL) {
        static const char *const keys[] = {"api_keys_file", NULL};
        if (check_object(v, obj, "ingest", keys))
            get_file(v, obj, "ingest", "api_keys_file", 0, &s);
    }
    /* admin */
    if ((obj = json_object_get(doc, "admin")) != NULL) {
        static const char *const keys[] = {"listen", "token_file", NULL};
        if (check_object(v, obj, "admin", keys)) {
            json_t *l = json_object_get(obj, "listen");
            if (l == NULL) {
                verr(v, "admin.listen", "is required");
            } else {
                cfg->has_admin = 1;
                load_listen(v, l, "admin.listen", &cfg->admin_listen);
                if (cfg->admin_listen.tls_cert != NULL)
                    verr(v, "admin.listen.tls", "TLS is not supported on the admin listener; keep it on loopback");
            }
            if ((s = get_str(v, obj, "admin", "token_file", 0)) != NULL)
                cfg->admin_token = read_secret_file(v, "admin.token_file", s);
        }
    }
    if ((obj = json_object_get(doc, "journeys")) != NULL) {
        static const char *const keys[] = {"queue_size", "retention_days", "visitor_memory", NULL};
        if (check_object(v, obj, "journeys", keys)) {
            uint64_t bytes;
            get_size(v, obj, "journeys", "visitor_memory", 64 * 1024, 64ULL * 1024 * 1024 * 1024, &bytes);
            get_int(v, obj, "journeys", "queue_size", 1, 10000000, &n);
            get_int(v, obj, "journeys", "retention_days", 0, 36500, &n);
        }
    }
    if ((obj = json_object_get(doc, "assertion")) != NULL) {
        static const char *const keys[] = {"key_file", "previous_key_files", "ttl_s", NULL};
        if (check_object(v, obj, "assertion", keys)) {
            get_str(v, obj, "assertion", "key_file", 0);
            if ((item_list = get_str_list(v, obj, "assertion", "previous_key_files")) != NULL) {
                size_t i;
                json_t *it;
                json_array_foreach(item_list, i, it)
                {
                    char isub[64];
                    snprintf(isub, sizeof(isub), "assertion.previous_key_files[%zu]", i);
                    if (json_is_string(it))
                        check_readable_file(v, isub, json_string_value(it));
                }
            }
            get_int(v, obj, "assertion", "ttl_s", 1, 60, &n);
        }
    }
    (void)sub;
}

/*
 * console: {"roles": {"marketer"|"security"|"admin": POLICY}, "figures_refresh_s"?: N}: each role's
 * policy must exist (a misspelt name would lock staff out silently), and at least one role is given.
 * figures_refresh_s: how often the figures' snapshot is brought up to date (1..86400, default 30).
 */
static void load_console(vctx_t *v, gw_config_t *cfg, json_t *obj)
{
    static const char *const keys[] = {"roles", "figures_refresh_s", NULL};
    static const char *const role_keys[] = {"marketer", "security", "admin", NULL};
    json_t *roles, *policies = json_object_get(cfg->doc, "policies");
    char sub[96];
    long long refresh = 30;

    if (obj == NULL || !check_object(v, obj, "console", keys))
        return;
    get_int(v, obj, "console", "figures_refresh_s", 1, 86400, &refresh);
    cfg->console_figures_refresh_s = (unsigned)refresh;
    roles = json_object_get(obj, "roles");
    if (roles == NULL) {
        verr(v, "console.roles", "is required: an object of role -> policy name");
        return;
    }
    if (!check_object(v, roles, "console.roles", role_keys))
        return;
    if (json_object_size(roles) == 0) {
        verr(v, "console.roles", "must name at least one of marketer, security, admin");
        return;
    }
    for (size_t i = 0; role_keys[i] != NULL; ++i) {
        const char *s = get_str(v, roles, "console.roles", role_keys[i], 0);
        if (s == NULL)
            continue;
        if (!json_is_object(policies) || json_object_get(policies, s) == NULL) {
            join(sub, sizeof(sub), "console.roles", role_keys[i]);
            verr(v, sub, "no policy named \"%s\" in policies", s);
        }
        cfg->console_policy[i] = xstrdup(s);
    }
    cfg->has_console = 1;
}

gw_status_t gw_config_from_json(json_t *doc, const char *label, gw_config_t **out, gw_config_errors_t *errs)
{
    static const char *const top_keys[] = {"listen", "public_url", "threads",  "access_log", "trusted_proxies",
                                           "limits", "store",      "session",  "providers",  "upstreams",
                                           "routes", "policies",   "linking",  "audit",      "ingest",
                                           "admin",  "assertion",  "journeys", "console",    NULL};
    vctx_t v = {label, errs, 0};
    gw_config_t *cfg;
    json_t *obj, *item;
    const char *s, *key;
    long long n;
    size_t i;
    char sub[64];

    if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
        return GW_ENOMEM;
    atomic_init(&cfg->refcnt, 1);
    {
        static atomic_uint_fast64_t serials;
        cfg->serial = atomic_fetch_add(&serials, 1) + 1;
    }
    cfg->path = strdup(label);
    cfg->doc = json_incref(doc);

    if (!check_object(&v, doc, "", top_keys))
        goto Exit;

    load_limits(&v, json_object_get(doc, "limits"), &cfg->limits);

    /* listen */
    obj = json_object_get(doc, "listen");
    if (!json_is_array(obj) || json_array_size(obj) == 0) {
        verr(&v, "listen", "is required: a non-empty list of {\"address\", \"port\"}");
    } else {
        cfg->num_listens = json_array_size(obj);
        cfg->listens = calloc(cfg->num_listens, sizeof(*cfg->listens));
        json_array_foreach(obj, i, item)
        {
            join_index(sub, sizeof(sub), "listen", i);
            load_listen(&v, item, sub, &cfg->listens[i]);
            for (size_t j = 0; j < i; ++j)
                if (cfg->listens[j].address != NULL && cfg->listens[i].address != NULL &&
                    cfg->listens[j].port == cfg->listens[i].port &&
                    strcmp(cfg->listens[j].address, cfg->listens[i].address) == 0)
                    verr(&v, sub, "same address and port as listen[%zu]", j);
        }
    }
    if (get_url(&v, doc, "", "public_url", 1, 1, &s) && (cfg->public_url = strdup(s)) != NULL &&
        (cfg->public_authority = strstr(cfg->public_url, "://")) != NULL) {
        cfg->public_authority += 3;
        cfg->public_authority_len = strcspn(cfg->public_authority, "/?#");
    }
    cfg->threads = 0;
    if (get_int(&v, doc, "", "threads", 0, 256, &n))
        cfg->threads = (unsigned)n;
    obj = json_object_get(doc, "access_log");
    if (obj == NULL) {
        cfg->access_log = strdup("-");
    } else if (!json_is_null(obj)) {
        if ((s = get_str(&v, doc, "", "access_log", 0)) != NULL)
            cfg->access_log = strdup(s);
    }
    if ((obj = get_str_list(&v, doc, "", "trusted_proxies")) != NULL) {
        cfg->trusted_proxies = calloc(json_array_size(obj) + 1, sizeof(*cfg->trusted_proxies));
        json_array_foreach(obj, i, item)
        {
            if (!json_is_string(item))
                continue;
            if (gw_cidr_parse(json_string_value(item), &cfg->trusted_proxies[cfg->num_trusted_proxies]) != 0) {
                join_index(sub, sizeof(sub), "trusted_proxies", i);
                verr(&v, sub, "must be an IP address or CIDR range");
            } else {
                ++cfg->num_trusted_proxies;
            }
        }
    }

    /* upstreams */
    obj = json_object_get(doc, "upstreams");
    if (!json_is_object(obj) || json_object_size(obj) == 0) {
        verr(&v, "upstreams", "is required: an object of name -> {\"url\": ...}");
    } else {
        cfg->upstreams = calloc(json_object_size(obj), sizeof(*cfg->upstreams));
        json_object_foreach(obj, key, item) load_upstream(&v, key, item, &cfg->upstreams[cfg->num_upstreams++]);
    }

    load_sections(&v, cfg, doc);
    load_console(&v, cfg, json_object_get(doc, "console"));

    /* routes (after upstreams and policies, which they reference) */
    obj = json_object_get(doc, "routes");
    if (!json_is_array(obj) || json_array_size(obj) == 0) {
        verr(&v, "routes", "is required: a non-empty list of routes");
    } else {
        cfg->num_routes = json_array_size(obj);
        cfg->routes = calloc(cfg->num_routes, sizeof(*cfg->routes));
        json_array_foreach(obj, i, item) load_route(&v, cfg, item, i);
    }

Exit:
    if (v.failed) {
        gw_config_unref(cfg);
        return GW_EINVAL;
    }
    *out = cfg;
    return GW_OK;
}

gw_status_t gw_config_load(const char *path, gw_config_t **out, gw_config_errors_t *errs)
{
    json_error_t jerr;
    json_t *doc;
    gw_status_t st;
    vctx_t v = {path, errs, 0};
    char where[64];

    /* JSON_REJECT_DUPLICATES: a key given twice is a mistake, never "last one wins" */
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        snprintf(where, sizeof(where), "line %d, column %d", jerr.line, jerr.column);
        if (jerr.line <= 0)
            verr(&v, "(file)", "%s", jerr.text);
        else
            verr(&v, where, "%s", jerr.text);
        return GW_EINVAL;
    }
    st = gw_config_from_json(doc, path, out, errs);
    json_decref(doc);
    return st;
}

gw_config_t *gw_config_ref(gw_config_t *cfg)
{
    atomic_fetch_add_explicit(&cfg->refcnt, 1, memory_order_relaxed);
    return cfg;
}

static void free_listen(gw_listen_t *l)
{
    free(l->address);
    free(l->tls_cert);
    free(l->tls_key);
}

void gw_config_unref(gw_config_t *cfg)
{
    if (cfg == NULL)
        return;
    if (atomic_fetch_sub_explicit(&cfg->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < cfg->num_listens; ++i)
        free_listen(&cfg->listens[i]);
    free(cfg->listens);
    for (size_t i = 0; i < cfg->num_upstreams; ++i) {
        free(cfg->upstreams[i].name);
        free(cfg->upstreams[i].url);
    }
    free(cfg->upstreams);
    for (size_t i = 0; i < cfg->num_routes; ++i) {
        gw_route_t *r = &cfg->routes[i];
        free(r->name);
        free(r->host);
        free(r->path_prefix);
        free(r->channel);
        free(r->touchpoint);
        free(r->stage);
        free(r->policy);
        for (size_t j = 0; j < r->num_touchpoint_skip; ++j)
            free(r->touchpoint_skip[j]);
        free(r->touchpoint_skip);
    }
    free(cfg->routes);
    free(cfg->trusted_proxies);
    free_listen(&cfg->admin_listen);
    free_secret(cfg->admin_token);
    for (size_t i = 0; i < 3; ++i)
        free(cfg->console_policy[i]);
    free(cfg->public_url);
    free(cfg->access_log);
    free(cfg->store_path);
    free(cfg->path);
    json_decref(cfg->doc);
    if (cfg->policies != NULL && cfg->policies_free != NULL)
        cfg->policies_free(cfg->policies);
    free(cfg);
}

const char *gw_auth_str(gw_auth_t a)
{
    switch (a) {
    case GW_AUTH_SESSION:
        return "session";
    case GW_AUTH_BEARER:
        return "bearer";
    case GW_AUTH_ANY:
        return "any";
    case GW_AUTH_NONE:
        break;
    }
    return "none";
}
