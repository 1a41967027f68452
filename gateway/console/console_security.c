/*
 * journeygate — the console's security endpoints (console/API.md, "Security"): the audit trail
 * newest first with filters, the chain's verification state, one sign-in flow, a customer's
 * sessions, identities and events, the staff actions on them (revoke, unlink, erase), the
 * policies and "explain".
 *
 * Runs on worker threads only (console_api.h): every store call here blocks. console.c has
 * checked the staff session, the role and the CSRF token; everything read from the path, the
 * query and the body is checked here. Who owns what: the store owns the records, this file
 * owns one process-wide cache (the chain's verified state, below) and nothing else.
 *
 * Bounds: a walk of the audit trail examines at most SCAN_MAX records per call and says where to
 * go on (next_before), so no request holds a read transaction (and the map's size) for long.
 */
#include "console_api.h"

#include "crypto.h"
#include "ingest.h"
#include "pol.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 500
/* audit records examined per call at most: 100,000 took ~290 ms here, this stays under 200 ms per answer */
#define SCAN_MAX 50000
#define CUSTOMER_EVENTS 100 /* the latest events on a customer's security page */
#define FLOW_STEPS_MAX 1000 /* a flow has a handful of steps; more is not a flow anyone reads */
/* a sign-in flow's steps lie within its pending sign-in's life (10 minutes): an hour is ample */
#define FLOW_SPAN_MS (60ull * 60 * 1000)
/* a full walk of the chain at least this often, whatever was verified before (see chain_cache) */
#define CHAIN_FULL_EVERY_MS (10ull * 60 * 1000)
#define POLICY_FILE_MAX (1u << 20)
#define SESSION_ID_LEN 16 /* hex characters of the token hash that name a session */
#define PARAM_MAX 256

/* ------------------------------------------------------------------ checks of what the client sent */

/* "c_" and 24 characters of the store's base32 alphabet (store.c new_customer_id) */
static int customer_id_ok(const char *s)
{
    return s != NULL && gw_customer_id_ok(s, strlen(s));
}

/* 1..max bytes, each a lower-case letter, a digit or one of extra */
static int word_ok(const char *s, size_t max, const char *extra)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || strchr(extra, s[i]) != NULL))
            return 0;
    return 1;
}

/* provider names as the configuration allows them: 1-32 letters, digits, '-', '_' or '.' */
static int provider_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

/* a strictly decimal number in [1, UINT64_MAX) */
static int u64_parse(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 20)
        return 0;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0)
        return 0;
    *out = v;
    return 1;
}

/*
 * A query parameter through console_query(): 1 present (in out), 0 absent, -1 after a 400
 * naming it (too long, not UTF-8, a control character, or refused by ok()).
 */
static int param(const console_call_t *call, console_answer_t *ans, const char *name, char *out, size_t cap,
                 int (*ok)(const char *), const char *what)
{
    char msg[160];
    int n = console_query(call, name, out, cap);

    if (n == -1)
        return 0;
    if (n >= 0 && (ok == NULL || ok(out)))
        return 1;
    snprintf(msg, sizeof(msg), "%s: %s", name, n == -2 ? "too long, or not printable text" : what);
    console_error(ans, 400, "invalid_parameter", msg);
    return -1;
}

static int event_ok(const char *s)
{
    return word_ok(s, 64, "_");
}

/* the outcomes the gateway writes (auth.c, auditq.c, console_audit()): a typo answers 400, not nothing */
static int outcome_ok(const char *s)
{
    static const char *const known[] = {"success", "failure", "refused", "skipped", "dropped", NULL};
    for (size_t i = 0; known[i] != NULL; ++i)
        if (strcmp(s, known[i]) == 0)
            return 1;
    return 0;
}

/* an address as the audit trail records it: IPv4 or IPv6 text */
static int client_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 45)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F') ||
              s[i] == '.' || s[i] == ':'))
            return 0;
    return 1;
}

/* flow ids are base64url tokens (auth.c) */
static int flow_id_ok(const char *s)
{
    return word_ok(s, 64, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_");
}

static void store_failed(console_answer_t *ans)
{
    console_error(ans, 503, "unavailable", "the store failed; try again");
}

/* ------------------------------------------------------------------ customers' names, per call */

/* who the trail's customer ids are, each looked up once per call (a page names the same few often) */
struct names {
    store_t *st;
    json_t *cache; /* customer id -> {"name","email"}, or null when there is no such customer (erased) */
    int failed;    /* the store failed: the caller answers 503 */
};

static json_t *str_or_null(json_t *v)
{
    return json_is_string(v) ? json_string(json_string_value(v)) : json_null();
}

/* the name and email a person is shown by: the profile's, else the first identity's that has one */
static void customer_label(json_t *cust, json_t **name, json_t **email)
{
    json_t *profile = json_object_get(cust, "profile"), *ident;
    const char *n = json_string_value(json_object_get(profile, "name"));
    const char *e = json_string_value(json_object_get(profile, "email"));
    size_t i;

    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        if (n == NULL)
            n = json_string_value(json_object_get(ident, "name"));
        if (e == NULL)
            e = json_string_value(json_object_get(ident, "email"));
    }
    *name = n != NULL ? json_string(n) : json_null();
    *email = e != NULL ? json_string(e) : json_null();
}

static json_t *names_of(struct names *nm, const char *cid)
{
    json_t *hit, *cust = NULL, *name, *email;
    gw_status_t s;

    if (cid == NULL || !customer_id_ok(cid))
        return NULL;
    if ((hit = json_object_get(nm->cache, cid)) != NULL)
        return json_is_object(hit) ? hit : NULL;
    s = store_customer_get(nm->st, cid, &cust);
    if (s != GW_OK) {
        if (s != GW_ENOTFOUND)
            nm->failed = 1;
        json_object_set_new(nm->cache, cid, json_null());
        return NULL;
    }
    customer_label(cust, &name, &email);
    json_decref(cust);
    hit = json_pack("{s:o, s:o}", "name", name, "email", email);
    json_object_set_new(nm->cache, cid, hit);
    return hit;
}

/* ------------------------------------------------------------------ audit records as the API shows them */

static json_t *record_json(json_t *r, uint64_t seq, struct names *nm)
{
    static const char *const before[] = {"event", "outcome", "reason", "provider", "customer_id"};
    static const char *const after[] = {"client", "user_agent", "flow_id", "request_id", "actor", "route", "detail"};
    json_t *o = json_object(), *count = json_object_get(r, "count"), *who;
    json_int_t ts = json_integer_value(json_object_get(r, "ts_ms"));
    char t[25];

    if (o == NULL)
        return NULL;
    console_iso_time(ts > 0 ? (uint64_t)ts : 0, t);
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "time", json_string(t));
    for (size_t i = 0; i < sizeof(before) / sizeof(before[0]); ++i)
        json_object_set_new(o, before[i], str_or_null(json_object_get(r, before[i])));
    who = names_of(nm, json_string_value(json_object_get(r, "customer_id")));
    json_object_set_new(o, "customer_name", who != NULL ? json_copy(json_object_get(who, "name")) : json_null());
    json_object_set_new(o, "customer_email", who != NULL ? json_copy(json_object_get(who, "email")) : json_null());
    for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); ++i)
        json_object_set_new(o, after[i], str_or_null(json_object_get(r, after[i])));
    json_object_set_new(o, "count", json_is_integer(count) ? json_integer(json_integer_value(count)) : json_null());
    return o;
}

/* ------------------------------------------------------------------ one bounded walk of the trail, newest first */

enum scan_end { SCAN_DONE = 0, SCAN_FULL, SCAN_BOUND, SCAN_OLDER };

struct scan {
    const char *event, *provider, *outcome, *customer, *client; /* exact matches; NULL: any */
    int period;
    uint64_t from_ms, to_ms; /* [from, to) when period */
    uint64_t stop_below_ms;  /* no match can be older than this: stop there (0: never) */
    size_t limit, examined;
    uint64_t last_seq; /* the last record examined */
    enum scan_end end;
    json_t *hits;   /* the matching records, newest first (references) */
    uint64_t *seqs; /* their sequence numbers (limit of them) */
};

static int field_is(json_t *r, const char *key, const char *want)
{
    const char *v;
    if (want == NULL)
        return 1;
    v = json_string_value(json_object_get(r, key));
    return v != NULL && strcmp(v, want) == 0;
}

static int scan_cb(uint64_t seq, json_t *r, void *arg)
{
    struct scan *s = arg;
    json_int_t ts = json_integer_value(json_object_get(r, "ts_ms"));

    ++s->examined;
    s->last_seq = seq;
    if (r != NULL && s->stop_below_ms > 0 && ts >= 0 && (uint64_t)ts < s->stop_below_ms) {
        s->end = SCAN_OLDER;
        return 1;
    }
    if (r != NULL && (!s->period || (ts >= 0 && (uint64_t)ts >= s->from_ms && (uint64_t)ts < s->to_ms)) &&
        field_is(r, "event", s->event) && field_is(r, "provider", s->provider) && field_is(r, "outcome", s->outcome) &&
        field_is(r, "customer_id", s->customer) && field_is(r, "client", s->client)) {
        s->seqs[json_array_size(s->hits)] = seq;
        json_array_append(s->hits, r);
        if (json_array_size(s->hits) == s->limit) {
            s->end = SCAN_FULL;
            return 1;
        }
    }
    if (s->examined >= SCAN_MAX) {
        s->end = SCAN_BOUND;
        return 1;
    }
    return 0;
}

/*
 * Walks the trail from before (0: the newest) and fills s->hits. Returns the store's status;
 * *next_before is where the next page starts (0: nothing older can match).
 */
static gw_status_t scan_run(store_t *st, struct scan *s, uint64_t before, uint64_t *next_before)
{
    gw_status_t status;

    s->hits = json_array();
    s->seqs = calloc(s->limit > 0 ? s->limit : 1, sizeof(*s->seqs));
    if (s->hits == NULL || s->seqs == NULL)
        return GW_ENOMEM;
    status = store_audit_foreach_reverse(st, before, scan_cb, s);
    *next_before = 0;
    if (s->end == SCAN_FULL && s->seqs[s->limit - 1] > 1)
        *next_before = s->seqs[s->limit - 1];
    else if (s->end == SCAN_BOUND && s->last_seq > 1)
        *next_before = s->last_seq;
    return status;
}

static void scan_clear(struct scan *s)
{
    json_decref(s->hits);
    free(s->seqs);
}

/* the records of a finished scan as the API shows them; NULL when out of memory or the store failed (nm) */
static json_t *scan_records(struct scan *s, struct names *nm)
{
    json_t *out = json_array(), *r;
    size_t i;

    if (out == NULL)
        return NULL;
    json_array_foreach(s->hits, i, r)
    {
        if (json_array_append_new(out, record_json(r, s->seqs[i], nm)) != 0 || nm->failed) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* the aggregation interval of refusal records (auth.c): they are written up to that long after they happened */
static uint64_t refusal_slack_ms(const console_call_t *call)
{
    json_t *iv = json_object_get(json_object_get(call->ctx->cfg->doc, "audit"), "refusal_interval_s");
    uint64_t s = json_is_integer(iv) && json_integer_value(iv) > 0 ? (uint64_t)json_integer_value(iv) : 60;
    return (s + 60) * 1000;
}

/* ------------------------------------------------------------------ GET audit */

void console_api_audit(const console_call_t *call, console_answer_t *ans)
{
    char event[PARAM_MAX], provider[PARAM_MAX], outcome[PARAM_MAX], customer[PARAM_MAX], client[PARAM_MAX];
    char before_s[PARAM_MAX], limit_s[PARAM_MAX], tmp[PARAM_MAX];
    struct scan s;
    struct names nm = {call->ctx->store, json_object(), 0};
    uint64_t before = 0, limit = AUDIT_LIMIT_DEFAULT, next = 0;
    json_t *records;
    int r;

    memset(&s, 0, sizeof(s));
    if ((r = param(call, ans, "event", event, sizeof(event), event_ok, "not an event name")) < 0)
        goto Exit;
    s.event = r ? event : NULL;
    if ((r = param(call, ans, "provider", provider, sizeof(provider), provider_ok, "not a provider name")) < 0)
        goto Exit;
    s.provider = r ? provider : NULL;
    if ((r = param(call, ans, "outcome", outcome, sizeof(outcome), outcome_ok,
                   "one of success, failure, refused, skipped, dropped")) < 0)
        goto Exit;
    s.outcome = r ? outcome : NULL;
    if ((r = param(call, ans, "customer", customer, sizeof(customer), customer_id_ok, "not a customer id")) < 0)
        goto Exit;
    s.customer = r ? customer : NULL;
    if ((r = param(call, ans, "client", client, sizeof(client), client_ok, "not an IP address")) < 0)
        goto Exit;
    s.client = r ? client : NULL;
    if ((r = param(call, ans, "before", before_s, sizeof(before_s), NULL, NULL)) < 0)
        goto Exit;
    if (r && !u64_parse(before_s, &before)) {
        console_error(ans, 400, "invalid_parameter", "before: a sequence number (1 or more)");
        goto Exit;
    }
    if ((r = param(call, ans, "limit", limit_s, sizeof(limit_s), NULL, NULL)) < 0)
        goto Exit;
    if (r && (!u64_parse(limit_s, &limit) || limit > AUDIT_LIMIT_MAX)) {
        console_error(ans, 400, "invalid_parameter", "limit: 1 to 500");
        goto Exit;
    }
    /* a period only when asked for: the trail's default view is everything, newest first */
    if (console_query(call, "from", tmp, sizeof(tmp)) != -1 || console_query(call, "to", tmp, sizeof(tmp)) != -1) {
        uint64_t slack = refusal_slack_ms(call);
        if (console_period(call, ans, &s.from_ms, &s.to_ms) != 0)
            goto Exit;
        s.period = 1;
        /* records are appended in time order, except refusals held back by their aggregation interval */
        s.stop_below_ms = s.from_ms > slack ? s.from_ms - slack : 0;
    }
    s.limit = (size_t)limit;
    if (nm.cache == NULL || scan_run(call->ctx->store, &s, before, &next) != GW_OK) {
        store_failed(ans);
        goto Exit;
    }
    if ((records = scan_records(&s, &nm)) == NULL) {
        store_failed(ans);
        goto Exit;
    }
    ans->json = json_pack("{s:o, s:o}", "records", records, "next_before",
                          next > 0 ? json_integer((json_int_t)next) : json_null());
Exit:
    scan_clear(&s);
    json_decref(nm.cache);
}

/* ------------------------------------------------------------------ GET audit/chain */

/*
 * The chain's verified state, by store: the last record a walk verified and its hash, so the next
 * call verifies only what was appended since (store_audit_verify_from()), plus when the chain was
 * last walked from the start. Resuming is sound for what it claims: every record after the mark is
 * checked, the mark itself must still hash to what it did (a rewritten tail is caught), and the signed
 * head must match. It cannot see an edit to a record BEFORE the mark made after that record was
 * verified: a full walk at least every CHAIN_FULL_EVERY_MS (and on ?full=1) catches those, and the
 * answer says which kind of check it gives and when the last full walk was. A broken chain drops the
 * mark: every call walks from the start until the chain verifies again.
 */
static struct {
    pthread_mutex_t lock;
    const store_t *st;
    uint64_t seq; /* 0: nothing verified yet */
    char hash[65];
    uint64_t full_at_ms;
    uint64_t breaks; /* broken answers so far: a walk that began before one may not set a mark after it */
} chain_cache = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, "", 0, 0};

void console_api_audit_chain(const console_call_t *call, console_answer_t *ans)
{
    store_t *st = call->ctx->store;
    char full_s[PARAM_MAX], from_hash[65], last_hash[65], head_hash[65], mac[65], t[25];
    uint64_t from = 0, full_at = 0, count = 0, first_bad = 0, head_seq = 0, breaks;
    const char *why = NULL;
    gw_status_t vs, hs;
    int r, full;

    if ((r = param(call, ans, "full", full_s, sizeof(full_s), NULL, NULL)) < 0)
        return;
    if (r && strcmp(full_s, "0") != 0 && strcmp(full_s, "1") != 0) {
        console_error(ans, 400, "invalid_parameter", "full: 0 or 1");
        return;
    }
    full = r && full_s[0] == '1';
    pthread_mutex_lock(&chain_cache.lock);
    breaks = chain_cache.breaks;
    if (!full && chain_cache.st == st && chain_cache.seq > 0 && call->now_ms >= chain_cache.full_at_ms &&
        call->now_ms - chain_cache.full_at_ms < CHAIN_FULL_EVERY_MS) {
        from = chain_cache.seq;
        memcpy(from_hash, chain_cache.hash, sizeof(from_hash));
        full_at = chain_cache.full_at_ms;
    }
    pthread_mutex_unlock(&chain_cache.lock);
    /* the walk runs outside the lock: two at once are both correct, and neither holds up the other */
    vs = store_audit_verify_from(st, from, from > 0 ? from_hash : NULL, &count, &first_bad, &why, last_hash);
    if (vs != GW_OK && vs != GW_EINVAL) {
        store_failed(ans);
        return;
    }
    if (from == 0)
        full_at = call->now_ms;
    pthread_mutex_lock(&chain_cache.lock);
    if (vs == GW_OK && count > 0 && breaks == chain_cache.breaks) {
        chain_cache.st = st;
        chain_cache.seq = count;
        memcpy(chain_cache.hash, last_hash, sizeof(chain_cache.hash));
        chain_cache.full_at_ms = full_at;
    } else if (vs != GW_OK) {
        chain_cache.st = st;
        chain_cache.seq = 0;
        ++chain_cache.breaks;
    }
    pthread_mutex_unlock(&chain_cache.lock);
    /* the head as it is now: records appended since the walk are past verified_up_to, and say so */
    hs = store_audit_head(st, &head_seq, head_hash, mac);
    if (hs != GW_OK && hs != GW_ENOTFOUND) {
        store_failed(ans);
        return;
    }
    console_iso_time(full_at, t);
    ans->json = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:s, s:s}", "state", vs == GW_OK ? "verified" : "broken",
                          "count", (json_int_t)count, "verified_up_to",
                          (json_int_t)(vs == GW_OK     ? count
                                       : first_bad > 0 ? first_bad - 1
                                                       : count),
                          "head_seq", (json_int_t)(hs == GW_OK ? head_seq : 0), "signed_head",
                          hs == GW_OK && mac[0] != '\0' ? json_string(mac) : json_null(), "first_broken",
                          vs == GW_OK ? json_null() : json_integer((json_int_t)first_bad), "why",
                          why != NULL ? json_string(why) : json_null(), "check", from > 0 ? "incremental" : "full",
                          "full_check_at", t);
}

/* ------------------------------------------------------------------ GET audit/flow/FLOW_ID */

struct flow_scan {
    const char *flow_id;
    json_t *steps; /* newest first, as found */
    uint64_t *seqs;
    size_t examined;
    uint64_t oldest_ms; /* of the steps found so far */
    uint64_t slack_ms;
    int complete; /* the walk reached a point no step of the flow can be before */
    int cut;      /* a bound stopped the walk first (records examined, or steps) */
};

static int flow_cb(uint64_t seq, json_t *r, void *arg)
{
    struct flow_scan *f = arg;
    json_int_t ts = json_integer_value(json_object_get(r, "ts_ms"));

    ++f->examined;
    if (r != NULL && json_array_size(f->steps) > 0 && ts >= 0 &&
        (uint64_t)ts + FLOW_SPAN_MS + f->slack_ms < f->oldest_ms) {
        f->complete = 1;
        return 1;
    }
    if (r != NULL && field_is(r, "flow_id", f->flow_id)) {
        f->seqs[json_array_size(f->steps)] = seq;
        json_array_append(f->steps, r);
        if (ts >= 0 && (f->oldest_ms == 0 || (uint64_t)ts < f->oldest_ms))
            f->oldest_ms = (uint64_t)ts;
        if (json_array_size(f->steps) == FLOW_STEPS_MAX)
            return f->cut = 1;
    }
    return f->cut = f->examined >= SCAN_MAX;
}

void console_api_audit_flow(const console_call_t *call, console_answer_t *ans)
{
    struct flow_scan f;
    struct names nm = {call->ctx->store, json_object(), 0};
    json_t *steps = NULL, *who = NULL;
    const char *cid = NULL;
    uint64_t start_ms = 0;
    size_t n;

    memset(&f, 0, sizeof(f));
    if (call->nsegs != 3 || !flow_id_ok(call->segs[2])) {
        console_error(ans, 400, "invalid_parameter", "flow: a flow id (letters, digits, '-', '_'; at most 64)");
        goto Exit;
    }
    f.flow_id = call->segs[2];
    f.slack_ms = refusal_slack_ms(call);
    f.steps = json_array();
    f.seqs = calloc(FLOW_STEPS_MAX, sizeof(*f.seqs));
    steps = json_array();
    if (nm.cache == NULL || f.steps == NULL || f.seqs == NULL || steps == NULL ||
        store_audit_foreach_reverse(call->ctx->store, 0, flow_cb, &f) != GW_OK) {
        store_failed(ans);
        goto Exit;
    }
    if (!f.cut)
        f.complete = 1; /* the whole trail was read, or the flow's start was passed */
    n = json_array_size(f.steps);
    if (n == 0) {
        console_error(ans, 404, "not_found", "no audit record carries this flow id");
        goto Exit;
    }
    /* oldest first; times from the first step */
    for (size_t i = n; i-- > 0;) {
        json_t *r = json_array_get(f.steps, i);
        json_int_t ts = json_integer_value(json_object_get(r, "ts_ms"));
        uint64_t at = ts > 0 ? (uint64_t)ts : 0;
        char t[25];
        if (i == n - 1)
            start_ms = at;
        if (cid == NULL && customer_id_ok(json_string_value(json_object_get(r, "customer_id"))))
            cid = json_string_value(json_object_get(r, "customer_id"));
        console_iso_time(at, t);
        json_array_append_new(steps, json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:I}", "seq", (json_int_t)f.seqs[i],
                                               "time", t, "event", str_or_null(json_object_get(r, "event")), "outcome",
                                               str_or_null(json_object_get(r, "outcome")), "reason",
                                               str_or_null(json_object_get(r, "reason")), "provider",
                                               str_or_null(json_object_get(r, "provider")), "ms_since_start",
                                               (json_int_t)(at > start_ms ? at - start_ms : 0)));
    }
    who = names_of(&nm, cid);
    if (nm.failed) {
        store_failed(ans);
        goto Exit;
    }
    ans->json = json_pack("{s:s, s:O, s:o, s:o, s:b}", "flow_id", f.flow_id, "steps", steps, "customer_id",
                          cid != NULL ? json_string(cid) : json_null(), "customer_name",
                          who != NULL ? json_copy(json_object_get(who, "name")) : json_null(), "complete", f.complete);
Exit:
    json_decref(steps);
    json_decref(f.steps);
    free(f.seqs);
    json_decref(nm.cache);
}

/* ------------------------------------------------------------------ a customer's sessions and identities */

/* the customer named by segs[1]: 0 with *cust (caller decrefs), or -1 after answering 400/404/503 */
static int path_customer(const console_call_t *call, console_answer_t *ans, json_t **cust)
{
    gw_status_t s;

    if (call->nsegs < 2 || !customer_id_ok(call->segs[1])) {
        console_error(ans, 400, "invalid_parameter", "customer: not a customer id");
        return -1;
    }
    if ((s = store_customer_get(call->ctx->store, call->segs[1], cust)) == GW_OK)
        return 0;
    if (s == GW_ENOTFOUND)
        console_error(ans, 404, "not_found", "no such customer");
    else
        store_failed(ans);
    return -1;
}

static json_t *iso_or_null(json_t *ms)
{
    char t[25];
    if (!json_is_integer(ms) || json_integer_value(ms) <= 0)
        return json_null();
    console_iso_time((uint64_t)json_integer_value(ms), t);
    return json_string(t);
}

/*
 * The customer's identities as the profile shows them (console/API.md). linked_by: the stored rule
 * when there is one; else the identity the customer was created with is "first_sign_in"; else the
 * reason of its identity_linked record among the events read (linked), or null when not known.
 */
static json_t *identities_json(json_t *cust, json_t *linked)
{
    json_t *out = json_array(), *ident;
    json_int_t created = json_integer_value(json_object_get(cust, "created_ms"));
    size_t i;

    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        json_t *by = json_object_get(ident, "linked_by"), *o;
        const char *p = json_string_value(json_object_get(ident, "provider"));
        if (!json_is_string(by)) {
            const char *reason = p != NULL ? json_string_value(json_object_get(linked, p)) : NULL;
            by = i == 0 && json_integer_value(json_object_get(ident, "linked_at_ms")) == created
                     ? json_string("first_sign_in")
                 : reason != NULL && strcmp(reason, "explicit") == 0       ? json_string("explicit_link")
                 : reason != NULL && strcmp(reason, "verified_email") == 0 ? json_string("verified_email")
                                                                           : json_null();
        } else {
            json_incref(by);
        }
        o = json_pack(
            "{s:o, s:o, s:o, s:b, s:o, s:o, s:o, s:o}", "provider", str_or_null(json_object_get(ident, "provider")),
            "subject", str_or_null(json_object_get(ident, "subject")), "email",
            str_or_null(json_object_get(ident, "email")), "email_verified",
            json_is_true(json_object_get(ident, "email_verified")), "name", str_or_null(json_object_get(ident, "name")),
            "linked_at", iso_or_null(json_object_get(ident, "linked_at_ms")), "linked_by", by, "last_login",
            iso_or_null(json_object_get(ident, "last_login_ms")));
        json_array_append_new(out, o);
    }
    return out;
}

struct session_list {
    json_t *sessions; /* the API's session objects */
    uint8_t (*hashes)[32];
    size_t n, cap;
    const char *only; /* a session id to find (NULL: every session) */
    uint64_t now_ms;
    int hidden_expired; /* 1: leave out sessions that can no longer be used */
};

static void session_id_of(const uint8_t hash[32], char out[SESSION_ID_LEN + 1])
{
    gw_hex(hash, SESSION_ID_LEN / 2, out);
}

/* when a session stops being usable: its absolute expiry, or its idle timeout, whichever comes first */
static uint64_t session_end_ms(json_t *s)
{
    json_int_t exp = json_integer_value(json_object_get(s, "expires_ms"));
    json_int_t seen = json_integer_value(json_object_get(s, "last_seen_ms"));
    json_int_t idle = json_integer_value(json_object_get(s, "idle_timeout_ms"));
    uint64_t end = exp > 0 ? (uint64_t)exp : 0;
    if (idle > 0 && seen > 0 && (uint64_t)seen + (uint64_t)idle < end)
        end = (uint64_t)seen + (uint64_t)idle;
    return end;
}

static int session_cb(const uint8_t hash[32], json_t *s, void *arg)
{
    struct session_list *l = arg;
    char id[SESSION_ID_LEN + 1];

    session_id_of(hash, id);
    if (l->only != NULL && strcmp(id, l->only) != 0)
        return 0;
    if (l->sessions != NULL) {
        uint64_t end = session_end_ms(s);
        json_t *o;
        char t[25];
        if (l->hidden_expired && end <= l->now_ms)
            return 0;
        console_iso_time(end, t);
        /* never the token, nor anything that leads to it: the id is a prefix of its hash */
        o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "id", id, "kind",
                      str_or_null(json_object_get(s, "kind")), "provider", str_or_null(json_object_get(s, "provider")),
                      "channel", str_or_null(json_object_get(s, "channel")), "device",
                      str_or_null(json_object_get(s, "device")), "created",
                      iso_or_null(json_object_get(s, "created_ms")), "last_seen",
                      iso_or_null(json_object_get(s, "last_seen_ms")), "expires", t);
        if (json_array_append_new(l->sessions, o) != 0)
            return 1;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap == 0 ? 16 : l->cap * 2;
        void *bigger = realloc(l->hashes, ncap * 32);
        if (bigger == NULL)
            return 1;
        l->hashes = bigger;
        l->cap = ncap;
    }
    memcpy(l->hashes[l->n++], hash, 32);
    return 0;
}

/* most recently used first (ISO times sort as text; a session never seen sorts last) */
static int last_seen_desc(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "last_seen"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "last_seen"));
    return strcmp(y != NULL ? y : "", x != NULL ? x : "");
}

static void sort_sessions(json_t *sessions)
{
    size_t n = json_array_size(sessions);
    json_t **v = n > 1 ? calloc(n, sizeof(*v)) : NULL;

    if (v == NULL)
        return; /* one session, or out of memory: the store's order stands */
    for (size_t i = 0; i < n; ++i)
        v[i] = json_incref(json_array_get(sessions, i));
    qsort(v, n, sizeof(*v), last_seen_desc);
    json_array_clear(sessions);
    for (size_t i = 0; i < n; ++i)
        json_array_append_new(sessions, v[i]);
    free(v);
}

/* identity_linked records among the events: provider -> reason (for identities_json()) */
static json_t *link_reasons(json_t *records)
{
    json_t *out = json_object(), *r;
    size_t i;

    json_array_foreach(records, i, r)
    {
        const char *ev = json_string_value(json_object_get(r, "event"));
        const char *p = json_string_value(json_object_get(r, "provider"));
        const char *why = json_string_value(json_object_get(r, "reason"));
        /* newest first: the first seen for a provider is the latest link */
        if (ev != NULL && strcmp(ev, "identity_linked") == 0 && p != NULL && why != NULL &&
            json_object_get(out, p) == NULL)
            json_object_set_new(out, p, json_string(why));
    }
    return out;
}

void console_api_customer_security(const console_call_t *call, console_answer_t *ans)
{
    struct session_list l = {json_array(), NULL, 0, 0, NULL, call->now_ms, 1};
    struct names nm = {call->ctx->store, json_object(), 0};
    struct scan s;
    json_t *cust = NULL, *events = NULL, *name, *email, *reasons;
    uint64_t next = 0;

    memset(&s, 0, sizeof(s));
    if (path_customer(call, ans, &cust) != 0)
        goto Exit;
    /* personal data is shown only once its viewing is on record */
    if (console_audit(call, "console_view_security", "success", call->segs[1], "security page") != GW_OK) {
        store_failed(ans);
        goto Exit;
    }
    s.customer = call->segs[1];
    s.limit = CUSTOMER_EVENTS;
    if (l.sessions == NULL || nm.cache == NULL ||
        store_customer_sessions(call->ctx->store, call->segs[1], session_cb, &l) != GW_OK ||
        scan_run(call->ctx->store, &s, 0, &next) != GW_OK || (events = scan_records(&s, &nm)) == NULL) {
        store_failed(ans);
        goto Exit;
    }
    sort_sessions(l.sessions);
    reasons = link_reasons(s.hits);
    customer_label(cust, &name, &email);
    ans->json =
        json_pack("{s:{s:s, s:o, s:o}, s:O, s:o, s:o, s:o}", "customer", "id", call->segs[1], "name", name, "email",
                  email, "sessions", l.sessions, "identities", identities_json(cust, reasons), "events", events,
                  "events_next_before", next > 0 ? json_integer((json_int_t)next) : json_null());
    json_decref(reasons);
Exit:
    json_decref(l.sessions);
    free(l.hashes);
    scan_clear(&s);
    json_decref(nm.cache);
    json_decref(cust);
}

/* ------------------------------------------------------------------ staff actions: revoke, unlink, erase */

/* the audit event of a staff action on a customer; strings borrowed from call and the caller */
static store_audit_event_t staff_event(const console_call_t *call, const char *event, const char *customer_id,
                                       const char *provider, const char *actor, const char *detail)
{
    store_audit_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.event = event;
    ev.outcome = "success";
    ev.reason = "console";
    ev.provider = provider;
    ev.customer_id = customer_id;
    ev.client = call->client != NULL && call->client[0] != '\0' ? call->client : NULL;
    ev.user_agent = call->user_agent != NULL && call->user_agent[0] != '\0' ? call->user_agent : NULL;
    ev.request_id = call->request_id != NULL && call->request_id[0] != '\0' ? call->request_id : NULL;
    ev.actor = actor;
    ev.detail = detail;
    return ev;
}

/* a body member that must be a string passing ok(): the string, or NULL after a 400 naming it */
static const char *body_string(const console_call_t *call, console_answer_t *ans, const char *name,
                               int (*ok)(const char *), const char *what)
{
    json_t *v = json_object_get(call->body, name);
    const char *s = json_string_value(v);
    char msg[160];

    if (s != NULL && strlen(s) == json_string_length(v) && ok(s))
        return s;
    snprintf(msg, sizeof(msg), "%s: %s", name, what);
    console_error(ans, 400, "invalid_parameter", msg);
    return NULL;
}

static int session_id_ok(const char *s)
{
    if (strlen(s) != SESSION_ID_LEN)
        return 0;
    for (size_t i = 0; i < SESSION_ID_LEN; ++i)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void console_api_revoke_sessions(const console_call_t *call, console_answer_t *ans)
{
    struct session_list l = {NULL, NULL, 0, 0, NULL, call->now_ms, 0};
    json_t *cust = NULL, *all = json_object_get(call->body, "all");
    const char *one = NULL;
    char actor[400], detail[160];
    unsigned revoked = 0;
    int have_one = json_object_get(call->body, "session") != NULL;

    if (path_customer(call, ans, &cust) != 0)
        goto Exit;
    if (have_one == (all != NULL) || (all != NULL && !json_is_true(all))) {
        console_error(ans, 400, "invalid_parameter", "body: {\"session\": ID} or {\"all\": true}");
        goto Exit;
    }
    if (have_one &&
        (one = body_string(call, ans, "session", session_id_ok, "a session id (16 hex characters)")) == NULL)
        goto Exit;
    l.only = one;
    if (store_customer_sessions(call->ctx->store, call->segs[1], session_cb, &l) != GW_OK) {
        store_failed(ans);
        goto Exit;
    }
    if (one != NULL && l.n == 0) {
        console_error(ans, 404, "not_found", "no such session of this customer");
        goto Exit;
    }
    console_staff_actor(call, actor, sizeof(actor));
    snprintf(detail, sizeof(detail), "%s%s; staff session %s", one != NULL ? "session " : "all sessions",
             one != NULL ? one : "", call->staff->session);
    for (size_t i = 0; i < l.n; ++i) {
        /* each session goes with its own record (the store names its customer and provider) */
        store_audit_event_t ev = staff_event(call, "session_revoked", call->segs[1], NULL, actor, detail);
        gw_status_t s = store_session_delete(call->ctx->store, l.hashes[i], &ev);
        if (s == GW_OK)
            ++revoked;
        else if (s != GW_ENOTFOUND) { /* gone meanwhile (a logout): nothing to revoke */
            store_failed(ans);
            goto Exit;
        }
    }
    /* nothing changed, but a staff member acted on the customer: that is on record too */
    if (revoked == 0 && console_audit(call, "console_revoke_sessions", "success", call->segs[1], detail) != GW_OK) {
        store_failed(ans);
        goto Exit;
    }
    ans->json = json_pack("{s:i}", "revoked", (int)revoked);
Exit:
    free(l.hashes);
    json_decref(cust);
}

void console_api_unlink(const console_call_t *call, console_answer_t *ans)
{
    const char *provider;
    char actor[400], detail[160];
    unsigned ended = 0;
    gw_status_t s;

    if (call->nsegs < 2 || !customer_id_ok(call->segs[1])) {
        console_error(ans, 400, "invalid_parameter", "customer: not a customer id");
        return;
    }
    if ((provider = body_string(call, ans, "provider", provider_ok, "a provider name")) == NULL)
        return;
    console_staff_actor(call, actor, sizeof(actor));
    snprintf(detail, sizeof(detail), "unlinked %s; staff session %s", provider, call->staff->session);
    {
        store_audit_event_t ev = staff_event(call, "identity_unlinked", call->segs[1], provider, actor, detail);
        s = store_unlink_counted(call->ctx->store, call->segs[1], provider, call->now_ms, &ev, &ended);
    }
    if (s == GW_OK)
        ans->json = json_pack("{s:s, s:i}", "unlinked", provider, "sessions_ended", (int)ended);
    else if (s == GW_ENOTFOUND)
        console_error(ans, 404, "not_found", "no such customer, or no identity of this provider");
    else if (s == GW_EDENIED)
        console_error(ans, 409, "last_identity", "the customer's only identity cannot be unlinked (erase instead)");
    else
        store_failed(ans);
}

void console_api_erase(const console_call_t *call, console_answer_t *ans)
{
    json_t *confirm;
    char actor[400], detail[160];
    unsigned ended = 0;
    gw_status_t s;

    if (call->nsegs < 2 || !customer_id_ok(call->segs[1])) {
        console_error(ans, 400, "invalid_parameter", "customer: not a customer id");
        return;
    }
    confirm = json_object_get(call->body, "confirm");
    if (!json_is_string(confirm)) {
        console_error(ans, 400, "invalid_parameter", "confirm: the customer id, repeated");
        return;
    }
    if (json_string_length(confirm) != STORE_ID_LEN || strcmp(json_string_value(confirm), call->segs[1]) != 0) {
        console_error(ans, 409, "confirmation_mismatch", "confirm must repeat the customer id");
        return;
    }
    console_staff_actor(call, actor, sizeof(actor));
    snprintf(detail, sizeof(detail), "erased by staff; staff session %s", call->staff->session);
    {
        store_audit_event_t ev = staff_event(call, "erasure", call->segs[1], NULL, actor, detail);
        s = store_customer_delete(call->ctx->store, call->segs[1], &ended, &ev);
    }
    if (s == GW_OK)
        ans->json = json_pack("{s:b, s:i}", "erased", 1, "sessions_ended", (int)ended);
    else if (s == GW_ENOTFOUND)
        console_error(ans, 404, "not_found", "no such customer");
    else
        store_failed(ans);
}

/* ------------------------------------------------------------------ GET policies */

/*
 * A policy's document: inline in the configuration, or a file named there (relative to the
 * configuration's directory, as pol_set_load() resolves it). New reference, or NULL.
 */
static json_t *policy_doc(const gw_config_t *cfg, json_t *v)
{
    const char *file = json_string_value(v);
    char path[4096];
    struct stat sb;

    if (json_is_object(v))
        return json_incref(v);
    if (file == NULL)
        return NULL;
    if (file[0] == '/' || cfg->path == NULL || strrchr(cfg->path, '/') == NULL) {
        if (snprintf(path, sizeof(path), "%s", file) >= (int)sizeof(path))
            return NULL;
    } else {
        int dir = (int)(strrchr(cfg->path, '/') - cfg->path);
        if (snprintf(path, sizeof(path), "%.*s/%s", dir, cfg->path, file) >= (int)sizeof(path))
            return NULL;
    }
    /* the set was loaded from this file already: a file grown huge since is not read into an answer */
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)POLICY_FILE_MAX)
        return NULL;
    return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

void console_api_policies(const console_call_t *call, console_answer_t *ans)
{
    const gw_config_t *cfg = call->ctx->cfg;
    json_t *policies = json_array(), *routes = json_array(), *v;
    const char *name;

    if (policies == NULL || routes == NULL)
        goto Fail;
    json_object_foreach(json_object_get(cfg->doc, "policies"), name, v)
    {
        json_t *doc = policy_doc(cfg, v), *rules = json_array(), *rule, *p;
        size_t i;
        if (rules == NULL)
            goto Fail;
        /* rules as {effect, conditions}: the conditions are the configuration's own, which hold no secret */
        json_array_foreach(json_object_get(doc, "rules"), i, rule)
        {
            json_t *allow = json_object_get(rule, "allow"), *deny = json_object_get(rule, "deny");
            json_array_append_new(rules,
                                  json_pack("{s:s, s:O}", "effect", allow != NULL ? "allow" : "deny", "conditions",
                                            allow != NULL  ? allow
                                            : deny != NULL ? deny
                                                           : json_null()));
        }
        p = json_pack("{s:s, s:o, s:o, s:o}", "name", name, "description",
                      str_or_null(json_object_get(doc, "description")), "rules", rules, "source",
                      json_is_string(v) ? json_string(json_string_value(v)) : json_null());
        json_decref(doc);
        if (json_array_append_new(policies, p) != 0)
            goto Fail;
    }
    for (size_t i = 0; i < cfg->num_routes; ++i) {
        const gw_route_t *r = &cfg->routes[i];
        json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:o, s:s}", "name", r->name, "host",
                              r->host != NULL ? json_string(r->host) : json_null(), "path_prefix", r->path_prefix,
                              "auth", gw_auth_str(r->auth), "policy",
                              r->policy != NULL ? json_string(r->policy) : json_null(), "channel", r->channel);
        if (json_array_append_new(routes, o) != 0)
            goto Fail;
    }
    ans->json = json_pack("{s:o, s:o}", "policies", policies, "routes", routes);
    return;
Fail:
    json_decref(policies);
    json_decref(routes);
    console_error(ans, 503, "unavailable", "out of memory; try again");
}

/* ------------------------------------------------------------------ GET policies/explain */

struct hd_find {
    const char *provider, *subject;
    char hd[256];
    uint64_t created;
};

/* the hd claim of the customer's newest session through that identity: it came from a signed ID token */
static int hd_cb(const uint8_t hash[32], json_t *s, void *arg)
{
    struct hd_find *h = arg;
    const char *p = json_string_value(json_object_get(s, "provider"));
    const char *sub = json_string_value(json_object_get(s, "subject"));
    const char *hd = json_string_value(json_object_get(s, "hd"));
    json_int_t created = json_integer_value(json_object_get(s, "created_ms"));

    (void)hash;
    if (p != NULL && sub != NULL && hd != NULL && strcmp(p, h->provider) == 0 && strcmp(sub, h->subject) == 0 &&
        created >= 0 && (uint64_t)created >= h->created && strlen(hd) < sizeof(h->hd)) {
        h->created = (uint64_t)created;
        memcpy(h->hd, hd, strlen(hd) + 1);
    }
    return 0;
}

static int route_name_ok(const char *s)
{
    return strlen(s) > 0 && strlen(s) <= 128;
}

void console_api_explain(const console_call_t *call, console_answer_t *ans)
{
    const gw_config_t *cfg = call->ctx->cfg;
    const gw_route_t *route = NULL;
    char customer[PARAM_MAX], route_name[PARAM_MAX], detail[200];
    json_t *cust = NULL, *ident, *latest = NULL;
    struct hd_find hf;
    pol_facts_t f;
    pol_decision_t d;
    char *text = NULL;
    size_t i;
    int r;
    gw_status_t s;

    if ((r = param(call, ans, "customer", customer, sizeof(customer), customer_id_ok, "not a customer id")) < 0)
        return;
    if (r == 0) {
        console_error(ans, 400, "invalid_parameter", "customer: required");
        return;
    }
    if ((r = param(call, ans, "route", route_name, sizeof(route_name), route_name_ok, "a route name")) < 0)
        return;
    if (r == 0) {
        console_error(ans, 400, "invalid_parameter", "route: required");
        return;
    }
    for (i = 0; i < cfg->num_routes && route == NULL; ++i)
        if (strcmp(cfg->routes[i].name, route_name) == 0)
            route = &cfg->routes[i];
    if (route == NULL) {
        console_error(ans, 400, "invalid_parameter", "route: no route of that name");
        return;
    }
    if ((s = store_customer_get(call->ctx->store, customer, &cust)) != GW_OK) {
        if (s == GW_ENOTFOUND)
            console_error(ans, 404, "not_found", "no such customer");
        else
            store_failed(ans);
        return;
    }
    /* the facts as auth.c builds them for a session of the customer's latest sign-in, made now */
    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        if (latest == NULL || json_integer_value(json_object_get(ident, "last_login_ms")) >
                                  json_integer_value(json_object_get(latest, "last_login_ms")))
            latest = ident;
    }
    memset(&f, 0, sizeof(f));
    memset(&hf, 0, sizeof(hf));
    f.signed_in = 1;
    f.customer_id = customer;
    f.provider = json_string_value(json_object_get(latest, "provider"));
    f.email = json_string_value(json_object_get(latest, "email"));
    f.email_verified = f.email != NULL && json_is_true(json_object_get(latest, "email_verified"));
    f.hd = json_string_value(json_object_get(latest, "hd"));
    if (f.hd == NULL && f.provider != NULL && json_is_string(json_object_get(latest, "subject"))) {
        hf.provider = f.provider;
        hf.subject = json_string_value(json_object_get(latest, "subject"));
        if (store_customer_sessions(call->ctx->store, customer, hd_cb, &hf) != GW_OK) {
            store_failed(ans);
            goto Exit;
        }
        f.hd = hf.hd[0] != '\0' ? hf.hd : NULL;
    }
    f.linked_providers = (unsigned)json_array_size(json_object_get(cust, "identities"));
    f.channel = route->channel;
    f.method = "GET";
    f.session_age_s = 0;
    /* the explanation shows the customer's email and identity: on record before it is shown */
    snprintf(detail, sizeof(detail), "policy explain for route %s", route->name);
    if (console_audit(call, "console_explain", "success", customer, detail) != GW_OK) {
        store_failed(ans);
        goto Exit;
    }
    if (route->policy == NULL) {
        /* auth "none" without a policy: the gateway checks nothing (server.c) */
        ans->json = json_pack("{s:s, s:n, s:n, s:s}", "decision", "allow", "policy", "rule", "explanation",
                              "the route needs no sign-in and has no policy: every request passes");
        goto Exit;
    }
    d = pol_eval(cfg->policies, route->policy, &f);
    if ((text = pol_explain(cfg->policies, route->policy, &f)) == NULL) {
        console_error(ans, 503, "unavailable", "out of memory; try again");
        goto Exit;
    }
    ans->json = json_pack("{s:s, s:s, s:o, s:s, s:{s:o, s:o, s:b, s:o, s:i, s:s, s:s, s:i}}", "decision",
                          pol_outcome_str(d.outcome), "policy", route->policy, "rule",
                          d.rule >= 0 ? json_integer(d.rule) : json_null(), "explanation", text, "facts", "provider",
                          f.provider != NULL ? json_string(f.provider) : json_null(), "email",
                          f.email != NULL ? json_string(f.email) : json_null(), "email_verified", f.email_verified,
                          "hd", f.hd != NULL ? json_string(f.hd) : json_null(), "linked_providers",
                          (int)f.linked_providers, "channel", f.channel, "method", f.method, "session_age_s", 0);
Exit:
    free(text);
    json_decref(cust);
}
