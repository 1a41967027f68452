/* journeygate unit tests — a store in a fresh temporary directory, for Check fixtures. */
#ifndef JG_TEMP_STORE_H
#define JG_TEMP_STORE_H

#include "store.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/**
 * Makes a fresh directory /tmp/<prefix>-XXXXXX (its name into dir, of size len) and opens a store
 * there with a 64 MiB map into *st. Fails the running test when either step fails.
 */
static inline void jg_temp_store_open(char *dir, size_t len, const char *prefix, store_t **st)
{
    snprintf(dir, len, "/tmp/%s-XXXXXX", prefix);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(store_open(dir, 64, st), GW_OK);
}

/** Closes *st (and sets it to NULL), then removes dir and all in it; fails the test if that fails. */
static inline void jg_temp_store_close(store_t **st, const char *dir)
{
    char cmd[128];

    store_close(*st);
    *st = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

#endif
