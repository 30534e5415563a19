// Command loadgen drives HTTP load and prints one JSON result. Modes:
//
//	closed: -c workers each send the next request when the last one ended (throughput, latency)
//	open:   requests start on a fixed schedule (-rate per second) whatever the answers do, and
//	        latency counts from the intended start, so queueing is never hidden
//	stream: -c concurrent streamed chat completions; time to first chunk, gaps between chunks,
//	        and a check that every chunk arrived once and in order. By default all -c streams
//	        start at once (and, all lasting alike, stay in step: every start is one of a burst
//	        of -c); -ramp spreads the first starts evenly over a duration, so that in steady
//	        state -c streams are open with their starts spread out, as real clients' are
//
// Every answer is checked: a status other than 200, a transport failure or a body that is not
// the expected JSON (or stream) is an error, counted by kind.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sent counts every request started, warm-up included, so CPU per request can be derived.
var sent atomic.Int64

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

type config struct {
	url, method, expect string
	body                []byte
	headers             http.Header
	concurrency, chunks int
	rate                float64
	duration, warmup    time.Duration
	ramp                time.Duration // worker i first starts at i*ramp/concurrency
	pause               time.Duration // a worker's wait between one answer's end and its next request
}

// recorder gathers the samples of one goroutine; they are merged at the end (no locks per request).
type recorder struct {
	latency, ttft, gaps []float64 // milliseconds
	starts              []float64 // ms after the load began, of the calls measured
	errors              map[string]int
	samples             map[string]string
	chunks              int
}

func newRecorder() *recorder {
	return &recorder{errors: map[string]int{}, samples: map[string]string{}}
}

func (r *recorder) fail(kind, detail string) {
	r.errors[kind]++
	if _, seen := r.samples[kind]; !seen {
		if len(detail) > 200 {
			detail = detail[:200]
		}
		r.samples[kind] = detail
	}
}

func (r *recorder) merge(o *recorder) {
	r.latency = append(r.latency, o.latency...)
	r.ttft = append(r.ttft, o.ttft...)
	r.gaps = append(r.gaps, o.gaps...)
	r.starts = append(r.starts, o.starts...)
	r.chunks += o.chunks
	for k, v := range o.errors {
		r.errors[k] += v
	}
	for k, v := range o.samples {
		if _, seen := r.samples[k]; !seen {
			r.samples[k] = v
		}
	}
}

func newClient(cfg config) *http.Client {
	transport := &http.Transport{
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: cfg.concurrency + 64,
		DisableCompression:  true,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: transport, Timeout: 60 * time.Second}
}

func (cfg config) request() *http.Request {
	var body io.Reader
	if cfg.body != nil {
		body = bytes.NewReader(cfg.body)
	}
	req, err := http.NewRequest(cfg.method, cfg.url, body)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for k, v := range cfg.headers {
		req.Header[k] = v
	}
	return req
}

// once sends one whole-answer request and checks it; ok reports a valid answer.
func once(client *http.Client, cfg config, rec *recorder) bool {
	sent.Add(1)
	resp, err := client.Do(cfg.request())
	if err != nil {
		rec.fail("transport", err.Error())
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		rec.fail("read", err.Error())
		return false
	}
	if resp.StatusCode != http.StatusOK {
		rec.fail(fmt.Sprintf("status %d", resp.StatusCode), string(body))
		return false
	}
	if problem := checkBody(cfg.expect, body); problem != "" {
		rec.fail("bad body", problem+": "+string(body))
		return false
	}
	return true
}

func main() {
	var headers headerFlags
	cfg := config{headers: http.Header{}}
	mode := flag.String("mode", "closed", "closed, open or stream")
	flag.StringVar(&cfg.url, "url", "", "target URL")
	flag.StringVar(&cfg.method, "method", "POST", "HTTP method")
	flag.StringVar(&cfg.expect, "expect", "chat", "answer to expect: chat, embeddings, models, any")
	body := flag.String("body", "", "request body (JSON)")
	flag.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	flag.IntVar(&cfg.concurrency, "c", 1, "concurrent requests or streams")
	flag.IntVar(&cfg.chunks, "chunks", 0, "stream mode: content chunks each stream must carry (0: any)")
	flag.Float64Var(&cfg.rate, "rate", 100, "open mode: requests per second")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured time before it")
	flag.DurationVar(&cfg.ramp, "ramp", 0,
		"closed and stream modes: spread the workers' first starts evenly over this time "+
			"(0: all start at once); -warmup must be at least as long")
	flag.DurationVar(&cfg.pause, "pause", 0,
		"closed and stream modes: each worker waits this long after an answer before its next "+
			"request (0: at once); the server then meets each request quiet, its cores maybe idle")
	cpuprofile := flag.String("cpuprofile", "", "write a Go CPU profile of the run to this file")
	flag.Parse()
	if cfg.url == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -url is required")
		os.Exit(2)
	}
	if cfg.ramp < 0 || cfg.warmup < cfg.ramp {
		// Measuring while workers are still starting would mix a growing load into the figures.
		fmt.Fprintln(os.Stderr, "loadgen: -ramp must be between 0 and -warmup")
		os.Exit(2)
	}
	if *body != "" {
		cfg.body = []byte(*body)
		cfg.headers.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "loadgen: bad header %q\n", h)
			os.Exit(2)
		}
		cfg.headers.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if *cpuprofile != "" {
		// Where the load generator's own time goes (bench/README.md: is it the bottleneck?).
		out, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	var rec *recorder
	var elapsed time.Duration
	switch *mode {
	case "closed":
		rec, elapsed = runClosed(cfg)
	case "open":
		rec, elapsed = runOpen(cfg)
	case "stream":
		rec, elapsed = runStream(cfg)
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown mode %q\n", *mode)
		os.Exit(2)
	}
	report(os.Stdout, *mode, cfg, rec, elapsed)
}

// runClosed: each worker loops until the deadline; only requests started after the warm-up count.
func runClosed(cfg config) (*recorder, time.Duration) {
	return runWorkers(cfg, false, func(client *http.Client, rec *recorder, t0 time.Time) {
		if once(client, cfg, rec) {
			rec.latency = append(rec.latency, ms(time.Since(t0)))
		}
	})
}

// runWorkers keeps -c workers calling work back to back until the deadline. A call started
// during the warm-up records into a scratch recorder that is thrown away. With atLeastOnce every
// worker makes one call even when that call outlasts the run (a stream longer than -duration).
// With -ramp, worker i makes its first call i*ramp/c after the start; as calls of equal length
// follow back to back, the starts stay spread out (the warm-up covers the ramp, so every
// measured call runs beside all -c workers).
func runWorkers(
	cfg config, atLeastOnce bool, work func(client *http.Client, rec *recorder, t0 time.Time),
) (*recorder, time.Duration) {
	client := newClient(cfg)
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	deadline := measureFrom.Add(cfg.duration)
	recs := make([]*recorder, cfg.concurrency)
	var wg sync.WaitGroup
	for i := range recs {
		recs[i] = newRecorder()
		wg.Add(1)
		offset := cfg.ramp * time.Duration(i) / time.Duration(cfg.concurrency)
		go func(rec *recorder) {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(offset)))
			scratch := newRecorder()
			for first := atLeastOnce; first || time.Now().Before(deadline); first = false {
				t0 := time.Now()
				target := rec
				if t0.Before(measureFrom) {
					target = scratch
				}
				target.starts = append(target.starts, ms(t0.Sub(start)))
				work(client, target, t0)
				if cfg.pause > 0 {
					time.Sleep(cfg.pause)
				}
			}
		}(recs[i])
	}
	wg.Wait()
	return mergeAll(recs), time.Since(measureFrom)
}

// runOpen: request i is due at start+i/rate; latency counts from when it was due.
func runOpen(cfg config) (*recorder, time.Duration) {
	cfg.concurrency = int(cfg.rate) // idle pool sized for about a second of requests
	client := newClient(cfg)
	interval := time.Duration(float64(time.Second) / cfg.rate)
	start := time.Now()
	measureFrom := start.Add(cfg.warmup)
	deadline := measureFrom.Add(cfg.duration)
	results := make(chan *recorder, 1024)
	total := newRecorder()
	var collected sync.WaitGroup
	collected.Add(1)
	go func() {
		defer collected.Done()
		for r := range results {
			total.merge(r)
		}
	}()
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(deadline) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func(due time.Time) {
			defer wg.Done()
			rec := newRecorder()
			if once(client, cfg, rec) {
				rec.latency = append(rec.latency, ms(time.Since(due)))
			}
			if !due.Before(measureFrom) {
				results <- rec
			}
		}(due)
	}
	wg.Wait()
	close(results)
	collected.Wait()
	return total, cfg.duration
}

func mergeAll(recs []*recorder) *recorder {
	total := newRecorder()
	for _, r := range recs {
		total.merge(r)
	}
	return total
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
