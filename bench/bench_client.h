/* The library client the wait benchmarks make (scale.c, storm.c, latency/latency.c): a key,
 * the emulator's URL, no proxy (the environment's must not stand between the benchmark and its
 * server), a connection cap. Any refusal ends the program (exit 2), named by BENCH_NAME, which
 * the including program defines first. */
#ifndef CAPMONSTER_BENCH_CLIENT_H
#define CAPMONSTER_BENCH_CLIENT_H

#include <stdio.h>
#include <stdlib.h>

#include "capmonster.h"

#ifndef BENCH_NAME
#error "define BENCH_NAME (the program's name in its error lines) before including bench_client.h"
#endif

/* Ends the program unless `code` is CM_OK; frees `r` otherwise. */
static void must(cm_code code, cm_result *r, const char *what) {
    if (code != CM_OK) {
        fprintf(stderr, BENCH_NAME ": %s: %s: %s\n", what, cm_code_name(code), r ? cm_result_message(r) : "");
        exit(2);
    }
    cm_result_free(r);
}

static cm_client *new_client(const char *url, const char *key, unsigned max_connections) {
    cm_client *client = NULL;
    cm_result *r = NULL;
    must(cm_client_new(key, &client, &r), r, "cm_client_new");
    r = NULL;
    must(cm_client_set_base_url(client, url, &r), r, "cm_client_set_base_url");
    r = NULL;
    must(cm_client_set_proxy(client, NULL, &r), r, "cm_client_set_proxy");
    r = NULL;
    must(cm_client_set_max_connections(client, max_connections, &r), r, "cm_client_set_max_connections");
    return client;
}

#endif
