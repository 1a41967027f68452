#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GCM_NONCE 12
#define GCM_TAG 16
#define SEAL_MAX 16384 /* sealed values are cookies: far below this */

gw_status_t gw_random_bytes(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? GW_OK : GW_EIO;
}

gw_status_t gw_random_token(char *out, size_t cap, size_t nbytes)
{
    uint8_t raw[64];

    if (nbytes > sizeof(raw) || gw_random_bytes(raw, nbytes) != GW_OK)
        return GW_EIO;
    return gw_b64url_encode(raw, nbytes, out, cap) != 0 ? GW_OK : GW_EINVAL;
}

/* OpenSSL 3 looks the digest up again on every SHA256() call: fetch it once */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void gw_sha256(const void *data, size_t len, uint8_t out[32])
{
    pthread_once(&sha256_once, sha256_fetch);
    if (sha256_md == NULL || EVP_Digest(data, len, out, NULL, sha256_md, NULL) != 1)
        SHA256(data, len, out);
}

void gw_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 32;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len);
}

void gw_hex(const uint8_t *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; ++i) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

size_t gw_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t need = 4 * ((len + 2) / 3) + 1, n;

    if (len > SIZE_MAX / 2 || cap < need)
        return 0;
    n = (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        --n;
    for (size_t i = 0; i < n; ++i) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[n] = '\0';
    return n;
}

int gw_token_well_formed(const char *t, size_t len, size_t want)
{
    if (len != want)
        return 0;
    for (size_t i = 0; i < len; ++i)
        if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') ||
              t[i] == '-' || t[i] == '_'))
            return 0;
    return 1;
}

long gw_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    char *buf;
    size_t padded, i;
    int n;
    long result = -1;

    while (len > 0 && in[len - 1] == '=')
        --len;
    if (len % 4 == 1 || len > SEAL_MAX * 2)
        return -1;
    padded = (len + 3) / 4 * 4;
    if (cap < padded / 4 * 3 || (buf = malloc(padded + 1)) == NULL)
        return -1;
    for (i = 0; i < len; ++i) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            goto Exit; /* '+', '/', '=' and anything else are not base64url */
        buf[i] = c;
    }
    for (; i < padded; ++i)
        buf[i] = '=';
    buf[padded] = '\0';
    n = EVP_DecodeBlock(out, (unsigned char *)buf, (int)padded);
    if (n < 0)
        goto Exit;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    result = n - (long)(padded - len);
Exit:
    free(buf);
    return result;
}

void gw_derive_key(const void *secret, size_t secret_len, const char *label, uint8_t out[GW_KEY_LEN])
{
    gw_hmac_sha256(secret, secret_len, label, strlen(label), out);
}

gw_status_t gw_seal(const uint8_t key[GW_KEY_LEN], const void *plain, size_t len, const char *aad, char **out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *buf = NULL;
    char *enc = NULL;
    int n = 0, fin = 0;
    size_t total, enc_cap;
    gw_status_t st = GW_EIO;

    if (len > SEAL_MAX)
        return GW_ETOOBIG;
    total = GCM_NONCE + len + GCM_TAG;
    enc_cap = 4 * ((total + 2) / 3) + 1;
    if ((buf = malloc(total)) == NULL || (enc = malloc(enc_cap)) == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL) {
        st = GW_ENOMEM;
        goto Exit;
    }
    if (gw_random_bytes(buf, GCM_NONCE) != GW_OK || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_EncryptUpdate(ctx, buf + GCM_NONCE, &n, plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, buf + GCM_NONCE + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, buf + GCM_NONCE + len) != 1)
        goto Exit;
    if (gw_b64url_encode(buf, total, enc, enc_cap) == 0)
        goto Exit;
    *out = enc;
    enc = NULL;
    st = GW_OK;
Exit:
    EVP_CIPHER_CTX_free(ctx);
    free(buf);
    free(enc);
    return st;
}

gw_status_t gw_open(const uint8_t key[GW_KEY_LEN], const char *sealed, size_t sealed_len, const char *aad, char **out,
                    size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t *raw = NULL;
    char *plain = NULL;
    long raw_len;
    int n = 0, fin = 0;
    size_t cap = sealed_len / 4 * 3 + 3, len;
    gw_status_t st = GW_EINVAL;

    if (sealed_len > SEAL_MAX * 2)
        return GW_EINVAL;
    if ((raw = malloc(cap)) == NULL)
        return GW_ENOMEM;
    raw_len = gw_b64url_decode(sealed, sealed_len, raw, cap);
    if (raw_len < GCM_NONCE + GCM_TAG)
        goto Exit;
    len = (size_t)raw_len - GCM_NONCE - GCM_TAG;
    if ((plain = malloc(len + 1)) == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL) {
        st = GW_ENOMEM;
        goto Exit;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
        EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, raw + GCM_NONCE, (int)len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, raw + GCM_NONCE + len) != 1 ||
        EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &fin) != 1)
        goto Exit;
    plain[len] = '\0';
    *out = plain;
    *out_len = len;
    plain = NULL;
    st = GW_OK;
Exit:
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    free(plain);
    return st;
}

int gw_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

gw_status_t gw_secret_file_key(const char *file, int create, uint8_t out[GW_KEY_LEN])
{
    char buf[4097];
    ssize_t n;
    int fd;

    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1 && create && errno == ENOENT) {
        uint8_t raw[32];
        char hex[65];
        gw_random_bytes(raw, sizeof(raw));
        gw_hex(raw, sizeof(raw), hex);
        hex[64] = '\n';
        if ((fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1 || write(fd, hex, 65) != 65 ||
            fsync(fd) != 0) {
            GW_LOG_ERR("crypto", "cannot create session secret %s: %s", file, strerror(errno));
            if (fd != -1)
                close(fd);
            return GW_EIO;
        }
        close(fd);
        GW_LOG_INF("crypto", "generated a new session secret in %s", file);
        fd = open(file, O_RDONLY | O_CLOEXEC);
    }
    if (fd == -1) {
        GW_LOG_ERR("crypto", "cannot read session secret %s: %s", file, strerror(errno));
        return GW_EIO;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        --n;
    if (n < 16) {
        GW_LOG_ERR("crypto", "session secret %s is shorter than 16 bytes", file);
        return GW_EINVAL;
    }
    gw_sha256(buf, (size_t)n, out);
    explicit_bzero(buf, sizeof(buf));
    return GW_OK;
}
