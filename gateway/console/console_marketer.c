/*
 * journeygate — the console's records of customers (role marketer; console/API.md "Marketer"):
 * search, one customer's profile, one customer's journey page by page, and the CSV exports.
 *
 * Owns: reading customers and touchpoints from the store for these four endpoints and shaping
 * them as API.md says. Does not own: who may call them (console.c checked the staff session and
 * the role), the audit record's form (console_audit()), the streaming itself (console.c).
 *
 * Every endpoint runs on a worker thread. Personal data is shown only after its viewing is on
 * record: the profile, the journey and each export write their audit record first, and answer
 * 503 without showing anything when it cannot be written. An export never keeps a store read
 * transaction open while it waits for the client: it reads a part (about 64 KB of CSV, whole
 * customers at a time) in one short transaction, then writes it out with none open.
 */
#include "console_api.h"

#include "csv.h"
#include "ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEARCH_LIMIT_DEFAULT 50
#define SEARCH_LIMIT_MAX 200
#define QUERY_MAX 512 /* an email (<= 320) or provider:subject (<= 64 + 1 + 255) */
#define JOURNEY_LIMIT_DEFAULT 500
#define JOURNEY_LIMIT_MAX 2000
#define CURSOR_LEN 32 /* 16 hex digits of occurred_at_ms, 16 of seq */
#define CHUNK_BYTES (64 * 1024)
#define CHANNEL_MAX STORE_TP_STR_MAX /* the longest channel a touchpoint record keeps (as the figures views) */

static const char *const stages[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy", NULL};

/* ------------------------------------------------------------------ parameters */

static void bad_param(console_answer_t *ans, const char *name, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s: %s", name, why);
    console_error(ans, 400, "invalid_parameter", msg);
}

/*
 * A text parameter into out (cap bytes): its length, -1 when absent or empty, -2 after a 400
 * naming it (too long, not UTF-8, a control character).
 */
static int text_param(const console_call_t *call, console_answer_t *ans, const char *name, char *out, size_t cap)
{
    int n = console_query(call, name, out, cap);
    if (n == -2) {
        char why[96];
        snprintf(why, sizeof(why), "at most %zu bytes of UTF-8 text without control characters", cap - 1);
        bad_param(ans, name, why);
        return -2;
    }
    return n <= 0 ? -1 : n;
}

/* an integer parameter in [lo, hi] into *v (def when absent); -1 after a 400 naming it */
static int int_param(const console_call_t *call, console_answer_t *ans, const char *name, long lo, long hi, long def,
                     long *v)
{
    char buf[16], why[64];
    int n = console_query(call, name, buf, sizeof(buf));
    long x = 0;

    *v = def;
    if (n == -1 || n == 0)
        return 0;
    snprintf(why, sizeof(why), "must be a whole number from %ld to %ld", lo, hi);
    if (n < 0) {
        bad_param(ans, name, why);
        return -1;
    }
    for (int i = 0; i < n; ++i) {
        if (buf[i] < '0' || buf[i] > '9' || i >= 9) {
            bad_param(ans, name, why);
            return -1;
        }
        x = x * 10 + (buf[i] - '0');
    }
    if (x < lo || x > hi) {
        bad_param(ans, name, why);
        return -1;
    }
    *v = x;
    return 0;
}

/* "c_" + 24 characters of the base32 alphabet (a-z, 2-7): what store.c makes */
static int customer_id_ok(const char *s)
{
    return s != NULL && gw_customer_id_ok(s, strlen(s));
}

static const char *known_stage(const char *s)
{
    for (const char *const *p = stages; *p != NULL; ++p)
        if (strcmp(*p, s) == 0)
            return *p;
    return NULL;
}

/*
 * The customer named by path segment 1 (customers/ID...): its profile into *cust (new reference).
 * -1 after answering 400 (malformed id), 404 (no such customer) or 503 (the store failed).
 */
static int path_customer(const console_call_t *call, console_answer_t *ans, json_t **cust)
{
    const char *id = call->nsegs >= 2 ? call->segs[1] : "";
    gw_status_t s;

    *cust = NULL;
    if (!customer_id_ok(id)) {
        bad_param(ans, "customer", "must be a customer id: c_ and 24 characters of a-z and 2-7");
        return -1;
    }
    if ((s = store_customer_get(call->ctx->store, id, cust)) == GW_ENOTFOUND) {
        console_error(ans, 404, "not_found", "no such customer");
        return -1;
    }
    if (s != GW_OK) {
        console_error(ans, 503, "unavailable", "the store failed; retry");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the customer's record as shown */

/* ms since the epoch as ISO 8601, or null when not known (0 or less) */
static json_t *iso_ms(json_int_t ms)
{
    char t[25];
    if (ms <= 0)
        return json_null();
    console_iso_time((uint64_t)ms, t);
    return json_string(t);
}

static json_t *iso_or_null(json_t *ms)
{
    return json_is_integer(ms) ? iso_ms(json_integer_value(ms)) : json_null();
}

static json_t *string_or_null(json_t *v)
{
    return json_is_string(v) ? json_stringn(json_string_value(v), json_string_length(v)) : json_null();
}

static json_t *field_time(json_t *obj, const char *key)
{
    return iso_or_null(json_object_get(obj, key));
}

/* channels as kept per channel (first/last seen), or the older list of names; sorted by first seen */
struct seen {
    const char *name;
    json_int_t first, last;
};

static int by_first_seen(const void *a, const void *b)
{
    const struct seen *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int by_last_seen_desc(const void *a, const void *b)
{
    const struct seen *x = a, *y = b;
    if (x->last != y->last)
        return x->last > y->last ? -1 : 1;
    return strcmp(x->name, y->name);
}

/*
 * The names and times of an object {name: {first_seen_ms, last_seen_ms}} (the profile's channels
 * and devices), sorted by cmp; NULL with *n = 0 when there is none. The names point into obj.
 */
static struct seen *seen_list(json_t *obj, int (*cmp)(const void *, const void *), size_t *n)
{
    struct seen *v;
    const char *name;
    json_t *e;

    *n = 0;
    if (!json_is_object(obj) || json_object_size(obj) == 0 || (v = calloc(json_object_size(obj), sizeof(*v))) == NULL)
        return NULL;
    json_object_foreach(obj, name, e)
    {
        v[*n].name = name;
        v[*n].first = json_integer_value(json_object_get(e, "first_seen_ms"));
        v[*n].last = json_integer_value(json_object_get(e, "last_seen_ms"));
        ++*n;
    }
    qsort(v, *n, sizeof(*v), cmp);
    return v;
}

/* the channel names of a customer: the per-channel record when kept, else channels_seen */
static json_t *channel_names(json_t *cust)
{
    json_t *out = json_array(), *ch;
    size_t n, i;
    struct seen *v = seen_list(json_object_get(cust, "channels"), by_first_seen, &n);

    if (v != NULL) {
        for (i = 0; i < n; ++i)
            json_array_append_new(out, json_string(v[i].name));
        free(v);
        return out;
    }
    json_array_foreach(json_object_get(cust, "channels_seen"), i, ch) if (json_is_string(ch))
        json_array_append_new(out, json_string(json_string_value(ch)));
    return out;
}

static json_t *provider_names(json_t *cust)
{
    json_t *out = json_array(), *ident, *have;
    size_t i, j;

    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        const char *p = json_string_value(json_object_get(ident, "provider"));
        int dup = 0;
        if (p == NULL)
            continue;
        json_array_foreach(out, j, have) dup |= strcmp(json_string_value(have), p) == 0;
        if (!dup)
            json_array_append_new(out, json_string(p));
    }
    return out;
}

static json_t *profile_get(json_t *cust, const char *key)
{
    return json_object_get(json_object_get(cust, "profile"), key);
}

/* the stage the customer is in: kept by the recorder as "stage", else the furthest stage reached */
static json_t *current_stage(json_t *cust)
{
    json_t *st = json_object_get(cust, "stage"), *reached = json_object_get(cust, "stages_reached");
    const char *last = NULL;

    if (json_is_string(st) && known_stage(json_string_value(st)) != NULL)
        return json_string(json_string_value(st));
    for (const char *const *p = stages; *p != NULL; ++p)
        if (json_object_get(reached, *p) != NULL)
            last = *p;
    return last != NULL ? json_string(last) : json_null();
}

/* CUSTOMER_SUMMARY of API.md */
static json_t *customer_summary(json_t *cust)
{
    return json_pack("{s:O, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", json_object_get(cust, "id"), "name",
                     string_or_null(profile_get(cust, "name")), "email", string_or_null(profile_get(cust, "email")),
                     "providers", provider_names(cust), "channels", channel_names(cust), "first_seen",
                     field_time(cust, "first_seen_ms"), "last_seen", field_time(cust, "last_seen_ms"), "stage",
                     current_stage(cust));
}

/*
 * How an identity came to the customer. Recorded at sign-in as "linked_by"; a record from before
 * that holds none: the identity the customer was created with is its first sign-in, and for the
 * others the rule is not known (null rather than a guess).
 */
static json_t *linked_by(json_t *cust, json_t *ident, size_t index)
{
    json_t *lb = json_object_get(ident, "linked_by");
    json_int_t at = json_integer_value(json_object_get(ident, "linked_at_ms"));

    if (json_is_string(lb))
        return json_string(json_string_value(lb));
    if (index == 0 && at <= json_integer_value(json_object_get(cust, "created_ms")))
        return json_string("first_sign_in");
    return json_null();
}

static json_t *profile_json(json_t *cust)
{
    json_t *out = customer_summary(cust), *idents = json_array(), *chans = json_array(), *devs = json_array();
    json_t *reached = json_array(), *ident, *consent;
    struct seen *v;
    size_t i, n;

    if (out == NULL || idents == NULL || chans == NULL || devs == NULL || reached == NULL) {
        json_decref(out);
        json_decref(idents);
        json_decref(chans);
        json_decref(devs);
        json_decref(reached);
        return NULL;
    }
    json_object_del(out, "providers");
    json_object_set_new(out, "picture", string_or_null(profile_get(cust, "picture")));
    json_object_set_new(out, "created", field_time(cust, "created_ms"));
    for (const char *const *p = stages; *p != NULL; ++p)
        if (json_object_get(json_object_get(cust, "stages_reached"), *p) != NULL)
            json_array_append_new(reached, json_string(*p));
    json_object_set_new(out, "stages_reached", reached);
    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        json_array_append_new(idents,
                              json_pack("{s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o}", "provider",
                                        string_or_null(json_object_get(ident, "provider")), "subject",
                                        string_or_null(json_object_get(ident, "subject")), "email",
                                        string_or_null(json_object_get(ident, "email")), "email_verified",
                                        json_is_true(json_object_get(ident, "email_verified")), "name",
                                        string_or_null(json_object_get(ident, "name")), "linked_at",
                                        field_time(ident, "linked_at_ms"), "linked_by", linked_by(cust, ident, i),
                                        "last_login", field_time(ident, "last_login_ms")));
    }
    json_object_set_new(out, "identities", idents);
    if ((v = seen_list(json_object_get(cust, "channels"), by_first_seen, &n)) != NULL) {
        for (i = 0; i < n; ++i)
            json_array_append_new(chans, json_pack("{s:s, s:o, s:o}", "channel", v[i].name, "first_seen",
                                                   iso_ms(v[i].first), "last_seen", iso_ms(v[i].last)));
        free(v);
    } else {
        /* a record from before channels were kept with their times: the names only */
        json_t *names = channel_names(cust), *nm;
        json_array_foreach(names, i, nm)
            json_array_append_new(chans, json_pack("{s:O, s:n, s:n}", "channel", nm, "first_seen", "last_seen"));
        json_decref(names);
    }
    json_object_set_new(out, "channels", chans);
    if ((v = seen_list(json_object_get(cust, "devices"), by_last_seen_desc, &n)) != NULL) {
        for (i = 0; i < n; ++i)
            json_array_append_new(devs, json_pack("{s:s, s:o}", "device", v[i].name, "last_seen", iso_ms(v[i].last)));
        free(v);
    }
    json_object_set_new(out, "devices", devs);
    consent = json_object_get(cust, "consent");
    json_object_set_new(out, "consent", json_is_object(consent) ? json_deep_copy(consent) : json_null());
    return out;
}

/* ------------------------------------------------------------------ GET customers?q&limit */

void console_api_customers_search(const console_call_t *call, console_answer_t *ans)
{
    char q[QUERY_MAX + 1];
    char(*ids)[STORE_ID_LEN + 1] = NULL;
    json_t *list, *out;
    long limit;
    size_t n = 0;
    int qn;
    gw_status_t s;

    if ((qn = text_param(call, ans, "q", q, sizeof(q))) == -2)
        return;
    if (qn == -1) {
        bad_param(ans, "q", "required: an email, a customer id or provider:subject");
        return;
    }
    if (int_param(call, ans, "limit", 1, SEARCH_LIMIT_MAX, SEARCH_LIMIT_DEFAULT, &limit) != 0)
        return;
    /* surrounding blanks are a paste's, never part of an address or an id */
    {
        char *b = q, *e = q + qn;
        while (b < e && (*b == ' ' || *b == '\t'))
            ++b;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            --e;
        *e = '\0';
        memmove(q, b, (size_t)(e - b) + 1);
        if (q[0] == '\0') {
            bad_param(ans, "q", "required: an email, a customer id or provider:subject");
            return;
        }
    }
    if ((ids = calloc((size_t)limit, sizeof(*ids))) == NULL || (list = json_array()) == NULL) {
        free(ids);
        console_error(ans, 503, "unavailable", "out of memory; retry");
        return;
    }
    if ((s = store_customers_find(call->ctx->store, q, ids, (size_t)limit, &n)) != GW_OK) {
        free(ids);
        json_decref(list);
        console_error(ans, 503, "unavailable", "the store failed; retry");
        return;
    }
    for (size_t i = 0; i < n; ++i) {
        json_t *cust = NULL;
        s = store_customer_get(call->ctx->store, ids[i], &cust);
        if (s == GW_ENOTFOUND)
            continue; /* erased between the two reads */
        if (s != GW_OK) {
            free(ids);
            json_decref(list);
            console_error(ans, 503, "unavailable", "the store failed; retry");
            return;
        }
        json_array_append_new(list, customer_summary(cust));
        json_decref(cust);
    }
    free(ids);
    out = json_pack("{s:o}", "customers", list);
    ans->json = out;
}

/* ------------------------------------------------------------------ GET customers/ID */

void console_api_customer(const console_call_t *call, console_answer_t *ans)
{
    json_t *cust = NULL, *out;

    if (call->nsegs != 2) {
        console_error(ans, 404, "not_found", "no such endpoint");
        return;
    }
    if (path_customer(call, ans, &cust) != 0)
        return;
    /* on record before anything of the person is shown */
    if (console_audit(call, "console_view_profile", "success", call->segs[1], NULL) != GW_OK) {
        json_decref(cust);
        console_error(ans, 503, "unavailable", "the view could not be recorded; retry");
        return;
    }
    out = profile_json(cust);
    json_decref(cust);
    if (out == NULL) {
        console_error(ans, 503, "unavailable", "out of memory; retry");
        return;
    }
    ans->json = out;
}

/* ------------------------------------------------------------------ touchpoints as shown */

/* a record's text, or null when absent or not UTF-8 (one bad record must not take the page down) */
static json_t *str_or_null(const char *s)
{
    json_t *v = s != NULL ? json_string(s) : NULL;
    return v != NULL ? v : json_null();
}

/* the ingestion's extra object (attributes, a status given as text), or NULL */
static json_t *tp_extra(const store_tp_t *tp)
{
    json_t *x;
    if (tp->extra == NULL || tp->extra_len == 0)
        return NULL;
    x = json_loadb(tp->extra, tp->extra_len, 0, NULL);
    if (!json_is_object(x)) {
        json_decref(x);
        return NULL;
    }
    return x;
}

/*
 * TOUCHPOINT of API.md: every field of the record. A touchpoint that still carries a visitor id
 * was recorded before sign-in and joined to the customer at sign-in (gw_recorder_join() keeps the
 * visitor id; a signed-in request's touchpoint never has one): it is marked anonymous.
 */
static json_t *tp_json(const store_tp_t *tp)
{
    /* the record's texts in API.md's order (keys are constants: set without jansson's key check) */
    const struct {
        const char *key, *value;
    } texts[] = {{"id", tp->id},
                 {"channel", tp->channel},
                 {"touchpoint", tp->touchpoint},
                 {"stage", tp->stage},
                 {"route", tp->route},
                 {"method", tp->method},
                 {"device", tp->device},
                 {"provider", tp->provider},
                 {"source", tp->source},
                 {"session", tp->session},
                 {"visit_id", tp->visit_id},
                 {"visitor_id", tp->visitor_id},
                 {"referrer_host", tp->referrer_host},
                 {"utm_source", tp->utm_source},
                 {"utm_medium", tp->utm_medium},
                 {"utm_campaign", tp->utm_campaign},
                 {"utm_term", tp->utm_term},
                 {"utm_content", tp->utm_content}};
    char occ[25], rec[25];
    json_t *o = json_object(), *x = tp_extra(tp), *status, *attrs;
    int failed = o == NULL;

    console_iso_time(tp->occurred_at_ms, occ);
    console_iso_time(tp->received_at_ms, rec);
    if (tp->status > 0)
        status = json_integer(tp->status);
    else if (json_is_string(json_object_get(x, "status")))
        status = json_copy(json_object_get(x, "status"));
    else
        status = json_null();
    attrs = json_object_get(x, "attributes");
    attrs = json_is_object(attrs) ? json_deep_copy(attrs) : json_null();
    json_decref(x);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); ++i)
        failed |= json_object_set_new_nocheck(o, texts[i].key, str_or_null(texts[i].value));
    failed |= json_object_set_new_nocheck(o, "occurred_at", json_string_nocheck(occ));
    failed |= json_object_set_new_nocheck(o, "received_at", json_string_nocheck(rec));
    failed |= json_object_set_new_nocheck(o, "status", status);
    failed |= json_object_set_new_nocheck(o, "visit_start", json_boolean(tp->visit_start != 0));
    /* 0: the visit's first request had no query string to tell; 1: it had none; 2: it had one */
    failed |=
        json_object_set_new_nocheck(o, "click_id", tp->click_id == 0 ? json_null() : json_boolean(tp->click_id == 2));
    failed |= json_object_set_new_nocheck(o, "attributes", attrs);
    if (tp->visitor_id != NULL && tp->visitor_id[0] != '\0')
        failed |= json_object_set_new_nocheck(o, "anonymous", json_true());
    if (failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------------------------ GET customers/ID/journey */

/* the cursor: where a page ended, as 16 hex digits of occurred_at_ms and 16 of seq (opaque to clients) */
static void cursor_make(uint64_t at, uint64_t seq, char out[CURSOR_LEN + 1])
{
    snprintf(out, CURSOR_LEN + 1, "%016" PRIx64 "%016" PRIx64, at, seq);
}

static int cursor_parse(const char *s, size_t len, uint64_t *at, uint64_t *seq)
{
    uint64_t v[2] = {0, 0};
    if (len != CURSOR_LEN)
        return -1;
    for (size_t i = 0; i < CURSOR_LEN; ++i) {
        int d;
        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if (s[i] >= 'a' && s[i] <= 'f')
            d = s[i] - 'a' + 10;
        else
            return -1;
        v[i / 16] = v[i / 16] << 4 | (uint64_t)d;
    }
    *at = v[0];
    *seq = v[1];
    return 0;
}

struct page {
    uint64_t after_at, after_seq;
    int has_after;
    size_t limit, n;
    json_t *list;
    uint64_t last_at, last_seq;
    int more, failed;
};

static int page_cb(const store_tp_t *tp, void *arg)
{
    struct page *p = arg;
    json_t *o;

    /* store_journey() began at the cursor's millisecond: what the last page showed is skipped */
    if (p->has_after &&
        (tp->occurred_at_ms < p->after_at || (tp->occurred_at_ms == p->after_at && tp->seq <= p->after_seq)))
        return 0;
    if (p->n == p->limit) {
        p->more = 1; /* one more exists: the page gets a next cursor */
        return 1;
    }
    if ((o = tp_json(tp)) == NULL || json_array_append_new(p->list, o) != 0) {
        p->failed = 1;
        return 1;
    }
    ++p->n;
    p->last_at = tp->occurred_at_ms;
    p->last_seq = tp->seq;
    return 0;
}

void console_api_journey(const console_call_t *call, console_answer_t *ans)
{
    char after[CURSOR_LEN + 2], next[CURSOR_LEN + 1];
    struct page p;
    json_t *cust = NULL;
    long limit;
    int an;
    gw_status_t s;

    memset(&p, 0, sizeof(p));
    if (call->nsegs != 3) {
        console_error(ans, 404, "not_found", "no such endpoint");
        return;
    }
    if ((an = text_param(call, ans, "after", after, sizeof(after))) == -2)
        return;
    if (an > 0) {
        if (cursor_parse(after, (size_t)an, &p.after_at, &p.after_seq) != 0) {
            bad_param(ans, "after", "must be the \"next\" cursor of an earlier page");
            return;
        }
        p.has_after = 1;
    }
    if (int_param(call, ans, "limit", 1, JOURNEY_LIMIT_MAX, JOURNEY_LIMIT_DEFAULT, &limit) != 0)
        return;
    if (path_customer(call, ans, &cust) != 0)
        return;
    json_decref(cust);
    if (console_audit(call, "console_view_journey", "success", call->segs[1], an > 0 ? "page" : "first page") !=
        GW_OK) {
        console_error(ans, 503, "unavailable", "the view could not be recorded; retry");
        return;
    }
    p.limit = (size_t)limit;
    if ((p.list = json_array()) == NULL) {
        console_error(ans, 503, "unavailable", "out of memory; retry");
        return;
    }
    /* from the cursor's millisecond on: the store skips every chunk that ends before it */
    s = store_journey(call->ctx->store, call->segs[1], p.has_after ? p.after_at : 0, page_cb, &p);
    if (s != GW_OK || p.failed) {
        json_decref(p.list);
        console_error(ans, 503, "unavailable", "the store failed; retry");
        return;
    }
    cursor_make(p.last_at, p.last_seq, next);
    ans->json = json_pack("{s:o, s:o}", "touchpoints", p.list, "next", p.more ? json_string(next) : json_null());
}

/* ------------------------------------------------------------------ CSV */

struct csv {
    char *b;
    size_t len, cap;
    int failed;
};

static void csv_raw(struct csv *c, const char *s, size_t n)
{
    if (c->failed)
        return;
    if (c->len + n > c->cap) {
        size_t cap = c->cap != 0 ? c->cap : CHUNK_BYTES + 4096;
        char *b;
        while (cap < c->len + n)
            cap *= 2;
        if ((b = realloc(c->b, cap)) == NULL) {
            c->failed = 1;
            return;
        }
        c->b = b;
        c->cap = cap;
    }
    memcpy(c->b + c->len, s, n);
    c->len += n;
}

static void csv_put(void *ctx, const char *p, size_t n)
{
    csv_raw(ctx, p, n);
}

/* one cell (NULL or "": empty), with its separator before it unless first; quoted and guarded by gw_csv_cell() */
static void csv_cell(struct csv *c, const char *s, int first)
{
    if (!first)
        csv_raw(c, ",", 1);
    gw_csv_cell(s, 0, csv_put, c);
}

static void csv_time(struct csv *c, uint64_t ms)
{
    char t[25];
    if (ms == 0) {
        csv_cell(c, NULL, 0);
        return;
    }
    console_iso_time(ms, t);
    csv_cell(c, t, 0);
}

static void csv_end_row(struct csv *c)
{
    csv_raw(c, "\r\n", 2);
}

/* writes out the buffer in chunks of CHUNK_BYTES; -1 when the client went away */
static int csv_flush_chunks(console_answer_t *ans, struct csv *c)
{
    for (size_t off = 0; off < c->len; off += CHUNK_BYTES) {
        size_t n = c->len - off < CHUNK_BYTES ? c->len - off : CHUNK_BYTES;
        if (console_stream_write(ans, c->b + off, n) != 0) {
            c->len = 0;
            return -1;
        }
    }
    c->len = 0;
    return 0;
}

static const char *const tp_header[] = {
    "id",           "customer_id", "occurred_at", "received_at", "channel",       "touchpoint", "stage",
    "route",        "method",      "status",      "device",      "provider",      "source",     "session",
    "visit_id",     "visit_start", "visitor_id",  "anonymous",   "referrer_host", "utm_source", "utm_medium",
    "utm_campaign", "utm_term",    "utm_content", "click_id",    "attributes",    NULL};

/*
 * An export's start: its audit record first (nothing is shown unless it is on record), then the
 * stream. Returns 0, or -1 with the 503 answer set.
 */
static int export_begin(const console_call_t *call, console_answer_t *ans, const char *customer, const char *detail,
                        const char *filename)
{
    if (console_audit(call, "console_export", "success", customer, detail) != GW_OK) {
        console_error(ans, 503, "unavailable", "the export could not be recorded; retry");
        return -1;
    }
    if (console_stream_begin(call, ans, "text/csv; charset=utf-8", filename) != 0) {
        console_error(ans, 503, "unavailable", "the export could not start; retry");
        return -1;
    }
    return 0;
}

static void csv_header(struct csv *c, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; ++i)
        csv_cell(c, names[i], i == 0);
    csv_end_row(c);
}

static void csv_tp_row(struct csv *c, const store_tp_t *tp)
{
    char num[24];
    json_t *x = tp_extra(tp);
    const char *status_text = json_string_value(json_object_get(x, "status"));
    json_t *attrs = json_object_get(x, "attributes");
    char *attrs_text = json_is_object(attrs) ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    csv_cell(c, tp->id, 1);
    csv_cell(c, tp->customer_id, 0);
    csv_time(c, tp->occurred_at_ms);
    csv_time(c, tp->received_at_ms);
    csv_cell(c, tp->channel, 0);
    csv_cell(c, tp->touchpoint, 0);
    csv_cell(c, tp->stage, 0);
    csv_cell(c, tp->route, 0);
    csv_cell(c, tp->method, 0);
    if (tp->status > 0) {
        snprintf(num, sizeof(num), "%d", tp->status);
        csv_cell(c, num, 0);
    } else {
        csv_cell(c, status_text, 0);
    }
    csv_cell(c, tp->device, 0);
    csv_cell(c, tp->provider, 0);
    csv_cell(c, tp->source, 0);
    csv_cell(c, tp->session, 0);
    csv_cell(c, tp->visit_id, 0);
    csv_cell(c, tp->visit_start ? "true" : "false", 0);
    csv_cell(c, tp->visitor_id, 0);
    csv_cell(c, tp->visitor_id != NULL && tp->visitor_id[0] != '\0' ? "true" : "false", 0);
    csv_cell(c, tp->referrer_host, 0);
    csv_cell(c, tp->utm_source, 0);
    csv_cell(c, tp->utm_medium, 0);
    csv_cell(c, tp->utm_campaign, 0);
    csv_cell(c, tp->utm_term, 0);
    csv_cell(c, tp->utm_content, 0);
    csv_cell(c, tp->click_id == 0 ? NULL : tp->click_id == 2 ? "true" : "false", 0);
    csv_cell(c, attrs_text, 0);
    csv_end_row(c);
    free(attrs_text);
    json_decref(x);
}

/* ------------------------------------------------------------------ GET export/touchpoints.csv */

struct tp_export {
    uint64_t from, to;
    const char *channel, *stage;
    struct csv csv;
    char cid[STORE_ID_LEN + 1];  /* the customer whose touchpoints are being read */
    char done[STORE_ID_LEN + 1]; /* the last customer written in full ("" none) */
    int stopped;                 /* the read stopped at a customer boundary with a part to write */
};

static int tp_export_cb(const store_tp_t *tp, void *arg)
{
    struct tp_export *x = arg;

    if (strcmp(tp->customer_id, x->cid) != 0) {
        /* a new customer: the one before is complete */
        if (x->cid[0] != '\0')
            memcpy(x->done, x->cid, sizeof(x->done));
        if (x->csv.len >= CHUNK_BYTES || x->csv.failed) {
            x->stopped = 1; /* write this part with no transaction open; go on after x->done */
            return 1;
        }
        snprintf(x->cid, sizeof(x->cid), "%s", tp->customer_id);
    }
    if (tp->occurred_at_ms >= x->to ||
        (x->channel != NULL && (tp->channel == NULL || strcmp(tp->channel, x->channel) != 0)) ||
        (x->stage != NULL && (tp->stage == NULL || strcmp(tp->stage, x->stage) != 0)))
        return 0;
    csv_tp_row(&x->csv, tp);
    return 0;
}

/* one customer's touchpoints (customer filter): a journey is bounded, so it is read in one go */
static int tp_one_cb(const store_tp_t *tp, void *arg)
{
    struct tp_export *x = arg;
    if (tp->occurred_at_ms >= x->to)
        return 1; /* in time order: nothing later is in the period */
    if ((x->channel != NULL && (tp->channel == NULL || strcmp(tp->channel, x->channel) != 0)) ||
        (x->stage != NULL && (tp->stage == NULL || strcmp(tp->stage, x->stage) != 0)))
        return 0;
    csv_tp_row(&x->csv, tp);
    return x->csv.failed;
}

static void export_touchpoints(const console_call_t *call, console_answer_t *ans)
{
    char channel[CHANNEL_MAX + 1], stage[16], customer[STORE_ID_LEN + 2], detail[256], f[25], t[25];
    struct tp_export x;
    int cn, sn, un;
    gw_status_t s;

    memset(&x, 0, sizeof(x));
    if ((cn = text_param(call, ans, "channel", channel, sizeof(channel))) == -2 ||
        (sn = text_param(call, ans, "stage", stage, sizeof(stage))) == -2 ||
        (un = text_param(call, ans, "customer", customer, sizeof(customer))) == -2)
        return;
    if (sn > 0 && (x.stage = known_stage(stage)) == NULL) {
        bad_param(ans, "stage", "must be one of need, research, select, convert, own, loyalty, advocacy");
        return;
    }
    if (un > 0 && !customer_id_ok(customer)) {
        bad_param(ans, "customer", "must be a customer id: c_ and 24 characters of a-z and 2-7");
        return;
    }
    if (console_period(call, ans, &x.from, &x.to) != 0)
        return;
    x.channel = cn > 0 ? channel : NULL;
    if (un > 0) {
        json_t *cust = NULL;
        if ((s = store_customer_get(call->ctx->store, customer, &cust)) == GW_ENOTFOUND) {
            console_error(ans, 404, "not_found", "no such customer");
            return;
        }
        json_decref(cust);
        if (s != GW_OK) {
            console_error(ans, 503, "unavailable", "the store failed; retry");
            return;
        }
    }
    console_iso_time(x.from, f);
    console_iso_time(x.to - 1, t);
    snprintf(detail, sizeof(detail), "touchpoints.csv from=%.10s to=%.10s channel=%s stage=%s customer=%s", f, t,
             x.channel != NULL ? x.channel : "*", x.stage != NULL ? x.stage : "*", un > 0 ? customer : "*");
    if (export_begin(call, ans, un > 0 ? customer : NULL, detail, "touchpoints.csv") != 0)
        return;
    csv_header(&x.csv, tp_header);
    if (un > 0) {
        if (store_journey(call->ctx->store, customer, x.from, tp_one_cb, &x) == GW_OK && !x.csv.failed)
            csv_flush_chunks(ans, &x.csv);
        free(x.csv.b);
        return;
    }
    /*
     * Part by part: each read stops at the first customer boundary past CHUNK_BYTES of CSV and the
     * part is written with no read transaction open (the client's pace must not hold the store).
     */
    for (;;) {
        x.stopped = 0;
        x.cid[0] = '\0';
        s = store_touchpoints_foreach_after(call->ctx->store, x.from, x.done[0] != '\0' ? x.done : NULL, tp_export_cb,
                                            &x);
        if (s != GW_OK || x.csv.failed)
            break; /* the stream has begun: it ends short, which the client sees as a cut download */
        if (!x.stopped && x.cid[0] != '\0')
            memcpy(x.done, x.cid, sizeof(x.done));
        if (csv_flush_chunks(ans, &x.csv) != 0 || !x.stopped)
            break;
    }
    free(x.csv.b);
}

/* ------------------------------------------------------------------ GET export/customers.csv */

static const char *const customer_header[] = {
    "id",         "name",      "email",   "email_verified", "picture",   "created",
    "first_seen", "last_seen", "stage",   "stages_reached", "providers", "identity_emails",
    "channels",   "devices",   "consent", "attributes",     NULL};

/* the strings of a JSON array (or an object's keys) joined by "; " into a new string ("" when none) */
static char *joined(json_t *v)
{
    struct csv c = {NULL, 0, 0, 0};
    json_t *e;
    const char *k;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, e) if (json_is_string(e))
        {
            if (c.len > 0)
                csv_raw(&c, "; ", 2);
            csv_raw(&c, json_string_value(e), json_string_length(e));
        }
    } else if (json_is_object(v)) {
        json_object_foreach(v, k, e)
        {
            if (c.len > 0)
                csv_raw(&c, "; ", 2);
            csv_raw(&c, k, strlen(k));
        }
    }
    csv_raw(&c, "", 1);
    return c.failed ? NULL : c.b;
}

static char *json_text_or_null(json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

static void csv_customer_row(struct csv *c, json_t *cust)
{
    json_t *summary = customer_summary(cust), *emails = json_array(), *ident, *reached = json_array();
    char *providers, *channels, *devices, *idem, *stages_text, *consent, *attrs;
    size_t i;

    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        json_t *e = json_object_get(ident, "email"), *have;
        size_t j;
        int dup = 0;
        if (!json_is_string(e))
            continue;
        json_array_foreach(emails, j, have) dup |= strcasecmp(json_string_value(have), json_string_value(e)) == 0;
        if (!dup)
            json_array_append(emails, e);
    }
    for (const char *const *p = stages; *p != NULL; ++p)
        if (json_object_get(json_object_get(cust, "stages_reached"), *p) != NULL)
            json_array_append_new(reached, json_string(*p));
    providers = joined(json_object_get(summary, "providers"));
    channels = joined(json_object_get(summary, "channels"));
    devices = joined(json_object_get(cust, "devices"));
    idem = joined(emails);
    stages_text = joined(reached);
    consent = json_text_or_null(json_object_get(cust, "consent"));
    attrs = json_text_or_null(json_object_get(cust, "attributes"));

    csv_cell(c, json_string_value(json_object_get(cust, "id")), 1);
    csv_cell(c, json_string_value(profile_get(cust, "name")), 0);
    csv_cell(c, json_string_value(profile_get(cust, "email")), 0);
    csv_cell(c, json_is_true(profile_get(cust, "email_verified")) ? "true" : "false", 0);
    csv_cell(c, json_string_value(profile_get(cust, "picture")), 0);
    csv_time(c, (uint64_t)json_integer_value(json_object_get(cust, "created_ms")));
    csv_time(c, (uint64_t)json_integer_value(json_object_get(cust, "first_seen_ms")));
    csv_time(c, (uint64_t)json_integer_value(json_object_get(cust, "last_seen_ms")));
    csv_cell(c, json_string_value(json_object_get(summary, "stage")), 0);
    csv_cell(c, stages_text, 0);
    csv_cell(c, providers, 0);
    csv_cell(c, idem, 0);
    csv_cell(c, channels, 0);
    csv_cell(c, devices, 0);
    csv_cell(c, consent, 0);
    csv_cell(c, attrs, 0);
    csv_end_row(c);
    if (summary == NULL || emails == NULL || reached == NULL || providers == NULL || channels == NULL ||
        devices == NULL || idem == NULL || stages_text == NULL)
        c->failed = 1;
    free(providers);
    free(channels);
    free(devices);
    free(idem);
    free(stages_text);
    free(consent);
    free(attrs);
    json_decref(summary);
    json_decref(emails);
    json_decref(reached);
}

struct cust_export {
    struct csv csv;
    char done[STORE_ID_LEN + 1];
    int stopped;
};

static int cust_export_cb(json_t *cust, void *arg)
{
    struct cust_export *x = arg;
    const char *id = json_string_value(json_object_get(cust, "id"));

    if (x->csv.len >= CHUNK_BYTES || x->csv.failed) {
        x->stopped = 1;
        return 1;
    }
    csv_customer_row(&x->csv, cust);
    if (id != NULL)
        snprintf(x->done, sizeof(x->done), "%s", id);
    return 0;
}

static void export_customers(const console_call_t *call, console_answer_t *ans)
{
    char q[QUERY_MAX + 1], detail[QUERY_MAX + 32];
    struct cust_export x;
    int qn;

    memset(&x, 0, sizeof(x));
    if ((qn = text_param(call, ans, "q", q, sizeof(q))) == -2)
        return;
    snprintf(detail, sizeof(detail), "customers.csv q=%s", qn > 0 ? q : "*");
    if (qn > 0) {
        /* the customers a search finds: a handful, read one by one before anything is written */
        char ids[SEARCH_LIMIT_MAX][STORE_ID_LEN + 1];
        size_t n = 0;
        if (store_customers_find(call->ctx->store, q, ids, SEARCH_LIMIT_MAX, &n) != GW_OK) {
            console_error(ans, 503, "unavailable", "the store failed; retry");
            return;
        }
        if (export_begin(call, ans, n == 1 ? ids[0] : NULL, detail, "customers.csv") != 0)
            return;
        csv_header(&x.csv, customer_header);
        for (size_t i = 0; i < n && !x.csv.failed; ++i) {
            json_t *cust = NULL;
            if (store_customer_get(call->ctx->store, ids[i], &cust) != GW_OK)
                continue;
            csv_customer_row(&x.csv, cust);
            json_decref(cust);
        }
        if (!x.csv.failed)
            csv_flush_chunks(ans, &x.csv);
        free(x.csv.b);
        return;
    }
    if (export_begin(call, ans, NULL, detail, "customers.csv") != 0)
        return;
    csv_header(&x.csv, customer_header);
    for (;;) {
        gw_status_t s;
        x.stopped = 0;
        s = store_customers_foreach_after(call->ctx->store, x.done[0] != '\0' ? x.done : NULL, cust_export_cb, &x);
        if (s != GW_OK || x.csv.failed)
            break;
        if (csv_flush_chunks(ans, &x.csv) != 0 || !x.stopped)
            break;
    }
    free(x.csv.b);
}

/* ------------------------------------------------------------------ GET export/KIND.csv */

void console_api_export(const console_call_t *call, console_answer_t *ans)
{
    if (call->nsegs == 2 && strcmp(call->segs[1], "touchpoints.csv") == 0)
        export_touchpoints(call, ans);
    else if (call->nsegs == 2 && strcmp(call->segs[1], "customers.csv") == 0)
        export_customers(call, ans);
    else
        console_error(ans, 404, "not_found", "no such export (touchpoints.csv, customers.csv)");
}
