package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
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

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")
	contentKey = []byte(`"content":"`)
	// One line reader per open stream, reused by the next stream: at hundreds of streams a
	// second, a fresh 16 KiB buffer each was garbage the load generator's core had to collect.
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16384) }}
)

// runStream keeps -c streams open at once; each worker starts a new stream when its last ended.
func runStream(cfg config) (*recorder, time.Duration) {
	return runWorkers(cfg, true, func(client *http.Client, rec *recorder, t0 time.Time) {
		oneStream(client, cfg, rec, t0)
	})
}

// oneStream reads one streamed completion event by event. Content chunks must read "t0 ", "t1 ",
// ... in order (the stand-in's numbering), then a finish chunk and [DONE]. Gaps go straight into
// the recorder (taken back if the stream fails), so a chunk costs no allocation.
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
	reader := readers.Get().(*bufio.Reader)
	reader.Reset(resp.Body)
	defer func() {
		reader.Reset(nil)
		readers.Put(reader)
	}()
	gapsBefore := len(rec.gaps)
	var ttft float64
	var last time.Time
	expected := make([]byte, 0, 16) // "t<next> ", rebuilt in place
	next, done := 0, false
	for !done {
		line, err := reader.ReadSlice('\n')
		if err != nil {
			rec.gaps = rec.gaps[:gapsBefore]
			rec.fail("stream cut", fmt.Sprintf("after %d chunks: %v", next, err))
			return
		}
		now := time.Now()
		line = bytes.TrimRight(line, "\r\n")
		if !bytes.HasPrefix(line, dataPrefix) {
			continue // blank separators, comments, other fields
		}
		data := bytes.TrimSpace(line[len(dataPrefix):])
		if bytes.Equal(data, doneMarker) {
			done = true
			break
		}
		content, ok := chunkContent(data)
		if !ok {
			rec.gaps = rec.gaps[:gapsBefore]
			rec.fail("bad chunk", string(data))
			return
		}
		if len(content) == 0 {
			continue // role-only or finish chunk
		}
		expected = append(strconv.AppendInt(append(expected[:0], 't'), int64(next), 10), ' ')
		if !bytes.Equal(content, expected) {
			rec.gaps = rec.gaps[:gapsBefore]
			rec.fail("out of order", fmt.Sprintf("chunk %d read %q", next, content))
			return
		}
		if next == 0 {
			ttft = ms(now.Sub(t0))
		} else {
			rec.gaps = append(rec.gaps, ms(now.Sub(last)))
		}
		last = now
		next++
	}
	if cfg.chunks > 0 && next != cfg.chunks {
		rec.gaps = rec.gaps[:gapsBefore]
		rec.fail("missing chunks", fmt.Sprintf("%d of %d content chunks", next, cfg.chunks))
		return
	}
	rec.latency = append(rec.latency, ms(time.Since(t0)))
	rec.ttft = append(rec.ttft, ttft)
	rec.chunks += next
}

// chunkContent returns choices[0].delta.content of one chunk (empty when it has none) and
// whether the chunk is a valid one. The common chunk, valid JSON whose one "content" is a plain
// string, is read in place without decoding (no allocation: at 512 streams the load generator
// reads tens of thousands of chunks a second on one core); any other (escapes, spacing, null,
// no content, several) is decoded in full.
func chunkContent(data []byte) ([]byte, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	if at := bytes.Index(data, contentKey); at >= 0 && bytes.Count(data, contentKey) == 1 {
		rest := data[at+len(contentKey):]
		if end := bytes.IndexByte(rest, '"'); end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			return rest[:end], true
		}
	}
	var c chunk
	if json.Unmarshal(data, &c) != nil || len(c.Choices) == 0 {
		return nil, false
	}
	if content := c.Choices[0].Delta.Content; content != nil {
		return []byte(*content), true
	}
	return nil, true
}
