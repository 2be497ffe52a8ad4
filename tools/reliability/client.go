package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// client sends requests and sorts their outcomes.
type client struct {
	hc *http.Client
}

func newClient() *client {
	tr := &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	// No client-wide timeout: each request has its own context, so a hang
	// is seen as one.
	return &client{hc: &http.Client{Transport: tr}}
}

// outcome of one request.
type outcome int

const (
	answered outcome = iota // an HTTP response arrived
	refused                 // the connection was refused: the request was never sent
	reset                   // the connection broke before a response: a lost request
	hung                    // no response within the client's deadline
)

// result is one request's outcome.
type result struct {
	outcome outcome
	status  int
	body    []byte
	header  http.Header
	err     error
	latency time.Duration
}

func (r result) String() string {
	switch r.outcome {
	case answered:
		return fmt.Sprintf("HTTP %d %s", r.status, strings.TrimSpace(string(r.body[:min(len(r.body), 200)])))
	case refused:
		return "connection refused"
	case reset:
		return "reset: " + r.err.Error()
	}
	return "no response: " + r.err.Error()
}

// requestDeadline is the longest the client waits for any response.
const requestDeadline = 2 * time.Minute

func (c *client) post(ctx context.Context, url, contentType string, body []byte) result {
	return c.do(ctx, url, contentType, bytes.NewReader(body), int64(len(body)))
}

// do sends a POST; length < 0 sends the body chunked.
func (c *client) do(ctx context.Context, url, contentType string, body io.Reader, length int64) result {
	ctx, cancel := context.WithTimeout(ctx, requestDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return result{outcome: reset, err: err}
	}
	req.ContentLength = length
	if length < 0 {
		req.Body = io.NopCloser(body) // hides the length: chunked
		req.GetBody = nil
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return classify(err, time.Since(start))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r := classify(err, time.Since(start))
		r.status = resp.StatusCode
		return r
	}
	return result{outcome: answered, status: resp.StatusCode, body: b, header: resp.Header, latency: time.Since(start)}
}

func classify(err error, d time.Duration) result {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return result{outcome: refused, err: err, latency: d}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return result{outcome: hung, err: err, latency: d}
	case errors.As(err, &op) && op.Op == "dial":
		return result{outcome: refused, err: err, latency: d}
	}
	return result{outcome: reset, err: err, latency: d}
}

// tally counts outcomes by kind and status.
type tally struct {
	requests int
	status   map[int]int
	refused  int
	reset    int
	hung     int
	examples []string // the first few unexpected outcomes
}

func newTally() *tally { return &tally{status: map[int]int{}} }

func (t *tally) add(r result) {
	t.requests++
	switch r.outcome {
	case answered:
		t.status[r.status]++
	case refused:
		t.refused++
	case reset:
		t.reset++
	case hung:
		t.hung++
	}
}

func (t *tally) note(s string) {
	if len(t.examples) < 5 {
		t.examples = append(t.examples, s)
	}
}

// lost is the requests that got no response though they were sent.
func (t *tally) lost() int { return t.reset + t.hung }

func (t *tally) String() string {
	var parts []string
	for _, code := range sortedKeys(t.status) {
		parts = append(parts, fmt.Sprintf("%d x%d", code, t.status[code]))
	}
	if t.refused > 0 {
		parts = append(parts, fmt.Sprintf("refused (not sent) x%d", t.refused))
	}
	if t.reset > 0 {
		parts = append(parts, fmt.Sprintf("RESET x%d", t.reset))
	}
	if t.hung > 0 {
		parts = append(parts, fmt.Sprintf("NO RESPONSE x%d", t.hung))
	}
	return strings.Join(parts, ", ")
}

// corpus makes deterministic synthetic passages: words of a fixed list,
// 30 to 120 words each (about 40 to 160 tokens).
type corpus struct{ rng *rand.Rand }

var words = strings.Fields(`the of and to in is was for on that with as by at from his her an which
were are city population people river museum history century year government capital university
station church population census district street school water bridge market harbour railway
island mountain park village region country language music film season team player league
report study research method model data result system energy light heat weather climate
rain wind summer winter spring autumn north south east west old new large small early late
million thousand hundred first second third last many most some few often always never`)

func newCorpus(seed uint64) *corpus {
	return &corpus{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (c *corpus) passage() string {
	n := 30 + c.rng.IntN(91)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[c.rng.IntN(len(words))])
	}
	b.WriteByte('.')
	return b.String()
}

func (c *corpus) passages(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = c.passage()
	}
	return out
}

// The canary: one fixed pair sent in every load request; its score must
// not move, whatever it is batched with.
const (
	canaryQuery   = "how many people live in berlin"
	canaryPassage = "Berlin has a population of about 3.7 million people, the most of any city in Germany."
	// canaryTolerance is the library's bound for a score across batch
	// shapes (padding and row count change the order of float sums).
	canaryTolerance = 1e-5
)

// teiBody builds a TEI /rerank body of texts with the canary at index at
// (raw scores).
func teiBody(texts []string, at int) []byte {
	all := make([]string, 0, len(texts)+1)
	all = append(all, texts[:at]...)
	all = append(all, canaryPassage)
	all = append(all, texts[at:]...)
	b, _ := json.Marshal(map[string]any{"query": canaryQuery, "texts": all, "raw_scores": true})
	return b
}

// canaryScore finds the canary's raw score in a TEI response.
func canaryScore(body []byte, at int) (float64, error) {
	var ranks []struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	}
	if err := json.Unmarshal(body, &ranks); err != nil {
		return 0, err
	}
	for _, r := range ranks {
		if r.Index == at {
			return r.Score, nil
		}
	}
	return 0, fmt.Errorf("index %d not in the response", at)
}

// canaryCheck sends the canary alone and compares it with ref (NaN: returns
// the score as the reference).
func canaryCheck(ctx context.Context, c *client, base string, ref float64) (float64, error) {
	r := c.post(ctx, base+"/rerank", "application/json", teiBody(nil, 0))
	if r.outcome != answered || r.status != http.StatusOK {
		return 0, fmt.Errorf("canary: %s", r)
	}
	s, err := canaryScore(r.body, 0)
	if err != nil {
		return 0, fmt.Errorf("canary: %w", err)
	}
	if !math.IsNaN(ref) && math.Abs(s-ref) > canaryTolerance {
		return s, fmt.Errorf("canary: score %v, reference %v", s, ref)
	}
	return s, nil
}
