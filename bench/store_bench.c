/*
 * bench/store_bench.c — what the customer store costs on this machine, measured through store.h only.
 *
 * A benchmark program, not a test: bench/store.sh runs it in a temp dir (see bench/README.md).
 *
 *   1. synced writes: N_FIRST first logins (new customers), the same identities again (returning
 *      logins) and one session per customer (store_session_put), each one synced write transaction;
 *      the logins carry the audit event the gateway passes, so they write its audit records too;
 *   2. session lookups: N_LOOKUPS store_session_get() of random existing sessions, 1 thread and
 *      LOOKUP_THREADS threads (the lookups split between them);
 *   3. a store of POPULATION customers: populated with store_set_durable(0) (no sync per commit,
 *      one sync at the end; an import: no audit event, no sessions), its size on disk per customer (stat() of data.mdb
 * and, when lmdb-utils is installed, `mdb_stat -efa`), and the latency of store_customer_get, store_customer_by_email
 * and store_customer_by_identity over LATENCY_LOOKUPS random lookups.
 *
 * Identities: provider "google" for even n, "facebook" for odd n, subject "n", verified email
 * "user<n>@example.com", name "User <n>", channel "web", linking options as the gateway's defaults
 * (no automatic linking, no blocked emails).
 *
 * Only the store touches LMDB (house style), so the LMDB figures come from the mdb_stat tool,
 * spawned without a shell. Exit status: 0 when everything ran, 1 when a store call failed or
 * answered wrongly, 2 on bad usage.
 */
#include "bench_util.h"
#include "store.h"

#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *bench_prog = "store_bench"; /* bench_util.h */

#define MAX_THREADS 64
#define MDB_STAT_OUT_CAP (64 * 1024) /* mdb_stat -efa of a journeygate store is about 2 KB */
#define SESSION_TTL_MS (14ULL * 24 * 3600 * 1000)
#define SESSION_IDLE_MS (24ULL * 3600 * 1000)

typedef char cid_t[STORE_ID_LEN + 1];

struct opts {
    uint64_t n_first, n_lookups, population, latency_lookups, threads, map_mb, seed;
    const char *dir;
};

/* everything the summary needs */
struct results {
    double first_s, returning_s, session_put_s;
    struct lat first_lat, returning_lat, session_put_lat;
    double lookup_1_s, lookup_n_s;
    double populate_s, final_sync_s;
    double load_start, load_end; /* 1-minute load average: other work on the machine skews everything */
    uint64_t file_bytes, alloc_bytes;
    int have_mdb_stat;
    uint64_t page_size, pages_used, pages_free;
    struct lat get_lat[2], email_lat[2], ident_lat[2];
    double get_rate[2], email_rate[2], ident_rate[2];
};

/* ------------------------------------------------------------------ identities and sessions (and bench_util.h) */

static const store_login_opts_t login_opts = {0, NULL, NULL, "web"};

/*
 * The audit event the gateway passes with a browser sign-in (gateway/auth.c job_event): the
 * store writes it (plus "customer_created" for a new customer) in the login's transaction.
 */
static store_audit_event_t login_event(const store_identity_t *id, uint64_t n, char *request_id, size_t cap)
{
    fmt(request_id, cap, "bench-%016" PRIx64, n);
    return (store_audit_event_t){"callback_succeeded",
                                 "success",
                                 NULL,
                                 id->provider,
                                 NULL,
                                 id->subject,
                                 "127.0.0.1",
                                 "Mozilla/5.0 (X11; Linux x86_64) store_bench",
                                 request_id,
                                 request_id,
                                 NULL,
                                 NULL,
                                 NULL};
}

/* the same shape as the gateway's sessions (gateway/auth.c new_session) */
static json_t *make_session(const char *customer_id, uint64_t n, const struct ident_buf *b, uint64_t now)
{
    char sid[32], csrf[48];

    if (gw_random_token(sid, sizeof(sid), 16) != GW_OK || gw_random_token(csrf, sizeof(csrf), 24) != GW_OK)
        die("gw_random_token failed");
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "sid", sid, "customer_id",
                     customer_id, "provider", provider_of(n), "subject", b->subject, "email", b->email,
                     "email_verified", 1, "kind", "cookie", "channel", "web", "created_ms", (json_int_t)now,
                     "last_seen_ms", (json_int_t)now, "expires_ms", (json_int_t)(now + SESSION_TTL_MS),
                     "idle_timeout_ms", (json_int_t)SESSION_IDLE_MS, "csrf", csrf);
}

/* ------------------------------------------------------------------ part 1: synced writes */

static void print_write_line(const char *what, uint64_t n, uint64_t ns, const struct lat *l)
{
    printf("  %-18s %8" PRIu64 " in %7.2f s  %9.0f /s   latency p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms\n", what, n,
           secs(ns), (double)n / secs(ns), l->p50_us / 1e3, l->p99_us / 1e3, l->max_us / 1e3);
}

static void part_writes(const struct opts *o, store_t *st, cid_t *ids, uint8_t (*hashes)[32], struct results *r)
{
    uint64_t n = o->n_first, t0, total;
    uint64_t *ns = malloc(n * sizeof(*ns));

    if (ns == NULL)
        die("out of memory");
    printf("\n== 1. Synced writes: %" PRIu64 " identities, one synced write transaction each ==\n", n);

    total = 0;
    for (uint64_t i = 0; i < n; ++i) {
        struct ident_buf b;
        store_identity_t id;
        store_login_info_t info;
        store_audit_event_t ev;
        char rid[32];
        gw_status_t s;

        make_identity(i, &b, &id);
        ev = login_event(&id, i, rid, sizeof(rid));
        t0 = now_ns();
        s = store_login(st, &id, &login_opts, wall_ms(), ids[i], &info, &ev);
        ns[i] = now_ns() - t0;
        total += ns[i];
        if (s != GW_OK || info.result != STORE_LOGIN_CREATED)
            die("first login %" PRIu64 ": %s (result %d)", i, gw_status_str(s), (int)info.result);
    }
    r->first_s = secs(total);
    r->first_lat = lat_of(ns, n);
    print_write_line("first logins", n, total, &r->first_lat);

    total = 0;
    for (uint64_t i = 0; i < n; ++i) {
        struct ident_buf b;
        store_identity_t id;
        store_login_info_t info;
        store_audit_event_t ev;
        char rid[32];
        cid_t cid = "";
        gw_status_t s;

        make_identity(i, &b, &id);
        ev = login_event(&id, n + i, rid, sizeof(rid));
        t0 = now_ns();
        s = store_login(st, &id, &login_opts, wall_ms(), cid, &info, &ev);
        ns[i] = now_ns() - t0;
        total += ns[i];
        if (s != GW_OK || info.result != STORE_LOGIN_RETURNING || strcmp(cid, ids[i]) != 0)
            die("returning login %" PRIu64 ": %s (result %d, %s vs %s)", i, gw_status_str(s), (int)info.result, cid,
                ids[i]);
    }
    r->returning_s = secs(total);
    r->returning_lat = lat_of(ns, n);
    print_write_line("returning logins", n, total, &r->returning_lat);

    total = 0;
    for (uint64_t i = 0; i < n; ++i) {
        struct ident_buf b;
        store_identity_t id;
        uint8_t raw[32];
        json_t *session;
        gw_status_t s;

        make_identity(i, &b, &id);
        /* the gateway keys a session by SHA-256 of its random token */
        if (gw_random_bytes(raw, sizeof(raw)) != GW_OK)
            die("gw_random_bytes failed");
        gw_sha256(raw, sizeof(raw), hashes[i]);
        if ((session = make_session(ids[i], i, &b, wall_ms())) == NULL)
            die("out of memory");
        t0 = now_ns();
        s = store_session_put(st, hashes[i], session);
        ns[i] = now_ns() - t0;
        total += ns[i];
        json_decref(session);
        if (s != GW_OK)
            die("session put %" PRIu64 ": %s", i, gw_status_str(s));
    }
    r->session_put_s = secs(total);
    r->session_put_lat = lat_of(ns, n);
    print_write_line("session puts", n, total, &r->session_put_lat);
    printf("  (times are of the store calls alone, each a synced commit; logins carry the gateway's audit event,\n"
           "  so a first login also appends 2 audit records and a returning one 1, in the same transaction;\n"
           "  a browser sign-in is one store_login + one store_session_put)\n");
    free(ns);
}

/* ------------------------------------------------------------------ part 2: session lookups */

struct lookup_job {
    store_t *st;
    const cid_t *ids;
    const uint8_t (*hashes)[32];
    uint64_t n_sessions, count, seed, errors;
    pthread_barrier_t *start;
};

static void *lookup_thread(void *arg)
{
    struct lookup_job *j = arg;
    uint64_t rng = rng_seed(j->seed);

    pthread_barrier_wait(j->start);
    for (uint64_t i = 0; i < j->count; ++i) {
        uint64_t k = rng_below(&rng, j->n_sessions);
        json_t *s = NULL;
        const char *cid;

        if (store_session_get(j->st, j->hashes[k], &s) != GW_OK ||
            (cid = json_string_value(json_object_get(s, "customer_id"))) == NULL || strcmp(cid, j->ids[k]) != 0)
            ++j->errors;
        json_decref(s);
    }
    return NULL;
}

/* o->n_lookups lookups split over `threads` threads started together; returns their wall time in seconds */
static double run_lookups(const struct opts *o, store_t *st, const cid_t *ids, const uint8_t (*hashes)[32],
                          uint64_t threads, uint64_t seed)
{
    struct lookup_job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    pthread_barrier_t start;
    uint64_t t0, errors = 0;

    if (pthread_barrier_init(&start, NULL, (unsigned)threads + 1) != 0)
        die("pthread_barrier_init failed");
    for (uint64_t t = 0; t < threads; ++t) {
        jobs[t] = (struct lookup_job){st,
                                      ids,
                                      hashes,
                                      o->n_first,
                                      o->n_lookups / threads + (t < o->n_lookups % threads ? 1 : 0),
                                      seed * 1000 + t,
                                      0,
                                      &start};
        if (pthread_create(&tids[t], NULL, lookup_thread, &jobs[t]) != 0)
            die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    t0 = now_ns();
    for (uint64_t t = 0; t < threads; ++t) {
        pthread_join(tids[t], NULL);
        errors += jobs[t].errors;
    }
    t0 = now_ns() - t0;
    pthread_barrier_destroy(&start);
    if (errors != 0)
        die("%" PRIu64 " session lookups failed or returned the wrong session", errors);
    return secs(t0);
}

static void part_lookups(const struct opts *o, store_t *st, const cid_t *ids, const uint8_t (*hashes)[32],
                         struct results *r)
{
    printf("\n== 2. Session lookups: store_session_get() of random existing sessions (%" PRIu64 " sessions) ==\n",
           o->n_first);
    r->lookup_1_s = run_lookups(o, st, ids, hashes, 1, o->seed + 1);
    printf("  1 thread    %9" PRIu64 " lookups in %6.2f s  %10.0f /s  (%.2f us each)\n", o->n_lookups, r->lookup_1_s,
           (double)o->n_lookups / r->lookup_1_s, r->lookup_1_s * 1e6 / (double)o->n_lookups);
    r->lookup_n_s = run_lookups(o, st, ids, hashes, o->threads, o->seed + 2);
    printf("  %" PRIu64 " threads   %9" PRIu64 " lookups in %6.2f s  %10.0f /s  (x%.2f the single thread)\n",
           o->threads, o->n_lookups, r->lookup_n_s, (double)o->n_lookups / r->lookup_n_s,
           r->lookup_1_s / r->lookup_n_s);
    printf("  (each lookup: a read-only transaction, one get, and the JSON parse into a new object)\n");
}

/* ------------------------------------------------------------------ part 3: a large store */

struct db_pages {
    const char *name;
    uint64_t pages, entries;
    int found;
};

/* parses the "Status of NAME" blocks of mdb_stat -a */
static void db_pages_of(const char *text, struct db_pages *dbs, size_t ndbs)
{
    for (size_t i = 0; i < ndbs; ++i) {
        char head[64];
        const char *p, *end;

        dbs[i].pages = dbs[i].entries = 0;
        dbs[i].found = 0;
        fmt(head, sizeof(head), "Status of %s\n", dbs[i].name);
        if ((p = strstr(text, head)) == NULL)
            continue;
        dbs[i].found = 1;
        p += strlen(head);
        end = strstr(p, "Status of ");
        {
            /* the block alone, so fields of the next block are never read */
            size_t blen = end != NULL ? (size_t)(end - p) : strlen(p);
            char *block = strndup(p, blen);
            if (block == NULL)
                die("out of memory");
            dbs[i].pages = stat_field(block, "Branch pages:") + stat_field(block, "Leaf pages:") +
                           stat_field(block, "Overflow pages:");
            dbs[i].entries = stat_field(block, "Entries:");
            free(block);
        }
    }
}

static void measure_disk(const struct opts *o, const char *pop_dir, struct results *r)
{
    char path[4096], a[32], b[32], c[32];
    const char *tool = getenv("MDB_STAT") != NULL ? getenv("MDB_STAT") : "mdb_stat";
    char *out = malloc(MDB_STAT_OUT_CAP);
    struct stat sb;
    double pop = (double)o->population;

    if (out == NULL)
        die("out of memory");
    fmt(path, sizeof(path), "%s/data.mdb", pop_dir);
    if (stat(path, &sb) != 0)
        die("stat %s: %s", path, strerror(errno));
    r->file_bytes = (uint64_t)sb.st_size;
    r->alloc_bytes = (uint64_t)sb.st_blocks * 512;
    human_bytes((double)r->file_bytes, a, sizeof(a));
    human_bytes((double)r->alloc_bytes, b, sizeof(b));
    printf("  data.mdb: %s (st_size), %s allocated (st_blocks)  ->  %.0f bytes per customer (st_size)\n", a, b,
           (double)r->file_bytes / pop);
    {
        char *argv[] = {(char *)tool, (char *)"-efa", (char *)pop_dir, NULL};
        if (run_capture(argv, out, MDB_STAT_OUT_CAP) == 0 && (r->page_size = stat_field(out, "Page size:")) != 0 &&
            (r->pages_used = stat_field(out, "Number of pages used:")) != 0) {
            /* the databases named in store.h; one that mdb_stat does not list is left out */
            struct db_pages dbs[] = {
                {"customers", 0, 0, 0},         {"identities", 0, 0, 0}, {"emails", 0, 0, 0}, {"sessions", 0, 0, 0},
                {"customer_sessions", 0, 0, 0}, {"deletions", 0, 0, 0},  {"audit", 0, 0, 0},  {"meta", 0, 0, 0}};
            uint64_t live;

            r->have_mdb_stat = 1;
            r->pages_free = stat_field(out, "Free pages:");
            live = r->pages_used - r->pages_free;
            human_bytes((double)(r->pages_used * r->page_size), a, sizeof(a));
            human_bytes((double)(live * r->page_size), c, sizeof(c));
            printf("  LMDB (%s -efa): %" PRIu64 " pages of %" PRIu64 " B used = %s (%.0f B per customer); %" PRIu64
                   " on the freelist; %s in live pages (%.0f B per customer)\n",
                   tool, r->pages_used, r->page_size, a, (double)(r->pages_used * r->page_size) / pop, r->pages_free, c,
                   (double)(live * r->page_size) / pop);
            db_pages_of(out, dbs, sizeof(dbs) / sizeof(dbs[0]));
            for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); ++i) {
                if (!dbs[i].found)
                    continue;
                human_bytes((double)(dbs[i].pages * r->page_size), a, sizeof(a));
                printf("    %-18s %9" PRIu64 " entries %9" PRIu64 " pages  %10s  %6.0f B per customer\n", dbs[i].name,
                       dbs[i].entries, dbs[i].pages, a, (double)(dbs[i].pages * r->page_size) / pop);
            }
        } else {
            printf("  (%s not available: install lmdb-utils for LMDB's used pages; the file size above stands)\n",
                   tool);
        }
    }
    free(out);
}

enum { LK_GET = 0, LK_EMAIL, LK_IDENT };

/* LATENCY_LOOKUPS random lookups of each kind, interleaved so the three see the same page cache */
static void latency_pass(const struct opts *o, store_t *st, const cid_t *ids, int pass, struct results *r)
{
    uint64_t n = o->latency_lookups, rng = rng_seed(o->seed + 10 + (uint64_t)pass);
    uint64_t *ns[3], tot[3] = {0, 0, 0};

    for (int k = 0; k < 3; ++k)
        if ((ns[k] = malloc(n * sizeof(uint64_t))) == NULL)
            die("out of memory");
    for (uint64_t i = 0; i < n; ++i) {
        for (int k = 0; k < 3; ++k) {
            uint64_t c = rng_below(&rng, o->population), t0;
            struct ident_buf b;
            store_identity_t id;
            cid_t got;
            json_t *cust = NULL;
            gw_status_t s;
            int ok;

            make_identity(c, &b, &id);
            t0 = now_ns();
            if (k == LK_GET)
                s = store_customer_get(st, ids[c], &cust);
            else if (k == LK_EMAIL)
                s = store_customer_by_email(st, id.email, got);
            else
                s = store_customer_by_identity(st, id.provider, id.subject, got);
            ns[k][i] = now_ns() - t0;
            tot[k] += ns[k][i];
            if (k == LK_GET)
                ok = s == GW_OK && strcmp(json_string_value(json_object_get(cust, "id")), ids[c]) == 0;
            else
                ok = s == GW_OK && strcmp(got, ids[c]) == 0;
            json_decref(cust);
            if (!ok)
                die("lookup kind %d of customer %" PRIu64 ": %s or a wrong answer", k, c, gw_status_str(s));
        }
    }
    r->get_lat[pass] = lat_of(ns[LK_GET], n);
    r->email_lat[pass] = lat_of(ns[LK_EMAIL], n);
    r->ident_lat[pass] = lat_of(ns[LK_IDENT], n);
    r->get_rate[pass] = (double)n / secs(tot[LK_GET]);
    r->email_rate[pass] = (double)n / secs(tot[LK_EMAIL]);
    r->ident_rate[pass] = (double)n / secs(tot[LK_IDENT]);
    for (int k = 0; k < 3; ++k)
        free(ns[k]);
}

static void print_lat_row(const char *what, const struct lat *l, double rate)
{
    printf("    %-28s %8.2f %8.2f %8.2f %9.2f %8.2f %10.0f\n", what, l->p50_us, l->p99_us, l->p999_us, l->max_us,
           l->mean_us, rate);
}

static void part_population(const struct opts *o, const char *pop_dir, struct results *r)
{
    store_t *st = NULL;
    cid_t *ids = malloc(o->population * sizeof(cid_t));
    uint64_t t_start, t_last, step = o->population >= 10 ? o->population / 10 : 1, count = 0;
    gw_status_t s;

    if (ids == NULL)
        die("out of memory");
    printf("\n== 3. A store of %" PRIu64 " customers ==\n", o->population);
    if ((s = store_open(pop_dir, o->map_mb, &st)) != GW_OK)
        die("store_open %s: %s", pop_dir, gw_status_str(s));
    if ((s = store_set_durable(st, 0)) != GW_OK)
        die("store_set_durable(0): %s", gw_status_str(s));
    printf("  populating: store_set_durable(0), one store_login() (one write transaction, no sync) per customer\n");
    t_start = t_last = now_ns();
    for (uint64_t i = 0; i < o->population; ++i) {
        struct ident_buf b;
        store_identity_t id;
        store_login_info_t info;

        make_identity(i, &b, &id);
        /* an import, not sign-ins: no audit records, so the size below is the customers' own */
        s = store_login(st, &id, &login_opts, wall_ms(), ids[i], &info, NULL);
        if (s != GW_OK || info.result != STORE_LOGIN_CREATED)
            die("populate login %" PRIu64 ": %s (result %d)", i, gw_status_str(s), (int)info.result);
        if ((i + 1) % step == 0 || i + 1 == o->population) {
            uint64_t t = now_ns();
            uint64_t done_in_step = (i + 1) % step == 0 ? step : (i + 1) % step;
            printf("    %9" PRIu64 " customers  %7.1f s  %8.0f logins/s over the last %" PRIu64 "\n", i + 1,
                   secs(t - t_start), (double)done_in_step / secs(t - t_last), done_in_step);
            t_last = t;
        }
    }
    r->populate_s = secs(now_ns() - t_start);
    {
        uint64_t t0 = now_ns();
        if ((s = store_set_durable(st, 1)) != GW_OK)
            die("store_set_durable(1): %s", gw_status_str(s));
        r->final_sync_s = secs(now_ns() - t0);
    }
    if ((s = store_count_customers(st, &count)) != GW_OK || count != o->population)
        die("store_count_customers: %s, %" PRIu64 " instead of %" PRIu64, gw_status_str(s), count, o->population);
    printf("  populated: %" PRIu64 " customers in %.1f s (%.0f logins/s) + final store_set_durable(1) sync %.2f s\n",
           o->population, r->populate_s, (double)o->population / r->populate_s, r->final_sync_s);
    {
        json_t *sample = NULL;
        char *text = NULL;
        if (store_customer_get(st, ids[0], &sample) == GW_OK &&
            (text = json_dumps(sample, JSON_COMPACT | JSON_SORT_KEYS)) != NULL)
            printf("  a record (%zu bytes as stored): %s\n", strlen(text), text);
        free(text);
        json_decref(sample);
    }

    measure_disk(o, pop_dir, r);

    printf("  lookup latency, %" PRIu64 " random lookups of each kind, 1 thread, interleaved (microseconds):\n",
           o->latency_lookups);
    for (int pass = 0; pass < 2; ++pass) {
        latency_pass(o, st, ids, pass, r);
        printf("   pass %d%s\n    %-28s %8s %8s %8s %9s %8s %10s\n", pass + 1,
               pass == 0 ? " (first reads through this process's fresh mapping: page faults included)"
                         : " (again, other random customers)",
               "", "p50", "p99", "p99.9", "max", "mean", "lookups/s");
        print_lat_row("store_customer_get", &r->get_lat[pass], r->get_rate[pass]);
        print_lat_row("store_customer_by_email", &r->email_lat[pass], r->email_rate[pass]);
        print_lat_row("store_customer_by_identity", &r->ident_lat[pass], r->ident_rate[pass]);
    }
    store_close(st);
    free(ids);
}

/* ------------------------------------------------------------------ report */

static void print_summary(const struct opts *o, const struct results *r, const char *fs, const char *lmdb_version)
{
    struct utsname u;
    char day[16], a[32], b[32];
    time_t t = time(NULL);
    struct tm tm;
    double pop = (double)o->population;

    if (uname(&u) != 0)
        fmt(u.release, sizeof(u.release), "?");
    strftime(day, sizeof(day), "%Y-%m-%d", gmtime_r(&t, &tm));
    printf("\n== Summary (Markdown, for bench/README.md) ==\n\n");
    printf("`store_bench` %s, %ld CPUs, Linux %s, store on %s, %s; N_FIRST=%" PRIu64 " N_LOOKUPS=%" PRIu64
           " POPULATION=%" PRIu64 " LATENCY_LOOKUPS=%" PRIu64 "; load average %.2f at the start, %.2f at the end.\n\n",
           day, sysconf(_SC_NPROCESSORS_ONLN), u.release, fs, lmdb_version, o->n_first, o->n_lookups, o->population,
           o->latency_lookups, r->load_start, r->load_end);
    printf("| measure | result |\n|---|---|\n");
    printf("| first logins, synced (`store_login`, %" PRIu64 " new customers) | %.0f /s (p50 %.2f ms, p99 %.2f ms) |\n",
           o->n_first, (double)o->n_first / r->first_s, r->first_lat.p50_us / 1e3, r->first_lat.p99_us / 1e3);
    printf("| returning logins, synced (same identities) | %.0f /s (p50 %.2f ms, p99 %.2f ms) |\n",
           (double)o->n_first / r->returning_s, r->returning_lat.p50_us / 1e3, r->returning_lat.p99_us / 1e3);
    printf("| session writes, synced (`store_session_put`) | %.0f /s (p50 %.2f ms, p99 %.2f ms) |\n",
           (double)o->n_first / r->session_put_s, r->session_put_lat.p50_us / 1e3, r->session_put_lat.p99_us / 1e3);
    {
        /* one writer at a time (LMDB), one commit per call, no group commit: this bounds sign-ins/s */
        double ms = (r->first_s + r->session_put_s) * 1e3 / (double)o->n_first;
        printf("| store time of a first sign-in (login + session write, mean) | %.2f ms = at most %.0f first "
               "sign-ins/s |\n",
               ms, 1e3 / ms);
    }
    printf("| session lookups (`store_session_get`), 1 thread | %.0f /s |\n", (double)o->n_lookups / r->lookup_1_s);
    printf("| session lookups, %" PRIu64 " threads | %.0f /s (x%.2f) |\n", o->threads,
           (double)o->n_lookups / r->lookup_n_s, r->lookup_1_s / r->lookup_n_s);
    printf("| populate %" PRIu64 " customers (`store_set_durable(0)`, one `store_login` each) | %.1f s "
           "(%.0f /s) + %.2f s final sync |\n",
           o->population, r->populate_s, pop / r->populate_s, r->final_sync_s);
    human_bytes((double)r->file_bytes, a, sizeof(a));
    printf("| data.mdb size | %s = %.0f B per customer |\n", a, (double)r->file_bytes / pop);
    if (r->have_mdb_stat) {
        human_bytes((double)(r->pages_used * r->page_size), a, sizeof(a));
        human_bytes((double)((r->pages_used - r->pages_free) * r->page_size), b, sizeof(b));
        printf("| LMDB pages used (`mdb_stat -ef`) | %s = %.0f B per customer (%s live, %" PRIu64 " pages free) |\n", a,
               (double)(r->pages_used * r->page_size) / pop, b, r->pages_free);
    }
    printf("| `store_customer_get`, %" PRIu64 " random, p50 / p99 / max | %.1f / %.1f / %.0f µs |\n",
           o->latency_lookups, r->get_lat[0].p50_us, r->get_lat[0].p99_us, r->get_lat[0].max_us);
    printf("| `store_customer_by_email`, p50 / p99 / max | %.1f / %.1f / %.0f µs |\n", r->email_lat[0].p50_us,
           r->email_lat[0].p99_us, r->email_lat[0].max_us);
    printf("| `store_customer_by_identity`, p50 / p99 / max | %.1f / %.1f / %.0f µs |\n", r->ident_lat[0].p50_us,
           r->ident_lat[0].p99_us, r->ident_lat[0].max_us);
    printf("\n(lookup latencies: first pass over a fresh mapping; second pass p50 get/email/identity "
           "%.1f / %.1f / %.1f µs)\n",
           r->get_lat[1].p50_us, r->email_lat[1].p50_us, r->ident_lat[1].p50_us);
}

static void usage(FILE *f)
{
    fputs("Usage: store_bench [options] DIR\n"
          "Measures the customer store (gateway/store.h) in two new stores under DIR (which must exist):\n"
          "DIR/small and DIR/population. Normally run by bench/store.sh.\n"
          "  --first N            identities for the synced-write test and sessions [2000]\n"
          "  --lookups N          session lookups per run (1 thread, then split over --threads) [1000000]\n"
          "  --threads N          threads of the second lookup run [2]\n"
          "  --population N       customers in the large store [1000000]\n"
          "  --latency-lookups N  random lookups of each kind in the large store [100000]\n"
          "  --map-mb N           initial map size given to store_open (it grows by doubling) [1024]\n"
          "  --seed N             random seed of the lookups [1]\n"
          "Environment: MDB_STAT = the mdb_stat program [mdb_stat from PATH].\n",
          f);
}

int main(int argc, char **argv)
{
    struct opts o = {2000, 1000000, 1000000, 100000, 2, 1024, 1, NULL};
    struct results r;
    char small_dir[4096], pop_dir[4096], lmdb_version[64] = "LMDB version unknown";
    store_t *st = NULL;
    cid_t *ids = NULL;
    uint8_t(*hashes)[32] = NULL;
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
            fprintf(stderr, "store_bench: %s needs a value\n", a);
            return 2;
        }
        ++i;
        if (strcmp(a, "--first") == 0)
            o.n_first = parse_u64(a, v, 1, 100000000);
        else if (strcmp(a, "--lookups") == 0)
            o.n_lookups = parse_u64(a, v, 1, 10000000000ULL);
        else if (strcmp(a, "--threads") == 0)
            o.threads = parse_u64(a, v, 1, MAX_THREADS);
        else if (strcmp(a, "--population") == 0)
            o.population = parse_u64(a, v, 1, 100000000);
        else if (strcmp(a, "--latency-lookups") == 0)
            o.latency_lookups = parse_u64(a, v, 1, 100000000);
        else if (strcmp(a, "--map-mb") == 0)
            o.map_mb = parse_u64(a, v, 1, 1024 * 1024);
        else if (strcmp(a, "--seed") == 0)
            o.seed = parse_u64(a, v, 0, UINT32_MAX);
        else {
            fprintf(stderr, "store_bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.dir == NULL) {
        usage(stderr);
        return 2;
    }
    {
        /* the stores must be new: a leftover store would change every figure */
        struct stat sb;
        if (stat(o.dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "store_bench: %s is not an existing directory\n", o.dir);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines appear as they happen */
    gw_log_threshold = GW_LOG_WARN;   /* the store's info lines (map growth) would interleave with the report */
    fmt(small_dir, sizeof(small_dir), "%s/small", o.dir);
    fmt(pop_dir, sizeof(pop_dir), "%s/population", o.dir);
    {
        struct stat sb;
        if (stat(small_dir, &sb) == 0 || stat(pop_dir, &sb) == 0) {
            fprintf(stderr, "store_bench: %s already holds a store (small/ or population/): give an empty directory\n",
                    o.dir);
            return 2;
        }
    }
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

    printf("journeygate store benchmark (bench/store_bench.c)\n");
    printf("  %ld CPUs online, load average %.2f; stores under %s (%s); %s\n", sysconf(_SC_NPROCESSORS_ONLN),
           r.load_start, o.dir, fs, lmdb_version);
    if (r.load_start > 0.5)
        printf("  NOTE: the machine is busy (load average %.2f): other processes compete for the CPUs and the disk\n",
               r.load_start);
    printf("  N_FIRST=%" PRIu64 " N_LOOKUPS=%" PRIu64 " LOOKUP_THREADS=%" PRIu64 " POPULATION=%" PRIu64
           " LATENCY_LOOKUPS=%" PRIu64 " map %" PRIu64 " MB initially, seed %" PRIu64 "\n",
           o.n_first, o.n_lookups, o.threads, o.population, o.latency_lookups, o.map_mb, o.seed);
    if (strcmp(fs, "tmpfs") == 0)
        printf("  WARNING: tmpfs ignores fsync: the synced-write figures are not those of a disk\n");

    if ((ids = malloc(o.n_first * sizeof(*ids))) == NULL || (hashes = malloc(o.n_first * sizeof(*hashes))) == NULL)
        die("out of memory");
    if ((s = store_open(small_dir, o.map_mb, &st)) != GW_OK)
        die("store_open %s: %s", small_dir, gw_status_str(s));
    {
        uint8_t key[32]; /* the gateway sets its audit key right after opening */
        if (gw_random_bytes(key, sizeof(key)) != GW_OK)
            die("gw_random_bytes failed");
        store_audit_key(st, key);
    }
    part_writes(&o, st, ids, hashes, &r);
    part_lookups(&o, st, (const cid_t *)ids, (const uint8_t(*)[32])hashes, &r);
    store_close(st);
    free(ids);
    free(hashes);

    part_population(&o, pop_dir, &r);
    {
        double la[1];
        r.load_end = getloadavg(la, 1) == 1 ? la[0] : -1;
    }
    print_summary(&o, &r, fs, lmdb_version);
    return 0;
}
