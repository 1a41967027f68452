/*
 * journeygate — the policy engine: loading and validating policies, evaluating them, explaining a
 * decision.
 *
 * Invariants once pol_set_load() returns a set:
 * - every string in it is owned by the set, every list is non-empty, domains are lower-case ASCII;
 * - nothing in it changes until pol_set_destroy(), so evaluation needs no lock;
 * - pol_eval() and pol_explain() share one condition check (cond_check), so the explanation can
 *   never disagree with the decision.
 */
#include "pol.h"
#include "pol_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ERRORS 200     /* messages kept; the rest are counted */
#define MAX_RULES 10000    /* per policy; keeps rule indexes in an int */
#define MAX_ENTRY_LEN 320  /* one entry of an emails file (an address is at most 254) */
#define MAX_DOMAIN_LEN 253 /* RFC 1035 */
#define MAX_METHOD_LEN 32  /* longer is no HTTP method anyone uses */
#define MAX_LINKED 16      /* as gateway/config.c */
#define MAX_AGE_S (100LL * 365 * 86400)
#define CUSTOMER_ID_LEN 26 /* "c_" + 24 base32 characters, as the store makes them (STORE_ID_LEN) */

/* Conditions, in the order a rule checks them: cheap facts of the request first, session age last
 * (an allow rule that fails only on it asks for step-up instead of moving on). */
typedef enum cond {
    C_SIGNED_IN,
    C_CHANNELS,
    C_METHODS,
    C_PROVIDERS,
    C_EMAIL_VERIFIED,
    C_EMAIL_DOMAIN,
    C_HD,
    C_EMAILS_FILE,
    C_MIN_LINKED,
    C_MAX_AGE,
    C_COUNT
} cond_t;

static const char *const cond_names[C_COUNT] = {
    "signed_in",
    "channels",
    "methods",
    "providers",
    "email_verified",
    "email_domain",
    "hd",
    "emails_file",
    "min_linked_providers",
    "max_session_age_s",
};

#define BIT(c) (1u << (c))
/* conditions about the signed-in identity: without a session they never hold */
#define SESSION_CONDS                                                                                                  \
    (BIT(C_PROVIDERS) | BIT(C_EMAIL_VERIFIED) | BIT(C_EMAIL_DOMAIN) | BIT(C_HD) | BIT(C_EMAILS_FILE) |                 \
     BIT(C_MIN_LINKED) | BIT(C_MAX_AGE))

typedef struct strlist {
    char **items;
    size_t count;
} strlist_t;

/* an emails_file, loaded once: both lists sorted for bsearch */
typedef struct emails {
    char *file;      /* resolved path, for explanations */
    strlist_t ids;   /* customer ids, compared exactly */
    strlist_t addrs; /* email addresses, compared ASCII case-insensitively */
} emails_t;

typedef struct rule {
    int deny;
    unsigned have; /* BIT(cond) for every condition the rule sets */
    int signed_in;
    int email_verified;
    strlist_t channels, methods, providers, domains, hds;
    emails_t emails;
    unsigned min_linked;
    int64_t max_age_s;
    char *text; /* the rule as written (compact JSON), for explanations */
} rule_t;

typedef struct policy {
    char *name;
    char *source;      /* the file the policy came from */
    char *description; /* or NULL */
    rule_t *rules;
    size_t num_rules;
} policy_t;

struct pol_set {
    policy_t *policies; /* sorted by name */
    size_t count;
};

/* why a condition does not hold (WHY_OK: it does) */
typedef enum why {
    WHY_OK = 0,
    WHY_NO_SESSION,
    WHY_WRONG,      /* a boolean condition wants the other value */
    WHY_ABSENT,     /* the fact it needs is missing */
    WHY_UNVERIFIED, /* the email is not verified */
    WHY_MALFORMED,  /* the email is not a plain address */
    WHY_NOT_LISTED,
    WHY_TOO_FEW,
    WHY_TOO_OLD,
    WHY_AGE_UNKNOWN,
} why_t;

/* ------------------------------------------------------------------ helpers */

int pol_ascii_casecmp(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    int x, y;

    for (;; ++p, ++q) {
        x = *p >= 'A' && *p <= 'Z' ? *p + ('a' - 'A') : *p;
        y = *q >= 'A' && *q <= 'Z' ? *q + ('a' - 'A') : *q;
        if (x != y || x == 0)
            return x - y;
    }
}

static void ascii_lower(char *s)
{
    for (; *s != '\0'; ++s)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + ('a' - 'A'));
}

gw_status_t pol_file_read(const char *path, size_t max_bytes, char **out, size_t *out_len, int *os_error)
{
    gw_status_t st = GW_EIO;
    struct stat sb;
    char *buf = NULL, *grown;
    size_t len = 0, cap, ncap;
    ssize_t n;
    int fd = -1, err = 0;

    /* O_NONBLOCK: opening a FIFO must not hang the loader; it is refused below as not regular */
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
        err = errno;
        st = err == ENOENT ? GW_ENOTFOUND : GW_EIO;
        goto Exit;
    }
    if (fstat(fd, &sb) != 0) {
        err = errno;
        goto Exit;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = GW_EINVAL;
        goto Exit;
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > max_bytes) {
        st = GW_ETOOBIG;
        goto Exit;
    }
    /* one byte more than the size: a read of 0 there confirms the end; a file growing meanwhile
     * is read on, up to the cap */
    cap = (size_t)sb.st_size + 1;
    if ((buf = malloc(cap + 1)) == NULL) {
        st = GW_ENOMEM;
        goto Exit;
    }
    for (;;) {
        if (len == cap) {
            if (cap > max_bytes) {
                st = GW_ETOOBIG;
                goto Exit;
            }
            ncap = cap > (max_bytes + 1) / 2 ? max_bytes + 1 : cap * 2;
            if ((grown = realloc(buf, ncap + 1)) == NULL) {
                st = GW_ENOMEM;
                goto Exit;
            }
            buf = grown;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            goto Exit;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max_bytes) {
        st = GW_ETOOBIG;
        goto Exit;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    st = GW_OK;
Exit:
    if (fd >= 0 && close(fd) != 0 && st == GW_OK)
        GW_LOG_WARNING("policy", "close(%s): %s", path, strerror(errno));
    free(buf);
    *os_error = err;
    return st;
}

/* path relative to the directory of base_file (absolute paths and a NULL base are kept); malloc'ed */
static char *path_resolve(const char *base_file, const char *path)
{
    const char *slash = base_file != NULL ? strrchr(base_file, '/') : NULL;
    size_t dirlen, plen = strlen(path);
    char *out;

    if (path[0] == '/' || slash == NULL)
        return strdup(path);
    dirlen = (size_t)(slash - base_file);
    if (plen > SIZE_MAX - dirlen - 2)
        return NULL;
    if ((out = malloc(dirlen + plen + 2)) == NULL)
        return NULL;
    memcpy(out, base_file, dirlen);
    out[dirlen] = '/';
    memcpy(out + dirlen + 1, path, plen + 1);
    return out;
}

/* the domain of a plain address — exactly one '@', text on both sides — or NULL */
static const char *email_domain_of(const char *email)
{
    const char *at = strchr(email, '@');

    if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return NULL;
    return at + 1;
}

static void strlist_clear(strlist_t *l)
{
    for (size_t i = 0; i < l->count; ++i)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_str_nocase(const void *a, const void *b)
{
    return pol_ascii_casecmp(*(char *const *)a, *(char *const *)b);
}

/* exact membership; lists of domains hold lower-case names and are given lower-cased facts */
static int in_list(const strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->count; ++i)
        if (strcmp(l->items[i], s) == 0)
            return 1;
    return 0;
}

static int in_sorted(const strlist_t *l, const char *s, int nocase)
{
    return l->count > 0 && bsearch(&s, l->items, l->count, sizeof(*l->items), nocase ? cmp_str_nocase : cmp_str);
}

/* ------------------------------------------------------------------ errors */

typedef struct errs {
    char **msgs;
    size_t count;
    size_t dropped; /* errors past MAX_ERRORS */
    int failed;
    int nomem;
} errs_t;

static void errs_add(errs_t *e, int over_cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errs_add(errs_t *e, int over_cap, const char *fmt, ...)
{
    va_list ap;
    char *line = NULL, **grown;
    int n;

    e->failed = 1;
    if (e->count >= MAX_ERRORS && !over_cap) {
        e->dropped++;
        return;
    }
    va_start(ap, fmt);
    n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        e->nomem = 1;
        return;
    }
    if ((grown = realloc(e->msgs, (e->count + 1) * sizeof(*grown))) == NULL) {
        free(line);
        e->nomem = 1;
        return;
    }
    e->msgs = grown;
    e->msgs[e->count++] = line;
}

/* where a load step is: names the file and the configuration path in every message */
typedef struct lctx {
    errs_t *errs;
    const char *file; /* the file the policy text came from */
    const char *name; /* policy name */
    long rule;        /* rule index, or -1 */
    const char *kind; /* "allow", "deny" or NULL */
} lctx_t;

/* "policies.NAME[.rules[i][.KIND]][.KEY]"; malloc'ed or NULL */
static char *lpath(const lctx_t *c, const char *key)
{
    char *p = NULL;
    int n;

    if (c->rule < 0)
        n = asprintf(&p, "policies.%s%s%s", c->name, key != NULL ? "." : "", key != NULL ? key : "");
    else
        n = asprintf(&p, "policies.%s.rules[%ld]%s%s%s%s", c->name, c->rule, c->kind != NULL ? "." : "",
                     c->kind != NULL ? c->kind : "", key != NULL ? "." : "", key != NULL ? key : "");
    return n < 0 ? NULL : p;
}

static void lerr(const lctx_t *c, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void lerr(const lctx_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL, *path = lpath(c, key);
    int n;

    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0 || path == NULL)
        c->errs->nomem = 1;
    else
        errs_add(c->errs, 0, "%s: %s: %s", c->file, path, msg);
    if (n >= 0)
        free(msg);
    free(path);
}

/* a message about one line of a file a rule refers to: "FILE:LINE: policies...KEY: message" */
static void lerr_line(const lctx_t *c, const char *key, const char *file, size_t line, const char *msg)
{
    char *path = lpath(c, key);

    if (path == NULL)
        c->errs->nomem = 1;
    else
        errs_add(c->errs, 0, "%s:%zu: %s: %s", file, line, path, msg);
    free(path);
}

static const char *file_problem(gw_status_t st, int os_error)
{
    switch (st) {
    case GW_EINVAL:
        return "not a regular file";
    case GW_ETOOBIG:
        return "larger than the 1 MiB limit";
    case GW_ENOMEM:
        return "out of memory";
    default:
        return strerror(os_error != 0 ? os_error : EIO);
    }
}

/* ------------------------------------------------------------------ loading */

/* NULL when s is an acceptable domain; lower-cases it in place */
static const char *domain_problem(char *s)
{
    size_t n = strlen(s);

    if (strchr(s, '@') != NULL)
        return "is an email address, not a domain (write the part after the '@')";
    if (strchr(s, '*') != NULL)
        return "has a wildcard: list each domain (a domain never matches its subdomains)";
    if (n > MAX_DOMAIN_LEN)
        return "is longer than 253 characters";
    if (s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
        return "must not start or end with '.' nor contain '..'";
    for (const char *p = s; *p != '\0'; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '.'))
            return "must be a domain name of ASCII letters, digits, '-' and '.' (use the xn-- form of "
                   "international names)";
    ascii_lower(s);
    return NULL;
}

static const char *method_problem(const char *s)
{
    size_t n = strlen(s);

    if (n > MAX_METHOD_LEN)
        return "is too long for an HTTP method";
    for (const char *p = s; *p != '\0'; ++p)
        if (*p < 'A' || *p > 'Z')
            return "must be an upper-case HTTP method such as GET or POST (methods are compared case-sensitively)";
    return NULL;
}

typedef enum listkind { L_NAME, L_DOMAIN, L_METHOD } listkind_t;

static void get_list(const lctx_t *c, const char *key, json_t *val, listkind_t kind, strlist_t *out)
{
    json_t *item;
    size_t i;
    char sub[64];
    const char *why;
    char *copy;

    if (!json_is_array(val) || json_array_size(val) == 0) {
        lerr(c, key, "must be a non-empty list of strings (an empty list would never match)");
        return;
    }
    if ((out->items = calloc(json_array_size(val), sizeof(*out->items))) == NULL) {
        c->errs->nomem = 1;
        return;
    }
    json_array_foreach(val, i, item)
    {
        if (snprintf(sub, sizeof(sub), "%s[%zu]", key, i) >= (int)sizeof(sub))
            sub[0] = '\0'; /* keys are our own short names: cannot happen */
        if (!json_is_string(item) || json_string_length(item) == 0 ||
            strlen(json_string_value(item)) != json_string_length(item)) {
            lerr(c, sub, "must be a non-empty string without NUL characters");
            continue;
        }
        if ((copy = strdup(json_string_value(item))) == NULL) {
            c->errs->nomem = 1;
            return;
        }
        out->items[out->count++] = copy;
        why = kind == L_DOMAIN ? domain_problem(copy) : kind == L_METHOD ? method_problem(copy) : NULL;
        if (why != NULL)
            lerr(c, sub, "\"%s\" %s", json_string_value(item), why);
    }
}

static int get_int(const lctx_t *c, const char *key, json_t *val, long long min, long long max, long long *out)
{
    if (!json_is_integer(val) || json_integer_value(val) < min || json_integer_value(val) > max) {
        lerr(c, key, "must be an integer between %lld and %lld", min, max);
        return 0;
    }
    *out = json_integer_value(val);
    return 1;
}

static int get_bool(const lctx_t *c, const char *key, json_t *val, int *out)
{
    if (!json_is_boolean(val)) {
        lerr(c, key, "must be true or false");
        return 0;
    }
    *out = json_is_true(val);
    return 1;
}

static int push(strlist_t *l, size_t *cap, char *s)
{
    char **grown;
    size_t ncap;

    if (l->count == *cap) {
        ncap = *cap == 0 ? 64 : *cap * 2;
        if (ncap > SIZE_MAX / sizeof(*grown) || (grown = realloc(l->items, ncap * sizeof(*grown))) == NULL)
            return 0;
        l->items = grown;
        *cap = ncap;
    }
    l->items[l->count++] = s;
    return 1;
}

static int is_customer_id(const char *s, size_t n)
{
    if (n != CUSTOMER_ID_LEN || s[0] != 'c' || s[1] != '_')
        return 0;
    for (size_t i = 2; i < n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '2' && s[i] <= '7')))
            return 0;
    return 1;
}

/* NULL when s (NUL-terminated, no surrounding blanks) is a plain address we can list */
static const char *address_problem(const char *s)
{
    char domain[MAX_DOMAIN_LEN + 2];
    const char *d = email_domain_of(s);
    size_t n;

    if (d == NULL)
        return "not an email address: it needs exactly one '@' with text on both sides";
    for (const char *p = s; *p != '\0'; ++p)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return "an email address must not contain blanks or control characters";
    if ((n = strlen(d)) > MAX_DOMAIN_LEN)
        return "the domain of this email address is too long";
    memcpy(domain, d, n + 1);
    if (domain_problem(domain) != NULL)
        return "the part after '@' is not a domain name";
    return NULL;
}

/* Parses an emails file: one customer id or email address per line; blank lines and lines whose
 * first non-blank character is '#' are skipped ('#' elsewhere is kept: it is legal in addresses). */
static void parse_emails(const lctx_t *c, const char *key, const char *file, char *buf, size_t len, emails_t *out)
{
    size_t line = 0, cap_ids = 0, cap_addrs = 0, n;
    char *p = buf, *end = buf + len, *eol, *s, *e, *copy;
    const char *why;

    while (p < end) {
        ++line;
        if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
            eol = end;
        if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
            lerr_line(c, key, file, line, "contains a NUL byte");
            p = eol + 1;
            continue;
        }
        for (s = p; s < eol && (*s == ' ' || *s == '\t' || *s == '\r'); ++s)
            ;
        for (e = eol; e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'); --e)
            ;
        p = eol + 1;
        if (s == e || *s == '#')
            continue;
        n = (size_t)(e - s);
        if (n > MAX_ENTRY_LEN) {
            lerr_line(c, key, file, line, "entry longer than 320 characters");
            continue;
        }
        *e = '\0'; /* the buffer is ours: terminate the entry in place */
        if (n >= 2 && s[0] == 'c' && s[1] == '_') {
            if (!is_customer_id(s, n)) {
                lerr_line(c, key, file, line, "not a customer id: c_ followed by 24 characters a-z or 2-7");
                continue;
            }
            if ((copy = strdup(s)) == NULL || !push(&out->ids, &cap_ids, copy)) {
                free(copy);
                c->errs->nomem = 1;
                return;
            }
        } else if ((why = address_problem(s)) != NULL) {
            lerr_line(c, key, file, line,
                      strchr(s, '@') != NULL ? why : "neither a customer id (c_...) nor an email address");
        } else {
            if ((copy = strdup(s)) == NULL || !push(&out->addrs, &cap_addrs, copy)) {
                free(copy);
                c->errs->nomem = 1;
                return;
            }
        }
    }
    if (out->ids.count > 0)
        qsort(out->ids.items, out->ids.count, sizeof(*out->ids.items), cmp_str);
    if (out->addrs.count > 0)
        qsort(out->addrs.items, out->addrs.count, sizeof(*out->addrs.items), cmp_str_nocase);
}

static void get_emails_file(const lctx_t *c, const char *key, json_t *val, const char *base_file, emails_t *out)
{
    char *buf = NULL;
    size_t len = 0;
    int os_error = 0;
    gw_status_t st;

    if (!json_is_string(val) || json_string_length(val) == 0 ||
        strlen(json_string_value(val)) != json_string_length(val)) {
        lerr(c, key, "must be the path of a file of customer ids or email addresses");
        return;
    }
    if ((out->file = path_resolve(base_file, json_string_value(val))) == NULL) {
        c->errs->nomem = 1;
        return;
    }
    if ((st = pol_file_read(out->file, POL_FILE_MAX_BYTES, &buf, &len, &os_error)) != GW_OK) {
        if (st == GW_ENOMEM)
            c->errs->nomem = 1;
        else
            lerr(c, key, "cannot read %s: %s", out->file, file_problem(st, os_error));
        return;
    }
    parse_emails(c, key, out->file, buf, len, out);
    free(buf);
}

static void load_rule(const lctx_t *pc, size_t index, json_t *rule, const char *base_file, rule_t *r)
{
    lctx_t c = *pc;
    json_t *cond, *allow, *val;
    const char *key;
    long long n;
    int k;

    c.rule = (long)index;
    if ((r->text = json_dumps(rule, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
        c.errs->nomem = 1;
        return;
    }
    allow = json_object_get(rule, "allow");
    cond = allow != NULL ? allow : json_object_get(rule, "deny");
    if (!json_is_object(rule) || json_object_size(rule) != 1 || cond == NULL) {
        lerr(&c, NULL, "must be exactly one of {\"allow\": {...}} or {\"deny\": {...}}");
        return;
    }
    r->deny = allow == NULL;
    c.kind = r->deny ? "deny" : "allow";
    if (!json_is_object(cond)) {
        lerr(&c, NULL, "must be an object of conditions ({} matches every request)");
        return;
    }
    json_object_foreach(cond, key, val)
    {
        for (k = 0; k < C_COUNT && strcmp(key, cond_names[k]) != 0; ++k)
            ;
        if (k == C_COUNT) {
            lerr(&c, key,
                 "unknown condition (known: signed_in, providers, email_domain, email_verified, hd, "
                 "emails_file, min_linked_providers, channels, methods, max_session_age_s)");
            continue;
        }
        r->have |= BIT(k);
        switch ((cond_t)k) {
        case C_SIGNED_IN:
            get_bool(&c, key, val, &r->signed_in);
            break;
        case C_EMAIL_VERIFIED:
            get_bool(&c, key, val, &r->email_verified);
            break;
        case C_CHANNELS:
            get_list(&c, key, val, L_NAME, &r->channels);
            break;
        case C_METHODS:
            get_list(&c, key, val, L_METHOD, &r->methods);
            break;
        case C_PROVIDERS:
            get_list(&c, key, val, L_NAME, &r->providers);
            break;
        case C_EMAIL_DOMAIN:
            get_list(&c, key, val, L_DOMAIN, &r->domains);
            break;
        case C_HD:
            get_list(&c, key, val, L_DOMAIN, &r->hds);
            break;
        case C_EMAILS_FILE:
            get_emails_file(&c, key, val, base_file, &r->emails);
            break;
        case C_MIN_LINKED:
            if (get_int(&c, key, val, 1, MAX_LINKED, &n))
                r->min_linked = (unsigned)n;
            break;
        case C_MAX_AGE:
            if (get_int(&c, key, val, 1, MAX_AGE_S, &n))
                r->max_age_s = n;
            break;
        case C_COUNT:
            break;
        }
    }
    /* rules that can never match are mistakes a reviewer would not spot */
    if ((r->have & BIT(C_SIGNED_IN)) && !r->signed_in && (r->have & SESSION_CONDS) != 0) {
        for (k = 0; k < C_COUNT && !(r->have & SESSION_CONDS & BIT(k)); ++k)
            ;
        lerr(&c, "signed_in", "can never match: %s needs a signed-in session", cond_names[k]);
    }
    if ((r->have & BIT(C_EMAIL_VERIFIED)) && !r->email_verified && (r->have & BIT(C_EMAIL_DOMAIN)))
        lerr(&c, "email_verified", "can never match: email_domain only holds for a verified email");
}

static void load_policy(errs_t *e, const char *config_label, const char *config_path, const char *name, json_t *val,
                        policy_t *p)
{
    lctx_t c = {e, config_label, name, -1, NULL};
    json_t *doc = NULL, *obj = val, *rules, *rule, *v;
    json_error_t jerr;
    char *file = NULL, *buf = NULL;
    const char *base = config_path, *key;
    size_t len = 0, i;
    int os_error = 0;
    gw_status_t st;

    if ((p->name = strdup(name)) == NULL) {
        e->nomem = 1;
        goto Exit;
    }
    if (name[0] == '\0') {
        lerr(&c, NULL, "a policy name must not be empty");
        goto Exit;
    }
    if (json_is_string(val)) {
        if (json_string_length(val) == 0 || strlen(json_string_value(val)) != json_string_length(val)) {
            lerr(&c, NULL, "must be the path of a policy file");
            goto Exit;
        }
        if ((file = path_resolve(config_path, json_string_value(val))) == NULL) {
            e->nomem = 1;
            goto Exit;
        }
        if ((st = pol_file_read(file, POL_FILE_MAX_BYTES, &buf, &len, &os_error)) != GW_OK) {
            if (st == GW_ENOMEM)
                e->nomem = 1;
            else
                lerr(&c, NULL, "cannot read policy file %s: %s", file, file_problem(st, os_error));
            goto Exit;
        }
        /* duplicate keys in a security policy hide a rule from its reader: refused */
        if ((doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr)) == NULL) {
            errs_add(e, 0, "%s:%d:%d: policies.%s: invalid JSON: %s", file, jerr.line, jerr.column, name, jerr.text);
            goto Exit;
        }
        obj = doc;
        c.file = base = file;
    }
    if ((p->source = strdup(c.file)) == NULL) {
        e->nomem = 1;
        goto Exit;
    }
    if (!json_is_object(obj)) {
        lerr(&c, NULL,
             doc != NULL ? "a policy file must hold an object {\"rules\": [...], \"description\"?: \"...\"}"
                         : "must be a policy object {\"rules\": [...]} or the path of a policy file");
        goto Exit;
    }
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "rules") != 0 && strcmp(key, "description") != 0)
            lerr(&c, key, "unknown key (a policy has \"rules\" and an optional \"description\")");
    }
    if ((v = json_object_get(obj, "description")) != NULL) {
        if (!json_is_string(v))
            lerr(&c, "description", "must be a string");
        else if ((p->description = strdup(json_string_value(v))) == NULL)
            e->nomem = 1;
    }
    rules = json_object_get(obj, "rules");
    if (!json_is_array(rules)) {
        lerr(&c, "rules", "must be a list of {\"allow\": {...}} or {\"deny\": {...}} rules");
        goto Exit;
    }
    if (json_array_size(rules) > MAX_RULES) {
        lerr(&c, "rules", "more than %d rules", MAX_RULES);
        goto Exit;
    }
    if (json_array_size(rules) > 0 && (p->rules = calloc(json_array_size(rules), sizeof(*p->rules))) == NULL) {
        e->nomem = 1;
        goto Exit;
    }
    json_array_foreach(rules, i, rule)
    {
        load_rule(&c, i, rule, base, &p->rules[i]);
        p->num_rules = i + 1;
    }
Exit:
    json_decref(doc);
    free(buf);
    free(file);
}

static void rule_clear(rule_t *r)
{
    strlist_clear(&r->channels);
    strlist_clear(&r->methods);
    strlist_clear(&r->providers);
    strlist_clear(&r->domains);
    strlist_clear(&r->hds);
    strlist_clear(&r->emails.ids);
    strlist_clear(&r->emails.addrs);
    free(r->emails.file);
    free(r->text);
}

void pol_set_destroy(pol_set_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; ++i) {
        policy_t *p = &s->policies[i];
        for (size_t j = 0; j < p->num_rules; ++j)
            rule_clear(&p->rules[j]);
        free(p->rules);
        free(p->name);
        free(p->source);
        free(p->description);
    }
    free(s->policies);
    free(s);
}

void pol_errors_free(char **errors, size_t num_errors)
{
    if (errors == NULL)
        return;
    for (size_t i = 0; i < num_errors; ++i)
        free(errors[i]);
    free(errors);
}

static int cmp_policy(const void *a, const void *b)
{
    return strcmp(((const policy_t *)a)->name, ((const policy_t *)b)->name);
}

gw_status_t pol_set_load(json_t *policies, const char *config_path, pol_set_t **out, char ***errors, size_t *num_errors)
{
    const char *label = config_path != NULL ? config_path : "<config>", *name;
    errs_t e = {NULL, 0, 0, 0, 0};
    pol_set_t *s = NULL;
    gw_status_t st = GW_ENOMEM;
    json_t *val;

    if (errors != NULL)
        *errors = NULL;
    if (num_errors != NULL)
        *num_errors = 0;
    if (out == NULL) {
        st = GW_EINVAL;
        goto Exit;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        goto Exit;
    if (policies != NULL && !json_is_null(policies)) {
        if (!json_is_object(policies)) {
            errs_add(&e, 0, "%s: policies: must be an object of name -> policy", label);
        } else if (json_object_size(policies) > 0) {
            if ((s->policies = calloc(json_object_size(policies), sizeof(*s->policies))) == NULL)
                goto Exit;
            json_object_foreach(policies, name, val)
            {
                load_policy(&e, label, config_path, name, val, &s->policies[s->count++]);
                if (e.nomem)
                    break;
            }
        }
    }
    if (e.nomem)
        goto Exit;
    if (e.failed) {
        if (e.dropped > 0)
            errs_add(&e, 1, "%s: policies: %zu more errors not shown", label, e.dropped);
        st = e.nomem ? GW_ENOMEM : GW_EINVAL;
        goto Exit;
    }
    if (s->count > 1)
        qsort(s->policies, s->count, sizeof(*s->policies), cmp_policy);
    *out = s;
    s = NULL;
    st = GW_OK;
Exit:
    if (st == GW_EINVAL && errors != NULL) {
        *errors = e.msgs;
        if (num_errors != NULL)
            *num_errors = e.count;
    } else {
        pol_errors_free(e.msgs, e.count);
    }
    pol_set_destroy(s);
    return st;
}

/* ------------------------------------------------------------------ evaluation */

static const policy_t *find_policy(const pol_set_t *s, const char *name)
{
    policy_t key;

    if (s == NULL || name == NULL || s->count == 0)
        return NULL;
    key.name = (char *)name; /* bsearch's key: only read */
    return bsearch(&key, s->policies, s->count, sizeof(*s->policies), cmp_policy);
}

int pol_set_has(const pol_set_t *s, const char *name)
{
    return find_policy(s, name) != NULL;
}

int64_t pol_stable_until_age(const pol_set_t *s, const char *name, int64_t age_s)
{
    const policy_t *p = find_policy(s, name);
    int64_t until = INT64_MAX;

    if (p == NULL || age_s < 0)
        return -1;
    /* age <= max holds up to age max and fails from max + 1 on; once failed it stays so */
    for (size_t i = 0; i < p->num_rules; ++i)
        if ((p->rules[i].have & BIT(C_MAX_AGE)) && p->rules[i].max_age_s >= age_s && p->rules[i].max_age_s < until)
            until = p->rules[i].max_age_s + 1;
    return until;
}

/*
 * What a decision derives from the facts, computed once per pol_eval() rather than once per rule:
 * the email's domain (when the email is a plain address) and hd, both lower-cased so that rules
 * compare them with strcmp against their lower-cased lists.
 */
typedef enum dstate { D_ABSENT, D_MALFORMED, D_TOO_LONG, D_OK } dstate_t;

typedef struct derived {
    const pol_facts_t *f;
    int verified; /* an email the provider vouches for */
    dstate_t domain_state, hd_state;
    char domain[MAX_DOMAIN_LEN + 1];
    char hd[MAX_DOMAIN_LEN + 1];
} derived_t;

/* lower-cased copy of s into out (MAX_DOMAIN_LEN + 1 bytes): longer values can equal no listed domain */
static dstate_t lower_copy(const char *s, char *out)
{
    size_t n = strlen(s);

    if (n > MAX_DOMAIN_LEN)
        return D_TOO_LONG;
    memcpy(out, s, n + 1);
    ascii_lower(out);
    return D_OK;
}

static void derive(const pol_facts_t *f, derived_t *x)
{
    const char *domain;

    x->f = f;
    x->verified = f->email != NULL && f->email_verified;
    x->domain_state = x->hd_state = D_ABSENT;
    if (f->email != NULL) {
        /* the exact domain after the only '@': "a@b@evil.com" is not an address at evil.com */
        domain = email_domain_of(f->email);
        x->domain_state = domain == NULL ? D_MALFORMED : lower_copy(domain, x->domain);
    }
    if (f->hd != NULL && f->hd[0] != '\0')
        x->hd_state = lower_copy(f->hd, x->hd);
}

/* Whether one condition of r holds. The one place a condition is decided. */
static why_t cond_check(const rule_t *r, cond_t c, const derived_t *x)
{
    const pol_facts_t *f = x->f;
    int listed;

    switch (c) {
    case C_SIGNED_IN:
        return (f->signed_in != 0) == (r->signed_in != 0) ? WHY_OK : WHY_WRONG;
    case C_CHANNELS:
        return f->channel == NULL ? WHY_ABSENT : in_list(&r->channels, f->channel) ? WHY_OK : WHY_NOT_LISTED;
    case C_METHODS:
        return f->method == NULL ? WHY_ABSENT : in_list(&r->methods, f->method) ? WHY_OK : WHY_NOT_LISTED;
    default:
        break;
    }
    if (!f->signed_in)
        return WHY_NO_SESSION;
    switch (c) {
    case C_PROVIDERS:
        return f->provider == NULL ? WHY_ABSENT : in_list(&r->providers, f->provider) ? WHY_OK : WHY_NOT_LISTED;
    case C_EMAIL_VERIFIED:
        return x->verified == (r->email_verified != 0) ? WHY_OK : WHY_WRONG;
    case C_EMAIL_DOMAIN:
        if (f->email == NULL)
            return WHY_ABSENT;
        if (!x->verified)
            return WHY_UNVERIFIED;
        if (x->domain_state == D_MALFORMED)
            return WHY_MALFORMED;
        return x->domain_state == D_OK && in_list(&r->domains, x->domain) ? WHY_OK : WHY_NOT_LISTED;
    case C_HD:
        if (x->hd_state == D_ABSENT)
            return WHY_ABSENT;
        return x->hd_state == D_OK && in_list(&r->hds, x->hd) ? WHY_OK : WHY_NOT_LISTED;
    case C_EMAILS_FILE:
        if (f->customer_id != NULL && in_sorted(&r->emails.ids, f->customer_id, 0))
            return WHY_OK;
        listed = f->email != NULL && in_sorted(&r->emails.addrs, f->email, 1);
        return listed && x->verified ? WHY_OK : listed ? WHY_UNVERIFIED : WHY_NOT_LISTED;
    case C_MIN_LINKED:
        return f->linked_providers >= r->min_linked ? WHY_OK : WHY_TOO_FEW;
    case C_MAX_AGE:
        /* an unknown age is an old one: fail towards re-authentication */
        return f->session_age_s < 0 ? WHY_AGE_UNKNOWN : f->session_age_s <= r->max_age_s ? WHY_OK : WHY_TOO_OLD;
    default:
        return WHY_WRONG; /* not reached: the three above returned */
    }
}

enum { RC_NO, RC_YES, RC_STALE };

/* RC_YES: every condition holds; RC_STALE: all but the session age, which a signed-in session is too old
 * for; RC_NO otherwise */
static int rule_check(const rule_t *r, const derived_t *x)
{
    unsigned todo = r->have & ~BIT(C_MAX_AGE);
    why_t w;
    int c;

    /* only the conditions the rule sets, in cond_t order (lowest bit first) */
    while (todo != 0) {
        c = __builtin_ctz(todo);
        todo &= todo - 1;
        if (cond_check(r, (cond_t)c, x) != WHY_OK)
            return RC_NO;
    }
    if (!(r->have & BIT(C_MAX_AGE)))
        return RC_YES;
    w = cond_check(r, C_MAX_AGE, x);
    return w == WHY_OK ? RC_YES : w == WHY_TOO_OLD || w == WHY_AGE_UNKNOWN ? RC_STALE : RC_NO;
}

/* the deciding rule's outcome, or -1 to move on */
static int rule_outcome(const rule_t *r, int rc)
{
    if (rc == RC_YES)
        return r->deny ? POL_DENY : POL_ALLOW;
    if (rc == RC_STALE && !r->deny)
        return POL_STEP_UP;
    return -1; /* a deny rule's age limit is a plain condition */
}

pol_decision_t pol_eval(const pol_set_t *s, const char *policy, const pol_facts_t *f)
{
    pol_decision_t d = {POL_DENY, NULL, -1};
    const policy_t *p = find_policy(s, policy);
    derived_t x;
    int o;

    if (p == NULL || f == NULL)
        goto Exit;
    d.policy = p->name;
    derive(f, &x);
    for (size_t i = 0; i < p->num_rules; ++i) {
        if ((o = rule_outcome(&p->rules[i], rule_check(&p->rules[i], &x))) >= 0) {
            d.outcome = (pol_outcome_t)o;
            d.rule = (int)i;
            goto Exit;
        }
    }
Exit:
    return d;
}

static int known(const char *const *names, const char *s)
{
    for (; *names != NULL; ++names)
        if (strcmp(*names, s) == 0)
            return 1;
    return 0;
}

gw_status_t pol_set_check_names(const pol_set_t *s, const char *const *providers, const char *const *channels,
                                char ***errors, size_t *num_errors)
{
    errs_t e = {NULL, 0, 0, 0, 0};
    gw_status_t st = GW_OK;
    char key[64];

    if (errors != NULL)
        *errors = NULL;
    if (num_errors != NULL)
        *num_errors = 0;
    for (size_t i = 0; s != NULL && i < s->count && !e.nomem; ++i) {
        const policy_t *p = &s->policies[i];
        for (size_t j = 0; j < p->num_rules; ++j) {
            const rule_t *r = &p->rules[j];
            lctx_t c = {&e, p->source, p->name, (long)j, r->deny ? "deny" : "allow"};
            for (size_t k = 0; providers != NULL && k < r->providers.count; ++k) {
                if (!known(providers, r->providers.items[k])) {
                    if (snprintf(key, sizeof(key), "providers[%zu]", k) >= (int)sizeof(key))
                        key[0] = '\0'; /* cannot happen: 64 bytes hold any index */
                    lerr(&c, key, "no provider named \"%s\" in the configuration", r->providers.items[k]);
                }
            }
            for (size_t k = 0; channels != NULL && k < r->channels.count; ++k) {
                if (!known(channels, r->channels.items[k])) {
                    if (snprintf(key, sizeof(key), "channels[%zu]", k) >= (int)sizeof(key))
                        key[0] = '\0';
                    lerr(&c, key, "no route has the channel \"%s\"", r->channels.items[k]);
                }
            }
        }
    }
    if (e.nomem) {
        st = GW_ENOMEM;
    } else if (e.failed) {
        if (e.dropped > 0)
            errs_add(&e, 1, "policies: %zu more errors not shown", e.dropped);
        st = e.nomem ? GW_ENOMEM : GW_EINVAL;
    }
    if (st == GW_EINVAL && errors != NULL) {
        *errors = e.msgs;
        if (num_errors != NULL)
            *num_errors = e.count;
    } else {
        pol_errors_free(e.msgs, e.count);
    }
    return st;
}

const char *pol_outcome_str(pol_outcome_t o)
{
    switch (o) {
    case POL_ALLOW:
        return "allow";
    case POL_DENY:
        return "deny";
    case POL_STEP_UP:
        return "step_up";
    }
    return "deny";
}

/* ------------------------------------------------------------------ explanations */

/* a fact as a quoted string; control characters and quotes escaped (they come from providers) */
static void put_quoted(FILE *fp, const char *s)
{
    if (s == NULL) {
        fputs("(none)", fp);
        return;
    }
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; ++p) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            fprintf(fp, "\\x%02x", *p);
        else
            fputc(*p, fp);
    }
    fputc('"', fp);
}

static void explain_facts(FILE *fp, const pol_facts_t *f)
{
    fputs("facts: ", fp);
    if (!f->signed_in) {
        fputs("not signed in", fp);
    } else {
        fputs("signed in with ", fp);
        put_quoted(fp, f->provider);
        fputs(", customer ", fp);
        put_quoted(fp, f->customer_id);
        fputs(", email ", fp);
        put_quoted(fp, f->email);
        fputs(f->email == NULL ? "" : f->email_verified ? " (verified)" : " (not verified)", fp);
        fputs(", hd ", fp);
        put_quoted(fp, f->hd);
        fprintf(fp, ", %u linked provider%s, ", f->linked_providers, f->linked_providers == 1 ? "" : "s");
        if (f->session_age_s < 0)
            fputs("session age unknown", fp);
        else
            fprintf(fp, "signed in %lld s ago", (long long)f->session_age_s);
    }
    fputs("; channel ", fp);
    put_quoted(fp, f->channel);
    fputs(", method ", fp);
    put_quoted(fp, f->method);
    fputc('\n', fp);
}

static void explain_cond(FILE *fp, const rule_t *r, cond_t c, why_t w, const pol_facts_t *f)
{
    fprintf(fp, "    %s: ", cond_names[c]);
    switch (w) {
    case WHY_OK:
        fputs("holds", fp);
        break;
    case WHY_NO_SESSION:
        fputs("not signed in", fp);
        break;
    case WHY_WRONG:
        if (c == C_SIGNED_IN)
            fputs(r->signed_in ? "wants a signed-in session" : "wants no session", fp);
        else
            fprintf(fp, "wants %s, the email is %s", r->email_verified ? "a verified email" : "no verified email",
                    f->email == NULL    ? "absent"
                    : f->email_verified ? "verified"
                                        : "not verified");
        break;
    case WHY_ABSENT:
        fputs(c == C_HD ? "no hd claim (not a Google Workspace account)" : "the fact is absent", fp);
        break;
    case WHY_UNVERIFIED:
        fputs(c == C_EMAILS_FILE ? "the email is listed but not verified" : "the email is not verified", fp);
        break;
    case WHY_MALFORMED:
        fputs("the email is not a plain address (exactly one '@' with text on both sides)", fp);
        break;
    case WHY_NOT_LISTED:
        if (c == C_EMAILS_FILE) {
            fputs("neither the customer id nor the verified email is listed in ", fp);
            put_quoted(fp, r->emails.file);
        } else if (c == C_EMAIL_DOMAIN) {
            put_quoted(fp, email_domain_of(f->email));
            fputs(" is not listed", fp);
        } else {
            put_quoted(fp, c == C_CHANNELS    ? f->channel
                           : c == C_METHODS   ? f->method
                           : c == C_PROVIDERS ? f->provider
                                              : f->hd);
            fputs(" is not listed", fp);
        }
        break;
    case WHY_TOO_FEW:
        fprintf(fp, "%u linked, fewer than %u", f->linked_providers, r->min_linked);
        break;
    case WHY_TOO_OLD:
        fprintf(fp, "signed in %lld s ago, more than %lld s", (long long)f->session_age_s, (long long)r->max_age_s);
        break;
    case WHY_AGE_UNKNOWN:
        fputs("session age unknown (treated as too old)", fp);
        break;
    }
    fputc('\n', fp);
}

char *pol_explain(const pol_set_t *s, const char *policy, const pol_facts_t *f)
{
    const policy_t *p = find_policy(s, policy);
    pol_decision_t d = pol_eval(s, policy, f);
    derived_t x;
    char *text = NULL;
    size_t len = 0;
    FILE *fp;
    int bad;

    if ((fp = open_memstream(&text, &len)) == NULL)
        return NULL;
    fputs("policy ", fp);
    put_quoted(fp, policy);
    if (p == NULL || f == NULL) {
        fputs(p == NULL ? ": no such policy\ndecision: deny (no such policy)\n" : "\ndecision: deny (no facts)\n", fp);
        goto Exit;
    }
    fprintf(fp, " from %s\n", p->source);
    if (p->description != NULL) {
        fputs("description: ", fp);
        put_quoted(fp, p->description);
        fputc('\n', fp);
    }
    explain_facts(fp, f);
    derive(f, &x);
    for (size_t i = 0; i < p->num_rules; ++i) {
        const rule_t *r = &p->rules[i];
        int rc = rule_check(r, &x);
        fprintf(fp, "rule %zu: %s\n", i, r->text);
        if (rc == RC_YES) {
            fputs("  matches\n", fp);
        } else {
            fputs(rc == RC_STALE ? "  all conditions hold except the session age:\n" : "  no match:\n", fp);
            for (int c = 0; c < C_COUNT; ++c) {
                why_t w;
                if ((r->have & BIT(c)) && (w = cond_check(r, (cond_t)c, &x)) != WHY_OK)
                    explain_cond(fp, r, (cond_t)c, w, f);
            }
            if (rc == RC_STALE && r->deny)
                fputs("  (in a deny rule the session age is a plain condition)\n", fp);
        }
        if ((int)i == d.rule) {
            if (i + 1 < p->num_rules)
                fprintf(fp, "rules %zu to %zu: not evaluated (the first matching rule decides)\n", i + 1,
                        p->num_rules - 1);
            break;
        }
    }
    if (d.rule < 0)
        fputs("decision: deny: no rule matched (default deny)\n", fp);
    else if (d.outcome == POL_STEP_UP)
        fprintf(fp,
                "decision: step_up by rule %d: the sign-in is too old for this rule; send the browser back "
                "through its provider\n",
                d.rule);
    else
        fprintf(fp, "decision: %s by rule %d\n", pol_outcome_str(d.outcome), d.rule);
Exit:
    bad = ferror(fp);
    if (fclose(fp) != 0 || bad) {
        free(text);
        return NULL;
    }
    return text;
}
