/*
 * journeygate — the console's HTTP side: the only console file that uses h2o.
 *
 * Under /.console/ on the public listener: the embedded front end (console_assets.h; any other
 * path answers index.html for client-side routing), staff sign-in (/.console/login/PROVIDER,
 * through auth.c's login flow) and sign-out (POST /.console/logout), and the JSON API
 * (/.console/api/...). An API call is matched against the endpoint table below on the loop
 * (404, 405, 413, 415 answered there), then runs on the worker pool's background queue: the
 * staff session is read and its roles decided against the request's configuration, the role
 * and the CSRF token checked, the body parsed, and the endpoint (console_api.h) called. Its
 * answer comes back to the request's loop through the thread's console_jobs receiver.
 *
 * Streamed answers (CSV exports): the endpoint's chunks are queued under the job's lock and the
 * loop sends them with an h2o generator; the worker blocks while more than STREAM_HIGH_WATER
 * bytes wait, so a slow client slows the export, never the loop. A request that goes away
 * (its memory pool is disposed) is detached: the worker's next write returns -1.
 *
 * Lifetime of a job: it is freed by whichever side is last, once the worker is done, the loop is
 * done (answer sent, or the request gone) and no message to the loop is pending.
 */
#include "console.h"
#include "analytics.h"

#include "console_api.h"
#include "console_assets.h"
#include "console_int.h"
#include "crypto.h"
#include "route.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "console"
#define STREAM_HIGH_WATER (256 * 1024)

#define UI_CSP                                                                                                         \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "                  \
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
#define API_CSP "default-src 'none'; frame-ancestors 'none'"

static struct {
    store_t *store;
    gw_workers_t *workers;
    char (*etags)[20];      /* per asset: a strong ETag ("16 hex") of its content */
    analytics_t *analytics; /* the figures' snapshot (figures()), NULL until a configuration has a console */
} C;
static pthread_mutex_t figures_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The figures' snapshot, started by the first configuration that has a console (at start, or by a
 * reload that adds one) with that configuration's console.figures_refresh_s; it then lives until
 * console_shutdown(). NULL when it cannot start (the figure endpoints answer 503).
 */
static analytics_t *figures(const gw_config_t *cfg)
{
    analytics_t *a;

    pthread_mutex_lock(&figures_lock);
    if (C.analytics == NULL && cfg != NULL && cfg->has_console &&
        analytics_start(C.store, cfg->console_figures_refresh_s > 0 ? cfg->console_figures_refresh_s : 30,
                        &C.analytics) != GW_OK)
        C.analytics = NULL;
    a = C.analytics;
    pthread_mutex_unlock(&figures_lock);
    return a;
}

/* ------------------------------------------------------------------ the endpoint table */

/* role 0: any staff member */
struct endpoint {
    const char *method;
    const char *pattern; /* segments; "*" is one ID segment */
    unsigned role;
    console_endpoint_fn fn;
};

static const struct endpoint endpoints[] = {
    {"GET", "me", 0, console_api_me},
    {"GET", "customers", CONSOLE_MARKETER, console_api_customers_search},
    {"GET", "customers/*", CONSOLE_MARKETER, console_api_customer},
    {"GET", "customers/*/journey", CONSOLE_MARKETER, console_api_journey},
    {"GET", "export/*", CONSOLE_MARKETER, console_api_export},
    {"GET", "overview", CONSOLE_MARKETER, console_api_overview},
    {"GET", "transitions", CONSOLE_MARKETER, console_api_transitions},
    {"GET", "paths", CONSOLE_MARKETER, console_api_paths},
    {"GET", "funnel", CONSOLE_MARKETER, console_api_funnel},
    {"GET", "stages", CONSOLE_MARKETER, console_api_stages},
    {"GET", "inventory", CONSOLE_MARKETER, console_api_inventory},
    {"GET", "signins/volume", CONSOLE_SECURITY, console_api_signin_volume},
    {"GET", "audit", CONSOLE_SECURITY, console_api_audit},
    {"GET", "audit/chain", CONSOLE_SECURITY, console_api_audit_chain},
    {"GET", "audit/flow/*", CONSOLE_SECURITY, console_api_audit_flow},
    {"GET", "customers/*/security", CONSOLE_SECURITY, console_api_customer_security},
    {"POST", "customers/*/sessions/revoke", CONSOLE_SECURITY, console_api_revoke_sessions},
    {"POST", "customers/*/unlink", CONSOLE_ADMIN, console_api_unlink},
    {"POST", "customers/*/erase", CONSOLE_ADMIN, console_api_erase},
    {"GET", "policies", CONSOLE_SECURITY, console_api_policies},
    {"GET", "policies/explain", CONSOLE_SECURITY, console_api_explain},
};
#define NUM_ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* whether the raw segments (before decoding: '*' never needs it) fit pattern */
static int pattern_fits(const char *pattern, const h2o_iovec_t *segs, size_t n)
{
    size_t i = 0;
    const char *p = pattern;

    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (i >= n)
            return 0;
        if (!(len == 1 && p[0] == '*') && !h2o_memis(segs[i].base, segs[i].len, p, len))
            return 0;
        ++i;
        p += len + (end != NULL);
    }
    return i == n;
}

/* ------------------------------------------------------------------ jobs */

enum job_kind { JOB_API, JOB_LOGOUT };

struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
};

struct guard {
    struct console_stream *job;
};

/* one API call or sign-out; console_stream_t is this job (console_api.h keeps it opaque) */
struct console_stream {
    h2o_multithread_message_t msg; /* first */
    h2o_generator_t gen;
    struct thread *th;
    h2o_req_t *req; /* NULL once the request is gone (loop side only) */
    struct guard *guard;
    enum job_kind kind;
    const struct endpoint *ep;
    gw_config_t *cfg; /* the request's snapshot (a reference) */
    char token[CONSOLE_TOKEN_CHARS + 1];
    size_t token_len;
    char *csrf_given; /* X-CSRF-Token (or the logout form's csrf field), malloc'ed, or NULL */
    char *body, *query;
    size_t body_len, query_len;
    char segbuf[CONSOLE_MAX_SEGS][CONSOLE_SEG_MAX + 1];
    const char *segs[CONSOLE_MAX_SEGS];
    size_t nsegs;
    char method[8], request_id[40], client[48], user_agent[256];
    uint64_t now_ms;
    console_staff_t staff;
    console_ctx_t ctx;
    console_call_t call;
    console_answer_t ans;
    int logout_status; /* JOB_LOGOUT: 303 done, 403 csrf, 503 */

    /* shared between the worker and the loop: under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int msg_pending, worker_done, loop_done, gone, stream_begun, started, in_flight, final_sent;
    struct chunk *head, *tail, *sending;
    h2o_iovec_t one;   /* ... or this one, when there was no memory for them */
    h2o_iovec_t *bufs; /* the iovecs of what is being sent (malloc'ed: a long export must not grow the pool) */
    size_t waiting;    /* bytes queued or being sent */
    char content_type[128], filename[128];
};
typedef struct console_stream job_t;

static void job_free(job_t *j)
{
    struct chunk *c, *n;
    for (c = j->head; c != NULL; c = n) {
        n = c->next;
        free(c);
    }
    for (c = j->sending; c != NULL; c = n) {
        n = c->next;
        free(c);
    }
    free(j->bufs);
    json_decref(j->ans.json);
    gw_config_unref(j->cfg);
    free(j->csrf_given);
    free(j->body);
    free(j->query);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    explicit_bzero(j->token, sizeof(j->token));
    free(j);
}

/* lock held: wakes the loop for this job (once: one message in the queue at a time) */
static void kick(job_t *j)
{
    if (!j->msg_pending && !j->loop_done) {
        j->msg_pending = 1;
        h2o_multithread_send_message(&j->th->console_jobs, &j->msg);
    }
}

static void on_guard_dispose(void *p)
{
    struct guard *g = p;
    job_t *j = g->job;
    int last;
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->lock);
    j->req = NULL;
    j->gone = 1;
    j->loop_done = 1;
    pthread_cond_broadcast(&j->cond);
    last = j->worker_done && !j->msg_pending;
    pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

/* ------------------------------------------------------------------ answers */

static void add_security_headers(h2o_req_t *req, int api)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                          api ? API_CSP : UI_CSP, api ? sizeof(API_CSP) - 1 : sizeof(UI_CSP) - 1);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("same-origin"));
    if (api)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

/* an API answer: takes obj */
static void send_api_json(h2o_req_t *req, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    h2o_iovec_t body = text != NULL ? h2o_strdup(&req->pool, text, SIZE_MAX) : h2o_iovec_init(H2O_STRLIT("{}"));

    free(text);
    json_decref(obj);
    req->res.status = status;
    req->res.reason = reason_of(status);
    add_security_headers(req, 1);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json; charset=utf-8"));
    h2o_send_inline(req, body.base, body.len);
}

static void send_api_error(h2o_req_t *req, int status, const char *code, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", code);
    if (o != NULL && message != NULL)
        json_object_set_new(o, "message", json_string(message));
    send_api_json(req, status, o);
}

/* ------------------------------------------------------------------ streams (worker side) */

int console_stream_begin(const console_call_t *call, console_answer_t *ans, const char *content_type,
                         const char *filename)
{
    job_t *j = H2O_STRUCT_FROM_MEMBER(job_t, call, call);
    size_t o = 0;

    pthread_mutex_lock(&j->lock);
    snprintf(j->content_type, sizeof(j->content_type), "%s", content_type != NULL ? content_type : "text/csv");
    if (gw_has_control(j->content_type, strlen(j->content_type)))
        snprintf(j->content_type, sizeof(j->content_type), "application/octet-stream");
    /* the file name goes into a quoted header parameter: only plain characters */
    for (const char *p = filename != NULL ? filename : "export"; *p != '\0' && o + 1 < sizeof(j->filename); ++p)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
            *p == '-' || *p == '_')
            j->filename[o++] = *p;
    j->filename[o] = '\0';
    j->stream_begun = 1;
    ans->stream = j;
    kick(j);
    pthread_mutex_unlock(&j->lock);
    return 0;
}

int console_stream_write(console_answer_t *ans, const char *data, size_t len)
{
    job_t *j = ans->stream;
    struct chunk *c;
    int r;

    if (j == NULL)
        return -1;
    if (len == 0)
        return 0;
    if ((c = malloc(sizeof(*c) + len)) == NULL)
        return -1;
    c->next = NULL;
    c->len = len;
    memcpy(c->data, data, len);
    pthread_mutex_lock(&j->lock);
    if (j->gone) {
        pthread_mutex_unlock(&j->lock);
        free(c);
        return -1;
    }
    if (j->tail != NULL)
        j->tail->next = c;
    else
        j->head = c;
    j->tail = c;
    j->waiting += len;
    kick(j);
    /* the client's pace sets the export's */
    while (j->waiting > STREAM_HIGH_WATER && !j->gone)
        pthread_cond_wait(&j->cond, &j->lock);
    r = j->gone ? -1 : 0;
    pthread_mutex_unlock(&j->lock);
    return r;
}

/* ------------------------------------------------------------------ streams (loop side) */

static void pump(job_t *j);

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    job_t *j = H2O_STRUCT_FROM_MEMBER(job_t, gen, gen);
    struct chunk *c, *n;
    int last;
    (void)req;
    pthread_mutex_lock(&j->lock);
    for (c = j->sending; c != NULL; c = n) {
        n = c->next;
        j->waiting -= c->len;
        free(c);
    }
    j->sending = NULL;
    j->in_flight = 0;
    pthread_cond_broadcast(&j->cond);
    pump(j);
    last = j->worker_done && j->loop_done && !j->msg_pending;
    pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    job_t *j = H2O_STRUCT_FROM_MEMBER(job_t, gen, gen);
    (void)req;
    pthread_mutex_lock(&j->lock);
    j->gone = 1;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

/* lock held (released around h2o calls): sends what waits, or the end once the worker is done */
static void pump(job_t *j)
{
    h2o_req_t *req = j->req;

    if (req == NULL || j->in_flight || j->final_sent)
        return;
    if (j->head != NULL) {
        size_t n = 0, i = 0;
        struct chunk *c;
        h2o_iovec_t *bufs;
        for (c = j->head; c != NULL; c = c->next)
            ++n;
        free(j->bufs);
        if ((j->bufs = bufs = malloc(n * sizeof(*bufs))) == NULL) {
            /* out of memory: the first chunk alone, through the job's own iovec */
            bufs = &j->one;
            n = 1;
        }
        for (c = j->head; i < n; c = c->next)
            bufs[i++] = h2o_iovec_init(c->data, c->len);
        j->sending = j->head;
        j->head = c;
        if (c == NULL) /* c: the first chunk not sent */
            j->tail = NULL;
        {
            /* the chunks being sent end the list at what stays queued */
            struct chunk *last = j->sending;
            for (size_t k = 1; k < n; ++k)
                last = last->next;
            last->next = NULL;
        }
        j->in_flight = 1;
        pthread_mutex_unlock(&j->lock);
        h2o_send(req, bufs, n, H2O_SEND_STATE_IN_PROGRESS);
        pthread_mutex_lock(&j->lock);
        return;
    }
    if (j->worker_done) {
        j->final_sent = 1;
        j->loop_done = 1;
        j->guard->job = NULL; /* h2o owns the rest of the request */
        pthread_mutex_unlock(&j->lock);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        pthread_mutex_lock(&j->lock);
    }
}

static void start_stream(job_t *j)
{
    h2o_req_t *req = j->req;
    char disp[200];
    int n;

    req->res.status = 200;
    req->res.reason = "OK";
    add_security_headers(req, 1);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   h2o_strdup(&req->pool, j->content_type, SIZE_MAX).base, strlen(j->content_type));
    n = snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", j->filename[0] != '\0' ? j->filename : "export");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_DISPOSITION, NULL,
                   h2o_strdup(&req->pool, disp, (size_t)n).base, (size_t)n);
    j->gen.proceed = on_proceed;
    j->gen.stop = on_stop;
    h2o_start_response(req, &j->gen);
}

/* ------------------------------------------------------------------ finishing on the loop */

static const char *cookie_name(const gw_config_t *cfg)
{
    /* __Host-: this origin only, over TLS, Path=/ (as the customer cookie) */
    return strncmp(cfg->public_url, "https://", 8) == 0 ? "__Host-jg_console" : "jg_console";
}

static void set_cookie(h2o_req_t *req, const gw_config_t *cfg, const char *value, long max_age)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s", cookie_name(cfg), value,
                     max_age, strncmp(cfg->public_url, "https://", 8) == 0 ? "; Secure" : "");
    if (n > 0 && (size_t)n < sizeof(buf))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, h2o_strdup(&req->pool, buf, n).base,
                       (size_t)n);
}

static void redirect(h2o_req_t *req, int status, const char *location)
{
    req->res.status = status;
    req->res.reason = status == 303 ? "See Other" : status == 301 ? "Moved Permanently" : "Found";
    add_security_headers(req, 0);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                   h2o_strdup(&req->pool, location, SIZE_MAX).base, strlen(location));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, "", 0);
}

/* loop: the job's answer (not streamed), once the worker is done; lock NOT held */
static void answer(job_t *j)
{
    h2o_req_t *req = j->req;

    if (j->kind == JOB_LOGOUT) {
        if (j->logout_status == 403) {
            send_api_error(req, 403, "csrf", "the sign-out did not carry this session's token");
            return;
        }
        if (j->logout_status == 503) {
            send_api_error(req, 503, "unavailable", "try again");
            return;
        }
        set_cookie(req, j->cfg, "", 0);
        redirect(req, 303, "/.console/");
        return;
    }
    if (j->ans.json == NULL) {
        send_api_error(req, 500, "internal", "the endpoint gave no answer");
        return;
    }
    send_api_json(req, j->ans.status != 0 ? j->ans.status : 200, j->ans.json);
    j->ans.json = NULL;
}

static void on_console_jobs(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        job_t *j = (job_t *)msg;
        int last, reply = 0;
        h2o_linklist_unlink(&msg->link);

        pthread_mutex_lock(&j->lock);
        j->msg_pending = 0;
        if (!j->loop_done && j->req != NULL) {
            if (!j->started && j->stream_begun) {
                j->started = 1;
                pthread_mutex_unlock(&j->lock);
                start_stream(j);
                pthread_mutex_lock(&j->lock);
            } else if (!j->started && j->worker_done) {
                j->started = 1;
                j->loop_done = 1;
                j->guard->job = NULL;
                reply = 1;
            }
            if (j->started && j->stream_begun && !j->loop_done)
                pump(j);
        }
        pthread_mutex_unlock(&j->lock);
        if (reply)
            answer(j); /* the job is the loop's alone now: the worker is done */
        pthread_mutex_lock(&j->lock);
        last = j->worker_done && j->loop_done && !j->msg_pending;
        pthread_mutex_unlock(&j->lock);
        if (last)
            job_free(j);
    }
}

/* ------------------------------------------------------------------ the worker side */

static int csrf_matches(const char *given, const char *expected)
{
    return given != NULL && expected[0] != '\0' && strlen(given) == strlen(expected) &&
           gw_ct_equal(given, expected, strlen(expected));
}

static void run_api(job_t *j)
{
    char csrf[CONSOLE_CSRF_MAX];
    gw_status_t st = console_session_load(C.store, j->cfg, j->token, j->token_len, j->now_ms, &j->staff, csrf);
    json_t *body = NULL;

    if (st == GW_ENOTFOUND) {
        console_error(&j->ans, 401, "not_signed_in", "sign in to the console");
        return;
    }
    if (st != GW_OK) {
        console_error(&j->ans, 503, "unavailable", "the store failed; retry");
        return;
    }
    if (j->staff.roles == 0) {
        /* a reload took every role away: signed in, but no longer staff of anything */
        console_error(&j->ans, 403, "forbidden", NULL);
        return;
    }
    if (j->ep->role != 0 && (j->staff.roles & j->ep->role) == 0) {
        console_error(&j->ans, 403, "forbidden", NULL);
        json_object_set_new(j->ans.json, "role", json_string(console_role_name(j->ep->role)));
        return;
    }
    if (strcmp(j->method, "POST") == 0) {
        json_error_t err;
        if (!csrf_matches(j->csrf_given, csrf)) {
            console_error(&j->ans, 403, "csrf", "X-CSRF-Token is missing or not this session's");
            return;
        }
        body = json_loadb(j->body != NULL ? j->body : "", j->body_len, JSON_REJECT_DUPLICATES, &err);
        if (!json_is_object(body)) {
            json_decref(body);
            console_error(&j->ans, 400, "invalid_body", "the body must be a JSON object");
            return;
        }
    }
    j->ctx.store = C.store;
    j->ctx.analytics = figures(j->cfg);
    j->ctx.cfg = j->cfg;
    j->call.ctx = &j->ctx;
    j->call.staff = &j->staff;
    j->call.method = j->method;
    j->call.segs = j->segs;
    j->call.nsegs = j->nsegs;
    j->call.query = j->query != NULL ? j->query : "";
    j->call.query_len = j->query_len;
    j->call.body = body;
    j->call.request_id = j->request_id;
    j->call.client = j->client;
    j->call.user_agent = j->user_agent[0] != '\0' ? j->user_agent : NULL;
    j->call.now_ms = j->now_ms;
    j->ep->fn(&j->call, &j->ans);
    json_decref(body);
}

static void run_logout(job_t *j)
{
    char csrf[CONSOLE_CSRF_MAX];
    gw_status_t st = console_session_load(C.store, j->cfg, j->token, j->token_len, j->now_ms, &j->staff, csrf);

    j->logout_status = 303;
    if (st == GW_ENOTFOUND)
        return; /* nothing to end: the cookie goes anyway */
    if (st != GW_OK) {
        j->logout_status = 503;
        return;
    }
    if (!csrf_matches(j->csrf_given, csrf)) {
        j->logout_status = 403;
        return;
    }
    {
        console_origin_t from = {j->client, j->user_agent[0] != '\0' ? j->user_agent : NULL, j->request_id, NULL};
        st = console_session_end(C.store, j->token, j->token_len, &j->staff, &from);
        if (st != GW_OK && st != GW_ENOTFOUND)
            j->logout_status = 503;
    }
}

static void job_run(void *arg)
{
    job_t *j = arg;
    int last;

    if (j->kind == JOB_LOGOUT)
        run_logout(j);
    else
        run_api(j);
    pthread_mutex_lock(&j->lock);
    j->worker_done = 1;
    kick(j);
    last = j->loop_done && !j->msg_pending;
    pthread_mutex_unlock(&j->lock);
    if (last)
        job_free(j);
}

/* ------------------------------------------------------------------ the loop side */

static h2o_iovec_t find_cookie(h2o_req_t *req, const char *name)
{
    ssize_t cur = -1;
    while ((cur = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, cur)) != -1) {
        const char *v;
        size_t vlen;
        if (gw_cookie_get(req->headers.entries[cur].value.base, req->headers.entries[cur].value.len, name, &v, &vlen))
            return h2o_iovec_init(v, vlen);
    }
    return h2o_iovec_init(NULL, 0);
}

static job_t *job_new(h2o_req_t *req, struct gw_req *gr, enum job_kind kind, h2o_iovec_t token)
{
    job_t *j = calloc(1, sizeof(*j));
    ssize_t cur;

    if (j == NULL)
        return NULL;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->kind = kind;
    j->th = gr->thread;
    j->req = req;
    j->cfg = gw_config_ref(gr->holder->cfg);
    j->now_ms = gw_wall_ms();
    if (token.len <= CONSOLE_TOKEN_CHARS) {
        memcpy(j->token, token.base, token.len);
        j->token_len = token.len;
    }
    snprintf(j->method, sizeof(j->method), "%.*s", (int)(req->method.len < 7 ? req->method.len : 7), req->method.base);
    snprintf(j->request_id, sizeof(j->request_id), "%s", gr->request_id);
    snprintf(j->client, sizeof(j->client), "%s", gr->client);
    if ((cur = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1)) != -1) {
        size_t n = req->headers.entries[cur].value.len;
        if (n >= sizeof(j->user_agent))
            n = sizeof(j->user_agent) - 1;
        memcpy(j->user_agent, req->headers.entries[cur].value.base, n);
        j->user_agent[n] = '\0';
        /* a header line holds no line break, but a stray control character stays out of the trail */
        for (size_t i = 0; i < n; ++i)
            if ((unsigned char)j->user_agent[i] < 0x20 || j->user_agent[i] == 0x7f)
                j->user_agent[i] = '?';
    }
    if ((cur = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-csrf-token"), -1)) != -1)
        j->csrf_given =
            h2o_strdup(NULL, req->headers.entries[cur].value.base, req->headers.entries[cur].value.len).base;
    if (req->entity.base != NULL && req->entity.len > 0) {
        if ((j->body = malloc(req->entity.len)) == NULL) {
            job_free(j);
            return NULL;
        }
        memcpy(j->body, req->entity.base, req->entity.len);
        j->body_len = req->entity.len;
    }
    if (req->query_at != SIZE_MAX) {
        j->query_len = req->path.len - req->query_at - 1;
        j->query = h2o_strdup(NULL, req->path.base + req->query_at + 1, j->query_len).base;
    }
    return j;
}

static void job_submit(h2o_req_t *req, job_t *j)
{
    j->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*j->guard), on_guard_dispose);
    j->guard->job = j;
    if (gw_workers_submit_background(C.workers, job_run, j) != GW_OK) {
        j->guard->job = NULL;
        job_free(j);
        send_api_error(req, 503, "unavailable", "the console is busy; retry");
    }
}

static int content_type_is_json(h2o_req_t *req)
{
    ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t v;
    size_t n;

    if (cur == -1)
        return 0;
    v = req->headers.entries[cur].value;
    n = strcspn(v.base, ";");
    if (n > v.len)
        n = v.len;
    while (n > 0 && (v.base[n - 1] == ' ' || v.base[n - 1] == '\t'))
        --n;
    return h2o_lcstris(v.base, n, H2O_STRLIT("application/json"));
}

static int api(h2o_req_t *req, struct gw_req *gr, const char *rest, size_t rest_len)
{
    h2o_iovec_t raw[CONSOLE_MAX_SEGS + 1];
    size_t n = 0, i = 0;
    const struct endpoint *ep = NULL;
    int path_known = 0, is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")),
        is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    h2o_iovec_t token;
    job_t *j;

    /* the segments after api/ (normalised: no empty or dot segments but a trailing '/') */
    while (i < rest_len) {
        const char *slash = memchr(rest + i, '/', rest_len - i);
        size_t len = slash != NULL ? (size_t)(slash - (rest + i)) : rest_len - i;
        if (len == 0 || n == CONSOLE_MAX_SEGS) {
            send_api_error(req, 404, "not_found", "no such endpoint");
            return 0;
        }
        raw[n++] = h2o_iovec_init(rest + i, len);
        i += len + 1;
        if (slash != NULL && i == rest_len) {
            send_api_error(req, 404, "not_found", "no such endpoint");
            return 0;
        }
    }
    if (n == 1 && h2o_memis(raw[0].base, raw[0].len, H2O_STRLIT("providers"))) {
        if (!is_get) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
            send_api_error(req, 405, "method_not_allowed", "use GET");
            return 0;
        }
        send_api_json(req, 200, json_pack("{s:o}", "providers", auth_providers_json()));
        return 0;
    }
    for (size_t k = 0; k < NUM_ENDPOINTS; ++k)
        if (pattern_fits(endpoints[k].pattern, raw, n)) {
            path_known = 1;
            if (h2o_memis(req->method.base, req->method.len, endpoints[k].method, strlen(endpoints[k].method))) {
                ep = &endpoints[k];
                break;
            }
        }
    if (!path_known) {
        send_api_error(req, 404, "not_found", "no such endpoint");
        return 0;
    }
    if (ep == NULL || (!is_get && !is_post)) {
        const char *allow = is_post || !is_get ? "GET" : "POST";
        for (size_t k = 0; k < NUM_ENDPOINTS; ++k)
            if (pattern_fits(endpoints[k].pattern, raw, n))
                allow = endpoints[k].method;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        send_api_error(req, 405, "method_not_allowed", NULL);
        return 0;
    }
    if (is_post) {
        if (req->entity.len > CONSOLE_BODY_MAX) {
            send_api_error(req, 413, "too_large", "the body is larger than 16 KB");
            return 0;
        }
        if (!content_type_is_json(req)) {
            send_api_error(req, 415, "unsupported_media_type", "the body must be application/json");
            return 0;
        }
    } else if (req->entity.base != NULL && req->entity.len > 0) {
        send_api_error(req, 413, "too_large", "a GET takes no body");
        return 0;
    }
    token = find_cookie(req, cookie_name(gr->holder->cfg));
    if (token.base == NULL || token.len != CONSOLE_TOKEN_CHARS) {
        send_api_error(req, 401, "not_signed_in", "sign in to the console");
        return 0;
    }
    if ((j = job_new(req, gr, JOB_API, token)) == NULL) {
        send_api_error(req, 503, "unavailable", "out of memory; retry");
        return 0;
    }
    j->ep = ep;
    for (size_t k = 0; k < n; ++k) {
        if (console_segment_decode(raw[k].base, raw[k].len, j->segbuf[k], sizeof(j->segbuf[k])) < 0) {
            job_free(j);
            send_api_error(req, 400, "invalid_parameter", "path: a segment is not valid");
            return 0;
        }
        j->segs[k] = j->segbuf[k];
    }
    j->nsegs = n;
    job_submit(req, j);
    return 0;
}

/* return_to of a staff sign-in: a safe /.console/ path, else the console's start */
static const char *console_return_to(h2o_req_t *req)
{
    char *v = NULL;
    const char *out = "/.console/";
    if (req->query_at != SIZE_MAX &&
        gw_query_param(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, "return_to", &v) == 1 &&
        strncmp(v, "/.console/", 10) == 0 && gw_return_to_safe(v))
        out = h2o_strdup(&req->pool, v, SIZE_MAX).base;
    free(v);
    return out;
}

static int logout(h2o_req_t *req, struct gw_req *gr)
{
    h2o_iovec_t token;
    job_t *j;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        send_api_error(req, 405, "method_not_allowed", "use POST");
        return 0;
    }
    if (req->entity.len > CONSOLE_BODY_MAX) {
        send_api_error(req, 413, "too_large", "the body is larger than 16 KB");
        return 0;
    }
    token = find_cookie(req, cookie_name(gr->holder->cfg));
    if (token.base == NULL || token.len != CONSOLE_TOKEN_CHARS) {
        set_cookie(req, gr->holder->cfg, "", 0);
        redirect(req, 303, "/.console/");
        return 0;
    }
    if ((j = job_new(req, gr, JOB_LOGOUT, token)) == NULL) {
        send_api_error(req, 503, "unavailable", "out of memory; retry");
        return 0;
    }
    /* a form's csrf field when no header carries the token */
    if (j->csrf_given == NULL && j->body != NULL) {
        char *v = NULL;
        if (gw_query_param(j->body, j->body_len, "csrf", &v) == 1)
            j->csrf_given = v;
        else
            free(v);
    }
    job_submit(req, j);
    return 0;
}

/* assets/NAME-HASH.EXT: a content-hashed file name, which may be cached for good */
static int hashed_name(const char *path)
{
    const char *base = strrchr(path, '/'), *dot, *dash;
    size_t run = 0;

    if (strncmp(path, "assets/", 7) != 0 || base == NULL || (dot = strrchr(base, '.')) == NULL)
        return 0;
    for (dash = dot; dash > base && dash[-1] != '-'; --dash)
        ++run;
    if (dash == base || run < 8)
        return 0;
    for (const char *p = dash; p < dot; ++p)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
            return 0;
    return 1;
}

static int asset(h2o_req_t *req, const char *rest, size_t rest_len)
{
    size_t k, index = SIZE_MAX, found = SIZE_MAX;
    ssize_t cur;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET, HEAD"));
        add_security_headers(req, 0);
        h2o_send_error_generic(req, 405, "Method Not Allowed", "method not allowed", 0);
        return 0;
    }
    for (k = 0; k < console_num_assets; ++k) {
        if (strcmp(console_assets[k].path, "index.html") == 0)
            index = k;
        if (h2o_memis(rest, rest_len, console_assets[k].path, strlen(console_assets[k].path)))
            found = k;
    }
    /* client-side routing: any other path is the application's */
    if (found == SIZE_MAX)
        found = index;
    if (found == SIZE_MAX) {
        add_security_headers(req, 0);
        h2o_send_error_404(req, "Not Found", "the console's front end is not built", 0);
        return 0;
    }
    add_security_headers(req, 0);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, C.etags[found], strlen(C.etags[found]));
    if (found != index && hashed_name(console_assets[found].path))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("public, max-age=31536000, immutable"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    if ((cur = h2o_find_header(&req->headers, H2O_TOKEN_IF_NONE_MATCH, -1)) != -1 &&
        h2o_memis(req->headers.entries[cur].value.base, req->headers.entries[cur].value.len, C.etags[found],
                  strlen(C.etags[found]))) {
        req->res.status = 304;
        req->res.reason = "Not Modified";
        h2o_send_inline(req, "", 0);
        return 0;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, console_assets[found].content_type,
                   strlen(console_assets[found].content_type));
    {
        /* static data: sent as it is, never copied */
        static h2o_generator_t none = {NULL, NULL};
        h2o_iovec_t body = h2o_iovec_init(console_assets[found].data, console_assets[found].len);
        h2o_start_response(req, &none);
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    }
    return 0;
}

/* ------------------------------------------------------------------ public */

void console_init(store_t *store, gw_workers_t *workers, const gw_config_t *cfg)
{
    C.store = store;
    C.workers = workers;
    figures(cfg); /* the first snapshot builds while the gateway starts serving */
    C.etags = calloc(console_num_assets + 1, sizeof(*C.etags));
    for (size_t k = 0; C.etags != NULL && k < console_num_assets; ++k) {
        uint8_t h[32];
        char hex[17];
        gw_sha256(console_assets[k].data, console_assets[k].len, h);
        gw_hex(h, 8, hex);
        hex[16] = '\0';
        snprintf(C.etags[k], sizeof(C.etags[k]), "\"%s\"", hex);
    }
}

void console_shutdown(void)
{
    pthread_mutex_lock(&figures_lock);
    analytics_stop(C.analytics);
    C.analytics = NULL;
    pthread_mutex_unlock(&figures_lock);
}

void console_thread_init(struct thread *th)
{
    h2o_multithread_register_receiver(th->ctx.queue, &th->console_jobs, on_console_jobs);
}

uint64_t console_body_limit(const char *path, size_t len)
{
    if ((len > 14 && memcmp(path, "/.console/api/", 14) == 0) || h2o_memis(path, len, H2O_STRLIT("/.console/logout")))
        return CONSOLE_BODY_MAX;
    return 0;
}

void console_sign_in_done(h2o_req_t *req, int signed_in, const char *token, const char *return_to)
{
    struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, ctx, req->conn->ctx);
    const gw_config_t *cfg = th->holder->cfg;

    if (!signed_in) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                              H2O_STRLIT("nosniff"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL,
                              H2O_STRLIT("same-origin"));
        gw_send_page(req, 403, "Forbidden", "The console is not open to you",
                     "<p>You signed in, but no console role is given to your account, so no console session was "
                     "made. Ask an administrator for access.</p><p><a class=\"btn\" href=\"/.console/\">Back to the "
                     "console</a></p>");
        return;
    }
    {
        json_t *v = json_object_get(json_object_get(cfg->doc, "session"), "ttl_s");
        long ttl = v != NULL ? (long)json_number_value(v) : 43200;
        set_cookie(req, cfg, token, ttl);
    }
    redirect(req, 302, return_to != NULL && strncmp(return_to, "/.console/", 10) == 0 ? return_to : "/.console/");
}

int console_handle(h2o_req_t *req, struct gw_req *gr, const char *path, size_t path_len)
{
    const gw_config_t *cfg = gr->holder->cfg;
    const char *rest;
    size_t rest_len;

    if (!cfg->has_console) {
        h2o_send_error_404(req, "Not Found", "not found", 0);
        return 0;
    }
    if (path_len == 9) { /* "/.console" */
        redirect(req, 301, "/.console/");
        return 0;
    }
    rest = path + 10;
    rest_len = path_len - 10;
    if (rest_len >= 4 && memcmp(rest, "api/", 4) == 0)
        return api(req, gr, rest + 4, rest_len - 4);
    if (h2o_memis(rest, rest_len, H2O_STRLIT("api"))) {
        send_api_error(req, 404, "not_found", "no such endpoint");
        return 0;
    }
    if (rest_len > 6 && memcmp(rest, "login/", 6) == 0 && memchr(rest + 6, '/', rest_len - 6) == NULL) {
        if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))) {
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
            h2o_send_error_generic(req, 405, "Method Not Allowed", "method not allowed", 0);
            return 0;
        }
        add_security_headers(req, 0);
        return auth_console_login(req, gr, rest + 6, rest_len - 6, console_return_to(req));
    }
    if (h2o_memis(rest, rest_len, H2O_STRLIT("logout")))
        return logout(req, gr);
    return asset(req, rest, rest_len);
}
