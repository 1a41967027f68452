/*
 * journeygate — command line: parses arguments, loads the configuration and
 * hands over to the server. Nothing else lives here.
 */
#include "cli.h"
#include "config.h"
#include "gw.h"
#include "policy_glue.h"
#include "prov_dev.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_top[] =
    "usage: journeygate <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve --config FILE         run the gateway in the foreground (SIGTERM drains, SIGHUP reloads)\n"
    "  check-config --config FILE  validate a configuration; prints every error as FILE: key: message\n"
    "  demo [--port N] [--upstream-port N] [--idp-port N]\n"
    "                              run a demo gateway on http://127.0.0.1:8080 with a built-in upstream\n"
    "  customer show ID|EMAIL [--json] | customer delete ID   (--store DIR | --config FILE)\n"
    "  export customers --format ndjson|csv | export audit [--since MS]  (--store DIR | --config FILE)\n"
    "  audit verify | audit tail [-n N] [--json]               (--store DIR | --config FILE)\n"
    "  policy explain --config FILE (--route NAME | --path P) [--customer ID | --email E]\n"
    "  journey ID|EMAIL [--since MS] [--json]                   (--store DIR | --config FILE)\n"
    "  export touchpoints --format ndjson|csv [--since MS]      (--store DIR | --config FILE)\n"
    "\n"
    "options: --help on every command, --version\n";

static int print_errors(gw_config_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; ++i)
        fprintf(stderr, "%s\n", errs->msgs[i]);
    gw_config_errors_clear(errs);
    return 1;
}

static const char *find_opt(int argc, char **argv, const char *name, int *bad)
{
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], name) == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "journeygate: %s needs a value\n", name);
                *bad = 1;
                return NULL;
            }
            return argv[i + 1];
        }
    }
    return NULL;
}

static int has_flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; ++i)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

/* every argument must be a known option (with its value) */
static int check_args(int argc, char **argv, const char *const *with_value)
{
    for (int i = 0; i < argc; ++i) {
        int known = 0;
        for (const char *const *o = with_value; *o != NULL; ++o)
            if (strcmp(argv[i], *o) == 0) {
                known = 1;
                ++i;
            }
        if (!known && strcmp(argv[i], "--help") != 0) {
            fprintf(stderr, "journeygate: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

static int cmd_check_config(int argc, char **argv)
{
    static const char *const opts[] = {"--config", NULL};
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    const char *path;
    int bad = 0;

    if (has_flag(argc, argv, "--help")) {
        printf("usage: journeygate check-config --config FILE\n"
               "Validates FILE; exit 0 when valid, 1 with every error on stderr as FILE: path.to.key: message.\n");
        return 0;
    }
    if (check_args(argc, argv, opts) != 0 || (path = find_opt(argc, argv, "--config", &bad)) == NULL) {
        if (!bad)
            fprintf(stderr, "usage: journeygate check-config --config FILE\n");
        return 2;
    }
    if (gw_config_load(path, &cfg, &errs) != GW_OK)
        return print_errors(&errs);
    if (gw_policies_attach(cfg, &errs) != GW_OK) {
        gw_config_unref(cfg);
        return print_errors(&errs);
    }
    gw_config_errors_clear(&errs);
    printf("%s: ok (%zu listeners, %zu upstreams, %zu routes)\n", path, cfg->num_listens, cfg->num_upstreams,
           cfg->num_routes);
    gw_config_unref(cfg);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const char *const opts[] = {"--config", NULL};
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    gw_server_opts_t sopts;
    memset(&sopts, 0, sizeof(sopts));
    const char *path;
    int bad = 0;

    if (has_flag(argc, argv, "--help")) {
        printf("usage: journeygate serve --config FILE\n"
               "Runs the gateway in the foreground. SIGTERM or SIGINT drains in-flight requests and exits 0;\n"
               "SIGHUP re-reads FILE (a file with errors is refused and the running configuration stays).\n");
        return 0;
    }
    if (check_args(argc, argv, opts) != 0 || (path = find_opt(argc, argv, "--config", &bad)) == NULL) {
        if (!bad)
            fprintf(stderr, "usage: journeygate serve --config FILE\n");
        return 2;
    }
    if (gw_config_load(path, &cfg, &errs) != GW_OK)
        return print_errors(&errs);
    if (gw_policies_attach(cfg, &errs) != GW_OK) {
        gw_config_unref(cfg);
        return print_errors(&errs);
    }
    gw_config_errors_clear(&errs);
    sopts.config_path = path;
    return gw_server_run(cfg, &sopts) == GW_OK ? 0 : 1;
}

static int parse_port(const char *s, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < 1 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int cmd_demo(int argc, char **argv)
{
    static const char *const opts[] = {"--port", "--upstream-port", "--idp-port", NULL};
    gw_config_errors_t errs = {NULL, 0};
    gw_config_t *cfg = NULL;
    gw_server_opts_t sopts;
    memset(&sopts, 0, sizeof(sopts));
    const char *s, *state;
    char public_url[64], upstream_url[64], idp_url[64], store[512];
    int port = 8080, up_port = 8081, idp_port = 8082, bad = 0;
    json_t *doc, *providers = NULL;
    prov_dev_t *dev;

    if (has_flag(argc, argv, "--help")) {
        printf("usage: journeygate demo [--port N] [--upstream-port N] [--idp-port N]\n"
               "Runs a demo gateway on http://127.0.0.1:8080 in front of a built-in demo upstream\n"
               "(127.0.0.1:8081) that shows what a backend receives, with development sign-in\n"
               "stand-ins for Google and Facebook (127.0.0.1:8082). Development use only.\n");
        return 0;
    }
    if (check_args(argc, argv, opts) != 0)
        return 2;
    if ((s = find_opt(argc, argv, "--port", &bad)) != NULL && parse_port(s, &port) != 0)
        bad = 1;
    if ((s = find_opt(argc, argv, "--upstream-port", &bad)) != NULL && parse_port(s, &up_port) != 0)
        bad = 1;
    if ((s = find_opt(argc, argv, "--idp-port", &bad)) != NULL && parse_port(s, &idp_port) != 0)
        bad = 1;
    if (bad || port == up_port || port == idp_port || up_port == idp_port) {
        fprintf(stderr, "journeygate demo: ports must be three different numbers between 1 and 65535\n");
        return 2;
    }
    snprintf(public_url, sizeof(public_url), "http://127.0.0.1:%d", port);
    snprintf(upstream_url, sizeof(upstream_url), "http://127.0.0.1:%d", up_port);
    state = getenv("XDG_STATE_HOME");
    if (state != NULL && state[0] != '\0')
        snprintf(store, sizeof(store), "%s/journeygate-demo", state);
    else
        snprintf(store, sizeof(store), "%s/.local/state/journeygate-demo",
                 getenv("HOME") != NULL ? getenv("HOME") : "/tmp");
    snprintf(idp_url, sizeof(idp_url), "http://127.0.0.1:%d", idp_port);
    if ((dev = prov_dev_create(idp_url, public_url, &providers)) == NULL) {
        fprintf(stderr, "journeygate demo: cannot create the development sign-in stand-ins\n");
        return 1;
    }
    /* the console's roles: only the labelled demo staff persona (prov_dev.c: morgan@staff.demo.test) */
    doc = json_pack("{s:[{s:s, s:i}], s:s, s:i, s:{s:s}, s:{s:{s:s, s:i}}, s:o,"
                    " s:{s:{s:[{s:{s:b}}]}, s:{s:s, s:[{s:{s:[s]}}]}},"
                    " s:{s:{s:s, s:s, s:s}},"
                    " s:[{s:s, s:{s:s}, s:s, s:s, s:s, s:s, s:s}, {s:s, s:{s:s}, s:s, s:s, s:s, s:s}]}",
                    "listen", "address", "127.0.0.1", "port", port, "public_url", public_url, "threads", 1, "store",
                    "path", store, "upstreams", "demo", "url", upstream_url, "timeout_s", 10, "providers", providers,
                    "policies", "signed_in", "rules", "allow", "signed_in", 1, "demo_staff", "description",
                    "the demo's staff persona (Morgan, at the Google stand-in)", "rules", "allow", "email_domain",
                    "staff.demo.test", "console", "roles", "marketer", "demo_staff", "security", "demo_staff", "admin",
                    "demo_staff", "routes", "name", "account", "match", "path_prefix", "/account/", "upstream", "demo",
                    "channel", "web", "touchpoint", "account", "auth", "session", "policy", "signed_in", "name", "site",
                    "match", "path_prefix", "/", "upstream", "demo", "channel", "web", "touchpoint", "demo-page",
                    "auth", "none");
    if (doc == NULL || gw_config_from_json(doc, "<demo>", &cfg, &errs) != GW_OK ||
        gw_policies_attach(cfg, &errs) != GW_OK) {
        json_decref(doc);
        return print_errors(&errs);
    }
    json_decref(doc);
    gw_config_errors_clear(&errs);
    printf("journeygate demo (development only)\n"
           "  gateway:        %s/\n"
           "  sign in:        %s/account/ (pick a test persona at the Google or Facebook stand-in)\n"
           "  who am I:       %s/.auth/me\n"
           "  console:        %s/.console/ (sign in with Google as \"Morgan (demo staff: console)\")\n"
           "  health:         %s/.auth/health\n"
           "  demo upstream:  %s/ (what the backend receives)\n"
           "  sign-in stand-ins (development only, never the real providers): %s/\n"
           "Press Ctrl-C to stop.\n",
           public_url, public_url, public_url, public_url, public_url, upstream_url, idp_url);
    fflush(stdout);
    sopts.demo_upstream_port = up_port;
    sopts.dev_idp = dev;
    sopts.dev_idp_port = idp_port;
    return gw_server_run(cfg, &sopts) == GW_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        fputs(usage_top, stderr);
        return 2;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("journeygate %s\n", GW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_top, stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config(argc - 2, argv + 2);
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo(argc - 2, argv + 2);
    if (strcmp(cmd, "customer") == 0)
        return cli_customer(argc - 2, argv + 2);
    if (strcmp(cmd, "export") == 0)
        return cli_export(argc - 2, argv + 2);
    if (strcmp(cmd, "audit") == 0)
        return cli_audit(argc - 2, argv + 2);
    if (strcmp(cmd, "policy") == 0)
        return cli_policy(argc - 2, argv + 2);
    if (strcmp(cmd, "journey") == 0)
        return cli_journey(argc - 2, argv + 2);
    fprintf(stderr, "journeygate: unknown command '%s'\n\n%s", cmd, usage_top);
    return 2;
}
