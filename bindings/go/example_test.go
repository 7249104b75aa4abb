package capmonster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// The common flow: create a task, wait for it on the official schedule of its type, decode
// the solution. (The tests point CAPMONSTER_BASE_URL at the project's emulator, which reads
// every image as "answer".)
func Example() {
	client, err := capmonster.NewClient(os.Getenv("CAPMONSTER_CLIENT_KEY"),
		capmonster.WithBaseURL(os.Getenv("CAPMONSTER_BASE_URL")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	image := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	taskID, err := client.CreateTask(ctx, map[string]any{"type": "ImageToTextTask", "body": image}, "")
	if err != nil {
		log.Fatal(err)
	}

	opts := capmonster.WaitOptionsFor("ImageToTextTask")
	result, err := client.WaitResult(ctx, taskID, &opts)
	if errors.Is(err, capmonster.ErrCaptchaUnsolvable) {
		log.Fatal("the service could not read the image")
	} else if err != nil {
		log.Fatal(err)
	}

	var solution struct {
		Text string `json:"text"`
	}
	if err := result.Decode(&solution); err != nil {
		log.Fatal(err)
	}
	fmt.Println("text:", solution.Text)
	// Output: text: answer
}

func ExampleClient_GetBalance() {
	client, err := capmonster.NewClient(os.Getenv("CAPMONSTER_CLIENT_KEY"),
		capmonster.WithBaseURL(os.Getenv("CAPMONSTER_BASE_URL")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	balance, err := client.GetBalance(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("balance: %.3f USD\n", balance)
	// Output: balance: 345.678 USD
}

func ExampleWaitOptionsFor() {
	opts := capmonster.WaitOptionsFor("ImageToTextTask")
	fmt.Println(opts.FirstDelay, opts.Interval, opts.Timeout, opts.MaxRequests)

	// Change what you need, e.g. a longer timeout.
	opts = capmonster.WaitOptionsFor("RecaptchaV2TaskProxyless")
	opts.Timeout *= 2
	fmt.Println(opts.FirstDelay, opts.Interval, opts.Timeout, opts.MaxRequests)
	// Output:
	// 350ms 200ms 10s 120
	// 1s 3s 6m0s 120
}

func ExampleWaitOptionsForTask() {
	// The class of a CustomTask and nocache count, as in the official SDKs.
	opts, err := capmonster.WaitOptionsForTask(map[string]any{"type": "CustomTask", "class": "Imperva"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(opts.FirstDelay, opts.Interval, opts.Timeout, opts.MaxRequests)
	opts, _ = capmonster.WaitOptionsForTask(`{"type":"RecaptchaV2TaskProxyless","nocache":true}`)
	fmt.Println(opts.FirstDelay, opts.Interval, opts.Timeout, opts.MaxRequests)
	// Output:
	// 1s 1s 15s 120
	// 10s 3s 3m0s 120
}

// Errors are *capmonster.Error values: test their kind with errors.Is, read the details
// with errors.As.
func ExampleError() {
	client, err := capmonster.NewClient(os.Getenv("CAPMONSTER_CLIENT_KEY"),
		capmonster.WithBaseURL(os.Getenv("CAPMONSTER_BASE_URL")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.GetTaskResult(context.Background(), 900000001) // no such task
	var e *capmonster.Error
	if errors.Is(err, capmonster.ErrNoSuchTask) && errors.As(err, &e) {
		fmt.Println(e.Code, e.APICode, e.Requests)
	}
	// Output: CM_ERR_API ERROR_NO_SUCH_CAPCHA_ID 1
}

// A context ends a wait: here its deadline, nearer than the wait's own timeout.
func ExampleClient_WaitResult() {
	client, err := capmonster.NewClient(os.Getenv("CAPMONSTER_CLIENT_KEY"),
		capmonster.WithBaseURL(os.Getenv("CAPMONSTER_BASE_URL")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// The emulator's own field emulatorSolveAfterMs keeps this task processing for a minute.
	taskID, err := client.CreateTask(context.Background(),
		`{"type":"ImageToTextTask","body":"aGVsbG8=","emulatorSolveAfterMs":60000}`, "")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	opts := capmonster.WaitOptionsFor("ImageToTextTask")
	_, err = client.WaitResult(ctx, taskID, &opts)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), errors.Is(err, capmonster.ErrTimeout))
	// Output: true true
}

// Solves at once, each a goroutine blocked on a channel while the library creates its task
// and waits for it on the client's waiter. A createTask that fails is an *Error with task id 0.
func ExampleClient_Solve() {
	client, err := capmonster.NewClient(os.Getenv("CAPMONSTER_CLIENT_KEY"),
		capmonster.WithBaseURL(os.Getenv("CAPMONSTER_BASE_URL")))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	image := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	tasks := []map[string]any{
		{"type": "ImageToTextTask", "body": image},
		{"type": "NoSuchTaskType"},
	}
	outcomes := make([]string, len(tasks))
	done := make(chan struct{})
	for i, task := range tasks {
		go func() {
			defer func() { done <- struct{}{} }()
			// nil options: the task's own schedule (WaitOptionsForTask).
			result, err := client.Solve(ctx, task, "", nil)
			var e *capmonster.Error
			switch {
			case errors.As(err, &e) && e.TaskID == 0:
				outcomes[i] = "not created: " + e.APICode
			case err != nil:
				outcomes[i] = err.Error()
			default:
				text, _ := result.SolutionString("text")
				outcomes[i] = "text: " + text
			}
		}()
	}
	for range tasks {
		<-done
	}
	for _, outcome := range outcomes {
		fmt.Println(outcome)
	}
	// Output:
	// text: answer
	// not created: ERROR_TASK_NOT_SUPPORTED
}
