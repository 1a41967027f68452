/*
 * Test tool: tampers with the audit trail of a COPY of a store, the way an attacker with
 * file access would, so tests can check that `journeygate audit verify` notices.
 *   audit_tamper DIR edit SEQ         change a field, keep the stored hash
 *   audit_tamper DIR edit-rehash SEQ  change a field and recompute its hash
 *   audit_tamper DIR delete SEQ       remove a record
 *   audit_tamper DIR swap SEQ         swap records SEQ and SEQ+1
 *   audit_tamper DIR truncate         remove the newest record
 */
#include <jansson.h>
#include <lmdb.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void key_of(unsigned long long seq, unsigned char k[8])
{
    for (int i = 7; i >= 0; --i) {
        k[i] = (unsigned char)(seq & 0xff);
        seq >>= 8;
    }
}

int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi audit;
    MDB_val k, v, k2, v2;
    unsigned char kb[8], kb2[8];
    unsigned long long seq = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: audit_tamper DIR edit|edit-rehash|delete|swap SEQ | truncate\n");
        return 2;
    }
    if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 16) != 0 || mdb_env_set_mapsize(env, 1UL << 30) != 0 ||
        mdb_env_open(env, argv[1], 0, 0600) != 0 || mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
        mdb_dbi_open(txn, "audit", 0, &audit) != 0) {
        fprintf(stderr, "audit_tamper: cannot open %s\n", argv[1]);
        return 1;
    }
    key_of(seq, kb);
    k.mv_size = 8;
    k.mv_data = kb;
    if (strcmp(argv[2], "edit") == 0 || strcmp(argv[2], "edit-rehash") == 0) {
        json_t *rec;
        char *text;
        if ((rc = mdb_get(txn, audit, &k, &v)) != 0)
            return 1;
        rec = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        json_object_set_new(rec, "outcome", json_string("success-forged"));
        if (strcmp(argv[2], "edit-rehash") == 0) {
            unsigned char h[32];
            char hex[65];
            json_object_del(rec, "hash");
            text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
            SHA256((unsigned char *)text, strlen(text), h);
            free(text);
            for (int i = 0; i < 32; ++i)
                snprintf(hex + 2 * i, 3, "%02x", h[i]);
            json_object_set_new(rec, "hash", json_string(hex));
        }
        text = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(rec);
        v.mv_size = strlen(text);
        v.mv_data = text;
        rc = mdb_put(txn, audit, &k, &v, 0);
        free(text);
    } else if (strcmp(argv[2], "delete") == 0) {
        rc = mdb_del(txn, audit, &k, NULL);
    } else if (strcmp(argv[2], "swap") == 0) {
        char *a, *b;
        key_of(seq + 1, kb2);
        k2.mv_size = 8;
        k2.mv_data = kb2;
        if (mdb_get(txn, audit, &k, &v) != 0 || mdb_get(txn, audit, &k2, &v2) != 0)
            return 1;
        a = strndup(v.mv_data, v.mv_size);
        b = strndup(v2.mv_data, v2.mv_size);
        v.mv_data = b;
        v.mv_size = strlen(b);
        v2.mv_data = a;
        v2.mv_size = strlen(a);
        rc = mdb_put(txn, audit, &k, &v, 0);
        if (rc == 0)
            rc = mdb_put(txn, audit, &k2, &v2, 0);
        free(a);
        free(b);
    } else if (strcmp(argv[2], "truncate") == 0) {
        MDB_cursor *cur;
        mdb_cursor_open(txn, audit, &cur);
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        if (rc == 0)
            rc = mdb_cursor_del(cur, 0);
        mdb_cursor_close(cur);
    } else {
        fprintf(stderr, "audit_tamper: unknown operation %s\n", argv[2]);
        return 2;
    }
    if (rc != 0 || mdb_txn_commit(txn) != 0) {
        fprintf(stderr, "audit_tamper: %s failed: %s\n", argv[2], mdb_strerror(rc));
        return 1;
    }
    mdb_env_close(env);
    return 0;
}
