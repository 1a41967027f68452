/*
 * journeygate — identity providers behind one interface.
 *
 * Google and generic OpenID Connect (authorization code + PKCE, ID tokens verified
 * with liboauth2 against the provider's JWKS) and Facebook Login (Graph API with
 * appsecret_proof). Everything that talks to a provider BLOCKS: call it from a
 * worker thread, never from an event loop. prov_authorize_url() does no I/O.
 * All functions are thread-safe once created.
 */
#ifndef PROV_H
#define PROV_H

#include "gw.h"

#include <jansson.h>

typedef struct prov prov_t;

/** What a provider asserted about the person; every string malloc'ed or NULL. */
typedef struct prov_identity {
    char *subject;
    char *email;
    int email_verified;
    char *name;
    char *picture;
    char *hd;
    /* when the person last authenticated at the provider (seconds since the epoch), as the provider
       proved it (the ID token's auth_time, or a Facebook reauthentication the gateway asked for);
       0 when nothing proves it. It may be up to the allowed clock skew ahead of this machine's clock:
       the session that records it takes no time later than its own now (auth.c new_session) */
    int64_t auth_time;
} prov_identity_t;

void prov_identity_clear(prov_identity_t *id);

/**
 * Validates, in place, every claim of id before anything uses it (prov_finish() and
 * prov_verify_mobile() call it for every provider). Refused (GW_EDENIED, *reason
 * "claim_invalid:<claim>"): a subject that is not 1-255 visible ASCII characters (OpenID Connect
 * Core 2; Facebook's id alike), an email that is not a plain addr-spec (ASCII dot-atom local part
 * of at most 64, a domain of letters, digits and hyphens with two labels or more, 254 in all),
 * a name that is not valid UTF-8 of at most 512 bytes free of control characters (C0, DEL, C1,
 * U+2028/9), an hd that is not such a domain. Dropped, the sign-in going on: an empty name, a
 * picture that is not an http(s) URL of visible ASCII (at most 2048). email_verified is cleared
 * without an email.
 */
gw_status_t prov_identity_check(prov_identity_t *id, const char **reason);

/** 1 when s is a valid subject: 1-255 visible ASCII characters (0x21-0x7E). NULL: 0. */
int prov_subject_ok(const char *s);
/** 1 when s is an email address prov_identity_check() accepts. */
int prov_email_ok(const char *s);
/** 1 when s is a DNS domain name of two labels or more (letters, digits, inner hyphens). */
int prov_domain_ok(const char *s);
/** 1 when s is non-empty valid UTF-8 of at most max_bytes without control characters. */
int prov_display_ok(const char *s, size_t max_bytes);

/** Frees what the calling thread allocated for provider calls (its liboauth2 log); call before a thread exits. */
void prov_thread_cleanup(void);

/** Once, before any thread: initialises liboauth2 and libcurl. */
void prov_global_init(void);

/**
 * Shutdown: every provider call in flight fails within about a second, and every later one at once
 * (GW_EUNAVAIL), so a stop never waits for a slow provider's timeout. There is no way back.
 */
void prov_cancel_calls(void);

/**
 * Creates a provider from its validated configuration object (`providers.NAME`).
 * `callback_url` is this gateway's absolute callback for it. Makes no network call.
 * On failure returns GW_EINVAL and *err (malloc'ed) says why.
 */
gw_status_t prov_create(const char *name, json_t *conf, const char *callback_url, prov_t **out, char **err);
void prov_destroy(prov_t *p);

const char *prov_name(const prov_t *p);
/** "google", "oidc" or "facebook". */
const char *prov_type(const prov_t *p);
/** A human name for sign-in pages ("Google", "Facebook" or the configured display_name). */
const char *prov_display_name(const prov_t *p);
/** The issuer the RFC 9207 `iss` callback parameter must equal, or NULL (Facebook). */
const char *prov_issuer(const prov_t *p);
/** Whether discovery and keys are loaded (a login can start). */
int prov_ready(prov_t *p);

/**
 * The URL to send the browser to (malloc'ed). `code_challenge` is the S256 PKCE challenge
 * (ignored by Facebook). reauthenticate asks the provider to make the person sign in again
 * (step-up: OIDC prompt=login and max_age=0, Facebook auth_type=reauthenticate).
 * GW_EUNAVAIL until the provider is ready.
 */
gw_status_t prov_authorize_url(prov_t *p, const char *state, const char *nonce, const char *code_challenge,
                               const char *login_hint, int reauthenticate, char **url);

/**
 * BLOCKING. Finishes a browser login: exchanges `code` and verifies the identity
 * (ID token with every check, or Facebook's /me with appsecret_proof).
 * auth_since (seconds since the epoch; 0: no requirement) is when a step-up sent the browser
 * with max_age=0: the ID token must then carry an `auth_time` at or after it (less the clock
 * skew), or the provider reused an older sign-in ("id_token_invalid:auth_time"). Facebook says
 * nothing of when the person authenticated: there auth_type=reauthenticate is all there is.
 * On refusal returns GW_EDENIED/GW_ETIMEOUT/GW_EUPSTREAM and *reason is a short
 * stable code (e.g. "id_token_invalid:aud", "token_exchange_failed", "idp_timeout").
 */
gw_status_t prov_finish(prov_t *p, const char *code, const char *code_verifier, const char *nonce, int64_t auth_since,
                        prov_identity_t *out, const char **reason);

/**
 * BLOCKING. Mobile sign-in: verifies a Google ID token from native sign-in (aud must be the
 * web or a mobile client id; no nonce) or a Facebook user access token (debug_token with the
 * app token, then /me). Same results as prov_finish().
 */
gw_status_t prov_verify_mobile(prov_t *p, const char *token, prov_identity_t *out, const char **reason);

/** How old a Facebook signed_request may be, in seconds (its issued_at against now). */
#define PROV_SIGNED_REQUEST_MAX_AGE_S 600

/**
 * Facebook only: verifies a `signed_request` (HMAC-SHA256 with the app secret, algorithm
 * HMAC-SHA256) and copies its user_id into user_id (cap bytes). GW_EDENIED when forged,
 * malformed, stale or from the future: issued_at must be an integer no more than
 * PROV_SIGNED_REQUEST_MAX_AGE_S before `now` (seconds since the epoch) nor more than the clock
 * skew (60 s) after it; user_id a string of 1-64 decimal digits (what Facebook's ids are) that
 * fits cap. No I/O.
 */
gw_status_t prov_facebook_signed_request(prov_t *p, const char *signed_request, int64_t now, char *user_id, size_t cap);

/** BLOCKING. Loads or refreshes discovery and keys; called by the background refresher. */
gw_status_t prov_refresh(prov_t *p);

#endif
