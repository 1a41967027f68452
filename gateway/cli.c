#include "cli.h"

#include "config.h"
#include "crypto.h"
#include "csv.h"
#include "gw.h"
#include "pol.h"
#include "policy_glue.h"
#include "route.h"
#include "store.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *opt_value(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; ++i)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static int has(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; ++i)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

/* the store directory from --store DIR or --config FILE; NULL (reported) when neither works */
static char *store_dir(int argc, char **argv)
{
    const char *dir = opt_value(argc, argv, "--store"), *file = opt_value(argc, argv, "--config");
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    char *out;

    if (dir != NULL)
        return strdup(dir);
    if (file == NULL) {
        fprintf(stderr, "journeygate: give --store DIR or --config FILE\n");
        return NULL;
    }
    if (gw_config_load(file, &cfg, &errs) != GW_OK) {
        for (size_t i = 0; i < errs.count; ++i)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        gw_config_errors_clear(&errs);
        return NULL;
    }
    gw_config_errors_clear(&errs);
    out = strdup(cfg->store_path);
    gw_config_unref(cfg);
    return out;
}

/* the positional argument after the command words (skips options and their values) */
static const char *positional(int argc, char **argv, int index)
{
    static const char *const with_value[] = {"--store", "--config",   "--format", "--since",  "-n",     "--route",
                                             "--path",  "--customer", "--email",  "--method", "--host", NULL};
    int n = 0;
    for (int i = 0; i < argc; ++i) {
        int skip = 0;
        for (const char *const *o = with_value; *o != NULL; ++o)
            if (strcmp(argv[i], *o) == 0)
                skip = 1;
        if (skip) {
            ++i;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] == '-')
            continue;
        if (n++ == index)
            return argv[i];
    }
    return NULL;
}

/* the audit key (audit.key_file of the config, or STORE/audit.key) into the opened store */
static int load_audit_key(int argc, char **argv, const char *dir, store_t *st)
{
    const char *file = opt_value(argc, argv, "--config");
    char keyfile[4096];
    uint8_t key[GW_KEY_LEN];

    snprintf(keyfile, sizeof(keyfile), "%s/audit.key", dir);
    if (file != NULL) {
        gw_config_errors_t errs = {NULL, 0};
        gw_config_t *cfg = NULL;
        if (gw_config_load(file, &cfg, &errs) == GW_OK) {
            const char *kf = json_string_value(json_object_get(json_object_get(cfg->doc, "audit"), "key_file"));
            if (kf != NULL)
                snprintf(keyfile, sizeof(keyfile), "%s", kf);
            gw_config_unref(cfg);
        }
        gw_config_errors_clear(&errs);
    }
    if (gw_secret_file_key(keyfile, 0, key) != GW_OK) {
        fprintf(stderr, "journeygate: cannot read the audit key %s\n", keyfile);
        return -1;
    }
    store_audit_key(st, key);
    explicit_bzero(key, sizeof(key));
    return 0;
}

/* opens the store read-only with its audit key */
static int open_audit(int argc, char **argv, store_t **st, char **dir_out)
{
    char *dir = store_dir(argc, argv);

    if (dir == NULL)
        return 2;
    if (store_open_readonly(dir, st) != GW_OK) {
        fprintf(stderr, "journeygate: cannot open the store at %s\n", dir);
        free(dir);
        return 1;
    }
    if (load_audit_key(argc, argv, dir, *st) != 0) {
        store_close(*st);
        free(dir);
        return 1;
    }
    *dir_out = dir;
    return 0;
}

static const char *or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

/* obj[key], a time in ms, as ISO 8601 UTC into out; "-" when absent */
static const char *iso_of(json_t *obj, const char *key, char out[GW_ISO_TIME_LEN])
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return "-";
    return gw_iso_time((uint64_t)json_integer_value(v), out);
}

static void print_customer(json_t *c)
{
    json_t *ident, *profile = json_object_get(c, "profile"), *v;
    const char *key;
    char at[GW_ISO_TIME_LEN];
    size_t i;

    printf("customer   %s\n", json_string_value(json_object_get(c, "id")));
    if (json_string_value(json_object_get(profile, "name")) != NULL)
        printf("name       %s\n", json_string_value(json_object_get(profile, "name")));
    if (json_string_value(json_object_get(profile, "email")) != NULL)
        printf("email      %s (%s)\n", json_string_value(json_object_get(profile, "email")),
               json_is_true(json_object_get(profile, "email_verified")) ? "verified" : "not verified");
    printf("created    %s\n", iso_of(c, "created_ms", at));
    printf("first seen %s\n", iso_of(c, "first_seen_ms", at));
    printf("last seen  %s\n", iso_of(c, "last_seen_ms", at));
    printf("stage      %s\n", or_dash(json_string_value(json_object_get(c, "stage"))));
    printf("identities\n  %-10s %-14s %-24s %-24s %s\n", "PROVIDER", "LINKED_BY", "LINKED_AT", "LAST_LOGIN",
           "SUBJECT  EMAIL");
    json_array_foreach(json_object_get(c, "identities"), i, ident)
    {
        const char *email = json_string_value(json_object_get(ident, "email"));
        char last[GW_ISO_TIME_LEN];
        /* identities linked before linked_by was recorded say "unknown" */
        printf(
            "  %-10s %-14s %-24s %-24s %s%s%s%s\n", json_string_value(json_object_get(ident, "provider")),
            json_string_value(json_object_get(ident, "linked_by")) != NULL
                ? json_string_value(json_object_get(ident, "linked_by"))
                : "unknown",
            iso_of(ident, "linked_at_ms", at), iso_of(ident, "last_login_ms", last),
            json_string_value(json_object_get(ident, "subject")), email != NULL ? "  " : "", email != NULL ? email : "",
            email != NULL ? (json_is_true(json_object_get(ident, "email_verified")) ? " (verified)" : " (not verified)")
                          : "");
    }
    if (json_object_size(json_object_get(c, "channels")) > 0) {
        printf("channels\n  %-16s %-24s %s\n", "CHANNEL", "FIRST_SEEN", "LAST_SEEN");
        json_object_foreach(json_object_get(c, "channels"), key, v)
        {
            char last[GW_ISO_TIME_LEN];
            printf("  %-16s %-24s %s\n", key, iso_of(v, "first_seen_ms", at), iso_of(v, "last_seen_ms", last));
        }
    }
    if (json_object_size(json_object_get(c, "devices")) > 0) {
        printf("devices\n  %-16s %s\n", "DEVICE", "LAST_SEEN");
        json_object_foreach(json_object_get(c, "devices"), key, v)
            printf("  %-16s %s\n", key, iso_of(v, "last_seen_ms", at));
    }
    if (json_object_size(json_object_get(c, "stages_reached")) > 0) {
        printf("stages\n  %-16s %s\n", "STAGE", "FIRST_REACHED");
        json_object_foreach(json_object_get(c, "stages_reached"), key, v)
        {
            char t[GW_ISO_TIME_LEN];
            printf("  %-16s %s\n", key, json_is_integer(v) ? gw_iso_time((uint64_t)json_integer_value(v), t) : "-");
        }
    }
}

int cli_customer(int argc, char **argv)
{
    const char *verb = positional(argc, argv, 0), *who = positional(argc, argv, 1);
    char *dir, id[STORE_ID_LEN + 1];
    store_t *st = NULL;
    json_t *c = NULL;
    gw_status_t s;
    int rc = 1;

    if (has(argc, argv, "--help") || verb == NULL || who == NULL ||
        (strcmp(verb, "show") != 0 && strcmp(verb, "delete") != 0)) {
        fprintf(has(argc, argv, "--help") ? stdout : stderr,
                "usage: journeygate customer show ID|EMAIL [--json] (--store DIR | --config FILE)\n"
                "       journeygate customer delete ID (--store DIR | --config FILE)\n");
        return has(argc, argv, "--help") ? 0 : 2;
    }
    if ((dir = store_dir(argc, argv)) == NULL)
        return 2;
    s = strcmp(verb, "show") == 0 ? store_open_readonly(dir, &st) : store_open(dir, 1024, &st);
    if (s != GW_OK) {
        fprintf(stderr, "journeygate: cannot open the store at %s\n", dir);
        goto Exit;
    }
    /* an erasure is audited, signed with the gateway's audit key */
    if (strcmp(verb, "delete") == 0 && load_audit_key(argc, argv, dir, st) != 0)
        goto Exit;
    if (strchr(who, '@') != NULL) {
        if (store_customer_by_email(st, who, id) != GW_OK) {
            fprintf(stderr, "journeygate: no customer has the verified email %s\n", who);
            goto Exit;
        }
    } else {
        snprintf(id, sizeof(id), "%s", who);
    }
    if (strcmp(verb, "delete") == 0) {
        unsigned sessions = 0;
        /* the erasure names who ran it: the operating-system user, never just "the CLI" */
        char actor[300];
        struct passwd *pw = getpwuid(getuid());
        store_audit_event_t ev = {.event = "erasure", .outcome = "success", .reason = "cli", .actor = actor};
        if (pw != NULL && pw->pw_name != NULL)
            snprintf(actor, sizeof(actor), "cli:%s", pw->pw_name);
        else
            snprintf(actor, sizeof(actor), "cli:uid%u", (unsigned)getuid());
        s = store_customer_delete(st, id, &sessions, &ev);
        if (s == GW_ENOTFOUND) {
            fprintf(stderr, "journeygate: no customer %s\n", id);
            goto Exit;
        }
        if (s != GW_OK) {
            fprintf(stderr, "journeygate: could not delete %s: %s\n", id, gw_status_str(s));
            goto Exit;
        }
        printf("deleted customer %s: identities, profile and %u session(s)\n", id, sessions);
        rc = 0;
        goto Exit;
    }
    if (store_customer_get(st, id, &c) != GW_OK) {
        fprintf(stderr, "journeygate: no customer %s\n", id);
        goto Exit;
    }
    if (has(argc, argv, "--json")) {
        json_dumpf(c, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        putchar('\n');
    } else {
        print_customer(c);
    }
    rc = 0;
Exit:
    json_decref(c);
    store_close(st);
    free(dir);
    return rc;
}

static void csv_put(void *out, const char *p, size_t n)
{
    fwrite(p, 1, n, out);
}

/* one CSV field (NULL: empty), always quoted, with the formula guard (gw_csv_cell()), then its separator */
static void csv_field(FILE *out, const char *v, int last)
{
    gw_csv_cell(v, 1, csv_put, out);
    fputc(last ? '\n' : ',', out);
}

struct export_ctx {
    int csv;
    int failed;
};

static int export_one(json_t *c, void *arg)
{
    struct export_ctx *x = arg;
    if (!x->csv) {
        if (json_dumpf(c, stdout, JSON_COMPACT | JSON_SORT_KEYS) != 0 || putchar('\n') == EOF)
            x->failed = 1;
        return x->failed;
    }
    {
        json_t *profile = json_object_get(c, "profile"), *ident, *ch;
        char providers[512] = "", channels[512] = "", num[32];
        size_t i, plen = 0, clen = 0;
        json_array_foreach(json_object_get(c, "identities"), i, ident)
        {
            int n = snprintf(providers + plen, sizeof(providers) - plen, "%s%s", plen > 0 ? " " : "",
                             json_string_value(json_object_get(ident, "provider")));
            if (n > 0 && (size_t)n < sizeof(providers) - plen)
                plen += (size_t)n;
        }
        json_array_foreach(json_object_get(c, "channels_seen"), i, ch)
        {
            int n =
                snprintf(channels + clen, sizeof(channels) - clen, "%s%s", clen > 0 ? " " : "", json_string_value(ch));
            if (n > 0 && (size_t)n < sizeof(channels) - clen)
                clen += (size_t)n;
        }
        csv_field(stdout, json_string_value(json_object_get(c, "id")), 0);
        csv_field(stdout, iso_of(c, "created_ms", num), 0);
        csv_field(stdout, iso_of(c, "first_seen_ms", num), 0);
        csv_field(stdout, iso_of(c, "last_seen_ms", num), 0);
        csv_field(stdout, json_string_value(json_object_get(c, "stage")), 0);
        csv_field(stdout, json_string_value(json_object_get(profile, "name")), 0);
        csv_field(stdout, json_string_value(json_object_get(profile, "email")), 0);
        csv_field(stdout, json_is_true(json_object_get(profile, "email_verified")) ? "true" : "false", 0);
        csv_field(stdout, providers, 0);
        csv_field(stdout, channels, 1);
    }
    return ferror(stdout) ? (x->failed = 1) : 0;
}

int cli_export_audit(int argc, char **argv);
int cli_export_touchpoints(int argc, char **argv);

int cli_export(int argc, char **argv)
{
    const char *what = positional(argc, argv, 0), *format = opt_value(argc, argv, "--format");
    struct export_ctx x = {0, 0};
    store_t *st = NULL;
    char *dir;
    int rc = 1;

    if (what != NULL && strcmp(what, "audit") == 0)
        return cli_export_audit(argc, argv);
    if (what != NULL && strcmp(what, "touchpoints") == 0)
        return cli_export_touchpoints(argc, argv);
    if (has(argc, argv, "--help") || what == NULL || strcmp(what, "customers") != 0 ||
        (format != NULL && strcmp(format, "ndjson") != 0 && strcmp(format, "csv") != 0)) {
        fprintf(
            has(argc, argv, "--help") ? stdout : stderr,
            "usage: journeygate export customers --format ndjson|csv (--store DIR | --config FILE)\n"
            "       journeygate export touchpoints --format ndjson|csv [--since MS|ISO] (--store DIR | --config FILE)\n"
            "       journeygate export audit [--since MS] (--store DIR | --config FILE)\n");
        return has(argc, argv, "--help") ? 0 : 2;
    }
    x.csv = format != NULL && strcmp(format, "csv") == 0;
    if ((dir = store_dir(argc, argv)) == NULL)
        return 2;
    if (store_open_readonly(dir, &st) != GW_OK) {
        fprintf(stderr, "journeygate: cannot open the store at %s\n", dir);
        free(dir);
        return 1;
    }
    if (x.csv)
        printf("customer_id,created,first_seen,last_seen,stage,name,email,email_verified,providers,channels_seen\n");
    if (store_customers_foreach(st, export_one, &x) == GW_OK && !x.failed && fflush(stdout) == 0)
        rc = 0;
    store_close(st);
    free(dir);
    return rc;
}

struct tail_ctx {
    int json;
    uint64_t since_ms;
    uint64_t last; /* the last sequence number seen */
    int header;    /* the text table's header was printed */
};

static int print_record(json_t *r, void *arg)
{
    struct tail_ctx *t = arg;
    char at[GW_ISO_TIME_LEN];
    t->last = (uint64_t)json_integer_value(json_object_get(r, "seq"));
    if ((uint64_t)json_integer_value(json_object_get(r, "ts_ms")) < t->since_ms)
        return 0;
    if (t->json) {
        json_dumpf(r, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        putchar('\n');
        return 0;
    }
    if (!t->header) {
        printf("%6s %-24s %-20s %-8s %-28s %-10s %s\n", "SEQ", "TIME", "EVENT", "OUTCOME", "REASON", "PROVIDER",
               "CUSTOMER");
        t->header = 1;
    }
    printf("%6lld %-24s %-20s %-8s %-28s %-10s %s\n", (long long)json_integer_value(json_object_get(r, "seq")),
           iso_of(r, "ts_ms", at), json_string_value(json_object_get(r, "event")),
           json_string_value(json_object_get(r, "outcome")),
           json_string_value(json_object_get(r, "reason")) != NULL ? json_string_value(json_object_get(r, "reason"))
                                                                   : "-",
           json_string_value(json_object_get(r, "provider")) != NULL ? json_string_value(json_object_get(r, "provider"))
                                                                     : "-",
           json_string_value(json_object_get(r, "customer_id")) != NULL
               ? json_string_value(json_object_get(r, "customer_id"))
               : "-");
    return 0;
}

int cli_audit(int argc, char **argv)
{
    const char *verb = positional(argc, argv, 0), *n_opt = opt_value(argc, argv, "-n");
    store_t *st = NULL;
    char *dir = NULL;
    int rc;

    if (has(argc, argv, "--help") || verb == NULL || (strcmp(verb, "verify") != 0 && strcmp(verb, "tail") != 0)) {
        fprintf(has(argc, argv, "--help") ? stdout : stderr,
                "usage: journeygate audit verify (--store DIR | --config FILE)\n"
                "       journeygate audit tail [-n N] [--json] [--follow] (--store DIR | --config FILE)\n"
                "verify exits 0 when the chain is intact, 1 naming the first broken sequence number.\n");
        return has(argc, argv, "--help") ? 0 : 2;
    }
    if ((rc = open_audit(argc, argv, &st, &dir)) != 0)
        return rc;
    if (strcmp(verb, "verify") == 0) {
        uint64_t count = 0, bad = 0;
        const char *why = NULL;
        gw_status_t s = store_audit_verify(st, &count, &bad, &why);
        if (s == GW_OK) {
            printf("audit chain OK: %llu records\n", (unsigned long long)count);
            rc = 0;
        } else if (s == GW_EINVAL) {
            printf("audit chain BROKEN at sequence %llu: %s\n", (unsigned long long)bad, why != NULL ? why : "");
            rc = 1;
        } else {
            fprintf(stderr, "journeygate: cannot read the audit trail: %s\n", gw_status_str(s));
            rc = 1;
        }
    } else {
        uint64_t last = 0, n = 20;
        struct tail_ctx t = {has(argc, argv, "--json"), 0, 0, 0};
        char *end;
        if (n_opt != NULL) {
            n = strtoull(n_opt, &end, 10);
            if (*end != '\0' || n == 0) {
                fprintf(stderr, "journeygate: -n needs a positive number\n");
                rc = 2;
                goto Exit;
            }
        }
        store_audit_last(st, &last);
        rc = store_audit_foreach(st, last > n ? last - n : 0, print_record, &t) == GW_OK ? 0 : 1;
        if (t.last < last)
            t.last = last;
        /* --follow: new records as they are committed, until interrupted */
        while (rc == 0 && has(argc, argv, "--follow")) {
            fflush(stdout);
            sleep(1);
            rc = store_audit_foreach(st, t.last, print_record, &t) == GW_OK ? 0 : 1;
        }
    }
Exit:
    store_close(st);
    free(dir);
    return rc;
}

int cli_export_audit(int argc, char **argv)
{
    const char *since = opt_value(argc, argv, "--since");
    struct tail_ctx t = {1, 0, 0, 0};
    store_t *st = NULL;
    char *dir = NULL, *end;
    int rc;

    if (since != NULL) {
        t.since_ms = strtoull(since, &end, 10);
        if (*end != '\0') {
            fprintf(stderr, "journeygate: --since wants a time in milliseconds since the epoch\n");
            return 2;
        }
    }
    if ((rc = open_audit(argc, argv, &st, &dir)) != 0)
        return rc;
    rc = store_audit_foreach(st, 0, print_record, &t) == GW_OK ? 0 : 1;
    store_close(st);
    free(dir);
    return rc;
}

int cli_policy(int argc, char **argv)
{
    const char *verb = positional(argc, argv, 0), *file = opt_value(argc, argv, "--config");
    const char *route_name = opt_value(argc, argv, "--route"), *path = opt_value(argc, argv, "--path");
    const char *who = opt_value(argc, argv, "--customer"), *email = opt_value(argc, argv, "--email");
    const char *method = opt_value(argc, argv, "--method"), *host = opt_value(argc, argv, "--host");
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    const gw_route_t *route = NULL;
    store_t *st = NULL;
    json_t *cust = NULL;
    pol_facts_t f;
    char id[STORE_ID_LEN + 1], *text;
    int rc = 1;

    if (has(argc, argv, "--help") || verb == NULL || strcmp(verb, "explain") != 0 || file == NULL ||
        (route_name == NULL) == (path == NULL)) {
        fprintf(has(argc, argv, "--help") ? stdout : stderr,
                "usage: journeygate policy explain --config FILE (--route NAME | --path P [--host H])\n"
                "           [--customer ID | --email E] [--method M]\n"
                "Prints the decision of the route's policy and the rule that made it, for a signed-out\n"
                "visitor or for a customer of the store (as if signed in just now).\n");
        return has(argc, argv, "--help") ? 0 : 2;
    }
    if (gw_config_load(file, &cfg, &errs) != GW_OK || gw_policies_attach(cfg, &errs) != GW_OK) {
        for (size_t i = 0; i < errs.count; ++i)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        gw_config_errors_clear(&errs);
        gw_config_unref(cfg);
        return 1;
    }
    gw_config_errors_clear(&errs);
    if (route_name != NULL) {
        for (size_t i = 0; i < cfg->num_routes; ++i)
            if (strcmp(cfg->routes[i].name, route_name) == 0)
                route = &cfg->routes[i];
    } else {
        char *norm = NULL;
        size_t len, path_len = strcspn(path, "?");
        long ri = -1;
        gw_path_verdict_t pv = gw_path_check(path, path_len);
        if (gw_path_normalize(path, path_len, &norm, &len) == GW_OK)
            ri = gw_route_match(cfg->routes, cfg->num_routes, host, host != NULL ? strlen(host) : 0, norm, len);
        free(norm);
        /* the server's rule: such a path is refused before any policy, unless its route opts out */
        if (gw_path_refused(cfg, ri, pv)) {
            printf("refused before routing: 400 invalid_path (%s)\n", gw_path_verdict_str(pv));
            rc = 0;
            goto Exit;
        }
        route = ri >= 0 ? &cfg->routes[ri] : NULL;
    }
    if (route == NULL) {
        fprintf(stderr, "journeygate: no such route (%s)\n", route_name != NULL ? route_name : path);
        goto Exit;
    }
    printf("route %s (auth %s)\n", route->name,
           route->auth == GW_AUTH_NONE      ? "none"
           : route->auth == GW_AUTH_SESSION ? "session"
           : route->auth == GW_AUTH_BEARER  ? "bearer"
                                            : "any");
    if (route->policy == NULL) {
        printf("no policy: open to everyone\n");
        rc = 0;
        goto Exit;
    }
    memset(&f, 0, sizeof(f));
    f.channel = route->channel;
    f.method = method != NULL ? method : "GET";
    f.session_age_s = -1;
    if (who != NULL || email != NULL) {
        if (store_open_readonly(cfg->store_path, &st) != GW_OK ||
            (email != NULL && store_customer_by_email(st, email, id) != GW_OK) ||
            store_customer_get(st, email != NULL ? id : who, &cust) != GW_OK) {
            fprintf(stderr, "journeygate: no such customer in %s\n", cfg->store_path);
            goto Exit;
        }
        json_t *profile = json_object_get(cust, "profile"),
               *first = json_array_get(json_object_get(cust, "identities"), 0);
        f.signed_in = 1;
        f.session_age_s = 0;
        f.customer_id = json_string_value(json_object_get(cust, "id"));
        f.provider = json_string_value(json_object_get(first, "provider"));
        f.email = json_string_value(json_object_get(profile, "email"));
        f.email_verified = json_is_true(json_object_get(profile, "email_verified"));
        f.linked_providers = (unsigned)json_array_size(json_object_get(cust, "identities"));
    }
    if ((text = pol_explain(cfg->policies, route->policy, &f)) != NULL) {
        fputs(text, stdout);
        if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
            putchar('\n');
        free(text);
    }
    rc = 0;
Exit:
    json_decref(cust);
    store_close(st);
    gw_config_unref(cfg);
    return rc;
}

struct journey_ctx {
    int json, csv;
    char last_channel[64];
    unsigned count;
};

/* the columns of `export touchpoints --format csv`: every field store_tp_json() gives, in this order */
static const char *const tp_columns[] = {
    "id",       "customer_id", "visitor_id",  "occurred_at",   "received_at", "channel",    "touchpoint",
    "stage",    "route",       "method",      "status",        "device",      "provider",   "source",
    "session",  "visit_id",    "visit_start", "referrer_host", "utm_source",  "utm_medium", "utm_campaign",
    "utm_term", "utm_content", "click_id",    "attributes",    NULL};

/* one CSV row from the touchpoint's JSON: strings as they are, numbers and booleans as JSON, objects as JSON text */
static int print_touchpoint_csv(const store_tp_t *tp)
{
    json_t *o = store_tp_json(tp);
    for (size_t i = 0; tp_columns[i] != NULL; ++i) {
        json_t *v = json_object_get(o, tp_columns[i]);
        int last = tp_columns[i + 1] == NULL;
        if (json_is_string(v)) {
            csv_field(stdout, json_string_value(v), last);
        } else if (v != NULL && !json_is_null(v)) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            csv_field(stdout, text, last);
            free(text);
        } else {
            csv_field(stdout, NULL, last);
        }
    }
    json_decref(o);
    return ferror(stdout) ? 1 : 0;
}

static int print_touchpoint(const store_tp_t *tp, void *arg)
{
    struct journey_ctx *j = arg;
    const char *ch = tp->channel;
    char at[GW_ISO_TIME_LEN];

    ++j->count;
    if (j->json) {
        json_t *o = store_tp_json(tp);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        putchar('\n');
        return 0;
    }
    if (j->csv)
        return print_touchpoint_csv(tp);
    if (ch != NULL && j->last_channel[0] != '\0' && strcmp(ch, j->last_channel) != 0)
        printf("        --- channel switch: %s -> %s ---\n", j->last_channel, ch);
    printf("%-24s %-14s %-20s %-9s %-6s %6d  %-8s %s%s\n", gw_iso_time(tp->occurred_at_ms, at), or_dash(ch),
           or_dash(tp->touchpoint), or_dash(tp->stage), or_dash(tp->method), tp->status, or_dash(tp->device),
           or_dash(tp->visit_id), tp->visit_start ? " (new visit)" : "");
    if (ch != NULL)
        snprintf(j->last_channel, sizeof(j->last_channel), "%s", ch);
    return 0;
}

/* --since: milliseconds since the epoch, or an ISO 8601 UTC time ("2026-12-07", "2026-12-07T23:09:43.123Z") */
static int parse_since(int argc, char **argv, uint64_t *since)
{
    const char *v = opt_value(argc, argv, "--since");
    char *end;
    struct tm tm;
    unsigned ms = 0;
    int n = 0, y, mo, d, h = 0, mi = 0, sec = 0;
    *since = 0;
    if (v == NULL)
        return 0;
    if (v[0] >= '0' && v[0] <= '9' && strchr(v, '-') == NULL) {
        *since = strtoull(v, &end, 10);
        if (*end == '\0')
            return 0;
    } else if (sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 &&
               (v[n] == '\0' ||
                (sscanf(v + n, "T%2d:%2d:%2d%n", &h, &mi, &sec, &n) == 3 &&
                 (strcmp(v + 10 + n, "Z") == 0 ||
                  (sscanf(v + 10 + n, ".%3u", &ms) == 1 && strlen(v + 10 + n) == 5 && v[strlen(v) - 1] == 'Z')))) &&
               mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && sec < 61 && y >= 1970) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        *since = (uint64_t)timegm(&tm) * 1000 + ms;
        return 0;
    }
    fprintf(stderr, "journeygate: --since wants a time in milliseconds since the epoch or in ISO 8601 UTC "
                    "(2026-12-07 or 2026-12-07T23:09:43.123Z)\n");
    return -1;
}

int cli_journey(int argc, char **argv)
{
    const char *who = positional(argc, argv, 0);
    struct journey_ctx j = {has(argc, argv, "--json"), 0, "", 0};
    store_t *st = NULL;
    char *dir, id[STORE_ID_LEN + 1];
    uint64_t since;
    int rc = 1;

    if (has(argc, argv, "--help") || who == NULL) {
        fprintf(has(argc, argv, "--help") ? stdout : stderr,
                "usage: journeygate journey ID|EMAIL [--since MS|ISO] [--json] (--store DIR | --config FILE)\n"
                "The customer's touchpoints in time order, across channels.\n");
        return has(argc, argv, "--help") ? 0 : 2;
    }
    if (parse_since(argc, argv, &since) != 0 || (dir = store_dir(argc, argv)) == NULL)
        return 2;
    if (store_open_readonly(dir, &st) != GW_OK) {
        fprintf(stderr, "journeygate: cannot open the store at %s\n", dir);
        free(dir);
        return 1;
    }
    if (strchr(who, '@') != NULL) {
        if (store_customer_by_email(st, who, id) != GW_OK) {
            fprintf(stderr, "journeygate: no customer has the verified email %s\n", who);
            goto Exit;
        }
    } else {
        snprintf(id, sizeof(id), "%s", who);
    }
    {
        json_t *c = NULL;
        if (store_customer_get(st, id, &c) != GW_OK) {
            fprintf(stderr, "journeygate: no customer %s\n", id);
            goto Exit;
        }
        json_decref(c);
    }
    if (!j.json)
        printf("journey of %s (times in UTC)\n%-24s %-14s %-20s %-9s %-6s %6s  %-8s %s\n", id, "OCCURRED_AT", "CHANNEL",
               "TOUCHPOINT", "STAGE", "METHOD", "STATUS", "DEVICE", "VISIT");
    if (store_journey(st, id, since, print_touchpoint, &j) == GW_OK) {
        if (!j.json)
            printf("%u touchpoint(s)\n", j.count);
        rc = 0;
    }
Exit:
    store_close(st);
    free(dir);
    return rc;
}

int cli_export_touchpoints(int argc, char **argv)
{
    const char *format = opt_value(argc, argv, "--format");
    struct journey_ctx j = {1, 0, "", 0};
    store_t *st = NULL;
    char *dir;
    uint64_t since;
    int rc;

    if (format != NULL && strcmp(format, "ndjson") != 0 && strcmp(format, "csv") != 0) {
        fprintf(stderr, "usage: journeygate export touchpoints --format ndjson|csv [--since MS|ISO]\n");
        return 2;
    }
    j.csv = format != NULL && strcmp(format, "csv") == 0;
    j.json = !j.csv;
    if (parse_since(argc, argv, &since) != 0 || (dir = store_dir(argc, argv)) == NULL)
        return 2;
    if (store_open_readonly(dir, &st) != GW_OK) {
        fprintf(stderr, "journeygate: cannot open the store at %s\n", dir);
        free(dir);
        return 1;
    }
    for (size_t i = 0; j.csv && tp_columns[i] != NULL; ++i)
        printf("%s%c", tp_columns[i], tp_columns[i + 1] != NULL ? ',' : '\n');
    rc = store_touchpoints_foreach(st, since, print_touchpoint, &j) == GW_OK && fflush(stdout) == 0 ? 0 : 1;
    store_close(st);
    free(dir);
    return rc;
}
