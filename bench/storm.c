/*
 * The storm benchmark's driver (see bench/README.md, "Storm"): one process of a program that
 * keeps calling while the service refuses its key, its address or its balance. storm.sh runs
 * it against the emulator, with the account guard on and off, and counts what reaches the
 * emulator.
 *
 *   storm waits   URL KEY CODE N INTERVAL_MS MAX_CONNECTIONS [START_AT_MS]
 *   storm create  URL KEY CODE N THREADS MAX_CONNECTIONS [START_AT_MS]
 *   storm one     URL KEY CODE
 *   storm control URL METHOD PATH [BODY]
 *
 * waits: N waits on one cm_waiter, wait j with first delay INTERVAL_MS * j / N (first polls
 * spread over one interval, as waits of tasks made at a steady rate) and that interval.
 * create: N cm_create_task calls, THREADS threads taking turns on one client. one: one
 * cm_create_task (a process that starts, calls once and exits). Every call is expected to end
 * CM_ERR_API with the service's error CODE, answered by the service (request count >= 1) or
 * by the library's guard (request count 0). START_AT_MS (wall clock, ms since the epoch)
 * holds the calls until then, so that several processes start together. Prints one line
 *   STORM kind=.. n=.. sent=.. answered=.. local=.. wrong=.. first_answer_ms=.. last_end_ms=..
 *         after_first_ms=.. wall_ms=..
 * sent: the requests the calls made (the sum of cm_result_request_count); answered / local:
 * calls the service / the guard answered; wrong: calls that ended any other way; times in ms
 * from the start of the calls (monotonic clock): the first call back with the service's
 * answer, the last call back, and the time between them.
 *
 * control: one request to the emulator's control endpoints; prints the answer's body.
 *
 * Exit status: 0 when every call ended with CODE, 1 otherwise, 2 on a bad setup.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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

#define BENCH_NAME "storm"
#include "bench_client.h"
#include "capmonster.h"
#include "emulator_http.h"

#define NEXT_TIMEOUT_MS 60000 /* no wait out for this long is a hang */
#define MAX_THREADS 256
#define TASK_JSON "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}"

static double clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
static double mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static void sleep_ms(double ms) {
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (double)(time_t)(ms / 1e3) * 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the emulator's control endpoints (raw HTTP/1.1, one connection per request) ---------- */

static int g_port;

static void set_url(const char *url) {
    const char *colon = strrchr(url, ':');
    g_port = colon ? atoi(colon + 1) : 0;
    if (strncmp(url, "http://127.0.0.1:", 17) != 0 || g_port <= 0) {
        fprintf(stderr, "storm: URL must be http://127.0.0.1:PORT (the emulator)\n");
        exit(2);
    }
}

/* One request to the emulator (emulator_http.h). */
static char *emu(const char *method, const char *path, const char *body, int *status) {
    return emulator_request(g_port, method, path, body, status);
}

/* ---- the calls and their outcomes ----------------------------------------------------------- */

static const char *g_code; /* the service's error every call should end with */
static double g_t0;        /* the start of the calls, monotonic */

/* What the calls ended with, updated by every thread that takes an outcome. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static long g_sent, g_answered, g_local, g_wrong, g_done;
static double g_first_answer = -1, g_last_end = -1;

static void tally(cm_code code, const cm_result *r) {
    double now = mono_ms() - g_t0;
    uint32_t requests = cm_result_request_count(r);
    const char *api = cm_result_api_error_code(r);
    int expected = code == CM_ERR_API && api != NULL && strcmp(api, g_code) == 0;
    pthread_mutex_lock(&g_lock);
    if (!expected && g_wrong++ == 0)
        fprintf(stderr, "storm: a call ended %s (%s), not %s: %s\n", cm_code_name(code), api ? api : "no api error",
                g_code, cm_result_message(r));
    g_sent += requests;
    if (expected && requests > 0) {
        g_answered++;
        if (g_first_answer < 0) g_first_answer = now;
    } else if (expected) {
        g_local++;
    }
    g_done++;
    if (now > g_last_end) g_last_end = now;
    pthread_mutex_unlock(&g_lock);
}

/* Holds the calls until START_AT_MS (wall clock), then starts their clock. */
static void start_at(double wall_ms) {
    sleep_ms(wall_ms - clock_ms(CLOCK_REALTIME));
    g_t0 = mono_ms();
}

static int report(const char *kind, long n, unsigned max_connections, long hung) {
    double wall = mono_ms() - g_t0;
    printf("STORM kind=%s n=%ld max_connections=%u sent=%ld answered=%ld local=%ld wrong=%ld first_answer_ms=%.1f "
           "last_end_ms=%.1f after_first_ms=%.1f wall_ms=%.1f\n",
           kind, n, max_connections, g_sent, g_answered, g_local, g_wrong + hung, g_first_answer, g_last_end,
           g_first_answer < 0 ? -1.0 : g_last_end - g_first_answer, wall);
    fflush(stdout);
    return g_wrong + hung == 0 && g_done == n ? 0 : 1;
}

/* Takes every outcome of a waiter as it comes, on its own thread: started before the waits are
 * added, so that an outcome is timed when the library hands it over, not after the last add. */
typedef struct {
    cm_waiter *waiter;
    long n;
    long hung;
} take_arg;

static void *take_thread(void *arg) {
    take_arg *a = arg;
    for (long got = 0; got < a->n; got++) {
        uint64_t tag;
        cm_result *r = NULL;
        cm_code c = cm_waiter_next(a->waiter, NEXT_TIMEOUT_MS, &tag, &r);
        if (c != CM_OK) {
            fprintf(stderr, "storm: HANG? cm_waiter_next: %s after %ld of %ld waits\n", cm_code_name(c), got, a->n);
            a->hung = a->n - got;
            break;
        }
        tally(cm_result_code(r), r);
        cm_result_free(r);
    }
    return NULL;
}

/* N waits on one waiter, first polls spread over one interval. */
static int run_waits(const char *url, const char *key, long n, uint32_t interval_ms, unsigned max_connections,
                     double start_wall) {
    cm_client *client = new_client(url, key, max_connections);
    cm_waiter *waiter = NULL;
    must(cm_waiter_new(client, &waiter), NULL, "cm_waiter_new");
    take_arg taker = {waiter, n, 0};
    pthread_t taker_id;
    start_at(start_wall);
    pthread_create(&taker_id, NULL, take_thread, &taker);
    for (long j = 0; j < n; j++) {
        cm_wait_options o;
        cm_wait_options_init(&o);
        o.first_delay_ms = (uint32_t)((uint64_t)interval_ms * (uint64_t)j / (uint64_t)n);
        o.interval_ms = interval_ms;
        /* Task ids of their own: the service refuses the call before looking at the task. */
        if (cm_waiter_add(waiter, 1000 + j, &o, (uint64_t)j) != CM_OK) {
            fprintf(stderr, "storm: cm_waiter_add %ld refused\n", j);
            return 2;
        }
    }
    pthread_join(taker_id, NULL);
    int rc = report("waits", n, max_connections, taker.hung);
    cm_waiter_free(waiter);
    cm_client_free(client);
    return rc;
}

/* createTask from several threads taking turns on one client. */
typedef struct {
    cm_client *client;
    long calls;
} create_arg;

static void *create_thread(void *arg) {
    create_arg *a = arg;
    for (long i = 0; i < a->calls; i++) {
        int64_t task_id = 0;
        cm_result *r = NULL;
        cm_code c = cm_create_task(a->client, TASK_JSON, NULL, &task_id, &r);
        tally(c, r);
        cm_result_free(r);
    }
    return NULL;
}

static int run_create(const char *url, const char *key, long n, long threads, unsigned max_connections,
                      double start_wall) {
    if (threads < 1 || threads > MAX_THREADS) return 2;
    cm_client *client = new_client(url, key, max_connections);
    pthread_t ids[MAX_THREADS];
    create_arg args[MAX_THREADS];
    start_at(start_wall);
    for (long t = 0; t < threads; t++) {
        args[t] = (create_arg){client, n / threads + (t < n % threads)};
        pthread_create(&ids[t], NULL, create_thread, &args[t]);
    }
    for (long t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    int rc = report("create", n, max_connections, 0);
    cm_client_free(client);
    return rc;
}

int main(int argc, char **argv) {
    if ((argc == 8 || argc == 9) && (strcmp(argv[1], "waits") == 0 || strcmp(argv[1], "create") == 0)) {
        set_url(argv[2]);
        g_code = argv[4];
        long n = atol(argv[5]), x = atol(argv[6]);
        unsigned max_connections = (unsigned)atol(argv[7]);
        double start_wall = argc == 9 ? atof(argv[8]) : 0;
        if (n < 1 || x < 1 || max_connections < 1) return 2;
        if (argv[1][0] == 'w') return run_waits(argv[2], argv[3], n, (uint32_t)x, max_connections, start_wall);
        return run_create(argv[2], argv[3], n, x, max_connections, start_wall);
    }
    if (argc == 5 && strcmp(argv[1], "one") == 0) {
        set_url(argv[2]);
        g_code = argv[4];
        cm_client *client = new_client(argv[2], argv[3], 64);
        g_t0 = mono_ms();
        int64_t task_id = 0;
        cm_result *r = NULL;
        cm_code c = cm_create_task(client, TASK_JSON, NULL, &task_id, &r);
        tally(c, r);
        cm_result_free(r);
        cm_client_free(client);
        return report("one", 1, 64, 0);
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "control") == 0) {
        set_url(argv[2]);
        int status;
        char *body = emu(argv[3], argv[4], argc == 6 ? argv[5] : NULL, &status);
        if (!body || status != 200) {
            fprintf(stderr, "storm: %s %s: HTTP %d %s\n", argv[3], argv[4], status, body ? body : "(no answer)");
            return 2;
        }
        printf("%s\n", body);
        free(body);
        return 0;
    }
    fprintf(stderr,
            "usage: %s waits   URL KEY CODE N INTERVAL_MS MAX_CONNECTIONS [START_AT_MS]\n"
            "       %s create  URL KEY CODE N THREADS MAX_CONNECTIONS [START_AT_MS]\n"
            "       %s one     URL KEY CODE\n"
            "       %s control URL METHOD PATH [BODY]\n",
            argv[0], argv[0], argv[0], argv[0]);
    return 2;
}
