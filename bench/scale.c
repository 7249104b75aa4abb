/*
 * The scale benchmark (see bench/README.md, "Scale"): many waits on one cm_waiter, or one
 * cm_wait_result thread per wait, against the emulator started with
 * `--answer-delay-ms D --stamp-ready`; and how fast cancels end waits and calls.
 *
 *   scale waiter  URL N FIRST_MS INTERVAL_MS DELAY_MS MAX_CONNECTIONS
 *   scale threads URL N FIRST_MS INTERVAL_MS DELAY_MS MAX_CONNECTIONS
 *   scale cancel  URL MAX_CONNECTIONS
 *
 * waiter / threads: N ImageToTextTasks are made at once (POST /_emulator/tasks) at T0; task j
 * turns ready at T0 + FIRST_MS + 1.5 * INTERVAL_MS + INTERVAL_MS * j / N. Wait j starts with
 * first delay FIRST_MS + INTERVAL_MS * j / N (the first polls spread over one interval, as
 * tasks made at a steady rate would be), then polls every INTERVAL_MS, so every wait is
 * ready on its third poll with half an interval of margin on both sides. Prints one line
 *   SCALE mode=.. n=.. key=value ...
 * with the library's threads (/proc/self/task minus the program's own), RSS per pending wait,
 * requests per wait (cm_result_request_count, cross-checked with the emulator's counters),
 * the lateness of each ready answer (the emulator's send stamp -> the wait's return, wall
 * clock) and the slip against the schedule (the moment the schedule's ready answer would
 * arrive with every request taking exactly DELAY_MS -> the wait's return, monotonic clock).
 *
 * cancel: under a getTaskResult script that stalls every answer, cancels triggered one at a
 * time on waits in flight and on sleeping waits (cm_waiter and cm_wait_result), on
 * cm_get_task_result_with in flight, and cm_waiter_shutdown on a mixed waiter. Prints
 *   CANCEL case=.. n=.. p50_ms=.. p99_ms=.. max_ms=.. ok=..
 * (trigger -> cm_waiter_next / call return, monotonic clock).
 *
 * Exit status: 0 when every wait ended as expected, 1 otherwise, 2 on a bad setup.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_NAME "scale"
#include "bench_client.h"
#include "capmonster.h"
#include "bench_util.h"
#include "emulator_http.h"
#include "proc_status.h"

#define KEY "bench-key"
#define NEXT_TIMEOUT_MS 30000 /* no wait finishing for this long (beyond its schedule) is reported as a hang */

/* ---- the emulator's control endpoints (raw HTTP/1.1, one connection per request) ---------- */

static char g_url[256];
static int g_port;

/* One request to the emulator (emulator_http.h). */
static char *emu(const char *method, const char *path, const char *body, int *status) {
    return emulator_request(g_port, method, path, body, status);
}

static void emu_must(const char *method, const char *path, const char *body) {
    int status;
    char *reply = emu(method, path, body, &status);
    if (!reply || status != 200) {
        fprintf(stderr, "scale: %s %s: HTTP %d %s\n", method, path, status, reply ? reply : "(no answer)");
        exit(2);
    }
    free(reply);
}

/* getTaskResult requests the emulator received since its last reset. */
static long long emu_polls(void) {
    int status;
    char *stats = emu("GET", "/_emulator/stats", NULL, &status);
    long long n = json_int(stats, "getTaskResult");
    free(stats);
    return n;
}

/* Waits until the emulator has received `target` getTaskResult requests (so many are in flight
 * when the answers stall); 0 when it did within 10 s. */
static int await_polls(long long target) {
    for (double end = mono_ms() + 10000; mono_ms() < end; sleep_ms(5))
        if (emu_polls() >= target) return 0;
    fprintf(stderr, "scale: the emulator saw %lld of %lld getTaskResult requests after 10 s\n", emu_polls(), target);
    return 1;
}

/* The "tasks" object of the stats ({"1000":3,...}): counts[id - first] for ids in [first, first + n). */
static void emu_task_counts(const char *stats, int64_t first, long n, uint32_t *counts) {
    const char *p = stats ? strstr(stats, "\"tasks\":{") : NULL;
    if (!p) return;
    p += strlen("\"tasks\":{");
    while (*p == '"') {
        char *end;
        long long id = strtoll(p + 1, &end, 10);
        if (end[0] != '"' || end[1] != ':') break;
        long long v = strtoll(end + 2, &end, 10);
        if (id >= first && id < first + n) counts[id - first] = (uint32_t)v;
        p = end + (*end == ',');
    }
}

/* ---- the client --------------------------------------------------------------------------- */

static cm_client *g_client;


/* ---- waiter / threads --------------------------------------------------------------------- */

typedef struct {
    uint32_t first_ms;  /* this wait's first delay */
    double start_mono;  /* just before cm_waiter_add / cm_wait_result */
    double ret_mono;    /* cm_waiter_next / cm_wait_result returned it */
    double ret_wall;
    double sent_wall;   /* the emulator's stamp of the ready answer; -1 when none */
    int32_t code;
    int32_t ready;
    uint32_t requests;
} wait_rec;

static wait_rec *g_recs;
static long g_n;
static int64_t g_first_task;
static uint32_t g_interval_ms;
static cm_cancel *g_abort; /* threads mode: ends every wait when the setup fails half-way */
static atomic_long g_entered;

static void record(wait_rec *rec, const cm_result *r, double wall, double mono) {
    rec->ret_wall = wall;
    rec->ret_mono = mono;
    rec->code = cm_result_code(r);
    rec->ready = cm_result_is_ready(r);
    rec->requests = cm_result_request_count(r);
    const char *stamp = cm_result_solution_string(r, "emulatorSentAtUs");
    rec->sent_wall = stamp ? (double)strtoll(stamp, NULL, 10) / 1e3 : -1;
}

static void *wait_thread(void *arg) {
    long j = (long)(intptr_t)arg;
    wait_rec *rec = &g_recs[j];
    cm_wait_options o;
    cm_wait_options_init(&o);
    o.first_delay_ms = rec->first_ms;
    o.interval_ms = g_interval_ms;
    o.cancel = g_abort;
    cm_result *r = NULL;
    rec->start_mono = mono_ms();
    atomic_fetch_add(&g_entered, 1);
    cm_wait_result(g_client, g_first_task + j, &o, &r);
    double wall = wall_ms(), mono = mono_ms();
    record(rec, r, wall, mono);
    cm_result_free(r);
    return NULL;
}

static int run_scale(int threads_mode, long n, uint32_t first_ms, uint32_t interval_ms, uint32_t delay_ms,
                     unsigned max_connections) {
    g_n = n;
    g_interval_ms = interval_ms;
    g_sample_every_ms = threads_mode ? 50 : 5; /* /proc/self/task with 10,000 entries is slow to list */
    g_client = new_client(g_url, KEY, max_connections);
    pthread_t sampler_id;
    pthread_create(&sampler_id, NULL, sampler, NULL);

    /* Everything the program itself needs is allocated and touched before the baseline. */
    g_recs = calloc((size_t)n, sizeof *g_recs);
    memset(g_recs, 0, (size_t)n * sizeof *g_recs);
    pthread_t *ids = threads_mode ? calloc((size_t)n, sizeof *ids) : NULL;
    if (ids) memset(ids, 0, (size_t)n * sizeof *ids);
    double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    uint32_t *emu_counts = calloc((size_t)n, sizeof *emu_counts);
    memset(a, 0, (size_t)n * sizeof *a);
    memset(b, 0, (size_t)n * sizeof *b);
    memset(emu_counts, 0, (size_t)n * sizeof *emu_counts);
    for (long j = 0; j < n; j++) g_recs[j].first_ms = first_ms + (uint32_t)((uint64_t)interval_ms * (uint64_t)j / (uint64_t)n);

    emu_must("POST", "/_emulator/reset", "");
    /* Warm-up: one wait on an unknown task (one request, then ERROR_NO_SUCH_CAPCHA_ID), so the
     * first worker thread (waiter) and a pooled connection exist before the baseline. */
    cm_waiter *w = NULL;
    cm_wait_options o;
    cm_wait_options_init(&o);
    o.first_delay_ms = 0;
    cm_result *r = NULL;
    if (!threads_mode) {
        if (cm_waiter_new(g_client, &w) != CM_OK || cm_waiter_add(w, 1, &o, 0) != CM_OK) {
            fprintf(stderr, "scale: cannot make the waiter\n");
            return 2;
        }
        uint64_t tag;
        cm_waiter_next(w, NEXT_TIMEOUT_MS, &tag, &r);
    } else {
        cm_wait_result(g_client, 1, &o, &r);
        cm_cancel_new(&g_abort);
    }
    cm_result_free(r);

    /* The tasks, all at once: task j ready at T0 + first + 1.5 interval + interval * j / n. */
    uint32_t ready_after_ms = first_ms + interval_ms + interval_ms / 2;
    char body[256];
    snprintf(body, sizeof body,
             "{\"type\":\"ImageToTextTask\",\"count\":%ld,\"solveAfterMs\":%u,\"spreadMs\":%u}", n, ready_after_ms,
             interval_ms);
    int status;
    double t0 = mono_ms();
    char *made = emu("POST", "/_emulator/tasks", body, &status);
    g_first_task = json_int(made, "firstTaskId");
    if (status != 200 || g_first_task <= 0) {
        fprintf(stderr, "scale: POST /_emulator/tasks: HTTP %d %s\n", status, made ? made : "(no answer)");
        return 2;
    }
    free(made);

    sleep_ms(20); /* let the sampler see the baseline */
    int threads_before = count_threads();
    long rss_before = status_kib("VmRSS:");

    /* Start every wait. */
    double add0 = mono_ms();
    long started = 0;
    int failed_setup = 0;
    if (!threads_mode) {
        for (long j = 0; j < n; j++) {
            cm_wait_options_init(&o);
            o.first_delay_ms = g_recs[j].first_ms;
            o.interval_ms = interval_ms;
            g_recs[j].start_mono = mono_ms();
            cm_code c = cm_waiter_add(w, g_first_task + j, &o, (uint64_t)j);
            if (c != CM_OK) {
                fprintf(stderr, "scale: cm_waiter_add %ld: %s\n", j, cm_code_name(c));
                failed_setup = 1;
                break;
            }
            started++;
        }
    } else {
        for (long j = 0; j < n; j++) {
            int e = pthread_create(&ids[j], NULL, wait_thread, (void *)(intptr_t)j);
            if (e != 0) {
                fprintf(stderr, "scale: pthread_create %ld: %s\n", j, strerror(e));
                failed_setup = 1;
                break;
            }
            started++;
        }
        while (atomic_load(&g_entered) < started) sleep_ms(1);
        sleep_ms(20); /* the last ones reach their sleep */
    }
    double add_ms = mono_ms() - add0;
    long rss_pending = status_kib("VmRSS:");
    int threads_pending = count_threads();
    if (failed_setup) {
        if (threads_mode) {
            cm_cancel_trigger(g_abort);
            for (long j = 0; j < started; j++) pthread_join(ids[j], NULL);
        }
        printf("SCALE mode=%s n=%ld failed_setup=1 started=%ld\n", threads_mode ? "threads" : "waiter", n, started);
        return 1;
    }

    /* Collect. No wait coming out for this long (the first can take 2 intervals) is a hang. */
    int hang = 0;
    uint32_t quiet_ms = NEXT_TIMEOUT_MS + first_ms + 3 * interval_ms;
    if (!threads_mode) {
        for (long got = 0; got < n; got++) {
            uint64_t tag = 0;
            r = NULL;
            cm_code c = cm_waiter_next(w, quiet_ms, &tag, &r);
            double wall = wall_ms(), mono = mono_ms();
            if (c != CM_OK || tag >= (uint64_t)n) {
                fprintf(stderr, "scale: HANG? cm_waiter_next: %s after %ld of %ld waits, %" PRIu64 " pending\n",
                        cm_code_name(c), got, n, cm_waiter_pending(w));
                hang = 1;
                break;
            }
            record(&g_recs[tag], r, wall, mono);
            cm_result_free(r);
        }
    } else {
        for (long j = 0; j < n; j++) pthread_join(ids[j], NULL);
    }
    double run_s = (mono_ms() - add0) / 1e3;
    atomic_store(&g_sampling, 0);
    pthread_join(sampler_id, NULL);
    long hwm = status_kib("VmHWM:");

    /* Requests: the library's per-wait counts against the schedule and the emulator's counters. */
    long ok = 0, extra = 0, fewer = 0, expect_sum = 0, req_sum = 0, first_fail = -1, nlate = 0, nslip = 0;
    double margin = 1e18;
    for (long j = 0; j < n; j++) {
        wait_rec *rec = &g_recs[j];
        /* The schedule with every request taking delay_ms: poll k reaches the emulator at
         * start + first + k * (interval + delay); the first one at or after readiness is ready. */
        double ready_at = t0 + ready_after_ms + (double)interval_ms * (double)j / (double)n;
        double step = (double)interval_ms + delay_ms, poll0 = rec->start_mono + rec->first_ms;
        long k = 0;
        while (poll0 + (double)k * step < ready_at) k++;
        double before = k > 0 ? ready_at - (poll0 + (double)(k - 1) * step) : 1e18;
        double after = poll0 + (double)k * step - ready_at;
        if (before < margin) margin = before;
        if (after < margin) margin = after;
        long expected = k + 1;
        expect_sum += expected;
        req_sum += rec->requests;
        if (rec->code == CM_OK && rec->ready) {
            ok++;
            a[nslip++] = rec->ret_mono - (poll0 + (double)k * step + delay_ms);
            if (rec->sent_wall > 0) b[nlate++] = rec->ret_wall - rec->sent_wall;
        } else if (first_fail < 0) {
            first_fail = j;
        }
        if ((long)rec->requests > expected) extra++;
        if ((long)rec->requests < expected) fewer++;
    }
    if (first_fail >= 0)
        fprintf(stderr, "scale: wait %ld (task %" PRId64 ") ended %s, ready %d, %u requests\n", first_fail,
                g_first_task + first_fail, cm_code_name(g_recs[first_fail].code), g_recs[first_fail].ready,
                g_recs[first_fail].requests);
    int st;
    char *stats = emu("GET", "/_emulator/stats", NULL, &st);
    long long emu_requests = json_int(stats, "getTaskResult") - 1; /* minus the warm-up */
    /* Per task: the emulator's count against the library's. */
    emu_task_counts(stats, g_first_task, n, emu_counts);
    long mismatch = 0;
    for (long j = 0; j < n; j++) mismatch += emu_counts[j] != g_recs[j].requests;
    free(stats);
    pct slip = percentiles(a, nslip), late = percentiles(b, nlate);
    int lib_threads_peak = atomic_load(&g_peak_threads) - OWN_THREADS;
    printf("SCALE mode=%s n=%ld max_connections=%u first_ms=%u interval_ms=%u delay_ms=%u start_ms=%.1f "
           "threads_before=%d threads_pending=%d lib_threads_peak=%d rss_before_kib=%ld rss_pending_kib=%ld "
           "rss_per_wait_b=%.0f hwm_kib=%ld ok=%ld hang=%d req_per_wait=%.3f req_expected=%.3f req_extra=%ld "
           "req_fewer=%ld emu_requests=%lld emu_mismatch=%ld margin_ms=%.1f late_n=%ld late_p50_ms=%.2f "
           "late_p99_ms=%.2f late_max_ms=%.2f slip_p50_ms=%.2f slip_p99_ms=%.2f slip_max_ms=%.2f run_s=%.1f\n",
           threads_mode ? "threads" : "waiter", n, max_connections, first_ms, interval_ms, delay_ms, add_ms,
           threads_before - OWN_THREADS, threads_pending - OWN_THREADS, lib_threads_peak, rss_before,
           rss_pending, (double)(rss_pending - rss_before) * 1024.0 / (double)n, hwm, ok, hang,
           (double)req_sum / (double)n, (double)expect_sum / (double)n, extra, fewer, emu_requests, mismatch, margin,
           nlate, late.p50, late.p99, late.max, slip.p50, slip.p99, slip.max, run_s);
    fflush(stdout);
    if (w) cm_waiter_free(w);
    cm_cancel_free(g_abort);
    cm_client_free(g_client);
    return ok == n && !hang && mismatch == 0 ? 0 : 1;
}

/* ---- cancel --------------------------------------------------------------------------------- */

#define ROUNDS 4
#define SLEEPERS 1000
#define THREAD_SLEEPERS 200
#define STALL_SCRIPT "{\"method\":\"getTaskResult\",\"steps\":[{\"fault\":\"stall\",\"ms\":120000}]}"

static int64_t g_next_task = 1000000;
static int g_cancel_failures;
static unsigned g_max_connections;

/* One cancel case. The measured waits or calls each have a cancel of their own, triggered one
 * at a time `gap_ms` apart. With `blockers`, that many stalled waits / calls first take every
 * connection, so the measured ones (first delay 0) are due but queued for a worker thread
 * (waiter) or a connection (calls); blockers are cancelled afterwards and not measured. */
typedef struct {
    const char *name;
    int kind;           /* 0: cm_waiter, 1: cm_wait_result, 2: cm_get_task_result_with */
    long n;             /* measured per round */
    uint32_t first_ms;  /* of the measured waits: 0 (in flight, or queued) or 600000 (asleep) */
    long blockers;
    int rounds;
    double gap_ms;
} cancel_case;

typedef struct {
    int kind;
    int64_t task;
    uint32_t first_ms;
    cm_cancel *cancel;
    double ret;
    int32_t code;
} call_arg;

static atomic_long g_calls_entered;

static void *call_thread(void *arg) {
    call_arg *c = arg;
    cm_result *r = NULL;
    atomic_fetch_add(&g_calls_entered, 1);
    if (c->kind == 1) {
        cm_wait_options o;
        cm_wait_options_init(&o);
        o.first_delay_ms = c->first_ms;
        o.timeout_ms = 900000;
        o.cancel = c->cancel;
        cm_wait_result(g_client, c->task, &o, &r);
    } else {
        cm_call_options o;
        cm_call_options_init(&o);
        o.cancel = c->cancel;
        cm_get_task_result_with(g_client, c->task, &o, &r);
    }
    c->ret = mono_ms();
    c->code = cm_result_code(r);
    cm_result_free(r);
    return NULL;
}

typedef struct {
    cm_waiter *w;
    long expect;
    double *out; /* by tag: when cm_waiter_next returned it */
    int32_t *codes;
} collector_arg;

static void *collector(void *arg) {
    collector_arg *c = arg;
    for (long i = 0; i < c->expect; i++) {
        uint64_t tag = 0;
        cm_result *r = NULL;
        cm_code code = cm_waiter_next(c->w, NEXT_TIMEOUT_MS, &tag, &r);
        double t = mono_ms();
        if (code != CM_OK || tag >= (uint64_t)c->expect) {
            fprintf(stderr, "scale: HANG? cancel collector: %s after %ld of %ld\n", cm_code_name(code), i, c->expect);
            g_cancel_failures++;
            return NULL;
        }
        c->out[tag] = t;
        c->codes[tag] = cm_result_code(r);
        cm_result_free(r);
    }
    return NULL;
}

static void stall_all_answers(void) {
    emu_must("POST", "/_emulator/reset", "");
    emu_must("POST", "/_emulator/script", STALL_SCRIPT);
}

/* Starts waits / calls [from, to) of a round: waits on `w` tagged with their index, or threads. */
static void start_some(const cancel_case *k, cm_waiter *w, long from, long to, uint32_t first_ms, cm_cancel **cancels,
                       call_arg *args, pthread_t *ids) {
    for (long i = from; i < to; i++) {
        cm_cancel_new(&cancels[i]);
        if (k->kind == 0) {
            cm_wait_options o;
            cm_wait_options_init(&o);
            o.first_delay_ms = first_ms;
            o.timeout_ms = 900000;
            o.cancel = cancels[i];
            if (cm_waiter_add(w, g_next_task++, &o, (uint64_t)i) != CM_OK) g_cancel_failures++;
        } else {
            /* Blockers of call cases are calls of the same kind, stalled in flight. */
            args[i] = (call_arg){k->kind, g_next_task++, first_ms, cancels[i], 0, 0};
            pthread_create(&ids[i], NULL, call_thread, &args[i]);
        }
    }
}

static void run_cancel_case(const cancel_case *k) {
    long total = k->n + k->blockers; /* measured: [0, n); blockers: [n, total) */
    cm_cancel **cancels = calloc((size_t)total, sizeof *cancels);
    double *at = calloc((size_t)total, sizeof *at), *out = calloc((size_t)total, sizeof *out);
    int32_t *rc = calloc((size_t)total, sizeof *rc);
    call_arg *args = calloc((size_t)total, sizeof *args);
    pthread_t *ids = calloc((size_t)total, sizeof *ids);
    double *lat = calloc((size_t)(k->n * k->rounds), sizeof *lat);
    int32_t *codes = calloc((size_t)(k->n * k->rounds), sizeof *codes);
    long nlat = 0;
    long long polls = 0;
    stall_all_answers();
    for (int round = 0; round < k->rounds; round++) {
        cm_waiter *w = NULL;
        pthread_t cid;
        collector_arg c = {NULL, total, out, rc};
        if (k->kind == 0) {
            cm_waiter_new(g_client, &w);
            c.w = w;
            pthread_create(&cid, NULL, collector, &c);
        }
        if (k->blockers) {
            start_some(k, w, k->n, total, 0, cancels, args, ids);
            if (await_polls(polls += k->blockers)) g_cancel_failures++;
        }
        atomic_store(&g_calls_entered, 0);
        start_some(k, w, 0, k->n, k->first_ms, cancels, args, ids);
        if (k->first_ms == 0 && !k->blockers) {
            if (await_polls(polls += k->n)) g_cancel_failures++;
        } else if (k->kind != 0) {
            while (atomic_load(&g_calls_entered) < k->n) sleep_ms(1);
        }
        sleep_ms(50);
        if (k->blockers && emu_polls() != polls) {
            fprintf(stderr, "scale: %s: queued waits or calls were sent (%lld requests, %lld expected)\n", k->name,
                    emu_polls(), polls);
            g_cancel_failures++;
        }
        for (long i = 0; i < total; i++) { /* measured ones first, then the blockers */
            at[i] = mono_ms();
            cm_cancel_trigger(cancels[i]);
            sleep_ms(i < k->n ? k->gap_ms : 0.2);
        }
        if (k->kind == 0) {
            pthread_join(cid, NULL);
            cm_waiter_free(w);
        } else {
            for (long i = 0; i < total; i++) {
                pthread_join(ids[i], NULL);
                out[i] = args[i].ret;
                rc[i] = args[i].code;
            }
        }
        for (long i = 0; i < total; i++) {
            if (i < k->n) {
                lat[nlat] = out[i] - at[i];
                codes[nlat++] = rc[i];
            } else if (rc[i] != CM_ERR_CANCELLED) {
                g_cancel_failures++;
            }
            cm_cancel_free(cancels[i]);
        }
    }
    long ok = 0;
    for (long i = 0; i < nlat; i++) ok += codes[i] == CM_ERR_CANCELLED;
    if (ok != nlat) g_cancel_failures++;
    pct p = percentiles(lat, nlat);
    printf("CANCEL case=%s n=%ld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f ok=%ld\n", k->name, nlat, p.p50, p.p99, p.max, ok);
    fflush(stdout);
    free(cancels), free(at), free(out), free(rc), free(args), free(ids), free(lat), free(codes);
}

static int run_cancel(unsigned max_connections) {
    g_max_connections = max_connections;
    g_client = new_client(g_url, KEY, max_connections);
    long m = max_connections;
    const cancel_case cases[] = {
        {"waiter_inflight", 0, m, 0, 0, ROUNDS, 2},
        {"waiter_queued", 0, 100, 0, m, 2, 1},
        {"waiter_sleeping", 0, SLEEPERS, 600000, 0, 1, 0.5},
        {"wait_result_inflight", 1, m, 0, 0, ROUNDS, 2},
        {"wait_result_queued", 1, 100, 0, m, 2, 1},
        {"wait_result_sleeping", 1, THREAD_SLEEPERS, 600000, 0, 1, 1},
        {"get_task_result_with_inflight", 2, m, 0, 0, ROUNDS, 2},
        {"get_task_result_with_queued", 2, 100, 0, m, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_cancel_case(&cases[i]);

    /* cm_waiter_shutdown on a waiter with max_connections waits in flight and SLEEPERS asleep:
     * the call -> the last wait out (cm_waiter_next then says CM_ERR_CANCELLED: shut down). */
    stall_all_answers();
    cm_waiter *w = NULL;
    cm_waiter_new(g_client, &w);
    long total = m + SLEEPERS;
    for (long i = 0; i < total; i++) {
        cm_wait_options o;
        cm_wait_options_init(&o);
        o.first_delay_ms = i < m ? 0 : 600000;
        o.timeout_ms = 900000;
        cm_waiter_add(w, g_next_task++, &o, (uint64_t)i);
    }
    if (await_polls(m)) g_cancel_failures++;
    sleep_ms(50);
    double t0 = mono_ms(), last = t0;
    cm_waiter_shutdown(w);
    long out = 0, cancelled = 0;
    for (;;) {
        uint64_t tag;
        cm_result *r = NULL;
        cm_code c = cm_waiter_next(w, NEXT_TIMEOUT_MS, &tag, &r);
        if (c != CM_OK) {
            if (c != CM_ERR_CANCELLED) {
                fprintf(stderr, "scale: HANG? after cm_waiter_shutdown: %s, %ld of %ld out\n", cm_code_name(c), out,
                        total);
                g_cancel_failures++;
            }
            break;
        }
        last = mono_ms();
        out++;
        cancelled += cm_result_code(r) == CM_ERR_CANCELLED;
        cm_result_free(r);
    }
    printf("CANCEL case=waiter_shutdown n=%ld all_out_ms=%.3f ok=%ld\n", total, last - t0, cancelled);
    if (cancelled != total) g_cancel_failures++;
    cm_waiter_free(w);
    emu_must("POST", "/_emulator/reset", "");
    cm_client_free(g_client);
    return g_cancel_failures ? 1 : 0;
}

/* ---- main --------------------------------------------------------------------------------- */

static void set_url(const char *url) {
    snprintf(g_url, sizeof g_url, "%s", url);
    const char *colon = strrchr(url, ':');
    g_port = colon ? atoi(colon + 1) : 0;
    if (strncmp(url, "http://127.0.0.1:", 17) != 0 || g_port <= 0) {
        fprintf(stderr, "scale: URL must be http://127.0.0.1:PORT (the emulator)\n");
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc == 8 && (strcmp(argv[1], "waiter") == 0 || strcmp(argv[1], "threads") == 0)) {
        set_url(argv[2]);
        long n = atol(argv[3]);
        if (n < 1) return 2;
        return run_scale(strcmp(argv[1], "threads") == 0, n, (uint32_t)atol(argv[4]), (uint32_t)atol(argv[5]),
                         (uint32_t)atol(argv[6]), (unsigned)atol(argv[7]));
    }
    if (argc == 4 && strcmp(argv[1], "cancel") == 0) {
        set_url(argv[2]);
        return run_cancel((unsigned)atol(argv[3]));
    }
    fprintf(stderr,
            "usage: %s waiter|threads URL N FIRST_MS INTERVAL_MS DELAY_MS MAX_CONNECTIONS\n"
            "       %s cancel URL MAX_CONNECTIONS\n",
            argv[0], argv[0]);
    return 2;
}
