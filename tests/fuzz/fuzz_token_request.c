/*
 * libFuzzer target: a POST /.auth/token body (gw_token_request_parse). What passes names a
 * configured provider and carries the token field of that provider's type: 1-8192 printable ASCII
 * characters without spaces, so it never carries a line break or a NUL into a log or a request.
 */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

static const gw_known_provider_t provs[] = {{"google", "oidc"}, {"facebook", "facebook"}, {"dev", "dev"}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_token_request_t t;
    const char *problem = NULL;
    size_t n = sizeof(provs) / sizeof(provs[0]), len;
    json_t *field;

    if (gw_token_request_parse((const char *)data, size, provs, n, &t, &problem) != GW_OK) {
        if (problem == NULL || t.root != NULL || t.token != NULL)
            abort();
        return 0;
    }
    if (t.provider >= n || t.root == NULL || t.token == NULL)
        abort();
    field = json_object_get(t.root, strcmp(provs[t.provider].type, "facebook") == 0 ? "access_token" : "id_token");
    if (json_string_value(field) != t.token ||
        strcmp(json_string_value(json_object_get(t.root, "provider")), provs[t.provider].name) != 0)
        abort();
    len = strlen(t.token);
    if (len == 0 || len > GW_TOKEN_MAX || len != json_string_length(field))
        abort();
    for (size_t i = 0; i < len; ++i)
        if (t.token[i] <= 0x20 || t.token[i] > 0x7e)
            abort();
    json_decref(t.root);
    return 0;
}
