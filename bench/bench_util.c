/*
 * bench/bench_util.c - see bench_util.h.
 */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void die(const char *f, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: error: ", bench_prog);
    va_start(ap, f);
    vfprintf(stderr, f, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* snprintf that never truncates silently: every buffer here is sized for its content */
void fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        die("internal: a %zu-byte buffer is too small", cap);
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ULL + (uint64_t)ts.tv_nsec / 1000000ULL;
}

double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

/* splitmix64 seeds, xorshift64* draws: deterministic for a given --seed, one state per thread */
uint64_t rng_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z != 0 ? z : 1;
}

uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return (rng_next(s) >> 11) % n;
}

int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* sorts ns[] in place */
struct lat lat_of(uint64_t *ns, uint64_t n)
{
    struct lat l = {0, 0, 0, 0, 0, 0};
    double sum = 0;

    if (n == 0)
        return l;
    l.first_us = (double)ns[0] / 1e3;
    qsort(ns, n, sizeof(*ns), cmp_u64);
    for (uint64_t i = 0; i < n; ++i)
        sum += (double)ns[i];
    l.p50_us = (double)ns[(n - 1) * 50 / 100] / 1e3;
    l.p99_us = (double)ns[(n - 1) * 99 / 100] / 1e3;
    l.p999_us = (double)ns[(n - 1) * 999 / 1000] / 1e3;
    l.max_us = (double)ns[n - 1] / 1e3;
    l.mean_us = sum / (double)n / 1e3;
    return l;
}

void human_bytes(double b, char *out, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;

    while (b >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
        b /= 1024;
        ++u;
    }
    fmt(out, cap, u == 0 ? "%.0f %s" : "%.2f %s", b, unit[u]);
}

uint64_t parse_u64(const char *name, const char *text, uint64_t min, uint64_t max)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        fprintf(stderr, "%s: %s must be an integer in [%" PRIu64 ", %" PRIu64 "], not \"%s\"\n", bench_prog, name, min,
                max, text);
        exit(2);
    }
    return (uint64_t)v;
}

const char *fs_name(const char *dir)
{
    struct statfs fs;

    if (statfs(dir, &fs) != 0)
        return "unknown";
    switch ((unsigned long)fs.f_type) {
    case 0xEF53UL:
        return "ext4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x01021994UL:
        return "tmpfs";
    case 0x794c7630UL:
        return "overlayfs";
    default:
        return "other";
    }
}

/*
 * Runs argv (no shell) and captures its stdout into out (NUL-terminated). Returns the exit
 * status, or -1 when it could not run.
 */
int run_capture(char *const argv[], char *out, size_t cap)
{
    posix_spawn_file_actions_t fa;
    int pfd[2], status = 0;
    size_t len = 0;
    pid_t pid;
    ssize_t got;

    out[0] = '\0';
    if (pipe(pfd) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    /* read everything (the child must never block on a full pipe); keep what fits */
    for (;;) {
        char chunk[4096];
        got = read(pfd[0], chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (len + 1 < cap) {
            size_t take = (size_t)got < cap - 1 - len ? (size_t)got : cap - 1 - len;
            memcpy(out + len, chunk, take);
            len += take;
        }
    }
    out[len] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return -1; /* posix_spawnp may report "not found" this way */
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* the number after "label:" on the first line that contains it, or 0 */
uint64_t stat_field(const char *text, const char *label)
{
    const char *p = strstr(text, label);
    return p != NULL ? strtoull(p + strlen(label), NULL, 10) : 0;
}

const char *provider_of(uint64_t n)
{
    return n % 2 == 0 ? "google" : "facebook";
}

void make_identity(uint64_t n, struct ident_buf *b, store_identity_t *id)
{
    fmt(b->subject, sizeof(b->subject), "%" PRIu64, n);
    fmt(b->email, sizeof(b->email), "user%" PRIu64 "@example.com", n);
    fmt(b->name, sizeof(b->name), "User %" PRIu64, n);
    *id = (store_identity_t){provider_of(n), b->subject, b->email, 1, b->name, NULL};
}
