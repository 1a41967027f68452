/*
 * What a provider says about a person is checked here, once, where it enters: every claim the
 * gateway keeps reaches upstream headers, logs, the store or a page, so none may carry a control
 * character, an invalid encoding or an unbounded length. OIDC ID tokens (browser and mobile) and
 * Facebook's /me profile all pass through prov_identity_check().
 */
#include "prov.h"

#include "ingest.h"

#include <stdlib.h>
#include <string.h>

#define SUBJECT_MAX 255 /* OpenID Connect Core 2: at most 255 ASCII characters */
#define EMAIL_MAX 254   /* RFC 5321 4.5.3.1.3, a path less its angle brackets */
#define LOCAL_MAX 64    /* RFC 5321 4.5.3.1.1 */
#define DOMAIN_MAX 253
#define LABEL_MAX 63
#define NAME_MAX_BYTES 512
#define PICTURE_MAX 2048

int prov_subject_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    /* visible ASCII only: no control character, no space a header parser could trim */
    for (; s[n] != '\0'; ++n)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= SUBJECT_MAX)
            return 0;
    return n > 0;
}

int prov_domain_ok(const char *s)
{
    size_t len, label = 0, labels = 0;

    if (s == NULL || (len = strlen(s)) == 0 || len > DOMAIN_MAX)
        return 0;
    for (size_t i = 0; i <= len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.' || c == '\0') {
            /* a label is 1..63 letters, digits and hyphens, never starting or ending with a hyphen */
            if (label == 0 || label > LABEL_MAX || s[i - label] == '-' || s[i - 1] == '-')
                return 0;
            ++labels;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
        ++label;
    }
    return labels >= 2; /* a bare host name is no mail domain a provider can vouch for */
}

int prov_email_ok(const char *s)
{
    static const char atext[] = "!#$%&'*+/=?^_`{|}~-";
    const char *at;
    size_t len, local;

    if (s == NULL || (len = strlen(s)) == 0 || len > EMAIL_MAX || (at = strchr(s, '@')) == NULL ||
        strchr(at + 1, '@') != NULL)
        return 0;
    local = (size_t)(at - s);
    /* a dot-atom local part (RFC 5322 3.4.1): quoted forms, spaces and controls are refused */
    if (local == 0 || local > LOCAL_MAX || s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(atext, c) != NULL)))
            return 0;
    }
    return prov_domain_ok(at + 1);
}

int prov_display_ok(const char *s, size_t max_bytes)
{
    size_t len;

    if (s == NULL || (len = strlen(s)) == 0 || len > max_bytes)
        return 0;
    /* clean text as ingested touchpoints have it, and no line or paragraph separator (U+2028, U+2029):
     * in valid UTF-8 their three bytes stand for nothing else */
    return gw_text_ok(s, len, 0) && strstr(s, "\xe2\x80\xa8") == NULL && strstr(s, "\xe2\x80\xa9") == NULL;
}

/* a picture is an http(s) URL of visible ASCII */
static int picture_ok(const char *s)
{
    size_t n = 0;

    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return 0;
    for (; s[n] != '\0'; ++n)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= PICTURE_MAX)
            return 0;
    return 1;
}

static void drop(char **s)
{
    free(*s);
    *s = NULL;
}

gw_status_t prov_identity_check(prov_identity_t *id, const char **reason)
{
    if (!prov_subject_ok(id->subject)) {
        *reason = "claim_invalid:sub";
        return GW_EDENIED;
    }
    if (id->email != NULL && !prov_email_ok(id->email)) {
        *reason = "claim_invalid:email";
        return GW_EDENIED;
    }
    if (id->name != NULL && id->name[0] == '\0')
        drop(&id->name); /* an empty name is no name */
    if (id->name != NULL && !prov_display_ok(id->name, NAME_MAX_BYTES)) {
        *reason = "claim_invalid:name";
        return GW_EDENIED;
    }
    if (id->hd != NULL && !prov_domain_ok(id->hd)) {
        *reason = "claim_invalid:hd";
        return GW_EDENIED;
    }
    /* a picture is only shown, never decided on: a bad one is dropped, the sign-in goes on */
    if (id->picture != NULL && !picture_ok(id->picture))
        drop(&id->picture);
    if (id->email == NULL)
        id->email_verified = 0;
    return GW_OK;
}
