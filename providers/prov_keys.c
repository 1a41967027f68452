/*
 * Verification keys: one liboauth2 verifier per JWK (so a token is checked
 * against exactly the key its `kid` names), with the algorithm pinned here —
 * liboauth2 pins none (shared/LIBOAUTH2.md). The header is read with cjose.
 */
#include "prov_int.h"

#include <cjose/cjose.h>
#include <oauth2/cfg.h>
#include <oauth2/log.h>
#include <oauth2/mem.h>
#include <oauth2/oauth2.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 32

struct prov_keyset {
    size_t count;
    struct {
        char *kid;
        char *alg; /* from the JWK, or NULL */
        char *kty;
        oauth2_cfg_token_verify_t *verifier;
    } keys[MAX_KEYS];
};

void prov_keyset_destroy(prov_keyset_t *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->count; ++i) {
        free(ks->keys[i].kid);
        free(ks->keys[i].alg);
        free(ks->keys[i].kty);
        oauth2_cfg_token_verify_free(prov_log(), ks->keys[i].verifier);
    }
    free(ks);
}

prov_keyset_t *prov_keyset_create(json_t *jwks, char **err)
{
    prov_keyset_t *ks = calloc(1, sizeof(*ks));
    json_t *keys = json_object_get(jwks, "keys"), *k;
    size_t i;

    if (ks == NULL)
        return NULL;
    if (!json_is_array(keys)) {
        *err = strdup("jwks has no keys array");
        goto Fail;
    }
    json_array_foreach(keys, i, k)
    {
        const char *kty = json_string_value(json_object_get(k, "kty"));
        const char *use = json_string_value(json_object_get(k, "use"));
        const char *kid = json_string_value(json_object_get(k, "kid"));
        const char *alg = json_string_value(json_object_get(k, "alg"));
        char *text, *verr;
        oauth2_cfg_token_verify_t *v = NULL;

        if (ks->count == MAX_KEYS)
            break;
        /* only asymmetric signing keys: an "oct" key in a JWKS would be a shared secret */
        if (kty == NULL || (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0) ||
            (use != NULL && strcmp(use, "sig") != 0))
            continue;
        if ((text = json_dumps(k, JSON_COMPACT)) == NULL)
            continue;
        /* expiry=0: liboauth2's token-keyed result cache stays off; exp/iat/nbf are checked by the caller */
        verr = oauth2_cfg_token_verify_add_options(prov_log(), &v, "jwk", text,
                                                   "expiry=0&verify.exp=skip&verify.iat=skip");
        free(text);
        if (verr != NULL) {
            oauth2_mem_free(verr);
            oauth2_cfg_token_verify_free(prov_log(), v);
            continue;
        }
        ks->keys[ks->count].kid = kid != NULL ? strdup(kid) : NULL;
        ks->keys[ks->count].alg = alg != NULL ? strdup(alg) : NULL;
        ks->keys[ks->count].kty = strdup(kty);
        ks->keys[ks->count].verifier = v;
        ++ks->count;
    }
    if (ks->count == 0) {
        *err = strdup("jwks has no usable signing key");
        goto Fail;
    }
    return ks;
Fail:
    prov_keyset_destroy(ks);
    return NULL;
}

long prov_b64url_len(const char *s, size_t len, int allow_padding)
{
    size_t n = len;

    if (allow_padding && n > 0 && s[n - 1] == '=') {
        /* one '=' after 3 characters of a group, two after 2 */
        size_t pad = n > 1 && s[n - 2] == '=' ? 2 : 1;
        if (n % 4 != 0)
            return -1;
        n -= pad;
        if (n % 4 != 4 - pad)
            return -1;
    }
    if (n % 4 == 1)
        return -1; /* no byte string encodes to that */
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return -1;
    }
    return (long)n;
}

/* a JWS in compact serialisation: three base64url parts without padding (RFC 7515 7.1) */
static int compact_jws_ok(const char *token)
{
    const char *part = token;

    for (int i = 0; i < 3; ++i) {
        const char *end = i < 2 ? strchr(part, '.') : part + strlen(part);
        if (end == NULL || prov_b64url_len(part, (size_t)(end - part), 0) < 0)
            return 0;
        part = end + 1;
    }
    return 1;
}

static int alg_allowed(const char *alg, const char *const *allowed)
{
    for (; *allowed != NULL; ++allowed)
        if (strcmp(alg, *allowed) == 0)
            return 1;
    return 0;
}

static int alg_fits_kty(const char *alg, const char *kty)
{
    if (strcmp(kty, "RSA") == 0)
        return alg[0] == 'R' || alg[0] == 'P'; /* RS* / PS* */
    if (strcmp(kty, "EC") == 0)
        return alg[0] == 'E';
    return 0;
}

gw_status_t prov_keyset_verify(prov_keyset_t *ks, const char *token, const char *const *allowed_algs, json_t **claims,
                               const char **reason, int *unknown_kid)
{
    cjose_err cerr;
    cjose_jws_t *jws;
    cjose_header_t *hdr;
    const char *alg, *kid;
    json_t *payload = NULL;
    size_t i, match = SIZE_MAX;
    gw_status_t st = GW_EDENIED;

    *unknown_kid = 0;
    if (!compact_jws_ok(token) || (jws = cjose_jws_import(token, strlen(token), &cerr)) == NULL) {
        *reason = "id_token_invalid:format";
        return GW_EDENIED;
    }
    hdr = cjose_jws_get_protected(jws);
    alg = hdr != NULL ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
    kid = hdr != NULL ? cjose_header_get(hdr, CJOSE_HDR_KID, &cerr) : NULL;
    /*
     * RFC 7515 4.1.11: a recipient must refuse a JWS whose "crit" names an extension it does not
     * understand, and the gateway understands none; a malformed "crit" is refused the same way.
     */
    /* cjose_header_t is jansson's json_t (cjose/header.h): any member "crit", of any type, is refused */
    if (hdr != NULL && json_object_get(hdr, "crit") != NULL) {
        *reason = "id_token_invalid:crit";
        goto Exit;
    }
    /* the allow-list never holds "none" or an HMAC algorithm */
    if (alg == NULL || !alg_allowed(alg, allowed_algs)) {
        *reason = "id_token_invalid:alg";
        goto Exit;
    }
    for (i = 0; i < ks->count; ++i) {
        if (kid != NULL ? (ks->keys[i].kid != NULL && strcmp(ks->keys[i].kid, kid) == 0) : ks->count == 1) {
            match = i;
            break;
        }
    }
    if (match == SIZE_MAX) {
        *unknown_kid = 1;
        *reason = "id_token_invalid:kid";
        goto Exit;
    }
    if ((ks->keys[match].alg != NULL && strcmp(ks->keys[match].alg, alg) != 0) ||
        !alg_fits_kty(alg, ks->keys[match].kty)) {
        *reason = "id_token_invalid:alg";
        goto Exit;
    }
    if (!oauth2_token_verify(prov_log(), NULL, ks->keys[match].verifier, token, &payload) || payload == NULL) {
        *reason = "id_token_invalid:signature";
        goto Exit;
    }
    *claims = payload;
    payload = NULL;
    st = GW_OK;
Exit:
    json_decref(payload);
    cjose_jws_release(jws);
    return st;
}
