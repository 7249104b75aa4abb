package capmonster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

func TestCreateWaitDecode(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := context.Background()
	id, err := client.CreateTask(ctx, imageTask(), "")
	if err != nil || id <= 0 {
		t.Fatalf("CreateTask: %d, %v", id, err)
	}
	opts := capmonster.WaitOptionsFor("ImageToTextTask")
	res, err := client.WaitResult(ctx, id, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Ready || res.TaskID != id || res.Requests < 1 || res.HTTPStatus != 200 {
		t.Errorf("got %+v", res)
	}
	var solution struct {
		Text string `json:"text"`
	}
	if err := res.Decode(&solution); err != nil || solution.Text != "answer" {
		t.Errorf("Decode: %+v, %v", solution, err)
	}
	if text, ok := res.SolutionString("text"); !ok || text != "answer" {
		t.Errorf("SolutionString: %q, %v", text, ok)
	}
	if string(res.Solution) != `{"text":"answer"}` {
		t.Errorf("Solution = %s", res.Solution)
	}
}

func TestCreateTaskAcceptsEveryForm(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	type imageToText struct {
		Type string `json:"type"`
		Body string `json:"body"`
		Case bool   `json:"case,omitempty"`
	}
	text := `{"type":"ImageToTextTask","body":"` + imageBase64 + `"}`
	forms := map[string]any{
		"struct":          imageToText{Type: "ImageToTextTask", Body: imageBase64, Case: true},
		"struct pointer":  &imageToText{Type: "ImageToTextTask", Body: imageBase64},
		"map":             imageTask(),
		"string":          text,
		"bytes":           []byte(text),
		"json.RawMessage": json.RawMessage(text),
	}
	seen := map[int64]bool{}
	for name, task := range forms {
		id, err := client.CreateTask(context.Background(), task, "")
		if err != nil || id <= 0 || seen[id] {
			t.Errorf("%s: %d, %v", name, id, err)
		}
		seen[id] = true
	}
	if id, err := client.CreateTask(context.Background(), imageTask(), "https://example.com/callback"); err != nil || id <= 0 {
		t.Errorf("with a callback URL: %d, %v", id, err)
	}
}

func TestCreateTaskAndSchedule(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	id, opts, err := client.CreateTaskAndSchedule(context.Background(), imageTask(), "")
	want := capmonster.WaitOptions{FirstDelay: 350 * time.Millisecond, Interval: 200 * time.Millisecond, Timeout: 10 * time.Second, MaxRequests: 120}
	if err != nil || id <= 0 || opts != want {
		t.Fatalf("%d, %+v, %v", id, opts, err)
	}
	res, err := client.WaitResult(context.Background(), id, &opts)
	if err != nil || !res.Ready {
		t.Fatalf("%+v, %v", res, err)
	}
	id, opts, err = client.CreateTaskAndSchedule(context.Background(), `{"class":"Imperva"}`, "")
	if id != 0 || opts != (capmonster.WaitOptions{}) {
		t.Errorf("%d, %+v", id, opts)
	}
	wantKinds(t, err, "ErrInvalidArgument")
}

func TestCreateTaskRejectsBadTasks(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := context.Background()
	cases := map[string]any{
		"nil":                nil,
		"channel":            make(chan int),
		"function field":     map[string]any{"type": "ImageToTextTask", "f": func() {}},
		"NaN":                map[string]any{"type": "ImageToTextTask", "x": math.NaN()},
		"not JSON":           "{not json",
		"an array":           []any{"ImageToTextTask"},
		"no type":            map[string]any{"body": imageBase64},
		"a number as type":   map[string]any{"type": 5},
		"NUL in JSON text":   "{\"type\":\"ImageToTextTask\",\"body\":\"a\x00b\"}",
		"empty JSON text":    "",
		"empty bytes":        []byte{},
		"JSON null as bytes": json.RawMessage("null"),
	}
	for name, task := range cases {
		id, err := client.CreateTask(ctx, task, "")
		if id != 0 {
			t.Errorf("%s: id %d", name, id)
		}
		wantKinds(t, err, "ErrInvalidArgument")
	}
	// encoding/json's error is there to inspect.
	_, err := client.CreateTask(ctx, make(chan int), "")
	var unsupported *json.UnsupportedTypeError
	if !errors.As(err, &unsupported) {
		t.Errorf("errors.As(%v, *json.UnsupportedTypeError) failed", err)
	}
	_, err = client.CreateTask(ctx, imageTask(), "ftp://example.com/callback")
	wantKinds(t, err, "ErrInvalidArgument")
	_, err = client.CreateTask(ctx, imageTask(), "https://example.com/\x00")
	wantKinds(t, err, "ErrInvalidArgument")

	// The service refuses what the library cannot know about.
	_, err = client.CreateTask(ctx, map[string]any{"type": "NoSuchTaskType"}, "")
	if e := wantKinds(t, err, "ErrAPI"); e.APICode != "ERROR_TASK_NOT_SUPPORTED" {
		t.Errorf("got %+v", e)
	}
}

func TestGetTaskResultProcessingThenReady(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	id := newTaskID()
	script(t, id, "processing", map[string]any{"ready": map[string]any{"text": "abc"}})
	ctx := context.Background()

	res, err := client.GetTaskResult(ctx, id)
	if err != nil || res.Ready || res.Solution != nil || res.TaskID != id || res.Requests != 1 || res.HTTPStatus != 200 {
		t.Fatalf("processing: %+v, %v", res, err)
	}
	var v map[string]any
	if err := res.Decode(&v); !errors.Is(err, capmonster.ErrNotReady) {
		t.Errorf("Decode of a processing task: %v", err)
	}
	if _, ok := res.SolutionString("text"); ok {
		t.Error("SolutionString of a processing task")
	}

	res, err = client.GetTaskResult(ctx, id)
	if err != nil || !res.Ready {
		t.Fatalf("ready: %+v, %v", res, err)
	}
	if err := res.Decode(&v); err != nil || v["text"] != "abc" {
		t.Errorf("Decode: %v, %v", v, err)
	}
	var wrong struct{ Text int }
	if err := res.Decode(&wrong); err == nil || errors.Is(err, capmonster.ErrNotReady) {
		t.Errorf("Decode into the wrong type: %v", err)
	}
}

func TestInvalidTaskIDs(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	ctx := context.Background()
	for _, id := range []int64{0, -5, math.MinInt64} {
		_, err := client.GetTaskResult(ctx, id)
		if e := wantKinds(t, err, "ErrInvalidArgument"); e.Requests != 0 || !strings.Contains(e.Message, "task_id") {
			t.Errorf("GetTaskResult(%d): %+v", id, e)
		}
		_, err = client.WaitResult(ctx, id, fast())
		if e := wantKinds(t, err, "ErrInvalidArgument"); e.Requests != 0 || !strings.Contains(e.Message, "task_id") {
			t.Errorf("WaitResult(%d): %+v", id, e)
		}
	}
}

func TestGetBalance(t *testing.T) {
	t.Parallel()
	balance, err := newClient(t).GetBalance(context.Background())
	if err != nil || balance != 345.678 {
		t.Errorf("GetBalance: %v, %v", balance, err)
	}
}

// Every ready solution of the documentation's examples comes back as the service sent it,
// with its string members readable through SolutionString.
func TestDocsExampleSolutions(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	solutions := docsSolutions(t)
	if len(solutions) < 20 {
		t.Fatalf("only %d ready examples in the fixture", len(solutions))
	}
	for name, solution := range solutions {
		res := scriptedReady(t, client, solution)
		if !bytes.Equal(res.Solution, solution) {
			t.Errorf("%s: got %s, want %s", name, res.Solution, solution)
		}
		var members map[string]any
		if err := res.Decode(&members); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for member, value := range members {
			s, ok := res.SolutionString(member)
			if text, isString := value.(string); ok != isString || s != text {
				t.Errorf("%s: SolutionString(%q) = %q, %v; the member is %#v", name, member, s, ok, value)
			}
		}
	}
}

// Typed decoding of the main solution shapes of the documentation.
func TestDecodeDocsShapes(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	solutions := docsSolutions(t)
	ready := func(page string, index int) *capmonster.TaskResult {
		t.Helper()
		solution, ok := solutions[page+"#"+strconv.Itoa(index)]
		if !ok {
			t.Fatalf("no example %s#%d in the fixture", page, index)
		}
		return scriptedReady(t, client, solution)
	}

	var image struct{ Text string }
	decode(t, ready("image-to-text", 1), &image)
	if image.Text != "answer" {
		t.Errorf("ImageToText: %+v", image)
	}

	var recaptcha struct {
		GRecaptchaResponse string            `json:"gRecaptchaResponse"`
		UserAgent          string            `json:"userAgent"`
		Cookies            map[string]string `json:"cookies"`
	}
	res := ready("no-captcha-task", 2)
	decode(t, res, &recaptcha)
	if recaptcha.GRecaptchaResponse != "0cAFcWeA5Y3...hF8UWA" || recaptcha.Cookies["nocookies"] != "true" ||
		!strings.HasPrefix(recaptcha.UserAgent, "Mozilla/5.0") {
		t.Errorf("reCAPTCHA: %+v", recaptcha)
	}
	if s, ok := res.SolutionString("gRecaptchaResponse"); !ok || s != recaptcha.GRecaptchaResponse {
		t.Errorf("SolutionString(gRecaptchaResponse) = %q, %v", s, ok)
	}
	if _, ok := res.SolutionString("cookies"); ok {
		t.Error("SolutionString of an object member")
	}

	var geeTestV3 struct{ Challenge, Validate, Seccode string }
	decode(t, ready("geetest-task", 1), &geeTestV3)
	if geeTestV3.Challenge != "0f759dd1ea6c4wc76cedc2991039ca4f23" || !strings.HasSuffix(geeTestV3.Seccode, "|jordan") {
		t.Errorf("GeeTest v3: %+v", geeTestV3)
	}
	var geeTestV4 struct {
		CaptchaID     string `json:"captcha_id"`
		LotNumber     string `json:"lot_number"`
		PassToken     string `json:"pass_token"`
		GenTime       string `json:"gen_time"`
		CaptchaOutput string `json:"captcha_output"`
	}
	decode(t, ready("geetest-task", 2), &geeTestV4)
	if geeTestV4.CaptchaID != "f5c2ad5a8a3cf37192d8b9c039950f79" || geeTestV4.GenTime != "1683794919" {
		t.Errorf("GeeTest v4: %+v", geeTestV4)
	}

	type metadata struct {
		AnswerType string
	}
	var grid struct {
		Answer   []bool
		Metadata metadata
	}
	decode(t, ready("ComplexImageTask-Recognition", 4), &grid)
	if !reflect.DeepEqual(grid.Answer, []bool{true, true, false, false, true, false, false, true, true}) ||
		grid.Metadata.AnswerType != "Grid" {
		t.Errorf("ComplexImage grid: %+v", grid)
	}
	var numbers struct{ Answer []float64 }
	decode(t, ready("ComplexImageTask-Recognition", 1), &numbers)
	if !reflect.DeepEqual(numbers.Answer, []float64{130.90909}) {
		t.Errorf("ComplexImage numbers: %+v", numbers)
	}
	var counts struct{ Answer []int }
	decode(t, ready("ComplexImageTask-Recognition", 2), &counts)
	if !reflect.DeepEqual(counts.Answer, []int{4, 4, 4, 4, 4, 3, 1, 2, 2}) {
		t.Errorf("ComplexImage counts: %+v", counts)
	}
	var points struct{ Answer []struct{ X, Y float64 } }
	decode(t, ready("ComplexImageTask-Recognition", 5), &points)
	if len(points.Answer) != 3 || points.Answer[0].X != 68.99999964 || points.Answer[2].Y != 49.894734680000006 {
		t.Errorf("ComplexImage coordinates: %+v", points)
	}
	var click struct{ Answer []bool }
	decode(t, ready("recaptcha-click", 1), &click)
	if len(click.Answer) != 9 || !click.Answer[4] {
		t.Errorf("reCAPTCHA click: %+v", click)
	}

	var custom struct {
		Domains map[string]struct {
			Cookies      map[string]string `json:"cookies"`
			LocalStorage map[string]string `json:"localStorage"`
		} `json:"domains"`
		URL     *string         `json:"url"`
		Headers json.RawMessage `json:"headers"`
	}
	decode(t, ready("datadome", 1), &custom)
	if cookie := custom.Domains["www.example.com"].Cookies["datadome"]; !strings.HasPrefix(cookie, "P1w0VnjFcTFslfps0J4FaPpY") ||
		custom.URL != nil || string(custom.Headers) != "null" {
		t.Errorf("CustomTask (DataDome): %+v", custom)
	}
	custom.Domains = nil
	decode(t, ready("temu-task", 1), &custom)
	if cookies := custom.Domains["www.example.com"].Cookies; cookies["region"] != "211" || cookies["currency"] != "USD" {
		t.Errorf("CustomTask (Temu): %+v", custom)
	}
}

// SolutionString unescapes like cm_result_solution_string and refuses what C cannot hold.
func TestSolutionStringMembers(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	res := scriptedReady(t, client, json.RawMessage(
		`{"text":"a\"b\\c\u00e9\n\t\ud83d\ude00","nul":"a\u0000b","num":5,"flag":true,"none":null,`+
			`"obj":{"inner":"x"},"list":["x"],"empty":"","dup":"first","dup":"last"}`))
	cases := []struct {
		name string
		want string
		ok   bool
	}{
		{"text", "a\"b\\c\u00e9\n\t\U0001F600", true},
		{"empty", "", true},
		{"dup", "last", true},
		{"nul", "", false},
		{"num", "", false},
		{"flag", "", false},
		{"none", "", false},
		{"obj", "", false},
		{"inner", "", false},
		{"list", "", false},
		{"absent", "", false},
		{"te\x00xt", "", false},
	}
	for _, c := range cases {
		if got, ok := res.SolutionString(c.name); got != c.want || ok != c.ok {
			t.Errorf("SolutionString(%q) = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestWaitOptions(t *testing.T) {
	t.Parallel()
	defaults := capmonster.WaitOptions{FirstDelay: time.Second, Interval: 2 * time.Second, Timeout: 3 * time.Minute, MaxRequests: 120}
	if got := capmonster.DefaultWaitOptions(); got != defaults {
		t.Errorf("DefaultWaitOptions() = %+v", got)
	}
	cases := map[string]capmonster.WaitOptions{
		"ImageToTextTask":          {FirstDelay: 350 * time.Millisecond, Interval: 200 * time.Millisecond, Timeout: 10 * time.Second, MaxRequests: 120},
		"RecaptchaV2TaskProxyless": {FirstDelay: time.Second, Interval: 3 * time.Second, Timeout: 3 * time.Minute, MaxRequests: 120},
		"CustomTask":               {FirstDelay: time.Second, Interval: 3 * time.Second, Timeout: 3 * time.Minute, MaxRequests: 120},
		"NoSuchType":               defaults,
		"":                         defaults,
		"ImageToText\x00Task":      defaults,
		"\xff":                     defaults,
	}
	for taskType, want := range cases {
		if got := capmonster.WaitOptionsFor(taskType); got != want {
			t.Errorf("WaitOptionsFor(%q) = %+v, want %+v", taskType, got, want)
		}
	}

	// From the task as created: its class and nocache count, in every form CreateTask takes.
	second := time.Second
	taskCases := []struct {
		task any
		want capmonster.WaitOptions
	}{
		{map[string]any{"type": "CustomTask", "class": "Imperva", "websiteURL": "https://example.com"}, capmonster.WaitOptions{FirstDelay: second, Interval: second, Timeout: 15 * second, MaxRequests: 120}},
		{`{"type":"CustomTask","class":"altcha"}`, capmonster.WaitOptions{FirstDelay: second, Interval: second, Timeout: 50 * second, MaxRequests: 120}},
		{[]byte(`{"type":"RecaptchaV2TaskProxyless","nocache":true}`), capmonster.WaitOptions{FirstDelay: 10 * second, Interval: 3 * second, Timeout: 3 * time.Minute, MaxRequests: 120}},
		{struct {
			Type    string `json:"type"`
			NoCache bool   `json:"nocache"`
		}{"HCaptchaTask", true}, capmonster.WaitOptions{FirstDelay: 10 * second, Interval: 3 * second, Timeout: 3 * time.Minute, MaxRequests: 120}},
		{map[string]any{"type": "NoSuchTask", "class": "Imperva"}, defaults},
	}
	for _, c := range taskCases {
		if got, err := capmonster.WaitOptionsForTask(c.task); err != nil || got != c.want {
			t.Errorf("WaitOptionsForTask(%v) = %+v, %v; want %+v", c.task, got, err, c.want)
		}
	}
	for _, bad := range []any{nil, "", "[]", `{"class":"Imperva"}`, `{"type":""}`, make(chan int), "{\"type\":\"a\x00\"}"} {
		_, err := capmonster.WaitOptionsForTask(bad)
		wantKinds(t, err, "ErrInvalidArgument")
	}

	// Values C cannot hold are converted as Go's time functions treat durations, then the
	// library judges them, with its own message.
	client := newClient(t)
	bad := []struct {
		name string
		opts capmonster.WaitOptions
		says string
	}{
		{"zero interval", capmonster.WaitOptions{Interval: 0, Timeout: time.Second, MaxRequests: 1}, "options.interval_ms must be at least 1"},
		{"negative interval", capmonster.WaitOptions{Interval: -time.Second, Timeout: time.Second, MaxRequests: 1}, "options.interval_ms must be at least 1"},
		{"zero max requests", capmonster.WaitOptions{Interval: time.Second, Timeout: time.Second, MaxRequests: 0}, "options.max_requests must be at least 1"},
		{"negative max requests", capmonster.WaitOptions{Interval: time.Second, Timeout: time.Second, MaxRequests: -1}, "options.max_requests must be at least 1"},
	}
	for _, c := range bad {
		id := newTaskID()
		_, err := client.WaitResult(context.Background(), id, &c.opts)
		if e := wantKinds(t, err, "ErrInvalidArgument"); e.TaskID != id || e.Requests != 0 || e.Message != c.says {
			t.Errorf("%s: %+v, want the message %q", c.name, e, c.says)
		}
		if n := requestsFor(t, id); n != 0 {
			t.Errorf("%s: %d requests sent", c.name, n)
		}
	}
	// A negative first delay is no delay, as in time.Sleep.
	id := newTaskID()
	script(t, id, map[string]any{"ready": map[string]any{"text": "now"}})
	opts := capmonster.WaitOptions{FirstDelay: -time.Hour, Interval: time.Second, Timeout: 10 * time.Second, MaxRequests: 1}
	if res, err := client.WaitResult(context.Background(), id, &opts); err != nil || !res.Ready || res.Requests != 1 {
		t.Errorf("a negative first delay: %+v, %v", res, err)
	}
	// A negative timeout is no time at all: the library's timeout, before any request.
	id = newTaskID()
	script(t, id, "processing")
	opts = capmonster.WaitOptions{Interval: time.Second, Timeout: -time.Second, MaxRequests: 1}
	_, err := client.WaitResult(context.Background(), id, &opts)
	if e := wantKinds(t, err, "ErrTimeout"); e.Requests != 0 || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a negative timeout: %+v", e)
	}
	// Above the C maximum: capped, so the wait runs.
	id = newTaskID()
	script(t, id, "processing", map[string]any{"ready": map[string]any{"text": "big"}})
	opts = capmonster.WaitOptions{Interval: time.Millisecond, Timeout: 1 << 62, MaxRequests: math.MaxInt}
	if res, err := client.WaitResult(context.Background(), id, &opts); err != nil || !res.Ready || res.Requests != 2 {
		t.Errorf("values above the C maximum: %+v, %v", res, err)
	}
	// A sub-millisecond interval is rounded up, not refused.
	id = newTaskID()
	script(t, id, "processing", map[string]any{"ready": map[string]any{"text": "ok"}})
	opts = capmonster.WaitOptions{Interval: time.Microsecond, Timeout: 10 * time.Second, MaxRequests: 5}
	if res, err := client.WaitResult(context.Background(), id, &opts); err != nil || !res.Ready || res.Requests != 2 {
		t.Errorf("a 1 µs interval: %+v, %v", res, err)
	}
}

// docsSolutions reads every ready solution of the documentation's examples, named
// "page#index" (index among the page's responses).
func docsSolutions(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	path := os.Getenv("CAPMONSTER_DOCS_EXAMPLES")
	if path == "" {
		path = filepath.Join("..", "..", "tests", "fixtures", "capmonster-docs-examples.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the docs examples (set CAPMONSTER_DOCS_EXAMPLES to their path): %v", err)
	}
	var fixture struct {
		Pages []struct {
			Page      string `json:"page"`
			Responses []struct {
				Status   string          `json:"status"`
				Solution json.RawMessage `json:"solution"`
			} `json:"responses"`
		} `json:"pages"`
	}
	if err := json.Unmarshal(data, &fixture); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, page := range fixture.Pages {
		for i, response := range page.Responses {
			if response.Status == "ready" && len(response.Solution) > 0 {
				out[page.Page+"#"+strconv.Itoa(i)] = response.Solution
			}
		}
	}
	return out
}

// scriptedReady scripts a new task ready with solution and reads it. The answer is sent as
// raw text: the solution reaches the library byte for byte (the emulator's "ready" step
// would re-encode it, and its JSON numbers lose precision on the way).
func scriptedReady(t testing.TB, client *capmonster.Client, solution json.RawMessage) *capmonster.TaskResult {
	t.Helper()
	id := newTaskID()
	answer := `{"errorId":0,"status":"ready","solution":` + string(solution) + `}`
	script(t, id, map[string]any{"raw": answer, "content_type": "application/json"})
	res, err := client.GetTaskResult(context.Background(), id)
	if err != nil || !res.Ready {
		t.Fatalf("task %d: %+v, %v", id, res, err)
	}
	return res
}

func decode(t testing.TB, res *capmonster.TaskResult, v any) {
	t.Helper()
	if err := res.Decode(v); err != nil {
		t.Fatalf("Decode(%s): %v", res.Solution, err)
	}
}

// Not parallel: it scripts getUserAgent for every key.
func TestGetUserAgent(t *testing.T) {
	client := newClient(t, capmonster.WithUserAgentURL(emulatorURL+"/useragent"))
	ctx := context.Background()
	ua, err := client.GetUserAgent(ctx)
	if err != nil || !strings.HasPrefix(ua, "Mozilla/5.0 ") {
		t.Fatalf("%q, %v", ua, err)
	}
	for name, step := range map[string]any{
		"an HTML page":  map[string]any{"raw": "<html><body>blocked</body></html>", "content_type": "text/html"},
		"an empty body": map[string]any{"raw": ""},
		"oversized":     map[string]any{"raw": "Mozilla/5.0 " + strings.Repeat("x", 2000)},
	} {
		scriptMethod(t, "getUserAgent", step)
		ua, err := client.GetUserAgent(ctx)
		if ua != "" {
			t.Errorf("%s: %q", name, ua)
		}
		wantKinds(t, err, "ErrBadResponse")
	}
	// The context reaches the request in flight.
	scriptMethod(t, "getUserAgent", map[string]any{"fault": "stall", "ms": 20000})
	cancelled, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = client.GetUserAgent(cancelled)
	wantKinds(t, err, "ErrTimeout")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	// The URL is the library's to judge.
	_, err = capmonster.NewClient("key", capmonster.WithUserAgentURL("http://example.com/ua"))
	if e := wantKinds(t, err, "ErrInvalidArgument"); !strings.Contains(e.Message, "user_agent_url") {
		t.Errorf("message %q", e.Message)
	}
}
