/*
 * libFuzzer target: Facebook's data-deletion `signed_request` (prov_facebook_signed_request), the
 * one body of that endpoint, as anyone on the Internet may post it.
 *
 * The first byte picks the form: even, the rest is a payload the target signs with the app secret
 * (so the fuzzer reaches everything after the signature check); odd, the rest is the whole
 * signed_request as posted. Oracles: an accepted request carries a valid signature, the
 * algorithm HMAC-SHA256, an integer issued_at within [now - 600 s, now + 60 s], and a user_id of
 * 1-64 decimal digits that is exactly what the caller gets; a signed payload that meets all of
 * that is accepted.
 */
#include "crypto.h"
#include "prov.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NOW 1700000000
#define SECRET "fb-app-secret-abcdef"
#define SR_MAX_INPUT 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static prov_t *facebook(void)
{
    static prov_t *p;
    if (p == NULL) {
        char *err = NULL;
        json_t *conf = json_pack("{s:s, s:s, s:s}", "type", "facebook", "app_id", "1234567890", "app_secret", SECRET);
        prov_global_init();
        if (prov_create("facebook", conf, "https://gw.example/.auth/login/facebook/callback", &p, &err) != GW_OK)
            abort();
        json_decref(conf);
    }
    return p;
}

static int digits_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= 64 && s[n] == '\0';
}

/* what the oracle expects of a payload: 1 when it must be accepted (given a valid signature) */
static int payload_acceptable(const uint8_t *json, size_t len, const char **uid_out, json_t **doc_out)
{
    json_t *doc = json_loadb((const char *)json, len, 0, NULL);
    json_t *issued = json_object_get(doc, "issued_at");
    const char *alg = json_string_value(json_object_get(doc, "algorithm"));
    const char *uid = json_string_value(json_object_get(doc, "user_id"));

    *doc_out = doc;
    *uid_out = uid;
    return alg != NULL && strcasecmp(alg, "HMAC-SHA256") == 0 && uid != NULL && digits_ok(uid) &&
           json_is_integer(issued) && json_integer_value(issued) >= NOW - PROV_SIGNED_REQUEST_MAX_AGE_S &&
           json_integer_value(issued) <= NOW + 60;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sr, user[128];
    gw_status_t st;

    if (size < 1 || size > SR_MAX_INPUT)
        return 0;
    if ((data[0] & 1) == 0) {
        /* sign the payload bytes as Facebook would: base64url(HMAC(secret, p64)) "." p64 */
        size_t cap = (size - 1) * 4 / 3 + 8;
        char *p64 = malloc(cap), s64[64];
        uint8_t mac[32];
        if (p64 == NULL)
            abort();
        p64[0] = '\0';
        if (size > 1 && gw_b64url_encode(data + 1, size - 1, p64, cap) == 0)
            abort();
        gw_hmac_sha256(SECRET, strlen(SECRET), p64, strlen(p64), mac);
        gw_b64url_encode(mac, sizeof(mac), s64, sizeof(s64));
        sr = malloc(strlen(s64) + strlen(p64) + 2);
        strcpy(sr, s64);
        strcat(sr, ".");
        strcat(sr, p64);
        free(p64);
    } else {
        sr = malloc(size);
        memcpy(sr, data + 1, size - 1);
        sr[size - 1] = '\0';
    }
    memset(user, 0, sizeof(user));
    st = prov_facebook_signed_request(facebook(), sr, NOW, user, sizeof(user));
    {
        /* decode the payload as posted, to judge the verdict */
        const char *dot = strchr(sr, '.');
        size_t plen = dot != NULL ? strlen(dot + 1) : 0;
        uint8_t *payload = malloc(plen + 1);
        long n = dot != NULL ? gw_b64url_decode(dot + 1, plen, payload, plen + 1) : -1;
        const char *uid = NULL;
        json_t *doc = NULL;
        int acceptable = n >= 0 && payload_acceptable(payload, (size_t)n, &uid, &doc);
        if (st == GW_OK) {
            /* accepted: every condition holds and the caller got exactly the user_id */
            if (!acceptable || !digits_ok(user) || strcmp(user, uid) != 0 || !prov_subject_ok(user))
                abort();
        } else if (acceptable && (data[0] & 1) == 0 && strlen(sr) <= 8192) {
            abort(); /* signed here, every condition holds, and still refused */
        }
        json_decref(doc);
        free(payload);
    }
    free(sr);
    return 0;
}
