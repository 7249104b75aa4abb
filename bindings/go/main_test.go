package capmonster_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// emulatorURL is the base URL of the emulator TestMain starts.
var emulatorURL string

// TestMain starts the project's emulator (../../target/release/capmonster-emulator, or
// $CAPMONSTER_EMULATOR) on a free port for the whole run, and points the examples at it
// through CAPMONSTER_BASE_URL and CAPMONSTER_CLIENT_KEY. With $CAPMONSTER_TEST_EMULATOR_URL
// set, the tests use that already running emulator instead (a fresh one, started with
// --solve-after-ms 200 as here): under Wine a Windows test binary cannot start the Linux one
// (Wine would hand it Windows paths), but reaches its loopback port.
func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	removeBudget, err := useOwnBudget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "the tests' own request budget:", err)
		return 1
	}
	defer removeBudget()
	if url := os.Getenv("CAPMONSTER_TEST_EMULATOR_URL"); url != "" {
		return runWith(m, url)
	}
	// The emulator dies with this thread (Pdeathsig): keep the main goroutine on it.
	runtime.LockOSThread()
	bin := os.Getenv("CAPMONSTER_EMULATOR")
	if bin == "" {
		bin = filepath.Join("..", "..", "target", "release", "capmonster-emulator")
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "the tests need the emulator: %v\n"+
			"build it with `cargo build --release --workspace` at the repository root, or set CAPMONSTER_EMULATOR\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "capmonster-go-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	portFile := filepath.Join(dir, "port")
	cmd := exec.Command(bin, "--port", "0", "--port-file", portFile, "--solve-after-ms", "200")
	cmd.Stderr = os.Stderr
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting the emulator:", err)
		return 1
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()

	var port string
	for deadline := time.Now().Add(10 * time.Second); port == ""; {
		if b, err := os.ReadFile(portFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			port = string(bytes.TrimSpace(b))
			break
		}
		select {
		case <-exited:
			fmt.Fprintln(os.Stderr, "the emulator exited before reporting its port")
			return 1
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "the emulator did not report its port within 10 s")
			return 1
		}
	}
	return runWith(m, "http://127.0.0.1:"+port)
}

// ownBudgetFile is the request budget file of this test process ("" on Windows).
var ownBudgetFile string

// useOwnBudget gives the test process a request budget of its own, so that no test reads or
// writes the user's budget file whoever runs it: on Unix a fresh file in a new temporary
// directory, removed by the function returned; on Windows, where a mapped file cannot be
// removed while its process lives, the budget of this process alone. It runs before any client
// exists, as the library reads these variables once, at the first client (with cgo, os.Setenv
// sets the C environment the library reads; no other thread reads it yet).
func useOwnBudget() (func(), error) {
	if runtime.GOOS == "windows" {
		if err := os.Unsetenv("CAPMONSTER_BUDGET_FILE"); err != nil {
			return nil, err
		}
		return func() {}, os.Setenv("CAPMONSTER_BUDGET", "process")
	}
	dir, err := os.MkdirTemp("", "capmonster-go-test-budget")
	if err != nil {
		return nil, err
	}
	remove := func() { os.RemoveAll(dir) }
	ownBudgetFile = filepath.Join(dir, "budget")
	if err := os.Setenv("CAPMONSTER_BUDGET_FILE", ownBudgetFile); err != nil {
		remove()
		return nil, err
	}
	if err := os.Unsetenv("CAPMONSTER_BUDGET"); err != nil {
		remove()
		return nil, err
	}
	return remove, nil
}

// The clients count in the budget TestMain chose: the file it made, not the user's.
func TestRequestBudgetIsTheTestsOwn(t *testing.T) {
	if runtime.GOOS == "windows" {
		if got := os.Getenv("CAPMONSTER_BUDGET"); got != "process" {
			t.Fatalf("CAPMONSTER_BUDGET=%q, want process", got)
		}
		return
	}
	if got := os.Getenv("CAPMONSTER_BUDGET_FILE"); ownBudgetFile == "" || got != ownBudgetFile {
		t.Fatalf("CAPMONSTER_BUDGET_FILE=%q, want the tests' own file %q", got, ownBudgetFile)
	}
	newClient(t) // the first client opens the budget file, if no test made one before
	if _, err := os.Stat(ownBudgetFile); err != nil {
		t.Fatalf("the budget file is not where the tests put it: %v", err)
	}
}

// runWith runs the tests against the emulator at url.
func runWith(m *testing.M, url string) int {
	emulatorURL = url
	os.Setenv("CAPMONSTER_BASE_URL", emulatorURL)
	os.Setenv("CAPMONSTER_CLIENT_KEY", "go-example-key")
	return m.Run()
}

// Task ids for scripted tasks: far from the ids the emulator hands out (from 1000), one per
// use, so that tests never share a task (scripts and the budget are per task).
var lastTaskID atomic.Int64

func init() { lastTaskID.Store(7_000_000) }

func newTaskID() int64 { return lastTaskID.Add(1) }

var lastKey atomic.Int64

// newKey returns a client key of its own for a test: the library's 120-request budget is
// per (key, task) across the process.
func newKey(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '-'
		}
		return r
	}, t.Name())
	return fmt.Sprintf("go-%s-%d", name, lastKey.Add(1))
}

// newClient returns a client of the emulator with a key of its own, closed after the test.
func newClient(t testing.TB, opts ...capmonster.Option) *capmonster.Client {
	t.Helper()
	client, err := capmonster.NewClient(newKey(t), append([]capmonster.Option{capmonster.WithBaseURL(emulatorURL)}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func control(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, emulatorURL+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s %v", method, path, resp.StatusCode, answer, err)
	}
	return answer
}

// script makes the emulator answer getTaskResult for taskID with steps (the last repeats).
func script(t testing.TB, taskID int64, steps ...any) {
	t.Helper()
	control(t, http.MethodPost, "/_emulator/script", map[string]any{"taskId": taskID, "steps": steps})
}

// scriptMethod scripts every request to an API method until the test ends. Only for tests
// that do not run in parallel: it changes the emulator for every key.
func scriptMethod(t testing.TB, method string, steps ...any) {
	t.Helper()
	control(t, http.MethodPost, "/_emulator/script", map[string]any{"method": method, "steps": steps})
	t.Cleanup(func() {
		control(t, http.MethodPost, "/_emulator/script", map[string]any{"method": method, "steps": []any{}})
	})
}

// requestsFor returns how many getTaskResult requests the emulator received for taskID.
func requestsFor(t testing.TB, taskID int64) int {
	t.Helper()
	var stats struct {
		Tasks map[string]int `json:"tasks"`
	}
	if err := json.Unmarshal(control(t, http.MethodGet, "/_emulator/stats", nil), &stats); err != nil {
		t.Fatal(err)
	}
	return stats.Tasks[strconv.FormatInt(taskID, 10)]
}

// A small base64 PNG for ImageToTextTask (the emulator only needs a non-empty body).
const imageBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

func imageTask() map[string]any {
	return map[string]any{"type": "ImageToTextTask", "body": imageBase64}
}

// fast polls at once and then every 20 ms, for tests of what a wait returns.
func fast() *capmonster.WaitOptions {
	return &capmonster.WaitOptions{FirstDelay: 0, Interval: 20 * time.Millisecond, Timeout: 30 * time.Second, MaxRequests: 120}
}

// The sentinels, named, for tests that check an error matches exactly the expected ones.
var sentinels = map[string]error{
	"ErrInvalidArgument":   capmonster.ErrInvalidArgument,
	"ErrAPI":               capmonster.ErrAPI,
	"ErrNetwork":           capmonster.ErrNetwork,
	"ErrTimeout":           capmonster.ErrTimeout,
	"ErrHTTPStatus":        capmonster.ErrHTTPStatus,
	"ErrBadResponse":       capmonster.ErrBadResponse,
	"ErrBudgetExhausted":   capmonster.ErrBudgetExhausted,
	"ErrCancelled":         capmonster.ErrCancelled,
	"ErrInternal":          capmonster.ErrInternal,
	"ErrCaptchaUnsolvable": capmonster.ErrCaptchaUnsolvable,
	"ErrNoSuchTask":        capmonster.ErrNoSuchTask,
	"ErrZeroBalance":       capmonster.ErrZeroBalance,
	"ErrKeyDoesNotExist":   capmonster.ErrKeyDoesNotExist,
	"ErrClosed":            capmonster.ErrClosed,
}

// wantKinds fails unless err is a *capmonster.Error matching exactly the named sentinels.
func wantKinds(t testing.TB, err error, names ...string) *capmonster.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", names)
	}
	e, ok := err.(*capmonster.Error)
	if !ok {
		t.Fatalf("error %T %v is not a *capmonster.Error", err, err)
	}
	want := map[string]bool{}
	for _, name := range names {
		if sentinels[name] == nil {
			t.Fatalf("no sentinel %s", name)
		}
		want[name] = true
	}
	for name, sentinel := range sentinels {
		if got := errors.Is(err, sentinel); got != want[name] {
			t.Errorf("errors.Is(err, %s) = %v, want %v; err: %v", name, got, want[name], err)
		}
	}
	return e
}
