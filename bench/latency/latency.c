/*
 * The latency benchmark's libcapmonster driver (see bench/README.md, "Latency"): N waits on one
 * cm_waiter against the emulator started with `--answer-delay-ms D --stamp-ready`, every task
 * ready READY_MS after its own first poll (POST /_emulator/tasks with readyAfterFirstPollMs),
 * as issue 23 tried it.
 *
 *   latency API_URL CONTROL_PORT N INTERVAL_MS SPREAD_MS READY_MS DELAY_MS MAX_CONNECTIONS
 *
 * API_URL is where the client sends (the emulator, or a proxy in front of it; an https URL
 * takes the CA file in LATENCY_CA_FILE); CONTROL_PORT is the emulator's own port on 127.0.0.1
 * for its control endpoints. Wait j has first delay SPREAD_MS * j / N (0: all polled at once)
 * and INTERVAL_MS between polls. Prints one line
 *   LATENCY contender=lib n=.. key=value ...
 * with the time until every wait was out of cm_waiter_next, requests per wait
 * (cm_result_request_count) against what the schedule implies, lateness (the emulator's
 * readiness stamp -> cm_waiter_next returned the wait, wall clock), the library's threads
 * (peak of /proc/self/task minus the program's own two), peak RSS, and the emulator's
 * connection counters. bench/latency/go prints the same line for the Go contender.
 *
 * LATENCY_CLIENTS=W (1 to 16, default 1) splits the waits over W clients, each with
 * MAX_CONNECTIONS / W connections and one waiter, wait j on client j % W, each waiter drained by
 * a thread of the program's own: a client's waiters share its engine, whose event loop is one
 * thread, so W clients use up to W CPUs (the threads count leaves out the program's W
 * collectors).
 *
 * Exit status: 0 when every wait ended ready, 1 otherwise, 2 on a bad setup.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_NAME "latency"
#include "../bench_client.h"
#include "../bench_util.h"
#include "../emulator_http.h"
#include "../proc_status.h"
#include "capmonster.h"

#define KEY "bench-key"
#define QUIET_MS 60000 /* no wait coming out for this long is reported as a hang */
#define MOST_CLIENTS 16

static int g_port;

static char *emu(const char *method, const char *path, const char *body, int *status) {
    return emulator_request(g_port, method, path, body, status);
}

typedef struct {
    double ret_wall;  /* cm_waiter_next returned it */
    double ready_wall; /* the emulator's stamp: when the task turned ready; -1 when none */
    int32_t code;
    int32_t ready;
    uint32_t requests;
} wait_rec;

/* One client's share of the waits, taken out of its waiter by a thread of its own. */
typedef struct {
    cm_waiter *waiter;
    long expected; /* waits added to it */
    long n;        /* all waits: tags are below it */
    wait_rec *recs;
    atomic_int *hang;
} collector;

static void *collect(void *arg) {
    collector *c = arg;
    for (long got = 0; got < c->expected; got++) {
        uint64_t tag = 0;
        cm_result *r = NULL;
        cm_code code = cm_waiter_next(c->waiter, QUIET_MS, &tag, &r);
        double wall = wall_ms();
        if (code != CM_OK || tag >= (uint64_t)c->n) {
            fprintf(stderr, "latency: HANG? cm_waiter_next: %s after %ld of %ld waits\n", cm_code_name(code), got,
                    c->expected);
            atomic_store(c->hang, 1);
            cm_result_free(r);
            break;
        }
        wait_rec *rec = &c->recs[tag];
        rec->ret_wall = wall;
        rec->code = cm_result_code(r);
        rec->ready = cm_result_is_ready(r);
        rec->requests = cm_result_request_count(r);
        const char *stamp = cm_result_solution_string(r, "emulatorReadyAtUs");
        rec->ready_wall = stamp ? (double)strtoll(stamp, NULL, 10) / 1e3 : -1;
        cm_result_free(r);
    }
    return NULL;
}

/* Requests the schedule implies with every answer taking delay_ms: poll k reaches the emulator
 * at first + k * (interval + delay) and the task is ready ready_ms after poll 0. */
static long schedule_polls(uint32_t interval_ms, uint32_t ready_ms, uint32_t delay_ms) {
    long k = 0;
    while ((double)k * (interval_ms + delay_ms) < ready_ms) k++;
    return k + 1;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s API_URL CONTROL_PORT N INTERVAL_MS SPREAD_MS READY_MS DELAY_MS MAX_CONNECTIONS\n",
                argv[0]);
        return 2;
    }
    const char *url = argv[1];
    g_port = atoi(argv[2]);
    long n = atol(argv[3]);
    uint32_t interval_ms = (uint32_t)atol(argv[4]), spread_ms = (uint32_t)atol(argv[5]);
    uint32_t ready_ms = (uint32_t)atol(argv[6]), delay_ms = (uint32_t)atol(argv[7]);
    unsigned max_connections = (unsigned)atol(argv[8]);
    if (n < 1 || g_port <= 0) return 2;
    const char *clients_env = getenv("LATENCY_CLIENTS");
    int nclients = clients_env && *clients_env ? atoi(clients_env) : 1;
    if (nclients < 1 || nclients > MOST_CLIENTS || (unsigned)nclients > max_connections) {
        fprintf(stderr, "latency: LATENCY_CLIENTS must be 1 to %d, and at most MAX_CONNECTIONS\n", MOST_CLIENTS);
        return 2;
    }
    /* A control request to an emulator that closed its connection (out of connections at the
       biggest runs) reports an error rather than killing the driver with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    cm_client *clients[MOST_CLIENTS] = {0};
    cm_result *r = NULL;
    const char *ca = getenv("LATENCY_CA_FILE");
    for (int i = 0; i < nclients; i++) {
        clients[i] = new_client(url, KEY, max_connections / (unsigned)nclients);
        if (ca && *ca) {
            r = NULL;
            must(cm_client_set_ca_file(clients[i], ca, &r), r, "cm_client_set_ca_file");
        }
    }

    pthread_t sampler_id;
    pthread_create(&sampler_id, NULL, sampler, NULL);
    wait_rec *recs = calloc((size_t)n, sizeof *recs);
    double *late = calloc((size_t)n, sizeof *late);
    if (!recs || !late) return 2;

    int status;
    char *reply = emu("POST", "/_emulator/reset", "", &status);
    free(reply);
    if (status != 200) {
        fprintf(stderr, "latency: cannot reset the emulator on port %d\n", g_port);
        return 2;
    }
    char body[256];
    snprintf(body, sizeof body, "{\"type\":\"ImageToTextTask\",\"count\":%ld,\"readyAfterFirstPollMs\":%u}", n,
             ready_ms);
    char *made = emu("POST", "/_emulator/tasks", body, &status);
    int64_t first_task = json_int(made, "firstTaskId");
    if (status != 200 || first_task <= 0) {
        fprintf(stderr, "latency: POST /_emulator/tasks: HTTP %d %s\n", status, made ? made : "(no answer)");
        return 2;
    }
    free(made);

    cm_waiter *ws[MOST_CLIENTS] = {0};
    for (int i = 0; i < nclients; i++)
        if (cm_waiter_new(clients[i], &ws[i]) != CM_OK) return 2;
    double add0 = mono_ms(), add0_wall = wall_ms();
    for (long j = 0; j < n; j++) {
        cm_wait_options o;
        cm_wait_options_init(&o);
        o.first_delay_ms = (uint32_t)((uint64_t)spread_ms * (uint64_t)j / (uint64_t)n);
        o.interval_ms = interval_ms;
        cm_code c = cm_waiter_add(ws[j % nclients], first_task + j, &o, (uint64_t)j);
        if (c != CM_OK) {
            fprintf(stderr, "latency: cm_waiter_add %ld: %s\n", j, cm_code_name(c));
            return 2;
        }
    }
    double add_ms = mono_ms() - add0;

    atomic_int hang = 0;
    collector collectors[MOST_CLIENTS];
    pthread_t collector_ids[MOST_CLIENTS];
    for (int i = 0; i < nclients; i++) {
        collectors[i] = (collector){ws[i], n / nclients + (i < n % nclients), n, recs, &hang};
        if (pthread_create(&collector_ids[i], NULL, collect, &collectors[i]) != 0) return 2;
    }
    for (int i = 0; i < nclients; i++) pthread_join(collector_ids[i], NULL);
    double all_done_s = (mono_ms() - add0) / 1e3;
    atomic_store(&g_sampling, 0);
    pthread_join(sampler_id, NULL);
    long hwm = status_kib("VmHWM:");

    long ok = 0, req_sum = 0, nlate = 0, first_fail = -1;
    double last_ready_wall = 0; /* the last task to turn ready: READY_MS after the last first poll */
    for (long j = 0; j < n; j++) {
        wait_rec *rec = &recs[j];
        req_sum += rec->requests;
        if (rec->ready_wall > last_ready_wall) last_ready_wall = rec->ready_wall;
        if (rec->code == CM_OK && rec->ready) {
            ok++;
            if (rec->ready_wall > 0) late[nlate++] = rec->ret_wall - rec->ready_wall;
        } else if (first_fail < 0) {
            first_fail = j;
        }
    }
    if (first_fail >= 0)
        fprintf(stderr, "latency: wait %ld (task %" PRId64 ") ended %s, ready %d, %u requests\n", first_fail,
                first_task + first_fail, cm_code_name(recs[first_fail].code), recs[first_fail].ready,
                recs[first_fail].requests);
    char *stats = emu("GET", "/_emulator/stats", NULL, &status);
    pct p = percentiles(late, nlate);
    printf("LATENCY contender=lib max_connections=%u n=%ld interval_ms=%u spread_ms=%u ready_ms=%u delay_ms=%u "
           "add_ms=%.1f all_done_s=%.2f ok=%ld hang=%d req_per_wait=%.3f req_schedule=%ld emu_requests=%lld "
           "late_n=%ld late_p50_ms=%.1f late_p99_ms=%.1f late_max_ms=%.1f threads_peak=%d hwm_kib=%ld "
           "emu_connections=%lld emu_peak_connections=%lld first_polls_ms=%.0f clients=%d emu_http2_requests=%lld\n",
           max_connections, n, interval_ms, spread_ms, ready_ms, delay_ms, add_ms, all_done_s, ok, hang,
           (double)req_sum / (double)n, schedule_polls(interval_ms, ready_ms, delay_ms),
           json_int(stats, "getTaskResult"), nlate, p.p50, p.p99, p.max,
           atomic_load(&g_peak_threads) - OWN_THREADS - nclients,
           hwm, json_int(stats, "connections"), json_int(stats, "peakConnections"),
           last_ready_wall > 0 ? last_ready_wall - ready_ms - add0_wall : -1.0, nclients,
           json_int(stats, "http2Requests"));
    fflush(stdout);
    free(stats);
    for (int i = 0; i < nclients; i++) {
        cm_waiter_free(ws[i]);
        cm_client_free(clients[i]);
    }
    free(recs);
    free(late);
    return ok == n && !atomic_load(&hang) ? 0 : 1;
}
