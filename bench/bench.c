/*
 * The C side of the benchmark (see bench/README.md). One source, two programs:
 *
 *   gcc -O2 -DCONTENDER_LIB  ... -lcapmonster        -> bench_lib
 *   gcc -O2 -DCONTENDER_CURL ... -lcurl -lcjson      -> bench_curl
 *
 * bench_X run URL THREADS CALLS WARMUP
 *     THREADS threads make CALLS getTaskResult calls in all (CALLS/THREADS each) after WARMUP
 *     calls in all; libcapmonster: one client shared by every thread; libcurl: one easy handle
 *     per thread (easy handles cannot be shared), each reused (keep-alive). Every answer is
 *     checked: errorId 0, status "processing". Prints one line:
 *     RESULT threads=.. calls=.. warmup=.. elapsed_s=.. us_per_call=.. calls_per_s=.. p50_us=.. p99_us=..
 *            cpu_us_per_call=.. sys_us_per_call=.. vcsw_per_call=.. errors=..
 *     (CPU time and voluntary context switches of the whole process over the measured calls)
 *
 * bench_lib wait URL READY_AFTER_MS FIRST_DELAY_MS INTERVAL_MS   (libcapmonster only)
 *     Creates an ImageToTextTask on the emulator that turns ready READY_AFTER_MS after its
 *     creation, calls cm_wait_result with that schedule and prints
 *     WAIT late_ms=.. requests=.. code=.. create_ms=..
 *
 * BENCH_LOG_LEVEL=1..5 (bench_lib): a log callback set at that level (CM_LOG_ERROR .. CM_LOG_TRACE)
 * that counts its lines (atomically: any thread may call it), for the cost of a call with a
 * callback set (run.sh --log); the count goes to stderr at the end.
 *
 * BENCH_CURL_SPLIT=1 (diagnostic, bench_curl): the body goes through a read callback, which
 * libcurl writes after the head in a second send, as ureq 3 does; see run.sh --profile.
 *
 * Task ids: the library refuses the 121st getTaskResult per (key, task id) in a process, so
 * every contender moves to a new task id every 100 calls (thread t uses ids from
 * 1 + t * 100000000). The server answers the same body whatever the id.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(CONTENDER_LIB)
#include "capmonster.h"
#elif defined(CONTENDER_CURL)
#include <cjson/cJSON.h>
#include <curl/curl.h>
#else
#error "define CONTENDER_LIB or CONTENDER_CURL"
#endif

#define CALLS_PER_TASK 100
#define KEY "bench-key"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *g_url;

typedef struct {
    int index;
    long warmup;
    long calls;
    long next_call; /* how many calls this thread made so far: picks the task id */
    long errors;
    double *latency; /* seconds, one per measured call */
#if defined(CONTENDER_CURL)
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    char buf[4096];
    size_t len;
    const char *body; /* the body left to send, for BENCH_CURL_SPLIT */
    size_t body_left;
#endif
} worker;

static pthread_barrier_t g_start, g_done;

#if defined(CONTENDER_LIB)

static cm_client *g_client;
static unsigned long g_log_lines;

static void CM_CALL count_line(void *user_data, cm_log_level level, const char *event, const char *message) {
    (void)user_data, (void)level, (void)event, (void)message;
    __atomic_add_fetch(&g_log_lines, 1, __ATOMIC_RELAXED);
}

static void setup_shared(void) {
    cm_client *c = NULL;
    const char *log_level = getenv("BENCH_LOG_LEVEL");
    if (log_level != NULL && cm_set_log_callback(atoi(log_level), count_line, NULL) != CM_OK) {
        fprintf(stderr, "bench_lib: BENCH_LOG_LEVEL=%s is not a level (1..5)\n", log_level);
        exit(2);
    }
    if (cm_client_new(KEY, &c, NULL) != CM_OK || cm_client_set_base_url(c, g_url, NULL) != CM_OK ||
        cm_client_set_proxy(c, NULL, NULL) != CM_OK) {
        fprintf(stderr, "bench_lib: cannot set up the client for %s\n", g_url);
        exit(2);
    }
    g_client = c;
}

static void setup_worker(worker *w) { (void)w; }
static void teardown_worker(worker *w) { (void)w; }
static void teardown_shared(void) {
    cm_client_free(g_client);
    if (getenv("BENCH_LOG_LEVEL") != NULL) fprintf(stderr, "bench_lib: %lu log lines\n", g_log_lines);
}

/* One getTaskResult; 0 when the answer was the expected "processing". */
static int one_call(worker *w, int64_t task_id) {
    cm_result *r = NULL;
    cm_code code = cm_get_task_result(g_client, task_id, &r);
    int ok = code == CM_OK && cm_result_is_ready(r) == 0;
    if (!ok && w->errors == 0)
        fprintf(stderr, "bench_lib: task %" PRId64 ": %s: %s\n", task_id, cm_code_name(code), cm_result_message(r));
    cm_result_free(r);
    return ok ? 0 : 1;
}

#else /* CONTENDER_CURL */

/* BENCH_CURL_SPLIT=1: send the head and the body in two writes (see on_read). */
static int g_split;

static void setup_shared(void) {
    const char *split = getenv("BENCH_CURL_SPLIT");
    g_split = split && *split && strcmp(split, "0") != 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bench_curl: curl_global_init failed\n");
        exit(2);
    }
}

static size_t on_data(char *data, size_t size, size_t n, void *user) {
    worker *w = user;
    size_t bytes = size * n;
    if (w->len + bytes >= sizeof w->buf) return 0; /* too big: abort the transfer */
    memcpy(w->buf + w->len, data, bytes);
    w->len += bytes;
    return bytes;
}

static size_t on_read(char *data, size_t size, size_t n, void *user) {
    worker *w = user;
    size_t bytes = size * n < w->body_left ? size * n : w->body_left;
    memcpy(data, w->body, bytes);
    w->body += bytes;
    w->body_left -= bytes;
    return bytes;
}

static void setup_worker(worker *w) {
    size_t n = strlen(g_url) + sizeof "/getTaskResult";
    w->url = malloc(n);
    snprintf(w->url, n, "%s/getTaskResult", g_url);
    w->curl = curl_easy_init();
    w->headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(w->curl, CURLOPT_URL, w->url);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_PROXY, ""); /* like cm_client_set_proxy(NULL) */
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, 21000L); /* the library's default bound */
    if (g_split) {
        curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(w->curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(w->curl, CURLOPT_READDATA, w);
    }
}

static void teardown_worker(worker *w) {
    curl_easy_cleanup(w->curl);
    curl_slist_free_all(w->headers);
    free(w->url);
}

static void teardown_shared(void) { curl_global_cleanup(); }

static int one_call(worker *w, int64_t task_id) {
    char body[128];
    int n = snprintf(body, sizeof body, "{\"clientKey\":\"" KEY "\",\"taskId\":%" PRId64 "}", task_id);
    if (g_split) {
        /* Diagnostic variant: the body through a read callback, which libcurl sends in a
         * write of its own after the head, as ureq does. */
        w->body = body;
        w->body_left = (size_t)n;
        curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE, (long)n);
    } else {
        curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE, (long)n);
        curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, body);
    }
    w->len = 0;
    CURLcode rc = curl_easy_perform(w->curl);
    long status = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    int ok = 0;
    if (rc == CURLE_OK && status == 200) {
        cJSON *json = cJSON_ParseWithLength(w->buf, w->len);
        cJSON *error_id = cJSON_GetObjectItemCaseSensitive(json, "errorId");
        cJSON *state = cJSON_GetObjectItemCaseSensitive(json, "status");
        ok = cJSON_IsNumber(error_id) && error_id->valuedouble == 0 && cJSON_IsString(state) &&
             strcmp(state->valuestring, "processing") == 0;
        cJSON_Delete(json);
    }
    if (!ok && w->errors == 0)
        fprintf(stderr, "bench_curl: task %" PRId64 ": %s, HTTP %ld, %zu bytes\n", task_id, curl_easy_strerror(rc),
                status, w->len);
    return ok ? 0 : 1;
}

#endif

static int64_t next_task_id(worker *w) {
    int64_t id = 1 + (int64_t)w->index * 100000000 + w->next_call / CALLS_PER_TASK;
    w->next_call++;
    return id;
}

/* The measured calls: a function of its own so that callgrind can collect only inside it
 * (--collect-atstart=no --toggle-collect=measured_loop). */
__attribute__((noinline)) void measured_loop(worker *w) {
    for (long i = 0; i < w->calls; i++) {
        double t0 = now_s();
        w->errors += one_call(w, next_task_id(w));
        w->latency[i] = now_s() - t0;
    }
}

static void *thread_main(void *arg) {
    worker *w = arg;
    setup_worker(w);
    for (long i = 0; i < w->warmup; i++) w->errors += one_call(w, next_task_id(w));
    pthread_barrier_wait(&g_start);
    measured_loop(w);
    pthread_barrier_wait(&g_done);
    teardown_worker(w);
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run(int threads, long calls, long warmup) {
    if (threads < 1 || calls < threads) {
        fprintf(stderr, "run: need 1 <= THREADS <= CALLS\n");
        return 2;
    }
    long per_thread = calls / threads;
    long warm_per_thread = warmup / threads > 10 ? warmup / threads : 10;
    calls = per_thread * threads;
    setup_shared();
    worker *ws = calloc((size_t)threads, sizeof *ws);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    double *latency = calloc((size_t)calls, sizeof *latency);
    pthread_barrier_init(&g_start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&g_done, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        ws[t].index = t;
        ws[t].warmup = warm_per_thread;
        ws[t].calls = per_thread;
        ws[t].latency = latency + (size_t)t * (size_t)per_thread;
        if (pthread_create(&ids[t], NULL, thread_main, &ws[t]) != 0) {
            fprintf(stderr, "run: cannot start thread %d\n", t);
            return 2;
        }
    }
    struct rusage u0, u1;
    pthread_barrier_wait(&g_start);
    double t0 = now_s();
    getrusage(RUSAGE_SELF, &u0);
    pthread_barrier_wait(&g_done);
    double elapsed = now_s() - t0;
    getrusage(RUSAGE_SELF, &u1);
    long errors = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        errors += ws[t].errors;
    }
    teardown_shared();
    qsort(latency, (size_t)calls, sizeof *latency, cmp_double);
#define TV_US(tv) ((double)(tv).tv_sec * 1e6 + (double)(tv).tv_usec)
    double cpu_us = TV_US(u1.ru_utime) - TV_US(u0.ru_utime) + TV_US(u1.ru_stime) - TV_US(u0.ru_stime);
    double sys_us = TV_US(u1.ru_stime) - TV_US(u0.ru_stime);
    printf("RESULT threads=%d calls=%ld warmup=%ld elapsed_s=%.6f us_per_call=%.3f calls_per_s=%.1f p50_us=%.2f "
           "p99_us=%.2f cpu_us_per_call=%.2f sys_us_per_call=%.2f vcsw_per_call=%.2f errors=%ld\n",
           threads, calls, warm_per_thread * threads, elapsed, elapsed * 1e6 / (double)calls,
           (double)calls / elapsed, latency[calls / 2] * 1e6, latency[(size_t)((double)calls * 0.99)] * 1e6,
           cpu_us / (double)calls, sys_us / (double)calls, (double)(u1.ru_nvcsw - u0.ru_nvcsw) / (double)calls,
           errors);
    free(latency);
    free(ids);
    free(ws);
    return errors == 0 ? 0 : 1;
}

#if defined(CONTENDER_LIB)
static int wait_case(long ready_after_ms, long first_delay_ms, long interval_ms) {
    setup_shared();
    char task[160];
    snprintf(task, sizeof task,
             "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":%ld}", ready_after_ms);
    int64_t id = 0;
    cm_result *r = NULL;
    double c0 = now_s();
    cm_code code = cm_create_task(g_client, task, NULL, &id, &r);
    double c1 = now_s();
    if (code != CM_OK) {
        fprintf(stderr, "wait: createTask: %s: %s\n", cm_code_name(code), cm_result_message(r));
        return 1;
    }
    cm_result_free(r);
    /* The emulator stamps the task between c0 and c1 (well under a millisecond on loopback). */
    double ready_at = (c0 + c1) / 2 + (double)ready_after_ms / 1000;
    cm_wait_options o;
    cm_wait_options_init(&o);
    o.first_delay_ms = (uint32_t)first_delay_ms;
    o.interval_ms = (uint32_t)interval_ms;
    o.timeout_ms = 60000;
    r = NULL;
    code = cm_wait_result(g_client, id, &o, &r);
    double returned = now_s();
    int ready = cm_result_is_ready(r);
    printf("WAIT late_ms=%.2f requests=%u code=%s ready=%d create_ms=%.3f\n", (returned - ready_at) * 1e3,
           cm_result_request_count(r), cm_code_name(code), ready, (c1 - c0) * 1e3);
    cm_result_free(r);
    teardown_shared();
    return code == CM_OK && ready ? 0 : 1;
}
#endif

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "run") == 0) {
        g_url = argv[2];
        return run(atoi(argv[3]), atol(argv[4]), atol(argv[5]));
    }
#if defined(CONTENDER_LIB)
    if (argc == 6 && strcmp(argv[1], "wait") == 0) {
        g_url = argv[2];
        return wait_case(atol(argv[3]), atol(argv[4]), atol(argv[5]));
    }
#endif
    fprintf(stderr,
            "usage: %s run URL THREADS CALLS WARMUP\n"
            "       %s wait URL READY_AFTER_MS FIRST_DELAY_MS INTERVAL_MS (libcapmonster only)\n",
            argv[0], argv[0]);
    return 2;
}
