/*
 * journeygate — private declarations of the server layer (server.c, auth.c):
 * the only files that use h2o.
 */
#ifndef GW_SERVER_INT_H
#define GW_SERVER_INT_H

#include "config.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <h2o.h>
#include <h2o/http1.h>
#include <jansson.h>

typedef enum listener_kind { LISTENER_PUBLIC, LISTENER_ADMIN, LISTENER_DEMO, LISTENER_DEVIDP } listener_kind_t;

struct thread;

struct listener {
    struct thread *thread;
    listener_kind_t kind;
    SSL_CTX *ssl_ctx; /* NULL for plain HTTP */
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock;
};

/* a config snapshot as one thread uses it; freed when no request of the thread holds it */
struct cfg_holder {
    gw_config_t *cfg;
    size_t num_requests;
    struct cfg_holder *next;
};

/* per-thread connection pool and client settings for one upstream definition */
struct upstream_slot {
    char *url_str;
    uint32_t timeout_ms, keepalive_ms;
    int websocket;
    h2o_url_t url;
    h2o_iovec_t base_path; /* upstream path without its trailing '/' */
    h2o_socketpool_t pool;
    h2o_timeout_t io_timeout, ws_timeout;
    h2o_http1client_ctx_t client;
    struct upstream_slot *next;
};

/* a connection before h2o sees it: TLS handshake and the first request head */
struct preread {
    h2o_timeout_entry_t timeout; /* first: freed with the struct */
    h2o_socket_t *sock;
    struct listener *listener;
    struct timeval connected_at;
    size_t scanned, lines;
    int last_was_newline;
};

struct thread {
    unsigned index;
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    struct listener *listeners;
    size_t num_listeners;
    h2o_multithread_receiver_t wakeup;
    h2o_multithread_receiver_t jobs;         /* finished worker jobs come back here */
    struct auth_cache *auth_cache;           /* auth.c's per-thread session cache */
    h2o_multithread_receiver_t console_jobs; /* console.c: finished and streaming API calls come back here */
    h2o_timeout_t preread_timeout;
    struct cfg_holder *holder, *old_holders;
    unsigned generation;
    struct upstream_slot *upstreams;
    gw_metrics_thread_t *metrics;
    uint64_t reqid_prefix, reqid_counter;
    size_t inflight;
    int draining;
    char *logbuf;
    size_t loglen;
    h2o_timeout_t log_timeout;
    h2o_timeout_entry_t log_flush;
};

/* per-request state, allocated from the request pool */
struct gw_req {
    struct thread *thread;
    struct cfg_holder *holder;
    const gw_route_t *route; /* NULL when none matched */
    char request_id[33];
    char peer[INET6_ADDRSTRLEN];   /* the socket's peer address */
    char client[INET6_ADDRSTRLEN]; /* the client as resolved through trusted proxies */
    int is_tls;
    json_t *session;     /* the signed-in session for this request, or NULL (freed with the request) */
    unsigned cache_slot; /* its slot in the thread's session cache + 1, or 0 */
    char visitor_id[32]; /* anonymous visitor on a touchpoint route without sign-in, or "" */
    int set_visitor;     /* the visitor cookie is new: send it with the response */
    int touch_skip;      /* the route's touchpoint_skip matched the path: no touchpoint, no visitor */
};

/* ---- auth.c: sign-in, sessions, identity headers ---- */

/** Starts the sign-in machinery (store, providers, workers, key refresher). Before any loop thread runs. */
gw_status_t auth_init(const gw_config_t *cfg);

/**
 * Records the touchpoint of a finished signed-in request on a route with a touchpoint (never
 * blocks). Returns 1 when queued, 0 when there is nothing to record, -1 when dropped (queue full).
 */
int auth_record_touchpoint(h2o_req_t *req, struct gw_req *gr);

/** On an auth "none" route with a touchpoint: reads or makes the anonymous visitor id (no disk write). */
void auth_visitor(h2o_req_t *req, struct gw_req *gr);

/** Adds the Set-Cookie of a new visitor id to the response being started. */
void auth_visitor_cookie(h2o_req_t *req, struct gw_req *gr);

/** Writes an audit record for an event with no request (e.g. a configuration reload), off the caller's thread. */
void auth_audit_event(const char *event, const char *outcome, const char *reason);

/** Starts forwarding audit records to syslog (RFC 5424) when audit.syslog is on. */
void auth_start_syslog(const gw_config_t *cfg);

/** At shutdown, after the loops stopped: waits for queued and running worker jobs. */
/** After a reload: applies the new rate limits and ingest keys; logs what else needs a restart. */
void auth_reload(const gw_config_t *old, const gw_config_t *next);
void auth_shutdown(void);

/** Per-thread setup: registers the receiver of finished jobs. */
void auth_thread_init(struct thread *th);

/** Answers a request under /.auth/ (path normalised). Returns 0 (answered). */
int auth_handle_endpoint(h2o_req_t *req, struct gw_req *gr, const char *path, size_t path_len);

/**
 * Authenticates a request for a route whose auth is not "none". Returns 1 when it may go on
 * (gr->session set), 0 when it has been answered (302 to sign-in, 401, 403).
 */
int auth_check_route(h2o_req_t *req, struct gw_req *gr, const gw_route_t *route);

/**
 * Removes the gateway's own cookies from the request and, when signed in, adds the identity
 * headers of DESIGN.md. Call after the client's reserved headers were removed.
 */
void auth_prepare_upstream(h2o_req_t *req, struct gw_req *gr, const gw_route_t *route);

/**
 * The admin API (/admin/customers/ID, /admin/audit, /admin/figures, ...). The caller has checked
 * the admin token (server.c's admin_refused).
 */
int auth_admin_customers(h2o_req_t *req, struct thread *th, const char *path, size_t path_len, const char *client);

/**
 * Records a refused admin credential (event admin_refused, reason "no_token" or "wrong_token", the
 * path asked for as route) through the bounded refusal queue: anyone can cause it at will.
 */
void auth_admin_refused(h2o_req_t *req, const char *client, const char *reason);

/* ---- for the console (gateway/console/console.c): the sign-in machinery it reuses ---- */

/** The store and the worker pool auth_init() opened (valid until auth_shutdown()). */
struct store;
struct gw_workers;
struct store *auth_store(void);
struct gw_workers *auth_workers(void);

/**
 * Starts a staff sign-in with provider `name` (name_len bytes): the usual pending-login cookie and
 * redirect, marked "console", so that the callback makes a staff session and ends at return_to
 * (a /.console/ path the caller checked). 404 page for an unknown provider, 429 when rate limited.
 */
int auth_console_login(h2o_req_t *req, struct gw_req *gr, const char *name, size_t name_len, const char *return_to);

/** [{"name","label"}] of the configured providers (new reference). */
json_t *auth_providers_json(void);

/** Sends a small HTML page (title, message) with status. */
void gw_send_page(h2o_req_t *req, int status, const char *reason, const char *title, const char *message_html);
void gw_send_json(h2o_req_t *req, int status, const char *reason, json_t *obj);
void gw_send_error_json(h2o_req_t *req, int status, const char *reason, const char *error, const char *desc);

/**
 * The value of cookie `name` in the request's Cookie headers (the first one that has it, see
 * gw_cookie_get()), or {NULL, 0}. The value points into the request's headers: valid for the
 * request's lifetime. Loop thread.
 */
h2o_iovec_t gw_find_cookie(h2o_req_t *req, const char *name);

#endif
