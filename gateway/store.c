#include "store.h"

#include "crypto.h"
#include "ingest.h"
#include "store_int.h"

#include <ctype.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MODULE "store"
#define MAX_RECORD (1024 * 1024)
#define MAX_GROWTHS 8 /* a write that still does not fit after 8 doublings answers 503 */
#define MAX_EMAIL 320

static uint64_t now_ms_store(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

gw_status_t store_from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return GW_OK;
    case MDB_NOTFOUND:
        return GW_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
    case EDQUOT:
        return GW_EUNAVAIL;
    case ENOMEM:
        return GW_ENOMEM;
    default:
        return GW_EIO;
    }
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; ++p) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static void lower_email(const char *email, char *out, size_t cap)
{
    size_t n = strlen(email);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; ++i)
        out[i] = (char)tolower((unsigned char)email[i]);
    out[n] = '\0';
}

/* ------------------------------------------------------------------ open */

static int open_dbis(store_t *st, MDB_txn *txn, unsigned flags)
{
    int rc;
    if ((rc = mdb_dbi_open(txn, "meta", flags, &st->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "customers", flags, &st->customers)) != 0 ||
        (rc = mdb_dbi_open(txn, "identities", flags, &st->identities)) != 0 ||
        (rc = mdb_dbi_open(txn, "emails", flags, &st->emails)) != 0 ||
        (rc = mdb_dbi_open(txn, "identity_emails", flags, &st->identity_emails)) != 0 ||
        (rc = mdb_dbi_open(txn, "sessions", flags, &st->sessions)) != 0 ||
        (rc = mdb_dbi_open(txn, "customer_sessions", flags | MDB_DUPSORT, &st->customer_sessions)) != 0 ||
        (rc = mdb_dbi_open(txn, "deletions", flags, &st->deletions)) != 0 ||
        (rc = mdb_dbi_open(txn, "audit", flags, &st->audit)) != 0 ||
        (rc = mdb_dbi_open(txn, "idempotency", flags, &st->idempotency)) != 0 ||
        (rc = mdb_dbi_open(txn, "tp_log", flags, &st->tp_log)) != 0 ||
        (rc = mdb_dbi_open(txn, "touchpoints", flags, &st->tp_cust)) != 0)
        return rc;
    /* what touchpoints told the profiles (store_profile.c); a store no gateway of this version wrote has none */
    rc = mdb_dbi_open(txn, "profile_seen", flags, &st->profile_seen);
    st->profile_seen_ok = rc == 0;
    return rc == MDB_NOTFOUND && !(flags & MDB_CREATE) ? 0 : rc;
}

static long read_version(store_t *st, MDB_txn *txn, int *found)
{
    MDB_val key = {6, "format"}, val;
    char v[16] = {0};

    *found = 0;
    if (mdb_get(txn, st->meta, &key, &val) != 0)
        return 0;
    *found = 1;
    memcpy(v, val.mv_data, val.mv_size < sizeof(v) - 1 ? val.mv_size : sizeof(v) - 1);
    return strtol(v, NULL, 10);
}

/*
 * Format 1 -> 2: sessions gained the customer_sessions index. Sessions of format 1 are
 * re-indexed so erasure finds them.
 */
static int migrate_1_to_2(store_t *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, st->sessions, &cur)) != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, rc == 0 && k.mv_data != NULL ? MDB_NEXT : MDB_FIRST)) == 0) {
        json_t *s = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        const char *cid = json_string_value(json_object_get(s, "customer_id"));
        if (cid != NULL && strlen(cid) == STORE_ID_LEN) {
            MDB_val ck = {STORE_ID_LEN, (void *)cid}, cv = {k.mv_size, k.mv_data};
            int prc = mdb_put(txn, st->customer_sessions, &ck, &cv, MDB_NODUPDATA);
            if (prc != 0 && prc != MDB_KEYEXIST) {
                json_decref(s);
                mdb_cursor_close(cur);
                return prc;
            }
        }
        json_decref(s);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int migrate_3_to_4(store_t *st, MDB_txn *txn); /* with the finding index, below */

static gw_status_t open_env(const char *path, uint64_t map_size_mb, int readonly, store_t **out)
{
    store_t *st = calloc(1, sizeof(*st));
    pthread_rwlockattr_t attr;
    MDB_txn *txn = NULL;
    int rc, dead = 0, found;
    long version;
    gw_status_t status = GW_EIO;

    if (st == NULL)
        return GW_ENOMEM;
    st->readonly = readonly;
    pthread_rwlockattr_init(&attr);
    /* a growth must not starve behind a steady stream of readers */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->resize, &attr);
    pthread_mutex_init(&st->sgen_lock, NULL);
    pthread_rwlockattr_destroy(&attr);
    if (!readonly && mkdir_p(path) != 0) {
        GW_LOG_ERR(MODULE, "cannot create store directory %s: %s", path, strerror(errno));
        goto Exit;
    }
    if ((rc = mdb_env_create(&st->env)) != 0 || (rc = mdb_env_set_maxdbs(st->env, 16)) != 0 ||
        (!readonly && (rc = mdb_env_set_mapsize(st->env, (size_t)map_size_mb * 1024 * 1024)) != 0) ||
        (rc = mdb_env_set_maxreaders(st->env, 512)) != 0 ||
        /* MDB_NOTLS: read transactions are not tied to a thread's slot, so any loop thread may read */
        (rc = mdb_env_open(st->env, path, MDB_NOTLS | (readonly ? MDB_RDONLY : 0), 0600)) != 0) {
        GW_LOG_ERR(MODULE, "cannot open store %s: %s", path, mdb_strerror(rc));
        goto Exit;
    }
    mdb_reader_check(st->env, &dead); /* clear the slots of readers that died */
    if (readonly) {
        if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0 || (rc = open_dbis(st, txn, 0)) != 0) {
            GW_LOG_ERR(MODULE, "store %s is not a journeygate store or is from an older version: %s", path,
                       mdb_strerror(rc));
            goto Exit;
        }
        version = read_version(st, txn, &found);
        /* committed, not aborted: DBI handles opened in an aborted transaction are closed with it */
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc != 0)
            goto Exit;
        if (version != STORE_FORMAT_VERSION) {
            GW_LOG_ERR(MODULE, "store %s has format %ld; this journeygate reads format %d", path, version,
                       STORE_FORMAT_VERSION);
            status = GW_EINVAL;
            goto Exit;
        }
        *out = st;
        return GW_OK;
    }
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0 || (rc = open_dbis(st, txn, MDB_CREATE)) != 0) {
        GW_LOG_ERR(MODULE, "cannot open databases in %s: %s", path, mdb_strerror(rc));
        goto Exit;
    }
    version = read_version(st, txn, &found);
    if (found && version > STORE_FORMAT_VERSION) {
        GW_LOG_ERR(MODULE, "store %s has format %ld, newer than this journeygate (%d): upgrade journeygate", path,
                   version, STORE_FORMAT_VERSION);
        status = GW_EINVAL;
        goto Exit;
    }
    if (found && version < 1) {
        GW_LOG_ERR(MODULE, "store %s has an unknown format %ld", path, version);
        status = GW_EINVAL;
        goto Exit;
    }
    if (found && version == 1) {
        if ((rc = migrate_1_to_2(st, txn)) != 0)
            goto Exit;
        GW_LOG_INF(MODULE, "store %s migrated from format 1 to 2", path);
    }
    if (found && version <= 2) {
        if ((rc = store_tp_migrate_json(st, txn)) != 0)
            goto Exit;
        GW_LOG_INF(MODULE, "store %s migrated from format 2 to 3 (touchpoints in chunks)", path);
    }
    if (found && version <= 3) {
        if ((rc = migrate_3_to_4(st, txn)) != 0)
            goto Exit;
        GW_LOG_INF(MODULE, "store %s migrated from format 3 to 4 (every identity's email indexed for search)", path);
    }
    /*
     * Touchpoints committed before a crash whose profiles did not follow yet (the recorder brings
     * them along about every second, store_touchpoints_profile()): they follow now.
     */
    if ((rc = store_tp_profiles(st, txn, NULL)) != 0) {
        GW_LOG_ERR(MODULE, "cannot bring the profiles of %s in step with its touchpoints: %s", path, mdb_strerror(rc));
        goto Exit;
    }
    if (!found || version < STORE_FORMAT_VERSION) {
        char v[16];
        MDB_val key = {6, "format"}, val;
        val.mv_size = (size_t)snprintf(v, sizeof(v), "%d", STORE_FORMAT_VERSION);
        val.mv_data = v;
        if ((rc = mdb_put(txn, st->meta, &key, &val, 0)) != 0)
            goto Exit;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto Exit;
    *out = st;
    st = NULL;
    status = GW_OK;
Exit:
    if (txn != NULL)
        mdb_txn_abort(txn);
    store_close(st);
    return status;
}

gw_status_t store_open(const char *path, uint64_t map_size_mb, store_t **out)
{
    return open_env(path, map_size_mb, 0, out);
}

gw_status_t store_open_readonly(const char *path, store_t **out)
{
    return open_env(path, 0, 1, out);
}

void store_close(store_t *st)
{
    if (st == NULL)
        return;
    if (st->env != NULL)
        mdb_env_close(st->env);
    store_seen_cache_free(st);
    store_seen_acc_free(st);
    pthread_rwlock_destroy(&st->resize);
    free(st);
}

/* ------------------------------------------------------------------ transactions */

/*
 * Adopts the map size another process (a CLI with a larger store.map_size_mb, or a gateway that
 * grew it) recorded after its data outgrew this process's map: until then every transaction of
 * this process would fail with MDB_MAP_RESIZED. LMDB allows mdb_env_set_mapsize() only while
 * the process has no transaction: the resize lock in write mode waits for them all to end.
 * Never shrinks this process's own map. Called without the lock held.
 */
static int adopt_map_size(store_t *st)
{
    MDB_envinfo before, after;
    MDB_txn *probe;
    int rc;

    pthread_rwlock_wrlock(&st->resize);
    /* threads that met MDB_MAP_RESIZED together come here in turn: the first one did it */
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &probe) == 0) {
        mdb_txn_abort(probe);
        pthread_rwlock_unlock(&st->resize);
        return 0;
    }
    mdb_env_info(st->env, &before);
    rc = mdb_env_set_mapsize(st->env, 0);
    if (rc == 0 && mdb_env_info(st->env, &after) == 0 && after.me_mapsize < before.me_mapsize)
        rc = mdb_env_set_mapsize(st->env, before.me_mapsize);
    if (rc == 0 && mdb_env_info(st->env, &after) == 0)
        GW_LOG_INF(MODULE, "store map resized by another process: now %zu MB",
                   (size_t)(after.me_mapsize / (1024 * 1024)));
    else if (rc != 0)
        GW_LOG_ERR(MODULE, "cannot adopt the store map size another process set: %s", mdb_strerror(rc));
    pthread_rwlock_unlock(&st->resize);
    return rc;
}

/*
 * mdb_txn_begin() for a caller holding the resize lock in read mode (it still holds it on return,
 * whatever the result): when another process has grown the map past this one's, adopts its size
 * (the lock is let go meanwhile) and begins again.
 */
static int txn_begin(store_t *st, unsigned flags, MDB_txn **txn)
{
    int rc = MDB_MAP_RESIZED;

    for (int attempt = 0; attempt < 4 && rc == MDB_MAP_RESIZED; ++attempt) {
        if ((rc = mdb_txn_begin(st->env, NULL, flags, txn)) != MDB_MAP_RESIZED)
            break;
        *txn = NULL;
        pthread_rwlock_unlock(&st->resize);
        adopt_map_size(st);
        pthread_rwlock_rdlock(&st->resize);
    }
    if (rc != 0)
        *txn = NULL;
    return rc;
}

gw_status_t store_with_write(store_t *st, store_write_fn fn, void *ctx)
{
    for (int attempt = 0; attempt <= MAX_GROWTHS; ++attempt) {
        MDB_txn *txn = NULL;
        int rc;

        if (st->readonly)
            return GW_EINVAL;
        pthread_rwlock_rdlock(&st->resize);
        if ((rc = txn_begin(st, 0, &txn)) == 0) {
            rc = fn(st, txn, ctx);
            if (rc == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&st->resize);
        if (rc != MDB_MAP_FULL)
            return rc == -1 ? GW_EDENIED : store_from_mdb(rc);
        {
            MDB_envinfo info;
            pthread_rwlock_wrlock(&st->resize);
            mdb_env_info(st->env, &info);
            rc = mdb_env_set_mapsize(st->env, info.me_mapsize * 2);
            pthread_rwlock_unlock(&st->resize);
            if (rc != 0) {
                GW_LOG_ERR(MODULE, "cannot grow the store map: %s", mdb_strerror(rc));
                return GW_EUNAVAIL;
            }
            GW_LOG_INF(MODULE, "store map grown to %zu MB", (size_t)(info.me_mapsize * 2 / (1024 * 1024)));
        }
    }
    GW_LOG_ERR(MODULE, "a write did not fit after %d map growths", MAX_GROWTHS);
    return GW_EUNAVAIL;
}

static gw_status_t get_json(store_t *st, MDB_dbi dbi, const void *k, size_t klen, json_t **out)
{
    MDB_txn *txn = NULL;
    MDB_val key = {klen, (void *)k}, val;
    int rc;

    pthread_rwlock_rdlock(&st->resize);
    if ((rc = txn_begin(st, MDB_RDONLY, &txn)) == 0) {
        rc = mdb_get(txn, dbi, &key, &val);
        if (rc == 0) {
            /* the value is valid only inside the transaction: jansson copies it */
            *out = json_loadb(val.mv_data, val.mv_size, 0, NULL);
            if (*out == NULL)
                rc = EIO;
            else if (dbi == st->customers)
                store_profile_merge_seen(st, txn, k, klen, *out);
        }
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&st->resize);
    return store_from_mdb(rc);
}

static gw_status_t get_id(store_t *st, MDB_dbi dbi, const void *k, size_t klen, char *customer_id)
{
    MDB_txn *txn = NULL;
    MDB_val key = {klen, (void *)k}, val;
    int rc;

    pthread_rwlock_rdlock(&st->resize);
    if ((rc = txn_begin(st, MDB_RDONLY, &txn)) == 0) {
        rc = mdb_get(txn, dbi, &key, &val);
        if (rc == 0 && val.mv_size == STORE_ID_LEN) {
            memcpy(customer_id, val.mv_data, STORE_ID_LEN);
            customer_id[STORE_ID_LEN] = '\0';
        } else if (rc == 0) {
            rc = EIO;
        }
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&st->resize);
    return store_from_mdb(rc);
}

static int put_json(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    MDB_val key = {klen, (void *)k}, val;
    int rc;

    if (text == NULL)
        return ENOMEM;
    val.mv_size = strlen(text);
    val.mv_data = text;
    rc = val.mv_size > MAX_RECORD ? MDB_BAD_VALSIZE : mdb_put(txn, dbi, &key, &val, 0);
    free(text);
    return rc;
}

static int load_json(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, json_t **out)
{
    MDB_val key = {klen, (void *)k}, val;
    int rc = mdb_get(txn, dbi, &key, &val);
    if (rc != 0)
        return rc;
    *out = json_loadb(val.mv_data, val.mv_size, 0, NULL);
    return *out != NULL ? 0 : EIO;
}

static size_t identity_key(const char *provider, const char *subject, char *buf, size_t cap)
{
    size_t p = strlen(provider), s = strlen(subject);
    if (p + 1 + s > cap)
        return 0;
    memcpy(buf, provider, p);
    buf[p] = '\0';
    memcpy(buf + p + 1, subject, s);
    return p + 1 + s;
}

/* ------------------------------------------------------------------ the finding index */

/*
 * identity_emails: lower-case email "\0" customer id -> "" for every email of every identity of
 * every customer, verified or not. It only ever FINDS customers (store_customers_find()); linking
 * reads `emails`, which holds verified addresses only. Every transaction that changes a customer's
 * identities drops the customer's entries as they were (email_index_drop) and puts them as they
 * are (email_index_put), so the index cannot drift from the records.
 */
static size_t email_index_key(const char *email, const char *customer_id, char *buf, size_t cap)
{
    size_t e = strlen(email);
    if (e == 0 || e > MAX_EMAIL || e + 1 + STORE_ID_LEN > cap)
        return 0;
    lower_email(email, buf, cap);
    buf[e] = '\0';
    memcpy(buf + e + 1, customer_id, STORE_ID_LEN);
    return e + 1 + STORE_ID_LEN;
}

/* puts (del = 0) or deletes (del = 1) the entries of every email the customer's identities carry */
static int email_index_each(store_t *st, MDB_txn *txn, json_t *cust, const char *customer_id, int del)
{
    json_t *ident;
    size_t i;

    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        const char *e = json_string_value(json_object_get(ident, "email"));
        char kbuf[MAX_EMAIL + 1 + STORE_ID_LEN];
        size_t klen = e != NULL ? email_index_key(e, customer_id, kbuf, sizeof(kbuf)) : 0;
        MDB_val key = {klen, kbuf}, val = {0, ""};
        int rc;
        if (klen == 0)
            continue; /* no email, or one too long to be an address: nothing to find it by */
        rc = del ? mdb_del(txn, st->identity_emails, &key, NULL) : mdb_put(txn, st->identity_emails, &key, &val, 0);
        if (rc != 0 && !(del && rc == MDB_NOTFOUND)) /* two identities with one address: deleted once */
            return rc;
    }
    return 0;
}

static int email_index_drop(store_t *st, MDB_txn *txn, json_t *cust, const char *customer_id)
{
    return email_index_each(st, txn, cust, customer_id, 1);
}

static int email_index_put(store_t *st, MDB_txn *txn, json_t *cust, const char *customer_id)
{
    return email_index_each(st, txn, cust, customer_id, 0);
}

/* format 3 -> 4: the index from every customer's identities */
static int migrate_3_to_4(store_t *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, first = 1;

    if ((rc = mdb_cursor_open(txn, st->customers, &cur)) != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, first ? MDB_FIRST : MDB_NEXT)) == 0) {
        json_t *cust;
        char cid[STORE_ID_LEN + 1];
        first = 0;
        if (k.mv_size != STORE_ID_LEN)
            continue;
        memcpy(cid, k.mv_data, STORE_ID_LEN);
        cid[STORE_ID_LEN] = '\0';
        if ((cust = json_loadb(v.mv_data, v.mv_size, 0, NULL)) == NULL)
            continue; /* unreadable: nothing to index (it could not be shown either) */
        rc = email_index_put(st, txn, cust, cid);
        json_decref(cust);
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------------ audit */

#define AUDIT_HEAD "audit_head"

void store_audit_key(store_t *st, const uint8_t key[32])
{
    memcpy(st->audit_key, key, 32);
}

/* the store's integers are big-endian, so keys sort by value */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TO_BE64(v) __builtin_bswap64(v)
#else
#define TO_BE64(v) (v)
#endif

void store_be64(uint64_t v, uint8_t out[8])
{
    v = TO_BE64(v);
    memcpy(out, &v, 8);
}

uint64_t store_from_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return TO_BE64(v);
}

/* hex SHA-256 of the record's canonical form: sorted keys, compact, without "hash" */
static int record_hash(json_t *rec, char out[65])
{
    json_t *copy = json_copy(rec);
    char *text;
    uint8_t h[32];

    if (copy == NULL)
        return -1;
    json_object_del(copy, "hash");
    text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    if (text == NULL)
        return -1;
    gw_sha256(text, strlen(text), h);
    free(text);
    gw_hex(h, 32, out);
    return 0;
}

static void head_mac(const store_t *st, uint64_t seq, const char *hash, char out[65])
{
    char msg[128];
    uint8_t mac[32];
    int n = snprintf(msg, sizeof(msg), "journeygate audit head %llu %s", (unsigned long long)seq, hash);
    gw_hmac_sha256(st->audit_key, sizeof(st->audit_key), msg, (size_t)n, mac);
    gw_hex(mac, 32, out);
}

static void set_field(json_t *rec, const char *key, const char *value)
{
    if (value != NULL)
        json_object_set_new(rec, key, json_string(value));
}

/* appends one record inside txn: the chain head moves in the same transaction; count > 0 adds a "count" */
static int audit_append_n(store_t *st, MDB_txn *txn, const store_audit_event_t *ev, uint64_t count, uint64_t now)
{
    MDB_val hk = {sizeof(AUDIT_HEAD) - 1, AUDIT_HEAD}, hv;
    char prev[65], hash[65], mac[65];
    uint64_t seq = 0;
    uint8_t kbuf[8];
    json_t *rec, *head;
    int rc;

    memset(prev, '0', 64);
    prev[64] = '\0';
    if ((rc = mdb_get(txn, st->meta, &hk, &hv)) == 0) {
        json_t *h = json_loadb(hv.mv_data, hv.mv_size, 0, NULL);
        const char *ph = json_string_value(json_object_get(h, "hash"));
        seq = (uint64_t)json_integer_value(json_object_get(h, "seq"));
        if (ph == NULL || strlen(ph) != 64) {
            json_decref(h);
            return EIO;
        }
        memcpy(prev, ph, 65);
        json_decref(h);
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    ++seq;
    rec = json_pack("{s:I, s:I, s:s, s:s, s:s}", "seq", (json_int_t)seq, "ts_ms", (json_int_t)now, "event", ev->event,
                    "outcome", ev->outcome, "prev", prev);
    if (rec == NULL)
        return ENOMEM;
    set_field(rec, "reason", ev->reason);
    set_field(rec, "provider", ev->provider);
    set_field(rec, "customer_id", ev->customer_id);
    set_field(rec, "client", ev->client);
    set_field(rec, "user_agent", ev->user_agent);
    set_field(rec, "flow_id", ev->flow_id);
    set_field(rec, "request_id", ev->request_id);
    set_field(rec, "actor", ev->actor);
    set_field(rec, "route", ev->route);
    set_field(rec, "detail", ev->detail);
    if (count > 0)
        json_object_set_new(rec, "count", json_integer((json_int_t)(count < INT64_MAX ? count : INT64_MAX)));
    if (ev->subject != NULL) {
        /* the provider subject is personal data: only a salted hash goes into the trail */
        uint8_t salt[32], h[32];
        char hex[65];
        gw_hmac_sha256(st->audit_key, sizeof(st->audit_key), "subject salt", 12, salt);
        size_t plen = ev->provider != NULL ? strlen(ev->provider) : 0, slen = strlen(ev->subject);
        char *buf = malloc(plen + 1 + slen);
        if (buf == NULL) {
            json_decref(rec);
            return ENOMEM;
        }
        if (plen > 0)
            memcpy(buf, ev->provider, plen);
        buf[plen] = '\0';
        memcpy(buf + plen + 1, ev->subject, slen);
        gw_hmac_sha256(salt, sizeof(salt), buf, plen + 1 + slen, h);
        free(buf);
        gw_hex(h, 16, hex);
        json_object_set_new(rec, "subject_hash", json_string(hex));
    }
    if (record_hash(rec, hash) != 0) {
        json_decref(rec);
        return ENOMEM;
    }
    json_object_set_new(rec, "hash", json_string(hash));
    store_be64(seq, kbuf);
    rc = put_json(txn, st->audit, kbuf, 8, rec);
    json_decref(rec);
    if (rc != 0)
        return rc;
    head_mac(st, seq, hash, mac);
    head = json_pack("{s:I, s:s, s:s}", "seq", (json_int_t)seq, "hash", hash, "mac", mac);
    rc = head != NULL ? put_json(txn, st->meta, AUDIT_HEAD, sizeof(AUDIT_HEAD) - 1, head) : ENOMEM;
    json_decref(head);
    return rc;
}

static int audit_append(store_t *st, MDB_txn *txn, const store_audit_event_t *ev, uint64_t now)
{
    return audit_append_n(st, txn, ev, 0, now);
}

struct audit_ctx {
    const store_audit_event_t *const *evs;
    const uint64_t *counts, *times;
    size_t n;
};

static int audit_batch_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct audit_ctx *c = arg;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->n; ++i)
        rc = audit_append_n(st, txn, c->evs[i], c->counts != NULL ? c->counts[i] : 0, c->times[i]);
    return rc;
}

gw_status_t store_audit_write(store_t *st, const store_audit_event_t *ev, uint64_t now_ms)
{
    return store_audit_write_batch(st, &ev, NULL, &now_ms, 1);
}

gw_status_t store_audit_write_batch(store_t *st, const store_audit_event_t *const *evs, const uint64_t *counts,
                                    const uint64_t *times_ms, size_t n)
{
    struct audit_ctx c = {evs, counts, times_ms, n};
    return n == 0 ? GW_OK : store_with_write(st, audit_batch_txn, &c);
}

/*
 * store_audit_verify(), and store_audit_verify_from() resumed after record from_seq (0: from the
 * start) whose hash was from_hash: that record must still hash to from_hash, the ones after it
 * link on from it. last_hash (may be NULL) receives the hash of the last record verified.
 */
static gw_status_t audit_verify(store_t *st, uint64_t from_seq, const char *from_hash, uint64_t *count,
                                uint64_t *first_bad, const char **why, char *last_hash)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v, hk = {sizeof(AUDIT_HEAD) - 1, AUDIT_HEAD}, hv;
    char prev[65], hash[65], mac[65];
    uint64_t expect = 1, head_seq = 0;
    uint8_t from_key[8];
    json_t *head = NULL;
    gw_status_t result = GW_OK;
    int rc;

    memset(prev, '0', 64);
    prev[64] = '\0';
    *count = 0;
    *first_bad = 0;
    *why = NULL;
    pthread_rwlock_rdlock(&st->resize);
    if ((rc = txn_begin(st, MDB_RDONLY, &txn)) != 0 || (rc = mdb_cursor_open(txn, st->audit, &cur)) != 0) {
        result = store_from_mdb(rc);
        goto Exit;
    }
    if (from_seq > 0) {
        /* the record verified last time must still be there, unchanged: the rest links on from it */
        json_t *rec;
        const char *h;
        store_be64(from_seq, from_key);
        k.mv_size = 8;
        k.mv_data = from_key;
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY)) != 0) {
            if (rc != MDB_NOTFOUND) {
                result = store_from_mdb(rc);
                goto Exit;
            }
            *why = "a record verified before is missing";
            expect = from_seq;
            goto Bad;
        }
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        h = json_string_value(json_object_get(rec, "hash"));
        if (rec == NULL || h == NULL || record_hash(rec, hash) != 0 || strcmp(hash, h) != 0 || from_hash == NULL ||
            strcmp(h, from_hash) != 0) {
            json_decref(rec);
            *why = "a record verified before was changed";
            expect = from_seq;
            goto Bad;
        }
        json_decref(rec);
        memcpy(prev, from_hash, 64);
        *count = from_seq;
        expect = from_seq + 1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, from_seq > 0 ? MDB_NEXT : MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), ++expect) {
        json_t *rec;
        const char *h, *p;
        if (k.mv_size != 8 || store_from_be64(k.mv_data) != expect) {
            *why = "a record is missing or out of order";
            goto Bad;
        }
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        h = json_string_value(json_object_get(rec, "hash"));
        p = json_string_value(json_object_get(rec, "prev"));
        if (rec == NULL || (uint64_t)json_integer_value(json_object_get(rec, "seq")) != expect || h == NULL ||
            p == NULL || record_hash(rec, hash) != 0) {
            json_decref(rec);
            *why = "a record is unreadable";
            goto Bad;
        }
        if (strcmp(hash, h) != 0) {
            json_decref(rec);
            *why = "a record was changed";
            goto Bad;
        }
        if (strcmp(p, prev) != 0) {
            json_decref(rec);
            *why = "the link to the previous record is broken (a record was removed, swapped or inserted)";
            goto Bad;
        }
        memcpy(prev, h, 65);
        json_decref(rec);
        ++*count;
    }
    if (rc != MDB_NOTFOUND) {
        result = store_from_mdb(rc);
        goto Exit;
    }
    /* the signed head: detects truncation of the newest records and a rewritten chain */
    rc = mdb_get(txn, st->meta, &hk, &hv);
    if (rc == MDB_NOTFOUND && *count == 0)
        goto Exit;
    head = rc == 0 ? json_loadb(hv.mv_data, hv.mv_size, 0, NULL) : NULL;
    head_seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
    {
        const char *hh = json_string_value(json_object_get(head, "hash"));
        const char *hm = json_string_value(json_object_get(head, "mac"));
        if (hh == NULL || hm == NULL) {
            *why = "the signed head is missing";
            expect = *count + 1;
            goto Bad;
        }
        head_mac(st, head_seq, hh, mac);
        if (strlen(hm) != 64 || !gw_ct_equal(mac, hm, 64)) {
            *why = "the head's signature does not verify (wrong key, or the head was forged)";
            expect = 0;
            goto Bad;
        }
        if (head_seq != *count || strcmp(hh, prev) != 0) {
            *why = head_seq > *count ? "records after the last one present were removed (truncation)"
                                     : "the chain does not end at the signed head";
            expect = head_seq > *count ? *count + 1 : head_seq + 1;
            goto Bad;
        }
    }
    goto Exit;
Bad:
    *first_bad = expect;
    result = GW_EINVAL;
Exit:
    if (result == GW_OK && last_hash != NULL)
        memcpy(last_hash, *count > 0 ? prev : "", *count > 0 ? 65 : 1);
    json_decref(head);
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&st->resize);
    return result;
}

gw_status_t store_audit_verify(store_t *st, uint64_t *count, uint64_t *first_bad, const char **why)
{
    return audit_verify(st, 0, NULL, count, first_bad, why, NULL);
}

/*
 * Calls cb for each record of dbi in key order inside one read transaction, from the first key
 * at or after *start (or from the first key when start is NULL), until cb returns non-zero.
 */
static gw_status_t foreach_json(store_t *st, MDB_dbi dbi, const MDB_val *start, int (*cb)(json_t *, void *), void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = {0, NULL}, v;
    int rc;

    if (start != NULL)
        k = *start;
    pthread_rwlock_rdlock(&st->resize);
    if ((rc = txn_begin(st, MDB_RDONLY, &txn)) != 0 || (rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        goto Exit;
    for (rc = mdb_cursor_get(cur, &k, &v, start != NULL ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        int stop;
        if (rec != NULL && dbi == st->customers)
            store_profile_merge_seen(st, txn, k.mv_data, k.mv_size, rec);
        stop = rec != NULL ? cb(rec, ctx) : 0;
        json_decref(rec);
        if (stop)
            break;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
Exit:
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&st->resize);
    return store_from_mdb(rc);
}

gw_status_t store_audit_foreach(store_t *st, uint64_t after, int (*cb)(json_t *record, void *ctx), void *ctx)
{
    uint8_t start[8];
    MDB_val k = {8, start};

    store_be64(after + 1, start);
    return foreach_json(st, st->audit, &k, cb, ctx);
}

gw_status_t store_audit_last(store_t *st, uint64_t *seq)
{
    json_t *head = NULL;
    gw_status_t s = get_json(st, st->meta, AUDIT_HEAD, sizeof(AUDIT_HEAD) - 1, &head);
    *seq = s == GW_OK ? (uint64_t)json_integer_value(json_object_get(head, "seq")) : 0;
    json_decref(head);
    return s == GW_ENOTFOUND ? GW_OK : s;
}

gw_status_t store_audit_verify_from(store_t *st, uint64_t from_seq, const char *from_hash, uint64_t *count,
                                    uint64_t *first_bad, const char **why, char last_hash[65])
{
    return audit_verify(st, from_seq, from_hash, count, first_bad, why, last_hash);
}

gw_status_t store_audit_head(store_t *st, uint64_t *seq, char hash[65], char mac[65])
{
    json_t *head = NULL;
    gw_status_t s = get_json(st, st->meta, AUDIT_HEAD, sizeof(AUDIT_HEAD) - 1, &head);
    const char *h = json_string_value(json_object_get(head, "hash"));
    const char *m = json_string_value(json_object_get(head, "mac"));

    if (s == GW_OK) {
        /* an unreadable head is shown as it is (empty), never made up: verification says why */
        *seq = (uint64_t)json_integer_value(json_object_get(head, "seq"));
        snprintf(hash, 65, "%s", h != NULL && strlen(h) == 64 ? h : "");
        snprintf(mac, 65, "%s", m != NULL && strlen(m) == 64 ? m : "");
    }
    json_decref(head);
    return s;
}

gw_status_t store_audit_foreach_reverse(store_t *st, uint64_t before,
                                        int (*cb)(uint64_t seq, json_t *record, void *ctx), void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t start[8];
    MDB_val k = {8, start}, v;
    int rc;

    if ((rc = store_read_begin(st, &txn)) != 0)
        return store_from_mdb(rc);
    if ((rc = mdb_cursor_open(txn, st->audit, &cur)) != 0)
        goto Exit;
    if (before == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    } else {
        /* the first key at or after `before`, then one back; none at or after: the last one */
        store_be64(before, start);
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        rc = rc == 0              ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
             : rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, MDB_LAST)
                                  : rc;
    }
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        uint64_t seq = k.mv_size == 8 ? store_from_be64(k.mv_data) : 0;
        json_t *rec;
        int stop;
        if (seq == 0 || (before != 0 && seq >= before))
            continue;
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        stop = cb(seq, rec, ctx);
        json_decref(rec);
        if (stop)
            break;
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
Exit:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(st, txn);
    return store_from_mdb(rc);
}

/* ------------------------------------------------------------------ login */

static void new_customer_id(char *out)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t raw[24];

    gw_random_bytes(raw, sizeof(raw));
    out[0] = 'c';
    out[1] = '_';
    for (size_t i = 0; i < sizeof(raw); ++i)
        out[2 + i] = alphabet[raw[i] & 31];
    out[STORE_ID_LEN] = '\0';
}

static json_t *find_identity(json_t *cust, const char *provider, const char *subject)
{
    json_t *idents = json_object_get(cust, "identities"), *cand;
    size_t i;
    json_array_foreach(idents, i, cand)
    {
        const char *p = json_string_value(json_object_get(cand, "provider"));
        const char *s = json_string_value(json_object_get(cand, "subject"));
        if (p != NULL && strcmp(p, provider) == 0 && (subject == NULL || (s != NULL && strcmp(s, subject) == 0)))
            return cand;
    }
    return NULL;
}

/* whether an identity of the customer carries `email` verified by its provider */
static int has_verified_email(json_t *cust, const char *email)
{
    json_t *idents = json_object_get(cust, "identities"), *cand;
    size_t i;
    json_array_foreach(idents, i, cand)
    {
        const char *e = json_string_value(json_object_get(cand, "email"));
        if (e != NULL && json_is_true(json_object_get(cand, "email_verified")) && strcasecmp(e, email) == 0)
            return 1;
    }
    return 0;
}

static int email_blocked(const char *email, const char *const *blocked)
{
    for (; blocked != NULL && *blocked != NULL; ++blocked)
        if (strcasecmp(email, *blocked) == 0)
            return 1;
    return 0;
}

static void set_opt_string(json_t *obj, const char *key, const char *value)
{
    if (value != NULL)
        json_object_set_new(obj, key, json_string(value));
    else
        json_object_del(obj, key);
}

static int sessions_follow_identities(store_t *st, MDB_txn *txn, const char *customer_id, const char *provider,
                                      const char *subject, size_t linked, unsigned *ended);

struct login_ctx {
    const store_identity_t *id;
    const store_login_opts_t *opts;
    uint64_t now;
    char *customer_id;
    store_login_info_t *info;
    const store_audit_event_t *audit;
};

static int login_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct login_ctx *c = arg;
    const store_identity_t *id = c->id;
    char ikey[1024], email[MAX_EMAIL + 1];
    size_t iklen = identity_key(id->provider, id->subject, ikey, sizeof(ikey));
    MDB_val key = {iklen, ikey}, val;
    json_t *cust = NULL, *ident;
    size_t linked;
    int rc, verified = id->email != NULL && id->email_verified && strlen(id->email) <= MAX_EMAIL;

    if (iklen == 0)
        return EINVAL;
    memset(c->info, 0, sizeof(*c->info));
    if (verified)
        lower_email(id->email, email, sizeof(email));
    rc = mdb_get(txn, st->identities, &key, &val);
    if (rc == 0) {
        if (val.mv_size != STORE_ID_LEN)
            return EIO;
        memcpy(c->customer_id, val.mv_data, STORE_ID_LEN);
        c->customer_id[STORE_ID_LEN] = '\0';
        if (c->opts->link_to != NULL && strcmp(c->opts->link_to, c->customer_id) != 0) {
            /* the identity already belongs to someone else: nothing changes */
            memcpy(c->info->conflict_customer, c->customer_id, STORE_ID_LEN + 1);
            return -1;
        }
        c->info->result = STORE_LOGIN_RETURNING;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    } else if (c->opts->link_to != NULL) {
        memcpy(c->customer_id, c->opts->link_to, STORE_ID_LEN);
        c->customer_id[STORE_ID_LEN] = '\0';
        c->info->result = STORE_LOGIN_LINKED;
    } else {
        c->info->result = STORE_LOGIN_CREATED;
        if (c->opts->auto_link_verified_email) {
            if (!verified) {
                c->info->auto_link_skipped = id->email != NULL ? "unverified_email" : NULL;
            } else if (email_blocked(email, c->opts->blocked_emails)) {
                c->info->auto_link_skipped = "blocked_email";
            } else {
                MDB_val ek = {strlen(email), email}, ev;
                if (mdb_get(txn, st->emails, &ek, &ev) == 0 && ev.mv_size == STORE_ID_LEN) {
                    json_t *owner = NULL;
                    char owner_id[STORE_ID_LEN + 1];
                    memcpy(owner_id, ev.mv_data, STORE_ID_LEN);
                    owner_id[STORE_ID_LEN] = '\0';
                    if (load_json(txn, st->customers, owner_id, STORE_ID_LEN, &owner) == 0) {
                        /* merge protection: never two identities of one provider by automatic linking */
                        if (find_identity(owner, id->provider, NULL) != NULL) {
                            c->info->auto_link_skipped = "same_provider";
                        } else if (has_verified_email(owner, email)) {
                            memcpy(c->customer_id, owner_id, STORE_ID_LEN + 1);
                            c->info->result = STORE_LOGIN_AUTO_LINKED;
                        }
                    }
                    json_decref(owner);
                }
            }
        }
        if (c->info->result == STORE_LOGIN_CREATED)
            new_customer_id(c->customer_id);
    }
    if (c->info->result != STORE_LOGIN_CREATED) {
        if ((rc = load_json(txn, st->customers, c->customer_id, STORE_ID_LEN, &cust)) != 0)
            return rc == MDB_NOTFOUND && c->info->result == STORE_LOGIN_LINKED ? EINVAL : rc;
        /* the finding index as the record was: put back below as it will be (an email may change) */
        if ((rc = email_index_drop(st, txn, cust, c->customer_id)) != 0) {
            json_decref(cust);
            return rc;
        }
    } else {
        cust = json_pack("{s:s, s:I, s:I, s:I, s:[], s:[], s:{}, s:{}}", "id", c->customer_id, "created_ms",
                         (json_int_t)c->now, "first_seen_ms", (json_int_t)c->now, "last_seen_ms", (json_int_t)c->now,
                         "identities", "channels_seen", "attributes", "profile");
        if (cust == NULL)
            return ENOMEM;
    }
    if (c->info->result != STORE_LOGIN_RETURNING) {
        val.mv_size = STORE_ID_LEN;
        val.mv_data = c->customer_id;
        if ((rc = mdb_put(txn, st->identities, &key, &val, MDB_NOOVERWRITE)) != 0) {
            json_decref(cust);
            return rc;
        }
    }

    /* the identity's own fields: its provider's latest answer wins */
    if ((ident = find_identity(cust, id->provider, id->subject)) == NULL) {
        /* how it came to this customer (identities stored before this field read as unknown) */
        ident = json_pack("{s:s, s:s, s:I, s:s}", "provider", id->provider, "subject", id->subject, "linked_at_ms",
                          (json_int_t)c->now, "linked_by",
                          c->info->result == STORE_LOGIN_LINKED        ? "explicit_link"
                          : c->info->result == STORE_LOGIN_AUTO_LINKED ? "verified_email"
                                                                       : "first_sign_in");
        json_array_append_new(json_object_get(cust, "identities"), ident);
    }
    set_opt_string(ident, "email", id->email);
    json_object_set_new(ident, "email_verified", json_boolean(id->email != NULL && id->email_verified));
    set_opt_string(ident, "name", id->name);
    set_opt_string(ident, "picture", id->picture);
    json_object_set_new(ident, "last_login_ms", json_integer((json_int_t)c->now));

    /* the customer's profile: latest sign-in's name and picture; the latest VERIFIED email */
    {
        json_t *profile = json_object_get(cust, "profile");
        if (!json_is_object(profile)) {
            profile = json_object();
            json_object_set_new(cust, "profile", profile);
        }
        if (id->name != NULL)
            json_object_set_new(profile, "name", json_string(id->name));
        if (id->picture != NULL)
            json_object_set_new(profile, "picture", json_string(id->picture));
        if (verified || (id->email != NULL && !json_is_true(json_object_get(profile, "email_verified")))) {
            json_object_set_new(profile, "email", json_string(id->email));
            json_object_set_new(profile, "email_verified", json_boolean(verified));
        }
    }
    linked = json_array_size(json_object_get(cust, "identities"));
    {
        /* a sign-in is seen on its channel, as a touchpoint is (store_profile.c) */
        store_seen_t seen;
        store_seen_reset(&seen);
        store_seen_add(&seen, c->opts->channel, NULL, NULL, c->now);
        store_profile_seen(cust, &seen, 0);
    }
    rc = put_json(txn, st->customers, c->customer_id, STORE_ID_LEN, cust);
    if (rc == 0)
        rc = email_index_put(st, txn, cust, c->customer_id);
    json_decref(cust);
    /* a link: the customer's sessions count one identity more from now on */
    if (rc == 0 && (c->info->result == STORE_LOGIN_LINKED || c->info->result == STORE_LOGIN_AUTO_LINKED))
        rc = sessions_follow_identities(st, txn, c->customer_id, NULL, NULL, linked, NULL);
    if (rc != 0)
        return rc;
    if (verified) {
        /* the verified-email index: the first customer to prove an address keeps it */
        MDB_val ek = {strlen(email), email};
        val.mv_size = STORE_ID_LEN;
        val.mv_data = c->customer_id;
        rc = mdb_put(txn, st->emails, &ek, &val, MDB_NOOVERWRITE);
        if (rc != 0 && rc != MDB_KEYEXIST)
            return rc;
    }
    if (c->audit != NULL) {
        /* the login and what it changed, in the same transaction as the change */
        store_audit_event_t ev = *c->audit;
        ev.customer_id = c->customer_id;
        if ((rc = audit_append(st, txn, &ev, c->now)) != 0)
            return rc;
        ev.reason = NULL;
        ev.outcome = "success";
        if (c->info->result == STORE_LOGIN_CREATED) {
            ev.event = "customer_created";
            if ((rc = audit_append(st, txn, &ev, c->now)) != 0)
                return rc;
        } else if (c->info->result == STORE_LOGIN_AUTO_LINKED || c->info->result == STORE_LOGIN_LINKED) {
            ev.event = "identity_linked";
            ev.reason = c->info->result == STORE_LOGIN_LINKED ? "explicit" : "verified_email";
            if ((rc = audit_append(st, txn, &ev, c->now)) != 0)
                return rc;
        }
        if (c->info->auto_link_skipped != NULL) {
            ev.event = "auto_link_skipped";
            ev.outcome = "skipped";
            ev.reason = c->info->auto_link_skipped;
            if ((rc = audit_append(st, txn, &ev, c->now)) != 0)
                return rc;
        }
    }
    return 0;
}

gw_status_t store_login(store_t *st, const store_identity_t *id, const store_login_opts_t *opts, uint64_t now_ms,
                        char *customer_id, store_login_info_t *info, const store_audit_event_t *audit)
{
    struct login_ctx c = {id, opts, now_ms, customer_id, info, audit};
    return store_with_write(st, login_txn, &c);
}

/* ------------------------------------------------------------------ unlink and erasure */

/* drops index entries of an identity (its key, and its email when no other identity proves it) */
static int drop_identity_indexes(store_t *st, MDB_txn *txn, json_t *cust, json_t *ident, const char *customer_id)
{
    char ikey[1024], email[MAX_EMAIL + 1];
    const char *p = json_string_value(json_object_get(ident, "provider"));
    const char *s = json_string_value(json_object_get(ident, "subject"));
    const char *e = json_string_value(json_object_get(ident, "email"));
    size_t iklen = p != NULL && s != NULL ? identity_key(p, s, ikey, sizeof(ikey)) : 0;
    MDB_val key = {iklen, ikey}, val;
    int rc;

    if (iklen > 0 && (rc = mdb_del(txn, st->identities, &key, NULL)) != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (e != NULL && json_is_true(json_object_get(ident, "email_verified")) && strlen(e) <= MAX_EMAIL) {
        int still = 0;
        json_t *other;
        size_t i;
        json_array_foreach(json_object_get(cust, "identities"), i, other)
        {
            const char *oe = json_string_value(json_object_get(other, "email"));
            if (other != ident && oe != NULL && json_is_true(json_object_get(other, "email_verified")) &&
                strcasecmp(oe, e) == 0)
                still = 1;
        }
        lower_email(e, email, sizeof(email));
        key.mv_size = strlen(email);
        key.mv_data = email;
        if (!still && mdb_get(txn, st->emails, &key, &val) == 0 && val.mv_size == STORE_ID_LEN &&
            memcmp(val.mv_data, customer_id, STORE_ID_LEN) == 0 && (rc = mdb_del(txn, st->emails, &key, NULL)) != 0)
            return rc;
    }
    return 0;
}

/*
 * After the customer's identities changed inside txn: ends every session of the customer that was
 * made through (provider, subject) (both NULL: none) and writes the current number of identities
 * into the others' linked_providers, so policies see the customer as it is now. Bumps the session
 * generation when anything changed, so every thread's cache (of every process) reads again.
 */
static int sessions_follow_identities(store_t *st, MDB_txn *txn, const char *customer_id, const char *provider,
                                      const char *subject, size_t linked, unsigned *ended)
{
    MDB_val key = {STORE_ID_LEN, (void *)customer_id}, val;
    MDB_cursor *cur;
    uint8_t(*hashes)[32] = NULL;
    size_t n = 0, cap = 0;
    int rc, changed = 0;

    /* the hashes first: the index changes below, and a cursor must not walk what it deletes */
    if ((rc = mdb_cursor_open(txn, st->customer_sessions, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_DUP)) {
        if (val.mv_size != 32)
            continue;
        if (n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            void *bigger = realloc(hashes, ncap * 32);
            if (bigger == NULL) {
                rc = ENOMEM;
                break;
            }
            hashes = bigger;
            cap = ncap;
        }
        memcpy(hashes[n++], val.mv_data, 32);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        free(hashes);
        return rc;
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; ++i) {
        MDB_val sk = {32, hashes[i]}, ck = {STORE_ID_LEN, (void *)customer_id}, cv = {32, hashes[i]};
        json_t *s = NULL;
        const char *sp, *ss;
        if ((rc = load_json(txn, st->sessions, hashes[i], 32, &s)) == MDB_NOTFOUND) {
            /* an index entry left without its session: dropped on the way */
            rc = mdb_del(txn, st->customer_sessions, &ck, &cv);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
            continue;
        }
        if (rc != 0)
            break;
        sp = json_string_value(json_object_get(s, "provider"));
        ss = json_string_value(json_object_get(s, "subject"));
        if (provider != NULL && sp != NULL && strcmp(sp, provider) == 0 &&
            (subject == NULL || (ss != NULL && strcmp(ss, subject) == 0))) {
            if ((rc = mdb_del(txn, st->sessions, &sk, NULL)) == 0 &&
                (rc = mdb_del(txn, st->customer_sessions, &ck, &cv)) == MDB_NOTFOUND)
                rc = 0;
            if (ended != NULL)
                ++*ended;
            changed = 1;
        } else if ((size_t)json_integer_value(json_object_get(s, "linked_providers")) != linked) {
            json_object_set_new(s, "linked_providers", json_integer((json_int_t)linked));
            rc = put_json(txn, st->sessions, hashes[i], 32, s);
            changed = 1;
        }
        json_decref(s);
    }
    free(hashes);
    if (rc == 0 && changed)
        rc = store_bump_session_generation(st, txn);
    return rc;
}

struct unlink_ctx {
    const char *customer_id, *provider;
    uint64_t now;
    gw_status_t why;
    const store_audit_event_t *audit;
    unsigned sessions_ended;
};

static int unlink_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct unlink_ctx *c = arg;
    json_t *cust = NULL, *idents, *ident;
    size_t i, found = SIZE_MAX;
    int rc;

    if ((rc = load_json(txn, st->customers, c->customer_id, STORE_ID_LEN, &cust)) != 0)
        return rc;
    idents = json_object_get(cust, "identities");
    json_array_foreach(idents, i, ident)
    {
        const char *p = json_string_value(json_object_get(ident, "provider"));
        if (p != NULL && strcmp(p, c->provider) == 0) {
            found = i;
            break;
        }
    }
    if (found == SIZE_MAX || json_array_size(idents) < 2) {
        c->why = found == SIZE_MAX ? GW_ENOTFOUND : GW_EDENIED;
        json_decref(cust);
        return -1;
    }
    ident = json_array_get(idents, found);
    if ((rc = drop_identity_indexes(st, txn, cust, ident, c->customer_id)) == 0 &&
        (rc = email_index_drop(st, txn, cust, c->customer_id)) == 0) {
        /* the subject outlives the removal from the array: the customer record holds it */
        json_t *gone = json_incref(ident);
        json_array_remove(idents, found);
        if ((rc = put_json(txn, st->customers, c->customer_id, STORE_ID_LEN, cust)) == 0 &&
            (rc = email_index_put(st, txn, cust, c->customer_id)) == 0)
            rc = sessions_follow_identities(st, txn, c->customer_id, c->provider,
                                            json_string_value(json_object_get(gone, "subject")),
                                            json_array_size(idents), &c->sessions_ended);
        json_decref(gone);
    }
    json_decref(cust);
    if (rc == 0 && c->audit != NULL)
        rc = audit_append(st, txn, c->audit, c->now);
    return rc;
}

gw_status_t store_unlink(store_t *st, const char *customer_id, const char *provider, uint64_t now_ms,
                         const store_audit_event_t *audit)
{
    struct unlink_ctx c = {customer_id, provider, now_ms, GW_OK, audit, 0};
    gw_status_t s = store_with_write(st, unlink_txn, &c);
    return s == GW_EDENIED ? c.why : s;
}

/* erases everything of a customer inside txn */
static int erase_customer(store_t *st, MDB_txn *txn, const char *customer_id, unsigned *sessions)
{
    json_t *cust = NULL, *ident;
    MDB_val key = {STORE_ID_LEN, (void *)customer_id}, val;
    MDB_cursor *cur;
    size_t i;
    int rc;

    if ((rc = load_json(txn, st->customers, customer_id, STORE_ID_LEN, &cust)) != 0)
        return rc;
    json_array_foreach(json_object_get(cust, "identities"), i, ident)
    {
        if ((rc = drop_identity_indexes(st, txn, cust, ident, customer_id)) != 0) {
            json_decref(cust);
            return rc;
        }
    }
    rc = email_index_drop(st, txn, cust, customer_id);
    json_decref(cust);
    if (rc != 0)
        return rc;
    /* every session of the customer, through the index */
    if ((rc = mdb_cursor_open(txn, st->customer_sessions, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
    while (rc == 0) {
        MDB_val sk = {val.mv_size, val.mv_data};
        int drc = mdb_del(txn, st->sessions, &sk, NULL);
        if (drc != 0 && drc != MDB_NOTFOUND) {
            mdb_cursor_close(cur);
            return drc;
        }
        ++*sessions;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_DUP);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    key.mv_size = STORE_ID_LEN;
    key.mv_data = (void *)customer_id;
    if ((rc = mdb_del(txn, st->customer_sessions, &key, NULL)) != 0 && rc != MDB_NOTFOUND)
        return rc;
    /* the customer's touchpoints, merged or not */
    if ((rc = store_tp_erase_customer(st, txn, customer_id)) != 0 || (rc = store_bump_session_generation(st, txn)) != 0)
        return rc;
    if ((rc = store_profile_seen_delete(st, txn, customer_id)) != 0)
        return rc;
    key.mv_size = STORE_ID_LEN;
    key.mv_data = (void *)customer_id;
    return mdb_del(txn, st->customers, &key, NULL);
}

struct erase_ctx {
    const char *customer_id;
    unsigned sessions;
    const store_audit_event_t *audit;
};

static int delete_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct erase_ctx *c = arg;
    int rc;
    c->sessions = 0;
    rc = erase_customer(st, txn, c->customer_id, &c->sessions);
    if (rc == 0 && c->audit != NULL) {
        /* the record keeps the pseudonymous id and nothing personal */
        store_audit_event_t ev = *c->audit;
        ev.customer_id = c->customer_id;
        ev.subject = NULL;
        rc = audit_append(st, txn, &ev, now_ms_store());
    }
    return rc;
}

gw_status_t store_customer_delete(store_t *st, const char *customer_id, unsigned *sessions_removed,
                                  const store_audit_event_t *audit)
{
    struct erase_ctx c = {customer_id, 0, audit};
    gw_status_t s;

    if (strlen(customer_id) != STORE_ID_LEN)
        return GW_ENOTFOUND;
    s = store_with_write(st, delete_txn, &c);
    if (s == GW_OK && sessions_removed != NULL)
        *sessions_removed = c.sessions;
    return s;
}

struct identity_erase_ctx {
    const char *provider, *subject;
    char *customer_id;
    int customer_erased;
    const store_audit_event_t *audit;
};

static int identity_erase_inner(store_t *st, MDB_txn *txn, struct identity_erase_ctx *c);

static int identity_erase_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct identity_erase_ctx *c = arg;
    int rc = identity_erase_inner(st, txn, c);
    if (rc == 0 && c->audit != NULL) {
        store_audit_event_t ev = *c->audit;
        ev.customer_id = c->customer_id;
        ev.reason = c->customer_erased ? "customer_erased" : "identity_erased";
        rc = audit_append(st, txn, &ev, now_ms_store());
    }
    return rc;
}

static int identity_erase_inner(store_t *st, MDB_txn *txn, struct identity_erase_ctx *c)
{
    char ikey[1024];
    size_t iklen = identity_key(c->provider, c->subject, ikey, sizeof(ikey));
    MDB_val key = {iklen, ikey}, val;
    json_t *cust = NULL, *idents, *ident;
    size_t i;
    int rc;
    unsigned sessions = 0;

    c->customer_erased = 0;
    if (iklen == 0)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, st->identities, &key, &val)) != 0)
        return rc;
    if (val.mv_size != STORE_ID_LEN)
        return EIO;
    memcpy(c->customer_id, val.mv_data, STORE_ID_LEN);
    c->customer_id[STORE_ID_LEN] = '\0';
    if ((rc = load_json(txn, st->customers, c->customer_id, STORE_ID_LEN, &cust)) != 0)
        return rc;
    idents = json_object_get(cust, "identities");
    if (json_array_size(idents) <= 1) {
        json_decref(cust);
        c->customer_erased = 1;
        return erase_customer(st, txn, c->customer_id, &sessions);
    }
    rc = 0;
    for (i = 0; i < json_array_size(idents); ++i) {
        ident = json_array_get(idents, i);
        const char *p = json_string_value(json_object_get(ident, "provider"));
        const char *s = json_string_value(json_object_get(ident, "subject"));
        if (p != NULL && s != NULL && strcmp(p, c->provider) == 0 && strcmp(s, c->subject) == 0) {
            if ((rc = drop_identity_indexes(st, txn, cust, ident, c->customer_id)) == 0 &&
                (rc = email_index_drop(st, txn, cust, c->customer_id)) == 0) {
                json_array_remove(idents, i);
                if ((rc = put_json(txn, st->customers, c->customer_id, STORE_ID_LEN, cust)) == 0 &&
                    (rc = email_index_put(st, txn, cust, c->customer_id)) == 0)
                    rc = sessions_follow_identities(st, txn, c->customer_id, c->provider, c->subject,
                                                    json_array_size(idents), &sessions);
            }
            break;
        }
    }
    json_decref(cust);
    return rc;
}

gw_status_t store_identity_erase(store_t *st, const char *provider, const char *subject, char *customer_id,
                                 int *customer_erased, const store_audit_event_t *audit)
{
    struct identity_erase_ctx c = {provider, subject, customer_id, 0, audit};
    gw_status_t s = store_with_write(st, identity_erase_txn, &c);
    if (s == GW_OK)
        *customer_erased = c.customer_erased;
    return s;
}

/* ------------------------------------------------------------------ reads */

gw_status_t store_customer_get(store_t *st, const char *customer_id, json_t **out)
{
    if (strlen(customer_id) != STORE_ID_LEN)
        return GW_ENOTFOUND;
    return get_json(st, st->customers, customer_id, STORE_ID_LEN, out);
}

gw_status_t store_customer_by_email(store_t *st, const char *email, char *customer_id)
{
    char lower[MAX_EMAIL + 1];
    if (strlen(email) > MAX_EMAIL)
        return GW_ENOTFOUND;
    lower_email(email, lower, sizeof(lower));
    return get_id(st, st->emails, lower, strlen(lower), customer_id);
}

gw_status_t store_customer_by_identity(store_t *st, const char *provider, const char *subject, char *customer_id)
{
    char ikey[1024];
    size_t n = identity_key(provider, subject, ikey, sizeof(ikey));
    return n == 0 ? GW_ENOTFOUND : get_id(st, st->identities, ikey, n, customer_id);
}

/* adds cid (STORE_ID_LEN bytes) to the answer unless it is there already */
static void found_add(char (*ids)[STORE_ID_LEN + 1], size_t max, size_t *n, const void *cid)
{
    for (size_t i = 0; i < *n; ++i)
        if (memcmp(ids[i], cid, STORE_ID_LEN) == 0)
            return;
    if (*n < max) {
        memcpy(ids[*n], cid, STORE_ID_LEN);
        ids[(*n)++][STORE_ID_LEN] = '\0';
    }
}

gw_status_t store_customers_find(store_t *st, const char *query, char (*ids)[STORE_ID_LEN + 1], size_t max, size_t *n)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    const char *colon;
    size_t qlen;
    int rc = 0;

    *n = 0;
    if (query == NULL || (qlen = strlen(query)) == 0 || qlen > STORE_FIND_QUERY_MAX)
        return GW_EINVAL;
    if ((rc = store_read_begin(st, &txn)) != 0)
        return store_from_mdb(rc);
    if (gw_customer_id_ok(query, strlen(query))) {
        k.mv_size = STORE_ID_LEN;
        k.mv_data = (void *)query;
        if ((rc = mdb_get(txn, st->customers, &k, &v)) == 0)
            found_add(ids, max, n, query);
        else if (rc != MDB_NOTFOUND)
            goto Exit;
    }
    if ((colon = strchr(query, ':')) != NULL && colon > query && colon[1] != '\0') {
        char ikey[1024];
        size_t plen = (size_t)(colon - query), slen = qlen - plen - 1;
        if (plen + 1 + slen <= sizeof(ikey)) {
            memcpy(ikey, query, plen);
            ikey[plen] = '\0';
            memcpy(ikey + plen + 1, colon + 1, slen);
            k.mv_size = plen + 1 + slen;
            k.mv_data = ikey;
            if ((rc = mdb_get(txn, st->identities, &k, &v)) == 0 && v.mv_size == STORE_ID_LEN)
                found_add(ids, max, n, v.mv_data);
            else if (rc != 0 && rc != MDB_NOTFOUND)
                goto Exit;
        }
    }
    if (strchr(query, '@') != NULL && qlen <= MAX_EMAIL) {
        /* every entry under "email\0": one per customer carrying the address */
        char prefix[MAX_EMAIL + 1];
        lower_email(query, prefix, sizeof(prefix));
        k.mv_size = qlen + 1; /* with its NUL: "a@x" never finds "a@x.org" */
        k.mv_data = prefix;
        if ((rc = mdb_cursor_open(txn, st->identity_emails, &cur)) != 0)
            goto Exit;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *n < max;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < qlen + 1 || memcmp(k.mv_data, prefix, qlen + 1) != 0)
                break;
            if (k.mv_size == qlen + 1 + STORE_ID_LEN)
                found_add(ids, max, n, (const char *)k.mv_data + qlen + 1);
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto Exit;
    }
    rc = 0;
Exit:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(st, txn);
    return store_from_mdb(rc);
}

gw_status_t store_customers_foreach(store_t *st, int (*cb)(json_t *customer, void *ctx), void *ctx)
{
    return foreach_json(st, st->customers, NULL, cb, ctx);
}

struct after_ctx {
    const char *after;
    int (*cb)(json_t *, void *);
    void *ctx;
};

static int skip_after(json_t *customer, void *arg)
{
    struct after_ctx *a = arg;
    const char *id = json_string_value(json_object_get(customer, "id"));
    /* SET_RANGE lands on after_id itself when it still exists: it was done */
    if (id != NULL && strcmp(id, a->after) == 0)
        return 0;
    return a->cb(customer, a->ctx);
}

gw_status_t store_customers_foreach_after(store_t *st, const char *after_id, int (*cb)(json_t *customer, void *ctx),
                                          void *ctx)
{
    struct after_ctx a = {after_id, cb, ctx};
    MDB_val k;

    if (after_id == NULL || after_id[0] == '\0')
        return foreach_json(st, st->customers, NULL, cb, ctx);
    k.mv_size = strlen(after_id);
    k.mv_data = (void *)after_id;
    return foreach_json(st, st->customers, &k, skip_after, &a);
}

gw_status_t store_count_customers(store_t *st, uint64_t *count)
{
    MDB_txn *txn = NULL;
    MDB_stat stat;
    int rc;

    pthread_rwlock_rdlock(&st->resize);
    if ((rc = txn_begin(st, MDB_RDONLY, &txn)) == 0) {
        if ((rc = mdb_stat(txn, st->customers, &stat)) == 0)
            *count = stat.ms_entries;
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&st->resize);
    return store_from_mdb(rc);
}

/* ------------------------------------------------------------------ sessions */

struct session_ctx {
    const uint8_t *hash;
    json_t *session;
    const store_audit_event_t *audit;
};

static int session_put_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct session_ctx *c = arg;
    const char *cid = json_string_value(json_object_get(c->session, "customer_id"));
    int rc = put_json(txn, st->sessions, c->hash, 32, c->session);
    if (rc == 0 && cid != NULL && strlen(cid) == STORE_ID_LEN) {
        MDB_val k = {STORE_ID_LEN, (void *)cid}, v = {32, (void *)c->hash};
        rc = mdb_put(txn, st->customer_sessions, &k, &v, MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST)
            rc = 0;
    }
    return rc;
}

gw_status_t store_session_put(store_t *st, const uint8_t token_hash[32], json_t *session)
{
    struct session_ctx c = {token_hash, session, NULL};
    return store_with_write(st, session_put_txn, &c);
}

gw_status_t store_session_get(store_t *st, const uint8_t token_hash[32], json_t **out)
{
    return get_json(st, st->sessions, token_hash, 32, out);
}

static int session_delete_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct session_ctx *c = arg;
    json_t *s = NULL;
    MDB_val key = {32, (void *)c->hash};
    int rc = load_json(txn, st->sessions, c->hash, 32, &s);

    if (rc != 0)
        return rc;
    {
        const char *cid = json_string_value(json_object_get(s, "customer_id"));
        if (cid != NULL && strlen(cid) == STORE_ID_LEN) {
            MDB_val k = {STORE_ID_LEN, (void *)cid}, v = {32, (void *)c->hash};
            int drc = mdb_del(txn, st->customer_sessions, &k, &v);
            if (drc != 0 && drc != MDB_NOTFOUND) {
                json_decref(s);
                return drc;
            }
        }
    }
    if (c->audit != NULL) {
        store_audit_event_t ev = *c->audit;
        ev.customer_id = json_string_value(json_object_get(s, "customer_id"));
        ev.provider = json_string_value(json_object_get(s, "provider"));
        if ((rc = audit_append(st, txn, &ev, now_ms_store())) != 0) {
            json_decref(s);
            return rc;
        }
    }
    json_decref(s);
    if ((rc = store_bump_session_generation(st, txn)) != 0)
        return rc;
    return mdb_del(txn, st->sessions, &key, NULL);
}

gw_status_t store_session_delete(store_t *st, const uint8_t token_hash[32], const store_audit_event_t *audit)
{
    struct session_ctx c = {token_hash, NULL, audit};
    return store_with_write(st, session_delete_txn, &c);
}

gw_status_t store_customer_sessions(store_t *st, const char *customer_id,
                                    int (*cb)(const uint8_t token_hash[32], json_t *session, void *ctx), void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key = {STORE_ID_LEN, (void *)customer_id}, val;
    int rc;

    if (strlen(customer_id) != STORE_ID_LEN)
        return GW_OK; /* no such customer: no sessions */
    if ((rc = store_read_begin(st, &txn)) != 0)
        return store_from_mdb(rc);
    if ((rc = mdb_cursor_open(txn, st->customer_sessions, &cur)) != 0)
        goto Exit;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT_DUP)) {
        MDB_val sk, sv;
        json_t *s;
        int stop;
        if (val.mv_size != 32)
            continue;
        sk.mv_size = 32;
        sk.mv_data = val.mv_data;
        /* an index entry whose session is gone (or unreadable) is no session: the next write drops it */
        if ((rc = mdb_get(txn, st->sessions, &sk, &sv)) == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            break;
        if ((s = json_loadb(sv.mv_data, sv.mv_size, 0, NULL)) == NULL)
            continue;
        stop = cb(val.mv_data, s, ctx);
        json_decref(s);
        if (stop) {
            rc = MDB_NOTFOUND;
            break;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
Exit:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(st, txn);
    return store_from_mdb(rc);
}

gw_status_t store_unlink_counted(store_t *st, const char *customer_id, const char *provider, uint64_t now_ms,
                                 const store_audit_event_t *audit, unsigned *sessions_ended)
{
    struct unlink_ctx c = {customer_id, provider, now_ms, GW_OK, audit, 0};
    gw_status_t s = strlen(customer_id) == STORE_ID_LEN ? store_with_write(st, unlink_txn, &c) : GW_ENOTFOUND;

    if (s == GW_OK && sessions_ended != NULL)
        *sessions_ended = c.sessions_ended;
    return s == GW_EDENIED ? c.why : s;
}

/* ------------------------------------------------------------------ purge */

#define PURGE_SCAN 4096 /* sessions read per read transaction */
#define PURGE_BATCH 512 /* sessions deleted per write transaction: sign-ins wait for no longer */

/* whether a session can never be used again at now (what the request path refuses, and unreadable records) */
static int session_expired(json_t *s, uint64_t now)
{
    json_int_t expires = json_integer_value(json_object_get(s, "expires_ms"));
    json_int_t seen = json_integer_value(json_object_get(s, "last_seen_ms"));
    json_int_t idle = json_integer_value(json_object_get(s, "idle_timeout_ms"));

    if (s == NULL || expires <= 0 || (uint64_t)expires <= now)
        return 1;
    return idle > 0 && seen >= 0 && (uint64_t)seen + (uint64_t)idle <= now;
}

struct purge_ctx {
    uint8_t (*hashes)[32];
    size_t n;
    uint64_t now, purged;
};

static int purge_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct purge_ctx *c = arg;
    int rc = 0;

    c->purged = 0;
    for (size_t i = 0; i < c->n && rc == 0; ++i) {
        MDB_val sk = {32, c->hashes[i]};
        json_t *s = NULL;
        const char *cid;
        /* again inside the write transaction: a request may have used the session since it was read */
        if ((rc = load_json(txn, st->sessions, c->hashes[i], 32, &s)) == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc == EIO)
            rc = 0; /* unreadable: s is NULL, and such a record is purged */
        if (rc != 0 || !session_expired(s, c->now)) {
            json_decref(s);
            continue;
        }
        cid = json_string_value(json_object_get(s, "customer_id"));
        if (cid != NULL && strlen(cid) == STORE_ID_LEN) {
            MDB_val ck = {STORE_ID_LEN, (void *)cid}, cv = {32, c->hashes[i]};
            if ((rc = mdb_del(txn, st->customer_sessions, &ck, &cv)) == MDB_NOTFOUND)
                rc = 0;
        }
        json_decref(s);
        if (rc == 0 && (rc = mdb_del(txn, st->sessions, &sk, NULL)) == 0)
            ++c->purged;
    }
    if (rc == 0 && c->purged > 0)
        rc = store_bump_session_generation(st, txn);
    return rc;
}

gw_status_t store_sessions_purge(store_t *st, uint64_t now_ms, uint64_t *purged)
{
    struct purge_ctx c = {NULL, 0, now_ms, 0};
    uint8_t from[32];
    int more = 1, started = 0;
    gw_status_t status = GW_OK;

    if (purged != NULL)
        *purged = 0;
    if ((c.hashes = malloc((size_t)PURGE_BATCH * 32)) == NULL)
        return GW_ENOMEM;
    /* reads find candidates in short read transactions; each batch is deleted in its own write */
    while (more && status == GW_OK) {
        MDB_txn *txn;
        MDB_cursor *cur = NULL;
        MDB_val k = {32, from}, v;
        size_t scanned = 0;
        int rc;

        c.n = 0;
        if ((rc = store_read_begin(st, &txn)) != 0) {
            status = store_from_mdb(rc);
            break;
        }
        if ((rc = mdb_cursor_open(txn, st->sessions, &cur)) == 0) {
            rc = mdb_cursor_get(cur, &k, &v, started ? MDB_SET_RANGE : MDB_FIRST);
            /* from is the last key of the previous round: already seen */
            if (rc == 0 && started && k.mv_size == 32 && memcmp(k.mv_data, from, 32) == 0)
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            for (; rc == 0 && scanned < PURGE_SCAN && c.n < PURGE_BATCH; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
                json_t *s;
                ++scanned;
                if (k.mv_size != 32)
                    continue;
                memcpy(from, k.mv_data, 32);
                s = json_loadb(v.mv_data, v.mv_size, 0, NULL);
                if (session_expired(s, now_ms))
                    memcpy(c.hashes[c.n++], k.mv_data, 32);
                json_decref(s);
            }
            more = rc == 0;
            if (rc == MDB_NOTFOUND)
                rc = 0;
            mdb_cursor_close(cur);
        }
        store_read_end(st, txn);
        started = 1;
        if (rc != 0) {
            status = store_from_mdb(rc);
            break;
        }
        if (c.n > 0 && (status = store_with_write(st, purge_txn, &c)) == GW_OK && purged != NULL)
            *purged += c.purged;
    }
    free(c.hashes);
    return status;
}

/* ------------------------------------------------------------------ deletions */

struct deletion_ctx {
    const char *code;
    json_t *status;
};

static int deletion_put_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct deletion_ctx *c = arg;
    return put_json(txn, st->deletions, c->code, strlen(c->code), c->status);
}

gw_status_t store_deletion_put(store_t *st, const char *code, json_t *status)
{
    struct deletion_ctx c = {code, status};
    return store_with_write(st, deletion_put_txn, &c);
}

gw_status_t store_deletion_get(store_t *st, const char *code, json_t **out)
{
    return get_json(st, st->deletions, code, strlen(code), out);
}

uint64_t store_generation(store_t *st)
{
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) != 0)
        return 0;
    return (uint64_t)info.me_last_txnid;
}

int store_read_begin(store_t *st, MDB_txn **txn)
{
    int rc;
    pthread_rwlock_rdlock(&st->resize);
    if ((rc = txn_begin(st, MDB_RDONLY, txn)) != 0) {
        pthread_rwlock_unlock(&st->resize);
        *txn = NULL;
    }
    return rc;
}

void store_read_end(store_t *st, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&st->resize);
}

#define SESSION_GEN_KEY "session_gen"

int store_bump_session_generation(store_t *st, MDB_txn *txn)
{
    MDB_val key = {sizeof(SESSION_GEN_KEY) - 1, SESSION_GEN_KEY}, val;
    uint8_t v[8];
    uint64_t cur = 0;
    if (mdb_get(txn, st->meta, &key, &val) == 0 && val.mv_size == 8)
        cur = store_from_be64(val.mv_data);
    store_be64(cur + 1, v);
    val.mv_size = 8;
    val.mv_data = v;
    return mdb_put(txn, st->meta, &key, &val, 0);
}

uint64_t store_session_generation(store_t *st)
{
    uint64_t txnid = store_generation(st);
    MDB_txn *txn;
    MDB_val key = {sizeof(SESSION_GEN_KEY) - 1, SESSION_GEN_KEY}, val;
    uint64_t gen = 0;

    /* the common case: nothing committed since the counter was last read (no transaction needed) */
    if (txnid == atomic_load(&st->sgen_txnid) && txnid != 0)
        return atomic_load(&st->sgen_value);
    if (store_read_begin(st, &txn) != 0)
        return txnid; /* cannot read it: report something that changes, so caches do not trust old reads */
    if (mdb_get(txn, st->meta, &key, &val) == 0 && val.mv_size == 8)
        gen = store_from_be64(val.mv_data);
    txnid = (uint64_t)mdb_txn_id(txn);
    store_read_end(st, txn);
    /*
     * Only ever forward, value before txnid, under a lock: a reader that finds the txnid it
     * expects then reads that value or a newer one, never an older one.
     */
    pthread_mutex_lock(&st->sgen_lock);
    if (txnid > atomic_load(&st->sgen_txnid)) {
        atomic_store(&st->sgen_value, gen);
        atomic_store(&st->sgen_txnid, txnid);
    }
    pthread_mutex_unlock(&st->sgen_lock);
    return gen;
}

gw_status_t store_set_durable(store_t *st, int durable)
{
    int rc = mdb_env_set_flags(st->env, MDB_NOSYNC, durable ? 0 : 1);
    if (rc == 0 && durable)
        rc = mdb_env_sync(st->env, 1);
    return store_from_mdb(rc);
}
