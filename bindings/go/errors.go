package capmonster

/*
#include <stdlib.h>
#include "capmonster.h"
*/
import "C"

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unsafe"
)

// Code is libcapmonster's return code (the C cm_code): [CodeOK] or one of the error codes.
// Numbers are part of the library's ABI: never reused, never renumbered.
type Code int32

// The codes, mirroring the C CM_OK and CM_ERR_* constants.
const (
	CodeOK              Code = 0 // success
	CodeInvalidArgument Code = 1 // a bad argument; nothing was sent
	CodeAPI             Code = 2 // the service answered with an error (errorId != 0)
	CodeNetwork         Code = 3 // connect, DNS, TLS, proxy, reset, answer cut short
	CodeTimeout         Code = 4 // a request or a wait ran out of time
	CodeHTTPStatus      Code = 5 // a non-2xx status without an API error body
	CodeBadResponse     Code = 6 // an answer that is not what the API promises
	CodeBudgetExhausted Code = 7 // the task's 120 requests, or the wait's MaxRequests, are spent
	CodeCancelled       Code = 8 // the wait was cancelled
	CodeInternal        Code = 9 // a bug in libcapmonster
)

// The build fails (constant index out of range) if a code differs from the header's.
var (
	_ = [1]struct{}{}[CodeOK-C.CM_OK]
	_ = [1]struct{}{}[CodeInvalidArgument-C.CM_ERR_INVALID_ARGUMENT]
	_ = [1]struct{}{}[CodeAPI-C.CM_ERR_API]
	_ = [1]struct{}{}[CodeNetwork-C.CM_ERR_NETWORK]
	_ = [1]struct{}{}[CodeTimeout-C.CM_ERR_TIMEOUT]
	_ = [1]struct{}{}[CodeHTTPStatus-C.CM_ERR_HTTP_STATUS]
	_ = [1]struct{}{}[CodeBadResponse-C.CM_ERR_BAD_RESPONSE]
	_ = [1]struct{}{}[CodeBudgetExhausted-C.CM_ERR_BUDGET_EXHAUSTED]
	_ = [1]struct{}{}[CodeCancelled-C.CM_ERR_CANCELLED]
	_ = [1]struct{}{}[CodeInternal-C.CM_ERR_INTERNAL]
)

// String returns the C name of the code, e.g. "CM_ERR_API" (from cm_code_name), or
// "CM_ERR_UNKNOWN(n)" for a number the library does not know.
func (c Code) String() string {
	name := C.GoString(C.cm_code_name(C.int32_t(c)))
	if name == "CM_ERR_UNKNOWN" {
		return name + "(" + strconv.Itoa(int(c)) + ")"
	}
	return name
}

// Error is the error of every failed call.
//
// Test for kinds of failure with errors.Is and the Err* sentinels rather than by comparing
// fields; the fields are there to report and log.
type Error struct {
	// Code is the library's code, never CodeOK.
	Code Code
	// APICode is the service's errorCode (e.g. "ERROR_CAPTCHA_UNSOLVABLE") for CodeAPI,
	// else "".
	APICode string
	// Description is the service's errorDescription when it sent one.
	Description string
	// HTTPStatus is the status of the last answer, 0 when none arrived.
	HTTPStatus int
	// Requests counts the HTTP requests the call sent, retries included.
	Requests int
	// TaskID is the task the call was about, 0 when none.
	TaskID int64
	// Message is libcapmonster's one-line account of what happened (it never contains the
	// client key or proxy credentials).
	Message string

	cause  error // a context error, a JSON error: what Unwrap returns
	closed bool  // the client was closed
}

// Error returns one line: "capmonster: " + the code name + the message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("capmonster: ")
	b.WriteString(e.Code.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(e.Message))
	}
	if e.cause != nil && !strings.Contains(e.Message, e.cause.Error()) {
		b.WriteString(" (")
		b.WriteString(oneLine(e.cause.Error()))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns what caused the error on the Go side, if anything: context.Canceled or
// context.DeadlineExceeded when the call's context ended it, the JSON error of a task that
// could not be marshalled.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether e is of the kind of a sentinel of this package (ErrTimeout,
// ErrCaptchaUnsolvable, ...).
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.matches(e)
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// sentinel is the type of the Err* values: a kind of failure, not a failure.
type sentinel struct {
	text    string
	code    Code
	apiKind string // for CodeAPI: errorCodes of this kind (cm_api_error_kind); empty: any
	closed  bool   // matches the errors of a closed client, whatever their code
}

func (s *sentinel) Error() string { return "capmonster: " + s.text }

func (s *sentinel) matches(e *Error) bool {
	if s.closed {
		return e.closed
	}
	return e.Code == s.code && (s.apiKind == "" || APIErrorKind(e.APICode) == s.apiKind)
}

// kind makes a sentinel: errors of code, any errorCode.
func kind(code Code, text string) error {
	return &sentinel{text: text, code: code}
}

// apiKind makes the sentinel of a code of the service's error glossary: CodeAPI errors whose
// errorCode is of that kind.
func apiKind(glossaryCode, text string) error {
	return &sentinel{text: text, code: CodeAPI, apiKind: glossaryCode}
}

// APIErrorKind returns the kind of the service's errorCode (Error.APICode): its spelling in
// the service's error glossary, the same for every spelling of one error (cm_api_error_kind:
// "WRONG_CAPTCHA_ID" and "ERROR_NO_SUCH_CAPCHA_ID" both give "ERROR_NO_SUCH_CAPCHA_ID"); ""
// for a code outside the glossary. The ErrXxx sentinels of the service's errors match by it.
func APIErrorKind(apiCode string) string {
	if apiCode == "" || strings.IndexByte(apiCode, 0) >= 0 {
		return ""
	}
	cs := C.CString(apiCode)
	defer C.free(unsafe.Pointer(cs))
	return C.GoString(C.cm_api_error_kind(cs)) // NULL gives ""
}

// Sentinels for errors.Is, one per Code.
var (
	ErrInvalidArgument = kind(CodeInvalidArgument, "invalid argument")
	ErrAPI             = kind(CodeAPI, "the service answered with an error") // any errorCode
	ErrNetwork         = kind(CodeNetwork, "network error")
	ErrTimeout         = kind(CodeTimeout, "timed out")
	ErrHTTPStatus      = kind(CodeHTTPStatus, "unexpected HTTP status")
	ErrBadResponse     = kind(CodeBadResponse, "bad response")
	ErrBudgetExhausted = kind(CodeBudgetExhausted, "request budget exhausted")
	ErrCancelled       = kind(CodeCancelled, "cancelled")
	ErrInternal        = kind(CodeInternal, "internal error in libcapmonster")
)

// Sentinels for the service's errors, one per code of its error glossary (each also matches
// ErrAPI). Each matches every spelling of its error, as the library's cm_api_error_kind says:
// ErrNoSuchTask both ERROR_NO_SUCH_CAPCHA_ID and WRONG_CAPTCHA_ID. CAPTCHA_NOT_READY has
// none: it is no error (the task is still processing).
var (
	ErrKeyDoesNotExist         = apiKind("ERROR_KEY_DOES_NOT_EXIST", "client key does not exist")
	ErrZeroBalance             = apiKind("ERROR_ZERO_BALANCE", "zero balance")
	ErrTooBigCaptchaFilesize   = apiKind("ERROR_TOO_BIG_CAPTCHA_FILESIZE", "captcha image too big")
	ErrZeroCaptchaFilesize     = apiKind("ERROR_ZERO_CAPTCHA_FILESIZE", "captcha image too small")
	ErrNoSuchTask              = apiKind("ERROR_NO_SUCH_CAPCHA_ID", "no such task") // or expired
	ErrCaptchaUnsolvable       = apiKind("ERROR_CAPTCHA_UNSOLVABLE", "captcha unsolvable")
	ErrIPNotAllowed            = apiKind("ERROR_IP_NOT_ALLOWED", "address not allowed")
	ErrIPBanned                = apiKind("ERROR_IP_BANNED", "address banned")
	ErrNoSuchMethod            = apiKind("ERROR_NO_SUCH_METHOD", "no such method")
	ErrTooMuchRequests         = apiKind("ERROR_TOO_MUCH_REQUESTS", "too many requests")
	ErrDomainNotAllowed        = apiKind("ERROR_DOMAIN_NOT_ALLOWED", "domain not allowed")
	ErrTokenExpired            = apiKind("ERROR_TOKEN_EXPIRED", "token expired")
	ErrNoSlotAvailable         = apiKind("ERROR_NO_SLOT_AVAILABLE", "no slot available")
	ErrRecaptchaInvalidSitekey = apiKind("ERROR_RECAPTCHA_INVALID_SITEKEY", "invalid reCAPTCHA site key")
	ErrRecaptchaInvalidDomain  = apiKind("ERROR_RECAPTCHA_INVALID_DOMAIN", "invalid reCAPTCHA domain")
	ErrRecaptchaTimeout        = apiKind("ERROR_RECAPTCHA_TIMEOUT", "reCAPTCHA timed out")
	ErrIPBlocked               = apiKind("ERROR_IP_BLOCKED", "address blocked")
	ErrProxyConnectRefused     = apiKind("ERROR_PROXY_CONNECT_REFUSED", "proxy refused the connection")
	ErrProxyBanned             = apiKind("ERROR_PROXY_BANNED", "proxy banned")
	ErrProxyMissing            = apiKind("ERROR_PROXY_MISSING", "proxy missing")
	ErrProxyNotAuthorised      = apiKind("ERROR_PROXY_NOT_AUTHORISED", "proxy not authorised")
	ErrProxyReadTimeout        = apiKind("ERROR_PROXY_READ_TIMEOUT", "proxy read timed out")
	ErrTaskNotSupported        = apiKind("ERROR_TASK_NOT_SUPPORTED", "task not supported")
	ErrTaskAbsent              = apiKind("ERROR_TASK_ABSENT", "task absent")
	ErrWrongUserAgent          = apiKind("ERROR_WRONG_USERAGENT", "wrong User-Agent")
)

// glossary returns the codes of the service's error glossary (cm_api_error_glossary).
func glossary() []string {
	var codes []string
	for i := 0; ; i++ {
		code := C.cm_api_error_glossary(C.uint32_t(i))
		if code == nil {
			return codes
		}
		codes = append(codes, C.GoString(code))
	}
}

// ErrClosed matches the errors of calls on a closed Client: a call made after Close
// (which also matches ErrInvalidArgument) and a wait that Close cancelled (which also
// matches ErrCancelled).
var ErrClosed error = &sentinel{text: "client is closed", closed: true}

// ErrNotReady is returned by TaskResult.Decode for a task that is still processing.
var ErrNotReady = errors.New("capmonster: the task is not ready")

// newError makes an error that happened on the Go side, before any request.
func newError(code Code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, cause: cause}
}

func invalidArgument(message string) *Error {
	return newError(CodeInvalidArgument, message, nil)
}

func closedError(taskID int64) *Error {
	return &Error{Code: CodeInvalidArgument, TaskID: taskID, Message: "the client is closed", closed: true}
}

// contextError returns the error of a call whose context is already done, or nil.
func contextError(ctx context.Context, taskID int64) *Error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	code := CodeCancelled
	if errors.Is(err, context.DeadlineExceeded) {
		code = CodeTimeout
	}
	return &Error{Code: code, TaskID: taskID, Message: "nothing was sent: the context is done", cause: err}
}

// deadlineError returns the error of a call whose context's deadline leaves no time.
func deadlineError(taskID int64) *Error {
	return &Error{Code: CodeTimeout, TaskID: taskID,
		Message: "nothing was sent: the context's deadline has passed", cause: context.DeadlineExceeded}
}
