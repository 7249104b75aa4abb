// One process of the cross-language account guard test (scripts/test-budget-processes.sh):
// waits until START_MS (Unix milliseconds, so that the processes of a storm start together),
// then runs ACTION COUNT times through the Go binding and prints what it saw, one line:
//
//	go ACTION: local=L service=S ok=O other=X requests=R
//
// local: the api code EXPECT with no request (the guard's answer); service: the same code with
// requests (the service's); ok: no error; other: anything else (printed to stderr); requests:
// the sum of the calls' request counts. ACTION is wait (COUNT waits at once, one request each
// at most, no first delay), getTaskResult (of TASK_ID), createTask or getBalance (COUNT calls
// from callThreads goroutines at once), or endStops (Client.EndStops once). The client holds
// maxConnections connections, so that the guard's bound (at most max_connections + 1 requests
// a process before the stop) is small.
//
// Usage: CAPMONSTER_BUDGET_FILE=/abs/path guard BASE_URL KEY START_MS ACTION COUNT TASK_ID EXPECT
// (the file the processes share: the script's own, never the user's, so it is required).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

const (
	maxConnections = 4
	callThreads    = 4
	imageTask      = `{"type":"ImageToTextTask","body":"aGVsbG8="}`
)

// tally is what the calls saw; mu guards it.
type tally struct {
	mu                                  sync.Mutex
	local, service, ok, other, requests int
}

// count files one outcome: requests is what a successful call sent (an error carries its own).
func (t *tally) count(action, expect string, requests int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var e *capmonster.Error
	if err != nil && errors.As(err, &e) {
		requests = e.Requests
	}
	t.requests += requests
	expected := e != nil && e.Code == capmonster.CodeAPI && e.APICode == expect
	switch {
	case expected && e.Requests > 0:
		t.service++
	case expected && e.HTTPStatus == 0 && strings.Contains(e.Message, "was not sent"):
		t.local++
	case err == nil:
		t.ok++
	default:
		t.other++
		if t.other <= 3 {
			fmt.Fprintf(os.Stderr, "go %s: %v\n", action, err)
		}
	}
}

func main() {
	if len(os.Args) != 8 || os.Getenv("CAPMONSTER_BUDGET_FILE") == "" {
		log.Fatal("usage: CAPMONSTER_BUDGET_FILE=/absolute/path guard BASE_URL KEY START_MS ACTION COUNT TASK_ID EXPECT")
	}
	startMs, err1 := strconv.ParseInt(os.Args[3], 10, 64)
	n, err2 := strconv.Atoi(os.Args[5])
	taskID, err3 := strconv.ParseInt(os.Args[6], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		log.Fatal(err)
	}
	action, expect := os.Args[4], os.Args[7]
	client, err := capmonster.NewClient(os.Args[2], capmonster.WithBaseURL(os.Args[1]), capmonster.WithoutProxy(),
		capmonster.WithMaxConnections(maxConnections))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	time.Sleep(time.Until(time.UnixMilli(startMs)))

	ctx := context.Background()
	var t tally
	var wg sync.WaitGroup
	switch action {
	case "wait":
		options := capmonster.DefaultWaitOptions()
		options.FirstDelay, options.MaxRequests, options.Timeout = 0, 1, time.Minute
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				result, err := client.WaitResult(ctx, int64(i+1), &options)
				requests := 0
				if result != nil {
					requests = result.Requests
				}
				t.count(action, expect, requests, err)
			}()
		}
	case "getTaskResult", "createTask", "getBalance":
		for thread := range callThreads {
			wg.Add(1)
			share := n / callThreads
			if thread < n%callThreads {
				share++
			}
			go func() {
				defer wg.Done()
				for range share {
					requests, err := call(ctx, client, action, taskID)
					t.count(action, expect, requests, err)
				}
			}()
		}
	case "endStops":
		t.count(action, expect, 0, client.EndStops())
	default:
		log.Fatalf("unknown action %s", action)
	}
	wg.Wait()
	fmt.Printf("go %s: local=%d service=%d ok=%d other=%d requests=%d\n", action, t.local, t.service, t.ok, t.other, t.requests)
}

// call makes one call of the action and says how many requests it sent when it succeeded: a
// task result says, createTask and getBalance send one (they are never retried).
func call(ctx context.Context, client *capmonster.Client, action string, taskID int64) (int, error) {
	switch action {
	case "getTaskResult":
		result, err := client.GetTaskResult(ctx, taskID)
		if err != nil {
			return 0, err
		}
		return result.Requests, nil
	case "createTask":
		_, err := client.CreateTask(ctx, imageTask, "")
		return 1, err
	default:
		_, err := client.GetBalance(ctx)
		return 1, err
	}
}
