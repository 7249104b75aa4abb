package capmonster

/*
#include <stdlib.h>
#include "capmonster.h"
*/
import "C"

import (
	"context"
	"errors"
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
// "ImageToTextTask": 350 ms first delay, 200 ms interval, 10 s timeout. "...Proxyless" names
// share their base type's schedule; unknown types get DefaultWaitOptions.
func WaitOptionsFor(taskType string) WaitOptions {
	if strings.IndexByte(taskType, 0) >= 0 {
		return DefaultWaitOptions()
	}
	var o C.cm_wait_options
	cs := C.CString(taskType)
	code := C.cm_wait_options_for_task_type(&o, cs)
	C.free(unsafe.Pointer(cs))
	if Code(code) != CodeOK { // not UTF-8: no type the library knows
		return DefaultWaitOptions()
	}
	return waitOptionsFromC(&o)
}

func waitOptionsFromC(o *C.cm_wait_options) WaitOptions {
	return WaitOptions{
		FirstDelay:  time.Duration(o.first_delay_ms) * time.Millisecond,
		Interval:    time.Duration(o.interval_ms) * time.Millisecond,
		Timeout:     time.Duration(o.timeout_ms) * time.Millisecond,
		MaxRequests: int(o.max_requests),
	}
}

func (o *WaitOptions) toC(taskID int64) (C.cm_wait_options, error) {
	if o.FirstDelay < 0 || o.Interval < 0 || o.Timeout < 0 || o.MaxRequests < 0 {
		e := invalidArgument("wait options must not be negative")
		e.TaskID = taskID
		return C.cm_wait_options{}, e
	}
	return C.cm_wait_options{
		first_delay_ms: milliseconds(o.FirstDelay, true),
		interval_ms:    milliseconds(o.Interval, true),
		timeout_ms:     milliseconds(o.Timeout, true),
		max_requests:   C.uint32_t(min(uint64(o.MaxRequests), math.MaxUint32)),
	}, nil
}

// WaitResult polls a task until it is ready and returns its solution. It ends with an error
// when the service reports one (e.g. ErrCaptchaUnsolvable), the timeout passes (ErrTimeout),
// the request budget is spent (ErrBudgetExhausted) or ctx ends. Network errors, request
// timeouts, HTTP 5xx and 429 and ERROR_TOO_MUCH_REQUESTS are retried at the next poll.
// opts nil means DefaultWaitOptions.
//
// Cancelling ctx ends the wait at once while it sleeps between polls (a request in flight
// finishes first): the error matches ErrCancelled and context.Canceled. ctx's deadline, when
// nearer than opts.Timeout, becomes the wait's timeout: the error then matches ErrTimeout and
// context.DeadlineExceeded. A task that became ready is returned even if ctx ended meanwhile.
func (c *Client) WaitResult(ctx context.Context, taskID int64, opts *WaitOptions) (*TaskResult, error) {
	o := DefaultWaitOptions()
	if opts != nil {
		o = *opts
	}
	options, err := o.toC(taskID)
	if err != nil {
		return nil, err
	}
	if err := contextError(ctx, taskID); err != nil {
		return nil, err
	}
	deadlineBound := false
	if deadline, ok := ctx.Deadline(); ok {
		left := milliseconds(time.Until(deadline), false)
		if left == 0 {
			return nil, deadlineError(taskID)
		}
		if left < options.timeout_ms {
			options.timeout_ms, deadlineBound = left, true
		}
	}

	h, err := c.s.acquire(taskID)
	if err != nil {
		return nil, err
	}
	defer c.s.release()
	cancel, err := c.s.startWait(taskID)
	if err != nil {
		return nil, err
	}
	options.cancel = cancel

	// The watcher triggers the cancel when ctx ends; it is gone before the cancel is freed.
	var stop, stopped chan struct{}
	if done := ctx.Done(); done != nil {
		stop, stopped = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			select {
			case <-done:
				C.cm_cancel_trigger(cancel)
			case <-stop:
			}
		}()
	}
	var r *C.cm_result
	code := Code(C.cm_wait_result(h, C.int64_t(taskID), &options, &r))
	runtime.KeepAlive(c)
	if stop != nil {
		close(stop)
		<-stopped
	}
	closing := c.s.endWait(cancel)
	defer C.cm_result_free(r)

	res := readResult(r)
	if code == CodeOK {
		return res.taskResult(), nil
	}
	e := res.err()
	switch {
	case code == CodeCancelled && ctx.Err() != nil:
		e.cause = ctx.Err()
		if errors.Is(e.cause, context.DeadlineExceeded) {
			e.Code = CodeTimeout // the deadline, seen by the watcher before the wait's own timeout
		}
	case code == CodeCancelled && closing:
		e.closed = true
		e.Message += " (the client was closed)"
	case code == CodeTimeout && deadlineBound:
		e.cause = context.DeadlineExceeded
	}
	return nil, e
}

// startWait makes the cancel of a new wait and registers it for Close, or returns ErrClosed
// once Close has started.
func (s *clientState) startWait(taskID int64) (*C.cm_cancel, error) {
	var cancel *C.cm_cancel
	if code := Code(C.cm_cancel_new(&cancel)); code != CodeOK {
		e := newError(code, "cm_cancel_new failed", nil)
		e.TaskID = taskID
		return nil, e
	}
	s.waitsMu.Lock()
	defer s.waitsMu.Unlock()
	if s.closing {
		C.cm_cancel_free(cancel)
		return nil, closedError(taskID)
	}
	s.waits[cancel] = struct{}{}
	return cancel, nil
}

// endWait unregisters and frees the cancel of a wait that returned, and tells whether Close
// had started.
func (s *clientState) endWait(cancel *C.cm_cancel) (closing bool) {
	s.waitsMu.Lock()
	delete(s.waits, cancel)
	closing = s.closing
	s.waitsMu.Unlock()
	C.cm_cancel_free(cancel)
	return closing
}
