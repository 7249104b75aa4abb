// The latency benchmark's Go contender (see bench/README.md, "Latency"): plain net/http, a
// goroutine per wait, no connection cap, on the same schedule and server as bench/latency's C
// driver, printing the same LATENCY line.
//
//	latency-go API_URL CONTROL_PORT N INTERVAL_MS SPREAD_MS READY_MS DELAY_MS
//
// API_URL is the emulator (HTTP/1.1) or nginx in front of it (https: HTTP/2 when the server
// offers it through ALPN, as net/http does by default; the CA file in LATENCY_CA_FILE).
// CONTROL_PORT is the emulator's own port on 127.0.0.1. Wait j sleeps SPREAD_MS*j/N, then
// polls getTaskResult, sleeping INTERVAL_MS after each processing answer, until ready.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const key = "bench-key"

type answer struct {
	ErrorID  int    `json:"errorId"`
	Status   string `json:"status"`
	Solution struct {
		ReadyAtUs string `json:"emulatorReadyAtUs"`
	} `json:"solution"`
}

type record struct {
	retWall   time.Time
	readyWall float64 // ms since the Unix epoch; -1 when the answer had no stamp
	ok        bool
	requests  int
	err       string
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "latency-go: "+format+"\n", args...)
	os.Exit(2)
}

func control(port int, method, path, body string) []byte {
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), strings.NewReader(body))
	// A connection per request, never the measured pool's, so that the emulator's connection
	// counter shows the contender's connections plus exactly two (POST tasks, GET stats).
	req.Close = true
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		fail("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		fail("%s %s: HTTP %d %s", method, path, resp.StatusCode, out)
	}
	return out
}

// The process's threads (/proc/self/task entries) and a figure of /proc/self/status in KiB.
func threads() int {
	entries, _ := os.ReadDir("/proc/self/task")
	return len(entries)
}

func statusKiB(field string) int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			v, _ := strconv.ParseInt(strings.Fields(line[len(field):])[0], 10, 64)
			return v
		}
	}
	return -1
}

func percentile(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := (len(sorted)*p+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func main() {
	if len(os.Args) != 8 {
		fmt.Fprintf(os.Stderr, "usage: %s API_URL CONTROL_PORT N INTERVAL_MS SPREAD_MS READY_MS DELAY_MS\n", os.Args[0])
		os.Exit(2)
	}
	url := strings.TrimRight(os.Args[1], "/")
	num := func(i int) int {
		v, err := strconv.Atoi(os.Args[i])
		if err != nil || v < 0 {
			fail("bad argument %q", os.Args[i])
		}
		return v
	}
	port, n, interval, spread, readyMs, delay := num(2), num(3), num(4), num(5), num(6), num(7)
	if n < 1 {
		fail("N must be at least 1")
	}

	// No cap on connections; idle ones kept for every wait, as a program written for this would.
	transport := &http.Transport{
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: n,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if ca := os.Getenv("LATENCY_CA_FILE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			fail("LATENCY_CA_FILE: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("LATENCY_CA_FILE: no certificate")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	client := &http.Client{Transport: transport, Timeout: 21 * time.Second}

	var peakThreads atomic.Int64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if t := int64(threads()); t > peakThreads.Load() {
				peakThreads.Store(t)
			}
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	control(port, "POST", "/_emulator/reset", "")
	var made struct {
		FirstTaskID int64 `json:"firstTaskId"`
	}
	body := fmt.Sprintf(`{"type":"ImageToTextTask","count":%d,"readyAfterFirstPollMs":%d}`, n, readyMs)
	if err := json.Unmarshal(control(port, "POST", "/_emulator/tasks", body), &made); err != nil || made.FirstTaskID <= 0 {
		fail("POST /_emulator/tasks: %v", err)
	}

	var newConns, protoH2 atomic.Int64
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			newConns.Add(1)
		}
	}}
	poll := func(task int64) (answer, error) {
		var a answer
		req, err := http.NewRequest("POST", url+"/getTaskResult",
			bytes.NewReader([]byte(fmt.Sprintf(`{"clientKey":%q,"taskId":%d}`, key, task))))
		if err != nil {
			return a, err
		}
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := client.Do(req)
		if err != nil {
			return a, err
		}
		defer resp.Body.Close()
		if resp.ProtoMajor == 2 {
			protoH2.Add(1)
		}
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return a, err
		}
		if resp.StatusCode != 200 {
			return a, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return a, json.Unmarshal(data, &a)
	}

	recs := make([]record, n)
	var wg sync.WaitGroup
	start := time.Now()
	for j := 0; j < n; j++ {
		wg.Add(1)
		go func(j int) {
			defer wg.Done()
			rec := &recs[j]
			time.Sleep(time.Duration(int64(spread) * int64(j) / int64(n) * int64(time.Millisecond)))
			// Bounded like the library's budget: at most 120 requests per task.
			for rec.requests < 120 {
				a, err := poll(made.FirstTaskID + int64(j))
				rec.requests++
				if err != nil {
					rec.err = err.Error()
					return
				}
				if a.ErrorID != 0 {
					rec.err = "errorId " + strconv.Itoa(a.ErrorID)
					return
				}
				if a.Status == "ready" {
					rec.retWall = time.Now()
					rec.ok = true
					rec.readyWall = -1
					if us, err := strconv.ParseInt(a.Solution.ReadyAtUs, 10, 64); err == nil {
						rec.readyWall = float64(us) / 1e3
					}
					return
				}
				time.Sleep(time.Duration(interval) * time.Millisecond)
			}
		}(j)
	}
	addMs := float64(time.Since(start).Microseconds()) / 1e3
	wg.Wait()
	allDone := time.Since(start).Seconds()
	close(sampling)
	<-sampled
	hwm := statusKiB("VmHWM:")

	ok, reqSum, firstFail := 0, 0, -1
	late := make([]float64, 0, n)
	for j := range recs {
		r := &recs[j]
		reqSum += r.requests
		if r.ok {
			ok++
			if r.readyWall > 0 {
				late = append(late, float64(r.retWall.UnixNano())/1e6-r.readyWall)
			}
		} else if firstFail < 0 {
			firstFail = j
		}
	}
	if firstFail >= 0 {
		fmt.Fprintf(os.Stderr, "latency-go: wait %d ended: %s after %d requests\n", firstFail, recs[firstFail].err,
			recs[firstFail].requests)
	}
	sort.Float64s(late)
	var stats struct {
		Connections     int64            `json:"connections"`
		PeakConnections int64            `json:"peakConnections"`
		Methods         map[string]int64 `json:"methods"`
	}
	_ = json.Unmarshal(control(port, "GET", "/_emulator/stats", ""), &stats)
	schedule := 1
	for k := 0; k*(interval+delay) < readyMs; k++ {
		schedule++
	}
	// The Go runtime's own threads count as the contender's: there is no "library" apart.
	fmt.Printf("LATENCY contender=go n=%d interval_ms=%d spread_ms=%d ready_ms=%d delay_ms=%d add_ms=%.1f "+
		"all_done_s=%.2f ok=%d hang=0 req_per_wait=%.3f req_schedule=%d emu_requests=%d late_n=%d "+
		"late_p50_ms=%.1f late_p99_ms=%.1f late_max_ms=%.1f threads_peak=%d hwm_kib=%d emu_connections=%d "+
		"emu_peak_connections=%d client_connections=%d h2_answers=%d\n",
		n, interval, spread, readyMs, delay, addMs, allDone, ok, float64(reqSum)/float64(n), schedule,
		stats.Methods["getTaskResult"], len(late), percentile(late, 50), percentile(late, 99),
		percentile(late, 100), peakThreads.Load(), hwm, stats.Connections, stats.PeakConnections,
		newConns.Load(), protoH2.Load())
	if ok != n {
		os.Exit(1)
	}
}
