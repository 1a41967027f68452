/* Outbound HTTP for providers: libcurl, bounded in time and size, never on an event loop. */
#include "prov_int.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int cancelled;

void prov_cancel_calls(void)
{
    atomic_store(&cancelled, 1);
}

/* libcurl calls this at least once a second while a transfer waits; non-zero aborts it */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)userdata, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load_explicit(&cancelled, memory_order_relaxed);
}

typedef struct sink {
    char *buf;
    size_t len, cap;
    int too_big;
} sink_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sink_t *s = userdata;
    size_t n = size * nmemb;

    if (s->len + n > PROV_MAX_BODY) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap == 0 ? 8192 : s->cap;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (grown == NULL)
            return 0;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, ptr, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

gw_status_t prov_http(const prov_http_opts_t *o, const char *url, const char *form, prov_http_response_t *resp)
{
    CURL *c;
    struct curl_slist *hdrs = NULL;
    sink_t sink = {NULL, 0, 0, 0};
    CURLcode rc;
    char *ct = NULL;
    gw_status_t st = GW_EUPSTREAM;

    memset(resp, 0, sizeof(*resp));
    if (atomic_load(&cancelled))
        return GW_EUNAVAIL;
    if ((c = curl_easy_init()) == NULL)
        return GW_ENOMEM;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)PROV_MAX_BODY);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "journeygate/" GW_VERSION);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (o->basic_user != NULL) {
        /* RFC 6749 2.3.1: client id and secret are form-encoded before Basic */
        char *u = curl_easy_escape(c, o->basic_user, 0), *p = curl_easy_escape(c, o->basic_password, 0);
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, u);
        curl_easy_setopt(c, CURLOPT_PASSWORD, p);
        curl_free(u);
        curl_free(p);
    }
    if (form != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    }
    rc = curl_easy_perform(c);
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
        st = GW_EUNAVAIL;
        goto Exit;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = GW_ETIMEOUT;
        goto Exit;
    }
    if (rc != CURLE_OK || sink.too_big)
        goto Exit;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        resp->content_type = strdup(ct);
    resp->body = sink.buf != NULL ? sink.buf : strdup("");
    resp->body_len = sink.len;
    sink.buf = NULL;
    st = GW_OK;
Exit:
    free(sink.buf);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return st;
}

void prov_http_response_clear(prov_http_response_t *r)
{
    free(r->body);
    free(r->content_type);
    memset(r, 0, sizeof(*r));
}

json_t *prov_http_json(const prov_http_response_t *r)
{
    json_error_t jerr;
    json_t *doc;

    if (r->content_type == NULL || strstr(r->content_type, "json") == NULL)
        return NULL;
    doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc != NULL && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

char *prov_url_with_query(const char *base, const char *const *pairs)
{
    CURLU *u = curl_url();
    char *out = NULL, *url = NULL;

    if (u == NULL || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto Exit;
    for (; pairs[0] != NULL; pairs += 2) {
        if (pairs[1] == NULL)
            continue;
        size_t n = strlen(pairs[0]) + strlen(pairs[1]) + 2;
        char *kv = malloc(n);
        if (kv == NULL)
            goto Exit;
        snprintf(kv, n, "%s=%s", pairs[0], pairs[1]);
        /* CURLU_URLENCODE with APPENDQUERY encodes the value after the first '=' */
        CURLUcode rc = curl_url_set(u, CURLUPART_QUERY, kv, CURLU_APPENDQUERY | CURLU_URLENCODE);
        free(kv);
        if (rc != CURLUE_OK)
            goto Exit;
    }
    if (curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK)
        out = strdup(url);
Exit:
    curl_free(url);
    curl_url_cleanup(u);
    return out;
}

char *prov_form_encode(const char *const *pairs)
{
    size_t cap = 1, len = 0;
    char *out;

    for (const char *const *p = pairs; p[0] != NULL; p += 2)
        if (p[1] != NULL)
            cap += 3 * (strlen(p[0]) + strlen(p[1])) + 2;
    if ((out = malloc(cap)) == NULL)
        return NULL;
    out[0] = '\0';
    for (; pairs[0] != NULL; pairs += 2) {
        char *k, *v;
        if (pairs[1] == NULL)
            continue;
        k = curl_easy_escape(NULL, pairs[0], 0);
        v = curl_easy_escape(NULL, pairs[1], 0);
        if (k == NULL || v == NULL) {
            curl_free(k);
            curl_free(v);
            free(out);
            return NULL;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", len > 0 ? "&" : "", k, v);
        curl_free(k);
        curl_free(v);
    }
    return out;
}
