package capmonster

/*
#include <stdlib.h>
#include <string.h>
#include "capmonster.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"strings"
	"unsafe"
)

// TaskResult is the state of a task: processing, or ready with its solution.
type TaskResult struct {
	// TaskID is the task asked about.
	TaskID int64
	// Ready is true when the task is solved and Solution holds the solution.
	Ready bool
	// Solution is the solution object exactly as the service sent it (JSON); nil unless
	// Ready. Its shape depends on the task type: see Decode.
	Solution json.RawMessage
	// Requests counts the HTTP requests the call sent, retries included.
	Requests int
	// HTTPStatus is the status of the last answer.
	HTTPStatus int

	strings map[string]string // the solution's top-level string members
}

// Decode unmarshals the solution into v (a pointer to a struct, a map, ...) with
// encoding/json. It returns ErrNotReady for a task still processing.
func (r *TaskResult) Decode(v any) error {
	if !r.Ready {
		return fmt.Errorf("capmonster: task %d: %w", r.TaskID, ErrNotReady)
	}
	if err := json.Unmarshal(r.Solution, v); err != nil {
		return fmt.Errorf("capmonster: decoding the solution of task %d: %w", r.TaskID, err)
	}
	return nil
}

// SolutionString returns the top-level string member name of the solution (e.g. "text",
// "gRecaptchaResponse", "token"), unescaped, as cm_result_solution_string reads it. The
// boolean is false when the task is not ready, or the member is absent, not a string, or
// holds a NUL character.
func (r *TaskResult) SolutionString(name string) (string, bool) {
	s, ok := r.strings[name]
	return s, ok
}

// result is what Go keeps of a cm_result, copied out before cm_result_free.
type result struct {
	code        Code
	ready       bool
	taskID      int64
	solution    []byte
	strings     map[string]string
	apiCode     string
	description string
	message     string
	text        string // cm_result_text: getUserAgent's answer
	requests    int
	httpStatus  int
}

// readResult copies r; the caller frees r afterwards. A NULL r (never handed out by the
// library when out_result is given) reads as CM_ERR_INVALID_ARGUMENT with a static message.
func readResult(r *C.cm_result) result {
	out := result{
		code:       Code(C.cm_result_code(r)),
		ready:      C.cm_result_is_ready(r) == 1,
		taskID:     int64(C.cm_result_task_id(r)),
		message:    C.GoString(C.cm_result_message(r)),
		requests:   int(C.cm_result_request_count(r)),
		httpStatus: int(C.cm_result_http_status(r)),
	}
	if p := C.cm_result_api_error_code(r); p != nil {
		out.apiCode = C.GoString(p)
	}
	if p := C.cm_result_api_error_description(r); p != nil {
		out.description = C.GoString(p)
	}
	if p := C.cm_result_text(r); p != nil {
		out.text = C.GoString(p)
	}
	if p := C.cm_result_solution_json(r); p != nil {
		out.solution = C.GoBytes(unsafe.Pointer(p), C.int(C.strlen(p)))
		out.strings = solutionStrings(r, out.solution)
	}
	return out
}

// solutionStrings reads every top-level member of the solution whose value is a JSON string
// through cm_result_solution_string, so that SolutionString answers as the C library does.
func solutionStrings(r *C.cm_result, solution []byte) map[string]string {
	var members map[string]json.RawMessage
	if json.Unmarshal(solution, &members) != nil {
		return nil
	}
	out := make(map[string]string)
	for name, value := range members {
		if len(value) == 0 || value[0] != '"' || strings.IndexByte(name, 0) >= 0 {
			continue
		}
		cname := C.CString(name)
		p := C.cm_result_solution_string(r, cname)
		C.free(unsafe.Pointer(cname))
		if p != nil {
			out[name] = C.GoString(p)
		}
	}
	return out
}

func (r *result) taskResult() *TaskResult {
	return &TaskResult{
		TaskID:     r.taskID,
		Ready:      r.ready,
		Solution:   r.solution,
		Requests:   r.requests,
		HTTPStatus: r.httpStatus,
		strings:    r.strings,
	}
}

func (r *result) err() *Error {
	return &Error{
		Code:        r.code,
		APICode:     r.apiCode,
		Description: r.description,
		HTTPStatus:  r.httpStatus,
		Requests:    r.requests,
		TaskID:      r.taskID,
		Message:     r.message,
	}
}
