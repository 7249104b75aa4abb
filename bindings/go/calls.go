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
// ctx reaches the request in flight (cm_get_task_result_with): cancelling it ends the call
// within milliseconds with an error matching ErrCancelled and context.Canceled; its deadline
// bounds the call (when nearer than the client's request timeout), then the error matches
// ErrTimeout and context.DeadlineExceeded. A request cancelled in flight still counts in the
// budget.
func (c *Client) GetTaskResult(ctx context.Context, taskID int64) (*TaskResult, error) {
	res, err := c.single(ctx, taskID, func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code {
		return C.cm_get_task_result_with(h, C.int64_t(taskID), o, out)
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
// The request is never retried: a duplicate would be a second paid task. ctx reaches the
// request in flight as in GetTaskResult (cm_create_task_with); a task the service created
// before the call was cancelled or timed out is lost, and the library's message says so.
// libcapmonster judges the task JSON (a nil task is sent as null, which it refuses).
func (c *Client) CreateTask(ctx context.Context, task any, callbackURL string) (int64, error) {
	text, err := taskText(task)
	if err != nil {
		return 0, err
	}
	return c.createTask(ctx, text, callbackURL)
}

// CreateTaskAndSchedule is CreateTask that also returns the official SDKs' schedule for the
// task as created (WaitOptionsForTask), from the same JSON text: pass it to WaitResult.
func (c *Client) CreateTaskAndSchedule(ctx context.Context, task any, callbackURL string) (int64, WaitOptions, error) {
	text, err := taskText(task)
	if err != nil {
		return 0, WaitOptions{}, err
	}
	id, err := c.createTask(ctx, text, callbackURL)
	if err != nil {
		return 0, WaitOptions{}, err
	}
	// The library accepted the task, so its schedule cannot be refused: the same rules.
	options, err := waitOptionsForTaskText(text)
	if err != nil {
		options = DefaultWaitOptions()
	}
	return id, options, nil
}

// taskText is the JSON text of a task in any of the forms CreateTask takes.
func taskText(task any) (string, error) {
	switch t := task.(type) {
	case string:
		return t, nil
	case []byte:
		return string(t), nil
	case json.RawMessage:
		return string(t), nil
	default:
		b, err := json.Marshal(task)
		if err != nil {
			return "", newError(CodeInvalidArgument, "the task cannot be marshalled to JSON", err)
		}
		return string(b), nil
	}
}

func (c *Client) createTask(ctx context.Context, text string, callbackURL string) (int64, error) {
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
	_, err = c.single(ctx, 0, func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code {
		return C.cm_create_task_with(h, taskJSON, callback, o, &id, out)
	})
	if err != nil {
		return 0, err
	}
	return int64(id), nil
}

// GetUserAgent returns the browser User-Agent the service's workers use now, to put in a
// task's "userAgent" (getUserAgent, cm_get_user_agent_with): a GET of the official page, or of
// WithUserAgentURL's, through the client's proxy and trust; no key is sent. An answer that is
// not one User-Agent (an HTML page, an empty or oversized body) matches ErrBadResponse. ctx
// reaches the request in flight as in GetTaskResult.
func (c *Client) GetUserAgent(ctx context.Context) (string, error) {
	res, err := c.single(ctx, 0, func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code {
		return C.cm_get_user_agent_with(h, o, out)
	})
	if err != nil {
		return "", err
	}
	return res.text, nil
}

// GetBalance returns the account's balance in US dollars. ctx reaches the request in flight
// as in GetTaskResult (cm_get_balance_with).
func (c *Client) GetBalance(ctx context.Context) (float64, error) {
	var balance C.double
	_, err := c.single(ctx, 0, func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code {
		return C.cm_get_balance_with(h, o, &balance, out)
	})
	if err != nil {
		return 0, err
	}
	return float64(balance), nil
}

// ReportIncorrectImage tells the service that the text it gave for an image captcha was
// wrong (reportIncorrectImageCaptcha). nil when the service accepted the report; never
// retried. ctx reaches the request in flight as in GetTaskResult
// (cm_report_incorrect_image_with).
func (c *Client) ReportIncorrectImage(ctx context.Context, taskID int64) error {
	_, err := c.single(ctx, taskID, func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code {
		return C.cm_report_incorrect_image_with(h, C.int64_t(taskID), o, out)
	})
	return err
}

// ReportIncorrectToken tells the service that a token it gave (reCAPTCHA, Turnstile, ...)
// was refused by the site (reportIncorrectTokenCaptcha). nil when the service accepted the
// report; never retried. ctx reaches the request in flight as in GetTaskResult
// (cm_report_incorrect_token_with).
func (c *Client) ReportIncorrectToken(ctx context.Context, taskID int64) error {
	_, err := c.single(ctx, taskID, func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code {
		return C.cm_report_incorrect_token_with(h, C.int64_t(taskID), o, out)
	})
	return err
}

// String describes the client without its key, e.g. for logs: the base URL given with
// WithBaseURL, if any.
func (c *Client) String() string {
	if c.s.baseURL == "" {
		return "capmonster.Client(official service)"
	}
	return "capmonster.Client(" + strconv.Quote(c.s.baseURL) + ")"
}
