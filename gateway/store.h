/*
 * journeygate — the customer store: the only module that calls LMDB.
 *
 * Engine-neutral interface: records go in and out as jansson objects, keys as
 * byte strings; no LMDB type appears here. One environment, named databases:
 *   meta        "format" -> version
 *   customers   customer id -> profile JSON
 *   identities  provider "\0" subject -> customer id
 *   emails      lower-case verified email -> customer id
 *   sessions    SHA-256(session token) -> session JSON
 * Writes are synced before the call returns (durable before the answer that
 * depends on them). Read calls use short read-only transactions and are safe
 * from any thread.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include "gw.h"

#include <jansson.h>
#include <stdint.h>

#define STORE_FORMAT_VERSION 1
#define STORE_ID_LEN 26 /* customer ids: "c_" + 24 base32 characters */

typedef struct store store_t;

/** An identity as a provider asserted it at sign-in. Strings may be NULL except provider and subject. */
typedef struct store_identity {
    const char *provider;
    const char *subject;
    const char *email;
    int email_verified;
    const char *name;
    const char *picture;
} store_identity_t;

/**
 * Opens (creating when missing, with mode 0700) the store directory `path`.
 * A store of a newer format is refused with GW_EINVAL and a log line.
 */
gw_status_t store_open(const char *path, uint64_t map_size_mb, store_t **out);

/** Closes the store; NULL is a no-op. No call may be running. */
void store_close(store_t *st);

/**
 * Signs in an identity: finds the customer that holds (provider, subject) or creates one,
 * refreshes the identity's profile fields and last_login. One write transaction, so two
 * simultaneous first logins of the same identity create exactly one customer.
 * `customer_id` receives the id (STORE_ID_LEN + 1 bytes); *created says whether it is new.
 */
gw_status_t store_login(store_t *st, const store_identity_t *id, uint64_t now_ms, char *customer_id, int *created);

/** The customer's profile (new reference, caller json_decref()s), or GW_ENOTFOUND. */
gw_status_t store_customer_get(store_t *st, const char *customer_id, json_t **out);

/** Stores a session under the SHA-256 of its token. */
gw_status_t store_session_put(store_t *st, const uint8_t token_hash[32], json_t *session);

/** The session stored under token_hash (new reference), or GW_ENOTFOUND. */
gw_status_t store_session_get(store_t *st, const uint8_t token_hash[32], json_t **out);

/** Deletes a session; GW_ENOTFOUND when there was none. */
gw_status_t store_session_delete(store_t *st, const uint8_t token_hash[32]);

#endif
