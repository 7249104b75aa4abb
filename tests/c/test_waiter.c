/*
 * C tests of the 0.2 API against the emulator: cm_waiter (20,000 waits on few threads, its fd
 * in poll(2), several takers, shutdown and free with waits pending, the client freed first,
 * timeouts, budgets and errors of its waits, one waiter's shutdown sparing another, solves:
 * createTask then wait), cancels
 * that reach a request in flight for every kind of call on new and pooled connections, cancels
 * racing the end of calls, per-call timeouts, the connection cap shared by blocking calls and
 * a waiter, the setters' messages, and a malformed proxy in the environment.
 *
 * Usage: test_waiter BASE_URL   (a fresh emulator, no script: the test scripts it itself)
 *   TEST_WAITER_WAITS=N  waits of the big waiter test (default 20,000; scripts/test-c.sh uses
 *                        fewer under valgrind)
 *
 * Stalls are scripted at 10 s: a call that returns within a second of its cancel was stopped
 * in flight. Threads (/proc/self/task) and descriptors (/proc/self/fd) are counted before and
 * after, so a thread or a socket left behind fails the test; valgrind and LeakSanitizer check
 * the memory (scripts/test-c.sh, scripts/test-hardening.sh).
 *
 * C99: -std=c99 -Wall -Wextra -Werror -pedantic.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
/* MinGW's C runtime has _putenv_s, which also sets the process environment the library reads;
 * an empty value removes the variable. */
static int setenv(const char *name, const char *value, int overwrite) {
    (void)overwrite;
    return _putenv_s(name, value);
}
static int unsetenv(const char *name) {
    return _putenv_s(name, "");
}
#else
#include <dirent.h>
#include <poll.h>
#include <unistd.h>
#endif

#include "capmonster.h"
#include "check.h"

#define CHECK_CODE(actual, expected)                                                           \
    do {                                                                                       \
        cm_code actual_ = (actual);                                                            \
        checks++;                                                                              \
        if (actual_ != (expected)) {                                                           \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s: got %s, expected %s\n", __FILE__, __LINE__, __func__,  \
                    cm_code_name(actual_), cm_code_name(expected));                            \
        }                                                                                      \
    } while (0)

/* A bound checked with its value shown on failure. */
#define CHECK_LESS(value, bound)                                                               \
    do {                                                                                       \
        double value_ = (double)(value), bound_ = (double)(bound);                             \
        checks++;                                                                              \
        if (!(value_ < bound_)) {                                                              \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s: %s = %.1f, expected < %.1f\n", __FILE__, __LINE__,     \
                    __func__, #value, value_, bound_);                                         \
        }                                                                                      \
    } while (0)

/* How long the scripted stalls last, and how soon after its cancel a call must be back. */
#define STALL_MS 10000
#define CANCEL_BOUND_MS 1000.0

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

#ifdef _WIN32
/* No /proc on Windows: the counts of threads, descriptors and sockets are -1, so the checks that
 * they come back to their baseline pass trivially and those comparing them skip (COUNTS 0).
 * main says so. */
#define COUNTS 0
static long threads_now(void) {
    return -1;
}
static long fds_now(void) {
    return -1;
}
static long sockets_now(void) {
    return -1;
}
#else
#define COUNTS 1
/* Entries of a /proc directory (threads or descriptors of this process); -1 if unreadable.
 * Counting /proc/self/fd includes the directory's own descriptor: same for every count. */
static long count_entries(const char *path) {
    long n = 0;
    struct dirent *entry;
    DIR *dir = opendir(path);
    if (dir == NULL) return -1;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] != '.') n++;
    }
    closedir(dir);
    return n;
}

static long threads_now(void) {
    return count_entries("/proc/self/task");
}

static long fds_now(void) {
    return count_entries("/proc/self/fd");
}

/* Open sockets of this process. */
static long sockets_now(void) {
    char path[300], target[64];
    long n = 0;
    struct dirent *entry;
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return -1;
    while ((entry = readdir(dir)) != NULL) {
        ssize_t length;
        if (entry->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
        length = readlink(path, target, sizeof target - 1);
        if (length > 0) {
            target[length] = '\0';
            if (strncmp(target, "socket:", 7) == 0) n++;
        }
    }
    closedir(dir);
    return n;
}
#endif

/* Waits up to `timeout_ms` for `count()` to come back to `expected`; the last count. Threads
 * that were joined and sockets that were closed leave /proc a moment later at most. */
static long settle(long (*count)(void), long expected, long timeout_ms) {
    double deadline = now_ms() + (double)timeout_ms;
    long n = count();
    while (n != expected && now_ms() < deadline) {
        sleep_ms(5);
        n = count();
    }
    return n;
}

/* Creates an image task that is ready `solve_after_ms` after creation; 0 on failure. */
static int64_t create_task(const cm_client *client, long solve_after_ms) {
    char task[160];
    int64_t task_id = 0;
    cm_result *r = NULL;
    snprintf(task, sizeof task,
             "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":%ld}", solve_after_ms);
    if (cm_create_task(client, task, NULL, &task_id, &r) != CM_OK) {
        fprintf(stderr, "createTask failed: %s\n", cm_result_message(r));
        task_id = 0;
    }
    cm_result_free(r);
    return task_id;
}

/* Scripts getTaskResult of `task_id` (or, with task_id 0, every request to `method`) to stall
 * for `ms` and close; ms 0 removes the script. */
static int script_stall(int64_t task_id, const char *method, long ms) {
    char entry[256];
    char steps[96];
    if (ms > 0) {
        snprintf(steps, sizeof steps, "[{\"fault\":\"stall\",\"ms\":%ld}]", ms);
    } else {
        snprintf(steps, sizeof steps, "[]");
    }
    if (task_id > 0) {
        snprintf(entry, sizeof entry, "{\"taskId\":%lld,\"steps\":%s}", (long long)task_id, steps);
    } else {
        snprintf(entry, sizeof entry, "{\"method\":\"%s\",\"steps\":%s}", method, steps);
    }
    return emulator_script(entry);
}

/* Wait options that poll at once, then every `interval_ms`, for up to a minute. */
static void quick_options(cm_wait_options *options, uint32_t interval_ms) {
    cm_wait_options_init(options);
    options->first_delay_ms = 0;
    options->interval_ms = interval_ms;
    options->timeout_ms = 60000;
}

/*
 * Triggers a token once the emulator has received the request of interest (so the call is
 * blocked on the stalled answer: in flight), plus `extra_ms`. `task_id` > 0: the task's
 * getTaskResult count; `method`: that method's count; neither: just `extra_ms` after the
 * start. `before`: the count before the call.
 */
struct trigger {
    cm_cancel *cancel;
    int64_t task_id;
    const char *method;
    long before;
    long extra_ms;
    int saw_request;
    double triggered_at;
    long sockets_at_trigger; /* this process's open sockets just before the trigger */
};

static long request_count(const struct trigger *t) {
    return t->task_id > 0 ? emulator_task_requests(t->task_id) : emulator_method_requests(t->method);
}

static void *trigger_in_flight(void *arg) {
    struct trigger *t = arg;
    double deadline = now_ms() + 10000;
    if (t->task_id <= 0 && t->method == NULL) t->saw_request = 1;
    while (!t->saw_request && now_ms() < deadline) {
        if (request_count(t) > t->before) {
            t->saw_request = 1;
            break;
        }
        sleep_ms(5);
    }
    sleep_ms(t->extra_ms);
    t->sockets_at_trigger = sockets_now();
    t->triggered_at = now_ms();
    cm_cancel_trigger(t->cancel);
    return NULL;
}

static void start_trigger(struct trigger *t, pthread_t *thread, int64_t task_id, const char *method) {
    t->task_id = task_id;
    t->method = method;
    t->before = (task_id > 0 || method != NULL) ? request_count(t) : 0;
    t->extra_ms = 100;
    t->saw_request = 0;
    t->triggered_at = 0;
    CHECK(cm_cancel_new(&t->cancel) == CM_OK);
    CHECK(pthread_create(thread, NULL, trigger_in_flight, t) == 0);
}

/* ---------------------------------------------------------------------------------------- */
/* A malformed proxy in the environment (runs first: setenv before any thread exists)        */
/* ---------------------------------------------------------------------------------------- */

static const char *const proxy_variables[] = {"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
                                              "all_proxy",   "ALL_PROXY",   "no_proxy",   "NO_PROXY"};
#define PROXY_VARIABLES (sizeof proxy_variables / sizeof proxy_variables[0])

static void test_malformed_proxy_in_the_environment(void) {
    char *saved[PROXY_VARIABLES];
    cm_client *client = NULL;
    cm_result *r = NULL;
    cm_waiter *waiter = NULL;
    cm_wait_options options;
    double balance = -7.0;
    int64_t task_id = -7;
    uint64_t tag = 0;
    long balances_before;
    size_t i;

    for (i = 0; i < PROXY_VARIABLES; i++) {
        const char *value = getenv(proxy_variables[i]);
        saved[i] = value ? strdup(value) : NULL;
        unsetenv(proxy_variables[i]);
    }
    /* An https base URL reads https_proxy, an http one http_proxy (curl's rules). */
    setenv("https_proxy", "http://[::1", 1);
    setenv("http_proxy", "http://127.0.0.1:99999", 1);

    /* Creating the client does not fail: the calls report the variable. */
    CHECK_CODE(cm_client_new("c-env-proxy-key", &client, &r), CM_OK);
    CHECK(client != NULL && cm_result_code(r) == CM_OK);
    cm_result_free(r);
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(r), "https_proxy"));
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* At the emulator (http://): http_proxy now, for every kind of call; nothing is sent. */
    CHECK_CODE(cm_client_set_base_url(client, base_url, &r), CM_OK);
    cm_result_free(r);
    balances_before = emulator_method_requests("getBalance");
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(r), "http_proxy") && !contains(cm_result_message(r), "https_proxy"));
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);
    CHECK(emulator_method_requests("getBalance") == balances_before);
    CHECK(balance == -7.0);
    CHECK_CODE(cm_get_task_result(client, 1, &r), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(r), "http_proxy"));
    cm_result_free(r);
    CHECK_CODE(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", NULL, &task_id, &r),
               CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(r), "http_proxy"));
    CHECK(task_id == -7);
    cm_result_free(r);
    /* A waiter's wait ends with it at once (not retried as a network error). */
    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    quick_options(&options, 10);
    CHECK_CODE(cm_waiter_add(waiter, 1, &options, 42), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    CHECK(tag == 42 && cm_result_code(r) == CM_ERR_INVALID_ARGUMENT && contains(cm_result_message(r), "http_proxy"));
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);
    cm_waiter_free(waiter);

    /* cm_client_set_proxy(NULL) overrides the environment: direct, and it works. */
    CHECK_CODE(cm_client_set_proxy(client, NULL, &r), CM_OK);
    cm_result_free(r);
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_OK);
    CHECK(balance > 0);
    cm_result_free(r);
    cm_client_free(client);

    /* no_proxy naming the host: the malformed variable is not used at all. */
    setenv("no_proxy", "localhost,127.0.0.1", 1);
    CHECK_CODE(cm_client_new("c-env-proxy-key", &client, NULL), CM_OK);
    CHECK_CODE(cm_client_set_base_url(client, base_url, NULL), CM_OK);
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_OK);
    cm_result_free(r);
    cm_client_free(client);
    unsetenv("no_proxy");

    /* A well-formed http_proxy is used: nothing listens on port 1. */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    CHECK_CODE(cm_client_new("c-env-proxy-key", &client, NULL), CM_OK);
    CHECK_CODE(cm_client_set_base_url(client, base_url, NULL), CM_OK);
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_ERR_NETWORK);
    CHECK(contains(cm_result_message(r), "proxy"));
    cm_result_free(r);
    cm_client_free(client);

    for (i = 0; i < PROXY_VARIABLES; i++) {
        if (saved[i] != NULL) {
            setenv(proxy_variables[i], saved[i], 1);
        } else {
            unsetenv(proxy_variables[i]);
        }
        free(saved[i]);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* The setters' messages                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* A setter call with `&r`: `expected`, the same code in the result, a message naming `name`. */
#define CHECK_MESSAGE(call, r, expected, name)                                                 \
    do {                                                                                       \
        (r) = NULL;                                                                            \
        CHECK_CODE((call), (expected));                                                        \
        CHECK((r) != NULL && cm_result_code(r) == (expected));                                 \
        checks++;                                                                              \
        if (!contains(cm_result_message(r), (name))) {                                         \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: the message \"%s\" does not name \"%s\"\n", __FILE__,       \
                    __LINE__, cm_result_message(r), (name));                                   \
        }                                                                                      \
        cm_result_free(r);                                                                     \
        (r) = NULL;                                                                            \
    } while (0)

static void test_setter_messages(void) {
    cm_client *client = emulator_client("c-setter-messages");
    cm_client *other = NULL;
    cm_result *r = NULL;
    double balance = 0;

    CHECK_MESSAGE(cm_client_set_max_connections(client, 0, &r), r, CM_ERR_INVALID_ARGUMENT, "max_connections");
    CHECK_CODE(cm_client_set_max_connections(client, 0, NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_MESSAGE(cm_client_set_engine(client, 0, &r), r, CM_ERR_INVALID_ARGUMENT, "CM_ENGINE_EVENT_LOOP (1)");
    CHECK_MESSAGE(cm_client_set_engine(client, 3, &r), r, CM_ERR_INVALID_ARGUMENT, "got 3");
    CHECK_MESSAGE(cm_client_set_engine(NULL, CM_ENGINE_THREADS, &r), r, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_MESSAGE(cm_client_set_engine(client, CM_ENGINE_THREADS, &r), r, CM_OK, "worker threads");
    CHECK_MESSAGE(cm_client_set_engine(client, CM_ENGINE_EVENT_LOOP, &r), r, CM_OK, "event loop");
    CHECK_MESSAGE(cm_client_set_max_connections(NULL, 4, &r), r, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_MESSAGE(cm_client_set_max_connections(client, 1, &r), r, CM_OK, "max_connections");
    CHECK_MESSAGE(cm_client_set_max_connections(client, UINT32_MAX, &r), r, CM_OK, "");
    CHECK_CODE(cm_client_set_max_connections(client, 64, NULL), CM_OK);
    CHECK_MESSAGE(cm_client_set_base_url(client, "http://example.com", &r), r, CM_ERR_INVALID_ARGUMENT, "base_url");
    CHECK_MESSAGE(cm_client_set_base_url(client, "ftp://127.0.0.1", &r), r, CM_ERR_INVALID_ARGUMENT, "base_url");
    CHECK_MESSAGE(cm_client_set_base_url(client, NULL, &r), r, CM_ERR_INVALID_ARGUMENT, "base_url");
    CHECK_MESSAGE(cm_client_set_request_timeout_ms(client, 0, &r), r, CM_ERR_INVALID_ARGUMENT, "timeout_ms");
    CHECK_MESSAGE(cm_client_set_proxy(client, "gopher://127.0.0.1:70", &r), r, CM_ERR_INVALID_ARGUMENT, "proxy_url");
    CHECK_MESSAGE(cm_client_set_ca_file(client, "/no/such/dir/ca.pem", &r), r, CM_ERR_INVALID_ARGUMENT, "ca_file");
    CHECK_MESSAGE(cm_client_new("", &other, &r), r, CM_ERR_INVALID_ARGUMENT, "client_key");
    CHECK(other == NULL);
    /* The client key never shows, not even in the success message of its creation. */
    CHECK_CODE(cm_client_new("c-secret-key-0123456789abcdef", &other, &r), CM_OK);
    CHECK(cm_result_code(r) == CM_OK && !contains(cm_result_message(r), "c-secret-key-0123456789abcdef"));
    cm_result_free(r);
    cm_client_free(other);
    /* Refused settings changed nothing: the client still talks to the emulator. */
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_OK);
    cm_result_free(r);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* 20,000 waits on one waiter                                                                */
/* ---------------------------------------------------------------------------------------- */

#define MANY_MAX_CONNECTIONS 16
#define TAG_BASE 0xC0FFEE0000000000ull

/* `engine`: the library's threads stay within the thread engine's cap (+4), or within the event
 * loop's three (its timer thread, the loop, a resolver, which an IP literal never needs). */
static void test_many_waits(long waits, cm_engine engine) {
    cm_client *client = emulator_client(engine == CM_ENGINE_THREADS ? "c-waiter-many" : "c-waiter-many-events");
    long thread_bound = engine == CM_ENGINE_THREADS ? MANY_MAX_CONNECTIONS + 4 : 3;
    cm_waiter *waiter = NULL;
    cm_result *r = NULL;
    cm_wait_options options;
    int64_t *task_ids = calloc((size_t)waits, sizeof *task_ids);
    unsigned char *seen = calloc((size_t)waits, 1);
    long baseline_threads, peak_threads, i, wrong = 0, created = 0, taken = 0;
    unsigned long long requests = 0;
    double start, added_at, done_at;

    if (task_ids == NULL || seen == NULL) abort();
    CHECK_CODE(cm_client_set_max_connections(client, MANY_MAX_CONNECTIONS, NULL), CM_OK);
    CHECK_CODE(cm_client_set_engine(client, engine, NULL), CM_OK);
    baseline_threads = threads_now();
    peak_threads = baseline_threads;
    start = now_ms();
    for (i = 0; i < waits; i++) {
        task_ids[i] = create_task(client, 300);
        if (task_ids[i] > 0) created++;
    }
    CHECK(created == waits);

    /* First poll 250 ms after the add, then every 100 ms (ready 300 ms after creation). */
    cm_wait_options_init(&options);
    options.first_delay_ms = 250;
    options.interval_ms = 100;
    options.timeout_ms = 120000;
    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    added_at = now_ms();
    for (i = 0; i < waits; i++) {
        if (cm_waiter_add(waiter, task_ids[i], &options, TAG_BASE + (uint64_t)i) != CM_OK) wrong++;
    }
    CHECK(wrong == 0);
    CHECK(cm_waiter_pending(waiter) == (uint64_t)waits); /* none taken yet */

    for (taken = 0; taken < waits; taken++) {
        uint64_t tag = 0;
        uint64_t index;
        cm_code code = cm_waiter_next(waiter, 60000, &tag, &r);
        if (code != CM_OK) {
            fprintf(stderr, "cm_waiter_next: %s after %ld waits\n", cm_code_name(code), taken);
            CHECK(code == CM_OK);
            break;
        }
        index = tag - TAG_BASE;
        if (tag < TAG_BASE || index >= (uint64_t)waits || seen[index]++ != 0 || cm_result_code(r) != CM_OK ||
            cm_result_is_ready(r) != 1 || cm_result_task_id(r) != task_ids[index] ||
            cm_result_solution_string(r, "text") == NULL || strcmp(cm_result_solution_string(r, "text"), "answer") != 0 ||
            strcmp(cm_result_solution_json(r), "{\"text\":\"answer\"}") != 0) {
            if (wrong++ < 5) {
                fprintf(stderr, "wrong wait: tag %llx, %s: %s\n", (unsigned long long)tag,
                        cm_code_name(cm_result_code(r)), cm_result_message(r));
            }
        }
        requests += cm_result_request_count(r);
        cm_result_free(r);
        if (taken % 64 == 0) {
            long threads = threads_now();
            if (threads > peak_threads) peak_threads = threads;
        }
    }
    done_at = now_ms();
    CHECK(taken == waits);
    CHECK(wrong == 0);
    for (i = 0; i < waits; i++) {
        if (seen[i] != 1) wrong++;
    }
    CHECK(wrong == 0); /* every tag came out exactly once */
    CHECK(cm_waiter_pending(waiter) == 0);
    CHECK_CODE(cm_waiter_next(waiter, 0, &(uint64_t){0}, &r), CM_ERR_TIMEOUT);
    CHECK(r == NULL);
    /* Ready 300 ms after creation, polled from 250 ms on: at least one request each, never a
     * burst (a poll every 100 ms at most). */
    CHECK(requests >= (unsigned long long)waits && requests <= 4ull * (unsigned long long)waits + 100);
    CHECK(peak_threads - baseline_threads <= thread_bound);
    cm_waiter_free(waiter);
    CHECK(settle(threads_now, baseline_threads, 5000) == baseline_threads);
    printf("waiter, %s: %ld waits (created in %.0f ms) came out in %.0f ms after the last add, %llu requests, "
           "at most %ld library threads (at most %ld)\n",
           engine == CM_ENGINE_THREADS ? "threads" : "event loop", waits, added_at - start, done_at - added_at,
           requests, peak_threads - baseline_threads, thread_bound);
    free(task_ids);
    free(seen);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* The fd in poll(2)                                                                         */
/* ---------------------------------------------------------------------------------------- */

#ifdef _WIN32
/* Windows: cm_waiter_fd has no descriptor to give (-1); cm_waiter_next is tested below. */
static void test_fd_readiness(void) {
    cm_client *client = emulator_client("c-waiter-fd");
    cm_waiter *waiter = NULL;
    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    CHECK(cm_waiter_fd(waiter) == -1);
    cm_waiter_free(waiter);
    cm_client_free(client);
    printf("skipped on Windows: test_fd_readiness's poll(2) of the waiter's fd (cm_waiter_fd is -1)\n");
}
#else
/* poll(2) on `fd` for readability: 1 readable, 0 not within `timeout_ms`, -1 error. */
static int readable(int fd, int timeout_ms) {
    struct pollfd p;
    int n;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    n = poll(&p, 1, timeout_ms);
    if (n < 0) return -1;
    return n == 1 && (p.revents & POLLIN) != 0;
}

static void test_fd_readiness(void) {
    cm_client *client = emulator_client("c-waiter-fd");
    cm_waiter *waiter = NULL;
    cm_result *r = NULL;
    cm_cancel *triggered = NULL;
    cm_wait_options options;
    uint64_t tag = 0;
    int64_t ready_task = create_task(client, 0);
    int fd;

    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    fd = cm_waiter_fd(waiter);
    CHECK(fd >= 0);
    CHECK(cm_waiter_fd(waiter) == fd); /* the same descriptor every time */

    /* Empty: not readable. */
    CHECK(readable(fd, 0) == 0);
    CHECK(readable(fd, 100) == 0);

    /* One wait of a ready task: readable once it finished, level-triggered until taken. */
    quick_options(&options, 10);
    CHECK_CODE(cm_waiter_add(waiter, ready_task, &options, 1), CM_OK);
    CHECK(readable(fd, 10000) == 1);
    CHECK(readable(fd, 0) == 1);
    CHECK(cm_waiter_pending(waiter) == 1);
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_OK);
    CHECK(tag == 1 && cm_result_code(r) == CM_OK && cm_result_is_ready(r) == 1);
    cm_result_free(r);
    /* Taken: not readable any more. */
    CHECK(readable(fd, 0) == 0);
    CHECK(cm_waiter_pending(waiter) == 0);
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_ERR_TIMEOUT);
    CHECK(r == NULL);

    /* Two finished waits (a cancel triggered before the add ends a wait at once): readable
     * with two queued, still readable with one, not with none. */
    CHECK_CODE(cm_cancel_new(&triggered), CM_OK);
    cm_cancel_trigger(triggered);
    options.cancel = triggered;
    CHECK_CODE(cm_waiter_add(waiter, ready_task, &options, 2), CM_OK);
    CHECK_CODE(cm_waiter_add(waiter, ready_task, &options, 3), CM_OK);
    CHECK(readable(fd, 10000) == 1);
    sleep_ms(50);
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_OK);
    CHECK(tag == 2 && cm_result_code(r) == CM_ERR_CANCELLED);
    cm_result_free(r);
    CHECK(readable(fd, 10000) == 1);
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_OK);
    CHECK(tag == 3 && cm_result_code(r) == CM_ERR_CANCELLED && cm_result_request_count(r) == 0);
    cm_result_free(r);
    CHECK(readable(fd, 0) == 0);
    cm_cancel_free(triggered);

    /* A wait that finishes while a thread sits in poll(2): poll wakes up for it. */
    options.cancel = NULL;
    options.first_delay_ms = 300;
    CHECK_CODE(cm_waiter_add(waiter, ready_task, &options, 4), CM_OK);
    CHECK(readable(fd, 0) == 0);
    CHECK(readable(fd, 10000) == 1);
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_OK);
    CHECK(tag == 4 && cm_result_code(r) == CM_OK);
    cm_result_free(r);
    CHECK(readable(fd, 0) == 0);

    /* Shut down and drained: not readable; next says CM_ERR_CANCELLED. */
    cm_waiter_shutdown(waiter);
    CHECK(readable(fd, 0) == 0);
    CHECK_CODE(cm_waiter_next(waiter, 1000, &tag, &r), CM_ERR_CANCELLED);
    CHECK(r == NULL);
    CHECK(readable(fd, 0) == 0);
    cm_waiter_free(waiter);
    cm_client_free(client);
}
#endif

/* ---------------------------------------------------------------------------------------- */
/* Several threads in cm_waiter_next at once                                                 */
/* ---------------------------------------------------------------------------------------- */

#define TAKERS 4
#define TAKEN_WAITS 2000

struct takers {
    cm_waiter *waiter;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned char seen[TAKEN_WAITS];
    long taken;
    long wrong;
    long ended_cancelled;
};

static void *take_until_shutdown(void *arg) {
    struct takers *t = arg;
    long mine = 0;
    for (;;) {
        uint64_t tag = 0;
        cm_result *r = NULL;
        cm_code code = cm_waiter_next(t->waiter, 30000, &tag, &r);
        pthread_mutex_lock(&t->lock);
        if (code == CM_OK) {
            if (tag >= TAKEN_WAITS || t->seen[tag]++ != 0 || cm_result_code(r) != CM_OK || cm_result_is_ready(r) != 1)
                t->wrong++;
            t->taken++;
            mine++;
            pthread_cond_broadcast(&t->changed);
        } else {
            if (code == CM_ERR_CANCELLED && r == NULL) {
                t->ended_cancelled++;
            } else {
                t->wrong++;
            }
            pthread_cond_broadcast(&t->changed);
            pthread_mutex_unlock(&t->lock);
            cm_result_free(r);
            return (void *)(intptr_t)mine; /* via intptr_t: long is 32 bits on 64-bit Windows */
        }
        pthread_mutex_unlock(&t->lock);
        cm_result_free(r);
    }
}

static void test_several_takers(void) {
    cm_client *client = emulator_client("c-waiter-takers");
    struct takers *t = calloc(1, sizeof *t);
    pthread_t threads[TAKERS];
    cm_wait_options options;
    int64_t ready_task = create_task(client, 0);
    long per_thread[TAKERS];
    struct timespec until;
    int i;

    if (t == NULL) abort();
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->changed, NULL);
    CHECK_CODE(cm_waiter_new(client, &t->waiter), CM_OK);
    /* The takers wait first; the waits are added while they sit in cm_waiter_next. */
    for (i = 0; i < TAKERS; i++) CHECK(pthread_create(&threads[i], NULL, take_until_shutdown, t) == 0);
    quick_options(&options, 10);
    for (i = 0; i < TAKEN_WAITS; i++) {
        /* One task for all: the budget of 120 would not do; a new ready task every 100. */
        if (i % 100 == 0 && i > 0) ready_task = create_task(client, 0);
        CHECK_CODE(cm_waiter_add(t->waiter, ready_task, &options, (uint64_t)i), CM_OK);
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&t->lock);
    while (t->taken < TAKEN_WAITS && t->wrong == 0 && t->ended_cancelled == 0) {
        if (pthread_cond_timedwait(&t->changed, &t->lock, &until) != 0) break;
    }
    pthread_mutex_unlock(&t->lock);
    /* Everything is taken: shutdown lets every taker out with CM_ERR_CANCELLED. */
    cm_waiter_shutdown(t->waiter);
    for (i = 0; i < TAKERS; i++) {
        void *mine = NULL;
        pthread_join(threads[i], &mine);
        per_thread[i] = (long)(intptr_t)mine;
    }
    CHECK(t->taken == TAKEN_WAITS);
    CHECK(t->wrong == 0);
    CHECK(t->ended_cancelled == TAKERS);
    for (i = 0; i < TAKEN_WAITS; i++) CHECK(t->seen[i] == 1);
    CHECK(cm_waiter_pending(t->waiter) == 0);
    printf("several takers: %d waits to %d threads: %ld, %ld, %ld, %ld\n", TAKEN_WAITS, TAKERS, per_thread[0],
           per_thread[1], per_thread[2], per_thread[3]);
    cm_waiter_free(t->waiter);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->changed);
    free(t);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* Shutdown and free with waits pending; the client freed first                              */
/* ---------------------------------------------------------------------------------------- */

#define ASLEEP 50
#define IN_FLIGHT 3

/* Adds ASLEEP waits that sleep a minute (tags 0..) and IN_FLIGHT waits on stalled tasks
 * (tags 100..), and returns once the emulator has received every stalled request. */
static void add_asleep_and_in_flight(cm_waiter *waiter, cm_client *client, int64_t first_stalled) {
    cm_wait_options options;
    int64_t asleep_task = create_task(client, 0);
    int i;
    double deadline;
    cm_wait_options_init(&options);
    options.first_delay_ms = 60000;
    options.timeout_ms = 120000;
    for (i = 0; i < ASLEEP; i++) CHECK_CODE(cm_waiter_add(waiter, asleep_task, &options, (uint64_t)i), CM_OK);
    quick_options(&options, 10);
    for (i = 0; i < IN_FLIGHT; i++) {
        CHECK(script_stall(first_stalled + i, NULL, STALL_MS));
        CHECK_CODE(cm_waiter_add(waiter, first_stalled + i, &options, 100 + (uint64_t)i), CM_OK);
    }
    deadline = now_ms() + 10000;
    for (i = 0; i < IN_FLIGHT; i++) {
        while (emulator_task_requests(first_stalled + i) < 1 && now_ms() < deadline) sleep_ms(5);
        CHECK(emulator_task_requests(first_stalled + i) == 1);
    }
    sleep_ms(100); /* the requests are sent: now their answers are awaited */
    CHECK(cm_waiter_pending(waiter) == ASLEEP + IN_FLIGHT);
}

static void test_shutdown_with_waits_pending(void) {
    long baseline_threads = threads_now(), baseline_fds = fds_now();
    cm_client *client = emulator_client("c-waiter-shutdown");
    cm_waiter *waiter = NULL;
    cm_result *r = NULL;
    uint64_t tag = 0;
    int i, asleep = 0, in_flight = 0, wrong = 0;
    double shut_at, last_out = 0;

    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    add_asleep_and_in_flight(waiter, client, 700001);
    shut_at = now_ms();
    cm_waiter_shutdown(waiter);
    /* Every wait still comes out, cancelled: asleep ones at once, in-flight ones within ms. */
    for (i = 0; i < ASLEEP + IN_FLIGHT; i++) {
        cm_code code = cm_waiter_next(waiter, 15000, &tag, &r);
        if (code != CM_OK) {
            CHECK_CODE(code, CM_OK);
            break;
        }
        last_out = now_ms();
        if (cm_result_code(r) != CM_ERR_CANCELLED) wrong++;
        if (tag < ASLEEP && cm_result_request_count(r) == 0) asleep++;
        if (tag >= 100 && tag < 100 + IN_FLIGHT && cm_result_request_count(r) == 1) in_flight++;
        cm_result_free(r);
    }
    CHECK(wrong == 0);
    CHECK(asleep == ASLEEP);
    CHECK(in_flight == IN_FLIGHT);
    CHECK_LESS(last_out - shut_at, CANCEL_BOUND_MS);
    /* Drained: CM_ERR_CANCELLED with no result; adds refused. */
    r = NULL;
    CHECK_CODE(cm_waiter_next(waiter, 1000, &tag, &r), CM_ERR_CANCELLED);
    CHECK(r == NULL);
    CHECK_CODE(cm_waiter_add(waiter, 1, NULL, 1), CM_ERR_CANCELLED);
    CHECK(cm_waiter_pending(waiter) == 0);
    cm_waiter_free(waiter);
    cm_client_free(client);
    CHECK(settle(threads_now, baseline_threads, 5000) == baseline_threads);
    CHECK(settle(fds_now, baseline_fds, 5000) == baseline_fds);
    printf("shutdown: %d asleep and %d in-flight waits came out cancelled %.0f ms after it\n", ASLEEP, IN_FLIGHT,
           last_out - shut_at);
}

static void test_free_with_waits_pending(void) {
    long baseline_threads = threads_now(), baseline_fds = fds_now();
    cm_client *client = emulator_client("c-waiter-free");
    cm_waiter *waiter = NULL;
    cm_cancel *triggered = NULL;
    cm_wait_options options;
    double start, freed_in;

    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    add_asleep_and_in_flight(waiter, client, 700101);
    /* And two finished waits queued, never taken. */
    CHECK_CODE(cm_cancel_new(&triggered), CM_OK);
    cm_cancel_trigger(triggered);
    quick_options(&options, 10);
    options.cancel = triggered;
    CHECK_CODE(cm_waiter_add(waiter, 1, &options, 200), CM_OK);
    CHECK_CODE(cm_waiter_add(waiter, 1, &options, 201), CM_OK);
    cm_cancel_free(triggered); /* the waits hold their own references */
    CHECK(cm_waiter_pending(waiter) == ASLEEP + IN_FLIGHT + 2);
    /* Freed with everything pending: back at once, no thread or socket left (valgrind and
     * LeakSanitizer: nothing leaked). */
    start = now_ms();
    cm_waiter_free(waiter);
    freed_in = now_ms() - start;
    CHECK_LESS(freed_in, CANCEL_BOUND_MS);
    CHECK(settle(threads_now, baseline_threads, 5000) == baseline_threads);
    cm_client_free(client);
    CHECK(settle(fds_now, baseline_fds, 5000) == baseline_fds);
    printf("free: a waiter with %d waits pending (asleep, in flight, finished) freed in %.0f ms\n",
           ASLEEP + IN_FLIGHT + 2, freed_in);
}

static void test_client_freed_before_its_waiter(void) {
    long baseline_threads = threads_now();
    cm_client *client = emulator_client("c-waiter-client-first");
    cm_waiter *waiter = NULL, *second = NULL;
    cm_result *r = NULL;
    cm_wait_options options;
    int64_t ready_task = create_task(client, 0);
    uint64_t tag = 0;
    int i, ok = 0;

    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    CHECK_CODE(cm_waiter_new(client, &second), CM_OK);
    cm_client_free(client); /* the waiters keep it alive */
    quick_options(&options, 10);
    for (i = 0; i < 10; i++) CHECK_CODE(cm_waiter_add(waiter, ready_task, &options, (uint64_t)i), CM_OK);
    CHECK_CODE(cm_waiter_add(second, ready_task, &options, 99), CM_OK);
    for (i = 0; i < 10; i++) {
        if (cm_waiter_next(waiter, 10000, &tag, &r) == CM_OK && cm_result_code(r) == CM_OK &&
            cm_result_is_ready(r) == 1 && tag < 10)
            ok++;
        cm_result_free(r);
    }
    CHECK(ok == 10);
    cm_waiter_free(waiter);
    /* The second waiter still has the client (and the engine's threads). */
    CHECK_CODE(cm_waiter_next(second, 10000, &tag, &r), CM_OK);
    CHECK(tag == 99 && cm_result_code(r) == CM_OK && cm_result_is_ready(r) == 1);
    cm_result_free(r);
    CHECK_CODE(cm_waiter_add(second, ready_task, &options, 100), CM_OK);
    CHECK_CODE(cm_waiter_next(second, 10000, &tag, &r), CM_OK);
    CHECK(tag == 100 && cm_result_code(r) == CM_OK);
    cm_result_free(r);
    cm_waiter_free(second);
    CHECK(settle(threads_now, baseline_threads, 5000) == baseline_threads);
}

/* ---------------------------------------------------------------------------------------- */
/* A waiter's waits end as cm_wait_result's would; one waiter's shutdown spares another      */
/* ---------------------------------------------------------------------------------------- */

static void test_waiter_outcomes(void) {
    cm_client *client = emulator_client("c-waiter-outcomes");
    cm_waiter *waiter = NULL, *other = NULL;
    cm_result *r = NULL;
    cm_wait_options options;
    int64_t never_ready = create_task(client, 86400000);
    int64_t ready_task = create_task(client, 0);
    int64_t stalled = 830001;
    uint64_t tag = 0;
    double start, elapsed;
    int i, ok = 0;

    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    CHECK_CODE(cm_waiter_new(client, &other), CM_OK);

    /* cm_waiter_next's own timeout. */
    start = now_ms();
    CHECK_CODE(cm_waiter_next(waiter, 200, &tag, &r), CM_ERR_TIMEOUT);
    elapsed = now_ms() - start;
    CHECK(r == NULL);
    CHECK(elapsed >= 190);
    CHECK_LESS(elapsed, 200 + CANCEL_BOUND_MS);

    /* The wait's deadline: CM_ERR_TIMEOUT naming the last state, near timeout_ms. */
    quick_options(&options, 50);
    options.timeout_ms = 400;
    start = now_ms();
    CHECK_CODE(cm_waiter_add(waiter, never_ready, &options, 1), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    elapsed = now_ms() - start;
    CHECK(tag == 1 && cm_result_code(r) == CM_ERR_TIMEOUT && contains(cm_result_message(r), "processing"));
    CHECK(cm_result_request_count(r) >= 2 && cm_result_task_id(r) == never_ready);
    CHECK(elapsed >= 390);
    CHECK_LESS(elapsed, 400 + CANCEL_BOUND_MS);
    cm_result_free(r);

    /* The wait's deadline reaches a request in flight: a stalled answer ends at the deadline. */
    CHECK(script_stall(stalled, NULL, STALL_MS));
    quick_options(&options, 50);
    options.timeout_ms = 500;
    start = now_ms();
    CHECK_CODE(cm_waiter_add(waiter, stalled, &options, 2), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 15000, &tag, &r), CM_OK);
    elapsed = now_ms() - start;
    CHECK(tag == 2 && cm_result_code(r) == CM_ERR_TIMEOUT && cm_result_request_count(r) == 1);
    CHECK(elapsed >= 450);
    CHECK_LESS(elapsed, 500 + CANCEL_BOUND_MS);
    cm_result_free(r);

    /* max_requests: CM_ERR_BUDGET_EXHAUSTED after exactly that many. */
    quick_options(&options, 5);
    options.max_requests = 3;
    CHECK_CODE(cm_waiter_add(waiter, never_ready, &options, 3), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    CHECK(tag == 3 && cm_result_code(r) == CM_ERR_BUDGET_EXHAUSTED && cm_result_request_count(r) == 3);
    CHECK(contains(cm_result_message(r), "max_requests"));
    cm_result_free(r);

    /* A final API error ends the wait at once. */
    quick_options(&options, 5);
    CHECK_CODE(cm_waiter_add(waiter, 990000001, &options, 4), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    CHECK(tag == 4 && cm_result_code(r) == CM_ERR_API && cm_result_request_count(r) == 1);
    CHECK(contains(cm_result_api_error_code(r), "ERROR_NO_SUCH_CAPCHA_ID"));
    cm_result_free(r);

    /* Two waiters of one client: shutting one down (with a wait in flight) spares the other's
     * waits, which sleep through it and then come out ready. */
    quick_options(&options, 10);
    CHECK_CODE(cm_waiter_add(waiter, stalled, &options, 5), CM_OK);
    options.first_delay_ms = 500;
    for (i = 0; i < 5; i++) CHECK_CODE(cm_waiter_add(other, ready_task, &options, 10 + (uint64_t)i), CM_OK);
    sleep_ms(200);
    cm_waiter_shutdown(waiter);
    CHECK_CODE(cm_waiter_next(waiter, 5000, &tag, &r), CM_OK);
    CHECK(tag == 5 && cm_result_code(r) == CM_ERR_CANCELLED);
    cm_result_free(r);
    for (i = 0; i < 5; i++) {
        if (cm_waiter_next(other, 10000, &tag, &r) == CM_OK && cm_result_code(r) == CM_OK && tag >= 10 && tag < 15)
            ok++;
        cm_result_free(r);
    }
    CHECK(ok == 5);
    CHECK_CODE(cm_waiter_add(other, ready_task, NULL, 20), CM_OK); /* still open */
    cm_waiter_free(waiter);
    CHECK_CODE(cm_waiter_next(other, 10000, &tag, &r), CM_OK);
    CHECK(tag == 20 && cm_result_code(r) == CM_OK);
    cm_result_free(r);
    cm_waiter_free(other);
    cm_client_free(client);
}

/*
 * cm_waiter_add_solve: 200 solves each created on the library's threads and waited for, each
 * out once with its task and solution; a task the library refuses and a NULL one; a cancel and
 * a free reaching createTask requests in flight (scripted to stall), and the threads of both
 * back to where they were.
 */
#define SOLVES 200
static void test_solves(void) {
    cm_client *client = emulator_client("c-waiter-solves");
    cm_waiter *waiter = NULL;
    cm_result *r = NULL;
    cm_cancel *cancel = NULL;
    cm_wait_options options;
    const char *task = "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":100}";
    static unsigned char seen[SOLVES];
    long baseline_threads = threads_now();
    uint64_t tag = 0;
    double start, elapsed;
    int i, right = 0;

    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    quick_options(&options, 50);
    memset(seen, 0, sizeof seen);
    for (i = 0; i < SOLVES; i++) CHECK_CODE(cm_waiter_add_solve(waiter, task, NULL, &options, (uint64_t)i, NULL), CM_OK);
    for (i = 0; i < SOLVES; i++) {
        if (cm_waiter_next(waiter, 10000, &tag, &r) != CM_OK) break;
        if (tag < SOLVES && !seen[tag] && cm_result_code(r) == CM_OK && cm_result_task_id(r) > 0 &&
            contains(cm_result_solution_json(r), "answer"))
            right++;
        if (tag < SOLVES) seen[tag] = 1;
        cm_result_free(r);
    }
    CHECK(right == SOLVES);
    CHECK(cm_waiter_pending(waiter) == 0);

    /* Refused at once (nothing queued), or when its createTask is due (task id 0). */
    CHECK_CODE(cm_waiter_add_solve(waiter, NULL, NULL, &options, 1, &r), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(r), "task_json"));
    cm_result_free(r);
    options.interval_ms = 0;
    CHECK_CODE(cm_waiter_add_solve(waiter, task, NULL, &options, 1, NULL), CM_ERR_INVALID_ARGUMENT);
    quick_options(&options, 50);
    CHECK(cm_waiter_pending(waiter) == 0);
    CHECK_CODE(cm_waiter_add_solve(waiter, "{\"body\":\"no type\"}", NULL, &options, 7, NULL), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    CHECK(tag == 7 && cm_result_code(r) == CM_ERR_INVALID_ARGUMENT && cm_result_task_id(r) == 0);
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* A cancel reaches its createTask in flight; a free, the others. */
    CHECK(script_stall(0, "createTask", STALL_MS));
    CHECK_CODE(cm_cancel_new(&cancel), CM_OK);
    options.cancel = cancel;
    CHECK_CODE(cm_waiter_add_solve(waiter, task, NULL, &options, 8, NULL), CM_OK);
    options.cancel = NULL;
    for (i = 0; i < 3; i++) CHECK_CODE(cm_waiter_add_solve(waiter, task, NULL, &options, 9, NULL), CM_OK);
    sleep_ms(300); /* all four in flight */
    start = now_ms();
    cm_cancel_trigger(cancel);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    elapsed = now_ms() - start;
    CHECK(tag == 8 && cm_result_code(r) == CM_ERR_CANCELLED);
    CHECK_LESS(elapsed, CANCEL_BOUND_MS);
    cm_result_free(r);
    start = now_ms();
    cm_waiter_free(waiter);
    CHECK_LESS(now_ms() - start, CANCEL_BOUND_MS);
    CHECK(settle(threads_now, baseline_threads, 5000) == baseline_threads);
    CHECK(script_stall(0, "createTask", 0));
    cm_cancel_free(cancel);
    cm_client_free(client);
}

/*
 * A wait's own cancel ends it while it sleeps, at once and without a request, and spares the
 * others: 2,400 of 3,000 sleeping waits share a token that triggers; then a wait due at once
 * is added (the engine's timers, mostly of ended waits by then, are compacted) and comes out
 * first, and the 600 others come out ready at their time.
 */
#define SLEEPERS 3000
#define CANCELLED_SLEEPERS 2400
#define SLEEP_MS 3000

static void test_cancels_of_sleeping_waits(void) {
    cm_client *client = emulator_client("c-waiter-sleepers");
    cm_waiter *waiter = NULL;
    cm_cancel *token = NULL;
    cm_result *r = NULL;
    cm_wait_options options;
    unsigned char *seen = calloc(SLEEPERS + 1, 1);
    int64_t task_id = 0;
    uint64_t tag = 0;
    double triggered_at, last_cancelled = 0, added_at, first_added_at = now_ms(), first_ready_at = 0;
    long i, cancelled = 0, ready = 0, wrong = 0;

    if (seen == NULL) abort();
    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    CHECK_CODE(cm_cancel_new(&token), CM_OK);
    cm_wait_options_init(&options);
    options.first_delay_ms = SLEEP_MS;
    options.interval_ms = 100;
    options.timeout_ms = 120000;
    for (i = 0; i < SLEEPERS; i++) {
        if (i % 100 == 0) task_id = create_task(client, 0); /* ready; 100 waits each, within its budget */
        options.cancel = i < CANCELLED_SLEEPERS ? token : NULL;
        CHECK_CODE(cm_waiter_add(waiter, task_id, &options, (uint64_t)i), CM_OK);
    }
    triggered_at = now_ms();
    cm_cancel_trigger(token);
    cm_cancel_free(token); /* the waits hold their own references */
    for (i = 0; i < CANCELLED_SLEEPERS; i++) {
        if (cm_waiter_next(waiter, 10000, &tag, &r) != CM_OK) {
            wrong++;
            break;
        }
        if (tag >= CANCELLED_SLEEPERS || seen[tag]++ != 0 || cm_result_code(r) != CM_ERR_CANCELLED ||
            cm_result_request_count(r) != 0)
            wrong++;
        cm_result_free(r);
        cancelled++;
    }
    last_cancelled = now_ms();
    CHECK(wrong == 0 && cancelled == CANCELLED_SLEEPERS);
    CHECK_LESS(last_cancelled - triggered_at, CANCEL_BOUND_MS);
    CHECK(cm_waiter_pending(waiter) == SLEEPERS - CANCELLED_SLEEPERS);

    /* A wait due now comes out before the sleepers that are due later. */
    quick_options(&options, 10);
    added_at = now_ms();
    CHECK_CODE(cm_waiter_add(waiter, task_id, &options, SLEEPERS), CM_OK);
    CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK);
    CHECK(tag == SLEEPERS && cm_result_code(r) == CM_OK && cm_result_is_ready(r) == 1);
    CHECK_LESS(now_ms() - added_at, CANCEL_BOUND_MS);
    cm_result_free(r);
    for (i = 0; i < SLEEPERS - CANCELLED_SLEEPERS; i++) {
        if (cm_waiter_next(waiter, 30000, &tag, &r) != CM_OK) {
            wrong++;
            break;
        }
        if (tag < CANCELLED_SLEEPERS || tag >= SLEEPERS || seen[tag]++ != 0 || cm_result_code(r) != CM_OK ||
            cm_result_is_ready(r) != 1 || cm_result_request_count(r) != 1)
            wrong++;
        cm_result_free(r);
        if (ready++ == 0) first_ready_at = now_ms();
    }
    CHECK(wrong == 0 && ready == SLEEPERS - CANCELLED_SLEEPERS);
    /* Not before their time (each sleeps SLEEP_MS from its own add). */
    CHECK(first_ready_at - first_added_at >= SLEEP_MS - 20);
    CHECK(cm_waiter_pending(waiter) == 0);
    printf("sleeping waits: %d of %d cancelled by their token in %.0f ms; the others came out ready\n",
           CANCELLED_SLEEPERS, SLEEPERS, last_cancelled - triggered_at);
    cm_waiter_free(waiter);
    free(seen);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* Cancels that reach a request in flight                                                    */
/* ---------------------------------------------------------------------------------------- */

enum call_kind { GET_TASK_RESULT_WITH, CREATE_TASK_WITH, GET_BALANCE_WITH, WAIT_RESULT, WAITER_WAIT, CALL_KINDS };

static const char *const kind_names[CALL_KINDS] = {"cm_get_task_result_with", "cm_create_task_with",
                                                   "cm_get_balance_with", "cm_wait_result", "a waiter's wait"};

/* One kind of call against a 10 s stall, cancelled 100 ms after the emulator got its request;
 * `warm`: on a connection the client already used (taken from its pool), else a new one. */
static void cancel_in_flight(enum call_kind kind, int64_t stalled_task, int warm) {
    long baseline_fds = fds_now();
    cm_client *client = emulator_client("c-cancel-in-flight");
    long client_fds = fds_now(); /* a new client holds no socket */
    long sockets_before;
    cm_result *r = NULL;
    cm_waiter *waiter = NULL;
    cm_call_options call_options;
    cm_wait_options wait_options;
    struct trigger trigger;
    pthread_t thread;
    cm_code code = CM_OK;
    int64_t task_id = -7;
    double balance = -7.0, returned_at, start;
    uint64_t tag = 0;
    const char *method = kind == CREATE_TASK_WITH ? "createTask" : kind == GET_BALANCE_WITH ? "getBalance" : NULL;

    if (warm) {
        /* One call first: its connection goes back to the pool and the next one reuses it. */
        CHECK_CODE(cm_get_balance(client, &balance, &r), CM_OK);
        cm_result_free(r);
        r = NULL;
        balance = -7.0;
        CHECK(!COUNTS || fds_now() == client_fds + 1);
    }
    if (method != NULL) {
        CHECK(script_stall(0, method, STALL_MS));
    } else {
        CHECK(script_stall(stalled_task, NULL, STALL_MS));
    }
    cm_call_options_init(&call_options);
    quick_options(&wait_options, 10);
    sockets_before = sockets_now();
    start = now_ms();
    start_trigger(&trigger, &thread, method ? 0 : stalled_task, method);
    call_options.cancel = trigger.cancel;
    wait_options.cancel = trigger.cancel;
    switch (kind) {
    case GET_TASK_RESULT_WITH:
        code = cm_get_task_result_with(client, stalled_task, &call_options, &r);
        break;
    case CREATE_TASK_WITH:
        code = cm_create_task_with(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", NULL, &call_options,
                                   &task_id, &r);
        break;
    case GET_BALANCE_WITH:
        code = cm_get_balance_with(client, &call_options, &balance, &r);
        break;
    case WAIT_RESULT:
        code = cm_wait_result(client, stalled_task, &wait_options, &r);
        break;
    case WAITER_WAIT:
        CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
        CHECK_CODE(cm_waiter_add(waiter, stalled_task, &wait_options, 77), CM_OK);
        code = cm_waiter_next(waiter, 30000, &tag, &r);
        CHECK_CODE(code, CM_OK);
        CHECK(tag == 77);
        code = cm_result_code(r);
        break;
    default:
        break;
    }
    returned_at = now_ms();
    pthread_join(thread, NULL);
    CHECK(trigger.saw_request); /* the request was in flight when the cancel came */
    /* Warm: the pooled connection carried it (no socket more); cold: one new connection. */
    CHECK(!COUNTS || trigger.sockets_at_trigger - sockets_before == (warm ? 0 : 1));
    CHECK_CODE(code, CM_ERR_CANCELLED);
    CHECK(cm_result_code(r) == CM_ERR_CANCELLED);
    CHECK(cm_result_request_count(r) == 1);
    CHECK(contains(cm_result_message(r), "cancelled"));
    if (kind == CREATE_TASK_WITH) {
        CHECK(contains(cm_result_message(r), "may have been created"));
        CHECK(task_id == -7);
    }
    if (kind == GET_BALANCE_WITH) CHECK(balance == -7.0);
    CHECK_LESS(returned_at - trigger.triggered_at, CANCEL_BOUND_MS);
    printf("cancel in flight, %s, %s connection: back %.1f ms after the trigger (%.0f ms after the call began; "
           "stall %d ms)\n",
           kind_names[kind], warm ? "pooled" : "new", returned_at - trigger.triggered_at, returned_at - start, STALL_MS);
    cm_result_free(r);
    cm_cancel_free(trigger.cancel);
    cm_waiter_free(waiter);

    /* The connection was dropped, not pooled: the client holds no socket now. */
    CHECK(settle(fds_now, client_fds, 2000) == client_fds);
    /* And the client goes on working, on a new connection. */
    if (method != NULL) CHECK(script_stall(0, method, 0));
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_OK);
    cm_result_free(r);
    cm_client_free(client);
    CHECK(settle(fds_now, baseline_fds, 2000) == baseline_fds);
}

static void test_cancel_in_flight(void) {
    long baseline_fds = fds_now();
    int warm;
    for (warm = 0; warm < 2; warm++) {
        cancel_in_flight(GET_TASK_RESULT_WITH, 800001 + 10 * warm, warm);
        cancel_in_flight(CREATE_TASK_WITH, 0, warm);
        cancel_in_flight(GET_BALANCE_WITH, 0, warm);
        cancel_in_flight(WAIT_RESULT, 800002 + 10 * warm, warm);
        cancel_in_flight(WAITER_WAIT, 800003 + 10 * warm, warm);
    }
    CHECK(settle(fds_now, baseline_fds, 2000) == baseline_fds);
}

/*
 * Cancels that race the end of calls: a token triggered 0 to 300 us after a call began (before
 * its request, in flight, or just after the answer, when the connection may already be back
 * in the pool). Each call ends CM_OK or CM_ERR_CANCELLED, sends at most one request, and the
 * plain createTask after it (never resent: it must not get a connection the late trigger shut
 * down) succeeds.
 */
#define RACE_ROUNDS 1500

struct racer {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    cm_cancel *cancel;
    double fire_at;
    int round;
    int fired;
    int stop;
};

static void *fire_at_the_time(void *arg) {
    struct racer *racer = arg;
    pthread_mutex_lock(&racer->lock);
    for (;;) {
        int round;
        cm_cancel *cancel;
        double at;
        while (racer->fired == racer->round && !racer->stop) pthread_cond_wait(&racer->changed, &racer->lock);
        if (racer->stop) break;
        round = racer->round;
        cancel = racer->cancel;
        at = racer->fire_at;
        pthread_mutex_unlock(&racer->lock);
        while (now_ms() < at) {
        }
        cm_cancel_trigger(cancel);
        pthread_mutex_lock(&racer->lock);
        racer->fired = round;
        pthread_cond_broadcast(&racer->changed);
    }
    pthread_mutex_unlock(&racer->lock);
    return NULL;
}

static void test_cancels_racing_the_end_of_calls(void) {
    long baseline_fds = fds_now();
    cm_client *client = emulator_client("c-cancel-races");
    struct racer racer;
    pthread_t thread;
    cm_result *r = NULL;
    int64_t task_id = create_task(client, 0), new_id = 0;
    long ok = 0, cancelled = 0, wrong = 0, after_wrong = 0;
    int round;

    memset(&racer, 0, sizeof racer);
    pthread_mutex_init(&racer.lock, NULL);
    pthread_cond_init(&racer.changed, NULL);
    CHECK(pthread_create(&thread, NULL, fire_at_the_time, &racer) == 0);
    for (round = 1; round <= RACE_ROUNDS; round++) {
        cm_call_options options;
        cm_cancel *cancel = NULL;
        cm_code code;
        double balance = 0;
        CHECK(cm_cancel_new(&cancel) == CM_OK);
        cm_call_options_init(&options);
        options.cancel = cancel;
        pthread_mutex_lock(&racer.lock);
        racer.cancel = cancel;
        racer.fire_at = now_ms() + (double)((round * 7919) % 300) / 1000.0;
        racer.round = round;
        pthread_cond_broadcast(&racer.changed);
        pthread_mutex_unlock(&racer.lock);
        switch (round % 3) {
        case 0:
            code = cm_get_balance_with(client, &options, &balance, &r);
            break;
        case 1:
            code = cm_create_task_with(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", NULL,
                                       &options, &new_id, &r);
            break;
        default:
            code = cm_get_task_result_with(client, task_id, &options, &r);
            break;
        }
        if (code == CM_OK) {
            ok++;
        } else if (code == CM_ERR_CANCELLED && cm_result_request_count(r) <= 1) {
            cancelled++;
        } else if (wrong++ == 0) {
            fprintf(stderr, "race round %d: %s: %s\n", round, cm_code_name(code), cm_result_message(r));
        }
        cm_result_free(r);
        pthread_mutex_lock(&racer.lock);
        while (racer.fired != round) pthread_cond_wait(&racer.changed, &racer.lock);
        pthread_mutex_unlock(&racer.lock);
        cm_cancel_free(cancel);
        /* A new task each round: the next round polls it, far from its budget. */
        code = cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", NULL, &new_id, &r);
        if (code == CM_OK) {
            task_id = new_id;
        } else if (after_wrong++ == 0) {
            fprintf(stderr, "race round %d, the call after: %s: %s\n", round, cm_code_name(code),
                    cm_result_message(r));
        }
        cm_result_free(r);
    }
    pthread_mutex_lock(&racer.lock);
    racer.stop = 1;
    pthread_cond_broadcast(&racer.changed);
    pthread_mutex_unlock(&racer.lock);
    pthread_join(thread, NULL);
    CHECK(wrong == 0);
    CHECK(after_wrong == 0);
    CHECK(ok + cancelled == RACE_ROUNDS);
    CHECK(cancelled > 0); /* some triggers did land during a call */
    printf("cancels racing calls: %d rounds, %ld ended CM_OK, %ld CM_ERR_CANCELLED; every next call CM_OK\n",
           RACE_ROUNDS, ok, cancelled);
    pthread_mutex_destroy(&racer.lock);
    pthread_cond_destroy(&racer.changed);
    cm_client_free(client);
    CHECK(settle(fds_now, baseline_fds, 2000) == baseline_fds);
}

/* ---------------------------------------------------------------------------------------- */
/* Per-call timeouts                                                                         */
/* ---------------------------------------------------------------------------------------- */

struct blocker {
    cm_client *client;
    cm_cancel *cancel;
    cm_code code;
};

static void *hold_a_connection(void *arg) {
    struct blocker *b = arg;
    cm_call_options options;
    cm_result *r = NULL;
    double balance = 0;
    cm_call_options_init(&options);
    options.cancel = b->cancel;
    b->code = cm_get_balance_with(b->client, &options, &balance, &r);
    cm_result_free(r);
    return NULL;
}

static void test_call_timeouts(void) {
    long baseline_fds = fds_now();
    cm_client *client = emulator_client("c-call-timeouts");
    cm_result *r = NULL;
    cm_call_options options;
    struct blocker blocker;
    pthread_t thread;
    int64_t task_id = -7;
    double balance = -7.0, start, elapsed;
    int64_t stalled_task = 810001;
    int kind;

    CHECK(script_stall(stalled_task, NULL, STALL_MS));
    CHECK(script_stall(0, "getBalance", STALL_MS));
    CHECK(script_stall(0, "createTask", STALL_MS));
    /* timeout_ms 300 against a 10 s stall, with the client's default 21 s request timeout. */
    for (kind = 0; kind < 3; kind++) {
        cm_code code;
        cm_call_options_init(&options);
        options.timeout_ms = 300;
        start = now_ms();
        if (kind == 0) {
            code = cm_get_task_result_with(client, stalled_task, &options, &r);
        } else if (kind == 1) {
            code = cm_create_task_with(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", NULL, &options,
                                       &task_id, &r);
        } else {
            code = cm_get_balance_with(client, &options, &balance, &r);
        }
        elapsed = now_ms() - start;
        CHECK_CODE(code, CM_ERR_TIMEOUT);
        CHECK(cm_result_code(r) == CM_ERR_TIMEOUT && cm_result_request_count(r) == 1);
        CHECK(elapsed >= 250);
        CHECK_LESS(elapsed, 300 + CANCEL_BOUND_MS);
        printf("timeout_ms 300, %s: CM_ERR_TIMEOUT after %.0f ms (%s)\n", kind_names[kind], elapsed,
               cm_result_message(r));
        cm_result_free(r);
    }
    CHECK(task_id == -7 && balance == -7.0);

    /* The smaller of the two: a 300 ms request timeout under a 60 s timeout_ms. */
    CHECK_CODE(cm_client_set_request_timeout_ms(client, 300, NULL), CM_OK);
    options.timeout_ms = 60000;
    start = now_ms();
    CHECK_CODE(cm_get_balance_with(client, &options, &balance, &r), CM_ERR_TIMEOUT);
    elapsed = now_ms() - start;
    CHECK(elapsed >= 250);
    CHECK_LESS(elapsed, 300 + CANCEL_BOUND_MS);
    cm_result_free(r);
    CHECK_CODE(cm_client_set_request_timeout_ms(client, 21000, NULL), CM_OK);

    /* timeout_ms bounds the wait for a free connection too: one connection, held by a stalled
     * call; a second call gives up after its 300 ms, and a cancel stops a queued call. */
    CHECK_CODE(cm_client_set_max_connections(client, 1, NULL), CM_OK);
    blocker.client = client;
    CHECK_CODE(cm_cancel_new(&blocker.cancel), CM_OK);
    {
        long before = emulator_method_requests("getBalance");
        double deadline = now_ms() + 10000;
        CHECK(pthread_create(&thread, NULL, hold_a_connection, &blocker) == 0);
        while (emulator_method_requests("getBalance") <= before && now_ms() < deadline) sleep_ms(5);
    }
    options.timeout_ms = 300;
    start = now_ms();
    CHECK_CODE(cm_get_balance_with(client, &options, &balance, &r), CM_ERR_TIMEOUT);
    elapsed = now_ms() - start;
    CHECK(contains(cm_result_message(r), "connection"));
    CHECK(cm_result_request_count(r) == 0); /* it never got to send */
    CHECK(elapsed >= 250);
    CHECK_LESS(elapsed, 300 + CANCEL_BOUND_MS);
    printf("timeout_ms 300 while the only connection is busy: %.0f ms (%s)\n", elapsed, cm_result_message(r));
    cm_result_free(r);
    {
        struct trigger queued;
        pthread_t trigger_thread;
        /* The trigger fires 100 ms after it starts, while the call queues for the connection. */
        start_trigger(&queued, &trigger_thread, 0, NULL);
        cm_call_options_init(&options);
        options.cancel = queued.cancel;
        CHECK_CODE(cm_get_balance_with(client, &options, &balance, &r), CM_ERR_CANCELLED);
        pthread_join(trigger_thread, NULL);
        elapsed = now_ms() - queued.triggered_at;
        CHECK(cm_result_request_count(r) == 0);
        CHECK(contains(cm_result_message(r), "connection"));
        CHECK_LESS(elapsed, CANCEL_BOUND_MS);
        cm_result_free(r);
        cm_cancel_free(queued.cancel);
    }
    cm_cancel_trigger(blocker.cancel);
    pthread_join(thread, NULL);
    CHECK_CODE(blocker.code, CM_ERR_CANCELLED);
    cm_cancel_free(blocker.cancel);

    CHECK(script_stall(0, "getBalance", 0));
    CHECK(script_stall(0, "createTask", 0));
    CHECK_CODE(cm_get_balance(client, &balance, &r), CM_OK);
    cm_result_free(r);
    cm_client_free(client);
    CHECK(settle(fds_now, baseline_fds, 2000) == baseline_fds);
}

/* ---------------------------------------------------------------------------------------- */
/* The connection cap                                                                        */
/* ---------------------------------------------------------------------------------------- */

#define CAP 8
#define CAP_THREADS 200
#define CAP_CALLS_EACH 2
#define CAP_DELAY_MS 50
#define CAP_WAITS 100

struct cap_run {
    cm_client *client;
    pthread_mutex_t lock;
    long ok;
    long wrong;
    char first_wrong[256];
    volatile int done;
    long peak_sockets;
    long peak_threads;
};

static void *cap_caller(void *arg) {
    struct cap_run *run = arg;
    int i;
    for (i = 0; i < CAP_CALLS_EACH; i++) {
        cm_result *r = NULL;
        double balance = 0;
        cm_code code = cm_get_balance(run->client, &balance, &r);
        pthread_mutex_lock(&run->lock);
        if (code == CM_OK && balance > 1.49 && balance < 1.51) {
            run->ok++;
        } else if (run->wrong++ == 0) {
            snprintf(run->first_wrong, sizeof run->first_wrong, "%s: %s", cm_code_name(code), cm_result_message(r));
        }
        pthread_mutex_unlock(&run->lock);
        cm_result_free(r);
    }
    return NULL;
}

static void *watch_sockets(void *arg) {
    struct cap_run *run = arg;
    while (!run->done) {
        long n = sockets_now(), threads = threads_now();
        if (n > run->peak_sockets) run->peak_sockets = n;
        if (threads > run->peak_threads) run->peak_threads = threads;
        sleep_ms(2);
    }
    return NULL;
}

/*
 * 200 threads of blocking calls and a waiter with 100 waits share one client capped at 8
 * connections, against answers that each take 50 ms: every call and wait succeeds, this
 * process never holds more than 8 sockets, and the waiter adds at most 8 + 4 threads. On the
 * threads engine one pool serves both, so the emulator sees at most 8 connections over the
 * run; on the event loop connections move between the two pools as the load does (each path
 * closing the other's idle ones at the cap), so it sees more, though never more than 8 at once.
 */
static void test_connection_cap(cm_engine engine) {
    cm_client *client = emulator_client(engine == CM_ENGINE_THREADS ? "c-connection-cap" : "c-connection-cap-events");
    struct cap_run *run = calloc(1, sizeof *run);
    pthread_t threads[CAP_THREADS], watcher;
    long connections_before, connections_after, baseline_sockets, baseline_threads, opened;
    long waits_ok = 0;
    double start, elapsed, minimum;
    cm_result *r = NULL;
    cm_waiter *waiter = NULL;
    cm_wait_options options;
    uint64_t tag = 0;
    int i;
    char entry[160];

    if (run == NULL) abort();
    CHECK_CODE(cm_client_set_engine(client, engine, NULL), CM_OK);
    CHECK_CODE(cm_client_set_max_connections(client, CAP, &r), CM_OK);
    cm_result_free(r);
    snprintf(entry, sizeof entry,
             "{\"method\":\"getBalance\",\"steps\":[{\"json\":{\"errorId\":0,\"balance\":1.5},\"delay_ms\":%d}]}",
             CAP_DELAY_MS);
    CHECK(emulator_script(entry));
    snprintf(entry, sizeof entry,
             "{\"method\":\"getTaskResult\",\"steps\":[{\"ready\":{\"text\":\"slow\"},\"delay_ms\":%d}]}",
             CAP_DELAY_MS);
    CHECK(emulator_script(entry));
    run->client = client;
    pthread_mutex_init(&run->lock, NULL);
    baseline_sockets = sockets_now();
    baseline_threads = threads_now();
    connections_before = emulator_connections();
    CHECK(pthread_create(&watcher, NULL, watch_sockets, run) == 0);
    start = now_ms();
    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK);
    quick_options(&options, 10);
    for (i = 0; i < CAP_WAITS; i++) CHECK_CODE(cm_waiter_add(waiter, 840001 + i, &options, (uint64_t)i), CM_OK);
    for (i = 0; i < CAP_THREADS; i++) CHECK(pthread_create(&threads[i], NULL, cap_caller, run) == 0);
    for (i = 0; i < CAP_WAITS; i++) {
        if (cm_waiter_next(waiter, 60000, &tag, &r) == CM_OK && cm_result_code(r) == CM_OK &&
            contains(cm_result_solution_string(r, "text"), "slow"))
            waits_ok++;
        cm_result_free(r);
    }
    for (i = 0; i < CAP_THREADS; i++) pthread_join(threads[i], NULL);
    elapsed = now_ms() - start;
    cm_waiter_free(waiter);
    run->done = 1;
    pthread_join(watcher, NULL);
    connections_after = emulator_connections();
    /* Minus the stats request's own connection. */
    opened = connections_after - connections_before - 1;

    CHECK(run->ok == CAP_THREADS * CAP_CALLS_EACH);
    CHECK(run->wrong == 0);
    if (run->wrong > 0) fprintf(stderr, "first unexpected outcome: %s\n", run->first_wrong);
    /* The threads engine sends on the blocking calls' one pool: it never opens more than CAP.
     * On the event loop the waits have a pool of their own, and a
     * connection moves between the two pools as the load moves (the gate closes an idle one
     * of one pool to open one in the other), so more are opened over time; the cap holds at
     * any moment (the socket count below), and both paths busy keep half the cap each, so the
     * moves are a few, not one per request. */
    CHECK(opened >= 1 && opened <= (engine == CM_ENGINE_EVENT_LOOP ? 3 * CAP : CAP));
    CHECK(waits_ok == CAP_WAITS);
    CHECK(run->peak_sockets - baseline_sockets <= CAP);
    /* The callers, the socket watcher, and at most CAP + 4 of the library's. */
    CHECK(run->peak_threads - baseline_threads <= CAP_THREADS + 1 + CAP + 4);
    /* With at most CAP answers of CAP_DELAY_MS at a time, the calls take at least this long. */
    minimum = (double)((CAP_THREADS * CAP_CALLS_EACH + CAP_WAITS) / CAP) * CAP_DELAY_MS * 0.9;
    CHECK(elapsed >= minimum);
    printf("connection cap %d, %s: %d threads x %d calls and %d waiter waits in %.0f ms (at least %.0f at %d at "
           "a time); the emulator saw %ld connections; at most %ld sockets open at once and %ld threads (callers, "
           "watcher and library's)\n",
           CAP, engine == CM_ENGINE_THREADS ? "threads" : "event loop", CAP_THREADS, CAP_CALLS_EACH, CAP_WAITS,
           elapsed, minimum, CAP, opened,
           run->peak_sockets - baseline_sockets, run->peak_threads - baseline_threads);
    CHECK(emulator_script("{\"method\":\"getBalance\",\"steps\":[]}"));
    CHECK(emulator_script("{\"method\":\"getTaskResult\",\"steps\":[]}"));
    pthread_mutex_destroy(&run->lock);
    free(run);
    cm_client_free(client);
}

int main(int argc, char **argv) {
    const char *waits_env = getenv("TEST_WAITER_WAITS");
    long waits = waits_env ? strtol(waits_env, NULL, 10) : 20000;
    double start = now_ms();
    if (argc != 2 || waits < 1) {
        fprintf(stderr, "usage: [TEST_WAITER_WAITS=N] %s EMULATOR_BASE_URL\n", argv[0]);
        return 2;
    }
    base_url = argv[1];
    if (emulator_port() <= 0) {
        fprintf(stderr, "%s: the base URL must be http://127.0.0.1:PORT\n", argv[0]);
        return 2;
    }
    use_own_budget();
    if (!COUNTS) printf("skipped on Windows: the counts of threads, descriptors and sockets (no /proc)\n");
    test_malformed_proxy_in_the_environment();
    test_setter_messages();
    test_fd_readiness();
    test_several_takers();
    test_shutdown_with_waits_pending();
    test_free_with_waits_pending();
    test_client_freed_before_its_waiter();
    test_waiter_outcomes();
    test_solves();
    test_cancels_of_sleeping_waits();
    test_cancel_in_flight();
    test_cancels_racing_the_end_of_calls();
    test_call_timeouts();
    test_connection_cap(CM_ENGINE_THREADS);
    test_connection_cap(CM_ENGINE_EVENT_LOOP);
    test_many_waits(waits, CM_ENGINE_THREADS);
    test_many_waits(waits, CM_ENGINE_EVENT_LOOP);
    printf("%d checks, %d failed (%.1f s)\n", checks, failures, (now_ms() - start) / 1000.0);
    return failures == 0 ? 0 : 1;
}
