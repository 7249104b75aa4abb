// Command solve solves one image captcha: CreateTask (ImageToTextTask), then WaitResult, then
// prints the solution and how many requests the wait spent. The Go twin of
// examples/solve_image.c.
//
//	CAPMONSTER_BASE_URL=http://127.0.0.1:PORT go run ./examples/solve        against the emulator
//	CAPMONSTER_CLIENT_KEY=your-key go run ./examples/solve [captcha.png]     against the real service
//
// Without an image file it sends a small built-in sample picture.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/signal"

	capmonster "github.com/libcapmonster/capmonster-go"
)

// A small noisy 80x24 PNG, base64-encoded.
const sampleImageBase64 = "iVBORw0KGgoAAAANSUhEUgAAAFAAAAAYCAAAAABIcSVwAAABRklEQVR42oWU2xUEIQhDqST9F3WL" +
	"sITddRwFhLN+jOODCEnUxhgaYnZjIM1ez3A18ld7+HZ7YHHoYb6DB5tqLSKd9gCerTGoW+Cd8+fI" +
	"AVYgutNgAVAFaQGqACPkwg3Aw4Lc8axfW71OTiRGYUV9U4MVjS9m71iAeAFJhIleCo0U9wCiTRch" +
	"aJa7LXITh3bqpyQr2fcZika1qUS2aVSZGMAOuYzudypA/lRG8cRcmYfR4aF2uNXzVDPyf0ol6fWh" +
	"LzBidNz9QpWJ37YzN/+KpUojkhzdueanXyTU8EjQ5CJJUWU1UhyTMu9xmR23KNEvbaPI35vK8ovA" +
	"egZRUqJzdzQRdt/KfzKTa5FbwXy89vWs38HqgVPi35rclWWJd+7guKhJi6l+gW+FFJxId0nNnclV" +
	"SSNIk+8qmZwipSBoRA9qxJdoXacPAyWAG66wIC4AAAAASUVORK5CYII="

func main() {
	os.Exit(run())
}

func run() int {
	key := os.Getenv("CAPMONSTER_CLIENT_KEY")
	baseURL := os.Getenv("CAPMONSTER_BASE_URL")
	if key == "" && baseURL == "" {
		fmt.Fprintln(os.Stderr, "set CAPMONSTER_CLIENT_KEY (real service) or CAPMONSTER_BASE_URL (emulator)")
		return 2
	}
	if key == "" {
		key = "emulator-demo-key"
	}
	image := sampleImageBase64
	if len(os.Args) > 1 {
		data, err := os.ReadFile(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		image = base64.StdEncoding.EncodeToString(data)
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

	// Ctrl-C cancels the wait.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	taskID, err := client.CreateTask(ctx, map[string]any{"type": "ImageToTextTask", "body": image}, "")
	if err != nil {
		return fail("createTask", err)
	}
	fmt.Println("created task", taskID)

	// The official schedule for image tasks: first poll after 350 ms, then every 200 ms.
	wait := capmonster.WaitOptionsFor("ImageToTextTask")
	result, err := client.WaitResult(ctx, taskID, &wait)
	if err != nil {
		return fail("waiting", err)
	}
	var solution struct {
		Text string `json:"text"`
	}
	if err := result.Decode(&solution); err != nil {
		return fail("decoding", err)
	}
	fmt.Println("solution:", string(result.Solution))
	fmt.Println("text:", solution.Text)
	fmt.Println("requests:", result.Requests)
	return 0
}

func fail(what string, err error) int {
	fmt.Fprintf(os.Stderr, "%s failed: %v\n", what, err)
	var e *capmonster.Error
	if errors.As(err, &e) && e.APICode != "" {
		fmt.Fprintln(os.Stderr, "  service error code:", e.APICode)
	}
	return 1
}
