/*
 * One process of the cross-language account guard test (scripts/test-budget-processes.sh):
 * waits until START_MS (Unix milliseconds, so that the processes of a storm start together),
 * then runs ACTION COUNT times through the C API and prints what it saw, one line:
 *
 *   c ACTION: local=L service=S ok=O other=X requests=R
 *
 * local: CM_ERR_API with the api code EXPECT and no request (the guard's answer); service: the
 * same code with requests (the service's); ok: CM_OK; other: anything else (printed to stderr);
 * requests: the sum of cm_result_request_count. ACTION is
 *   wait           COUNT waits on one waiter (one request each at most, no first delay);
 *   getTaskResult, createTask, getBalance
 *                  COUNT calls from CALL_THREADS threads at once (getTaskResult asks TASK_ID);
 *   endStops       cm_client_end_stops once.
 * The client holds MAX_CONNECTIONS connections, so that the guard's bound (at most
 * max_connections + 1 requests a process before the stop) is small.
 *
 * Usage: CAPMONSTER_BUDGET_FILE=/abs/path guard BASE_URL KEY START_MS ACTION COUNT TASK_ID EXPECT
 * (the file the processes share: the script's own, never the user's, so it is required).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capmonster.h"

#define MAX_CONNECTIONS 4
#define CALL_THREADS 4
#define IMAGE_TASK "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}"

static const char *action, *expect;
static int64_t task_id;
static cm_client *client;

/* What the calls of one thread saw; summed at the end. */
typedef struct {
    int count;
    long local, service, ok, other, requests;
} tally;

/* Counts one outcome and frees it; the first few unexpected ones are printed. */
static void count(tally *t, cm_code code, cm_result *r) {
    const char *api = cm_result_api_error_code(r);
    uint32_t requests = cm_result_request_count(r);
    int expected = code == CM_ERR_API && api != NULL && strcmp(api, expect) == 0;
    t->requests += requests;
    if (expected && requests > 0) t->service++;
    else if (expected && cm_result_http_status(r) == 0 && strstr(cm_result_message(r), "was not sent") != NULL)
        t->local++;
    else if (code == CM_OK) t->ok++;
    else if (++t->other <= 3)
        fprintf(stderr, "c %s: %s (%s, %u requests): %s\n", action, cm_code_name(code), api != NULL ? api : "-",
                (unsigned)requests, cm_result_message(r));
    cm_result_free(r);
}

static void *call_storm(void *arg) {
    tally *t = arg;
    int i;
    for (i = 0; i < t->count; i++) {
        cm_result *r = NULL;
        cm_code code;
        int64_t created;
        double balance;
        if (strcmp(action, "getTaskResult") == 0) code = cm_get_task_result(client, task_id, &r);
        else if (strcmp(action, "createTask") == 0) code = cm_create_task(client, IMAGE_TASK, NULL, &created, &r);
        else code = cm_get_balance(client, &balance, &r);
        count(t, code, r);
    }
    return NULL;
}

static int wait_storm(tally *t, int waits) {
    cm_waiter *waiter = NULL;
    cm_wait_options options;
    int i;
    if (cm_waiter_new(client, &waiter) != CM_OK) return 1;
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.max_requests = 1;
    options.timeout_ms = 60000;
    for (i = 0; i < waits; i++)
        if (cm_waiter_add(waiter, i + 1, &options, (uint64_t)i) != CM_OK) return 1;
    for (i = 0; i < waits; i++) {
        uint64_t tag;
        cm_result *r = NULL;
        if (cm_waiter_next(waiter, 60000, &tag, &r) != CM_OK) {
            fprintf(stderr, "c wait: the waiter gave %d of %d waits\n", i, waits);
            return 1;
        }
        count(t, cm_result_code(r), r);
    }
    cm_waiter_free(waiter);
    return 0;
}

/* Sleeps until `start_ms` (Unix milliseconds); at once when it has passed. */
static void sleep_until(long long start_ms) {
    struct timespec now, left;
    long long now_ms, wait_ms;
    clock_gettime(CLOCK_REALTIME, &now);
    now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    wait_ms = start_ms - now_ms;
    if (wait_ms <= 0) return;
    left.tv_sec = (time_t)(wait_ms / 1000);
    left.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
    nanosleep(&left, NULL);
}

int main(int argc, char **argv) {
    tally total = {0, 0, 0, 0, 0, 0}, parts[CALL_THREADS];
    pthread_t threads[CALL_THREADS];
    int n, i;
    cm_result *r = NULL;
    if (argc != 8 || getenv("CAPMONSTER_BUDGET_FILE") == NULL) {
        fprintf(stderr, "usage: CAPMONSTER_BUDGET_FILE=/absolute/path %s BASE_URL KEY START_MS ACTION COUNT TASK_ID EXPECT\n",
                argv[0]);
        return 2;
    }
    action = argv[4];
    n = atoi(argv[5]);
    task_id = strtoll(argv[6], NULL, 10);
    expect = argv[7];
    if (cm_client_new(argv[2], &client, &r) != CM_OK || cm_client_set_base_url(client, argv[1], &r) != CM_OK ||
        cm_client_set_proxy(client, NULL, &r) != CM_OK ||
        cm_client_set_max_connections(client, MAX_CONNECTIONS, &r) != CM_OK) {
        fprintf(stderr, "c: %s\n", cm_result_message(r));
        return 1;
    }
    cm_result_free(r);
    sleep_until(strtoll(argv[3], NULL, 10));

    if (strcmp(action, "wait") == 0) {
        if (wait_storm(&total, n) != 0) return 1;
    } else if (strcmp(action, "endStops") == 0) {
        cm_code code = cm_client_end_stops(client, &r);
        count(&total, code, r);
    } else if (strcmp(action, "getTaskResult") == 0 || strcmp(action, "createTask") == 0 ||
               strcmp(action, "getBalance") == 0) {
        for (i = 0; i < CALL_THREADS; i++) {
            memset(&parts[i], 0, sizeof parts[i]);
            parts[i].count = n / CALL_THREADS + (i < n % CALL_THREADS);
            if (pthread_create(&threads[i], NULL, call_storm, &parts[i]) != 0) return 1;
        }
        for (i = 0; i < CALL_THREADS; i++) {
            pthread_join(threads[i], NULL);
            total.local += parts[i].local;
            total.service += parts[i].service;
            total.ok += parts[i].ok;
            total.other += parts[i].other;
            total.requests += parts[i].requests;
        }
    } else {
        fprintf(stderr, "c: unknown action %s\n", action);
        return 2;
    }
    cm_client_free(client);
    printf("c %s: local=%ld service=%ld ok=%ld other=%ld requests=%ld\n", action, total.local, total.service,
           total.ok, total.other, total.requests);
    return 0;
}
