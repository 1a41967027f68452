/*
 * Test tool: makes time pass for a stopped gateway's sessions, so tests need not wait out a
 * session.ttl_s of at least a minute.
 *   sessions_age DIR expire   sets every session's expires_ms to 1 (its absolute expiry has passed)
 *   sessions_age DIR count    prints how many session records the store holds
 */
#include <jansson.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi sessions;
    MDB_cursor *cur;
    MDB_val k, v;
    int expire = argc == 3 && strcmp(argv[2], "expire") == 0, rc;
    size_t n = 0;

    if (argc != 3 || (!expire && strcmp(argv[2], "count") != 0)) {
        fprintf(stderr, "usage: sessions_age DIR expire|count\n");
        return 2;
    }
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
        (rc = mdb_env_set_mapsize(env, 1UL << 30)) != 0 || (rc = mdb_env_open(env, argv[1], 0, 0600)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, expire ? 0 : MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "sessions", 0, &sessions)) != 0 || (rc = mdb_cursor_open(txn, sessions, &cur)) != 0) {
        fprintf(stderr, "sessions_age: %s\n", mdb_strerror(rc));
        return 1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        ++n;
        if (expire) {
            json_t *s = json_loadb(v.mv_data, v.mv_size, 0, NULL);
            char *text;
            json_object_set_new(s, "expires_ms", json_integer(1));
            text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(s);
            if (text == NULL) {
                fprintf(stderr, "sessions_age: an unreadable session\n");
                return 1;
            }
            v.mv_size = strlen(text);
            v.mv_data = text;
            rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
            free(text);
            if (rc != 0)
                break;
        }
    }
    mdb_cursor_close(cur);
    if ((rc != MDB_NOTFOUND && rc != 0) || (rc = mdb_txn_commit(txn)) != 0) {
        fprintf(stderr, "sessions_age: %s\n", mdb_strerror(rc));
        return 1;
    }
    mdb_env_close(env);
    printf("%zu\n", n);
    return 0;
}
