/* What the wait benchmarks (scale.c, latency/latency.c) share: clocks, the integer of a JSON
 * member, the process's thread count and a thread sampling its peak, percentiles. */
#ifndef CAPMONSTER_BENCH_UTIL_H
#define CAPMONSTER_BENCH_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- clocks ------------------------------------------------------------------------------ */

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
static double mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
/* The emulator stamps with the wall clock (Rust's SystemTime): compare with the same clock. */
static double wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

static void sleep_ms(double ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (double)(time_t)(ms / 1e3) * 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* The integer after "key": in a JSON text; -1 when absent. */
static long long json_int(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* ---- threads ----------------------------------------------------------------------------- */

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

/* A thread that samples the thread count into g_peak_threads every g_sample_every_ms until
 * g_sampling is cleared; the program's own threads are main and this one. */
#define OWN_THREADS 2
static atomic_int g_sampling = 1, g_peak_threads;
static int g_sample_every_ms = 5;

static void *sampler(void *arg) {
    (void)arg;
    while (atomic_load(&g_sampling)) {
        int n = count_threads();
        if (n > atomic_load(&g_peak_threads)) atomic_store(&g_peak_threads, n);
        sleep_ms(g_sample_every_ms);
    }
    return NULL;
}

/* ---- statistics --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double p50, p99, max;
} pct;

/* Nearest-rank percentiles; sorts v. */
static pct percentiles(double *v, long n) {
    pct p = {-1, -1, -1};
    if (n <= 0) return p;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    long i50 = (n * 50 + 99) / 100 - 1, i99 = (n * 99 + 99) / 100 - 1;
    p.p50 = v[i50 < 0 ? 0 : i50];
    p.p99 = v[i99 < 0 ? 0 : i99];
    p.max = v[n - 1];
    return p;
}

#endif
