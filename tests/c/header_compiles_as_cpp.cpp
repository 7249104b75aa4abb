// The header must compile as C++ too (extern "C" linkage, no C-only constructs).
#include "capmonster.h"

#include <cstdio>

int main() {
    cm_wait_options options;
    cm_wait_options_init(&options);
    std::printf("%s %s %u\n", cm_version(), cm_code_name(CM_ERR_API), options.interval_ms);
    return options.max_requests == 120 ? 0 : 1;
}
