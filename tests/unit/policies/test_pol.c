/* Unit tests: policy loading (errors name the file, rule and line), rule evaluation (table-driven:
 * tricky emails, hd, step-up, first match, default deny, emails files), explanations, the shipped
 * examples. */
#include "pol.h"

#include "../check_run.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CID "c_aaaaaaaaaaaaaaaaaaaaaaaa"        /* a customer id nobody lists */
#define CID_LISTED "c_bbbbbbbbbbbbbbbbbbbbbbbb" /* listed in emails.txt */

static char tmpdir[256];
static char config_path[320];

/* ------------------------------------------------------------------ fixtures */

/* fixtures are made before Check runs: failures here end the program */
static void die(const char *what, const char *path)
{
    fprintf(stderr, "test_pol fixtures: %s %s: %s\n", what, path, strerror(errno));
    exit(EXIT_FAILURE);
}

static void fixture_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);

    if (n < 0 || (size_t)n >= cap)
        die("path too long:", name);
}

static void write_file(const char *name, const char *content)
{
    char path[512];
    FILE *fp;

    fixture_path(path, sizeof(path), name);
    if ((fp = fopen(path, "w")) == NULL || fputs(content, fp) < 0 || fclose(fp) != 0)
        die("cannot write", path);
}

static void make_dir(const char *name)
{
    char path[512];

    fixture_path(path, sizeof(path), name);
    if (mkdir(path, 0700) != 0)
        die("mkdir", path);
}

/* a file of `lines` copies of `line` (and `extra` at the end) */
static void write_repeated(const char *name, const char *line, int lines, const char *extra)
{
    char path[512];
    FILE *fp;

    fixture_path(path, sizeof(path), name);
    if ((fp = fopen(path, "w")) == NULL)
        die("cannot write", path);
    for (int i = 0; i < lines; ++i)
        if (fputs(line, fp) < 0)
            die("cannot write", path);
    if (fputs(extra, fp) < 0 || fclose(fp) != 0)
        die("cannot write", path);
}

static void make_fixtures(void)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    int n;

    n = snprintf(tmpdir, sizeof(tmpdir), "%s/jg-test-pol-XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof(tmpdir) || mkdtemp(tmpdir) == NULL)
        die("mkdtemp in", base);
    /* the configuration file itself need not exist: only its directory is used */
    fixture_path(config_path, sizeof(config_path), "config.json");
    write_file("emails.txt", "# staff allow-list\n"
                             "\n" CID_LISTED "\n"
                             "   Listed@Example.com  \r\n"
                             "# commented@example.com\n"
                             "\t\n"
                             "other@example.org");
    write_file("bad-emails.txt", "# header\n"             /* 1 */
                                 "\n"                     /* 2 */
                                 "ok@example.com\n"       /* 3 */
                                 "not-an-email\n"         /* 4 */
                                 "c_short\n"              /* 5 */
                                 "a@b@example.com\n"      /* 6 */
                                 "  spaced@example.com\n" /* 7: fine, blanks trimmed */
                                 "@example.com\n"         /* 8 */
                                 "x y@example.com\n");    /* 9 */
    make_dir("sub");
    write_file("sub/staff.json", "{\"description\": \"from a file\", \"rules\": [\n"
                                 "  {\"allow\": {\"hd\": [\"example.com\"], \"emails_file\": \"staff.txt\"}}\n"
                                 "]}\n");
    write_file("sub/staff.txt", "ann@example.com\n");
    write_file("pol-bad.json", "{\"rules\": [{\"allow\": {}}, {\"deny\": {\"methods\": [\"get\"]}}]}");
    write_file("pol-broken.json", "{\"rules\": [\n  {\"allow\": {}},,\n]}");
    write_file("pol-dup.json", "{\"rules\": [{\"deny\": {}}], \"rules\": [{\"allow\": {}}]}");
    write_file("pol-array.json", "[{\"allow\": {}}]");
    write_file("pol-nested.json", "\"other.json\"");
    make_dir("adir");
    /* one byte over the 1 MiB cap */
    write_repeated("huge.txt", "a@example.com  \n", 1024 * 1024 / 16, "\n");
    /* 500 bad lines: errors are capped, the rest counted */
    write_repeated("many-bad.txt", "nope\n", 500, "");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_fixtures(void)
{
    if (tmpdir[0] != '\0')
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* loads {"p": {"rules": RULES}} or fails the test */
static pol_set_t *load_rules(const char *rules_json)
{
    json_error_t jerr;
    json_t *rules = json_loads(rules_json, 0, &jerr), *doc;
    pol_set_t *s = NULL;
    char **errs = NULL;
    size_t n = 0;
    gw_status_t st;

    ck_assert_msg(rules != NULL, "test table JSON: %s: %s", rules_json, jerr.text);
    doc = json_pack("{s:{s:o}}", "p", "rules", rules);
    st = pol_set_load(doc, config_path, &s, &errs, &n);
    ck_assert_msg(st == GW_OK, "%s: %s", rules_json, n > 0 ? errs[0] : gw_status_str(st));
    ck_assert_ptr_null(errs);
    ck_assert_uint_eq(n, 0);
    json_decref(doc);
    return s;
}

/* ------------------------------------------------------------------ evaluation table */

/* facts, positionally: signed_in, provider, email, email_verified, hd, customer_id, linked_providers,
 * channel, method, session_age_s */
#define F(si, prov, em, ver, hd, cid, linked, ch, m, age)                                                              \
    {                                                                                                                  \
        si, prov, em, ver, hd, cid, linked, ch, m, age                                                                 \
    }
#define ANON F(0, NULL, NULL, 0, NULL, NULL, 0, "web", "GET", -1)
#define GOOGLE(email, verified) F(1, "google", email, verified, NULL, CID, 1, "web", "GET", 60)
#define GOOGLE_HD(email, hd) F(1, "google", email, 1, hd, CID, 1, "web", "GET", 60)
#define AGED(age) F(1, "google", "ann@example.com", 1, NULL, CID, 1, "web", "GET", age)
#define WITH_ID(cid, email, verified) F(1, "google", email, verified, NULL, cid, 1, "web", "GET", 60)

static const struct eval_case {
    const char *what;
    const char *rules;
    pol_facts_t facts;
    pol_outcome_t want;
    int rule;
} eval_cases[] = {
    /* default deny, first match, empty conditions */
    {"no rules, anonymous", "[]", ANON, POL_DENY, -1},
    {"no rules, signed in", "[]", GOOGLE("ann@example.com", 1), POL_DENY, -1},
    {"empty conditions match anonymous", "[{\"allow\": {}}]", ANON, POL_ALLOW, 0},
    {"empty conditions match signed in", "[{\"allow\": {}}]", GOOGLE("ann@example.com", 1), POL_ALLOW, 0},
    {"deny before allow", "[{\"deny\": {}}, {\"allow\": {}}]", GOOGLE("ann@example.com", 1), POL_DENY, 0},
    {"allow before deny", "[{\"allow\": {\"signed_in\": true}}, {\"deny\": {}}]", GOOGLE("ann@example.com", 1),
     POL_ALLOW, 0},
    {"falls through to a later deny", "[{\"allow\": {\"signed_in\": true}}, {\"deny\": {}}]", ANON, POL_DENY, 1},
    {"a deny that does not match is not a decision", "[{\"deny\": {\"signed_in\": true}}]", ANON, POL_DENY, -1},
    {"second rule decides", "[{\"allow\": {\"providers\": [\"facebook\"]}}, {\"allow\": {\"signed_in\": true}}]",
     GOOGLE("ann@example.com", 1), POL_ALLOW, 1},
    {"signed_in false matches anonymous", "[{\"allow\": {\"signed_in\": false}}]", ANON, POL_ALLOW, 0},
    {"signed_in false refuses a session", "[{\"allow\": {\"signed_in\": false}}]", GOOGLE("ann@example.com", 1),
     POL_DENY, -1},
    {"signed_in true refuses anonymous", "[{\"allow\": {\"signed_in\": true}}]", ANON, POL_DENY, -1},

    /* email_domain: the exact domain after the only '@' of a verified email, case-insensitive */
    {"domain matches", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE("ann@example.com", 1), POL_ALLOW,
     0},
    {"second domain of the list", "[{\"allow\": {\"email_domain\": [\"example.org\", \"example.com\"]}}]",
     GOOGLE("ann@example.com", 1), POL_ALLOW, 0},
    {"upper-case email domain", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE("Ann@EXAMPLE.COM", 1),
     POL_ALLOW, 0},
    {"upper-case configured domain", "[{\"allow\": {\"email_domain\": [\"EXAMPLE.Com\"]}}]",
     GOOGLE("ann@example.com", 1), POL_ALLOW, 0},
    {"two '@' never match the last domain", "[{\"allow\": {\"email_domain\": [\"evil.com\"]}}]",
     GOOGLE("a@b@evil.com", 1), POL_DENY, -1},
    {"two '@' never match the first domain", "[{\"allow\": {\"email_domain\": [\"b\"]}}]", GOOGLE("a@b@evil.com", 1),
     POL_DENY, -1},
    {"two '@' never match, even a domain list that would", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@evil.com@example.com", 1), POL_DENY, -1},
    {"two '@' do not escape a deny either (it just does not match)",
     "[{\"deny\": {\"email_domain\": [\"evil.com\"]}}, {\"allow\": {}}]", GOOGLE("a@b@evil.com", 1), POL_ALLOW, 1},
    {"unverified email never satisfies a domain", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@example.com", 0), POL_DENY, -1},
    {"empty local part", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE("@example.com", 1), POL_DENY,
     -1},
    {"empty domain", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE("ann@", 1), POL_DENY, -1},
    {"no '@'", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE("example.com", 1), POL_DENY, -1},
    {"no email", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE(NULL, 1), POL_DENY, -1},
    {"subdomain is not the domain", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@mail.example.com", 1), POL_DENY, -1},
    {"suffix is not the domain", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@notexample.com", 1), POL_DENY, -1},
    {"domain as a prefix", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@example.com.evil.net", 1), POL_DENY, -1},
    {"trailing dot", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]", GOOGLE("ann@example.com.", 1), POL_DENY,
     -1},
    {"anonymous with an email fact", "[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     F(0, NULL, "ann@example.com", 1, NULL, NULL, 0, "web", "GET", -1), POL_DENY, -1},

    /* email_verified */
    {"deny unverified: unverified", "[{\"deny\": {\"email_verified\": false}}, {\"allow\": {}}]",
     GOOGLE("ann@example.com", 0), POL_DENY, 0},
    {"deny unverified: no email at all", "[{\"deny\": {\"email_verified\": false}}, {\"allow\": {}}]", GOOGLE(NULL, 0),
     POL_DENY, 0},
    {"deny unverified: verified passes", "[{\"deny\": {\"email_verified\": false}}, {\"allow\": {}}]",
     GOOGLE("ann@example.com", 1), POL_ALLOW, 1},
    {"deny unverified: anonymous is not matched by a session condition",
     "[{\"deny\": {\"email_verified\": false}}, {\"allow\": {}}]", ANON, POL_ALLOW, 1},
    {"email_verified true", "[{\"allow\": {\"email_verified\": true}}]", GOOGLE("ann@example.com", 1), POL_ALLOW, 0},
    {"email_verified true, verified flag without an email", "[{\"allow\": {\"email_verified\": true}}]",
     GOOGLE(NULL, 1), POL_DENY, -1},

    /* hd: exact, case-insensitive, from the signed claim */
    {"hd matches", "[{\"allow\": {\"hd\": [\"example.com\"]}}]", GOOGLE_HD("ann@example.com", "example.com"), POL_ALLOW,
     0},
    {"hd upper-case", "[{\"allow\": {\"hd\": [\"example.com\"]}}]", GOOGLE_HD("ann@example.com", "Example.COM"),
     POL_ALLOW, 0},
    {"hd absent (consumer account)", "[{\"allow\": {\"hd\": [\"example.com\"]}}]", GOOGLE_HD("ann@example.com", NULL),
     POL_DENY, -1},
    {"hd empty", "[{\"allow\": {\"hd\": [\"example.com\"]}}]", GOOGLE_HD("ann@example.com", ""), POL_DENY, -1},
    {"hd subdomain", "[{\"allow\": {\"hd\": [\"example.com\"]}}]", GOOGLE_HD("ann@example.com", "eu.example.com"),
     POL_DENY, -1},
    {"hd and email_domain both needed: other email domain",
     "[{\"allow\": {\"hd\": [\"example.com\"], \"email_domain\": [\"example.com\"]}}]",
     GOOGLE_HD("ann@gmail.com", "example.com"), POL_DENY, -1},
    {"hd and email_domain both hold", "[{\"allow\": {\"hd\": [\"example.com\"], \"email_domain\": [\"example.com\"]}}]",
     GOOGLE_HD("ann@example.com", "example.com"), POL_ALLOW, 0},
    {"hd without a session", "[{\"allow\": {\"hd\": [\"example.com\"]}}]",
     F(0, NULL, NULL, 0, "example.com", NULL, 0, "web", "GET", -1), POL_DENY, -1},

    /* providers, channels, methods: exact */
    {"provider listed", "[{\"allow\": {\"providers\": [\"facebook\", \"google\"]}}]", GOOGLE("ann@example.com", 1),
     POL_ALLOW, 0},
    {"provider not listed", "[{\"allow\": {\"providers\": [\"facebook\"]}}]", GOOGLE("ann@example.com", 1), POL_DENY,
     -1},
    {"provider names are exact", "[{\"allow\": {\"providers\": [\"Google\"]}}]", GOOGLE("ann@example.com", 1), POL_DENY,
     -1},
    {"no provider", "[{\"allow\": {\"providers\": [\"google\"]}}]",
     F(1, NULL, "ann@example.com", 1, NULL, CID, 1, "web", "GET", 60), POL_DENY, -1},
    {"method listed, anonymous", "[{\"allow\": {\"methods\": [\"GET\", \"HEAD\"]}}]", ANON, POL_ALLOW, 0},
    {"method not listed", "[{\"allow\": {\"methods\": [\"GET\", \"HEAD\"]}}]",
     F(0, NULL, NULL, 0, NULL, NULL, 0, "web", "POST", -1), POL_DENY, -1},
    {"methods are case-sensitive", "[{\"allow\": {\"methods\": [\"GET\"]}}]",
     F(0, NULL, NULL, 0, NULL, NULL, 0, "web", "get", -1), POL_DENY, -1},
    {"no method", "[{\"allow\": {\"methods\": [\"GET\"]}}]", F(0, NULL, NULL, 0, NULL, NULL, 0, "web", NULL, -1),
     POL_DENY, -1},
    {"channel listed", "[{\"allow\": {\"channels\": [\"mobile\"]}}]",
     F(0, NULL, NULL, 0, NULL, NULL, 0, "mobile", "GET", -1), POL_ALLOW, 0},
    {"channel not listed", "[{\"allow\": {\"channels\": [\"mobile\"]}}]", ANON, POL_DENY, -1},

    /* min_linked_providers */
    {"too few linked", "[{\"allow\": {\"min_linked_providers\": 2}}]", GOOGLE("ann@example.com", 1), POL_DENY, -1},
    {"enough linked", "[{\"allow\": {\"min_linked_providers\": 2}}]",
     F(1, "google", "ann@example.com", 1, NULL, CID, 2, "web", "GET", 60), POL_ALLOW, 0},
    {"linked count without a session", "[{\"allow\": {\"min_linked_providers\": 2}}]",
     F(0, NULL, NULL, 0, NULL, NULL, 3, "web", "GET", -1), POL_DENY, -1},

    /* max_session_age_s: step-up in allow rules, a plain condition in deny rules */
    {"fresh session", "[{\"allow\": {\"signed_in\": true, \"max_session_age_s\": 300}}]", AGED(60), POL_ALLOW, 0},
    {"age at the limit", "[{\"allow\": {\"signed_in\": true, \"max_session_age_s\": 300}}]", AGED(300), POL_ALLOW, 0},
    {"one second too old: step-up", "[{\"allow\": {\"signed_in\": true, \"max_session_age_s\": 300}}]", AGED(301),
     POL_STEP_UP, 0},
    {"unknown age while signed in: step-up", "[{\"allow\": {\"signed_in\": true, \"max_session_age_s\": 300}}]",
     AGED(-1), POL_STEP_UP, 0},
    {"anonymous is no step-up", "[{\"allow\": {\"max_session_age_s\": 300}}]", ANON, POL_DENY, -1},
    {"no step-up when another condition fails",
     "[{\"allow\": {\"providers\": [\"facebook\"], \"max_session_age_s\": 300}}]", AGED(900), POL_DENY, -1},
    {"step-up decides: later allow not reached",
     "[{\"allow\": {\"max_session_age_s\": 300}}, {\"allow\": {\"signed_in\": true}}]", AGED(900), POL_STEP_UP, 0},
    {"earlier deny wins over step-up",
     "[{\"deny\": {\"providers\": [\"google\"]}}, {\"allow\": {\"max_session_age_s\": 300}}]", AGED(900), POL_DENY, 0},
    {"deny rule: fresh session matches", "[{\"deny\": {\"max_session_age_s\": 300}}, {\"allow\": {}}]", AGED(60),
     POL_DENY, 0},
    {"deny rule: old session moves on", "[{\"deny\": {\"max_session_age_s\": 300}}, {\"allow\": {}}]", AGED(900),
     POL_ALLOW, 1},

    /* emails_file: by customer id, or by verified email (case-insensitive) */
    {"listed customer id", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]", WITH_ID(CID_LISTED, NULL, 0), POL_ALLOW,
     0},
    {"listed id, unlisted unverified email", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID_LISTED, "zed@example.com", 0), POL_ALLOW, 0},
    {"listed verified email", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]", WITH_ID(CID, "listed@example.com", 1),
     POL_ALLOW, 0},
    {"listed email, other case", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID, "LISTED@EXAMPLE.COM", 1), POL_ALLOW, 0},
    {"last line without a newline", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID, "other@example.org", 1), POL_ALLOW, 0},
    {"listed email, unverified", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID, "listed@example.com", 0), POL_DENY, -1},
    {"commented-out email", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID, "commented@example.com", 1), POL_DENY, -1},
    {"unlisted", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]", WITH_ID(CID, "zed@example.com", 1), POL_DENY, -1},
    {"listed email with a second '@'", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID, "x@listed@example.com", 1), POL_DENY, -1},
    {"listed id without a session", "[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     F(0, NULL, NULL, 0, NULL, CID_LISTED, 0, "web", "GET", -1), POL_DENY, -1},
    {"deny list by id", "[{\"deny\": {\"emails_file\": \"emails.txt\"}}, {\"allow\": {\"signed_in\": true}}]",
     WITH_ID(CID_LISTED, NULL, 0), POL_DENY, 0},
    {"absolute emails_file path is kept", NULL, WITH_ID(CID, "listed@example.com", 1), POL_ALLOW, 0},
};

START_TEST(test_pol_eval_table)
{
    const struct eval_case *c = &eval_cases[_i];
    char rules[1024];
    pol_set_t *s;
    pol_decision_t d;

    if (c->rules == NULL) /* the rules need the temporary directory's absolute path */
        ck_assert_int_lt(snprintf(rules, sizeof(rules), "[{\"allow\": {\"emails_file\": \"%s/emails.txt\"}}]", tmpdir),
                         (int)sizeof(rules));
    else
        ck_assert_int_lt(snprintf(rules, sizeof(rules), "%s", c->rules), (int)sizeof(rules));
    s = load_rules(rules);
    d = pol_eval(s, "p", &c->facts);
    ck_assert_msg(d.outcome == c->want && d.rule == c->rule, "%s: %s on %s: want %s by rule %d, got %s by rule %d",
                  c->what, rules, c->facts.email != NULL ? c->facts.email : "(no email)", pol_outcome_str(c->want),
                  c->rule, pol_outcome_str(d.outcome), d.rule);
    ck_assert_str_eq(d.policy, "p");
    pol_set_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ load errors table */

static const struct error_case {
    const char *policies; /* the "policies" object; "@" is replaced by the temporary directory */
    const char *want[3];  /* substrings that must each appear in one error ("@" as above) */
    size_t count;         /* exact number of errors, 0: at least one */
} error_cases[] = {
    {"{\"p\": {\"rules\": [{\"permit\": {}}]}}",
     {"@/config.json: policies.p.rules[0]: must be exactly one of {\"allow\": {...}} or {\"deny\": {...}}"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {}, \"deny\": {}}]}}",
     {"@/config.json: policies.p.rules[0]: must be exactly"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": []}]}}", {"policies.p.rules[0].allow: must be an object of conditions"}, 1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"colour\": \"red\"}}]}}",
     {"@/config.json: policies.p.rules[0].allow.colour: unknown condition"},
     1},
    {"{\"p\": {\"rules\": [{\"deny\": {\"signed_in\": \"yes\"}}]}}",
     {"@/config.json: policies.p.rules[0].deny.signed_in: must be true or false"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {}}, {\"allow\": {\"email_domain\": [\"example.com\", \"b@evil.com\"]}}]}}",
     {"policies.p.rules[1].allow.email_domain[1]: \"b@evil.com\" is an email address, not a domain"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"email_domain\": [\"*.example.com\"]}}]}}",
     {"policies.p.rules[0].allow.email_domain[0]: \"*.example.com\" has a wildcard"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"hd\": [\".example.com\"]}}]}}", {"policies.p.rules[0].allow.hd[0]:"}, 1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"email_domain\": []}}]}}",
     {"policies.p.rules[0].allow.email_domain: must be a non-empty list"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"providers\": [\"google\", 7]}}]}}",
     {"policies.p.rules[0].allow.providers[1]: must be a non-empty string"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"methods\": [\"get\"]}}]}}",
     {"policies.p.rules[0].allow.methods[0]: \"get\" must be an upper-case HTTP method"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"min_linked_providers\": 0}}]}}",
     {"policies.p.rules[0].allow.min_linked_providers: must be an integer between 1 and 16"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"max_session_age_s\": \"300\"}}]}}",
     {"policies.p.rules[0].allow.max_session_age_s: must be an integer"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"signed_in\": false, \"providers\": [\"google\"]}}]}}",
     {"policies.p.rules[0].allow.signed_in: can never match: providers needs a signed-in session"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"email_verified\": false, \"email_domain\": [\"example.com\"]}}]}}",
     {"policies.p.rules[0].allow.email_verified: can never match"},
     1},
    {"{\"p\": {\"rules\": {}}}", {"@/config.json: policies.p.rules: must be a list"}, 1},
    {"{\"p\": {}}", {"@/config.json: policies.p.rules: must be a list"}, 1},
    {"{\"p\": {\"rules\": [], \"owner\": \"x\"}}", {"@/config.json: policies.p.owner: unknown key"}, 1},
    {"{\"p\": {\"rules\": [], \"description\": 5}}", {"policies.p.description: must be a string"}, 1},
    {"{\"p\": 42}", {"@/config.json: policies.p: must be a policy object"}, 1},
    {"{\"\": {\"rules\": []}}", {"policy name must not be empty"}, 1},
    {"[1]", {"@/config.json: policies: must be an object of name -> policy"}, 1},
    /* every error of every policy is reported */
    {"{\"a\": {\"rules\": [{\"allow\": {\"signed_in\": 1, \"methods\": [\"post\"]}}]}, \"b\": {\"rules\": [{}]}}",
     {"policies.a.rules[0].allow.signed_in:", "policies.a.rules[0].allow.methods[0]:", "policies.b.rules[0]:"},
     3},
    /* files */
    {"{\"p\": \"missing.json\"}",
     {"@/config.json: policies.p: cannot read policy file @/missing.json: No such file or directory"},
     1},
    {"{\"p\": \"adir\"}", {"@/config.json: policies.p: cannot read policy file @/adir: not a regular file"}, 1},
    {"{\"p\": \"\"}", {"@/config.json: policies.p: must be the path of a policy file"}, 1},
    {"{\"p\": \"pol-bad.json\"}", {"@/pol-bad.json: policies.p.rules[1].deny.methods[0]: \"get\" must be"}, 1},
    {"{\"p\": \"pol-broken.json\"}", {"@/pol-broken.json:2:", "policies.p: invalid JSON"}, 1},
    {"{\"p\": \"pol-dup.json\"}", {"@/pol-dup.json:", "policies.p: invalid JSON", "duplicate"}, 1},
    {"{\"p\": \"pol-array.json\"}", {"@/pol-array.json: policies.p: a policy file must hold an object"}, 1},
    {"{\"p\": \"pol-nested.json\"}", {"@/pol-nested.json: policies.p: a policy file must hold an object"}, 1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"emails_file\": \"nope.txt\"}}]}}",
     {"@/config.json: policies.p.rules[0].allow.emails_file: cannot read @/nope.txt: No such file or directory"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"emails_file\": 3}}]}}",
     {"policies.p.rules[0].allow.emails_file: must be the path of a file"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"emails_file\": \"huge.txt\"}}]}}",
     {"policies.p.rules[0].allow.emails_file: cannot read @/huge.txt: larger than the 1 MiB limit"},
     1},
    {"{\"p\": {\"rules\": [{\"allow\": {\"emails_file\": \"adir\"}}]}}",
     {"policies.p.rules[0].allow.emails_file: cannot read @/adir: not a regular file"},
     1},
    /* emails file: each bad line named by file and line number */
    {"{\"p\": {\"rules\": [{\"allow\": {}}, {\"deny\": {\"emails_file\": \"bad-emails.txt\"}}]}}",
     {"@/bad-emails.txt:4: policies.p.rules[1].deny.emails_file: neither a customer id (c_...) nor an email address",
      "@/bad-emails.txt:5: policies.p.rules[1].deny.emails_file: not a customer id",
      "@/bad-emails.txt:6: policies.p.rules[1].deny.emails_file: not an email address: it needs exactly one '@'"},
     5},
    {"{\"p\": {\"rules\": [{\"allow\": {\"emails_file\": \"bad-emails.txt\"}}]}}",
     {"@/bad-emails.txt:8: policies.p.rules[0].allow.emails_file: not an email address",
      "@/bad-emails.txt:9: policies.p.rules[0].allow.emails_file: an email address must not contain blanks"},
     5},
    /* errors are capped; the rest are counted in a last line */
    {"{\"p\": {\"rules\": [{\"allow\": {\"emails_file\": \"many-bad.txt\"}}]}}",
     {"@/many-bad.txt:1: policies.p", "@/many-bad.txt:200: policies.p", "policies: 300 more errors not shown"},
     201},
};

/* s with every "@" replaced by the temporary directory */
static void expand(char *out, size_t cap, const char *s)
{
    size_t n = 0, dl = strlen(tmpdir);

    for (; *s != '\0'; ++s) {
        if (*s == '@' && s[1] == '/') {
            ck_assert_uint_lt(n + dl, cap);
            memcpy(out + n, tmpdir, dl);
            n += dl;
        } else {
            ck_assert_uint_lt(n + 1, cap);
            out[n++] = *s;
        }
    }
    out[n] = '\0';
}

START_TEST(test_pol_load_errors_table)
{
    const struct error_case *c = &error_cases[_i];
    json_error_t jerr;
    json_t *doc = json_loads(c->policies, JSON_DECODE_ANY, &jerr);
    pol_set_t *s = (pol_set_t *)&jerr; /* sentinel: must stay untouched */
    char **errs = NULL, want[1024];
    size_t n = 0, i, k;
    gw_status_t st;

    ck_assert_msg(doc != NULL, "test table JSON: %s", jerr.text);
    st = pol_set_load(doc, config_path, &s, &errs, &n);
    ck_assert_msg(st == GW_EINVAL, "%s: loaded", c->policies);
    ck_assert_ptr_eq(s, (pol_set_t *)&jerr);
    ck_assert_ptr_nonnull(errs);
    if (c->count > 0)
        ck_assert_msg(n == c->count, "%s: want %zu errors, got %zu (first: %s)", c->policies, c->count, n, errs[0]);
    for (k = 0; k < 3 && c->want[k] != NULL; ++k) {
        expand(want, sizeof(want), c->want[k]);
        for (i = 0; i < n && strstr(errs[i], want) == NULL; ++i)
            ;
        ck_assert_msg(i < n, "%s: no error contains '%s'; first: '%s'", c->policies, want, errs[0]);
    }
    pol_errors_free(errs, n);
    json_decref(doc);
}
END_TEST

/* ------------------------------------------------------------------ files and API edges */

START_TEST(test_pol_set_string_entry_loads_file)
{
    /* a relative policy path is taken from the config's directory, the policy's emails_file from
     * the policy file's directory (sub/staff.json -> sub/staff.txt) */
    char abs[512];
    json_t *doc;
    pol_set_t *s = NULL;
    char **errs = NULL;
    size_t n = 0;
    pol_facts_t ann = GOOGLE_HD("ann@example.com", "example.com");
    pol_facts_t bob = GOOGLE_HD("bob@example.com", "example.com");
    char *text;

    snprintf(abs, sizeof(abs), "%s/sub/staff.json", tmpdir);
    doc = json_pack("{s:s, s:s}", "staff", "sub/staff.json", "again", abs);
    ck_assert_int_eq(pol_set_load(doc, config_path, &s, &errs, &n), GW_OK);
    ck_assert_int_eq(pol_set_has(s, "staff"), 1);
    ck_assert_int_eq(pol_set_has(s, "again"), 1);
    ck_assert_int_eq(pol_set_has(s, "other"), 0);
    ck_assert_int_eq(pol_eval(s, "staff", &ann).outcome, POL_ALLOW);
    ck_assert_int_eq(pol_eval(s, "again", &ann).outcome, POL_ALLOW);
    ck_assert_int_eq(pol_eval(s, "staff", &bob).outcome, POL_DENY);
    /* the explanation names the file the policy came from and its description */
    text = pol_explain(s, "staff", &ann);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "/sub/staff.json"));
    ck_assert_ptr_nonnull(strstr(text, "description: \"from a file\""));
    free(text);
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

START_TEST(test_pol_set_edges)
{
    pol_set_t *s = NULL;
    pol_facts_t f = GOOGLE("ann@example.com", 1);
    pol_decision_t d;
    json_t *doc;

    /* no policies at all: an empty set, every lookup denies */
    ck_assert_int_eq(pol_set_load(NULL, NULL, &s, NULL, NULL), GW_OK);
    ck_assert_int_eq(pol_set_has(s, "p"), 0);
    d = pol_eval(s, "p", &f);
    ck_assert_int_eq(d.outcome, POL_DENY);
    ck_assert_int_eq(d.rule, -1);
    ck_assert_ptr_null(d.policy);
    pol_set_destroy(s);
    s = NULL;
    /* errors without an error list: still refused */
    doc = json_pack("{s:i}", "p", 1);
    ck_assert_int_eq(pol_set_load(doc, NULL, &s, NULL, NULL), GW_EINVAL);
    ck_assert_ptr_null(s);
    json_decref(doc);
    /* unknown policy, NULL arguments: deny */
    s = load_rules("[{\"allow\": {}}]");
    d = pol_eval(s, "q", &f);
    ck_assert_int_eq(d.outcome, POL_DENY);
    ck_assert_ptr_null(d.policy);
    ck_assert_int_eq(pol_eval(s, NULL, &f).outcome, POL_DENY);
    ck_assert_int_eq(pol_eval(s, "p", NULL).outcome, POL_DENY);
    ck_assert_int_eq(pol_eval(NULL, "p", &f).outcome, POL_DENY);
    ck_assert_int_eq(pol_set_has(NULL, "p"), 0);
    ck_assert_int_eq(pol_set_has(s, NULL), 0);
    ck_assert_int_eq(pol_eval(s, "p", &f).outcome, POL_ALLOW);
    pol_set_destroy(s);
    pol_set_destroy(NULL);
    pol_errors_free(NULL, 0);
    ck_assert_str_eq(pol_outcome_str(POL_STEP_UP), "step_up");
}
END_TEST

START_TEST(test_pol_set_many_policies_lookup)
{
    /* lookups by name in a set of many (sorted, binary search) */
    json_t *doc = json_object();
    pol_set_t *s = NULL;
    pol_facts_t f = ANON;
    char name[32];

    for (int i = 0; i < 100; ++i) {
        snprintf(name, sizeof(name), "policy-%03d", (i * 37) % 100);
        json_object_set_new(doc, name, json_pack("{s:[{s:{}}]}", "rules", i % 2 == 0 ? "allow" : "deny"));
    }
    ck_assert_int_eq(pol_set_load(doc, config_path, &s, NULL, NULL), GW_OK);
    for (int i = 0; i < 100; ++i) {
        pol_decision_t d;
        snprintf(name, sizeof(name), "policy-%03d", (i * 37) % 100);
        d = pol_eval(s, name, &f);
        ck_assert_str_eq(d.policy, name);
        ck_assert_int_eq(d.outcome, i % 2 == 0 ? POL_ALLOW : POL_DENY);
        ck_assert_int_eq(d.rule, 0);
    }
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

START_TEST(test_pol_set_check_names)
{
    static const char *const providers[] = {"google", "facebook", NULL};
    static const char *const channels[] = {"web", "mobile", NULL};
    pol_set_t *s = NULL;
    char **errs = NULL;
    size_t n = 0;
    json_t *doc = json_pack("{s:s, s:{s:[{s:{s:[s,s]}}, {s:{s:[s], s:[s, s]}}]}}", "staff", "sub/staff.json", "p",
                            "rules", "deny", "providers", "facebok", "google", "allow", "providers", "google",
                            "channels", "web", "contact-centre");

    ck_assert_int_eq(pol_set_load(doc, config_path, &s, NULL, NULL), GW_OK);
    ck_assert_int_eq(pol_set_check_names(s, providers, channels, &errs, &n), GW_EINVAL);
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(errs[0], "/config.json: policies.p.rules[0].deny.providers[0]: no provider named "
                                          "\"facebok\" in the configuration"));
    ck_assert_ptr_nonnull(strstr(
        errs[1], "/config.json: policies.p.rules[1].allow.channels[1]: no route has the channel \"contact-centre\""));
    pol_errors_free(errs, n);
    /* a NULL list skips that check */
    ck_assert_int_eq(pol_set_check_names(s, NULL, NULL, &errs, &n), GW_OK);
    ck_assert_ptr_null(errs);
    ck_assert_uint_eq(n, 0);
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

START_TEST(test_pol_eval_cost)
{
    /* measured and printed, never asserted: a 20-rule policy whose last rule decides */
    enum { N = 200000 };
    json_t *rules = json_array(), *doc;
    pol_set_t *s = NULL;
    pol_facts_t f = GOOGLE_HD("ann@example.com", "example.com");
    struct timespec t0, t1;
    int allowed = 0;

    for (int i = 0; i < 19; ++i)
        json_array_append_new(rules, json_pack("{s:{s:[s], s:[s, s]}}", i % 2 ? "allow" : "deny", "email_domain",
                                               "example.org", "methods", "GET", "POST"));
    json_array_append_new(rules, json_pack("{s:{s:b, s:[s], s:[s], s:i}}", "allow", "signed_in", 1, "hd", "example.com",
                                           "email_domain", "example.com", "max_session_age_s", 3600));
    doc = json_pack("{s:{s:o}}", "p", "rules", rules);
    ck_assert_int_eq(pol_set_load(doc, config_path, &s, NULL, NULL), GW_OK);
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    for (int i = 0; i < N; ++i)
        allowed += pol_eval(s, "p", &f).outcome == POL_ALLOW;
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    ck_assert_int_eq(allowed, N);
    printf("eval cost: %.0f ns per decision (20 rules, the last one decides)\n",
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N);
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

/* ------------------------------------------------------------------ explanations */

static const struct explain_case {
    const char *rules;
    pol_facts_t facts;
    const char *want[3];
} explain_cases[] = {
    {"[]",
     ANON,
     {"facts: not signed in; channel \"web\", method \"GET\"", "decision: deny: no rule matched (default deny)"}},
    {"[{\"allow\": {\"email_domain\": [\"evil.com\"]}}]",
     GOOGLE("a@b@evil.com", 1),
     {"rule 0: {\"allow\":{\"email_domain\":[\"evil.com\"]}}", "email_domain: the email is not a plain address",
      "decision: deny: no rule matched"}},
    {"[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@example.com", 0),
     {"email \"ann@example.com\" (not verified)", "email_domain: the email is not verified"}},
    {"[{\"allow\": {\"email_domain\": [\"example.com\"]}}]",
     GOOGLE("ann@example.org", 1),
     {"email_domain: \"example.org\" is not listed"}},
    {"[{\"allow\": {\"signed_in\": true, \"max_session_age_s\": 300}}]",
     AGED(900),
     {"all conditions hold except the session age", "max_session_age_s: signed in 900 s ago, more than 300 s",
      "decision: step_up by rule 0"}},
    {"[{\"deny\": {\"providers\": [\"facebook\"]}}, {\"allow\": {}}, {\"deny\": {}}, {\"deny\": {}}]",
     GOOGLE("ann@example.com", 1),
     {"providers: \"google\" is not listed", "rules 2 to 3: not evaluated", "decision: allow by rule 1"}},
    {"[{\"allow\": {\"emails_file\": \"emails.txt\"}}]",
     WITH_ID(CID, "listed@example.com", 0),
     {"emails_file: the email is listed but not verified"}},
    {"[{\"allow\": {\"hd\": [\"example.com\"]}}]",
     GOOGLE_HD("ann@example.com", NULL),
     {"hd: no hd claim (not a Google Workspace account)"}},
    /* facts come from providers: quotes and control characters are escaped */
    {"[]", GOOGLE("evil\"\n@example.com", 1), {"email \"evil\\x22\\x0a@example.com\""}},
};

START_TEST(test_pol_explain_table)
{
    const struct explain_case *c = &explain_cases[_i];
    pol_set_t *s = load_rules(c->rules);
    char *text = pol_explain(s, "p", &c->facts);

    ck_assert_ptr_nonnull(text);
    for (int k = 0; k < 3 && c->want[k] != NULL; ++k)
        ck_assert_msg(strstr(text, c->want[k]) != NULL, "explanation lacks '%s':\n%s", c->want[k], text);
    free(text);
    pol_set_destroy(s);
}
END_TEST

START_TEST(test_pol_explain_unknown_policy)
{
    pol_set_t *s = load_rules("[]");
    pol_facts_t f = ANON;
    char *text = pol_explain(s, "nope", &f);

    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "policy \"nope\": no such policy"));
    ck_assert_ptr_nonnull(strstr(text, "decision: deny"));
    free(text);
    pol_set_destroy(s);
}
END_TEST

/* ------------------------------------------------------------------ shipped examples */

static const struct example_case {
    const char *policy;
    pol_facts_t facts;
    pol_outcome_t want;
    int rule;
} example_cases[] = {
    {"public", ANON, POL_ALLOW, 0},
    {"public", F(0, NULL, NULL, 0, NULL, NULL, 0, "web", "POST", -1), POL_DENY, -1},
    {"public", F(1, "facebook", NULL, 0, NULL, CID, 1, "web", "POST", 60), POL_ALLOW, 1},
    {"customers", ANON, POL_DENY, -1},
    {"customers", F(1, "facebook", NULL, 0, NULL, CID, 1, "mobile", "POST", 60), POL_ALLOW, 0},
    {"staff-workspace", GOOGLE_HD("ann@example.com", "example.com"), POL_ALLOW, 0},
    {"staff-workspace", GOOGLE_HD("ann@example.com", NULL), POL_DENY, -1},
    {"staff-workspace", GOOGLE_HD("ann@gmail.com", "example.com"), POL_DENY, -1},
    {"staff-workspace", F(1, "facebook", "ann@example.com", 1, "example.com", CID, 1, "web", "GET", 60), POL_DENY, -1},
    {"staff-workspace", GOOGLE("alex.contractor@partner.example", 1), POL_ALLOW, 1},
    {"staff-workspace", GOOGLE("alex.contractor@partner.example", 0), POL_DENY, -1},
    {"staff-workspace", WITH_ID("c_aaaabbbbccccddddeeeeffff", NULL, 0), POL_ALLOW, 1},
    {"account-step-up", ANON, POL_DENY, -1},
    {"account-step-up", AGED(120), POL_ALLOW, 1},
    {"account-step-up", AGED(301), POL_STEP_UP, 1},
    {"account-step-up", F(1, "google", "ann@example.com", 0, NULL, CID, 1, "web", "GET", 10), POL_DENY, 0},
};

START_TEST(test_pol_examples_table)
{
    const struct example_case *c = &example_cases[_i];
    /* as a configuration in policies/ would name them; config.json itself is not read */
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "public", "examples/public.json", "customers",
                            "examples/customers.json", "staff-workspace", "examples/staff-workspace.json",
                            "account-step-up", "examples/account-step-up.json");
    pol_set_t *s = NULL;
    char **errs = NULL;
    size_t n = 0;
    pol_decision_t d;

    ck_assert_msg(pol_set_load(doc, POL_SOURCE_DIR "/config.json", &s, &errs, &n) == GW_OK, "examples: %s",
                  n > 0 ? errs[0] : "?");
    d = pol_eval(s, c->policy, &c->facts);
    ck_assert_msg(d.outcome == c->want && d.rule == c->rule, "example %d (%s): want %s by %d, got %s by %d", _i,
                  c->policy, pol_outcome_str(c->want), c->rule, pol_outcome_str(d.outcome), d.rule);
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

/* how long a decision may be reused: until the session age at which time alone can change it */
START_TEST(test_pol_stable_until_age)
{
    json_t *doc = json_pack("{s:s, s:s, s:s}", "public", "examples/public.json", "customers", "examples/customers.json",
                            "account-step-up", "examples/account-step-up.json");
    pol_set_t *s = NULL;

    ck_assert_int_eq(pol_set_load(doc, POL_SOURCE_DIR "/config.json", &s, NULL, NULL), GW_OK);
    ck_assert(pol_stable_until_age(s, "public", 0) == INT64_MAX);
    ck_assert(pol_stable_until_age(s, "customers", 100000) == INT64_MAX);
    ck_assert(pol_stable_until_age(s, "account-step-up", 0) == 301); /* max_session_age_s 300 */
    ck_assert(pol_stable_until_age(s, "account-step-up", 300) == 301);
    ck_assert(pol_stable_until_age(s, "account-step-up", 301) == INT64_MAX); /* too old for good */
    ck_assert(pol_stable_until_age(s, "nope", 0) == -1);                     /* unknown: never reuse */
    ck_assert(pol_stable_until_age(s, "public", -1) == -1);                  /* no session age */
    ck_assert(pol_stable_until_age(NULL, "public", 0) == -1);
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

/* over every age: the decision is the same at each age before the one pol_stable_until_age() names */
START_TEST(test_pol_stable_until_age_holds)
{
    json_t *doc = json_loads("{\"p\": {\"rules\": ["
                             "{\"deny\": {\"methods\": [\"DELETE\"], \"max_session_age_s\": 30}},"
                             "{\"allow\": {\"methods\": [\"GET\"], \"max_session_age_s\": 60}},"
                             "{\"allow\": {\"max_session_age_s\": 600}},"
                             "{\"deny\": {\"signed_in\": true}}]}}",
                             0, NULL);
    static const char *const methods[] = {"GET", "POST", "DELETE"};
    pol_set_t *s = NULL;
    int changes = 0;

    ck_assert_ptr_nonnull(doc);
    ck_assert_int_eq(pol_set_load(doc, NULL, &s, NULL, NULL), GW_OK);
    for (size_t m = 0; m < 3; ++m) {
        for (int64_t age = 0; age <= 700; ++age) {
            pol_facts_t f = {
                .signed_in = 1, .provider = "google", .channel = "web", .method = methods[m], .session_age_s = age};
            pol_decision_t d = pol_eval(s, "p", &f), e;
            int64_t until = pol_stable_until_age(s, "p", age);
            ck_assert(until > age);
            for (int64_t later = age + 1; later < until && later <= 700; ++later) {
                f.session_age_s = later;
                e = pol_eval(s, "p", &f);
                ck_assert_msg(e.outcome == d.outcome && e.rule == d.rule, "%s: age %lld vs %lld", methods[m],
                              (long long)age, (long long)later);
            }
            if (until <= 700) {
                f.session_age_s = until;
                e = pol_eval(s, "p", &f);
                changes += e.outcome != d.outcome || e.rule != d.rule;
            }
        }
    }
    ck_assert_int_gt(changes, 0); /* the thresholds named are real ones */
    ck_assert(pol_stable_until_age(s, "p", 0) == 31);
    ck_assert(pol_stable_until_age(s, "p", 31) == 61);
    ck_assert(pol_stable_until_age(s, "p", 61) == 601);
    ck_assert(pol_stable_until_age(s, "p", 601) == INT64_MAX);
    pol_set_destroy(s);
    json_decref(doc);
}
END_TEST

/* ------------------------------------------------------------------ concurrency */

typedef struct eval_thread {
    const pol_set_t *s;
    int mismatches;
} eval_thread_t;

static void *eval_worker(void *arg)
{
    eval_thread_t *t = arg;
    pol_facts_t fresh = AGED(10), old = AGED(1000), anon = ANON;

    for (int i = 0; i < 20000; ++i) {
        t->mismatches += pol_eval(t->s, "p", &fresh).outcome != POL_ALLOW;
        t->mismatches += pol_eval(t->s, "p", &old).outcome != POL_STEP_UP;
        t->mismatches += pol_eval(t->s, "p", &anon).outcome != POL_DENY;
    }
    return NULL;
}

START_TEST(test_pol_eval_concurrent)
{
    /* one set, four threads, no lock: the answers never vary (ASan/TSan builds watch the memory) */
    pol_set_t *s = load_rules("[{\"deny\": {\"providers\": [\"facebook\"]}}, {\"allow\": {\"emails_file\": "
                              "\"emails.txt\"}}, {\"allow\": {\"signed_in\": true, \"max_session_age_s\": 300}}]");
    pthread_t th[4];
    eval_thread_t t[4];

    for (int i = 0; i < 4; ++i) {
        t[i] = (eval_thread_t){s, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, eval_worker, &t[i]), 0);
    }
    for (int i = 0; i < 4; ++i) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(t[i].mismatches, 0);
    }
    pol_set_destroy(s);
}
END_TEST

static Suite *pol_suite(void)
{
    Suite *s = suite_create("pol");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_pol_eval_table, 0, sizeof(eval_cases) / sizeof(eval_cases[0]));
    tcase_add_loop_test(tc, test_pol_load_errors_table, 0, sizeof(error_cases) / sizeof(error_cases[0]));
    tcase_add_test(tc, test_pol_set_string_entry_loads_file);
    tcase_add_test(tc, test_pol_set_edges);
    tcase_add_test(tc, test_pol_set_many_policies_lookup);
    tcase_add_test(tc, test_pol_set_check_names);
    tcase_add_test(tc, test_pol_eval_cost);
    tcase_add_loop_test(tc, test_pol_explain_table, 0, sizeof(explain_cases) / sizeof(explain_cases[0]));
    tcase_add_test(tc, test_pol_explain_unknown_policy);
    tcase_add_loop_test(tc, test_pol_examples_table, 0, sizeof(example_cases) / sizeof(example_cases[0]));
    tcase_add_test(tc, test_pol_eval_concurrent);
    tcase_add_test(tc, test_pol_stable_until_age);
    tcase_add_test(tc, test_pol_stable_until_age_holds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int status;

    gw_log_threshold = GW_LOG_ERROR;
    make_fixtures();
    status = jg_check_run(pol_suite());
    remove_fixtures();
    return status;
}
