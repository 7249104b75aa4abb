/*
 * The small test harness shared by the C tests (one translation unit each): counters, CHECK,
 * time helpers, a client for the emulator at `base_url` (set by each test's main), the
 * emulator's control endpoints (scripts and counters) over a tiny HTTP client, and a request
 * budget of the test's own (own_budget.h: each main calls use_own_budget() first).
 *
 * Include it after defining _POSIX_C_SOURCE 200809L (sockets, nanosleep, clock_gettime).
 * Also builds with MinGW for Windows (scripts/test-windows.sh): Winsock for the control
 * connection, winpthreads' clock_gettime and nanosleep.
 */
#ifndef CAPMONSTER_TEST_CHECK_H
#define CAPMONSTER_TEST_CHECK_H

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <pthread.h> /* winpthreads: clock_gettime, nanosleep */
typedef SOCKET test_socket;
#define TEST_BAD_SOCKET INVALID_SOCKET
#define close_socket closesocket
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int test_socket;
#define TEST_BAD_SOCKET (-1)
#define close_socket close
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capmonster.h"
#include "own_budget.h"

static int failures = 0;
static int checks = 0;
static const char *base_url;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond)) {                                                                         \
            failures++;                                                                        \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__, __func__,     \
                    #cond);                                                                    \
        }                                                                                      \
    } while (0)

static inline int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static inline void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* A client for the emulator, direct (no proxy from the environment); NULL on failure (the
 * reason on stderr). Each test uses its own key, so the process-wide request budgets of tests
 * never mix. */
static inline cm_client *emulator_client(const char *key) {
    cm_client *client = NULL;
    cm_result *r = NULL;
    if (cm_client_new(key, &client, &r) != CM_OK) {
        fprintf(stderr, "cm_client_new: %s\n", cm_result_message(r));
        cm_result_free(r);
        return NULL;
    }
    cm_result_free(r);
    r = NULL;
    if (cm_client_set_base_url(client, base_url, &r) != CM_OK) {
        fprintf(stderr, "cm_client_set_base_url(%s): %s\n", base_url, cm_result_message(r));
        cm_result_free(r);
        cm_client_free(client);
        return NULL;
    }
    cm_result_free(r);
    if (cm_client_set_proxy(client, NULL, NULL) != CM_OK) {
        cm_client_free(client);
        return NULL;
    }
    return client;
}

/* ---------------------------------------------------------------------------------------- */
/* The emulator's control endpoints                                                          */
/* ---------------------------------------------------------------------------------------- */

/* The emulator's port, from base_url ("http://127.0.0.1:PORT"); 0 when there is none. */
static inline int emulator_port(void) {
    const char *colon = base_url ? strrchr(base_url, ':') : NULL;
    return colon ? atoi(colon + 1) : 0;
}

/* One request to the emulator on a connection of its own (Connection: close); the whole
 * answer (head and body), to free; NULL on failure. `body` NULL: none. */
static inline char *emulator_http(const char *method, const char *path, const char *body) {
    struct sockaddr_in address;
    char head[512];
    size_t size = 0, capacity = 65536, body_length = body ? strlen(body) : 0;
    char *answer;
    int n;
    test_socket fd;
#ifdef _WIN32
    static int started = 0;
    WSADATA wsa;
    /* Once per process, before the first socket (the library starts Winsock for itself). */
    if (!started && WSAStartup(MAKEWORD(2, 2), &wsa) == 0) started = 1;
#endif
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == TEST_BAD_SOCKET) return NULL;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)emulator_port());
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close_socket(fd);
        return NULL;
    }
    snprintf(head, sizeof head,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
             "Content-Length: %lu\r\n\r\n",
             method, path, (unsigned long)body_length);
    /* send/recv, not write/read: Winsock sockets are not file descriptors. */
    if (send(fd, head, (int)strlen(head), 0) != (int)strlen(head) ||
        (body_length > 0 && send(fd, body, (int)body_length, 0) != (int)body_length)) {
        close_socket(fd);
        return NULL;
    }
    answer = malloc(capacity + 1);
    if (answer == NULL) abort();
    while ((n = (int)recv(fd, answer + size, (int)(capacity - size), 0)) > 0) {
        size += (size_t)n;
        if (size == capacity) {
            capacity *= 2;
            answer = realloc(answer, capacity + 1);
            if (answer == NULL) abort();
        }
    }
    close_socket(fd);
    answer[size] = '\0';
    return answer;
}

/* The number after `"key":` in the section of /_emulator/stats that starts at `section`
 * ("\"methods\"", "\"tasks\"", or "{" for the top level); 0 when the key is absent from the
 * section, -1 when the stats could not be read. */
static inline long emulator_stat(const char *section, const char *key) {
    char quoted[64];
    long value = -1;
    char *stats = emulator_http("GET", "/_emulator/stats", NULL);
    const char *body = stats ? strstr(stats, "\r\n\r\n") : NULL;
    const char *start = body ? strstr(body, section) : NULL;
    const char *entry;
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    entry = start ? strstr(start, quoted) : NULL;
    if (start != NULL) value = entry ? strtol(entry + strlen(quoted), NULL, 10) : 0;
    free(stats);
    return value;
}

/* TCP connections the emulator accepted so far (each control request opens one too). */
static inline long emulator_connections(void) {
    return emulator_stat("{", "connections");
}

/* Requests the emulator received for an API method ("getBalance", ...). */
static inline long emulator_method_requests(const char *method) {
    return emulator_stat("\"methods\"", method);
}

/* getTaskResult requests the emulator received for `task_id`, -1 if unknown. */
static inline long emulator_task_requests(int64_t task_id) {
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)task_id);
    return emulator_stat("\"tasks\"", key);
}

/* Installs a script entry (POST /_emulator/script), e.g.
 * {"method":"getBalance","steps":[{"fault":"stall","ms":10000}]}; 1 when the emulator took it. */
static inline int emulator_script(const char *entry) {
    char *answer = emulator_http("POST", "/_emulator/script", entry);
    int ok = answer != NULL && strncmp(answer, "HTTP/1.1 200", 12) == 0 && contains(answer, "\"ok\":true");
    if (!ok) fprintf(stderr, "the emulator refused the script %s: %s\n", entry, answer ? answer : "(no answer)");
    free(answer);
    return ok;
}

#endif /* CAPMONSTER_TEST_CHECK_H */
