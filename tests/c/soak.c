/*
 * Soak: SOAK_CALLS calls (default 200,000) on one client from 8 threads against the emulator,
 * through every result path, checking each call's code; reports the resident memory (VmRSS)
 * at 10% and at 100% of the calls and fails if it grew by more than 5 MiB.
 *
 * Usage: soak BASE_URL   (a fresh emulator; scripts/soak.sh builds and runs it)
 *
 * The mix, per thread, repeating every 100 calls (so each path runs in every thread within
 * the first 100 calls, and the 10% point comes after every path is warm once SOAK_CALLS is
 * at least 8,000: below that the growth is reported but not judged):
 *   78  cm_get_balance                                 CM_OK
 *    1  cm_get_balance_with, a timeout and a live cancel CM_OK
 *    1  cm_get_task_result_with, a triggered cancel     CM_ERR_CANCELLED, 0 requests
 *   12  cm_get_task_result, a ready or a processing task CM_OK (ready 1 / 0)
 *    2  cm_wait_result on a ready task                  CM_OK, 1 request
 *    1  cm_get_task_result, task id 0                   CM_ERR_INVALID_ARGUMENT
 *    1  cm_get_balance, NULL client                     CM_ERR_INVALID_ARGUMENT
 *    1  cm_create_task, task JSON "[1]"                 CM_ERR_INVALID_ARGUMENT
 *    1  cm_get_task_result, a task that never existed   CM_ERR_API (ERROR_NO_SUCH_CAPCHA_ID)
 *    1  cm_wait_result, a task that never existed       CM_ERR_API, 1 request (0 once the account
 *                                                    guard pauses unknown tasks: a storm of wrong ids)
 *    1  cm_wait_result with a triggered cancel          CM_ERR_CANCELLED, 0 requests
 * A task is polled at most 100 times (the budget is 120): then that call creates the next
 * one instead (cm_create_task, CM_OK). Every result is read through every accessor and freed.
 *
 * Built with -O2 -pthread against target/release/libcapmonster.so.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capmonster.h"
#include "own_budget.h"

#define THREADS 8
#define POLLS_PER_TASK 100
#define MAX_GROWTH_KIB (5 * 1024)
#define MIN_JUDGED_CALLS 8000

static cm_client *client;
static long total_calls;

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static long calls_done;
static long rss_at_10_kib = -1;
static double seconds_at_10;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double start_s;

/* A line of /proc/self/status, in KiB ("VmRSS", "VmHWM"); -1 if unreadable. */
static long status_kib(const char *field) {
    char line[256];
    long value = -1;
    size_t n = strlen(field);
    FILE *status = fopen("/proc/self/status", "r");
    if (status == NULL) return -1;
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            value = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(status);
    return value;
}

static void count_call(void) {
    pthread_mutex_lock(&progress_lock);
    calls_done++;
    if (calls_done == total_calls / 10) {
        rss_at_10_kib = status_kib("VmRSS");
        seconds_at_10 = now_s() - start_s;
    }
    pthread_mutex_unlock(&progress_lock);
}

enum op {
    OP_BALANCE,
    OP_POLL,
    OP_WAIT_READY,
    OP_INVALID_TASK_ID,
    OP_NULL_CLIENT,
    OP_INVALID_TASK_JSON,
    OP_UNKNOWN_TASK,
    OP_WAIT_UNKNOWN_TASK,
    OP_CANCELLED,
    OP_BALANCE_WITH,
    OP_POLL_CANCELLED_WITH,
    OP_CREATE,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "balance", "poll", "wait ready", "task id 0", "NULL client", "bad task JSON", "unknown task",
    "wait unknown task", "cancelled wait", "balance_with", "cancelled poll_with", "create task",
};

static enum op op_for(long j) {
    int slot = (int)(j % 100);
    if (slot < 78) return OP_BALANCE;
    if (slot == 78) return OP_BALANCE_WITH;
    if (slot == 79) return OP_POLL_CANCELLED_WITH;
    if (slot < 92) return OP_POLL;
    if (slot < 94) return OP_WAIT_READY;
    switch (slot) {
    case 94: return OP_INVALID_TASK_ID;
    case 95: return OP_NULL_CLIENT;
    case 96: return OP_INVALID_TASK_JSON;
    case 97: return OP_UNKNOWN_TASK;
    case 98: return OP_WAIT_UNKNOWN_TASK;
    default: return OP_CANCELLED;
    }
}

struct task {
    int64_t id;
    int polls;
    long solve_after_ms;
};

struct worker {
    int index;
    long calls;
    long done[OP_COUNT];
    long unexpected;
    char first_unexpected[512];
    struct task ready, processing;
};

/* Reads every accessor of a result (the strings are built once, borrowed), then frees it. */
static void read_and_free(cm_result *r) {
    volatile size_t sink = 0;
    const char *text;
    sink += (size_t)cm_result_code(r) + (size_t)cm_result_is_ready(r) + (size_t)cm_result_task_id(r);
    sink += cm_result_request_count(r) + (size_t)cm_result_http_status(r);
    text = cm_result_solution_json(r);
    if (text != NULL) sink += strlen(text);
    text = cm_result_solution_string(r, "text");
    if (text != NULL) sink += strlen(text);
    text = cm_result_api_error_code(r);
    if (text != NULL) sink += strlen(text);
    text = cm_result_api_error_description(r);
    if (text != NULL) sink += strlen(text);
    sink += strlen(cm_result_message(r));
    (void)sink;
    cm_result_free(r);
}

static void unexpected(struct worker *w, enum op op, cm_code code, const cm_result *r, const char *why) {
    if (w->unexpected++ == 0) {
        snprintf(w->first_unexpected, sizeof w->first_unexpected, "thread %d, %s: %s (%s: %s)", w->index,
                 op_names[op], why, cm_code_name(code), cm_result_message(r));
    }
}

static void wait_options(cm_wait_options *options) {
    cm_wait_options_init(options);
    options->first_delay_ms = 0;
    options->interval_ms = 1;
    options->timeout_ms = 10000;
}

static void *work(void *arg) {
    struct worker *w = arg;
    long j;
    for (j = 0; j < w->calls; j++) {
        enum op op = op_for(j);
        struct task *task = (j % 2) ? &w->ready : &w->processing;
        cm_result *r = NULL;
        cm_wait_options options;
        cm_code code;
        double balance = 0;
        int64_t unknown = (int64_t)500000000000LL + (int64_t)w->index * 1000000000LL + j;

        if (op == OP_WAIT_READY) task = &w->ready;
        if ((op == OP_POLL || op == OP_WAIT_READY) && task->polls >= POLLS_PER_TASK) op = OP_CREATE;

        switch (op) {
        case OP_BALANCE:
            code = cm_get_balance(client, &balance, &r);
            if (code != CM_OK || balance <= 0) unexpected(w, op, code, r, "expected CM_OK and a balance");
            break;
        case OP_POLL:
            code = cm_get_task_result(client, task->id, &r);
            task->polls++;
            if (code != CM_OK || cm_result_is_ready(r) != (task == &w->ready))
                unexpected(w, op, code, r, "expected CM_OK, ready only for the ready task");
            break;
        case OP_WAIT_READY:
            wait_options(&options);
            code = cm_wait_result(client, task->id, &options, &r);
            task->polls++;
            if (code != CM_OK || cm_result_request_count(r) != 1 || cm_result_solution_string(r, "text") == NULL)
                unexpected(w, op, code, r, "expected CM_OK after 1 request, with a text");
            break;
        case OP_INVALID_TASK_ID:
            code = cm_get_task_result(client, 0, &r);
            if (code != CM_ERR_INVALID_ARGUMENT) unexpected(w, op, code, r, "expected CM_ERR_INVALID_ARGUMENT");
            break;
        case OP_NULL_CLIENT:
            code = cm_get_balance(NULL, &balance, &r);
            if (code != CM_ERR_INVALID_ARGUMENT) unexpected(w, op, code, r, "expected CM_ERR_INVALID_ARGUMENT");
            break;
        case OP_INVALID_TASK_JSON: {
            int64_t id = 0;
            code = cm_create_task(client, "[1]", NULL, &id, &r);
            if (code != CM_ERR_INVALID_ARGUMENT) unexpected(w, op, code, r, "expected CM_ERR_INVALID_ARGUMENT");
            break;
        }
        case OP_UNKNOWN_TASK:
            code = cm_get_task_result(client, unknown, &r);
            if (code != CM_ERR_API || cm_result_api_error_code(r) == NULL ||
                strcmp(cm_result_api_error_code(r), "ERROR_NO_SUCH_CAPCHA_ID") != 0)
                unexpected(w, op, code, r, "expected CM_ERR_API ERROR_NO_SUCH_CAPCHA_ID");
            break;
        case OP_WAIT_UNKNOWN_TASK:
            wait_options(&options);
            code = cm_wait_result(client, unknown, &options, &r);
            /* Each id asked once: the guard pauses unknown tasks after 20 wrong ids in 60 s. */
            if (code != CM_ERR_API || cm_result_request_count(r) > 1)
                unexpected(w, op, code, r, "expected CM_ERR_API after at most 1 request");
            break;
        case OP_CANCELLED: {
            cm_cancel *cancel = NULL;
            cm_cancel_new(&cancel);
            cm_cancel_trigger(cancel);
            wait_options(&options);
            options.cancel = cancel;
            code = cm_wait_result(client, w->processing.id > 0 ? w->processing.id : 1, &options, &r);
            cm_cancel_free(cancel);
            if (code != CM_ERR_CANCELLED || cm_result_request_count(r) != 0)
                unexpected(w, op, code, r, "expected CM_ERR_CANCELLED after 0 requests");
            break;
        }
        case OP_BALANCE_WITH: {
            cm_cancel *cancel = NULL;
            cm_call_options call_options;
            cm_cancel_new(&cancel);
            cm_call_options_init(&call_options);
            call_options.timeout_ms = 10000;
            call_options.cancel = cancel;
            code = cm_get_balance_with(client, &call_options, &balance, &r);
            cm_cancel_free(cancel);
            if (code != CM_OK || balance <= 0) unexpected(w, op, code, r, "expected CM_OK and a balance");
            break;
        }
        case OP_POLL_CANCELLED_WITH: {
            cm_cancel *cancel = NULL;
            cm_call_options call_options;
            cm_cancel_new(&cancel);
            cm_cancel_trigger(cancel);
            cm_call_options_init(&call_options);
            call_options.cancel = cancel;
            code = cm_get_task_result_with(client, w->processing.id > 0 ? w->processing.id : 1, &call_options, &r);
            cm_cancel_free(cancel);
            if (code != CM_ERR_CANCELLED || cm_result_request_count(r) != 0)
                unexpected(w, op, code, r, "expected CM_ERR_CANCELLED after 0 requests");
            break;
        }
        case OP_CREATE: {
            char json[160];
            int64_t id = 0;
            sprintf(json, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":%ld}",
                    task->solve_after_ms);
            code = cm_create_task(client, json, NULL, &id, &r);
            if (code != CM_OK || id <= 0) unexpected(w, op, code, r, "expected CM_OK and a task id");
            task->id = id;
            task->polls = 0;
            break;
        }
        default:
            code = CM_ERR_INTERNAL;
            break;
        }
        (void)code;
        w->done[op]++;
        read_and_free(r);
        count_call();
    }
    return NULL;
}

int main(int argc, char **argv) {
    struct worker workers[THREADS];
    pthread_t threads[THREADS];
    const char *calls_env = getenv("SOAK_CALLS");
    long rss_at_end_kib, peak_kib, unexpected_total = 0, growth;
    double seconds;
    int i, op, judged, failed = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: SOAK_CALLS=N %s EMULATOR_BASE_URL\n", argv[0]);
        return 2;
    }
    total_calls = calls_env ? strtol(calls_env, NULL, 10) : 200000;
    if (total_calls < THREADS * 10) {
        fprintf(stderr, "SOAK_CALLS must be at least %d\n", THREADS * 10);
        return 2;
    }
    use_own_budget();
    if (cm_client_new("soak-client-key", &client, NULL) != CM_OK ||
        cm_client_set_base_url(client, argv[1], NULL) != CM_OK || cm_client_set_proxy(client, NULL, NULL) != CM_OK) {
        fprintf(stderr, "cannot make a client for %s\n", argv[1]);
        return 2;
    }
    printf("soak: %ld calls, %d threads, one client, %s\n", total_calls, THREADS, argv[1]);
    start_s = now_s();
    for (i = 0; i < THREADS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].index = i;
        workers[i].calls = total_calls / THREADS + (i < total_calls % THREADS ? 1 : 0);
        /* No task yet: the first poll of each creates one. */
        workers[i].ready.polls = POLLS_PER_TASK;
        workers[i].ready.solve_after_ms = 0;
        workers[i].processing.polls = POLLS_PER_TASK;
        workers[i].processing.solve_after_ms = 86400000;
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 2;
        }
    }
    for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    seconds = now_s() - start_s;
    rss_at_end_kib = status_kib("VmRSS");
    peak_kib = status_kib("VmHWM");

    for (op = 0; op < OP_COUNT; op++) {
        long n = 0;
        for (i = 0; i < THREADS; i++) n += workers[i].done[op];
        printf("  %-20s %8ld calls\n", op_names[op], n);
    }
    for (i = 0; i < THREADS; i++) {
        unexpected_total += workers[i].unexpected;
        if (workers[i].unexpected > 0) fprintf(stderr, "unexpected: %s\n", workers[i].first_unexpected);
    }
    growth = rss_at_end_kib - rss_at_10_kib;
    judged = total_calls >= MIN_JUDGED_CALLS;
    printf("calls: %ld in %.2f s (%.0f calls/s); unexpected codes: %ld\n", calls_done, seconds,
           (double)calls_done / seconds, unexpected_total);
    printf("VmRSS at 10%% (%ld calls, %.2f s): %ld KiB; at 100%%: %ld KiB; growth %+ld KiB (limit %d KiB%s); "
           "peak %ld KiB\n",
           total_calls / 10, seconds_at_10, rss_at_10_kib, rss_at_end_kib, growth, MAX_GROWTH_KIB,
           judged ? "" : ", not judged below 8,000 calls", peak_kib);
    if (unexpected_total > 0) failed = 1;
    if (rss_at_10_kib < 0 || rss_at_end_kib < 0) {
        fprintf(stderr, "could not read VmRSS from /proc/self/status\n");
        failed = 1;
    } else if (judged && growth > MAX_GROWTH_KIB) {
        fprintf(stderr, "resident memory grew by %ld KiB between 10%% and 100%% of the calls (limit %d KiB)\n",
                growth, MAX_GROWTH_KIB);
        failed = 1;
    }
    cm_client_free(client);
    printf("soak: %s\n", failed ? "FAILED" : "passed");
    return failed;
}
