package main

import (
	"encoding/json"
	"io"
	"math"
	"sort"
	"time"
)

type summary struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

type result struct {
	Mode         string            `json:"mode"`
	URL          string            `json:"url"`
	Concurrency  int               `json:"concurrency"`
	Rate         float64           `json:"rate,omitempty"`
	RampS        float64           `json:"ramp_s"`
	DurationS    float64           `json:"duration_s"`
	Requests     int               `json:"requests"`
	SentInAll    int64             `json:"sent_in_all"`
	Errors       int               `json:"errors"`
	ErrorKinds   map[string]int    `json:"error_kinds"`
	ErrorSamples map[string]string `json:"error_samples"`
	RPS          float64           `json:"rps"`
	LatencyMS    summary           `json:"latency_ms"`
	TTFTMS       *summary          `json:"ttft_ms,omitempty"`
	GapMS        *summary          `json:"gap_ms,omitempty"`
	Chunks       int               `json:"chunks,omitempty"`
	// StartsTogether: for each measured call, how many measured calls (itself included) started
	// within 1 ms of it. About -c when every start is one of a burst, about 1 when spread.
	StartsTogether *summary `json:"starts_within_1ms,omitempty"`
}

// together counts, for each start, the starts no more than half a millisecond either side.
func together(starts []float64) []float64 {
	sorted := append([]float64(nil), starts...)
	sort.Float64s(sorted)
	counts := make([]float64, len(sorted))
	lo, hi := 0, 0
	for i, s := range sorted {
		for sorted[lo] < s-0.5 {
			lo++
		}
		for hi < len(sorted) && sorted[hi] <= s+0.5 {
			hi++
		}
		counts[i] = float64(hi - lo)
	}
	return counts
}

// summarize uses nearest-rank percentiles over every sample (no histogram buckets).
func summarize(samples []float64) summary {
	if len(samples) == 0 {
		return summary{}
	}
	sort.Float64s(samples)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(samples)))) - 1
		if i < 0 {
			i = 0
		}
		return samples[i]
	}
	total := 0.0
	for _, s := range samples {
		total += s
	}
	return summary{
		Count: len(samples), Mean: total / float64(len(samples)),
		P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: samples[len(samples)-1],
	}
}

func report(w io.Writer, mode string, cfg config, rec *recorder, elapsed time.Duration) {
	errors := 0
	for _, n := range rec.errors {
		errors += n
	}
	r := result{
		Mode: mode, URL: cfg.url, Concurrency: cfg.concurrency, DurationS: elapsed.Seconds(),
		Requests: len(rec.latency) + errors, SentInAll: sent.Load(), Errors: errors,
		ErrorKinds: rec.errors, ErrorSamples: rec.samples, RampS: cfg.ramp.Seconds(),
		RPS:       float64(len(rec.latency)) / elapsed.Seconds(),
		LatencyMS: summarize(rec.latency),
	}
	if mode == "open" {
		r.Rate = cfg.rate
		r.Concurrency = 0
	}
	if mode == "stream" {
		ttft, gaps := summarize(rec.ttft), summarize(rec.gaps)
		r.TTFTMS, r.GapMS, r.Chunks = &ttft, &gaps, rec.chunks
	}
	if mode != "open" && len(rec.starts) > 0 {
		starts := summarize(together(rec.starts))
		r.StartsTogether = &starts
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(r)
}
