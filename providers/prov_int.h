/* journeygate providers — private declarations shared by the provider files. */
#ifndef PROV_INT_H
#define PROV_INT_H

#include "prov.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define PROV_MAX_BODY (1024 * 1024) /* any provider answer larger than this is refused */

typedef struct prov_http_response {
    long status;
    char *body; /* NUL-terminated, malloc'ed */
    size_t body_len;
    char *content_type;
} prov_http_response_t;

typedef struct prov_http_opts {
    const char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    const char *basic_user, *basic_password; /* client_secret_basic, or NULL */
} prov_http_opts_t;

/**
 * One HTTP call with libcurl: GET when form is NULL, else POST of form (already encoded).
 * Returns GW_ETIMEOUT, GW_EUPSTREAM (connection or TLS failure, or body over PROV_MAX_BODY), GW_EUNAVAIL (after
 * prov_cancel_calls()), GW_OK.
 */
gw_status_t prov_http(const prov_http_opts_t *o, const char *url, const char *form, prov_http_response_t *resp);
void prov_http_response_clear(prov_http_response_t *r);

/** Parses a JSON object answer with status 200 and a JSON content type. */
json_t *prov_http_json(const prov_http_response_t *r);

/** Builds base?k1=v1&k2=v2 (values URL-encoded by libcurl); NULL-terminated pairs. Malloc'ed. */
char *prov_url_with_query(const char *base, const char *const *pairs);
/** Encodes pairs as application/x-www-form-urlencoded. Malloc'ed. */
char *prov_form_encode(const char *const *pairs);

/* a set of verification keys from one JWKS document */
typedef struct prov_keyset prov_keyset_t;
prov_keyset_t *prov_keyset_create(json_t *jwks, char **err);
void prov_keyset_destroy(prov_keyset_t *ks);
/**
 * Verifies the signature of a compact JWS (three base64url parts without padding, RFC 7515 7.1);
 * `alg` must be in the allow-list, and a protected header with "crit" is refused
 * ("id_token_invalid:crit": the gateway understands no extension, RFC 7515 4.1.11). Claims out (new ref).
 */
gw_status_t prov_keyset_verify(prov_keyset_t *ks, const char *token, const char *const *allowed_algs, json_t **claims,
                               const char **reason, int *unknown_kid);

/**
 * The length of s (len bytes) without its padding when it is base64url (RFC 4648 5): only the
 * alphabet A-Z a-z 0-9 - _, a length that is not 1 modulo 4, and (allow_padding) at most two
 * trailing '=' that complete a group; -1 otherwise. Everything untrusted is checked with it before
 * cjose decodes it: cjose's decoder aborts the process (an assert) on input such as "a=b".
 */
long prov_b64url_len(const char *s, size_t len, int allow_padding);

/** Per-thread liboauth2 log (never shared between threads). */
struct oauth2_log_t *prov_log(void);

#endif
