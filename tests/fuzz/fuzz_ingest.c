/*
 * libFuzzer target: a POST /.auth/touchpoints body, the whole path from JSON to validated events
 * (gw_ingest_parse). Every event is accounted for exactly once, and every accepted one keeps the
 * promises the store and the exports rely on — checked here independently of the validator: one
 * identifier form in its exact shape, a configured provider, bounded UTF-8 text without control
 * characters, times in range, scalar attributes, and a record the store can encode.
 */
#include "ingest.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define NOW 1800000000000ULL

static const gw_known_provider_t provs[] = {{"google", "oidc"}, {"facebook", "facebook"}, {"dev", "dev"}};

/* 1..max bytes, UTF-8 as jansson reads it, and no C0, DEL or C1 control */
static void check_text(const char *s, size_t max, int ascii)
{
    size_t len;
    json_t *j;

    if (s == NULL || (len = strlen(s)) == 0 || len > max)
        abort();
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (ascii && c > 0x7e) ||
            (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f))
            abort();
    }
    if ((j = json_stringn(s, len)) == NULL) /* jansson refuses text that is not UTF-8 */
        abort();
    json_decref(j);
}

static void check_event(const gw_ingest_event_t *e)
{
    static const char *const stages[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy"};
    int forms = (e->customer_id != NULL) + (e->email != NULL) + (e->provider != NULL);
    json_t *extra, *attrs, *v;
    const char *name;
    store_tp_t tp;
    static uint8_t rec[STORE_TP_RECORD_MAX];

    if (forms != 1 || (e->provider != NULL) != (e->subject != NULL))
        abort();
    if (e->customer_id != NULL) {
        if (strlen(e->customer_id) != STORE_ID_LEN || strncmp(e->customer_id, "c_", 2) != 0 ||
            strspn(e->customer_id + 2, "abcdefghijklmnopqrstuvwxyz234567") != STORE_ID_LEN - 2)
            abort();
    } else if (e->email != NULL) {
        check_text(e->email, 254, 0);
        if (strchr(e->email, '@') == NULL || strchr(e->email, ' ') != NULL)
            abort();
    } else {
        size_t i;
        for (i = 0; i < sizeof(provs) / sizeof(provs[0]) && strcmp(provs[i].name, e->provider) != 0; ++i)
            ;
        if (i == sizeof(provs) / sizeof(provs[0]))
            abort();
        check_text(e->subject, 255, 1);
    }
    check_text(e->channel, 64, 0);
    check_text(e->touchpoint, 128, 0);
    if (e->idempotency_key != NULL)
        check_text(e->idempotency_key, 200, 0);
    if (e->stage != NULL) {
        size_t i;
        for (i = 0; i < sizeof(stages) / sizeof(stages[0]) && strcmp(stages[i], e->stage) != 0; ++i)
            ;
        if (i == sizeof(stages) / sizeof(stages[0]))
            abort();
    }
    if (e->has_time && (e->time_ms < 946684800000ULL || e->time_ms > NOW + 86400000ULL))
        abort();
    if (e->status != 0 && (e->status < 100 || e->status > 599))
        abort();
    if (e->extra != NULL) {
        if (strlen(e->extra) != e->extra_len || e->extra_len > STORE_TP_EXTRA_MAX ||
            (extra = json_loadb(e->extra, e->extra_len, 0, NULL)) == NULL || !json_is_object(extra))
            abort();
        if (json_object_get(extra, "status") != NULL)
            check_text(json_string_value(json_object_get(extra, "status")), 64, 0);
        if ((attrs = json_object_get(extra, "attributes")) != NULL) {
            if (!json_is_object(attrs) || json_object_size(attrs) > 32)
                abort();
            json_object_foreach(attrs, name, v)
            {
                check_text(name, 64, 0);
                if (json_is_object(v) || json_is_array(v))
                    abort();
                if (json_is_string(v) && json_string_length(v) > 0)
                    check_text(json_string_value(v), 1024, 0);
            }
        }
        json_decref(extra);
    }
    /* what passed fits one of the store's records */
    memset(&tp, 0, sizeof(tp));
    tp.id = "tp_000000000000abcdefgh";
    tp.customer_id = e->customer_id != NULL ? e->customer_id : "c_aaaaaaaaaaaaaaaaaaaaaaaa";
    tp.occurred_at_ms = e->has_time ? e->time_ms : NOW;
    tp.channel = e->channel;
    tp.touchpoint = e->touchpoint;
    tp.stage = e->stage;
    tp.status = e->status;
    tp.source = "fuzz";
    tp.extra = e->extra;
    tp.extra_len = e->extra_len;
    if (store_tp_encode(&tp, rec, sizeof(rec)) == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_ingest_batch_t b;
    const char *problem = NULL;
    gw_status_t st =
        gw_ingest_parse((const char *)data, size, provs, sizeof(provs) / sizeof(provs[0]), NOW, &b, &problem);
    size_t e = 0, r = 0;

    if (st != GW_OK) {
        if (problem == NULL && st != GW_ENOMEM)
            abort();
        if (b.root != NULL || b.events != NULL || b.total != 0)
            abort();
        return 0;
    }
    if (b.total == 0 || b.total > GW_INGEST_EVENTS_MAX || b.count + b.error_count != b.total)
        abort();
    /* each index once, in order, either accepted or refused with a reason */
    for (size_t i = 0; i < b.total; ++i) {
        if (e < b.count && b.events[e].index == i) {
            check_event(&b.events[e++]);
        } else if (r < b.error_count && b.errors[r].index == i) {
            if (b.errors[r++].reason == NULL)
                abort();
        } else {
            abort();
        }
    }
    gw_ingest_batch_free(&b);
    return 0;
}
