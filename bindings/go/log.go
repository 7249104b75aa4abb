package capmonster

/*
#include "capmonster.h"
extern void CM_CALL capmonsterGoLog(void *user_data, cm_log_level level, const char *event, const char *message);
*/
import "C"

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// LevelTrace is the slog level of the library's trace lines (below slog.LevelDebug).
const LevelTrace = slog.LevelDebug - 4

// logger receives the library's lines; nil when none is set.
var logger atomic.Pointer[slog.Logger]

// SetLogger sends the library's log lines to l (cm_set_log_callback), process-wide: each line
// is a record at the line's level (error, warn, info, debug, LevelTrace) whose message is the
// library's one-line message and whose attribute "event" is its stable event name ("request",
// "answer", "wait.start", ...). The library asks for the levels l is enabled for when
// SetLogger is called. Lines never hold the client key or proxy credentials. nil removes the
// logger. The handler runs on the library's threads, possibly several at once; it must not
// make blocking calls into the library (they could wait for the thread the handler runs on).
// A handler that panics loses that line only.
func SetLogger(l *slog.Logger) {
	if l == nil {
		C.cm_set_log_callback(C.CM_LOG_ERROR, nil, nil)
		logger.Store(nil)
		return
	}
	level := C.cm_log_level(C.CM_LOG_ERROR)
	ctx := context.Background()
	for _, step := range []struct {
		slog slog.Level
		cm   C.cm_log_level
	}{{slog.LevelWarn, C.CM_LOG_WARN}, {slog.LevelInfo, C.CM_LOG_INFO}, {slog.LevelDebug, C.CM_LOG_DEBUG}, {LevelTrace, C.CM_LOG_TRACE}} {
		if l.Enabled(ctx, step.slog) {
			level = step.cm
		}
	}
	logger.Store(l)
	C.cm_set_log_callback(level, C.cm_log_callback(C.capmonsterGoLog), nil)
}

// slogLevel maps a CM_LOG_* level to slog's.
func slogLevel(level C.cm_log_level) slog.Level {
	switch level {
	case C.CM_LOG_ERROR:
		return slog.LevelError
	case C.CM_LOG_WARN:
		return slog.LevelWarn
	case C.CM_LOG_INFO:
		return slog.LevelInfo
	case C.CM_LOG_DEBUG:
		return slog.LevelDebug
	}
	return LevelTrace
}

//export goCapmonsterLog
func goCapmonsterLog(level C.cm_log_level, event *C.char, message *C.char) {
	// A panic must not unwind into the library's C frames.
	defer func() { _ = recover() }()
	l := logger.Load()
	if l == nil {
		return
	}
	l.LogAttrs(context.Background(), slogLevel(level), C.GoString(message), slog.String("event", C.GoString(event)))
}
