package capmonster_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// lines is a slog.Handler that keeps every record: (level, event, message).
type lines struct {
	mu   sync.Mutex
	seen [][3]string
	bomb bool // panics on every record
}

func (h *lines) Enabled(context.Context, slog.Level) bool { return true }
func (h *lines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *lines) WithGroup(string) slog.Handler            { return h }
func (h *lines) Handle(_ context.Context, r slog.Record) error {
	if h.bomb {
		panic("a handler that panics")
	}
	event := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "event" {
			event = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	h.seen = append(h.seen, [3]string{r.Level.String(), event, r.Message})
	h.mu.Unlock()
	return nil
}

// Sequential: the logger is process-wide.
func TestSetLoggerSendsEveryLineWithoutTheKey(t *testing.T) {
	handler := &lines{}
	capmonster.SetLogger(slog.New(handler))
	defer capmonster.SetLogger(nil)
	key := "go-log-secret-key-0123456789"
	client, err := capmonster.NewClient(key, capmonster.WithBaseURL(emulatorURL))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	taskID := newTaskID()
	script(t, taskID, map[string]any{"raw": "", "status": 503}, "processing", map[string]any{"ready": map[string]any{"text": "ok"}})
	if _, err := client.WaitResult(context.Background(), taskID, fast()); err != nil {
		t.Fatal(err)
	}
	handler.mu.Lock()
	seen := append([][3]string(nil), handler.seen...)
	handler.mu.Unlock()
	events := map[string]int{}
	for _, line := range seen {
		events[line[1]]++
		if strings.Contains(line[2], key) {
			t.Errorf("a line holds the key: %v", line)
		}
	}
	if events["wait.start"] != 1 || events["wait.end"] != 1 || events["request"] != 3 || events["wait.retry"] != 1 {
		t.Errorf("events %v", events)
	}
	stats, err := client.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if stats.RequestsGetTaskResult != 3 || stats.AnswersReady != 1 || stats.AnswersHTTPError != 1 || stats.Retries != 1 || stats.WaitsFinished != 1 || stats.WaitsPending != 0 {
		t.Errorf("stats %+v", stats)
	}
	if stats.ConnectionsOpen < 1 || stats.ConnectionsOpen > stats.ConnectionsOpened || stats.ConnectionsIdle != stats.ConnectionsOpen {
		t.Errorf("connections: %+v", stats)
	}
	if int(stats.RequestsGetTaskResult) != requestsFor(t, taskID) {
		t.Errorf("the emulator saw %d requests, the client counted %d", requestsFor(t, taskID), stats.RequestsGetTaskResult)
	}

	// A handler that panics loses its lines, nothing else.
	capmonster.SetLogger(slog.New(&lines{bomb: true}))
	if _, err := client.GetBalance(context.Background()); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if _, err := client.Stats(); err == nil {
		t.Error("Stats after Close: no error")
	}
}
