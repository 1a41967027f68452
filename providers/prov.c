/*
 * Providers: Google / generic OpenID Connect and Facebook Login.
 *
 * liboauth2 checks only an ID token's signature here (its exp/iat checks and
 * token-keyed result cache are off); every other check is done below:
 * alg allow-list and key type, crit, iss, aud/azp, exp/iat/nbf with a small
 * skew, nonce, auth_time, hd; then prov_identity_check() for every claim kept.
 * Keys are loaded in the background and refetched at most once per
 * `jwks_min_refresh_s` when a token names an unknown kid.
 */
#include "prov.h"
#include "prov_int.h"

#include <cjose/cjose.h>
#include <curl/curl.h>
#include <oauth2/log.h>
#include <oauth2/util.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODULE "providers"
#define CLOCK_SKEW_S 60
#define GOOGLE_ISSUER "https://accounts.google.com"
#define FB_DEFAULT_VERSION "v19.0"

struct prov {
    char *name, *type, *display, *callback_url;
    char *client_id, *client_secret; /* Facebook: app id and app secret */
    json_t *mobile_client_ids;       /* array of strings, or NULL */
    json_t *hd;                      /* array of allowed Workspace domains, or NULL */
    int token_auth_post, trust_email, insecure_http;
    char *ca_file, *scopes;
    char *issuer, *discovery_url, *cfg_auth_ep, *cfg_token_ep, *cfg_jwks_uri;
    char *graph_url, *dialog_url;
    char **cfg_algs; /* configured allow-list, or NULL */
    uint32_t jwks_min_refresh_s;
    long connect_timeout_ms, timeout_ms;

    pthread_rwlock_t lock; /* guards everything below */
    int ready;
    char *auth_ep, *token_ep, *jwks_uri;
    char *algs[10];
    prov_keyset_t *keys;
    uint64_t last_jwks_fetch_ms; /* monotonic: whole seconds would let two fetches land 0.1 s apart */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- logging */

static void log_sink(oauth2_log_sink_t *sink, const char *filename, unsigned long line, const char *function,
                     oauth2_log_level_t level, const char *msg)
{
    /* liboauth2 messages can quote tokens: only the place is logged, never the text */
    (void)sink;
    (void)filename;
    (void)line;
    (void)msg;
    if (level <= OAUTH2_LOG_ERROR)
        GW_LOG_WARNING("liboauth2", "error reported in %s", function);
}

static __thread oauth2_log_t *thread_log;

oauth2_log_t *prov_log(void)
{
    if (thread_log == NULL)
        thread_log = oauth2_log_init(OAUTH2_LOG_ERROR, oauth2_log_sink_create(OAUTH2_LOG_ERROR, log_sink, NULL));
    return thread_log;
}

void prov_thread_cleanup(void)
{
    if (thread_log != NULL) {
        oauth2_log_free(thread_log);
        thread_log = NULL;
    }
}

void prov_global_init(void)
{
    static oauth2_log_t *global_log;
    if (global_log == NULL)
        global_log = oauth2_init(OAUTH2_LOG_ERROR, oauth2_log_sink_create(OAUTH2_LOG_ERROR, log_sink, NULL));
}

/* ------------------------------------------------------------- helpers */

void prov_identity_clear(prov_identity_t *id)
{
    free(id->subject);
    free(id->email);
    free(id->name);
    free(id->picture);
    free(id->hd);
    memset(id, 0, sizeof(*id));
}

static char *dup_json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? strdup(s) : NULL;
}

static char *read_secret(json_t *conf, const char *key)
{
    char k[64];
    const char *v;

    if ((v = json_string_value(json_object_get(conf, key))) != NULL)
        return strdup(v);
    snprintf(k, sizeof(k), "%s_env", key);
    if ((v = json_string_value(json_object_get(conf, k))) != NULL)
        return getenv(v) != NULL ? strdup(getenv(v)) : NULL;
    snprintf(k, sizeof(k), "%s_file", key);
    if ((v = json_string_value(json_object_get(conf, k))) != NULL) {
        char buf[4097];
        FILE *fp = fopen(v, "r");
        size_t n;
        if (fp == NULL)
            return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            --n;
        buf[n] = '\0';
        char *out = strdup(buf);
        OPENSSL_cleanse(buf, sizeof(buf));
        return out;
    }
    return NULL;
}

static char *strip_slash(const char *s)
{
    char *out = strdup(s);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return out;
}

static prov_http_opts_t http_opts(const prov_t *p)
{
    prov_http_opts_t o = {p->ca_file, p->connect_timeout_ms, p->timeout_ms, NULL, NULL};
    return o;
}

static void free_str(char **s)
{
    free(*s);
    *s = NULL;
}

const char *prov_name(const prov_t *p)
{
    return p->name;
}
const char *prov_type(const prov_t *p)
{
    return p->type;
}
const char *prov_display_name(const prov_t *p)
{
    return p->display;
}
const char *prov_issuer(const prov_t *p)
{
    return strcmp(p->type, "facebook") == 0 ? NULL : p->issuer;
}

int prov_ready(prov_t *p)
{
    int r;
    pthread_rwlock_rdlock(&p->lock);
    r = p->ready;
    pthread_rwlock_unlock(&p->lock);
    return r;
}

/* ------------------------------------------------------------- lifecycle */

gw_status_t prov_create(const char *name, json_t *conf, const char *callback_url, prov_t **out, char **err)
{
    prov_t *p = calloc(1, sizeof(*p));
    const char *type = json_string_value(json_object_get(conf, "type"));
    json_t *v;

    if (p == NULL)
        return GW_ENOMEM;
    pthread_rwlock_init(&p->lock, NULL);
    p->name = strdup(name);
    p->type = strdup(type != NULL ? type : "oidc");
    p->callback_url = strdup(callback_url);
    p->ca_file = dup_json_str(conf, "ca_file");
    p->insecure_http = json_is_true(json_object_get(conf, "insecure_http"));
    p->connect_timeout_ms = 3000;
    p->timeout_ms = 10000;
    p->jwks_min_refresh_s = 60;
    if ((v = json_object_get(conf, "http_timeout_s")) != NULL && json_is_number(v))
        p->timeout_ms = (long)(json_number_value(v) * 1000);
    if ((v = json_object_get(conf, "jwks_min_refresh_s")) != NULL && json_is_integer(v))
        p->jwks_min_refresh_s = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(conf, "scopes")) != NULL && json_is_array(v)) {
        size_t i, len = 1;
        json_t *s;
        json_array_foreach(v, i, s) len += json_string_length(s) + 1;
        p->scopes = calloc(1, len);
        size_t off = 0;
        json_array_foreach(v, i, s)
        {
            /* Facebook separates scopes with commas, OAuth 2 with spaces */
            int n = snprintf(p->scopes + off, len - off, "%s%s",
                             i > 0 ? (strcmp(p->type, "facebook") == 0 ? "," : " ") : "", json_string_value(s));
            if (n > 0 && (size_t)n < len - off)
                off += (size_t)n;
        }
    }

    if (strcmp(p->type, "facebook") == 0) {
        const char *version = json_string_value(json_object_get(conf, "api_version"));
        char buf[256];
        if (version == NULL)
            version = FB_DEFAULT_VERSION;
        p->display = strdup(json_string_value(json_object_get(conf, "display_name")) != NULL
                                ? json_string_value(json_object_get(conf, "display_name"))
                                : "Facebook");
        p->client_id = dup_json_str(conf, "app_id");
        p->client_secret = read_secret(conf, "app_secret");
        p->trust_email = json_is_true(json_object_get(conf, "trust_email"));
        if (json_string_value(json_object_get(conf, "graph_url")) != NULL) {
            p->graph_url = strip_slash(json_string_value(json_object_get(conf, "graph_url")));
        } else {
            snprintf(buf, sizeof(buf), "https://graph.facebook.com/%s", version);
            p->graph_url = strdup(buf);
        }
        if (json_string_value(json_object_get(conf, "dialog_url")) != NULL) {
            p->dialog_url = strdup(json_string_value(json_object_get(conf, "dialog_url")));
        } else {
            snprintf(buf, sizeof(buf), "https://www.facebook.com/%s/dialog/oauth", version);
            p->dialog_url = strdup(buf);
        }
        if (p->scopes == NULL)
            p->scopes = strdup("public_profile,email");
        p->ready = 1; /* nothing to discover */
    } else {
        const char *issuer = json_string_value(json_object_get(conf, "issuer"));
        const char *ta = json_string_value(json_object_get(conf, "token_endpoint_auth"));
        p->display = strdup(json_string_value(json_object_get(conf, "display_name")) != NULL
                                ? json_string_value(json_object_get(conf, "display_name"))
                            : strcmp(p->type, "google") == 0 ? "Google"
                                                             : name);
        p->client_id = dup_json_str(conf, "client_id");
        p->client_secret = read_secret(conf, "client_secret");
        p->issuer = strip_slash(issuer != NULL ? issuer : GOOGLE_ISSUER);
        p->discovery_url = dup_json_str(conf, "discovery_url");
        p->cfg_auth_ep = dup_json_str(conf, "authorization_endpoint");
        p->cfg_token_ep = dup_json_str(conf, "token_endpoint");
        p->cfg_jwks_uri = dup_json_str(conf, "jwks_uri");
        p->token_auth_post = ta != NULL && strcmp(ta, "client_secret_post") == 0;
        if ((v = json_object_get(conf, "mobile_client_ids")) != NULL)
            p->mobile_client_ids = json_incref(v);
        if ((v = json_object_get(conf, "hd")) != NULL)
            p->hd = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
        if ((v = json_object_get(conf, "algorithms")) != NULL && json_is_array(v)) {
            size_t i;
            json_t *s;
            p->cfg_algs = calloc(json_array_size(v) + 1, sizeof(char *));
            json_array_foreach(v, i, s) p->cfg_algs[i] = strdup(json_string_value(s));
        }
        if (p->scopes == NULL)
            p->scopes = strdup("openid email profile");
    }
    if (p->client_id == NULL || p->client_secret == NULL) {
        *err = strdup("client id or secret unavailable");
        prov_destroy(p);
        return GW_EINVAL;
    }
    *out = p;
    return GW_OK;
}

void prov_destroy(prov_t *p)
{
    if (p == NULL)
        return;
    if (p->client_secret != NULL)
        OPENSSL_cleanse(p->client_secret, strlen(p->client_secret));
    free(p->name);
    free(p->type);
    free(p->display);
    free(p->callback_url);
    free(p->client_id);
    free(p->client_secret);
    json_decref(p->mobile_client_ids);
    json_decref(p->hd);
    free(p->ca_file);
    free(p->scopes);
    free(p->issuer);
    free(p->discovery_url);
    free(p->cfg_auth_ep);
    free(p->cfg_token_ep);
    free(p->cfg_jwks_uri);
    free(p->graph_url);
    free(p->dialog_url);
    for (char **a = p->cfg_algs; a != NULL && *a != NULL; ++a)
        free(*a);
    free(p->cfg_algs);
    free(p->auth_ep);
    free(p->token_ep);
    free(p->jwks_uri);
    for (size_t i = 0; i < sizeof(p->algs) / sizeof(p->algs[0]); ++i)
        free(p->algs[i]);
    prov_keyset_destroy(p->keys);
    pthread_rwlock_destroy(&p->lock);
    free(p);
}

/* ------------------------------------------------------------- discovery and keys */

static int asymmetric_alg(const char *a)
{
    static const char *const ok[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); ++i)
        if (strcmp(a, ok[i]) == 0)
            return 1;
    return 0;
}

/* fetches the JWKS at uri and swaps it in; caller holds no lock */
static gw_status_t fetch_jwks(prov_t *p, const char *uri)
{
    prov_http_opts_t o = http_opts(p);
    prov_http_response_t r;
    json_t *doc = NULL;
    prov_keyset_t *ks;
    char *err = NULL;
    gw_status_t st;

    pthread_rwlock_wrlock(&p->lock);
    p->last_jwks_fetch_ms = mono_ms();
    pthread_rwlock_unlock(&p->lock);
    if ((st = prov_http(&o, uri, NULL, &r)) != GW_OK) {
        GW_LOG_WARNING(MODULE, "%s: jwks fetch failed (%s)", p->name, gw_status_str(st));
        return st;
    }
    if (r.status != 200 || (doc = prov_http_json(&r)) == NULL) {
        GW_LOG_WARNING(MODULE, "%s: jwks answer refused (status %ld)", p->name, r.status);
        prov_http_response_clear(&r);
        return GW_EUPSTREAM;
    }
    prov_http_response_clear(&r);
    ks = prov_keyset_create(doc, &err);
    json_decref(doc);
    if (ks == NULL) {
        GW_LOG_WARNING(MODULE, "%s: jwks refused: %s", p->name, err != NULL ? err : "no keys");
        free(err);
        return GW_EUPSTREAM;
    }
    pthread_rwlock_wrlock(&p->lock);
    prov_keyset_destroy(p->keys);
    p->keys = ks;
    pthread_rwlock_unlock(&p->lock);
    return GW_OK;
}

gw_status_t prov_refresh(prov_t *p)
{
    prov_http_opts_t o = http_opts(p);
    prov_http_response_t r;
    json_t *doc = NULL, *algs;
    char *url = NULL, *auth_ep = NULL, *token_ep = NULL, *jwks_uri = NULL;
    const char *doc_issuer;
    gw_status_t st;
    size_t i, n = 0;

    if (strcmp(p->type, "facebook") == 0)
        return GW_OK;
    if (p->discovery_url != NULL) {
        url = strdup(p->discovery_url);
    } else {
        size_t len = strlen(p->issuer) + sizeof("/.well-known/openid-configuration");
        url = malloc(len);
        snprintf(url, len, "%s/.well-known/openid-configuration", p->issuer);
    }
    st = prov_http(&o, url, NULL, &r);
    free(url);
    if (st != GW_OK) {
        GW_LOG_WARNING(MODULE, "%s: discovery failed (%s)", p->name, gw_status_str(st));
        return st;
    }
    doc = r.status == 200 ? prov_http_json(&r) : NULL;
    prov_http_response_clear(&r);
    if (doc == NULL) {
        GW_LOG_WARNING(MODULE, "%s: discovery answer refused", p->name);
        return GW_EUPSTREAM;
    }
    /* OpenID Connect Discovery 4.3: the document must name the issuer we asked */
    doc_issuer = json_string_value(json_object_get(doc, "issuer"));
    {
        char *norm = doc_issuer != NULL ? strip_slash(doc_issuer) : NULL;
        int same = norm != NULL && strcmp(norm, p->issuer) == 0;
        free(norm);
        if (!same) {
            GW_LOG_ERR(MODULE, "%s: discovery names issuer \"%s\", not the configured \"%s\": refused", p->name,
                       doc_issuer != NULL ? doc_issuer : "(none)", p->issuer);
            json_decref(doc);
            return GW_EDENIED;
        }
    }
    auth_ep = p->cfg_auth_ep != NULL ? strdup(p->cfg_auth_ep) : dup_json_str(doc, "authorization_endpoint");
    token_ep = p->cfg_token_ep != NULL ? strdup(p->cfg_token_ep) : dup_json_str(doc, "token_endpoint");
    jwks_uri = p->cfg_jwks_uri != NULL ? strdup(p->cfg_jwks_uri) : dup_json_str(doc, "jwks_uri");
    if (auth_ep == NULL || token_ep == NULL || jwks_uri == NULL ||
        (!p->insecure_http && (strncmp(auth_ep, "https://", 8) != 0 || strncmp(token_ep, "https://", 8) != 0 ||
                               strncmp(jwks_uri, "https://", 8) != 0))) {
        GW_LOG_ERR(MODULE, "%s: discovery lacks https endpoints", p->name);
        free(auth_ep);
        free(token_ep);
        free(jwks_uri);
        json_decref(doc);
        return GW_EUPSTREAM;
    }
    if ((st = fetch_jwks(p, jwks_uri)) != GW_OK) {
        free(auth_ep);
        free(token_ep);
        free(jwks_uri);
        json_decref(doc);
        return st;
    }
    pthread_rwlock_wrlock(&p->lock);
    free_str(&p->auth_ep);
    free_str(&p->token_ep);
    free_str(&p->jwks_uri);
    p->auth_ep = auth_ep;
    p->token_ep = token_ep;
    p->jwks_uri = jwks_uri;
    for (i = 0; i < sizeof(p->algs) / sizeof(p->algs[0]); ++i)
        free_str(&p->algs[i]);
    if (p->cfg_algs != NULL) {
        for (i = 0; p->cfg_algs[i] != NULL && n + 1 < sizeof(p->algs) / sizeof(p->algs[0]); ++i)
            if (asymmetric_alg(p->cfg_algs[i]))
                p->algs[n++] = strdup(p->cfg_algs[i]);
    } else {
        /* pin what the provider announces, keeping only asymmetric algorithms */
        algs = json_object_get(doc, "id_token_signing_alg_values_supported");
        for (i = 0; i < json_array_size(algs) && n + 1 < sizeof(p->algs) / sizeof(p->algs[0]); ++i) {
            const char *a = json_string_value(json_array_get(algs, i));
            if (a != NULL && asymmetric_alg(a))
                p->algs[n++] = strdup(a);
        }
        if (n == 0)
            p->algs[n++] = strdup("RS256");
    }
    p->ready = 1;
    pthread_rwlock_unlock(&p->lock);
    json_decref(doc);
    return GW_OK;
}

/* ------------------------------------------------------------- authorize */

gw_status_t prov_authorize_url(prov_t *p, const char *state, const char *nonce, const char *code_challenge,
                               const char *login_hint, int reauthenticate, char **url)
{
    gw_status_t st = GW_OK;

    if (strcmp(p->type, "facebook") == 0) {
        const char *q[] = {"client_id", p->client_id, "redirect_uri",  p->callback_url,
                           "state",     state,        "response_type", "code",
                           "scope",     p->scopes,    "auth_type",     reauthenticate ? "reauthenticate" : NULL,
                           NULL};
        *url = prov_url_with_query(p->dialog_url, q);
        return *url != NULL ? GW_OK : GW_ENOMEM;
    }
    pthread_rwlock_rdlock(&p->lock);
    if (!p->ready) {
        st = GW_EUNAVAIL;
    } else {
        const char *q[] = {"response_type",
                           "code",
                           "client_id",
                           p->client_id,
                           "redirect_uri",
                           p->callback_url,
                           "scope",
                           p->scopes,
                           "state",
                           state,
                           "nonce",
                           nonce,
                           "code_challenge",
                           code_challenge,
                           "code_challenge_method",
                           "S256",
                           "login_hint",
                           login_hint,
                           "hd",
                           p->hd != NULL && json_array_size(p->hd) == 1 ? json_string_value(json_array_get(p->hd, 0))
                                                                        : NULL,
                           "prompt",
                           reauthenticate ? "login" : NULL,
                           "max_age",
                           reauthenticate ? "0" : NULL,
                           NULL};
        *url = prov_url_with_query(p->auth_ep, q);
        if (*url == NULL)
            st = GW_ENOMEM;
    }
    pthread_rwlock_unlock(&p->lock);
    return st;
}

/* ------------------------------------------------------------- ID tokens */

static int json_str_in(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* aud accepted when it is the web client id, or (mobile) one of the mobile client ids */
static int audience_ok(const prov_t *p, const char *aud, int mobile)
{
    if (strcmp(aud, p->client_id) == 0)
        return 1;
    return mobile && p->mobile_client_ids != NULL && json_str_in(p->mobile_client_ids, aud);
}

static gw_status_t check_claims(prov_t *p, json_t *c, const char *nonce, int64_t auth_since, int mobile,
                                const char **reason)
{
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *sub = json_string_value(json_object_get(c, "sub"));
    const char *azp = json_string_value(json_object_get(c, "azp"));
    json_t *aud = json_object_get(c, "aud"), *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat"),
           *nbf = json_object_get(c, "nbf");
    json_int_t now = (json_int_t)time(NULL);
    int aud_ok = 0;

    if (iss == NULL || !(strcmp(iss, p->issuer) == 0 ||
                         (strcmp(p->issuer, GOOGLE_ISSUER) == 0 && strcmp(iss, "accounts.google.com") == 0))) {
        *reason = "id_token_invalid:iss";
        return GW_EDENIED;
    }
    if (json_is_string(aud)) {
        aud_ok = audience_ok(p, json_string_value(aud), mobile);
    } else if (json_is_array(aud) && json_array_size(aud) > 0) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a) if (json_is_string(a) && audience_ok(p, json_string_value(a), mobile)) aud_ok = 1;
        /* several audiences: azp must name the party the token was issued to */
        if (aud_ok && json_array_size(aud) > 1 && (azp == NULL || !audience_ok(p, azp, mobile))) {
            *reason = "id_token_invalid:azp";
            return GW_EDENIED;
        }
    }
    if (!aud_ok) {
        *reason = "id_token_invalid:aud";
        return GW_EDENIED;
    }
    if (azp != NULL && !audience_ok(p, azp, mobile)) {
        *reason = "id_token_invalid:azp";
        return GW_EDENIED;
    }
    if (!json_is_integer(exp) || json_integer_value(exp) + CLOCK_SKEW_S < now) {
        *reason = "id_token_invalid:exp";
        return GW_EDENIED;
    }
    if (!json_is_integer(iat) || json_integer_value(iat) > now + CLOCK_SKEW_S) {
        *reason = "id_token_invalid:iat";
        return GW_EDENIED;
    }
    if (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > now + CLOCK_SKEW_S)) {
        *reason = "id_token_invalid:nbf";
        return GW_EDENIED;
    }
    if (nonce != NULL) {
        const char *got = json_string_value(json_object_get(c, "nonce"));
        if (got == NULL || strlen(got) != strlen(nonce) || CRYPTO_memcmp(got, nonce, strlen(nonce)) != 0) {
            *reason = "nonce_mismatch";
            return GW_EDENIED;
        }
    }
    {
        /*
         * auth_time, when there is one, is what step-up ages are counted from: an integer in the
         * past. After max_age=0 the provider must say the person authenticated since (OIDC Core
         * 3.1.2.1).
         */
        json_t *at = json_object_get(c, "auth_time");
        if ((at != NULL &&
             (!json_is_integer(at) || json_integer_value(at) <= 0 || json_integer_value(at) > now + CLOCK_SKEW_S)) ||
            (auth_since != 0 && (at == NULL || json_integer_value(at) + CLOCK_SKEW_S < auth_since))) {
            *reason = "id_token_invalid:auth_time";
            return GW_EDENIED;
        }
    }
    if (sub == NULL) {
        *reason = "claim_invalid:sub";
        return GW_EDENIED;
    }
    if (p->hd != NULL) {
        const char *hd = json_string_value(json_object_get(c, "hd"));
        if (hd == NULL || !json_str_in(p->hd, hd)) {
            *reason = "id_token_invalid:hd";
            return GW_EDENIED;
        }
    }
    return GW_OK;
}

static gw_status_t verify_id_token(prov_t *p, const char *token, const char *nonce, int64_t auth_since, int mobile,
                                   json_t **claims, const char **reason)
{
    gw_status_t st;
    int unknown_kid = 0;
    char *jwks_uri = NULL;

    for (int attempt = 0; attempt < 2; ++attempt) {
        pthread_rwlock_rdlock(&p->lock);
        if (!p->ready || p->keys == NULL) {
            pthread_rwlock_unlock(&p->lock);
            *reason = "provider_unavailable";
            return GW_EUNAVAIL;
        }
        st = prov_keyset_verify(p->keys, token, (const char *const *)p->algs, claims, reason, &unknown_kid);
        /* one throttled refetch when a token names a key we do not have (rotation) */
        if (st != GW_OK && unknown_kid && attempt == 0 &&
            mono_ms() - p->last_jwks_fetch_ms >= (uint64_t)p->jwks_min_refresh_s * 1000)
            jwks_uri = strdup(p->jwks_uri);
        pthread_rwlock_unlock(&p->lock);
        if (jwks_uri == NULL)
            break;
        fetch_jwks(p, jwks_uri);
        free_str(&jwks_uri);
    }
    if (st != GW_OK)
        return st;
    if ((st = check_claims(p, *claims, nonce, auth_since, mobile, reason)) != GW_OK) {
        json_decref(*claims);
        *claims = NULL;
    }
    return st;
}

static void identity_from_claims(json_t *c, prov_identity_t *out)
{
    json_t *ev = json_object_get(c, "email_verified");
    out->subject = dup_json_str(c, "sub");
    out->email = dup_json_str(c, "email");
    /* Google has sent email_verified as the string "true" in some tokens */
    out->email_verified =
        out->email != NULL && (json_is_true(ev) || (json_is_string(ev) && strcmp(json_string_value(ev), "true") == 0));
    out->name = dup_json_str(c, "name");
    out->picture = dup_json_str(c, "picture");
    out->hd = dup_json_str(c, "hd");
    /* check_claims() let through only a positive integer auth_time, at most the clock skew ahead */
    out->auth_time = (int64_t)json_integer_value(json_object_get(c, "auth_time"));
}

static gw_status_t oidc_finish(prov_t *p, const char *code, const char *verifier, const char *nonce, int64_t auth_since,
                               prov_identity_t *out, const char **reason)
{
    prov_http_opts_t o = http_opts(p);
    prov_http_response_t r;
    json_t *doc = NULL, *claims = NULL;
    char *form = NULL, *token_ep = NULL;
    const char *id_token;
    gw_status_t st;

    pthread_rwlock_rdlock(&p->lock);
    token_ep = p->token_ep != NULL ? strdup(p->token_ep) : NULL;
    pthread_rwlock_unlock(&p->lock);
    if (token_ep == NULL) {
        *reason = "provider_unavailable";
        return GW_EUNAVAIL;
    }
    {
        const char *pairs[] = {"grant_type",
                               "authorization_code",
                               "code",
                               code,
                               "redirect_uri",
                               p->callback_url,
                               "code_verifier",
                               verifier,
                               "client_id",
                               p->token_auth_post ? p->client_id : NULL,
                               "client_secret",
                               p->token_auth_post ? p->client_secret : NULL,
                               NULL};
        form = prov_form_encode(pairs);
    }
    if (!p->token_auth_post) {
        o.basic_user = p->client_id;
        o.basic_password = p->client_secret;
    }
    st = form != NULL ? prov_http(&o, token_ep, form, &r) : GW_ENOMEM;
    if (form != NULL)
        OPENSSL_cleanse(form, strlen(form));
    free(form);
    free(token_ep);
    if (st == GW_ETIMEOUT) {
        *reason = "idp_timeout";
        return st;
    }
    if (st != GW_OK) {
        *reason = "token_exchange_failed";
        return GW_EUPSTREAM;
    }
    doc = r.status == 200 ? prov_http_json(&r) : NULL;
    prov_http_response_clear(&r);
    if (doc == NULL || (id_token = json_string_value(json_object_get(doc, "id_token"))) == NULL) {
        json_decref(doc);
        *reason = "token_exchange_failed";
        return GW_EUPSTREAM;
    }
    st = verify_id_token(p, id_token, nonce, auth_since, 0, &claims, reason);
    json_decref(doc);
    if (st != GW_OK)
        return st;
    identity_from_claims(claims, out);
    json_decref(claims);
    return GW_OK;
}

/* ------------------------------------------------------------- Facebook */

static void appsecret_proof(const prov_t *p, const char *token, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    unsigned int len = sizeof(mac);

    HMAC(EVP_sha256(), p->client_secret, (int)strlen(p->client_secret), (const unsigned char *)token, strlen(token),
         mac, &len);
    for (int i = 0; i < 32; ++i) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
}

static gw_status_t graph_get(prov_t *p, const char *path, const char *const *pairs, json_t **doc, const char **reason)
{
    prov_http_opts_t o = http_opts(p);
    prov_http_response_t r;
    size_t n = strlen(p->graph_url) + strlen(path) + 1;
    char *base = malloc(n), *url;
    gw_status_t st;

    if (base == NULL)
        return GW_ENOMEM;
    snprintf(base, n, "%s%s", p->graph_url, path);
    url = prov_url_with_query(base, pairs);
    free(base);
    if (url == NULL)
        return GW_ENOMEM;
    st = prov_http(&o, url, NULL, &r);
    OPENSSL_cleanse(url, strlen(url));
    free(url);
    if (st == GW_ETIMEOUT) {
        *reason = "idp_timeout";
        return st;
    }
    if (st != GW_OK) {
        *reason = "token_exchange_failed";
        return GW_EUPSTREAM;
    }
    *doc = r.status == 200 ? prov_http_json(&r) : NULL;
    prov_http_response_clear(&r);
    if (*doc == NULL) {
        *reason = "token_exchange_failed";
        return GW_EUPSTREAM;
    }
    return GW_OK;
}

static gw_status_t facebook_me(prov_t *p, const char *token, prov_identity_t *out, const char **reason)
{
    char proof[65];
    json_t *me = NULL;
    const char *id, *email;
    gw_status_t st;

    appsecret_proof(p, token, proof);
    {
        const char *q[] = {"fields", "id,name,email,picture", "access_token", token, "appsecret_proof", proof, NULL};
        if ((st = graph_get(p, "/me", q, &me, reason)) != GW_OK)
            return st;
    }
    id = json_string_value(json_object_get(me, "id"));
    if (id == NULL || id[0] == '\0' || strlen(id) > 64) {
        json_decref(me);
        *reason = "userinfo_invalid";
        return GW_EDENIED;
    }
    out->subject = strdup(id);
    /* a missing email is normal on Facebook; it is verified only where the config trusts it */
    email = json_string_value(json_object_get(me, "email"));
    out->email = email != NULL ? strdup(email) : NULL;
    out->email_verified = email != NULL && p->trust_email;
    out->name = dup_json_str(me, "name");
    {
        const char *pic =
            json_string_value(json_object_get(json_object_get(json_object_get(me, "picture"), "data"), "url"));
        out->picture = pic != NULL ? strdup(pic) : NULL;
    }
    json_decref(me);
    return GW_OK;
}

static gw_status_t facebook_finish(prov_t *p, const char *code, int64_t auth_since, prov_identity_t *out,
                                   const char **reason)
{
    json_t *doc = NULL;
    const char *token;
    gw_status_t st;
    const char *q[] = {
        "client_id", p->client_id, "redirect_uri", p->callback_url, "client_secret", p->client_secret, "code",
        code,        NULL};

    if ((st = graph_get(p, "/oauth/access_token", q, &doc, reason)) != GW_OK)
        return st;
    if ((token = json_string_value(json_object_get(doc, "access_token"))) == NULL) {
        json_decref(doc);
        *reason = "token_exchange_failed";
        return GW_EUPSTREAM;
    }
    st = facebook_me(p, token, out, reason);
    /*
     * Facebook says nothing of when the person authenticated. After a login the gateway started
     * with auth_type=reauthenticate, Facebook asked for the password unconditionally, no earlier
     * than when the browser was sent there: that time is all a session can prove. Any other
     * Facebook login proves no time at all.
     */
    if (st == GW_OK)
        out->auth_time = auth_since;
    json_decref(doc);
    return st;
}

static gw_status_t facebook_mobile(prov_t *p, const char *token, prov_identity_t *out, const char **reason)
{
    json_t *doc = NULL, *data;
    char *app_token;
    const char *user_id;
    size_t n = strlen(p->client_id) + strlen(p->client_secret) + 2;
    gw_status_t st;

    if ((app_token = malloc(n)) == NULL)
        return GW_ENOMEM;
    snprintf(app_token, n, "%s|%s", p->client_id, p->client_secret);
    {
        const char *q[] = {"input_token", token, "access_token", app_token, NULL};
        st = graph_get(p, "/debug_token", q, &doc, reason);
    }
    OPENSSL_cleanse(app_token, n);
    free(app_token);
    if (st != GW_OK) {
        if (*reason != NULL && strcmp(*reason, "token_exchange_failed") == 0)
            *reason = "access_token_invalid";
        return st;
    }
    data = json_object_get(doc, "data");
    {
        json_t *exp = json_object_get(data, "expires_at");
        json_int_t now = (json_int_t)time(NULL);
        const char *app = json_string_value(json_object_get(data, "app_id"));
        user_id = json_string_value(json_object_get(data, "user_id"));
        if (!json_is_true(json_object_get(data, "is_valid")) || app == NULL || strcmp(app, p->client_id) != 0 ||
            user_id == NULL ||
            (json_is_integer(exp) && json_integer_value(exp) != 0 && json_integer_value(exp) <= now)) {
            json_decref(doc);
            *reason = "access_token_invalid";
            return GW_EDENIED;
        }
    }
    st = facebook_me(p, token, out, reason);
    if (st == GW_OK && strcmp(out->subject, user_id) != 0) {
        prov_identity_clear(out);
        *reason = "access_token_invalid";
        st = GW_EDENIED;
    }
    json_decref(doc);
    return st;
}

/* ------------------------------------------------------------- entry points */

gw_status_t prov_finish(prov_t *p, const char *code, const char *code_verifier, const char *nonce, int64_t auth_since,
                        prov_identity_t *out, const char **reason)
{
    gw_status_t st;

    memset(out, 0, sizeof(*out));
    *reason = NULL;
    if (strcmp(p->type, "facebook") == 0)
        st = facebook_finish(p, code, auth_since, out, reason);
    else
        st = oidc_finish(p, code, code_verifier, nonce, auth_since, out, reason);
    if (st == GW_OK && (st = prov_identity_check(out, reason)) != GW_OK)
        prov_identity_clear(out);
    return st;
}

gw_status_t prov_verify_mobile(prov_t *p, const char *token, prov_identity_t *out, const char **reason)
{
    json_t *claims = NULL;
    gw_status_t st;

    memset(out, 0, sizeof(*out));
    *reason = NULL;
    if (strcmp(p->type, "facebook") == 0) {
        st = facebook_mobile(p, token, out, reason);
    } else if ((st = verify_id_token(p, token, NULL, 0, 1, &claims, reason)) == GW_OK) {
        identity_from_claims(claims, out);
        json_decref(claims);
    }
    if (st == GW_OK && (st = prov_identity_check(out, reason)) != GW_OK)
        prov_identity_clear(out);
    return st;
}

/* a Facebook id: 1-64 decimal digits */
static int facebook_id_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 64 && s[n] == '\0';
}

gw_status_t prov_facebook_signed_request(prov_t *p, const char *signed_request, int64_t now, char *user_id, size_t cap)
{
    const char *dot = strchr(signed_request, '.');
    uint8_t *sig = NULL, *payload = NULL;
    size_t sig_len = 0, payload_len = 0;
    unsigned char mac[32];
    unsigned int mac_len = sizeof(mac);
    cjose_err err;
    json_t *doc = NULL;
    const char *alg, *uid;
    json_t *issued;
    long sig_b64, payload_b64;
    gw_status_t st = GW_EDENIED;

    if (strcmp(p->type, "facebook") != 0 || dot == NULL || strlen(signed_request) > 8192)
        return GW_EDENIED;
    /* both parts base64url before cjose decodes them (its decoder asserts on some malformed input) */
    if ((sig_b64 = prov_b64url_len(signed_request, (size_t)(dot - signed_request), 1)) < 0 ||
        (payload_b64 = prov_b64url_len(dot + 1, strlen(dot + 1), 1)) < 0 ||
        !cjose_base64url_decode(signed_request, (size_t)sig_b64, &sig, &sig_len, &err) ||
        !cjose_base64url_decode(dot + 1, (size_t)payload_b64, &payload, &payload_len, &err))
        goto Exit;
    /* the signature covers the base64url payload as sent */
    HMAC(EVP_sha256(), p->client_secret, (int)strlen(p->client_secret), (const unsigned char *)dot + 1, strlen(dot + 1),
         mac, &mac_len);
    if (sig_len != sizeof(mac) || CRYPTO_memcmp(sig, mac, sizeof(mac)) != 0)
        goto Exit;
    doc = json_loadb((const char *)payload, payload_len, 0, NULL);
    alg = json_string_value(json_object_get(doc, "algorithm"));
    uid = json_string_value(json_object_get(doc, "user_id"));
    issued = json_object_get(doc, "issued_at");
    if (alg == NULL || strcasecmp(alg, "HMAC-SHA256") != 0 || uid == NULL || !facebook_id_ok(uid) || strlen(uid) >= cap)
        goto Exit;
    /* a signed request is replayable as long as it is accepted: only a recent one is */
    if (!json_is_integer(issued) || json_integer_value(issued) < now - PROV_SIGNED_REQUEST_MAX_AGE_S ||
        json_integer_value(issued) > now + CLOCK_SKEW_S)
        goto Exit;
    memcpy(user_id, uid, strlen(uid) + 1);
    st = GW_OK;
Exit:
    json_decref(doc);
    free(sig);
    free(payload);
    return st;
}
