/*
 * Test tool: grows a store's map from another process while a gateway runs, the way a CLI
 * opened with a larger store.map_size_mb does when its writes go past the gateway's map.
 *   store_grow DIR MAP_MB DATA_MB   opens DIR with a MAP_MB map, commits DATA_MB of data under
 *                                   a scratch key of the meta database, then deletes it again
 * The data file keeps its new length: the gateway's next transaction meets MDB_MAP_RESIZED.
 */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_KEY "store_grow_probe"

int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val k = {sizeof(PROBE_KEY) - 1, PROBE_KEY}, v;
    size_t map_mb, data_mb;
    int rc;

    if (argc != 4 || (map_mb = strtoul(argv[2], NULL, 10)) == 0 || (data_mb = strtoul(argv[3], NULL, 10)) == 0 ||
        data_mb >= map_mb) {
        fprintf(stderr, "usage: store_grow DIR MAP_MB DATA_MB (DATA_MB < MAP_MB)\n");
        return 2;
    }
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0 ||
        (rc = mdb_env_set_mapsize(env, map_mb << 20)) != 0 || (rc = mdb_env_open(env, argv[1], 0, 0600)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 || (rc = mdb_dbi_open(txn, "meta", 0, &meta)) != 0) {
        fprintf(stderr, "store_grow: %s\n", mdb_strerror(rc));
        return 1;
    }
    v.mv_size = data_mb << 20;
    if ((v.mv_data = calloc(1, v.mv_size)) == NULL || (rc = mdb_put(txn, meta, &k, &v, 0)) != 0 ||
        (rc = mdb_txn_commit(txn)) != 0 || (rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_del(txn, meta, &k, NULL)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        fprintf(stderr, "store_grow: %s\n", v.mv_data == NULL ? "out of memory" : mdb_strerror(rc));
        return 1;
    }
    free(v.mv_data);
    {
        MDB_envinfo info;
        MDB_stat stat;
        mdb_env_info(env, &info);
        mdb_env_stat(env, &stat);
        printf("map %zu MB, last page %zu (%zu MB used)\n", info.me_mapsize >> 20, info.me_last_pgno,
               (info.me_last_pgno + 1) * stat.ms_psize >> 20);
    }
    mdb_env_close(env);
    return 0;
}
