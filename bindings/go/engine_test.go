package capmonster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// osThreads returns the Threads line of /proc/self/status: the OS threads of the process.
func osThreads(t testing.TB) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(rest))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// methodRequests returns how many requests to an API method the emulator received.
func methodRequests(t testing.TB, method string) int {
	t.Helper()
	var stats struct {
		Methods map[string]int `json:"methods"`
	}
	if err := json.Unmarshal(control(t, http.MethodGet, "/_emulator/stats", nil), &stats); err != nil {
		t.Fatal(err)
	}
	return stats.Methods[method]
}

// Sequential, to count the process's threads: many WaitResult calls at once on one client
// each get their own task's result, and the OS threads stay bounded (a thread per wait would
// be thousands).
func TestManyWaitsAtOnce(t *testing.T) {
	const maxConnections = 16
	client := newClient(t, capmonster.WithMaxConnections(maxConnections))
	var created struct {
		FirstTaskID int64 `json:"firstTaskId"`
		Count       int   `json:"count"`
	}
	body := map[string]any{"type": "ImageToTextTask", "count": manyWaits, "solveAfterMs": 300}
	if err := json.Unmarshal(control(t, http.MethodPost, "/_emulator/tasks", body), &created); err != nil || created.Count != manyWaits {
		t.Fatalf("%+v, %v", created, err)
	}
	baseline := osThreads(t)
	var peak atomic.Int64
	peak.Store(int64(baseline))
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-ticker.C:
				if n := int64(osThreads(t)); n > peak.Load() {
					peak.Store(n)
				}
			}
		}
	}()

	opts := &capmonster.WaitOptions{FirstDelay: 100 * time.Millisecond, Interval: 100 * time.Millisecond, Timeout: time.Minute, MaxRequests: 120}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make([]error, manyWaits)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range manyWaits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := created.FirstTaskID + int64(i)
			res, err := client.WaitResult(ctx, id, opts)
			switch {
			case err != nil:
				errs[i] = err
			case res.TaskID != id || !res.Ready || res.Requests < 1:
				errs[i] = errors.New("wrong result " + strconv.FormatInt(res.TaskID, 10) + " for task " + strconv.FormatInt(id, 10))
			default:
				if text, _ := res.SolutionString("text"); text != "answer" {
					errs[i] = errors.New("wrong solution " + string(res.Solution))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	<-sampled
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Errorf("wait %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d waits failed", failed, manyWaits)
	}
	// The library's workers (at most max_connections), the dispatcher, and Go's own threads.
	limit := baseline + maxConnections + 1 + 40
	t.Logf("%d waits in %v; OS threads %d before, %d at the peak (limit %d)", manyWaits, elapsed, baseline, peak.Load(), limit)
	if int(peak.Load()) > limit {
		t.Errorf("%d OS threads at the peak, %d before: more than %d", peak.Load(), baseline, limit)
	}
}

// stalled returns a task whose getTaskResult answers stall for 10 s.
func stalled(t testing.TB) int64 {
	id := newTaskID()
	script(t, id, map[string]any{"fault": "stall", "ms": 10000})
	return id
}

// inFlight starts call in a goroutine, waits until the emulator has received its request
// (requests() grows), then ends the context with end and returns the call's error and how
// long after end it returned.
func inFlight(t *testing.T, ctx context.Context, end func(), requests func() int, call func(context.Context) error) (error, time.Duration) {
	t.Helper()
	before := requests()
	errs := make(chan error, 1)
	go func() { errs <- call(ctx) }()
	for deadline := time.Now().Add(5 * time.Second); requests() == before; {
		if time.Now().After(deadline) {
			t.Fatal("the request did not reach the emulator within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the request is sent; its answer stalls
	start := time.Now()
	if end != nil {
		end()
	}
	select {
	case err := <-errs:
		return err, time.Since(start)
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not return within 5 s")
		return nil, 0
	}
}

// Sequential: it scripts createTask and getBalance for every client, and times cancels. A
// cancelled context ends each call while its request is in flight (the answer stalls for
// 10 s), as an error matching both ErrCancelled and context.Canceled.
func TestCancelInFlight(t *testing.T) {
	client := newClient(t)
	scriptMethod(t, "createTask", map[string]any{"fault": "stall", "ms": 10000})
	scriptMethod(t, "getBalance", map[string]any{"fault": "stall", "ms": 10000})
	const bound = 500 * time.Millisecond // generous: bench/go measures the 10 ms goal
	cases := []struct {
		name  string
		count func(id int64) func() int
		call  func(ctx context.Context, id int64) error
	}{
		{"WaitResult", func(id int64) func() int { return func() int { return requestsFor(t, id) } },
			func(ctx context.Context, id int64) error { _, err := client.WaitResult(ctx, id, fast()); return err }},
		{"GetTaskResult", func(id int64) func() int { return func() int { return requestsFor(t, id) } },
			func(ctx context.Context, id int64) error { _, err := client.GetTaskResult(ctx, id); return err }},
		{"CreateTask", func(int64) func() int { return func() int { return methodRequests(t, "createTask") } },
			func(ctx context.Context, _ int64) error {
				_, err := client.CreateTask(ctx, imageTask(), "")
				return err
			}},
		{"GetBalance", func(int64) func() int { return func() int { return methodRequests(t, "getBalance") } },
			func(ctx context.Context, _ int64) error { _, err := client.GetBalance(ctx); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := stalled(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err, took := inFlight(t, ctx, cancel, c.count(id), func(ctx context.Context) error { return c.call(ctx, id) })
			t.Logf("returned %v after cancel()", took)
			e := wantKinds(t, err, "ErrCancelled")
			if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || e.Requests != 1 {
				t.Errorf("got %+v (%v)", e, err)
			}
			if took > bound {
				t.Errorf("returned %v after cancel(), want at most %v", took, bound)
			}
		})
	}
	// The context's deadline bounds each call in flight: the library's timeout, at the
	// deadline, as an error matching both ErrTimeout and context.DeadlineExceeded.
	for _, c := range cases {
		t.Run(c.name+" deadline", func(t *testing.T) {
			id := stalled(t)
			const d = 400 * time.Millisecond
			// The stopwatch starts before the context, so that a call ending exactly at its
			// deadline never measures under it.
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			err := c.call(ctx, id)
			took := time.Since(start)
			e := wantKinds(t, err, "ErrTimeout")
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || e.Requests != 1 {
				t.Errorf("got %+v (%v)", e, err)
			}
			// 5 ms of slack below: under Wine, Go's clock and the library's differ by about 1 ms.
			if took < d-5*time.Millisecond || took > d+bound {
				t.Errorf("returned after %v, want %v to %v", took, d, d+bound)
			}
		})
	}
}

// Close ends every wait in progress, asleep or in flight, as cancelled by a closed client;
// a second Close (also at once from other goroutines) changes nothing, and the waiter and
// the client are freed.
func TestCloseEndsPendingWaits(t *testing.T) {
	t.Parallel()
	client, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL(emulatorURL))
	if err != nil {
		t.Fatal(err)
	}
	const asleep, inflight = 200, 8
	errs := make(chan error, asleep+inflight)
	var ids []int64
	for i := range asleep + inflight {
		id := newTaskID()
		opts := &capmonster.WaitOptions{FirstDelay: time.Minute, Interval: time.Second, Timeout: 2 * time.Minute, MaxRequests: 120}
		if i < inflight {
			script(t, id, map[string]any{"fault": "stall", "ms": 10000})
			opts.FirstDelay = 0
			ids = append(ids, id)
		}
		go func() {
			_, err := client.WaitResult(context.Background(), id, opts)
			errs <- err
		}()
	}
	for _, id := range ids {
		for deadline := time.Now().Add(5 * time.Second); requestsFor(t, id) == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("task %d was not polled within 5 s", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	start := time.Now()
	var closers sync.WaitGroup
	for range 3 {
		closers.Add(1)
		go func() {
			defer closers.Done()
			if err := client.Close(); err != nil {
				t.Error(err)
			}
		}()
	}
	closers.Wait()
	took := time.Since(start)
	if took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	for range asleep + inflight {
		select {
		case err := <-errs:
			wantKinds(t, err, "ErrClosed", "ErrCancelled")
			if errors.Is(err, context.Canceled) {
				t.Errorf("%v is context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a wait did not end after Close")
		}
	}
	if err := client.Close(); err != nil {
		t.Error(err)
	}
	_, err = client.WaitResult(context.Background(), newTaskID(), fast())
	wantKinds(t, err, "ErrClosed", "ErrInvalidArgument")
}

// Sequential: it counts the library objects of the whole package. A Client dropped without
// Close, after its waits, is freed by the garbage collector: its waiter and its client.
func TestCleanupFreesWaiters(t *testing.T) {
	handles, waiters := capmonster.LiveHandles(), capmonster.LiveWaiters()
	func() {
		client, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL(emulatorURL))
		if err != nil {
			t.Fatal(err)
		}
		id := newTaskID()
		script(t, id, map[string]any{"ready": map[string]any{"text": "x"}})
		if _, err := client.WaitResult(context.Background(), id, fast()); err != nil {
			t.Fatal(err)
		}
	}()
	if got := capmonster.LiveWaiters(); got != waiters+1 {
		t.Fatalf("%d waiters, want %d", got, waiters+1)
	}
	for deadline := time.Now().Add(10 * time.Second); capmonster.LiveWaiters() != waiters || capmonster.LiveHandles() != handles; {
		if time.Now().After(deadline) {
			t.Fatalf("after GC: %d waiters (want %d), %d clients (want %d)",
				capmonster.LiveWaiters(), waiters, capmonster.LiveHandles(), handles)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
