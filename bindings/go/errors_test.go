package capmonster_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

func TestCodesMirrorTheHeader(t *testing.T) {
	codes := []struct {
		code  capmonster.Code
		value int32
		name  string
	}{
		{capmonster.CodeOK, 0, "CM_OK"},
		{capmonster.CodeInvalidArgument, 1, "CM_ERR_INVALID_ARGUMENT"},
		{capmonster.CodeAPI, 2, "CM_ERR_API"},
		{capmonster.CodeNetwork, 3, "CM_ERR_NETWORK"},
		{capmonster.CodeTimeout, 4, "CM_ERR_TIMEOUT"},
		{capmonster.CodeHTTPStatus, 5, "CM_ERR_HTTP_STATUS"},
		{capmonster.CodeBadResponse, 6, "CM_ERR_BAD_RESPONSE"},
		{capmonster.CodeBudgetExhausted, 7, "CM_ERR_BUDGET_EXHAUSTED"},
		{capmonster.CodeCancelled, 8, "CM_ERR_CANCELLED"},
		{capmonster.CodeInternal, 9, "CM_ERR_INTERNAL"},
	}
	for _, c := range codes {
		if int32(c.code) != c.value || c.code.String() != c.name {
			t.Errorf("%d %q, want %d %q", int32(c.code), c.code.String(), c.value, c.name)
		}
	}
	if got := capmonster.Code(42).String(); got != "CM_ERR_UNKNOWN(42)" {
		t.Errorf("Code(42) = %q", got)
	}
}

// One sentinel per code of the library's glossary, each matching its code alone (and every
// spelling the library counts as that code); none for CAPTCHA_NOT_READY, which is no error.
func TestAPISentinelsCoverTheGlossary(t *testing.T) {
	t.Parallel()
	codes := capmonster.Glossary()
	if len(codes) != 26 || !slices.Contains(codes, "ERROR_NO_SUCH_CAPCHA_ID") {
		t.Fatalf("glossary %v", codes)
	}
	matched := map[error]int{}
	for _, code := range codes {
		if capmonster.APIErrorKind(code) != code {
			t.Errorf("APIErrorKind(%q) = %q", code, capmonster.APIErrorKind(code))
		}
		e := &capmonster.Error{Code: capmonster.CodeAPI, APICode: code}
		var hits []error
		for _, s := range capmonster.APISentinels {
			if errors.Is(e, s) {
				hits = append(hits, s)
				matched[s]++
			}
		}
		want := 1
		if code == "CAPTCHA_NOT_READY" {
			want = 0
		}
		if len(hits) != want {
			t.Errorf("%s: matched by %v", code, hits)
		}
	}
	for _, s := range capmonster.APISentinels {
		if matched[s] != 1 {
			t.Errorf("%v matches %d glossary codes", s, matched[s])
		}
	}
	wrong := &capmonster.Error{Code: capmonster.CodeAPI, APICode: "WRONG_CAPTCHA_ID"}
	if !errors.Is(wrong, capmonster.ErrNoSuchTask) || capmonster.APIErrorKind("WRONG_CAPTCHA_ID") != "ERROR_NO_SUCH_CAPCHA_ID" {
		t.Error("WRONG_CAPTCHA_ID is not ErrNoSuchTask")
	}
	for _, other := range []string{"", "ERROR_FROM_THE_FUTURE", "a\x00b", "\xff"} {
		if kind := capmonster.APIErrorKind(other); kind != "" {
			t.Errorf("APIErrorKind(%q) = %q", other, kind)
		}
	}
	if errors.Is(&capmonster.Error{Code: capmonster.CodeNetwork, APICode: "ERROR_ZERO_BALANCE"}, capmonster.ErrZeroBalance) {
		t.Error("a sentinel of the service's errors matched another code")
	}
}

// Every API error the callers handle, through GetTaskResult and WaitResult.
func TestAPIErrorSentinels(t *testing.T) {
	t.Parallel()
	cases := []struct {
		apiCode string
		status  int
		kinds   []string
	}{
		{"ERROR_CAPTCHA_UNSOLVABLE", 200, []string{"ErrAPI", "ErrCaptchaUnsolvable"}},
		{"ERROR_NO_SUCH_CAPCHA_ID", 200, []string{"ErrAPI", "ErrNoSuchTask"}},
		{"WRONG_CAPTCHA_ID", 200, []string{"ErrAPI", "ErrNoSuchTask"}},
		{"ERROR_ZERO_BALANCE", 402, []string{"ErrAPI", "ErrZeroBalance"}},
		{"ERROR_KEY_DOES_NOT_EXIST", 403, []string{"ErrAPI", "ErrKeyDoesNotExist"}},
		{"ERROR_FROM_THE_FUTURE", 200, []string{"ErrAPI"}},
	}
	for _, c := range cases {
		t.Run(c.apiCode, func(t *testing.T) {
			t.Parallel()
			client := newClient(t)
			description := "what the service says\nover two lines"
			check := func(err error, taskID int64, requests int) {
				t.Helper()
				e := wantKinds(t, err, c.kinds...)
				if e.Code != capmonster.CodeAPI || e.APICode != c.apiCode || e.Description != description ||
					e.HTTPStatus != c.status || e.Requests != requests || e.TaskID != taskID {
					t.Errorf("got %+v", e)
				}
				if !strings.Contains(e.Message, c.apiCode) {
					t.Errorf("message %q does not name %s", e.Message, c.apiCode)
				}
				text := err.Error()
				if !strings.HasPrefix(text, "capmonster: CM_ERR_API: ") || strings.ContainsAny(text, "\r\n") {
					t.Errorf("Error() = %q, want one line starting with capmonster: CM_ERR_API", text)
				}
			}
			step := map[string]any{"error": c.apiCode, "description": description, "status": c.status}

			id := newTaskID()
			script(t, id, step)
			_, err := client.GetTaskResult(context.Background(), id)
			check(err, id, 1)

			// A client of another key: the account guard stops a key the service refused.
			id = newTaskID()
			script(t, id, "processing", "processing", step)
			_, err = newClient(t).WaitResult(context.Background(), id, fast())
			check(err, id, 3)
		})
	}
}

// Sequential: the method script answers every getBalance and createTask.
func TestAPIErrorsOfGetBalanceAndCreateTask(t *testing.T) {
	client := newClient(t)
	scriptMethod(t, "getBalance", map[string]any{"error": "ERROR_ZERO_BALANCE", "status": 402})
	_, err := client.GetBalance(context.Background())
	if e := wantKinds(t, err, "ErrAPI", "ErrZeroBalance"); e.HTTPStatus != 402 || e.Requests != 1 {
		t.Errorf("got %+v", e)
	}

	// A client of another key: the account guard holds createTask of a key at zero balance.
	client = newClient(t)
	scriptMethod(t, "createTask", map[string]any{"json": map[string]any{"errorId": 1, "errorCode": "ERROR_KEY_DOES_NOT_EXIST", "taskId": 0}})
	id, err := client.CreateTask(context.Background(), imageTask(), "")
	if e := wantKinds(t, err, "ErrAPI", "ErrKeyDoesNotExist"); id != 0 || e.TaskID != 0 || e.Description != "" {
		t.Errorf("got %d, %+v", id, e)
	}
}

func TestTransportSentinels(t *testing.T) {
	t.Parallel()
	t.Run("network", func(t *testing.T) {
		t.Parallel()
		// Nothing listens on port 1.
		client, err := capmonster.NewClient(newKey(t), capmonster.WithBaseURL("http://127.0.0.1:1"), capmonster.WithoutProxy())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		_, err = client.GetBalance(context.Background())
		if e := wantKinds(t, err, "ErrNetwork"); e.HTTPStatus != 0 || e.Requests != 1 {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("http status", func(t *testing.T) {
		t.Parallel()
		id := newTaskID()
		script(t, id, map[string]any{"raw": "<html>gone</html>", "status": 404, "content_type": "text/html"})
		_, err := newClient(t).GetTaskResult(context.Background(), id)
		if e := wantKinds(t, err, "ErrHTTPStatus"); e.HTTPStatus != 404 || e.TaskID != id {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("bad response", func(t *testing.T) {
		t.Parallel()
		id := newTaskID()
		script(t, id, map[string]any{"raw": "not json"})
		_, err := newClient(t).GetTaskResult(context.Background(), id)
		if e := wantKinds(t, err, "ErrBadResponse"); e.HTTPStatus != 200 {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("request timeout", func(t *testing.T) {
		t.Parallel()
		id := newTaskID()
		script(t, id, map[string]any{"fault": "stall", "ms": 10000})
		client := newClient(t, capmonster.WithRequestTimeout(300*time.Millisecond))
		start := time.Now()
		_, err := client.GetTaskResult(context.Background(), id)
		wantKinds(t, err, "ErrTimeout")
		if errors.Is(err, context.DeadlineExceeded) {
			t.Error("a request timeout is not a context deadline")
		}
		if elapsed := time.Since(start); elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("returned after %v, want about 300 ms", elapsed)
		}
	})
	t.Run("wait timeout", func(t *testing.T) {
		t.Parallel()
		id := newTaskID()
		script(t, id, "processing")
		opts := fast()
		opts.Timeout = 500 * time.Millisecond
		start := time.Now()
		_, err := newClient(t).WaitResult(context.Background(), id, opts)
		e := wantKinds(t, err, "ErrTimeout")
		if errors.Is(err, context.DeadlineExceeded) || e.Requests < 2 {
			t.Errorf("got %+v", e)
		}
		if elapsed := time.Since(start); elapsed < 450*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("returned after %v, want about 500 ms", elapsed)
		}
	})
	t.Run("wait max requests", func(t *testing.T) {
		t.Parallel()
		id := newTaskID()
		script(t, id, "processing")
		opts := fast()
		opts.MaxRequests = 3
		_, err := newClient(t).WaitResult(context.Background(), id, opts)
		if e := wantKinds(t, err, "ErrBudgetExhausted"); e.Requests != 3 {
			t.Errorf("got %+v", e)
		}
		if n := requestsFor(t, id); n != 3 {
			t.Errorf("the emulator saw %d requests, want 3", n)
		}
	})
}

// The library never sends a task's 121st getTaskResult for one key, whichever client asks.
func TestBudgetOf120RequestsPerTask(t *testing.T) {
	t.Parallel()
	id := newTaskID()
	script(t, id, "processing")
	key := newKey(t)
	client, err := capmonster.NewClient(key, capmonster.WithBaseURL(emulatorURL))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	for i := range 120 {
		if res, err := client.GetTaskResult(ctx, id); err != nil || res.Ready {
			t.Fatalf("request %d: %+v, %v", i+1, res, err)
		}
	}
	_, err = client.GetTaskResult(ctx, id)
	if e := wantKinds(t, err, "ErrBudgetExhausted"); e.Requests != 0 {
		t.Errorf("got %+v", e)
	}
	_, err = client.WaitResult(ctx, id, fast())
	wantKinds(t, err, "ErrBudgetExhausted")

	// Another client with the same key shares the budget; another key has its own.
	same, err := capmonster.NewClient(key, capmonster.WithBaseURL(emulatorURL))
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	_, err = same.GetTaskResult(ctx, id)
	wantKinds(t, err, "ErrBudgetExhausted")
	if _, err := newClient(t).GetTaskResult(ctx, id); err != nil {
		t.Errorf("another key: %v", err)
	}
	if n := requestsFor(t, id); n != 121 {
		t.Errorf("the emulator saw %d requests, want 121", n)
	}
}

func TestErrorValue(t *testing.T) {
	internal := &capmonster.Error{Code: capmonster.CodeInternal, Message: "a panic\ncaught"}
	if !errors.Is(internal, capmonster.ErrInternal) || errors.Is(internal, capmonster.ErrAPI) {
		t.Error("ErrInternal")
	}
	if got := internal.Error(); got != "capmonster: CM_ERR_INTERNAL: a panic caught" {
		t.Errorf("Error() = %q", got)
	}
	if internal.Unwrap() != nil {
		t.Error("Unwrap of a library error")
	}
	// A sentinel is a kind, not an *Error.
	var e *capmonster.Error
	if errors.As(capmonster.ErrTimeout, &e) {
		t.Error("a sentinel is an *Error")
	}
	if got := capmonster.ErrCaptchaUnsolvable.Error(); got != "capmonster: captcha unsolvable" {
		t.Errorf("sentinel text %q", got)
	}
	wrapped := errors.Join(errors.New("context"), &capmonster.Error{Code: capmonster.CodeAPI, APICode: "WRONG_CAPTCHA_ID"})
	if !errors.Is(wrapped, capmonster.ErrNoSuchTask) {
		t.Error("errors.Is through a wrapper")
	}
}

// A call the account guard answers is the service's answer as Go code handles it (errors.Is,
// the API code and description), with no request; EndStops lets calls out again.
func TestGuardAnswersAsTheServiceDid(t *testing.T) {
	client := newClient(t)
	scriptMethod(t, "createTask", map[string]any{"error": "ERROR_ZERO_BALANCE", "description": "no money", "status": 402})
	_, err := client.CreateTask(context.Background(), imageTask(), "")
	if e := wantKinds(t, err, "ErrAPI", "ErrZeroBalance"); e.Requests != 1 || e.HTTPStatus != 402 {
		t.Fatalf("the service's answer: %+v", e)
	}
	_, err = client.CreateTask(context.Background(), imageTask(), "")
	e := wantKinds(t, err, "ErrAPI", "ErrZeroBalance")
	if e.Requests != 0 || e.HTTPStatus != 0 || e.Description != "no money" || !strings.Contains(e.Message, "was not sent") {
		t.Errorf("the guard's answer: %+v", e)
	}
	if err := client.EndStops(); err != nil {
		t.Fatal(err)
	}
	_, err = client.CreateTask(context.Background(), imageTask(), "")
	if e := wantKinds(t, err, "ErrAPI", "ErrZeroBalance"); e.Requests != 1 {
		t.Errorf("after EndStops the call goes out: %+v", e)
	}
	client.Close()
	if err := client.EndStops(); !errors.Is(err, capmonster.ErrClosed) {
		t.Errorf("EndStops after Close: %v", err)
	}
}
