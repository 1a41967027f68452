/*
 * bench/journey_bench.c — touchpoint recording and journey reads, measured through recorder.h and store.h only.
 *
 * A benchmark program, not a test: bench/journeys.sh runs it in a temp dir (see bench/README.md).
 *
 *   a. recording, into a synced store (every commit fsynced, as in the gateway), through the real recorder
 *      (gw_recorder_create / gw_recorder_push / gw_recorder_stop: bounded queue of QUEUE, one writer thread,
 *      group commit with store_touchpoints_append):
 *      a1. N_EVENTS touchpoints spread uniformly at random over CUSTOMERS customers, pushed flat out from one
 *          thread; a push that the full queue refuses (dropped and counted by the recorder) is retried after
 *          sched_yield() until accepted, so every event is written; the refusals are reported apart. Timed
 *          from the first push until gw_recorder_stop() returns (everything written and synced), with the
 *          CPU time of the producer and of the writer thread and the bytes the commits wrote;
 *      a2. DROP_EVENTS more pushed flat out without retries, as the gateway pushes: how many the full queue drops;
 *      then the journeys of VERIFY random customers are read back and checked (every accepted touchpoint
 *      there, in time order);
 *   b. journey reads: one more customer gets JOURNEY_LEN touchpoints (through the recorder, spread over
 *      months, several channels), then READS store_journey() calls for the whole journey (p50/p99/max),
 *      READS for its first PAGE touchpoints and READS for its latest PAGE (since_ms), and the time that
 *      jansson alone takes to parse the same records;
 *   c. size on disk: data.mdb (st_size, st_blocks) per touchpoint and, when lmdb-utils is installed,
 *      `mdb_stat -efa`: the touchpoints database's pages per entry, its depth, how full its leaf pages are.
 *
 * Only the store touches LMDB (house style), so the LMDB figures come from the mdb_stat tool,
 * spawned without a shell. Exit status: 0 when everything ran, 1 when a call failed or an answer
 * was wrong (a touchpoint missing, out of order, a count that does not match), 2 on bad usage.
 */
#include "recorder.h"
#include "bench_util.h"
#include "store.h"

#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *bench_prog = "journey_bench"; /* bench_util.h */

#define MDB_STAT_OUT_CAP (64 * 1024)     /* mdb_stat -efa of a journeygate store is about 3 KB */
#define STUCK_NS (30ULL * 1000000000ULL) /* a push refused for this long means the writer is stuck */
#define PARSE_PASSES 20                  /* passes of the parse-only measurement */

typedef char cid_t[STORE_ID_LEN + 1];

struct opts {
    uint64_t events, drop_events, customers, queue, retry_sleep_us, journey_len, reads, page, verify, map_mb, seed;
    const char *dir;
};

struct results {
    double load_start, load_end;
    double setup_s;
    /* a. recording */
    double rec_s, push_s, drain_s, producer_cpu_s, writer_cpu_s, push_cpu_us;
    uint64_t wchar;
    uint64_t refusals, refused_events, accepted, dropped, written, failed;
    double drop_rec_s;
    uint64_t drop_accepted, drop_dropped;
    uint64_t sampled, sampled_bytes;
    /* b. journey reads */
    double journey_rec_s;
    struct lat full, first_page, last_page;
    double parse_ms; /* the whole journey read with a JSON object made for each touchpoint */
    uint64_t journey_bytes;
    /* c. disk */
    uint64_t file_bytes, alloc_bytes, total_tp;
    int have_mdb_stat;
    uint64_t page_size, pages_used, pages_free, tp_pages, tp_leaf, tp_branch, tp_overflow, tp_entries, tp_depth;
};

/* ------------------------------------------------------------------ helpers (and bench_util.h's) */

/* CPU time (user + system) of the whole process or of the calling thread, in seconds */
static double cpu_s(int who)
{
    struct rusage ru;

    if (getrusage(who, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * bytes this process has passed to write() and pwrite() (/proc/self/io wchar): LMDB writes every dirty page
 * of a commit with pwrite. (write_bytes is not used: with large folios it counts whole folios, several times
 * what reaches the disk.)
 */
static uint64_t proc_wchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    uint64_t v = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "wchar: ", 7) == 0)
            v = strtoull(line + 7, NULL, 10);
    fclose(f);
    return v;
}

/* the "Status of NAME" block of mdb_stat -a (a new string), or NULL */
static char *db_block(const char *text, const char *name)
{
    char head[64];
    const char *p, *end;
    char *block;

    fmt(head, sizeof(head), "Status of %s\n", name);
    if ((p = strstr(text, head)) == NULL)
        return NULL;
    p += strlen(head);
    end = strstr(p, "Status of ");
    if ((block = strndup(p, end != NULL ? (size_t)(end - p) : strlen(p))) == NULL)
        die("out of memory");
    return block;
}

/* ------------------------------------------------------------------ customers and events */

static const store_login_opts_t login_opts = {0, NULL, NULL, "web"};

/* what the routes of a shop say about their requests (route name, channel, touchpoint, stage, method) */
static const struct kind {
    const char *route, *channel, *touchpoint, *stage, *method;
} kinds[] = {
    {"home", "web", "view", "awareness", "GET"},
    {"product", "web", "product_view", "consideration", "GET"},
    {"cart", "web", "add_to_cart", "intent", "POST"},
    {"checkout", "web", "checkout", "purchase", "POST"},
    {"account", "web", "account", "retention", "GET"},
    {"app-home", "mobile", "view", "awareness", "GET"},
    {"app-product", "mobile", "product_view", "consideration", "GET"},
    {"app-orders", "mobile", "orders", "retention", "GET"},
    {"api-orders", "api", "orders", "retention", "GET"},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const user_agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Mobile/15E148 Safari/604.1"),
    "okhttp/4.12.0",
};

/*
 * One request's touchpoint, as gateway/auth.c auth_record_touchpoint() builds it: the route's
 * names, the session's customer and provider, the client's User-Agent, Referer and query.
 * 1 in 20 carries a campaign (utm_* and a gclid), 1 in 4 a Referer.
 */
static gw_touch_t make_touch(const cid_t *ids, uint64_t customer, uint64_t draw, uint64_t at_ms)
{
    static const char campaign[] = "utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale&gclid=Cj0KCQ";
    static const char paging[] = "page=2";
    const struct kind *k = &kinds[draw % N_KINDS];
    gw_touch_t t;

    memset(&t, 0, sizeof(t));
    t.customer_id = ids[customer];
    t.channel = k->channel;
    t.touchpoint = k->touchpoint;
    t.stage = k->stage;
    t.route = k->route;
    t.method = k->method;
    t.provider = provider_of(customer);
    /* the mobile routes come from the app or a phone's browser, the web ones mostly from a desktop */
    t.user_agent = strcmp(k->channel, "mobile") == 0 ? user_agents[1 + (draw >> 8) % 2]
                   : strcmp(k->channel, "api") == 0  ? user_agents[2]
                                                     : user_agents[(draw >> 8) % 4 == 0 ? 1 : 0];
    t.referer = (draw >> 12) % 4 == 0 ? "https://www.google.com/" : NULL;
    if ((draw >> 16) % 20 == 0) {
        t.query = campaign;
        t.query_len = sizeof(campaign) - 1;
    } else if ((draw >> 16) % 4 == 1) {
        t.query = paging;
        t.query_len = sizeof(paging) - 1;
    }
    t.status = (draw >> 24) % 50 == 0 ? 404 : 200;
    t.occurred_at_ms = at_ms;
    return t;
}

/*
 * Pushes until accepted; returns how many times the full queue refused it. After a refusal it sleeps
 * sleep_us (the writer frees the queue a batch of up to 1024 at a time), or only yields when sleep_us is 0:
 * a producer that spins on sched_yield() keeps a core busy, and on 2 cores that core is the writer's too.
 */
static uint64_t push_retrying(gw_recorder_t *rec, const gw_touch_t *t, uint64_t sleep_us)
{
    uint64_t refused = 0, since = 0;

    while (gw_recorder_push(rec, t) != 0) {
        if (refused++ == 0)
            since = now_ns();
        else if ((refused & 1023) == 0 && now_ns() - since > STUCK_NS)
            die("the recorder refused a touchpoint for %llu s in a row: is the writer stuck?",
                (unsigned long long)(STUCK_NS / 1000000000ULL));
        if (sleep_us == 0) {
            sched_yield();
        } else {
            struct timespec ts = {0, (long)sleep_us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return refused;
}

/* ------------------------------------------------------------------ setup */

static void setup_customers(const struct opts *o, store_t *st, cid_t *ids, struct results *r)
{
    uint64_t t0 = now_ns(), n = o->customers + 1;
    gw_status_t s;

    /* an import: no sync per customer, one at the end; the recorder then runs on a synced store */
    if ((s = store_set_durable(st, 0)) != GW_OK)
        die("store_set_durable(0): %s", gw_status_str(s));
    for (uint64_t i = 0; i < n; ++i) {
        struct ident_buf b;
        store_identity_t id;
        store_login_info_t info;

        make_identity(i, &b, &id);
        s = store_login(st, &id, &login_opts, wall_ms(), ids[i], &info, NULL);
        if (s != GW_OK || info.result != STORE_LOGIN_CREATED)
            die("customer %" PRIu64 ": %s (result %d)", i, gw_status_str(s), (int)info.result);
    }
    if ((s = store_set_durable(st, 1)) != GW_OK)
        die("store_set_durable(1): %s", gw_status_str(s));
    r->setup_s = secs(now_ns() - t0);
    printf("\n== Setup: %" PRIu64 " customers (store_login, then store_set_durable(1): every commit from here on is "
           "synced) in %.2f s ==\n",
           n, r->setup_s);
}

/* ------------------------------------------------------------------ reading journeys back */

struct journey_ctx {
    uint64_t count, limit, last_at, bad_order, bytes, json_bytes;
};

static int count_cb(const store_tp_t *tp, void *arg)
{
    struct journey_ctx *c = arg;
    (void)tp;
    return ++c->count >= c->limit;
}

/* what the admin API and the exports do with each touchpoint they show: its JSON object */
static int json_cb(const store_tp_t *tp, void *arg)
{
    struct journey_ctx *c = arg;
    json_t *j = store_tp_json(tp);
    if (j == NULL)
        die("store_tp_json failed");
    json_decref(j);
    return ++c->count >= c->limit;
}

/* counts, checks the time order and the customer, and measures each record (encoded, and as JSON) */
static int check_cb(const store_tp_t *tp, void *arg)
{
    struct journey_ctx *c = arg;
    uint8_t rec[STORE_TP_RECORD_MAX];
    store_tp_t copy = *tp;
    char *text;
    json_t *j;
    size_t len;

    if (tp->occurred_at_ms < c->last_at)
        ++c->bad_order;
    c->last_at = tp->occurred_at_ms;
    /* a chunk's record, as stored: without the customer id (its key holds it) */
    copy.customer_id = NULL;
    if ((len = store_tp_encode(&copy, rec, sizeof(rec))) == 0 || (j = store_tp_json(tp)) == NULL ||
        (text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        die("store_tp_encode/store_tp_json failed");
    c->bytes += len;
    c->json_bytes += strlen(text);
    free(text);
    json_decref(j);
    ++c->count;
    return 0;
}

/* ------------------------------------------------------------------ a. recording */

/* a1: every event pushed until accepted (retried after sched_yield) */
static void record_retrying(const struct opts *o, store_t *st, const cid_t *ids, uint32_t *per_customer,
                            struct results *r)
{
    gw_recorder_t *rec;
    uint64_t rng = rng_seed(o->seed), t0, t_pushed, t_end, step = o->events >= 10 ? o->events / 10 : 1, t_last;
    uint64_t wrote_last = 0;
    double cpu0, thr0;
    uint64_t wchar0;

    printf("\n== a. Recording: %" PRIu64 " touchpoints over %" PRIu64 " customers, pushed flat out from 1 thread "
           "through the recorder (queue %" PRIu64 ", 1 writer thread, group commit, synced) ==\n",
           o->events, o->customers, o->queue);
    if (o->retry_sleep_us != 0)
        printf("  a1. every push that the full queue refuses is retried after a %" PRIu64 " us sleep, so all are "
               "written:\n",
               o->retry_sleep_us);
    else
        printf("  a1. every push that the full queue refuses is retried after sched_yield(), so all are written:\n");
    if ((rec = gw_recorder_create(st, o->queue)) == NULL)
        die("gw_recorder_create(%" PRIu64 ") failed", o->queue);
    wchar0 = proc_wchar();
    cpu0 = cpu_s(RUSAGE_SELF);
    thr0 = cpu_s(RUSAGE_THREAD);
    t0 = t_last = now_ns();
    for (uint64_t i = 0; i < o->events; ++i) {
        uint64_t draw = rng_next(&rng), c = rng_below(&rng, o->customers);
        gw_touch_t t = make_touch(ids, c, draw, wall_ms());
        uint64_t refused = push_retrying(rec, &t, o->retry_sleep_us);

        ++per_customer[c];
        r->refusals += refused;
        r->refused_events += refused != 0;
        if ((i + 1) % step == 0) {
            uint64_t now = now_ns(), acc, drop, wrote, fail;
            gw_recorder_counts(rec, &acc, &drop, &wrote, &fail);
            printf("    %6.2f s  %9" PRIu64 " pushed (%8.0f /s over the last %" PRIu64 ")  %9" PRIu64
                   " written (%8.0f /s)  %9" PRIu64 " refusals so far\n",
                   secs(now - t0), i + 1, (double)step / secs(now - t_last), step, wrote,
                   (double)(wrote - wrote_last) / secs(now - t_last), r->refusals);
            t_last = now;
            wrote_last = wrote;
        }
    }
    t_pushed = now_ns();
    r->producer_cpu_s = cpu_s(RUSAGE_THREAD) - thr0;
    gw_recorder_stop(rec);
    t_end = now_ns();
    /* the main thread only waited in gw_recorder_stop(): the rest of the process's CPU is the writer's */
    r->writer_cpu_s = cpu_s(RUSAGE_SELF) - cpu0 - r->producer_cpu_s;
    r->wchar = proc_wchar() - wchar0;
    gw_recorder_counts(rec, &r->accepted, &r->dropped, &r->written, &r->failed);
    /* the recorder has no destroy call (the gateway stops its one recorder at exit): its memory stays */
    r->rec_s = secs(t_end - t0);
    r->push_s = secs(t_pushed - t0);
    r->drain_s = secs(t_end - t_pushed);

    printf("  %" PRIu64 " touchpoints written in %.2f s (first push -> gw_recorder_stop() returned) = %.0f /s\n",
           r->written, r->rec_s, (double)o->events / r->rec_s);
    printf("    pushing took %.2f s, then %.3f s until the writer had written and synced the rest (at most a queue "
           "of %" PRIu64 ")\n",
           r->push_s, r->drain_s, o->queue);
    printf("    CPU: producer %.2f s (%.2f us per event: encoding the record, retries included), writer %.2f s "
           "(%.2f us per event, busy %.0f%% of the wall time; the rest: waiting for fsync or for a CPU)\n",
           r->producer_cpu_s, r->producer_cpu_s * 1e6 / (double)o->events, r->writer_cpu_s,
           r->writer_cpu_s * 1e6 / (double)o->events, r->writer_cpu_s / r->rec_s * 100);
    printf("    I/O: the commits wrote %.1f MiB (pwrite, /proc/self/io wchar) = %.0f B per touchpoint\n",
           (double)r->wchar / 1048576.0, (double)r->wchar / (double)o->events);
    printf("    queue full: %" PRIu64 " pushes refused (= the recorder's dropped counter, %" PRIu64 ") and retried; "
           "%" PRIu64 " events (%.2f%%) needed at least one retry\n",
           r->refusals, r->dropped, r->refused_events, (double)r->refused_events * 100 / (double)o->events);
    printf("    recorder counts: accepted %" PRIu64 ", dropped %" PRIu64 ", written %" PRIu64 ", failed %" PRIu64 "\n",
           r->accepted, r->dropped, r->written, r->failed);
    if (r->accepted != o->events || r->written != o->events || r->failed != 0 || r->dropped != r->refusals)
        die("the recorder's counts do not match: %" PRIu64 " events pushed", o->events);
}

/* a2: pushed flat out as the gateway pushes (never retried): what the full queue drops is lost */
static void record_dropping(const struct opts *o, store_t *st, const cid_t *ids, uint32_t *per_customer,
                            struct results *r)
{
    gw_recorder_t *rec;
    uint64_t rng = rng_seed(o->seed + 2), t0, t_pushed, acc, drop, wrote, fail;
    double thr0;

    printf("  a2. %" PRIu64 " more pushed flat out and never retried, as the gateway does (a refused push is a "
           "dropped touchpoint), same queue of %" PRIu64 ":\n",
           o->drop_events, o->queue);
    if ((rec = gw_recorder_create(st, o->queue)) == NULL)
        die("gw_recorder_create(%" PRIu64 ") failed", o->queue);
    thr0 = cpu_s(RUSAGE_THREAD);
    t0 = now_ns();
    for (uint64_t i = 0; i < o->drop_events; ++i) {
        uint64_t draw = rng_next(&rng), c = rng_below(&rng, o->customers);
        gw_touch_t t = make_touch(ids, c, draw, wall_ms());

        if (gw_recorder_push(rec, &t) == 0)
            ++per_customer[c];
    }
    t_pushed = now_ns();
    r->push_cpu_us = (cpu_s(RUSAGE_THREAD) - thr0) * 1e6 / (double)o->drop_events;
    gw_recorder_stop(rec);
    r->drop_rec_s = secs(now_ns() - t0);
    gw_recorder_counts(rec, &acc, &drop, &wrote, &fail);
    r->drop_accepted = acc;
    r->drop_dropped = drop;
    printf("    pushed in %.2f s (%.0f /s): %" PRIu64 " accepted, %" PRIu64 " dropped (%.1f%%); %" PRIu64
           " written, %" PRIu64 " failed, %.2f s from the first push until gw_recorder_stop() returned\n",
           secs(t_pushed - t0), (double)o->drop_events / secs(t_pushed - t0), acc, drop,
           (double)drop * 100 / (double)o->drop_events, wrote, fail, r->drop_rec_s);
    printf("    a push (gw_recorder_push: the touchpoint's record encoded, then queued or dropped) took %.2f us of "
           "CPU\n",
           r->push_cpu_us);
    if (acc + drop != o->drop_events || wrote != acc || fail != 0)
        die("the recorder's counts do not add up");
}

/* every customer's journey holds what was accepted for it: checked on a random sample of customers */
static void check_sample(const struct opts *o, store_t *st, const cid_t *ids, const uint32_t *per_customer,
                         struct results *r)
{
    uint64_t rng = rng_seed(o->seed + 3), n = o->customers < o->verify ? o->customers : o->verify, total = 0;
    uint64_t t0 = now_ns();

    for (uint64_t i = 0; i < n; ++i) {
        /* all customers when the sample covers them, else random ones */
        uint64_t c = n == o->customers ? i : rng_below(&rng, o->customers);
        struct journey_ctx jc = {0, 0, 0, 0, 0, 0};
        gw_status_t s = store_journey(st, ids[c], 0, check_cb, &jc);

        if (s != GW_OK || jc.count != per_customer[c] || jc.bad_order != 0)
            die("customer %s: %s, %" PRIu64 " touchpoints (%" PRIu64 " out of order), %u were accepted", ids[c],
                gw_status_str(s), jc.count, jc.bad_order, per_customer[c]);
        total += jc.count;
        r->sampled_bytes += jc.bytes;
    }
    r->sampled = total;
    printf("  checked: the journeys of %" PRIu64 " customers hold the %" PRIu64 " touchpoints accepted for them, in "
           "time order (%.2f s); a record is %.0f bytes per touchpoint\n",
           n, total, secs(now_ns() - t0), total != 0 ? (double)r->sampled_bytes / (double)total : 0.0);
}

/* ------------------------------------------------------------------ b. journey reads */

/* o->reads store_journey() calls; each must see `expect` touchpoints */
static struct lat time_reads(const struct opts *o, store_t *st, const char *cid, uint64_t since_ms, uint64_t limit,
                             uint64_t expect, const char *what)
{
    uint64_t *ns = malloc(o->reads * sizeof(*ns));
    struct lat l;

    if (ns == NULL)
        die("out of memory");
    for (uint64_t i = 0; i < o->reads; ++i) {
        struct journey_ctx c = {0, limit, 0, 0, 0, 0};
        uint64_t t0 = now_ns();
        gw_status_t s = store_journey(st, cid, since_ms, count_cb, &c);

        ns[i] = now_ns() - t0;
        if (s != GW_OK || c.count != expect)
            die("%s, read %" PRIu64 ": %s, %" PRIu64 " touchpoints instead of %" PRIu64, what, i, gw_status_str(s),
                c.count, expect);
    }
    l = lat_of(ns, o->reads);
    free(ns);
    printf("    %-34s %9.3f %9.3f %9.3f %9.3f %9.3f %10.3f\n", what, l.first_us / 1e3, l.p50_us / 1e3, l.p99_us / 1e3,
           l.max_us / 1e3, l.mean_us / 1e3, l.p50_us / (double)expect);
    return l;
}

static void part_journey(const struct opts *o, store_t *st, const cid_t *ids, struct results *r)
{
    const char *cid = ids[o->customers]; /* the extra customer made in setup_customers() */
    uint64_t n = o->journey_len, page = o->page < n ? o->page : n, rng = rng_seed(o->seed + 1), t0, at;
    uint64_t *times = malloc(n * sizeof(*times));
    struct journey_ctx c = {0, n, 0, 0, 0, 0};
    gw_recorder_t *rec;
    gw_status_t s;

    if (times == NULL)
        die("out of memory");
    printf("\n== b. Journey reads: customer %s with %" PRIu64 " touchpoints, store_journey() %" PRIu64
           " times each ==\n",
           cid, n, o->reads);
    /* a long-standing customer: one touchpoint every 5 s to 60 min (mean ~30 min), ending now */
    at = wall_ms();
    for (uint64_t i = n; i-- > 0;) {
        times[i] = at;
        at -= 5000 + rng_below(&rng, 3595000);
    }
    if ((rec = gw_recorder_create(st, o->queue)) == NULL)
        die("gw_recorder_create failed");
    t0 = now_ns();
    for (uint64_t i = 0; i < n; ++i) {
        gw_touch_t t = make_touch(ids, o->customers, rng_next(&rng), times[i]);
        push_retrying(rec, &t, o->retry_sleep_us);
    }
    gw_recorder_stop(rec);
    r->journey_rec_s = secs(now_ns() - t0);
    printf("  recorded through the recorder in %.2f s (%.1f days of touchpoints, web/mobile/api)\n", r->journey_rec_s,
           (double)(times[n - 1] - times[0]) / 86400000.0);

    /* one checked read: all there, in time order */
    if ((s = store_journey(st, cid, 0, check_cb, &c)) != GW_OK || c.count != n || c.bad_order != 0)
        die("store_journey: %s, %" PRIu64 " touchpoints (%" PRIu64 " out of order) instead of %" PRIu64,
            gw_status_str(s), c.count, c.bad_order, n);
    r->journey_bytes = c.bytes;
    printf("  checked: %" PRIu64 " touchpoints in time order, records of %.0f bytes each (%.2f MiB in all; %.0f "
           "bytes each as JSON)\n",
           n, (double)c.bytes / (double)n, (double)c.bytes / 1048576.0, (double)c.json_bytes / (double)n);

    printf("  latency in ms (first = the first of the timed reads; per tp = p50 / touchpoints, in us):\n");
    printf("    %-34s %9s %9s %9s %9s %9s %10s\n", "", "first", "p50", "p99", "max", "mean", "per tp");
    {
        char what[64];
        fmt(what, sizeof(what), "whole journey (%" PRIu64 ")", n);
        r->full = time_reads(o, st, cid, 0, UINT64_MAX, n, what);
        fmt(what, sizeof(what), "first %" PRIu64 " (callback stops)", page);
        r->first_page = time_reads(o, st, cid, 0, page, page, what);
        fmt(what, sizeof(what), "latest %" PRIu64 " (since_ms)", page);
        /* since_ms = the time of the page's first touchpoint (the times are at least 5 s apart) */
        r->last_page = time_reads(o, st, cid, times[n - page], UINT64_MAX, page, what);
    }

    /* the same read, each touchpoint made a JSON object (what an export or the admin API pays on top) */
    {
        double best = 0;
        for (int pass = 0; pass < PARSE_PASSES; ++pass) {
            struct journey_ctx jc = {0, UINT64_MAX, 0, 0, 0, 0};
            uint64_t tp0 = now_ns();
            if (store_journey(st, cid, 0, json_cb, &jc) != GW_OK || jc.count != n)
                die("store_journey with store_tp_json failed");
            double ms = secs(now_ns() - tp0) * 1e3;
            if (pass == 0 || ms < best)
                best = ms;
        }
        r->parse_ms = best;
        printf("  the whole journey with a JSON object made for each touchpoint (store_tp_json, as exports do): "
               "%.3f ms (best of %d)\n",
               best, PARSE_PASSES);
    }
    free(times);
}

/* ------------------------------------------------------------------ c. size on disk */

static int total_cb(const store_tp_t *tp, void *arg)
{
    (void)tp;
    ++*(uint64_t *)arg;
    return 0;
}

static void part_disk(const struct opts *o, store_t *st, const char *store_dir, struct results *r)
{
    uint64_t counted = 0;
    char path[4096], a[32], b[32];
    const char *tool = getenv("MDB_STAT") != NULL ? getenv("MDB_STAT") : "mdb_stat";
    char *out = malloc(MDB_STAT_OUT_CAP);
    struct stat sb;
    double tp;

    if (out == NULL)
        die("out of memory");
    r->total_tp = o->events + r->drop_accepted + o->journey_len;
    tp = (double)r->total_tp;
    if (store_touchpoints_foreach(st, 0, total_cb, &counted) != GW_OK || counted != r->total_tp)
        die("store_touchpoints_foreach counts %" PRIu64 " touchpoints, %" PRIu64 " were written", counted, r->total_tp);
    printf("\n== c. Size on disk: %" PRIu64 " touchpoints and %" PRIu64 " customers ==\n", r->total_tp,
           o->customers + 1);
    fmt(path, sizeof(path), "%s/data.mdb", store_dir);
    if (stat(path, &sb) != 0)
        die("stat %s: %s", path, strerror(errno));
    r->file_bytes = (uint64_t)sb.st_size;
    r->alloc_bytes = (uint64_t)sb.st_blocks * 512;
    human_bytes((double)r->file_bytes, a, sizeof(a));
    human_bytes((double)r->alloc_bytes, b, sizeof(b));
    printf("  data.mdb: %s (st_size), %s allocated (st_blocks) -> %.0f bytes per touchpoint (st_size / touchpoints, "
           "the customers included)\n",
           a, b, (double)r->file_bytes / tp);
    {
        char *argv[] = {(char *)tool, (char *)"-efa", (char *)store_dir, NULL};
        char *block;

        if (run_capture(argv, out, MDB_STAT_OUT_CAP) == 0 && (r->page_size = stat_field(out, "Page size:")) != 0 &&
            (r->pages_used = stat_field(out, "Number of pages used:")) != 0 &&
            (block = db_block(out, "touchpoints")) != NULL) {
            static const char *const others[] = {"tp_log", "customers", "identities", "emails", "meta"};
            double mean_rec = r->journey_bytes != 0 ? (double)r->journey_bytes / (double)o->journey_len : 0;

            r->have_mdb_stat = 1;
            r->pages_free = stat_field(out, "Free pages:");
            r->tp_branch = stat_field(block, "Branch pages:");
            r->tp_leaf = stat_field(block, "Leaf pages:");
            r->tp_overflow = stat_field(block, "Overflow pages:");
            r->tp_entries = stat_field(block, "Entries:");
            r->tp_depth = stat_field(block, "Tree depth:");
            r->tp_pages = r->tp_branch + r->tp_leaf + r->tp_overflow;
            free(block);
            human_bytes((double)(r->pages_used * r->page_size), a, sizeof(a));
            printf("  LMDB (%s -efa): %" PRIu64 " pages of %" PRIu64 " B used = %s (%.0f B per touchpoint), %" PRIu64
                   " on the freelist\n",
                   tool, r->pages_used, r->page_size, a, (double)(r->pages_used * r->page_size) / tp, r->pages_free);
            human_bytes((double)(r->tp_pages * r->page_size), a, sizeof(a));
            printf("    %-12s %9" PRIu64 " chunks, depth %" PRIu64 ", %" PRIu64 " leaf + %" PRIu64 " branch + %" PRIu64
                   " overflow pages = %s = %.0f B per touchpoint (%.1f touchpoints per chunk; a record is %.0f B)\n",
                   "touchpoints", r->tp_entries, r->tp_depth, r->tp_leaf, r->tp_branch, r->tp_overflow, a,
                   (double)(r->tp_pages * r->page_size) / tp, r->tp_entries != 0 ? tp / (double)r->tp_entries : 0.0,
                   mean_rec);
            for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); ++i) {
                uint64_t pages;
                if ((block = db_block(out, others[i])) == NULL)
                    continue;
                pages = stat_field(block, "Branch pages:") + stat_field(block, "Leaf pages:") +
                        stat_field(block, "Overflow pages:");
                human_bytes((double)(pages * r->page_size), a, sizeof(a));
                printf("    %-12s %9" PRIu64 " entries, %" PRIu64 " pages = %s\n", others[i],
                       stat_field(block, "Entries:"), pages, a);
                free(block);
            }
        } else {
            printf("  (%s not available: install lmdb-utils for LMDB's page figures; the file size above stands)\n",
                   tool);
        }
    }
    free(out);
}

/* ------------------------------------------------------------------ report */

static void print_summary(const struct opts *o, const struct results *r, const char *fs, const char *lmdb_version)
{
    struct utsname u;
    char day[16], a[32];
    time_t t = time(NULL);
    struct tm tm;
    double rate = (double)o->events / r->rec_s;

    if (uname(&u) != 0)
        fmt(u.release, sizeof(u.release), "?");
    strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&t, &tm));
    printf("\n== Summary (Markdown, for bench/README.md) ==\n\n");
    printf("`journey_bench` %s, %ld CPUs, Linux %s, store on %s, %s; N_EVENTS=%" PRIu64 " DROP_EVENTS=%" PRIu64
           " CUSTOMERS=%" PRIu64 " QUEUE=%" PRIu64 " JOURNEY_LEN=%" PRIu64 " READS=%" PRIu64
           "; load average %.2f at the start, %.2f at "
           "the end.\n\n",
           day, sysconf(_SC_NPROCESSORS_ONLN), u.release, fs, lmdb_version, o->events, o->drop_events, o->customers,
           o->queue, o->journey_len, o->reads, r->load_start, r->load_end);
    printf("| measure | result | target |\n|---|---|---|\n");
    printf("| touchpoints recorded, synced (first push -> `gw_recorder_stop` returned) | %.0f /s (%" PRIu64
           " in %.2f s) | ≥ 200000 /s: %s |\n",
           rate, o->events, r->rec_s, rate >= 200000 ? "met" : "NOT met");
    printf("| writer thread: CPU per touchpoint, busy share of the wall time | %.2f µs, %.0f%% | |\n",
           r->writer_cpu_s * 1e6 / (double)o->events, r->writer_cpu_s / r->rec_s * 100);
    printf("| written by the commits per touchpoint (`/proc/self/io` wchar) | %.0f B | |\n",
           (double)r->wchar / (double)o->events);
    if (o->drop_events != 0)
        printf("| CPU of one `gw_recorder_push` (record encoded and queued; the a2 run) | %.2f µs | |\n",
               r->push_cpu_us);
    printf("| queue full while pushing flat out with retries (queue %" PRIu64 ", retry after %" PRIu64 " µs) | %" PRIu64
           " refused pushes, retried; %" PRIu64 " events (%.2f%%) needed a retry | |\n",
           o->queue, o->retry_sleep_us, r->refusals, r->refused_events,
           (double)r->refused_events * 100 / (double)o->events);
    if (o->drop_events != 0)
        printf("| dropped when pushing flat out without retries, as the gateway (%" PRIu64 " events, queue %" PRIu64
               ") | %" PRIu64 " dropped (%.1f%%) | |\n",
               o->drop_events, o->queue, r->drop_dropped, (double)r->drop_dropped * 100 / (double)o->drop_events);
    printf("| whole journey, %" PRIu64 " touchpoints (`store_journey`), p50 / p99 / max | %.2f / %.2f / %.2f ms | "
           "< 2 ms: %s |\n",
           o->journey_len, r->full.p50_us / 1e3, r->full.p99_us / 1e3, r->full.max_us / 1e3,
           r->full.p99_us < 2000 ? "met" : "NOT met");
    printf("| the same read with a JSON object made for each touchpoint (`store_tp_json`, as exports) | %.2f ms | |\n",
           r->parse_ms);
    printf("| first %" PRIu64 " / latest %" PRIu64 " touchpoints of that journey, p50 / p99 | %.3f / %.3f ms; "
           "%.3f / %.3f ms | |\n",
           o->page < o->journey_len ? o->page : o->journey_len, o->page < o->journey_len ? o->page : o->journey_len,
           r->first_page.p50_us / 1e3, r->first_page.p99_us / 1e3, r->last_page.p50_us / 1e3,
           r->last_page.p99_us / 1e3);
    human_bytes((double)r->file_bytes, a, sizeof(a));
    printf("| data.mdb size / touchpoints (%" PRIu64 ", with %" PRIu64 " customers) | %s = %.0f B per touchpoint | "
           "|\n",
           r->total_tp, o->customers + 1, a, (double)r->file_bytes / (double)r->total_tp);
    if (r->have_mdb_stat)
        printf("| `touchpoints` database pages (`mdb_stat -efa`) / touchpoints | %.0f B per touchpoint (records of "
               "%.0f B, "
               "%.1f per chunk; depth %" PRIu64 ") | |\n",
               (double)(r->tp_pages * r->page_size) / (double)r->total_tp,
               r->journey_bytes != 0 ? (double)r->journey_bytes / (double)o->journey_len : 0.0,
               r->tp_entries != 0 ? (double)r->total_tp / (double)r->tp_entries : 0.0, r->tp_depth);
}

static void usage(FILE *f)
{
    fputs("Usage: journey_bench [options] DIR\n"
          "Measures touchpoint recording (gateway/recorder.h) and journey reads (gateway/store.h) in a new\n"
          "store DIR/store (DIR must exist). Normally run by bench/journeys.sh.\n"
          "  --events N       touchpoints pushed flat out, retried until accepted (the timed run) [1000000]\n"
          "  --drop-events N  then touchpoints pushed flat out without retries (dropped ones are lost); 0 skips\n"
          "                   this run [200000]\n"
          "  --customers N    customers they are spread over (uniformly at random) [10000]\n"
          "  --queue N        the recorder's queue (the gateway's journeys.queue_size) [65536]\n"
          "  --retry-sleep-us N  after a refused push, sleep N us before retrying; 0 = sched_yield() only [100]\n"
          "  --journey-len N  touchpoints of the customer whose journey is read [10000]\n"
          "  --reads N        store_journey() calls of each kind [1000]\n"
          "  --page N         touchpoints of the first/latest page reads [100]\n"
          "  --verify N       customers whose journeys are checked after the recording (all when N >= customers)\n"
          "                   [100]\n"
          "  --map-mb N       initial map size given to store_open (it grows by doubling) [1024]\n"
          "  --seed N         random seed [1]\n"
          "Environment: MDB_STAT = the mdb_stat program [mdb_stat from PATH].\n",
          f);
}

int main(int argc, char **argv)
{
    struct opts o = {1000000, 200000, 10000, 65536, 100, 10000, 1000, 100, 100, 1024, 1, NULL};
    struct results r;
    char store_dir[4096], lmdb_version[64] = "LMDB version unknown";
    store_t *st = NULL;
    cid_t *ids = NULL;
    const char *fs;
    gw_status_t s;

    memset(&r, 0, sizeof(r));
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (o.dir != NULL) {
                usage(stderr);
                return 2;
            }
            o.dir = a;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "journey_bench: %s needs a value\n", a);
            return 2;
        }
        ++i;
        if (strcmp(a, "--events") == 0)
            o.events = parse_u64(a, v, 1, 1000000000);
        else if (strcmp(a, "--drop-events") == 0)
            o.drop_events = parse_u64(a, v, 0, 1000000000);
        else if (strcmp(a, "--retry-sleep-us") == 0)
            o.retry_sleep_us = parse_u64(a, v, 0, 999999);
        else if (strcmp(a, "--verify") == 0)
            o.verify = parse_u64(a, v, 0, 10000000);
        else if (strcmp(a, "--customers") == 0)
            o.customers = parse_u64(a, v, 1, 10000000);
        else if (strcmp(a, "--queue") == 0)
            o.queue = parse_u64(a, v, 1, 10000000); /* config.c's bounds of journeys.queue_size */
        else if (strcmp(a, "--journey-len") == 0)
            o.journey_len = parse_u64(a, v, 1, 10000000);
        else if (strcmp(a, "--reads") == 0)
            o.reads = parse_u64(a, v, 1, 100000000);
        else if (strcmp(a, "--page") == 0)
            o.page = parse_u64(a, v, 1, 10000000);
        else if (strcmp(a, "--map-mb") == 0)
            o.map_mb = parse_u64(a, v, 1, 1024 * 1024);
        else if (strcmp(a, "--seed") == 0)
            o.seed = parse_u64(a, v, 0, UINT32_MAX);
        else {
            fprintf(stderr, "journey_bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.dir == NULL) {
        usage(stderr);
        return 2;
    }
    {
        /* the store must be new: a leftover store would change every figure */
        struct stat sb;
        if (stat(o.dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "journey_bench: %s is not an existing directory\n", o.dir);
            return 2;
        }
        fmt(store_dir, sizeof(store_dir), "%s/store", o.dir);
        if (stat(store_dir, &sb) == 0) {
            fprintf(stderr, "journey_bench: %s already exists: give an empty directory\n", store_dir);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines appear as they happen */
    gw_log_threshold = GW_LOG_WARN;   /* the store's info lines (map growth) would interleave with the report */
    fs = fs_name(o.dir);
    {
        double la[1];
        r.load_start = getloadavg(la, 1) == 1 ? la[0] : -1;
    }
    {
        const char *tool = getenv("MDB_STAT") != NULL ? getenv("MDB_STAT") : "mdb_stat";
        char *argv_v[] = {(char *)tool, (char *)"-V", NULL};
        char out[256];
        if (run_capture(argv_v, out, sizeof(out)) == 0 && out[0] != '\0') {
            out[strcspn(out, "\n:")] = '\0'; /* "LMDB 0.9.24: (July 24, 2019)" -> "LMDB 0.9.24" */
            fmt(lmdb_version, sizeof(lmdb_version), "%s", out);
        }
    }

    printf("journeygate touchpoint benchmark (bench/journey_bench.c)\n");
    printf("  %ld CPUs online, load average %.2f; store %s (%s); %s\n", sysconf(_SC_NPROCESSORS_ONLN), r.load_start,
           store_dir, fs, lmdb_version);
    if (r.load_start > 0.5)
        printf("  NOTE: the machine is busy (load average %.2f): other processes compete for the CPUs and the disk\n",
               r.load_start);
    printf("  N_EVENTS=%" PRIu64 " DROP_EVENTS=%" PRIu64 " CUSTOMERS=%" PRIu64 " QUEUE=%" PRIu64
           " RETRY_SLEEP_US=%" PRIu64 " JOURNEY_LEN=%" PRIu64 " READS=%" PRIu64 " PAGE=%" PRIu64 " VERIFY=%" PRIu64
           " map %" PRIu64 " MB initially, seed %" PRIu64 "\n",
           o.events, o.drop_events, o.customers, o.queue, o.retry_sleep_us, o.journey_len, o.reads, o.page, o.verify,
           o.map_mb, o.seed);
    if (strcmp(fs, "tmpfs") == 0)
        printf("  WARNING: tmpfs ignores fsync: the recording figures are not those of a disk\n");

    if ((ids = malloc((o.customers + 1) * sizeof(*ids))) == NULL)
        die("out of memory");
    if ((s = store_open(store_dir, o.map_mb, &st)) != GW_OK)
        die("store_open %s: %s", store_dir, gw_status_str(s));
    {
        uint8_t key[32]; /* the gateway sets its audit key right after opening */
        if (gw_random_bytes(key, sizeof(key)) != GW_OK)
            die("gw_random_bytes failed");
        store_audit_key(st, key);
    }
    setup_customers(&o, st, ids, &r);
    {
        uint32_t *per_customer = calloc(o.customers, sizeof(*per_customer));
        if (per_customer == NULL)
            die("out of memory");
        record_retrying(&o, st, (const cid_t *)ids, per_customer, &r);
        if (o.drop_events != 0)
            record_dropping(&o, st, (const cid_t *)ids, per_customer, &r);
        check_sample(&o, st, (const cid_t *)ids, per_customer, &r);
        free(per_customer);
    }
    part_journey(&o, st, (const cid_t *)ids, &r);
    part_disk(&o, st, store_dir, &r);
    store_close(st);
    free(ids);
    {
        double la[1];
        r.load_end = getloadavg(la, 1) == 1 ? la[0] : -1;
    }
    print_summary(&o, &r, fs, lmdb_version);
    return 0;
}
