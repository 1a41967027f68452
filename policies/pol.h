/*
 * journeygate — policies: who may reach what (this header) and the signed identity an upstream
 * can verify (pol_assert.h, included below so this stays the module's one public header).
 *
 * A policy is an ordered list of allow/deny rules: the first rule whose conditions all hold
 * decides, and when none does the answer is deny. A policy set is loaded once from the
 * configuration's "policies" object, validated completely (every error reported), and is
 * immutable afterwards: pol_eval() and pol_explain() may run on any number of threads at once
 * without locks. A configuration reload loads a new set; whoever owns the configuration snapshot
 * owns its set and destroys it with the snapshot. policies/README.md states the semantics.
 */
#ifndef POL_H
#define POL_H

#include "gw.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "pol_assert.h"

/** A loaded policy set (opaque). Immutable once loaded; safe to evaluate from many threads. */
typedef struct pol_set pol_set_t;

/**
 * What a decision is made on. Every pointer is borrowed for the duration of the call only and
 * may be NULL. The caller fills it from the session and the route: `hd` must come from the
 * signature-checked ID token, `channel` from the route's configuration and `method` from the
 * request line — never from client-supplied headers.
 */
typedef struct pol_facts {
    int signed_in;
    const char *provider;      /* provider name of this session, or NULL */
    const char *email;         /* or NULL */
    int email_verified;        /* the provider vouches for `email` */
    const char *hd;            /* Google Workspace domain from the signed ID token, or NULL */
    const char *customer_id;   /* or NULL */
    unsigned linked_providers; /* identities linked to the customer */
    const char *channel;       /* the route's channel */
    const char *method;        /* HTTP method, as on the request line (case-sensitive) */
    int64_t session_age_s;     /* seconds since sign-in, -1 when not signed in */
} pol_facts_t;

typedef enum pol_outcome {
    POL_ALLOW,   /* pass the request on */
    POL_DENY,    /* 403, or the sign-in page / 401 when not signed in */
    POL_STEP_UP, /* signed in, but too long ago: send the browser back through its provider */
} pol_outcome_t;

typedef struct pol_decision {
    pol_outcome_t outcome;
    const char *policy; /* the set's copy of the policy name (valid while the set lives); NULL: no such policy */
    int rule;           /* index of the deciding rule, -1 = default deny (no rule matched, or no such policy) */
} pol_decision_t;

/**
 * Loads and validates a policy set.
 *
 * policies: the configuration's "policies" object (borrowed; may be NULL for "no policies"):
 *   name -> {"rules": [...], "description"?: "..."} or name -> "path/to/policy.json" holding that
 *   object. Relative policy file paths are taken from the directory of config_path; an
 *   `emails_file` inside a policy is taken from the directory of the file that policy came from.
 * config_path: the configuration file, used to resolve paths and to label errors (may be NULL).
 * out: on GW_OK, the new set (free with pol_set_destroy()); untouched otherwise.
 * errors, num_errors (both may be NULL): on GW_EINVAL, every problem found, each
 *   "FILE: policies.NAME.rules[i].allow.KEY: message" (emails files: "FILE:LINE: ...: message");
 *   an array of malloc'ed strings the caller frees with pol_errors_free(). On GW_OK: NULL and 0.
 * Returns GW_OK, GW_EINVAL (see errors), or GW_ENOMEM. Reads files; do not call on an event loop.
 */
gw_status_t pol_set_load(json_t *policies, const char *config_path, pol_set_t **out, char ***errors,
                         size_t *num_errors);

/**
 * Cross-checks the names a set's rules mention against the configuration: every `providers` entry
 * must be in `providers` and every `channels` entry in `channels` (NULL-terminated lists; a NULL list
 * skips that check). A misspelt name would make its rule silently never match, which in a deny rule
 * lets through what the reviewer thought was refused. On GW_EINVAL, errors and num_errors (may be
 * NULL) receive every problem as pol_set_load() reports them ("FILE: policies.NAME.rules[i].deny.
 * providers[j]: no provider named \"x\" in the configuration"); free them with pol_errors_free().
 * Returns GW_OK, GW_EINVAL or GW_ENOMEM. Thread-safe (reads the set only).
 */
gw_status_t pol_set_check_names(const pol_set_t *s, const char *const *providers, const char *const *channels,
                                char ***errors, size_t *num_errors);

/** Frees a set. NULL is a no-op. No evaluation may be running on it. */
void pol_set_destroy(pol_set_t *s);

/** Frees the error list returned by pol_set_load(). NULL is a no-op. */
void pol_errors_free(char **errors, size_t num_errors);

/** 1 when the set has a policy of that name, else 0 (also for NULL arguments). Thread-safe. */
int pol_set_has(const pol_set_t *s, const char *name);

/**
 * How long a decision of the policy for a session of age age_s (seconds since sign-in) holds
 * while the other facts stay the same: the session age at which it may first change (a rule's
 * max_session_age_s stops holding one second after it), INT64_MAX when nothing in the policy
 * depends on time, or -1 when the policy is unknown or age_s < 0 (do not reuse). Thread-safe.
 */
int64_t pol_stable_until_age(const pol_set_t *s, const char *name, int64_t age_s);

/**
 * Decides a request. First matching rule wins; no match, an unknown policy or NULL arguments deny
 * (fail closed). Does not allocate, log or block. Thread-safe.
 */
pol_decision_t pol_eval(const pol_set_t *s, const char *policy, const pol_facts_t *f);

/**
 * A human explanation of pol_eval()'s decision for `journeygate policy explain` and the console's
 * explain (gateway/console/console_security.c: security staff only, and recorded in the audit trail
 * before it is shown): the facts, each rule tried with why it did or did not match, and the decision.
 * It shows personal data (the email) and the rules' internals: never for a customer's answer or a log.
 * Returns a malloc'ed string the caller frees with free(), or NULL when out of memory. Thread-safe.
 */
char *pol_explain(const pol_set_t *s, const char *policy, const pol_facts_t *f);

/** "allow", "deny" or "step_up". Never NULL. */
const char *pol_outcome_str(pol_outcome_t o);

#endif
