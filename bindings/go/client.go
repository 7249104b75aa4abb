package capmonster

/*
#include <stdlib.h>
#include "capmonster.h"
*/
import "C"

import (
	"context"
	"math"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
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
}

// WithBaseURL sends requests to baseURL instead of https://api.capmonster.cloud: https://
// anywhere, http:// only to a loopback host (127.0.0.0/8, ::1, localhost), e.g. the emulator.
func WithBaseURL(baseURL string) Option {
	return func(c *config) { c.baseURL = baseURL }
}

// WithRequestTimeout bounds each HTTP request (connect, send, answer); default
// DefaultRequestTimeout. It must be positive; it is rounded up to whole milliseconds.
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

// maxKeyBytes is libcapmonster's limit on the client key (cm_client_new refuses longer ones).
const maxKeyBytes = 1024

// liveHandles counts the cm_client objects this package holds (for tests).
var liveHandles atomic.Int64

// NewClient creates a client for clientKey, your account key.
func NewClient(clientKey string, opts ...Option) (*Client, error) {
	cfg := config{key: clientKey, requestTimeout: DefaultRequestTimeout}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.requestTimeout <= 0 {
		return nil, invalidArgument("the request timeout must be positive, got " + cfg.requestTimeout.String())
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
func newHandle(cfg *config, timeoutMS C.uint32_t) (*C.cm_client, error) {
	key, err := cString(cfg.key, "the client key")
	if err != nil {
		return nil, err
	}
	var h *C.cm_client
	code := Code(C.cm_client_new(key, &h))
	C.free(unsafe.Pointer(key))
	if code != CodeOK {
		switch {
		case cfg.key == "":
			return nil, invalidArgument("the client key is empty")
		case !utf8.ValidString(cfg.key):
			return nil, invalidArgument("the client key is not UTF-8")
		case len(cfg.key) > maxKeyBytes:
			return nil, invalidArgument("the client key is longer than 1024 bytes")
		}
		return nil, newError(code, "cm_client_new failed", nil)
	}
	liveHandles.Add(1)
	if err := configure(h, cfg, timeoutMS); err != nil {
		freeHandle(h)
		return nil, err
	}
	return h, nil
}

func configure(h *C.cm_client, cfg *config, timeoutMS C.uint32_t) error {
	// setString calls set with s as a C string (NULL for a nil s); C copies what it keeps.
	setString := func(set func(*C.char) C.cm_code, s *string, what string) (Code, error) {
		if s == nil {
			return Code(set(nil)), nil
		}
		cs, err := cString(*s, what)
		if err != nil {
			return 0, err
		}
		defer C.free(unsafe.Pointer(cs))
		return Code(set(cs)), nil
	}
	if cfg.baseURL != "" {
		code, err := setString(func(s *C.char) C.cm_code { return C.cm_client_set_base_url(h, s) }, &cfg.baseURL, "the base URL")
		if err != nil {
			return err
		}
		if code != CodeOK {
			return newError(code, "invalid base URL "+quote(cfg.baseURL)+
				": it must be https://, or http:// to a loopback host (127.0.0.0/8, ::1, localhost)", nil)
		}
	}
	if code := Code(C.cm_client_set_request_timeout_ms(h, timeoutMS)); code != CodeOK {
		return newError(code, "invalid request timeout", nil)
	}
	switch cfg.proxy {
	case proxyExplicit:
		code, err := setString(func(s *C.char) C.cm_code { return C.cm_client_set_proxy(h, s) }, &cfg.proxyURL, "the proxy URL")
		if err != nil {
			return err
		}
		if code != CodeOK {
			return newError(code, "invalid proxy URL "+quote(redactURL(cfg.proxyURL))+
				": it must be http://, https://, socks5:// or socks5h://", nil)
		}
	case proxyOff:
		if code := Code(C.cm_client_set_proxy(h, nil)); code != CodeOK {
			return newError(code, "cannot turn the proxy off", nil)
		}
	}
	if cfg.caFile != "" {
		code, err := setString(func(s *C.char) C.cm_code { return C.cm_client_set_ca_file(h, s) }, &cfg.caFile, "the CA file path")
		if err != nil {
			return err
		}
		if code != CodeOK {
			return newError(code, "cannot use the CA file "+quote(cfg.caFile)+
				": it must exist and hold PEM certificates", nil)
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

func quote(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "\uFFFD") + `"`
}

// redactURL hides the password of a proxy URL (as the library does in its messages).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if at := strings.LastIndexByte(s, '@'); at >= 0 {
			return "xxxxx@" + s[at+1:]
		}
		return s
	}
	return u.Redacted()
}
