/*
 * The small test harness shared by the C tests (one translation unit each): counters, CHECK,
 * time helpers, and a client for the emulator at `base_url` (set by each test's main).
 */
#ifndef CAPMONSTER_TEST_CHECK_H
#define CAPMONSTER_TEST_CHECK_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "capmonster.h"

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

/* A client for the emulator, direct (no proxy from the environment); NULL on failure. Each
 * test uses its own key, so the process-wide request budgets of tests never mix. */
static inline cm_client *emulator_client(const char *key) {
    cm_client *client = NULL;
    if (cm_client_new(key, &client) != CM_OK) return NULL;
    if (cm_client_set_base_url(client, base_url) != CM_OK || cm_client_set_proxy(client, NULL) != CM_OK) {
        cm_client_free(client);
        return NULL;
    }
    return client;
}

#endif /* CAPMONSTER_TEST_CHECK_H */
