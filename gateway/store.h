/*
 * journeygate — the customer store: the only module that calls LMDB.
 *
 * Engine-neutral interface: records go in and out as jansson objects, keys as
 * byte strings; no LMDB type appears here. One environment, named databases:
 *   meta               "format" -> version; "session_gen" -> sessions-removed counter; "tp_next" -> next block;
 *                      "tp_profiled" -> the last tp_log block whose touchpoints are in the profiles
 *   customers          customer id -> profile JSON
 *   profile_seen       customer id -> what its touchpoints told the profile (channels, devices, stages, first
 *                      and last seen; compact binary), merged into the profile JSON by every read of it
 *   identities         provider "\0" subject -> customer id (unique)
 *   emails             lower-case verified email -> customer id (linking: only proved addresses)
 *   identity_emails    lower-case email "\0" customer id -> "" for EVERY email any identity carries,
 *                      verified or not (finding only: store_customers_find(); never used to link)
 *   sessions           SHA-256(session token) -> session JSON
 *   customer_sessions  customer id -> SHA-256(token) (many per customer)
 *   deletions          confirmation code -> status JSON (no personal data)
 *   audit              sequence (8 bytes, big-endian) -> audit record JSON, hash-chained
 *   tp_log             block number (8 bytes BE) -> a block of touchpoint records, as one commit wrote them
 *   touchpoints        customer id + occurred_at_ms + sequence (8 bytes BE each) of a chunk's first
 *                      record -> a chunk of the customer's touchpoint records in time order, so one
 *                      journey is one range scan (see "Touchpoints" below)
 *   idempotency        source "\0" idempotency key -> touchpoint id (ingestion retries are safe)
 * Writes are synced before the call returns (durable before the answer that
 * depends on them); a write that does not fit grows the map and retries, and a
 * write that still cannot complete leaves nothing behind (GW_EUNAVAIL). When
 * another process (a CLI) has grown the map past this one's (MDB_MAP_RESIZED),
 * the store adopts the new size once no transaction of this process runs, and
 * goes on.
 * Every call is safe from any thread; reads are short read-only transactions.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include "gw.h"

#include <jansson.h>
#include <stdint.h>

#define STORE_FORMAT_VERSION 4 /* 4: identity_emails (a format-3 store is migrated at open) */
#define STORE_ID_LEN 26        /* customer ids: "c_" + 24 base32 characters */

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

typedef struct store_login_opts {
    int auto_link_verified_email;      /* linking.auto_link_verified_email */
    const char *const *blocked_emails; /* never used to link (NULL-terminated), or NULL */
    const char *link_to;               /* explicit link: attach to this customer, or NULL */
    const char *channel;               /* recorded in channels_seen, or NULL */
} store_login_opts_t;

typedef enum store_login_result {
    STORE_LOGIN_RETURNING = 0, /* the identity was already this customer's */
    STORE_LOGIN_CREATED,       /* a new customer */
    STORE_LOGIN_AUTO_LINKED,   /* attached to the customer holding the same verified email */
    STORE_LOGIN_LINKED,        /* attached by an explicit link */
} store_login_result_t;

/** Why an automatic link did not happen (for the audit trail), or NULL. */
typedef struct store_login_info {
    store_login_result_t result;
    const char *auto_link_skipped;            /* "unverified_email", "blocked_email", "same_provider", or NULL */
    char conflict_customer[STORE_ID_LEN + 1]; /* explicit link refused: the identity's owner */
} store_login_info_t;

/**
 * One audit event. The store adds seq, ts_ms, prev and hash, and replaces `subject` by a salted
 * hash (never stored in clear). Every field may be NULL except event and outcome.
 * actor: the person who did it when not the customer ("staff:google:alice@example.com",
 * "admin-token@127.0.0.1", "cli:root"); route: the route concerned (refusals); detail: a short
 * free text (what a staff member looked at, an export's filters), never a secret.
 */
typedef struct store_audit_event {
    const char *event, *outcome, *reason, *provider, *customer_id, *subject;
    const char *client, *user_agent, *flow_id, *request_id;
    const char *actor, *route, *detail;
} store_audit_event_t;

/**
 * Opens (creating when missing, mode 0700) the store directory `path`. A store of an older
 * format is migrated; a newer one is refused (GW_EINVAL, logged). Stale reader slots are cleared.
 */
gw_status_t store_open(const char *path, uint64_t map_size_mb, store_t **out);

/** Opens an existing store read-only (CLI): never creates or migrates anything. */
gw_status_t store_open_readonly(const char *path, store_t **out);

/**
 * Bulk loading only (imports, benchmarks): durable=0 stops syncing each commit (a crash may
 * lose the latest writes); durable=1 restores synced commits and syncs what was written.
 */
gw_status_t store_set_durable(store_t *st, int durable);

/** Closes the store; NULL is a no-op. No call may be running. */
void store_close(store_t *st);

/**
 * Signs in an identity in one write transaction (an explicit or automatic link also refreshes the
 * `linked_providers` of the customer's existing sessions): the customer that holds (provider, subject),
 * or an explicit link target, or (auto-link) the customer holding the same verified email, or
 * a new customer. Refreshes the identity's profile, last_login and the customer's profile
 * (see README: the latest sign-in's name and picture; the latest VERIFIED email).
 * Returns GW_EDENIED when an explicit link names an identity that belongs to another customer
 * (nothing changes; info->conflict_customer says whose). `customer_id` receives the id.
 */
gw_status_t store_login(store_t *st, const store_identity_t *id, const store_login_opts_t *opts, uint64_t now_ms,
                        char *customer_id, store_login_info_t *info, const store_audit_event_t *audit);

/**
 * Removes the customer's identity at `provider`; GW_EDENIED when it is the last one, GW_ENOTFOUND when none.
 * In the same transaction, every session made through that identity is deleted and the customer's other
 * sessions get the new `linked_providers`; the session generation moves (store_session_generation()),
 * so caches of sessions in every thread and process read again.
 */
gw_status_t store_unlink(store_t *st, const char *customer_id, const char *provider, uint64_t now_ms,
                         const store_audit_event_t *audit);

/** The customer's profile (new reference, caller json_decref()s), or GW_ENOTFOUND. */
gw_status_t store_customer_get(store_t *st, const char *customer_id, json_t **out);

/** The customer holding a verified email (case-insensitive) into customer_id, or GW_ENOTFOUND. */
gw_status_t store_customer_by_email(store_t *st, const char *email, char *customer_id);

/** The customer holding (provider, subject) into customer_id, or GW_ENOTFOUND. */
gw_status_t store_customer_by_identity(store_t *st, const char *provider, const char *subject, char *customer_id);

/** Erases a customer: identities, emails, profile and sessions. *sessions_removed counts sessions. */
gw_status_t store_customer_delete(store_t *st, const char *customer_id, unsigned *sessions_removed,
                                  const store_audit_event_t *audit);

/**
 * Erases one identity (provider, subject); when it was the customer's only identity the whole
 * customer is erased (*customer_erased = 1). customer_id receives the owner. GW_ENOTFOUND when unknown.
 * Sessions follow as with store_unlink(): those made through the identity end, the others' linked_providers
 * is refreshed, in the same transaction.
 */
gw_status_t store_identity_erase(store_t *st, const char *provider, const char *subject, char *customer_id,
                                 int *customer_erased, const store_audit_event_t *audit);

#define STORE_FIND_QUERY_MAX 1024 /* longest query store_customers_find() takes */

/**
 * Finds customers (never links anything): `query` is read as each of these that it can be, and
 * the customers found by any are returned once each, in the order found:
 *   - a customer id ("c_" + 24 base32 characters) of an existing customer;
 *   - "provider:subject" (split at the first ':'): the identity's owner;
 *   - an email (holds '@'), case-insensitive: every customer one of whose identities carries it,
 *     verified or not (the identity_emails index; a Facebook-only customer is found by the address
 *     Facebook gave, although it never links on it).
 * ids receives up to max NUL-terminated customer ids; *n how many. Nothing found is GW_OK with
 * *n = 0. Errors: GW_EINVAL (query NULL, empty or longer than STORE_FIND_QUERY_MAX), the store's
 * (GW_EUNAVAIL, GW_EIO). One short read transaction: safe from any thread, never on an event loop.
 */
gw_status_t store_customers_find(store_t *st, const char *query, char (*ids)[STORE_ID_LEN + 1], size_t max, size_t *n);

/** Calls cb for every customer in id order inside one read transaction (streaming, constant memory). */
gw_status_t store_customers_foreach(store_t *st, int (*cb)(json_t *customer, void *ctx), void *ctx);

/**
 * store_customers_foreach() from the first customer whose id sorts after after_id (NULL: from the
 * first): a long reader goes on in a new, short read transaction where the previous one stopped.
 */
gw_status_t store_customers_foreach_after(store_t *st, const char *after_id, int (*cb)(json_t *customer, void *ctx),
                                          void *ctx);

/** Stores a session under the SHA-256 of its token (and indexes it by its customer_id). */
gw_status_t store_session_put(store_t *st, const uint8_t token_hash[32], json_t *session);

/** The session stored under token_hash (new reference), or GW_ENOTFOUND. */
gw_status_t store_session_get(store_t *st, const uint8_t token_hash[32], json_t **out);

/**
 * Deletes a session (with its audit record, when audit is not NULL: its customer_id and provider are
 * the session's); GW_ENOTFOUND when there was none. The session generation moves
 * (store_session_generation()), so every thread's cache of sessions reads again.
 */
gw_status_t store_session_delete(store_t *st, const uint8_t token_hash[32], const store_audit_event_t *audit);

/**
 * Calls cb for every session of the customer (through the customer_sessions index), in token-hash
 * order, inside one read transaction, until cb returns non-zero. token_hash and session are borrowed
 * for the call (json_incref() the session to keep it). Index entries without a readable session are
 * skipped. GW_OK also when the customer has no session or does not exist; the store's errors otherwise.
 * Expired sessions not purged yet are included: the caller decides what it shows.
 */
gw_status_t store_customer_sessions(store_t *st, const char *customer_id,
                                    int (*cb)(const uint8_t token_hash[32], json_t *session, void *ctx), void *ctx);

/**
 * Deletes every session that can no longer be used at now_ms: past its absolute expiry (expires_ms),
 * past its idle timeout (last_seen_ms + idle_timeout_ms, when idle_timeout_ms > 0), or unreadable;
 * with its customer_sessions entry, so the personal data it froze (subject, email) goes with it.
 * Candidates are found in short read transactions and deleted a few hundred at a time, each checked
 * again in its write transaction (a session used meanwhile stays); the session generation moves
 * when any goes. *purged (may be NULL) counts the deleted sessions, also when an error stops the
 * purge (what was deleted stays deleted). Errors: those of the store (GW_EUNAVAIL, GW_EIO), GW_ENOMEM.
 * Blocks on the store: call it from a background thread, never an event loop.
 */
gw_status_t store_sessions_purge(store_t *st, uint64_t now_ms, uint64_t *purged);

/**
 * store_unlink() that also says how many sessions it ended (*sessions_ended, may be NULL; written on
 * GW_OK only): those made through the identity removed. Same errors as store_unlink().
 */
gw_status_t store_unlink_counted(store_t *st, const char *customer_id, const char *provider, uint64_t now_ms,
                                 const store_audit_event_t *audit, unsigned *sessions_ended);

/** Records / reads a data-deletion status under its confirmation code. */
gw_status_t store_deletion_put(store_t *st, const char *code, json_t *status);
gw_status_t store_deletion_get(store_t *st, const char *code, json_t **out);

/**
 * A number that changes whenever anything is committed to the store, by this process or
 * another (LMDB's last transaction id): lets callers cache reads and notice any write.
 */
uint64_t store_generation(store_t *st);

/**
 * A number that changes whenever a session or a customer is removed (logout, erasure, unlink) or a
 * session's identity data is rewritten (a link or an unlink changes linked_providers), by this
 * process or another: a cache of sessions stays valid while it does not change. Cheap: a read
 * transaction only when something was committed since the last call.
 */
uint64_t store_session_generation(store_t *st);

/**
 * The audit trail. store_audit_key() sets the HMAC key that signs the chain's head and salts
 * subject hashes (call once after opening; 32 bytes). The calls above that take an event write
 * it in the same transaction as the change: no change without its record, and no record of a
 * change that did not happen.
 */
void store_audit_key(store_t *st, const uint8_t key[32]);

/** Appends one audit record in its own synced transaction (refusals and other events without a change). */
gw_status_t store_audit_write(store_t *st, const store_audit_event_t *ev, uint64_t now_ms);

/**
 * Appends n records in one synced transaction (all or none): evs[i] at times_ms[i]; when counts is
 * not NULL and counts[i] > 0, the record gets "count": counts[i] (how many events it stands for).
 */
gw_status_t store_audit_write_batch(store_t *st, const store_audit_event_t *const *evs, const uint64_t *counts,
                                    const uint64_t *times_ms, size_t n);

/**
 * Walks the chain: every sequence number present and in order, every record's hash and link to
 * the previous one, and the signed head. Returns GW_OK with *count records, or GW_EINVAL with
 * *first_bad the first sequence number that does not hold (0 when the head itself fails).
 */
gw_status_t store_audit_verify(store_t *st, uint64_t *count, uint64_t *first_bad, const char **why);

/** Calls cb for each record with seq > after (in order), stopping when cb returns non-zero. */
gw_status_t store_audit_foreach(store_t *st, uint64_t after, int (*cb)(json_t *record, void *ctx), void *ctx);

/** The sequence number of the last record (0 when none). */
gw_status_t store_audit_last(store_t *st, uint64_t *seq);

/**
 * store_audit_verify() resumed where an earlier verification ended: from_seq (>= 1) is the last
 * record it verified and from_hash (64 hex characters) that record's hash. Checks that the record
 * still hashes to from_hash, then every record after it, their links and the signed head, as
 * store_audit_verify() does; from_seq 0 verifies the whole chain. Records before from_seq are NOT
 * read again: a change to them is found only by a walk from the start. On GW_OK *count is the number
 * of records in the chain and last_hash receives the hash of the last one ("" when none), for the
 * next resumption. Errors as store_audit_verify() (GW_EINVAL with *first_bad and *why: a static string).
 */
gw_status_t store_audit_verify_from(store_t *st, uint64_t from_seq, const char *from_hash, uint64_t *count,
                                    uint64_t *first_bad, const char **why, char last_hash[65]);

/**
 * The chain's head as stored: the last record's sequence number, its hash and the head's HMAC
 * signature (hex, NUL-terminated; "" when the stored head is unreadable: store_audit_verify() says
 * why). GW_ENOTFOUND when the trail is empty; the store's errors otherwise. Does not verify anything.
 */
gw_status_t store_audit_head(store_t *st, uint64_t *seq, char hash[65], char mac[65]);

/**
 * Calls cb for each record with seq < before (before 0: every record), newest first, inside one
 * read transaction, until cb returns non-zero. cb gets the record's sequence number and the record
 * (borrowed for the call; NULL when the stored record is unreadable, so a caller that bounds its
 * scan counts it too). Keep the walk bounded (cb stops it): a read transaction holds the store's
 * map at its size while it runs. Errors: the store's (GW_EUNAVAIL, GW_EIO).
 */
gw_status_t store_audit_foreach_reverse(store_t *st, uint64_t before,
                                        int (*cb)(uint64_t seq, json_t *record, void *ctx), void *ctx);

/*
 * Touchpoints. A touchpoint is a fixed set of short strings and numbers (store_tp_t), kept in a
 * compact binary record, never in JSON: the recorder writes hundreds of thousands a second and a
 * journey of ten thousand is read in a millisecond or two.
 *
 * Writes append: each commit adds ONE block (all its touchpoints, with a small index by customer)
 * at the end of the time-ordered log `tp_log`, so a commit writes a few sequential pages however
 * many customers it touches. store_touchpoints_merge() later moves the log's blocks into
 * per-customer chunks in `touchpoints` (customer id + the first record's time and sequence -> up
 * to ~4 KB of the customer's records in time order), many touchpoints per customer at once; the recorder's writer calls
 * it when enough has gathered or when idle. Reads see both: the customer's chunks, and the customer's records in the
 * blocks not merged yet (found through each block's index), in time order.
 *
 * Profiles follow the log: store_touchpoints_profile() applies every block after the profiles' mark
 * and moves the mark, in one transaction, so a profile never names a touchpoint that was not
 * committed. What touchpoints tell a profile goes to its profile_seen record (no JSON rewritten;
 * store_customer_get() and the walks over customers merge it in). The recorder calls it about every second: a
 * customer's profile (channels_seen, last_seen_ms, channels, devices, stages_reached, stage) may lag a recorded
 * touchpoint by about a second, never more than what the writer committed since (a crash loses no profile change:
 * store_open() and every merge apply the blocks past the mark). Ingested touchpoints and sign-ins
 * move the profile in their own transaction.
 */

/** One touchpoint. Strings are NULL when absent; all at most 255 bytes. */
typedef struct store_tp {
    uint64_t occurred_at_ms, received_at_ms;
    uint64_t seq;    /* set by the store: orders touchpoints of the same millisecond */
    int status;      /* the HTTP status of the request; 0 when none */
    int click_id;    /* attribution: 0 no query string, 1 a query string without, 2 with a gclid/fbclid */
    int visit_start; /* the first touchpoint of a visit: the one that carries the attribution */
    const char *id, *customer_id, *visitor_id, *channel, *touchpoint, *stage, *route, *method, *device, *provider,
        *source, *session, *visit_id;
    /* attribution of the visit it starts (empty on the other touchpoints of a visit) */
    const char *referrer_host, *utm_source, *utm_medium, *utm_campaign, *utm_term, *utm_content;
    /* anything else, a JSON object's text (ingestion's attributes, a string status); NULL when none */
    const char *extra;
    size_t extra_len;
} store_tp_t;

#define STORE_TP_STR_MAX 255
#define STORE_TP_EXTRA_MAX 16384
#define STORE_TP_RECORD_MAX (64 + 19 * (STORE_TP_STR_MAX + 2) + STORE_TP_EXTRA_MAX + 3)

/**
 * Encodes tp into out (cap bytes); returns the record's length, or 0 when a string is longer
 * than STORE_TP_STR_MAX, the extra longer than STORE_TP_EXTRA_MAX, or it does not fit in cap.
 */
size_t store_tp_encode(const store_tp_t *tp, uint8_t *out, size_t cap);

/** Decodes the record at p (avail bytes); tp's strings point into p. Returns its length, 0 when malformed. */
size_t store_tp_decode(const uint8_t *p, size_t avail, store_tp_t *tp);

/**
 * The touchpoint as a JSON object (the shape of exports, of the admin API and of the console's
 * TOUCHPOINT, console/API.md): id, customer_id, visitor_id, occurred_at and received_at (ISO 8601
 * UTC with milliseconds), channel, touchpoint, stage, route, method, status, device, provider,
 * source, session, visit_id, visit_start and, on a visit's first touchpoint, its attribution
 * (referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content, click_id); then
 * what ingestion recorded besides (attributes, a status given as text). Absent strings are left out.
 */
json_t *store_tp_json(const store_tp_t *tp);

/**
 * Appends n encoded records (concatenated; each with customer_id) as one block, in ONE
 * transaction: the writer thread group-commits its batches with one sync. Assigns seq.
 * The customers' profiles do not follow in that transaction: store_touchpoints_profile() (or a
 * merge, or the next store_open()) brings them along later, every block since the last time at
 * once, so a profile may lag its touchpoints by what was appended since (the recorder's writer:
 * about a second, see PROFILE_EVERY_MS in recorder.c).
 */
gw_status_t store_touchpoints_append(store_t *st, const uint8_t *records, size_t len, size_t n);

/**
 * Brings the customers' profiles in step with every touchpoint block appended since the last time
 * (store_touchpoints_append()), in ONE synced transaction that also moves the profiles' mark
 * (meta "tp_profiled") to the last block: each touched profile is looked at once, in customer id
 * order, and rewritten only when its touchpoints tell it something new (see README, "Touchpoints
 * and journeys"). A profile never reflects a touchpoint that was not committed; after a crash,
 * store_open() does what had not been done. A no-op when nothing is new. Errors: the store's.
 */
gw_status_t store_touchpoints_profile(store_t *st);

/**
 * Ingested touchpoints in ONE synced transaction, each with an optional idempotency key (NULL):
 * a key seen before (for the same source) is not written again and duplicate[i] is set. The
 * customers' profiles follow in the same transaction.
 */
gw_status_t store_touchpoints_ingest(store_t *st, const store_tp_t *tps, const char *const *idempotency_keys, size_t n,
                                     int *duplicate);

/**
 * Moves every block of the log into the customers' chunks; *merged counts the touchpoints moved.
 * Blocks whose touchpoints are not in the profiles yet go into them first, in the same transaction.
 */
gw_status_t store_touchpoints_merge(store_t *st, uint64_t *merged);

/** Touchpoints in the log not merged yet. */
gw_status_t store_touchpoints_unmerged(store_t *st, uint64_t *count);

typedef int (*store_tp_cb)(const store_tp_t *tp, void *ctx);

/**
 * Calls cb for the customer's touchpoints with occurred_at_ms >= since_ms, in time order
 * (occurred_at_ms, then seq), stopping when cb returns non-zero. tp is valid during the call only.
 */
gw_status_t store_journey(store_t *st, const char *customer_id, uint64_t since_ms, store_tp_cb cb, void *ctx);

/** Calls cb for every touchpoint with occurred_at_ms >= since_ms: customer by customer, each in time order. */
gw_status_t store_touchpoints_foreach(store_t *st, uint64_t since_ms, store_tp_cb cb, void *ctx);

/**
 * store_touchpoints_foreach() for the customers whose id sorts after after_customer (STORE_ID_LEN
 * bytes; NULL: every customer). Lets a long reader (a streamed export) work in short read
 * transactions: stop at a customer boundary, write out what was read with no transaction open,
 * and go on after the last customer done. A customer's touchpoints come in one call.
 */
gw_status_t store_touchpoints_foreach_after(store_t *st, uint64_t since_ms, const char *after_customer, store_tp_cb cb,
                                            void *ctx);

/** Deletes touchpoints that occurred before before_ms (retention), in batches; *deleted counts them. */
gw_status_t store_touchpoints_prune(store_t *st, uint64_t before_ms, uint64_t *deleted);

/** Number of customers (for tests and figures). */
gw_status_t store_count_customers(store_t *st, uint64_t *count);

#endif
