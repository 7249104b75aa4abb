package capmonster

/*
#include <stdlib.h>
#include "capmonster.h"
*/
import "C"

import (
	"context"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Version returns libcapmonster's version, e.g. "0.2.0".
func Version() string {
	return C.GoString(C.cm_version())
}

// Option configures a Client in NewClient.
type Option func(*config)

type proxyMode int

const (
	proxyFromEnvironment proxyMode = iota
	proxyExplicit
	proxyOff
)

// config holds what the options asked for; only what was asked is passed to the library,
// so that every default is the library's.
type config struct {
	key          string
	baseURL      string // "" for the library's default endpoint
	userAgentURL string // "" for the library's default getUserAgent page
	proxy        proxyMode
	proxyURL     string
	caFile       string // "" for the system's trusted roots

	requestTimeoutSet bool
	requestTimeout    C.uint32_t
	maxConnectionsSet bool
	maxConnections    C.uint32_t
	softIDSet         bool
	softID            C.uint32_t
	engineSet         bool
	engine            C.cm_engine
}

// WithBaseURL sends requests to baseURL instead of the official service
// (cm_client_set_base_url: https:// anywhere, http:// only to a loopback host such as the
// emulator; the library judges the URL).
func WithBaseURL(baseURL string) Option {
	return func(c *config) { c.baseURL = baseURL }
}

// WithUserAgentURL fetches GetUserAgent's answer from url instead of the official page
// (cm_client_set_user_agent_url; the rules of WithBaseURL apply), e.g. the emulator's
// "/useragent".
func WithUserAgentURL(url string) Option {
	return func(c *config) { c.userAgentURL = url }
}

// WithRequestTimeout bounds each HTTP request: connect, send, answer
// (cm_client_set_request_timeout_ms; without this option the library's default). It is
// rounded up to whole milliseconds. As with time.Sleep, a negative timeout counts as 0; a
// timeout above the C maximum (about 49 days) is capped. The library refuses 0 with its
// own message.
func WithRequestTimeout(timeout time.Duration) Option {
	return func(c *config) { c.requestTimeoutSet, c.requestTimeout = true, milliseconds(timeout) }
}

// WithProxy sends every request through proxyURL (cm_client_set_proxy: http://, https://,
// socks4://, socks4a://, socks5://, socks5h://, with optional user:password@), whatever the
// environment says.
func WithProxy(proxyURL string) Option {
	return func(c *config) { c.proxy, c.proxyURL = proxyExplicit, proxyURL }
}

// WithoutProxy connects directly, whatever the environment says. Without WithProxy or
// WithoutProxy the environment decides, by curl's rules (https_proxy, HTTPS_PROXY,
// http_proxy, all_proxy, ALL_PROXY, no_proxy, NO_PROXY), read when the client is created.
func WithoutProxy() Option {
	return func(c *config) { c.proxy, c.proxyURL = proxyOff, "" }
}

// WithCAFile trusts only the certificate authorities in the PEM file at path (a private CA,
// e.g. corporate TLS inspection) instead of the operating system's store
// (cm_client_set_ca_file).
func WithCAFile(path string) Option {
	return func(c *config) { c.caFile = path }
}

// WithMaxConnections caps the connections the client holds at once, calls and waits together
// (cm_client_set_max_connections; without this option the library's default). Calls beyond
// the cap wait for a connection, within their deadline. A negative n counts as 0 and one
// above the C maximum (4294967295) is capped; the library refuses 0 with its own message.
func WithMaxConnections(n int) Option {
	return func(c *config) {
		c.maxConnectionsSet = true
		c.maxConnections = C.uint32_t(min(max(int64(n), 0), math.MaxUint32))
	}
}

// WithSoftID sends softID, the id of the software developer the service pays a commission
// to, with every createTask (cm_client_set_soft_id); 0 sends none, as without this option.
func WithSoftID(softID uint32) Option {
	return func(c *config) { c.softIDSet, c.softID = true, C.uint32_t(softID) }
}

// Engine is how a client's waits send their requests (cm_client_set_engine): the rules of a
// wait are the same on both.
type Engine uint32

const (
	// EngineEventLoop sends the requests in flight as futures on one event loop: at most three
	// library threads per client, whatever the number of waits.
	EngineEventLoop Engine = C.CM_ENGINE_EVENT_LOOP
	// EngineThreads sends each request in flight from a worker thread that blocks until its
	// answer, at most the client's max connections of them.
	EngineThreads Engine = C.CM_ENGINE_THREADS
)

// WithEngine chooses how the client's waits send (cm_client_set_engine); without this
// option the environment's CAPMONSTER_ENGINE, else the library's default. The library
// refuses any other value with its own message.
func WithEngine(engine Engine) Option {
	return func(c *config) { c.engineSet, c.engine = true, C.cm_engine(engine) }
}

// Client is a client of the CapMonster Cloud API for one account key. It is safe for use by
// many goroutines at once. Close it when done.
type Client struct {
	s *clientState
}

// clientState is what the cleanup (the safety net for a Client never closed) needs: it must
// not reach the Client.
type clientState struct {
	baseURL string // for String

	// mu guards h and waiter.w against being freed: C calls on them run under the read lock,
	// Close frees them under the write lock.
	mu sync.RWMutex
	h  *C.cm_client // nil once closed

	waiter waiterState
}

// Counts of the library objects this package holds (for tests).
var liveHandles, liveWaiters atomic.Int64

// NewClient creates a client for clientKey, your account key, with opts applied in order.
// libcapmonster checks the key and every setting: a refused one is an error matching
// ErrInvalidArgument with the library's own code and message, naming the argument. A
// malformed proxy variable in the environment does not make NewClient fail: the calls that
// would use it do.
func NewClient(clientKey string, opts ...Option) (*Client, error) {
	cfg := config{key: clientKey}
	for _, opt := range opts {
		opt(&cfg)
	}
	h, err := newHandle(&cfg)
	if err != nil {
		return nil, err
	}
	s := &clientState{baseURL: cfg.baseURL, h: h}
	s.waiter.waits = make(map[uint64]chan *result)
	c := &Client{s: s}
	// Cleanups must not block their goroutine: closing drains the waiter, so it gets its own.
	runtime.AddCleanup(c, func(s *clientState) { go s.close() }, s)
	return c, nil
}

// newHandle makes a cm_client with the settings of cfg. The library judges every setting: a
// refusal is its own code and message.
func newHandle(cfg *config) (*C.cm_client, error) {
	key, err := cString(cfg.key, "client_key")
	if err != nil {
		return nil, err
	}
	var h *C.cm_client
	err = call(func(r **C.cm_result) C.cm_code { return C.cm_client_new(key, &h, r) })
	C.free(unsafe.Pointer(key))
	if err != nil {
		return nil, err
	}
	liveHandles.Add(1)
	if err := configure(h, cfg); err != nil {
		freeHandle(h)
		return nil, err
	}
	return h, nil
}

// call runs a creation or a setter, whose cm_result carries the library's code and message,
// and returns nil on CM_OK, else the library's error.
func call(f func(r **C.cm_result) C.cm_code) error {
	var r *C.cm_result
	code := Code(f(&r))
	defer C.cm_result_free(r)
	if code == CodeOK {
		return nil
	}
	res := readResult(r)
	res.code = code
	return res.err()
}

func configure(h *C.cm_client, cfg *config) error {
	// setString calls set with s as a C string (NULL for a nil s); C copies what it keeps.
	setString := func(set func(s *C.char, r **C.cm_result) C.cm_code, s *string, what string) error {
		if s == nil {
			return call(func(r **C.cm_result) C.cm_code { return set(nil, r) })
		}
		cs, err := cString(*s, what)
		if err != nil {
			return err
		}
		defer C.free(unsafe.Pointer(cs))
		return call(func(r **C.cm_result) C.cm_code { return set(cs, r) })
	}
	if cfg.baseURL != "" {
		err := setString(func(s *C.char, r **C.cm_result) C.cm_code { return C.cm_client_set_base_url(h, s, r) },
			&cfg.baseURL, "base_url")
		if err != nil {
			return err
		}
	}
	if cfg.userAgentURL != "" {
		err := setString(func(s *C.char, r **C.cm_result) C.cm_code { return C.cm_client_set_user_agent_url(h, s, r) },
			&cfg.userAgentURL, "user_agent_url")
		if err != nil {
			return err
		}
	}
	if cfg.requestTimeoutSet {
		ms := cfg.requestTimeout
		if err := call(func(r **C.cm_result) C.cm_code { return C.cm_client_set_request_timeout_ms(h, ms, r) }); err != nil {
			return err
		}
	}
	switch cfg.proxy {
	case proxyExplicit:
		err := setString(func(s *C.char, r **C.cm_result) C.cm_code { return C.cm_client_set_proxy(h, s, r) },
			&cfg.proxyURL, "proxy_url")
		if err != nil {
			return err
		}
	case proxyOff:
		err := setString(func(s *C.char, r **C.cm_result) C.cm_code { return C.cm_client_set_proxy(h, s, r) },
			nil, "proxy_url")
		if err != nil {
			return err
		}
	}
	if cfg.caFile != "" {
		err := setString(func(s *C.char, r **C.cm_result) C.cm_code { return C.cm_client_set_ca_file(h, s, r) },
			&cfg.caFile, "ca_file")
		if err != nil {
			return err
		}
	}
	if cfg.maxConnectionsSet {
		n := cfg.maxConnections
		err := call(func(r **C.cm_result) C.cm_code { return C.cm_client_set_max_connections(h, n, r) })
		if err != nil {
			return err
		}
	}
	if cfg.softIDSet {
		id := cfg.softID
		if err := call(func(r **C.cm_result) C.cm_code { return C.cm_client_set_soft_id(h, id, r) }); err != nil {
			return err
		}
	}
	if cfg.engineSet {
		engine := cfg.engine
		if err := call(func(r **C.cm_result) C.cm_code { return C.cm_client_set_engine(h, engine, r) }); err != nil {
			return err
		}
	}
	return nil
}

func freeHandle(h *C.cm_client) {
	C.cm_client_free(h)
	liveHandles.Add(-1)
}

// Close frees the client. It shuts its waits down (each WaitResult in progress returns an
// error matching ErrClosed and ErrCancelled), waits until every single call in progress
// (GetTaskResult, CreateTask, GetBalance, the reports) has returned, then frees the
// library's client and its connections. Later calls return ErrClosed. Close is idempotent
// and safe to call from many goroutines; it always returns nil.
func (c *Client) Close() error {
	c.s.close()
	return nil
}

func (s *clientState) close() {
	// The waiter is shut down under the read lock, which keeps another Close from freeing it
	// meanwhile, and drained without the lock, so that calls in progress can end.
	s.mu.RLock()
	drained := s.waiter.shutdown()
	s.mu.RUnlock()
	if drained != nil {
		<-drained
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiter.free()
	if s.h != nil {
		freeHandle(s.h)
		s.h = nil
	}
}

// EndStops ends the library's account guard stops of this client's key and endpoint, in
// every process of the user (cm_client_end_stops): call it once the key, the address
// whitelist or the balance is fixed, so that calls go out at once rather than after the
// cool-down. Stops of banned proxies stay (their ban is the target's). While a stop is in
// force, a call it holds returns the service's own error (errors.Is works as for the
// service's answer) with Requests 0 and HTTPStatus 0.
func (c *Client) EndStops() error {
	h, err := c.s.acquire(0)
	if err != nil {
		return err
	}
	err = call(func(r **C.cm_result) C.cm_code { return C.cm_client_end_stops(h, r) })
	c.s.release()
	runtime.KeepAlive(c)
	return err
}

// acquire returns the live handle, read-locked; the caller calls release when C is done
// with it. After Close it returns ErrClosed.
func (s *clientState) acquire(taskID int64) (*C.cm_client, error) {
	s.mu.RLock()
	if s.h == nil {
		s.mu.RUnlock()
		return nil, closedError(taskID)
	}
	return s.h, nil
}

func (s *clientState) release() { s.mu.RUnlock() }

// newCancel makes a cm_cancel; it only fails when the library cannot allocate one, and its
// code is then all the library says.
func newCancel(taskID int64) (*C.cm_cancel, error) {
	var cancel *C.cm_cancel
	if code := Code(C.cm_cancel_new(&cancel)); code != CodeOK {
		e := newError(code, "cm_cancel_new returned "+code.String(), nil)
		e.TaskID = taskID
		return nil, e
	}
	return cancel, nil
}

// single runs one request (call) on the client through a `_with` function: ctx's deadline
// becomes the call's timeout_ms, ctx's cancellation triggers the call's cm_cancel, which
// reaches the request in flight.
func (c *Client) single(ctx context.Context, taskID int64, call func(h *C.cm_client, o *C.cm_call_options, out **C.cm_result) C.cm_code) (*result, error) {
	if err := contextError(ctx, taskID); err != nil {
		return nil, err
	}
	var options C.cm_call_options
	C.cm_call_options_init(&options)
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, deadlineError(taskID)
		}
		// Rounded up: the library's timeout never comes before the context's deadline, so a
		// CM_ERR_TIMEOUT at or after the deadline is the context's.
		options.timeout_ms = milliseconds(left)
	}
	if done := ctx.Done(); done != nil {
		cancel, err := newCancel(taskID)
		if err != nil {
			return nil, err
		}
		options.cancel = cancel
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			if !(hasDeadline && ctx.Err() == context.DeadlineExceeded) {
				// The deadline is timeout_ms, the library's own; anything else is a cancel.
				C.cm_cancel_trigger(cancel)
			}
		})
		defer func() {
			if !stop() {
				<-fired // the trigger may still be running: free the token after it
			}
			C.cm_cancel_free(cancel)
		}()
	}

	h, err := c.s.acquire(taskID)
	if err != nil {
		return nil, err
	}
	var r *C.cm_result
	code := Code(call(h, &options, &r))
	c.s.release()
	runtime.KeepAlive(c)
	defer C.cm_result_free(r)
	res := readResult(r)
	if code == CodeOK {
		return &res, nil
	}
	e := res.err()
	if res.taskID == 0 {
		e.TaskID = taskID
	}
	contextCause(e, ctx, hasDeadline, deadline)
	return nil, e
}

// contextCause makes e also match the context's error when the context ended the call: a
// cancel it triggered (CM_ERR_CANCELLED), or its deadline, passed as the call's timeout
// (CM_ERR_TIMEOUT at or after the deadline).
func contextCause(e *Error, ctx context.Context, hasDeadline bool, deadline time.Time) {
	switch {
	case e.Code == CodeCancelled && ctx.Err() != nil:
		e.cause = ctx.Err()
	case e.Code == CodeTimeout && hasDeadline && !time.Now().Before(deadline):
		e.cause = context.DeadlineExceeded
	}
}

// milliseconds converts d for C as Go's time functions treat durations: negative is 0; a
// fraction of a millisecond is rounded up; beyond uint32 is the maximum.
func milliseconds(d time.Duration) C.uint32_t {
	if d <= 0 {
		return 0
	}
	ms := d / time.Millisecond
	if d%time.Millisecond != 0 {
		ms++
	}
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	return C.uint32_t(ms)
}

// cString returns s as a C string to free with C.free. C strings end at the first NUL, so
// a Go string holding one is refused (as the os and syscall packages refuse one in a path)
// rather than silently cut.
func cString(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalidArgument(what + " contains a NUL byte")
	}
	return C.CString(s), nil
}

// SetBudget chooses where the request budget and the account guard's stops are kept, in place
// of the CAPMONSTER_BUDGET variable (cm_set_budget): "shared" (the machine's file, the
// default), "process", or a "redis://..." / "rediss://..." URL shared by every host that names
// it; "" goes back to the variable's choice. Only before the process's first client: later it
// returns the library's CodeInvalidArgument error and changes nothing.
func SetBudget(budget string) error {
	var cBudget *C.char
	if budget != "" {
		var err error
		if cBudget, err = cString(budget, "budget"); err != nil {
			return err
		}
		defer C.free(unsafe.Pointer(cBudget))
	}
	return call(func(r **C.cm_result) C.cm_code { return C.cm_set_budget(cBudget, r) })
}
