/*
 * journeygate — request routing: path normalisation, route matching and the
 * header rules that decide what a client may send upstream.
 *
 * Pure functions with no I/O, shared by the server and the unit tests.
 */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include "config.h"
#include "gw.h"

#include <stddef.h>

/**
 * Normalises a request path (no query) so that one resource has one spelling:
 * percent-encoded unreserved characters are decoded, other escapes get upper-case
 * hex, runs of '/' collapse, "." and ".." segments are resolved (never above the root).
 * Refuses (GW_EINVAL) a path that does not start with '/', a malformed escape,
 * control characters and backslashes.
 * `out` must hold at least len + 1 bytes; *out_len receives the length (NUL-terminated).
 */
gw_status_t gw_path_normalize_into(const char *in, size_t len, char *out, size_t *out_len);

/** As gw_path_normalize_into(), into a malloc'ed string the caller frees. */
gw_status_t gw_path_normalize(const char *in, size_t len, char **out, size_t *out_len);

/**
 * First route (in order) whose host and path prefix match, or -1.
 * `host` is the request's Host/authority (a port is ignored); `path` must be normalised.
 * A prefix ending in '/' matches by string prefix; otherwise it matches the path itself
 * or the path followed by '/' (so "/api" never matches "/apix").
 */
long gw_route_match(const gw_route_t *routes, size_t num_routes, const char *host, size_t host_len, const char *path,
                    size_t path_len);

/**
 * Whether a client header name is reserved for identity the gateway asserts
 * (X-Customer-*, X-Auth-*, X-Journey-*, X-Identity-*, in any case, '_' for '-').
 * Such headers are removed from every request before it is proxied.
 */
int gw_header_is_reserved(const char *name, size_t len);

#endif
