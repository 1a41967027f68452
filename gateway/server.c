/*
 * The server: one h2o context per event-loop thread, SO_REUSEPORT listeners per
 * thread, and one handler that every request meets first. The handler checks
 * limits, routes, cleans headers and hands the request to h2o's proxy with a
 * per-thread, per-upstream connection pool.
 *
 * h2o 2.2.5 facts this relies on (see shared/H2O.md): HTTP/2 is never offered
 * (no ALPN, upgrade_to_http2 = 0, and connections go straight to
 * h2o_http1_accept); request bodies are fully buffered before handlers run.
 */
#include "server.h"
#include "server_int.h"
#include "console/console.h"
#include "crypto.h"
#include "metrics.h"
#include "policy_glue.h"
#include "prov_dev.h"
#include "route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>

/*
 * picohttpparser, which h2o bundles and libh2o exports (Debian installs no header for it): the
 * gateway reads request heads with h2o's own parser, so both always agree on a head.
 */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

#define MODULE "server"
#define REQUEST_LINE_MAX 8192
#define WEBSOCKET_IDLE_MS 600000
#define ACCESS_LOG_BUF 65536
#define ACCESS_LOG_FLUSH_MS 250

static struct {
    pthread_mutex_t cfg_lock;
    gw_config_t *cfg;
    atomic_uint generation;
    const char *config_path;
    unsigned num_threads;
    struct thread *threads;
    atomic_int draining;
    atomic_long connections;
    h2o_globalconf_t conf, admin_conf, demo_conf, devidp_conf;
    int demo_port, devidp_port;
    prov_dev_t *devidp;
    SSL_CTX **listen_ssl; /* one per cfg->listens entry */
    SSL_CTX *upstream_ssl;
    atomic_int access_log_fd; /* -1: off */
    uint64_t start_body_cap;
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    unsigned num_done;
} srv = {.cfg_lock = PTHREAD_MUTEX_INITIALIZER,
         .done_lock = PTHREAD_MUTEX_INITIALIZER,
         .done_cond = PTHREAD_COND_INITIALIZER};

static const char JG_ENV_KEY[] = "journeygate.req";

/* ------------------------------------------------------------------ helpers */

static h2o_iovec_t json_body(h2o_mem_pool_t *pool, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    h2o_iovec_t out = h2o_iovec_init(H2O_STRLIT("{}"));

    json_decref(obj);
    if (s != NULL) {
        out = h2o_strdup(pool, s, SIZE_MAX);
        free(s);
    }
    return out;
}

void gw_send_json(h2o_req_t *req, int status, const char *reason, json_t *obj)
{
    h2o_iovec_t body = json_body(&req->pool, obj);

    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, body.base, body.len);
}

void gw_send_error_json(h2o_req_t *req, int status, const char *reason, const char *error, const char *desc)
{
    gw_send_json(req, status, reason, json_pack("{s:s, s:s}", "error", error, "error_description", desc));
}

h2o_iovec_t gw_find_cookie(h2o_req_t *req, const char *name)
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

/*
 * The connection's peer into *ss and, as text, into out (cap bytes; left as it is for a family
 * other than IPv4 and IPv6). Returns get_peername()'s length, 0 when the peer is unknown.
 */
static socklen_t peer_address(h2o_req_t *req, struct sockaddr_storage *ss, char *out, size_t cap)
{
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)ss);

    if (len != 0 && ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)cap);
    else if (len != 0 && ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr, out, (socklen_t)cap);
    return len;
}

static void hex_encode(char *dst, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
        dst[i] = hex[v & 15];
        v >>= 4;
    }
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t timeval_diff_us(const struct timeval *from, const struct timeval *to)
{
    int64_t d = (int64_t)(to->tv_sec - from->tv_sec) * 1000000 + (to->tv_usec - from->tv_usec);
    return d > 0 ? (uint64_t)d : 0;
}

static struct gw_req *get_gw_req(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (req->env.entries[i].base == JG_ENV_KEY)
            return (struct gw_req *)req->env.entries[i + 1].base;
    return NULL;
}

/* -------------------------------------------------------------- config use */

static void thread_refresh_config(struct thread *th)
{
    struct cfg_holder *h = calloc(1, sizeof(*h));
    unsigned gen;

    if (h == NULL)
        return; /* keep serving with the snapshot we have */
    pthread_mutex_lock(&srv.cfg_lock);
    h->cfg = gw_config_ref(srv.cfg);
    gen = atomic_load(&srv.generation);
    pthread_mutex_unlock(&srv.cfg_lock);
    if (th->holder != NULL) {
        if (th->holder->num_requests == 0) {
            gw_config_unref(th->holder->cfg);
            free(th->holder);
        } else {
            th->holder->next = th->old_holders;
            th->old_holders = th->holder;
        }
    }
    th->holder = h;
    th->generation = gen;
}

static void holder_release(struct thread *th, struct cfg_holder *h)
{
    if (--h->num_requests != 0 || h == th->holder)
        return;
    for (struct cfg_holder **p = &th->old_holders; *p != NULL; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    gw_config_unref(h->cfg);
    free(h);
}

/* ---------------------------------------------------------------- upstreams */

static struct upstream_slot *get_upstream(struct thread *th, const gw_upstream_t *up)
{
    struct upstream_slot *s;

    for (s = th->upstreams; s != NULL; s = s->next)
        if (s->timeout_ms == up->timeout_ms && s->keepalive_ms == up->keepalive_ms && s->websocket == up->websocket &&
            strcmp(s->url_str, up->url) == 0)
            return s;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    if ((s->url_str = strdup(up->url)) == NULL || h2o_url_parse(s->url_str, SIZE_MAX, &s->url) != 0) {
        GW_LOG_ERR(MODULE, "upstream %s: cannot parse url", up->name);
        free(s->url_str);
        free(s);
        return NULL;
    }
    s->timeout_ms = up->timeout_ms;
    s->keepalive_ms = up->keepalive_ms;
    s->websocket = up->websocket;
    s->base_path = s->url.path;
    if (s->base_path.len > 0 && s->base_path.base[s->base_path.len - 1] == '/')
        --s->base_path.len;
    h2o_socketpool_init_by_hostport(&s->pool, s->url.host, h2o_url_get_port(&s->url),
                                    s->url.scheme == &H2O_URL_SCHEME_HTTPS, SIZE_MAX);
    h2o_socketpool_set_timeout(&s->pool, th->loop, up->keepalive_ms);
    h2o_timeout_init(th->loop, &s->io_timeout, up->timeout_ms);
    h2o_timeout_init(th->loop, &s->ws_timeout, WEBSOCKET_IDLE_MS);
    s->client.loop = th->loop;
    s->client.getaddr_receiver = &th->ctx.receivers.hostinfo_getaddr;
    s->client.io_timeout = &s->io_timeout;
    s->client.websocket_timeout = up->websocket ? &s->ws_timeout : NULL;
    s->client.ssl_ctx = srv.upstream_ssl;
    s->next = th->upstreams;
    th->upstreams = s;
    return s;
}

/* ---------------------------------------------------------- header hygiene */

static int is_forwarded_header(const h2o_iovec_t *name)
{
    return h2o_lcstris(name->base, name->len, H2O_STRLIT("x-forwarded-for")) ||
           h2o_lcstris(name->base, name->len, H2O_STRLIT("x-forwarded-proto")) ||
           h2o_lcstris(name->base, name->len, H2O_STRLIT("x-forwarded-host")) ||
           h2o_lcstris(name->base, name->len, H2O_STRLIT("x-request-id")) ||
           h2o_lcstris(name->base, name->len, H2O_STRLIT("forwarded"));
}

/*
 * Removes identity headers a client may not assert and rebuilds X-Forwarded-*
 * from what this gateway saw. A trusted proxy's X-Forwarded-For chain is kept
 * and extended; anybody else's is dropped.
 */
static void clean_and_forward_headers(h2o_req_t *req, struct gw_req *gr, const gw_config_t *cfg, int trusted,
                                      int is_tls)
{
    h2o_iovec_t xff = {NULL, 0}, xfp = {NULL, 0}, xfh = {NULL, 0};
    size_t i = 0;

    while (i < req->headers.size) {
        h2o_header_t *h = &req->headers.entries[i];
        if (gw_header_is_reserved(h->name->base, h->name->len) || gw_header_is_override(h->name->base, h->name->len)) {
            h2o_delete_header(&req->headers, (ssize_t)i);
            continue;
        }
        if (is_forwarded_header(h->name)) {
            if (trusted) {
                if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("x-forwarded-for")))
                    xff = xff.base == NULL ? h->value
                                           : h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
                else if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("x-forwarded-proto")))
                    xfp = h->value;
                else if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("x-forwarded-host")))
                    xfh = h->value;
            }
            h2o_delete_header(&req->headers, (ssize_t)i);
            continue;
        }
        /* the gateway's own cookies are not the upstream's business (sessions arrive with sign-in) */
        ++i;
    }
    {
        h2o_iovec_t peer = h2o_iovec_init(gr->peer, strlen(gr->peer));
        if (trusted && xff.base != NULL)
            xff = h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), peer);
        else
            xff = h2o_strdup(&req->pool, peer.base, peer.len);
    }
    if (xfp.base == NULL)
        xfp = is_tls ? h2o_iovec_init(H2O_STRLIT("https")) : h2o_iovec_init(H2O_STRLIT("http"));
    /*
     * The host the upstream builds links with: the client's (or a trusted proxy's) only when it
     * names this gateway, else public_url's, so a made-up Host never reaches a generated link.
     */
    if (xfh.base == NULL || !gw_host_valid(xfh.base, xfh.len) || !gw_host_known(cfg, xfh.base, xfh.len)) {
        xfh = req->input.authority;
        if (xfh.len == 0 || !gw_host_known(cfg, xfh.base, xfh.len))
            xfh = h2o_iovec_init(cfg->public_authority, cfg->public_authority_len);
    }
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-forwarded-for"), 0, "X-Forwarded-For", xff.base,
                          xff.len);
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-forwarded-proto"), 0, "X-Forwarded-Proto", xfp.base,
                          xfp.len);
    if (xfh.len != 0)
        h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-forwarded-host"), 0, "X-Forwarded-Host",
                              xfh.base, xfh.len);
    h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-request-id"), 0, "X-Request-Id", gr->request_id, 32);
}

/*
 * The client address the access log records: the peer, or, behind a trusted
 * proxy, the right-most X-Forwarded-For entry that is not itself trusted.
 */
static void resolve_client(h2o_req_t *req, struct gw_req *gr, const gw_config_t *cfg, int trusted)
{
    ssize_t cur = -1;
    char last[INET6_ADDRSTRLEN] = "";

    if (!trusted)
        return;
    while ((cur = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, cur)) != -1) {
        h2o_iovec_t v = req->headers.entries[cur].value;
        /* walk the comma-separated list from the right */
        size_t end = v.len;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v.base[start - 1] != ',')
                --start;
            size_t a = start, b = end;
            while (a < b && (v.base[a] == ' ' || v.base[a] == '\t'))
                ++a;
            while (b > a && (v.base[b - 1] == ' ' || v.base[b - 1] == '\t'))
                --b;
            if (b > a && b - a < sizeof(last)) {
                struct sockaddr_storage ss;
                char tmp[INET6_ADDRSTRLEN];
                memcpy(tmp, v.base + a, b - a);
                tmp[b - a] = '\0';
                memset(&ss, 0, sizeof(ss));
                if (inet_pton(AF_INET, tmp, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
                    ss.ss_family = AF_INET;
                else if (inet_pton(AF_INET6, tmp, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
                    ss.ss_family = AF_INET6;
                if (ss.ss_family != 0 &&
                    !gw_cidr_match(cfg->trusted_proxies, cfg->num_trusted_proxies, (struct sockaddr *)&ss)) {
                    memcpy(last, tmp, b - a + 1);
                    break;
                }
            }
            end = start > 0 ? start - 1 : 0;
        }
        if (last[0] != '\0')
            break;
    }
    if (last[0] != '\0')
        memcpy(gr->client, last, strlen(last) + 1);
}

/* ------------------------------------------------------------ the handler */

static int is_tls_conn(h2o_req_t *req)
{
    return req->input.scheme == &H2O_URL_SCHEME_HTTPS;
}

static int handle_auth_endpoint(h2o_req_t *req, struct gw_req *gr, const char *path, size_t path_len)
{
    if (path_len == sizeof("/.auth/health") - 1 && memcmp(path, "/.auth/health", path_len) == 0) {
        if (atomic_load(&srv.draining))
            gw_send_json(req, 503, "Service Unavailable", json_pack("{s:s}", "status", "draining"));
        else
            gw_send_json(req, 200, "OK", json_pack("{s:s}", "status", "ok"));
        return 0;
    }
    return auth_handle_endpoint(req, gr, path, path_len);
}

static int send_path_refused(h2o_req_t *req, gw_path_verdict_t pv)
{
    char desc[96];

    snprintf(desc, sizeof(desc), "the request path is refused: %s", gw_path_verdict_str(pv));
    gw_send_error_json(req, 400, "Bad Request", "invalid_path", desc);
    return 0;
}

static int send_body_too_large(h2o_req_t *req)
{
    req->http1_is_persistent = 0;
    gw_send_error_json(req, 413, "Payload Too Large", "body_too_large", "the request body is larger than allowed");
    return 0;
}

/* reads a request head with h2o's parser; returns the number of header lines, or -1 */
static int parse_head(const char *buf, size_t len, struct phr_header *headers, size_t max, h2o_iovec_t *method,
                      h2o_iovec_t *path)
{
    size_t num = max;
    int minor;
    const char *m, *p;
    size_t mlen, plen;

    if (phr_parse_request(buf, len, &m, &mlen, &p, &plen, &minor, headers, &num, 0) <= 0)
        return -1;
    *method = h2o_iovec_init(m, mlen);
    *path = h2o_iovec_init(p, plen);
    return (int)num;
}

static gw_framing_t head_framing(const struct phr_header *headers, size_t num, uint64_t *content_length, int *chunked)
{
    gw_header_view_t views[H2O_MAX_HEADERS];

    for (size_t i = 0; i < num; ++i) {
        views[i].name = headers[i].name;
        views[i].name_len = headers[i].name_len;
        views[i].value = headers[i].value;
        views[i].value_len = headers[i].value_len;
    }
    return gw_framing_check(views, num, content_length, chunked);
}

/*
 * h2o hides Content-Length and Transfer-Encoding from handlers and keeps the first of several
 * Content-Lengths; its input buffer still starts with the head of the request being handled, so
 * the head is read again here. Returns 0 when the framing is refused.
 */
static int framing_ok(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    struct phr_header headers[H2O_MAX_HEADERS];
    h2o_iovec_t method, path;
    uint64_t cl;
    int n, chunked;

    if (sock == NULL || sock->input == NULL)
        return 1;
    n = parse_head(sock->input->bytes, sock->input->size, headers, H2O_MAX_HEADERS, &method, &path);
    /* the head found must be this request's (h2o accepted it, so it parses) */
    if (n < 0 || !h2o_memis(method.base, method.len, req->input.method.base, req->input.method.len) ||
        !h2o_memis(path.base, path.len, req->input.path.base, req->input.path.len))
        return 1;
    return head_framing(headers, (size_t)n, &cl, &chunked) == GW_FRAMING_OK;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, ctx, req->conn->ctx);
    const gw_config_t *cfg;
    struct gw_req *gr;
    struct sockaddr_storage ss;
    socklen_t sslen;
    size_t path_len, header_bytes = 0, norm_len;
    char *norm;
    long ri;
    gw_path_verdict_t pv;
    int trusted = 0;

    (void)self;
    if (atomic_load_explicit(&srv.generation, memory_order_relaxed) != th->generation || th->holder == NULL)
        thread_refresh_config(th);
    cfg = th->holder->cfg;

    gr = h2o_mem_alloc_pool(&req->pool, sizeof(*gr));
    memset(gr, 0, sizeof(*gr));
    gr->thread = th;
    gr->is_tls = is_tls_conn(req);
    gr->holder = th->holder;
    ++gr->holder->num_requests;
    ++th->inflight;
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(JG_ENV_KEY, 0);
    req->env.entries[req->env.size++] = h2o_iovec_init((char *)gr, 0);

    hex_encode(gr->request_id, th->reqid_prefix);
    hex_encode(gr->request_id + 16, ++th->reqid_counter);
    gr->request_id[32] = '\0';
    if ((sslen = peer_address(req, &ss, gr->peer, sizeof(gr->peer))) != 0)
        trusted = gw_cidr_match(cfg->trusted_proxies, cfg->num_trusted_proxies, (struct sockaddr *)&ss);
    memcpy(gr->client, gr->peer, sizeof(gr->client));
    resolve_client(req, gr, cfg, trusted);

    /* limits h2o does not apply by itself (it refuses only > 100 header lines) */
    for (size_t i = 0; i < req->headers.size; ++i)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (req->headers.size > cfg->limits.max_header_count || header_bytes > cfg->limits.max_header_bytes) {
        gw_metrics_count(th->metrics, GW_CTR_HEADER_REJECTED);
        req->http1_is_persistent = 0;
        gw_send_error_json(req, 431, "Request Header Fields Too Large", "headers_too_large",
                           "too many or too large request headers");
        return 0;
    }

    /* a body's framing, read again from the head as sent (h2o keeps only the first Content-Length) */
    if (req->entity.base != NULL && !framing_ok(req)) {
        req->http1_is_persistent = 0;
        gw_send_error_json(req, 400, "Bad Request", "invalid_framing",
                           "conflicting Content-Length or Transfer-Encoding headers");
        return 0;
    }
    if (req->input.authority.len != 0 && !gw_host_valid(req->input.authority.base, req->input.authority.len)) {
        req->http1_is_persistent = 0;
        gw_send_error_json(req, 400, "Bad Request", "invalid_host", "the Host header is not valid");
        return 0;
    }

    path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    pv = gw_path_check(req->path.base, path_len);
    norm = h2o_mem_alloc_pool(&req->pool, path_len + 1);
    if (gw_path_normalize_into(req->path.base, path_len, norm, &norm_len) != GW_OK) {
        gw_send_error_json(req, 400, "Bad Request", "invalid_path", "the request path is not valid");
        return 0;
    }

    if (norm_len >= 7 && memcmp(norm, "/.auth/", 7) == 0) {
        if (pv != GW_PATH_OK)
            return send_path_refused(req, pv);
        if (req->entity.base != NULL && req->entity.len > gw_auth_body_limit(norm, norm_len))
            return send_body_too_large(req);
        return handle_auth_endpoint(req, gr, norm, norm_len);
    }

    /* the console (gateway/console/console.c): its own pages, sign-in and API, before any route */
    if (norm_len >= 9 && memcmp(norm, "/.console", 9) == 0 && (norm_len == 9 || norm[9] == '/')) {
        if (pv != GW_PATH_OK && cfg->has_console)
            return console_path_refused(req, norm, norm_len, gw_path_verdict_str(pv)); /* with its headers */
        if (pv != GW_PATH_OK)
            return send_path_refused(req, pv);
        return console_handle(req, gr, norm, norm_len);
    }

    ri = gw_route_match(cfg->routes, cfg->num_routes, req->input.authority.base, req->input.authority.len, norm,
                        norm_len);
    /* before the route is known to have opted out, a path an upstream could read otherwise is refused */
    if (gw_path_refused(cfg, ri, pv))
        return send_path_refused(req, pv);
    if (ri < 0) {
        gw_send_error_json(req, 404, "Not Found", "no_route", "no route for this host and path");
        return 0;
    }
    gr->route = &cfg->routes[ri];
    gr->touch_skip = gr->route->touchpoint != NULL && gw_route_touchpoint_skipped(gr->route, norm, norm_len);

    if (req->entity.base != NULL && req->entity.len > gr->route->max_body_bytes)
        return send_body_too_large(req);

    /* auth "none" with a policy: the policy is enforced, with the session when one is presented */
    if ((gr->route->auth != GW_AUTH_NONE || gr->route->policy != NULL) && !auth_check_route(req, gr, gr->route))
        return 0;
    if (gr->route->auth == GW_AUTH_NONE && gr->route->touchpoint != NULL && !gr->touch_skip)
        auth_visitor(req, gr);

    clean_and_forward_headers(req, gr, cfg, trusted, is_tls_conn(req));
    auth_prepare_upstream(req, gr, gr->route);

    {
        const gw_upstream_t *up = &cfg->upstreams[gr->route->upstream];
        struct upstream_slot *slot = get_upstream(th, up);
        h2o_req_overrides_t *ov;
        h2o_iovec_t dest, query = {NULL, 0};

        if (slot == NULL) {
            gw_send_error_json(req, 502, "Bad Gateway", "upstream_unavailable", "upstream unavailable");
            return 0;
        }
        if (req->query_at != SIZE_MAX)
            query = h2o_iovec_init(req->path.base + req->query_at, req->path.len - req->query_at);
        dest = h2o_concat(&req->pool, slot->base_path, h2o_iovec_init(norm, norm_len), query);
        ov = h2o_mem_alloc_pool(&req->pool, sizeof(*ov));
        memset(ov, 0, sizeof(*ov));
        ov->client_ctx = &slot->client;
        ov->socketpool = &slot->pool;
        h2o_reprocess_request(req, req->method, slot->url.scheme, slot->url.authority, dest, ov, 0);
    }
    return 0;
}

/*
 * Runs as every response starts (the gateway's own and the proxy's): adds the request id,
 * and turns h2o's 502 for an upstream timeout into the 504 it is.
 */
static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    struct gw_req *gr = get_gw_req(req);

    (void)self;
    if (gr != NULL) {
        h2o_set_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, gr->request_id, 32, 1);
        if (gr->set_visitor)
            auth_visitor_cookie(req, gr);
    }
    if (req->res.status == 502) {
        for (size_t i = 0; i < req->error_logs.size; ++i) {
            h2o_iovec_t m = req->error_logs.entries[i].msg;
            if (h2o_strstr(m.base, m.len, H2O_STRLIT("timeout")) != SIZE_MAX) {
                req->res.status = 504;
                req->res.reason = "Gateway Timeout";
                break;
            }
        }
    }
    h2o_setup_next_ostream(req, slot);
}

/* ------------------------------------------------------------- access log */

static void access_log_flush(struct thread *th)
{
    int fd = atomic_load(&srv.access_log_fd);
    size_t off = 0;

    while (fd >= 0 && off < th->loglen) {
        ssize_t n = write(fd, th->logbuf + off, th->loglen - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk must not stop serving: the lines are dropped */
        off += (size_t)n;
    }
    th->loglen = 0;
}

static void on_log_flush_timer(h2o_timeout_entry_t *entry)
{
    struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, log_flush, entry);
    access_log_flush(th);
}

static gw_upstream_error_t classify_upstream_error(h2o_req_t *req, int *found)
{
    *found = 0;
    for (size_t i = 0; i < req->error_logs.size; ++i) {
        if (strcmp(req->error_logs.entries[i].module, "lib/core/proxy.c") != 0)
            continue;
        h2o_iovec_t m = req->error_logs.entries[i].msg;
        *found = 1;
        if (h2o_strstr(m.base, m.len, H2O_STRLIT("timeout")) != SIZE_MAX)
            return GW_UPERR_TIMEOUT;
        if (h2o_strstr(m.base, m.len, H2O_STRLIT("refused")) != SIZE_MAX ||
            h2o_strstr(m.base, m.len, H2O_STRLIT("connection fail")) != SIZE_MAX)
            return GW_UPERR_REFUSED;
        return GW_UPERR_OTHER;
    }
    return GW_UPERR_OTHER;
}

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    struct gw_req *gr = get_gw_req(req);
    struct thread *th;
    uint64_t dur_us = 0;
    int status = req->res.status, has_uperr;
    gw_upstream_error_t uperr;
    unsigned route_idx;

    (void)self;
    if (gr == NULL)
        return;
    th = gr->thread;
    if (req->timestamps.request_begin_at.tv_sec != 0) {
        struct timeval end = req->timestamps.response_end_at;
        if (end.tv_sec == 0)
            end = *h2o_get_timestamp(req->conn->ctx, NULL, NULL);
        dur_us = timeval_diff_us(&req->timestamps.request_begin_at, &end);
    }
    route_idx = gr->route != NULL ? gr->route->metrics_index : 0;
    gw_metrics_request(th->metrics, route_idx, status, dur_us);
    uperr = classify_upstream_error(req, &has_uperr);
    if (has_uperr)
        gw_metrics_upstream_error(th->metrics, route_idx, uperr);

    if (atomic_load_explicit(&srv.access_log_fd, memory_order_relaxed) >= 0) {
        char ts[GW_ISO_TIME_LEN];
        struct timeval tv;
        size_t path_len = req->input.path.len;
        const char *q = memchr(req->input.path.base, '?', req->input.path.len);
        json_t *line;

        /* the query is never logged: it may carry codes or tokens */
        if (q != NULL)
            path_len = (size_t)(q - req->input.path.base);
        gettimeofday(&tv, NULL);
        gw_iso_time((uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000, ts);
        line = json_pack("{s:s, s:s, s:s, s:s%, s:s%, s:s, s:i, s:I, s:I}", "ts", ts, "request_id", gr->request_id,
                         "client", gr->client, "method", req->input.method.base, req->input.method.len, "path",
                         req->input.path.base, path_len, "route", gr->route != NULL ? gr->route->name : "", "status",
                         status, "bytes", (json_int_t)req->bytes_sent, "duration_us", (json_int_t)dur_us);
        if (line != NULL) {
            if (has_uperr)
                json_object_set_new(line, "upstream_error",
                                    json_string(uperr == GW_UPERR_TIMEOUT   ? "timeout"
                                                : uperr == GW_UPERR_REFUSED ? "refused"
                                                                            : "other"));
            if (th->loglen > ACCESS_LOG_BUF - 4096)
                access_log_flush(th);
            size_t n = json_dumpb(line, th->logbuf + th->loglen, ACCESS_LOG_BUF - th->loglen - 1, JSON_COMPACT);
            json_decref(line);
            if (n > 0 && n < ACCESS_LOG_BUF - th->loglen - 1) {
                th->loglen += n;
                th->logbuf[th->loglen++] = '\n';
                if (!h2o_timeout_is_linked(&th->log_flush))
                    h2o_timeout_link(th->loop, &th->log_timeout, &th->log_flush);
            }
        }
    }

    if ((gr->session != NULL || gr->visitor_id[0] != '\0') && gr->route != NULL && gr->route->touchpoint != NULL &&
        !gr->touch_skip) {
        int r = auth_record_touchpoint(req, gr);
        if (r != 0)
            gw_metrics_count(th->metrics, r > 0 ? GW_CTR_TOUCHPOINTS_RECORDED : GW_CTR_TOUCHPOINTS_DROPPED);
    }
    json_decref(gr->session);
    gr->session = NULL;
    holder_release(th, gr->holder);
    --th->inflight;
}

/* ----------------------------------------------------- admin and demo pages */

/*
 * The one admin token gate: answers 401 and returns 1 unless the request carries
 * "Authorization: Bearer TOKEN" with the admin token (compared in constant time). Without a
 * configured token, `open_without_token` decides: /metrics stays open, the admin API is closed.
 */
static int admin_refused(h2o_req_t *req, const char *token, int open_without_token, const char *client)
{
    ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);

    if (token == NULL ? open_without_token
                      : cur != -1 && req->headers.entries[cur].value.len == strlen(token) + 7 &&
                            h2o_lcstris(req->headers.entries[cur].value.base, 7, H2O_STRLIT("bearer ")) &&
                            gw_ct_equal(req->headers.entries[cur].value.base + 7, token, strlen(token)))
        return 0;
    /* who tried, with what: on record through the bounded refusal queue (never the token itself) */
    auth_admin_refused(req, client, cur == -1 ? "no_token" : "wrong_token");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                   H2O_STRLIT("Bearer realm=\"journeygate-admin\""));
    gw_send_error_json(req, 401, "Unauthorized", "unauthenticated", "admin token required");
    return 1;
}

static int on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct thread *th = H2O_STRUCT_FROM_MEMBER(struct thread, ctx, req->conn->ctx);
    int metrics = h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/metrics")),
        api = req->path_normalized.len > 7 && memcmp(req->path_normalized.base, "/admin/", 7) == 0;

    (void)self;
    if (h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/.auth/health"))) {
        gw_send_json(req, atomic_load(&srv.draining) ? 503 : 200,
                     atomic_load(&srv.draining) ? "Service Unavailable" : "OK",
                     json_pack("{s:s}", "status", atomic_load(&srv.draining) ? "draining" : "ok"));
        return 0;
    }
    if (!metrics && !api) {
        gw_send_error_json(req, 404, "Not Found", "not_found", "no such endpoint");
        return 0;
    }
    if (th->holder == NULL || atomic_load_explicit(&srv.generation, memory_order_relaxed) != th->generation)
        thread_refresh_config(th);
    /* with admin.token_file set, the metrics (route names, traffic, sign-in outcomes) need the token too */
    {
        struct sockaddr_storage ss;
        char client[INET6_ADDRSTRLEN] = "unknown";
        peer_address(req, &ss, client, sizeof(client));
        if (admin_refused(req, th->holder->cfg->admin_token, metrics, client))
            return 0;
        if (api)
            return auth_admin_customers(req, th, req->path_normalized.base, req->path_normalized.len, client);
    }

    size_t len;
    char *text = gw_metrics_render(&len);
    if (text == NULL) {
        h2o_send_error_500(req, "Internal Server Error", "metrics unavailable", 0);
        return 0;
    }
    h2o_iovec_t body = h2o_strdup(&req->pool, text, len);
    free(text);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4; charset=utf-8"));
    h2o_send_inline(req, body.base, body.len);
    return 0;
}

/* the built-in demo upstream: shows what a backend receives through the gateway */
static int on_demo_req(h2o_handler_t *self, h2o_req_t *req)
{
    static const char head[] =
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>journeygate demo upstream</title><style>body{font-family:system-ui,sans-serif;max-width:46rem;"
        "margin:2rem auto;padding:0 1rem;color:#1b1f24}code,td{font-family:ui-monospace,monospace}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d0d7de;padding:.3rem;"
        "text-align:left;vertical-align:top}.note{background:#fff8c5;padding:.6rem;border-radius:6px}</style>"
        "</head><body><main><h1>Demo upstream</h1><p>This page is served by the demo backend behind "
        "<strong>journeygate</strong>. It lists what the backend received.</p>"
        "<nav aria-label=\"Demo\"><ul><li><a href=\"/account/\">Your account</a> (needs sign-in: pick a test "
        "persona at the Google or Facebook stand-in)</li><li><a href=\"/.auth/me\">Who am I</a> (JSON)</li>"
        "<li><a href=\"/.auth/logout\">Sign out</a></li><li><a href=\"/\">Public page</a></li></ul></nav>";
    static const char who_open[] = "<p id=\"customer\" class=\"note\">Signed in as customer <strong><code>";
    static const char who_close[] = "</code></strong></p>";
    static const char req_head[] = "<h2>Request</h2><p><code>";
    static const char mid[] = "</code></p><h2>Forwarded and identity headers</h2><table><thead><tr><th>Header</th>"
                              "<th>Value</th></tr></thead><tbody>";
    static const char tail[] = "</tbody></table><p class=\"note\">Headers beginning with X-Customer-, X-Auth-, "
                               "X-Journey- or X-Identity- are set only by the gateway; a client's own copies are "
                               "removed.</p></main></body></html>\n";
    ssize_t cid = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-customer-id"), -1);
    h2o_iovec_t who = cid == -1 ? h2o_iovec_init(H2O_STRLIT("<p id=\"customer\">Not signed in.</p>"))
                                : h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT(who_open)),
                                             h2o_htmlescape(&req->pool, req->headers.entries[cid].value.base,
                                                            req->headers.entries[cid].value.len),
                                             h2o_iovec_init(H2O_STRLIT(who_close)));
    h2o_iovec_t page =
        h2o_concat(&req->pool, h2o_iovec_init(H2O_STRLIT(head)), who, h2o_iovec_init(H2O_STRLIT(req_head)),
                   h2o_htmlescape(&req->pool, req->method.base, req->method.len), h2o_iovec_init(H2O_STRLIT(" ")),
                   h2o_htmlescape(&req->pool, req->path.base, req->path.len), h2o_iovec_init(H2O_STRLIT(mid)));
    (void)self;
    for (size_t i = 0; i < req->headers.size; ++i) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (h->name->len < 2 || (h->name->base[0] != 'x' && h->name->base[0] != 'X'))
            continue;
        page =
            h2o_concat(&req->pool, page, h2o_iovec_init(H2O_STRLIT("<tr><td>")),
                       h2o_htmlescape(&req->pool, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len),
                       h2o_iovec_init(H2O_STRLIT("</td><td>")), h2o_htmlescape(&req->pool, h->value.base, h->value.len),
                       h2o_iovec_init(H2O_STRLIT("</td></tr>")));
    }
    page = h2o_concat(&req->pool, page, h2o_iovec_init(H2O_STRLIT(tail)));
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/html; charset=utf-8"));
    h2o_send_inline(req, page.base, page.len);
    return 0;
}

/* the demo's development sign-in stand-ins (never reachable from a configuration file) */
static int on_devidp_req(h2o_handler_t *self, h2o_req_t *req)
{
    prov_dev_request_t r;
    prov_dev_response_t out;
    ssize_t cur = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;

    (void)self;
    memset(&r, 0, sizeof(r));
    r.method = h2o_strdup(&req->pool, req->method.base, req->method.len).base;
    r.path = req->path.base;
    r.path_len = path_len;
    if (req->query_at != SIZE_MAX) {
        r.query = req->path.base + req->query_at + 1;
        r.query_len = req->path.len - req->query_at - 1;
    }
    r.body = req->entity.base;
    r.body_len = req->entity.len;
    if (cur != -1) {
        r.authorization = req->headers.entries[cur].value.base;
        r.authorization_len = req->headers.entries[cur].value.len;
    }
    prov_dev_handle(srv.devidp, &r, &out);
    req->res.status = out.status;
    req->res.reason = out.status == 200 ? "OK" : out.status == 302 ? "Found" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, out.content_type,
                   strlen(out.content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    if (out.location != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                       h2o_strdup(&req->pool, out.location, SIZE_MAX).base, strlen(out.location));
    h2o_iovec_t body = h2o_strdup(&req->pool, out.body, out.body_len);
    free(out.location);
    free(out.body);
    h2o_send_inline(req, body.base, body.len);
    return 0;
}

/* ------------------------------------------------------------ connections */

static void on_conn_close(void *data)
{
    (void)data;
    atomic_fetch_sub_explicit(&srv.connections, 1, memory_order_relaxed);
    gw_metrics_connections_add(-1);
}

static void preread_free(struct preread *pr)
{
    if (h2o_timeout_is_linked(&pr->timeout))
        h2o_timeout_unlink(&pr->timeout);
    free(pr);
}

static void on_reject_written(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_close(sock);
}

/*
 * The largest body the request to `path` (raw, query included) on `host` may have: its route's
 * limit, the /.auth/ endpoint's, or 0 where nothing takes a body (no route, a refused path).
 */
static uint64_t body_limit_for(const gw_config_t *cfg, h2o_iovec_t host, h2o_iovec_t path)
{
    size_t len = path.len, norm_len;
    const char *q = memchr(path.base, '?', path.len);
    char *norm;
    gw_path_verdict_t pv;
    uint64_t limit = 0;
    long ri;

    if (q != NULL)
        len = (size_t)(q - path.base);
    if (len == 0 || (norm = malloc(len + 1)) == NULL)
        return 0;
    pv = gw_path_check(path.base, len);
    if (gw_path_normalize_into(path.base, len, norm, &norm_len) == GW_OK) {
        if (norm_len >= 7 && memcmp(norm, "/.auth/", 7) == 0) {
            if (pv == GW_PATH_OK)
                limit = gw_auth_body_limit(norm, norm_len);
        } else if (norm_len >= 10 && memcmp(norm, "/.console/", 10) == 0) {
            if (pv == GW_PATH_OK && cfg->has_console)
                limit = console_body_limit(norm, norm_len);
        } else if ((ri = gw_route_match(cfg->routes, cfg->num_routes, host.base, host.len, norm, norm_len)) >= 0 &&
                   !gw_path_refused(cfg, ri, pv)) {
            limit = cfg->routes[ri].max_body_bytes;
        }
    }
    free(norm);
    return limit;
}

/* preread_check_head()'s 413 for a /.console/ path: answered as the console's API answers (its body and
   headers, console/API.md), not with the generic 413 */
#define PREREAD_413_CONSOLE 1413

/*
 * Judges a complete request head before h2o reads any of its body: conflicting framing → 400,
 * a declared body larger than its route (or /.auth/ endpoint) takes → 413 (PREREAD_413_CONSOLE
 * under /.console/), and a chunked body where no body is taken → 413. Returns 0 to hand the
 * connection to h2o, else the status.
 */
static int preread_check_head(const gw_config_t *cfg, const char *buf, size_t len)
{
    struct phr_header headers[H2O_MAX_HEADERS];
    h2o_iovec_t method, path, host = {NULL, 0};
    uint64_t cl, limit;
    int n, chunked;

    /* a head h2o's parser refuses (or with more lines than it takes) is h2o's to answer */
    if ((n = parse_head(buf, len, headers, H2O_MAX_HEADERS, &method, &path)) < 0)
        return 0;
    if (head_framing(headers, (size_t)n, &cl, &chunked) != GW_FRAMING_OK)
        return 400;
    if (cl == UINT64_MAX && !chunked)
        return 0;
    for (int i = 0; i < n; ++i)
        if (headers[i].name_len == 4 && strncasecmp(headers[i].name, "host", 4) == 0)
            host = h2o_iovec_init(headers[i].value, headers[i].value_len);
    limit = body_limit_for(cfg, host, path);
    if (chunked ? limit == 0 : cl > limit)
        return path.len >= 10 && memcmp(path.base, "/.console/", 10) == 0 && cfg->has_console ? PREREAD_413_CONSOLE
                                                                                              : 413;
    return 0;
}

static void preread_reject(struct preread *pr, int status)
{
    /* the connection has not reached h2o yet, so the answer is a fixed, complete response */
    static h2o_iovec_t r431 = {H2O_STRLIT("HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                          "Content-Type: application/json\r\nConnection: close\r\n"
                                          "Content-Length: 85\r\n\r\n"
                                          "{\"error\":\"headers_too_large\",\"error_description\":\"too many or too "
                                          "large request headers\"}")};
    static h2o_iovec_t r414 = {H2O_STRLIT("HTTP/1.1 414 URI Too Long\r\n"
                                          "Content-Type: application/json\r\nConnection: close\r\n"
                                          "Content-Length: 70\r\n\r\n"
                                          "{\"error\":\"uri_too_long\",\"error_description\":\"the request line is too "
                                          "long\"}")};
    static h2o_iovec_t r400 = {H2O_STRLIT("HTTP/1.1 400 Bad Request\r\n"
                                          "Content-Type: application/json\r\nConnection: close\r\n"
                                          "Content-Length: 105\r\n\r\n"
                                          "{\"error\":\"invalid_framing\",\"error_description\":\"conflicting "
                                          "Content-Length or Transfer-Encoding headers\"}")};
    static h2o_iovec_t r413 = {H2O_STRLIT("HTTP/1.1 413 Payload Too Large\r\n"
                                          "Content-Type: application/json\r\nConnection: close\r\n"
                                          "Content-Length: 88\r\n\r\n"
                                          "{\"error\":\"body_too_large\",\"error_description\":\"the request body is "
                                          "larger than allowed\"}")};
#define R413_CONSOLE_BODY "{\"error\":\"too_large\",\"message\":\"the body is larger than 16 KB\"}"
    _Static_assert(sizeof(R413_CONSOLE_BODY) - 1 == 63, "Content-Length of r413_console");
    static h2o_iovec_t r413_console = {
        H2O_STRLIT("HTTP/1.1 413 Payload Too Large\r\n"
                   "Content-Type: application/json; charset=utf-8\r\n"
                   "Cache-Control: no-store\r\n"
                   "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
                   "X-Content-Type-Options: nosniff\r\nReferrer-Policy: same-origin\r\n"
                   "Connection: close\r\nContent-Length: 63\r\n\r\n" R413_CONSOLE_BODY)};
#undef R413_CONSOLE_BODY
    h2o_socket_t *sock = pr->sock;
    struct thread *th = pr->listener->thread;
    h2o_iovec_t *answer = status == 414                   ? &r414
                          : status == 400                 ? &r400
                          : status == 413                 ? &r413
                          : status == PREREAD_413_CONSOLE ? &r413_console
                                                          : &r431;

    if (status == 431 || status == 414)
        gw_metrics_count(th->metrics, GW_CTR_HEADER_REJECTED);
    preread_free(pr);
    sock->data = NULL;
    h2o_socket_read_stop(sock);
    h2o_socket_write(sock, answer, 1, on_reject_written);
}

static void preread_handoff(struct preread *pr)
{
    h2o_socket_t *sock = pr->sock;
    struct listener *l = pr->listener;
    struct timeval connected_at = pr->connected_at;

    preread_free(pr);
    sock->data = NULL;
    h2o_socket_read_stop(sock);
    h2o_http1_accept(&l->accept_ctx, sock, connected_at);
}

/*
 * Counts header lines of the first request head as it arrives (resuming where the
 * last read stopped), so a head over the limits is answered 431 before h2o parses
 * it: h2o's own parser would answer 400 past 100 lines and buffers up to ~400 KB.
 */
static void on_preread(h2o_socket_t *sock, const char *err)
{
    struct preread *pr = sock->data;
    const gw_config_t *cfg = pr->listener->thread->holder->cfg;
    const char *buf = sock->input->bytes;
    size_t len = sock->input->size;

    if (err != NULL) {
        preread_free(pr);
        h2o_socket_close(sock);
        return;
    }
    for (size_t i = pr->scanned; i < len; ++i) {
        if (buf[i] != '\n') {
            if (buf[i] != '\r')
                pr->last_was_newline = 0;
            continue;
        }
        if (pr->last_was_newline && pr->lines > 0) {
            /* end of head: lines counted the request line plus each header line */
            int status;
            if (pr->lines - 1 > cfg->limits.max_header_count || i + 1 > cfg->limits.max_header_bytes + REQUEST_LINE_MAX)
                preread_reject(pr, 431);
            else if ((status = preread_check_head(cfg, buf, i + 1)) != 0)
                preread_reject(pr, status);
            else
                preread_handoff(pr);
            return;
        }
        if (pr->lines == 0 && i > REQUEST_LINE_MAX) {
            preread_reject(pr, 414);
            return;
        }
        if (i > 0 || pr->lines > 0)
            ++pr->lines;
        pr->last_was_newline = 1;
        if (pr->lines - 1 > cfg->limits.max_header_count) {
            preread_reject(pr, 431);
            return;
        }
    }
    pr->scanned = len;
    if (pr->lines == 0 && len > REQUEST_LINE_MAX) {
        preread_reject(pr, 414);
        return;
    }
    if (len > cfg->limits.max_header_bytes + REQUEST_LINE_MAX)
        preread_reject(pr, 431);
}

static void on_preread_timeout(h2o_timeout_entry_t *entry)
{
    struct preread *pr = (struct preread *)entry;
    h2o_socket_t *sock = pr->sock;

    /* slow or silent client: close without an answer, as h2o does for its own timeouts */
    gw_metrics_count(pr->listener->thread->metrics, GW_CTR_HEADER_TIMEOUT);
    free(pr);
    sock->data = NULL;
    h2o_socket_close(sock);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    struct preread *pr = sock->data;

    if (err != NULL) {
        preread_free(pr);
        h2o_socket_close(sock);
        return;
    }
    h2o_socket_read_start(sock, on_preread);
    if (sock->input->size != 0)
        on_preread(sock, NULL);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct listener *l = listener->data;
    struct thread *th = l->thread;
    h2o_socket_t *sock;
    long n;

    if (err != NULL)
        return;
    if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    if (th->holder == NULL || atomic_load_explicit(&srv.generation, memory_order_relaxed) != th->generation)
        thread_refresh_config(th);
    n = atomic_fetch_add_explicit(&srv.connections, 1, memory_order_relaxed) + 1;
    gw_metrics_connections_add(1);
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = th;
    if (n > (long)th->holder->cfg->limits.max_connections) {
        gw_metrics_count(th->metrics, GW_CTR_CONN_REJECTED);
        h2o_socket_close(sock);
        return;
    }
    gw_metrics_count(th->metrics, GW_CTR_CONN_ACCEPTED);
    if (l->kind != LISTENER_PUBLIC) {
        h2o_accept(&l->accept_ctx, sock);
        return;
    }
    struct preread *pr = calloc(1, sizeof(*pr));
    if (pr == NULL) {
        h2o_socket_close(sock);
        return;
    }
    pr->timeout.cb = on_preread_timeout;
    pr->sock = sock;
    pr->listener = l;
    pr->connected_at = *h2o_get_timestamp(&th->ctx, NULL, NULL);
    sock->data = pr;
    h2o_timeout_link(th->loop, &th->preread_timeout, &pr->timeout);
    if (l->ssl_ctx != NULL)
        h2o_socket_ssl_handshake(sock, l->ssl_ctx, NULL, on_handshake);
    else
        h2o_socket_read_start(sock, on_preread);
}

/* ------------------------------------------------------------ listeners */

/*
 * Binds address:port for listening; with `probe`, binds without SO_REUSEPORT and closes again,
 * which fails (EADDRINUSE) while any other socket listens there, SO_REUSEPORT or not: the
 * kernel would otherwise share the port with another process (another gateway) without a word.
 * Returns the listening socket, 0 for a successful probe, -1 with errno set.
 */
static int bind_listen_fd(const char *address, uint16_t port, int probe)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int fd, on = 1;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
        sslen = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, address, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
        sslen = sizeof(struct sockaddr_in6);
    } else {
        errno = EINVAL;
        return -1;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (!probe && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0 || (!probe && listen(fd, SOMAXCONN) != 0)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (probe) {
        close(fd);
        return 0;
    }
    return fd;
}

/* one SO_REUSEPORT listener per thread for one address (see bind_listen_fd) */
static int open_listen_fd(const char *address, uint16_t port)
{
    return bind_listen_fd(address, port, 0);
}

/* before the first of the gateway's own listeners on address:port: is anybody else there? */
static int address_free(const char *what, const char *address, uint16_t port)
{
    if (bind_listen_fd(address, port, 1) == 0)
        return 1;
    if (errno == EADDRINUSE)
        GW_LOG_ERR(MODULE, "%s %s:%u: address already in use by another process (is another gateway running?)", what,
                   address, port);
    else
        GW_LOG_ERR(MODULE, "%s %s:%u: %s", what, address, port, strerror(errno));
    return 0;
}

static SSL_CTX *create_server_ssl(const gw_listen_t *l, unsigned index)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    unsigned char sid_ctx[16];

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* distinct per listener, so sessions never resume across listeners (h2o's CVE-2023-41337 lesson) */
    int n = snprintf((char *)sid_ctx, sizeof(sid_ctx), "jg-listen-%u", index);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, (unsigned)(n > 0 && n < (int)sizeof(sid_ctx) ? n : 0));
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        GW_LOG_ERR(MODULE, "listen %s:%u: cannot load TLS certificate or key: %s", l->address, l->port, buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* no ALPN callback: "h2" is never negotiated (shared/H2O.md) */
    return ctx;
}

static int add_listener(struct thread *th, int fd, listener_kind_t kind, SSL_CTX *ssl, h2o_globalconf_t *hosts_from)
{
    struct listener *l = &th->listeners[th->num_listeners++];

    l->thread = th;
    l->kind = kind;
    l->ssl_ctx = ssl;
    l->accept_ctx.ctx = &th->ctx;
    l->accept_ctx.hosts = hosts_from->hosts;
    l->accept_ctx.ssl_ctx = kind == LISTENER_PUBLIC ? NULL : ssl; /* public TLS is done by on_accept itself */
    l->sock = h2o_evloop_socket_create(th->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return 0;
}

/* the demo's own upstream and sign-in stand-ins, which the gateway itself calls */
static int is_internal(const struct listener *l)
{
    return l->kind == LISTENER_DEMO || l->kind == LISTENER_DEVIDP;
}

/* closes the thread's listeners: those the outside reaches, or with `internal` the demo's own */
static void close_listeners(struct thread *th, int internal)
{
    for (size_t i = 0; i < th->num_listeners; ++i) {
        struct listener *l = &th->listeners[i];
        if (l->sock != NULL && is_internal(l) == internal) {
            h2o_socket_read_stop(l->sock);
            h2o_socket_close(l->sock);
            l->sock = NULL;
        }
    }
}

static int has_internal_listeners(const struct thread *th)
{
    for (size_t i = 0; i < th->num_listeners; ++i)
        if (is_internal(&th->listeners[i]))
            return 1;
    return 0;
}

static unsigned threads_done(void)
{
    unsigned n;
    pthread_mutex_lock(&srv.done_lock);
    n = srv.num_done;
    pthread_mutex_unlock(&srv.done_lock);
    return n;
}

/* ---------------------------------------------------------------- threads */

static void on_wakeup(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        free(msg);
    }
}

static void *thread_main(void *arg);

/*
 * A loop and its context are made on the thread that runs them. h2o's sockets take the creating
 * thread's thread-local buffer prototype (h2o_socket_buffer_prototype), whose recycle list has no
 * lock, and the context's message-queue socket reads on every cross-thread message (worker answers,
 * console stream chunks): made on the main thread, every loop's queue socket shared the main
 * thread's list, which handed one input buffer to two loops (a use after free; glibc's "double free
 * or corruption"). gw_server_run() waits for each context before going on with the thread's
 * set-up, and lets the loops run (boot.go) once everything is set up.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned made; /* loops made so far */
    int go;
} boot = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void *thread_boot(void *arg)
{
    struct thread *th = arg;

    th->loop = h2o_evloop_create();
    h2o_context_init(&th->ctx, th->loop, &srv.conf);
    pthread_mutex_lock(&boot.lock);
    ++boot.made;
    pthread_cond_broadcast(&boot.cond);
    while (!boot.go)
        pthread_cond_wait(&boot.cond, &boot.lock);
    pthread_mutex_unlock(&boot.lock);
    return thread_main(th);
}

static void *thread_main(void *arg)
{
    struct thread *th = arg;
    uint64_t drain_deadline = 0;
    int internal = has_internal_listeners(th);

    while (1) {
        h2o_evloop_run(th->loop, th->draining ? 50 : INT32_MAX);
        if (atomic_load(&srv.draining) && !th->draining) {
            th->draining = 1;
            close_listeners(th, 0);
            h2o_context_request_shutdown(&th->ctx);
            drain_deadline = now_us() + (uint64_t)th->holder->cfg->limits.drain_timeout_ms * 1000;
        }
        /*
         * The demo's upstream and sign-in stand-ins serve the other threads' requests (and their
         * sign-ins' token calls): they keep serving until every other thread has drained.
         */
        if (th->draining && (th->inflight == 0 || now_us() >= drain_deadline) &&
            (!internal || threads_done() == srv.num_threads - 1))
            break;
    }
    close_listeners(th, 1);
    if (th->inflight != 0)
        GW_LOG_WARNING(MODULE, "thread %u: drain timeout with %zu requests in flight", th->index, th->inflight);
    access_log_flush(th);
    /*
     * Report done and park: the process exits from the main thread. A parked thread keeps
     * h2o's per-thread caches (buffers, pools) reachable until exit instead of orphaning
     * them, and idle keep-alive connections are closed by the kernel at exit.
     */
    pthread_mutex_lock(&srv.done_lock);
    ++srv.num_done;
    pthread_cond_signal(&srv.done_cond);
    pthread_mutex_unlock(&srv.done_lock);
    for (;;)
        pause();
    return NULL;
}

static void wake_threads(void)
{
    for (unsigned i = 0; i < srv.num_threads; ++i) {
        h2o_multithread_message_t *msg = calloc(1, sizeof(*msg));
        if (msg != NULL)
            h2o_multithread_send_message(&srv.threads[i].wakeup, msg);
    }
}

/* -------------------------------------------------------------- reloading */

static int same_listeners(const gw_config_t *a, const gw_config_t *b)
{
    if (a->num_listens != b->num_listens || a->threads != b->threads || a->has_admin != b->has_admin)
        return 0;
    for (size_t i = 0; i < a->num_listens; ++i) {
        const gw_listen_t *x = &a->listens[i], *y = &b->listens[i];
        if (x->port != y->port || strcmp(x->address, y->address) != 0 || (x->tls_cert == NULL) != (y->tls_cert == NULL))
            return 0;
    }
    if (a->has_admin &&
        (a->admin_listen.port != b->admin_listen.port || strcmp(a->admin_listen.address, b->admin_listen.address) != 0))
        return 0;
    return 1;
}

/* h2o's one limit on every body it reads: the largest any route or /.auth/ endpoint takes */
static uint64_t max_body(const gw_config_t *cfg)
{
    uint64_t m =
        cfg->limits.max_body_bytes > GW_AUTH_INGEST_BODY_MAX ? cfg->limits.max_body_bytes : GW_AUTH_INGEST_BODY_MAX;
    for (size_t i = 0; i < cfg->num_routes; ++i)
        if (cfg->routes[i].max_body_bytes > m)
            m = cfg->routes[i].max_body_bytes;
    return m;
}

static int open_access_log(const gw_config_t *cfg)
{
    if (cfg->access_log == NULL)
        return -1;
    if (strcmp(cfg->access_log, "-") == 0)
        return dup(STDOUT_FILENO);
    return open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

static void reload(void)
{
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *next = NULL, *old;
    gw_metrics_thread_t *m = gw_metrics_thread(0);

    if (srv.config_path == NULL) {
        GW_LOG_INF(MODULE, "SIGHUP: the demo has no configuration file to reload");
        return;
    }
    if (gw_config_load(srv.config_path, &next, &errs) != GW_OK ||
        (gw_policies_attach(next, &errs) != GW_OK && (gw_config_unref(next), next = NULL, 1))) {
        for (size_t i = 0; i < errs.count; ++i)
            GW_LOG_ERR(MODULE, "reload refused: %s", errs.msgs[i]);
        GW_LOG_ERR(MODULE, "reload refused: %zu error(s); the running configuration keeps serving", errs.count);
        gw_config_errors_clear(&errs);
        gw_metrics_count(m, GW_CTR_RELOAD_FAILED);
        auth_audit_event("config_reloaded", "refused", "invalid_configuration");
        return;
    }
    gw_config_errors_clear(&errs);
    if (!same_listeners(srv.cfg, next))
        GW_LOG_WARNING(MODULE, "reload: listen, threads and admin.listen changes take effect only after a restart");
    if (max_body(next) > srv.start_body_cap)
        GW_LOG_WARNING(MODULE, "reload: a larger max_body_size than at start takes effect only after a restart");
    /* reopen the access log (log rotation); dup2 swaps the file behind the same descriptor atomically */
    {
        int fd = open_access_log(next), cur = atomic_load(&srv.access_log_fd);
        if (fd >= 0 && cur >= 0) {
            dup2(fd, cur);
            close(fd);
        } else if (fd >= 0) {
            close(fd); /* turning the access log on needs a restart */
        }
    }
    pthread_mutex_lock(&srv.cfg_lock);
    old = srv.cfg;
    srv.cfg = next;
    atomic_fetch_add(&srv.generation, 1);
    pthread_mutex_unlock(&srv.cfg_lock);
    auth_reload(old, next);
    gw_config_unref(old);
    gw_metrics_count(m, GW_CTR_RELOAD_OK);
    auth_audit_event("config_reloaded", "success", NULL);
    GW_LOG_INF(MODULE, "configuration reloaded from %s: %zu routes, %zu upstreams", srv.config_path, next->num_routes,
               next->num_upstreams);
}

/* ------------------------------------------------------------------- run */

static void setup_globalconf(h2o_globalconf_t *conf, const gw_config_t *cfg,
                             int (*on_req_cb)(h2o_handler_t *, h2o_req_t *), int with_proxy_parts)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    h2o_handler_t *handler;

    h2o_config_init(conf);
    conf->server_name = h2o_iovec_init(H2O_STRLIT("journeygate"));
    conf->http1.upgrade_to_http2 = 0;
    conf->http1.req_timeout = cfg->limits.idle_timeout_ms;
    conf->max_request_entity_size = srv.start_body_cap;
    conf->proxy.emit_x_forwarded_headers = 0;
    conf->proxy.emit_via_header = 0;
    conf->proxy.preserve_x_forwarded_proto = 1; /* the gateway sets it itself, from what it saw */
    host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    path->error_log.emit_request_errors = 0;
    handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req_cb;
    if (with_proxy_parts) {
        h2o_filter_t *filter = h2o_create_filter(path, sizeof(*filter));
        h2o_logger_t *logger = h2o_create_logger(path, sizeof(*logger));
        filter->on_setup_ostream = on_setup_ostream;
        logger->log_access = on_log_access;
    }
}

static SSL_CTX *create_upstream_ssl(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

gw_status_t gw_server_run(gw_config_t *cfg, const gw_server_opts_t *opts)
{
    sigset_t sigs;
    int sig, fd;
    unsigned t;
    gw_status_t st = GW_OK;

    srv.cfg = cfg;
    srv.config_path = opts->config_path;
    srv.demo_port = opts->demo_upstream_port;
    srv.devidp = opts->dev_idp;
    srv.devidp_port = opts->dev_idp_port;
    srv.num_threads = cfg->threads != 0 ? cfg->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (srv.num_threads == 0 || srv.num_threads > GW_METRICS_MAX_THREADS)
        srv.num_threads = 1;
    srv.start_body_cap = max_body(cfg);
    /* before anything starts: the listeners' addresses must be free of other processes */
    for (size_t i = 0; i < cfg->num_listens; ++i)
        if (!address_free("listen", cfg->listens[i].address, cfg->listens[i].port))
            return GW_EIO;
    if ((cfg->has_admin && !address_free("admin.listen", cfg->admin_listen.address, cfg->admin_listen.port)) ||
        (srv.demo_port > 0 && !address_free("demo upstream", "127.0.0.1", (uint16_t)srv.demo_port)) ||
        (srv.devidp != NULL && !address_free("demo sign-in stand-ins", "127.0.0.1", (uint16_t)srv.devidp_port)))
        return GW_EIO;
    atomic_init(&srv.access_log_fd, open_access_log(cfg));
    if (cfg->access_log != NULL && atomic_load(&srv.access_log_fd) < 0)
        GW_LOG_ERR(MODULE, "access_log: cannot open %s: %s; continuing without an access log", cfg->access_log,
                   strerror(errno));

    /* signals are taken by sigwait() in this thread; workers inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    setup_globalconf(&srv.conf, cfg, on_req, 1);
    setup_globalconf(&srv.admin_conf, cfg, on_admin_req, 0);
    setup_globalconf(&srv.demo_conf, cfg, on_demo_req, 0);
    setup_globalconf(&srv.devidp_conf, cfg, on_devidp_req, 0);

    if ((srv.upstream_ssl = create_upstream_ssl()) == NULL)
        return GW_EIO;
    if (auth_init(cfg) != GW_OK)
        return GW_EIO;
    console_init(auth_store(), auth_workers(), cfg);
    auth_start_syslog(cfg);
    srv.listen_ssl = calloc(cfg->num_listens, sizeof(*srv.listen_ssl));
    for (size_t i = 0; i < cfg->num_listens; ++i)
        if (cfg->listens[i].tls_cert != NULL &&
            (srv.listen_ssl[i] = create_server_ssl(&cfg->listens[i], (unsigned)i)) == NULL)
            return GW_EIO;

    srv.threads = calloc(srv.num_threads, sizeof(*srv.threads));
    for (t = 0; t < srv.num_threads; ++t) {
        struct thread *th = &srv.threads[t];
        uint8_t rnd[8];

        th->index = t;
        h2o_multithread_create_thread(&th->tid, NULL, thread_boot, th);
        pthread_mutex_lock(&boot.lock);
        while (boot.made <= t)
            pthread_cond_wait(&boot.cond, &boot.lock);
        pthread_mutex_unlock(&boot.lock);
        h2o_multithread_register_receiver(th->ctx.queue, &th->wakeup, on_wakeup);
        auth_thread_init(th);
        console_thread_init(th);
        h2o_timeout_init(th->loop, &th->preread_timeout, cfg->limits.header_timeout_ms);
        h2o_timeout_init(th->loop, &th->log_timeout, ACCESS_LOG_FLUSH_MS);
        th->log_flush.cb = on_log_flush_timer;
        th->logbuf = malloc(ACCESS_LOG_BUF);
        th->metrics = gw_metrics_thread(t);
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return GW_EIO;
        memcpy(&th->reqid_prefix, rnd, sizeof(rnd));
        thread_refresh_config(th);
        th->listeners = calloc(cfg->num_listens + 3, sizeof(*th->listeners));
        for (size_t i = 0; i < cfg->num_listens; ++i) {
            if ((fd = open_listen_fd(cfg->listens[i].address, cfg->listens[i].port)) == -1) {
                GW_LOG_ERR(MODULE, "listen[%zu] %s:%u: %s", i, cfg->listens[i].address, cfg->listens[i].port,
                           strerror(errno));
                return GW_EIO;
            }
            add_listener(th, fd, LISTENER_PUBLIC, srv.listen_ssl[i], &srv.conf);
        }
        if (t == 0 && cfg->has_admin) {
            if ((fd = open_listen_fd(cfg->admin_listen.address, cfg->admin_listen.port)) == -1) {
                GW_LOG_ERR(MODULE, "admin.listen %s:%u: %s", cfg->admin_listen.address, cfg->admin_listen.port,
                           strerror(errno));
                return GW_EIO;
            }
            add_listener(th, fd, LISTENER_ADMIN, NULL, &srv.admin_conf);
        }
        if (t == 0 && srv.demo_port > 0) {
            if ((fd = open_listen_fd("127.0.0.1", (uint16_t)srv.demo_port)) == -1) {
                GW_LOG_ERR(MODULE, "demo upstream 127.0.0.1:%d: %s", srv.demo_port, strerror(errno));
                return GW_EIO;
            }
            add_listener(th, fd, LISTENER_DEMO, NULL, &srv.demo_conf);
        }
        if (t == 0 && srv.devidp != NULL) {
            if ((fd = open_listen_fd("127.0.0.1", (uint16_t)srv.devidp_port)) == -1) {
                GW_LOG_ERR(MODULE, "demo sign-in stand-ins 127.0.0.1:%d: %s", srv.devidp_port, strerror(errno));
                return GW_EIO;
            }
            add_listener(th, fd, LISTENER_DEVIDP, NULL, &srv.devidp_conf);
        }
    }
    for (size_t i = 0; i < cfg->num_listens; ++i)
        GW_LOG_INF(MODULE, "listening on %s://%s:%u", cfg->listens[i].tls_cert != NULL ? "https" : "http",
                   cfg->listens[i].address, cfg->listens[i].port);
    if (cfg->has_admin)
        GW_LOG_INF(MODULE, "admin (metrics) on http://%s:%u", cfg->admin_listen.address, cfg->admin_listen.port);
    GW_LOG_INF(MODULE, "serving with %u event-loop threads, %zu routes", srv.num_threads, cfg->num_routes);

    pthread_mutex_lock(&boot.lock);
    boot.go = 1;
    pthread_cond_broadcast(&boot.cond);
    pthread_mutex_unlock(&boot.lock);

    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload();
            continue;
        }
        GW_LOG_INF(MODULE, "%s: draining in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        atomic_store(&srv.draining, 1);
        wake_threads();
        break;
    }
    pthread_mutex_lock(&srv.done_lock);
    while (srv.num_done < srv.num_threads)
        pthread_cond_wait(&srv.done_cond, &srv.done_lock);
    pthread_mutex_unlock(&srv.done_lock);
    auth_shutdown();
    console_shutdown();
    GW_LOG_INF(MODULE, "stopped");
    return st;
}
