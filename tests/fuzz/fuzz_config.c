/*
 * libFuzzer target: a configuration document, from its JSON on (what `journeygate check-config`
 * and every reload validate). Whatever it holds, validation either accepts it with no message,
 * or refuses it with messages that each name the file first; it never crashes or leaks, and an
 * accepted snapshot is released cleanly.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define LABEL "fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    gw_config_t *cfg = NULL;
    gw_config_errors_t errs = {NULL, 0};
    gw_status_t st;

    if (doc == NULL)
        return 0;
    st = gw_config_from_json(doc, LABEL, &cfg, &errs);
    if (st == GW_OK) {
        if (cfg == NULL || errs.count != 0)
            abort();
        gw_config_unref(cfg);
    } else if (st == GW_EINVAL) {
        if (cfg != NULL || errs.count == 0)
            abort();
        for (size_t i = 0; i < errs.count; ++i)
            if (errs.msgs[i] == NULL || strncmp(errs.msgs[i], LABEL ": ", sizeof(LABEL ": ") - 1) != 0)
                abort();
    } else if (st != GW_ENOMEM) {
        abort();
    }
    gw_config_errors_clear(&errs);
    json_decref(doc);
    return 0;
}
