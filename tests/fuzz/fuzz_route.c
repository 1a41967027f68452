/*
 * libFuzzer target: what a client sends that the gateway parses before anything else — the
 * request path (normalised), the Cookie header (read and stripped), the query string
 * (parameters decoded) and return_to. The output of each must keep its documented promises.
 */
#include "route.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
