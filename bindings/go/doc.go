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
// naming the argument (e.g. "max_connections must be at least 1").
//
// # Contexts
//
// A call whose context is already done returns at once, sending nothing, with an error that
// matches both [ErrCancelled] or [ErrTimeout] and [context.Canceled] or
// [context.DeadlineExceeded].
//
// [Client.WaitResult] ends when its context is cancelled (libcapmonster's cm_cancel: at once
// while the wait sleeps between polls; a request already in flight finishes first, bounded by
// the request timeout and the time left) and never outlives the context's deadline.
//
// The single calls ([Client.GetTaskResult], [Client.CreateTask], [Client.GetBalance]) send one
// request that cannot be interrupted once sent: a context deadline nearer than the client's
// request timeout bounds it (the request then runs on a short-lived connection of its own),
// but a cancellation without a deadline is only seen before the request starts. The request
// timeout ([WithRequestTimeout], default 21 s) bounds every request.
//
// # Concurrency and lifetime
//
// A Client is safe for use by many goroutines at once; they share one connection pool.
// [Client.Close] frees it: it cancels the waits in progress, waits for the calls in progress
// to return, and makes every later call fail with [ErrClosed]. A Client that becomes
// unreachable without Close is freed by the garbage collector.
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
