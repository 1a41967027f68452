/*
 * journeygate — the demo's sample data: a few hundred customers over the last 30 days on the
 * web, the mobile app, the contact centre and email, so that a newcomer who opens the console of
 * `journeygate demo` sees live views instead of empty ones.
 *
 * Everything goes through the real paths: customers are made by store_login() (with the audit
 * records a sign-in writes), touchpoints by the recorder (visits, attribution and device classes
 * are worked out by the same code as for live traffic). Sample data is marked as such: every
 * touchpoint has source "sample", every identity's subject starts with "sample-", every email is
 * at sample.example (a reserved name: no mail can ever reach a real person).
 *
 * The journeys are generated, not random noise: each customer enters at "need" and moves forward
 * through the lifecycle stages with a falling chance to go on, on channels that fit each stage,
 * with a campaign click on some entries. A fixed seed makes every demo store the same.
 */
#include "demo_seed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* xorshift64*: deterministic, so two demo stores hold the same sample */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static unsigned pick(uint64_t *s, unsigned n)
{
    return (unsigned)(next_rand(s) % n);
}

static const char *const first_names[] = {"Ada",   "Bruno", "Chloe", "Dev",  "Elena", "Farid", "Greta", "Hugo",
                                          "Ines",  "Jonas", "Keiko", "Liam", "Maya",  "Nils",  "Olga",  "Priya",
                                          "Quinn", "Rosa",  "Sami",  "Tara", "Umar",  "Vera",  "Wen",   "Yusuf"};
static const char *const last_names[] = {"Almeida", "Berg",    "Costa",  "Duarte",   "Eriksen", "Fischer", "Garcia",
                                         "Horvat",  "Ivanova", "Jensen", "Kowalski", "Larsen",  "Moreau",  "Novak",
                                         "Okafor",  "Petrov",  "Rossi",  "Silva",    "Tanaka",  "Weber"};

/* one step of a journey: a channel, what the customer did there, the stage it belongs to */
struct step {
    const char *channel, *touchpoint, *route;
};

/* the lifecycle stages in order (DOMAIN.md), each with what customers do in it, by channel */
static const struct {
    const char *stage;
    unsigned keep_going; /* percent of the customers at this stage who reach the next one */
    struct step steps[4];
} stages[] = {
    {"need",
     78,
     {{"web", "read blog article", "blog"},
      {"email", "opened newsletter", "newsletter"},
      {"web", "viewed home page", "home"},
      {"mobile-app", "installed app", "app"}}},
    {"research",
     70,
     {{"web", "viewed product page", "products"},
      {"web", "compared plans", "compare"},
      {"mobile-app", "browsed catalogue", "app"},
      {"email", "clicked product email", "newsletter"}}},
    {"select",
     62,
     {{"web", "viewed pricing", "pricing"},
      {"contact-centre", "called sales", "sales-line"},
      {"mobile-app", "added to basket", "app"},
      {"web", "added to basket", "basket"}}},
    {"convert",
     80,
     {{"web", "checkout completed", "checkout"},
      {"mobile-app", "purchase in app", "app"},
      {"contact-centre", "ordered by phone", "sales-line"},
      {"web", "checkout completed", "checkout"}}},
    {"own",
     55,
     {{"mobile-app", "tracked delivery", "app"},
      {"web", "viewed order status", "account"},
      {"contact-centre", "called support", "support-line"},
      {"email", "opened delivery email", "newsletter"}}},
    {"loyalty",
     35,
     {{"email", "clicked offer email", "newsletter"},
      {"web", "reordered", "checkout"},
      {"mobile-app", "used loyalty card", "app"},
      {"contact-centre", "renewal call", "support-line"}}},
    {"advocacy",
     0,
     {{"web", "wrote review", "reviews"},
      {"email", "referral email sent", "newsletter"},
      {"mobile-app", "shared with a friend", "app"},
      {"web", "wrote review", "reviews"}}},
};
#define NUM_STAGES (sizeof(stages) / sizeof(stages[0]))

/* what each channel's client says it is: the recorder derives the device class from it */
static const char *user_agent_for(const char *channel, uint64_t *s)
{
    if (strcmp(channel, "mobile-app") == 0)
        return "journeygate-sample-app/2.3 (iPhone; iOS 17.4)";
    if (strcmp(channel, "contact-centre") == 0)
        return "journeygate-sample-contact-centre/1.0";
    if (strcmp(channel, "email") == 0)
        return "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
    return pick(s, 3) == 0
               ? "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"
               : "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36";
}

/* campaigns that bring customers in: the query of the entry touchpoint, and its referrer */
static const struct {
    const char *query, *referer;
} campaigns[] = {
    {"utm_source=newsletter&utm_medium=email&utm_campaign=spring-sale", NULL},
    {"utm_source=facebook&utm_medium=social&utm_campaign=spring-sale&fbclid=sample", "https://www.facebook.com/"},
    {"utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=sample", "https://www.google.com/"},
    {NULL, "https://www.google.com/"},
    {NULL, NULL},
};

static void push_step(gw_recorder_t *rec, const char *customer_id, const char *provider, const struct step *st,
                      const char *stage, uint64_t at_ms, int entry, uint64_t *s)
{
    gw_touch_t t;
    memset(&t, 0, sizeof(t));
    t.customer_id = customer_id;
    t.channel = st->channel;
    t.touchpoint = st->touchpoint;
    t.stage = stage;
    t.route = st->route;
    t.method = strcmp(st->channel, "contact-centre") == 0 ? "POST" : "GET";
    t.provider = provider;
    t.source = "sample";
    t.user_agent = user_agent_for(st->channel, s);
    t.status = 200;
    t.occurred_at_ms = at_ms;
    if (entry) {
        unsigned c = pick(s, sizeof(campaigns) / sizeof(campaigns[0]));
        t.query = campaigns[c].query;
        t.query_len = t.query != NULL ? strlen(t.query) : 0;
        t.referer = campaigns[c].referer;
    }
    gw_recorder_push(rec, &t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* a failed sign-in, as the security views show them: reasons as the gateway records them */
static gw_status_t seed_refusal(store_t *st, const char *provider, uint64_t at, uint64_t *s)
{
    static const char *const reasons[] = {"state_unknown", "access_denied", "state_expired", "invalid_id_token"};
    char client[32];
    store_audit_event_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.event = "callback_refused";
    ev.outcome = "refused";
    ev.reason = reasons[pick(s, sizeof(reasons) / sizeof(reasons[0]))];
    ev.provider = provider;
    snprintf(client, sizeof(client), "198.51.100.%u", 1 + pick(s, 40)); /* TEST-NET-2 */
    ev.client = client;
    ev.detail = "sample data";
    return store_audit_write(st, &ev, at);
}

/*
 * Waits (at most max_ms) until the recorder has written or given up on every touchpoint it accepted
 * beyond `before` (its written + failed count when the seeding began): the console's first figures
 * are built as the gateway starts, and must see the sample, not an empty store.
 */
static void wait_written(gw_recorder_t *rec, uint64_t before, uint64_t pushed, uint64_t max_ms)
{
    const uint64_t end = gw_mono_ms() + max_ms;
    const struct timespec pause = {0, 20 * 1000 * 1000};
    uint64_t accepted, dropped, written, failed;

    for (;;) {
        gw_recorder_counts(rec, &accepted, &dropped, &written, &failed);
        if (written + failed >= before + pushed || gw_mono_ms() >= end)
            return;
        nanosleep(&pause, NULL);
    }
}

gw_status_t gw_demo_seed(store_t *st, gw_recorder_t *rec, const char *const *providers, size_t num_providers,
                         size_t customers, uint64_t now_ms, size_t *created)
{
    uint64_t have = 0, seed = 0x6a6f75726e657967ULL; /* "journeyg" */
    const uint64_t day = 86400000ULL, span = 30 * day;
    size_t num_refusals = customers / 5, r = 0;
    uint64_t *starts, *refusals, accepted0, dropped0, written0, failed0, accepted1, dropped1, unused, unused2;
    gw_status_t rc = GW_OK;

    if (created != NULL)
        *created = 0;
    if (st == NULL || rec == NULL || providers == NULL || num_providers == 0 || customers == 0 || now_ms < span)
        return GW_EINVAL;
    if ((rc = store_count_customers(st, &have)) != GW_OK)
        return rc;
    if (have > 0)
        return GW_OK; /* a store with customers is never given sample data */
    if ((starts = calloc(customers + num_refusals + 1, sizeof(*starts))) == NULL)
        return GW_ENOMEM;
    refusals = starts + customers;
    /* when each customer first appeared, anywhere in the last 30 days, more often lately; the
       trail is written in time order, as live traffic would have written it */
    for (size_t i = 0; i < customers; ++i)
        starts[i] = now_ms - (next_rand(&seed) % span) * (next_rand(&seed) % 100 + 1) / 100;
    for (size_t i = 0; i < num_refusals; ++i)
        refusals[i] = now_ms - next_rand(&seed) % span;
    qsort(starts, customers, sizeof(*starts), cmp_u64);
    gw_recorder_counts(rec, &accepted0, &dropped0, &written0, &failed0);
    /* a bulk load: one sync at the end instead of one per sign-in keeps the demo's start short */
    if ((rc = store_set_durable(st, 0)) != GW_OK) {
        free(starts);
        return rc;
    }
    qsort(refusals, num_refusals, sizeof(*refusals), cmp_u64);

    for (size_t i = 0; i < customers && rc == GW_OK; ++i) {
        char subject[32], email[96], name[64], customer_id[STORE_ID_LEN + 1];
        const char *first = first_names[pick(&seed, sizeof(first_names) / sizeof(first_names[0]))];
        const char *last = last_names[pick(&seed, sizeof(last_names) / sizeof(last_names[0]))];
        const char *provider = providers[pick(&seed, (unsigned)num_providers)];
        uint64_t at = starts[i];
        store_identity_t id;
        store_login_opts_t opts;
        store_login_info_t info;
        store_audit_event_t ev;

        while (r < num_refusals && refusals[r] <= at && rc == GW_OK)
            rc = seed_refusal(st, providers[pick(&seed, (unsigned)num_providers)], refusals[r++], &seed);
        if (rc != GW_OK)
            break;
        snprintf(subject, sizeof(subject), "sample-%05zu", i + 1);
        snprintf(email, sizeof(email), "%s.%s.%zu@sample.example", first, last, i + 1);
        for (char *p = email; *p != '\0'; ++p)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        snprintf(name, sizeof(name), "%s %s", first, last);
        memset(&id, 0, sizeof(id));
        id.provider = provider;
        id.subject = subject;
        id.email = email;
        id.email_verified = 1;
        id.name = name;
        memset(&opts, 0, sizeof(opts));
        opts.channel = "web";
        memset(&ev, 0, sizeof(ev));
        ev.event = "callback_succeeded";
        ev.outcome = "success";
        ev.provider = provider;
        ev.subject = subject;
        ev.client = "192.0.2.10"; /* TEST-NET-1: a documentation address, never a real client */
        ev.detail = "sample data";
        if ((rc = store_login(st, &id, &opts, at, customer_id, &info, &ev)) != GW_OK)
            break;
        if (created != NULL)
            ++*created;

        /* the journey: each stage reached gets one to three touchpoints, minutes to days apart */
        for (size_t k = 0; k < NUM_STAGES && at < now_ms; ++k) {
            unsigned n = 1 + pick(&seed, 3);
            for (unsigned m = 0; m < n && at < now_ms; ++m) {
                const struct step *stp = &stages[k].steps[pick(&seed, 4)];
                push_step(rec, customer_id, provider, stp, stages[k].stage, at, k == 0 && m == 0, &seed);
                at += 600000ULL + next_rand(&seed) % (k < 3 ? day / 2 : 3 * day);
            }
            if (pick(&seed, 100) >= stages[k].keep_going)
                break;
        }
    }
    while (rc == GW_OK && r < num_refusals)
        rc = seed_refusal(st, providers[pick(&seed, (unsigned)num_providers)], refusals[r++], &seed);
    free(starts);
    gw_recorder_counts(rec, &accepted1, &dropped1, &unused, &unused2);
    wait_written(rec, written0 + failed0, accepted1 - accepted0, 10000);
    if (store_set_durable(st, 1) != GW_OK && rc == GW_OK)
        rc = GW_EIO; /* the sample may not be on disk: say so */
    return rc;
}
