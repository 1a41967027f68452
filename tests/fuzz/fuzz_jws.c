/*
 * libFuzzer target: a compact JWS as an ID token arrives (prov_keyset_verify), from a provider's
 * token endpoint or from any client at POST /.auth/token: the form check, cjose's header parsing,
 * the alg allow-list, the crit refusal and liboauth2's signature check.
 *
 * The first byte picks the form: even, the rest is a protected header (JSON) that the target signs
 * a fixed payload under with the keyset's own key, so the header checks after the signature are
 * reached; odd, the rest is the token as a client may send it. Oracles: a token the target did not
 * sign is never accepted; an accepted one has a header whose alg is RS256 and that has no "crit".
 */
#include "prov.h"
#include "prov_int.h"

#include <cjose/cjose.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define JWS_MAX_INPUT 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cjose_jwk_t *jwk;
static prov_keyset_t *keys;

static void init(void)
{
    cjose_err err;
    char *pub, *text = NULL;
    json_t *jwks;

    prov_global_init();
    if ((jwk = cjose_jwk_create_RSA_random(2048, NULL, 0, &err)) == NULL || !cjose_jwk_set_kid(jwk, "k1", 2, &err) ||
        (pub = cjose_jwk_to_json(jwk, false, &err)) == NULL)
        abort();
    jwks = json_pack("{s:[o]}", "keys", json_loads(pub, 0, NULL));
    if ((keys = prov_keyset_create(jwks, &text)) == NULL)
        abort();
    json_decref(jwks);
    free(pub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const algs[] = {"RS256", NULL};
    static const char payload[] = "{\"iss\":\"https://op.example\",\"sub\":\"1\"}";
    json_t *claims = NULL, *header = NULL;
    const char *reason = NULL;
    char *token = NULL;
    int unknown = 0, signed_here = 0;
    gw_status_t st;

    if (keys == NULL)
        init();
    if (size < 1 || size > JWS_MAX_INPUT)
        return 0;
    if ((data[0] & 1) == 0) {
        cjose_err err;
        cjose_jws_t *jws;
        const char *compact = NULL;
        header = json_loadb((const char *)data + 1, size - 1, 0, NULL);
        /* cjose signs with the header's alg: only RSA ones can be made with this key */
        if (!json_is_object(header) || json_object_get(header, "alg") == NULL)
            goto Done;
        jws = cjose_jws_sign(jwk, header, (const uint8_t *)payload, sizeof(payload) - 1, &err);
        if (jws == NULL)
            goto Done;
        if (cjose_jws_export(jws, &compact, &err))
            token = strdup(compact);
        cjose_jws_release(jws);
        signed_here = token != NULL;
    } else {
        token = malloc(size);
        memcpy(token, data + 1, size - 1);
        token[size - 1] = '\0';
    }
    if (token == NULL)
        goto Done;
    st = prov_keyset_verify(keys, token, algs, &claims, &reason, &unknown);
    if (st == GW_OK) {
        const char *alg = json_string_value(json_object_get(header, "alg"));
        if (!signed_here || alg == NULL || strcmp(alg, "RS256") != 0 || json_object_get(header, "crit") != NULL ||
            claims == NULL)
            abort();
    } else if (claims != NULL || reason == NULL) {
        abort(); /* a refusal hands out no claims and always says why */
    }
Done:
    json_decref(claims);
    json_decref(header);
    free(token);
    return 0;
}
