/* Unit tests: the identity-assertion signer — sign and verify against the published JWKS with cjose,
 * tampering, RFC 7638 kids, key rotation, key file generation and refusal of bad key files, the cost
 * of a signature (printed, not asserted). */
#include "pol.h"

#include "../check_run.h"

#include <check.h>
#include <cjose/cjose.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A fixed P-256 key. Its public JWK and RFC 7638 thumbprint were computed independently, with the npm
 * "jose" package (exportJWK, calculateJwkThumbprint), not with the code under test. */
static const char fixed_sec1[] = "-----BEGIN EC PRIVATE KEY-----\n"
                                 "MHcCAQEEINULmaE7vZL2cFuU3HLJZMYIrJwuMvqVNdugsUE9XwS6oAoGCCqGSM49\n"
                                 "AwEHoUQDQgAEQ6fZhb92RJTKgZncOcQRIRAOYcH4KgyMt4pyLmrjSEGRF6Oydj08\n"
                                 "9F6khyexySu8xW4G7Nc/u5trdxj/tkZzcg==\n"
                                 "-----END EC PRIVATE KEY-----\n";
static const char fixed_pkcs8[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1QuZoTu9kvZwW5Tc\n"
                                  "cslkxgisnC4y+pU126CxQT1fBLqhRANCAARDp9mFv3ZElMqBmdw5xBEhEA5hwfgq\n"
                                  "DIy3inIuauNIQZEXo7J2PTz0XqSHJ7HJK7zFbgbs1z+7m2t3GP+2RnNy\n"
                                  "-----END PRIVATE KEY-----\n";
static const char fixed_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQ6fZhb92RJTKgZncOcQRIRAOYcH4\n"
                                "KgyMt4pyLmrjSEGRF6Oydj089F6khyexySu8xW4G7Nc/u5trdxj/tkZzcg==\n"
                                "-----END PUBLIC KEY-----\n";
#define FIXED_X "Q6fZhb92RJTKgZncOcQRIRAOYcH4KgyMt4pyLmrjSEE"
#define FIXED_Y "kRejsnY9PPRepIcnsckrvMVuBuzXP7uba3cY_7ZGc3I"
#define FIXED_KID "knZkx59uiJSjugDyDPufmfPkom7baQMcJinejnHyUcE"

static char tmpdir[256];

/* ------------------------------------------------------------------ fixtures */

static void die(const char *what, const char *path)
{
    fprintf(stderr, "test_assert fixtures: %s %s: %s\n", what, path, strerror(errno));
    exit(EXIT_FAILURE);
}

/* tmpdir/name into out */
static const char *tpath(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);

    if (n < 0 || (size_t)n >= cap)
        die("path too long:", name);
    return out;
}

static void write_file(const char *name, const char *content, size_t len)
{
    char path[512];
    FILE *fp;

    tpath(path, sizeof(path), name);
    if ((fp = fopen(path, "w")) == NULL || fwrite(content, 1, len, fp) != len || fclose(fp) != 0)
        die("cannot write", path);
}

/* name <- PEM of pk: private (optionally encrypted with a passphrase) or public */
static void write_pem(const char *name, EVP_PKEY *pk, int public_only, const char *passphrase)
{
    char path[512];
    FILE *fp;
    int ok;

    tpath(path, sizeof(path), name);
    if (pk == NULL || (fp = fopen(path, "w")) == NULL)
        die("cannot make key", path);
    if (public_only)
        ok = PEM_write_PUBKEY(fp, pk);
    else if (passphrase != NULL)
        ok = PEM_write_PKCS8PrivateKey(fp, pk, EVP_aes_256_cbc(), passphrase, (int)strlen(passphrase), NULL, NULL);
    else
        ok = PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
    if (fclose(fp) != 0 || ok != 1)
        die("cannot write", path);
}

static void make_fixtures(void)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char path[512];
    EVP_PKEY *pk;
    int n;

    n = snprintf(tmpdir, sizeof(tmpdir), "%s/jg-test-assert-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpdir) || mkdtemp(tmpdir) == NULL)
        die("mkdtemp in", base);
    write_file("fixed-sec1.pem", fixed_sec1, strlen(fixed_sec1));
    write_file("fixed-pkcs8.pem", fixed_pkcs8, strlen(fixed_pkcs8));
    write_file("fixed-pub.pem", fixed_pub, strlen(fixed_pub));
    write_file("corrupt.pem", "this is not a key\n", 18);
    write_file("empty.pem", "", 0);
    write_file("truncated.pem", fixed_pkcs8, strlen(fixed_pkcs8) / 2);
    {
        /* well-formed PEM armour around the first third of a key */
        static const char garbled[] = "-----BEGIN PRIVATE KEY-----\n"
                                      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1QuZoTu9kvZwW5Tc\n"
                                      "-----END PRIVATE KEY-----\n";
        write_file("garbled.pem", garbled, strlen(garbled));
    }
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    write_pem("p384.pem", pk, 0, NULL);
    EVP_PKEY_free(pk);
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    write_pem("rsa.pem", pk, 0, NULL);
    EVP_PKEY_free(pk);
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    write_pem("encrypted.pem", pk, 0, "secret");
    EVP_PKEY_free(pk);
    tpath(path, sizeof(path), "adir");
    if (mkdir(path, 0700) != 0)
        die("mkdir", path);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ------------------------------------------------------------------ helpers */

static json_t *sample_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "customer_id", "c_aaaaaaaaaaaaaaaaaaaaaaaa", "email",
                     "ann@example.com", "provider", "google", "channel", "web", "route", "site", "aud", "shop");
}

static pol_signer_t *new_signer(const char *key_name, const char *const *previous)
{
    char path[512];
    pol_signer_t *s = NULL;

    ck_assert_int_eq(pol_signer_create(tpath(path, sizeof(path), key_name), previous, &s), GW_OK);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* the key of `jwks` whose kid is `kid`, as a cjose key (release it), or NULL */
static cjose_jwk_t *jwks_find(const char *jwks, const char *kid)
{
    json_t *doc = json_loads(jwks, 0, NULL), *key;
    cjose_jwk_t *jwk = NULL;
    cjose_err err;
    size_t i;
    char *text;

    ck_assert_ptr_nonnull(doc);
    json_array_foreach(json_object_get(doc, "keys"), i, key)
    {
        if (kid != NULL && strcmp(json_string_value(json_object_get(key, "kid")), kid) == 0) {
            ck_assert_ptr_nonnull(text = json_dumps(key, JSON_COMPACT));
            jwk = cjose_jwk_import(text, strlen(text), &err);
            ck_assert_msg(jwk != NULL, "cjose_jwk_import: %s", err.message);
            free(text);
            break;
        }
    }
    json_decref(doc);
    return jwk;
}

/* Verifies token the way a backend would: kid from the header, key from the JWKS, cjose_jws_verify.
 * Returns the claims (decref them) when the signature holds, else NULL. hdr_out: the protected header. */
static json_t *verify(const char *token, const char *jwks, json_t **hdr_out)
{
    cjose_jws_t *jws;
    cjose_jwk_t *key = NULL;
    cjose_header_t *hdr;
    cjose_err err;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    json_t *claims = NULL;
    const char *kid;

    if ((jws = cjose_jws_import(token, strlen(token), &err)) == NULL)
        return NULL;
    hdr = cjose_jws_get_protected(jws);
    kid = hdr != NULL ? cjose_header_get(hdr, CJOSE_HDR_KID, &err) : NULL;
    if (kid != NULL && (key = jwks_find(jwks, kid)) != NULL && cjose_jws_verify(jws, key, &err) &&
        cjose_jws_get_plaintext(jws, &plain, &plain_len, &err))
        claims = json_loadb((const char *)plain, plain_len, 0, NULL);
    if (claims != NULL && hdr_out != NULL)
        *hdr_out = json_incref((json_t *)hdr);
    cjose_jwk_release(key);
    cjose_jws_release(jws);
    return claims;
}

/* ------------------------------------------------------------------ sign and verify */

START_TEST(test_signer_sign_verify)
{
    pol_signer_t *s = new_signer("sign.pem", NULL);
    json_t *in = sample_claims(), *claims, *hdr = NULL, *claims2;
    char *jwks = pol_signer_jwks(s), *token, *token2;
    time_t before = time(NULL), after;
    const char *jti;

    ck_assert_ptr_nonnull(jwks);
    token = pol_signer_sign(s, in, 30);
    after = time(NULL);
    ck_assert_ptr_nonnull(token);
    claims = verify(token, jwks, &hdr);
    ck_assert_msg(claims != NULL, "a fresh assertion does not verify against the JWKS");
    /* header: ES256, kid of the current key, typ JWT — and nothing else */
    ck_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), "ES256");
    ck_assert_str_eq(json_string_value(json_object_get(hdr, "kid")), pol_signer_kid(s));
    ck_assert_str_eq(json_string_value(json_object_get(hdr, "typ")), "JWT");
    ck_assert_uint_eq(json_object_size(hdr), 3);
    /* the caller's claims, plus iat, exp, jti */
    ck_assert_str_eq(json_string_value(json_object_get(claims, "customer_id")), "c_aaaaaaaaaaaaaaaaaaaaaaaa");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "email")), "ann@example.com");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "provider")), "google");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "channel")), "web");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "route")), "site");
    ck_assert_str_eq(json_string_value(json_object_get(claims, "aud")), "shop");
    ck_assert_ptr_null(json_object_get(claims, "iss"));
    ck_assert_int_ge(json_integer_value(json_object_get(claims, "iat")), before);
    ck_assert_int_le(json_integer_value(json_object_get(claims, "iat")), after);
    ck_assert_int_eq(
        json_integer_value(json_object_get(claims, "exp")) - json_integer_value(json_object_get(claims, "iat")), 30);
    jti = json_string_value(json_object_get(claims, "jti"));
    ck_assert_ptr_nonnull(jti);
    ck_assert_uint_eq(strlen(jti), 22); /* 128 bits, base64url */
    ck_assert_uint_eq(json_object_size(claims), 9);
    /* the caller's object is untouched */
    ck_assert_uint_eq(json_object_size(in), 6);
    /* iss passes through when the caller sets it; iat/exp/jti given by the caller are replaced */
    json_object_set_new(in, "iss", json_string("https://gateway.example"));
    json_object_set_new(in, "exp", json_integer(4102444800));
    json_object_set_new(in, "jti", json_string("mine"));
    token2 = pol_signer_sign(s, in, 60);
    ck_assert_ptr_nonnull(token2);
    ck_assert_ptr_nonnull(claims2 = verify(token2, jwks, NULL));
    ck_assert_str_eq(json_string_value(json_object_get(claims2, "iss")), "https://gateway.example");
    ck_assert_int_eq(
        json_integer_value(json_object_get(claims2, "exp")) - json_integer_value(json_object_get(claims2, "iat")), 60);
    ck_assert_str_ne(json_string_value(json_object_get(claims2, "jti")), "mine");
    ck_assert_str_ne(json_string_value(json_object_get(claims2, "jti")), jti);
    json_decref(claims2);
    free(token2);
    json_decref(claims);
    json_decref(hdr);
    json_decref(in);
    free(token);
    free(jwks);
    pol_signer_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ tampering */

typedef enum tamper {
    T_PAYLOAD_CHAR,    /* one character of the payload changed */
    T_PAYLOAD_SWAP,    /* a well-formed payload with another customer id, header and signature kept */
    T_SIG_CHAR,        /* one character of the signature changed */
    T_SIG_TRUNCATED,   /* signature shortened */
    T_SIG_OTHER_KEY,   /* signed by another key, kid of ours */
    T_HEADER_ALG_NONE, /* header rewritten to alg none, signature dropped */
    T_HEADER_KID,      /* header's kid changed, no key found */
} tamper_t;

static const struct {
    tamper_t how;
    const char *what;
} tamper_cases[] = {
    {T_PAYLOAD_CHAR, "payload character"}, {T_PAYLOAD_SWAP, "payload swapped"},
    {T_SIG_CHAR, "signature character"},   {T_SIG_TRUNCATED, "signature truncated"},
    {T_SIG_OTHER_KEY, "another key"},      {T_HEADER_ALG_NONE, "alg none"},
    {T_HEADER_KID, "unknown kid"},
};

static char *b64url(const char *s)
{
    char *out = NULL, *copy;
    size_t len = 0;
    cjose_err err;

    ck_assert(cjose_base64url_encode((const uint8_t *)s, strlen(s), &out, &len, &err));
    copy = strndup(out, len);
    cjose_get_dealloc()(out);
    return copy;
}

/* the three segments of a compact JWS, as a new string "h.p.s" with one of them replaced */
static char *replace_segment(const char *token, int which, const char *with)
{
    const char *d1 = strchr(token, '.'), *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    char *out = NULL;
    int n;

    ck_assert_ptr_nonnull(d2);
    if (which == 0)
        n = asprintf(&out, "%s%s", with, d1);
    else if (which == 1)
        n = asprintf(&out, "%.*s.%s%s", (int)(d1 - token), token, with, d2);
    else
        n = asprintf(&out, "%.*s.%s", (int)(d2 - token), token, with);
    ck_assert_int_ge(n, 0);
    return out;
}

START_TEST(test_signer_tampered_table)
{
    pol_signer_t *s = new_signer("tamper.pem", NULL), *other = new_signer("tamper-other.pem", NULL);
    json_t *in = sample_claims(), *ok;
    char *jwks = pol_signer_jwks(s), *token = pol_signer_sign(s, in, 30), *bad = NULL, *seg = NULL, *text;
    char *sig;
    size_t len;

    ck_assert_ptr_nonnull(token);
    ok = verify(token, jwks, NULL);
    ck_assert_ptr_nonnull(ok); /* the untampered token verifies */
    json_decref(ok);
    sig = strrchr(token, '.') + 1;
    switch (tamper_cases[_i].how) {
    case T_PAYLOAD_CHAR:
        bad = strdup(token);
        len = (size_t)(strchr(bad, '.') - bad) + 5;
        bad[len] = bad[len] == 'A' ? 'B' : 'A';
        break;
    case T_PAYLOAD_SWAP:
        json_object_set_new(in, "customer_id", json_string("c_zzzzzzzzzzzzzzzzzzzzzzzz"));
        text = json_dumps(in, JSON_COMPACT);
        seg = b64url(text);
        free(text);
        bad = replace_segment(token, 1, seg);
        break;
    case T_SIG_CHAR:
        bad = strdup(token);
        len = (size_t)(sig - token) + 10;
        bad[len] = bad[len] == 'A' ? 'B' : 'A';
        break;
    case T_SIG_TRUNCATED:
        bad = strdup(token);
        bad[strlen(bad) - 4] = '\0';
        break;
    case T_SIG_OTHER_KEY: {
        char *forged = pol_signer_sign(other, in, 30);
        ck_assert_ptr_nonnull(forged);
        bad = replace_segment(token, 2, strrchr(forged, '.') + 1);
        free(forged);
        break;
    }
    case T_HEADER_ALG_NONE:
        seg = b64url("{\"alg\":\"none\",\"kid\":\"x\",\"typ\":\"JWT\"}");
        text = replace_segment(token, 0, seg);
        bad = replace_segment(text, 2, "");
        free(text);
        break;
    case T_HEADER_KID:
        seg = b64url("{\"alg\":\"ES256\",\"kid\":\"not-our-kid\",\"typ\":\"JWT\"}");
        bad = replace_segment(token, 0, seg);
        break;
    }
    ck_assert_ptr_nonnull(bad);
    ck_assert_str_ne(bad, token);
    ok = verify(bad, jwks, NULL);
    ck_assert_msg(ok == NULL, "tampered (%s) assertion verified", tamper_cases[_i].what);
    /* and directly against our key, whatever the header says */
    {
        cjose_err err;
        cjose_jws_t *jws = cjose_jws_import(bad, strlen(bad), &err);
        cjose_jwk_t *key = jwks_find(jwks, pol_signer_kid(s));
        ck_assert_ptr_nonnull(key);
        ck_assert_msg(jws == NULL || !cjose_jws_verify(jws, key, &err), "tampered (%s) verified with our key",
                      tamper_cases[_i].what);
        cjose_jws_release(jws);
        cjose_jwk_release(key);
    }
    free(seg);
    free(bad);
    free(token);
    free(jwks);
    json_decref(in);
    pol_signer_destroy(other);
    pol_signer_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ kid, JWKS, rotation */

START_TEST(test_signer_kid_is_thumbprint)
{
    pol_signer_t *a = new_signer("fixed-sec1.pem", NULL), *b = new_signer("fixed-pkcs8.pem", NULL), *g;
    char *jwks = pol_signer_jwks(a), *canon = NULL, *kid = NULL;
    json_t *doc = json_loads(jwks, 0, NULL), *key;
    uint8_t digest[32];
    size_t kid_len = 0;
    cjose_err err;

    /* the value the npm jose package computes for this key; SEC1 and PKCS#8 files agree */
    ck_assert_str_eq(pol_signer_kid(a), FIXED_KID);
    ck_assert_str_eq(pol_signer_kid(b), FIXED_KID);
    key = json_array_get(json_object_get(doc, "keys"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(key, "kid")), FIXED_KID);
    ck_assert_str_eq(json_string_value(json_object_get(key, "x")), FIXED_X);
    ck_assert_str_eq(json_string_value(json_object_get(key, "y")), FIXED_Y);
    json_decref(doc);
    free(jwks);
    /* and for a generated key, recomputed here from RFC 7638's text: SHA-256 of the required members in
     * lexicographic order without whitespace, base64url */
    g = new_signer("thumb.pem", NULL);
    jwks = pol_signer_jwks(g);
    doc = json_loads(jwks, 0, NULL);
    key = json_array_get(json_object_get(doc, "keys"), 0);
    ck_assert_int_ge(asprintf(&canon, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                              json_string_value(json_object_get(key, "x")),
                              json_string_value(json_object_get(key, "y"))),
                     0);
    ck_assert_int_eq(EVP_Digest(canon, strlen(canon), digest, NULL, EVP_sha256(), NULL), 1);
    ck_assert(cjose_base64url_encode(digest, sizeof(digest), &kid, &kid_len, &err));
    ck_assert_uint_eq(kid_len, 43);
    ck_assert_int_eq(strncmp(kid, pol_signer_kid(g), kid_len), 0);
    ck_assert_uint_eq(strlen(pol_signer_kid(g)), kid_len);
    cjose_get_dealloc()(kid);
    free(canon);
    json_decref(doc);
    free(jwks);
    pol_signer_destroy(g);
    pol_signer_destroy(b);
    pol_signer_destroy(a);
}
END_TEST

START_TEST(test_signer_jwks_lists_previous)
{
    char p1[512], p2[512], p3[512];
    const char *previous[] = {tpath(p1, sizeof(p1), "fixed-pub.pem"), tpath(p2, sizeof(p2), "fixed-pkcs8.pem"),
                              tpath(p3, sizeof(p3), "rotate-new.pem"), NULL};
    pol_signer_t *old = new_signer("fixed-sec1.pem", NULL), *cur = new_signer("rotate-new.pem", previous);
    json_t *in = sample_claims(), *doc, *keys, *key, *claims;
    char *jwks = pol_signer_jwks(cur), *old_token = pol_signer_sign(old, in, 30), *new_token;
    size_t i;

    doc = json_loads(jwks, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    ck_assert_uint_eq(json_object_size(doc), 1);
    keys = json_object_get(doc, "keys");
    /* current first, then the retired key once (listed as public and as private file, and the current key
     * listed as "previous" by mistake are not repeated) */
    ck_assert_uint_eq(json_array_size(keys), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(keys, 0), "kid")), pol_signer_kid(cur));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(keys, 1), "kid")), FIXED_KID);
    json_array_foreach(keys, i, key)
    {
        /* public parts only, with their use */
        ck_assert_uint_eq(json_object_size(key), 7);
        ck_assert_str_eq(json_string_value(json_object_get(key, "kty")), "EC");
        ck_assert_str_eq(json_string_value(json_object_get(key, "crv")), "P-256");
        ck_assert_str_eq(json_string_value(json_object_get(key, "alg")), "ES256");
        ck_assert_str_eq(json_string_value(json_object_get(key, "use")), "sig");
        ck_assert_uint_eq(strlen(json_string_value(json_object_get(key, "x"))), 43);
        ck_assert_uint_eq(strlen(json_string_value(json_object_get(key, "y"))), 43);
        ck_assert_ptr_null(json_object_get(key, "d"));
    }
    ck_assert_ptr_null(strstr(jwks, "\"d\""));
    /* rotation: an assertion signed with the retired key still verifies during the grace period, and
     * the new key's verifies too */
    ck_assert_ptr_nonnull(claims = verify(old_token, jwks, NULL));
    json_decref(claims);
    ck_assert_ptr_nonnull(new_token = pol_signer_sign(cur, in, 30));
    ck_assert_ptr_nonnull(claims = verify(new_token, jwks, NULL));
    json_decref(claims);
    free(new_token);
    free(old_token);
    free(jwks);
    json_decref(doc);
    json_decref(in);
    pol_signer_destroy(cur);
    pol_signer_destroy(old);
}
END_TEST

/* ------------------------------------------------------------------ key files */

static int count_dir_entries(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "gen", 3) == 0;
    closedir(d);
    return n;
}

START_TEST(test_signer_key_file_generated_0600_and_reused)
{
    char path[512], kid[64];
    struct stat sb, sb2;
    pol_signer_t *s, *again;
    mode_t old_umask = umask(0); /* even with a permissive umask */

    tpath(path, sizeof(path), "gen.pem");
    ck_assert_int_eq(stat(path, &sb), -1);
    s = new_signer("gen.pem", NULL);
    umask(old_umask);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_msg((sb.st_mode & 07777) == 0600, "mode %o", (unsigned)(sb.st_mode & 07777));
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_int_eq(count_dir_entries(), 1); /* no temporary file left beside it */
    snprintf(kid, sizeof(kid), "%s", pol_signer_kid(s));
    pol_signer_destroy(s);
    /* the second start reuses the key, and leaves the file as it was */
    again = new_signer("gen.pem", NULL);
    ck_assert_str_eq(pol_signer_kid(again), kid);
    ck_assert_int_eq(stat(path, &sb2), 0);
    ck_assert_int_eq(sb2.st_ino, sb.st_ino);
    ck_assert_int_eq(sb2.st_mtime, sb.st_mtime);
    ck_assert_int_eq(sb2.st_size, sb.st_size);
    pol_signer_destroy(again);
}
END_TEST

static const struct {
    const char *key;      /* current key file, in tmpdir */
    const char *previous; /* or NULL */
    gw_status_t want;
} bad_key_cases[] = {
    {"corrupt.pem", NULL, GW_EINVAL},
    {"empty.pem", NULL, GW_EINVAL},
    {"truncated.pem", NULL, GW_EINVAL},
    {"garbled.pem", NULL, GW_EINVAL},
    {"p384.pem", NULL, GW_EINVAL},
    {"rsa.pem", NULL, GW_EINVAL},
    {"fixed-pub.pem", NULL, GW_EINVAL}, /* a public key cannot sign */
    {"encrypted.pem", NULL, GW_EINVAL}, /* never prompts for a passphrase */
    {"adir", NULL, GW_EINVAL},
    {"no-such-dir/key.pem", NULL, GW_EIO},
    {"fixed-sec1.pem", "corrupt.pem", GW_EINVAL},
    {"fixed-sec1.pem", "missing.pem", GW_EINVAL},
    {"fixed-sec1.pem", "rsa.pem", GW_EINVAL},
};

START_TEST(test_signer_bad_key_files_table)
{
    char path[512], prev[512], before[4096] = "", after[4096] = "";
    const char *previous[] = {NULL, NULL};
    pol_signer_t *s = (pol_signer_t *)&path; /* sentinel: must stay untouched */
    FILE *fp;
    size_t n1 = 0, n2 = 0;

    tpath(path, sizeof(path), bad_key_cases[_i].key);
    if (bad_key_cases[_i].previous != NULL)
        previous[0] = tpath(prev, sizeof(prev), bad_key_cases[_i].previous);
    if ((fp = fopen(path, "r")) != NULL) {
        n1 = fread(before, 1, sizeof(before), fp);
        fclose(fp);
    }
    ck_assert_int_eq(pol_signer_create(path, previous, &s), bad_key_cases[_i].want);
    ck_assert_ptr_eq(s, (pol_signer_t *)&path);
    /* a bad key file is reported, never replaced by a new key */
    if ((fp = fopen(path, "r")) != NULL) {
        n2 = fread(after, 1, sizeof(after), fp);
        fclose(fp);
    }
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(before, after, n1), 0);
}
END_TEST

START_TEST(test_signer_arguments)
{
    pol_signer_t *s = new_signer("args.pem", NULL), *none = NULL;
    json_t *in = sample_claims(), *arr = json_array();
    char *t;

    ck_assert_ptr_null(pol_signer_sign(s, in, 0));
    ck_assert_ptr_null(pol_signer_sign(s, in, POL_ASSERT_MAX_TTL_S + 1));
    ck_assert_ptr_null(pol_signer_sign(s, arr, 30));
    ck_assert_ptr_null(pol_signer_sign(s, NULL, 30));
    ck_assert_ptr_null(pol_signer_sign(NULL, in, 30));
    ck_assert_ptr_nonnull(t = pol_signer_sign(s, in, POL_ASSERT_MAX_TTL_S));
    free(t);
    ck_assert_ptr_null(pol_signer_jwks(NULL));
    ck_assert_ptr_null(pol_signer_kid(NULL));
    ck_assert_int_eq(pol_signer_create(NULL, NULL, &none), GW_EINVAL);
    ck_assert_int_eq(pol_signer_create("", NULL, &none), GW_EINVAL);
    ck_assert_ptr_null(none);
    pol_signer_destroy(NULL);
    json_decref(arr);
    json_decref(in);
    pol_signer_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ threads and cost */

#define THREADS 4
#define PER_THREAD 100

typedef struct sign_thread {
    pol_signer_t *s;
    char *tokens[PER_THREAD];
} sign_thread_t;

static void *sign_worker(void *arg)
{
    sign_thread_t *t = arg;
    json_t *in = sample_claims();

    for (int i = 0; i < PER_THREAD; ++i)
        t->tokens[i] = pol_signer_sign(t->s, in, 30);
    json_decref(in);
    return NULL;
}

START_TEST(test_signer_concurrent)
{
    pol_signer_t *s = new_signer("threads.pem", NULL);
    char *jwks = pol_signer_jwks(s);
    pthread_t th[THREADS];
    sign_thread_t t[THREADS];
    json_t *claims;

    for (int i = 0; i < THREADS; ++i) {
        t[i].s = s;
        ck_assert_int_eq(pthread_create(&th[i], NULL, sign_worker, &t[i]), 0);
    }
    for (int i = 0; i < THREADS; ++i)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; ++i) {
        for (int j = 0; j < PER_THREAD; ++j) {
            ck_assert_ptr_nonnull(t[i].tokens[j]);
            ck_assert_ptr_nonnull(claims = verify(t[i].tokens[j], jwks, NULL));
            json_decref(claims);
            free(t[i].tokens[j]);
        }
    }
    free(jwks);
    pol_signer_destroy(s);
}
END_TEST

START_TEST(test_signer_cost)
{
    /* measured and printed, never asserted: machines differ, sanitizers slow everything down */
    enum { N = 2000 };
    pol_signer_t *s = new_signer("cost.pem", NULL);
    json_t *in = sample_claims();
    struct timespec t0, t1;
    double us;
    char *t;

    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    for (int i = 0; i < N; ++i) {
        t = pol_signer_sign(s, in, 30);
        ck_assert_ptr_nonnull(t);
        free(t);
    }
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / N;
    printf("signing cost: %.1f us per assertion (%d signatures, one thread)\n", us, N);
    json_decref(in);
    pol_signer_destroy(s);
}
END_TEST

static Suite *assert_suite(void)
{
    Suite *s = suite_create("assert");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_signer_sign_verify);
    tcase_add_loop_test(tc, test_signer_tampered_table, 0, sizeof(tamper_cases) / sizeof(tamper_cases[0]));
    tcase_add_test(tc, test_signer_kid_is_thumbprint);
    tcase_add_test(tc, test_signer_jwks_lists_previous);
    tcase_add_test(tc, test_signer_key_file_generated_0600_and_reused);
    tcase_add_loop_test(tc, test_signer_bad_key_files_table, 0, sizeof(bad_key_cases) / sizeof(bad_key_cases[0]));
    tcase_add_test(tc, test_signer_arguments);
    tcase_add_test(tc, test_signer_concurrent);
    tcase_add_test(tc, test_signer_cost);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int status;

    gw_log_threshold = GW_LOG_ERROR; /* the refusals tested below log their reasons on stderr */
    make_fixtures();
    status = jg_check_run(assert_suite());
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return status;
}
