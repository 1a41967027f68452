/*
 * libFuzzer target: touchpoint records as the store reads them back (store_tp_decode) — bytes
 * from disk a damaged or hostile store file could hold. A record that decodes must encode again to
 * the same value in every field (each compared by name), re-encode to the same bytes, and its JSON
 * view must build.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* the same C string; the encoder writes an empty string as an absent one (a record's string may hold a NUL) */
static int same(const char *a, const char *b)
{
    a = a != NULL && a[0] != '\0' ? a : NULL;
    b = b != NULL && b[0] != '\0' ? b : NULL;
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[STORE_TP_RECORD_MAX];
    store_tp_t a, b;
    size_t n, m;
    json_t *j;

    if ((n = store_tp_decode(data, size, &a)) == 0)
        return 0;
    if (n > size)
        abort(); /* read past the input */
    if ((j = store_tp_json(&a)) == NULL)
        abort();
    json_decref(j);
    /* strings longer than the encoder accepts cannot come from a decoded record: it must encode */
    if ((m = store_tp_encode(&a, out, sizeof(out))) == 0 || store_tp_decode(out, m, &b) != m)
        abort();
    if (a.occurred_at_ms != b.occurred_at_ms || a.received_at_ms != b.received_at_ms || a.seq != b.seq ||
        a.status != b.status || a.click_id != b.click_id || a.visit_start != b.visit_start ||
        a.extra_len != b.extra_len || (a.extra_len > 0 && memcmp(a.extra, b.extra, a.extra_len) != 0))
        abort();
    /* every string field, by name: a field the encoder forgot or swapped with another shows here */
    {
        const char *const sa[] = {a.id,         a.customer_id,  a.visitor_id, a.channel,       a.touchpoint,
                                  a.stage,      a.route,        a.method,     a.device,        a.provider,
                                  a.source,     a.session,      a.visit_id,   a.referrer_host, a.utm_source,
                                  a.utm_medium, a.utm_campaign, a.utm_term,   a.utm_content};
        const char *const sb[] = {b.id,         b.customer_id,  b.visitor_id, b.channel,       b.touchpoint,
                                  b.stage,      b.route,        b.method,     b.device,        b.provider,
                                  b.source,     b.session,      b.visit_id,   b.referrer_host, b.utm_source,
                                  b.utm_medium, b.utm_campaign, b.utm_term,   b.utm_content};
        for (size_t i = 0; i < sizeof(sa) / sizeof(sa[0]); ++i)
            if (!same(sa[i], sb[i]))
                abort();
    }
    /* and the record encodes to the same bytes again: nothing in it is left to chance */
    {
        static uint8_t again[STORE_TP_RECORD_MAX];
        size_t k = store_tp_encode(&b, again, sizeof(again));
        if (k != m || memcmp(again, out, m) != 0)
            abort();
    }
    return 0;
}
