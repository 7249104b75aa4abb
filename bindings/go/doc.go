// Package capmonster is a client for the CapMonster Cloud captcha-solving API, built on
// libcapmonster (the C library of this repository) through cgo.
//
// A [Client] creates tasks, asks for their results once ([Client.GetTaskResult]) or waits for
// them ([Client.WaitResult]) without ever sending more than the service's 120 getTaskResult
// requests per task: libcapmonster counts them per (client key, task) across the whole
// process and refuses the 121st with [ErrBudgetExhausted].
//
//	client, err := capmonster.NewClient(key)
//	if err != nil { ... }
//	defer client.Close()
//
//	id, err := client.CreateTask(ctx, map[string]any{"type": "ImageToTextTask", "body": image}, "")
//	opts := capmonster.WaitOptionsFor("ImageToTextTask")
//	res, err := client.WaitResult(ctx, id, &opts)
//	var solution struct{ Text string `json:"text"` }
//	err = res.Decode(&solution)
//
// # Errors
//
// Every failure is an [*Error] carrying the library's [Code], the service's errorCode and
// errorDescription when it sent one, the HTTP status and the requests spent. Test for kinds
// with [errors.Is] and the sentinels: [ErrCaptchaUnsolvable], [ErrNoSuchTask],
// [ErrZeroBalance], [ErrKeyDoesNotExist], [ErrAPI] (any service error), [ErrTimeout],
// [ErrCancelled], [ErrBudgetExhausted], [ErrNetwork], [ErrHTTPStatus], [ErrBadResponse],
// [ErrInvalidArgument], [ErrInternal] and [ErrClosed].
//
// libcapmonster checks every argument and writes every message: a key or option it refuses
// is an error from [NewClient] matching [ErrInvalidArgument] whose Message is the library's,
// naming the argument (e.g. "max_connections must be at least 1"). The binding adds no rule
// of its own: a value Go can hold and C cannot is converted as Go's own functions would (a
// negative duration counts as 0, as in [time.Sleep]; a number above the C type's maximum is
// capped), then judged by the library. Only a string holding a NUL byte, which a C string
// cannot carry, is refused by the binding itself.
//
// # Contexts
//
// A call whose context is already done returns at once, sending nothing, with an error that
// matches both [ErrCancelled] or [ErrTimeout] and [context.Canceled] or
// [context.DeadlineExceeded].
//
// Otherwise a context reaches the call wherever it is, a request in flight included
// (libcapmonster's cm_cancel and per-call timeout): cancelling it ends the call within
// milliseconds with an error matching [ErrCancelled] and [context.Canceled]; its deadline
// bounds the call (a wait's timeout, a single call's timeout_ms, when nearer than the
// client's own) and ends it as an error matching [ErrTimeout] and
// [context.DeadlineExceeded]. A createTask cancelled in flight may still have created (and
// charged) the task; the library's message says so.
//
// # Concurrency and lifetime
//
// A Client is safe for use by many goroutines at once; they share one connection pool
// ([WithMaxConnections]). [Client.WaitResult] runs on the client's cm_waiter: the library's
// threads (at most max_connections) poll, one dispatcher goroutine on an OS thread of its
// own hands each finished wait to its caller, and a waiting goroutine blocks on a channel,
// holding no OS thread. A hundred thousand concurrent waits on one Client take about 70 OS
// threads and 6 KiB each, mostly their goroutines' stacks (bench/go/scale.sh). The single
// calls block their goroutine's OS thread in C for the request.
//
// [Client.Close] frees the client: it shuts its waits down (they return errors matching
// [ErrClosed] and [ErrCancelled]), waits for the single calls in progress to return, and makes
// every later call fail with [ErrClosed]. A Client that becomes unreachable without Close is
// freed by the garbage collector.
//
// # Linking
//
// By default the package links the library built in this repository
// (../../target/release/libcapmonster.so, header ../../include/capmonster.h, found at run
// time through an rpath): run `cargo build --release` at the repository root first. With the
// build tag capmonster_pkgconfig it uses an installed library found by pkg-config instead
// (`scripts/install.sh PREFIX` installs capmonster.pc):
//
//	PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig CGO_LDFLAGS="-Wl,-rpath,$PREFIX/lib" \
//	    go build -tags capmonster_pkgconfig ./...
package capmonster
