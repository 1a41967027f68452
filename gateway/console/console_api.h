/*
 * journeygate — the console's JSON API: the contract between the console's HTTP side
 * (console.c: who is signed in, roles, CSRF, answering) and its endpoints (one function each).
 *
 * Every endpoint function runs on a worker thread (background queue), never on an event loop:
 * it may read the store and the analytics snapshot, and it never touches h2o. console.c has
 * already checked the staff session, the endpoint's role and, for a POST, the CSRF token and
 * that the body is a JSON object; the function checks everything else it reads (path segments,
 * query parameters, body members) and answers 4xx with console_error() when they do not hold.
 *
 * Ownership: everything in a console_call_t is owned by console.c and valid during the call
 * only. The function fills the console_answer_t: a JSON object (stolen by console.c), or a
 * stream begun with console_stream_begin().
 *
 * console/API.md documents every endpoint's parameters and answer.
 */
#ifndef GW_CONSOLE_API_H
#define GW_CONSOLE_API_H

#include "gw.h"
#include "config.h"
#include "store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct analytics; /* gateway/analytics.h: the aggregates the marketer and security views read */

/** Roles a staff member holds (a bit each); a person holds every role whose policy allows them. */
enum console_role {
    CONSOLE_MARKETER = 1u << 0,
    CONSOLE_SECURITY = 1u << 1,
    CONSOLE_ADMIN = 1u << 2,
};

/** The signed-in staff member (never a customer). Strings are NUL-terminated, "" when unknown. */
typedef struct console_staff {
    char provider[64];
    char subject[256];
    char email[256];
    char name[256];
    char session[17]; /* first 16 hex characters of the staff session's token hash: names it in the audit trail */
    unsigned roles;   /* enum console_role bits */
    int demo;         /* the demo's labelled staff persona */
    char csrf[64];    /* the session's CSRF token: `me` hands it to the front end, which sends it in X-CSRF-Token */
} console_staff_t;

/** What every endpoint may use; owned by console.c for the gateway's lifetime. */
typedef struct console_ctx {
    store_t *store;
    struct analytics *analytics;
    const gw_config_t *cfg; /* the configuration snapshot of the request (a reference is held for the call) */
} console_ctx_t;

typedef struct console_call {
    const console_ctx_t *ctx;
    const console_staff_t *staff;
    const char *method; /* "GET" or "POST" */
    /* the path after /.console/api/, split at '/', each segment percent-decoded once and checked:
       1..255 bytes of printable ASCII or UTF-8, no control character, never "." or ".." */
    const char *const *segs;
    size_t nsegs;
    const char *query; /* raw query string without '?', "" when none; read it with console_query() */
    size_t query_len;
    json_t *body; /* a POST's JSON object (borrowed), NULL for a GET */
    const char *request_id, *client, *user_agent;
    uint64_t now_ms; /* wall clock, ms since the epoch, when the request arrived */
} console_call_t;

typedef struct console_stream console_stream_t; /* console.c's, for streamed answers */

typedef struct console_answer {
    int status;               /* HTTP status; 200 when left 0 */
    json_t *json;             /* the answer (console.c takes the reference), or NULL when streamed */
    console_stream_t *stream; /* set by console_stream_begin() */
} console_answer_t;

/** An endpoint. Returns nothing: the answer says it all (console_error() for refusals). */
typedef void (*console_endpoint_fn)(const console_call_t *call, console_answer_t *ans);

/**
 * Sets a JSON error answer {"error": code, "message": message}: status 400 (bad parameter),
 * 404 (no such customer), 409 (a confirmation that does not match), 503 (the store failed).
 */
void console_error(console_answer_t *ans, int status, const char *code, const char *message);

/**
 * A query parameter, percent-decoded, into out (cap bytes, NUL-terminated). Returns its length,
 * -1 when absent, -2 when longer than cap - 1, not valid UTF-8 or holding a control character
 * (the endpoint answers 400 naming the parameter).
 */
int console_query(const console_call_t *call, const char *name, char *out, size_t cap);

/**
 * A period from the query's `from` and `to` (YYYY-MM-DD, UTC days, both inclusive): the default is
 * the 30 days ending today. Returns 0 with [*from_ms, *to_ms) set, or -1 after console_error(400)
 * (a malformed date, to before from, or more than 731 days).
 */
int console_period(const console_call_t *call, console_answer_t *ans, uint64_t *from_ms, uint64_t *to_ms);

/** ms since the epoch as ISO 8601 UTC with milliseconds ("2026-12-07T23:09:43.123Z") into out[25]. */
void console_iso_time(uint64_t ms, char out[25]);

/**
 * The staff member as the audit trail names them, "staff:PROVIDER:EMAIL" (the subject when there is
 * no email), into out (cap bytes, NUL-terminated, cut when longer): the actor of the records an
 * endpoint writes through the store itself (store_unlink, store_session_delete, ...).
 */
void console_staff_actor(const console_call_t *call, char *out, size_t cap);

/**
 * Writes an audit record naming the staff member (actor), what they did or looked at (event:
 * "console_view_profile", "console_view_journey", "console_export", "console_revoke_sessions", ...),
 * the customer concerned (may be NULL) and a short detail (may be NULL). Synced before it returns:
 * personal data is shown only after its viewing is on record. Returns GW_OK or the store's error
 * (the endpoint then answers 503 and shows nothing).
 */
gw_status_t console_audit(const console_call_t *call, const char *event, const char *outcome, const char *customer_id,
                          const char *detail);

/**
 * Streamed answers (CSV exports). console_stream_begin() sets the answer's headers (content type,
 * attachment file name); console_stream_write() hands a chunk to the event loop and blocks while
 * more than a bounded amount waits to be sent (the client's pace sets the export's); it returns
 * 0, or -1 when the client went away (stop producing). The endpoint returns when done: the stream
 * ends then. A stream that has begun cannot turn into an error answer.
 */
int console_stream_begin(const console_call_t *call, console_answer_t *ans, const char *content_type,
                         const char *filename);
int console_stream_write(console_answer_t *ans, const char *data, size_t len);

/* ---- the endpoints (console/API.md), by file ---- */

/* console_session.c (console.c's own): who am I */
void console_api_me(const console_call_t *call, console_answer_t *ans);

/* console_marketer.c: records of customers */
void console_api_customers_search(const console_call_t *call, console_answer_t *ans); /* GET customers */
void console_api_customer(const console_call_t *call, console_answer_t *ans);         /* GET customers/ID */
void console_api_journey(const console_call_t *call, console_answer_t *ans);          /* GET customers/ID/journey */
void console_api_export(const console_call_t *call, console_answer_t *ans);           /* GET export/KIND.csv */

/* console_figures.c: aggregates (analytics snapshot) */
void console_api_overview(const console_call_t *call, console_answer_t *ans);      /* GET overview */
void console_api_transitions(const console_call_t *call, console_answer_t *ans);   /* GET transitions */
void console_api_paths(const console_call_t *call, console_answer_t *ans);         /* GET paths */
void console_api_funnel(const console_call_t *call, console_answer_t *ans);        /* GET funnel */
void console_api_stages(const console_call_t *call, console_answer_t *ans);        /* GET stages */
void console_api_inventory(const console_call_t *call, console_answer_t *ans);     /* GET inventory */
void console_api_signin_volume(const console_call_t *call, console_answer_t *ans); /* GET signins/volume */

/* console_security.c: the trail, sessions, identities, policies */
void console_api_audit(const console_call_t *call, console_answer_t *ans);             /* GET audit */
void console_api_audit_chain(const console_call_t *call, console_answer_t *ans);       /* GET audit/chain */
void console_api_audit_flow(const console_call_t *call, console_answer_t *ans);        /* GET audit/flow/FLOW */
void console_api_customer_security(const console_call_t *call, console_answer_t *ans); /* GET customers/ID/security */
void console_api_revoke_sessions(const console_call_t *call,
                                 console_answer_t *ans);                      /* POST customers/ID/sessions/revoke */
void console_api_unlink(const console_call_t *call, console_answer_t *ans);   /* POST customers/ID/unlink (admin) */
void console_api_erase(const console_call_t *call, console_answer_t *ans);    /* POST customers/ID/erase (admin) */
void console_api_policies(const console_call_t *call, console_answer_t *ans); /* GET policies */
void console_api_explain(const console_call_t *call, console_answer_t *ans);  /* GET policies/explain */

#endif
