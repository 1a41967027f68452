/*
 * journeygate — development sign-in stand-ins for `journeygate demo` ONLY.
 *
 * A Google-like OpenID Provider and a Facebook-like Login + Graph API that let a
 * newcomer pick a test persona. They issue real signed ID tokens (RS256, a key
 * generated at start) and real access tokens, so the gateway signs in through
 * exactly the same provider code and checks as with the real services. Nothing in
 * a configuration file can enable them: only the demo command creates one.
 */
#ifndef PROV_DEV_H
#define PROV_DEV_H

#include "gw.h"

#include <jansson.h>
#include <stddef.h>

typedef struct prov_dev prov_dev_t;

typedef struct prov_dev_request {
    const char *method;
    const char *path; /* without the query */
    size_t path_len;
    const char *query; /* without '?', may be empty */
    size_t query_len;
    const char *body;
    size_t body_len;
    const char *authorization; /* the Authorization header value, or NULL */
    size_t authorization_len;
} prov_dev_request_t;

typedef struct prov_dev_response {
    int status;
    const char *content_type;
    char *location; /* malloc'ed, or NULL */
    char *body;     /* malloc'ed */
    size_t body_len;
} prov_dev_response_t;

/**
 * Creates the stand-ins served at `base_url` (e.g. "http://127.0.0.1:8082") for a gateway
 * whose public URL is `gateway_url`. *providers receives the `providers` configuration
 * object that points a gateway at them (new reference).
 */
prov_dev_t *prov_dev_create(const char *base_url, const char *gateway_url, json_t **providers);

/** Answers one request. Thread-safe. The caller frees out->location and out->body. */
void prov_dev_handle(prov_dev_t *d, const prov_dev_request_t *req, prov_dev_response_t *out);

#endif
