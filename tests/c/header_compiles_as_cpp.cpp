// The header must compile as C++ too (extern "C" linkage, no C-only constructs), and its
// declarations link against the library.
#include "capmonster.h"
#include "own_budget.h"

#include <cstdio>

int main() {
    use_own_budget();
    cm_wait_options options;
    cm_wait_options_init(&options);
    cm_call_options call_options;
    cm_call_options_init(&call_options);
    cm_client *client = nullptr;
    cm_result *result = nullptr;
    if (cm_client_new("cpp-key", &client, &result) != CM_OK) return 1;
    cm_result_free(result);
    result = nullptr;
    int refused = cm_client_set_max_connections(client, 0, &result) == CM_ERR_INVALID_ARGUMENT;
    cm_result_free(result);
    cm_waiter *waiter = nullptr;
    if (cm_waiter_new(client, &waiter) != CM_OK) return 1;
#ifdef _WIN32
    int empty = cm_waiter_pending(waiter) == 0 && cm_waiter_fd(waiter) == -1; // no fd on Windows
#else
    int empty = cm_waiter_pending(waiter) == 0 && cm_waiter_fd(waiter) >= 0;
#endif
    cm_waiter_free(waiter);
    cm_client_free(client);
    std::printf("%s %s %u\n", cm_version(), cm_code_name(CM_ERR_API), options.interval_ms);
    return options.max_requests == 120 && call_options.timeout_ms == 0 && call_options.cancel == nullptr && refused &&
                   empty
               ? 0
               : 1;
}
