/*
 * libFuzzer target: policies. The input is a "policies" object (name -> {rules, description}),
 * optionally followed by a NUL and an email address to decide on. Loading either succeeds with
 * no message or refuses with messages naming the policy; each loaded policy is decided and
 * explained for a handful of signed-in and anonymous facts, and the decisions keep their
 * promises: a known outcome and rule, anonymous requests never step up, an unknown policy denies,
 * and a decision holds for every session age before the one pol_stable_until_age() names.
 */
#include "pol.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const pol_set_t *s, const char *name, const pol_facts_t *f)
{
    pol_decision_t d = pol_eval(s, name, f), e;
    char *why;
    int64_t until;

    if (d.outcome != POL_ALLOW && d.outcome != POL_DENY && d.outcome != POL_STEP_UP)
        abort();
    if (d.rule < -1 || (d.outcome != POL_DENY && d.rule < 0) || (!f->signed_in && d.outcome == POL_STEP_UP))
        abort();
    if ((why = pol_explain(s, name, f)) == NULL)
        abort();
    free(why);
    if (!f->signed_in)
        return;
    until = pol_stable_until_age(s, name, f->session_age_s);
    if (until != INT64_MAX) {
        pol_facts_t later = *f;
        if (until <= f->session_age_s)
            abort();
        later.session_age_s = until - 1;
        e = pol_eval(s, name, &later);
        if (e.outcome != d.outcome || e.rule != d.rule)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    size_t jlen = nul != NULL ? (size_t)(nul - (const char *)data) : size;
    char *email = nul != NULL ? strndup(nul + 1, size - jlen - 1) : strdup("ann@example.com");
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, jlen, JSON_REJECT_DUPLICATES, &jerr), *v;
    pol_set_t *s = NULL;
    char **errs = NULL;
    size_t n = 0;
    const char *name;
    gw_status_t st;

    if (doc == NULL || email == NULL) {
        json_decref(doc);
        free(email);
        return 0;
    }
    st = pol_set_load(doc, NULL, &s, &errs, &n);
    if (st == GW_OK) {
        if (s == NULL || n != 0)
            abort();
    } else if (st == GW_EINVAL) {
        if (s != NULL || n == 0)
            abort();
        for (size_t i = 0; i < n; ++i)
            if (errs[i] == NULL || strstr(errs[i], "policies") == NULL)
                abort();
    } else if (st != GW_ENOMEM) {
        abort();
    }
    pol_errors_free(errs, n);
    if (s != NULL) {
        static const char *const methods[] = {"GET", "POST", "DELETE"};
        static const int64_t ages[] = {0, 59, 300, 3601};
        json_object_foreach(doc, name, v)
        {
            for (size_t m = 0; m < 3; ++m) {
                pol_facts_t anon = {.signed_in = 0, .channel = "web", .method = methods[m], .session_age_s = -1};
                check(s, name, &anon);
                for (size_t a = 0; a < 4; ++a) {
                    pol_facts_t f = {.signed_in = 1,
                                     .provider = a % 2 ? "google" : "facebook",
                                     .email = email,
                                     .email_verified = (int)(a < 2),
                                     .hd = a == 1 ? "example.com" : NULL,
                                     .customer_id = "c_aaaaaaaaaaaaaaaaaaaaaaaa",
                                     .linked_providers = (unsigned)a,
                                     .channel = a == 3 ? "mobile" : "web",
                                     .method = methods[m],
                                     .session_age_s = ages[a]};
                    check(s, name, &f);
                }
            }
        }
        {
            pol_facts_t f = {.signed_in = 1, .email = email, .method = "GET", .session_age_s = 0};
            pol_decision_t d = pol_eval(s, "\x01no such policy", &f);
            if (d.outcome != POL_DENY || d.rule != -1)
                abort();
        }
        pol_set_destroy(s);
    }
    json_decref(doc);
    free(email);
    return 0;
}
