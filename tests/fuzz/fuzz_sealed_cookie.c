/*
 * libFuzzer target: the sealed login-state cookie (gw_open) as a client may forge it. Anything
 * not sealed with the key must be refused; what gw_seal made must open to the same bytes.
 */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[GW_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    char *plain = NULL, *sealed = NULL;
    size_t n = 0;

    if (gw_open(key, (const char *)data, size, "state", &plain, &n) == GW_OK)
        abort(); /* a forgery opened: 2^-128 by chance */
    free(plain);
    plain = NULL;
    if (gw_seal(key, data, size, "state", &sealed) != GW_OK ||
        gw_open(key, sealed, strlen(sealed), "state", &plain, &n) != GW_OK || n != size ||
        memcmp(plain, data, size) != 0)
        abort();
    free(plain);
    plain = NULL;
    if (gw_open(key, sealed, strlen(sealed), "other", &plain, &n) == GW_OK)
        abort(); /* another aad: refused */
    free(plain);
    plain = NULL;
    {
        /* any one character changed (before the last, whose low bits base64 may not carry) is refused,
         * and so is the cookie cut short */
        size_t len = strlen(sealed), at = size % (len - 1);
        char was = sealed[at];
        sealed[at] = was == 'A' ? 'B' : 'A';
        if (gw_open(key, sealed, len, "state", &plain, &n) == GW_OK)
            abort();
        free(plain);
        plain = NULL;
        sealed[at] = was;
        if (gw_open(key, sealed, len - 1 - size % 4, "state", &plain, &n) == GW_OK)
            abort();
        free(plain);
        plain = NULL;
    }
    free(sealed);
    return 0;
}
