#include "policy_glue.h"

#include "pol.h"

#include <stdlib.h>
#include <string.h>

static void destroy(void *p)
{
    pol_set_destroy(p);
}

static void take_errors(gw_config_errors_t *errs, char **list, size_t n)
{
    char **grown = realloc(errs->msgs, (errs->count + n) * sizeof(*grown));
    if (grown == NULL) {
        pol_errors_free(list, n);
        return;
    }
    errs->msgs = grown;
    for (size_t i = 0; i < n; ++i)
        errs->msgs[errs->count++] = strdup(list[i]);
    pol_errors_free(list, n);
}

gw_status_t gw_policies_attach(gw_config_t *cfg, gw_config_errors_t *errs)
{
    json_t *policies = json_object_get(cfg->doc, "policies"), *providers = json_object_get(cfg->doc, "providers");
    pol_set_t *set = NULL;
    char **list = NULL;
    size_t n = 0, i;
    const char **prov_names, **channels;
    const char *key;
    json_t *val;
    gw_status_t st;

    if (policies == NULL)
        policies = json_object();
    else
        json_incref(policies);
    st = pol_set_load(policies, cfg->path, &set, &list, &n);
    json_decref(policies);
    if (st != GW_OK) {
        take_errors(errs, list, n);
        return GW_EINVAL;
    }
    /* names used in rules must exist: a misspelt provider in a deny rule would silently never match */
    prov_names = calloc(json_object_size(providers) + 1, sizeof(*prov_names));
    channels = calloc(cfg->num_routes + 2, sizeof(*channels));
    i = 0;
    json_object_foreach(providers, key, val) prov_names[i++] = key;
    for (i = 0; i < cfg->num_routes; ++i)
        channels[i] = cfg->routes[i].channel;
    /* the console evaluates its roles' policies with the channel "console" (console_session.c) */
    if (cfg->has_console)
        channels[i] = "console";
    list = NULL;
    n = 0;
    st = pol_set_check_names(set, prov_names, channels, &list, &n);
    free(prov_names);
    free(channels);
    if (st != GW_OK) {
        take_errors(errs, list, n);
        pol_set_destroy(set);
        return GW_EINVAL;
    }
    cfg->policies = set;
    cfg->policies_free = destroy;
    return GW_OK;
}
