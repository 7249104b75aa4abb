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

// DefaultRequestTimeout is libcapmonster's bound on each HTTP request when WithRequestTimeout
// is not given.
const DefaultRequestTimeout = 21 * time.Second

// Version returns libcapmonster's version, e.g. "0.1.0".
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

type config struct {
	key            string
	baseURL        string // "" for the official service
	requestTimeout time.Duration
	proxy          proxyMode
	proxyURL       string
	caFile         string // "" for the system's trusted roots

	maxConnectionsSet bool
	maxConnections    C.uint32_t
}

// WithBaseURL sends requests to baseURL instead of https://api.capmonster.cloud: https://
// anywhere, http:// only to a loopback host (127.0.0.0/8, ::1, localhost), e.g. the emulator.
func WithBaseURL(baseURL string) Option {
	return func(c *config) { c.baseURL = baseURL }
}

// WithRequestTimeout bounds each HTTP request (connect, send, answer); default
// DefaultRequestTimeout. It is rounded up to whole milliseconds; the library refuses 0 (a
// negative timeout is sent as 0).
func WithRequestTimeout(timeout time.Duration) Option {
	return func(c *config) { c.requestTimeout = timeout }
}

// WithProxy sends every request through proxyURL (http://, https://, socks5://, socks5h://,
// with optional user:password@), whatever the environment says.
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
// e.g. corporate TLS inspection) instead of the operating system's store.
func WithCAFile(path string) Option {
	return func(c *config) { c.caFile = path }
}

// WithMaxConnections caps the connections the client holds at once (libcapmonster's
// cm_client_set_max_connections; without this option the library's default, 64). Calls
// beyond the cap wait for a connection, within their deadline. The library refuses 0 (a
// negative n is sent as 0, more than 4294967295 as 4294967295).
func WithMaxConnections(n int) Option {
	return func(c *config) {
		c.maxConnectionsSet = true
		c.maxConnections = C.uint32_t(min(max(int64(n), 0), math.MaxUint32))
	}
}

// Client is a client of the CapMonster Cloud API for one account key. It is safe for use by
// many goroutines at once. Close it when done.
type Client struct {
	s *clientState
}

// clientState is what the finalizer (a runtime cleanup) needs: it must not reach the Client.
type clientState struct {
	cfg config
	// mu guards h: calls hold it for reading while in C, Close holds it for writing while
	// freeing, so C never sees a freed client.
	mu sync.RWMutex
	h  *C.cm_client // nil once closed

	waitsMu sync.Mutex
	closing bool                      // Close has started: no new wait may start
	waits   map[*C.cm_cancel]struct{} // the cancels of the waits in progress
}

// liveHandles counts the cm_client objects this package holds (for tests).
var liveHandles atomic.Int64

// NewClient creates a client for clientKey, your account key, with opts applied in order.
// libcapmonster checks the key and every setting: a refused one is an error matching
// ErrInvalidArgument whose Message is the library's, naming the argument (e.g. "base_url
// must start with https:// (or http:// to a loopback host)"). A malformed proxy variable in
// the environment does not make NewClient fail: the calls that would use it do.
func NewClient(clientKey string, opts ...Option) (*Client, error) {
	cfg := config{key: clientKey, requestTimeout: DefaultRequestTimeout}
	for _, opt := range opts {
		opt(&cfg)
	}
	h, err := newHandle(&cfg, milliseconds(cfg.requestTimeout, true))
	if err != nil {
		return nil, err
	}
	s := &clientState{cfg: cfg, h: h, waits: make(map[*C.cm_cancel]struct{})}
	c := &Client{s: s}
	runtime.AddCleanup(c, (*clientState).close, s)
	return c, nil
}

// newHandle makes a cm_client with the settings of cfg and a request timeout of timeoutMS.
// The library judges every setting: a refusal is its own code and message.
func newHandle(cfg *config, timeoutMS C.uint32_t) (*C.cm_client, error) {
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
	if err := configure(h, cfg, timeoutMS); err != nil {
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

func configure(h *C.cm_client, cfg *config, timeoutMS C.uint32_t) error {
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
	if err := call(func(r **C.cm_result) C.cm_code { return C.cm_client_set_request_timeout_ms(h, timeoutMS, r) }); err != nil {
		return err
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
	return nil
}

func freeHandle(h *C.cm_client) {
	C.cm_client_free(h)
	liveHandles.Add(-1)
}

// Close frees the client: it cancels the waits in progress (they return an error matching
// ErrClosed and ErrCancelled), waits until every call in progress has returned, then frees
// the library's client and its connections. Later calls return ErrClosed. Close is
// idempotent and safe to call from many goroutines; it always returns nil.
func (c *Client) Close() error {
	c.s.close()
	return nil
}

func (s *clientState) close() {
	s.waitsMu.Lock()
	s.closing = true
	for cancel := range s.waits {
		C.cm_cancel_trigger(cancel)
	}
	s.waitsMu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil {
		freeHandle(s.h)
		s.h = nil
	}
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

// single runs one request (call) on the client, with ctx checked before and its deadline
// bounding the request when nearer than the request timeout.
func (c *Client) single(ctx context.Context, taskID int64, call func(h *C.cm_client, out **C.cm_result) C.cm_code) (*result, error) {
	if err := contextError(ctx, taskID); err != nil {
		return nil, err
	}
	h, err := c.s.acquire(taskID)
	if err != nil {
		return nil, err
	}
	defer c.s.release()

	deadlineBound := false
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left < time.Millisecond {
			return nil, deadlineError(taskID)
		}
		if left < c.s.cfg.requestTimeout {
			// libcapmonster has no per-call timeout: a client of its own for this request.
			short, err := newHandle(&c.s.cfg, milliseconds(left, false))
			if err != nil {
				return nil, err
			}
			defer freeHandle(short)
			h, deadlineBound = short, true
		}
	}

	var r *C.cm_result
	code := Code(call(h, &r))
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
	if code == CodeTimeout && deadlineBound {
		e.cause = context.DeadlineExceeded
	}
	return nil, e
}

// milliseconds converts d for C: negative is 0, beyond uint32 is the maximum; a fraction
// of a millisecond is rounded up or down.
func milliseconds(d time.Duration, roundUp bool) C.uint32_t {
	if d <= 0 {
		return 0
	}
	ms := d / time.Millisecond
	if roundUp && d%time.Millisecond != 0 {
		ms++
	}
	if ms > math.MaxUint32 {
		return math.MaxUint32
	}
	return C.uint32_t(ms)
}

// cString returns s as a C string to free with C.free. C strings end at the first NUL, so
// a Go string holding one is refused rather than silently cut.
func cString(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalidArgument(what + " contains a NUL byte")
	}
	return C.CString(s), nil
}
