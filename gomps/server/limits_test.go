//go:build cgo

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/gompstest"
)

// newTimedServer serves a Server over r through the http.Server its
// HTTPServer returns (the timeouts serve uses).
func newTimedServer(t *testing.T, r *gomps.Reranker, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(cfg)
	if r != nil {
		require.NoError(t, s.SetReranker(r))
	}
	hs := httptest.NewUnstartedServer(s)
	hs.Config = s.HTTPServer(nil)
	hs.Start()
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

// rawRequest opens a connection and sends a POST's headers, declaring a
// JSON body of length bytes, plus the first part of the body.
func rawRequest(t *testing.T, hs *httptest.Server, path string, length int, part string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, length, part)
	require.NoError(t, err)
	return conn, bufio.NewReader(conn)
}

// readResponse reads one response from br within d.
func readResponse(t *testing.T, conn net.Conn, br *bufio.Reader, d time.Duration) (*http.Response, string) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(d)))
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	return resp, string(b)
}

// Only JSON bodies are scored: a form post (which any web page can send to
// a local server) or text/plain gets 415.
func TestContentType(t *testing.T) {
	t.Parallel()
	_, hs := newTestServer(t, tiny(t), Config{AutoTruncate: true})
	body := `{"query":"q","texts":["a"]}`
	for _, c := range []struct {
		ct   string
		code int
	}{
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"application/vnd.api+json", 200},
		{"", 415},
		{"text/plain", 415},
		{"application/x-www-form-urlencoded", 415},
		{"multipart/form-data; boundary=x", 415},
		{"application/jsonx", 415},
		{"not a type", 415},
	} {
		for _, path := range []string{"/rerank", "/v1/rerank"} {
			b := body
			if path == "/v1/rerank" {
				b = `{"query":"q","documents":["a"]}`
			}
			resp, got := request(t, "POST", hs.URL+path, c.ct, b)
			assert.Equal(t, c.code, resp.StatusCode, "%s %q: %s", path, c.ct, got)
			if c.code == 415 {
				assert.Contains(t, got, `"error_type":"validation"`)
				assert.Contains(t, got, "must be application/json")
			}
		}
	}
}

// A body that declares more than MaxBody bytes is refused before it is
// sent.
func TestBodyLimitBeforeRead(t *testing.T) {
	t.Parallel()
	_, hs := newTimedServer(t, tiny(t), Config{MaxBody: 1000})
	conn, br := rawRequest(t, hs, "/rerank", 1<<30, "")
	resp, body := readResponse(t, conn, br, 5*time.Second)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, body)
	assert.JSONEq(t, `{"error":"request body is larger than the limit of 1000 bytes","error_type":"validation"}`, body)
}

// Headers past MaxHeaderBytes get 431.
func TestHeaderLimit(t *testing.T) {
	t.Parallel()
	_, hs := newTimedServer(t, tiny(t), Config{})
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /rerank HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nContent-Length: 0\r\n\r\n", strings.Repeat("a", 2*MaxHeaderBytes))
	require.NoError(t, err)
	resp, _ := readResponse(t, conn, bufio.NewReader(conn), 5*time.Second)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// Admission comes before the body: with MaxConcurrentRequests requests
// waiting for their bodies, the next request gets 429 at once, before it
// sends its own body. When one of the first finishes, requests are
// admitted again.
func TestAdmissionBeforeBody(t *testing.T) {
	t.Parallel()
	s, hs := newTimedServer(t, tiny(t), Config{MaxConcurrentRequests: 2, AutoTruncate: true})
	body := `{"query":"q","texts":["a","b"]}`
	type held struct {
		conn net.Conn
		br   *bufio.Reader
	}
	var holds []held
	for range 2 {
		c, br := rawRequest(t, hs, "/rerank", len(body), body[:5])
		holds = append(holds, held{c, br})
	}
	waitUntil(t, "two requests admitted", func() bool { s.admitMu.Lock(); defer s.admitMu.Unlock(); return s.active == 2 })

	conn, br := rawRequest(t, hs, "/rerank", 1<<20, "") // no body sent at all
	resp, got := readResponse(t, conn, br, 5*time.Second)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, got)
	assert.Contains(t, got, `"error_type":"overloaded"`)
	assert.Contains(t, got, "2 requests in progress")
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	resp, got = request(t, "POST", hs.URL+"/v1/rerank", "application/json", `{"query":"q","documents":["a"]}`)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the Cohere route shares the limit: %s", got)
	r2, err := http.Get(hs.URL + "/health")
	require.NoError(t, err)
	r2.Body.Close()
	assert.Equal(t, http.StatusOK, r2.StatusCode, "health is not a scoring request")

	_, err = io.WriteString(holds[0].conn, body[5:])
	require.NoError(t, err)
	resp, got = readResponse(t, holds[0].conn, holds[0].br, 10*time.Second)
	assert.Equal(t, http.StatusOK, resp.StatusCode, got)
	waitUntil(t, "the slot released", func() bool { s.admitMu.Lock(); defer s.admitMu.Unlock(); return s.active == 1 })
	resp, got = request(t, "POST", hs.URL+"/rerank", "application/json", body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, got)
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A body that trickles in slower than ReadTimeout gets 408, and its place
// is freed.
func TestSlowBody(t *testing.T) {
	t.Parallel()
	s, hs := newTimedServer(t, tiny(t), Config{ReadTimeout: 300 * time.Millisecond, MaxConcurrentRequests: 1})
	body := `{"query":"q","texts":["a","b"]}`
	conn, br := rawRequest(t, hs, "/rerank", len(body), body[:3])
	start := time.Now()
	for i := 3; i < 10; i++ { // one byte every 100 ms: never done in time
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(conn, body[i:i+1]); err != nil {
			break
		}
	}
	resp, got := readResponse(t, conn, br, 5*time.Second)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, got)
	assert.Contains(t, got, "read timeout of 300ms")
	assert.Less(t, time.Since(start), 3*time.Second)
	waitUntil(t, "the slot released", func() bool { s.admitMu.Lock(); defer s.admitMu.Unlock(); return s.active == 0 })
}

// Past RequestTimeout a request gets 504 and its queued pairs are dropped:
// the request waits behind a long call (the test model, thousands of long
// pairs) that holds every instance for far longer than the deadline.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	r, err := gomps.Open(context.Background(), gompstest.TestModel(t), gomps.WithNotices(nil), gomps.WithThreads(2))
	require.NoError(t, err)
	defer r.Close()
	_, hs := newTimedServer(t, r, Config{RequestTimeout: 2 * time.Second, AutoTruncate: true})
	long := make([]string, 1024) // one engine call of pairs cut to 512 tokens: many seconds of work
	for i := range long {
		long[i] = strings.Repeat(fmt.Sprintf("the population of Berlin in year %d ", 1900+i), 80)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked := make(chan error, 1)
	go func() { _, err := r.Score(ctx, berlin.query, long); blocked <- err }()
	waitUntil(t, "the long call tokenized and on the instances", func() bool { return r.Stats().Batches > 0 })

	start := time.Now()
	texts := long[:5] // as long as the queued pairs: behind them in the queue
	resp, got := post(t, hs.URL+"/rerank", mustJSON(t, map[string]any{"query": berlin.query, "texts": texts}))
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode, string(got))
	assert.JSONEq(t, `{"error":"the request was not scored within the request timeout of 2s; its pairs were dropped","error_type":"timeout"}`, string(got))
	assert.Less(t, time.Since(start), 10*time.Second, "answered at the deadline")
	waitUntil(t, "the request's pairs dropped", func() bool { return r.Stats().PairsDropped == uint64(len(texts)) })
	cancel()
	assert.ErrorIs(t, <-blocked, context.Canceled)
}

// A tokenizer that refuses text (this one keeps NUL bytes, which the C
// boundary cannot carry) gives 422 naming the text, not a backend error.
func TestTokenizerRefusal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(tinyModel, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	b, err := os.ReadFile(filepath.Join(tinyModel, "tokenizer.json"))
	require.NoError(t, err)
	var tok map[string]any
	require.NoError(t, json.Unmarshal(b, &tok))
	tok["normalizer"].(map[string]any)["clean_text"] = false
	b, err = json.Marshal(tok)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644))
	r, err := gomps.Open(context.Background(), dir, gomps.WithNotices(nil), gomps.WithThreads(1))
	require.NoError(t, err)
	defer r.Close()
	var logs syncBuffer
	_, hs := newTestServer(t, r, Config{AutoTruncate: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	resp, got := post(t, hs.URL+"/rerank", `{"query":"q","texts":["fine","a\u0000b"]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(got))
	assert.JSONEq(t, `{"error":"texts[1]: the tokenizer refused the text: text contains a NUL byte","error_type":"tokenizer"}`, string(got))
	resp, got = post(t, hs.URL+"/v1/rerank", `{"query":"q\u0000","documents":["fine"]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, string(got))
	assert.Contains(t, string(got), "`query`: the tokenizer refused the text")
	assert.NotContains(t, logs.String(), "ERROR", "a refused text is the client's error, not the server's")
}

// Drain: new requests and /health get 503 with Connection: close while the
// listener stays open, admitted requests finish, and Drain reports none
// cut.
func TestDrainFinishesAdmitted(t *testing.T) {
	t.Parallel()
	s, hs := newTimedServer(t, tiny(t), Config{AutoTruncate: true})
	body := `{"query":"q","texts":["a","b","c"]}`
	conn, br := rawRequest(t, hs, "/rerank", len(body), body[:7])
	waitUntil(t, "the request admitted", func() bool { s.admitMu.Lock(); defer s.admitMu.Unlock(); return s.active == 1 })

	// An idle keep-alive connection from before the drain.
	idle := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	r0, err := idle.Get(hs.URL + "/health")
	require.NoError(t, err)
	io.Copy(io.Discard, r0.Body)
	r0.Body.Close()

	cut := make(chan int, 1)
	go func() { cut <- s.Drain(context.Background()) }()
	waitUntil(t, "draining", s.isDraining)

	r1, err := idle.Get(hs.URL + "/health")
	require.NoError(t, err, "the idle connection is answered, not reset")
	b1, _ := io.ReadAll(r1.Body)
	r1.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, r1.StatusCode)
	assert.JSONEq(t, `{"status":"draining"}`, string(b1))
	assert.True(t, r1.Close, "Connection: close")
	resp, got := request(t, "POST", hs.URL+"/rerank", "application/json", body)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, got)
	assert.JSONEq(t, `{"error":"the server is shutting down","error_type":"unhealthy"}`, got)
	assert.True(t, resp.Close, "Connection: close")

	select {
	case n := <-cut:
		t.Fatalf("Drain returned %d with a request in progress", n)
	case <-time.After(100 * time.Millisecond):
	}
	_, err = io.WriteString(conn, body[7:])
	require.NoError(t, err)
	resp, got = readResponse(t, conn, br, 10*time.Second)
	assert.Equal(t, http.StatusOK, resp.StatusCode, got)
	assert.Equal(t, 3, strings.Count(got, `"score"`))
	assert.True(t, resp.Close, "a response written while draining closes its connection, so it is not reused")
	select {
	case n := <-cut:
		assert.Equal(t, 0, n, "nothing cut")
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return once the request finished")
	}
}

// Drain past its deadline cuts what is still running with 503: a request
// still sending its body and one being scored (the test model, a request
// of long pairs that takes seconds), whose queued pairs are dropped.
func TestDrainCutsAtDeadline(t *testing.T) {
	t.Parallel()
	r, err := gomps.Open(context.Background(), gompstest.TestModel(t), gomps.WithNotices(nil), gomps.WithThreads(2))
	require.NoError(t, err)
	defer r.Close()
	s, hs := newTimedServer(t, r, Config{AutoTruncate: true, MaxBody: 8 << 20})

	body := `{"query":"q","texts":["a"]}`
	slowConn, slowBR := rawRequest(t, hs, "/rerank", len(body), body[:4])
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = strings.Repeat(fmt.Sprintf("the population of Berlin in year %d ", 1900+i), 60)
	}
	type answer struct {
		code int
		body string
	}
	scoring := make(chan answer, 1)
	go func() {
		resp, err := http.Post(hs.URL+"/rerank", "application/json", strings.NewReader(mustJSON(t, map[string]any{"query": berlin.query, "texts": texts})))
		if err != nil {
			scoring <- answer{0, err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		scoring <- answer{resp.StatusCode, string(b)}
	}()
	waitUntil(t, "the long request in the engine", func() bool { return r.Stats().Requests == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	cut := s.Drain(ctx)
	assert.Equal(t, 2, cut, "both requests cut")
	assert.Less(t, time.Since(start), 5*time.Second, "the cut requests answered promptly")

	resp, got := readResponse(t, slowConn, slowBR, 5*time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, got)
	assert.Contains(t, got, "shutting down")
	a := <-scoring
	assert.Equal(t, http.StatusServiceUnavailable, a.code, a.body)
	assert.Contains(t, a.body, "shutting down")
	waitUntil(t, "the cut request's queued pairs dropped", func() bool { return r.Stats().PairsDropped > 0 })
	assert.Less(t, r.Stats().Rows, uint64(len(texts)))
}

// A refusal written before the body is read (401, 415, 429, 503) reaches a
// client that sends its whole large body before reading: the server reads
// and drops the body after answering instead of closing on it, which would
// reset the connection and lose the answer.
func TestEarlyAnswerLargeBody(t *testing.T) {
	t.Parallel()
	s, hs := newTimedServer(t, tiny(t), Config{APIKeys: []string{"k"}, MaxConcurrentRequests: 1})
	body := `{"query":"q","texts":["` + strings.Repeat("a", 1500<<10) + `"]}`
	send := func(contentType, auth string) int {
		conn, err := net.Dial("tcp", hs.Listener.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = fmt.Fprintf(conn, "POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n", contentType, auth, len(body))
		require.NoError(t, err)
		for i := 0; i < len(body); i += 100 << 10 { // the whole body, over about 1.5 s, before reading
			_, err := io.WriteString(conn, body[i:min(i+100<<10, len(body))])
			require.NoError(t, err, "the server takes the body")
			time.Sleep(100 * time.Millisecond)
		}
		resp, _ := readResponse(t, conn, bufio.NewReader(conn), 10*time.Second)
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, send("application/json", "Bearer wrong"))
	assert.Equal(t, http.StatusUnsupportedMediaType, send("text/plain", "Bearer k"))
	require.True(t, s.admit(httptest.NewRecorder()))
	assert.Equal(t, http.StatusTooManyRequests, send("application/json", "Bearer k"))
	s.release()
	s.Drain(context.Background())
	assert.Equal(t, http.StatusServiceUnavailable, send("application/json", "Bearer k"))
}
