package main

// Anthropic's Messages API, as much of it as the benchmark needs: a whole `message` answer, and
// the streamed event sequence (message_start, content_block_start, ping, content_block_delta
// text_delta per chunk, content_block_stop, message_delta, message_stop) on the same schedule and
// with the same chunk texts ("t0 ", "t1 ", ...) as the OpenAI stream, so that fd2's translation
// back to OpenAI chunks is checked by the load generator exactly as the passthrough is.

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

var (
	messageBody = []byte(`{"id":"msg_bench","type":"message","role":"assistant",` +
		`"model":"claude-bench","content":[{"type":"text",` +
		`"text":"Hello from the benchmark stand-in."}],"stop_reason":"end_turn",` +
		`"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":7}}`)
	messageHead = []byte("event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_bench","type":"message",` +
		`"role":"assistant","model":"claude-bench","content":[],"stop_reason":null,` +
		`"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":1}}}` + "\n\n" +
		"event: content_block_start\n" +
		`data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` +
		"\n\nevent: ping\n" + `data: {"type":"ping"}` + "\n\n")
	deltaHead = "event: content_block_delta\n" +
		`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"t`
	deltaTail   = ` "}}` + "\n\n"
	messageTail = []byte("event: content_block_stop\n" +
		`data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" +
		`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},` +
		`"usage":{"output_tokens":7}}` + "\n\n" +
		"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n")
)

type messagesRequest struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	Stream    bool   `json:"stream"`
}

func anthropicError(w http.ResponseWriter, status int, message string) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"` +
		message + `"}}`))
}

func (s settings) messages(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		anthropicError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	raw, err := io.ReadAll(r.Body)
	var req messagesRequest
	if err == nil {
		err = json.Unmarshal(raw, &req)
	}
	if err != nil {
		anthropicError(w, http.StatusBadRequest, "bad JSON")
		return
	}
	// What Anthropic itself insists on, so a translation that forgets them fails the run.
	if req.MaxTokens <= 0 || r.Header.Get("anthropic-version") == "" || r.Header.Get("x-api-key") == "" {
		anthropicError(w, http.StatusBadRequest, "max_tokens, anthropic-version and x-api-key are required")
		return
	}
	if !req.Stream {
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		writeJSON(w, messageBody)
		return
	}
	s.messageStream(w)
}

// messageStream sends the message's opening events at once, then the text deltas on the OpenAI
// stream's schedule (first at ttft, then one every gap, from the request's arrival).
func (s settings) messageStream(w http.ResponseWriter) {
	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(http.StatusOK)
	start := time.Now()
	if _, err := w.Write(messageHead); err != nil {
		return
	}
	flusher.Flush()
	buf := make([]byte, 0, len(deltaHead)+len(deltaTail)+8)
	for i := 0; i < s.chunks; i++ {
		if wait := time.Until(start.Add(s.ttft + time.Duration(i)*s.gap)); wait > 0 {
			time.Sleep(wait)
		}
		buf = append(buf[:0], deltaHead...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, deltaTail...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		flusher.Flush()
	}
	_, _ = w.Write(messageTail)
}
