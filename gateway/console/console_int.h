/*
 * journeygate — the console's private declarations shared by its h2o-free files (console_util.c,
 * console_session.c) and its HTTP side (console.c). Endpoints use console_api.h only.
 */
#ifndef GW_CONSOLE_INT_H
#define GW_CONSOLE_INT_H

#include "console_api.h"

#include <stddef.h>
#include <stdint.h>

#define CONSOLE_BODY_MAX (16 * 1024) /* the largest POST body the API takes (413 above) */
#define CONSOLE_SEG_MAX 255          /* a path segment's bytes once decoded */
#define CONSOLE_MAX_SEGS 8           /* segments after /.console/api/ */
#define CONSOLE_TOKEN_CHARS 43       /* a staff session token: base64url of 32 random bytes */
#define CONSOLE_CSRF_MAX 64

/**
 * Percent-decodes one path segment (raw, len bytes; '+' stays '+') into out (cap bytes,
 * NUL-terminated) and checks it as console_api.h says: 1..CONSOLE_SEG_MAX bytes, valid UTF-8,
 * no control character (nor a decoded NUL), never "." or "..", and no '/' once decoded. Returns
 * the decoded length, or -1 when the segment is refused (the caller answers 400).
 */
int console_segment_decode(const char *raw, size_t len, char *out, size_t cap);

/** "marketer", "security" or "admin" for one enum console_role bit; NULL for anything else. */
const char *console_role_name(unsigned bit);

/**
 * Parses a YYYY-MM-DD UTC day (exactly 10 characters, a real calendar date from 1970 to 9999)
 * into the ms of its midnight. Returns 0, or -1 when malformed.
 */
int console_parse_day(const char *s, uint64_t *ms);

/** What a staff session keeps of the verified sign-in: the facts its roles are decided on. */
typedef struct console_identity {
    const char *provider, *subject, *email, *name, *hd;
    int email_verified;
    int64_t auth_time; /* seconds since the epoch the provider proved, 0 when unproven */
} console_identity_t;

/**
 * The roles a person holds under cfg: every role whose policy (cfg->console_policy) allows the
 * facts (signed in, the identity's provider, email, verification, hd, one linked provider, channel
 * "console", method GET, the age of the provider authentication at now_ms). 0 when none or when
 * cfg has no console. Thread-safe, never blocks.
 */
unsigned console_roles_for(const gw_config_t *cfg, const char *provider, const char *email, int email_verified,
                           const char *hd, uint64_t auth_time_ms, uint64_t now_ms);

/** Where a request came from, for the audit trail (any may be NULL). */
typedef struct console_origin {
    const char *client, *user_agent, *request_id, *flow_id;
} console_origin_t;

/**
 * BLOCKING (worker thread). Makes a staff session for a verified identity when at least one role's
 * policy allows it: stores {"kind":"staff", the identity's facts, csrf, times} under the SHA-256 of
 * a new token (token receives CONSOLE_TOKEN_CHARS characters and a NUL; cap >= 48) and writes the
 * `console_sign_in` success record naming the staff member as actor. Never creates a customer
 * or records a touchpoint. Returns GW_OK with *staff filled, GW_EDENIED when no role allows the
 * person (nothing stored: the caller records the refusal, see console_actor()), or the store's
 * error. Session lifetimes come from cfg's "session" section (ttl_s, idle_timeout_s).
 */
gw_status_t console_staff_sign_in(store_t *st, const gw_config_t *cfg, const console_identity_t *id,
                                  const console_origin_t *from, uint64_t now_ms, char *token, size_t cap,
                                  console_staff_t *staff);

/**
 * BLOCKING (worker thread). The staff session of a token (len bytes from the cookie): GW_OK with
 * *staff (roles decided now, against cfg: a reload that removes a role takes effect at once) and
 * csrf (cap CONSOLE_CSRF_MAX) filled; GW_ENOTFOUND when the token is malformed, unknown, not a
 * staff session, expired or idle too long; the store's error otherwise. Slides the idle expiry
 * (writes last_seen at most once a minute).
 */
gw_status_t console_session_load(store_t *st, const gw_config_t *cfg, const char *token, size_t len, uint64_t now_ms,
                                 console_staff_t *staff, char *csrf);

/** BLOCKING (worker thread). Ends the staff session of token (audited `console_sign_out`). */
gw_status_t console_session_end(store_t *st, const char *token, size_t len, const console_staff_t *staff,
                                const console_origin_t *from);

/** "staff:PROVIDER:EMAIL" (or the subject when there is no email) into out. */
void console_actor(const char *provider, const char *email, const char *subject, char *out, size_t cap);

#endif
