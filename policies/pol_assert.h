/*
 * journeygate — the identity assertion: a short-lived JWT (compact JWS, ES256) the gateway signs
 * and sends upstream as X-Identity-Assertion, so a backend verifies who the customer is instead
 * of trusting the network. The public keys are published as a JWKS (GET /.auth/jwks.json).
 * Included by pol.h; usable on its own.
 */
#ifndef POL_ASSERT_H
#define POL_ASSERT_H

#include "gw.h"

#include <jansson.h>

/** Upper bound of an assertion's lifetime: exp - iat never exceeds it. */
#define POL_ASSERT_MAX_TTL_S 60

/** A signing key and the published key set (opaque). Immutable once created. */
typedef struct pol_signer pol_signer_t;

/**
 * Loads the signing key, or generates it when absent.
 *
 * key_file: PEM EC P-256 private key (PKCS#8 or SEC1, unencrypted). When the file does not exist
 *   a new key is generated and written with mode 0600 without ever replacing a file: it is written
 *   to a temporary file opened O_EXCL beside it and published with link(2), so two processes
 *   starting at once end up with the same key and nobody ever reads a half-written file.
 *   An existing file that is not such a key is an error, never overwritten.
 * previous: NULL-terminated list of PEM files (private or public keys, EC P-256) of retired keys
 *   still published in the JWKS for a grace period; NULL or empty for none. A file with the
 *   current key is skipped.
 * out: on GW_OK the signer (free with pol_signer_destroy()); untouched otherwise.
 * Returns GW_OK, GW_EINVAL (not an EC P-256 key, unreadable PEM, encrypted key), GW_ETOOBIG (file
 * over 64 KiB), GW_EIO (file system) or GW_ENOMEM; the reason is logged (module "assert").
 * Reads and may write files: call at start-up or reload, not on an event loop.
 */
gw_status_t pol_signer_create(const char *key_file, const char *const *previous, pol_signer_t **out);

/** Frees a signer and wipes its private key. NULL is a no-op. No signing may be running on it. */
void pol_signer_destroy(pol_signer_t *s);

/**
 * Signs claims as a compact JWS (ES256), protected header {"alg":"ES256","kid":KID,"typ":"JWT"}
 * where KID is the RFC 7638 JWK thumbprint of the public key.
 *
 * claims: borrowed, not modified. The caller sets customer_id, email, provider, channel, route,
 *   aud (the upstream's name) and, if it wants one, iss; the signer adds iat (now), exp (iat +
 *   ttl_s) and jti (128 random bits, base64url), replacing any the caller set.
 * ttl_s: 1..POL_ASSERT_MAX_TTL_S; anything else is refused (NULL).
 * Returns a malloc'ed NUL-terminated token the caller frees with free(), or NULL (bad arguments,
 * out of memory, crypto failure). Thread-safe: no lock, the key is only read.
 * Cost: about 0.05 ms per call (see pol_assert.c for the measurement).
 */
char *pol_signer_sign(pol_signer_t *s, json_t *claims, unsigned ttl_s);

/**
 * The JWKS: {"keys":[current, previous...]}, each {kty, crv, x, y, kid, alg: "ES256", use: "sig"}
 * (public parts only). Returns a malloc'ed string the caller frees with free(), or NULL when out of
 * memory. Thread-safe; the document is built once at creation.
 */
char *pol_signer_jwks(const pol_signer_t *s);

/** The current key's kid (the signer's own copy, valid while it lives), or NULL for a NULL signer. */
const char *pol_signer_kid(const pol_signer_t *s);

#endif
