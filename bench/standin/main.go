// Command standin is the benchmark's OpenAI-compatible upstream: chat completions (whole or
// streamed), embeddings and models, with zero or fixed delays. It also answers Anthropic's
// Messages API (POST /v1/messages, whole or streamed on the same schedule) so that fd2's
// translation to Anthropic is measured against its passthrough in the same run. It is written in Go with the
// standard library only, so that at the rates fd2 is measured it is never the bottleneck (the
// harness measures its ceiling and flags results near it).
//
// Streamed chunks carry their index in the content ("t0 ", "t1 ", ...) so a load generator can
// check that every chunk arrived, in order. A chat request may ask for its own stream shape in
// its metadata ("standin_shape": "TTFT_MS,CHUNKS,GAP_MS"); otherwise the flags' shape is used.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type settings struct {
	delay  time.Duration // before a whole (non-streamed) answer
	ttft   time.Duration // before the first streamed chunk
	gap    time.Duration // between streamed chunks
	chunks int
}

type chatRequest struct {
	Model    string            `json:"model"`
	Stream   bool              `json:"stream"`
	Metadata map[string]string `json:"metadata"`
}

// shapeKey in a request's metadata (OpenAI's free-form string map, which gateways relay) asks
// for another stream shape than the flags': "TTFT_MS,CHUNKS,GAP_MS". The harness uses it for
// 512 streams, whose chunk rate at the default shape the tools' core cannot serve with headroom.
const shapeKey = "standin_shape"

// withShape returns the settings with the request's own stream shape, if it asks for a valid one.
func (s settings) withShape(metadata map[string]string) (settings, bool) {
	text, asked := metadata[shapeKey]
	if !asked {
		return s, true
	}
	parts := strings.Split(text, ",")
	if len(parts) != 3 {
		return s, false
	}
	ttft, errT := strconv.ParseFloat(parts[0], 64)
	chunks, errC := strconv.Atoi(parts[1])
	gap, errG := strconv.ParseFloat(parts[2], 64)
	if errT != nil || errC != nil || errG != nil || ttft < 0 || chunks < 1 || gap < 0 {
		return s, false
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	s.ttft, s.chunks, s.gap = ms(ttft), chunks, ms(gap)
	return s, true
}

var (
	chatBody = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,` +
		`"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",` +
		`"content":"Hello from the benchmark stand-in."},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}`)
	embeddingBody = []byte(`{"object":"list","data":[{"object":"embedding","index":0,` +
		`"embedding":[0.0023,-0.0093,0.0158,-0.0041,0.0127,0.0072,-0.0011,0.0035]}],` +
		`"model":"text-embedding-3-small","usage":{"prompt_tokens":5,"total_tokens":5}}`)
	modelsBody = []byte(`{"object":"list","data":[{"id":"gpt-4o-mini","object":"model",` +
		`"created":1700000000,"owned_by":"bench"}]}`)
	chunkHead = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,` +
		`"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"t`
	chunkTail = ` "},"finish_reason":null}]}` + "\n\n"
	lastChunk = []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk",` +
		`"created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},` +
		`"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
)

func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

func (s settings) chat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"use POST","type":"invalid_request_error"}}`, 405)
		return
	}
	raw, err := io.ReadAll(r.Body)
	var req chatRequest
	if err == nil {
		err = json.Unmarshal(raw, &req)
	}
	shaped, ok := s.withShape(req.Metadata)
	if err != nil || !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"message":"bad JSON or metadata.standin_shape","type":"invalid_request_error","param":null,"code":null}}`))
		return
	}
	if !req.Stream {
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		writeJSON(w, chatBody)
		return
	}
	shaped.stream(w)
}

// stream keeps a fixed schedule (first chunk at ttft, then one every gap) measured from the
// request's arrival, so the gaps a client sees are the stand-in's plus whatever the path adds.
func (s settings) stream(w http.ResponseWriter) {
	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	start := time.Now()
	buf := make([]byte, 0, len(chunkHead)+len(chunkTail)+8)
	for i := 0; i < s.chunks; i++ {
		if wait := time.Until(start.Add(s.ttft + time.Duration(i)*s.gap)); wait > 0 {
			time.Sleep(wait)
		}
		buf = append(buf[:0], chunkHead...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, chunkTail...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		flusher.Flush()
	}
	_, _ = w.Write(lastChunk)
}

func (s settings) embeddings(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	writeJSON(w, embeddingBody)
}

func models(w http.ResponseWriter, _ *http.Request) { writeJSON(w, modelsBody) }

func main() {
	addr := flag.String("addr", "127.0.0.1:9200", "listen address (loopback)")
	delay := flag.Duration("delay", 0, "fixed delay before a whole answer (0: none)")
	ttft := flag.Duration("ttft", 0, "time to the first streamed chunk")
	gap := flag.Duration("gap", 0, "time between streamed chunks")
	chunks := flag.Int("chunks", 8, "content chunks per streamed answer")
	cpuprofile := flag.String("cpuprofile", "", "write a Go CPU profile to this file until SIGTERM")
	flag.Parse()
	if *cpuprofile != "" {
		profile(*cpuprofile)
	}
	s := settings{delay: *delay, ttft: *ttft, gap: *gap, chunks: *chunks}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", s.chat)
	mux.HandleFunc("/v1/embeddings", s.embeddings)
	mux.HandleFunc("/v1/models", models)
	mux.HandleFunc("/v1/messages", s.messages)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The harness waits for this line before it sends load.
	fmt.Printf("standin listening on %s\n", ln.Addr())
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(server.Serve(ln))
}

// profile records where the stand-in's time goes until it is told to stop (SIGTERM or SIGINT).
func profile(path string) {
	out, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(out)
	}
	if err != nil {
		log.Fatal(err)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		pprof.StopCPUProfile()
		_ = out.Close()
		os.Exit(0)
	}()
}
