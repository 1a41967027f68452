/*
 * journeygate — validation of the JSON bodies of POST /.auth/touchpoints and POST /.auth/token.
 * Everything is checked here, where the input enters: what passes reaches lookups, the store and
 * exports as it is.
 */
#include "ingest.h"

#include <stdlib.h>
#include <string.h>

int gw_utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        unsigned c = p[i], need, min, cp;
        if (c < 0x80) {
            ++i;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return 0; /* a continuation byte first, an overlong two-byte lead, or beyond U+10FFFF */
        if (i + need >= n)
            return 0;
        for (unsigned k = 1; k <= need; ++k) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

int gw_text_ok(const char *s, size_t len, int ascii_only)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < len; ++i) {
        if (p[i] < 0x20 || p[i] == 0x7f || (ascii_only && p[i] >= 0x80))
            return 0;
        /* C1 controls (U+0080-U+009F, always C2 80..C2 9F in UTF-8): NEL (U+0085) breaks lines in some log readers */
        if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            return 0;
    }
    return gw_utf8_ok(s, len);
}

/* a string field of 1..max bytes of clean text; NULL when v is not one */
static const char *text_field(json_t *v, size_t max, int ascii_only)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);

    if (s == NULL || len == 0 || len > max || !gw_text_ok(s, len, ascii_only))
        return NULL;
    return s;
}

int gw_customer_id_ok(const char *s, size_t len)
{
    if (s == NULL || len != GW_CUSTOMER_ID_LEN || s[0] != 'c' || s[1] != '_')
        return 0;
    for (size_t i = 2; i < GW_CUSTOMER_ID_LEN; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
            return 0;
    return 1;
}

static int customer_id_ok(json_t *v)
{
    return gw_customer_id_ok(json_string_value(v), json_string_length(v));
}

/* an address as the store keeps verified emails: local@domain, no spaces, each part within RFC 5321's limits */
static int email_ok(json_t *v)
{
    const char *s = text_field(v, GW_INGEST_EMAIL_MAX, 0), *at;
    size_t len = json_string_length(v);

    if (s == NULL || strchr(s, ' ') != NULL || (at = strrchr(s, '@')) == NULL)
        return 0;
    return at > s && (size_t)(at - s) <= 64 && (size_t)(s + len - at) > 1;
}

static const char *event_problem(json_t *ev, const gw_known_provider_t *provs, size_t n_provs, uint64_t now_ms,
                                 gw_ingest_event_t *out)
{
    static const char *const allowed[] = {"customer_id",     "email",      "provider", "subject",
                                          "channel",         "touchpoint", "stage",    "time",
                                          "idempotency_key", "attributes", "status",   NULL};
    static const char *const stages[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy", NULL};
    json_t *cid, *email, *prov, *subj, *stage, *t, *key, *attrs, *status, *v;
    const char *name;
    int forms;

    if (!json_is_object(ev))
        return "an event must be an object";
    json_object_foreach(ev, name, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; ++a)
            ok |= strcmp(name, *a) == 0;
        if (!ok)
            return "unknown field";
    }
    cid = json_object_get(ev, "customer_id");
    email = json_object_get(ev, "email");
    prov = json_object_get(ev, "provider");
    subj = json_object_get(ev, "subject");
    forms = (cid != NULL) + (email != NULL) + (prov != NULL || subj != NULL);
    if (forms != 1)
        return "identify the customer by exactly one of customer_id, email, or provider and subject";
    if (cid != NULL) {
        if (!customer_id_ok(cid))
            return "customer_id must be a customer id (c_ and 24 characters of a-z and 2-7)";
        out->customer_id = json_string_value(cid);
    } else if (email != NULL) {
        if (!email_ok(email))
            return "email must be an address of at most 254 characters without spaces or control characters";
        out->email = json_string_value(email);
    } else {
        if (prov == NULL || subj == NULL)
            return "provider and subject must be given together";
        if ((out->provider = text_field(prov, GW_INGEST_PROVIDER_MAX, 1)) == NULL)
            return "provider must be a provider's name";
        if ((out->subject = text_field(subj, GW_INGEST_SUBJECT_MAX, 1)) == NULL)
            return "subject must be 1-255 printable ASCII characters";
        out->provider = NULL;
        for (size_t i = 0; i < n_provs && out->provider == NULL; ++i)
            if (strcmp(provs[i].name, json_string_value(prov)) == 0)
                out->provider = provs[i].name;
        if (out->provider == NULL)
            return "provider is not configured";
    }
    if ((out->channel = text_field(json_object_get(ev, "channel"), GW_INGEST_CHANNEL_MAX, 0)) == NULL)
        return "channel is required (1-64 characters, no control characters)";
    if ((out->touchpoint = text_field(json_object_get(ev, "touchpoint"), GW_INGEST_TOUCHPOINT_MAX, 0)) == NULL)
        return "touchpoint is required (1-128 characters, no control characters)";
    if ((stage = json_object_get(ev, "stage")) != NULL) {
        for (const char *const *s = stages; *s != NULL && out->stage == NULL; ++s)
            if (json_is_string(stage) && strcmp(json_string_value(stage), *s) == 0 &&
                json_string_length(stage) == strlen(*s))
                out->stage = *s;
        if (out->stage == NULL)
            return "stage must be one of need, research, select, convert, own, loyalty, advocacy";
    }
    if ((t = json_object_get(ev, "time")) != NULL) {
        if (!json_is_integer(t) || json_integer_value(t) < (json_int_t)GW_INGEST_TIME_MIN ||
            (uint64_t)json_integer_value(t) > now_ms + GW_INGEST_TIME_AHEAD_MAX)
            return "time must be milliseconds since the epoch, after 2000 and at most a day ahead";
        out->has_time = 1;
        out->time_ms = (uint64_t)json_integer_value(t);
    }
    if ((key = json_object_get(ev, "idempotency_key")) != NULL &&
        (out->idempotency_key = text_field(key, GW_INGEST_IDEMPOTENCY_MAX, 0)) == NULL)
        return "idempotency_key must be 1-200 characters without control characters";
    if ((status = json_object_get(ev, "status")) != NULL) {
        if (json_is_integer(status)) {
            if (json_integer_value(status) < 100 || json_integer_value(status) > 599)
                return "status must be a number from 100 to 599 or a text of 1-64 characters";
            out->status = (int)json_integer_value(status);
        } else if (text_field(status, GW_INGEST_STATUS_TEXT_MAX, 0) == NULL) {
            return "status must be a number from 100 to 599 or a text of 1-64 characters";
        }
    }
    if ((attrs = json_object_get(ev, "attributes")) != NULL) {
        if (!json_is_object(attrs) || json_object_size(attrs) > GW_INGEST_ATTRS_MAX)
            return "attributes must be an object of at most 32 fields";
        json_object_foreach(attrs, name, v)
        {
            if (name[0] == '\0' || strlen(name) > GW_INGEST_ATTR_KEY_MAX || !gw_text_ok(name, strlen(name), 0))
                return "an attribute's name must be 1-64 characters without control characters";
            if (json_is_object(v) || json_is_array(v))
                return "an attribute's value must be a string, a number, true, false or null";
            if (json_is_string(v) && (json_string_length(v) > GW_INGEST_ATTR_VALUE_MAX ||
                                      !gw_text_ok(json_string_value(v), json_string_length(v), 0)))
                return "an attribute's text must be at most 1024 characters without control characters";
        }
    }
    return NULL;
}

/* what has no field of its own (attributes, a status given as text) is kept as one JSON object's text */
static const char *event_extra(json_t *ev, gw_ingest_event_t *out)
{
    json_t *status = json_object_get(ev, "status"), *attrs = json_object_get(ev, "attributes"), *extra;

    if (!json_is_string(status) && attrs == NULL)
        return NULL;
    if ((extra = json_object()) == NULL)
        return "out of memory";
    if (json_is_string(status))
        json_object_set(extra, "status", status);
    if (attrs != NULL)
        json_object_set(extra, "attributes", attrs);
    out->extra = json_dumps(extra, JSON_COMPACT);
    json_decref(extra);
    if (out->extra == NULL)
        return "out of memory";
    out->extra_len = strlen(out->extra);
    if (out->extra_len > GW_INGEST_EXTRA_MAX) {
        free(out->extra);
        out->extra = NULL;
        out->extra_len = 0;
        return "attributes must be at most 15 KB of JSON";
    }
    return NULL;
}

void gw_ingest_batch_free(gw_ingest_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; b->events != NULL && i < b->count; ++i)
        free(b->events[i].extra);
    free(b->events);
    free(b->errors);
    json_decref(b->root);
    memset(b, 0, sizeof(*b));
}

gw_status_t gw_ingest_parse(const char *body, size_t len, const gw_known_provider_t *provs, size_t n_provs,
                            uint64_t now_ms, gw_ingest_batch_t *out, const char **problem)
{
    json_t *root, *events, *ev;
    const char *name;
    size_t i;

    memset(out, 0, sizeof(*out));
    *problem = NULL;
    if (body == NULL || len > GW_INGEST_BODY_MAX) {
        *problem = "the body must be a JSON object (at most 1 MB)";
        return body == NULL ? GW_EINVAL : GW_ETOOBIG;
    }
    /* a NUL inside a string is refused per event, like any other control character */
    if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL)) == NULL ||
        !json_is_object(root)) {
        json_decref(root);
        *problem = "the body must be a JSON object in UTF-8 (at most 1 MB)";
        return GW_EINVAL;
    }
    json_object_foreach(root, name, ev)
    {
        if (strcmp(name, "events") != 0) {
            json_decref(root);
            *problem = "the body has one field, events";
            return GW_EINVAL;
        }
    }
    events = json_object_get(root, "events");
    if (!json_is_array(events) || json_array_size(events) == 0 || json_array_size(events) > GW_INGEST_EVENTS_MAX) {
        json_decref(root);
        *problem = "events must be a list of 1 to 1000 events";
        return GW_EINVAL;
    }
    out->root = root;
    out->total = json_array_size(events);
    out->events = calloc(out->total, sizeof(*out->events));
    out->errors = calloc(out->total, sizeof(*out->errors));
    if (out->events == NULL || out->errors == NULL) {
        gw_ingest_batch_free(out);
        return GW_ENOMEM;
    }
    json_array_foreach(events, i, ev)
    {
        gw_ingest_event_t *e = &out->events[out->count];
        const char *why;
        memset(e, 0, sizeof(*e));
        e->index = i;
        if ((why = event_problem(ev, provs, n_provs, now_ms, e)) == NULL && (why = event_extra(ev, e)) == NULL) {
            ++out->count;
            continue;
        }
        memset(e, 0, sizeof(*e));
        out->errors[out->error_count].index = i;
        out->errors[out->error_count++].reason = why;
    }
    return GW_OK;
}

gw_status_t gw_token_request_parse(const char *body, size_t len, const gw_known_provider_t *provs, size_t n_provs,
                                   gw_token_request_t *out, const char **problem)
{
    json_t *root = NULL, *field;
    const char *name, *which;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (body == NULL || len > GW_TOKEN_BODY_MAX ||
        (root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(root)) {
        json_decref(root);
        *problem = "the body must be a JSON object";
        return GW_EINVAL;
    }
    name = text_field(json_object_get(root, "provider"), GW_INGEST_PROVIDER_MAX, 1);
    for (i = 0; name != NULL && i < n_provs; ++i)
        if (strcmp(provs[i].name, name) == 0)
            break;
    if (name == NULL || i == n_provs) {
        json_decref(root);
        *problem = "unknown provider";
        return GW_EINVAL;
    }
    which = strcmp(provs[i].type, "facebook") == 0 ? "access_token" : "id_token";
    field = json_object_get(root, which);
    if (!json_is_string(field) || json_string_length(field) == 0 || json_string_length(field) > GW_TOKEN_MAX ||
        !gw_text_ok(json_string_value(field), json_string_length(field), 1) ||
        strchr(json_string_value(field), ' ') != NULL) {
        json_decref(root);
        *problem = strcmp(which, "access_token") == 0 ? "access_token is required (1-8192 printable characters)"
                                                      : "id_token is required (1-8192 printable characters)";
        return GW_EINVAL;
    }
    out->provider = i;
    out->token = json_string_value(field);
    out->root = root;
    return GW_OK;
}
