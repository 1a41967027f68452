/*
 * libFuzzer target: what a client sends that the gateway parses before anything else — the
 * request path (checked and normalised), the Cookie header (read and stripped), the query string
 * (parameters decoded), return_to, the Host header and the header lines that frame a body. The
 * output of each must keep its documented promises.
 */
#include "route.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The promise of gw_path_check(): a path it accepts, percent-decoded once, has no "." or ".."
 * segment, no '\\', ';', '#' or control character, no escape a second decoding would turn into
 * one, and normalising it succeeds.
 */
static void check_accepted_path(const char *in, size_t size, char *scratch)
{
    size_t n = 0, seg_start = 0;

    if (gw_path_check(in, size) != GW_PATH_OK)
        return;
    for (size_t i = 0; i < size; ++i) {
        unsigned char c = (unsigned char)in[i];
        /* a raw '%' always starts an escape, so a '%' below came from "%25" */
        if (c == '%') {
            if (size - i < 3)
                abort(); /* an escape cut short was accepted */
            char hex[3] = {in[i + 1], in[i + 2], 0};
            c = (unsigned char)strtoul(hex, NULL, 16);
            i += 2;
        }
        if (c == '\\' || c == ';' || c == '#' || c < 0x20 || c == 0x7f)
            abort();
        if (c == '%' && size - i >= 3 && isxdigit((unsigned char)in[i + 1]) && isxdigit((unsigned char)in[i + 2])) {
            /* a second decoding (some upstreams do one) must not produce any of these either */
            char hex[3] = {in[i + 1], in[i + 2], 0};
            unsigned long d = strtoul(hex, NULL, 16);
            if (d == '.' || d == '/' || d == '\\' || d == ';' || d == '%' || d == '#' || d < 0x20 || d == 0x7f)
                abort();
        }
        scratch[n++] = (char)c;
    }
    scratch[n] = '\0';
    /* segments of the decoded path, split at every '/', the decoded ones included */
    for (size_t i = 0; i <= n; ++i) {
        if (i == n || scratch[i] == '/') {
            size_t len = i - seg_start;
            if ((len == 1 && scratch[seg_start] == '.') ||
                (len == 2 && scratch[seg_start] == '.' && scratch[seg_start + 1] == '.'))
                abort();
            seg_start = i + 1;
        }
    }
    if (n == 0 || scratch[0] != '/' || gw_path_normalize_into(in, size, scratch, &n) != GW_OK)
        abort();
}

/* a valid Host can never carry what would split a header or change the authority */
static void check_host(const char *in, size_t size)
{
    if (!gw_host_valid(in, size))
        return;
    for (size_t i = 0; i < size; ++i)
        if ((unsigned char)in[i] <= 0x20 || in[i] == '/' || in[i] == '@' || in[i] == '\\' || in[i] == '?' ||
            in[i] == '#' || in[i] == ',' || (unsigned char)in[i] >= 0x7f)
            abort();
}

/* the input as header lines ("name:value" per line): a verdict of OK means one consistent framing */
static void check_framing(const char *in, size_t size)
{
    gw_header_view_t h[32];
    size_t n = 0, start = 0;
    uint64_t cl;
    int chunked;

    for (size_t i = 0; i <= size && n < 32; ++i) {
        if (i == size || in[i] == '\n') {
            const char *colon = memchr(in + start, ':', i - start);
            if (colon != NULL) {
                h[n].name = in + start;
                h[n].name_len = (size_t)(colon - (in + start));
                h[n].value = colon + 1;
                h[n].value_len = (size_t)(in + i - colon - 1);
                ++n;
            }
            start = i + 1;
        }
    }
    if (gw_framing_check(h, n, &cl, &chunked) != GW_FRAMING_OK)
        return;
    for (size_t i = 0; i < n; ++i) {
        if (h[i].name_len == 14 && strncasecmp(h[i].name, "content-length", 14) == 0) {
            /* every Content-Length line holds the one value found, and none goes with chunked */
            char buf[24];
            if (chunked || h[i].value_len >= sizeof(buf))
                abort();
            memcpy(buf, h[i].value, h[i].value_len);
            buf[h[i].value_len] = '\0';
            if (strtoull(buf, NULL, 10) != cl)
                abort();
        }
    }
}

/*
 * The oracle for return_to, written apart from the gateway's rule: where a browser would go with
 * this Location. Browsers drop tab, CR and LF from URLs and read "\\" as "/"; what is left must be
 * a path on this origin (one "/" then not another), and nothing in it may end a header line.
 */
static int stays_on_origin(const char *p)
{
    char seen[3] = {0, 0, 0};
    size_t k = 0;

    for (const char *c = p; *c != '\0'; ++c) {
        unsigned char ch = (unsigned char)*c;
        if (ch < 0x20 || ch == 0x7f)
            return 0; /* CR/LF split the header; the other controls have no place in a path */
        if (k < 2)
            seen[k++] = ch == '\\' ? '/' : (char)ch;
    }
    return seen[0] == '/' && seen[1] != '/';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const strip[] = {"jg_session", "jg_login", "jg_visitor", NULL};
    const char *in = (const char *)data, *v;
    char *out = malloc(2 * size + 1), *s = malloc(size + 1), *q = NULL;
    size_t n, vlen;

    if (out == NULL || s == NULL)
        abort();
    check_accepted_path(in, size, out);
    check_host(in, size);
    check_framing(in, size);
    if (gw_path_normalize_into(in, size, out, &n) == GW_OK) {
        char *again = malloc(n + 1);
        size_t n2;
        /* normalising is idempotent, and the result never climbs above the root or keeps "//" */
        if (out[0] != '/' || n > size || strstr(out, "//") != NULL || strstr(out, "/../") != NULL ||
            gw_path_normalize_into(out, n, again, &n2) != GW_OK || n2 != n || memcmp(again, out, n) != 0)
            abort();
        free(again);
    }
    if (gw_cookie_get(in, size, "jg_session", &v, &vlen) == 1 && (v < in || v + vlen > in + size))
        abort();
    n = gw_cookie_strip(in, size, strip, out);
    if (n > 2 * size || (n > 0 && gw_cookie_get(out, n, "jg_session", &v, &vlen) == 1))
        abort();
    if (gw_query_param(in, size, "return_to", &q) == 1 && q != NULL) {
        if (strlen(q) > size)
            abort();
        /* the decoded value the gateway would redirect to: accepted means it stays here */
        if (gw_return_to_safe(q) && !stays_on_origin(q))
            abort();
    }
    free(q);
    memcpy(s, in, size);
    s[size] = '\0';
    if (gw_return_to_safe(s) && (!stays_on_origin(s) || strchr(s, '\\') != NULL))
        abort();
    free(out);
    free(s);
    return 0;
}
