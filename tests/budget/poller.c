/*
 * One process of the cross-language budget test (scripts/test-budget-processes.sh): polls one
 * task POLLS times through the C API and prints how many requests were sent and how many the
 * shared budget refused.   Usage: CAPMONSTER_BUDGET_FILE=/tmp/x/budget poller BASE_URL TASK_ID POLLS
 * (the file the processes share: the script's own, never the user's, so it is required).
 */
#include <stdio.h>
#include <stdlib.h>

#include "capmonster.h"

int main(int argc, char **argv) {
    cm_client *client = NULL;
    int64_t task_id;
    int polls, i, sent = 0, exhausted = 0;
    if (argc != 4 || getenv("CAPMONSTER_BUDGET_FILE") == NULL) {
        fprintf(stderr, "usage: CAPMONSTER_BUDGET_FILE=/absolute/path %s BASE_URL TASK_ID POLLS\n", argv[0]);
        return 2;
    }
    task_id = strtoll(argv[2], NULL, 10);
    polls = atoi(argv[3]);
    if (cm_client_new("budget-processes-key", &client, NULL) != CM_OK ||
        cm_client_set_base_url(client, argv[1], NULL) != CM_OK)
        return 1;
    for (i = 0; i < polls; i++) {
        cm_result *r = NULL;
        cm_code code = cm_get_task_result(client, task_id, &r);
        if (code == CM_ERR_BUDGET_EXHAUSTED) exhausted++;
        else if (code == CM_OK || code == CM_ERR_API) sent++; /* the emulator refuses beyond 120 too */
        else {
            fprintf(stderr, "%s: %s\n", cm_code_name(code), cm_result_message(r));
            return 1;
        }
        cm_result_free(r);
    }
    cm_client_free(client);
    printf("c sent=%d exhausted=%d\n", sent, exhausted);
    return 0;
}
