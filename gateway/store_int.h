/*
 * journeygate — what store.c and store_tp.c share: the store's handles and its transaction
 * helpers. Private to the store: nothing outside these two files includes it.
 */
#ifndef GW_STORE_INT_H
#define GW_STORE_INT_H

#include "store.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

struct store {
    MDB_env *env;
    MDB_dbi meta, customers, identities, emails, identity_emails, sessions, customer_sessions, deletions, audit,
        idempotency;
    MDB_dbi tp_log;  /* be64(block number) -> a block of touchpoints as one commit wrote them (store_tp.c) */
    MDB_dbi tp_cust; /* "touchpoints": customer id + be64(time) + be64(seq) -> a chunk of the customer's touchpoints */
    int readonly;
    uint8_t audit_key[32];
    /* store_session_generation(): the meta counter as last read, and the LMDB txnid it was read at */
    _Atomic uint64_t sgen_txnid, sgen_value;
    pthread_mutex_t sgen_lock;
    /*
     * Every transaction holds this in read mode; growing the map holds it in write mode,
     * because LMDB allows mdb_env_set_mapsize() only while this process has no transaction.
     */
    pthread_rwlock_t resize;
    struct store_seen_cache *seen_cache; /* store_profile.c: what recently touched profiles say (lazily made) */
    /* store_profile.c: what a run of touchpoints tells each customer; used inside write transactions only */
    struct store_seen_acc *seen_acc;
    /* "profile_seen": customer id -> what touchpoints told the profile (store_profile.c); ok 0 when absent */
    MDB_dbi profile_seen;
    int profile_seen_ok;
};

typedef int (*store_write_fn)(store_t *st, MDB_txn *txn, void *ctx);

/*
 * Runs fn in a write transaction and commits (synced). When the map is full the
 * transaction is aborted (nothing of it remains), the map doubles and fn runs again.
 * fn returns an LMDB code, or -1 with its own status in the context.
 */
gw_status_t store_with_write(store_t *st, store_write_fn fn, void *ctx);
gw_status_t store_from_mdb(int rc);
/* a read-only transaction under the map-resize lock (an LMDB code; *txn is NULL on failure), and its end */
int store_read_begin(store_t *st, MDB_txn **txn);
void store_read_end(store_t *st, MDB_txn *txn);
void store_be64(uint64_t v, uint8_t out[8]);
uint64_t store_from_be64(const uint8_t *p);

/* store_tp.c: inside a write transaction */
int store_tp_merge_all(store_t *st, MDB_txn *txn);                       /* every unmerged block into chunks */
int store_tp_erase_customer(store_t *st, MDB_txn *txn, const char *cid); /* merges, then drops the customer's chunks */
int store_tp_migrate_json(store_t *st, MDB_txn *txn); /* format 2's JSON touchpoints -> chunks (format 3) */
/* bumps the meta counter that store_session_generation() reports (a session or customer removed) */
int store_bump_session_generation(store_t *st, MDB_txn *txn);

/*
 * store_profile.c: profiles in step with touchpoints. A store_seen_t gathers what touchpoints of one
 * customer say (channels with their first and last times, devices with their last, the lifecycle
 * stages first reached, the first and last times); strings point into the records (not copied).
 */
#define STORE_SEEN_MAX 8             /* channels and devices per store_seen_t */
#define STORE_SEEN_SLACK_MS 60000ULL /* a last-seen time moving by less does not rewrite a profile */
typedef struct store_seen {
    int any;
    uint64_t first_ms, last_ms;
    size_t nch, ndev;
    struct {
        const char *name;
        uint64_t first_ms, last_ms;
    } ch[STORE_SEEN_MAX];
    struct {
        const char *name;
        uint64_t last_ms;
    } dev[STORE_SEEN_MAX];
    uint64_t stage_ms[7]; /* need ... advocacy: the first time reached; 0 none */
} store_seen_t;

/* cache entries to remember once their transaction committed (store_seen_pending_apply()) */
typedef struct store_seen_pending {
    void *v;
    size_t n, cap;
} store_seen_pending_t;

void store_seen_reset(store_seen_t *s);
/* adds one touchpoint; -1 (nothing added) when s holds STORE_SEEN_MAX channels or devices and this is a new one */
int store_seen_add(store_seen_t *s, const char *channel, const char *device, const char *stage, uint64_t at_ms);
/*
 * Applies s to a profile object (see store_profile.c for the fields). Returns 0 when nothing changed,
 * 1 when only last-seen times moved, by at most slack_ms each, 2 for anything else (worth writing).
 */
int store_profile_seen(json_t *cust, const store_seen_t *s, uint64_t slack_ms);
/* 0..6 for need ... advocacy, else -1 */
int store_stage_index(const char *stage);
/*
 * In a write transaction: rewrites customer cid's profile when s tells it anything new (see
 * store_profile.c); a customer without a profile is left alone. p receives what the profile now
 * says for the cache (NULL: nothing is remembered). An LMDB code (ENOMEM).
 */
int store_profiles_seen(store_t *st, MDB_txn *txn, const char *cid, const store_seen_t *s, store_seen_pending_t *p);
/* after the transaction committed: its entries into the cache (p is emptied); after a failure: drop them */
void store_seen_pending_apply(store_t *st, store_seen_pending_t *p);
void store_seen_pending_free(store_seen_pending_t *p);
void store_seen_cache_free(store_t *st); /* store_close() */

/*
 * Gathering many touchpoints per customer before the profiles are touched, so that each profile is
 * looked at once for a whole run of blocks (store_tp.c: the log's blocks after the profiles' mark,
 * or an ingested block), in customer id order. Only inside a write transaction (LMDB runs one at a
 * time, so st->seen_acc needs no lock of its own):
 *   store_seen_gather_reset()  forgets what an earlier transaction gathered and may have left;
 *   store_seen_gather()        adds touchpoint tp of customer cid (STORE_ID_LEN bytes; cid_hash its
 *                              gw_fnv1a(GW_FNV1A_SEED, ...), as a block's index has it); cid and tp's
 *                              strings must stay valid until the flush (they point into records of
 *                              this transaction); when it holds too many customers, it flushes first;
 *   store_seen_flush()         applies what was gathered to the profiles (store_profiles_seen(), so p
 *                              as there) in customer id order, and forgets it.
 * LMDB codes (ENOMEM).
 */
void store_seen_gather_reset(store_t *st);
int store_seen_gather(store_t *st, MDB_txn *txn, const char *cid, uint64_t cid_hash, const store_tp_t *tp,
                      store_seen_pending_t *p);
int store_seen_flush(store_t *st, MDB_txn *txn, store_seen_pending_t *p);
void store_seen_acc_free(store_t *st); /* store_close() */

/*
 * The profile a reader sees: cust (the JSON stored under key, klen bytes) with what the customer's
 * touchpoints told it merged in (profile_seen, see store_profile.c), in any transaction. A key that
 * is not a customer id, or no such record, leaves cust as it is.
 */
void store_profile_merge_seen(store_t *st, MDB_txn *txn, const void *key, size_t klen, json_t *cust);
/* in a write transaction: the customer's profile_seen record goes (erasure); an LMDB code */
int store_profile_seen_delete(store_t *st, MDB_txn *txn, const char *cid);

/*
 * store_tp.c: every block of the log after the profiles' mark (meta "tp_profiled") into the
 * customers' profiles, and the mark moved to the last block; in a write transaction (p as above).
 */
int store_tp_profiles(store_t *st, MDB_txn *txn, store_seen_pending_t *p);

#endif
