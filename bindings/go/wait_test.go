package capmonster_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

func TestWaitUntilReady(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	id := newTaskID()
	script(t, id, "processing", "processing", map[string]any{"ready": map[string]any{"token": "t0k3n"}})
	res, err := client.WaitResult(context.Background(), id, fast())
	if err != nil || !res.Ready || res.Requests != 3 || res.TaskID != id {
		t.Fatalf("%+v, %v", res, err)
	}
	if token, ok := res.SolutionString("token"); !ok || token != "t0k3n" {
		t.Errorf("token %q, %v", token, ok)
	}
	// nil options: the defaults (first poll after 1 s).
	id = newTaskID()
	script(t, id, map[string]any{"ready": map[string]any{"token": "x"}})
	start := time.Now()
	if res, err := client.WaitResult(context.Background(), id, nil); err != nil || !res.Ready || res.Requests != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Errorf("the default first delay is 1 s, the wait took %v", elapsed)
	}
}

// Sequential, for the timing: a wait ends within 100 ms of its context's cancel.
func TestCancelEndsWaitWithin100ms(t *testing.T) {
	client := newClient(t)
	for round := range 5 {
		id := newTaskID()
		script(t, id, "processing")
		opts := capmonster.WaitOptions{FirstDelay: 0, Interval: 150 * time.Millisecond, Timeout: time.Minute, MaxRequests: 120}
		ctx, cancel := context.WithCancel(context.Background())
		cancelled := make(chan time.Time, 1)
		go func() {
			// Cancel at different points of the schedule.
			time.Sleep(time.Duration(300+round*37) * time.Millisecond)
			cancelled <- time.Now()
			cancel()
		}()
		_, err := client.WaitResult(ctx, id, &opts)
		returned := time.Now()
		at := <-cancelled
		delay := returned.Sub(at)
		if delay > 100*time.Millisecond {
			t.Errorf("round %d: the wait returned %v after cancel()", round, delay)
		}
		t.Logf("round %d: returned %v after cancel()", round, delay)
		e := wantKinds(t, err, "ErrCancelled")
		if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || e.Requests < 2 || e.TaskID != id {
			t.Errorf("round %d: %+v", round, e)
		}
	}
}

// Sequential, for the timing: a context deadline nearer than the wait's timeout ends the
// wait at the deadline, as a timeout that is also context.DeadlineExceeded.
func TestContextDeadlineShortensWait(t *testing.T) {
	client := newClient(t)
	id := newTaskID()
	script(t, id, "processing")
	opts := capmonster.WaitOptions{FirstDelay: 0, Interval: 100 * time.Millisecond, Timeout: time.Minute, MaxRequests: 120}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.WaitResult(ctx, id, &opts)
	elapsed := time.Since(start)
	e := wantKinds(t, err, "ErrTimeout")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || e.Requests < 2 {
		t.Errorf("got %+v (%v)", e, err)
	}
	if elapsed < 350*time.Millisecond || elapsed > 400*time.Millisecond+300*time.Millisecond {
		t.Errorf("the wait returned after %v, want about 400 ms", elapsed)
	}
}

// Sequential, for the timing and the count of library clients: a deadline nearer than the
// request timeout bounds a single request.
func TestContextDeadlineBoundsSingleRequest(t *testing.T) {
	client := newClient(t) // request timeout 21 s
	before := capmonster.LiveHandles()
	id := newTaskID()
	script(t, id, map[string]any{"fault": "stall", "ms": 10000})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.GetTaskResult(ctx, id)
	elapsed := time.Since(start)
	wantKinds(t, err, "ErrTimeout")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v is not context.DeadlineExceeded", err)
	}
	if elapsed < 250*time.Millisecond || elapsed > time.Second {
		t.Errorf("returned after %v, want about 300 ms", elapsed)
	}
	if after := capmonster.LiveHandles(); after != before {
		t.Errorf("%d library clients before, %d after", before, after)
	}
	// A far deadline changes nothing.
	far, cancelFar := context.WithTimeout(context.Background(), time.Hour)
	defer cancelFar()
	if balance, err := client.GetBalance(far); err != nil || balance != 345.678 {
		t.Errorf("GetBalance: %v, %v", balance, err)
	}
	// A near one still gets the answer when the service is quick.
	near, cancelNear := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelNear()
	if id, err := client.CreateTask(near, imageTask(), ""); err != nil || id <= 0 {
		t.Errorf("CreateTask: %v, %v", id, err)
	}
}

// A context that is already done stops every call before it sends anything.
func TestContextAlreadyDone(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()

	for _, c := range []struct {
		ctx   context.Context
		kind  string
		cause error
	}{
		{cancelled, "ErrCancelled", context.Canceled},
		{expired, "ErrTimeout", context.DeadlineExceeded},
	} {
		id := newTaskID()
		script(t, id, "processing")
		check := func(what string, err error) {
			t.Helper()
			e := wantKinds(t, err, c.kind)
			if !errors.Is(err, c.cause) || e.Requests != 0 {
				t.Errorf("%s: %+v", what, e)
			}
		}
		_, err := client.GetTaskResult(c.ctx, id)
		check("GetTaskResult", err)
		_, err = client.WaitResult(c.ctx, id, fast())
		check("WaitResult", err)
		_, err = client.CreateTask(c.ctx, imageTask(), "")
		check("CreateTask", err)
		_, err = client.GetBalance(c.ctx)
		check("GetBalance", err)
		if n := requestsFor(t, id); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	}
}

// Sequential, to count goroutines: no watcher goroutine outlives its wait, whichever way the
// wait ends, and no library client is left behind.
func TestWaitLeavesNoGoroutine(t *testing.T) {
	settle := func() int {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	handles, waiters := capmonster.LiveHandles(), capmonster.LiveWaiters()
	initial := settle()
	client, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL(emulatorURL))
	if err != nil {
		t.Fatal(err)
	}
	// The first wait starts the client's dispatcher: count from there.
	warm := newTaskID()
	script(t, warm, map[string]any{"ready": map[string]any{"text": "x"}})
	if _, err := client.WaitResult(context.Background(), warm, fast()); err != nil {
		t.Fatal(err)
	}
	if got := capmonster.LiveWaiters(); got != waiters+1 {
		t.Errorf("%d waiters, want %d", got, waiters+1)
	}
	before := settle()
	for i := range 12 {
		id := newTaskID()
		switch i % 4 {
		case 0: // ready, with a cancellable context that stays alive
			script(t, id, map[string]any{"ready": map[string]any{"text": "x"}})
			ctx, cancel := context.WithCancel(context.Background())
			if _, err := client.WaitResult(ctx, id, fast()); err != nil {
				t.Fatal(err)
			}
			cancel()
		case 1: // cancelled
			script(t, id, "processing")
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*time.Millisecond, cancel)
			if _, err := client.WaitResult(ctx, id, fast()); !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
		case 2: // deadline
			script(t, id, "processing")
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			if _, err := client.WaitResult(ctx, id, fast()); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			cancel()
		case 3: // an API error, no cancellable context
			script(t, id, map[string]any{"error": "ERROR_CAPTCHA_UNSOLVABLE"})
			if _, err := client.WaitResult(context.Background(), id, fast()); !errors.Is(err, capmonster.ErrCaptchaUnsolvable) {
				t.Fatal(err)
			}
		}
	}
	var after int
	for deadline := time.Now().Add(5 * time.Second); ; {
		if after = settle(); after <= before || time.Now().After(deadline) {
			break
		}
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	// Close stops the dispatcher and frees the waiter and the client.
	client.Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if after = settle(); after <= initial || time.Now().After(deadline) {
			break
		}
	}
	if after > initial {
		t.Errorf("%d goroutines before the client, %d after Close", initial, after)
	}
	if got := capmonster.LiveHandles(); got != handles {
		t.Errorf("%d library clients before, %d after", handles, got)
	}
	if got := capmonster.LiveWaiters(); got != waiters {
		t.Errorf("%d waiters before, %d after", waiters, got)
	}
}
