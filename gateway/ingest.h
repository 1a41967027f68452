/*
 * journeygate — the bodies untrusted clients send to the sign-in side, parsed and validated in full
 * before anything acts on them: `POST /.auth/touchpoints` (ingested touchpoints) and `POST /.auth/token`
 * (a mobile app's provider token). Pure functions of the body bytes and the configured providers:
 * no server, no store, so unit tests and fuzz targets call them directly.
 *
 * Every string that passes is valid UTF-8 free of control characters (C0, DEL, C1) and within its
 * bound; identifiers sent to the store are in their exact form (customer ids, printable ASCII subjects,
 * configured provider names).
 */
#ifndef GW_INGEST_H
#define GW_INGEST_H

#include "gw.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define GW_INGEST_BODY_MAX (1024 * 1024)
#define GW_INGEST_EVENTS_MAX 1000
#define GW_INGEST_PROVIDER_MAX 64 /* a provider's configured name */
#define GW_INGEST_SUBJECT_MAX 255 /* OpenID Connect Core: sub is at most 255 ASCII characters */
#define GW_INGEST_EMAIL_MAX 254   /* RFC 5321's path limit less the angle brackets */
#define GW_INGEST_CHANNEL_MAX 64
#define GW_INGEST_TOUCHPOINT_MAX 128
#define GW_INGEST_IDEMPOTENCY_MAX 200
#define GW_INGEST_STATUS_TEXT_MAX 64
#define GW_INGEST_ATTRS_MAX 32
#define GW_INGEST_ATTR_KEY_MAX 64
#define GW_INGEST_ATTR_VALUE_MAX 1024
#define GW_INGEST_EXTRA_MAX 15872                  /* the stored JSON of attributes and a text status */
#define GW_INGEST_TIME_MIN 946684800000ULL         /* 2000-01-01: an earlier time is seconds sent as milliseconds */
#define GW_INGEST_TIME_AHEAD_MAX (86400 * 1000ULL) /* clocks disagree, but not by more than a day */
#define GW_CUSTOMER_ID_LEN 26                      /* "c_" and 24 characters of a-z, 2-7 */

#define GW_TOKEN_BODY_MAX 16384
#define GW_TOKEN_MAX 8192

/** A provider the gateway has configured: its name (as in URLs and events) and type ("oidc", "facebook", ...). */
typedef struct gw_known_provider {
    const char *name, *type;
} gw_known_provider_t;

/** One ingested event that passed validation. Strings point into the batch's parsed body. */
typedef struct gw_ingest_event {
    size_t index; /* its position in the request's events */
    /* exactly one form is set: customer_id, email, or provider and subject; the others are NULL */
    const char *customer_id, *email, *provider, *subject;
    const char *channel, *touchpoint;
    const char *stage;           /* NULL when absent */
    const char *idempotency_key; /* NULL when absent */
    int has_time;                /* time_ms was given (otherwise the gateway's receiving time applies) */
    uint64_t time_ms;
    int status;  /* a numeric status (100-599); 0 when none or given as text */
    char *extra; /* JSON object text of what has no field of its own (attributes, a text status); owned, or NULL */
    size_t extra_len;
} gw_ingest_event_t;

/** One refused event: its position and why (a static string, safe to show the client). */
typedef struct gw_ingest_error {
    size_t index;
    const char *reason;
} gw_ingest_error_t;

/** A validated batch: every event of the request is either in events or in errors, each in index order. */
typedef struct gw_ingest_batch {
    size_t total; /* events in the request */
    gw_ingest_event_t *events;
    size_t count;
    gw_ingest_error_t *errors;
    size_t error_count;
    json_t *root; /* the parsed body the events' strings point into */
} gw_ingest_batch_t;

/**
 * Parses and validates a `POST /.auth/touchpoints` body: `{"events": [...]}` with 1 to
 * GW_INGEST_EVENTS_MAX events, at most GW_INGEST_BODY_MAX bytes. `provs` (n_provs entries) are the
 * configured providers; `now_ms` bounds event times from above. On GW_OK, *out holds every event,
 * valid or refused, and the caller frees it with gw_ingest_batch_free(). A body that is not such an
 * object returns GW_EINVAL (GW_ETOOBIG when too large) with *problem set to a static sentence for
 * the client, and *out left empty; GW_ENOMEM when memory runs out.
 */
gw_status_t gw_ingest_parse(const char *body, size_t len, const gw_known_provider_t *provs, size_t n_provs,
                            uint64_t now_ms, gw_ingest_batch_t *out, const char **problem);

/** Frees what gw_ingest_parse() put in b (NULL or empty is fine) and empties it. */
void gw_ingest_batch_free(gw_ingest_batch_t *b);

/** A validated `POST /.auth/token` body. */
typedef struct gw_token_request {
    size_t provider;   /* index into the provs given to gw_token_request_parse() */
    const char *token; /* the id_token (OpenID Connect providers) or access_token (type "facebook"); points into root */
    json_t *root;
} gw_token_request_t;

/**
 * Parses and validates a `POST /.auth/token` body: `{"provider": name, "id_token": "..."}`, or
 * `"access_token"` for a provider of type "facebook"; the provider is one of provs, the token 1 to
 * GW_TOKEN_MAX printable ASCII characters without spaces; other fields are ignored (as OAuth token
 * requests ignore unknown parameters). GW_OK fills *out (the caller json_decref()s out->root);
 * GW_EINVAL sets *problem (a static sentence) and leaves *out empty.
 */
gw_status_t gw_token_request_parse(const char *body, size_t len, const gw_known_provider_t *provs, size_t n_provs,
                                   gw_token_request_t *out, const char **problem);

/**
 * 1 when s (len bytes) is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF)
 * without control characters (U+0000-U+001F, U+007F-U+009F); with ascii_only, only 0x20-0x7E.
 */
int gw_text_ok(const char *s, size_t len, int ascii_only);

/** 1 when the n bytes are valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF); controls allowed. */
int gw_utf8_ok(const char *s, size_t n);

/**
 * 1 when s (len bytes) is a customer id as the store makes them: "c_" and 24 characters of its
 * base32 alphabet (a-z, 2-7), GW_CUSTOMER_ID_LEN in all. 0 otherwise, and for s NULL.
 */
int gw_customer_id_ok(const char *s, size_t len);

#endif
