// One process of the cross-language budget test (scripts/test-budget-processes.sh): polls one
// task POLLS times through the Go binding and prints how many requests were sent and how many
// the shared budget refused.   Usage: CAPMONSTER_BUDGET_FILE=/tmp/x/budget poller BASE_URL TASK_ID POLLS
// (the file the processes share: the script's own, never the user's, so it is required).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"

	capmonster "github.com/libcapmonster/capmonster-go"
)

func main() {
	if len(os.Args) != 4 || os.Getenv("CAPMONSTER_BUDGET_FILE") == "" {
		log.Fatal("usage: CAPMONSTER_BUDGET_FILE=/absolute/path poller BASE_URL TASK_ID POLLS")
	}
	taskID, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil {
		log.Fatal(err)
	}
	polls, err := strconv.Atoi(os.Args[3])
	if err != nil {
		log.Fatal(err)
	}
	client, err := capmonster.NewClient("budget-processes-key", capmonster.WithBaseURL(os.Args[1]))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	sent, exhausted := 0, 0
	for i := 0; i < polls; i++ {
		_, err := client.GetTaskResult(context.Background(), taskID)
		var e *capmonster.Error
		switch {
		case errors.Is(err, capmonster.ErrBudgetExhausted):
			exhausted++
		case err == nil, errors.As(err, &e) && e.Code == capmonster.CodeAPI: // the emulator refuses beyond 120 too
			sent++
		default:
			log.Fatal(err)
		}
	}
	fmt.Printf("go sent=%d exhausted=%d\n", sent, exhausted)
}
