// Command many solves many image captchas at once on one Client: a bounded number of
// goroutines create the tasks (each createTask holds a connection while it runs), and each
// created task is waited for on a goroutine of its own (WaitResult runs on the client's
// cm_waiter: a wait costs a goroutine, not an OS thread). Every outcome is collected; the
// failures are counted by kind (the library's code, and the service's errorCode for
// CM_ERR_API).
//
//	CAPMONSTER_BASE_URL=http://127.0.0.1:PORT go run ./examples/many -n 500    against the emulator
//	CAPMONSTER_CLIENT_KEY=your-key go run ./examples/many a.png b.png ...      against the real service
//
// It solves -n copies of a small built-in sample image (default 100; 0 for none) and each
// image file given. Ctrl-C cancels what is in progress. Exit status: 0 when every captcha was
// solved, 1 when some failed, 2 on bad usage.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"sync"
	"time"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// A small 1x1 PNG, base64-encoded: the emulator reads every image as "answer".
const sampleImageBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="

// outcome is what became of one captcha.
type outcome struct {
	text     string // the solution's text when solved
	err      error
	requests int // getTaskResult requests its wait spent
}

func main() {
	os.Exit(run())
}

func run() int {
	copies := flag.Int("n", 100, "copies of the built-in sample image to solve")
	creators := flag.Int("workers", 8, "goroutines creating tasks at once")
	timeout := flag.Duration("timeout", 5*time.Minute, "bound on the whole run")
	flag.Parse()
	if *copies < 0 || *creators < 1 {
		fmt.Fprintln(os.Stderr, "usage: many [-n COPIES] [-workers N] [-timeout D] [IMAGE...]")
		return 2
	}
	key := os.Getenv("CAPMONSTER_CLIENT_KEY")
	baseURL := os.Getenv("CAPMONSTER_BASE_URL")
	if key == "" && baseURL == "" {
		fmt.Fprintln(os.Stderr, "set CAPMONSTER_CLIENT_KEY (real service) or CAPMONSTER_BASE_URL (emulator)")
		return 2
	}
	if key == "" {
		key = "emulator-demo-key"
	}
	images := make([]string, 0, *copies+flag.NArg())
	for range *copies {
		images = append(images, sampleImageBase64)
	}
	for _, path := range flag.Args() {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		images = append(images, base64.StdEncoding.EncodeToString(data))
	}

	var opts []capmonster.Option
	if baseURL != "" {
		opts = append(opts, capmonster.WithBaseURL(baseURL))
	}
	client, err := capmonster.NewClient(key, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	start := time.Now()
	outcomes := solveAll(ctx, client, images, *creators)
	return report(outcomes, time.Since(start))
}

// solveAll solves every image and returns their outcomes, in the images' order.
func solveAll(ctx context.Context, client *capmonster.Client, images []string, creators int) []outcome {
	outcomes := make([]outcome, len(images)) // each goroutine writes its own element only
	next := make(chan int)
	var creating, waiting sync.WaitGroup
	for range creators {
		creating.Add(1)
		go func() {
			defer creating.Done()
			for i := range next {
				task := map[string]any{"type": "ImageToTextTask", "body": images[i]}
				id, err := client.CreateTask(ctx, task, "")
				if err != nil {
					outcomes[i].err = err
					continue
				}
				waiting.Add(1)
				go func() {
					defer waiting.Done()
					opts := capmonster.WaitOptionsFor("ImageToTextTask")
					res, err := client.WaitResult(ctx, id, &opts)
					if err != nil {
						outcomes[i].err = err
						var e *capmonster.Error
						if errors.As(err, &e) {
							outcomes[i].requests = e.Requests
						}
						return
					}
					outcomes[i].requests = res.Requests
					var solution struct {
						Text string `json:"text"`
					}
					if err := res.Decode(&solution); err != nil {
						outcomes[i].err = err
						return
					}
					outcomes[i].text = solution.Text
				}()
			}
		}()
	}
	for i := range images {
		next <- i
	}
	close(next)
	creating.Wait()
	waiting.Wait()
	return outcomes
}

// report prints how many were solved and the failures by kind, and returns the exit status.
func report(outcomes []outcome, elapsed time.Duration) int {
	solved, requests := 0, 0
	kinds := map[string]int{}
	for _, o := range outcomes {
		requests += o.requests
		if o.err == nil {
			solved++
			continue
		}
		kinds[kind(o.err)]++
	}
	fmt.Printf("captchas: %d, solved: %d, failed: %d\n", len(outcomes), solved, len(outcomes)-solved)
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("  %s: %d\n", name, kinds[name])
	}
	fmt.Printf("getTaskResult requests: %d\n", requests)
	fmt.Printf("elapsed: %.1f s\n", elapsed.Seconds())
	if solved != len(outcomes) {
		return 1
	}
	return 0
}

// kind names the kind of a failure: the library's code, with the service's errorCode for
// CM_ERR_API.
func kind(err error) string {
	var e *capmonster.Error
	if !errors.As(err, &e) {
		return "other: " + err.Error()
	}
	if e.Code == capmonster.CodeAPI {
		return e.Code.String() + " " + e.APICode
	}
	return e.Code.String()
}
