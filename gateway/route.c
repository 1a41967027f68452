#include "route.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int is_unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

gw_status_t gw_path_normalize_into(const char *in, size_t len, char *out, size_t *out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, seg_start;

    if (len == 0 || in[0] != '/')
        return GW_EINVAL;

    /*
     * One pass: decode/re-encode each byte into the current segment, and on every '/'
     * (or the end) decide what the finished segment means. Output never grows:
     * decoding shrinks, re-encoding keeps the length, dot segments are dropped.
     */
    out[o++] = '/';
    seg_start = o;
    for (size_t i = 1; i <= len; ++i) {
        int c;
        if (i == len || in[i] == '/') {
            size_t seg_len = o - seg_start;
            if (seg_len == 0) {
                /* empty segment from "//": collapse */
            } else if (seg_len == 1 && out[seg_start] == '.') {
                o = seg_start;
            } else if (seg_len == 2 && out[seg_start] == '.' && out[seg_start + 1] == '.') {
                /* drop this segment and the one before it, never above the root */
                o = seg_start - 1; /* position of the '/' before ".." */
                while (o > 0 && out[o - 1] != '/')
                    --o;
                if (o == 0)
                    o = 1;
            } else if (i < len) {
                out[o++] = '/';
            }
            seg_start = o;
            /* a dot segment or ".." at the end leaves a directory: keep the trailing '/' (already there) */
            continue;
        }
        c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return GW_EINVAL;
            if ((hi = gw_hexval((unsigned char)in[i + 1])) < 0 || (lo = gw_hexval((unsigned char)in[i + 2])) < 0)
                return GW_EINVAL;
            c = hi * 16 + lo;
            i += 2;
            if (is_unreserved(c)) {
                out[o++] = (char)c;
            } else {
                out[o++] = '%';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
            }
            continue;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return GW_EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return GW_OK;
}

gw_status_t gw_path_normalize(const char *in, size_t len, char **out, size_t *out_len)
{
    char *buf = malloc(len + 1);
    gw_status_t st;

    if (buf == NULL)
        return GW_ENOMEM;
    if ((st = gw_path_normalize_into(in, len, buf, out_len)) != GW_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return GW_OK;
}

/* compares a route host pattern ("example.com" or "*.example.com") to a request host */
static int host_matches(const char *pattern, const char *host, size_t host_len)
{
    size_t plen = strlen(pattern);

    if (pattern[0] == '*' && pattern[1] == '.') {
        /* "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com" */
        size_t suffix_len = plen - 1; /* ".example.com" */
        return host_len > suffix_len && strncasecmp(host + host_len - suffix_len, pattern + 1, suffix_len) == 0;
    }
    return host_len == plen && strncasecmp(host, pattern, plen) == 0;
}

static size_t strip_port(const char *host, size_t len)
{
    if (len > 0 && host[0] == '[') {
        const char *end = memchr(host, ']', len);
        return end != NULL ? (size_t)(end - host) + 1 : len;
    }
    const char *colon = memchr(host, ':', len);
    size_t n = colon != NULL ? (size_t)(colon - host) : len;
    /* "example.com." and "example.com" are the same host */
    if (n > 0 && host[n - 1] == '.')
        --n;
    return n;
}

long gw_route_match(const gw_route_t *routes, size_t num_routes, const char *host, size_t host_len, const char *path,
                    size_t path_len)
{
    host_len = host != NULL ? strip_port(host, host_len) : 0;
    for (size_t i = 0; i < num_routes; ++i) {
        const gw_route_t *r = &routes[i];
        if (r->host != NULL && (host == NULL || !host_matches(r->host, host, host_len)))
            continue;
        if (path_len < r->path_prefix_len || memcmp(path, r->path_prefix, r->path_prefix_len) != 0)
            continue;
        if (r->path_prefix[r->path_prefix_len - 1] != '/' && path_len > r->path_prefix_len &&
            path[r->path_prefix_len] != '/')
            continue;
        return (long)i;
    }
    return -1;
}

int gw_header_is_reserved(const char *name, size_t len)
{
    static const char *const prefixes[] = {"x-customer-", "x-auth-", "x-journey-", "x-identity-"};

    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); ++p) {
        size_t plen = strlen(prefixes[p]), i;
        if (len < plen)
            continue;
        for (i = 0; i < plen; ++i) {
            int c = tolower((unsigned char)name[i]);
            if (c == '_')
                c = '-';
            if (c != prefixes[p][i])
                break;
        }
        if (i == plen)
            return 1;
    }
    return 0;
}

int gw_query_param(const char *query, size_t len, const char *name, char **value)
{
    size_t name_len = strlen(name), i = 0;
    int count = 0;
    const char *found = NULL;
    size_t found_len = 0;

    while (i < len) {
        size_t end = i;
        while (end < len && query[end] != '&')
            ++end;
        const char *eq = memchr(query + i, '=', end - i);
        size_t klen = eq != NULL ? (size_t)(eq - (query + i)) : end - i;
        if (klen == name_len && memcmp(query + i, name, name_len) == 0) {
            ++count;
            found = eq != NULL ? eq + 1 : query + end;
            found_len = eq != NULL ? (size_t)(query + end - (eq + 1)) : 0;
        }
        i = end + 1;
    }
    if (count != 1)
        return count;
    char *out = malloc(found_len + 1);
    size_t o = 0;
    if (out == NULL)
        return -1;
    for (size_t k = 0; k < found_len; ++k) {
        int c = (unsigned char)found[k];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (k + 2 >= found_len) {
                free(out);
                return -1;
            }
            if ((hi = gw_hexval((unsigned char)found[k + 1])) < 0 ||
                (lo = gw_hexval((unsigned char)found[k + 2])) < 0) {
                free(out);
                return -1;
            }
            c = hi * 16 + lo;
            k += 2;
            if (c == 0) {
                free(out);
                return -1;
            }
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *value = out;
    return 1;
}

int gw_return_to_safe(const char *path)
{
    size_t len = strlen(path);

    if (len == 0 || len > 2048 || path[0] != '/' || path[1] == '/' || path[1] == '\\')
        return 0;
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return 0;
        /* an encoded slash or backslash can turn into "//" or "/\" once a browser decodes it */
        if (c == '%' && i + 2 < len && path[i + 1] == '2' && (path[i + 2] == 'f' || path[i + 2] == 'F'))
            return 0;
        if (c == '%' && i + 2 < len && path[i + 1] == '5' && (path[i + 2] == 'c' || path[i + 2] == 'C'))
            return 0;
    }
    return 1;
}

int gw_cookie_get(const char *header, size_t len, const char *name, const char **value, size_t *value_len)
{
    size_t name_len = strlen(name), i = 0;

    while (i < len) {
        while (i < len && (header[i] == ' ' || header[i] == ';'))
            ++i;
        size_t end = i;
        while (end < len && header[end] != ';')
            ++end;
        const char *eq = memchr(header + i, '=', end - i);
        if (eq != NULL && (size_t)(eq - (header + i)) == name_len && memcmp(header + i, name, name_len) == 0) {
            size_t vlen = (size_t)(header + end - (eq + 1));
            while (vlen > 0 && eq[vlen] == ' ')
                --vlen;
            *value = eq + 1;
            *value_len = vlen;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

size_t gw_cookie_strip(const char *header, size_t len, const char *const *names, char *out)
{
    size_t i = 0, o = 0;

    while (i < len) {
        while (i < len && (header[i] == ' ' || header[i] == ';'))
            ++i;
        size_t end = i;
        while (end < len && header[end] != ';')
            ++end;
        if (end > i) {
            const char *eq = memchr(header + i, '=', end - i);
            size_t klen = eq != NULL ? (size_t)(eq - (header + i)) : end - i;
            int drop = 0;
            for (const char *const *n = names; *n != NULL; ++n)
                if (strlen(*n) == klen && memcmp(*n, header + i, klen) == 0)
                    drop = 1;
            if (!drop) {
                if (o > 0) {
                    out[o++] = ';';
                    out[o++] = ' ';
                }
                memcpy(out + o, header + i, end - i);
                o += end - i;
            }
        }
        i = end + 1;
    }
    out[o] = '\0';
    return o;
}

size_t gw_url_encode(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)in[i];
        if (o + 4 > cap)
            return 0;
        if (is_unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

gw_path_verdict_t gw_path_check(const char *path, size_t len)
{
    size_t seg_len = 0, seg_dots = 0; /* the current segment's decoded length and its '.' count */
    unsigned utf8_need = 0;           /* continuation bytes still expected by the current UTF-8 sequence */
    uint32_t utf8_cp = 0, utf8_min = 0;

    if (len == 0 || path[0] != '/')
        return GW_PATH_MALFORMED;
    /*
     * One level of percent-decoding, as an upstream does it: every byte the upstream would see
     * is judged, and each segment is compared with "." and ".." after decoding.
     */
    for (size_t i = 1; i <= len; ++i) {
        int c, encoded = 0;
        if (i == len || path[i] == '/') {
            if (utf8_need != 0)
                return GW_PATH_INVALID_UTF8; /* a sequence cut short by the segment's end */
            if (seg_len != 0 && seg_len <= 2 && seg_dots == seg_len)
                return GW_PATH_DOT_SEGMENT;
            seg_len = seg_dots = 0;
            continue;
        }
        c = (unsigned char)path[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = gw_hexval((unsigned char)path[i + 1])) < 0 ||
                (lo = gw_hexval((unsigned char)path[i + 2])) < 0)
                return GW_PATH_MALFORMED;
            c = hi * 16 + lo;
            i += 2;
            encoded = 1;
        }
        if (c == '/' && encoded)
            return GW_PATH_ENCODED_SLASH;
        if (c == '\\')
            return encoded ? GW_PATH_ENCODED_SLASH : GW_PATH_BACKSLASH;
        if (c == ';')
            return GW_PATH_PARAMETER;
        if (c < 0x20 || c == 0x7f)
            return GW_PATH_CONTROL;
        if (c == '#')
            return GW_PATH_FRAGMENT;
        /* "%25" then an escape of one of the above: what an upstream that decodes twice would act on */
        if (c == '%' && encoded && len - i >= 3 && gw_hexval((unsigned char)path[i + 1]) >= 0 &&
            gw_hexval((unsigned char)path[i + 2]) >= 0) {
            int d = gw_hexval((unsigned char)path[i + 1]) * 16 + gw_hexval((unsigned char)path[i + 2]);
            if (d == '.' || d == '/' || d == '\\' || d == ';' || d == '%' || d == '#' || d < 0x20 || d == 0x7f)
                return GW_PATH_DOUBLE_ENCODED;
        }
        /*
         * Decoded bytes must be UTF-8 in its shortest form: IIS and some Java servers read the
         * overlong "%c0%ae" as ".", which would make a dot segment this check never saw.
         */
        if (utf8_need != 0) {
            if ((c & 0xC0) != 0x80)
                return GW_PATH_INVALID_UTF8;
            utf8_cp = utf8_cp << 6 | (uint32_t)(c & 0x3F);
            if (--utf8_need == 0 &&
                (utf8_cp < utf8_min || utf8_cp > 0x10FFFF || (utf8_cp >= 0xD800 && utf8_cp <= 0xDFFF)))
                return GW_PATH_INVALID_UTF8;
        } else if (c >= 0x80) {
            if (c >= 0xC2 && c <= 0xDF)
                utf8_need = 1, utf8_cp = (uint32_t)(c & 0x1F), utf8_min = 0x80;
            else if (c >= 0xE0 && c <= 0xEF)
                utf8_need = 2, utf8_cp = (uint32_t)(c & 0x0F), utf8_min = 0x800;
            else if (c >= 0xF0 && c <= 0xF4)
                utf8_need = 3, utf8_cp = (uint32_t)(c & 0x07), utf8_min = 0x10000;
            else
                return GW_PATH_INVALID_UTF8;
        }
        ++seg_len;
        if (c == '.')
            ++seg_dots;
    }
    return GW_PATH_OK;
}

int gw_path_refused(const gw_config_t *cfg, long ri, gw_path_verdict_t pv)
{
    return pv != GW_PATH_OK && (ri < 0 || !cfg->routes[ri].path_check_off);
}

const char *gw_path_verdict_str(gw_path_verdict_t v)
{
    switch (v) {
    case GW_PATH_OK:
        return "ok";
    case GW_PATH_MALFORMED:
        return "malformed";
    case GW_PATH_ENCODED_SLASH:
        return "encoded slash or backslash";
    case GW_PATH_BACKSLASH:
        return "backslash";
    case GW_PATH_PARAMETER:
        return "path parameter (';')";
    case GW_PATH_DOT_SEGMENT:
        return "dot segment";
    case GW_PATH_CONTROL:
        return "control character";
    case GW_PATH_FRAGMENT:
        return "fragment ('#')";
    case GW_PATH_DOUBLE_ENCODED:
        return "double percent-encoding";
    case GW_PATH_INVALID_UTF8:
        return "not UTF-8 (or an overlong form)";
    }
    return "invalid";
}

int gw_header_is_override(const char *name, size_t len)
{
    /*
     * Headers with which common frameworks let a client change the method or the path a request
     * is handled as (Symfony, Laravel, Rails, Express method-override, IIS URL Rewrite, Spring,
     * Traefik), or a client-side address the upstream may trust: none may come from a client.
     */
    static const char *const names[] = {"x-http-method-override",
                                        "x-http-method",
                                        "x-method-override",
                                        "x-original-url",
                                        "x-original-uri",
                                        "x-rewrite-url",
                                        "x-original-method",
                                        "x-forwarded-uri",
                                        "x-forwarded-path",
                                        "x-forwarded-prefix",
                                        "x-forwarded-method",
                                        "x-forwarded-port",
                                        "x-forwarded-server",
                                        "x-forwarded-scheme",
                                        "x-forwarded-ssl",
                                        "x-url-scheme",
                                        "x-host",
                                        "x-real-ip",
                                        "x-client-ip",
                                        "true-client-ip",
                                        "front-end-https"};
    int first = len != 0 ? tolower((unsigned char)name[0]) : 0;

    /* every request meets this for each header: most names are out at the first letter */
    if (first != 'x' && first != 't' && first != 'f')
        return 0;
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); ++n) {
        size_t i;
        /* stops at the first difference, the end of names[n] included */
        for (i = 0; i < len; ++i) {
            int c = tolower((unsigned char)name[i]);
            if (c == '_')
                c = '-';
            if (c != names[n][i])
                break;
        }
        if (i == len && names[n][len] == '\0')
            return 1;
    }
    return 0;
}

int gw_host_valid(const char *host, size_t len)
{
    size_t i = 0;

    if (len == 0 || len > 255)
        return 0;
    if (host[0] == '[') {
        /* IP-literal: hex digits, ':' and '.' (an embedded IPv4) up to ']' */
        for (i = 1; i < len && host[i] != ']'; ++i)
            if (!(isxdigit((unsigned char)host[i]) || host[i] == ':' || host[i] == '.'))
                return 0;
        if (i == len || i == 1)
            return 0;
        ++i;
    } else {
        /* reg-name as DNS uses it: letters, digits, '-', '.', '_' */
        for (; i < len && host[i] != ':'; ++i)
            if (!(isalnum((unsigned char)host[i]) || host[i] == '-' || host[i] == '.' || host[i] == '_'))
                return 0;
        if (i == 0)
            return 0;
    }
    if (i == len)
        return 1;
    if (host[i] != ':' || len - i - 1 > 5)
        return 0;
    for (++i; i < len; ++i)
        if (!isdigit((unsigned char)host[i]))
            return 0;
    return 1;
}

int gw_host_known(const gw_config_t *cfg, const char *host, size_t host_len)
{
    size_t plen = cfg->public_authority != NULL ? strip_port(cfg->public_authority, cfg->public_authority_len) : 0;

    host_len = strip_port(host, host_len);
    if (cfg->public_authority != NULL && plen == host_len && strncasecmp(cfg->public_authority, host, plen) == 0)
        return 1;
    for (size_t i = 0; i < cfg->num_routes; ++i)
        if (cfg->routes[i].host != NULL && host_matches(cfg->routes[i].host, host, host_len))
            return 1;
    return 0;
}

uint64_t gw_auth_body_limit(const char *path, size_t len)
{
    static const char *const exact[] = {"/.auth/token", "/.auth/logout", "/.auth/facebook/data-deletion"};
    static const char unlink[] = "/.auth/unlink/", login[] = "/.auth/login/", callback[] = "/callback";

    if (len == sizeof("/.auth/touchpoints") - 1 && memcmp(path, "/.auth/touchpoints", len) == 0)
        return GW_AUTH_INGEST_BODY_MAX;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); ++i)
        if (len == strlen(exact[i]) && memcmp(path, exact[i], len) == 0)
            return GW_AUTH_FORM_BODY_MAX;
    if (len > sizeof(unlink) - 1 && memcmp(path, unlink, sizeof(unlink) - 1) == 0)
        return GW_AUTH_FORM_BODY_MAX;
    /* a provider may answer with response_mode=form_post */
    if (len > sizeof(login) - 1 + sizeof(callback) - 1 && memcmp(path, login, sizeof(login) - 1) == 0 &&
        memcmp(path + len - (sizeof(callback) - 1), callback, sizeof(callback) - 1) == 0)
        return GW_AUTH_FORM_BODY_MAX;
    return 0;
}

static int name_is(const gw_header_view_t *h, const char *lc)
{
    return h->name_len == strlen(lc) && strncasecmp(h->name, lc, h->name_len) == 0;
}

gw_framing_t gw_framing_check(const gw_header_view_t *headers, size_t num_headers, uint64_t *content_length,
                              int *chunked)
{
    size_t num_te = 0, num_host = 0;

    *content_length = UINT64_MAX;
    *chunked = 0;
    for (size_t i = 0; i < num_headers; ++i) {
        const gw_header_view_t *h = &headers[i];
        if (name_is(h, "content-length")) {
            uint64_t v = 0;
            /* 1*DIGIT, and at most 19 of them so the value fits */
            if (h->value_len == 0 || h->value_len > 19)
                return GW_FRAMING_BAD_LENGTH;
            for (size_t j = 0; j < h->value_len; ++j) {
                if (h->value[j] < '0' || h->value[j] > '9')
                    return GW_FRAMING_BAD_LENGTH;
                v = v * 10 + (uint64_t)(h->value[j] - '0');
            }
            if (*content_length != UINT64_MAX && *content_length != v)
                return GW_FRAMING_LENGTHS_DIFFER;
            *content_length = v;
        } else if (name_is(h, "transfer-encoding")) {
            ++num_te;
        } else if (name_is(h, "host")) {
            ++num_host;
        }
    }
    if (num_host > 1)
        return GW_FRAMING_SEVERAL_HOSTS;
    if (num_te > 1)
        return GW_FRAMING_SEVERAL_TE;
    if (num_te == 1 && *content_length != UINT64_MAX)
        return GW_FRAMING_LENGTH_AND_TE;
    *chunked = num_te == 1;
    return GW_FRAMING_OK;
}

/* glob: '*' matches any run of characters; one backtrack point suffices (the latest star) */
static int glob_match(const char *pat, const char *s, size_t len)
{
    const char *star = NULL;
    size_t i = 0, retry = 0;

    while (i < len) {
        if (*pat == '*') {
            star = ++pat;
            retry = i;
        } else if (*pat != '\0' && *pat == s[i]) {
            ++pat;
            ++i;
        } else if (star != NULL) {
            pat = star;
            i = ++retry;
        } else {
            return 0;
        }
    }
    while (*pat == '*')
        ++pat;
    return *pat == '\0';
}

int gw_route_touchpoint_skipped(const gw_route_t *r, const char *path, size_t len)
{
    if (r == NULL)
        return 0;
    for (size_t i = 0; i < r->num_touchpoint_skip; ++i)
        if (glob_match(r->touchpoint_skip[i], path, len))
            return 1;
    return 0;
}
