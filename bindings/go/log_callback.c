// The C side of SetLogger: the library calls this (CM_CALL: stdcall on 32-bit Windows, which a
// Go export is not), and it hands the line to Go.
#include "capmonster.h"
#include "_cgo_export.h"

void CM_CALL capmonsterGoLog(void *user_data, cm_log_level level, const char *event, const char *message) {
    (void)user_data;
    goCapmonsterLog(level, (char *)event, (char *)message);
}
