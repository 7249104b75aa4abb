// Command scale is the Go binding's scale benchmark (bench/go/scale.sh runs it; see
// bench/README.md, "Go: waits at scale"). Against the emulator started with
// `--answer-delay-ms D --stamp-ready`:
//
//	scale waits  URL N FIRST_MS INTERVAL_MS   N concurrent WaitResult calls on one Client
//	scale cancel URL                          cancel latency of WaitResult and GetTaskResult
//
// waits: N ImageToTextTasks are made at once (POST /_emulator/tasks) at T0; task j turns
// ready at T0 + FIRST + 1.5 x INTERVAL + INTERVAL x j/N. Goroutine j calls WaitResult with
// first delay FIRST + INTERVAL x j/N and the interval, so every wait finds its task ready on
// its third poll, with half an interval of margin either side (as bench/scale.c). Every
// wait must return its own task, ready, with the solution "answer". Prints one line
//
//	WAITS n=.. ok=.. threads_before=.. threads_peak=.. rss_before_kib=.. hwm_kib=.. run_s=.. req_per_wait=.. emu_requests=.. late_p50_ms=.. late_p99_ms=..
//
// with the OS threads of the process (/proc/self/status Threads, sampled every 5 ms), its
// peak RSS (VmHWM), and the lateness of each ready answer (the emulator's stamp, wall clock
// just before it writes the answer, to the return of WaitResult).
//
// cancel: under a getTaskResult script that stalls every answer, contexts cancelled one at a
// time: WaitResult with its request in flight, WaitResult asleep before its first poll,
// GetTaskResult in flight; then Close with waits pending. Prints lines
//
//	CANCEL case=.. n=.. p50_ms=.. p99_ms=.. max_ms=.. ok=..
//
// (cancel() to the return of the call, monotonic clock; ok counts the errors matching both
// capmonster.ErrCancelled and context.Canceled).
//
// Exit status: 0 when every wait and call ended as expected, 1 otherwise, 2 on a bad setup.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

var emulator string

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	emulator = os.Args[2]
	switch {
	case os.Args[1] == "waits" && len(os.Args) == 6:
		n, first, interval := atoi(os.Args[3]), atoi(os.Args[4]), atoi(os.Args[5])
		os.Exit(runWaits(n, time.Duration(first)*time.Millisecond, time.Duration(interval)*time.Millisecond))
	case os.Args[1] == "cancel" && len(os.Args) == 3:
		os.Exit(runCancel())
	}
	usage()
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: scale waits URL N FIRST_MS INTERVAL_MS | scale cancel URL")
	os.Exit(2)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		usage()
	}
	return n
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scale: "+format+"\n", args...)
	os.Exit(2)
}

// control calls one of the emulator's control endpoints and decodes its JSON answer into out.
func control(method, path string, body, out any) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			fail("%v", err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, emulator+path, reader)
	if err != nil {
		fail("%v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		fail("%s %s: %d %s %v", method, path, resp.StatusCode, answer, err)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			fail("%s %s: %v", method, path, err)
		}
	}
}

// getTaskResults returns how many getTaskResult requests the emulator received.
func getTaskResults() int {
	var stats struct {
		Methods map[string]int `json:"methods"`
	}
	control(http.MethodGet, "/_emulator/stats", nil, &stats)
	return stats.Methods["getTaskResult"]
}

// status reads a "Name: value" line of /proc/self/status (kB for memory lines).
func status(name string) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fail("%v", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), name+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				fail("/proc/self/status %s: %v", name, err)
			}
			return n
		}
	}
	fail("no %s in /proc/self/status", name)
	return 0
}

// percentile returns the p-th percentile (0..100) of sorted values, in ms.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i].Microseconds()) / 1000
}

func newClient(opts ...capmonster.Option) *capmonster.Client {
	key := fmt.Sprintf("go-scale-%d", time.Now().UnixNano())
	client, err := capmonster.NewClient(key, append([]capmonster.Option{capmonster.WithBaseURL(emulator)}, opts...)...)
	if err != nil {
		fail("NewClient: %v", err)
	}
	return client
}

func runWaits(n int, first, interval time.Duration) int {
	control(http.MethodPost, "/_emulator/reset", nil, nil)
	client := newClient()
	defer client.Close()
	// A warm-up wait: the dispatcher, a library worker and a pooled connection exist before
	// the baseline, as in bench/scale.c.
	var warm struct {
		TaskID int64 `json:"taskId"`
	}
	control(http.MethodPost, "/_emulator/task", map[string]any{"type": "ImageToTextTask", "solveAfterMs": 0}, &warm)
	if _, err := client.WaitResult(context.Background(), warm.TaskID, &capmonster.WaitOptions{Interval: time.Second, Timeout: time.Minute, MaxRequests: 5}); err != nil {
		fail("warm-up wait: %v", err)
	}
	errs := make([]error, n)
	late := make([]time.Duration, n)
	requests := make([]int, n) // touched now: the baseline includes the program's own arrays
	runtime.GC()
	threadsBefore, rssBefore := status("Threads"), status("VmRSS")

	var peak atomic.Int64
	peak.Store(int64(threadsBefore))
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				if t := int64(status("Threads")); t > peak.Load() {
					peak.Store(t)
				}
			}
		}
	}()

	emuBefore := getTaskResults()
	var created struct {
		FirstTaskID int64 `json:"firstTaskId"`
		Count       int   `json:"count"`
	}
	solveAfter := first + interval*3/2
	control(http.MethodPost, "/_emulator/tasks", map[string]any{
		"type": "ImageToTextTask", "count": n, "solveAfterMs": solveAfter.Milliseconds(), "spreadMs": interval.Milliseconds(),
	}, &created)
	if created.Count != n {
		fail("the emulator made %d tasks, not %d", created.Count, n)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for j := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := created.FirstTaskID + int64(j)
			opts := capmonster.WaitOptions{
				FirstDelay:  first + time.Duration(int64(interval)*int64(j)/int64(n)),
				Interval:    interval,
				Timeout:     first + 10*interval + time.Minute,
				MaxRequests: 120,
			}
			res, err := client.WaitResult(context.Background(), id, &opts)
			returned := time.Now()
			if err != nil {
				errs[j] = err
				return
			}
			requests[j] = res.Requests
			var solution struct {
				Text   string `json:"text"`
				SentAt string `json:"emulatorSentAtUs"`
			}
			if err := res.Decode(&solution); err != nil || res.TaskID != id || solution.Text != "answer" {
				errs[j] = fmt.Errorf("task %d: got task %d, solution %s (%v)", id, res.TaskID, res.Solution, err)
				return
			}
			if us, err := strconv.ParseInt(solution.SentAt, 10, 64); err == nil {
				late[j] = returned.Sub(time.UnixMicro(us))
			} else {
				late[j] = -1
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	hwm := status("VmHWM")

	ok, total := 0, 0
	for j, err := range errs {
		if err != nil {
			if j < 5 || ok == 0 {
				fmt.Fprintf(os.Stderr, "scale: wait %d: %v\n", j, err)
			}
			continue
		}
		ok++
		total += requests[j]
	}
	stamped := slices.DeleteFunc(late, func(d time.Duration) bool { return d < 0 })
	slices.Sort(stamped)
	fmt.Printf("WAITS n=%d ok=%d threads_before=%d threads_peak=%d rss_before_kib=%d hwm_kib=%d run_s=%.1f req_per_wait=%.3f emu_requests=%d late_p50_ms=%.2f late_p99_ms=%.2f late_max_ms=%.2f gomaxprocs=%d\n",
		n, ok, threadsBefore, peak.Load(), rssBefore, hwm, elapsed.Seconds(), float64(total)/float64(max(ok, 1)),
		getTaskResults()-emuBefore, percentile(stamped, 50), percentile(stamped, 99), percentile(stamped, 100), runtime.GOMAXPROCS(0))
	if ok != n {
		return 1
	}
	return 0
}

// call is a call running on a goroutine of its own, with a context to cancel it.
type call struct {
	cancel   context.CancelFunc
	returned chan time.Time
	err      error
}

func start(run func(ctx context.Context) error) *call {
	ctx, cancel := context.WithCancel(context.Background())
	c := &call{cancel: cancel, returned: make(chan time.Time, 1)}
	go func() {
		c.err = run(ctx)
		c.returned <- time.Now()
	}()
	return c
}

// cancelEach cancels each call in turn, waiting for it to return before the next; it
// returns the latencies and how many errors matched both ErrCancelled and context.Canceled.
func cancelEach(calls []*call) ([]time.Duration, int) {
	var lat []time.Duration
	ok := 0
	for _, c := range calls {
		at := time.Now()
		c.cancel()
		select {
		case returned := <-c.returned:
			lat = append(lat, returned.Sub(at))
			if errors.Is(c.err, capmonster.ErrCancelled) && errors.Is(c.err, context.Canceled) {
				ok++
			} else {
				fmt.Fprintf(os.Stderr, "scale: a cancelled call returned %v\n", c.err)
			}
		case <-time.After(10 * time.Second):
			fmt.Fprintln(os.Stderr, "scale: HANG: a cancelled call did not return within 10 s")
			return lat, ok
		}
		time.Sleep(2 * time.Millisecond) // one at a time, as bench/scale.c
	}
	return lat, ok
}

// awaitRequests waits until the emulator has received want getTaskResult requests in all.
func awaitRequests(want int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if getTaskResults() >= want {
			return true
		}
	}
	fmt.Fprintf(os.Stderr, "scale: the emulator did not see %d getTaskResult requests within 10 s\n", want)
	return false
}

func report(name string, lat []time.Duration, ok, n int) bool {
	slices.Sort(lat)
	fmt.Printf("CANCEL case=%s n=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f ok=%d\n",
		name, n, percentile(lat, 50), percentile(lat, 99), percentile(lat, 100), ok)
	return ok == n
}

func runCancel() int {
	control(http.MethodPost, "/_emulator/reset", nil, nil)
	control(http.MethodPost, "/_emulator/script", map[string]any{
		"method": "getTaskResult", "steps": []any{map[string]any{"fault": "stall", "ms": 120000}},
	}, nil)
	client := newClient()
	defer client.Close()
	good := true
	nextTask := int64(5_000_000)
	const rounds, batch = 8, 32 // 32 in flight at once: below the client's 64 connections

	// A call whose request is in flight: started in batches, cancelled once the emulator has
	// received every request of the batch (their answers stall).
	inflight := func(name string, run func(ctx context.Context, id int64) error) {
		var lat []time.Duration
		ok := 0
		for range rounds {
			seen := getTaskResults()
			calls := make([]*call, batch)
			for i := range calls {
				id := nextTask
				nextTask++
				calls[i] = start(func(ctx context.Context) error { return run(ctx, id) })
			}
			if !awaitRequests(seen + batch) {
				good = false
			}
			time.Sleep(20 * time.Millisecond)
			l, k := cancelEach(calls)
			lat, ok = append(lat, l...), ok+k
		}
		good = report(name, lat, ok, rounds*batch) && good
	}
	waitInFlight := &capmonster.WaitOptions{FirstDelay: 0, Interval: time.Second, Timeout: 10 * time.Minute, MaxRequests: 120}
	inflight("wait_result_inflight", func(ctx context.Context, id int64) error {
		_, err := client.WaitResult(ctx, id, waitInFlight)
		return err
	})
	inflight("get_task_result_inflight", func(ctx context.Context, id int64) error {
		_, err := client.GetTaskResult(ctx, id)
		return err
	})

	// Waits asleep before their first poll.
	const sleepers = 1000
	asleep := &capmonster.WaitOptions{FirstDelay: 10 * time.Minute, Interval: time.Second, Timeout: 20 * time.Minute, MaxRequests: 120}
	calls := make([]*call, sleepers)
	for i := range calls {
		id := nextTask
		nextTask++
		calls[i] = start(func(ctx context.Context) error { _, err := client.WaitResult(ctx, id, asleep); return err })
	}
	time.Sleep(200 * time.Millisecond)
	lat, ok := cancelEach(calls)
	good = report("wait_result_sleeping", lat, ok, sleepers) && good

	// Close with 10,000 waits pending, 32 of them in flight: all out, as closed.
	closing := newClient()
	const pending = 10_000
	seen := getTaskResults()
	done := make(chan error, pending)
	for i := range pending {
		id := nextTask
		nextTask++
		opts := asleep
		if i < batch {
			opts = waitInFlight
		}
		go func() { _, err := closing.WaitResult(context.Background(), id, opts); done <- err }()
	}
	if !awaitRequests(seen + batch) {
		good = false
	}
	time.Sleep(100 * time.Millisecond)
	at := time.Now()
	closing.Close()
	closed := 0
	for range pending {
		if err := <-done; errors.Is(err, capmonster.ErrClosed) && errors.Is(err, capmonster.ErrCancelled) {
			closed++
		}
	}
	fmt.Printf("CANCEL case=close n=%d all_out_ms=%.3f ok=%d\n", pending, float64(time.Since(at).Microseconds())/1000, closed)
	good = good && closed == pending
	if !good {
		return 1
	}
	return 0
}
