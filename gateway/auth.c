/*
 * Sign-in: the /.auth/ endpoints, sessions, and what a signed-in request carries
 * upstream.
 *
 * Nothing here blocks an event loop: provider calls and synced store writes are
 * jobs on the worker pool whose results come back to the request's own loop
 * through h2o's multithread queue. A request that disappears while its job runs
 * (client gone) is detached through a guard freed with its memory pool.
 *
 * A pending login (state, nonce, PKCE verifier, provider, return_to, expiry)
 * lives only in an AES-256-GCM sealed cookie; an unauthenticated request never
 * writes to disk. Session tokens are 256-bit random values; the store keeps only
 * their SHA-256.
 */
#include "crypto.h"
#include "demo_seed.h"
#include "ingest.h"
#include "metrics.h"
#include "pol.h"
#include "prov.h"
#include "auditq.h"
#include "ratelimit.h"
#include "recorder.h"
#include "route.h"
#include "server_int.h"
#include "store.h"
#include "workers.h"
#include "console/console.h"
#include "console/console_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MODULE "auth"
#define TOKEN_BYTES 32
#define TOKEN_CHARS 43 /* base64url of 32 bytes */
#define TOKEN_BUF 48   /* room for the encoder's padding before it is stripped */
#define PENDING_MAX 3
#define PENDING_TTL_MS (10 * 60 * 1000)
#define USED_STATES 16384
#define TOUCH_EVERY_MS 60000

/* how often a session's last use is written: once a minute, but often enough that a session in
 * use never reaches an idle timeout shorter than a few minutes (60 s is allowed) between writes */
static uint64_t touch_every(uint64_t idle_timeout_ms)
{
    return idle_timeout_ms > 0 && idle_timeout_ms / 4 < TOUCH_EVERY_MS ? idle_timeout_ms / 4 : TOUCH_EVERY_MS;
}

/* the rate limiter's buckets (see rate_take) */
enum rate_kind { RATE_SIGNIN, RATE_INGEST, RATE_KINDS };
_Static_assert(RATE_KINDS <= GW_RATELIMIT_KINDS, "more rate kinds than the limiter holds");

enum job_kind {
    JOB_LOGIN,
    JOB_MOBILE,
    JOB_LOGOUT,
    JOB_TOUCH,
    JOB_UNLINK,
    JOB_FB_DELETE,
    JOB_ADMIN_DELETE,
    JOB_ADMIN_VIEW, /* an admin API read of personal data: audited (synced) before it is shown */
    JOB_AUDIT,
    JOB_INGEST
};

struct job_guard;

struct job {
    h2o_multithread_message_t msg; /* first: the message is the job */
    struct thread *th;
    h2o_req_t *req; /* NULL once the request is gone */
    struct job_guard *guard;
    enum job_kind kind;
    prov_t *prov;
    char *code, *verifier, *nonce, *return_to, *input_token;
    char channel[32];
    char link_to[STORE_ID_LEN + 1]; /* explicit link: the signed-in customer, or "" */
    char subject[128];              /* data deletion: the Facebook user id */
    char confirmation[48];
    /* for the audit trail: where the request came from (never tokens, codes or cookies) */
    char client[48], user_agent[256], request_id[40], flow_id[32];
    char actor[80]; /* admin API: "admin-token@CLIENT" (who used the shared token, as far as the gateway knows) */
    const char *audit_event, *audit_reason, *audit_outcome; /* JOB_AUDIT: a record on its own (auth_audit_event) */
    gw_ingest_batch_t batch;                                /* JOB_INGEST: the request's validated events (owned) */
    json_t *results;                                        /* JOB_INGEST: per-event results (owned) */
    char source[64];                                        /* JOB_INGEST: the ingest key's name */
    uint8_t session_hash[32];
    uint64_t now_ms;
    int64_t auth_since; /* JOB_LOGIN after a step-up: when the browser was sent to sign in again (s) */
    int console;        /* JOB_LOGIN started at /.console/login/: makes a staff session, never a customer's */
    gw_config_t *cfg;   /* console sign-ins: the snapshot whose roles decide (a reference) */
    /* results */
    gw_status_t st;
    const char *reason;
    char token[TOKEN_BUF];
    char customer_id[STORE_ID_LEN + 1];
    store_login_info_t info;
};

struct job_guard {
    struct job *job;
};

static struct {
    store_t *store;
    gw_workers_t *workers;
    prov_t **provs;
    gw_known_provider_t *known; /* the providers' names and types, as the body parsers take them */
    size_t num_provs;
    uint8_t state_key[GW_KEY_LEN], csrf_key[GW_KEY_LEN];
    char cookie_name[96], login_cookie[96], visitor_cookie[96];
    int secure;
    uint64_t ttl_ms, idle_ms;
    int auto_link;
    char **blocked_emails; /* NULL-terminated */
    char *public_url;
    pol_signer_t *signer;
    gw_recorder_t *recorder;
    gw_auditq_t *auditq;             /* refusal records: aggregated, bounded, off the worker pool */
    struct ingest_keys *ingest_keys; /* replaced whole by a reload, under ingest_lock */
    pthread_rwlock_t ingest_lock;
    unsigned assertion_ttl_s;
    gw_ratelimit_t *rate;
    atomic_int stopping;
    pthread_t refresher;
    int has_refresher;
    pthread_t purger; /* deletes expired sessions: purger_main() */
    int has_purger;
    pthread_mutex_t used_lock;
    struct {
        uint8_t hash[16];
        uint64_t expires_ms;
    } used[USED_STATES];
    size_t used_next;
} A = {.used_lock = PTHREAD_MUTEX_INITIALIZER, .ingest_lock = PTHREAD_RWLOCK_INITIALIZER};

/*
 * Per-thread cache of parsed sessions: a signed-in request would otherwise parse the
 * session record again each time. An entry is used only while no session or customer has
 * been removed, and no session's identity data rewritten (a link or unlink changes
 * linked_providers), since it was read (store_session_generation(), checked at every lookup,
 * which also sees changes by other processes such as `journeygate customer delete`; touchpoint
 * and plain login commits do not count), and for SESSION_CACHE_MS at most.
 */
#define SESSION_CACHE_SLOTS 256
#define SESSION_CACHE_MS 2000
#define ANON_DECISION_SLOTS 64

/*
 * What the request path reads of a session record, taken out of its JSON once when the cache
 * is filled. The strings point into that record: they live as long as a reference to it
 * (gr->session holds one until the request ends), so they go upstream without being copied.
 */
struct session_view {
    int bearer; /* kind "bearer"; else "cookie" (any other kind is refused at lookup) */
    int email_verified;
    unsigned linked_providers;
    uint64_t created_ms, last_seen_ms, expires_ms, idle_timeout_ms;
    uint64_t auth_ms; /* when the person last authenticated at the provider (see new_session); 0: unproven */
    int unsafe;       /* a string holds a control character: the record is refused (see lookup_session) */
    h2o_iovec_t kind, customer_id, email, provider, subject, sid, hd, channel; /* base NULL: absent */
};

/* a policy decision kept for reuse: for this configuration (serial), route and method, until until_ms */
struct kept_decision {
    uint64_t serial, until_ms;
    const gw_route_t *route;
    char method[8];
    pol_decision_t decision;
};

struct cache_slot {
    char token[TOKEN_CHARS]; /* the token itself: a hit needs no SHA-256 */
    uint8_t hash[32];
    json_t *session;
    struct session_view view; /* of session */
    uint64_t fetched_ms, touch_requested_ms, gen;
    /* X-Identity-Assertion for assertion_route, reused while fresh: an h2o shared chunk, so a
       request that sent it keeps it alive after the slot moves on */
    char *assertion;
    size_t assertion_len;
    const gw_route_t *assertion_route;
    uint64_t assertion_until_ms;
    /* the last policy decision for this session, until its age could change it */
    struct kept_decision decision;
};

struct auth_cache {
    struct cache_slot slot[SESSION_CACHE_SLOTS];
    /*
     * Decisions for requests without a session, by route and method: nothing else in their facts
     * varies (no provider, email or customer; the channel is the route's; the age is unknown).
     */
    struct kept_decision anon[ANON_DECISION_SLOTS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ pages */

void gw_send_page(h2o_req_t *req, int status, const char *reason, const char *title, const char *message_html)
{
    static const char head[] = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>";
    static const char style[] =
        "</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
        "color:#1b1f24;line-height:1.5}a.btn,button{display:block;width:100%;box-sizing:border-box;margin:.5rem 0;"
        "padding:.7rem 1rem;border:1px solid #8c959f;border-radius:6px;background:#f6f8fa;color:#1b1f24;"
        "text-decoration:none;font-size:1rem;text-align:center;cursor:pointer}a.btn:focus,button:focus{outline:3px "
        "solid #0969da}.muted{color:#57606a;font-size:.9rem}</style></head><body><main><h1>";
    h2o_iovec_t t = h2o_htmlescape(&req->pool, title, strlen(title));
    h2o_iovec_t page =
        h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT(head)), t, h2o_iovec_init(H2O_STRLIT(style)), t,
                   h2o_iovec_init(H2O_STRLIT("</h1>")), h2o_iovec_init(message_html, strlen(message_html)),
                   h2o_iovec_init(H2O_STRLIT("</main></body></html>\n")));
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/html; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                     "frame-ancestors 'none'"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-frame-options"), 0, NULL, H2O_STRLIT("DENY"));
    h2o_send_inline(req, page.base, page.len);
}

static const char *esc(h2o_req_t *req, const char *s)
{
    return h2o_htmlescape(&req->pool, s, strlen(s)).base;
}

/* a browser navigating (GET or HEAD, Accept: text/html, not XHR): it gets pages, not JSON */
static int wants_html(h2o_req_t *req)
{
    ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return 0;
    if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-requested-with"), -1) != -1)
        return 0;
    return cur != -1 && h2o_strstr(req->headers.entries[cur].value.base, req->headers.entries[cur].value.len,
                                   H2O_STRLIT("text/html")) != SIZE_MAX;
}

static void refuse_page(h2o_req_t *req, int status, const char *code, const char *text)
{
    size_t cap = strlen(text) + strlen(code) + 200;
    char *msg = h2o_mem_alloc_pool(&req->pool, cap);
    snprintf(msg, cap,
             "<p>%s</p><p class=\"muted\">Reason: <code>%s</code></p><p><a class=\"btn\" href=\"/\">Back to the "
             "start</a></p>",
             text, code);
    GW_LOG_INF(MODULE, "sign-in refused: %s", code);
    gw_send_page(req, status,
                 status == 401   ? "Unauthorized"
                 : status == 400 ? "Bad Request"
                                 : "Error",
                 "Sign-in did not complete", msg);
}

/* a 302 that keeps the headers set so far (h2o_send_redirect() drops them, cookies included) */
static void redirect(h2o_req_t *req, const char *url)
{
    req->res.status = 302;
    req->res.reason = "Found";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, h2o_strdup(&req->pool, url, SIZE_MAX).base,
                   strlen(url));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, "", 0);
}

/* ------------------------------------------------------------------ cookies */

static void add_cookie(h2o_req_t *req, const char *name, const char *value, long max_age)
{
    char buf[2048];
    int n = snprintf(buf, sizeof(buf), "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s", name, value, max_age,
                     A.secure ? "; Secure" : "");
    if (n > 0 && (size_t)n < sizeof(buf))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, h2o_strdup(&req->pool, buf, n).base,
                       (size_t)n);
}

static json_t *open_pending(h2o_req_t *req)
{
    h2o_iovec_t c = gw_find_cookie(req, A.login_cookie);
    char *plain = NULL;
    size_t len;
    json_t *arr;

    if (c.base == NULL || gw_open(A.state_key, c.base, c.len, A.login_cookie, &plain, &len) != GW_OK)
        return NULL;
    arr = json_loadb(plain, len, 0, NULL);
    free(plain);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static void set_pending(h2o_req_t *req, json_t *arr)
{
    char *text, *sealed = NULL;

    if (json_array_size(arr) == 0) {
        add_cookie(req, A.login_cookie, "", 0);
        return;
    }
    if ((text = json_dumps(arr, JSON_COMPACT)) == NULL)
        return;
    if (gw_seal(A.state_key, text, strlen(text), A.login_cookie, &sealed) == GW_OK)
        add_cookie(req, A.login_cookie, sealed, PENDING_TTL_MS / 1000);
    free(text);
    free(sealed);
}

/* ------------------------------------------------------------------ replay guard */

/* marks a state used; returns 0 when it already was (a replayed callback) */
static int state_first_use(const char *state, uint64_t expires_ms)
{
    uint8_t h[32];
    uint64_t now = now_ms();
    int fresh = 1;

    gw_sha256(state, strlen(state), h);
    pthread_mutex_lock(&A.used_lock);
    for (size_t i = 0; i < USED_STATES; ++i)
        if (A.used[i].expires_ms > now && memcmp(A.used[i].hash, h, 16) == 0) {
            fresh = 0;
            break;
        }
    if (fresh) {
        memcpy(A.used[A.used_next].hash, h, 16);
        A.used[A.used_next].expires_ms = expires_ms;
        A.used_next = (A.used_next + 1) % USED_STATES;
    }
    pthread_mutex_unlock(&A.used_lock);
    return fresh;
}

/* ------------------------------------------------------------------ sessions */

/*
 * The session presented by this request (cookie and/or bearer as allowed), checked for
 * expiry; NULL when signed out. A malformed or unknown token is simply signed out.
 */
/* the session cache slot of a token: a cheap hash of the token itself (its SHA-256 is needed only on a miss) */
static unsigned token_slot(const char *t, size_t len)
{
    uint64_t h = gw_fnv1a(GW_FNV1A_SEED, t, len);
    return (unsigned)((h ^ (h >> 32)) % SESSION_CACHE_SLOTS);
}

static h2o_iovec_t str_field(json_t *s, const char *key)
{
    json_t *v = json_object_get(s, key);
    return json_is_string(v) ? h2o_iovec_init(json_string_value(v), json_string_length(v)) : h2o_iovec_init(NULL, 0);
}

static uint64_t u64_field(json_t *s, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(s, key));
    return v > 0 ? (uint64_t)v : 0;
}

static void view_of(json_t *s, struct session_view *v)
{
    v->kind = str_field(s, "kind");
    v->bearer = h2o_memis(v->kind.base, v->kind.len, H2O_STRLIT("bearer"));
    v->email_verified = json_is_true(json_object_get(s, "email_verified"));
    v->linked_providers = (unsigned)json_integer_value(json_object_get(s, "linked_providers"));
    v->created_ms = u64_field(s, "created_ms");
    v->last_seen_ms = u64_field(s, "last_seen_ms");
    v->expires_ms = u64_field(s, "expires_ms");
    v->idle_timeout_ms = u64_field(s, "idle_timeout_ms");
    v->customer_id = str_field(s, "customer_id");
    v->email = str_field(s, "email");
    v->provider = str_field(s, "provider");
    v->subject = str_field(s, "subject");
    v->sid = str_field(s, "sid");
    v->hd = str_field(s, "hd");
    v->channel = str_field(s, "channel");
    v->auth_ms = u64_field(s, "auth_time_ms");
    {
        /*
         * Providers' claims are validated before a session is made (prov_identity_check), but a record
         * written before that, or by another version, could still carry a line break into a header.
         */
        const h2o_iovec_t *f[] = {&v->customer_id, &v->email, &v->provider, &v->subject, &v->sid, &v->hd, &v->channel};
        v->unsafe = 0;
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); ++i)
            v->unsafe |= f[i]->base != NULL && gw_has_control(f[i]->base, f[i]->len);
    }
}

/* the cache slot this request's lookup_session() filled, while it still holds session s */
static struct cache_slot *slot_of(h2o_req_t *req, struct gw_req *gr, json_t *s)
{
    struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, ctx, req->conn->ctx);

    if (s == NULL || gr->cache_slot == 0 || th->auth_cache->slot[gr->cache_slot - 1].session != s)
        return NULL;
    return &th->auth_cache->slot[gr->cache_slot - 1];
}

/* the view of session s (NULL: none): that of slot (slot_of(), may be NULL), or else taken into *tmp */
static const struct session_view *view_for(struct cache_slot *slot, json_t *s, struct session_view *tmp)
{
    if (s == NULL)
        return NULL;
    if (slot != NULL)
        return &slot->view;
    view_of(s, tmp);
    return tmp;
}

static json_t *lookup_session(h2o_req_t *req, int allow_cookie, int allow_bearer, uint8_t hash[32], int *presented,
                              unsigned *slot_out)
{
    const struct session_view *view;
    h2o_iovec_t tok = {NULL, 0};
    const char *kind = NULL;
    json_t *s = NULL;
    uint64_t now = now_ms();

    *presented = 0;
    if (slot_out != NULL)
        *slot_out = 0;
    if (allow_bearer) {
        ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        if (cur != -1) {
            h2o_iovec_t v = req->headers.entries[cur].value;
            if (v.len > 7 && h2o_lcstris(v.base, 7, H2O_STRLIT("bearer "))) {
                tok = h2o_iovec_init(v.base + 7, v.len - 7);
                kind = "bearer";
                *presented = 1;
            }
        }
    }
    if (tok.base == NULL && allow_cookie) {
        tok = gw_find_cookie(req, A.cookie_name);
        kind = "cookie";
        *presented = tok.base != NULL;
    }
    if (tok.base == NULL || !gw_token_well_formed(tok.base, tok.len, TOKEN_CHARS))
        return NULL;
    {
        struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, ctx, req->conn->ctx);
        uint64_t gen = store_session_generation(A.store);
        unsigned index = token_slot(tok.base, tok.len);
        struct cache_slot *slot = &th->auth_cache->slot[index];
        if (slot->session != NULL && slot->gen == gen && now < slot->fetched_ms + SESSION_CACHE_MS &&
            gw_ct_equal(slot->token, tok.base, TOKEN_CHARS)) {
            memcpy(hash, slot->hash, 32);
            s = json_incref(slot->session);
        } else {
            gw_sha256(tok.base, tok.len, hash);
            if (store_session_get(A.store, hash, &s) != GW_OK)
                return NULL;
            if (memcmp(slot->hash, hash, 32) != 0) {
                slot->touch_requested_ms = 0;
                if (slot->assertion != NULL)
                    h2o_mem_release_shared(slot->assertion);
                slot->assertion = NULL;
            }
            json_decref(slot->session);
            slot->decision.route = NULL; /* decided again on the fresh record */
            memcpy(slot->token, tok.base, TOKEN_CHARS);
            memcpy(slot->hash, hash, 32);
            slot->session = json_incref(s);
            view_of(s, &slot->view);
            slot->fetched_ms = now;
            slot->gen = gen;
        }
        if (slot_out != NULL)
            *slot_out = index + 1;
        view = &slot->view;
    }
    if (!h2o_memis(view->kind.base, view->kind.len, kind, strlen(kind)) || view->unsafe || view->expires_ms <= now ||
        (view->idle_timeout_ms > 0 && view->last_seen_ms + view->idle_timeout_ms <= now)) {
        json_decref(s);
        return NULL;
    }
    return s;
}

static json_t *new_session(const char *customer_id, const prov_identity_t *id, const char *provider, const char *kind,
                           const char *channel, uint64_t now, unsigned linked)
{
    char sid[32], csrf[48];

    gw_random_token(sid, sizeof(sid), 16);
    gw_random_token(csrf, sizeof(csrf), 24);
    json_t *s = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "sid", sid,
                          "customer_id", customer_id, "provider", provider, "subject", id->subject, "email", id->email,
                          "email_verified", id->email_verified, "kind", kind, "channel", channel, "created_ms",
                          (json_int_t)now, "last_seen_ms", (json_int_t)now, "expires_ms", (json_int_t)(now + A.ttl_ms),
                          "idle_timeout_ms", (json_int_t)(strcmp(kind, "cookie") == 0 ? A.idle_ms : 0), "csrf", csrf);
    if (s != NULL) {
        json_object_set_new(s, "linked_providers", json_integer(linked));
        if (id->hd != NULL)
            json_object_set_new(s, "hd", json_string(id->hd));
        /*
         * Step-up ages count from when the person authenticated at the provider, never from when this
         * session was made. auth_time has whole seconds: the authentication happened within that second,
         * and no later than now. Without a proven time the session proves no freshness at all.
         */
        if (id->auth_time > 0) {
            uint64_t at = (uint64_t)id->auth_time * 1000 + 999;
            json_object_set_new(s, "auth_time_ms", json_integer((json_int_t)(at < now ? at : now)));
        }
    }
    return s;
}

/* ------------------------------------------------------------------ rate limiting */

/*
 * Per client address. Sign-in bucket: starting a sign-in or a link, /.auth/token, a failed callback,
 * an ingest call without a valid key. Ingest bucket: touchpoint batches with a valid key, which a
 * contact-centre system sends far more often than a person signs in.
 */
#define RATE_SLOTS 4096

static unsigned rate_take(const char *addr, enum rate_kind kind, double need, double cost, int *first)
{
    return gw_ratelimit_take(A.rate, addr, kind, need, cost, now_ms(), first);
}

/* a callback that was refused costs its address a sign-in token (one that succeeds costs nothing) */
static void rate_charge_failed_callback(const char *addr)
{
    int first;
    if (addr[0] != '\0')
        rate_take(addr, RATE_SIGNIN, 0, 1, &first);
}

/* the buckets' sizes and rates from `limits` (at start and on reload; the buckets keep their tokens) */
static void load_rates(const gw_config_t *cfg)
{
    const gw_limits_t *lim = &cfg->limits;
    gw_ratelimit_set(A.rate, RATE_SIGNIN, lim->auth_rate_per_minute / 60.0, lim->auth_burst);
    gw_ratelimit_set(A.rate, RATE_INGEST, lim->ingest_rate_per_minute / 60.0, lim->ingest_burst);
}

/* ------------------------------------------------------------------ ingest keys */

#define MAX_INGEST_KEYS 64

struct ingest_keys {
    size_t count;
    struct {
        char name[64], key[256];
    } k[MAX_INGEST_KEYS];
};

static void free_ingest_keys(struct ingest_keys *ks)
{
    if (ks != NULL) {
        explicit_bzero(ks, sizeof(*ks));
        free(ks);
    }
}

/* `ingest.api_keys_file`: one key per line, "name:key" or a bare key (named ingest-N); an empty set without one */
static struct ingest_keys *load_ingest_keys(const gw_config_t *cfg)
{
    const char *kf = json_string_value(json_object_get(json_object_get(cfg->doc, "ingest"), "api_keys_file"));
    struct ingest_keys *ks = calloc(1, sizeof(*ks));
    FILE *fp;
    char line[512];

    if (ks == NULL || kf == NULL)
        return ks;
    if ((fp = fopen(kf, "r")) == NULL) {
        GW_LOG_ERR(MODULE, "ingest.api_keys_file %s: %s; no ingest key is accepted", kf, strerror(errno));
        return ks;
    }
    while (ks->count < MAX_INGEST_KEYS && fgets(line, sizeof(line), fp) != NULL) {
        char *colon, *key = line;
        int c;
        if (strchr(line, '\n') == NULL && !feof(fp)) { /* no part of an over-long line becomes a key */
            GW_LOG_ERR(MODULE, "ingest.api_keys_file %s: a line is longer than %zu characters; it is ignored", kf,
                       sizeof(line) - 2);
            while ((c = fgetc(fp)) != EOF && c != '\n')
                ;
            continue;
        }
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if ((colon = strchr(line, ':')) != NULL) {
            *colon = '\0';
            key = colon + 1;
            snprintf(ks->k[ks->count].name, sizeof(ks->k[0].name), "%.63s", line); /* a longer name is cut */
        } else {
            snprintf(ks->k[ks->count].name, sizeof(ks->k[0].name), "ingest-%zu", ks->count + 1);
        }
        if (strlen(key) < 16 || strlen(key) >= sizeof(ks->k[0].key)) {
            GW_LOG_ERR(MODULE,
                       "ingest.api_keys_file %s: a key is shorter than 16 or longer than %zu characters; it "
                       "is ignored",
                       kf, sizeof(ks->k[0].key) - 1);
            continue;
        }
        memcpy(ks->k[ks->count++].key, key, strlen(key) + 1);
    }
    fclose(fp);
    explicit_bzero(line, sizeof(line));
    return ks;
}

/* ------------------------------------------------------------------ jobs */

static int admin_journey(h2o_req_t *req, const char *id);

static void on_guard_dispose(void *p)
{
    struct job_guard *g = p;
    if (g->job != NULL)
        g->job->req = NULL;
}

static void job_free(struct job *j)
{
    gw_config_unref(j->cfg);
    gw_ingest_batch_free(&j->batch);
    json_decref(j->results);
    free(j->code);
    free(j->verifier);
    free(j->nonce);
    free(j->return_to);
    if (j->input_token != NULL)
        explicit_bzero(j->input_token, strlen(j->input_token));
    free(j->input_token);
    explicit_bzero(j->token, sizeof(j->token));
    free(j);
}

/* what the audit trail records of a request: client, user agent, request id */
static void job_context(struct job *j, h2o_req_t *req, struct gw_req *gr)
{
    ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (gr != NULL) {
        snprintf(j->client, sizeof(j->client), "%s", gr->client);
        snprintf(j->request_id, sizeof(j->request_id), "%s", gr->request_id);
    }
    if (cur != -1) {
        size_t n = req->headers.entries[cur].value.len;
        if (n >= sizeof(j->user_agent))
            n = sizeof(j->user_agent) - 1;
        memcpy(j->user_agent, req->headers.entries[cur].value.base, n);
        j->user_agent[n] = '\0';
    }
}

static store_audit_event_t job_event(const struct job *j, const char *event, const char *outcome, const char *reason)
{
    store_audit_event_t ev = {.event = event,
                              .outcome = outcome,
                              .reason = reason,
                              .provider = j->prov != NULL ? prov_name(j->prov) : NULL,
                              .customer_id = j->customer_id[0] != '\0' ? j->customer_id : NULL,
                              .client = j->client[0] != '\0' ? j->client : NULL,
                              .user_agent = j->user_agent[0] != '\0' ? j->user_agent : NULL,
                              .flow_id = j->flow_id[0] != '\0' ? j->flow_id : NULL,
                              .request_id = j->request_id[0] != '\0' ? j->request_id : NULL};
    return ev;
}

/* a refusal's record for the refusal queue, from what the job knows of its request (see audit_refusal) */
static void refusal_record(const struct job *j, const char *event, const char *reason, const char *route,
                           const char *provider, const char *actor)
{
    store_audit_event_t ev = job_event(j, event, "refused", reason);
    char key[1024], who[64];

    /* who was refused where: the route, and the provider of the refused session */
    ev.route = route;
    if (ev.provider == NULL)
        ev.provider = provider;
    ev.actor = actor;

    /* an anonymous client by its network as the rate limits see it: a /64 is one IPv6 client */
    if (j->customer_id[0] != '\0')
        snprintf(who, sizeof(who), "c:%s", j->customer_id);
    else
        gw_ratelimit_key(j->client, who, sizeof(who));
    snprintf(key, sizeof(key), "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", event, ev.provider != NULL ? ev.provider : "",
             reason != NULL ? reason : "", who, route != NULL ? route : "", actor != NULL ? actor : "");
    gw_auditq_refusal(A.auditq, key, &ev, now_ms());
}

/* on a worker: the blocking part */
static void job_run(void *arg)
{
    struct job *j = arg;
    prov_identity_t id;
    memset(&id, 0, sizeof(id));

    switch (j->kind) {
    case JOB_LOGIN:
    case JOB_MOBILE: {
        store_identity_t sid;
        uint8_t raw[TOKEN_BYTES], hash[32];
        json_t *session;
        j->st = j->kind == JOB_LOGIN
                    ? prov_finish(j->prov, j->code, j->verifier, j->nonce, j->auth_since, &id, &j->reason)
                    : prov_verify_mobile(j->prov, j->input_token, &id, &j->reason);
        if (j->st != GW_OK) {
            /* a refusal changes nothing: aggregated and capped like the others (the job has no customer yet) */
            const char *why = j->reason != NULL ? j->reason : gw_status_str(j->st);
            refusal_record(j, j->kind == JOB_LOGIN ? "callback_refused" : "token_refused", why, NULL, NULL, NULL);
            gw_metrics_login(prov_name(j->prov), "refused", why);
            break;
        }
        if (j->console) {
            /* a staff sign-in: a staff session or nothing; never a customer, a touchpoint or a customer session */
            console_identity_t ci = {prov_name(j->prov), id.subject,  id.email, id.name, id.hd,
                                     id.email_verified,  id.auth_time};
            console_origin_t from = {j->client[0] ? j->client : NULL, j->user_agent[0] ? j->user_agent : NULL,
                                     j->request_id[0] ? j->request_id : NULL, j->flow_id[0] ? j->flow_id : NULL};
            console_staff_t staff;
            j->st = console_staff_sign_in(A.store, j->cfg, &ci, &from, j->now_ms, j->token, sizeof(j->token), &staff);
            if (j->st == GW_EDENIED) {
                char actor[600];
                console_actor(prov_name(j->prov), id.email, id.subject, actor, sizeof(actor));
                j->reason = "no_role";
                refusal_record(j, "console_sign_in", "no_role", NULL, NULL, actor);
            } else if (j->st != GW_OK) {
                j->reason = "store_unavailable";
            }
            break;
        }
        sid = (store_identity_t){prov_name(j->prov), id.subject, id.email, id.email_verified, id.name, id.picture};
        {
            store_login_opts_t o = {A.auto_link, (const char *const *)A.blocked_emails,
                                    j->link_to[0] != '\0' ? j->link_to : NULL, j->channel};
            store_audit_event_t ev = job_event(j, j->kind == JOB_LOGIN ? "callback_succeeded" : "token_accepted",
                                               "success", j->link_to[0] != '\0' ? "link" : NULL);
            ev.subject = id.subject;
            ev.customer_id = NULL;
            j->st = store_login(A.store, &sid, &o, j->now_ms, j->customer_id, &j->info, &ev);
        }
        if (j->st == GW_EDENIED) {
            store_audit_event_t ev = job_event(j, "link_refused", "refused", "conflict");
            ev.subject = id.subject;
            ev.customer_id = j->link_to;
            store_audit_write(A.store, &ev, j->now_ms);
            j->reason = "identity_linked_elsewhere";
            break;
        }
        if (j->st != GW_OK) {
            j->reason = "store_unavailable";
            gw_metrics_login(prov_name(j->prov), "failed", j->reason);
            break;
        }
        gw_metrics_login(prov_name(j->prov), "success", j->kind == JOB_LOGIN ? "browser" : "mobile");
        if (j->link_to[0] != '\0')
            break; /* linking keeps the session the customer already has */
        /* a new token at every sign-in: nothing from before the login is ever reused */
        if (gw_random_bytes(raw, sizeof(raw)) != GW_OK ||
            gw_b64url_encode(raw, sizeof(raw), j->token, sizeof(j->token)) != TOKEN_CHARS) {
            j->st = GW_EIO;
            j->reason = "random_unavailable";
            break;
        }
        gw_sha256(j->token, TOKEN_CHARS, hash);
        {
            json_t *cust = NULL;
            unsigned linked = 1;
            if (store_customer_get(A.store, j->customer_id, &cust) == GW_OK)
                linked = (unsigned)json_array_size(json_object_get(cust, "identities"));
            json_decref(cust);
            session = new_session(j->customer_id, &id, prov_name(j->prov), j->kind == JOB_LOGIN ? "cookie" : "bearer",
                                  j->channel, j->now_ms, linked);
        }
        j->st = session != NULL ? store_session_put(A.store, hash, session) : GW_ENOMEM;
        json_decref(session);
        if (j->st != GW_OK)
            j->reason = "store_unavailable";
        break;
    }
    case JOB_LOGOUT: {
        store_audit_event_t ev = job_event(j, "logout", "success", NULL);
        j->st = store_session_delete(A.store, j->session_hash, &ev);
        break;
    }
    case JOB_INGEST: {
        size_t n = j->batch.count, k = 0;
        store_tp_t *tps = calloc(n + 1, sizeof(*tps));
        const char **keys = calloc(n + 1, sizeof(*keys));
        size_t *index = calloc(n + 1, sizeof(*index));
        int *dup = calloc(n + 1, sizeof(*dup));
        /* the strings the records point at: ids and customer ids, freed after the write */
        char(*tids)[48] = calloc(n + 1, sizeof(*tids));
        char(*custs)[STORE_ID_LEN + 1] = calloc(n + 1, sizeof(*custs));
        uint64_t now = now_ms();
        for (size_t i = 0;
             tps != NULL && keys != NULL && index != NULL && dup != NULL && tids != NULL && custs != NULL && i < n;
             ++i) {
            /* validated completely by gw_ingest_parse(): exactly one identifier form, every string bounded */
            const gw_ingest_event_t *ev = &j->batch.events[i];
            json_t *res = json_array_get(j->results, ev->index), *c = NULL;
            char rnd[16];
            gw_status_t st;
            if (ev->customer_id != NULL)
                st = store_customer_get(A.store, ev->customer_id, &c);
            else if (ev->email != NULL)
                st = store_customer_by_email(A.store, ev->email, custs[k]);
            else
                st = store_customer_by_identity(A.store, ev->provider, ev->subject, custs[k]);
            json_decref(c);
            if (st != GW_OK) {
                json_object_set_new(res, "status", json_string("error"));
                json_object_set_new(res, "error",
                                    json_string(ev->customer_id != NULL ? "unknown customer_id"
                                                : ev->email != NULL     ? "no customer has this verified email"
                                                                        : "unknown provider and subject"));
                continue;
            }
            if (ev->customer_id != NULL)
                snprintf(custs[k], sizeof(custs[k]), "%s", ev->customer_id);
            uint64_t at = ev->has_time ? ev->time_ms : now;
            gw_random_token(rnd, sizeof(rnd), 6);
            snprintf(tids[k], sizeof(tids[k]), "tp_%012llx%s", (unsigned long long)at, rnd);
            tps[k].id = tids[k];
            tps[k].customer_id = custs[k];
            tps[k].occurred_at_ms = at;
            tps[k].received_at_ms = now;
            tps[k].channel = ev->channel;
            tps[k].touchpoint = ev->touchpoint;
            tps[k].stage = ev->stage;
            tps[k].source = j->source;
            tps[k].status = ev->status;
            tps[k].extra = ev->extra;
            tps[k].extra_len = ev->extra_len;
            keys[k] = ev->idempotency_key;
            index[k] = ev->index;
            json_object_set_new(res, "id", json_string(tids[k]));
            ++k;
        }
        j->st = k > 0 ? store_touchpoints_ingest(A.store, tps, keys, k, dup) : GW_OK;
        for (size_t r = 0; r < k; ++r) {
            json_t *res = json_array_get(j->results, index[r]);
            if (j->st != GW_OK) {
                json_object_set_new(res, "status", json_string("error"));
                json_object_set_new(res, "error", json_string("not stored; retry"));
                json_object_del(res, "id");
            } else {
                json_object_set_new(res, "status", json_string(dup[r] ? "duplicate" : "accepted"));
                if (dup[r])
                    json_object_del(res, "id");
            }
        }
        free(tps);
        free(keys);
        free(index);
        free(dup);
        free(tids);
        free(custs);
        break;
    }
    case JOB_AUDIT: {
        store_audit_event_t ev =
            job_event(j, j->audit_event, j->audit_outcome != NULL ? j->audit_outcome : "refused", j->audit_reason);
        store_audit_write(A.store, &ev, j->now_ms);
        break;
    }
    case JOB_TOUCH: {
        json_t *s = NULL;
        /* re-checked here: several requests may have asked for the same touch */
        if (store_session_get(A.store, j->session_hash, &s) == GW_OK &&
            j->now_ms > (uint64_t)json_integer_value(json_object_get(s, "last_seen_ms")) +
                            touch_every((uint64_t)json_integer_value(json_object_get(s, "idle_timeout_ms")))) {
            json_object_set_new(s, "last_seen_ms", json_integer((json_int_t)j->now_ms));
            store_session_put(A.store, j->session_hash, s);
        }
        json_decref(s);
        break;
    }
    case JOB_UNLINK: {
        store_audit_event_t ev = job_event(j, "identity_unlinked", "success", NULL);
        j->st = store_unlink(A.store, j->customer_id, prov_name(j->prov), j->now_ms, &ev);
    } break;
    case JOB_ADMIN_DELETE: {
        unsigned sessions = 0;
        store_audit_event_t ev = job_event(j, "erasure", "success", "admin");
        ev.actor = j->actor[0] != '\0' ? j->actor : NULL;
        j->st = store_customer_delete(A.store, j->customer_id, &sessions, &ev);
        snprintf(j->subject, sizeof(j->subject), "%u", sessions);
        break;
    }
    case JOB_ADMIN_VIEW: {
        /* the profile is read first: a view of nobody is no view; the journey is read on the loop after */
        int profile = strcmp(j->subject, "profile") == 0;
        json_t *c = NULL;
        j->st = store_customer_get(A.store, j->customer_id, &c);
        if (j->st == GW_OK) {
            store_audit_event_t ev =
                job_event(j, profile ? "admin_view_profile" : "admin_view_journey", "success", NULL);
            ev.actor = j->actor;
            j->st = store_audit_write(A.store, &ev, j->now_ms);
        }
        if (j->st == GW_OK && profile)
            j->results = c;
        else
            json_decref(c);
        break;
    }
    case JOB_FB_DELETE: {
        int erased = 0;
        char owner[STORE_ID_LEN + 1];
        store_audit_event_t ev = job_event(j, "erasure", "success", NULL);
        ev.subject = j->subject;
        j->st = store_identity_erase(A.store, prov_name(j->prov), j->subject, owner, &erased, &ev);
        if (j->st == GW_OK || j->st == GW_ENOTFOUND) {
            /* the status record names no person: only what happened and when */
            json_t *status = json_pack("{s:s, s:s, s:I}", "status", j->st == GW_OK ? "deleted" : "no_data", "provider",
                                       prov_type(j->prov), "completed_ms", (json_int_t)j->now_ms);
            j->st = store_deletion_put(A.store, j->confirmation, status);
            json_decref(status);
            if (erased)
                GW_LOG_INF(MODULE, "data deletion request erased a customer");
        }
        break;
    }
    }
    prov_identity_clear(&id);
    if (j->th != NULL)
        h2o_multithread_send_message(&j->th->jobs, &j->msg);
    else
        job_free(j);
}

static struct job *job_new(h2o_req_t *req, struct thread *th, enum job_kind kind)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->th = th;
    j->kind = kind;
    j->now_ms = now_ms();
    if (req != NULL) {
        j->req = req;
        j->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*j->guard), on_guard_dispose);
        j->guard->job = j;
    }
    return j;
}

/*
 * Audits a refusal (an event that changes nothing; no answer waits on it) through the refusal
 * queue: repeats of the same (event, provider, reason, customer or client network, route) within
 * an interval become one record with a count, and the records per interval are capped (see auditq.h).
 */
static void audit_refusal(h2o_req_t *req, struct gw_req *gr, prov_t *p, const char *event, const char *reason,
                          const char *flow_id, const char *customer_id, const char *route, const char *provider)
{
    struct job j;

    memset(&j, 0, sizeof(j));
    j.prov = p;
    if (flow_id != NULL)
        snprintf(j.flow_id, sizeof(j.flow_id), "%s", flow_id);
    if (customer_id != NULL)
        snprintf(j.customer_id, sizeof(j.customer_id), "%s", customer_id);
    job_context(&j, req, gr);
    refusal_record(&j, event, reason, route, provider, NULL);
    if (strcmp(event, "callback_refused") == 0)
        gw_metrics_login(p != NULL ? prov_name(p) : NULL, "refused", reason);
}

static int job_submit(h2o_req_t *req, struct job *j)
{
    if (gw_workers_submit(A.workers, job_run, j) != GW_OK) {
        if (j->guard != NULL)
            j->guard->job = NULL;
        job_free(j);
        if (req != NULL)
            gw_send_error_json(req, 503, "Service Unavailable", "busy", "the gateway is busy; try again");
        return -1;
    }
    return 0;
}

static int status_for(gw_status_t st)
{
    switch (st) {
    case GW_ETIMEOUT:
        return 504;
    case GW_EUPSTREAM:
        return 502;
    case GW_EUNAVAIL:
    case GW_EIO:
    case GW_ENOMEM:
        return 503;
    default:
        return 401;
    }
}

static void complete_login(struct job *j)
{
    h2o_req_t *req = j->req;

    if (j->st != GW_OK && status_for(j->st) < 500) /* refused, not the provider's or our own trouble */
        rate_charge_failed_callback(j->client);

    if (j->console &&
        (j->st == GW_OK || (j->st == GW_EDENIED && j->reason != NULL && strcmp(j->reason, "no_role") == 0))) {
        console_sign_in_done(req, j->st == GW_OK, j->token, j->return_to);
        return;
    }
    if (j->st == GW_EDENIED && j->link_to[0] != '\0' && j->info.conflict_customer[0] != '\0') {
        GW_LOG_INF(MODULE, "link refused: the %s identity belongs to another customer", prov_name(j->prov));
        refuse_page(req, 409, "identity_linked_elsewhere",
                    "This account is already linked to another customer, so it cannot be added here. Nothing was "
                    "changed.");
        return;
    }
    if (j->st != GW_OK && j->reason != NULL && strcmp(j->reason, "id_token_invalid:auth_time") == 0 &&
        j->auth_since != 0) {
        refuse_page(req, status_for(j->st), j->reason,
                    "This page needs a fresh sign-in, but the provider did not ask you to sign in again. No "
                    "session was created.");
        return;
    }
    if (j->st != GW_OK) {
        refuse_page(req, status_for(j->st), j->reason != NULL ? j->reason : gw_status_str(j->st),
                    "The sign-in could not be verified, so no session was created.");
        return;
    }
    if (j->link_to[0] != '\0') {
        GW_LOG_INF(MODULE, "linked: customer %s gained a %s identity", j->customer_id, prov_name(j->prov));
        redirect(req, j->return_to);
        return;
    }
    GW_LOG_INF(MODULE, "signed in: customer %s via %s%s", j->customer_id, prov_name(j->prov),
               j->info.result == STORE_LOGIN_CREATED       ? " (new customer)"
               : j->info.result == STORE_LOGIN_AUTO_LINKED ? " (linked by verified email)"
                                                           : "");
    add_cookie(req, A.cookie_name, j->token, (long)(A.ttl_ms / 1000));
    {
        /* the browser's anonymous touchpoints join this customer, once; the browser gets a new visitor id */
        h2o_iovec_t v = gw_find_cookie(req, A.visitor_cookie);
        if (v.base != NULL && v.len > 0 && v.len < 32 && A.recorder != NULL) {
            char vid[32];
            memcpy(vid, v.base, v.len);
            vid[v.len] = '\0';
            gw_recorder_join(A.recorder, vid, j->customer_id);
            add_cookie(req, A.visitor_cookie, "", 0);
        }
    }
    redirect(req, j->return_to);
}

static void complete_mobile(struct job *j)
{
    if (j->st != GW_OK) {
        int status = status_for(j->st);
        if (status == 401)
            h2o_add_header(&j->req->pool, &j->req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer error=\"invalid_token\""));
        gw_send_error_json(j->req, status, status == 401 ? "Unauthorized" : "Bad Gateway",
                           status == 401 ? "invalid_token" : "provider_unavailable",
                           j->reason != NULL ? j->reason : gw_status_str(j->st));
        return;
    }
    gw_send_json(j->req, 200, "OK",
                 json_pack("{s:s, s:s, s:I, s:s}", "token_type", "Bearer", "access_token", j->token, "expires_in",
                           (json_int_t)(A.ttl_ms / 1000), "customer_id", j->customer_id));
}

static void complete_logout(struct job *j)
{
    add_cookie(j->req, A.cookie_name, "", 0);
    if (j->st != GW_OK && j->st != GW_ENOTFOUND) {
        gw_send_page(j->req, 503, "Service Unavailable", "Sign-out failed", "<p>Please try again.</p>");
        return;
    }
    gw_send_page(j->req, 200, "OK", "Signed out",
                 "<p>You are signed out. Your session has ended on the server too.</p>"
                 "<p><a class=\"btn\" href=\"/\">Continue</a></p>");
}

static int atoi_safe(const char *s)
{
    long v = strtol(s, NULL, 10);
    return v >= 0 && v < 1000000000 ? (int)v : 0;
}

static void complete_unlink(struct job *j)
{
    if (j->st == GW_OK)
        gw_send_json(j->req, 200, "OK",
                     json_pack("{s:s, s:s}", "unlinked", prov_name(j->prov), "customer_id", j->customer_id));
    else if (j->st == GW_EDENIED)
        gw_send_error_json(j->req, 409, "Conflict", "last_identity", "the last sign-in method cannot be removed");
    else if (j->st == GW_ENOTFOUND)
        gw_send_error_json(j->req, 404, "Not Found", "not_linked", "no identity of this provider is linked");
    else
        gw_send_error_json(j->req, 503, "Service Unavailable", "store_unavailable", "try again");
}

static void complete_fb_delete(struct job *j)
{
    char url[512];
    if (j->st != GW_OK) {
        gw_send_error_json(j->req, 503, "Service Unavailable", "store_unavailable", "try again");
        return;
    }
    snprintf(url, sizeof(url), "%s/.auth/facebook/deletion?id=%s", A.public_url, j->confirmation);
    gw_send_json(j->req, 200, "OK", json_pack("{s:s, s:s}", "url", url, "confirmation_code", j->confirmation));
}

static void on_jobs(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        struct job *j = (struct job *)msg;
        h2o_linklist_unlink(&msg->link);
        if (j->req != NULL) {
            j->guard->job = NULL;
            switch (j->kind) {
            case JOB_LOGIN:
                complete_login(j);
                break;
            case JOB_MOBILE:
                complete_mobile(j);
                break;
            case JOB_LOGOUT:
                complete_logout(j);
                break;
            case JOB_UNLINK:
                complete_unlink(j);
                break;
            case JOB_FB_DELETE:
                complete_fb_delete(j);
                break;
            case JOB_ADMIN_DELETE:
                if (j->st == GW_OK) {
                    GW_LOG_INF(MODULE, "admin erased customer %s", j->customer_id);
                    gw_send_json(j->req, 200, "OK",
                                 json_pack("{s:s, s:b, s:i}", "customer_id", j->customer_id, "erased", 1,
                                           "sessions_removed", atoi_safe(j->subject)));
                } else if (j->st == GW_ENOTFOUND) {
                    gw_send_error_json(j->req, 404, "Not Found", "not_found", "no such customer");
                } else {
                    gw_send_error_json(j->req, 503, "Service Unavailable", "store_unavailable", "try again");
                }
                break;
            case JOB_ADMIN_VIEW:
                if (j->st == GW_ENOTFOUND)
                    gw_send_error_json(j->req, 404, "Not Found", "not_found", "no such customer");
                else if (j->st != GW_OK)
                    gw_send_error_json(j->req, 503, "Service Unavailable", "store_unavailable", "try again");
                else if (strcmp(j->subject, "profile") == 0)
                    gw_send_json(j->req, 200, "OK", json_incref(j->results));
                else
                    admin_journey(j->req, j->customer_id);
                break;
            case JOB_INGEST: {
                size_t accepted = 0, dups = 0, errors = 0, i;
                json_t *r;
                json_array_foreach(j->results, i, r)
                {
                    const char *st = json_string_value(json_object_get(r, "status"));
                    accepted += st != NULL && strcmp(st, "accepted") == 0;
                    dups += st != NULL && strcmp(st, "duplicate") == 0;
                    errors += st != NULL && strcmp(st, "error") == 0;
                }
                gw_send_json(j->req, j->st == GW_OK ? 200 : 503, j->st == GW_OK ? "OK" : "Service Unavailable",
                             json_pack("{s:I, s:I, s:I, s:O}", "accepted", (json_int_t)accepted, "duplicates",
                                       (json_int_t)dups, "errors", (json_int_t)errors, "results", j->results));
                break;
            }
            case JOB_TOUCH:
            case JOB_AUDIT:
                break;
            }
        }
        job_free(j);
    }
}

/* ------------------------------------------------------------------ init */

static void *refresher_main(void *arg)
{
    (void)arg;
    /* keeps discovery and keys warm, so no request ever waits on a JWKS fetch */
    while (!atomic_load(&A.stopping)) {
        int pending = 0;
        for (size_t i = 0; i < A.num_provs && !atomic_load(&A.stopping); ++i) {
            if (!prov_ready(A.provs[i]) && prov_refresh(A.provs[i]) != GW_OK)
                pending = 1;
        }
        for (unsigned waited = 0; waited < (pending ? 2u : 300u) && !atomic_load(&A.stopping); ++waited)
            sleep(1);
        if (!pending)
            for (size_t i = 0; i < A.num_provs && !atomic_load(&A.stopping); ++i)
                prov_refresh(A.provs[i]);
    }
    prov_thread_cleanup();
    return NULL;
}

/*
 * Expired sessions (and the personal data they froze) are deleted at start and every
 * SESSION_PURGE_S, off the event loops: a refused session would otherwise stay in the store forever.
 */
#define SESSION_PURGE_S 300

static void *purger_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&A.stopping)) {
        uint64_t purged = 0;
        gw_status_t s = store_sessions_purge(A.store, now_ms(), &purged);
        if (purged > 0)
            GW_LOG_INF(MODULE, "purged %llu expired session(s)", (unsigned long long)purged);
        if (s != GW_OK)
            GW_LOG_ERR(MODULE, "purging expired sessions: %s", gw_status_str(s));
        for (unsigned waited = 0; waited < SESSION_PURGE_S && !atomic_load(&A.stopping); ++waited)
            sleep(1);
    }
    return NULL;
}

gw_status_t auth_init(const gw_config_t *cfg)
{
    json_t *session = json_object_get(cfg->doc, "session"), *provs = json_object_get(cfg->doc, "providers"), *pc;
    const char *cookie = json_string_value(json_object_get(session, "cookie_name"));
    const char *secret_file = json_string_value(json_object_get(session, "secret_file"));
    uint8_t master[GW_KEY_LEN];
    char path[4096], *callback;
    const char *name;
    json_t *v;

    A.secure = strncmp(cfg->public_url, "https://", 8) == 0;
    /* __Host-: only this origin, only over TLS, Path=/ (RFC 6265bis) */
    snprintf(A.cookie_name, sizeof(A.cookie_name), "%s%s", A.secure ? "__Host-" : "",
             cookie != NULL ? cookie : "jg_session");
    snprintf(A.login_cookie, sizeof(A.login_cookie), "%sjg_login", A.secure ? "__Host-" : "");
    snprintf(A.visitor_cookie, sizeof(A.visitor_cookie), "%sjg_visitor", A.secure ? "__Host-" : "");
    {
        json_t *linking = json_object_get(cfg->doc, "linking"), *blocked = json_object_get(linking, "blocked_emails");
        size_t n = json_array_size(blocked);
        A.auto_link = json_is_true(json_object_get(linking, "auto_link_verified_email"));
        A.blocked_emails = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; ++i)
            A.blocked_emails[i] = strdup(json_string_value(json_array_get(blocked, i)));
        A.public_url = strdup(cfg->public_url);
        size_t len = strlen(A.public_url);
        while (len > 0 && A.public_url[len - 1] == '/')
            A.public_url[--len] = '\0';
    }
    A.ttl_ms = 43200000;
    A.idle_ms = 3600000;
    if ((v = json_object_get(session, "ttl_s")) != NULL)
        A.ttl_ms = (uint64_t)(json_number_value(v) * 1000);
    if ((v = json_object_get(session, "idle_timeout_s")) != NULL)
        A.idle_ms = (uint64_t)(json_number_value(v) * 1000);

    if (store_open(cfg->store_path, cfg->store_map_size_mb, &A.store) != GW_OK)
        return GW_EIO;
    if (secret_file == NULL) {
        snprintf(path, sizeof(path), "%s/session.key", cfg->store_path);
        secret_file = path;
    }
    if (gw_secret_file_key(secret_file, secret_file == path, master) != GW_OK)
        return GW_EIO;
    {
        const char *audit_file = json_string_value(json_object_get(json_object_get(cfg->doc, "audit"), "key_file"));
        char apath[4096];
        uint8_t akey[GW_KEY_LEN];
        if (audit_file == NULL) {
            snprintf(apath, sizeof(apath), "%s/audit.key", cfg->store_path);
            audit_file = apath;
        }
        if (gw_secret_file_key(audit_file, audit_file == apath, akey) != GW_OK)
            return GW_EIO;
        store_audit_key(A.store, akey);
        explicit_bzero(akey, sizeof(akey));
    }
    gw_derive_key(master, sizeof(master), "journeygate login state v1", A.state_key);
    gw_derive_key(master, sizeof(master), "journeygate csrf v1", A.csrf_key);
    explicit_bzero(master, sizeof(master));

    {
        json_t *as = json_object_get(cfg->doc, "assertion"), *prev = json_object_get(as, "previous_key_files");
        const char *kf = json_string_value(json_object_get(as, "key_file"));
        char kpath[4096];
        const char **previous = calloc(json_array_size(prev) + 1, sizeof(char *));
        A.assertion_ttl_s = json_is_integer(json_object_get(as, "ttl_s"))
                                ? (unsigned)json_integer_value(json_object_get(as, "ttl_s"))
                                : 60;
        if (kf == NULL) {
            snprintf(kpath, sizeof(kpath), "%s/assertion-key.pem", cfg->store_path);
            kf = kpath;
        }
        for (size_t i = 0; i < json_array_size(prev); ++i)
            previous[i] = json_string_value(json_array_get(prev, i));
        gw_status_t ss = pol_signer_create(kf, previous, &A.signer);
        free(previous);
        if (ss != GW_OK) {
            GW_LOG_ERR(MODULE, "assertion.key_file %s: cannot load or create the signing key", kf);
            return GW_EIO;
        }
    }
    if ((A.rate = gw_ratelimit_create(RATE_SLOTS)) == NULL || (A.ingest_keys = load_ingest_keys(cfg)) == NULL)
        return GW_ENOMEM;
    load_rates(cfg);
    prov_global_init();
    A.workers = gw_workers_create(4, 4096);
    {
        json_t *au = json_object_get(cfg->doc, "audit"), *iv = json_object_get(au, "refusal_interval_s");
        json_t *pi = json_object_get(au, "refusals_per_interval");
        uint64_t interval_ms = json_is_integer(iv) ? (uint64_t)json_integer_value(iv) * 1000 : 60000;
        unsigned per = json_is_integer(pi) ? (unsigned)json_integer_value(pi) : 100;
        if ((A.auditq = gw_auditq_create(A.store, interval_ms, per, 4096)) == NULL)
            return GW_ENOMEM;
    }
    {
        json_t *qs = json_object_get(json_object_get(cfg->doc, "journeys"), "queue_size");
        size_t cap = json_is_integer(qs) ? (size_t)json_integer_value(qs) : 65536;
        json_t *rd = json_object_get(json_object_get(cfg->doc, "journeys"), "retention_days");
        if ((A.recorder = gw_recorder_create(A.store, cap)) == NULL)
            return GW_ENOMEM;
        if (json_is_integer(rd))
            gw_recorder_set_retention(A.recorder, (unsigned)json_integer_value(rd));
        {
            /* anonymous visitors' touchpoints in memory: a size in bytes or as "64MB" (validated by config) */
            json_t *vm = json_object_get(json_object_get(cfg->doc, "journeys"), "visitor_memory");
            uint64_t bytes = 0;
            if ((json_is_integer(vm) && (bytes = (uint64_t)json_integer_value(vm)) > 0) ||
                (json_is_string(vm) && gw_parse_size(json_string_value(vm), &bytes) == 0))
                gw_recorder_set_visitor_memory(A.recorder, (size_t)bytes);
        }
    }
    if (strcmp(cfg->path, "<demo>") == 0) {
        /* `journeygate demo` opens on live views: an empty demo store gets sample customers (demo_seed.c) */
        const char *names[8];
        size_t n = 0, created = 0;
        json_object_foreach(provs, name, pc)
        {
            if (n < sizeof(names) / sizeof(names[0]))
                names[n++] = name;
        }
        if (n > 0 && gw_demo_seed(A.store, A.recorder, names, n, 300, now_ms(), &created) != GW_OK)
            GW_LOG_WARNING("demo", "the sample data could not be written");
        else if (created > 0)
            GW_LOG_INF("demo", "%zu sample customers with 30 days of journeys added (source \"sample\")", created);
    }
    A.provs = calloc(json_object_size(provs) + 1, sizeof(*A.provs));
    json_object_foreach(provs, name, pc)
    {
        char *err = NULL;
        size_t n = strlen(cfg->public_url) + strlen(name) + 32;
        callback = malloc(n);
        snprintf(callback, n, "%s%s/.auth/login/%s/callback", cfg->public_url,
                 cfg->public_url[strlen(cfg->public_url) - 1] == '/' ? "." : "", name);
        /* public_url may end with '/': "http://h/" + "./auth" would be wrong, so normalise */
        if (cfg->public_url[strlen(cfg->public_url) - 1] == '/')
            snprintf(callback, n, "%.*s/.auth/login/%s/callback", (int)strlen(cfg->public_url) - 1, cfg->public_url,
                     name);
        if (prov_create(name, pc, callback, &A.provs[A.num_provs], &err) != GW_OK) {
            GW_LOG_ERR(MODULE, "providers.%s: %s", name, err != NULL ? err : "cannot be created");
            free(err);
            free(callback);
            return GW_EINVAL;
        }
        free(callback);
        ++A.num_provs;
    }
    A.known = calloc(A.num_provs + 1, sizeof(*A.known));
    for (size_t i = 0; A.known != NULL && i < A.num_provs; ++i)
        A.known[i] = (gw_known_provider_t){prov_name(A.provs[i]), prov_type(A.provs[i])};
    if (A.known == NULL)
        return GW_ENOMEM;
    if (A.num_provs > 0 && pthread_create(&A.refresher, NULL, refresher_main, NULL) == 0)
        A.has_refresher = 1;
    if (pthread_create(&A.purger, NULL, purger_main, NULL) == 0)
        A.has_purger = 1;
    else
        GW_LOG_WARNING(MODULE, "expired sessions will not be purged: no thread");
    return GW_OK;
}

void auth_thread_init(struct thread *th)
{
    th->auth_cache = calloc(1, sizeof(*th->auth_cache));
    h2o_multithread_register_receiver(th->ctx.queue, &th->jobs, on_jobs);
}

static prov_t *find_prov(const char *name, size_t len)
{
    for (size_t i = 0; i < A.num_provs; ++i)
        if (strlen(prov_name(A.provs[i])) == len && memcmp(prov_name(A.provs[i]), name, len) == 0)
            return A.provs[i];
    return NULL;
}

/*
 * Takes a token from the request's bucket (`need`: the tokens it must hold; `cost`: how many are taken),
 * or answers 429 with Retry-After and returns 1. The first refusal of a run is audited as `what`.
 */
static int rate_limited(h2o_req_t *req, struct gw_req *gr, enum rate_kind kind, double need, double cost,
                        const char *what)
{
    int first = 0;
    unsigned wait = rate_take(gr->client, kind, need, cost, &first);
    char secs[16];

    if (wait == 0)
        return 0;
    gw_metrics_count(gr->thread->metrics,
                     kind == RATE_INGEST ? GW_CTR_RATE_LIMITED_INGEST : GW_CTR_RATE_LIMITED_SIGNIN);
    if (first)
        audit_refusal(req, gr, NULL, "rate_limited", what, NULL, NULL, NULL, NULL);
    snprintf(secs, sizeof(secs), "%u", wait);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, secs, SIZE_MAX).base, strlen(secs));
    if (wants_html(req)) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "<p>There were too many sign-in attempts from your network. Please wait %u second%s and try "
                 "again.</p>",
                 wait, wait == 1 ? "" : "s");
        gw_send_page(req, 429, "Too Many Requests", "Please wait a moment", msg);
    } else {
        gw_send_error_json(req, 429, "Too Many Requests", "rate_limited",
                           kind == RATE_INGEST ? "too many requests; retry later"
                                               : "too many sign-in attempts; retry later");
    }
    return 1;
}

/* ------------------------------------------------------------------ endpoints */

static h2o_iovec_t query_of(h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

/* return_to from the query, or "/" when absent or unsafe */
static char *safe_return_to(h2o_req_t *req)
{
    h2o_iovec_t q = query_of(req);
    char *v = NULL;

    if (gw_query_param(q.base, q.len, "return_to", &v) == 1 && gw_return_to_safe(v))
        return v;
    free(v);
    return strdup("/");
}

static int login_start(h2o_req_t *req, prov_t *p, const char *link_to, const char *console_return)
{
    char state[TOKEN_BUF], nonce[TOKEN_BUF], verifier[TOKEN_BUF], challenge[TOKEN_BUF];
    char *return_to = console_return != NULL ? strdup(console_return) : safe_return_to(req), *hint = NULL, *url = NULL;
    uint8_t digest[32];
    h2o_iovec_t q = query_of(req);
    json_t *pending, *entry;
    gw_status_t st;
    int again;

    if (gw_random_token(state, sizeof(state), TOKEN_BYTES) != GW_OK ||
        gw_random_token(nonce, sizeof(nonce), TOKEN_BYTES) != GW_OK ||
        gw_random_token(verifier, sizeof(verifier), TOKEN_BYTES) != GW_OK) {
        free(return_to);
        h2o_send_error_500(req, "Internal Server Error", "randomness unavailable", 0);
        return 0;
    }
    gw_sha256(verifier, strlen(verifier), digest);
    gw_b64url_encode(digest, sizeof(digest), challenge, sizeof(challenge));
    if (gw_query_param(q.base, q.len, "login_hint", &hint) != 1 || strlen(hint) > 256) {
        free(hint);
        hint = NULL;
    }
    {
        char *reauth = NULL;
        again = gw_query_param(q.base, q.len, "reauth", &reauth) == 1 && strcmp(reauth, "1") == 0;
        free(reauth);
        st = prov_authorize_url(p, state, nonce, challenge, hint, again, &url);
    }
    free(hint);
    if (st != GW_OK) {
        free(return_to);
        gw_send_page(req, 503, "Service Unavailable", "Sign-in unavailable",
                     "<p>This sign-in method cannot be reached right now. Please try again in a moment.</p>");
        return 0;
    }
    /* a bounded number of pending logins per browser: the oldest is dropped */
    if ((pending = open_pending(req)) == NULL)
        pending = json_array();
    {
        uint64_t now = now_ms();
        for (size_t i = json_array_size(pending); i-- > 0;) {
            json_int_t e = json_integer_value(json_object_get(json_array_get(pending, i), "e"));
            if ((uint64_t)e <= now)
                json_array_remove(pending, i);
        }
        while (json_array_size(pending) >= PENDING_MAX)
            json_array_remove(pending, 0);
        entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "s", state, "n", nonce, "v", verifier, "p", prov_name(p),
                          "r", return_to, "e", (json_int_t)(now + PENDING_TTL_MS));
        /* a step-up: the ID token must show an authentication from now on */
        if (again)
            json_object_set_new(entry, "a", json_integer((json_int_t)(now / 1000)));
        if (link_to != NULL)
            json_object_set_new(entry, "l", json_string(link_to));
        /* the console's mark: the callback makes a staff session (console_staff_sign_in), never a customer's */
        if (console_return != NULL)
            json_object_set_new(entry, "k", json_string("console"));
        {
            /* ties the steps of one login together in the audit trail */
            char flow[32];
            gw_random_token(flow, sizeof(flow), 12);
            json_object_set_new(entry, "f", json_string(flow));
        }
        json_array_append_new(pending, entry);
    }
    set_pending(req, pending);
    json_decref(pending);
    free(return_to);
    redirect(req, url);
    free(url);
    explicit_bzero(verifier, sizeof(verifier));
    return 0;
}

static int login_callback(h2o_req_t *req, struct gw_req *gr, prov_t *p)
{
    h2o_iovec_t q = query_of(req);
    char *code = NULL, *state = NULL, *iss = NULL, *error = NULL;
    int ncode = gw_query_param(q.base, q.len, "code", &code), nstate = gw_query_param(q.base, q.len, "state", &state);
    int niss = gw_query_param(q.base, q.len, "iss", &iss), nerror = gw_query_param(q.base, q.len, "error", &error);
    json_t *pending = NULL, *entry = NULL;
    size_t i, found = SIZE_MAX;
    struct job *j;
#define REFUSE(status, code, text)                                                                                     \
    do {                                                                                                               \
        audit_refusal(req, gr, p, "callback_refused", code,                                                            \
                      entry != NULL ? json_string_value(json_object_get(entry, "f")) : NULL, NULL, NULL, NULL);        \
        rate_charge_failed_callback(gr->client);                                                                       \
        refuse_page(req, status, code, text);                                                                          \
    } while (0)

    if (ncode > 1 || nstate > 1 || niss > 1 || nerror > 1 || ncode < 0 || nstate < 0 || niss < 0 || nerror < 0) {
        REFUSE(400, "duplicate_parameter", "The sign-in answer was malformed.");
        goto Exit;
    }
    pending = open_pending(req);
    if (nstate == 1 && pending != NULL) {
        json_array_foreach(pending, i, entry)
        {
            const char *s = json_string_value(json_object_get(entry, "s"));
            if (s != NULL && strlen(s) == strlen(state) && gw_ct_equal(s, state, strlen(s))) {
                found = i;
                break;
            }
        }
    }
    /* whatever happens next, a state is single use: it leaves the cookie now */
    if (found != SIZE_MAX) {
        entry = json_incref(json_array_get(pending, found));
        json_array_remove(pending, found);
        set_pending(req, pending);
    } else {
        entry = NULL;
    }
    if (nerror == 1) {
        REFUSE(401, "provider_error", "The sign-in was cancelled or refused at the provider.");
        goto Exit;
    }
    if (ncode != 1 || nstate != 1) {
        REFUSE(400, "missing_parameter", "The sign-in answer was incomplete.");
        goto Exit;
    }
    if (pending == NULL) {
        REFUSE(400, "state_cookie_missing",
               "This browser has no sign-in in progress (cookies may be blocked). Please start again.");
        goto Exit;
    }
    if (entry == NULL) {
        REFUSE(400, "state_unknown", "This sign-in is unknown or was already used. Please start again.");
        goto Exit;
    }
    if (json_string_value(json_object_get(entry, "p")) == NULL ||
        strcmp(json_string_value(json_object_get(entry, "p")), prov_name(p)) != 0) {
        REFUSE(400, "state_foreign", "This sign-in was started with another provider.");
        goto Exit;
    }
    if ((uint64_t)json_integer_value(json_object_get(entry, "e")) <= now_ms()) {
        REFUSE(400, "state_expired", "This sign-in took too long. Please start again.");
        goto Exit;
    }
    if (!state_first_use(state, (uint64_t)json_integer_value(json_object_get(entry, "e")))) {
        REFUSE(400, "state_replayed", "This sign-in was already used. Please start again.");
        goto Exit;
    }
    /* RFC 9207: when the provider names itself, it must be the one we sent the browser to */
    if (niss == 1 && (prov_issuer(p) == NULL || strcmp(iss, prov_issuer(p)) != 0)) {
        REFUSE(400, "issuer_mismatch", "The sign-in answer came from an unexpected provider.");
        goto Exit;
    }
    if ((j = job_new(req, gr->thread, JOB_LOGIN)) == NULL) {
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        goto Exit;
    }
    j->prov = p;
    j->code = code;
    code = NULL;
    job_context(j, req, gr);
    if (json_string_value(json_object_get(entry, "f")) != NULL)
        snprintf(j->flow_id, sizeof(j->flow_id), "%s", json_string_value(json_object_get(entry, "f")));
    if (json_string_value(json_object_get(entry, "l")) != NULL) {
        /* an explicit link: only for the customer who started it, still signed in on this browser */
        uint8_t hash[32];
        int presented;
        json_t *s = lookup_session(req, 1, 0, hash, &presented, NULL);
        const char *cid = s != NULL ? json_string_value(json_object_get(s, "customer_id")) : NULL;
        if (cid == NULL || strcmp(cid, json_string_value(json_object_get(entry, "l"))) != 0) {
            json_decref(s);
            j->guard->job = NULL;
            job_free(j);
            REFUSE(401, "link_session_mismatch", "Sign in again before adding another sign-in method.");
            goto Exit;
        }
        snprintf(j->link_to, sizeof(j->link_to), "%s", cid);
        json_decref(s);
    }
    j->verifier = strdup(json_string_value(json_object_get(entry, "v")));
    j->nonce = strdup(json_string_value(json_object_get(entry, "n")));
    j->return_to = strdup(json_string_value(json_object_get(entry, "r")));
    j->auth_since = (int64_t)json_integer_value(json_object_get(entry, "a"));
    if (json_string_value(json_object_get(entry, "k")) != NULL &&
        strcmp(json_string_value(json_object_get(entry, "k")), "console") == 0) {
        j->console = 1;
        j->cfg = gw_config_ref(gr->holder->cfg);
    }
    snprintf(j->channel, sizeof(j->channel), "%s", "web");
    job_submit(req, j);
Exit:
    json_decref(entry);
    json_decref(pending);
    free(code);
    free(state);
    free(iss);
    free(error);
    return 0;
#undef REFUSE
}

static int signin_page(h2o_req_t *req)
{
    char *return_to = safe_return_to(req), enc[3 * 2048 + 1];
    h2o_iovec_t html = h2o_iovec_init(H2O_STRLIT("<p>Choose how to sign in.</p>"));

    gw_url_encode(return_to, strlen(return_to), enc, sizeof(enc));
    for (size_t i = 0; i < A.num_provs; ++i) {
        const char *name = prov_name(A.provs[i]);
        size_t cap = strlen(name) + strlen(enc) + 64;
        char *link = h2o_mem_alloc_pool(&req->pool, cap);
        snprintf(link, cap, "/.auth/login/%s?return_to=%s", name, enc);
        html =
            h2o_concat(&req->pool, html, h2o_iovec_init(H2O_STRLIT("<a class=\"btn\" href=\"")),
                       h2o_htmlescape(&req->pool, link, strlen(link)), h2o_iovec_init(H2O_STRLIT("\">Continue with ")),
                       h2o_htmlescape(&req->pool, prov_display_name(A.provs[i]), strlen(prov_display_name(A.provs[i]))),
                       h2o_iovec_init(H2O_STRLIT("</a>")));
    }
    if (A.num_provs == 0)
        html = h2o_iovec_init(H2O_STRLIT("<p>No sign-in method is configured on this gateway.</p>"));
    free(return_to);
    gw_send_page(req, 200, "OK", "Sign in", html.base);
    return 0;
}

static int me(h2o_req_t *req)
{
    uint8_t hash[32];
    int presented;
    json_t *s = lookup_session(req, 1, 1, hash, &presented, NULL), *cust = NULL, *out, *ids, *id;
    size_t i;

    if (s == NULL) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       presented ? "Bearer error=\"invalid_token\"" : "Bearer realm=\"journeygate\"",
                       presented ? sizeof("Bearer error=\"invalid_token\"") - 1
                                 : sizeof("Bearer realm=\"journeygate\"") - 1);
        gw_send_error_json(req, 401, "Unauthorized", "unauthenticated", "not signed in");
        return 0;
    }
    if (store_customer_get(A.store, json_string_value(json_object_get(s, "customer_id")), &cust) != GW_OK) {
        json_decref(s);
        gw_send_error_json(req, 401, "Unauthorized", "unauthenticated", "not signed in");
        return 0;
    }
    ids = json_array();
    json_array_foreach(json_object_get(cust, "identities"), i, id)
    {
        json_array_append_new(ids,
                              json_pack("{s:O, s:O, s:O?, s:O}", "provider", json_object_get(id, "provider"), "subject",
                                        json_object_get(id, "subject"), "email", json_object_get(id, "email"),
                                        "email_verified", json_object_get(id, "email_verified")));
    }
    out = json_pack("{s:O, s:o, s:{s:O, s:O, s:O, s:I, s:I}}", "customer_id", json_object_get(cust, "id"), "identities",
                    ids, "session", "provider", json_object_get(s, "provider"), "kind", json_object_get(s, "kind"),
                    "channel", json_object_get(s, "channel"), "created",
                    json_integer_value(json_object_get(s, "created_ms")) / 1000, "expires",
                    json_integer_value(json_object_get(s, "expires_ms")) / 1000);
    json_decref(cust);
    json_decref(s);
    gw_send_json(req, 200, "OK", out);
    return 0;
}

/* the CSRF token of a signed-in session, from a form field or the X-CSRF-Token header */
static int csrf_ok(h2o_req_t *req, json_t *s)
{
    const char *csrf = json_string_value(json_object_get(s, "csrf"));
    char *given = NULL;
    ssize_t cur = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-csrf-token"), -1);
    int ok;

    if (cur != -1)
        given = h2o_strdup(NULL, req->headers.entries[cur].value.base, req->headers.entries[cur].value.len).base;
    else if (req->entity.base != NULL && gw_query_param(req->entity.base, req->entity.len, "csrf", &given) != 1) {
        free(given);
        given = NULL;
    }
    ok = given != NULL && csrf != NULL && strlen(given) == strlen(csrf) && gw_ct_equal(given, csrf, strlen(csrf));
    free(given);
    return ok;
}

static int logout(h2o_req_t *req, struct gw_req *gr)
{
    uint8_t hash[32];
    int presented;
    json_t *s = lookup_session(req, 1, 0, hash, &presented, NULL);
    const char *csrf;

    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        if (s == NULL) {
            gw_send_page(req, 200, "OK", "Signed out", "<p>You are not signed in.</p>");
            return 0;
        }
        csrf = json_string_value(json_object_get(s, "csrf"));
        size_t cap = strlen(csrf) + 300;
        char *html = h2o_mem_alloc_pool(&req->pool, cap);
        snprintf(html, cap,
                 "<p>Sign out of this site on this browser?</p><form method=\"post\" action=\"/.auth/logout\">"
                 "<input type=\"hidden\" name=\"csrf\" value=\"%s\"><button type=\"submit\">Sign out</button></form>",
                 esc(req, csrf));
        json_decref(s);
        gw_send_page(req, 200, "OK", "Sign out", html);
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_send_error_generic(req, 405, "Method Not Allowed", "method not allowed", 0);
        return 0;
    }
    if (s == NULL) {
        add_cookie(req, A.cookie_name, "", 0);
        gw_send_page(req, 200, "OK", "Signed out", "<p>You are not signed in.</p>");
        return 0;
    }
    /* CSRF: the token from the confirmation form, or the X-CSRF-Token header of a script */
    if (!csrf_ok(req, s)) {
        json_decref(s);
        gw_send_page(req, 403, "Forbidden", "Sign-out refused",
                     "<p>This sign-out request did not come from this site.</p>");
        return 0;
    }
    json_decref(s);
    struct job *j = job_new(req, gr->thread, JOB_LOGOUT);
    if (j == NULL) {
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        return 0;
    }
    memcpy(j->session_hash, hash, 32);
    job_context(j, req, gr);
    job_submit(req, j);
    return 0;
}

static int token_endpoint(h2o_req_t *req, struct gw_req *gr)
{
    gw_token_request_t body;
    const char *problem;
    prov_t *p;
    struct job *j;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        gw_send_error_json(req, 405, "Method Not Allowed", "invalid_request", "use POST");
        return 0;
    }
    if (gw_token_request_parse(req->entity.base, req->entity.len, A.known, A.num_provs, &body, &problem) != GW_OK) {
        gw_send_error_json(req, 400, "Bad Request", "invalid_request", problem);
        return 0;
    }
    p = A.provs[body.provider];
    if ((j = job_new(req, gr->thread, JOB_MOBILE)) == NULL) {
        json_decref(body.root);
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        return 0;
    }
    j->prov = p;
    j->input_token = strdup(body.token);
    job_context(j, req, gr);
    snprintf(j->channel, sizeof(j->channel), "%s", "mobile");
    json_decref(body.root);
    job_submit(req, j);
    return 0;
}

static int link_start(h2o_req_t *req, prov_t *p)
{
    uint8_t hash[32];
    int presented, r;
    json_t *s = lookup_session(req, 1, 0, hash, &presented, NULL);

    if (s == NULL) {
        gw_send_page(req, 401, "Unauthorized", "Sign in first",
                     "<p>Sign in before adding another sign-in method.</p><p><a class=\"btn\" "
                     "href=\"/.auth/signin\">Sign in</a></p>");
        return 0;
    }
    r = login_start(req, p, json_string_value(json_object_get(s, "customer_id")), NULL);
    json_decref(s);
    return r;
}

static int unlink_endpoint(h2o_req_t *req, struct gw_req *gr, prov_t *p)
{
    uint8_t hash[32];
    int presented;
    json_t *s;
    struct job *j;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        gw_send_error_json(req, 405, "Method Not Allowed", "invalid_request", "use POST");
        return 0;
    }
    if ((s = lookup_session(req, 1, 1, hash, &presented, NULL)) == NULL) {
        gw_send_error_json(req, 401, "Unauthorized", "unauthenticated", "not signed in");
        return 0;
    }
    /* a cookie session needs the CSRF token; a bearer token is not sent by browsers on their own */
    if (strcmp(json_string_value(json_object_get(s, "kind")), "cookie") == 0 && !csrf_ok(req, s)) {
        json_decref(s);
        gw_send_error_json(req, 403, "Forbidden", "csrf", "missing or wrong CSRF token");
        return 0;
    }
    if ((j = job_new(req, gr->thread, JOB_UNLINK)) == NULL) {
        json_decref(s);
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        return 0;
    }
    j->prov = p;
    snprintf(j->customer_id, sizeof(j->customer_id), "%s", json_string_value(json_object_get(s, "customer_id")));
    json_decref(s);
    job_context(j, req, gr);
    job_submit(req, j);
    return 0;
}

static prov_t *facebook_provider(void)
{
    for (size_t i = 0; i < A.num_provs; ++i)
        if (strcmp(prov_type(A.provs[i]), "facebook") == 0)
            return A.provs[i];
    return NULL;
}

/* Facebook's data deletion callback: a signed request names the user to erase */
static int fb_data_deletion(h2o_req_t *req, struct gw_req *gr)
{
    prov_t *p = facebook_provider();
    char *signed_request = NULL, user[128];
    struct job *j;

    if (p == NULL) {
        gw_send_error_json(req, 404, "Not Found", "not_found", "no Facebook provider is configured");
        return 0;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) || req->entity.base == NULL ||
        gw_query_param(req->entity.base, req->entity.len, "signed_request", &signed_request) != 1 ||
        prov_facebook_signed_request(p, signed_request, (int64_t)time(NULL), user, sizeof(user)) != GW_OK) {
        free(signed_request);
        gw_send_error_json(req, 400, "Bad Request", "invalid_request", "a valid signed_request is required");
        return 0;
    }
    free(signed_request);
    if ((j = job_new(req, gr->thread, JOB_FB_DELETE)) == NULL) {
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        return 0;
    }
    j->prov = p;
    snprintf(j->subject, sizeof(j->subject), "%s", user);
    gw_random_token(j->confirmation, sizeof(j->confirmation), 16);
    job_context(j, req, gr);
    job_submit(req, j);
    return 0;
}

static int fb_deletion_status(h2o_req_t *req)
{
    h2o_iovec_t q = query_of(req);
    char *code = NULL;
    json_t *st = NULL;

    if (gw_query_param(q.base, q.len, "id", &code) != 1 || strlen(code) > 64 ||
        store_deletion_get(A.store, code, &st) != GW_OK) {
        free(code);
        gw_send_page(req, 404, "Not Found", "Unknown deletion request",
                     "<p>No data deletion request has this confirmation code.</p>");
        return 0;
    }
    {
        char html[512];
        snprintf(html, sizeof(html), "<p>Your data deletion request <code>%s</code> is complete: %s.</p>",
                 esc(req, code),
                 strcmp(json_string_value(json_object_get(st, "status")), "deleted") == 0
                     ? "the data this site held for your Facebook account has been erased"
                     : "this site held no data for your Facebook account");
        free(code);
        json_decref(st);
        gw_send_page(req, 200, "OK", "Data deletion", html);
    }
    return 0;
}

/* copies the name of the ingest key in the Authorization header into `name`; 0 when there is no valid key */
static int ingest_source(h2o_req_t *req, char *name, size_t name_size)
{
    ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    h2o_iovec_t v;
    int found = 0;

    if (cur == -1)
        return 0;
    v = req->headers.entries[cur].value;
    if (v.len <= 7 || !h2o_lcstris(v.base, 7, H2O_STRLIT("bearer ")))
        return 0;
    pthread_rwlock_rdlock(&A.ingest_lock);
    for (size_t i = 0; !found && A.ingest_keys != NULL && i < A.ingest_keys->count; ++i) {
        const char *key = A.ingest_keys->k[i].key;
        if (strlen(key) == v.len - 7 && gw_ct_equal(key, v.base + 7, v.len - 7)) {
            snprintf(name, name_size, "%s", A.ingest_keys->k[i].name);
            found = 1;
        }
    }
    pthread_rwlock_unlock(&A.ingest_lock);
    return found;
}

/* what passes gw_ingest_parse() fits the store's records as it is */
_Static_assert(GW_CUSTOMER_ID_LEN == STORE_ID_LEN, "customer ids");
_Static_assert(GW_INGEST_SUBJECT_MAX <= STORE_TP_STR_MAX && GW_INGEST_TOUCHPOINT_MAX <= STORE_TP_STR_MAX &&
                   GW_INGEST_CHANNEL_MAX <= STORE_TP_STR_MAX,
               "touchpoint strings");
_Static_assert(GW_INGEST_EXTRA_MAX <= STORE_TP_EXTRA_MAX, "touchpoint extra");

/* POST /.auth/touchpoints: touchpoints of channels that do not pass through the proxy */
static int ingest_endpoint(h2o_req_t *req, struct gw_req *gr)
{
    char source[64];
    int keyed = ingest_source(req, source, sizeof(source));
    gw_ingest_batch_t batch;
    const char *problem;
    json_t *results;
    size_t i, e;
    gw_status_t st;
    struct job *j;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        gw_send_error_json(req, 405, "Method Not Allowed", "invalid_request", "use POST");
        return 0;
    }
    /* a call without a valid key counts as a failed sign-in; a keyed one draws on its own, larger bucket */
    if (rate_limited(req, gr, keyed ? RATE_INGEST : RATE_SIGNIN, 1, 1, keyed ? "ingest" : "ingest_unauthenticated"))
        return 0;
    if (!keyed) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"journeygate-ingest\", error=\"invalid_token\""));
        gw_send_error_json(req, 401, "Unauthorized", "invalid_token", "an ingest API key is required");
        return 0;
    }
    st = gw_ingest_parse(req->entity.base, req->entity.len, A.known, A.num_provs, now_ms(), &batch, &problem);
    if (st != GW_OK) {
        if (st == GW_ENOMEM)
            h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        else
            gw_send_error_json(req, st == GW_ETOOBIG ? 413 : 400,
                               st == GW_ETOOBIG ? "Payload Too Large" : "Bad Request", "invalid_request", problem);
        return 0;
    }
    /* every event gets its own result, in the request's order; refused ones are final here */
    results = json_array();
    for (i = 0, e = 0; i < batch.total; ++i) {
        if (e < batch.error_count && batch.errors[e].index == i) {
            json_array_append_new(results, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)i, "status", "error",
                                                     "error", batch.errors[e].reason));
            ++e;
        } else {
            json_array_append_new(results, json_pack("{s:I}", "index", (json_int_t)i));
        }
    }
    if ((j = job_new(req, gr->thread, JOB_INGEST)) == NULL) {
        gw_ingest_batch_free(&batch);
        json_decref(results);
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        return 0;
    }
    j->batch = batch;
    j->results = results;
    memcpy(j->source, source, sizeof(j->source));
    job_submit(req, j);
    return 0;
}

int auth_handle_endpoint(h2o_req_t *req, struct gw_req *gr, const char *path, size_t path_len)
{
    static const char login[] = "/.auth/login/";
    prov_t *p;

    if (path_len > sizeof(login) - 1 && memcmp(path, login, sizeof(login) - 1) == 0) {
        const char *name = path + sizeof(login) - 1, *slash = memchr(name, '/', path_len - (sizeof(login) - 1));
        size_t name_len = slash != NULL ? (size_t)(slash - name) : path_len - (sizeof(login) - 1);
        if ((p = find_prov(name, name_len)) == NULL) {
            gw_send_page(req, 404, "Not Found", "Unknown sign-in method", "<p>This sign-in method does not exist.</p>");
            return 0;
        }
        if (slash == NULL)
            return rate_limited(req, gr, RATE_SIGNIN, 1, 1, "login") ? 0 : login_start(req, p, NULL, NULL);
        /* a callback is refused while its address has no token left; only a failed one takes one */
        if (strncmp(slash, "/callback", path + path_len - slash) == 0 && (size_t)(path + path_len - slash) == 9)
            return rate_limited(req, gr, RATE_SIGNIN, 1, 0, "callback") ? 0 : login_callback(req, gr, p);
        gw_send_page(req, 404, "Not Found", "Not found", "<p>No such page.</p>");
        return 0;
    }
    {
        static const char link[] = "/.auth/link/", unlink[] = "/.auth/unlink/";
        if (path_len > sizeof(link) - 1 && memcmp(path, link, sizeof(link) - 1) == 0) {
            if ((p = find_prov(path + sizeof(link) - 1, path_len - (sizeof(link) - 1))) == NULL) {
                gw_send_page(req, 404, "Not Found", "Unknown sign-in method",
                             "<p>This sign-in method does not exist.</p>");
                return 0;
            }
            return rate_limited(req, gr, RATE_SIGNIN, 1, 1, "link") ? 0 : link_start(req, p);
        }
        if (path_len > sizeof(unlink) - 1 && memcmp(path, unlink, sizeof(unlink) - 1) == 0) {
            if ((p = find_prov(path + sizeof(unlink) - 1, path_len - (sizeof(unlink) - 1))) == NULL) {
                gw_send_error_json(req, 404, "Not Found", "not_found", "unknown provider");
                return 0;
            }
            return unlink_endpoint(req, gr, p);
        }
    }
#define IS(lit) (path_len == sizeof(lit) - 1 && memcmp(path, lit, path_len) == 0)
    if (IS("/.auth/facebook/data-deletion"))
        return fb_data_deletion(req, gr);
    if (IS("/.auth/facebook/deletion"))
        return fb_deletion_status(req);
    if (IS("/.auth/jwks.json")) {
        char *jwks = A.signer != NULL ? pol_signer_jwks(A.signer) : NULL;
        if (jwks == NULL) {
            gw_send_error_json(req, 404, "Not Found", "not_found", "no signing key");
            return 0;
        }
        req->res.status = 200;
        req->res.reason = "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("max-age=300"));
        h2o_iovec_t body = h2o_strdup(&req->pool, jwks, SIZE_MAX);
        free(jwks);
        h2o_send_inline(req, body.base, body.len);
        return 0;
    }
    if (IS("/.auth/signin"))
        return signin_page(req);
    if (IS("/.auth/me"))
        return me(req);
    if (IS("/.auth/logout"))
        return logout(req, gr);
    if (IS("/.auth/token"))
        return rate_limited(req, gr, RATE_SIGNIN, 1, 1, "token") ? 0 : token_endpoint(req, gr);
    if (IS("/.auth/touchpoints"))
        return ingest_endpoint(req, gr);
#undef IS
    gw_send_error_json(req, 404, "Not Found", "not_found", "no such endpoint");
    return 0;
}

/* ------------------------------------------------------------------ routes */

/*
 * The age policies see (max_session_age_s): seconds since the person last authenticated at the
 * provider; -1 (unknown, which a step-up rule treats as too old) when the sign-in proved no such time.
 */
static int64_t session_age_s(const struct session_view *v, uint64_t now)
{
    if (v == NULL || v->auth_ms == 0)
        return -1;
    return now > v->auth_ms ? (int64_t)(now - v->auth_ms) / 1000 : 0;
}

/* the facts a policy decides on, from the session (v; NULL: anonymous) and the request */
static pol_decision_t decide(const gw_config_t *cfg, const gw_route_t *route, h2o_req_t *req,
                             const struct session_view *v, uint64_t now)
{
    char method[16];
    size_t mlen = req->method.len < sizeof(method) - 1 ? req->method.len : sizeof(method) - 1;
    pol_facts_t f;

    memcpy(method, req->method.base, mlen);
    method[mlen] = '\0';
    memset(&f, 0, sizeof(f));
    if (v != NULL) {
        /* the view's strings are the record's own, NUL-terminated */
        f.signed_in = 1;
        f.provider = v->provider.base;
        f.email = v->email.base;
        f.email_verified = v->email_verified;
        f.hd = v->hd.base;
        f.customer_id = v->customer_id.base;
        f.linked_providers = v->linked_providers;
    }
    f.channel = route->channel;
    f.method = method;
    f.session_age_s = session_age_s(v, now);
    return pol_eval(cfg->policies, route->policy, &f);
}

/* whether k holds the decision for this configuration, route and request method at now */
static int kept_for(const struct kept_decision *k, const gw_config_t *cfg, const gw_route_t *route, h2o_req_t *req,
                    uint64_t now)
{
    return k->route == route && k->serial == cfg->serial && now < k->until_ms && strlen(k->method) == req->method.len &&
           memcmp(k->method, req->method.base, req->method.len) == 0;
}

/* keeps d in k until until_ms; a method too long for k is not kept */
static void keep(struct kept_decision *k, const gw_config_t *cfg, const gw_route_t *route, h2o_req_t *req,
                 pol_decision_t d, uint64_t until_ms)
{
    if (req->method.len >= sizeof(k->method))
        return;
    k->decision = d;
    k->route = route;
    k->serial = cfg->serial;
    k->until_ms = until_ms;
    memcpy(k->method, req->method.base, req->method.len);
    k->method[req->method.len] = '\0';
}

/* decide() for a request without a session, reused per route and method for the same configuration */
static pol_decision_t anon_decision(h2o_req_t *req, const gw_config_t *cfg, const gw_route_t *route)
{
    struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, ctx, req->conn->ctx);
    uintptr_t r = (uintptr_t)route;
    unsigned m0 = req->method.len != 0 ? (unsigned char)req->method.base[0] : 0;
    struct kept_decision *k =
        &th->auth_cache->anon[((r >> 4) ^ (r >> 12) ^ req->method.len ^ m0) % ANON_DECISION_SLOTS];
    pol_decision_t d;

    if (kept_for(k, cfg, route, req, 0))
        return k->decision;
    d = decide(cfg, route, req, NULL, 0);
    keep(k, cfg, route, req, d, UINT64_MAX);
    return d;
}

/*
 * decide(), reusing the session's last decision when the config, the route and the method are the
 * same: the facts come from the session record (re-read at least every SESSION_CACHE_MS) and the
 * route. A policy that looks at the session's age is decided again once the age reaches one of
 * its limits (pol_stable_until_age()).
 */
static pol_decision_t cached_decision(h2o_req_t *req, struct gw_req *gr, const gw_route_t *route, json_t *s,
                                      uint64_t now)
{
    const gw_config_t *cfg = gr->holder->cfg;
    struct cache_slot *slot = slot_of(req, gr, s);
    struct session_view tmp;
    const struct session_view *v;
    pol_decision_t d;
    int64_t age, until;

    if (s == NULL)
        return anon_decision(req, cfg, route);
    if (slot != NULL && kept_for(&slot->decision, cfg, route, req, now))
        return slot->decision.decision;
    v = view_for(slot, s, &tmp);
    d = decide(cfg, route, req, v, now);
    age = session_age_s(v, now);
    if (slot != NULL && age < 0) /* an unknown age stays unknown: the decision holds */
        keep(&slot->decision, cfg, route, req, d, UINT64_MAX);
    else if (slot != NULL && (until = pol_stable_until_age(cfg->policies, route->policy, age)) > age)
        keep(&slot->decision, cfg, route, req, d,
             until >= (int64_t)(UINT64_MAX / 2000) ? UINT64_MAX : v->auth_ms + (uint64_t)until * 1000);
    return d;
}

/* the answer to a request that must sign in first: the sign-in page for a browser, else 401 */
static int need_sign_in(h2o_req_t *req, int allow_cookie, int presented)
{
    if (allow_cookie && wants_html(req)) {
        char enc[3 * 2048 + 1], *loc;
        size_t plen = req->path.len;
        if (plen > 2048 || gw_url_encode(req->path.base, plen, enc, sizeof(enc)) == 0)
            snprintf(enc, sizeof(enc), "%%2F");
        size_t cap = strlen(enc) + 32;
        loc = h2o_mem_alloc_pool(&req->pool, cap);
        snprintf(loc, cap, "/.auth/signin?return_to=%s", enc);
        redirect(req, loc);
        return 0;
    }
    if (presented)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"journeygate\", error=\"invalid_token\""));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"journeygate\""));
    gw_send_error_json(req, 401, "Unauthorized", presented ? "invalid_token" : "unauthenticated", "sign-in required");
    return 0;
}

/*
 * Routes with a session, a bearer token or either: the session is required, then the policy
 * decides. Routes with auth "none" reach here only when they have a policy: the session is then
 * optional (looked up when presented), the policy decides on what there is, and an anonymous
 * request it refuses is asked to sign in.
 */
int auth_check_route(h2o_req_t *req, struct gw_req *gr, const gw_route_t *route)
{
    uint8_t hash[32];
    int presented;
    int optional = route->auth == GW_AUTH_NONE;
    int allow_cookie = optional || route->auth == GW_AUTH_SESSION || route->auth == GW_AUTH_ANY;
    int allow_bearer = optional || route->auth == GW_AUTH_BEARER || route->auth == GW_AUTH_ANY;
    json_t *s = lookup_session(req, allow_cookie, allow_bearer, hash, &presented, &gr->cache_slot);
    uint64_t now = now_ms();

    if (s == NULL && !optional)
        return need_sign_in(req, allow_cookie, presented);
    {
        pol_decision_t d = cached_decision(req, gr, route, s, now);
        if (d.outcome != POL_ALLOW && s == NULL)
            return need_sign_in(req, allow_cookie, presented);
        if (d.outcome == POL_STEP_UP) {
            /* a fresh sign-in is required: the browser goes back through its provider */
            if (allow_cookie && wants_html(req)) {
                char enc[3 * 2048 + 1], *loc;
                const char *prov = json_string_value(json_object_get(s, "provider"));
                size_t cap;
                if (req->path.len > 2048 || gw_url_encode(req->path.base, req->path.len, enc, sizeof(enc)) == 0)
                    snprintf(enc, sizeof(enc), "%%2F");
                cap = strlen(enc) + strlen(prov) + 48;
                loc = h2o_mem_alloc_pool(&req->pool, cap);
                snprintf(loc, cap, "/.auth/login/%s?reauth=1&return_to=%s", prov, enc);
                json_decref(s);
                redirect(req, loc);
                return 0;
            }
            json_decref(s);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer realm=\"journeygate\", error=\"insufficient_user_authentication\""));
            gw_send_error_json(req, 401, "Unauthorized", "step_up_required", "a more recent sign-in is required");
            return 0;
        }
        if (d.outcome != POL_ALLOW) {
            char msg[200];
            snprintf(msg, sizeof(msg), "refused by policy \"%s\"", route->policy);
            audit_refusal(req, gr, NULL, "policy_denied", route->policy, NULL,
                          json_string_value(json_object_get(s, "customer_id")), route->name,
                          json_string_value(json_object_get(s, "provider")));
            json_decref(s);
            if (wants_html(req)) {
                char html[400];
                snprintf(html, sizeof(html), "<p>You are signed in, but this page is not open to your account: %s.</p>",
                         esc(req, msg));
                gw_send_page(req, 403, "Forbidden", "Not allowed", html);
            } else {
                gw_send_error_json(req, 403, "Forbidden", "forbidden", msg);
            }
            return 0;
        }
    }
    /* idle expiry slides; the store is written at most once a minute per session, off the loop */
    if (s != NULL) {
        struct cache_slot *slot = slot_of(req, gr, s);
        /* one touch per session and minute from this thread, not one per request until it lands */
        if (slot != NULL && now > slot->view.last_seen_ms + touch_every(slot->view.idle_timeout_ms) &&
            now > slot->touch_requested_ms + touch_every(slot->view.idle_timeout_ms) &&
            memcmp(slot->hash, hash, 32) == 0) {
            slot->touch_requested_ms = now;
            struct job *j = job_new(NULL, NULL, JOB_TOUCH);
            if (j != NULL) {
                memcpy(j->session_hash, hash, 32);
                /* background work: never in the way of a sign-in */
                if (gw_workers_submit_background(A.workers, job_run, j) != GW_OK)
                    job_free(j);
            }
        }
    }
    gr->session = s;
    return 1;
}

/*
 * Appends a request header without copying: the name is static, and the value must live until
 * the request ends. An absent value (base NULL) adds nothing.
 */
static void add_upstream_header(h2o_req_t *req, h2o_iovec_t *name, const char *orig_name, h2o_iovec_t value)
{
    h2o_header_t *h;

    if (value.base == NULL)
        return;
    /* never a line break (or any control character) upstream, whatever a record holds */
    if (gw_has_control(value.base, value.len))
        return;
    h2o_vector_reserve(&req->pool, &req->headers, req->headers.size + 1);
    h = &req->headers.entries[req->headers.size++];
    h->name = name;
    h->orig_name = orig_name;
    h->value = value;
}

void auth_prepare_upstream(h2o_req_t *req, struct gw_req *gr, const gw_route_t *route)
{
    static const char *names[4];
    ssize_t cur = -1;
    json_t *s = gr->session;

    names[0] = A.cookie_name;
    names[1] = A.login_cookie;
    names[2] = A.visitor_cookie;
    names[3] = NULL;
    /* the gateway's own cookies are never forwarded */
    while ((cur = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, cur)) != -1) {
        h2o_iovec_t v = req->headers.entries[cur].value;
        char *out = h2o_mem_alloc_pool(&req->pool, 2 * v.len + 1);
        size_t n = gw_cookie_strip(v.base, v.len, names, out);
        if (n == 0) {
            h2o_delete_header(&req->headers, cur);
            cur = -1; /* restart: entries moved */
            continue;
        }
        req->headers.entries[cur].value = h2o_iovec_init(out, n);
    }
    if (s == NULL)
        return;
    {
        static h2o_iovec_t n_customer = {H2O_STRLIT("x-customer-id")}, n_email = {H2O_STRLIT("x-customer-email")},
                           n_provider = {H2O_STRLIT("x-auth-provider")}, n_subject = {H2O_STRLIT("x-auth-subject")},
                           n_channel = {H2O_STRLIT("x-journey-channel")}, n_sid = {H2O_STRLIT("x-journey-session")},
                           n_assertion = {H2O_STRLIT("x-identity-assertion")};
        struct cache_slot *slot = slot_of(req, gr, s);
        struct session_view tmp;
        const struct session_view *v = view_for(slot, s, &tmp);

        /* the values are the session record's strings: gr->session keeps it until the request ends */
        add_upstream_header(req, &n_customer, "X-Customer-Id", v->customer_id);
        add_upstream_header(req, &n_email, "X-Customer-Email", v->email);
        add_upstream_header(req, &n_provider, "X-Auth-Provider", v->provider);
        add_upstream_header(req, &n_subject, "X-Auth-Subject", v->subject);
        add_upstream_header(req, &n_channel, "X-Journey-Channel",
                            h2o_iovec_init(route->channel, strlen(route->channel)));
        add_upstream_header(req, &n_sid, "X-Journey-Session", v->sid);
        if (A.signer == NULL)
            return;
        /* the signed identity, reused per session and route while it has over half its life left */
        uint64_t now = now_ms();
        if (slot == NULL || slot->assertion == NULL || slot->assertion_route != route ||
            now >= slot->assertion_until_ms) {
            json_t *claims = json_pack("{s:s?, s:s?, s:s?, s:s, s:s, s:s}", "customer_id", v->customer_id.base, "email",
                                       v->email.base, "provider", v->provider.base, "channel", route->channel, "route",
                                       route->name, "aud", gr->holder->cfg->upstreams[route->upstream].name);
            char *token = claims != NULL ? pol_signer_sign(A.signer, claims, A.assertion_ttl_s) : NULL;
            size_t len = token != NULL ? strlen(token) : 0;
            char *shared;
            json_decref(claims);
            if (token == NULL)
                return;
            /* a chunk the slot and every request that sent it hold a reference to */
            shared = h2o_mem_alloc_shared(NULL, len + 1, NULL);
            memcpy(shared, token, len + 1);
            free(token);
            h2o_mem_link_shared(&req->pool, shared); /* the request's reference */
            if (slot != NULL) {
                /* the slot keeps the first one */
                if (slot->assertion != NULL)
                    h2o_mem_release_shared(slot->assertion);
                slot->assertion = shared;
                slot->assertion_len = len;
                slot->assertion_route = route;
                slot->assertion_until_ms = now + A.assertion_ttl_s * 1000 / 2;
            } else {
                h2o_mem_release_shared(shared);
            }
            add_upstream_header(req, &n_assertion, "X-Identity-Assertion", h2o_iovec_init(shared, len));
        } else {
            h2o_mem_link_shared(&req->pool, slot->assertion);
            add_upstream_header(req, &n_assertion, "X-Identity-Assertion",
                                h2o_iovec_init(slot->assertion, slot->assertion_len));
        }
    }
}

/* ------------------------------------------------------------------ admin API */

struct audit_search {
    uint64_t from_ms, to_ms;
    char *event, *customer_id, *outcome;
    size_t limit;
    json_t *out;
    uint64_t last_seq;
    int more;
};

static int audit_match(json_t *r, void *arg)
{
    struct audit_search *q = arg;
    uint64_t ts = (uint64_t)json_integer_value(json_object_get(r, "ts_ms"));
    const char *ev = json_string_value(json_object_get(r, "event"));
    const char *cid = json_string_value(json_object_get(r, "customer_id"));
    const char *oc = json_string_value(json_object_get(r, "outcome"));

    if (ts < q->from_ms || ts > q->to_ms || (q->event != NULL && (ev == NULL || strcmp(ev, q->event) != 0)) ||
        (q->customer_id != NULL && (cid == NULL || strcmp(cid, q->customer_id) != 0)) ||
        (q->outcome != NULL && (oc == NULL || strcmp(oc, q->outcome) != 0)))
        return 0;
    if (json_array_size(q->out) == q->limit) {
        q->more = 1;
        return 1;
    }
    json_array_append(q->out, r);
    q->last_seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
    return 0;
}

static uint64_t query_u64(h2o_iovec_t q, const char *name, uint64_t dflt)
{
    char *v = NULL, *end;
    uint64_t n = dflt;
    if (gw_query_param(q.base, q.len, name, &v) == 1) {
        n = strtoull(v, &end, 10);
        if (*end != '\0')
            n = dflt;
    }
    free(v);
    return n;
}

/* GET /admin/audit?from_ms&to_ms&event&customer_id&outcome&after_seq&limit: search, oldest first, paginated */
static int admin_audit(h2o_req_t *req)
{
    h2o_iovec_t q = query_of(req);
    struct audit_search s = {0, UINT64_MAX, NULL, NULL, NULL, 100, json_array(), 0, 0};
    uint64_t after = query_u64(q, "after_seq", 0);

    s.from_ms = query_u64(q, "from_ms", 0);
    s.to_ms = query_u64(q, "to_ms", UINT64_MAX);
    s.limit = (size_t)query_u64(q, "limit", 100);
    if (s.limit == 0 || s.limit > 1000)
        s.limit = 100;
    if (gw_query_param(q.base, q.len, "event", &s.event) != 1)
        s.event = NULL;
    if (gw_query_param(q.base, q.len, "customer_id", &s.customer_id) != 1)
        s.customer_id = NULL;
    if (gw_query_param(q.base, q.len, "outcome", &s.outcome) != 1)
        s.outcome = NULL;
    if (store_audit_foreach(A.store, after, audit_match, &s) != GW_OK) {
        json_decref(s.out);
        gw_send_error_json(req, 503, "Service Unavailable", "store_unavailable", "try again");
    } else {
        json_t *ans = json_pack("{s:o}", "records", s.out);
        if (s.more)
            json_object_set_new(ans, "next_after_seq", json_integer((json_int_t)s.last_seq));
        gw_send_json(req, 200, "OK", ans);
    }
    free(s.event);
    free(s.customer_id);
    free(s.outcome);
    return 0;
}

/* GET /admin/customers/ID/journey?since_ms&skip&limit: the journey in time order, paginated */
struct journey_page {
    uint64_t skip, limit;
    json_t *out;
    uint64_t last_ms, same_ms;
    int more;
};

static int journey_collect(const store_tp_t *tp, void *arg)
{
    struct journey_page *p = arg;
    uint64_t at = tp->occurred_at_ms;
    if (p->skip > 0) {
        --p->skip;
        if (at == p->last_ms)
            ++p->same_ms;
        else {
            p->last_ms = at;
            p->same_ms = 1;
        }
        return 0;
    }
    if (json_array_size(p->out) == p->limit) {
        p->more = 1;
        return 1;
    }
    json_array_append_new(p->out, store_tp_json(tp));
    if (at == p->last_ms)
        ++p->same_ms;
    else {
        p->last_ms = at;
        p->same_ms = 1;
    }
    return 0;
}

static int admin_journey(h2o_req_t *req, const char *id)
{
    h2o_iovec_t q = query_of(req);
    uint64_t since = query_u64(q, "since_ms", 0);
    struct journey_page p = {query_u64(q, "skip", 0), query_u64(q, "limit", 100), json_array(), since, 0, 0};
    json_t *c = NULL;

    if (p.limit == 0 || p.limit > 1000)
        p.limit = 100;
    if (store_customer_get(A.store, id, &c) != GW_OK) {
        json_decref(p.out);
        gw_send_error_json(req, 404, "Not Found", "not_found", "no such customer");
        return 0;
    }
    json_decref(c);
    store_journey(A.store, id, since, journey_collect, &p);
    {
        json_t *ans = json_pack("{s:s, s:o}", "customer_id", id, "touchpoints", p.out);
        /* the next page starts at the last time shown, skipping what was shown at that time */
        if (p.more)
            json_object_set_new(
                ans, "next", json_pack("{s:I, s:I}", "since_ms", (json_int_t)p.last_ms, "skip", (json_int_t)p.same_ms));
        gw_send_json(req, 200, "OK", ans);
    }
    return 0;
}

/* channel figures of a time window, computed in one pass (touchpoints are stored customer by customer) */
struct figures {
    uint64_t from, to;
    json_t *channels;    /* channel -> {touchpoints, customers} */
    json_t *transitions; /* "a -> b" -> count */
    json_t *paths;       /* "t1 > t2 > ..." -> count */
    char customer[STORE_ID_LEN + 1];
    json_t *seen; /* channels of the current customer */
    char last_channel[64], path[512];
    unsigned path_len;
    uint64_t customers, cross_channel, touchpoints;
};

static void figures_close_customer(struct figures *f)
{
    if (f->customer[0] == '\0')
        return;
    ++f->customers;
    if (json_object_size(f->seen) >= 2)
        ++f->cross_channel;
    if (f->path[0] != '\0') {
        json_t *n = json_object_get(f->paths, f->path);
        json_object_set_new(f->paths, f->path, json_integer(json_integer_value(n) + 1));
    }
    json_object_clear(f->seen);
    f->customer[0] = '\0';
    f->last_channel[0] = '\0';
    f->path[0] = '\0';
    f->path_len = 0;
}

static int figures_add(const store_tp_t *tp, void *arg)
{
    struct figures *f = arg;
    uint64_t at = tp->occurred_at_ms;
    const char *cid = tp->customer_id, *ch = tp->channel, *name = tp->touchpoint;
    json_t *c;

    if (at < f->from || at > f->to || cid == NULL || ch == NULL)
        return 0;
    if (strcmp(cid, f->customer) != 0) {
        figures_close_customer(f);
        snprintf(f->customer, sizeof(f->customer), "%s", cid);
    }
    ++f->touchpoints;
    if ((c = json_object_get(f->channels, ch)) == NULL) {
        c = json_pack("{s:i, s:i}", "touchpoints", 0, "customers", 0);
        json_object_set_new(f->channels, ch, c);
    }
    json_object_set_new(c, "touchpoints", json_integer(json_integer_value(json_object_get(c, "touchpoints")) + 1));
    if (json_object_get(f->seen, ch) == NULL) {
        json_object_set_new(f->seen, ch, json_true());
        json_object_set_new(c, "customers", json_integer(json_integer_value(json_object_get(c, "customers")) + 1));
    }
    if (f->last_channel[0] != '\0' && strcmp(f->last_channel, ch) != 0) {
        char key[140];
        snprintf(key, sizeof(key), "%s -> %s", f->last_channel, ch);
        json_object_set_new(f->transitions, key,
                            json_integer(json_integer_value(json_object_get(f->transitions, key)) + 1));
    }
    snprintf(f->last_channel, sizeof(f->last_channel), "%s", ch);
    /* the path: the first five touchpoints, repeats in a row collapsed */
    if (name != NULL && f->path_len < 5) {
        size_t len = strlen(f->path);
        const char *last = strrchr(f->path, '>');
        const char *prev = last != NULL ? last + 2 : f->path;
        if (len == 0 || strcmp(prev, name) != 0) {
            snprintf(f->path + len, sizeof(f->path) - len, "%s%s", len > 0 ? " > " : "", name);
            ++f->path_len;
        }
    }
    return 0;
}

static int admin_figures(h2o_req_t *req)
{
    h2o_iovec_t q = query_of(req);
    struct figures f;
    json_t *paths, *top;
    const char *key;
    json_t *val;

    memset(&f, 0, sizeof(f));
    f.from = query_u64(q, "from_ms", 0);
    f.to = query_u64(q, "to_ms", UINT64_MAX);
    f.channels = json_object();
    f.transitions = json_object();
    f.paths = json_object();
    f.seen = json_object();
    if (store_touchpoints_foreach(A.store, f.from, figures_add, &f) != GW_OK) {
        json_decref(f.channels);
        json_decref(f.transitions);
        json_decref(f.paths);
        json_decref(f.seen);
        gw_send_error_json(req, 503, "Service Unavailable", "store_unavailable", "try again");
        return 0;
    }
    figures_close_customer(&f);
    /* the ten most common paths */
    top = json_array();
    for (int k = 0; k < 10; ++k) {
        const char *best = NULL;
        json_int_t n = 0;
        json_object_foreach(f.paths, key, val)
        {
            if (json_integer_value(val) > n) {
                n = json_integer_value(val);
                best = key;
            }
        }
        if (best == NULL)
            break;
        json_array_append_new(top, json_pack("{s:s, s:I}", "path", best, "customers", n));
        json_object_del(f.paths, best);
    }
    paths = top;
    json_decref(f.paths);
    json_decref(f.seen);
    gw_send_json(req, 200, "OK",
                 json_pack("{s:I, s:I, s:I, s:I, s:o, s:I, s:o, s:o}", "from_ms", (json_int_t)f.from, "to_ms",
                           (json_int_t)(f.to == UINT64_MAX ? 0 : f.to), "customers", (json_int_t)f.customers,
                           "touchpoints", (json_int_t)f.touchpoints, "channels", f.channels, "cross_channel_customers",
                           (json_int_t)f.cross_channel, "transitions", f.transitions, "top_paths", paths));
    return 0;
}

/* an admin API read of a customer's personal data (what: "profile" or "journey"): audited, then shown */
static int admin_view(h2o_req_t *req, struct thread *th, const char *id, const char *what, const char *client)
{
    struct job *j = job_new(req, th, JOB_ADMIN_VIEW);
    if (j == NULL) {
        h2o_send_error_503(req, "Service Unavailable", "busy", 0);
        return 0;
    }
    snprintf(j->customer_id, sizeof(j->customer_id), "%s", id);
    snprintf(j->subject, sizeof(j->subject), "%s", what);
    job_context(j, req, NULL);
    snprintf(j->client, sizeof(j->client), "%s", client);
    snprintf(j->actor, sizeof(j->actor), "admin-token@%s", client);
    job_submit(req, j);
    return 0;
}

int auth_admin_customers(h2o_req_t *req, struct thread *th, const char *path, size_t path_len, const char *client)
{
    static const char prefix[] = "/admin/customers/";
    char id[STORE_ID_LEN + 1];

    if (path_len == sizeof("/admin/audit") - 1 && memcmp(path, "/admin/audit", path_len) == 0 &&
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return admin_audit(req);
    if (path_len == sizeof("/admin/figures") - 1 && memcmp(path, "/admin/figures", path_len) == 0 &&
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return admin_figures(req);
    if (path_len == sizeof(prefix) - 1 + STORE_ID_LEN + sizeof("/journey") - 1 &&
        memcmp(path, prefix, sizeof(prefix) - 1) == 0 &&
        memcmp(path + sizeof(prefix) - 1 + STORE_ID_LEN, "/journey", 8) == 0 &&
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
        memcpy(id, path + sizeof(prefix) - 1, STORE_ID_LEN);
        id[STORE_ID_LEN] = '\0';
        return admin_view(req, th, id, "journey", client);
    }
    if (path_len != sizeof(prefix) - 1 + STORE_ID_LEN || memcmp(path, prefix, sizeof(prefix) - 1) != 0) {
        gw_send_error_json(req, 404, "Not Found", "not_found", "no such endpoint");
        return 0;
    }
    memcpy(id, path + sizeof(prefix) - 1, STORE_ID_LEN);
    id[STORE_ID_LEN] = '\0';
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")))
        return admin_view(req, th, id, "profile", client);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("DELETE"))) {
        struct job *j = job_new(req, th, JOB_ADMIN_DELETE);
        if (j == NULL) {
            h2o_send_error_503(req, "Service Unavailable", "busy", 0);
            return 0;
        }
        memcpy(j->customer_id, id, sizeof(id));
        job_context(j, req, NULL);
        snprintf(j->client, sizeof(j->client), "%s", client);
        snprintf(j->actor, sizeof(j->actor), "admin-token@%s", client);
        job_submit(req, j);
        return 0;
    }
    gw_send_error_json(req, 405, "Method Not Allowed", "invalid_request", "use GET or DELETE");
    return 0;
}

static pthread_t forwarder_tid;
static int has_forwarder;

void auth_reload(const gw_config_t *old, const gw_config_t *next)
{
    /* what the sign-in side reads once at start (providers' key caches, the store, secrets, the recorder) */
    static const char *const at_start[] = {"public_url", "store",    "session", "providers", "linking",
                                           "assertion",  "journeys", "audit",   NULL};
    struct ingest_keys *keys = load_ingest_keys(next), *prev;
    char changed[160] = "";

    load_rates(next);
    if (keys != NULL) {
        pthread_rwlock_wrlock(&A.ingest_lock);
        prev = A.ingest_keys;
        A.ingest_keys = keys;
        pthread_rwlock_unlock(&A.ingest_lock);
        free_ingest_keys(prev);
    }
    for (size_t i = 0; at_start[i] != NULL; ++i) {
        json_t *a = json_object_get(old->doc, at_start[i]), *b = json_object_get(next->doc, at_start[i]);
        if ((a != NULL || b != NULL) && !json_equal(a, b)) {
            size_t n = strlen(changed);
            snprintf(changed + n, sizeof(changed) - n, "%s%s", n != 0 ? ", " : "", at_start[i]);
        }
    }
    if (changed[0] != '\0')
        GW_LOG_WARNING(MODULE, "reload: changes to %s take effect only after a restart", changed);
}

void auth_shutdown(void)
{
    /* every touchpoint accepted before the stop is written */
    gw_recorder_stop(A.recorder);
    atomic_store(&A.stopping, 1);
    /* the requests are answered or given up on; a slow provider must not hold the stop (nor, in the
     * demo, a call to the stand-ins, whose event loop no longer runs) */
    prov_cancel_calls();
    if (A.has_refresher)
        pthread_join(A.refresher, NULL); /* about a second at most */
    if (A.has_purger)
        pthread_join(A.purger, NULL); /* likewise, or the end of a purge batch */
    /* no job may be half done when the process exits: sign-ins, audit records, erasures */
    if (A.workers != NULL && gw_workers_drain(A.workers, 10000) != GW_OK) {
        GW_LOG_WARNING(MODULE, "shutdown: worker jobs still running after 10 s");
        /* a job still running may audit a refusal: its queue stays, only written out */
        gw_auditq_flush(A.auditq);
    } else {
        /* the refusals counted so far are written with their counts; the event loops have stopped */
        gw_auditq_destroy(A.auditq);
        A.auditq = NULL;
    }
    if (has_forwarder)
        pthread_join(forwarder_tid, NULL); /* forwards what the last jobs wrote */
}

void auth_audit_event(const char *event, const char *outcome, const char *reason)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL || A.workers == NULL) {
        free(j);
        return;
    }
    j->kind = JOB_AUDIT;
    j->now_ms = now_ms();
    j->audit_event = event;
    j->audit_outcome = outcome;
    j->audit_reason = reason;
    if (gw_workers_submit_background(A.workers, job_run, j) != GW_OK)
        job_free(j);
}

/* ------------------------------------------------------------------ syslog forwarding */

/* RFC 5424 PARAM-VALUE escaping: '"', '\\' and ']' get a backslash */
static size_t sd_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in != '\0' && o + 3 < cap; ++in) {
        if (*in == '"' || *in == '\\' || *in == ']')
            out[o++] = '\\';
        out[o++] = *in;
    }
    out[o] = '\0';
    return o;
}

struct forward_ctx {
    int fd;
    struct sockaddr_un to;
    uint64_t last;
    char host[64];
};

static int forward_one(json_t *r, void *arg)
{
    static const char *const fields[] = {"seq",          "event",  "outcome", "reason",     "provider", "customer_id",
                                         "subject_hash", "client", "flow_id", "request_id", "hash",     NULL};
    struct forward_ctx *f = arg;
    char msg[4096], val[512], ts[40];
    int n;
    time_t secs = (time_t)(json_integer_value(json_object_get(r, "ts_ms")) / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* facility authpriv (10), severity notice (5) or warning (4) for refusals */
    n = snprintf(msg, sizeof(msg), "<%d>1 %s %s journeygate %d audit [journeygate@32473",
                 10 * 8 + (strcmp(json_string_value(json_object_get(r, "outcome")), "success") == 0 ? 5 : 4), ts,
                 f->host, (int)getpid());
    for (const char *const *k = fields; *k != NULL && n > 0 && (size_t)n < sizeof(msg) - 64; ++k) {
        json_t *v = json_object_get(r, *k);
        char num[32];
        const char *text = json_is_string(v) ? json_string_value(v) : NULL;
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            text = num;
        }
        if (text == NULL)
            continue;
        sd_escape(text, val, sizeof(val));
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, " %s=\"%s\"", *k, val);
    }
    if (n > 0 && (size_t)n < sizeof(msg) - 64) {
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "] %s", json_string_value(json_object_get(r, "event")));
        sendto(f->fd, msg, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&f->to, sizeof(f->to));
    }
    f->last = (uint64_t)json_integer_value(json_object_get(r, "seq"));
    return 0;
}

static struct forward_ctx forwarder;

static void *forwarder_main(void *arg)
{
    (void)arg;
    /* every record, also those written by the CLI, goes out once, in order, shortly after its commit */
    while (!atomic_load(&A.stopping)) {
        store_audit_foreach(A.store, forwarder.last, forward_one, &forwarder);
        usleep(300000);
    }
    store_audit_foreach(A.store, forwarder.last, forward_one, &forwarder);
    return NULL;
}

void auth_start_syslog(const gw_config_t *cfg)
{
    json_t *audit = json_object_get(cfg->doc, "audit");
    const char *path = json_string_value(json_object_get(audit, "syslog_socket"));

    if (!json_is_true(json_object_get(audit, "syslog")))
        return;
    if (path == NULL)
        path = "/dev/log";
    memset(&forwarder, 0, sizeof(forwarder));
    forwarder.to.sun_family = AF_UNIX;
    snprintf(forwarder.to.sun_path, sizeof(forwarder.to.sun_path), "%s", path);
    if (gethostname(forwarder.host, sizeof(forwarder.host)) != 0)
        snprintf(forwarder.host, sizeof(forwarder.host), "-");
    if ((forwarder.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
        GW_LOG_ERR(MODULE, "audit.syslog: cannot create a socket");
        return;
    }
    /* only records written from now on are forwarded */
    store_audit_last(A.store, &forwarder.last);
    if (pthread_create(&forwarder_tid, NULL, forwarder_main, NULL) == 0)
        has_forwarder = 1;
}

int auth_record_touchpoint(h2o_req_t *req, struct gw_req *gr)
{
    const gw_route_t *route = gr->route;
    json_t *s = gr->session;
    struct session_view tmp;
    const struct session_view *v;
    ssize_t ua = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    ssize_t ref = h2o_find_header(&req->headers, H2O_TOKEN_REFERER, -1);
    size_t qat = req->input.path.len;
    const char *q = memchr(req->input.path.base, '?', req->input.path.len);
    gw_touch_t t;

    if (A.recorder == NULL || route == NULL || route->touchpoint == NULL || (s == NULL && gr->visitor_id[0] == '\0'))
        return 0;
    v = view_for(slot_of(req, gr, s), s, &tmp);
    memset(&t, 0, sizeof(t));
    t.customer_id = v != NULL ? v->customer_id.base : NULL;
    t.visitor_id = v == NULL ? gr->visitor_id : NULL;
    /* a mobile app's bearer token counts for the app's channel unless the route names its own */
    t.channel = v != NULL && v->bearer && !route->channel_explicit ? v->channel.base : route->channel;
    t.touchpoint = route->touchpoint;
    t.stage = route->stage;
    t.route = route->name;
    t.method = h2o_strdup(&req->pool, req->input.method.base, req->input.method.len).base;
    t.provider = v != NULL ? v->provider.base : NULL;
    t.session = v != NULL ? v->sid.base : NULL;
    t.user_agent =
        ua != -1 ? h2o_strdup(&req->pool, req->headers.entries[ua].value.base, req->headers.entries[ua].value.len).base
                 : NULL;
    t.referer =
        ref != -1
            ? h2o_strdup(&req->pool, req->headers.entries[ref].value.base, req->headers.entries[ref].value.len).base
            : NULL;
    if (q != NULL) {
        qat = (size_t)(q - req->input.path.base);
        t.query = q + 1;
        t.query_len = req->input.path.len - qat - 1;
    }
    t.status = req->res.status;
    t.occurred_at_ms = (uint64_t)req->timestamps.request_begin_at.tv_sec * 1000 +
                       (uint64_t)req->timestamps.request_begin_at.tv_usec / 1000;
    if (t.occurred_at_ms == 0)
        t.occurred_at_ms = now_ms();
    return gw_recorder_push(A.recorder, &t) == 0 ? 1 : -1;
}

void auth_visitor(h2o_req_t *req, struct gw_req *gr)
{
    h2o_iovec_t v;
    uint8_t hash[32];
    int presented;

    /* a signed-in customer on a public page is recorded as that customer (a route policy may have looked already) */
    if (gr->session != NULL || (gr->session = lookup_session(req, 1, 1, hash, &presented, &gr->cache_slot)) != NULL)
        return;
    v = gw_find_cookie(req, A.visitor_cookie);
    int ok = v.base != NULL && v.len >= 16 && v.len < sizeof(gr->visitor_id);

    for (size_t i = 0; ok && i < v.len; ++i)
        ok = (v.base[i] >= 'A' && v.base[i] <= 'Z') || (v.base[i] >= 'a' && v.base[i] <= 'z') ||
             (v.base[i] >= '0' && v.base[i] <= '9') || v.base[i] == '-' || v.base[i] == '_';
    if (ok) {
        memcpy(gr->visitor_id, v.base, v.len);
        gr->visitor_id[v.len] = '\0';
        return;
    }
    /* a random first-party id, nothing personal in it */
    if (gw_random_token(gr->visitor_id, sizeof(gr->visitor_id), 16) == GW_OK)
        gr->set_visitor = 1;
    else
        gr->visitor_id[0] = '\0';
}

void auth_visitor_cookie(h2o_req_t *req, struct gw_req *gr)
{
    add_cookie(req, A.visitor_cookie, gr->visitor_id, 400L * 86400);
}

/* ------------------------------------------------------------------ the console's use of the sign-in machinery */

store_t *auth_store(void)
{
    return A.store;
}

gw_workers_t *auth_workers(void)
{
    return A.workers;
}

int auth_console_login(h2o_req_t *req, struct gw_req *gr, const char *name, size_t name_len, const char *return_to)
{
    prov_t *p = find_prov(name, name_len);

    if (p == NULL) {
        gw_send_page(req, 404, "Not Found", "Unknown sign-in method", "<p>This sign-in method does not exist.</p>");
        return 0;
    }
    return rate_limited(req, gr, RATE_SIGNIN, 1, 1, "console_login") ? 0 : login_start(req, p, NULL, return_to);
}

json_t *auth_providers_json(void)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < A.num_provs; ++i)
        json_array_append_new(
            list, json_pack("{s:s, s:s}", "name", prov_name(A.provs[i]), "label", prov_display_name(A.provs[i])));
    return list;
}

void auth_admin_refused(h2o_req_t *req, const char *client, const char *reason)
{
    struct job j;
    const char *path = req->path_normalized.base;
    char route[128];

    memset(&j, 0, sizeof(j));
    job_context(&j, req, NULL);
    snprintf(j.client, sizeof(j.client), "%s", client);
    /* what was asked for (the API path without its query), as the refusal's route */
    snprintf(route, sizeof(route), "admin:%.*s", (int)(req->path_normalized.len < 100 ? req->path_normalized.len : 100),
             path);
    for (char *c = route; *c != '\0'; ++c)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    refusal_record(&j, "admin_refused", reason, route, NULL, NULL);
}
