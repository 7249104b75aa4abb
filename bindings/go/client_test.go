package capmonster_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

func TestVersion(t *testing.T) {
	if v := capmonster.Version(); !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
		t.Errorf("Version() = %q", v)
	}
}

// Sequential: it counts the library clients of the whole package.
func TestNewClientRejectsBadSettings(t *testing.T) {
	before := capmonster.LiveHandles()
	// A temporary file, not t.TempDir: under Wine 8, Go's RemoveAll (TempDir's cleanup) fails
	// with "unlinkat ...: Invalid function" (its POSIX-semantics delete is not implemented
	// there), while os.Remove works. scripts/test-windows-go.sh runs this test under Wine.
	emptyFile, err := os.CreateTemp("", "capmonster-empty-*.pem")
	if err != nil {
		t.Fatal(err)
	}
	empty := emptyFile.Name()
	t.Cleanup(func() {
		if err := os.Remove(empty); err != nil {
			t.Error(err)
		}
	})
	if err := emptyFile.Close(); err != nil {
		t.Fatal(err)
	}
	missing := empty + ".missing"
	cases := []struct {
		name string
		key  string
		opts []capmonster.Option
		says string
	}{
		{"empty key", "", nil, "client_key is empty"},
		{"key with NUL", "abc\x00def", nil, "client_key contains a NUL byte"},
		{"key not UTF-8", "abc\xffdef", nil, "client_key is not valid UTF-8"},
		{"key too long", strings.Repeat("k", 1025), nil, "client_key is longer than 1024 bytes"},
		{"ftp base URL", "key123", []capmonster.Option{capmonster.WithBaseURL("ftp://127.0.0.1/")}, "base_url must start with https://"},
		{"http to a remote host", "key123", []capmonster.Option{capmonster.WithBaseURL("http://example.com")}, "base_url uses http:// to a host that is not loopback"},
		{"not a URL", "key123", []capmonster.Option{capmonster.WithBaseURL("not a url")}, "base_url"},
		{"base URL with NUL", "key123", []capmonster.Option{capmonster.WithBaseURL("https://a\x00b")}, "base_url contains a NUL byte"},
		{"zero request timeout", "key123", []capmonster.Option{capmonster.WithRequestTimeout(0)}, "timeout_ms must be at least 1"},
		{"negative request timeout", "key123", []capmonster.Option{capmonster.WithRequestTimeout(-time.Second)}, "timeout_ms must be at least 1"},
		{"bad proxy scheme", "key123", []capmonster.Option{capmonster.WithProxy("gopher://user:hunter2@127.0.0.1:70")}, "proxy_url must start with http://"},
		{"empty proxy", "key123", []capmonster.Option{capmonster.WithProxy("")}, "proxy_url is empty"},
		{"missing CA file", "key123", []capmonster.Option{capmonster.WithCAFile(missing)}, "ca_file"},
		{"empty CA file", "key123", []capmonster.Option{capmonster.WithCAFile(empty)}, "ca_file"},
		{"zero max connections", "key123", []capmonster.Option{capmonster.WithMaxConnections(0)}, "max_connections must be at least 1"},
		{"negative max connections", "key123", []capmonster.Option{capmonster.WithMaxConnections(-3)}, "max_connections"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, err := capmonster.NewClient(c.key, c.opts...)
			if client != nil {
				client.Close()
				t.Fatal("got a client")
			}
			e := wantKinds(t, err, "ErrInvalidArgument")
			if !strings.Contains(e.Message, c.says) {
				t.Errorf("message %q does not say %q", e.Message, c.says)
			}
			// The library's message as it is: nothing added, nothing reworded.
			if want := "capmonster: CM_ERR_INVALID_ARGUMENT: " + e.Message; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if e.Requests != 0 || e.HTTPStatus != 0 || e.TaskID != 0 {
				t.Errorf("got %+v", e)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the proxy password: %v", err)
			}
		})
	}
	if after := capmonster.LiveHandles(); after != before {
		t.Errorf("%d library clients before, %d after: a failed NewClient leaked one", before, after)
	}
}

// The library's own message, word for word, for a refused base URL: the binding adds no
// wording of its own.
func TestBadBaseURLCarriesTheLibrarysMessage(t *testing.T) {
	t.Parallel()
	_, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL("ftp://127.0.0.1/"))
	e := wantKinds(t, err, "ErrInvalidArgument")
	if e.Code != capmonster.CodeInvalidArgument ||
		e.Message != "base_url must start with https:// (or http:// to a loopback host)" {
		t.Errorf("got %+v", e)
	}
}

func TestWithEngine(t *testing.T) {
	t.Parallel()
	_, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL(emulatorURL), capmonster.WithEngine(7))
	if e := wantKinds(t, err, "ErrInvalidArgument"); e.Message != "engine must be CM_ENGINE_EVENT_LOOP (1) or CM_ENGINE_THREADS (2), got 7" {
		t.Errorf("message %q is not the library's", e.Message)
	}
	// Each engine waits a task to its solution.
	for _, engine := range []capmonster.Engine{capmonster.EngineEventLoop, capmonster.EngineThreads} {
		client := newClient(t, capmonster.WithEngine(engine))
		id, err := client.CreateTask(context.Background(), imageTask(), "")
		if err != nil {
			t.Fatal(err)
		}
		opts := &capmonster.WaitOptions{Interval: 20 * time.Millisecond, Timeout: 30 * time.Second, MaxRequests: 120}
		if res, err := client.WaitResult(context.Background(), id, opts); err != nil || !res.Ready {
			t.Errorf("engine %d: %+v, %v", engine, res, err)
		}
	}
}

func TestWithMaxConnections(t *testing.T) {
	t.Parallel()
	_, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL(emulatorURL), capmonster.WithMaxConnections(0))
	if e := wantKinds(t, err, "ErrInvalidArgument"); !strings.Contains(e.Message, "max_connections") {
		t.Errorf("message %q does not name max_connections", e.Message)
	}

	// One connection for 8 goroutines: the calls take turns, all succeed.
	client := newClient(t, capmonster.WithMaxConnections(1))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if balance, err := client.GetBalance(context.Background()); err != nil || balance != 345.678 {
				errs <- errors.Join(err, errors.New("bad balance"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseTwice(t *testing.T) {
	client, err := capmonster.NewClient("key-close-twice")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestUseAfterClose(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	client.Close()
	ctx := context.Background()
	_, err := client.GetTaskResult(ctx, 1)
	wantKinds(t, err, "ErrClosed", "ErrInvalidArgument")
	_, err = client.WaitResult(ctx, 1, nil)
	wantKinds(t, err, "ErrClosed", "ErrInvalidArgument")
	_, err = client.CreateTask(ctx, imageTask(), "")
	wantKinds(t, err, "ErrClosed", "ErrInvalidArgument")
	_, err = client.GetBalance(ctx)
	wantKinds(t, err, "ErrClosed", "ErrInvalidArgument")
	if !strings.Contains(err.Error(), "closed") {
		t.Errorf("Error() = %q", err)
	}
}

// Close cancels a wait in progress, and returns once it has.
func TestCloseEndsWaitsInProgress(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	id := newTaskID()
	script(t, id, "processing")
	opts := capmonster.WaitOptions{FirstDelay: 0, Interval: time.Second, Timeout: time.Minute, MaxRequests: 120}
	errs := make(chan error, 1)
	go func() {
		_, err := client.WaitResult(context.Background(), id, &opts)
		errs <- err
	}()
	for requestsFor(t, id) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	client.Close()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Close took %v", elapsed)
	}
	select {
	case err := <-errs:
		// The library's message as it is; the error says the client was closed.
		e := wantKinds(t, err, "ErrClosed", "ErrCancelled")
		if !strings.Contains(e.Message, "cancelled") || !strings.Contains(err.Error(), "closed") ||
			errors.Is(err, context.Canceled) || e.Requests != 1 || e.TaskID != id {
			t.Errorf("got %+v (%v)", e, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end")
	}
}

// Many goroutines call while others close: every call returns (success, or an error of a
// closed client), nothing crashes, the race detector stays quiet.
func TestConcurrentCloseDuringCalls(t *testing.T) {
	t.Parallel()
	for round := range 5 {
		client := newClient(t)
		waiting := newTaskID()
		script(t, waiting, "processing")
		var wg sync.WaitGroup
		errs := make(chan error, 1000)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for i := 0; ; i++ {
					var err error
					switch (g + i) % 4 {
					case 0:
						_, err = client.GetBalance(ctx)
					case 1:
						_, err = client.GetTaskResult(ctx, 800_000_000+int64(round*100000+g*1000+i))
						if errors.Is(err, capmonster.ErrNoSuchTask) {
							err = nil
						}
					case 2:
						// Polls once, then sleeps until Close cancels it.
						opts := capmonster.WaitOptions{Interval: 5 * time.Second, Timeout: time.Minute, MaxRequests: 120}
						_, err = client.WaitResult(ctx, waiting, &opts)
					case 3:
						_, err = client.CreateTask(ctx, imageTask(), "")
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		var closers sync.WaitGroup
		for range 3 {
			closers.Add(1)
			go func() {
				defer closers.Done()
				client.Close()
			}()
		}
		closers.Wait()
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, capmonster.ErrClosed) {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
}

// 32 goroutines share one client: each creates a task, waits for it and decodes it.
func TestOneClientManyGoroutines(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	const n = 32
	var wg sync.WaitGroup
	ids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id, err := client.CreateTask(ctx, imageTask(), "")
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = id
			opts := capmonster.WaitOptionsFor("ImageToTextTask")
			res, err := client.WaitResult(ctx, id, &opts)
			if err != nil {
				errs[i] = err
				return
			}
			var solution struct{ Text string }
			if err := res.Decode(&solution); err != nil || solution.Text != "answer" || res.TaskID != id {
				errs[i] = errors.Join(err, errors.New("solution "+string(res.Solution)))
				return
			}
			if balance, err := client.GetBalance(ctx); err != nil || balance != 345.678 {
				errs[i] = errors.Join(err, errors.New("bad balance"))
			}
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
		if seen[ids[i]] {
			t.Errorf("task id %d twice", ids[i])
		}
		seen[ids[i]] = true
	}
}

// Sequential: it counts the library clients of the whole package.
func TestFinalizerFreesUnclosedClients(t *testing.T) {
	before := capmonster.LiveHandles()
	func() {
		for range 10 {
			if _, err := capmonster.NewClient("key-never-closed"); err != nil {
				t.Fatal(err)
			}
		}
	}()
	if capmonster.LiveHandles() != before+10 {
		t.Fatalf("%d library clients, want %d", capmonster.LiveHandles(), before+10)
	}
	for deadline := time.Now().Add(10 * time.Second); capmonster.LiveHandles() != before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d library clients left after GC, want %d", capmonster.LiveHandles(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// Sequential: it sets proxy variables in the environment.
func TestProxySettings(t *testing.T) {
	for _, name := range []string{"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	// A proxy that refuses connections: going through it is a network error naming it.
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	ctx := context.Background()

	fromEnvironment := newClient(t)
	_, err := fromEnvironment.GetBalance(ctx)
	if e := wantKinds(t, err, "ErrNetwork"); !strings.Contains(e.Message, "proxy") {
		t.Errorf("message %q does not name the proxy", e.Message)
	}

	direct := newClient(t, capmonster.WithoutProxy())
	if balance, err := direct.GetBalance(ctx); err != nil || balance != 345.678 {
		t.Errorf("WithoutProxy: %v, %v", balance, err)
	}

	os.Unsetenv("http_proxy")
	explicit := newClient(t, capmonster.WithProxy("http://user:hunter2@127.0.0.1:1"))
	_, err = explicit.GetBalance(ctx)
	e := wantKinds(t, err, "ErrNetwork")
	if !strings.Contains(e.Message, "proxy") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("message %q: want the proxy named, without its password", e.Message)
	}
}

// Sequential: it sets proxy variables in the environment. A malformed proxy variable does not
// make NewClient fail; the calls that would use it fail, naming the variable, sending nothing.
func TestMalformedProxyInTheEnvironment(t *testing.T) {
	for _, name := range []string{"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	t.Setenv("http_proxy", "http://[bad")
	t.Setenv("https_proxy", "http://[bad")
	ctx := context.Background()

	check := func(t *testing.T, client *capmonster.Client, variable string) {
		t.Helper()
		_, err := client.GetBalance(ctx)
		e := wantKinds(t, err, "ErrInvalidArgument")
		if !strings.Contains(e.Message, variable) || e.Requests != 0 {
			t.Errorf("got %+v, want the message to name %s and nothing sent", e, variable)
		}
		// A deadline-bound call too.
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = client.GetTaskResult(short, newTaskID())
		if e := wantKinds(t, err, "ErrInvalidArgument"); !strings.Contains(e.Message, variable) {
			t.Errorf("deadline-bound call: message %q does not name %s", e.Message, variable)
		}
	}

	t.Run("emulator", func(t *testing.T) {
		client, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL(emulatorURL))
		if err != nil {
			t.Fatalf("NewClient failed because of the environment: %v", err)
		}
		defer client.Close()
		check(t, client, "http_proxy")
	})
	t.Run("official service", func(t *testing.T) {
		client, err := capmonster.NewClient(newKey(t), capmonster.WithRequestTimeout(2*time.Second))
		if err != nil {
			t.Fatalf("NewClient failed because of the environment: %v", err)
		}
		defer client.Close()
		check(t, client, "https_proxy")
	})
	t.Run("without proxy", func(t *testing.T) {
		direct := newClient(t, capmonster.WithoutProxy())
		if balance, err := direct.GetBalance(ctx); err != nil || balance != 345.678 {
			t.Errorf("WithoutProxy: %v, %v", balance, err)
		}
	})
}

func TestClientStringHidesTheKey(t *testing.T) {
	client, err := capmonster.NewClient("secret-key-1234567890")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if s := client.String(); strings.Contains(s, "secret") || s != "capmonster.Client(official service)" {
		t.Errorf("String() = %q", s)
	}
	emulator := newClient(t)
	if s := emulator.String(); s != "capmonster.Client("+strconv.Quote(emulatorURL)+")" {
		t.Errorf("String() = %q", s)
	}
}

// SetBudget after the tests' first client: the library refuses, in its own words, and checks
// the value first. (The choice before a first client is tested in C, Rust and Python, each in
// a process of its own.)
func TestSetBudgetAfterTheFirstClient(t *testing.T) {
	newClient(t)
	for budget, says := range map[string]string{
		"process":  "a client was already created",
		"nonsense": `"nonsense"`,
	} {
		err := capmonster.SetBudget(budget)
		var e *capmonster.Error
		if !errors.As(err, &e) || e.Code != capmonster.CodeInvalidArgument || !strings.Contains(e.Message, says) {
			t.Errorf("SetBudget(%q): %v", budget, err)
		}
	}
}
