/*
 * journeygate — configuration: one JSON file, validated completely before use.
 *
 * gw_config_load() parses and validates a file and returns an immutable,
 * reference-counted snapshot. A reload builds a new snapshot and swaps it in;
 * requests in flight keep the snapshot they started with.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "gw.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum gw_auth { GW_AUTH_NONE = 0, GW_AUTH_SESSION, GW_AUTH_BEARER, GW_AUTH_ANY } gw_auth_t;

/** A route's "auth" as the configuration spells it: "session", "bearer", "any" or "none". Never NULL. */
const char *gw_auth_str(gw_auth_t a);

typedef struct gw_listen {
    char *address;
    uint16_t port;
    char *tls_cert; /* NULL for plain HTTP */
    char *tls_key;
} gw_listen_t;

typedef struct gw_upstream {
    char *name;
    char *url;             /* http://host:port[/base] */
    uint32_t timeout_ms;   /* connect and I/O timeout */
    uint32_t keepalive_ms; /* idle time a pooled connection is kept */
    int websocket;         /* websocket upgrades allowed */
} gw_upstream_t;

typedef struct gw_route {
    char *name;
    char *host;        /* lower-case host without port, or NULL for any */
    char *path_prefix; /* normalised */
    size_t path_prefix_len;
    size_t upstream; /* index into gw_config_t.upstreams */
    char *channel;
    int channel_explicit; /* channel set in the file (else "web": bearer sessions then count for their own) */
    char *touchpoint;     /* or NULL */
    char *stage;          /* or NULL */
    char *policy;         /* or NULL */
    gw_auth_t auth;
    uint64_t max_body_bytes;
    int path_check_off;     /* "path_check": "off": paths gw_path_check() refuses are normalised and proxied */
    unsigned metrics_index; /* stable per route name, see gw_metrics_route_index() */
    /*
     * "touchpoint_skip": request paths (normalised, no query) that record no touchpoint: exact paths, or
     * patterns where '*' matches any characters; GW_TOUCHPOINT_SKIP_DEFAULT when the key is absent,
     * none for []. See gw_route_touchpoint_skipped().
     */
    char **touchpoint_skip;
    size_t num_touchpoint_skip;
} gw_route_t;

/* browser noise no journey wants (icons, crawler and manifest files), NULL-terminated */
#define GW_TOUCHPOINT_SKIP_DEFAULT                                                                                     \
    {                                                                                                                  \
        "/favicon.ico", "/robots.txt", "/apple-touch-icon*.png", "/sitemap.xml", "/.well-known/*", "/manifest.json",   \
            "/browserconfig.xml", NULL                                                                                 \
    }
#define GW_TOUCHPOINT_SKIP_MAX 64  /* patterns per route */
#define GW_TOUCHPOINT_SKIP_LEN 256 /* bytes per pattern */

typedef struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned bits;
} gw_cidr_t;

typedef struct gw_limits {
    uint32_t max_connections;
    uint32_t max_header_count;
    uint64_t max_header_bytes;
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t drain_timeout_ms;
    uint64_t max_body_bytes; /* default for routes */
    /* per-address token buckets: tokens a minute and bucket size, for sign-in attempts and for ingest batches */
    double auth_rate_per_minute, auth_burst;
    double ingest_rate_per_minute, ingest_burst;
} gw_limits_t;

typedef struct gw_config {
    atomic_uint refcnt;
    uint64_t serial; /* unique per snapshot in this process (never reused, unlike its address) */
    char *path;      /* file the snapshot came from, or "<demo>" */
    gw_listen_t *listens;
    size_t num_listens;
    char *public_url;
    const char *public_authority; /* public_url's host[:port], pointing into public_url (not NUL-ended) */
    size_t public_authority_len;
    unsigned threads;
    char *access_log; /* "-" stdout, a path, or NULL (off) */
    gw_cidr_t *trusted_proxies;
    size_t num_trusted_proxies;
    gw_limits_t limits;
    char *store_path;
    uint64_t store_map_size_mb;
    gw_upstream_t *upstreams;
    size_t num_upstreams;
    gw_route_t *routes;
    size_t num_routes;
    int has_admin;
    gw_listen_t admin_listen;
    char *admin_token; /* secret: never logged */
    json_t *doc;       /* the validated document, for modules that read their own sections */
    /* console: the policy that grants each role (marketer, security, admin; enum console_role's bit
       order), NULL for a role nobody holds; has_console 0 when the section is absent (/.console/ is 404) */
    int has_console;
    char *console_policy[3];
    unsigned console_figures_refresh_s; /* console.figures_refresh_s: the figures' snapshot refresh period */
    /* the loaded policy set (see policy_glue.c), owned by the snapshot; NULL until attached */
    void *policies;
    void (*policies_free)(void *);
} gw_config_t;

/** A list of validation messages, each "FILE: path.to.key: message". */
typedef struct gw_config_errors {
    char **msgs;
    size_t count;
} gw_config_errors_t;

/**
 * Loads and validates a configuration file.
 * On success returns GW_OK and *out holds a snapshot with one reference.
 * On failure returns GW_EINVAL and errs lists every problem found; *out is untouched.
 * errs must be cleared with gw_config_errors_clear() in both cases.
 */
gw_status_t gw_config_load(const char *path, gw_config_t **out, gw_config_errors_t *errs);

/** As gw_config_load(), from a JSON document already parsed; `label` names it in messages. */
gw_status_t gw_config_from_json(json_t *doc, const char *label, gw_config_t **out, gw_config_errors_t *errs);

void gw_config_errors_clear(gw_config_errors_t *errs);

gw_config_t *gw_config_ref(gw_config_t *cfg);
/** Drops a reference; the last one frees the snapshot. NULL is a no-op. */
void gw_config_unref(gw_config_t *cfg);

/**
 * Parses a size: a non-negative integer (bytes) or a string such as "512", "64KB", "1MB", "2GB"
 * (powers of 1024). Returns 0 on success.
 */
int gw_parse_size(const char *s, uint64_t *out);

/** Parses "1.2.3.4", "::1", "10.0.0.0/8" or "fd00::/8". Returns 0 on success. */
int gw_cidr_parse(const char *s, gw_cidr_t *out);

/** Whether the address sa falls in one of the ranges. */
int gw_cidr_match(const gw_cidr_t *list, size_t n, const struct sockaddr *sa);

#endif
