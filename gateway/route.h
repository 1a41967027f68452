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

/**
 * Finds parameter `name` in a query string (without '?') and decodes it
 * (percent-escapes and '+'). Returns the number of times the name occurs (0, 1, or more:
 * a caller that needs one value refuses more); *value (malloc'ed, NUL-terminated) is set
 * only when it occurs exactly once and decodes cleanly (no NUL byte, valid escapes).
 */
int gw_query_param(const char *query, size_t len, const char *name, char **value);

/**
 * Whether a decoded return_to value is a same-origin relative path a redirect may use:
 * starts with one '/', never "//" or "/\", no backslash, control character, tab, CR/LF
 * or encoded slash/backslash, at most 2048 bytes.
 */
int gw_return_to_safe(const char *path);

/**
 * Finds cookie `name` in one Cookie header value. Returns 1 and sets *value and *value_len
 * (pointing into the header) when found.
 */
int gw_cookie_get(const char *header, size_t len, const char *name, const char **value, size_t *value_len);

/**
 * Copies a Cookie header value without the cookies whose names are listed (NULL-terminated)
 * into out (capacity >= 2 * len + 1); returns the new length (0: nothing left).
 */
size_t gw_cookie_strip(const char *header, size_t len, const char *const *names, char *out);

/** Percent-encodes a query component (RFC 3986 unreserved kept) into out (cap >= 3*len+1). */
size_t gw_url_encode(const char *in, size_t len, char *out, size_t cap);

#endif
