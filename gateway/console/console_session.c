/*
 * journeygate — staff sessions (h2o-free; console.c calls these on worker threads): who may sign
 * in to the console, the session a staff sign-in makes, and `me`.
 *
 * A staff session is not a customer session: it lives in the sessions database under the
 * SHA-256 of its own token (cookie jg_console), with kind "staff" and no customer_id, so
 * auth.c's lookup (kinds "cookie" and "bearer" only) never accepts it, and a customer's token
 * is never one here. It keeps the verified identity's facts; roles are decided from them again
 * on every API call against the configuration of the moment.
 */
#include "console_int.h"

#include "crypto.h"
#include "pol.h"

#include <stdio.h>
#include <string.h>

#define MODULE "console"
#define TOUCH_EVERY_MS 60000

static const unsigned role_bits[3] = {CONSOLE_MARKETER, CONSOLE_SECURITY, CONSOLE_ADMIN};

unsigned console_roles_for(const gw_config_t *cfg, const char *provider, const char *email, int email_verified,
                           const char *hd, uint64_t auth_time_ms, uint64_t now_ms)
{
    pol_facts_t f;
    unsigned roles = 0;

    if (cfg == NULL || !cfg->has_console || cfg->policies == NULL)
        return 0;
    memset(&f, 0, sizeof(f));
    f.signed_in = 1;
    f.provider = provider;
    f.email = email;
    f.email_verified = email_verified;
    f.hd = hd;
    f.linked_providers = 1;
    f.channel = "console";
    f.method = "GET";
    f.session_age_s = auth_time_ms > 0 && auth_time_ms <= now_ms ? (int64_t)((now_ms - auth_time_ms) / 1000) : -1;
    for (size_t i = 0; i < 3; ++i)
        if (cfg->console_policy[i] != NULL && pol_eval(cfg->policies, cfg->console_policy[i], &f).outcome == POL_ALLOW)
            roles |= role_bits[i];
    return roles;
}

/* session lifetimes: those of customer sessions (session.ttl_s, session.idle_timeout_s) */
static void lifetimes(const gw_config_t *cfg, uint64_t *ttl_ms, uint64_t *idle_ms)
{
    json_t *session = json_object_get(cfg->doc, "session"), *v;
    *ttl_ms = 43200000;
    *idle_ms = 3600000;
    if ((v = json_object_get(session, "ttl_s")) != NULL)
        *ttl_ms = (uint64_t)(json_number_value(v) * 1000);
    if ((v = json_object_get(session, "idle_timeout_s")) != NULL)
        *idle_ms = (uint64_t)(json_number_value(v) * 1000);
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* the staff view of a stored record, roles decided now */
static void staff_of(json_t *s, const gw_config_t *cfg, const uint8_t hash[32], uint64_t now_ms, console_staff_t *staff)
{
    char hex[65];

    memset(staff, 0, sizeof(*staff));
    copy(staff->provider, sizeof(staff->provider), json_string_value(json_object_get(s, "provider")));
    copy(staff->subject, sizeof(staff->subject), json_string_value(json_object_get(s, "subject")));
    copy(staff->email, sizeof(staff->email), json_string_value(json_object_get(s, "email")));
    copy(staff->name, sizeof(staff->name), json_string_value(json_object_get(s, "name")));
    copy(staff->csrf, sizeof(staff->csrf), json_string_value(json_object_get(s, "csrf")));
    gw_hex(hash, 8, hex);
    memcpy(staff->session, hex, 16);
    staff->session[16] = '\0';
    staff->roles = console_roles_for(cfg, staff->provider, json_string_value(json_object_get(s, "email")),
                                     json_is_true(json_object_get(s, "email_verified")),
                                     json_string_value(json_object_get(s, "hd")),
                                     (uint64_t)json_integer_value(json_object_get(s, "auth_time_ms")), now_ms);
    /* the demo's stand-in personas are the only people who can sign in to the demo */
    staff->demo = cfg->path != NULL && strcmp(cfg->path, "<demo>") == 0;
}

gw_status_t console_staff_sign_in(store_t *st, const gw_config_t *cfg, const console_identity_t *id,
                                  const console_origin_t *from, uint64_t now_ms, char *token, size_t cap,
                                  console_staff_t *staff)
{
    uint8_t raw[32], hash[32];
    uint64_t ttl_ms, idle_ms, auth_ms = 0;
    char csrf[48], actor[600];
    unsigned roles;
    json_t *s;
    gw_status_t rc;
    store_audit_event_t ev;

    if (id->auth_time > 0) {
        /* as auth.c's sessions: within that second, and never later than now */
        uint64_t at = (uint64_t)id->auth_time * 1000 + 999;
        auth_ms = at < now_ms ? at : now_ms;
    }
    roles = console_roles_for(cfg, id->provider, id->email, id->email_verified, id->hd, auth_ms, now_ms);
    if (roles == 0)
        return GW_EDENIED;
    if (cap < CONSOLE_TOKEN_CHARS + 1 || gw_random_bytes(raw, sizeof(raw)) != GW_OK ||
        gw_b64url_encode(raw, sizeof(raw), token, cap) != CONSOLE_TOKEN_CHARS ||
        gw_random_token(csrf, sizeof(csrf), 24) != GW_OK)
        return GW_EIO;
    explicit_bzero(raw, sizeof(raw));
    gw_sha256(token, CONSOLE_TOKEN_CHARS, hash);
    lifetimes(cfg, &ttl_ms, &idle_ms);
    s = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:b, s:s, s:I, s:I, s:I, s:I}", "kind", "staff", "provider",
                  id->provider, "subject", id->subject, "email", id->email, "name", id->name, "hd", id->hd,
                  "email_verified", id->email_verified, "csrf", csrf, "created_ms", (json_int_t)now_ms, "last_seen_ms",
                  (json_int_t)now_ms, "expires_ms", (json_int_t)(now_ms + ttl_ms), "idle_timeout_ms",
                  (json_int_t)idle_ms);
    if (s == NULL)
        return GW_ENOMEM;
    if (auth_ms > 0)
        json_object_set_new(s, "auth_time_ms", json_integer((json_int_t)auth_ms));
    if ((rc = store_session_put(st, hash, s)) != GW_OK) {
        json_decref(s);
        return rc;
    }
    staff_of(s, cfg, hash, now_ms, staff);
    json_decref(s);
    console_actor(id->provider, id->email, id->subject, actor, sizeof(actor));
    memset(&ev, 0, sizeof(ev));
    ev.event = "console_sign_in";
    ev.outcome = "success";
    ev.provider = id->provider;
    ev.client = from->client;
    ev.user_agent = from->user_agent;
    ev.request_id = from->request_id;
    ev.flow_id = from->flow_id;
    ev.actor = actor;
    ev.detail = NULL;
    {
        char roles_txt[64] = "roles:";
        for (size_t i = 0; i < 3; ++i)
            if (roles & role_bits[i]) {
                size_t n = strlen(roles_txt);
                snprintf(roles_txt + n, sizeof(roles_txt) - n, "%s%s", n > 6 ? "," : "",
                         console_role_name(role_bits[i]));
            }
        ev.detail = roles_txt;
        if ((rc = store_audit_write(st, &ev, now_ms)) != GW_OK) {
            /* no session without its record: the sign-in did not happen */
            store_session_delete(st, hash, NULL);
            return rc;
        }
    }
    GW_LOG_INF(MODULE, "staff signed in via %s", id->provider);
    return GW_OK;
}

gw_status_t console_session_load(store_t *st, const gw_config_t *cfg, const char *token, size_t len, uint64_t now_ms,
                                 console_staff_t *staff, char *csrf)
{
    uint8_t hash[32];
    json_t *s = NULL;
    const char *kind;
    uint64_t expires, last, idle;
    gw_status_t rc;

    if (!gw_token_well_formed(token, len, CONSOLE_TOKEN_CHARS))
        return GW_ENOTFOUND;
    gw_sha256(token, len, hash);
    if ((rc = store_session_get(st, hash, &s)) != GW_OK)
        return rc;
    kind = json_string_value(json_object_get(s, "kind"));
    expires = (uint64_t)json_integer_value(json_object_get(s, "expires_ms"));
    last = (uint64_t)json_integer_value(json_object_get(s, "last_seen_ms"));
    idle = (uint64_t)json_integer_value(json_object_get(s, "idle_timeout_ms"));
    if (kind == NULL || strcmp(kind, "staff") != 0 || expires <= now_ms || (idle > 0 && last + idle <= now_ms) ||
        json_string_value(json_object_get(s, "provider")) == NULL ||
        json_string_value(json_object_get(s, "csrf")) == NULL) {
        json_decref(s);
        return GW_ENOTFOUND;
    }
    staff_of(s, cfg, hash, now_ms, staff);
    if (csrf != NULL)
        copy(csrf, CONSOLE_CSRF_MAX, staff->csrf);
    /* the idle expiry slides: at most one write a minute (a quarter of a short idle timeout) */
    {
        uint64_t every = idle > 0 && idle / 4 < TOUCH_EVERY_MS ? idle / 4 : TOUCH_EVERY_MS;
        if (now_ms > last + every) {
            json_object_set_new(s, "last_seen_ms", json_integer((json_int_t)now_ms));
            store_session_put(st, hash, s);
        }
    }
    json_decref(s);
    return GW_OK;
}

gw_status_t console_session_end(store_t *st, const char *token, size_t len, const console_staff_t *staff,
                                const console_origin_t *from)
{
    uint8_t hash[32];
    char actor[600];
    store_audit_event_t ev;

    if (!gw_token_well_formed(token, len, CONSOLE_TOKEN_CHARS))
        return GW_ENOTFOUND;
    gw_sha256(token, len, hash);
    console_actor(staff->provider, staff->email, staff->subject, actor, sizeof(actor));
    memset(&ev, 0, sizeof(ev));
    ev.event = "console_sign_out";
    ev.outcome = "success";
    ev.client = from->client;
    ev.user_agent = from->user_agent;
    ev.request_id = from->request_id;
    ev.actor = actor;
    return store_session_delete(st, hash, &ev);
}

void console_api_me(const console_call_t *call, console_answer_t *ans)
{
    const console_staff_t *s = call->staff;
    json_t *roles = json_array();

    for (size_t i = 0; i < 3; ++i)
        if (s->roles & role_bits[i])
            json_array_append_new(roles, json_string(console_role_name(role_bits[i])));
    ans->json = json_pack("{s:s, s:s, s:s, s:o, s:s, s:b}", "name", s->name, "email", s->email, "provider", s->provider,
                          "roles", roles, "csrf", s->csrf, "demo", s->demo);
    if (ans->json == NULL)
        console_error(ans, 503, "unavailable", "out of memory");
}
