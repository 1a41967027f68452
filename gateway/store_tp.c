/*
 * journeygate — touchpoints in the store: compact records, an append-only log of blocks, and
 * per-customer chunks (see store.h, "Touchpoints").
 *
 * Record (all integers big-endian):
 *   u16 length of the record | u64 occurred_at_ms | u64 received_at_ms | u64 seq | u16 status |
 *   u8 flags (bits 0-1 click_id, bit 2 visit_start) | u8 number of strings |
 *   per string: u8 length, bytes, NUL (length 0: absent, no bytes) | u16 extra length, bytes, NUL
 * Strings end in NUL in place, so a decoded record's strings point into the LMDB page.
 *
 * Block (tp_log value): "JTB1" | u32 n | n x {u64 hash of customer id, u32 offset, u32 length},
 *   sorted by hash | the records (each with its customer id).
 * Chunk ("touchpoints" value, under customer id + be64(occurred) + be64(seq) of its first record when
 *   written): "JTC1" | u32 n | u64 min occurred | u64 max occurred | the records in
 *   (occurred, seq) order, without customer id (the key has it).
 */
#include "store_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MODULE "store"
#define REC_HDR 30
#define SEQ_OFF 18
#define BLOCK_HDR 8
#define BLOCK_ENTRY 16
#define CHUNK_HDR 24
#define CHUNK_MAX 4000              /* a chunk fills about one page */
#define MERGE_MAX_EVENTS (1u << 20) /* per merge transaction: bounds its memory */
#define SEQ_BITS 20                 /* seq = block number << 20 | index in the block */
#define TP_NEXT_KEY "tp_next"
#define TP_PROFILED_KEY "tp_profiled" /* meta: be64(the last block whose touchpoints are in the profiles) */
#define CHUNK_KEY (STORE_ID_LEN + 16) /* customer id + be64(first occurred) + be64(first seq) */

static const size_t str_field[] = {
    offsetof(store_tp_t, id),          offsetof(store_tp_t, customer_id),   offsetof(store_tp_t, visitor_id),
    offsetof(store_tp_t, channel),     offsetof(store_tp_t, touchpoint),    offsetof(store_tp_t, stage),
    offsetof(store_tp_t, route),       offsetof(store_tp_t, method),        offsetof(store_tp_t, device),
    offsetof(store_tp_t, provider),    offsetof(store_tp_t, source),        offsetof(store_tp_t, session),
    offsetof(store_tp_t, visit_id),    offsetof(store_tp_t, referrer_host), offsetof(store_tp_t, utm_source),
    offsetof(store_tp_t, utm_medium),  offsetof(store_tp_t, utm_campaign),  offsetof(store_tp_t, utm_term),
    offsetof(store_tp_t, utm_content),
};
#define NSTR (sizeof(str_field) / sizeof(str_field[0]))
#define STR_CUSTOMER 1

#define FIELD(tp, i) (*(const char **)((char *)(tp) + str_field[i]))

static void be16(unsigned v, uint8_t *p)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned from_be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void be32(uint32_t v, uint8_t *p)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t from_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t cid_hash(const char *cid)
{
    return gw_fnv1a(GW_FNV1A_SEED, cid, STORE_ID_LEN);
}

/* ------------------------------------------------------------------ records */

size_t store_tp_encode(const store_tp_t *tp, uint8_t *out, size_t cap)
{
    size_t n = REC_HDR;

    if (cap < REC_HDR + 3 || tp->extra_len > STORE_TP_EXTRA_MAX)
        return 0;
    store_be64(tp->occurred_at_ms, out + 2);
    store_be64(tp->received_at_ms, out + 10);
    store_be64(tp->seq, out + SEQ_OFF);
    be16(tp->status > 0 && tp->status < 65536 ? (unsigned)tp->status : 0, out + 26);
    out[28] = (uint8_t)((tp->click_id & 3) | (tp->visit_start ? 4 : 0));
    out[29] = (uint8_t)NSTR;
    for (size_t i = 0; i < NSTR; ++i) {
        const char *s = FIELD(tp, i);
        size_t len = s != NULL ? strlen(s) : 0;
        if (len > STORE_TP_STR_MAX || n + 1 + len + 1 > cap)
            return 0;
        out[n++] = (uint8_t)len;
        if (len > 0) {
            memcpy(out + n, s, len + 1);
            n += len + 1;
        }
    }
    if (n + 2 + tp->extra_len + 1 > cap || n + 2 + tp->extra_len + 1 > 65535)
        return 0;
    be16((unsigned)tp->extra_len, out + n);
    n += 2;
    if (tp->extra_len > 0) {
        memcpy(out + n, tp->extra, tp->extra_len);
        out[n + tp->extra_len] = '\0';
        n += tp->extra_len + 1;
    }
    be16((unsigned)n, out);
    return n;
}

size_t store_tp_decode(const uint8_t *p, size_t avail, store_tp_t *tp)
{
    size_t len, n = REC_HDR, nstr;

    if (avail < REC_HDR + 2 || (len = from_be16(p)) > avail || len < REC_HDR + 2)
        return 0;
    memset(tp, 0, sizeof(*tp));
    tp->occurred_at_ms = store_from_be64(p + 2);
    tp->received_at_ms = store_from_be64(p + 10);
    tp->seq = store_from_be64(p + SEQ_OFF);
    tp->status = (int)from_be16(p + 26);
    tp->click_id = p[28] & 3;
    tp->visit_start = (p[28] & 4) != 0;
    nstr = p[29];
    for (size_t i = 0; i < nstr; ++i) {
        size_t sl;
        if (n + 1 > len)
            return 0;
        sl = p[n++];
        if (sl == 0)
            continue;
        if (n + sl + 1 > len || p[n + sl] != '\0')
            return 0;
        if (i < NSTR)
            FIELD(tp, i) = (const char *)p + n; /* strings of a newer format beyond NSTR are skipped */
        n += sl + 1;
    }
    if (n + 2 > len)
        return 0;
    tp->extra_len = from_be16(p + n);
    if (tp->extra_len > STORE_TP_EXTRA_MAX)
        return 0; /* no encoder writes more: not a record */
    n += 2;
    if (tp->extra_len > 0) {
        if (n + tp->extra_len + 1 > len)
            return 0;
        tp->extra = (const char *)p + n;
    }
    return len;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, k, json_string(v));
}

json_t *store_tp_json(const store_tp_t *tp)
{
    json_t *o = json_object();
    char at[GW_ISO_TIME_LEN];

    set_str(o, "id", tp->id);
    set_str(o, "customer_id", tp->customer_id);
    set_str(o, "visitor_id", tp->visitor_id);
    json_object_set_new(o, "occurred_at", json_string(gw_iso_time(tp->occurred_at_ms, at)));
    json_object_set_new(o, "received_at", json_string(gw_iso_time(tp->received_at_ms, at)));
    set_str(o, "channel", tp->channel);
    set_str(o, "touchpoint", tp->touchpoint);
    set_str(o, "stage", tp->stage);
    set_str(o, "route", tp->route);
    set_str(o, "method", tp->method);
    if (tp->status > 0)
        json_object_set_new(o, "status", json_integer(tp->status));
    set_str(o, "device", tp->device);
    set_str(o, "provider", tp->provider);
    set_str(o, "source", tp->source);
    set_str(o, "session", tp->session);
    set_str(o, "visit_id", tp->visit_id);
    json_object_set_new(o, "visit_start", json_boolean(tp->visit_start));
    /* the visit's attribution, on its first touchpoint only */
    if (tp->visit_start) {
        set_str(o, "referrer_host", tp->referrer_host);
        set_str(o, "utm_source", tp->utm_source);
        set_str(o, "utm_medium", tp->utm_medium);
        set_str(o, "utm_campaign", tp->utm_campaign);
        set_str(o, "utm_term", tp->utm_term);
        set_str(o, "utm_content", tp->utm_content);
        if (tp->click_id > 0)
            json_object_set_new(o, "click_id", json_boolean(tp->click_id == 2));
    }
    /* ingestion's "attributes" object and a status given as text */
    if (tp->extra != NULL) {
        json_t *x = json_loadb(tp->extra, tp->extra_len, 0, NULL);
        if (json_is_object(x))
            json_object_update_missing(o, x);
        json_decref(x);
    }
    return o;
}

/* ------------------------------------------------------------------ references while reading */

struct ref {
    const uint8_t *rec;
    const char *cid; /* NULL in a chunk (the key has it) */
    uint64_t at, seq;
    uint32_t len;
};

struct refs {
    struct ref *v;
    size_t n, cap;
};

static int refs_add(struct refs *r, const uint8_t *rec, uint32_t len, const char *cid)
{
    if (r->n == r->cap) {
        size_t cap = r->cap != 0 ? r->cap * 2 : 1024;
        struct ref *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL)
            return ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n].rec = rec;
    r->v[r->n].cid = cid;
    r->v[r->n].len = len;
    r->v[r->n].at = store_from_be64(rec + 2);
    r->v[r->n].seq = store_from_be64(rec + SEQ_OFF);
    ++r->n;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_customer_time(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int c = memcmp(x->cid, y->cid, STORE_ID_LEN);
    return c != 0 ? c : by_time(a, b);
}

static void sort_by_time(struct ref *v, size_t n)
{
    for (size_t i = 1; i < n; ++i) {
        if (by_time(&v[i - 1], &v[i]) > 0) {
            qsort(v, n, sizeof(*v), by_time);
            return;
        }
    }
}

/* the customer id inside a record of a block (NUL-terminated in place), without decoding the rest */
static const char *record_cid(const uint8_t *rec, size_t len)
{
    size_t n = REC_HDR, sl;
    if (len < REC_HDR + 2 || from_be16(rec) > len || rec[29] < 2)
        return NULL;
    sl = rec[n++]; /* the id */
    if (sl > 0)
        n += sl + 1;
    if (n + 1 + STORE_ID_LEN + 1 > len || rec[n] != STORE_ID_LEN || rec[n + 1 + STORE_ID_LEN] != '\0')
        return NULL;
    return (const char *)rec + n + 1;
}

static int block_ok(const MDB_val *v, uint32_t *n)
{
    const uint8_t *b = v->mv_data;
    if (v->mv_size < BLOCK_HDR || memcmp(b, "JTB1", 4) != 0)
        return 0;
    *n = from_be32(b + 4);
    return (size_t)*n * BLOCK_ENTRY + BLOCK_HDR <= v->mv_size;
}

static int chunk_ok(const MDB_val *v, uint32_t *n)
{
    const uint8_t *b = v->mv_data;
    if (v->mv_size < CHUNK_HDR || memcmp(b, "JTC1", 4) != 0)
        return 0;
    *n = from_be32(b + 4);
    return 1;
}

/* every record of the block (with its customer) into r */
static int block_refs(const MDB_val *v, struct refs *r)
{
    const uint8_t *b = v->mv_data;
    uint32_t n;
    int rc;
    if (!block_ok(v, &n))
        return 0; /* not a block this version wrote: skipped */
    for (uint32_t i = 0; i < n; ++i) {
        const uint8_t *e = b + BLOCK_HDR + (size_t)i * BLOCK_ENTRY;
        uint32_t off = from_be32(e + 8), len = from_be32(e + 12);
        const char *cid;
        if ((size_t)off + len > v->mv_size || (cid = record_cid(b + off, len)) == NULL)
            continue;
        if ((rc = refs_add(r, b + off, len, cid)) != 0)
            return rc;
    }
    return 0;
}

/* the customer's records in one block, found through its index */
static int block_refs_of(const MDB_val *v, const char *cid, uint64_t h, uint64_t since, struct refs *r)
{
    const uint8_t *b = v->mv_data;
    uint32_t n, lo = 0, hi;
    int rc;
    if (!block_ok(v, &n))
        return 0;
    hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (store_from_be64(b + BLOCK_HDR + (size_t)mid * BLOCK_ENTRY) < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n; ++lo) {
        const uint8_t *e = b + BLOCK_HDR + (size_t)lo * BLOCK_ENTRY;
        uint32_t off = from_be32(e + 8), len = from_be32(e + 12);
        const char *rc_cid;
        if (store_from_be64(e) != h)
            break;
        if ((size_t)off + len > v->mv_size || (rc_cid = record_cid(b + off, len)) == NULL ||
            memcmp(rc_cid, cid, STORE_ID_LEN) != 0 || store_from_be64(b + off + 2) < since)
            continue;
        if ((rc = refs_add(r, b + off, len, NULL)) != 0)
            return rc;
    }
    return 0;
}

/* the records of one chunk with occurred >= since into r */
static int chunk_refs(const MDB_val *v, uint64_t since, struct refs *r)
{
    const uint8_t *b = v->mv_data;
    uint32_t n;
    size_t off = CHUNK_HDR;
    int rc;
    if (!chunk_ok(v, &n) || store_from_be64(b + 16) < since)
        return 0;
    for (uint32_t i = 0; i < n && off + 2 <= v->mv_size; ++i) {
        size_t len = from_be16(b + off);
        if (len < REC_HDR || off + len > v->mv_size)
            break;
        if (store_from_be64(b + off + 2) >= since && (rc = refs_add(r, b + off, (uint32_t)len, NULL)) != 0)
            return rc;
        off += len;
    }
    return 0;
}

/* sorts the refs by time, then calls cb for each until it returns non-zero; the customer id is cid */
static void emit(struct refs *r, const char *cid, store_tp_cb cb, void *ctx, int *stop)
{
    char id[STORE_ID_LEN + 1];
    memcpy(id, cid, STORE_ID_LEN);
    id[STORE_ID_LEN] = '\0';
    sort_by_time(r->v, r->n);
    for (size_t i = 0; i < r->n && !*stop; ++i) {
        store_tp_t tp;
        if (store_tp_decode(r->v[i].rec, r->v[i].len, &tp) == 0)
            continue;
        tp.customer_id = id;
        *stop = cb(&tp, ctx) != 0;
    }
}

/* ------------------------------------------------------------------ reads */

gw_status_t store_journey(store_t *st, const char *customer_id, uint64_t since_ms, store_tp_cb cb, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t start[CHUNK_KEY];
    struct refs r = {NULL, 0, 0};
    uint64_t h;
    int rc, stop = 0;

    if (strlen(customer_id) != STORE_ID_LEN)
        return GW_ENOTFOUND;
    h = cid_hash(customer_id);
    if ((rc = store_read_begin(st, &txn)) != 0)
        return store_from_mdb(rc);
    memcpy(start, customer_id, STORE_ID_LEN);
    memset(start + STORE_ID_LEN, 0, CHUNK_KEY - STORE_ID_LEN);
    k.mv_size = sizeof(start);
    k.mv_data = start;
    if ((rc = mdb_cursor_open(txn, st->tp_cust, &cur)) != 0)
        goto Exit;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < STORE_ID_LEN || memcmp(k.mv_data, customer_id, STORE_ID_LEN) != 0)
            break;
        if ((rc = chunk_refs(&v, since_ms, &r)) != 0)
            goto Exit;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    /* the log's blocks not merged yet */
    if ((rc = mdb_cursor_open(txn, st->tp_log, &cur)) != 0)
        goto Exit;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((rc = block_refs_of(&v, customer_id, h, since_ms, &r)) != 0)
            goto Exit;
    emit(&r, customer_id, cb, ctx, &stop);
    rc = 0;
Exit:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(st, txn);
    free(r.v);
    return store_from_mdb(rc == MDB_NOTFOUND ? 0 : rc);
}

gw_status_t store_touchpoints_foreach(store_t *st, uint64_t since_ms, store_tp_cb cb, void *ctx)
{
    return store_touchpoints_foreach_after(st, since_ms, NULL, cb, ctx);
}

gw_status_t store_touchpoints_foreach_after(store_t *st, uint64_t since_ms, const char *after_customer, store_tp_cb cb,
                                            void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct refs log = {NULL, 0, 0}, one = {NULL, 0, 0};
    size_t li = 0;
    int rc, stop = 0, more;
    char cid[STORE_ID_LEN];

    if ((rc = store_read_begin(st, &txn)) != 0)
        return store_from_mdb(rc);
    /* the unmerged records, customer by customer */
    if ((rc = mdb_cursor_open(txn, st->tp_log, &cur)) != 0)
        goto Exit;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((rc = block_refs(&v, &log)) != 0)
            goto Exit;
    mdb_cursor_close(cur);
    cur = NULL;
    {
        /* drop what is before since_ms, then order by customer and time */
        size_t w = 0;
        for (size_t i = 0; i < log.n; ++i)
            if (log.v[i].at >= since_ms &&
                (after_customer == NULL || memcmp(log.v[i].cid, after_customer, STORE_ID_LEN) > 0))
                log.v[w++] = log.v[i];
        log.n = w;
        if (log.n > 1) /* qsort's base must not be NULL, even for nothing */
            qsort(log.v, log.n, sizeof(*log.v), by_customer_time);
    }
    if ((rc = mdb_cursor_open(txn, st->tp_cust, &cur)) != 0)
        goto Exit;
    if (after_customer != NULL) {
        /* past every chunk of after_customer: its id, then the largest time and sequence */
        uint8_t start[CHUNK_KEY];
        memcpy(start, after_customer, STORE_ID_LEN);
        memset(start + STORE_ID_LEN, 0xff, CHUNK_KEY - STORE_ID_LEN);
        k.mv_size = sizeof(start);
        k.mv_data = start;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (rc == 0 && k.mv_size >= STORE_ID_LEN && memcmp(k.mv_data, after_customer, STORE_ID_LEN) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    more = rc == 0;
    while (!stop && (more || li < log.n)) {
        size_t lj;
        /* the next customer: the smaller of the chunks' and the log's */
        if (more && k.mv_size >= STORE_ID_LEN && (li == log.n || memcmp(k.mv_data, log.v[li].cid, STORE_ID_LEN) <= 0))
            memcpy(cid, k.mv_data, STORE_ID_LEN);
        else if (li < log.n)
            memcpy(cid, log.v[li].cid, STORE_ID_LEN);
        else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* a key this version did not write */
            more = rc == 0;
            continue;
        }
        one.n = 0;
        while (more && k.mv_size >= STORE_ID_LEN && memcmp(k.mv_data, cid, STORE_ID_LEN) == 0) {
            if ((rc = chunk_refs(&v, since_ms, &one)) != 0)
                goto Exit;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            more = rc == 0;
        }
        for (lj = li; lj < log.n && memcmp(log.v[lj].cid, cid, STORE_ID_LEN) == 0; ++lj)
            if ((rc = refs_add(&one, log.v[lj].rec, log.v[lj].len, NULL)) != 0)
                goto Exit;
        li = lj;
        emit(&one, cid, cb, ctx, &stop);
    }
    rc = 0;
Exit:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_read_end(st, txn);
    free(log.v);
    free(one.v);
    return store_from_mdb(rc == MDB_NOTFOUND ? 0 : rc);
}

gw_status_t store_touchpoints_unmerged(store_t *st, uint64_t *count)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    *count = 0;
    if ((rc = store_read_begin(st, &txn)) != 0)
        return store_from_mdb(rc);
    if ((rc = mdb_cursor_open(txn, st->tp_log, &cur)) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint32_t n;
            if (block_ok(&v, &n))
                *count += n;
        }
        mdb_cursor_close(cur);
    }
    store_read_end(st, txn);
    return store_from_mdb(rc == MDB_NOTFOUND ? 0 : rc);
}

/* ------------------------------------------------------------------ appends */

struct entry {
    uint64_t hash;
    uint32_t off, len;
};

static int by_hash(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int next_block(store_t *st, MDB_txn *txn, uint64_t *next)
{
    MDB_cursor *cur;
    MDB_val k = {sizeof(TP_NEXT_KEY) - 1, TP_NEXT_KEY}, v;
    int rc;

    *next = 1;
    if (mdb_get(txn, st->meta, &k, &v) == 0 && v.mv_size == 8)
        *next = store_from_be64(v.mv_data);
    if ((rc = mdb_cursor_open(txn, st->tp_log, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8 && store_from_be64(k.mv_data) >= *next)
        *next = store_from_be64(k.mv_data) + 1;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int set_next_block(store_t *st, MDB_txn *txn, uint64_t next)
{
    MDB_val k = {sizeof(TP_NEXT_KEY) - 1, TP_NEXT_KEY}, v;
    uint8_t b[8];
    if (mdb_get(txn, st->meta, &k, &v) == 0 && v.mv_size == 8 && store_from_be64(v.mv_data) >= next)
        return 0;
    store_be64(next, b);
    v.mv_size = 8;
    v.mv_data = b;
    return mdb_put(txn, st->meta, &k, &v, 0);
}

/* the last block of the log whose touchpoints are in the profiles (0: none yet) */
static uint64_t profiled_through(store_t *st, MDB_txn *txn)
{
    MDB_val k = {sizeof(TP_PROFILED_KEY) - 1, TP_PROFILED_KEY}, v;
    if (mdb_get(txn, st->meta, &k, &v) == 0 && v.mv_size == 8)
        return store_from_be64(v.mv_data);
    return 0;
}

static int set_profiled_through(store_t *st, MDB_txn *txn, uint64_t block)
{
    MDB_val k = {sizeof(TP_PROFILED_KEY) - 1, TP_PROFILED_KEY}, v;
    uint8_t b[8];
    store_be64(block, b);
    v.mv_size = 8;
    v.mv_data = b;
    return mdb_put(txn, st->meta, &k, &v, 0);
}

/* the touchpoint of entry e (hash, offset, length; see "Block") of block b (size bytes) gathered for its profile */
static int gather_entry(store_t *st, MDB_txn *txn, const uint8_t *b, size_t size, uint64_t h, uint32_t off,
                        uint32_t len, store_seen_pending_t *p)
{
    const char *cid;
    store_tp_t tp;
    if ((size_t)off + len > size || (cid = record_cid(b + off, len)) == NULL || store_tp_decode(b + off, len, &tp) == 0)
        return 0; /* not a record this version wrote: no profile moves for it */
    return store_seen_gather(st, txn, cid, h, &tp, p);
}

int store_tp_profiles(store_t *st, MDB_txn *txn, store_seen_pending_t *p)
{
    uint64_t from = profiled_through(st, txn), last = from;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t kb[8];
    int rc;

    store_seen_gather_reset(st);
    if ((rc = mdb_cursor_open(txn, st->tp_log, &cur)) != 0)
        return rc;
    store_be64(from + 1, kb);
    k.mv_size = 8;
    k.mv_data = kb;
    /* the records stay where they are (nothing here writes the log): gathered by reference */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *b = v.mv_data;
        uint32_t n;
        if (k.mv_size != 8)
            continue;
        last = store_from_be64(k.mv_data);
        if (!block_ok(&v, &n))
            continue;
        for (uint32_t i = 0; i < n && rc == 0; ++i) {
            const uint8_t *e = b + BLOCK_HDR + (size_t)i * BLOCK_ENTRY;
            rc = gather_entry(st, txn, b, v.mv_size, store_from_be64(e), from_be32(e + 8), from_be32(e + 12), p);
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if ((rc = store_seen_flush(st, txn, p)) != 0)
        return rc;
    return last > from ? set_profiled_through(st, txn, last) : 0;
}

/*
 * Writes records (len bytes, n of them) as the next block. Records without a customer id are
 * left out. The records' seq fields are set in place. With pending (ingestion), the customers'
 * profiles follow in the same transaction; without (the recorder), store_tp_profiles() does it later.
 */
static int append_block(store_t *st, MDB_txn *txn, uint8_t *records, size_t len, size_t n,
                        store_seen_pending_t *pending)
{
    struct entry *e;
    size_t off = 0, m = 0;
    uint64_t block;
    MDB_val k, v;
    uint8_t kb[8];
    int rc;

    if (n == 0)
        return 0;
    if (n >= (1u << SEQ_BITS) || len > UINT32_MAX / 2)
        return EINVAL;
    if ((rc = next_block(st, txn, &block)) != 0)
        return rc;
    if ((e = malloc(n * sizeof(*e))) == NULL)
        return ENOMEM;
    for (size_t i = 0; i < n && off + REC_HDR <= len; ++i) {
        size_t rl = from_be16(records + off);
        const char *cid;
        if (rl < REC_HDR || off + rl > len)
            break;
        store_be64(block << SEQ_BITS | i, records + off + SEQ_OFF);
        if ((cid = record_cid(records + off, rl)) != NULL) {
            e[m].hash = cid_hash(cid);
            e[m].off = (uint32_t)off;
            e[m].len = (uint32_t)rl;
            ++m;
        }
        off += rl;
    }
    if (m == 0) {
        free(e);
        return 0;
    }
    qsort(e, m, sizeof(*e), by_hash);
    if (pending != NULL) {
        /* an ingested block: the customers' profiles in the same transaction */
        store_seen_gather_reset(st);
        rc = 0;
        for (size_t i = 0; i < m && rc == 0; ++i)
            rc = gather_entry(st, txn, records, off, e[i].hash, e[i].off, e[i].len, pending);
        if (rc == 0)
            rc = store_seen_flush(st, txn, pending);
        /* and when every block before it is in the profiles, so is this one: the mark moves past it */
        if (rc == 0 && profiled_through(st, txn) + 1 == block)
            rc = set_profiled_through(st, txn, block);
        if (rc != 0) {
            free(e);
            return rc;
        }
    }
    store_be64(block, kb);
    k.mv_size = 8;
    k.mv_data = kb;
    v.mv_size = BLOCK_HDR + m * BLOCK_ENTRY + off;
    v.mv_data = NULL;
    /* the block is built in place: no copy of the whole batch */
    if ((rc = mdb_put(txn, st->tp_log, &k, &v, MDB_RESERVE | MDB_APPEND)) == 0) {
        uint8_t *b = v.mv_data, *rec = b + BLOCK_HDR + m * BLOCK_ENTRY;
        size_t base = BLOCK_HDR + m * BLOCK_ENTRY;
        memcpy(b, "JTB1", 4);
        be32((uint32_t)m, b + 4);
        for (size_t i = 0; i < m; ++i) {
            uint8_t *x = b + BLOCK_HDR + i * BLOCK_ENTRY;
            store_be64(e[i].hash, x);
            be32((uint32_t)(base + e[i].off), x + 8);
            be32(e[i].len, x + 12);
        }
        memcpy(rec, records, off);
    }
    free(e);
    return rc;
}

struct append_ctx {
    uint8_t *records;
    size_t len, n;
    const store_tp_t *tps;
    const char *const *idem;
    int *duplicate;
    store_seen_pending_t pending; /* profiles' cache entries, remembered once committed */
};

static int append_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct append_ctx *c = arg;
    /* the profiles follow in store_tp_profiles(): this transaction only appends */
    return append_block(st, txn, c->records, c->len, c->n, NULL);
}

/* after the transaction: what the profiles now say is remembered only when it committed */
static gw_status_t append_done(store_t *st, struct append_ctx *c, gw_status_t s)
{
    if (s == GW_OK)
        store_seen_pending_apply(st, &c->pending);
    store_seen_pending_free(&c->pending);
    free(c->records);
    return s;
}

gw_status_t store_touchpoints_append(store_t *st, const uint8_t *records, size_t len, size_t n)
{
    struct append_ctx c = {NULL, len, n, NULL, NULL, NULL, {NULL, 0, 0}};
    /* a copy: the seq fields are written into it, and a retry after a map growth needs the original */
    if (n == 0 || len == 0)
        return GW_OK;
    if ((c.records = malloc(len)) == NULL)
        return GW_ENOMEM;
    memcpy(c.records, records, len);
    return append_done(st, &c, store_with_write(st, append_txn, &c));
}

static int profile_txn(store_t *st, MDB_txn *txn, void *arg)
{
    store_seen_pending_t *p = arg;
    p->n = 0; /* a retry (the map grew) starts over */
    return store_tp_profiles(st, txn, p);
}

gw_status_t store_touchpoints_profile(store_t *st)
{
    store_seen_pending_t p = {NULL, 0, 0};
    gw_status_t s = store_with_write(st, profile_txn, &p);
    if (s == GW_OK)
        store_seen_pending_apply(st, &p);
    store_seen_pending_free(&p);
    return s;
}

static int ingest_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct append_ctx *c = arg;
    size_t off = 0, m = 0;
    int rc;

    c->pending.n = 0; /* a retry (the map grew) starts over */
    for (size_t i = 0; i < c->n; ++i) {
        size_t rl;
        c->duplicate[i] = 0;
        if (c->idem != NULL && c->idem[i] != NULL) {
            const char *src = c->tps[i].source, *tid = c->tps[i].id;
            size_t sl = src != NULL ? strlen(src) : 0, kl = strlen(c->idem[i]);
            char ik[512];
            MDB_val k = {sl + 1 + kl, ik}, v = {tid != NULL ? strlen(tid) : 0, (void *)tid};
            if (sl + 1 + kl > sizeof(ik))
                return EINVAL;
            if (sl > 0)
                memcpy(ik, src, sl);
            ik[sl] = '\0';
            memcpy(ik + sl + 1, c->idem[i], kl);
            rc = mdb_put(txn, st->idempotency, &k, &v, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) {
                c->duplicate[i] = 1;
                continue;
            }
            if (rc != 0)
                return rc;
        }
        if ((rl = store_tp_encode(&c->tps[i], c->records + off, c->len - off)) == 0)
            return EINVAL;
        off += rl;
        ++m;
    }
    return append_block(st, txn, c->records, off, m, &c->pending);
}

gw_status_t store_touchpoints_ingest(store_t *st, const store_tp_t *tps, const char *const *idempotency_keys, size_t n,
                                     int *duplicate)
{
    struct append_ctx c = {NULL, 0, n, tps, idempotency_keys, duplicate, {NULL, 0, 0}};
    for (size_t i = 0; i < n; ++i)
        c.len += STORE_TP_RECORD_MAX;
    if ((c.records = malloc(c.len > 0 ? c.len : 1)) == NULL)
        return GW_ENOMEM;
    return append_done(st, &c, store_with_write(st, ingest_txn, &c));
}

/* ------------------------------------------------------------------ merging the log into chunks */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int buf_room(struct buf *b, size_t more)
{
    if (b->len + more > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 8192;
        uint8_t *p;
        while (cap < b->len + more)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL)
            return ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    return 0;
}

/*
 * What one customer's records in a merge tell its profile, gathered as the merge decodes them (no
 * second pass over the records); applied once per customer, in customer id order, by merge_some().
 */
struct profile_run {
    store_t *st;
    MDB_txn *txn;
    const char *cid;
    store_seen_pending_t *pending;
    store_seen_t seen;
};

static int profile_add(struct profile_run *pr, const store_tp_t *tp)
{
    int rc;
    if (store_seen_add(&pr->seen, tp->channel, tp->device, tp->stage, tp->occurred_at_ms) == 0)
        return 0;
    /* more channels or devices than one store_seen_t holds: what it has first */
    rc = store_profiles_seen(pr->st, pr->txn, pr->cid, &pr->seen, pr->pending);
    store_seen_reset(&pr->seen);
    store_seen_add(&pr->seen, tp->channel, tp->device, tp->stage, tp->occurred_at_ms);
    return rc;
}

/* appends the record without its customer id (chunks keep it in the key); pr gathers it for the profile */
static int buf_add_record(struct buf *b, const uint8_t *rec, size_t len, struct profile_run *pr)
{
    store_tp_t tp;
    size_t n;
    int rc;
    if (store_tp_decode(rec, len, &tp) == 0)
        return 0; /* malformed: dropped */
    if (pr != NULL && (rc = profile_add(pr, &tp)) != 0)
        return rc;
    tp.customer_id = NULL;
    if ((rc = buf_room(b, len)) != 0)
        return rc;
    n = store_tp_encode(&tp, b->p + b->len, b->cap - b->len);
    b->len += n;
    return 0;
}

/* writes one chunk of records (without customer id, in time order) under cid + its first record's time and seq */
static int put_chunk(store_t *st, MDB_txn *txn, const char *cid, const uint8_t *recs, size_t len, uint32_t n,
                     const uint8_t *key_or_null)
{
    uint8_t key[CHUNK_KEY];
    MDB_val k = {sizeof(key), key}, v;
    uint64_t lo = UINT64_MAX, hi = 0;
    int rc;

    for (size_t off = 0; off < len; off += from_be16(recs + off)) {
        uint64_t at = store_from_be64(recs + off + 2);
        lo = at < lo ? at : lo;
        hi = at > hi ? at : hi;
    }
    if (key_or_null != NULL) {
        memcpy(key, key_or_null, sizeof(key));
    } else {
        memcpy(key, cid, STORE_ID_LEN);
        memcpy(key + STORE_ID_LEN, recs + 2, 8);           /* occurred_at_ms */
        memcpy(key + STORE_ID_LEN + 8, recs + SEQ_OFF, 8); /* seq */
    }
    v.mv_size = CHUNK_HDR + len;
    v.mv_data = NULL;
    if ((rc = mdb_put(txn, st->tp_cust, &k, &v, MDB_RESERVE)) != 0)
        return rc;
    memcpy(v.mv_data, "JTC1", 4);
    be32(n, (uint8_t *)v.mv_data + 4);
    store_be64(lo, (uint8_t *)v.mv_data + 8);
    store_be64(hi, (uint8_t *)v.mv_data + 16);
    memcpy((uint8_t *)v.mv_data + CHUNK_HDR, recs, len);
    return 0;
}

/* writes the records of refs[0..n) (in time order, one customer) as chunks of at most CHUNK_MAX */
static int put_chunks(store_t *st, MDB_txn *txn, const char *cid, const struct ref *v, size_t n, struct buf *b,
                      struct profile_run *pr)
{
    size_t i = 0;
    int rc;
    while (i < n) {
        uint32_t m = 0;
        b->len = 0;
        while (i < n && (m == 0 || b->len + v[i].len <= CHUNK_MAX)) {
            if ((rc = buf_add_record(b, v[i].rec, v[i].len, pr)) != 0)
                return rc;
            ++m;
            ++i;
        }
        if (b->len > 0 && (rc = put_chunk(st, txn, cid, b->p, b->len, m, NULL)) != 0)
            return rc;
    }
    return 0;
}

/*
 * One customer's new records (refs, in time order) into its chunks: into its last chunk when
 * both fit in CHUNK_MAX (a customer with a touchpoint now and then does not leave a trail of tiny
 * chunks), else as new chunks.
 */
static int merge_customer(store_t *st, MDB_txn *txn, MDB_cursor *cur, const char *cid, const struct ref *v, size_t n,
                          struct buf *b, struct refs *scratch, struct profile_run *pr)
{
    uint8_t key[CHUNK_KEY], last_key[CHUNK_KEY];
    MDB_val k = {sizeof(key), key}, val;
    size_t new_len = 0;
    int rc;

    for (size_t i = 0; i < n; ++i)
        new_len += v[i].len; /* at most: the customer id is left out */
    memcpy(key, cid, STORE_ID_LEN);
    memset(key + STORE_ID_LEN, 0xff, CHUNK_KEY - STORE_ID_LEN);
    rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(cur, &k, &val, MDB_PREV) : mdb_cursor_get(cur, &k, &val, MDB_LAST);
    if (rc == 0 && k.mv_size == sizeof(key) && memcmp(k.mv_data, cid, STORE_ID_LEN) == 0 &&
        val.mv_size + new_len <= CHUNK_HDR + CHUNK_MAX) {
        /* old and new, merged in time order; the old value is copied first: the put may reuse its page */
        uint8_t *old = malloc(val.mv_size);
        MDB_val ov;
        uint32_t m = 0;
        if (old == NULL)
            return ENOMEM;
        memcpy(old, val.mv_data, val.mv_size);
        memcpy(last_key, k.mv_data, sizeof(last_key));
        ov.mv_size = val.mv_size;
        ov.mv_data = old;
        scratch->n = 0;
        if ((rc = chunk_refs(&ov, 0, scratch)) == 0) {
            for (size_t i = 0; i < n && rc == 0; ++i)
                rc = refs_add(scratch, v[i].rec, v[i].len, v[i].cid);
        }
        if (rc == 0) {
            sort_by_time(scratch->v, scratch->n);
            b->len = 0;
            for (size_t i = 0; i < scratch->n && rc == 0; ++i, ++m) {
                if (scratch->v[i].cid != NULL) {
                    rc = buf_add_record(b, scratch->v[i].rec, scratch->v[i].len, pr);
                } else if ((rc = buf_room(b, scratch->v[i].len)) == 0) {
                    memcpy(b->p + b->len, scratch->v[i].rec, scratch->v[i].len);
                    b->len += scratch->v[i].len;
                }
            }
        }
        if (rc == 0)
            rc = put_chunk(st, txn, cid, b->p, b->len, m, last_key);
        free(old);
        return rc;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    return put_chunks(st, txn, cid, v, n, b, pr);
}

/*
 * Merges blocks from the log's start until about MERGE_MAX_EVENTS; *done when the log is empty.
 * The merged touchpoints go into their customers' profiles in the same transaction, each profile
 * once, in customer id order (pending as in store_tp_profiles()), so no block leaves the log before
 * its touchpoints are in the profiles; blocks already in them (store_tp_profiles()) change nothing.
 */
static int merge_some(store_t *st, MDB_txn *txn, uint64_t *merged, int *done, store_seen_pending_t *pending)
{
    MDB_cursor *log = NULL, *cust = NULL;
    MDB_val k, v;
    struct refs r = {NULL, 0, 0}, scratch = {NULL, 0, 0};
    struct buf b = {NULL, 0, 0};
    struct profile_run pr;
    uint64_t last = 0;
    size_t blocks = 0;
    int rc;

    pr.st = st;
    pr.txn = txn;
    pr.pending = pending;
    *done = 0;
    if ((rc = mdb_cursor_open(txn, st->tp_log, &log)) != 0)
        return rc;
    for (rc = mdb_cursor_get(log, &k, &v, MDB_FIRST); rc == 0 && r.n < MERGE_MAX_EVENTS;
         rc = mdb_cursor_get(log, &k, &v, MDB_NEXT)) {
        if ((rc = block_refs(&v, &r)) != 0)
            goto Exit;
        if (k.mv_size == 8)
            last = store_from_be64(k.mv_data);
        ++blocks;
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto Exit;
    *done = rc == MDB_NOTFOUND;
    if (blocks == 0) {
        rc = 0;
        goto Exit;
    }
    if (r.n > 1)
        qsort(r.v, r.n, sizeof(*r.v), by_customer_time);
    if ((rc = mdb_cursor_open(txn, st->tp_cust, &cust)) != 0)
        goto Exit;
    for (size_t i = 0; i < r.n;) {
        size_t j = i + 1;
        while (j < r.n && memcmp(r.v[j].cid, r.v[i].cid, STORE_ID_LEN) == 0)
            ++j;
        pr.cid = r.v[i].cid;
        store_seen_reset(&pr.seen);
        if ((rc = merge_customer(st, txn, cust, r.v[i].cid, r.v + i, j - i, &b, &scratch, &pr)) != 0 ||
            (rc = store_profiles_seen(st, txn, pr.cid, &pr.seen, pending)) != 0)
            goto Exit;
        i = j;
    }
    *merged += r.n;
    /* every block up to the last one merged is in the profiles now (the earlier ones were already) */
    if (last > profiled_through(st, txn) && (rc = set_profiled_through(st, txn, last)) != 0)
        goto Exit;
    /* the merged blocks go only now: their pages held the records read above */
    if ((rc = set_next_block(st, txn, last + 1)) != 0)
        goto Exit;
    for (size_t i = 0; i < blocks; ++i) {
        if ((rc = mdb_cursor_get(log, &k, &v, MDB_FIRST)) != 0 || (rc = mdb_cursor_del(log, 0)) != 0)
            goto Exit;
    }
    rc = 0;
Exit:
    if (cust != NULL)
        mdb_cursor_close(cust);
    mdb_cursor_close(log);
    free(r.v);
    free(scratch.v);
    free(b.p);
    return rc;
}

int store_tp_merge_all(store_t *st, MDB_txn *txn)
{
    uint64_t merged = 0;
    int done = 0, rc = 0;
    while (!done && rc == 0)
        rc = merge_some(st, txn, &merged, &done, NULL);
    return rc;
}

struct merge_ctx {
    uint64_t merged;
    int done;
    store_seen_pending_t pending;
};

static int merge_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct merge_ctx *c = arg;
    c->pending.n = 0; /* a retry (the map grew) starts over */
    return merge_some(st, txn, &c->merged, &c->done, &c->pending);
}

gw_status_t store_touchpoints_merge(store_t *st, uint64_t *merged)
{
    struct merge_ctx c = {0, 0, {NULL, 0, 0}};
    gw_status_t s = GW_OK;
    while (!c.done && s == GW_OK)
        if ((s = store_with_write(st, merge_txn, &c)) == GW_OK)
            store_seen_pending_apply(st, &c.pending);
    store_seen_pending_free(&c.pending);
    if (merged != NULL)
        *merged = c.merged;
    return s;
}

int store_tp_erase_customer(store_t *st, MDB_txn *txn, const char *cid)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t start[CHUNK_KEY];
    int rc;

    if ((rc = store_tp_merge_all(st, txn)) != 0 || (rc = mdb_cursor_open(txn, st->tp_cust, &cur)) != 0)
        return rc;
    memcpy(start, cid, STORE_ID_LEN);
    memset(start + STORE_ID_LEN, 0, CHUNK_KEY - STORE_ID_LEN);
    for (;;) {
        k.mv_size = sizeof(start);
        k.mv_data = start;
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) != 0)
            break;
        if (k.mv_size < STORE_ID_LEN || memcmp(k.mv_data, cid, STORE_ID_LEN) != 0)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* ------------------------------------------------------------------ retention */

struct prune_ctx {
    uint64_t before, deleted;
    uint8_t resume[CHUNK_KEY];
    int started, more;
};

static int prune_txn(store_t *st, MDB_txn *txn, void *arg)
{
    struct prune_ctx *c = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    struct buf b = {NULL, 0, 0};
    unsigned handled = 0;
    uint64_t deleted = 0;
    int rc;

    c->more = 0;
    if ((rc = mdb_cursor_open(txn, st->tp_cust, &cur)) != 0)
        return rc;
    k.mv_size = sizeof(c->resume);
    k.mv_data = c->resume;
    rc = c->started ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        uint32_t n, kept = 0;
        if (!chunk_ok(&v, &n) || k.mv_size != sizeof(c->resume))
            continue;
        if (++handled > 5000) {
            /* keep transactions short: the rest in the next one, from this chunk */
            memcpy(c->resume, k.mv_data, sizeof(c->resume));
            c->started = c->more = 1;
            break;
        }
        if (store_from_be64(p + 8) >= c->before)
            continue;
        if (store_from_be64(p + 16) < c->before) {
            deleted += n;
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            continue;
        }
        /* some of the chunk stays */
        b.len = 0;
        for (size_t off = CHUNK_HDR; off + REC_HDR <= v.mv_size;) {
            size_t rl = from_be16(p + off);
            if (rl < REC_HDR || off + rl > v.mv_size)
                break;
            if (store_from_be64(p + off + 2) >= c->before) {
                if ((rc = buf_room(&b, rl)) != 0)
                    goto Exit;
                memcpy(b.p + b.len, p + off, rl);
                b.len += rl;
                ++kept;
            } else {
                ++deleted;
            }
            off += rl;
        }
        {
            uint8_t key[CHUNK_KEY];
            memcpy(key, k.mv_data, sizeof(key));
            if ((rc = put_chunk(st, txn, (const char *)key, b.p, b.len, kept, key)) != 0)
                break;
            /* the put moved nothing the cursor points at but may have split the page: seek back */
            k.mv_size = sizeof(key);
            k.mv_data = key;
            if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY)) != 0)
                break;
        }
    }
Exit:
    mdb_cursor_close(cur);
    free(b.p);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0)
        c->deleted += deleted;
    return rc;
}

static int merge_all_txn(store_t *st, MDB_txn *txn, void *arg)
{
    (void)arg;
    return store_tp_merge_all(st, txn);
}

gw_status_t store_touchpoints_prune(store_t *st, uint64_t before_ms, uint64_t *deleted)
{
    struct prune_ctx c;
    gw_status_t s;

    memset(&c, 0, sizeof(c));
    c.before = before_ms;
    c.more = 1;
    /* old touchpoints still in the log (ingested late) are pruned once merged */
    if ((s = store_with_write(st, merge_all_txn, NULL)) != GW_OK)
        return s;
    while (c.more && s == GW_OK)
        s = store_with_write(st, prune_txn, &c);
    *deleted = c.deleted;
    return s;
}

/* ------------------------------------------------------------------ format 2 -> 3 */

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL && s[0] != '\0' && strlen(s) <= STORE_TP_STR_MAX ? s : NULL;
}

/* a format-2 touchpoint (JSON) as a record; 0 when it cannot be kept */
static size_t from_json(json_t *j, uint64_t seq, uint8_t *out, size_t cap)
{
    store_tp_t tp;
    json_t *a = json_object_get(j, "attribution"), *extra = json_object();
    char *text = NULL;
    size_t n;

    memset(&tp, 0, sizeof(tp));
    tp.occurred_at_ms = (uint64_t)json_integer_value(json_object_get(j, "occurred_at_ms"));
    tp.received_at_ms = (uint64_t)json_integer_value(json_object_get(j, "received_at_ms"));
    tp.seq = seq;
    tp.id = jstr(j, "id");
    tp.visitor_id = jstr(j, "visitor_id");
    tp.channel = jstr(j, "channel");
    tp.touchpoint = jstr(j, "touchpoint");
    tp.stage = jstr(j, "stage");
    tp.route = jstr(j, "route");
    tp.method = jstr(j, "method");
    tp.device = jstr(j, "device");
    tp.provider = jstr(j, "provider");
    tp.source = jstr(j, "source");
    tp.session = jstr(j, "session");
    tp.visit_id = jstr(j, "visit_id");
    if (json_is_integer(json_object_get(j, "status")))
        tp.status = (int)json_integer_value(json_object_get(j, "status"));
    else if (json_object_get(j, "status") != NULL)
        json_object_set(extra, "status", json_object_get(j, "status"));
    if (json_object_get(j, "attributes") != NULL)
        json_object_set(extra, "attributes", json_object_get(j, "attributes"));
    if (json_is_object(a)) {
        tp.visit_start = 1;
        tp.referrer_host = jstr(a, "referrer_host");
        tp.utm_source = jstr(a, "utm_source");
        tp.utm_medium = jstr(a, "utm_medium");
        tp.utm_campaign = jstr(a, "utm_campaign");
        tp.utm_term = jstr(a, "utm_term");
        tp.utm_content = jstr(a, "utm_content");
        if (json_object_get(a, "click_id") != NULL)
            tp.click_id = json_is_true(json_object_get(a, "click_id")) ? 2 : 1;
    }
    if (json_object_size(extra) > 0 && (text = json_dumps(extra, JSON_COMPACT)) != NULL) {
        tp.extra = text;
        tp.extra_len = strlen(text);
    }
    n = store_tp_encode(&tp, out, cap);
    free(text);
    json_decref(extra);
    return n;
}

int store_tp_migrate_json(store_t *st, MDB_txn *txn)
{
    MDB_dbi old, scratch;
    MDB_cursor *cur;
    MDB_val k, v;
    struct buf b = {NULL, 0, 0};
    uint8_t rec[STORE_TP_RECORD_MAX];
    char cid[STORE_ID_LEN];
    uint64_t max_seq = 0, count = 0;
    uint32_t m = 0;
    int rc;

    /*
     * Format 2 kept one JSON document per touchpoint in "touchpoints"; format 3 keeps chunks under
     * the same name. The chunks are built in a scratch database, then replace the documents.
     */
    old = st->tp_cust;
    if ((rc = mdb_dbi_open(txn, "tp_migrating", MDB_CREATE, &scratch)) != 0 ||
        (rc = mdb_cursor_open(txn, old, &cur)) != 0)
        return rc;
    st->tp_cust = scratch; /* put_chunk() writes there until the swap below */
    /* format 2 keys: customer id + be64(occurred) + be64(seq), so each customer's records come in time order */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        json_t *j;
        uint64_t seq;
        size_t rl;
        if (k.mv_size != STORE_ID_LEN + 16)
            continue;
        seq = store_from_be64((const uint8_t *)k.mv_data + STORE_ID_LEN + 8);
        if (m > 0 && (memcmp(cid, k.mv_data, STORE_ID_LEN) != 0 || b.len + 600 > CHUNK_MAX)) {
            if ((rc = put_chunk(st, txn, cid, b.p, b.len, m, NULL)) != 0)
                break;
            b.len = 0;
            m = 0;
        }
        memcpy(cid, k.mv_data, STORE_ID_LEN);
        j = json_loadb(v.mv_data, v.mv_size, 0, NULL);
        rl = j != NULL ? from_json(j, seq, rec, sizeof(rec)) : 0;
        json_decref(j);
        if (rl == 0)
            continue; /* unreadable: not carried over */
        if ((rc = buf_room(&b, rl)) != 0)
            break;
        memcpy(b.p + b.len, rec, rl);
        b.len += rl;
        ++m;
        ++count;
        max_seq = seq > max_seq ? seq : max_seq;
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0 && m > 0)
        rc = put_chunk(st, txn, cid, b.p, b.len, m, NULL);
    free(b.p);
    /* new sequence numbers start above every migrated one, so no chunk key is ever used twice */
    if (rc == 0)
        rc = set_next_block(st, txn, (max_seq >> SEQ_BITS) + 1);
    st->tp_cust = old;
    if (rc == 0)
        rc = mdb_drop(txn, old, 0); /* emptied, kept: the chunks come back into it */
    if (rc == 0 && (rc = mdb_cursor_open(txn, scratch, &cur)) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            if ((rc = mdb_put(txn, old, &k, &v, MDB_APPEND)) != 0)
                break;
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = mdb_drop(txn, scratch, 1);
    if (rc == 0 && count > 0)
        GW_LOG_INF(MODULE, "%llu touchpoints carried over to format 3", (unsigned long long)count);
    return rc;
}
