/*
 * journeygate — small cryptographic helpers over OpenSSL: randomness, SHA-256,
 * HMAC-SHA256, base64url, and AES-256-GCM sealing of short values (cookies).
 * All functions are thread-safe.
 */
#ifndef GW_CRYPTO_H
#define GW_CRYPTO_H

#include "gw.h"

#include <stddef.h>
#include <stdint.h>

#define GW_KEY_LEN 32

/** Fills buf with n cryptographically random bytes. */
gw_status_t gw_random_bytes(void *buf, size_t n);

/** A random token: nbytes of randomness, base64url without padding, into out (cap >= 4*nbytes/3+2). */
gw_status_t gw_random_token(char *out, size_t cap, size_t nbytes);

void gw_sha256(const void *data, size_t len, uint8_t out[32]);
void gw_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[32]);

/** Lower-case hex of len bytes into out (cap >= 2*len+1). */
void gw_hex(const uint8_t *in, size_t len, char *out);

/** base64url without padding; returns the length written (NUL-terminated), or 0 when cap is too small. */
size_t gw_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/** Decodes base64url (padding optional); returns the length, or -1 on bad input or small cap. */
long gw_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/**
 * 1 when the len bytes at t are exactly want base64url characters (A-Z a-z 0-9 - _, no padding):
 * the shape of a session token from gw_random_token(), checked before any store lookup. 0 otherwise.
 */
int gw_token_well_formed(const char *t, size_t len, size_t want);

/** Derives a purpose-bound key from a master secret: HMAC-SHA256(secret, label). */
void gw_derive_key(const void *secret, size_t secret_len, const char *label, uint8_t out[GW_KEY_LEN]);

/**
 * Seals plaintext with AES-256-GCM (random 96-bit nonce, 128-bit tag, `aad` authenticated);
 * writes base64url(nonce | ciphertext | tag) to a malloc'ed string the caller frees.
 */
gw_status_t gw_seal(const uint8_t key[GW_KEY_LEN], const void *plain, size_t len, const char *aad, char **out);

/**
 * Opens what gw_seal() made; GW_EINVAL for anything forged, truncated, or sealed with another key or aad.
 * *out is malloc'ed and NUL-terminated (caller frees); *out_len its length.
 */
gw_status_t gw_open(const uint8_t key[GW_KEY_LEN], const char *sealed, size_t sealed_len, const char *aad, char **out,
                    size_t *out_len);

/**
 * A 32-byte key from a secret file: SHA-256 of its first line (at least 16 bytes). When the file
 * is missing and create is set, 32 random bytes are written to it as hex (mode 0600, O_EXCL).
 */
gw_status_t gw_secret_file_key(const char *file, int create, uint8_t out[GW_KEY_LEN]);

/** Constant-time comparison. */
int gw_ct_equal(const void *a, const void *b, size_t len);

#endif
