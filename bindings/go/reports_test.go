package capmonster_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// Sequential: it reads the emulator's per-method counters. Each report sends exactly one
// request to its own method; an unknown task is the service's error.
func TestReportIncorrect(t *testing.T) {
	client := newClient(t)
	ctx := context.Background()
	id, err := client.CreateTask(ctx, imageTask(), "")
	if err != nil {
		t.Fatal(err)
	}
	reports := []struct {
		method string
		report func(context.Context, int64) error
	}{
		{"reportIncorrectImageCaptcha", client.ReportIncorrectImage},
		{"reportIncorrectTokenCaptcha", client.ReportIncorrectToken},
	}
	for _, r := range reports {
		before := methodRequests(t, r.method)
		if err := r.report(ctx, id); err != nil {
			t.Errorf("%s: %v", r.method, err)
		}
		if n := methodRequests(t, r.method) - before; n != 1 {
			t.Errorf("%s: the emulator counted %d requests, want 1", r.method, n)
		}
		// Unknown to the service: its error, one request, never retried.
		before = methodRequests(t, r.method)
		err := r.report(ctx, 900_000_123)
		if e := wantKinds(t, err, "ErrAPI", "ErrNoSuchTask"); e.Requests != 1 || e.TaskID != 900_000_123 {
			t.Errorf("%s: %+v", r.method, e)
		}
		if n := methodRequests(t, r.method) - before; n != 1 {
			t.Errorf("%s: the emulator counted %d requests, want 1", r.method, n)
		}
		// The library judges the task id: nothing sent.
		before = methodRequests(t, r.method)
		err = r.report(ctx, 0)
		if e := wantKinds(t, err, "ErrInvalidArgument"); e.Requests != 0 {
			t.Errorf("%s: %+v", r.method, e)
		}
		if n := methodRequests(t, r.method) - before; n != 0 {
			t.Errorf("%s: %d requests sent for task 0", r.method, n)
		}
	}
	// A report stalled in flight ends with its context.
	scriptMethod(t, "reportIncorrectTokenCaptcha", map[string]any{"fault": "stall", "ms": 10000})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err, took := inFlight(t, cctx, cancel, func() int { return methodRequests(t, "reportIncorrectTokenCaptcha") },
		func(ctx context.Context) error { return client.ReportIncorrectToken(ctx, id) })
	if e := wantKinds(t, err, "ErrCancelled"); !errors.Is(err, context.Canceled) || e.Requests != 1 {
		t.Errorf("got %+v (%v)", e, err)
	}
	if took > 500*time.Millisecond {
		t.Errorf("returned %v after cancel()", took)
	}
}

// lastSoftID returns the softId of the last createTask the emulator received (nil: none).
func lastSoftID(t testing.TB) *uint64 {
	t.Helper()
	var stats struct {
		LastSoftID *uint64 `json:"lastSoftId"`
	}
	if err := json.Unmarshal(control(t, http.MethodGet, "/_emulator/stats", nil), &stats); err != nil {
		t.Fatal(err)
	}
	return stats.LastSoftID
}

// Sequential: the emulator keeps the softId of the last createTask of any client.
func TestSoftID(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts []capmonster.Option
		want *uint64
	}{
		{"none", nil, nil},
		{"zero sends none", []capmonster.Option{capmonster.WithSoftID(0)}, nil},
		{"an id", []capmonster.Option{capmonster.WithSoftID(12345)}, ptr(12345)},
		{"the largest", []capmonster.Option{capmonster.WithSoftID(4294967295)}, ptr(4294967295)},
		{"the last option wins", []capmonster.Option{capmonster.WithSoftID(7), capmonster.WithSoftID(0)}, nil},
	} {
		client := newClient(t, c.opts...)
		if _, err := client.CreateTask(ctx, imageTask(), ""); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := lastSoftID(t)
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%s: the emulator got softId %v, want %v", c.name, show(got), show(c.want))
		}
	}
}

func ptr(n uint64) *uint64 { return &n }

func show(p *uint64) any {
	if p == nil {
		return "none"
	}
	return *p
}
