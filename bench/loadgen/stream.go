package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

type chunk struct {
	Choices []struct {
		Delta struct {
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// runStream keeps -c streams open at once; each worker starts a new stream when its last ended.
func runStream(cfg config) (*recorder, time.Duration) {
	return runWorkers(cfg, true, func(client *http.Client, rec *recorder, t0 time.Time) {
		oneStream(client, cfg, rec, t0)
	})
}

// oneStream reads one streamed completion event by event. Content chunks must read "t0 ", "t1 ",
// ... in order (the stand-in's numbering), then a finish chunk and [DONE].
func oneStream(client *http.Client, cfg config, rec *recorder, t0 time.Time) {
	sent.Add(1)
	resp, err := client.Do(cfg.request())
	if err != nil {
		rec.fail("transport", err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		rec.fail(fmt.Sprintf("status %d", resp.StatusCode), string(body))
		return
	}
	reader := bufio.NewReaderSize(resp.Body, 16384)
	var ttft float64
	var gaps []float64
	var last time.Time
	next, done := 0, false
	for !done {
		line, err := reader.ReadSlice('\n')
		if err != nil {
			rec.fail("stream cut", fmt.Sprintf("after %d chunks: %v", next, err))
			return
		}
		now := time.Now()
		line = bytes.TrimRight(line, "\r\n")
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue // blank separators, comments, other fields
		}
		data := bytes.TrimSpace(line[len("data:"):])
		if bytes.Equal(data, []byte("[DONE]")) {
			done = true
			break
		}
		var c chunk
		if json.Unmarshal(data, &c) != nil || len(c.Choices) == 0 {
			rec.fail("bad chunk", string(data))
			return
		}
		content := c.Choices[0].Delta.Content
		if content == nil || *content == "" {
			continue // role-only or finish chunk
		}
		if *content != "t"+strconv.Itoa(next)+" " {
			rec.fail("out of order", fmt.Sprintf("chunk %d read %q", next, *content))
			return
		}
		if next == 0 {
			ttft = ms(now.Sub(t0))
		} else {
			gaps = append(gaps, ms(now.Sub(last)))
		}
		last = now
		next++
	}
	if cfg.chunks > 0 && next != cfg.chunks {
		rec.fail("missing chunks", fmt.Sprintf("%d of %d content chunks", next, cfg.chunks))
		return
	}
	rec.latency = append(rec.latency, ms(time.Since(t0)))
	rec.ttft = append(rec.ttft, ttft)
	rec.gaps = append(rec.gaps, gaps...)
	rec.chunks += next
}
