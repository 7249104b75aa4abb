package capmonster_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// quickImageTask is an image task the emulator solves 100 ms after its creation.
func quickImageTask() map[string]any {
	return map[string]any{"type": "ImageToTextTask", "body": imageBase64, "emulatorSolveAfterMs": 100}
}

// Many solves at once on one client each come out once, ready, with a task of their own; the
// task's forms are those of CreateTask, and nil options take the task type's schedule.
func TestSolveMany(t *testing.T) {
	t.Parallel()
	const solves = 300
	client := newClient(t, capmonster.WithMaxConnections(8))
	ctx := context.Background()
	forms := []any{
		quickImageTask(),
		`{"type":"ImageToTextTask","body":"` + imageBase64 + `","emulatorSolveAfterMs":100}`,
		[]byte(`{"type":"ImageToTextTask","body":"` + imageBase64 + `"}`),
	}
	var wg sync.WaitGroup
	results := make([]*capmonster.TaskResult, solves)
	errs := make([]error, solves)
	for i := range solves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = client.Solve(ctx, forms[i%len(forms)], "", fast())
		}()
	}
	wg.Wait()
	ids := map[int64]bool{}
	for i := range solves {
		res, err := results[i], errs[i]
		if err != nil {
			t.Fatalf("solve %d: %v", i, err)
		}
		text, ok := res.SolutionString("text")
		if !res.Ready || res.TaskID <= 0 || res.Requests < 1 || !ok || text == "" {
			t.Fatalf("solve %d: %+v", i, res)
		}
		if ids[res.TaskID] {
			t.Fatalf("task %d came out twice", res.TaskID)
		}
		ids[res.TaskID] = true
	}
	if pending := capmonster.PendingWaits(client); pending != 0 {
		t.Errorf("%d waits left in the waiter", pending)
	}

	// nil options: ImageToTextTask's schedule (first poll after 350 ms), counted from the
	// creation.
	start := time.Now()
	res, err := client.Solve(ctx, quickImageTask(), "", nil)
	if err != nil || !res.Ready || res.Requests != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("the type's first delay is 350 ms, the solve took %v", elapsed)
	}
}

// A createTask that fails comes out with task id 0 and the library's code and message, the
// same as CreateTask's for the same task; a refused callback URL likewise.
func TestSolveCreateTaskFailure(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := context.Background()

	_, err := client.Solve(ctx, map[string]any{"type": "NoSuchTaskType"}, "", fast())
	e := wantKinds(t, err, "ErrAPI")
	if e.TaskID != 0 || e.APICode != "ERROR_TASK_NOT_SUPPORTED" || e.Requests != 1 || e.Message == "" {
		t.Errorf("the service's refusal: %+v", e)
	}

	// Refused by the library when its createTask is due: nothing sent, its words.
	task := map[string]any{"body": "no type"}
	_, err = client.Solve(ctx, task, "", nil)
	e = wantKinds(t, err, "ErrInvalidArgument")
	_, direct := client.CreateTask(ctx, task, "")
	if e.TaskID != 0 || e.Requests != 0 || e.Message != direct.(*capmonster.Error).Message {
		t.Errorf("the library's refusal: %+v; CreateTask's: %v", e, direct)
	}
	_, err = client.Solve(ctx, quickImageTask(), "ftp://example.com/callback", fast())
	if e := wantKinds(t, err, "ErrInvalidArgument"); e.TaskID != 0 || !strings.Contains(e.Message, "callback_url") {
		t.Errorf("the callback URL: %+v", e)
	}

	// Options the library refuses: nothing queued, its message naming the field.
	bad := *fast()
	bad.Interval = 0
	_, err = client.Solve(ctx, quickImageTask(), "", &bad)
	if e := wantKinds(t, err, "ErrInvalidArgument"); !strings.Contains(e.Message, "interval_ms") {
		t.Errorf("the options: %+v", e)
	}
	if pending := capmonster.PendingWaits(client); pending != 0 {
		t.Errorf("%d waits left in the waiter", pending)
	}
}

// Sequential: it stalls createTask for every key. A cancelled context ends its solve in
// flight within milliseconds, a context's deadline at the deadline; Close ends the others,
// created or not.
func TestSolveCancelAndClose(t *testing.T) {
	scriptMethod(t, "createTask", map[string]any{"fault": "stall", "ms": 10000})
	client := newClient(t, capmonster.WithMaxConnections(2))
	const bound = 500 * time.Millisecond // generous: the library promises milliseconds

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := client.Solve(ctx, quickImageTask(), "", fast())
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // its createTask in flight
	start := time.Now()
	cancel()
	err := <-done
	if elapsed := time.Since(start); elapsed > bound {
		t.Errorf("the solve returned %v after cancel()", elapsed)
	}
	e := wantKinds(t, err, "ErrCancelled")
	if !errors.Is(err, context.Canceled) || e.TaskID != 0 {
		t.Errorf("%+v", e)
	}

	// A deadline bounds the whole solve, the createTask in flight included.
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelDeadline()
	start = time.Now()
	_, err = client.Solve(deadline, quickImageTask(), "", fast())
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond || elapsed > 300*time.Millisecond+bound {
		t.Errorf("the solve returned after %v, want about 300 ms", elapsed)
	}
	if e, ok := err.(*capmonster.Error); !ok || !errors.Is(err, context.DeadlineExceeded) || e.TaskID != 0 {
		t.Errorf("past the deadline: %v", err)
	}

	// Four solves on two threads: two in flight, two not yet sent; Close ends all four.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := client.Solve(context.Background(), quickImageTask(), "", fast())
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	client.Close()
	for range 4 {
		err := <-errs
		if e := wantKinds(t, err, "ErrCancelled", "ErrClosed"); e.TaskID != 0 {
			t.Errorf("%+v", e)
		}
	}
	if elapsed := time.Since(start); elapsed > bound {
		t.Errorf("Close took %v", elapsed)
	}
	_, err = client.Solve(context.Background(), quickImageTask(), "", fast())
	wantKinds(t, err, "ErrInvalidArgument", "ErrClosed")
}
