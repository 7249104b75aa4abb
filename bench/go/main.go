// The Go net/http side of the benchmark (see bench/README.md): the same calls as bench.c.
//
//	gobench run URL THREADS CALLS WARMUP
//
// THREADS goroutines share one http.Client (one Transport, MaxIdleConnsPerHost >= THREADS)
// and make CALLS getTaskResult POSTs in all after WARMUP, each answer read in full,
// decoded with encoding/json and checked (errorId 0, status "processing"). Prints the same
// RESULT line as the C programs. Task ids move on every 100 calls, as in bench.c.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const callsPerTask = 100

type answer struct {
	ErrorID int    `json:"errorId"`
	Status  string `json:"status"`
}

type worker struct {
	index    int
	nextCall int64
	errors   int64
	latency  []float64
}

var (
	client *http.Client
	url    string
)

func (w *worker) taskID() int64 {
	id := 1 + int64(w.index)*100000000 + w.nextCall/callsPerTask
	w.nextCall++
	return id
}

func (w *worker) call() int64 {
	id := w.taskID()
	body := `{"clientKey":"bench-key","taskId":` + strconv.FormatInt(id, 10) + `}`
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return w.fail(id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return w.fail(id, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return w.fail(id, err)
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil {
		return w.fail(id, err)
	}
	if resp.StatusCode != 200 || a.ErrorID != 0 || a.Status != "processing" {
		return w.fail(id, fmt.Errorf("HTTP %d, %s", resp.StatusCode, data))
	}
	return 0
}

func (w *worker) fail(id int64, err error) int64 {
	if w.errors == 0 {
		fmt.Fprintf(os.Stderr, "gobench: task %d: %v\n", id, err)
	}
	return 1
}

func main() {
	if len(os.Args) != 6 || os.Args[1] != "run" {
		fmt.Fprintln(os.Stderr, "usage: gobench run URL THREADS CALLS WARMUP")
		os.Exit(2)
	}
	url = os.Args[2] + "/getTaskResult"
	threads, _ := strconv.Atoi(os.Args[3])
	calls, _ := strconv.Atoi(os.Args[4])
	warmup, _ := strconv.Atoi(os.Args[5])
	if threads < 1 || calls < threads {
		fmt.Fprintln(os.Stderr, "run: need 1 <= THREADS <= CALLS")
		os.Exit(2)
	}
	perThread := calls / threads
	calls = perThread * threads
	warmPerThread := warmup / threads
	if warmPerThread < 10 {
		warmPerThread = 10
	}
	client = &http.Client{
		Timeout: 21 * time.Second, // the library's default bound
		Transport: &http.Transport{
			Proxy:               nil, // like cm_client_set_proxy(NULL)
			MaxIdleConns:        threads + 16,
			MaxIdleConnsPerHost: threads + 16,
			IdleConnTimeout:     60 * time.Second,
		},
	}
	workers := make([]*worker, threads)
	latency := make([]float64, calls)
	var warm, done sync.WaitGroup
	start := make(chan struct{})
	warm.Add(threads)
	done.Add(threads)
	for t := range workers {
		w := &worker{index: t, latency: latency[t*perThread : (t+1)*perThread]}
		workers[t] = w
		go func() {
			for i := 0; i < warmPerThread; i++ {
				w.errors += w.call()
			}
			warm.Done()
			<-start
			for i := range w.latency {
				t0 := time.Now()
				w.errors += w.call()
				w.latency[i] = time.Since(t0).Seconds()
			}
			done.Done()
		}()
	}
	warm.Wait()
	var u0, u1 syscall.Rusage
	t0 := time.Now()
	syscall.Getrusage(syscall.RUSAGE_SELF, &u0)
	close(start)
	done.Wait()
	elapsed := time.Since(t0).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &u1)
	us := func(tv syscall.Timeval) float64 { return float64(tv.Sec)*1e6 + float64(tv.Usec) }
	cpu := us(u1.Utime) - us(u0.Utime) + us(u1.Stime) - us(u0.Stime)
	sys := us(u1.Stime) - us(u0.Stime)
	var errors int64
	for _, w := range workers {
		errors += w.errors
	}
	sort.Float64s(latency)
	fmt.Printf("RESULT threads=%d calls=%d warmup=%d elapsed_s=%.6f us_per_call=%.3f calls_per_s=%.1f p50_us=%.2f p99_us=%.2f cpu_us_per_call=%.2f sys_us_per_call=%.2f vcsw_per_call=%.2f errors=%d\n",
		threads, calls, warmPerThread*threads, elapsed, elapsed*1e6/float64(calls), float64(calls)/elapsed,
		latency[calls/2]*1e6, latency[int(float64(calls)*0.99)]*1e6, cpu/float64(calls), sys/float64(calls),
		float64(u1.Nvcsw-u0.Nvcsw)/float64(calls), errors)
	if errors != 0 {
		os.Exit(1)
	}
}
