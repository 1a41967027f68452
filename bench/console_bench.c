/*
 * bench/console_bench.c — the console's figures at scale, measured through analytics.h and store.h only.
 *
 * A benchmark program, not a test: bench/console.sh runs it in a temp dir (see bench/README.md).
 *
 *   1. seeding (not timed as a figure): CUSTOMERS customers, each with a journey of 1..2*AVG-1
 *      touchpoints (about TOUCHPOINTS in all) over DAYS days ending today: 4 channels, the 7 lifecycle
 *      stages in order with regressions and stops, 3 touchpoint names per stage, a route per channel
 *      (email's are ingested: a source, no route); written as the recorder writes them
 *      (store_touchpoints_append, blocks of BLOCK records, store_set_durable(0)), then merged into the
 *      customers' chunks (store_touchpoints_merge); SIGNINS sign-in records in the audit trail;
 *   2. the snapshot build (analytics_snap_build: every touchpoint and the audit trail), timed, with the
 *      process RSS before and after and the snapshot's bytes (per touchpoint);
 *   3. each console query for the 30 days ending today, REPEATS times: p50 and max of the query plus
 *      its JSON text (json_dumps: what the endpoint hands over), and the answer's size.
 *
 * Exit status: 0 when everything ran, 1 when a call failed or an answer was wrong, 2 on bad usage.
 */
#include "analytics.h"
#include "bench_util.h"
#include "config.h"
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *bench_prog = "console_bench"; /* bench_util.h */

#define DAY_MS 86400000ULL

static const char *const channels[] = {"web", "mobile", "email", "contact_centre"};
static const char *const routes[] = {"site", "app", NULL, "callcentre"};
static const char *const stages[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy"};
static const char *const names[7][3] = {
    {"viewed home", "read blog", "saw ad"},           {"viewed pricing", "compared plans", "read reviews"},
    {"added to cart", "chose plan", "asked a question"}, {"placed order", "paid", "signed contract"},
    {"opened the app", "tracked delivery", "called support"}, {"reordered", "renewed", "used loyalty points"},
    {"wrote a review", "referred a friend", "shared on social"},
};

static uint64_t rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    uint64_t v = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtoull(line + 6, NULL, 10);
    fclose(f);
    return v;
}

/* CPU time of the calling thread in ns: on a shared machine, what a query costs whatever else runs */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The first `profiles` customers are real records (store_login of make_identity(n): user<n>@example.com at
 * Google or Facebook), so that the console's profile, journey and per-customer export answer for them; their
 * ids are written one a line to profiles_out (bench/console_load.sh reads them). The others exist only in
 * their touchpoints, as the figures need nothing more.
 */
static void seed(store_t *st, uint64_t customers, uint64_t avg, uint64_t days, uint64_t block, uint64_t signins,
                 uint64_t now, uint64_t seedv, uint64_t profiles, const char *profiles_out, uint64_t *written)
{
    size_t cap = block * 256, len = 0, n = 0;
    uint8_t *buf = malloc(cap);
    uint64_t rng = rng_seed(seedv), t0 = now_ns(), merged = 0, start = now - days * DAY_MS;
    gw_status_t s;

    FILE *pf = NULL;
    static const store_login_opts_t login_opts = {0, NULL, NULL, "web"};

    if (buf == NULL)
        die("out of memory");
    if (profiles > 0 && (pf = fopen(profiles_out, "w")) == NULL)
        die("cannot write %s", profiles_out);
    *written = 0;
    for (uint64_t c = 0; c < customers; ++c) {
        char cid[STORE_ID_LEN + 1], tid[40];
        uint64_t len_j = 1 + rng_below(&rng, 2 * avg - 1), at = start + rng_below(&rng, days * DAY_MS);
        int stage = 0, ch = (int)rng_below(&rng, 4);
        if (c < profiles) {
            struct ident_buf b;
            store_identity_t id;
            store_login_info_t info;
            make_identity(c, &b, &id);
            if ((s = store_login(st, &id, &login_opts, start, cid, &info, NULL)) != GW_OK)
                die("store_login: %s", gw_status_str(s));
            fprintf(pf, "%s\n", cid);
        } else {
            fmt(cid, sizeof(cid), "c_%024" PRIu64, c);
        }
        for (uint64_t k = 0; k < len_j; ++k) {
            store_tp_t tp;
            size_t r;
            memset(&tp, 0, sizeof(tp));
            fmt(tid, sizeof(tid), "tp_%" PRIu64 "_%" PRIu64, c, k);
            tp.id = tid;
            tp.customer_id = cid;
            tp.occurred_at_ms = tp.received_at_ms = at < now ? at : now - 1;
            tp.channel = channels[ch];
            tp.route = routes[ch];
            tp.source = routes[ch] == NULL ? "crm" : NULL;
            tp.stage = stages[stage];
            tp.touchpoint = names[stage][rng_below(&rng, 3)];
            tp.visit_start = k == 0;
            tp.visitor_id = k == 0 && rng_below(&rng, 4) == 0 ? "v_anon" : NULL;
            tp.status = 200;
            if ((r = store_tp_encode(&tp, buf + len, cap - len)) == 0)
                die("store_tp_encode failed");
            len += r;
            ++n;
            /* next: minutes to days later; the stage moves on (60%), stays, or goes back (5%) */
            at += 60000 * (1 + rng_below(&rng, rng_below(&rng, 4) == 0 ? 4320 : 120));
            {
                uint64_t p = rng_below(&rng, 100);
                if (p < 60 && stage < 6)
                    ++stage;
                else if (p >= 95 && stage > 0)
                    --stage;
            }
            if (rng_below(&rng, 3) == 0)
                ch = (int)rng_below(&rng, 4);
            if (n == block) {
                if ((s = store_touchpoints_append(st, buf, len, n)) != GW_OK)
                    die("store_touchpoints_append: %s", gw_status_str(s));
                *written += n;
                len = n = 0;
            }
        }
        if ((c + 1) % (customers / 10 > 0 ? customers / 10 : 1) == 0) {
            uint64_t m;
            if ((s = store_touchpoints_merge(st, &m)) != GW_OK)
                die("store_touchpoints_merge: %s", gw_status_str(s));
            merged += m;
            fprintf(stderr, "  seeded %" PRIu64 " customers, %" PRIu64 " touchpoints (%.1f s)\n", c + 1,
                    *written + n, secs(now_ns() - t0));
        }
    }
    if (n > 0) {
        if ((s = store_touchpoints_append(st, buf, len, n)) != GW_OK)
            die("store_touchpoints_append: %s", gw_status_str(s));
        *written += n;
    }
    {
        uint64_t m;
        if ((s = store_touchpoints_merge(st, &m)) != GW_OK)
            die("store_touchpoints_merge: %s", gw_status_str(s));
        merged += m;
    }
    /* sign-ins: successes, failures by reason, aggregated refusals, over the days */
    for (uint64_t i = 0; i < signins; i += 1000) {
        store_audit_event_t evs[1000];
        const store_audit_event_t *pe[1000];
        uint64_t times[1000], counts[1000];
        size_t m = signins - i < 1000 ? (size_t)(signins - i) : 1000;
        for (size_t j = 0; j < m; ++j) {
            uint64_t p = rng_below(&rng, 100);
            memset(&evs[j], 0, sizeof(evs[j]));
            evs[j].event = p < 85 ? "callback_succeeded" : p < 97 ? "callback_refused" : "rate_limited";
            evs[j].outcome = p < 85 ? "success" : "refused";
            evs[j].reason = p < 85 ? NULL : p < 91 ? "state_unknown" : p < 97 ? "token_invalid" : "login";
            evs[j].provider = rng_below(&rng, 2) == 0 ? "google" : "facebook";
            pe[j] = &evs[j];
            times[j] = start + (i + j) * (days * DAY_MS / signins);
            counts[j] = p >= 97 ? 1 + rng_below(&rng, 20) : 0;
        }
        if ((s = store_audit_write_batch(st, pe, counts, times, m)) != GW_OK)
            die("store_audit_write_batch: %s", gw_status_str(s));
    }
    printf("seeded: %" PRIu64 " touchpoints (%" PRIu64 " merged into chunks) over %" PRIu64
           " customers and %" PRIu64 " days, %" PRIu64 " sign-in records, in %.1f s\n",
           *written, merged, customers, days, signins, secs(now_ns() - t0));
    if (pf != NULL && fclose(pf) != 0)
        die("cannot write %s", profiles_out);
    free(buf);
}

struct query {
    const char *name;
    json_t *(*run)(const analytics_snap_t *s, uint64_t from, uint64_t to, const gw_config_t *cfg);
};

static json_t *q_overview(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_overview(s, f, t);
}
static json_t *q_transitions(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_transitions(s, f, t, NULL, NULL);
}
static json_t *q_transitions_f(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_transitions(s, f, t, "mobile", "convert");
}
static json_t *q_paths(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_paths(s, f, t, NULL, NULL, NULL, 5, 6);
}
static json_t *q_paths_start(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_paths(s, f, t, "web", NULL, "viewed pricing", 10, 20);
}
static json_t *q_funnel(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    static const char *const steps[] = {"need", "research", "select", "convert", "own", "loyalty", "advocacy"};
    (void)c;
    return analytics_funnel(s, f, t, NULL, steps, 7, 14);
}
static json_t *q_stages(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_stages(s, f, t, NULL);
}
static json_t *q_inventory(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)f;
    return analytics_inventory(s, c, t);
}
static json_t *q_signins_hour(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_signin_volume(s, f, t, 3600);
}
static json_t *q_signins_day(const analytics_snap_t *s, uint64_t f, uint64_t t, const gw_config_t *c)
{
    (void)c;
    return analytics_signin_volume(s, f, t, 86400);
}

static const struct query queries[] = {
    {"overview", q_overview},
    {"transitions", q_transitions},
    {"transitions channel=mobile&stage=convert", q_transitions_f},
    {"paths steps=5 top=6", q_paths},
    {"paths channel=web start=\"viewed pricing\" steps=10 top=20", q_paths_start},
    {"funnel 7 stages, window 14 d", q_funnel},
    {"stages", q_stages},
    {"inventory", q_inventory},
    {"signins/volume bucket=hour", q_signins_hour},
    {"signins/volume bucket=day", q_signins_day},
};

static gw_config_t *bench_config(void)
{
    const char *text =
        "{\"listen\":[{\"address\":\"127.0.0.1\",\"port\":8080}],\"public_url\":\"http://127.0.0.1:8080\","
        "\"store\":{\"path\":\"/tmp/jg-bench\"},\"upstreams\":{\"shop\":{\"url\":\"http://127.0.0.1:3000\"}},"
        "\"policies\":{\"signed_in\":{\"rules\":[{\"allow\":{\"signed_in\":true}}]}},"
        "\"routes\":[{\"name\":\"site\",\"match\":{\"path_prefix\":\"/\"},\"upstream\":\"shop\",\"auth\":\"none\"},"
        "{\"name\":\"app\",\"match\":{\"path_prefix\":\"/app\"},\"upstream\":\"shop\",\"auth\":\"session\","
        "\"channel\":\"mobile\",\"policy\":\"signed_in\"},"
        "{\"name\":\"callcentre\",\"match\":{\"path_prefix\":\"/cc\"},\"upstream\":\"shop\",\"auth\":\"bearer\","
        "\"channel\":\"contact_centre\",\"policy\":\"signed_in\"}]}";
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    if (doc == NULL || gw_config_from_json(doc, "bench", &cfg, &errs) != GW_OK)
        die("the bench configuration is invalid: %s", errs.count > 0 ? errs.msgs[0] : "?");
    gw_config_errors_clear(&errs);
    json_decref(doc);
    return cfg;
}

int main(int argc, char **argv)
{
    uint64_t touchpoints = 1000000, customers = 100000, days = 35, repeats = 5, block = 10000, signins = 200000;
    uint64_t seedv = 1, map_mb = 65536, profiles = 0;
    const char *dir = NULL, *only = NULL, *profiles_out = NULL;
    int reuse = 0, seed_only = 0;
    store_t *st;
    analytics_snap_t *snap;
    gw_config_t *cfg;
    gw_status_t s;
    uint64_t now, from, to, written, rss0, rss1, t0, build_ns, build_cpu;
    int failed = 0;

    for (int i = 1; i < argc; ++i) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--reuse") == 0) { /* the store of an earlier run, as it is (no seeding) */
            reuse = 1;
            continue;
        }
        if (strcmp(argv[i], "--seed-only") == 0) { /* seed, then stop: a store for bench/console_load.sh */
            seed_only = 1;
            continue;
        }
        if (v == NULL)
            die("usage: console_bench --dir DIR [--touchpoints N] [--customers N] [--days N] [--repeats N] "
                "[--signins N] [--map-mb N] [--seed N] [--reuse] [--only QUERY] [--seed-only] "
                "[--profiles N --profiles-out FILE]");
        if (strcmp(argv[i], "--dir") == 0)
            dir = v;
        else if (strcmp(argv[i], "--touchpoints") == 0)
            touchpoints = parse_u64("--touchpoints", v, 1, 100000000);
        else if (strcmp(argv[i], "--customers") == 0)
            customers = parse_u64("--customers", v, 1, 10000000);
        else if (strcmp(argv[i], "--days") == 0)
            days = parse_u64("--days", v, 31, 731);
        else if (strcmp(argv[i], "--repeats") == 0)
            repeats = parse_u64("--repeats", v, 1, 1000);
        else if (strcmp(argv[i], "--signins") == 0)
            signins = parse_u64("--signins", v, 0, 10000000);
        else if (strcmp(argv[i], "--map-mb") == 0)
            map_mb = parse_u64("--map-mb", v, 64, 1048576);
        else if (strcmp(argv[i], "--only") == 0) /* the queries whose name starts so */
            only = v;
        else if (strcmp(argv[i], "--profiles") == 0) /* customers made real records (see seed()) */
            profiles = parse_u64("--profiles", v, 0, 1000000);
        else if (strcmp(argv[i], "--profiles-out") == 0)
            profiles_out = v;
        else if (strcmp(argv[i], "--seed") == 0)
            seedv = parse_u64("--seed", v, 0, UINT64_MAX);
        else
            die("unknown option %s", argv[i]);
        ++i;
    }
    if (dir == NULL)
        die("--dir is required");
    if (profiles > 0 && profiles_out == NULL)
        die("--profiles needs --profiles-out FILE");
    if (profiles > customers)
        die("--profiles must not exceed --customers");
    gw_log_threshold = GW_LOG_ERROR;
    if ((s = store_open(dir, map_mb, &st)) != GW_OK)
        die("store_open(%s): %s", dir, gw_status_str(s));
    {
        uint8_t key[32] = {0};
        store_audit_key(st, key);
    }
    if ((s = store_set_durable(st, 0)) != GW_OK)
        die("store_set_durable(0): %s", gw_status_str(s));
    now = wall_ms() / DAY_MS * DAY_MS + DAY_MS / 2;
    printf("== console_bench: %" PRIu64 " touchpoints over %" PRIu64 " customers, %" PRIu64 " days ==\n",
           touchpoints, customers, days);
    if (reuse) {
        written = 0;
        printf("reusing the store in %s (no seeding)\n", dir);
    } else {
        seed(st, customers, (touchpoints + customers / 2) / customers, days, block, signins, now, seedv, profiles,
             profiles_out, &written);
    }
    if ((s = store_set_durable(st, 1)) != GW_OK)
        die("store_set_durable(1): %s", gw_status_str(s));
    if (seed_only) {
        store_close(st);
        return 0;
    }

    rss0 = rss_kb();
    t0 = now_ns();
    build_cpu = cpu_ns();
    if ((s = analytics_snap_build(st, NULL, now, &snap)) != GW_OK)
        die("analytics_snap_build: %s", gw_status_str(s));
    build_ns = now_ns() - t0;
    build_cpu = cpu_ns() - build_cpu;
    rss1 = rss_kb();
    if (!reuse && analytics_snap_touchpoints(snap) != written) {
        fprintf(stderr, "console_bench: the snapshot holds %zu touchpoints, %" PRIu64 " were written\n",
                analytics_snap_touchpoints(snap), written);
        failed = 1;
    }
    printf("snapshot build: %.2f s (CPU %.2f s) for %zu touchpoints, %zu customers (%.0f touchpoints/s)\n", secs(build_ns), secs(build_cpu),
           analytics_snap_touchpoints(snap), analytics_snap_customers(snap),
           (double)analytics_snap_touchpoints(snap) / secs(build_ns));
    printf("snapshot memory: %zu bytes = %.2f bytes per touchpoint; process RSS %" PRIu64 " kB before the build, %"
           PRIu64 " kB after (the store's mapped pages count too)\n",
           analytics_snap_bytes(snap), (double)analytics_snap_bytes(snap) / (double)analytics_snap_touchpoints(snap),
           rss0, rss1);

    cfg = bench_config();
    to = now / DAY_MS * DAY_MS + DAY_MS;
    from = to - 30 * DAY_MS;
    printf("\nqueries for the 30 days ending today, %" PRIu64 " repeats each (query + json_dumps; wall clock, and the thread's CPU time):\n", repeats);
    printf("%-58s %9s %9s %9s %9s %9s %8s\n", "query", "first ms", "p50 ms", "max ms", "cpu p50", "cpu max",
           "bytes");
    for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); ++q) {
        uint64_t *ns, *cpu, first = 0;
        size_t bytes = 0;
        if (only != NULL && strncmp(queries[q].name, only, strlen(only)) != 0)
            continue;
        ns = calloc(repeats, sizeof(uint64_t));
        cpu = calloc(repeats, sizeof(uint64_t));
        if (ns == NULL || cpu == NULL)
            die("out of memory");
        for (uint64_t r = 0; r < repeats; ++r) {
            uint64_t a = now_ns(), ca = cpu_ns();
            json_t *out = queries[q].run(snap, from, to, cfg);
            char *text = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
            ns[r] = now_ns() - a;
            cpu[r] = cpu_ns() - ca;
            if (r == 0)
                first = ns[r];
            if (text == NULL) {
                fprintf(stderr, "console_bench: %s answered nothing\n", queries[q].name);
                failed = 1;
            } else {
                bytes = strlen(text);
            }
            free(text);
            json_decref(out);
        }
        qsort(ns, repeats, sizeof(uint64_t), cmp_u64);
        qsort(cpu, repeats, sizeof(uint64_t), cmp_u64);
        printf("%-58s %9.1f %9.1f %9.1f %9.1f %9.1f %8zu\n", queries[q].name, (double)first / 1e6,
               (double)ns[repeats / 2] / 1e6, (double)ns[repeats - 1] / 1e6, (double)cpu[repeats / 2] / 1e6,
               (double)cpu[repeats - 1] / 1e6, bytes);
        free(ns);
        free(cpu);
    }
    printf("process RSS at the end: %" PRIu64 " kB\n", rss_kb());
    gw_config_unref(cfg);
    analytics_release(snap);
    store_close(st);
    return failed;
}
