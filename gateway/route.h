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
#include <stdint.h>

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
 * Whether a request to `path` (normalised, no query, len bytes) on route `r` records no touchpoint:
 * it matches one of the route's touchpoint_skip patterns (browser noise such as /favicon.ico by
 * default), where '*' matches any run of characters and everything else itself. 0 for a NULL route.
 */
int gw_route_touchpoint_skipped(const gw_route_t *r, const char *path, size_t len);

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

/** What gw_path_check() found first in a request path; GW_PATH_OK is 0. */
typedef enum gw_path_verdict {
    GW_PATH_OK = 0,
    GW_PATH_MALFORMED,      /* not starting with '/', or a malformed percent-escape */
    GW_PATH_ENCODED_SLASH,  /* %2F or %5C (any case) */
    GW_PATH_BACKSLASH,      /* a raw '\' */
    GW_PATH_PARAMETER,      /* ';' raw or encoded: a path parameter, "..;" included (Tomcat, Spring, IIS) */
    GW_PATH_DOT_SEGMENT,    /* a "." or ".." segment, plain or percent-encoded */
    GW_PATH_CONTROL,        /* a control character (NUL included), raw or encoded */
    GW_PATH_FRAGMENT,       /* a raw '#' (a fragment never belongs in a request) */
    GW_PATH_DOUBLE_ENCODED, /* "%25" escaping one of the above ("%252e", "%252F"): for upstreams that decode twice */
    GW_PATH_INVALID_UTF8,   /* decoded bytes that are not UTF-8, overlong forms ("%c0%ae", read as "." by some
                               servers) and surrogates included */
} gw_path_verdict_t;

/**
 * Judges a raw request path (no query) by what an upstream may make of it, decoding one level of
 * percent-escapes: whether it could mean a different path to an upstream than to the gateway's
 * route matching. Anything but GW_PATH_OK is refused (400) unless the route opts out
 * (`path_check: "off"`). A path it accepts, decoded once, has no "." or ".." segment, no '\',
 * no ';', no '#' and no control character, so normalising it only canonicalises its spelling;
 * decoded twice, it has none of '.', '/', '\', ';', '%', '#' or a control character where the
 * first decoding produced a '%'.
 */
gw_path_verdict_t gw_path_check(const char *path, size_t len);

/**
 * Whether a path with verdict pv is refused (400) rather than routed to route ri (-1: no route):
 * every verdict but GW_PATH_OK is, unless the route the path normalises to has path_check "off".
 */
int gw_path_refused(const gw_config_t *cfg, long ri, gw_path_verdict_t pv);

/** A short English name of a verdict for logs and error descriptions (static string). */
const char *gw_path_verdict_str(gw_path_verdict_t v);

/**
 * Whether a client header name asks an upstream framework to handle the request as another method
 * or path (X-HTTP-Method-Override, X-Original-URL, X-Rewrite-URL, ...) or asserts an address or
 * scheme only the gateway may set (X-Real-IP, X-Forwarded-Port, ...); any case, '_' for '-'.
 * Such headers are removed from every request before it is proxied.
 */
int gw_header_is_override(const char *name, size_t len);

/**
 * Whether a Host header value is syntactically a host: a DNS name (letters, digits, '-', '.', '_')
 * or a bracketed IPv6 literal, with an optional numeric port; at most 255 bytes.
 */
int gw_host_valid(const char *host, size_t len);

/**
 * Whether a (valid) Host value names this gateway: public_url's host (cfg->public_authority) or
 * a route's match.host (ports ignored, case-insensitive, wildcards as in routing).
 */
int gw_host_known(const gw_config_t *cfg, const char *host, size_t host_len);

/** Body limits of the /.auth/ endpoints that take a body: the ingestion batch, and the forms and token calls. */
#define GW_AUTH_INGEST_BODY_MAX (1024 * 1024)
#define GW_AUTH_FORM_BODY_MAX (64 * 1024)

/**
 * The largest request body the /.auth/ endpoint at a normalised path accepts: 0 for the endpoints
 * that take none (and unknown ones), so a body there is refused (413) before it is read.
 */
uint64_t gw_auth_body_limit(const char *path, size_t len);

/** One request header as a parser found it (the same layout as picohttpparser's struct phr_header). */
typedef struct gw_header_view {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} gw_header_view_t;

/** What gw_framing_check() found; GW_FRAMING_OK is 0. */
typedef enum gw_framing {
    GW_FRAMING_OK = 0,
    GW_FRAMING_BAD_LENGTH,     /* a Content-Length that is not one decimal number */
    GW_FRAMING_LENGTHS_DIFFER, /* several Content-Length headers with different values (RFC 9112 §6.3) */
    GW_FRAMING_LENGTH_AND_TE,  /* Content-Length and Transfer-Encoding both (RFC 9112 §6.1: smuggling) */
    GW_FRAMING_SEVERAL_TE,     /* more than one Transfer-Encoding header */
    GW_FRAMING_SEVERAL_HOSTS,  /* more than one Host header (RFC 9112 §3.2) */
} gw_framing_t;

/**
 * Judges how a request head frames its body, from all of its header lines (any case). Every
 * verdict but GW_FRAMING_OK is answered 400 and the connection closed. On GW_FRAMING_OK,
 * *content_length is the body length (UINT64_MAX when none is given) and *chunked is 1 when the
 * body is sent with Transfer-Encoding.
 */
gw_framing_t gw_framing_check(const gw_header_view_t *headers, size_t num_headers, uint64_t *content_length,
                              int *chunked);

#endif
