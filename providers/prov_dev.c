/*
 * Development sign-in stand-ins (see prov_dev.h). They are as strict as the
 * real services on what the gateway sends (client credentials, exact
 * redirect_uri, single-use codes, PKCE S256, appsecret_proof), so the demo
 * exercises the same checks a production sign-in does.
 */
#include "prov_dev.h"
#include "prov_int.h"

#include <cjose/cjose.h>
#include <oauth2/util.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_GRANTS 256
#define GRANT_TTL_S 120
#define TOKEN_TTL_S 3600

typedef struct persona {
    const char *key, *name, *email;
    int email_verified;
    const char *fb_id; /* Facebook user id, or NULL when not offered there */
} persona_t;

static const persona_t personas[] = {
    {"ada", "Ada Lovelace", "ada@demo.test", 1, "10001"},
    {"grace", "Grace Hopper", "grace@demo.test", 1, "10002"},
    {"sam", "Sam Unverified", "sam@demo.test", 0, NULL},
    {"linus", "Linus (no email)", NULL, 0, "10004"},
    /* the demo's staff member: the demo console's roles allow this verified address's domain (gateway/main.c) */
    {"morgan", "Morgan (demo staff: console)", "morgan@staff.demo.test", 1, NULL},
};
#define NUM_PERSONAS (sizeof(personas) / sizeof(personas[0]))

typedef struct grant {
    char code[48];
    const persona_t *who;
    char nonce[128], challenge[64];
    int facebook;
    time_t expires;
} grant_t;

typedef struct fb_token {
    char token[48];
    const persona_t *who;
    time_t expires;
} fb_token_t;

struct prov_dev {
    pthread_mutex_t lock;
    char *base, *issuer, *google_callback, *fb_callback;
    char google_client[32], google_secret[48], fb_app[32], fb_secret[48];
    cjose_jwk_t *key;
    char *jwks_json;
    grant_t grants[MAX_GRANTS];
    size_t next_grant;
    fb_token_t tokens[MAX_GRANTS];
    size_t next_token;
};

static void random_b64url(char *out, size_t cap, size_t nbytes)
{
    uint8_t raw[32];
    char *enc = NULL;
    size_t len = 0;
    cjose_err err;

    RAND_bytes(raw, (int)nbytes);
    if (cjose_base64url_encode(raw, nbytes, &enc, &len, &err) && len < cap) {
        memcpy(out, enc, len);
        out[len] = '\0';
    } else {
        out[0] = '\0';
    }
    free(enc);
}

static char *concat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

prov_dev_t *prov_dev_create(const char *base_url, const char *gateway_url, json_t **providers)
{
    prov_dev_t *d = calloc(1, sizeof(*d));
    static const uint8_t e[] = {0x01, 0x00, 0x01};
    cjose_err err;
    char *pub = NULL;

    if (d == NULL)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->base = strdup(base_url);
    d->issuer = concat(base_url, "/google");
    d->google_callback = concat(gateway_url, "/.auth/login/google/callback");
    d->fb_callback = concat(gateway_url, "/.auth/login/facebook/callback");
    snprintf(d->google_client, sizeof(d->google_client), "demo-google-client");
    snprintf(d->fb_app, sizeof(d->fb_app), "100200300");
    random_b64url(d->google_secret, sizeof(d->google_secret), 24);
    random_b64url(d->fb_secret, sizeof(d->fb_secret), 24);
    if ((d->key = cjose_jwk_create_RSA_random(2048, e, sizeof(e), &err)) == NULL ||
        !cjose_jwk_set_kid(d->key, "demo-1", 6, &err) || (pub = cjose_jwk_to_json(d->key, false, &err)) == NULL) {
        free(pub);
        free(d);
        return NULL;
    }
    {
        json_t *k = json_loads(pub, 0, NULL);
        json_object_set_new(k, "alg", json_string("RS256"));
        json_object_set_new(k, "use", json_string("sig"));
        json_t *jwks = json_pack("{s:[o]}", "keys", k);
        d->jwks_json = json_dumps(jwks, JSON_COMPACT);
        json_decref(jwks);
        free(pub);
    }
    {
        char *graph = concat(base_url, "/facebook/v19.0"), *dialog = concat(base_url, "/facebook/v19.0/dialog/oauth");
        *providers =
            json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:b}, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}}", "google",
                      "type", "google", "display_name", "Google (development stand-in)", "client_id", d->google_client,
                      "client_secret", d->google_secret, "issuer", d->issuer, "insecure_http", 1, "facebook", "type",
                      "facebook", "display_name", "Facebook (development stand-in)", "app_id", d->fb_app, "app_secret",
                      d->fb_secret, "graph_url", graph, "dialog_url", dialog, "insecure_http", 1, "trust_email", 0);
        free(graph);
        free(dialog);
    }
    return d;
}

/* ------------------------------------------------------------------ responses */

static void respond(prov_dev_response_t *out, int status, const char *type, char *body)
{
    out->status = status;
    out->content_type = type;
    out->body = body != NULL ? body : strdup("");
    out->body_len = strlen(out->body);
}

static void respond_json(prov_dev_response_t *out, int status, json_t *obj)
{
    respond(out, status, "application/json", json_dumps(obj, JSON_COMPACT));
    json_decref(obj);
}

static void oauth_error(prov_dev_response_t *out, int status, const char *error, const char *desc)
{
    respond_json(out, status, json_pack("{s:s, s:s}", "error", error, "error_description", desc));
}

static void graph_error(prov_dev_response_t *out, const char *message, int code)
{
    respond_json(out, 400,
                 json_pack("{s:{s:s, s:s, s:i}}", "error", "message", message, "type", "OAuthException", "code", code));
}

static void html_append(char **buf, size_t *len, size_t *cap, const char *s, int escape)
{
    for (; *s != '\0'; ++s) {
        const char *rep = NULL;
        char one[2] = {*s, '\0'};
        if (escape)
            rep = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : NULL;
        if (rep == NULL)
            rep = one;
        size_t n = strlen(rep);
        if (*len + n + 1 > *cap) {
            *cap = (*cap + n + 1) * 2;
            *buf = realloc(*buf, *cap);
        }
        memcpy(*buf + *len, rep, n);
        *len += n;
        (*buf)[*len] = '\0';
    }
}

/* ------------------------------------------------------------------ parameters */

typedef struct params {
    oauth2_nv_list_t *list;
} params_t;

static void params_parse(params_t *p, const char *data, size_t len)
{
    char *copy = malloc(len + 1);
    p->list = NULL;
    memcpy(copy, data, len);
    copy[len] = '\0';
    if (!oauth2_parse_form_encoded_params(prov_log(), copy, &p->list))
        p->list = NULL;
    free(copy);
}

static const char *param(const params_t *p, const char *name)
{
    const char *v = p->list != NULL ? oauth2_nv_list_get(prov_log(), p->list, name) : NULL;
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static void params_clear(params_t *p)
{
    if (p->list != NULL)
        oauth2_nv_list_free(prov_log(), p->list);
}

static const persona_t *find_persona(const char *key, int facebook)
{
    for (size_t i = 0; key != NULL && i < NUM_PERSONAS; ++i)
        if (strcmp(personas[i].key, key) == 0 && (!facebook || personas[i].fb_id != NULL))
            return &personas[i];
    return NULL;
}

/* ------------------------------------------------------------------ persona picker */

static void picker(prov_dev_t *d, const params_t *q, int facebook, prov_dev_response_t *out)
{
    size_t len = 0, cap = 4096;
    char *html = malloc(cap), *approve = concat(d->base, facebook ? "/facebook/approve" : "/google/approve");
    html[0] = '\0';
    html_append(&html, &len, &cap,
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                "content=\"width=device-width, initial-scale=1\"><title>Development sign-in</title><style>"
                "body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}"
                ".warn{background:#fff8c5;border:1px solid #d4a72c;padding:.7rem;border-radius:6px}"
                "a.btn{display:block;margin:.5rem 0;padding:.7rem 1rem;border:1px solid #8c959f;border-radius:6px;"
                "color:#1b1f24;text-decoration:none;background:#f6f8fa}a.btn:focus{outline:3px solid #0969da}"
                "</style></head><body><main><h1>",
                0);
    html_append(&html, &len, &cap, facebook ? "Facebook stand-in" : "Google stand-in", 0);
    html_append(&html, &len, &cap,
                "</h1><p class=\"warn\" role=\"note\"><strong>Development only.</strong> This is journeygate's "
                "built-in stand-in, not the real provider. It exists only in <code>journeygate demo</code>.</p>"
                "<p>Choose a test persona to sign in as:</p>",
                0);
    for (size_t i = 0; i < NUM_PERSONAS; ++i) {
        const persona_t *who = &personas[i];
        if (facebook && who->fb_id == NULL)
            continue;
        const char *pairs[] = {"persona",
                               who->key,
                               "client_id",
                               param(q, "client_id"),
                               "redirect_uri",
                               param(q, "redirect_uri"),
                               "state",
                               param(q, "state"),
                               "nonce",
                               param(q, "nonce"),
                               "code_challenge",
                               param(q, "code_challenge"),
                               NULL};
        char *link = prov_url_with_query(approve, pairs), label[160];
        snprintf(label, sizeof(label), "%s — %s%s", who->name, who->email != NULL ? who->email : "no email shared",
                 who->email != NULL && !who->email_verified && !facebook ? " (unverified)" : "");
        html_append(&html, &len, &cap, "<a class=\"btn\" data-persona=\"", 0);
        html_append(&html, &len, &cap, who->key, 1);
        html_append(&html, &len, &cap, "\" href=\"", 0);
        html_append(&html, &len, &cap, link != NULL ? link : "#", 1);
        html_append(&html, &len, &cap, "\">", 0);
        html_append(&html, &len, &cap, label, 1);
        html_append(&html, &len, &cap, "</a>", 0);
        free(link);
    }
    html_append(&html, &len, &cap, "</main></body></html>\n", 0);
    free(approve);
    respond(out, 200, "text/html; charset=utf-8", html);
}

/* the authorization request must come from the gateway, for its own callback */
static const char *check_authorize(prov_dev_t *d, const params_t *q, int facebook)
{
    const char *client = param(q, "client_id"), *redirect = param(q, "redirect_uri");
    if (client == NULL || strcmp(client, facebook ? d->fb_app : d->google_client) != 0)
        return "unknown client_id";
    if (redirect == NULL || strcmp(redirect, facebook ? d->fb_callback : d->google_callback) != 0)
        return "redirect_uri is not registered";
    if (param(q, "state") == NULL)
        return "state is required";
    if (!facebook) {
        const char *ch = param(q, "code_challenge");
        if (param(q, "nonce") == NULL || ch == NULL || strlen(ch) != 43)
            return "nonce and an S256 code_challenge are required";
    }
    return NULL;
}

static void approve(prov_dev_t *d, const params_t *q, int facebook, prov_dev_response_t *out)
{
    const char *problem = check_authorize(d, q, facebook);
    const persona_t *who = find_persona(param(q, "persona"), facebook);
    grant_t *g;

    if (problem != NULL || who == NULL) {
        respond(out, 400, "text/plain; charset=utf-8", strdup(problem != NULL ? problem : "unknown persona"));
        return;
    }
    pthread_mutex_lock(&d->lock);
    g = &d->grants[d->next_grant];
    d->next_grant = (d->next_grant + 1) % MAX_GRANTS;
    memset(g, 0, sizeof(*g));
    random_b64url(g->code, sizeof(g->code), 24);
    g->who = who;
    g->facebook = facebook;
    g->expires = time(NULL) + GRANT_TTL_S;
    if (!facebook) {
        const char *nonce = param(q, "nonce"), *challenge = param(q, "code_challenge");
        snprintf(g->nonce, sizeof(g->nonce), "%s", nonce != NULL ? nonce : "");
        snprintf(g->challenge, sizeof(g->challenge), "%s", challenge != NULL ? challenge : "");
    }
    {
        const char *pairs[] = {"code", g->code, "state", param(q, "state"), "iss", facebook ? NULL : d->issuer, NULL};
        out->location = prov_url_with_query(param(q, "redirect_uri"), pairs);
    }
    pthread_mutex_unlock(&d->lock);
    respond(out, 302, "text/plain; charset=utf-8", strdup("redirecting"));
}

/* takes a grant by code (single use); copies it out */
static int take_grant(prov_dev_t *d, const char *code, int facebook, grant_t *out)
{
    int found = 0;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; code != NULL && i < MAX_GRANTS; ++i) {
        grant_t *g = &d->grants[i];
        if (g->who != NULL && g->facebook == facebook && strcmp(g->code, code) == 0) {
            if (g->expires > time(NULL)) {
                *out = *g;
                found = 1;
            }
            memset(g, 0, sizeof(*g));
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return found;
}

/* ------------------------------------------------------------------ Google */

static int client_authenticated(prov_dev_t *d, const prov_dev_request_t *r, const params_t *form)
{
    const char *id = param(form, "client_id"), *secret = param(form, "client_secret");
    char *decoded = NULL;
    int ok = 0;

    if (r->authorization != NULL && r->authorization_len > 6 && strncasecmp(r->authorization, "Basic ", 6) == 0) {
        uint8_t *raw = NULL;
        size_t raw_len = 0;
        cjose_err err;
        if (cjose_base64_decode(r->authorization + 6, r->authorization_len - 6, &raw, &raw_len, &err)) {
            decoded = calloc(1, raw_len + 1);
            memcpy(decoded, raw, raw_len);
            free(raw);
            char *colon = strchr(decoded, ':');
            if (colon != NULL) {
                *colon = '\0';
                /* RFC 6749 2.3.1: both parts are form-encoded; ours need no decoding */
                id = decoded;
                secret = colon + 1;
            }
        }
    }
    ok = id != NULL && secret != NULL && strcmp(id, d->google_client) == 0 &&
         strlen(secret) == strlen(d->google_secret) && CRYPTO_memcmp(secret, d->google_secret, strlen(secret)) == 0;
    free(decoded);
    return ok;
}

static void google_token(prov_dev_t *d, const prov_dev_request_t *r, prov_dev_response_t *out)
{
    params_t form;
    grant_t g;
    const char *verifier;
    uint8_t digest[32];
    char *challenge = NULL, *payload, at[48];
    size_t clen = 0;
    cjose_err err;
    cjose_header_t *hdr;
    cjose_jws_t *jws;
    const char *compact;
    time_t now = time(NULL);

    params_parse(&form, r->body != NULL ? r->body : "", r->body_len);
    if (!client_authenticated(d, r, &form)) {
        params_clear(&form);
        oauth_error(out, 401, "invalid_client", "client authentication failed");
        return;
    }
    if (param(&form, "grant_type") == NULL || strcmp(param(&form, "grant_type"), "authorization_code") != 0 ||
        !take_grant(d, param(&form, "code"), 0, &g) || param(&form, "redirect_uri") == NULL ||
        strcmp(param(&form, "redirect_uri"), d->google_callback) != 0) {
        params_clear(&form);
        oauth_error(out, 400, "invalid_grant", "unknown, used or expired code, or another redirect_uri");
        return;
    }
    verifier = param(&form, "code_verifier");
    if (verifier != NULL)
        SHA256((const unsigned char *)verifier, strlen(verifier), digest);
    if (verifier == NULL || !cjose_base64url_encode(digest, sizeof(digest), &challenge, &clen, &err) ||
        strcmp(challenge, g.challenge) != 0) {
        free(challenge);
        params_clear(&form);
        oauth_error(out, 400, "invalid_grant", "PKCE verification failed");
        return;
    }
    free(challenge);
    params_clear(&form);
    {
        char sub[32];
        /* a stable subject per persona, as Google's numeric ids */
        unsigned long h = 5381;
        for (const char *p = g.who->key; *p != '\0'; ++p)
            h = h * 33 + (unsigned char)*p;
        snprintf(sub, sizeof(sub), "1%018lu", h % 1000000000000000000UL);
        /* the persona was picked (the person "signed in") when the grant was made */
        json_t *claims =
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "iss", d->issuer, "sub", sub, "aud",
                      d->google_client, "azp", d->google_client, "iat", (json_int_t)now, "exp", (json_int_t)(now + 300),
                      "auth_time", (json_int_t)(g.expires - GRANT_TTL_S), "nonce", g.nonce, "name", g.who->name);
        if (g.who->email != NULL) {
            json_object_set_new(claims, "email", json_string(g.who->email));
            json_object_set_new(claims, "email_verified", json_boolean(g.who->email_verified));
        }
        payload = json_dumps(claims, JSON_COMPACT);
        json_decref(claims);
    }
    hdr = cjose_header_new(&err);
    cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &err);
    cjose_header_set(hdr, CJOSE_HDR_KID, "demo-1", &err);
    cjose_header_set(hdr, "typ", "JWT", &err);
    jws = cjose_jws_sign(d->key, hdr, (const uint8_t *)payload, strlen(payload), &err);
    free(payload);
    cjose_header_release(hdr);
    if (jws == NULL || !cjose_jws_export(jws, &compact, &err)) {
        cjose_jws_release(jws);
        oauth_error(out, 500, "server_error", "signing failed");
        return;
    }
    random_b64url(at, sizeof(at), 24);
    respond_json(out, 200,
                 json_pack("{s:s, s:s, s:i, s:s}", "access_token", at, "token_type", "Bearer", "expires_in", 3600,
                           "id_token", compact));
    cjose_jws_release(jws);
}

static void google_discovery(prov_dev_t *d, prov_dev_response_t *out)
{
    char *auth = concat(d->issuer, "/authorize"), *token = concat(d->issuer, "/token"),
         *jwks = concat(d->issuer, "/jwks");
    respond_json(out, 200,
                 json_pack("{s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s], s:[s,s]}", "issuer", d->issuer,
                           "authorization_endpoint", auth, "token_endpoint", token, "jwks_uri", jwks,
                           "response_types_supported", "code", "subject_types_supported", "public",
                           "id_token_signing_alg_values_supported", "RS256", "code_challenge_methods_supported", "S256",
                           "token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post"));
    free(auth);
    free(token);
    free(jwks);
}

/* ------------------------------------------------------------------ Facebook */

static const persona_t *fb_token_owner(prov_dev_t *d, const char *token)
{
    const persona_t *who = NULL;
    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; token != NULL && i < MAX_GRANTS; ++i)
        if (d->tokens[i].who != NULL && strcmp(d->tokens[i].token, token) == 0 && d->tokens[i].expires > time(NULL))
            who = d->tokens[i].who;
    pthread_mutex_unlock(&d->lock);
    return who;
}

static void facebook_access_token(prov_dev_t *d, const params_t *q, prov_dev_response_t *out)
{
    grant_t g;
    const char *secret = param(q, "client_secret");
    fb_token_t *t;

    if (param(q, "client_id") == NULL || strcmp(param(q, "client_id"), d->fb_app) != 0 || secret == NULL ||
        strlen(secret) != strlen(d->fb_secret) || CRYPTO_memcmp(secret, d->fb_secret, strlen(secret)) != 0) {
        graph_error(out, "Error validating client secret.", 1);
        return;
    }
    if (param(q, "redirect_uri") == NULL || strcmp(param(q, "redirect_uri"), d->fb_callback) != 0 ||
        !take_grant(d, param(q, "code"), 1, &g)) {
        graph_error(out, "Invalid verification code format.", 100);
        return;
    }
    pthread_mutex_lock(&d->lock);
    t = &d->tokens[d->next_token];
    d->next_token = (d->next_token + 1) % MAX_GRANTS;
    random_b64url(t->token, sizeof(t->token), 24);
    t->who = g.who;
    t->expires = time(NULL) + TOKEN_TTL_S;
    json_t *ans =
        json_pack("{s:s, s:s, s:i}", "access_token", t->token, "token_type", "bearer", "expires_in", TOKEN_TTL_S);
    pthread_mutex_unlock(&d->lock);
    respond_json(out, 200, ans);
}

static void facebook_me(prov_dev_t *d, const params_t *q, prov_dev_response_t *out)
{
    const char *token = param(q, "access_token"), *proof = param(q, "appsecret_proof");
    const persona_t *who = fb_token_owner(d, token);
    unsigned char mac[32];
    unsigned int len = sizeof(mac);
    char hex[65];

    if (who == NULL) {
        graph_error(out, "Invalid OAuth access token.", 190);
        return;
    }
    HMAC(EVP_sha256(), d->fb_secret, (int)strlen(d->fb_secret), (const unsigned char *)token, strlen(token), mac, &len);
    for (int i = 0; i < 32; ++i)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    if (proof == NULL || strlen(proof) != 64 || CRYPTO_memcmp(proof, hex, 64) != 0) {
        graph_error(out, "Invalid appsecret_proof provided in the API argument", 100);
        return;
    }
    json_t *me = json_pack("{s:s, s:s}", "id", who->fb_id, "name", who->name);
    if (who->email != NULL)
        json_object_set_new(me, "email", json_string(who->email));
    respond_json(out, 200, me);
}

static void facebook_debug_token(prov_dev_t *d, const params_t *q, prov_dev_response_t *out)
{
    const char *app_token = param(q, "access_token");
    const persona_t *who = fb_token_owner(d, param(q, "input_token"));
    size_t n = strlen(d->fb_app) + strlen(d->fb_secret) + 2;
    char *expected = malloc(n);

    snprintf(expected, n, "%s|%s", d->fb_app, d->fb_secret);
    if (app_token == NULL || strlen(app_token) != strlen(expected) ||
        CRYPTO_memcmp(app_token, expected, strlen(expected)) != 0) {
        free(expected);
        graph_error(out, "Invalid OAuth access token signature.", 190);
        return;
    }
    free(expected);
    if (who == NULL) {
        respond_json(out, 200, json_pack("{s:{s:b, s:s}}", "data", "is_valid", 0, "app_id", d->fb_app));
        return;
    }
    respond_json(out, 200,
                 json_pack("{s:{s:s, s:s, s:s, s:I, s:b, s:[s,s], s:s}}", "data", "app_id", d->fb_app, "type", "USER",
                           "application", "journeygate demo", "expires_at", (json_int_t)(time(NULL) + TOKEN_TTL_S),
                           "is_valid", 1, "scopes", "public_profile", "email", "user_id", who->fb_id));
}

/* ------------------------------------------------------------------ dispatch */

void prov_dev_handle(prov_dev_t *d, const prov_dev_request_t *r, prov_dev_response_t *out)
{
    params_t q;
    int get = strcmp(r->method, "GET") == 0;

    memset(out, 0, sizeof(*out));
    params_parse(&q, r->query != NULL ? r->query : "", r->query_len);
#define IS(lit) (r->path_len == sizeof(lit) - 1 && memcmp(r->path, lit, r->path_len) == 0)
    if (get && IS("/google/.well-known/openid-configuration")) {
        google_discovery(d, out);
    } else if (get && IS("/google/jwks")) {
        respond(out, 200, "application/json", strdup(d->jwks_json));
    } else if (get && IS("/google/authorize")) {
        const char *problem = check_authorize(d, &q, 0);
        if (problem != NULL)
            respond(out, 400, "text/plain; charset=utf-8", strdup(problem));
        else
            picker(d, &q, 0, out);
    } else if (get && IS("/google/approve")) {
        approve(d, &q, 0, out);
    } else if (!get && IS("/google/token")) {
        google_token(d, r, out);
    } else if (get && IS("/facebook/v19.0/dialog/oauth")) {
        const char *problem = check_authorize(d, &q, 1);
        if (problem != NULL)
            respond(out, 400, "text/plain; charset=utf-8", strdup(problem));
        else
            picker(d, &q, 1, out);
    } else if (get && IS("/facebook/approve")) {
        approve(d, &q, 1, out);
    } else if (get && IS("/facebook/v19.0/oauth/access_token")) {
        facebook_access_token(d, &q, out);
    } else if (get && IS("/facebook/v19.0/me")) {
        facebook_me(d, &q, out);
    } else if (get && IS("/facebook/v19.0/debug_token")) {
        facebook_debug_token(d, &q, out);
    } else {
        respond(out, 404, "text/plain; charset=utf-8", strdup("not found"));
    }
#undef IS
    params_clear(&q);
}
