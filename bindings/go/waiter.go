package capmonster

/*
#include "capmonster.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
)

// waiterState runs a Client's waits on one cm_waiter: WaitResult adds a wait with a tag of
// its own and blocks on a channel; one dispatcher goroutine, on an OS thread of its own,
// takes each finished wait from cm_waiter_next, copies its result out and sends it to that
// channel. So a pending wait costs a map entry and a channel here (and about 300 bytes in
// the library), never a thread.
//
// The goroutines of WaitResult make as few C calls as they can, and add their waits one at a
// time: a goroutine blocked in C (on a lock the library's workers hold) keeps its OS thread,
// and the Go scheduler starts another for the others, so a crowd of them in C at once would
// make a crowd of threads. A goroutine blocked on a Go mutex or a channel holds none.
type waiterState struct {
	addMu sync.Mutex // held around cm_waiter_add and cm_waiter_add_solve

	mu      sync.Mutex
	w       *C.cm_waiter  // made by the first wait; nil before and after Close
	closing bool          // Close has started: no wait may be added
	done    chan struct{} // closed when the dispatcher has returned
	nextTag uint64
	waits   map[uint64]chan *result // the channel of each wait added and not yet out
	peak    int                     // the most entries waits has held since it was made
}

// shrinkAbove is the size beyond which an emptied waits map is made anew: Go maps never
// give their memory back, and 100,000 waits once should not cost their table forever.
const shrinkAbove = 4096

// nextTimeoutMS bounds each cm_waiter_next of the dispatcher. cm_waiter_shutdown wakes it
// anyway; the bound only keeps a lost wake-up from blocking Close for long.
const nextTimeoutMS = 5000

// addFunc adds one wait or solve to w with tag (cm_waiter_add_with_result or
// cm_waiter_add_solve), writing to *r why it was refused.
type addFunc func(w *C.cm_waiter, tag C.uint64_t, r **C.cm_result) C.cm_code

// add adds a wait for taskID with options to the client's waiter (h, read-locked by the
// caller), making the waiter and its dispatcher on the first call. It returns the channel
// the wait's result will come on.
func (ws *waiterState) add(h *C.cm_client, taskID int64, options *C.cm_wait_options) (<-chan *result, error) {
	return ws.addWith(h, taskID, func(w *C.cm_waiter, tag C.uint64_t, r **C.cm_result) C.cm_code {
		return C.cm_waiter_add_with_result(w, C.int64_t(taskID), options, tag, r)
	})
}

// addSolve adds a solve of the task taskJSON (callback NULL for none) with options to the
// client's waiter, as add does: the library creates the task on its threads, then waits for
// it; its outcome, or the createTask's failure (task id 0), comes on the channel.
func (ws *waiterState) addSolve(h *C.cm_client, taskJSON, callback *C.char, options *C.cm_wait_options) (<-chan *result, error) {
	return ws.addWith(h, 0, func(w *C.cm_waiter, tag C.uint64_t, r **C.cm_result) C.cm_code {
		return C.cm_waiter_add_solve(w, taskJSON, callback, options, tag, r)
	})
}

// addWith runs addC under addMu with a fresh tag registered first; taskID (0 for a solve)
// only labels the binding's own errors.
func (ws *waiterState) addWith(h *C.cm_client, taskID int64, addC addFunc) (<-chan *result, error) {
	ch := make(chan *result, 1)
	ws.mu.Lock()
	if ws.closing {
		ws.mu.Unlock()
		return nil, closedError(taskID)
	}
	if ws.w == nil {
		var w *C.cm_waiter
		if code := Code(C.cm_waiter_new(h, &w)); code != CodeOK {
			ws.mu.Unlock()
			// cm_waiter_new reports a code only.
			e := newError(code, "cm_waiter_new returned "+code.String(), nil)
			e.TaskID = taskID
			return nil, e
		}
		liveWaiters.Add(1)
		ws.w, ws.done = w, make(chan struct{})
		go dispatch(w, ws, ws.done)
	}
	w := ws.w
	tag := ws.nextTag
	ws.nextTag++
	// Registered before the add: the wait may come out of cm_waiter_next at once.
	ws.waits[tag] = ch
	ws.peak = max(ws.peak, len(ws.waits))
	ws.mu.Unlock()

	ws.addMu.Lock()
	var r *C.cm_result // says why when the add is refused
	code := Code(addC(w, C.uint64_t(tag), &r))
	ws.addMu.Unlock()
	defer C.cm_result_free(r)
	if code == CodeOK {
		return ch, nil
	}
	ws.mu.Lock()
	delete(ws.waits, tag)
	ws.mu.Unlock()
	if code == CodeCancelled { // the waiter was shut down: Close started meanwhile
		return nil, closedError(taskID)
	}
	res := readResult(r)
	e := res.err()
	e.TaskID = taskID
	return nil, e
}

// dispatch hands each finished wait of w, copied out of its cm_result, to its channel until
// the waiter is shut down and every wait has come out. It blocks in C, so it keeps an OS
// thread of its own.
func dispatch(w *C.cm_waiter, ws *waiterState, done chan<- struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(done)
	// Bounded by the waiter's life: cm_waiter_shutdown (Close) makes it end.
	for {
		var tag C.uint64_t
		var r *C.cm_result
		switch code := Code(C.cm_waiter_next(w, nextTimeoutMS, &tag, &r)); code {
		case CodeOK:
			res := readResult(r)
			C.cm_result_free(r)
			ws.mu.Lock()
			ch := ws.waits[uint64(tag)]
			delete(ws.waits, uint64(tag))
			if len(ws.waits) == 0 && ws.peak > shrinkAbove {
				ws.waits, ws.peak = make(map[uint64]chan *result), 0
			}
			ws.mu.Unlock()
			if ch != nil { // always: every tag is registered before its add
				ch <- &res // buffered: never blocks
			}
		case CodeTimeout: // nothing finished for a while
		case CodeCancelled: // shut down and drained
			return
		default:
			// Not a documented outcome (only a NULL argument or a bug gives one): try again
			// later rather than spin.
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// shutdown cancels every wait (each still comes out, as cancelled, to its WaitResult) and
// refuses new ones. It returns a channel closed once the dispatcher has handed every wait on
// and stopped (nil when there is no waiter). The caller holds the client's read lock, so the
// waiter cannot be freed meanwhile (by a Close running at the same time).
func (ws *waiterState) shutdown() <-chan struct{} {
	ws.mu.Lock()
	ws.closing = true
	w, done := ws.w, ws.done
	ws.mu.Unlock()
	if w == nil {
		return nil
	}
	C.cm_waiter_shutdown(w)
	return done
}

// free frees the waiter, once its dispatcher has stopped; the caller holds the client's
// write lock, so no add or shutdown is using it.
func (ws *waiterState) free() {
	ws.mu.Lock()
	w := ws.w
	ws.w = nil
	ws.mu.Unlock()
	if w != nil {
		C.cm_waiter_free(w)
		liveWaiters.Add(-1)
	}
}

// closing reports whether Close has started.
func (ws *waiterState) isClosing() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.closing
}
