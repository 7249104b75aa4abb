/*
 * Input abuse at the C ABI: every exported function called with NULLs, empty strings, invalid
 * UTF-8, huge strings, extreme task ids, every int32 code, malformed URLs and proxies, extreme
 * wait options, and 64 threads racing on one task's budget. Each call must return a documented
 * code (the exact one the contract promises), never crash, and every result is freed: run
 * under valgrind and AddressSanitizer by scripts/test-hardening.sh. cm_client_new and the
 * setters run both with a NULL out_result (the same code) and with one (a result carrying the
 * code and a message naming the refused argument); the _with calls and the waiter get NULLs
 * in every place too.
 *
 * Usage: test_abuse [--full-code-sweep] BASE_URL   (a fresh emulator, any script)
 *   --full-code-sweep: cm_code_name for all 2^32 int32 values (about 17 s at -O2); without it
 *   a dense range around 0, the edges and random samples (fast enough for valgrind).
 *
 * C99: -std=c99 -Wall -Wextra -Werror -pedantic.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "capmonster.h"
#include "check.h"

/* A code that returns no result object. `what` names the case in a failure. */
#define CHECK_CODE(actual, expected, what)                                                     \
    do {                                                                                       \
        cm_code actual_ = (actual);                                                            \
        checks++;                                                                              \
        if (actual_ != (expected)) {                                                           \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s: %s: got %s, expected %s\n", __FILE__, __LINE__,        \
                    __func__, (what), cm_code_name(actual_), cm_code_name(expected));          \
        }                                                                                      \
    } while (0)

/*
 * A call that hands back a result in `r`: the code is the expected one, the result is there
 * (unless `out_given` is 0: a NULL out_result gets none), carries the same code and a
 * message, and is freed here.
 */
#define CHECK_CALL(call, r, out_given, expected, what)                                         \
    do {                                                                                       \
        cm_code code_;                                                                         \
        (r) = NULL;                                                                            \
        code_ = (call);                                                                        \
        CHECK_CODE(code_, (expected), (what));                                                 \
        if (out_given) {                                                                       \
            CHECK((r) != NULL);                                                                \
            CHECK(cm_result_code(r) == code_);                                                 \
            CHECK(cm_result_message(r) != NULL && cm_result_message(r)[0] != '\0');           \
        } else {                                                                               \
            CHECK((r) == NULL);                                                                \
        }                                                                                      \
        cm_result_free(r);                                                                     \
        (r) = NULL;                                                                            \
    } while (0)


/*
 * A call whose out_result may be NULL (cm_client_new and the setters), made twice: with NULL
 * (the same code, nothing written) and with `&r` (a result with that code whose message names
 * `names`, or any non-empty message when `names` is ""); freed here. `call_null` and `call_r`
 * are the same call with NULL and with `&r` as its out_result.
 */
#define CHECK_OPTIONAL(call_null, call_r, r, expected, names, what)                           \
    do {                                                                                       \
        CHECK_CODE((call_null), (expected), (what));                                           \
        (r) = NULL;                                                                            \
        CHECK_CODE((call_r), (expected), (what));                                              \
        CHECK((r) != NULL);                                                                    \
        CHECK(cm_result_code(r) == (expected));                                                \
        CHECK(cm_result_message(r) != NULL && cm_result_message(r)[0] != '\0');              \
        checks++;                                                                              \
        if (!contains(cm_result_message(r), (names))) {                                        \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s: the message \"%s\" does not name \"%s\"\n", __FILE__,   \
                    __LINE__, (what), cm_result_message(r), (names));                         \
        }                                                                                      \
        /* A message never echoes a huge argument. */                                          \
        CHECK(strlen(cm_result_message(r)) < 4096);                                            \
        cm_result_free(r);                                                                     \
        (r) = NULL;                                                                            \
    } while (0)

/* CHECK_OPTIONAL for a setter: `f(client, value, out_result)`. */
#define CHECK_SETTER(f, client, value, r, expected, names, what)                               \
    CHECK_OPTIONAL(f((client), (value), NULL), f((client), (value), &(r)), r, expected, names, what)

/* A string of `prefix` followed by `fill` up to `length` bytes in all; free it. */
static char *long_string(const char *prefix, char fill, size_t length, const char *suffix) {
    size_t p = strlen(prefix), s = strlen(suffix);
    char *text = malloc(length + 1);
    if (text == NULL) abort();
    memcpy(text, prefix, p);
    memset(text + p, fill, length - p - s);
    memcpy(text + length - s, suffix, s);
    text[length] = '\0';
    return text;
}


/* Creates an image task on the emulator that is ready after `solve_after_ms`. */
static int64_t create_task(const cm_client *client, long solve_after_ms) {
    char task[160];
    int64_t task_id = 0;
    cm_result *r = NULL;
    sprintf(task, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":%ld}",
            solve_after_ms);
    CHECK_CODE(cm_create_task(client, task, NULL, &task_id, &r), CM_OK, "create a task");
    cm_result_free(r);
    return task_id;
}

/* ---------------------------------------------------------------------------------------- */
/* NULL everywhere                                                                           */
/* ---------------------------------------------------------------------------------------- */

static void test_nulls(void) {
    cm_client *client = NULL;
    cm_client *created = NULL;
    cm_result *r = NULL;
    cm_wait_options options, sentinel;
    int mask;

    /* cm_client_new: key x out_client x out_result; nothing written to out_client on failure,
     * a result naming the refused argument whenever out_result is given. */
    for (mask = 0; mask < 8; mask++) {
        const char *key = (mask & 1) ? "abuse-nulls-new" : NULL;
        cm_client **out_client = (mask & 2) ? &created : NULL;
        int out = (mask & 4) != 0;
        cm_code expected = (key != NULL && out_client != NULL) ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        char what[64];
        sprintf(what, "client_new(key %d, out_client %d, out %d)", key != NULL, out_client != NULL, out);
        created = NULL;
        CHECK_CALL(cm_client_new(key, out_client, out ? &r : NULL), r, out, expected, what);
        CHECK(expected == CM_OK ? created != NULL : created == NULL);
        cm_client_free(created);
        created = NULL;
    }
    CHECK_OPTIONAL(cm_client_new(NULL, &created, NULL), cm_client_new(NULL, &created, &r), r,
                   CM_ERR_INVALID_ARGUMENT, "client_key", "client_new(NULL, &c, &r)");
    CHECK_OPTIONAL(cm_client_new("key", NULL, NULL), cm_client_new("key", NULL, &r), r, CM_ERR_INVALID_ARGUMENT,
                   "out_client", "client_new(key, NULL, &r)");
    CHECK(created == NULL);

    client = emulator_client("abuse-nulls");
    CHECK(client != NULL);
    /* Every setter with a NULL client, with NULL values, with and without out_result. */
    CHECK_SETTER(cm_client_set_base_url, NULL, NULL, r, CM_ERR_INVALID_ARGUMENT, "client", "set_base_url(NULL, NULL)");
    CHECK_SETTER(cm_client_set_base_url, NULL, base_url, r, CM_ERR_INVALID_ARGUMENT, "client", "set_base_url(NULL, url)");
    CHECK_SETTER(cm_client_set_base_url, client, NULL, r, CM_ERR_INVALID_ARGUMENT, "base_url", "set_base_url(c, NULL)");
    CHECK_SETTER(cm_client_set_request_timeout_ms, NULL, 1000, r, CM_ERR_INVALID_ARGUMENT, "client", "set_timeout(NULL)");
    CHECK_SETTER(cm_client_set_proxy, NULL, NULL, r, CM_ERR_INVALID_ARGUMENT, "client", "set_proxy(NULL, NULL)");
    CHECK_SETTER(cm_client_set_proxy, NULL, "http://127.0.0.1:1", r, CM_ERR_INVALID_ARGUMENT, "client",
                 "set_proxy(NULL, url)");
    CHECK_SETTER(cm_client_set_proxy, client, NULL, r, CM_OK, "", "set_proxy(c, NULL) turns proxying off");
    CHECK_SETTER(cm_client_set_ca_file, NULL, NULL, r, CM_ERR_INVALID_ARGUMENT, "client", "set_ca_file(NULL, NULL)");
    CHECK_SETTER(cm_client_set_ca_file, NULL, "/etc/hostname", r, CM_ERR_INVALID_ARGUMENT, "client",
                 "set_ca_file(NULL, path)");
    CHECK_SETTER(cm_client_set_ca_file, client, NULL, r, CM_OK, "", "set_ca_file(c, NULL): the system store");
    CHECK_SETTER(cm_client_set_max_connections, NULL, 8, r, CM_ERR_INVALID_ARGUMENT, "client",
                 "set_max_connections(NULL)");
    CHECK_SETTER(cm_client_set_soft_id, NULL, 8, r, CM_ERR_INVALID_ARGUMENT, "client", "set_soft_id(NULL)");
    CHECK_SETTER(cm_client_set_soft_id, client, UINT32_MAX, r, CM_OK, "soft_id", "set_soft_id(c, UINT32_MAX)");
    CHECK_SETTER(cm_client_set_engine, NULL, CM_ENGINE_THREADS, r, CM_ERR_INVALID_ARGUMENT, "client", "set_engine(NULL)");
    CHECK_SETTER(cm_client_set_engine, client, UINT32_MAX, r, CM_ERR_INVALID_ARGUMENT, "engine",
                 "set_engine(c, UINT32_MAX)");
    CHECK_CODE(cm_cancel_new(NULL), CM_ERR_INVALID_ARGUMENT, "cancel_new(NULL)");

    /* Frees and triggers take NULL. */
    cm_client_free(NULL);
    cm_cancel_free(NULL);
    cm_cancel_trigger(NULL);
    cm_result_free(NULL);
    cm_wait_options_init(NULL);
    cm_call_options_init(NULL);

    /* cm_wait_options_for_task_type: options untouched on failure. */
    memset(&sentinel, 0xAB, sizeof sentinel);
    options = sentinel;
    CHECK_CODE(cm_wait_options_for_task_type(NULL, NULL), CM_ERR_INVALID_ARGUMENT, "for_task_type(NULL, NULL)");
    CHECK_CODE(cm_wait_options_for_task_type(NULL, "ImageToTextTask"), CM_ERR_INVALID_ARGUMENT,
               "for_task_type(NULL, type)");
    CHECK_CODE(cm_wait_options_for_task_type(&options, NULL), CM_ERR_INVALID_ARGUMENT, "for_task_type(&o, NULL)");
    CHECK(memcmp(&options, &sentinel, sizeof options) == 0);
    /* cm_get_user_agent / cm_result_text: NULL arguments. */
    CHECK_CODE(cm_get_user_agent(NULL, NULL), CM_ERR_INVALID_ARGUMENT, "get_user_agent(NULL, NULL)");
    CHECK_CODE(cm_get_user_agent_with(NULL, NULL, NULL), CM_ERR_INVALID_ARGUMENT, "get_user_agent_with(NULL...)");
    CHECK(cm_result_text(NULL) == NULL);
    CHECK_CODE(cm_client_set_user_agent_url(NULL, NULL, NULL), CM_ERR_INVALID_ARGUMENT, "set_user_agent_url(NULL)");

    /* cm_api_error_kind / cm_api_error_glossary: NULL for what they do not know. */
    CHECK(cm_api_error_kind(NULL) == NULL);
    CHECK(cm_api_error_kind("") == NULL);
    CHECK(cm_api_error_kind("ERROR_\xff") == NULL);
    CHECK(strcmp(cm_api_error_kind("WRONG_CAPTCHA_ID"), "ERROR_NO_SUCH_CAPCHA_ID") == 0);
    CHECK(cm_api_error_glossary(UINT32_MAX) == NULL);
    CHECK(cm_api_error_glossary(0) != NULL);

    /* cm_wait_options_for_task: the same, and for what is not a task. */
    CHECK_CODE(cm_wait_options_for_task(NULL, NULL), CM_ERR_INVALID_ARGUMENT, "for_task(NULL, NULL)");
    CHECK_CODE(cm_wait_options_for_task(NULL, "{\"type\":\"CustomTask\"}"), CM_ERR_INVALID_ARGUMENT,
               "for_task(NULL, task)");
    CHECK_CODE(cm_wait_options_for_task(&options, NULL), CM_ERR_INVALID_ARGUMENT, "for_task(&o, NULL)");
    CHECK_CODE(cm_wait_options_for_task(&options, ""), CM_ERR_INVALID_ARGUMENT, "for_task(&o, \"\")");
    CHECK_CODE(cm_wait_options_for_task(&options, "{\"type\":\"\"}"), CM_ERR_INVALID_ARGUMENT,
               "for_task(&o, type \"\")");
    CHECK_CODE(cm_wait_options_for_task(&options, "{\"type\":\"\xff\"}"), CM_ERR_INVALID_ARGUMENT,
               "for_task(&o, not UTF-8)");
    CHECK(memcmp(&options, &sentinel, sizeof options) == 0);

    /* cm_get_task_result: client x out_result. */
    CHECK_CODE(cm_get_task_result(NULL, 1, NULL), CM_ERR_INVALID_ARGUMENT, "get_task_result(NULL, 1, NULL)");
    CHECK_CODE(cm_get_task_result(client, 1, NULL), CM_ERR_INVALID_ARGUMENT, "get_task_result(c, 1, NULL)");
    CHECK_CALL(cm_get_task_result(NULL, 1, &r), r, 1, CM_ERR_INVALID_ARGUMENT, "get_task_result(NULL, 1, &r)");

    /* cm_wait_result: client x options x out_result. NULL options means the defaults: one
     * second's first delay, then the unknown task's API error. */
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    for (mask = 0; mask < 8; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        const cm_wait_options *o = (mask & 2) ? &options : NULL;
        int out = (mask & 4) != 0;
        cm_code expected = (c != NULL && out) ? CM_ERR_API : CM_ERR_INVALID_ARGUMENT;
        char what[64];
        sprintf(what, "wait_result(client %d, options %d, out %d)", c != NULL, o != NULL, out);
        CHECK_CALL(cm_wait_result(c, 990001, o, out ? &r : NULL), r, out, expected, what);
    }

    /* cm_create_task: client x task_json x callback x out_task_id x out_result. Only the
     * two with everything given (callback or not) create a task. */
    for (mask = 0; mask < 32; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        const char *task = (mask & 2) ? "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}" : NULL;
        const char *callback = (mask & 4) ? "https://example.com/callback" : NULL;
        int64_t task_id = -7;
        int64_t *out_id = (mask & 8) ? &task_id : NULL;
        int out = (mask & 16) != 0;
        cm_code expected = (c != NULL && task != NULL && out_id != NULL && out) ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        char what[96];
        sprintf(what, "create_task(client %d, task %d, callback %d, out_id %d, out %d)", c != NULL,
                task != NULL, callback != NULL, out_id != NULL, out);
        CHECK_CALL(cm_create_task(c, task, callback, out_id, out ? &r : NULL), r, out, expected, what);
        CHECK(expected == CM_OK ? task_id > 0 : task_id == -7);
    }

    /* cm_get_balance: client x out_balance x out_result. */
    for (mask = 0; mask < 8; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        double balance = -7.0;
        double *out_balance = (mask & 2) ? &balance : NULL;
        int out = (mask & 4) != 0;
        cm_code expected = (c != NULL && out_balance != NULL && out) ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        char what[64];
        sprintf(what, "get_balance(client %d, out_balance %d, out %d)", c != NULL, out_balance != NULL, out);
        CHECK_CALL(cm_get_balance(c, out_balance, out ? &r : NULL), r, out, expected, what);
        CHECK(expected == CM_OK ? balance > 0.0 : balance == -7.0);
    }

    /* Every accessor with a NULL result. */
    CHECK(cm_result_code(NULL) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_result_is_ready(NULL) == 0);
    CHECK(cm_result_task_id(NULL) == 0);
    CHECK(cm_result_solution_json(NULL) == NULL);
    CHECK(cm_result_solution_string(NULL, NULL) == NULL);
    CHECK(cm_result_solution_string(NULL, "text") == NULL);
    CHECK(cm_result_api_error_code(NULL) == NULL);
    CHECK(cm_result_api_error_description(NULL) == NULL);
    CHECK(cm_result_message(NULL) != NULL);
    CHECK(cm_result_request_count(NULL) == 0);
    CHECK(cm_result_http_status(NULL) == 0);

    /* A ready result with a NULL field name. */
    {
        int64_t task_id = create_task(client, 0);
        CHECK_CODE(cm_get_task_result(client, task_id, &r), CM_OK, "get_task_result(ready)");
        CHECK(cm_result_is_ready(r) == 1);
        CHECK(cm_result_solution_string(r, NULL) == NULL);
        CHECK(cm_result_solution_string(r, "text") != NULL);
        cm_result_free(r);
    }
    cm_client_free(client);
}

/* The 0.2 calls: the _with calls and the waiter, with NULL in every place. */
static void test_nulls_of_the_new_calls(void) {
    cm_client *client = emulator_client("abuse-nulls-new-calls");
    cm_result *r = NULL;
    cm_call_options call_options;
    cm_wait_options options;
    cm_waiter *waiter = NULL;
    uint64_t tag = 7;
    int64_t ready = create_task(client, 0);
    cm_code code;
    int mask;

    /* cm_call_options_init: the defaults. */
    memset(&call_options, 0xAB, sizeof call_options);
    cm_call_options_init(&call_options);
    CHECK(call_options.timeout_ms == 0 && call_options.cancel == NULL);

    /* cm_get_task_result_with: client x options x out_result; NULL options are the defaults. */
    for (mask = 0; mask < 8; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        const cm_call_options *o = (mask & 2) ? &call_options : NULL;
        int out = (mask & 4) != 0;
        cm_code expected = (c != NULL && out) ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        char what[80];
        sprintf(what, "get_task_result_with(client %d, options %d, out %d)", c != NULL, o != NULL, out);
        CHECK_CALL(cm_get_task_result_with(c, ready, o, out ? &r : NULL), r, out, expected, what);
    }
    CHECK_CODE(cm_get_task_result_with(client, 0, NULL, &r), CM_ERR_INVALID_ARGUMENT, "get_task_result_with(id 0)");
    CHECK(contains(cm_result_message(r), "task_id") && cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* cm_create_task_with: client x task_json x options x out_task_id x out_result. */
    for (mask = 0; mask < 32; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        const char *task = (mask & 2) ? "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}" : NULL;
        const cm_call_options *o = (mask & 4) ? &call_options : NULL;
        int64_t task_id = -7;
        int64_t *out_id = (mask & 8) ? &task_id : NULL;
        int out = (mask & 16) != 0;
        cm_code expected = (c != NULL && task != NULL && out_id != NULL && out) ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        char what[112];
        sprintf(what, "create_task_with(client %d, task %d, options %d, out_id %d, out %d)", c != NULL,
                task != NULL, o != NULL, out_id != NULL, out);
        CHECK_CALL(cm_create_task_with(c, task, NULL, o, out_id, out ? &r : NULL), r, out, expected, what);
        CHECK(expected == CM_OK ? task_id > 0 : task_id == -7);
    }

    /* cm_get_balance_with: client x options x out_balance x out_result. */
    for (mask = 0; mask < 16; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        const cm_call_options *o = (mask & 2) ? &call_options : NULL;
        double balance = -7.0;
        double *out_balance = (mask & 4) ? &balance : NULL;
        int out = (mask & 8) != 0;
        cm_code expected = (c != NULL && out_balance != NULL && out) ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        char what[96];
        sprintf(what, "get_balance_with(client %d, options %d, out_balance %d, out %d)", c != NULL, o != NULL,
                out_balance != NULL, out);
        CHECK_CALL(cm_get_balance_with(c, o, out_balance, out ? &r : NULL), r, out, expected, what);
        CHECK(expected == CM_OK ? balance > 0.0 : balance == -7.0);
    }

    /* The reports: client x options x out_result, for an unknown task (the service's error)
     * and task ids the library refuses before sending. */
    for (mask = 0; mask < 8; mask++) {
        const cm_client *c = (mask & 1) ? client : NULL;
        const cm_call_options *o = (mask & 2) ? &call_options : NULL;
        int out = (mask & 4) != 0;
        cm_code expected = (c != NULL && out) ? CM_ERR_API : CM_ERR_INVALID_ARGUMENT;
        char what[96];
        sprintf(what, "report_incorrect_*(client %d, options %d, out %d)", c != NULL, o != NULL, out);
        CHECK_CALL(cm_report_incorrect_image(c, 987654, out ? &r : NULL), r, out, expected, what);
        CHECK_CALL(cm_report_incorrect_token(c, 987654, out ? &r : NULL), r, out, expected, what);
        CHECK_CALL(cm_report_incorrect_image_with(c, 987654, o, out ? &r : NULL), r, out, expected, what);
        CHECK_CALL(cm_report_incorrect_token_with(c, 987654, o, out ? &r : NULL), r, out, expected, what);
    }
    CHECK_CODE(cm_report_incorrect_image(client, 0, &r), CM_ERR_INVALID_ARGUMENT, "report_incorrect_image(id 0)");
    CHECK(contains(cm_result_message(r), "task_id") && cm_result_request_count(r) == 0);
    cm_result_free(r);
    CHECK_CODE(cm_report_incorrect_token_with(client, INT64_MIN, NULL, &r), CM_ERR_INVALID_ARGUMENT,
               "report_incorrect_token_with(id INT64_MIN)");
    CHECK(contains(cm_result_message(r), "task_id") && cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* cm_waiter_new: client x out_waiter; nothing written on failure. */
    CHECK_CODE(cm_waiter_new(NULL, NULL), CM_ERR_INVALID_ARGUMENT, "waiter_new(NULL, NULL)");
    CHECK_CODE(cm_waiter_new(NULL, &waiter), CM_ERR_INVALID_ARGUMENT, "waiter_new(NULL, &w)");
    CHECK(waiter == NULL);
    CHECK_CODE(cm_waiter_new(client, NULL), CM_ERR_INVALID_ARGUMENT, "waiter_new(c, NULL)");

    /* A NULL waiter everywhere. */
    CHECK_CODE(cm_waiter_add(NULL, ready, NULL, 1), CM_ERR_INVALID_ARGUMENT, "waiter_add(NULL)");
    r = (cm_result *)&tag; /* garbage the call must overwrite */
    CHECK_CODE(cm_waiter_next(NULL, 0, &tag, &r), CM_ERR_INVALID_ARGUMENT, "waiter_next(NULL, ...)");
    CHECK(r == NULL && tag == 7);
    CHECK_CODE(cm_waiter_next(NULL, 0, NULL, NULL), CM_ERR_INVALID_ARGUMENT, "waiter_next(NULL x 3)");
    CHECK(cm_waiter_fd(NULL) == -1);
    CHECK(cm_waiter_pending(NULL) == 0);
    cm_waiter_shutdown(NULL);
    cm_waiter_free(NULL);

    /* A live waiter with NULL out-parameters and options. */
    CHECK_CODE(cm_waiter_new(client, &waiter), CM_OK, "waiter_new");
    CHECK(waiter != NULL);
    r = (cm_result *)&tag;
    CHECK_CODE(cm_waiter_next(waiter, 0, NULL, &r), CM_ERR_INVALID_ARGUMENT, "waiter_next(w, 0, NULL, &r)");
    CHECK(r == NULL);
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, NULL), CM_ERR_INVALID_ARGUMENT, "waiter_next(w, 0, &tag, NULL)");
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_ERR_TIMEOUT, "waiter_next on an empty waiter");
    CHECK(r == NULL && tag == 7);
    /* NULL options: the defaults (a 1 s first delay), then the ready task. */
    CHECK_CODE(cm_waiter_add(waiter, ready, NULL, UINT64_MAX), CM_OK, "waiter_add(options NULL)");
    CHECK(cm_waiter_pending(waiter) == 1);
    CHECK_CODE(cm_waiter_next(waiter, 30000, &tag, &r), CM_OK, "the wait with the default options");
    CHECK(tag == UINT64_MAX); /* every bit of a tag comes back */
    CHECK(cm_result_code(r) == CM_OK && cm_result_is_ready(r) == 1 && cm_result_task_id(r) == ready);
    cm_result_free(r);
    CHECK(cm_waiter_pending(waiter) == 0);

    /* Arguments are checked as cm_wait_result checks them; nothing is queued. */
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    CHECK_CODE(cm_waiter_add(waiter, 0, &options, 1), CM_ERR_INVALID_ARGUMENT, "waiter_add(id 0)");
    CHECK_CODE(cm_waiter_add(waiter, -1, &options, 1), CM_ERR_INVALID_ARGUMENT, "waiter_add(id -1)");
    CHECK_CODE(cm_waiter_add(waiter, INT64_MIN, &options, 1), CM_ERR_INVALID_ARGUMENT, "waiter_add(INT64_MIN)");
    options.interval_ms = 0;
    CHECK_CODE(cm_waiter_add(waiter, ready, &options, 1), CM_ERR_INVALID_ARGUMENT, "waiter_add(interval 0)");
    options.interval_ms = 1;
    options.max_requests = 0;
    CHECK_CODE(cm_waiter_add(waiter, ready, &options, 1), CM_ERR_INVALID_ARGUMENT, "waiter_add(max_requests 0)");
    /* The same refusals with a result say why, naming the argument. */
    CHECK_OPTIONAL(cm_waiter_add_with_result(waiter, ready, &options, 1, NULL),
                   cm_waiter_add_with_result(waiter, ready, &options, 1, &r), r, CM_ERR_INVALID_ARGUMENT,
                   "max_requests", "waiter_add_with_result(max_requests 0)");
    CHECK_OPTIONAL(cm_waiter_add_with_result(waiter, 0, NULL, 1, NULL),
                   cm_waiter_add_with_result(waiter, 0, NULL, 1, &r), r, CM_ERR_INVALID_ARGUMENT, "task_id",
                   "waiter_add_with_result(id 0)");
    CHECK_OPTIONAL(cm_waiter_add_with_result(NULL, ready, NULL, 1, NULL),
                   cm_waiter_add_with_result(NULL, ready, NULL, 1, &r), r, CM_ERR_INVALID_ARGUMENT, "waiter",
                   "waiter_add_with_result(NULL)");
    CHECK(cm_waiter_pending(waiter) == 0);

    /* Extreme options: a 49-day first delay, tag 0; shutdown ends it at once. */
    cm_wait_options_init(&options);
    options.first_delay_ms = UINT32_MAX;
    options.interval_ms = UINT32_MAX;
    options.timeout_ms = UINT32_MAX;
    options.max_requests = UINT32_MAX;
    CHECK_CODE(cm_waiter_add(waiter, ready, &options, 0), CM_OK, "waiter_add(all UINT32_MAX)");
    CHECK_CODE(cm_waiter_add(waiter, INT64_MAX, &options, 1), CM_OK, "waiter_add(INT64_MAX)");
    CHECK(cm_waiter_pending(waiter) == 2);
    CHECK_CODE(cm_waiter_next(waiter, 50, &tag, &r), CM_ERR_TIMEOUT, "nothing finishes for 49 days");
    CHECK(r == NULL);
    cm_waiter_shutdown(waiter);
    cm_waiter_shutdown(waiter); /* idempotent */
    for (mask = 0; mask < 2; mask++) {
        tag = 7;
        CHECK_CODE(cm_waiter_next(waiter, 10000, &tag, &r), CM_OK, "a cancelled wait comes out");
        CHECK(tag == 0 || tag == 1);
        CHECK(cm_result_code(r) == CM_ERR_CANCELLED && cm_result_request_count(r) == 0);
        cm_result_free(r);
    }
    CHECK_CODE(cm_waiter_next(waiter, 0, &tag, &r), CM_ERR_CANCELLED, "next after shutdown, drained");
    CHECK(r == NULL);
    CHECK_CODE(cm_waiter_next(waiter, UINT32_MAX, &tag, &r), CM_ERR_CANCELLED, "next(UINT32_MAX) after shutdown");
    CHECK_CODE(cm_waiter_add(waiter, ready, NULL, 2), CM_ERR_CANCELLED, "add after shutdown");
    CHECK_OPTIONAL(cm_waiter_add_with_result(waiter, ready, NULL, 2, NULL),
                   cm_waiter_add_with_result(waiter, ready, NULL, 2, &r), r, CM_ERR_CANCELLED, "shut down",
                   "add_with_result after shutdown");
    code = cm_waiter_add(waiter, 0, NULL, 2); /* both faults: either code, nothing queued */
    CHECK(code == CM_ERR_INVALID_ARGUMENT || code == CM_ERR_CANCELLED);
    CHECK(cm_waiter_pending(waiter) == 0);
    cm_waiter_free(waiter);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* Empty strings, invalid UTF-8, huge strings                                                */
/* ---------------------------------------------------------------------------------------- */

static void test_empty_strings(void) {
    cm_client *client = emulator_client("abuse-empty");
    cm_client *created = NULL;
    cm_result *r = NULL;
    cm_wait_options options;
    int64_t task_id = -7;

    CHECK_OPTIONAL(cm_client_new("", &created, NULL), cm_client_new("", &created, &r), r, CM_ERR_INVALID_ARGUMENT,
                   "client_key", "client_new(\"\")");
    CHECK(created == NULL);
    CHECK_SETTER(cm_client_set_base_url, client, "", r, CM_ERR_INVALID_ARGUMENT, "base_url", "set_base_url(\"\")");
    CHECK_SETTER(cm_client_set_proxy, client, "", r, CM_ERR_INVALID_ARGUMENT, "proxy_url", "set_proxy(\"\")");
    CHECK_SETTER(cm_client_set_ca_file, client, "", r, CM_ERR_INVALID_ARGUMENT, "ca_file", "set_ca_file(\"\")");
    /* An empty task type is an unknown type: the defaults, CM_OK. */
    CHECK_CODE(cm_wait_options_for_task_type(&options, ""), CM_OK, "for_task_type(\"\")");
    CHECK(options.first_delay_ms == 1000 && options.interval_ms == 2000 && options.max_requests == 120);
    CHECK_CALL(cm_create_task(client, "", NULL, &task_id, &r), r, 1, CM_ERR_INVALID_ARGUMENT, "create_task(\"\")");
    CHECK_CALL(cm_create_task(client, "{\"type\":\"\"}", NULL, &task_id, &r), r, 1, CM_ERR_INVALID_ARGUMENT,
               "create_task(type \"\")");
    CHECK_CALL(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", "", &task_id, &r), r, 1,
               CM_ERR_INVALID_ARGUMENT, "create_task(callback \"\")");
    CHECK(task_id == -7);
    cm_client_free(client);
}

/* Byte sequences that are not UTF-8. */
static const char *const bad_utf8[] = {
    "\x80",             /* a lone continuation byte */
    "\xc0\xaf",         /* an overlong '/' */
    "\xed\xa0\x80",     /* a UTF-16 surrogate */
    "\xf0\x9f\x98",     /* a 4-byte sequence cut short */
    "\xf4\x90\x80\x80", /* beyond U+10FFFF */
    "\xff",             /* never valid */
    "abc\xc3",          /* cut at the end */
};

static void test_invalid_utf8(void) {
    cm_client *client = emulator_client("abuse-utf8");
    cm_client *created = NULL;
    cm_result *r = NULL, *ready = NULL;
    cm_wait_options options;
    char text[256];
    size_t i;
    int64_t task_id = create_task(client, 0);

    CHECK_CODE(cm_get_task_result(client, task_id, &ready), CM_OK, "a ready result");
    for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        const char *bad = bad_utf8[i];
        int64_t new_id = -7;
        CHECK_OPTIONAL(cm_client_new(bad, &created, NULL), cm_client_new(bad, &created, &r), r,
                       CM_ERR_INVALID_ARGUMENT, "client_key", "client_key not UTF-8");
        CHECK(created == NULL);
        sprintf(text, "http://127.0.0.1:1/%s", bad);
        CHECK_SETTER(cm_client_set_base_url, client, text, r, CM_ERR_INVALID_ARGUMENT, "base_url", "base_url not UTF-8");
        sprintf(text, "http://127.0.0.1:%s", bad);
        CHECK_SETTER(cm_client_set_proxy, client, text, r, CM_ERR_INVALID_ARGUMENT, "proxy_url", "proxy_url not UTF-8");
        sprintf(text, "/tmp/%s", bad);
        CHECK_SETTER(cm_client_set_ca_file, client, text, r, CM_ERR_INVALID_ARGUMENT, "path", "path not UTF-8");
        CHECK_CODE(cm_wait_options_for_task_type(&options, bad), CM_ERR_INVALID_ARGUMENT, "task_type not UTF-8");
        sprintf(text, "{\"type\":\"ImageToTextTask\",\"body\":\"%s\"}", bad);
        CHECK_CALL(cm_create_task(client, text, NULL, &new_id, &r), r, 1, CM_ERR_INVALID_ARGUMENT,
                   "task_json not UTF-8");
        sprintf(text, "https://example.com/%s", bad);
        CHECK_CALL(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", text, &new_id, &r),
                   r, 1, CM_ERR_INVALID_ARGUMENT, "callback_url not UTF-8");
        CHECK(new_id == -7);
        CHECK(cm_result_solution_string(ready, bad) == NULL);
    }
    cm_result_free(ready);
    /* The client still works after all that. */
    CHECK_CALL(cm_get_task_result(client, task_id, &r), r, 1, CM_OK, "get_task_result after the abuse");
    cm_client_free(client);
}

#define MIB (1024u * 1024u)

static void test_huge_strings(void) {
    cm_client *client = emulator_client("abuse-huge");
    cm_client *created = NULL;
    cm_result *r = NULL;
    cm_wait_options options;
    int64_t task_id = -7;
    char *huge = long_string("", 'k', 10 * MIB, "");
    char *huge_url = long_string("http://127.0.0.1:1/", 'a', 10 * MIB, "");
    char *huge_https = long_string("https://example.com/", 'a', 10 * MIB, "");
    char *long_url = long_string("http://127.0.0.1:1/", 'a', 8193, "");
    char *huge_task = long_string("{\"type\":\"ImageToTextTask\",\"body\":\"", 'A', 10 * MIB, "\"}");
    char *task_at_limit = long_string("{\"type\":\"ImageToTextTask\",\"body\":\"", 'A', 8 * MIB, "\"}");
    char *task_over_limit = long_string("{\"type\":\"ImageToTextTask\",\"body\":\"", 'A', 8 * MIB + 1, "\"}");
    char *key_at_limit = long_string("", 'k', 1024, "");
    char *key_over_limit = long_string("", 'k', 1025, "");

    CHECK_OPTIONAL(cm_client_new(huge, &created, NULL), cm_client_new(huge, &created, &r), r,
                   CM_ERR_INVALID_ARGUMENT, "client_key", "10 MiB key");
    CHECK_OPTIONAL(cm_client_new(key_over_limit, &created, NULL), cm_client_new(key_over_limit, &created, &r), r,
                   CM_ERR_INVALID_ARGUMENT, "client_key", "1025-byte key");
    CHECK(created == NULL);
    CHECK_CODE(cm_client_new(key_at_limit, &created, &r), CM_OK, "1024-byte key");
    CHECK(cm_result_code(r) == CM_OK);
    CHECK(strstr(cm_result_message(r), key_at_limit) == NULL); /* the key never shows */
    cm_result_free(r);
    cm_client_free(created);

    CHECK_SETTER(cm_client_set_base_url, client, huge_url, r, CM_ERR_INVALID_ARGUMENT, "base_url", "10 MiB base_url");
    CHECK_SETTER(cm_client_set_base_url, client, long_url, r, CM_ERR_INVALID_ARGUMENT, "base_url",
                 "8193-byte base_url");
    CHECK_SETTER(cm_client_set_proxy, client, huge_url, r, CM_ERR_INVALID_ARGUMENT, "proxy_url", "10 MiB proxy_url");
    CHECK_SETTER(cm_client_set_proxy, client, long_url, r, CM_ERR_INVALID_ARGUMENT, "proxy_url",
                 "8193-byte proxy_url");
    /* A 10 MiB path: refused, named, and not echoed whole. */
    CHECK_SETTER(cm_client_set_ca_file, client, huge_url, r, CM_ERR_INVALID_ARGUMENT, "ca_file", "10 MiB path");
    /* A huge task type is an unknown type: the defaults. */
    CHECK_CODE(cm_wait_options_for_task_type(&options, huge), CM_OK, "10 MiB task_type");

    CHECK_CALL(cm_create_task(client, huge_task, NULL, &task_id, &r), r, 1, CM_ERR_INVALID_ARGUMENT,
               "10 MiB task_json");
    CHECK_CALL(cm_create_task(client, task_over_limit, NULL, &task_id, &r), r, 1, CM_ERR_INVALID_ARGUMENT,
               "8 MiB + 1 task_json");
    CHECK(task_id == -7);
    /* Exactly 8 MiB is accepted and sent (the emulator takes bodies up to 16 MiB). */
    CHECK_CALL(cm_create_task(client, task_at_limit, NULL, &task_id, &r), r, 1, CM_OK, "8 MiB task_json");
    CHECK(task_id > 0);
    CHECK_CALL(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", huge_https, &task_id,
                              &r),
               r, 1, CM_ERR_INVALID_ARGUMENT, "10 MiB callback_url");

    /* A huge field name for the solution accessor. */
    task_id = create_task(client, 0);
    CHECK_CODE(cm_get_task_result(client, task_id, &r), CM_OK, "a ready result");
    CHECK(cm_result_solution_string(r, huge) == NULL);
    cm_result_free(r);

    free(huge);
    free(huge_url);
    free(huge_https);
    free(long_url);
    free(huge_task);
    free(task_at_limit);
    free(task_over_limit);
    free(key_at_limit);
    free(key_over_limit);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* Task ids                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void test_task_ids(void) {
    cm_client *client = emulator_client("abuse-task-ids");
    cm_result *r = NULL;
    cm_wait_options options;
    const int64_t invalid[] = {0, -1, INT64_MIN};
    size_t i;

    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.interval_ms = 10;
    for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        CHECK_CODE(cm_get_task_result(client, invalid[i], &r), CM_ERR_INVALID_ARGUMENT, "task id <= 0");
        CHECK(contains(cm_result_message(r), "task_id"));
        CHECK(cm_result_request_count(r) == 0);
        cm_result_free(r);
        CHECK_CODE(cm_wait_result(client, invalid[i], &options, &r), CM_ERR_INVALID_ARGUMENT, "wait, task id <= 0");
        CHECK(cm_result_request_count(r) == 0);
        cm_result_free(r);
    }
    /* INT64_MAX is a valid id the emulator never made: ERROR_NO_SUCH_CAPCHA_ID. */
    CHECK_CODE(cm_get_task_result(client, INT64_MAX, &r), CM_ERR_API, "INT64_MAX");
    CHECK(cm_result_api_error_code(r) != NULL && strcmp(cm_result_api_error_code(r), "ERROR_NO_SUCH_CAPCHA_ID") == 0);
    CHECK(cm_result_task_id(r) == INT64_MAX);
    CHECK(cm_result_http_status(r) == 200);
    CHECK(cm_result_request_count(r) == 1);
    cm_result_free(r);
    /* The service disowned the task: a wait ends at once with the same answer, from the
       library (nothing sent, no HTTP status). */
    CHECK_CODE(cm_wait_result(client, INT64_MAX, &options, &r), CM_ERR_API, "wait, INT64_MAX");
    CHECK(cm_result_api_error_code(r) != NULL && strcmp(cm_result_api_error_code(r), "ERROR_NO_SUCH_CAPCHA_ID") == 0);
    CHECK(cm_result_request_count(r) == 0);
    CHECK(cm_result_http_status(r) == 0);
    CHECK(contains(cm_result_message(r), "was not sent"));
    cm_result_free(r);
    CHECK(emulator_task_requests(INT64_MAX) == 1);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* cm_code_name for every int32                                                              */
/* ---------------------------------------------------------------------------------------- */

static const char *const code_names[] = {
    "CM_OK",
    "CM_ERR_INVALID_ARGUMENT",
    "CM_ERR_API",
    "CM_ERR_NETWORK",
    "CM_ERR_TIMEOUT",
    "CM_ERR_HTTP_STATUS",
    "CM_ERR_BAD_RESPONSE",
    "CM_ERR_BUDGET_EXHAUSTED",
    "CM_ERR_CANCELLED",
    "CM_ERR_INTERNAL",
};

/* Checks one code; the unknown name is compared by pointer first (static storage), then text. */
static int code_name_ok(int32_t code, const char *unknown) {
    const char *name = cm_code_name(code);
    if (code >= 0 && code <= 9) return name != NULL && strcmp(name, code_names[code]) == 0;
    return name == unknown || (name != NULL && strcmp(name, "CM_ERR_UNKNOWN") == 0);
}

static void test_code_names(int full) {
    const char *unknown = cm_code_name(-1);
    uint64_t state = 0x9E3779B97F4A7C15u;
    long long wrong = 0, calls = 0;
    int64_t code;
    int i;
    double start = now_ms();

    CHECK(unknown != NULL && strcmp(unknown, "CM_ERR_UNKNOWN") == 0);
    if (full) {
        for (code = INT32_MIN; code <= INT32_MAX; code++) {
            if (!code_name_ok((int32_t)code, unknown)) wrong++;
        }
        calls = (long long)UINT32_MAX + 1;
    } else {
        /* Dense around 0 (where real codes live and new ones will be added) ... */
        for (code = -65536; code <= 65536; code++, calls++) {
            if (!code_name_ok((int32_t)code, unknown)) wrong++;
        }
        /* ... the edges ... */
        for (code = 0; code < 4096; code++, calls += 2) {
            if (!code_name_ok((int32_t)(INT32_MIN + code), unknown)) wrong++;
            if (!code_name_ok((int32_t)(INT32_MAX - code), unknown)) wrong++;
        }
        /* ... and 200,000 random values (xorshift64). */
        for (i = 0; i < 200000; i++, calls++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if (!code_name_ok((int32_t)(uint32_t)state, unknown)) wrong++;
        }
    }
    CHECK(wrong == 0);
    printf("cm_code_name: %lld values (%s) in %.1f s, %lld wrong\n", calls, full ? "all of int32" : "sampled",
           (now_ms() - start) / 1000.0, wrong);
}

/* ---------------------------------------------------------------------------------------- */
/* URLs and proxies                                                                          */
/* ---------------------------------------------------------------------------------------- */

struct url_case {
    const char *url;
    cm_code expected;
};

/* Checks a URL case: the code, the same code without an out_result, and a result that names
 * `argument` when the URL was refused; frees the result. */
static void check_url_case(cm_code got, cm_code got_without_result, cm_result *r, const struct url_case *c,
                           const char *function, const char *argument) {
    checks += 3;
    if (got != c->expected || got_without_result != c->expected || cm_result_code(r) != c->expected) {
        failures++;
        fprintf(stderr, "%s(\"%s\"): got %s (%s without out_result, %s in the result), expected %s\n", function,
                c->url, cm_code_name(got), cm_code_name(got_without_result), cm_code_name(cm_result_code(r)),
                cm_code_name(c->expected));
    }
    if (c->expected != CM_OK && !contains(cm_result_message(r), argument)) {
        failures++;
        fprintf(stderr, "%s(\"%s\"): the message \"%s\" does not name %s\n", function, c->url,
                cm_result_message(r), argument);
    }
    cm_result_free(r);
}

static void test_base_urls(void) {
    static const struct url_case cases[] = {
        {"not a url", CM_ERR_INVALID_ARGUMENT},
        {"http://", CM_ERR_INVALID_ARGUMENT},
        {"https://", CM_ERR_INVALID_ARGUMENT},
        {"http://:80", CM_ERR_INVALID_ARGUMENT},
        {"http://127.0.0.1:1/a b", CM_ERR_INVALID_ARGUMENT},     /* a space */
        {"http://127.0.0.1:1/a\tb", CM_ERR_INVALID_ARGUMENT},    /* a tab */
        {"http://127.0.0.1:1/\x01", CM_ERR_INVALID_ARGUMENT},    /* a control character */
        {"http://127.0.0.1:1/\x7f", CM_ERR_INVALID_ARGUMENT},    /* DEL */
        {"http://127.0.0.1:1/\r\nX-Evil: 1", CM_ERR_INVALID_ARGUMENT},
        {"http://127.0.0.1:99999", CM_ERR_INVALID_ARGUMENT},
        {"http://[::1", CM_ERR_INVALID_ARGUMENT},
        {"http://example.com", CM_ERR_INVALID_ARGUMENT},         /* http:// only to loopback */
        {"http://0.0.0.0:1", CM_ERR_INVALID_ARGUMENT},
        {"http://10.0.0.1", CM_ERR_INVALID_ARGUMENT},
        {"http://127.0.0.1.nip.io", CM_ERR_INVALID_ARGUMENT},    /* a name, not loopback */
        {"http://localhost.example.com", CM_ERR_INVALID_ARGUMENT},
        {"http://2130706433", CM_ERR_INVALID_ARGUMENT},          /* 127.0.0.1 as one number */
        {"http://0x7f.1", CM_ERR_INVALID_ARGUMENT},
        {"http://user:pw@127.0.0.1:1", CM_ERR_INVALID_ARGUMENT}, /* credentials */
        {"http://127.0.0.1:1/?q=1", CM_ERR_INVALID_ARGUMENT},
        {"http://127.0.0.1:1/#fragment", CM_ERR_INVALID_ARGUMENT},
        {"file:///etc/passwd", CM_ERR_INVALID_ARGUMENT},
        {"ftp://127.0.0.1", CM_ERR_INVALID_ARGUMENT},
        {"javascript:alert(1)", CM_ERR_INVALID_ARGUMENT},
        {"//127.0.0.1:1", CM_ERR_INVALID_ARGUMENT},
        {"http://localhost:1", CM_OK},
        {"http://LOCALHOST:1", CM_OK},
        {"http://[::1]:1", CM_OK},
        {"http://[::ffff:127.0.0.1]:1", CM_OK},
        {"http://127.255.255.254:1", CM_OK},
        {"https://127.0.0.1:1", CM_OK},
        {"https://example.invalid/", CM_OK},
    };
    cm_client *client = emulator_client("abuse-base-urls");
    cm_result *r = NULL;
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cm_code without = cm_client_set_base_url(client, cases[i].url, NULL);
        cm_code with = cm_client_set_base_url(client, cases[i].url, &r);
        check_url_case(with, without, r, &cases[i], "cm_client_set_base_url", "base_url");
    }
    /* The last good URL is in effect: nothing listens (or resolves) there. */
    CHECK_CALL(cm_get_balance(client, &(double){0}, &r), r, 1, CM_ERR_NETWORK, "balance at example.invalid");
    CHECK_SETTER(cm_client_set_base_url, client, "http://127.0.0.1:1", r, CM_OK, "", "port 1");
    CHECK_CALL(cm_get_balance(client, &(double){0}, &r), r, 1, CM_ERR_NETWORK, "balance at port 1");
    /* Back to the emulator: the client is as good as new. */
    CHECK_SETTER(cm_client_set_base_url, client, base_url, r, CM_OK, "", "the emulator");
    CHECK_CALL(cm_get_balance(client, &(double){0}, &r), r, 1, CM_OK, "balance at the emulator");
    cm_client_free(client);
}

static void test_callback_urls(void) {
    static const struct url_case cases[] = {
        {"ftp://example.com/cb", CM_ERR_INVALID_ARGUMENT},
        {"http://", CM_ERR_INVALID_ARGUMENT},
        {"example.com/cb", CM_ERR_INVALID_ARGUMENT},
        {"https://example.com/a b", CM_ERR_INVALID_ARGUMENT},
        {"https://example.com/\r\n", CM_ERR_INVALID_ARGUMENT},
        {"http://example.com/cb", CM_OK}, /* the caller's own server: any host */
        {"https://127.0.0.1:1/cb?x=1", CM_OK},
    };
    cm_client *client = emulator_client("abuse-callback-urls");
    cm_result *r = NULL;
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t task_id = 0;
        CHECK_CALL(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", cases[i].url,
                                  &task_id, &r),
                   r, 1, cases[i].expected, cases[i].url);
    }
    cm_client_free(client);
}

static void test_proxies(void) {
    static const struct url_case cases[] = {
        {"ftp://127.0.0.1:21", CM_ERR_INVALID_ARGUMENT},
        {"http://", CM_ERR_INVALID_ARGUMENT},
        {"http://:3128", CM_ERR_INVALID_ARGUMENT},
        {"socks5://", CM_ERR_INVALID_ARGUMENT},
        {"socks5://user:pass@", CM_ERR_INVALID_ARGUMENT},
        {"127.0.0.1:3128", CM_ERR_INVALID_ARGUMENT}, /* no scheme */
        {"http:// 127.0.0.1:3128", CM_ERR_INVALID_ARGUMENT},
        {"http://127.0.0.1:3128\r\nX-Evil: 1", CM_ERR_INVALID_ARGUMENT},
        {"http://127.0.0.1:99999", CM_ERR_INVALID_ARGUMENT},
        {"http://[::1", CM_ERR_INVALID_ARGUMENT},
        {"unix:///var/run/proxy.sock", CM_ERR_INVALID_ARGUMENT},
        {"not a url", CM_ERR_INVALID_ARGUMENT},
    };
    /* Proxies that parse but lead nowhere (port 1), and ones that are not proxies at all
     * (the emulator itself: it answers CONNECT with 405, SOCKS with HTTP): CM_ERR_NETWORK,
     * and the credentials never show. */
    char emulator_as_http[64], emulator_as_socks[64];
    const char *unusable[6];
    cm_client *client = emulator_client("abuse-proxies");
    cm_result *r = NULL;
    size_t i;

    sprintf(emulator_as_http, "http://user:hunter2-secret@127.0.0.1:%d", emulator_port());
    sprintf(emulator_as_socks, "socks5://user:hunter2-secret@127.0.0.1:%d", emulator_port());
    unusable[0] = "http://user:hunter2-secret@127.0.0.1:1";
    unusable[1] = "https://127.0.0.1:1";
    unusable[2] = "socks5://127.0.0.1:1";
    unusable[3] = "socks5h://user:hunter2-secret@127.0.0.1:1";
    unusable[4] = emulator_as_http;
    unusable[5] = emulator_as_socks;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cm_code without = cm_client_set_proxy(client, cases[i].url, NULL);
        cm_code with = cm_client_set_proxy(client, cases[i].url, &r);
        check_url_case(with, without, r, &cases[i], "cm_client_set_proxy", "proxy_url");
    }
    for (i = 0; i < sizeof unusable / sizeof unusable[0]; i++) {
        double balance = -7.0;
        CHECK_CODE(cm_client_set_proxy(client, unusable[i], &r), CM_OK, unusable[i]);
        CHECK(!contains(cm_result_message(r), "hunter2-secret"));
        cm_result_free(r);
        CHECK_CODE(cm_get_balance(client, &balance, &r), CM_ERR_NETWORK, unusable[i]);
        CHECK(!contains(cm_result_message(r), "hunter2-secret"));
        CHECK(balance == -7.0);
        cm_result_free(r);
    }
    CHECK_SETTER(cm_client_set_proxy, client, NULL, r, CM_OK, "", "proxy off");
    CHECK_CALL(cm_get_balance(client, &(double){0}, &r), r, 1, CM_OK, "balance without a proxy");
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* Timeouts and wait options at their extremes                                               */
/* ---------------------------------------------------------------------------------------- */

static void test_request_timeouts(void) {
    cm_client *client = emulator_client("abuse-request-timeouts");
    cm_result *r = NULL;
    cm_code code;
    CHECK_SETTER(cm_client_set_request_timeout_ms, client, 0, r, CM_ERR_INVALID_ARGUMENT, "timeout_ms",
                 "request timeout 0");
    /* 1 ms: loopback may or may not answer in time; either documented code, nothing else. */
    CHECK_SETTER(cm_client_set_request_timeout_ms, client, 1, r, CM_OK, "", "request timeout 1");
    code = cm_get_balance(client, &(double){0}, &r);
    CHECK(code == CM_OK || code == CM_ERR_TIMEOUT);
    CHECK(cm_result_code(r) == code);
    cm_result_free(r);
    /* UINT32_MAX ms (49 days) is a valid bound. */
    CHECK_SETTER(cm_client_set_request_timeout_ms, client, UINT32_MAX, r, CM_OK, "", "request timeout UINT32_MAX");
    CHECK_CALL(cm_get_balance(client, &(double){0}, &r), r, 1, CM_OK, "balance, timeout UINT32_MAX");
    cm_client_free(client);
}

struct trigger {
    cm_cancel *cancel;
    long after_ms;
    int free_it;
};

static void *trigger_later(void *arg) {
    struct trigger *t = arg;
    sleep_ms(t->after_ms);
    cm_cancel_trigger(t->cancel);
    /* The wait holds its own reference: freeing ours while it runs is allowed. */
    if (t->free_it) cm_cancel_free(t->cancel);
    return NULL;
}

static void test_wait_extremes(void) {
    cm_client *client = emulator_client("abuse-wait-extremes");
    cm_result *r = NULL;
    cm_wait_options options;
    struct trigger trigger;
    pthread_t thread;
    double start, elapsed;
    int64_t forever = create_task(client, 86400000); /* processing for a day */
    int64_t ready = create_task(client, 0);

    /* timeout 0: the deadline has passed before the first request. */
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.timeout_ms = 0;
    start = now_ms();
    CHECK_CODE(cm_wait_result(client, forever, &options, &r), CM_ERR_TIMEOUT, "timeout 0");
    CHECK(cm_result_request_count(r) == 0);
    CHECK(now_ms() - start < 1000);
    cm_result_free(r);

    /* interval 1 with max_requests 5: five requests, then the wait's own budget. */
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.interval_ms = 1;
    options.max_requests = 5;
    CHECK_CODE(cm_wait_result(client, forever, &options, &r), CM_ERR_BUDGET_EXHAUSTED, "interval 1, max 5");
    CHECK(cm_result_request_count(r) == 5);
    CHECK(contains(cm_result_message(r), "max_requests"));
    cm_result_free(r);

    /* interval 0 and max_requests 0 are invalid; nothing is sent. */
    options.interval_ms = 0;
    CHECK_CODE(cm_wait_result(client, forever, &options, &r), CM_ERR_INVALID_ARGUMENT, "interval 0");
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);
    options.interval_ms = 1;
    options.max_requests = 0;
    CHECK_CODE(cm_wait_result(client, forever, &options, &r), CM_ERR_INVALID_ARGUMENT, "max_requests 0");
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* first_delay UINT32_MAX (49 days) with a 200 ms timeout: the deadline wins. */
    cm_wait_options_init(&options);
    options.first_delay_ms = UINT32_MAX;
    options.timeout_ms = 200;
    start = now_ms();
    CHECK_CODE(cm_wait_result(client, forever, &options, &r), CM_ERR_TIMEOUT, "first delay UINT32_MAX");
    elapsed = now_ms() - start;
    CHECK(elapsed >= 150 && elapsed < 3000);
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* max_requests UINT32_MAX: the process-wide budget of 120 per task still holds. */
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.interval_ms = 1;
    options.timeout_ms = 60000;
    options.max_requests = UINT32_MAX;
    CHECK_CODE(cm_wait_result(client, forever, &options, &r), CM_ERR_BUDGET_EXHAUSTED, "max_requests UINT32_MAX");
    CHECK(cm_result_request_count(r) == 115); /* 5 were spent above */
    CHECK(contains(cm_result_message(r), "120"));
    cm_result_free(r);
    CHECK(emulator_task_requests(forever) == 120);

    /* Everything UINT32_MAX, cancelled from another thread after 100 ms, which then frees
     * its token while the wait still holds it. */
    cm_wait_options_init(&options);
    options.first_delay_ms = UINT32_MAX;
    options.interval_ms = UINT32_MAX;
    options.timeout_ms = UINT32_MAX;
    options.max_requests = UINT32_MAX;
    CHECK_CODE(cm_cancel_new(&trigger.cancel), CM_OK, "cancel_new");
    trigger.after_ms = 100;
    trigger.free_it = 1;
    options.cancel = trigger.cancel;
    start = now_ms();
    CHECK(pthread_create(&thread, NULL, trigger_later, &trigger) == 0);
    CHECK_CODE(cm_wait_result(client, ready, &options, &r), CM_ERR_CANCELLED, "all UINT32_MAX, cancelled");
    elapsed = now_ms() - start;
    pthread_join(thread, NULL);
    CHECK(elapsed < 3000);
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);

    /* A ready task under extreme options: one request, CM_OK. */
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.interval_ms = UINT32_MAX;
    options.timeout_ms = UINT32_MAX;
    options.max_requests = UINT32_MAX;
    CHECK_CODE(cm_wait_result(client, ready, &options, &r), CM_OK, "ready, extreme options");
    CHECK(cm_result_is_ready(r) == 1 && cm_result_request_count(r) == 1);
    cm_result_free(r);
    cm_client_free(client);
}

/* ---------------------------------------------------------------------------------------- */
/* 64 threads racing on one task                                                             */
/* ---------------------------------------------------------------------------------------- */

#define RACERS 64

struct racer {
    const cm_client *client;
    int64_t task_id;
    cm_code code;
    uint32_t requests;
};

static void *race(void *arg) {
    struct racer *racer = arg;
    cm_result *r = NULL;
    cm_wait_options options;
    cm_wait_options_init(&options);
    options.first_delay_ms = 0;
    options.interval_ms = 1;
    options.timeout_ms = 120000;
    options.max_requests = UINT32_MAX;
    racer->code = cm_wait_result(racer->client, racer->task_id, &options, &r);
    racer->requests = cm_result_request_count(r);
    cm_result_free(r);
    return NULL;
}

static void test_sixty_four_threads_share_one_budget(void) {
    cm_client *client = emulator_client("abuse-race");
    cm_client *same_key = emulator_client("abuse-race");
    cm_result *r = NULL;
    struct racer racers[RACERS];
    pthread_t threads[RACERS];
    int64_t task_id = create_task(client, 86400000);
    uint32_t total = 0;
    int i, exhausted = 0;

    for (i = 0; i < RACERS; i++) {
        racers[i].client = client;
        racers[i].task_id = task_id;
        CHECK(pthread_create(&threads[i], NULL, race, &racers[i]) == 0);
    }
    for (i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        total += racers[i].requests;
        if (racers[i].code == CM_ERR_BUDGET_EXHAUSTED) exhausted++;
    }
    CHECK(exhausted == RACERS);
    CHECK(total == 120);
    CHECK(emulator_task_requests(task_id) == 120);
    /* Another client object with the same key sends nothing more. */
    CHECK_CODE(cm_get_task_result(same_key, task_id, &r), CM_ERR_BUDGET_EXHAUSTED, "after the race");
    CHECK(cm_result_request_count(r) == 0);
    cm_result_free(r);
    CHECK(emulator_task_requests(task_id) == 120);
    printf("64 threads on one task: %u requests in all, emulator counted %ld\n", total,
           emulator_task_requests(task_id));
    cm_client_free(client);
    cm_client_free(same_key);
}

/* The log hook and the counters: NULLs, every size and level, and callbacks set, replaced and
 * removed (also from inside a callback) by 4 threads while 4 others make calls. */
static unsigned long lines_seen;

static void CM_CALL count_line(void *user_data, cm_log_level level, const char *event, const char *message) {
    (void)user_data;
    if (level >= CM_LOG_ERROR && level <= CM_LOG_TRACE && event[0] != '\0' && message != NULL)
        __atomic_add_fetch(&lines_seen, 1, __ATOMIC_RELAXED);
}

static void CM_CALL remove_itself(void *user_data, cm_log_level level, const char *event, const char *message) {
    (void)user_data, (void)level, (void)event, (void)message;
    cm_set_log_callback(CM_LOG_TRACE, NULL, NULL);
}

struct log_racer {
    cm_client *client;
    int flips; /* 0: makes 200 calls; otherwise sets callbacks until the callers are done */
    int failures;
    long rounds;
};

static int callers_done;
/* Most callback changes one flipping thread makes. */
#define MAX_FLIPS 20000

static void *log_race(void *arg) {
    struct log_racer *racer = (struct log_racer *)arg;
    int i;
    if (racer->flips) {
        cm_log_callback callbacks[3] = {count_line, remove_itself, NULL};
        /* Bounded, and a pause between changes: under valgrind, which runs one thread at a
         * time, changes as fast as possible starve the callers (each change takes the sink's
         * write lock, which every line of theirs reads). */
        for (i = 0; i < MAX_FLIPS && !__atomic_load_n(&callers_done, __ATOMIC_RELAXED); i++) {
            if (cm_set_log_callback(i % 2 ? CM_LOG_TRACE : CM_LOG_DEBUG, callbacks[i % 3], NULL) != CM_OK)
                racer->failures++;
            racer->rounds++;
            struct timespec pause = {0, 100000}; /* 0.1 ms */
            nanosleep(&pause, NULL);
        }
        return NULL;
    }
    for (i = 0; i < 200; i++) {
        cm_result *r = NULL;
        double balance = 0;
        if (cm_get_balance(racer->client, &balance, &r) != CM_OK) racer->failures++;
        cm_result_free(r);
        racer->rounds++;
    }
    return NULL;
}

static void test_log_and_stats(void) {
    cm_client *client = emulator_client("abuse-log");
    cm_client_stats stats;
    struct log_racer racers[8];
    pthread_t threads[8];
    int64_t level;
    uint32_t size;
    int i, failures = 0;
    long flips = 0;

    CHECK(cm_client_get_stats(NULL, NULL) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_client_get_stats(NULL, &stats) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_client_get_stats(client, NULL) == CM_ERR_INVALID_ARGUMENT);
    for (size = 0; size <= sizeof stats; size++) {
        memset(&stats, 0xab, sizeof stats);
        stats.size = size;
        CHECK(cm_client_get_stats(client, &stats) == (size < 8 ? CM_ERR_INVALID_ARGUMENT : CM_OK));
        CHECK(stats.size == size);
    }
    /* A size beyond the library's struct: only its own struct is written. */
    {
        unsigned char bigger[sizeof stats + 64];
        memset(bigger, 0xcd, sizeof bigger);
        size = sizeof bigger;
        memcpy(bigger, &size, sizeof size);
        CHECK(cm_client_get_stats(client, (cm_client_stats *)(void *)bigger) == CM_OK);
        CHECK(bigger[sizeof stats] == 0xcd && bigger[sizeof bigger - 1] == 0xcd);
    }
    /* Every level from -1000 to 1000, and the edges of int32. */
    for (level = -1002; level <= 1000; level++) {
        int32_t value = level == -1002 ? INT32_MIN : (level == -1001 ? INT32_MAX : (int32_t)level);
        cm_code expected = value >= CM_LOG_ERROR && value <= CM_LOG_TRACE ? CM_OK : CM_ERR_INVALID_ARGUMENT;
        CHECK(cm_set_log_callback(value, count_line, NULL) == expected);
        CHECK(cm_set_log_callback(value, NULL, NULL) == CM_OK);
    }

    for (i = 0; i < 8; i++) {
        racers[i].client = client;
        racers[i].flips = i % 2;
        racers[i].failures = 0;
        racers[i].rounds = 0;
        CHECK(pthread_create(&threads[i], NULL, log_race, &racers[i]) == 0);
    }
    for (i = 0; i < 8; i += 2) pthread_join(threads[i], NULL); /* the callers */
    __atomic_store_n(&callers_done, 1, __ATOMIC_RELAXED);
    for (i = 1; i < 8; i += 2) {
        pthread_join(threads[i], NULL);
        flips += racers[i].rounds;
    }
    for (i = 0; i < 8; i++) failures += racers[i].failures;
    CHECK(failures == 0);
    CHECK(cm_set_log_callback(CM_LOG_TRACE, NULL, NULL) == CM_OK);
    stats.size = sizeof stats;
    CHECK(cm_client_get_stats(client, &stats) == CM_OK);
    CHECK(stats.requests_get_balance == 800 && stats.answers_ready == 800 && stats.requests_in_flight == 0);
    CHECK(flips > 0);
    printf("log hook: 4 threads set, replaced and removed callbacks %ld times while 4 made 800 calls; %lu lines seen\n",
           flips, lines_seen);
    cm_client_free(client);
}

int main(int argc, char **argv) {
    int full = 0;
    if (argc == 3 && strcmp(argv[1], "--full-code-sweep") == 0) {
        full = 1;
        base_url = argv[2];
    } else if (argc == 2) {
        base_url = argv[1];
    } else {
        fprintf(stderr, "usage: %s [--full-code-sweep] EMULATOR_BASE_URL\n", argv[0]);
        return 2;
    }
    if (emulator_port() <= 0) {
        fprintf(stderr, "%s: the base URL must be http://127.0.0.1:PORT\n", argv[0]);
        return 2;
    }
    use_own_budget();
    test_nulls();
    test_nulls_of_the_new_calls();
    test_log_and_stats();
    test_empty_strings();
    test_invalid_utf8();
    test_huge_strings();
    test_task_ids();
    test_code_names(full);
    test_base_urls();
    test_callback_urls();
    test_proxies();
    test_request_timeouts();
    test_wait_extremes();
    test_sixty_four_threads_share_one_budget();
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
