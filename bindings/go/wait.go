package capmonster

/*
#include <stdlib.h>
#include "capmonster.h"
*/
import "C"

import (
	"context"
	"math"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// WaitOptions is how WaitResult polls. Start from DefaultWaitOptions or WaitOptionsFor and
// change what you need: every field is used as it is (durations are rounded up to whole
// milliseconds).
type WaitOptions struct {
	// FirstDelay is the sleep before the first request.
	FirstDelay time.Duration
	// Interval is the sleep between an answer and the next request; at least 1 ms. It is
	// doubled (up to 60 s) when the service says to slow down.
	Interval time.Duration
	// Timeout bounds the whole wait, from the call (then ErrTimeout). The context's
	// deadline, when nearer, bounds it too.
	Timeout time.Duration
	// MaxRequests is the most requests this wait may send; at least 1. The process-wide
	// budget of 120 per task applies as well.
	MaxRequests int
}

// DefaultWaitOptions returns libcapmonster's defaults: 1 s first delay, 2 s interval (the
// service's documented minimum), 3 min timeout, 120 requests.
func DefaultWaitOptions() WaitOptions {
	var o C.cm_wait_options
	C.cm_wait_options_init(&o)
	return waitOptionsFromC(&o)
}

// WaitOptionsFor returns the official SDKs' schedule for a task type, e.g.
// "ImageToTextTask": 350 ms first delay, 200 ms interval, 10 s timeout
// (cm_wait_options_for_task_type). "...Proxyless" names share their base type's schedule;
// a type the library does not know, or cannot read (not UTF-8, or holding a NUL byte, which
// C strings cannot carry), gets the library's defaults, as DefaultWaitOptions.
func WaitOptionsFor(taskType string) WaitOptions {
	var o C.cm_wait_options
	C.cm_wait_options_init(&o)
	if strings.IndexByte(taskType, 0) >= 0 {
		return waitOptionsFromC(&o)
	}
	cs := C.CString(taskType)
	code := C.cm_wait_options_for_task_type(&o, cs)
	C.free(unsafe.Pointer(cs))
	if Code(code) != CodeOK { // a name that is not UTF-8: the defaults, whatever o holds now
		C.cm_wait_options_init(&o)
	}
	return waitOptionsFromC(&o)
}

// WaitOptionsForTask returns the official SDKs' schedule for a task as created
// (cm_wait_options_for_task): by its "type", the "class" of a CustomTask or ComplexImageTask
// (e.g. "Imperva": 1 s, 1 s, 15 s) and "nocache": true (e.g. reCAPTCHA: 10 s before the first
// poll). task takes the forms CreateTask takes. A class without a schedule of its own gets its
// type's, an unknown type the library's defaults. An error matching ErrInvalidArgument when
// the task is not a JSON object with a non-empty string "type", as CreateTask would refuse it.
func WaitOptionsForTask(task any) (WaitOptions, error) {
	text, err := taskText(task)
	if err != nil {
		return WaitOptions{}, err
	}
	return waitOptionsForTaskText(text)
}

func waitOptionsForTaskText(text string) (WaitOptions, error) {
	taskJSON, err := cString(text, "the task JSON")
	if err != nil {
		return WaitOptions{}, err
	}
	defer C.free(unsafe.Pointer(taskJSON))
	var o C.cm_wait_options
	if code := Code(C.cm_wait_options_for_task(&o, taskJSON)); code != CodeOK {
		return WaitOptions{}, newError(code, "the library refused the task JSON (cm_wait_options_for_task)", nil)
	}
	return waitOptionsFromC(&o), nil
}

func waitOptionsFromC(o *C.cm_wait_options) WaitOptions {
	return WaitOptions{
		FirstDelay:  time.Duration(o.first_delay_ms) * time.Millisecond,
		Interval:    time.Duration(o.interval_ms) * time.Millisecond,
		Timeout:     time.Duration(o.timeout_ms) * time.Millisecond,
		MaxRequests: int(o.max_requests),
	}
}

// toC converts o for C the way Go's time functions treat durations: a negative duration
// counts as 0, a fraction of a millisecond is rounded up, and values above the C maximum
// (uint32) are capped, as is a MaxRequests above it (a negative one counts as 0). The
// library then judges the values, with its own message (e.g. an interval of 0).
func (o *WaitOptions) toC() C.cm_wait_options {
	return C.cm_wait_options{
		first_delay_ms: milliseconds(o.FirstDelay),
		interval_ms:    milliseconds(o.Interval),
		timeout_ms:     milliseconds(o.Timeout),
		max_requests:   C.uint32_t(min(max(int64(o.MaxRequests), 0), math.MaxUint32)),
	}
}

// WaitResult polls a task until it is ready and returns its solution. It ends with an error
// when the service reports one (e.g. ErrCaptchaUnsolvable), the timeout passes (ErrTimeout),
// the request budget is spent (ErrBudgetExhausted), ctx ends or the client is closed.
// Network errors, request timeouts, HTTP 5xx and 429 and ERROR_TOO_MUCH_REQUESTS are
// retried at the next poll. opts nil means DefaultWaitOptions.
//
// The wait runs on the client's cm_waiter: the library's threads poll, and the calling
// goroutine blocks on a channel, not in C, so a hundred thousand concurrent waits cost a
// hundred thousand goroutines and no OS thread each.
//
// Cancelling ctx cancels the wait wherever it is, asleep or with its request in flight: it
// returns within milliseconds an error matching ErrCancelled and context.Canceled. ctx's
// deadline, when nearer than opts.Timeout, becomes the wait's timeout: the error then
// matches ErrTimeout and context.DeadlineExceeded. A task that became ready is returned
// even if ctx ended meanwhile.
func (c *Client) WaitResult(ctx context.Context, taskID int64, opts *WaitOptions) (*TaskResult, error) {
	o := DefaultWaitOptions()
	if opts != nil {
		o = *opts
	}
	return c.onWaiter(ctx, taskID, o, func(h *C.cm_client, options *C.cm_wait_options) (<-chan *result, error) {
		return c.s.waiter.add(h, taskID, options)
	})
}

// Solve creates a task and waits until it is ready, both in the library
// (cm_waiter_add_solve): the createTask is sent on one of the library's threads (at most
// WithMaxConnections of them), then the task is polled as WaitResult polls it, the timeout
// counted from the creation. The calling goroutine blocks on a channel, never in C, so
// thousands of concurrent solves cost goroutines, not OS threads. task and callbackURL are
// as in CreateTask; opts nil means the task's own schedule (WaitOptionsForTask), or the
// library's defaults for a task it cannot read (whose createTask it then refuses).
//
// A failed createTask (the library refused the task, the service answered an error, the
// network failed) returns an *Error with TaskID 0 and the library's code and message; a
// failed wait, one with the task's id, as WaitResult. ctx reaches the createTask in flight as
// well as the wait, as in WaitResult, and its deadline bounds the whole solve (the error then
// matches context.DeadlineExceeded); a task the service created before the cancel is lost,
// and the library's message says so. Like CreateTask, the createTask is never retried.
func (c *Client) Solve(ctx context.Context, task any, callbackURL string, opts *WaitOptions) (*TaskResult, error) {
	text, err := taskText(task)
	if err != nil {
		return nil, err
	}
	var o WaitOptions
	if opts != nil {
		o = *opts
	} else if o, err = waitOptionsForTaskText(text); err != nil {
		// The library refuses such a task when its createTask is due, in its own words.
		o = DefaultWaitOptions()
	}
	taskJSON, err := cString(text, "the task JSON")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(taskJSON))
	var callback *C.char
	if callbackURL != "" {
		if callback, err = cString(callbackURL, "the callback URL"); err != nil {
			return nil, err
		}
		defer C.free(unsafe.Pointer(callback))
	}
	// The library copies both strings when it queues the solve: they are freed once added.
	return c.onWaiter(ctx, 0, o, func(h *C.cm_client, options *C.cm_wait_options) (<-chan *result, error) {
		return c.s.waiter.addSolve(h, taskJSON, callback, options)
	})
}

// onWaiter runs one wait or solve (add) on the client's waiter with o, ctx's deadline and
// cancellation, and returns its outcome; taskID (0 for a solve) labels the binding's errors.
func (c *Client) onWaiter(ctx context.Context, taskID int64, o WaitOptions,
	add func(h *C.cm_client, options *C.cm_wait_options) (<-chan *result, error)) (*TaskResult, error) {
	options := o.toC()
	if err := contextError(ctx, taskID); err != nil {
		return nil, err
	}
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, deadlineError(taskID)
		}
		// Rounded up: the library's timeout never comes before the context's deadline.
		options.timeout_ms = min(options.timeout_ms, milliseconds(left))
	}
	done := ctx.Done()
	var cancel *C.cm_cancel
	if done != nil {
		var err error
		if cancel, err = newCancel(taskID); err != nil {
			return nil, err
		}
		// The wait holds a reference of its own: this one is only to trigger it.
		defer C.cm_cancel_free(cancel)
		options.cancel = cancel
	}

	h, err := c.s.acquire(taskID)
	if err != nil {
		return nil, err
	}
	out, err := add(h, &options)
	c.s.release()
	if err != nil {
		return nil, err
	}

	var res *result
	select {
	case res = <-out:
	case <-done:
		if !(hasDeadline && ctx.Err() == context.DeadlineExceeded) {
			C.cm_cancel_trigger(cancel) // the wait ends within milliseconds, and comes out
			res = <-out
			break
		}
		// The deadline is the wait's own timeout, due now; the cancel is only a safety net.
		select {
		case res = <-out:
		case <-time.After(deadlineGrace):
			C.cm_cancel_trigger(cancel)
			res = <-out
		}
	}
	// The Client must stay reachable until its wait is out: its cleanup would close it.
	runtime.KeepAlive(c)

	if res.code == CodeOK {
		return res.taskResult(), nil
	}
	e := res.err()
	contextCause(e, ctx, hasDeadline, deadline)
	if e.Code == CodeCancelled && e.cause == nil && c.s.waiter.isClosing() {
		e.closed, e.cause = true, ErrClosed
	}
	return nil, e
}

// deadlineGrace is how long WaitResult lets the library's timeout, set to the context's
// deadline, end the wait before cancelling it.
const deadlineGrace = 100 * time.Millisecond
