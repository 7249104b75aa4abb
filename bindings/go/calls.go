package capmonster

/*
#include <stdlib.h>
#include "capmonster.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"strconv"
	"unsafe"
)

// GetTaskResult asks once for the state of a task: a TaskResult with Ready false (still
// processing) or true (the solution is there). The request counts in the task's budget of
// 120 getTaskResult requests; once it is spent the call returns ErrBudgetExhausted without
// sending anything.
//
// ctx is checked before the request; its deadline bounds the request when nearer than the
// client's request timeout.
func (c *Client) GetTaskResult(ctx context.Context, taskID int64) (*TaskResult, error) {
	res, err := c.single(ctx, taskID, func(h *C.cm_client, out **C.cm_result) C.cm_code {
		return C.cm_get_task_result(h, C.int64_t(taskID), out)
	})
	if err != nil {
		return nil, err
	}
	return res.taskResult(), nil
}

// CreateTask creates a task and returns its id. task is the API's task object, with its
// "type" (see the service's documentation): anything encoding/json marshals to a JSON object
// (a struct, a map[string]any), or the JSON text itself as a string, []byte or
// json.RawMessage. callbackURL, when not empty, is an http(s) URL the service will POST the
// result to.
//
// The request is never retried: a duplicate would be a second paid task. ctx is checked
// before the request; its deadline bounds the request when nearer than the client's request
// timeout (a task the service created after that is lost).
func (c *Client) CreateTask(ctx context.Context, task any, callbackURL string) (int64, error) {
	var text string
	switch t := task.(type) {
	case nil:
		return 0, invalidArgument("the task is nil")
	case string:
		text = t
	case []byte:
		text = string(t)
	case json.RawMessage:
		text = string(t)
	default:
		b, err := json.Marshal(task)
		if err != nil {
			return 0, newError(CodeInvalidArgument, "the task cannot be marshalled to JSON", err)
		}
		text = string(b)
	}
	taskJSON, err := cString(text, "the task JSON")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(taskJSON))
	var callback *C.char
	if callbackURL != "" {
		if callback, err = cString(callbackURL, "the callback URL"); err != nil {
			return 0, err
		}
		defer C.free(unsafe.Pointer(callback))
	}

	var id C.int64_t
	_, err = c.single(ctx, 0, func(h *C.cm_client, out **C.cm_result) C.cm_code {
		return C.cm_create_task(h, taskJSON, callback, &id, out)
	})
	if err != nil {
		return 0, err
	}
	return int64(id), nil
}

// GetBalance returns the account's balance in US dollars. ctx is checked before the request;
// its deadline bounds the request when nearer than the client's request timeout.
func (c *Client) GetBalance(ctx context.Context) (float64, error) {
	var balance C.double
	_, err := c.single(ctx, 0, func(h *C.cm_client, out **C.cm_result) C.cm_code {
		return C.cm_get_balance(h, &balance, out)
	})
	if err != nil {
		return 0, err
	}
	return float64(balance), nil
}

// String describes the client without its key, e.g. for logs.
func (c *Client) String() string {
	base := c.s.cfg.baseURL
	if base == "" {
		base = "https://api.capmonster.cloud"
	}
	return "capmonster.Client(" + strconv.Quote(base) + ")"
}
