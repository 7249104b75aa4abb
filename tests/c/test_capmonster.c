/*
 * C tests of libcapmonster through its public header, against the emulator.
 * Usage: test_capmonster BASE_URL   (the emulator started with emulator-script.json)
 * Built with -std=c99 -Wall -Wextra -Werror -pedantic; run under valgrind by scripts/test-c.sh.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "capmonster.h"
#include "check.h"

#define CHECK_CODE(actual, expected)                                                  \
    do {                                                                              \
        cm_code actual_ = (actual);                                                   \
        checks++;                                                                     \
        if (actual_ != (expected)) {                                                  \
            failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: got %s, expected %s\n", __FILE__, __LINE__,   \
                    __func__, cm_code_name(actual_), cm_code_name(expected));         \
        }                                                                             \
    } while (0)

/* A call with an optional out_result that got one: the code, the same code in the result,
 * and a message naming `names`; the result is freed. */
#define CHECK_SETTER(call, r, expected, names)                                           \
    do {                                                                              \
        (r) = NULL;                                                                   \
        CHECK_CODE((call), (expected));                                               \
        CHECK((r) != NULL && cm_result_code(r) == (expected));                        \
        CHECK(contains(cm_result_message(r), (names)));                               \
        cm_result_free(r);                                                            \
        (r) = NULL;                                                                   \
    } while (0)

static void fast_options(cm_wait_options *options) {
    cm_wait_options_init(options);
    options->first_delay_ms = 0;
    options->interval_ms = 10;
    options->timeout_ms = 10000;
}

static void test_version_and_code_names(void) {
    char expected[32];
    int32_t code;
    sprintf(expected, "%d.%d.%d", CM_VERSION_MAJOR, CM_VERSION_MINOR, CM_VERSION_PATCH);
    CHECK(strcmp(cm_version(), expected) == 0);
    CHECK(strcmp(cm_code_name(CM_OK), "CM_OK") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_INVALID_ARGUMENT), "CM_ERR_INVALID_ARGUMENT") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_API), "CM_ERR_API") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_NETWORK), "CM_ERR_NETWORK") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_TIMEOUT), "CM_ERR_TIMEOUT") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_HTTP_STATUS), "CM_ERR_HTTP_STATUS") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_BAD_RESPONSE), "CM_ERR_BAD_RESPONSE") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_BUDGET_EXHAUSTED), "CM_ERR_BUDGET_EXHAUSTED") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_CANCELLED), "CM_ERR_CANCELLED") == 0);
    CHECK(strcmp(cm_code_name(CM_ERR_INTERNAL), "CM_ERR_INTERNAL") == 0);
    CHECK(strcmp(cm_code_name(10), "CM_ERR_UNKNOWN") == 0);
    CHECK(strcmp(cm_code_name(-1), "CM_ERR_UNKNOWN") == 0);
    CHECK(strcmp(cm_code_name(INT32_MIN), "CM_ERR_UNKNOWN") == 0);
    CHECK(strcmp(cm_code_name(INT32_MAX), "CM_ERR_UNKNOWN") == 0);
    for (code = -1000; code < 1000; code++) CHECK(cm_code_name(code) != NULL);
}

static void test_invalid_arguments(void) {
    cm_client *client = NULL;
    cm_result *result = NULL;
    cm_wait_options options;
    int64_t task_id = -7;
    double balance = -7.0;
    const char bad_utf8[] = {'k', (char)0xC3, (char)0x28, 0};

    /* Creation and the setters say why they refuse, naming the argument, when given an
     * out_result; with NULL they return the same code. */
    CHECK_CODE(cm_client_new(NULL, &client, NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_SETTER(cm_client_new(NULL, &client, &result), result, CM_ERR_INVALID_ARGUMENT, "client_key");
    CHECK_SETTER(cm_client_new("", &client, &result), result, CM_ERR_INVALID_ARGUMENT, "client_key");
    CHECK_SETTER(cm_client_new(bad_utf8, &client, &result), result, CM_ERR_INVALID_ARGUMENT, "client_key");
    CHECK_SETTER(cm_client_new("key", NULL, &result), result, CM_ERR_INVALID_ARGUMENT, "out_client");
    CHECK(client == NULL);

    client = emulator_client("c-invalid-arguments");
    CHECK(client != NULL);
    CHECK_SETTER(cm_client_set_base_url(client, NULL, &result), result, CM_ERR_INVALID_ARGUMENT, "base_url");
    CHECK_SETTER(cm_client_set_base_url(client, "http://example.com", &result), result, CM_ERR_INVALID_ARGUMENT,
                 "base_url");
    CHECK_SETTER(cm_client_set_base_url(client, "not a url", &result), result, CM_ERR_INVALID_ARGUMENT, "base_url");
    CHECK_CODE(cm_client_set_base_url(client, "not a url", NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_SETTER(cm_client_set_base_url(NULL, base_url, &result), result, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_SETTER(cm_client_set_request_timeout_ms(client, 0, &result), result, CM_ERR_INVALID_ARGUMENT,
                 "timeout_ms");
    CHECK_CODE(cm_client_set_request_timeout_ms(client, 0, NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_SETTER(cm_client_set_request_timeout_ms(NULL, 10, &result), result, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_SETTER(cm_client_set_proxy(client, "ftp://127.0.0.1:1", &result), result, CM_ERR_INVALID_ARGUMENT,
                 "proxy_url");
    CHECK_SETTER(cm_client_set_proxy(NULL, NULL, &result), result, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_SETTER(cm_client_set_ca_file(client, "/no/such/ca.pem", &result), result, CM_ERR_INVALID_ARGUMENT,
                 "/no/such/ca.pem");
    CHECK_SETTER(cm_client_set_ca_file(NULL, NULL, &result), result, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_SETTER(cm_client_set_max_connections(client, 0, &result), result, CM_ERR_INVALID_ARGUMENT,
                 "max_connections");
    CHECK_SETTER(cm_client_set_max_connections(NULL, 8, &result), result, CM_ERR_INVALID_ARGUMENT, "client");
    CHECK_SETTER(cm_client_set_ca_file(client, NULL, &result), result, CM_OK, "");
    CHECK_CODE(cm_client_set_ca_file(client, NULL, NULL), CM_OK);
    /* After all those refusals the client still talks to the emulator. */
    CHECK_CODE(cm_get_balance(client, &balance, &result), CM_OK);
    cm_result_free(result);
    balance = -7.0;

    /* A NULL out_result: nothing is written, nothing sent. */
    CHECK_CODE(cm_get_task_result(client, 101, NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_CODE(cm_wait_result(client, 101, NULL, NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_CODE(cm_create_task(client, "{\"type\":\"ImageToTextTask\"}", NULL, &task_id, NULL),
               CM_ERR_INVALID_ARGUMENT);
    CHECK_CODE(cm_get_balance(client, &balance, NULL), CM_ERR_INVALID_ARGUMENT);

    /* Every other bad argument still hands back a result naming the argument. */
    CHECK_CODE(cm_get_task_result(NULL, 101, &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_result_code(result) == CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "client"));
    CHECK(cm_result_request_count(result) == 0);
    cm_result_free(result);

    CHECK_CODE(cm_get_task_result(client, 0, &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "task_id"));
    cm_result_free(result);
    CHECK_CODE(cm_get_task_result(client, -1, &result), CM_ERR_INVALID_ARGUMENT);
    cm_result_free(result);

    fast_options(&options);
    options.interval_ms = 0;
    CHECK_CODE(cm_wait_result(client, 101, &options, &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "interval_ms"));
    CHECK(cm_result_request_count(result) == 0);
    cm_result_free(result);
    fast_options(&options);
    options.max_requests = 0;
    CHECK_CODE(cm_wait_result(client, 101, &options, &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "max_requests"));
    cm_result_free(result);

    CHECK_CODE(cm_create_task(client, "[1,2]", NULL, &task_id, &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "task_json"));
    cm_result_free(result);
    CHECK_CODE(cm_create_task(client, "{\"body\":\"x\"}", NULL, &task_id, &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "type"));
    cm_result_free(result);
    CHECK_CODE(cm_create_task(client, NULL, NULL, &task_id, &result), CM_ERR_INVALID_ARGUMENT);
    cm_result_free(result);
    CHECK_CODE(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"x\"}", "ftp://x",
                              &task_id, &result),
               CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "callback_url"));
    cm_result_free(result);
    CHECK_CODE(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"x\"}", NULL, NULL,
                              &result),
               CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "out_task_id"));
    cm_result_free(result);
    CHECK(task_id == -7); /* out-parameters are written only on CM_OK */

    CHECK_CODE(cm_get_balance(client, NULL, &result), CM_ERR_INVALID_ARGUMENT);
    cm_result_free(result);
    CHECK(balance == -7.0);

    CHECK_CODE(cm_wait_options_for_task_type(NULL, "ImageToTextTask"), CM_ERR_INVALID_ARGUMENT);
    CHECK_CODE(cm_wait_options_for_task_type(&options, NULL), CM_ERR_INVALID_ARGUMENT);
    CHECK_CODE(cm_cancel_new(NULL), CM_ERR_INVALID_ARGUMENT);

    /* NULL is harmless wherever a function takes something to free or read. */
    cm_client_free(NULL);
    cm_result_free(NULL);
    cm_cancel_free(NULL);
    cm_cancel_trigger(NULL);
    cm_wait_options_init(NULL);
    CHECK(cm_result_code(NULL) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_result_message(NULL) != NULL);
    CHECK(cm_result_solution_json(NULL) == NULL);
    CHECK(cm_result_solution_string(NULL, "text") == NULL);
    CHECK(cm_result_is_ready(NULL) == 0);
    cm_client_free(client);
}

static void test_processing(void) {
    cm_client *client = emulator_client("c-processing");
    cm_result *result = NULL;
    CHECK_CODE(cm_get_task_result(client, 101, &result), CM_OK);
    CHECK(cm_result_code(result) == CM_OK);
    CHECK(cm_result_is_ready(result) == 0);
    CHECK(cm_result_task_id(result) == 101);
    CHECK(cm_result_solution_json(result) == NULL);
    CHECK(cm_result_solution_string(result, "text") == NULL);
    CHECK(cm_result_api_error_code(result) == NULL);
    CHECK(cm_result_request_count(result) == 1);
    CHECK(cm_result_http_status(result) == 200);
    CHECK(contains(cm_result_message(result), "processing"));
    cm_result_free(result);
    cm_client_free(client);
}

static void test_ready(void) {
    cm_client *client = emulator_client("c-ready");
    cm_result *result = NULL;
    CHECK_CODE(cm_get_task_result(client, 102, &result), CM_OK);
    CHECK(cm_result_is_ready(result) == 1);
    CHECK(contains(cm_result_solution_json(result), "\"nested\""));
    CHECK(cm_result_solution_string(result, "text") != NULL &&
          strcmp(cm_result_solution_string(result, "text"), "h\xc3\xa9llo \xe2\x9c\x93") == 0);
    CHECK(cm_result_solution_string(result, "n") == NULL);      /* not a string */
    CHECK(cm_result_solution_string(result, "nested") == NULL); /* not a string */
    CHECK(cm_result_solution_string(result, "absent") == NULL);
    CHECK(cm_result_solution_string(result, NULL) == NULL);
    /* Borrowed strings stay put until cm_result_free. */
    CHECK(cm_result_solution_string(result, "text") == cm_result_solution_string(result, "text"));
    cm_result_free(result);
    cm_client_free(client);
}

static void test_api_and_http_errors(void) {
    cm_client *client = emulator_client("c-errors");
    cm_result *result = NULL;

    CHECK_CODE(cm_get_task_result(client, 103, &result), CM_ERR_API);
    CHECK(cm_result_api_error_code(result) != NULL &&
          strcmp(cm_result_api_error_code(result), "ERROR_CAPTCHA_UNSOLVABLE") == 0);
    CHECK(contains(cm_result_api_error_description(result), "could not be solved"));
    CHECK(contains(cm_result_message(result), "ERROR_CAPTCHA_UNSOLVABLE"));
    CHECK(cm_result_http_status(result) == 200);
    cm_result_free(result);

    /* An API error body decides over the HTTP status. */
    CHECK_CODE(cm_get_task_result(client, 104, &result), CM_ERR_API);
    CHECK(contains(cm_result_api_error_code(result), "ERROR_ZERO_BALANCE"));
    CHECK(cm_result_http_status(result) == 402);
    cm_result_free(result);

    CHECK_CODE(cm_get_task_result(client, 105, &result), CM_ERR_HTTP_STATUS);
    CHECK(cm_result_http_status(result) == 502);
    CHECK(cm_result_api_error_code(result) == NULL);
    CHECK(contains(cm_result_message(result), "502"));
    cm_result_free(result);

    CHECK_CODE(cm_get_task_result(client, 106, &result), CM_ERR_BAD_RESPONSE);
    cm_result_free(result);
    CHECK_CODE(cm_get_task_result(client, 113, &result), CM_ERR_BAD_RESPONSE);
    CHECK(contains(cm_result_message(result), "solution"));
    cm_result_free(result);
    cm_client_free(client);
}

static void test_wait_until_ready(void) {
    cm_client *client = emulator_client("c-wait-ready");
    cm_result *result = NULL;
    cm_wait_options options;
    fast_options(&options);
    CHECK_CODE(cm_wait_result(client, 107, &options, &result), CM_OK);
    CHECK(cm_result_is_ready(result) == 1);
    CHECK(cm_result_request_count(result) == 3);
    CHECK(contains(cm_result_solution_string(result, "gRecaptchaResponse"), "03AGdBq25SxXT"));
    cm_result_free(result);

    /* 503, then 429 with ERROR_TOO_MUCH_REQUESTS, then ready: transient failures are retried. */
    CHECK_CODE(cm_wait_result(client, 112, &options, &result), CM_OK);
    CHECK(cm_result_request_count(result) == 3);
    CHECK(contains(cm_result_solution_string(result, "token"), "ok"));
    cm_result_free(result);

    /* A final error ends the wait at once. */
    CHECK_CODE(cm_wait_result(client, 103, &options, &result), CM_ERR_API);
    CHECK(cm_result_request_count(result) == 1);
    cm_result_free(result);
    cm_client_free(client);
}

static void test_wait_timeout_and_max_requests(void) {
    cm_client *client = emulator_client("c-wait-timeout");
    cm_result *result = NULL;
    cm_wait_options options;
    double start;

    fast_options(&options);
    options.interval_ms = 50;
    /* Long enough for two answers even under valgrind on a loaded machine (at 300 ms the first
     * request alone once took it all, and the message had no state to name). */
    options.timeout_ms = 1000;
    start = now_ms();
    CHECK_CODE(cm_wait_result(client, 108, &options, &result), CM_ERR_TIMEOUT);
    CHECK(now_ms() - start < 4000);
    CHECK(contains(cm_result_message(result), "processing"));
    CHECK(cm_result_request_count(result) >= 2);
    cm_result_free(result);

    fast_options(&options);
    options.max_requests = 3;
    CHECK_CODE(cm_wait_result(client, 109, &options, &result), CM_ERR_BUDGET_EXHAUSTED);
    CHECK(cm_result_request_count(result) == 3);
    CHECK(contains(cm_result_message(result), "max_requests"));
    cm_result_free(result);
    cm_client_free(client);
}

struct canceller {
    cm_cancel *cancel;
    long after_ms;
    double triggered_at;
};

static void *trigger_later(void *arg) {
    struct canceller *canceller = arg;
    sleep_ms(canceller->after_ms);
    canceller->triggered_at = now_ms();
    cm_cancel_trigger(canceller->cancel);
    cm_cancel_trigger(canceller->cancel); /* idempotent */
    return NULL;
}

static void test_cancel(void) {
    cm_client *client = emulator_client("c-cancel");
    cm_result *result = NULL;
    cm_wait_options options;
    struct canceller canceller;
    pthread_t thread;
    double returned_at;

    CHECK_CODE(cm_cancel_new(&canceller.cancel), CM_OK);
    canceller.after_ms = 300;
    fast_options(&options);
    options.interval_ms = 2000; /* the trigger arrives while the wait sleeps */
    options.cancel = canceller.cancel;
    CHECK(pthread_create(&thread, NULL, trigger_later, &canceller) == 0);
    CHECK_CODE(cm_wait_result(client, 110, &options, &result), CM_ERR_CANCELLED);
    returned_at = now_ms();
    pthread_join(thread, NULL);
    CHECK(returned_at - canceller.triggered_at < 50.0);
    CHECK(contains(cm_result_message(result), "cancelled"));
    cm_result_free(result);

    /* It stays triggered: the next wait ends before sending anything. */
    CHECK_CODE(cm_wait_result(client, 110, &options, &result), CM_ERR_CANCELLED);
    CHECK(cm_result_request_count(result) == 0);
    cm_result_free(result);
    cm_cancel_free(canceller.cancel);
    cm_client_free(client);
}

static void test_create_wait_and_balance(void) {
    cm_client *client = emulator_client("c-create");
    cm_result *result = NULL;
    cm_wait_options options;
    int64_t task_id = 0;
    double balance = 0;

    CHECK_CODE(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}",
                              "https://example.com/callback", &task_id, &result),
               CM_OK);
    CHECK(task_id > 0);
    CHECK(cm_result_task_id(result) == task_id);
    CHECK(cm_result_request_count(result) == 1);
    cm_result_free(result);

    CHECK_CODE(cm_wait_options_for_task_type(&options, "ImageToTextTask"), CM_OK);
    CHECK(options.first_delay_ms == 350 && options.interval_ms == 200 && options.timeout_ms == 10000);
    CHECK(options.max_requests == 120 && options.cancel == NULL);
    CHECK_CODE(cm_wait_result(client, task_id, &options, &result), CM_OK);
    CHECK(cm_result_is_ready(result) == 1);
    CHECK(cm_result_solution_string(result, "text") != NULL);
    cm_result_free(result);

    CHECK_CODE(cm_get_balance(client, &balance, &result), CM_OK);
    CHECK(balance > 345.677 && balance < 345.679);
    cm_result_free(result);
    cm_client_free(client);
}

static void test_wait_options(void) {
    cm_wait_options options;
    cm_wait_options_init(&options);
    CHECK(options.first_delay_ms == 1000 && options.interval_ms == 2000);
    CHECK(options.timeout_ms == 180000 && options.max_requests == 120 && options.cancel == NULL);
    CHECK_CODE(cm_wait_options_for_task_type(&options, "RecaptchaV3TaskProxyless"), CM_OK);
    CHECK(options.first_delay_ms == 1000 && options.interval_ms == 3000 && options.timeout_ms == 180000);
    CHECK_CODE(cm_wait_options_for_task_type(&options, "CustomTask"), CM_OK);
    CHECK(options.interval_ms == 3000);
    CHECK_CODE(cm_wait_options_for_task_type(&options, "NoSuchTask"), CM_OK);
    CHECK(options.first_delay_ms == 1000 && options.interval_ms == 2000 && options.timeout_ms == 180000);
    /* From the task as created: its class and nocache count. */
    CHECK_CODE(cm_wait_options_for_task(&options, "{\"type\":\"CustomTask\",\"class\":\"Imperva\"}"), CM_OK);
    CHECK(options.first_delay_ms == 1000 && options.interval_ms == 1000 && options.timeout_ms == 15000);
    CHECK_CODE(cm_wait_options_for_task(&options, "{\"type\":\"RecaptchaV2TaskProxyless\",\"nocache\":true}"), CM_OK);
    CHECK(options.first_delay_ms == 10000 && options.interval_ms == 3000 && options.timeout_ms == 180000);
    CHECK(options.max_requests == 120 && options.cancel == NULL);
    CHECK_CODE(cm_wait_options_for_task(&options, "{\"class\":\"Imperva\"}"), CM_ERR_INVALID_ARGUMENT);
    CHECK(options.first_delay_ms == 10000);
    CHECK_CODE(cm_wait_options_for_task(NULL, "{\"type\":\"CustomTask\"}"), CM_ERR_INVALID_ARGUMENT);
    CHECK_CODE(cm_wait_options_for_task(&options, NULL), CM_ERR_INVALID_ARGUMENT);
}

static void test_user_agent(void) {
    cm_client *client = emulator_client("c-user-agent");
    cm_result *result = NULL;
    char url[512];
    snprintf(url, sizeof url, "%s/useragent", base_url);
    CHECK_CODE(cm_client_set_user_agent_url(client, url, NULL), CM_OK);
    CHECK_CODE(cm_get_user_agent(client, &result), CM_OK);
    CHECK(cm_result_text(result) != NULL && strncmp(cm_result_text(result), "Mozilla/5.0 ", 12) == 0);
    CHECK(cm_result_request_count(result) == 1 && cm_result_http_status(result) == 200);
    cm_result_free(result);
    CHECK_SETTER(cm_client_set_user_agent_url(client, "http://example.com/ua", &result), result,
                 CM_ERR_INVALID_ARGUMENT, "user_agent_url");
    CHECK_CODE(cm_get_user_agent(client, NULL), CM_ERR_INVALID_ARGUMENT);
    /* A page that serves no User-Agent: the emulator's 404 HTML page. */
    snprintf(url, sizeof url, "%s/no-such-page", base_url);
    CHECK_CODE(cm_client_set_user_agent_url(client, url, NULL), CM_OK);
    CHECK_CODE(cm_get_user_agent_with(client, NULL, &result), CM_ERR_HTTP_STATUS);
    CHECK(cm_result_text(result) == NULL && cm_result_http_status(result) == 404);
    cm_result_free(result);
    cm_client_free(client);
}

static void test_budget(void) {
    cm_client *client = emulator_client("c-budget");
    cm_client *same_key = emulator_client("c-budget");
    cm_result *result = NULL;
    int i, ok = 0;
    for (i = 0; i < 120; i++) {
        /* Two client objects with one key share the task's budget. */
        if (cm_get_task_result(i % 2 ? client : same_key, 111, &result) == CM_OK) ok++;
        cm_result_free(result);
    }
    CHECK(ok == 120);
    CHECK_CODE(cm_get_task_result(client, 111, &result), CM_ERR_BUDGET_EXHAUSTED);
    CHECK(cm_result_request_count(result) == 0);
    CHECK(contains(cm_result_message(result), "120"));
    cm_result_free(result);
    cm_client_free(client);
    cm_client_free(same_key);
}

#ifndef _WIN32 /* no fork on Windows: main says it skipped this test */
/* The budget is shared by processes, forked ones too: a child (with its own client: a client
 * is never used across fork) counts in the same file as its parent. 1 poll in the parent, then
 * 8 children x 50: 120 sent in all, 280 refused. */
static void test_budget_across_fork(void) {
    cm_client *client = emulator_client("c-fork");
    cm_result *result = NULL;
    int64_t task_id = 0;
    int child, status, sent = 0;
    pid_t children[8];

    CHECK_CODE(cm_create_task(client,
                              "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":3600000}",
                              NULL, &task_id, &result),
               CM_OK);
    cm_result_free(result);
    CHECK_CODE(cm_get_task_result(client, task_id, &result), CM_OK);
    cm_result_free(result);
    cm_client_free(client);
    fflush(NULL);
    for (child = 0; child < 8; child++) {
        children[child] = fork();
        if (children[child] == 0) {
            cm_client *own = emulator_client("c-fork");
            int i, ok = 0;
            for (i = 0; i < 50; i++) {
                cm_code code = cm_get_task_result(own, task_id, &result);
                if (code == CM_OK) ok++;
                else if (code != CM_ERR_BUDGET_EXHAUSTED) ok = 100; /* never a count: fails the sum */
                cm_result_free(result);
            }
            cm_client_free(own);
            _exit(ok);
        }
        CHECK(children[child] > 0);
    }
    for (child = 0; child < 8; child++) {
        if (children[child] > 0 && waitpid(children[child], &status, 0) == children[child] && WIFEXITED(status))
            sent += WEXITSTATUS(status);
    }
    CHECK(sent == 119);
    if (sent != 119) fprintf(stderr, "children sent %d, expected 119\n", sent);
    /* The file they shared is this test's own (own_budget.h), not the user's. */
    CHECK(access(own_budget_file, R_OK | W_OK) == 0);
}

/* A forked child that cannot open the file for itself (its path is now a link, which is never
 * followed) counts alone, but from what the file had counted: 100 polls in the parent, then
 * the child is granted the last 20 of its 50, not 50. */
static void test_a_child_counting_alone_goes_on_from_the_file(void) {
    cm_client *client = emulator_client("c-fork-alone");
    cm_result *result = NULL;
    int64_t task_id = 0;
    int i, status, ok = 0;
    pid_t child;
    char moved[sizeof own_budget_file + sizeof ".moved"];

    CHECK_CODE(cm_create_task(client,
                              "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\",\"emulatorSolveAfterMs\":3600000}",
                              NULL, &task_id, &result),
               CM_OK);
    cm_result_free(result);
    for (i = 0; i < 100; i++) {
        if (cm_get_task_result(client, task_id, &result) == CM_OK) ok++;
        cm_result_free(result);
    }
    CHECK(ok == 100);
    cm_client_free(client);
    snprintf(moved, sizeof moved, "%s.moved", own_budget_file);
    CHECK(rename(own_budget_file, moved) == 0);
    CHECK(symlink(moved, own_budget_file) == 0);
    fflush(NULL);
    child = fork();
    if (child == 0) {
        cm_client *own = emulator_client("c-fork-alone");
        ok = 0;
        for (i = 0; i < 50; i++) {
            cm_code code = cm_get_task_result(own, task_id, &result);
            if (code == CM_OK) ok++;
            else if (code != CM_ERR_BUDGET_EXHAUSTED) ok = 100;
            cm_result_free(result);
        }
        cm_client_free(own);
        _exit(ok);
    }
    CHECK(child > 0);
    ok = -1;
    if (child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status)) ok = WEXITSTATUS(status);
    CHECK(ok == 20);
    if (ok != 20) fprintf(stderr, "the child sent %d, expected 20\n", ok);
    /* The file back in its place, for the tests after this one and the cleanup. */
    CHECK(unlink(own_budget_file) == 0);
    CHECK(rename(moved, own_budget_file) == 0);
}
#endif

#define THREADS 8
#define CALLS_PER_THREAD 15

static void *poll_many(void *arg) {
    cm_client *client = arg;
    long ok = 0;
    int i;
    for (i = 0; i < CALLS_PER_THREAD; i++) {
        cm_result *result = NULL;
        if (cm_get_task_result(client, 114, &result) == CM_OK && cm_result_is_ready(result) == 0) ok++;
        cm_result_free(result);
    }
    return (void *)(intptr_t)ok; /* via intptr_t: long is 32 bits on 64-bit Windows */
}

static void test_threads_share_a_client(void) {
    cm_client *client = emulator_client("c-threads");
    pthread_t threads[THREADS];
    long total = 0;
    int i;
    for (i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, poll_many, client) == 0);
    for (i = 0; i < THREADS; i++) {
        void *ok = NULL;
        pthread_join(threads[i], &ok);
        total += (long)(intptr_t)ok;
    }
    CHECK(total == THREADS * CALLS_PER_THREAD);
    cm_client_free(client);
}

static void test_secret_key_stays_out_of_messages(void) {
    const char *key = "c-super-secret-key-0123456789";
    cm_client *client = emulator_client(key);
    cm_result *result = NULL;
    CHECK_CODE(cm_client_set_proxy(client, "http://user:proxy-password@127.0.0.1:1", &result), CM_OK);
    CHECK(!contains(cm_result_message(result), "proxy-password"));
    cm_result_free(result);
    CHECK_CODE(cm_get_task_result(client, 101, &result), CM_ERR_NETWORK);
    CHECK(!contains(cm_result_message(result), key));
    CHECK(!contains(cm_result_message(result), "proxy-password"));
    cm_result_free(result);
    cm_client_free(client);
}

static void test_reports_and_soft_id(void) {
    cm_client *client = emulator_client("c-reports");
    cm_result *result = NULL;
    int64_t task_id = 0;

    CHECK_SETTER(cm_client_set_soft_id(client, 4242, &result), result, CM_OK, "soft_id");
    CHECK_CODE(cm_create_task(client, "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", NULL, &task_id,
                              &result),
               CM_OK);
    cm_result_free(result);

    CHECK_CODE(cm_report_incorrect_image(client, task_id, &result), CM_OK);
    CHECK(cm_result_task_id(result) == task_id && cm_result_request_count(result) == 1);
    CHECK(cm_result_http_status(result) == 200 && cm_result_is_ready(result) == 0);
    CHECK(contains(cm_result_message(result), "accepted"));
    cm_result_free(result);
    CHECK_CODE(cm_report_incorrect_token_with(client, task_id, NULL, &result), CM_OK);
    cm_result_free(result);

    CHECK_CODE(cm_report_incorrect_token(client, 99999999, &result), CM_ERR_API);
    CHECK(cm_result_api_error_code(result) != NULL &&
          strcmp(cm_result_api_error_code(result), "ERROR_NO_SUCH_CAPCHA_ID") == 0);
    cm_result_free(result);
    cm_client_free(client);
}

/* What the log callback saw: lines, events of interest, and whether any held the key. */
typedef struct {
    int lines;
    int wait_start, wait_retry, wait_end, request;
    int leaked;
    int bad_level;
} log_seen;

static const char *log_key = "c-log-secret-key-0123456789";

static void CM_CALL log_lines(void *user_data, cm_log_level level, const char *event, const char *message) {
    log_seen *seen = (log_seen *)user_data;
    seen->lines++;
    if (level < CM_LOG_ERROR || level > CM_LOG_DEBUG) seen->bad_level++;
    if (strcmp(event, "wait.start") == 0) seen->wait_start++;
    if (strcmp(event, "wait.retry") == 0) seen->wait_retry++;
    if (strcmp(event, "wait.end") == 0) seen->wait_end++;
    if (strcmp(event, "request") == 0) seen->request++;
    if (contains(message, log_key) || contains(message, "proxy-password")) seen->leaked++;
}

static void CM_CALL log_once(void *user_data, cm_log_level level, const char *event, const char *message) {
    (void)level, (void)event, (void)message;
    (*(int *)user_data)++;
    cm_set_log_callback(CM_LOG_TRACE, NULL, NULL); /* removes itself from inside */
}

static void test_log_callback_and_stats(void) {
    cm_client *client = emulator_client(log_key);
    cm_result *result = NULL;
    cm_wait_options options;
    cm_client_stats stats;
    log_seen seen;
    int once = 0;
    double balance = 0;
    char entry[512];
    memset(&seen, 0, sizeof seen);
    fast_options(&options);
    CHECK(cm_set_log_callback(0, log_lines, &seen) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_set_log_callback(6, log_lines, &seen) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_set_log_callback(CM_LOG_DEBUG, log_lines, &seen) == CM_OK);

    /* 503, then the service's error echoing the key, then ready: two retries. */
    snprintf(entry, sizeof entry,
             "{\"taskId\":9120,\"steps\":[{\"raw\":\"\",\"status\":503},"
             "{\"error\":\"ERROR_TOO_MUCH_REQUESTS\",\"description\":\"key %s__x\",\"status\":200},"
             "{\"ready\":{\"token\":\"ok\"}}]}",
             log_key);
    CHECK(emulator_script(entry));
    CHECK_CODE(cm_wait_result(client, 9120, &options, &result), CM_OK);
    cm_result_free(result);
    CHECK(seen.wait_start == 1 && seen.wait_end == 1 && seen.wait_retry == 2 && seen.request == 3);
    CHECK(seen.leaked == 0 && seen.bad_level == 0);

    memset(&stats, 0xff, sizeof stats);
    stats.size = sizeof stats;
    CHECK(cm_client_get_stats(client, &stats) == CM_OK);
    CHECK(stats.size == sizeof stats);
    CHECK(stats.requests_get_task_result == 3 && stats.requests_create_task == 0);
    CHECK(stats.answers_ready == 1 && stats.answers_http_error == 1 && stats.answers_api_error == 1);
    CHECK(stats.retries == 2 && stats.waits_pending == 0 && stats.waits_finished == 1);
    CHECK(stats.bytes_sent > 0 && stats.bytes_received > 0 && stats.connections_opened >= 1);
    CHECK(stats.connections_open >= 1 && stats.connections_open <= stats.connections_opened &&
          stats.connections_idle == stats.connections_open);

    /* A program built against a shorter struct: only what fits is written. */
    memset(&stats, 0xff, sizeof stats);
    stats.size = 16;
    CHECK(cm_client_get_stats(client, &stats) == CM_OK);
    CHECK(stats.size == 16 && stats.requests_get_task_result == 3);
    CHECK(stats.requests_create_task == UINT64_MAX);
    stats.size = 4;
    CHECK(cm_client_get_stats(client, &stats) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_client_get_stats(NULL, &stats) == CM_ERR_INVALID_ARGUMENT);
    CHECK(cm_client_get_stats(client, NULL) == CM_ERR_INVALID_ARGUMENT);

    /* A callback that removes itself: called once, then nothing is logged. */
    CHECK(cm_set_log_callback(CM_LOG_TRACE, log_once, &once) == CM_OK);
    CHECK_CODE(cm_get_balance(client, &balance, &result), CM_OK);
    cm_result_free(result);
    CHECK_CODE(cm_get_balance(client, &balance, &result), CM_OK);
    cm_result_free(result);
    CHECK(once == 1);
    CHECK(cm_set_log_callback(CM_LOG_TRACE, NULL, NULL) == CM_OK);
    cm_client_free(client);
}

/* cm_set_budget before the first client: values checked, NULL keeps the environment's choice
 * (use_own_budget's file), a Redis password never in a message. */
static void test_budget_choice_before_clients(void) {
    cm_result *result = NULL;
    CHECK_CODE(cm_set_budget("nonsense", &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "\"nonsense\""));
    cm_result_free(result);
    CHECK_CODE(cm_set_budget("redis://user:pw-SECRET-42@[bad/0", &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(!contains(cm_result_message(result), "pw-SECRET-42"));
    cm_result_free(result);
    CHECK(cm_set_budget("process", NULL) == CM_OK);
    CHECK_CODE(cm_set_budget(NULL, &result), CM_OK);
    cm_result_free(result);
}

/* After the first client the budget is made: a choice is refused, and says why. */
static void test_budget_choice_after_clients(void) {
    cm_result *result = NULL;
    CHECK_CODE(cm_set_budget("process", &result), CM_ERR_INVALID_ARGUMENT);
    CHECK(contains(cm_result_message(result), "a client was already created"));
    cm_result_free(result);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EMULATOR_BASE_URL\n", argv[0]);
        return 2;
    }
    use_own_budget();
    base_url = argv[1];
    test_budget_choice_before_clients();
    test_version_and_code_names();
    test_invalid_arguments();
    test_processing();
    test_ready();
    test_api_and_http_errors();
    test_wait_until_ready();
    test_wait_timeout_and_max_requests();
    test_cancel();
    test_create_wait_and_balance();
    test_reports_and_soft_id();
    test_wait_options();
    test_user_agent();
    test_budget();
#ifdef _WIN32
    printf("skipped on Windows: test_budget_across_fork, test_a_child_counting_alone_goes_on_from_the_file (no fork)\n");
#else
    test_budget_across_fork();
    test_a_child_counting_alone_goes_on_from_the_file();
#endif
    test_threads_share_a_client();
    test_secret_key_stays_out_of_messages();
    test_log_callback_and_stats();
    test_budget_choice_after_clients();
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
