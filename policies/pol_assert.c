/*
 * journeygate — the identity-assertion signer: an EC P-256 key from a PEM file (generated when
 * absent), ES256 compact JWS through cjose, the JWKS of the current and retired keys.
 *
 * OpenSSL reads, checks and writes the PEM files (EVP_PKEY); cjose holds the signing key, signs
 * and serialises the JWS, and base64url-encodes the thumbprint; jansson builds every JSON text.
 * The private scalar goes from OpenSSL to cjose as raw bytes (cjose_jwk_create_EC_spec, the
 * function cjose_jwk_import calls after parsing) so that it never exists as a JWK JSON string in
 * memory; it is wiped as soon as cjose holds it.
 *
 * Cost: one assertion (claims copy, JSON, ECDSA P-256 signature, base64url) takes about 50 us on one
 * core: test_assert's test_signer_cost measured 41-56 us per assertion over 2000 signatures on the
 * development container (RelWithDebInfo, no sanitizer; about 120 us under ASan+UBSan). It prints
 * "signing cost: N us per assertion" on every run. Negligible next to the proxied request.
 *
 * Thread-safety: after pol_signer_create() nothing in the signer is written. Signing reads the
 * cjose key (ECDSA_do_sign on a shared key is read-only in OpenSSL) and builds its own header,
 * payload and JWS objects, so any number of threads sign at once without a lock.
 */
#include "pol_assert.h"
#include "pol_int.h"

#include <cjose/cjose.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOD "assert"
#define KEY_FILE_MAX_BYTES (64 * 1024)
#define P256_BYTES 32
#define MAX_KEYS 16 /* current + retired keys published */

struct pol_signer {
    cjose_jwk_t *key; /* private; only read after creation */
    char *kid;        /* RFC 7638 thumbprint of the current key */
    char *jwks;       /* the JWKS document, built once */
};

/* never prompt on a terminal for a passphrase: encrypted keys are refused */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* logs "key file FILE: problem (OpenSSL's reason)" and clears OpenSSL's error queue */
static void log_openssl(const char *file, const char *problem)
{
    unsigned long e = ERR_get_error();
    char msg[256];

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    else
        snprintf(msg, sizeof(msg), "%s", "no detail");
    ERR_clear_error();
    GW_LOG_ERR(MOD, "key file %s: %s (%s)", file, problem, msg);
}

static int is_p256(EVP_PKEY *pk)
{
    char group[64];
    size_t glen = 0;

    if (!EVP_PKEY_is_a(pk, "EC") ||
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1)
        return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* a BIGNUM parameter of pk as exactly 32 big-endian bytes */
static int get_param32(EVP_PKEY *pk, const char *param, uint8_t out[P256_BYTES])
{
    BIGNUM *bn = NULL;
    int ok;

    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return 0;
    ok = BN_bn2binpad(bn, out, P256_BYTES) == P256_BYTES;
    BN_clear_free(bn);
    return ok;
}

/*
 * Reads a PEM EC P-256 key: a private key, or (want_private 0) a public one. Returns a cjose key
 * holding the private scalar (want_private) or the public point only. GW_ENOTFOUND when absent.
 */
static gw_status_t load_key(const char *file, int want_private, cjose_jwk_t **out)
{
    gw_status_t st = GW_EINVAL;
    char *pem = NULL;
    size_t len = 0;
    int os_error = 0, is_private = 0;
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    uint8_t d[P256_BYTES], x[P256_BYTES], y[P256_BYTES];
    cjose_jwk_ec_keyspec spec;
    cjose_err cerr;
    struct stat sb;

    memset(&spec, 0, sizeof(spec));
    memset(&cerr, 0, sizeof(cerr));
    if ((st = pol_file_read(file, KEY_FILE_MAX_BYTES, &pem, &len, &os_error)) != GW_OK) {
        if (st != GW_ENOTFOUND)
            GW_LOG_ERR(MOD, "key file %s: %s", file,
                       st == GW_EINVAL    ? "not a regular file"
                       : st == GW_ETOOBIG ? "larger than 64 KiB"
                                          : strerror(os_error != 0 ? os_error : EIO));
        goto Exit;
    }
    st = GW_EINVAL;
    if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
        st = GW_ENOMEM;
        goto Exit;
    }
    if ((pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) != NULL) {
        is_private = 1;
    } else if (!want_private) {
        BIO_free(bio);
        ERR_clear_error();
        if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
            st = GW_ENOMEM;
            goto Exit;
        }
        pk = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    }
    if (pk == NULL) {
        log_openssl(file, want_private ? "not an unencrypted PEM private key" : "not a PEM key");
        goto Exit;
    }
    if (!is_p256(pk)) {
        GW_LOG_ERR(MOD, "key file %s: not an EC P-256 key", file);
        goto Exit;
    }
    /* a corrupted scalar or a point off the curve is refused here, not at the first signature */
    if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) == NULL) {
        st = GW_ENOMEM;
        goto Exit;
    }
    if ((is_private ? EVP_PKEY_check(ctx) : EVP_PKEY_public_check(ctx)) != 1) {
        log_openssl(file, "inconsistent key");
        goto Exit;
    }
    spec.crv = CJOSE_JWK_EC_P_256;
    if (want_private) {
        if (!get_param32(pk, OSSL_PKEY_PARAM_PRIV_KEY, d)) {
            log_openssl(file, "cannot read the private key");
            goto Exit;
        }
        /* cjose derives the public point from d */
        spec.d = d;
        spec.dlen = sizeof(d);
        if (stat(file, &sb) == 0 && (sb.st_mode & 077) != 0)
            GW_LOG_WARNING(MOD, "key file %s is readable by other users (mode %03o): chmod 600 it", file,
                           (unsigned)(sb.st_mode & 0777));
    } else {
        /* a retired key is only published: its private part, if any, is not kept */
        if (!get_param32(pk, OSSL_PKEY_PARAM_EC_PUB_X, x) || !get_param32(pk, OSSL_PKEY_PARAM_EC_PUB_Y, y)) {
            log_openssl(file, "cannot read the public key");
            goto Exit;
        }
        spec.x = x;
        spec.xlen = sizeof(x);
        spec.y = y;
        spec.ylen = sizeof(y);
    }
    if ((*out = cjose_jwk_create_EC_spec(&spec, &cerr)) == NULL) {
        GW_LOG_ERR(MOD, "key file %s: cjose: %s", file, cerr.message != NULL ? cerr.message : "error");
        goto Exit;
    }
    st = GW_OK;
Exit:
    OPENSSL_cleanse(d, sizeof(d));
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    return st;
}

/*
 * Writes a new P-256 key to `file` unless a file is already there. The key goes to a temporary file
 * created O_EXCL with mode 0600 in the same directory, is flushed to disk, and is published with
 * link(2), which never replaces an existing file: the file exists complete or not at all, and when
 * two processes race the first link wins and both then load that key.
 */
static gw_status_t generate_key(const char *file)
{
    gw_status_t st = GW_EIO;
    EVP_PKEY *pk = NULL;
    BIO *bio = NULL;
    char *tmp = NULL, *dir = NULL, *slash;
    int fd = -1, dfd = -1, linked = 0, rc;

    if (asprintf(&tmp, "%s.tmp.XXXXXX", file) < 0) {
        tmp = NULL;
        st = GW_ENOMEM;
        goto Exit;
    }
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        GW_LOG_ERR(MOD, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto Exit;
    }
    if (fchmod(fd, 0600) != 0) {
        GW_LOG_ERR(MOD, "chmod %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if ((pk = EVP_EC_gen("P-256")) == NULL) {
        log_openssl(file, "cannot generate a key");
        goto Exit;
    }
    if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
        st = GW_ENOMEM;
        goto Exit;
    }
    if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1 || BIO_flush(bio) != 1) {
        log_openssl(tmp, "cannot write");
        goto Exit;
    }
    if (fsync(fd) != 0) {
        GW_LOG_ERR(MOD, "cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        GW_LOG_ERR(MOD, "cannot write %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    if (link(tmp, file) != 0) {
        if (errno != EEXIST) {
            GW_LOG_ERR(MOD, "cannot create %s: %s", file, strerror(errno));
            goto Exit;
        }
        /* another process published its key first: that one is used */
    } else {
        linked = 1;
    }
    /* make the new name durable too; a failure here only risks losing the key on a power cut */
    if (linked && (dir = strdup(file)) != NULL) {
        slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        if ((dfd = open(slash != NULL ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0)
            GW_LOG_WARNING(MOD, "fsync of the directory of %s: %s", file, strerror(errno));
    }
    if (linked)
        GW_LOG_INF(MOD, "generated a new assertion signing key in %s", file);
    st = GW_OK;
Exit:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tmp != NULL && unlink(tmp) != 0)
        GW_LOG_WARNING(MOD, "cannot remove %s: %s", tmp, strerror(errno));
    free(tmp);
    free(dir);
    BIO_free(bio);
    EVP_PKEY_free(pk);
    return st;
}

/*
 * The public JWK of key as a jansson object {kty, crv, x, y, kid, alg, use}, and its kid: the RFC 7638
 * thumbprint, base64url(SHA-256 of the required members crv, kty, x, y in lexicographic order, no
 * whitespace) — jansson's JSON_SORT_KEYS | JSON_COMPACT is exactly that form for these members.
 */
static json_t *public_jwk(const cjose_jwk_t *key)
{
    json_t *jwk = NULL, *req = NULL, *ret = NULL;
    char *pub = NULL, *canon = NULL, *kid = NULL;
    uint8_t digest[32];
    unsigned int dlen = 0;
    size_t kid_len = 0;
    cjose_err cerr;

    if ((pub = cjose_jwk_to_json(key, false, &cerr)) == NULL ||
        (jwk = json_loads(pub, JSON_REJECT_DUPLICATES, NULL)) == NULL)
        goto Exit;
    if (!json_is_string(json_object_get(jwk, "crv")) || !json_is_string(json_object_get(jwk, "x")) ||
        !json_is_string(json_object_get(jwk, "y")) || json_object_get(jwk, "d") != NULL)
        goto Exit;
    if ((req = json_pack("{s:O, s:s, s:O, s:O}", "crv", json_object_get(jwk, "crv"), "kty", "EC", "x",
                         json_object_get(jwk, "x"), "y", json_object_get(jwk, "y"))) == NULL ||
        (canon = json_dumps(req, JSON_SORT_KEYS | JSON_COMPACT)) == NULL)
        goto Exit;
    if (EVP_Digest(canon, strlen(canon), digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != sizeof(digest) ||
        !cjose_base64url_encode(digest, sizeof(digest), &kid, &kid_len, &cerr))
        goto Exit;
    if (json_object_set_new(jwk, "kty", json_string("EC")) != 0 ||
        json_object_set_new(jwk, "kid", json_stringn(kid, kid_len)) != 0 ||
        json_object_set_new(jwk, "alg", json_string("ES256")) != 0 ||
        json_object_set_new(jwk, "use", json_string("sig")) != 0)
        goto Exit;
    ret = jwk;
    jwk = NULL;
Exit:
    if (pub != NULL)
        cjose_get_dealloc()(pub);
    if (kid != NULL)
        cjose_get_dealloc()(kid);
    free(canon);
    json_decref(req);
    json_decref(jwk);
    return ret;
}

gw_status_t pol_signer_create(const char *key_file, const char *const *previous, pol_signer_t **out)
{
    gw_status_t st = GW_ENOMEM;
    pol_signer_t *s = NULL;
    cjose_jwk_t *old = NULL;
    json_t *keys = NULL, *jwks = NULL, *jwk = NULL;
    const char *kid;
    size_t i, j;
    int dup;

    if (key_file == NULL || key_file[0] == '\0' || out == NULL) {
        st = GW_EINVAL;
        goto Exit;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL || (keys = json_array()) == NULL)
        goto Exit;
    if ((st = load_key(key_file, 1, &s->key)) == GW_ENOTFOUND) {
        if ((st = generate_key(key_file)) != GW_OK)
            goto Exit;
        st = load_key(key_file, 1, &s->key);
    }
    if (st != GW_OK)
        goto Exit;
    st = GW_ENOMEM;
    if ((jwk = public_jwk(s->key)) == NULL || json_array_append_new(keys, jwk) != 0) {
        jwk = NULL;
        goto Exit;
    }
    jwk = NULL;
    if ((s->kid = strdup(json_string_value(json_object_get(json_array_get(keys, 0), "kid")))) == NULL)
        goto Exit;
    for (i = 0; previous != NULL && previous[i] != NULL; ++i) {
        if ((st = load_key(previous[i], 0, &old)) != GW_OK) {
            if (st == GW_ENOTFOUND)
                GW_LOG_ERR(MOD, "retired key file %s: no such file", previous[i]);
            st = st == GW_ENOTFOUND ? GW_EINVAL : st;
            goto Exit;
        }
        st = GW_ENOMEM;
        if ((jwk = public_jwk(old)) == NULL)
            goto Exit;
        cjose_jwk_release(old);
        old = NULL;
        kid = json_string_value(json_object_get(jwk, "kid"));
        for (j = 0, dup = 0; j < json_array_size(keys); ++j)
            dup |= strcmp(kid, json_string_value(json_object_get(json_array_get(keys, j), "kid"))) == 0;
        if (dup) {
            GW_LOG_WARNING(MOD, "retired key file %s holds a key already published; listed once", previous[i]);
            json_decref(jwk);
        } else if (json_array_size(keys) >= MAX_KEYS) {
            GW_LOG_ERR(MOD, "more than %d keys to publish", MAX_KEYS);
            st = GW_EINVAL;
            goto Exit;
        } else if (json_array_append_new(keys, jwk) != 0) {
            jwk = NULL;
            goto Exit;
        }
        jwk = NULL;
    }
    if ((jwks = json_pack("{s:O}", "keys", keys)) == NULL || (s->jwks = json_dumps(jwks, JSON_COMPACT)) == NULL)
        goto Exit;
    *out = s;
    s = NULL;
    st = GW_OK;
Exit:
    if (old != NULL)
        cjose_jwk_release(old);
    json_decref(jwk);
    json_decref(keys);
    json_decref(jwks);
    pol_signer_destroy(s);
    return st;
}

void pol_signer_destroy(pol_signer_t *s)
{
    if (s == NULL)
        return;
    /* cjose frees the EC key with EC_KEY_free, which clears the private scalar */
    if (s->key != NULL)
        cjose_jwk_release(s->key);
    free(s->kid);
    free(s->jwks);
    free(s);
}

char *pol_signer_sign(pol_signer_t *s, json_t *claims, unsigned ttl_s)
{
    char *token = NULL, *payload = NULL, *jti = NULL;
    json_t *body = NULL;
    cjose_header_t *hdr = NULL;
    cjose_jws_t *jws = NULL;
    const char *compact = NULL;
    uint8_t rnd[16];
    size_t jti_len = 0;
    cjose_err cerr;
    time_t now;

    memset(&cerr, 0, sizeof(cerr));
    if (s == NULL || !json_is_object(claims) || ttl_s == 0 || ttl_s > POL_ASSERT_MAX_TTL_S)
        goto Exit;
    if ((now = time(NULL)) == (time_t)-1 || RAND_bytes(rnd, sizeof(rnd)) != 1 ||
        !cjose_base64url_encode(rnd, sizeof(rnd), &jti, &jti_len, &cerr))
        goto Exit;
    /* a shallow copy: the caller's object is not touched, its values are shared read-only */
    if ((body = json_copy(claims)) == NULL || json_object_set_new(body, "iat", json_integer((json_int_t)now)) != 0 ||
        json_object_set_new(body, "exp", json_integer((json_int_t)now + (json_int_t)ttl_s)) != 0 ||
        json_object_set_new(body, "jti", json_stringn(jti, jti_len)) != 0 ||
        (payload = json_dumps(body, JSON_COMPACT)) == NULL)
        goto Exit;
    if ((hdr = cjose_header_new(&cerr)) == NULL || !cjose_header_set(hdr, CJOSE_HDR_ALG, CJOSE_HDR_ALG_ES256, &cerr) ||
        !cjose_header_set(hdr, CJOSE_HDR_KID, s->kid, &cerr) || !cjose_header_set(hdr, "typ", "JWT", &cerr))
        goto Exit;
    if ((jws = cjose_jws_sign(s->key, hdr, (const uint8_t *)payload, strlen(payload), &cerr)) == NULL ||
        !cjose_jws_export(jws, &compact, &cerr)) {
        GW_LOG_ERR(MOD, "signing failed: %s", cerr.message != NULL ? cerr.message : "cjose error");
        goto Exit;
    }
    token = strdup(compact);
Exit:
    if (jti != NULL)
        cjose_get_dealloc()(jti);
    cjose_jws_release(jws);
    cjose_header_release(hdr);
    free(payload);
    json_decref(body);
    return token;
}

char *pol_signer_jwks(const pol_signer_t *s)
{
    return s != NULL ? strdup(s->jwks) : NULL;
}

const char *pol_signer_kid(const pol_signer_t *s)
{
    return s != NULL ? s->kid : NULL;
}
