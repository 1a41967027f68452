/*
 * bench/bench_util.h - what the benchmark programs (store_bench, journey_bench) share: messages,
 * clocks, a seeded generator, latency percentiles, sizes, argument parsing, running a helper
 * program (mdb_stat), and the test identities they sign in.
 */
#ifndef JG_BENCH_UTIL_H
#define JG_BENCH_UTIL_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* the program's name in messages: each main() sets it */
extern const char *bench_prog;

/* "PROG: error: ..." on stderr, exit 1 */
void die(const char *f, ...) __attribute__((format(printf, 1, 2), noreturn));
/* snprintf that never truncates silently (dies instead) */
void fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));

uint64_t now_ns(void);  /* CLOCK_MONOTONIC */
uint64_t wall_ms(void); /* CLOCK_REALTIME */
double secs(uint64_t ns);

/* splitmix64 seeds, xorshift64* draws: deterministic for a given seed, one state per thread */
uint64_t rng_seed(uint64_t seed);
uint64_t rng_next(uint64_t *s);
uint64_t rng_below(uint64_t *s, uint64_t n);

int cmp_u64(const void *a, const void *b);

/* percentiles of a set of durations, in microseconds; first_us is the first one measured */
struct lat {
    double p50_us, p99_us, p999_us, max_us, mean_us, first_us;
};
/* sorts ns[] in place */
struct lat lat_of(uint64_t *ns, uint64_t n);

void human_bytes(double b, char *out, size_t cap);
/* an integer option in [min, max], or a message and exit 2 */
uint64_t parse_u64(const char *name, const char *text, uint64_t min, uint64_t max);
/* the file system holding dir: "ext4", "xfs", "btrfs", "tmpfs", "overlayfs", "other" or "unknown" */
const char *fs_name(const char *dir);
/* runs argv (no shell), its stdout into out (NUL-terminated); its exit status, or -1 */
int run_capture(char *const argv[], char *out, size_t cap);
/* the number after "label:" on the first line that contains it, or 0 */
uint64_t stat_field(const char *text, const char *label);

/* customer n's identity: alternately Google and Facebook, user<n>@example.com, verified */
struct ident_buf {
    char subject[24], email[48], name[32];
};
const char *provider_of(uint64_t n);
void make_identity(uint64_t n, struct ident_buf *b, store_identity_t *id);

#endif
