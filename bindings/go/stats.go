package capmonster

/*
#include "capmonster.h"
*/
import "C"

import "runtime"

// Stats are a client's counters since it was created (cm_client_get_stats). Each is exact;
// read while calls run, two may differ by the calls in flight.
type Stats struct {
	// HTTP requests sent, per method (resends included).
	RequestsGetTaskResult, RequestsCreateTask, RequestsGetBalance                    uint64
	RequestsReportIncorrectImage, RequestsReportIncorrectToken, RequestsGetUserAgent uint64
	// Calls that sent a request, by the class of their answer (ready: any success).
	AnswersProcessing, AnswersReady, AnswersAPIError, AnswersHTTPError uint64
	AnswersNetworkError, AnswersTimeout, AnswersOther                  uint64
	// Resends on a stale connection, and a wait's polls after a failed one.
	Retries uint64
	// Requests not sent: the budget of 120 per task; the account guard's local answers.
	BudgetRefusals, GuardRefusals uint64
	// TCP connections opened so far; requests in flight now.
	ConnectionsOpened, RequestsInFlight uint64
	// Waits started and not finished; finished.
	WaitsPending, WaitsFinished uint64
	// Bytes the client's sockets sent and received (HTTP, and TLS records over TLS).
	BytesSent, BytesReceived uint64
	// Connections open now; of them, those carrying no request (open minus in flight).
	ConnectionsOpen, ConnectionsIdle uint64
}

// Stats returns the client's counters; ErrClosed after Close.
func (c *Client) Stats() (Stats, error) {
	h, err := c.s.acquire(0)
	if err != nil {
		return Stats{}, err
	}
	var s C.cm_client_stats
	s.size = C.uint32_t(C.sizeof_cm_client_stats)
	code := C.cm_client_get_stats(h, &s)
	c.s.release()
	runtime.KeepAlive(c)
	if code != C.CM_OK {
		return Stats{}, newError(Code(code), "cm_client_get_stats failed", nil)
	}
	return Stats{
		RequestsGetTaskResult: uint64(s.requests_get_task_result), RequestsCreateTask: uint64(s.requests_create_task),
		RequestsGetBalance: uint64(s.requests_get_balance), RequestsReportIncorrectImage: uint64(s.requests_report_incorrect_image),
		RequestsReportIncorrectToken: uint64(s.requests_report_incorrect_token), RequestsGetUserAgent: uint64(s.requests_get_user_agent),
		AnswersProcessing: uint64(s.answers_processing), AnswersReady: uint64(s.answers_ready),
		AnswersAPIError: uint64(s.answers_api_error), AnswersHTTPError: uint64(s.answers_http_error),
		AnswersNetworkError: uint64(s.answers_network_error), AnswersTimeout: uint64(s.answers_timeout),
		AnswersOther: uint64(s.answers_other), Retries: uint64(s.retries),
		BudgetRefusals: uint64(s.budget_refusals), GuardRefusals: uint64(s.guard_refusals),
		ConnectionsOpened: uint64(s.connections_opened), RequestsInFlight: uint64(s.requests_in_flight),
		WaitsPending: uint64(s.waits_pending), WaitsFinished: uint64(s.waits_finished),
		BytesSent: uint64(s.bytes_sent), BytesReceived: uint64(s.bytes_received),
		ConnectionsOpen: uint64(s.connections_open), ConnectionsIdle: uint64(s.connections_idle),
	}, nil
}
