/*
 * Unit tests: what providers assert, checked where it enters. Tables of subjects, emails,
 * domains and display names; prov_identity_check() refusing or dropping claims; a JWS whose
 * protected header has "crit"; Facebook signed_requests (signature, issued_at, user_id).
 */
#include "prov.h"
#include "prov_int.h"
#include "crypto.h"

#include "../check_run.h"

#include <check.h>
#include <cjose/cjose.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct row {
    const char *in;
    int ok;
};

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))

static char *repeat(char c, size_t n, const char *suffix)
{
    char *s = malloc(n + strlen(suffix) + 1);
    memset(s, c, n);
    strcpy(s + n, suffix);
    return s;
}

START_TEST(test_subjects)
{
    static const struct row t[] = {
        {"110169484474386276334", 1},
        {"a", 1},
        {"auth0|5f7c8ec7c33c6c004bbafe82", 1},
        {"~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", 1},
        {"", 0},
        {"123\r", 0},
        {"123\nX-Injected: 1", 0},
        {"123\r\nX-Injected: 1", 0},
        {"12 3", 0},
        {" 123", 0},
        {"123\t", 0},
        {"123\x7f", 0},
        {"123\x1b[31m", 0},
        {"caf\xc3\xa9", 0}, /* ASCII only */
    };
    for (size_t i = 0; i < ROWS(t); ++i)
        ck_assert_msg(prov_subject_ok(t[i].in) == t[i].ok, "subject row %zu", i);
    ck_assert_int_eq(prov_subject_ok(NULL), 0);
    char *max = repeat('7', 255, ""), *over = repeat('7', 256, "");
    ck_assert_int_eq(prov_subject_ok(max), 1);
    ck_assert_int_eq(prov_subject_ok(over), 0);
    free(max);
    free(over);
}
END_TEST

START_TEST(test_emails)
{
    static const struct row t[] = {
        {"alice@example.com", 1},
        {"Alice.Smith+tag@mail.example.co.uk", 1},
        {"o'brien@example.com", 1},
        {"x@a-b.example", 1},
        {"#!$%&'*+/=?^_`{|}~-@example.com", 1},
        {"", 0},
        {"alice", 0},
        {"alice@", 0},
        {"@example.com", 0},
        {"alice@example.com@evil.example", 0},
        {"alice@@example.com", 0},
        {"alice@example.com\r\nX-Injected: 1", 0},
        {"alice@example.com\n", 0},
        {"ali ce@example.com", 0},
        {"\"ali ce\"@example.com", 0},
        {".alice@example.com", 0},
        {"alice.@example.com", 0},
        {"al..ice@example.com", 0},
        {"alice@localhost", 0},
        {"alice@example..com", 0},
        {"alice@.example.com", 0},
        {"alice@example.com.", 0},
        {"alice@-example.com", 0},
        {"alice@example-.com", 0},
        {"alice@exa_mple.com", 0},
        {"alice@[192.0.2.1]", 0},
        {"al\xc3\xaf"
         "ce@example.com",
         0},
        {"alice@ex\xc3\xa4mple.com", 0},
        {"alice\x00@example.com", 0}, /* C strings end at the NUL: no @ left */
    };
    for (size_t i = 0; i < ROWS(t); ++i)
        ck_assert_msg(prov_email_ok(t[i].in) == t[i].ok, "email row %zu (%s)", i, t[i].in);
    ck_assert_int_eq(prov_email_ok(NULL), 0);
    {
        char *local64 = repeat('a', 64, "@example.com"), *local65 = repeat('a', 65, "@example.com");
        ck_assert_int_eq(prov_email_ok(local64), 1);
        ck_assert_int_eq(prov_email_ok(local65), 0);
        free(local64);
        free(local65);
    }
    {
        /* 254 in all is the most; labels of 63 are fine, of 64 not */
        char buf[400];
        char *l63 = repeat('b', 63, ""), *l64 = repeat('b', 64, "");
        snprintf(buf, sizeof(buf), "a@%s.%s.%s.%s", l63, l63, l63, "cc"); /* 2 + 3*64 + 2 = 196 */
        ck_assert_int_eq(prov_email_ok(buf), 1);
        snprintf(buf, sizeof(buf), "a@%s.com", l64);
        ck_assert_int_eq(prov_email_ok(buf), 0);
        snprintf(buf, sizeof(buf), "%s@%s.%s.%s.%s", "aaaa", l63, l63, l63, "ccccccccc"); /* 4+1+192+9 = 206 */
        ck_assert_int_eq(prov_email_ok(buf), 1);
        char *local = repeat('a', 60, "");
        snprintf(buf, sizeof(buf), "%s@%s.%s.%s.%s", local, l63, l63, l63, "c"); /* 60+1+192+1 = 254 */
        ck_assert_uint_eq(strlen(buf), 254);
        ck_assert_int_eq(prov_email_ok(buf), 1);
        snprintf(buf, sizeof(buf), "%s@%s.%s.%s.%s", local, l63, l63, l63, "cc"); /* 255 */
        ck_assert_int_eq(prov_email_ok(buf), 0);
        free(local);
        free(l63);
        free(l64);
    }
}
END_TEST

START_TEST(test_domains)
{
    static const struct row t[] = {
        {"example.com", 1},
        {"a.b", 1},
        {"xn--bcher-kva.example", 1},
        {"EXAMPLE.COM", 1},
        {"example", 0},
        {"", 0},
        {"example.com\n", 0},
        {"example.com\r\nx", 0},
        {"exa mple.com", 0},
        {".example.com", 0},
        {"example.com.", 0},
        {"-a.example", 0},
        {"a-.example", 0},
        {"a..example", 0},
        {"a_b.example", 0},
        {"b\xc3\xbc"
         "cher.example",
         0},
    };
    for (size_t i = 0; i < ROWS(t); ++i)
        ck_assert_msg(prov_domain_ok(t[i].in) == t[i].ok, "domain row %zu", i);
}
END_TEST

START_TEST(test_base64url)
{
    static const struct {
        const char *in;
        int padding;
        long want;
    } t[] = {
        {"", 0, 0},       {"ab", 0, 2},    {"abc", 0, 3},     {"abcd", 0, 4}, {"a-_9", 0, 4},   {"a", 0, -1},
        {"abcde", 0, -1}, {"ab=", 0, -1},  {"ab==", 0, -1},   {"ab==", 1, 2}, {"abc=", 1, 3},   {"a===", 1, -1},
        {"a=b", 1, -1},   {"ab=c", 1, -1}, {"abc=d", 1, -1},  {"ab=", 1, -1}, {"abcd=", 1, -1}, {"a+/b", 0, -1},
        {"ab c", 0, -1},  {"ab\n", 0, -1}, {"abcd==", 1, -1}, {"=", 1, -1},   {"====", 1, -1},
    };
    for (size_t i = 0; i < ROWS(t); ++i)
        ck_assert_msg(prov_b64url_len(t[i].in, strlen(t[i].in), t[i].padding) == t[i].want, "base64url row %zu", i);
}
END_TEST

START_TEST(test_display_names)
{
    static const struct row t[] = {
        {"Alice Example", 1},
        {"Zo\xc3\xab O'Brien-Smith", 1},                         /* Zoë */
        {"\xe5\xb1\xb1\xe7\x94\xb0\xe5\xa4\xaa\xe9\x83\x8e", 1}, /* 山田太郎 */
        {"\xf0\x9f\x98\x80 Smile", 1},                           /* U+1F600 */
        {"", 0},
        {"Alice\r\nX-Injected: 1", 0},
        {"Alice\n", 0},
        {"Alice\tExample", 0},
        {"Alice\x7f", 0},
        {"Alice\x1b[2J", 0},
        {"Alice\xc2\x85next", 0},     /* U+0085 NEL, a C1 control */
        {"Alice\xc2\x9b", 0},         /* U+009B CSI */
        {"Alice\xe2\x80\xa8line", 0}, /* U+2028 */
        {"Alice\xe2\x80\xa9para", 0}, /* U+2029 */
        {"Alice\xff", 0},
        {"Alice\xc3", 0},             /* truncated sequence */
        {"Alice\xc3(", 0},            /* bad continuation */
        {"Alice\xc0\xaf", 0},         /* overlong '/' */
        {"Alice\xe0\x80\x8a", 0},     /* overlong LF */
        {"Alice\xed\xa0\x80", 0},     /* surrogate U+D800 */
        {"Alice\xf4\x90\x80\x80", 0}, /* U+110000 */
        {"Alice\xf8\x88\x80\x80\x80", 0},
    };
    for (size_t i = 0; i < ROWS(t); ++i)
        ck_assert_msg(prov_display_ok(t[i].in, 512) == t[i].ok, "name row %zu", i);
    char *max = repeat('n', 512, ""), *over = repeat('n', 513, "");
    ck_assert_int_eq(prov_display_ok(max, 512), 1);
    ck_assert_int_eq(prov_display_ok(over, 512), 0);
    free(max);
    free(over);
}
END_TEST

static prov_identity_t identity(const char *sub, const char *email, const char *name, const char *hd, const char *pic)
{
    prov_identity_t id = {0};
    id.subject = sub != NULL ? strdup(sub) : NULL;
    id.email = email != NULL ? strdup(email) : NULL;
    id.email_verified = email != NULL;
    id.name = name != NULL ? strdup(name) : NULL;
    id.hd = hd != NULL ? strdup(hd) : NULL;
    id.picture = pic != NULL ? strdup(pic) : NULL;
    return id;
}

START_TEST(test_identity_check)
{
    static const struct {
        const char *sub, *email, *name, *hd, *pic;
        const char *reason; /* NULL: accepted */
    } t[] = {
        {"123", "a@example.com", "Alice", "example.com", "https://example.com/p.png", NULL},
        {"123", NULL, NULL, NULL, NULL, NULL},
        {NULL, "a@example.com", "Alice", NULL, NULL, "claim_invalid:sub"},
        {"1\r\n2", "a@example.com", "Alice", NULL, NULL, "claim_invalid:sub"},
        {"123", "a@example.com\r\nX: 1", "Alice", NULL, NULL, "claim_invalid:email"},
        {"123", "not-an-address", "Alice", NULL, NULL, "claim_invalid:email"},
        {"123", "a@example.com", "Alice\nBob", NULL, NULL, "claim_invalid:name"},
        {"123", "a@example.com", "Alice\xc2\x85", NULL, NULL, "claim_invalid:name"},
        {"123", "a@example.com", "Alice", "example.com\nx", NULL, "claim_invalid:hd"},
    };
    for (size_t i = 0; i < ROWS(t); ++i) {
        prov_identity_t id = identity(t[i].sub, t[i].email, t[i].name, t[i].hd, t[i].pic);
        const char *reason = NULL;
        gw_status_t st = prov_identity_check(&id, &reason);
        if (t[i].reason == NULL) {
            ck_assert_msg(st == GW_OK, "identity row %zu refused: %s", i, reason);
        } else {
            ck_assert_msg(st == GW_EDENIED, "identity row %zu accepted", i);
            ck_assert_str_eq(reason, t[i].reason);
        }
        prov_identity_clear(&id);
    }
    {
        /* dropped, not refused: an empty name and a picture that is no http(s) URL */
        prov_identity_t id = identity("123", "a@example.com", "", NULL, "javascript:alert(1)");
        const char *reason = NULL;
        ck_assert_int_eq(prov_identity_check(&id, &reason), GW_OK);
        ck_assert_ptr_null(id.name);
        ck_assert_ptr_null(id.picture);
        ck_assert_int_eq(id.email_verified, 1);
        prov_identity_clear(&id);
        id = identity("123", NULL, "Alice", NULL, "https://example.com/a b.png");
        id.email_verified = 1; /* no email: nothing was verified */
        ck_assert_int_eq(prov_identity_check(&id, &reason), GW_OK);
        ck_assert_ptr_null(id.picture);
        ck_assert_int_eq(id.email_verified, 0);
        prov_identity_clear(&id);
    }
}
END_TEST

/* ------------------------------------------------------------------ JWS crit */

static char *sign(cjose_jwk_t *jwk, const char *crit_json)
{
    cjose_err err;
    cjose_header_t *h = cjose_header_new(&err);
    const char *payload = "{\"sub\":\"1\",\"iss\":\"x\"}";
    const char *compact = NULL;
    char *out;

    cjose_header_set(h, CJOSE_HDR_ALG, CJOSE_HDR_ALG_RS256, &err);
    cjose_header_set(h, CJOSE_HDR_KID, "k1", &err);
    /* cjose_header_t is a json_t (cjose/header.h): set_raw would take only objects and arrays */
    if (crit_json != NULL)
        ck_assert_int_eq(json_object_set_new(h, "crit", json_loads(crit_json, JSON_DECODE_ANY, NULL)), 0);
    cjose_jws_t *jws = cjose_jws_sign(jwk, h, (const uint8_t *)payload, strlen(payload), &err);
    ck_assert_ptr_nonnull(jws);
    ck_assert(cjose_jws_export(jws, &compact, &err));
    out = strdup(compact);
    cjose_jws_release(jws);
    cjose_header_release(h);
    return out;
}

START_TEST(test_jws_crit_is_refused)
{
    static const char *const crits[] = {"[\"urn:example:ext\"]", "[\"exp\"]", "[]", "\"exp\"", "null", "1", "{}"};
    static const char *const algs[] = {"RS256", NULL};
    cjose_err err;
    cjose_jwk_t *jwk = cjose_jwk_create_RSA_random(2048, NULL, 0, &err);
    char *pub, *err_text = NULL, *token;
    json_t *jwks, *claims = NULL;
    const char *reason = NULL;
    int unknown = 0;
    prov_keyset_t *ks;

    ck_assert_ptr_nonnull(jwk);
    ck_assert(cjose_jwk_set_kid(jwk, "k1", 2, &err));
    pub = cjose_jwk_to_json(jwk, false, &err);
    jwks = json_pack("{s:[o]}", "keys", json_loads(pub, 0, NULL));
    ks = prov_keyset_create(jwks, &err_text);
    ck_assert_ptr_nonnull(ks);

    /* without crit the same key and header verify: the refusals below are crit's */
    token = sign(jwk, NULL);
    ck_assert_int_eq(prov_keyset_verify(ks, token, algs, &claims, &reason, &unknown), GW_OK);
    json_decref(claims);
    claims = NULL;
    free(token);
    {
        /* not the compact form, or parts cjose's decoder would abort the process on: refused as format */
        static const char *const bad[] = {
            "eyJhbGciOiJSUzI1NiJ9.o=LvMiL.abc", "a=b.eyJ9.abc",     "abc", "a.b", "a.b.c.d",
            "eyJhbGciOiJSUzI1NiJ9.eyJ9.a===",   "eyJ hbGc.eyJ9.abc"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
            reason = NULL;
            ck_assert_int_eq(prov_keyset_verify(ks, bad[i], algs, &claims, &reason, &unknown), GW_EDENIED);
            ck_assert_str_eq(reason, "id_token_invalid:format");
        }
    }
    for (size_t i = 0; i < sizeof(crits) / sizeof(crits[0]); ++i) {
        reason = NULL;
        token = sign(jwk, crits[i]);
        ck_assert_msg(prov_keyset_verify(ks, token, algs, &claims, &reason, &unknown) == GW_EDENIED, "crit %s",
                      crits[i]);
        ck_assert_ptr_null(claims);
        ck_assert_str_eq(reason, "id_token_invalid:crit");
        free(token);
    }
    prov_keyset_destroy(ks);
    json_decref(jwks);
    free(pub);
    cjose_jwk_release(jwk);
    prov_thread_cleanup();
}
END_TEST

/* ------------------------------------------------------------------ signed_request */

#define NOW 1700000000
#define SECRET "fb-app-secret-abcdef"

static prov_t *facebook(void)
{
    prov_t *p = NULL;
    char *err = NULL;
    json_t *conf = json_pack("{s:s, s:s, s:s}", "type", "facebook", "app_id", "1234567890", "app_secret", SECRET);
    ck_assert_int_eq(prov_create("facebook", conf, "https://gw.example/.auth/login/facebook/callback", &p, &err),
                     GW_OK);
    json_decref(conf);
    return p;
}

/* base64url(HMAC-SHA256(secret, payload_b64)) "." payload_b64, as Facebook builds it */
static char *signed_request(const char *payload_json, const char *secret)
{
    char p64[2048], s64[64];
    unsigned char mac[32];
    unsigned int len = sizeof(mac);
    char *out = malloc(sizeof(p64) + sizeof(s64) + 2);

    gw_b64url_encode((const uint8_t *)payload_json, strlen(payload_json), p64, sizeof(p64));
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)p64, strlen(p64), mac, &len);
    gw_b64url_encode(mac, sizeof(mac), s64, sizeof(s64));
    sprintf(out, "%s.%s", s64, p64);
    return out;
}

START_TEST(test_signed_requests)
{
    static const struct {
        const char *payload;
        const char *secret;
        int ok;
    } t[] = {
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"7001\"}", SECRET, 1},
        {"{\"algorithm\":\"HMAC-SHA256\",\"expires\":0,\"issued_at\":1699999401,\"user_id\":\"10000000000001\"}",
         SECRET, 1},                                                                                  /* 599 s old */
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000060,\"user_id\":\"7001\"}", SECRET, 1}, /* skew */
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"7001\"}", SECRET "x", 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1699999399,\"user_id\":\"7001\"}", SECRET, 0}, /* 601 s */
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1600000000,\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000061,\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":\"1700000000\",\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000.0,\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":null,\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":-1,\"user_id\":\"7001\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"7001\\r\\nX: 1\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"70a1\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":7001}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"7001\\u0000\"}", SECRET, 0},
        {"{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000}", SECRET, 0},
        {"{\"algorithm\":\"none\",\"issued_at\":1700000000,\"user_id\":\"7001\"}", SECRET, 0},
        {"[1,2]", SECRET, 0},
        {"not json", SECRET, 0},
    };
    prov_t *p = facebook();
    char user[128];

    for (size_t i = 0; i < ROWS(t); ++i) {
        char *sr = signed_request(t[i].payload, t[i].secret);
        memset(user, 'X', sizeof(user));
        gw_status_t st = prov_facebook_signed_request(p, sr, NOW, user, sizeof(user));
        ck_assert_msg((st == GW_OK) == t[i].ok, "signed_request row %zu: %s", i, gw_status_str(st));
        if (st == GW_OK)
            ck_assert(prov_subject_ok(user));
        free(sr);
    }
    {
        /* 64 digits fit, 65 do not; nor does an id longer than the caller's buffer */
        char payload[256], *sr;
        char *d64 = repeat('9', 64, ""), *d65 = repeat('9', 65, "");
        snprintf(payload, sizeof(payload), "{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":%d,\"user_id\":\"%s\"}", NOW,
                 d64);
        sr = signed_request(payload, SECRET);
        ck_assert_int_eq(prov_facebook_signed_request(p, sr, NOW, user, sizeof(user)), GW_OK);
        ck_assert_str_eq(user, d64);
        ck_assert_int_eq(prov_facebook_signed_request(p, sr, NOW, user, 64), GW_EDENIED);
        free(sr);
        snprintf(payload, sizeof(payload), "{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":%d,\"user_id\":\"%s\"}", NOW,
                 d65);
        sr = signed_request(payload, SECRET);
        ck_assert_int_eq(prov_facebook_signed_request(p, sr, NOW, user, sizeof(user)), GW_EDENIED);
        free(sr);
        free(d64);
        free(d65);
    }
    {
        /* malformed base64url that made cjose's decoder abort the process: refused, the process goes on */
        static const char *const bad[] = {"o=LvMiL.mel0aG", "a=b.eyJ9", "abc.a=", "abc.a===", "ab==c.abc", "abc.ab c"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
            ck_assert_int_eq(prov_facebook_signed_request(p, bad[i], NOW, user, sizeof(user)), GW_EDENIED);
    }
    {
        /* a padded payload is still Facebook's: accepted */
        char *sr =
            signed_request("{\"algorithm\":\"HMAC-SHA256\",\"issued_at\":1700000000,\"user_id\":\"7001\"}", SECRET);
        char *padded = malloc(strlen(sr) + 3);
        size_t plen = strlen(strchr(sr, '.') + 1);
        unsigned char mac[32];
        unsigned int len = sizeof(mac);
        char s64[64];
        /* re-sign over the padded payload, as the HMAC covers the payload as sent */
        strcpy(padded, strchr(sr, '.') + 1);
        strcat(padded, plen % 4 == 2 ? "==" : plen % 4 == 3 ? "=" : "");
        HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)padded, strlen(padded), mac, &len);
        gw_b64url_encode(mac, sizeof(mac), s64, sizeof(s64));
        free(sr);
        sr = malloc(strlen(padded) + 70);
        sprintf(sr, "%s.%s", s64, padded);
        ck_assert_int_eq(prov_facebook_signed_request(p, sr, NOW, user, sizeof(user)), GW_OK);
        ck_assert_str_eq(user, "7001");
        free(sr);
        free(padded);
    }
    ck_assert_int_eq(prov_facebook_signed_request(p, "", NOW, user, sizeof(user)), GW_EDENIED);
    ck_assert_int_eq(prov_facebook_signed_request(p, "abc", NOW, user, sizeof(user)), GW_EDENIED);
    ck_assert_int_eq(prov_facebook_signed_request(p, ".", NOW, user, sizeof(user)), GW_EDENIED);
    prov_destroy(p);
    prov_thread_cleanup();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("claims");
    TCase *tc = tcase_create("core");

    prov_global_init();
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_subjects);
    tcase_add_test(tc, test_emails);
    tcase_add_test(tc, test_domains);
    tcase_add_test(tc, test_base64url);
    tcase_add_test(tc, test_display_names);
    tcase_add_test(tc, test_identity_check);
    tcase_add_test(tc, test_jws_crit_is_refused);
    tcase_add_test(tc, test_signed_requests);
    suite_add_tcase(s, tc);
    return jg_check_run(s);
}
