#include "store.h"

#include "crypto.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MODULE "store"
#define MAX_RECORD (1024 * 1024)

struct store {
    MDB_env *env;
    MDB_dbi meta, customers, identities, emails, sessions;
};

static gw_status_t from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return GW_OK;
    case MDB_NOTFOUND:
        return GW_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
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

gw_status_t store_open(const char *path, uint64_t map_size_mb, store_t **out)
{
    store_t *st = calloc(1, sizeof(*st));
    MDB_txn *txn = NULL;
    MDB_val key = {6, "format"}, val;
    int rc, dead = 0;
    gw_status_t status = GW_EIO;

    if (st == NULL)
        return GW_ENOMEM;
    if (mkdir_p(path) != 0) {
        GW_LOG_ERR(MODULE, "cannot create store directory %s: %s", path, strerror(errno));
        goto Exit;
    }
    if ((rc = mdb_env_create(&st->env)) != 0 || (rc = mdb_env_set_maxdbs(st->env, 16)) != 0 ||
        (rc = mdb_env_set_mapsize(st->env, (size_t)map_size_mb * 1024 * 1024)) != 0 ||
        (rc = mdb_env_set_maxreaders(st->env, 512)) != 0 ||
        /* MDB_NOTLS: read transactions are not tied to a thread's slot, so any loop thread may read */
        (rc = mdb_env_open(st->env, path, MDB_NOTLS, 0600)) != 0) {
        GW_LOG_ERR(MODULE, "cannot open store %s: %s", path, mdb_strerror(rc));
        goto Exit;
    }
    mdb_reader_check(st->env, &dead); /* clear slots of readers that died */
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "customers", MDB_CREATE, &st->customers)) != 0 ||
        (rc = mdb_dbi_open(txn, "identities", MDB_CREATE, &st->identities)) != 0 ||
        (rc = mdb_dbi_open(txn, "emails", MDB_CREATE, &st->emails)) != 0 ||
        (rc = mdb_dbi_open(txn, "sessions", MDB_CREATE, &st->sessions)) != 0) {
        GW_LOG_ERR(MODULE, "cannot open databases in %s: %s", path, mdb_strerror(rc));
        goto Exit;
    }
    rc = mdb_get(txn, st->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        char v[16];
        int n = snprintf(v, sizeof(v), "%d", STORE_FORMAT_VERSION);
        val.mv_size = (size_t)n;
        val.mv_data = v;
        if ((rc = mdb_put(txn, st->meta, &key, &val, 0)) != 0)
            goto Exit;
    } else if (rc == 0) {
        char v[16] = {0};
        long version;
        memcpy(v, val.mv_data, val.mv_size < sizeof(v) - 1 ? val.mv_size : sizeof(v) - 1);
        version = strtol(v, NULL, 10);
        if (version > STORE_FORMAT_VERSION) {
            GW_LOG_ERR(MODULE, "store %s has format %ld, newer than this journeygate (%d): upgrade journeygate", path,
                       version, STORE_FORMAT_VERSION);
            status = GW_EINVAL;
            goto Exit;
        }
    } else {
        goto Exit;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        goto Exit;
    }
    txn = NULL;
    *out = st;
    st = NULL;
    status = GW_OK;
Exit:
    if (txn != NULL)
        mdb_txn_abort(txn);
    store_close(st);
    return status;
}

void store_close(store_t *st)
{
    if (st == NULL)
        return;
    if (st->env != NULL)
        mdb_env_close(st->env);
    free(st);
}

static gw_status_t get_json(store_t *st, MDB_dbi dbi, const void *k, size_t klen, json_t **out)
{
    MDB_txn *txn = NULL;
    MDB_val key = {klen, (void *)k}, val;
    json_error_t jerr;
    int rc;

    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) != 0)
        return from_mdb(rc);
    rc = mdb_get(txn, dbi, &key, &val);
    if (rc == 0) {
        /* the value is only valid inside the transaction: jansson copies it */
        *out = json_loadb(val.mv_data, val.mv_size, 0, &jerr);
        if (*out == NULL)
            rc = EIO;
    }
    mdb_txn_abort(txn);
    return from_mdb(rc);
}

static gw_status_t put_json(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t klen, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    MDB_val key = {klen, (void *)k}, val;
    int rc;

    if (text == NULL)
        return GW_ENOMEM;
    val.mv_size = strlen(text);
    val.mv_data = text;
    rc = val.mv_size > MAX_RECORD ? MDB_BAD_VALSIZE : mdb_put(txn, dbi, &key, &val, 0);
    free(text);
    return from_mdb(rc);
}

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

static void set_opt_string(json_t *obj, const char *key, const char *value)
{
    if (value != NULL)
        json_object_set_new(obj, key, json_string(value));
}

gw_status_t store_login(store_t *st, const store_identity_t *id, uint64_t now_ms, char *customer_id, int *created)
{
    MDB_txn *txn = NULL;
    MDB_val key, val;
    size_t plen = strlen(id->provider), slen = strlen(id->subject);
    char *ikey = NULL;
    json_t *cust = NULL, *idents, *ident = NULL;
    json_error_t jerr;
    int rc, is_new = 0;
    gw_status_t status = GW_EIO;
    size_t i;

    if ((ikey = malloc(plen + 1 + slen)) == NULL)
        return GW_ENOMEM;
    memcpy(ikey, id->provider, plen);
    ikey[plen] = '\0';
    memcpy(ikey + plen + 1, id->subject, slen);
    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
        status = from_mdb(rc);
        goto Exit;
    }
    key.mv_size = plen + 1 + slen;
    key.mv_data = ikey;
    rc = mdb_get(txn, st->identities, &key, &val);
    if (rc == 0) {
        if (val.mv_size != STORE_ID_LEN)
            goto Exit;
        memcpy(customer_id, val.mv_data, STORE_ID_LEN);
        customer_id[STORE_ID_LEN] = '\0';
        key.mv_size = STORE_ID_LEN;
        key.mv_data = customer_id;
        if ((rc = mdb_get(txn, st->customers, &key, &val)) != 0 ||
            (cust = json_loadb(val.mv_data, val.mv_size, 0, &jerr)) == NULL)
            goto Exit;
    } else if (rc == MDB_NOTFOUND) {
        is_new = 1;
        new_customer_id(customer_id);
        cust = json_pack("{s:s, s:I, s:I, s:I, s:[], s:[], s:{}}", "id", customer_id, "created_ms", (json_int_t)now_ms,
                         "first_seen_ms", (json_int_t)now_ms, "last_seen_ms", (json_int_t)now_ms, "identities",
                         "channels_seen", "attributes");
        val.mv_size = STORE_ID_LEN;
        val.mv_data = customer_id;
        if (cust == NULL || (rc = mdb_put(txn, st->identities, &key, &val, MDB_NOOVERWRITE)) != 0)
            goto Exit;
    } else {
        status = from_mdb(rc);
        goto Exit;
    }

    /* refresh this identity's profile: the provider's latest answer wins for its own identity */
    idents = json_object_get(cust, "identities");
    ident = NULL;
    for (i = 0; i < json_array_size(idents); ++i) {
        json_t *cand = json_array_get(idents, i);
        const char *p = json_string_value(json_object_get(cand, "provider"));
        const char *s = json_string_value(json_object_get(cand, "subject"));
        if (p != NULL && s != NULL && strcmp(p, id->provider) == 0 && strcmp(s, id->subject) == 0) {
            ident = cand;
            break;
        }
    }
    if (ident == NULL) {
        ident = json_pack("{s:s, s:s, s:I}", "provider", id->provider, "subject", id->subject, "linked_at_ms",
                          (json_int_t)now_ms);
        json_array_append_new(idents, ident);
    }
    json_object_del(ident, "email");
    set_opt_string(ident, "email", id->email);
    json_object_set_new(ident, "email_verified", json_boolean(id->email != NULL && id->email_verified));
    set_opt_string(ident, "name", id->name);
    set_opt_string(ident, "picture", id->picture);
    json_object_set_new(ident, "last_login_ms", json_integer((json_int_t)now_ms));
    json_object_set_new(cust, "last_seen_ms", json_integer((json_int_t)now_ms));

    if ((status = put_json(txn, st->customers, customer_id, STORE_ID_LEN, cust)) != GW_OK)
        goto Exit;
    if (id->email != NULL && id->email_verified) {
        /* verified-email index: the first customer to prove an address keeps it */
        char lower[320];
        size_t n = strlen(id->email);
        if (n < sizeof(lower)) {
            for (size_t k = 0; k < n; ++k)
                lower[k] = (char)((id->email[k] >= 'A' && id->email[k] <= 'Z') ? id->email[k] + 32 : id->email[k]);
            key.mv_size = n;
            key.mv_data = lower;
            val.mv_size = STORE_ID_LEN;
            val.mv_data = customer_id;
            rc = mdb_put(txn, st->emails, &key, &val, MDB_NOOVERWRITE);
            if (rc != 0 && rc != MDB_KEYEXIST) {
                status = from_mdb(rc);
                goto Exit;
            }
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if ((status = from_mdb(rc)) != GW_OK)
        goto Exit;
    *created = is_new;
Exit:
    if (txn != NULL)
        mdb_txn_abort(txn);
    json_decref(cust);
    free(ikey);
    return status;
}

gw_status_t store_customer_get(store_t *st, const char *customer_id, json_t **out)
{
    return get_json(st, st->customers, customer_id, strlen(customer_id), out);
}

gw_status_t store_session_put(store_t *st, const uint8_t token_hash[32], json_t *session)
{
    MDB_txn *txn = NULL;
    gw_status_t status;
    int rc;

    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
        return from_mdb(rc);
    if ((status = put_json(txn, st->sessions, token_hash, 32, session)) != GW_OK) {
        mdb_txn_abort(txn);
        return status;
    }
    return from_mdb(mdb_txn_commit(txn));
}

gw_status_t store_session_get(store_t *st, const uint8_t token_hash[32], json_t **out)
{
    return get_json(st, st->sessions, token_hash, 32, out);
}

gw_status_t store_session_delete(store_t *st, const uint8_t token_hash[32])
{
    MDB_txn *txn = NULL;
    MDB_val key = {32, (void *)token_hash};
    int rc;

    if ((rc = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0)
        return from_mdb(rc);
    if ((rc = mdb_del(txn, st->sessions, &key, NULL)) != 0) {
        mdb_txn_abort(txn);
        return from_mdb(rc);
    }
    return from_mdb(mdb_txn_commit(txn));
}
