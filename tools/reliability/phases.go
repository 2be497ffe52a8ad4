package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// textsPerRequest is the passages of a load request, the canary besides.
const textsPerRequest = 32

// loadStats accumulates a load phase's results.
type loadStats struct {
	mu        sync.Mutex
	t         *tally
	pairs     int // pairs of 200 responses
	latencies []time.Duration
	canaryDev float64 // largest |canary - reference|
	canaryBad int     // 200 responses whose canary moved past the tolerance
}

func newLoadStats() *loadStats { return &loadStats{t: newTally()} }

// record adds one load request's result (the canary at index at, n texts).
func (s *loadStats) record(r result, at, n int, ref float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.add(r)
	if r.outcome != answered {
		s.t.note(r.String())
		return
	}
	switch r.status {
	case http.StatusOK:
		s.pairs += n
		if len(s.latencies) < 1<<20 {
			s.latencies = append(s.latencies, r.latency)
		}
		score, err := canaryScore(r.body, at)
		if err != nil {
			s.canaryBad++
			s.t.note("canary: " + err.Error())
			return
		}
		d := math.Abs(score - ref)
		s.canaryDev = max(s.canaryDev, d)
		if d > canaryTolerance {
			s.canaryBad++
		}
	case http.StatusTooManyRequests, http.StatusGatewayTimeout:
	default:
		s.t.note(r.String())
	}
}

func (s *loadStats) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(p*float64(len(l))))]
}

// loadRequest sends one load request from cp and records it.
func loadRequest(ctx context.Context, cl *client, base string, cp *corpus, rng *rand.Rand, ref float64, st *loadStats) result {
	texts := cp.passages(textsPerRequest)
	at := rng.IntN(len(texts) + 1)
	r := cl.post(ctx, base+"/rerank", "application/json", teiBody(texts, at))
	st.record(r, at, len(texts)+1, ref)
	return r
}

// calibrate runs callers closed-loop callers for d and returns the
// throughput in pairs per second.
func (s *suite) calibrate(srv *child, callers int, d time.Duration) float64 {
	st := newLoadStats()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp, rng := newCorpus(uint64(100+w)), rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				loadRequest(context.Background(), s.cl, srv.base, cp, rng, s.canaryRef, st)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	rate := float64(st.pairs) / el
	ok := st.t.lost() == 0 && st.canaryBad == 0 && st.t.status[http.StatusOK] == st.t.requests
	s.add(row{
		attack:  "closed-loop load (calibration)",
		inputs:  fmt.Sprintf("%d callers, requests of %d texts + the canary, %v", callers, textsPerRequest, d),
		outcome: fmt.Sprintf("%s; %.0f pairs/s, p50 %v, p99 %v; canary max |Δ| %.1e", st.t, rate, st.percentile(0.5).Round(time.Millisecond), st.percentile(0.99).Round(time.Millisecond), st.canaryDev),
		lost:    lostText(st.t, st.canaryBad),
		ok:      ok,
	})
	return rate
}

func lostText(t *tally, canaryBad int) string {
	if t.lost() == 0 && canaryBad == 0 {
		return "none"
	}
	s := fmt.Sprintf("%d without a response, %d canary scores moved", t.lost(), canaryBad)
	if len(t.examples) > 0 {
		s += " (" + strings.Join(t.examples, "; ") + ")"
	}
	return s
}

// flood sends requests open-loop at rate requests/s for d, each in its own
// goroutine (at most maxInFlight at once; arrivals past it are counted,
// not sent). During the flood it samples the footprint every sampleEvery.
func (s *suite) flood(srv *child, rate float64, d, sampleEvery time.Duration) {
	const maxInFlight = 4096
	st := newLoadStats()
	var inFlight atomic.Int64
	skipped := 0
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	next := start
	nextSample := start.Add(sampleEvery)
	var samples []string
	for k := 0; time.Since(start) < d; k++ {
		if now := time.Now(); now.Before(next) {
			time.Sleep(next.Sub(now))
		}
		next = next.Add(interval)
		if time.Now().After(nextSample) {
			nextSample = nextSample.Add(sampleEvery)
			if m, err := srv.metrics(context.Background()); err == nil {
				samples = append(samples, fmt.Sprintf("%v: heap live %.0f MiB, %d goroutines, RSS %.0f MiB", time.Since(start).Round(time.Second),
					m["go_gc_heap_live_bytes"]/(1<<20), int(m["go_goroutines"]), m["process_resident_memory_bytes"]/(1<<20)))
			}
		}
		if inFlight.Load() >= maxInFlight {
			skipped++
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			cp, rng := newCorpus(uint64(1000+k)), rand.New(rand.NewPCG(uint64(k), 11))
			loadRequest(context.Background(), s.cl, srv.base, cp, rng, s.canaryRef, st)
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	bad := 0
	for code, n := range st.t.status {
		if code != http.StatusOK && code != http.StatusTooManyRequests && code != http.StatusGatewayTimeout {
			bad += n
		}
	}
	outcome := fmt.Sprintf("%s; goodput %.0f pairs/s, p50 %v, p99 %v of 200s; canary max |Δ| %.1e",
		st.t, float64(st.pairs)/el, st.percentile(0.5).Round(time.Millisecond), st.percentile(0.99).Round(time.Millisecond), st.canaryDev)
	if skipped > 0 {
		outcome += fmt.Sprintf("; %d arrivals not sent (client at %d in flight)", skipped, maxInFlight)
	}
	if len(samples) > 0 {
		outcome += "; during: " + strings.Join(samples, "; ")
	}
	s.add(row{
		attack:  "flood at 2x capacity (open loop)",
		inputs:  fmt.Sprintf("%.1f requests/s of %d texts + the canary (2 x %.0f pairs/s) for %v", rate, textsPerRequest, s.capacity, d),
		outcome: outcome,
		lost:    lostText(st.t, st.canaryBad),
		ok:      st.t.lost() == 0 && st.canaryBad == 0 && bad == 0 && st.t.status[http.StatusOK] > 0,
	})
}

// hostileCase is one malformed or abusive request and the status it must
// get.
type hostileCase struct {
	name string
	want int
	send func(ctx context.Context) result
}

func (s *suite) hostile(srv *child, maxBody, maxBatch int) {
	post := func(path, ct string, body []byte) func(context.Context) result {
		return func(ctx context.Context) result { return s.cl.post(ctx, srv.base+path, ct, body) }
	}
	tei := func(v any) []byte { b, _ := json.Marshal(v); return b }
	empties := "[" + strings.Repeat(`"",`, (maxBody-100)/3) + `""]`
	huge := strings.Repeat("berlin ", (maxBody-200)/7)
	deep := `{"query":"q","texts":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}"
	cases := []hostileCase{
		{"declared body over the limit (Content-Length 1 GiB, nothing sent)", 413, func(ctx context.Context) result {
			return raw(ctx, srv.addr, "POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n")
		}},
		{"chunked body past the limit", 413, func(ctx context.Context) result {
			return s.cl.do(ctx, srv.base+"/rerank", "application/json", io.LimitReader(repeatReader('a'), int64(maxBody)+1<<20), -1)
		}},
		{fmt.Sprintf("%d empty texts in one body", strings.Count(empties, `""`)), 422, post("/rerank", "application/json", []byte(`{"query":"q","texts":`+empties+`}`))},
		{fmt.Sprintf("%d texts (one past --max-client-batch-size)", maxBatch+1), 422, post("/rerank", "application/json", tei(map[string]any{"query": "q", "texts": make([]string, maxBatch+1)}))},
		{fmt.Sprintf("%d documents on /v1/rerank", maxBatch+1), 422, post("/v1/rerank", "application/json", tei(map[string]any{"query": "q", "documents": make([]string, maxBatch+1)}))},
		{"arrays nested 100,000 deep", 422, post("/rerank", "application/json", []byte(deep))},
		{"invalid JSON", 422, post("/rerank", "application/json", []byte(`{"query": "q", "texts": [`))},
		{"data after the JSON value", 422, post("/rerank", "application/json", []byte(`{"query":"q","texts":["a"]}{}`))},
		{"body not UTF-8", 422, post("/rerank", "application/json", []byte("{\"query\":\"\xff\xfe\",\"texts\":[\"a\"]}"))},
		{"null text", 422, post("/rerank", "application/json", []byte(`{"query":"q","texts":["a",null]}`))},
		{"null document", 422, post("/v1/rerank", "application/json", []byte(`{"query":"q","documents":[null]}`))},
		{"number as text", 422, post("/rerank", "application/json", []byte(`{"query":"q","texts":[1e999]}`))},
		{"empty query", 422, post("/rerank", "application/json", []byte(`{"query":"","texts":["a"]}`))},
		{"no texts", 400, post("/rerank", "application/json", []byte(`{"query":"q","texts":[]}`))},
		{"text/plain body", 415, post("/rerank", "text/plain", []byte(`{"query":"q","texts":["a"]}`))},
		{"form post (what any web page can send)", 415, post("/rerank", "application/x-www-form-urlencoded", []byte(`{"query":"q","texts":["a"]}`))},
		{"no Content-Type", 415, post("/rerank", "", []byte(`{"query":"q","texts":["a"]}`))},
		{"1 MiB of headers", 431, func(ctx context.Context) result {
			return raw(ctx, srv.addr, "POST /rerank HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\nContent-Length: 0\r\n\r\n")
		}},
		{"GET /rerank", 405, func(ctx context.Context) result {
			return raw(ctx, srv.addr, "GET /rerank HTTP/1.1\r\nHost: x\r\n\r\n")
		}},
		{"NUL bytes and lone surrogates in text", 200, post("/rerank", "application/json", []byte(`{"query":"q\u0000","texts":["a\u0000b","\ud800x"]}`))},
		{fmt.Sprintf("one text of %d KiB", len(huge)>>10), 200, post("/rerank", "application/json", tei(map[string]any{"query": "q", "texts": []string{huge}}))},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r := c.send(ctx)
		cancel()
		ok := r.outcome == answered && r.status == c.want
		outcome := fmt.Sprintf("HTTP %d in %v", r.status, r.latency.Round(time.Millisecond))
		if !ok {
			outcome = fmt.Sprintf("%s (want %d)", r, c.want)
		}
		s.add(row{attack: "hostile body", inputs: c.name, outcome: outcome, lost: lostIf(r), ok: ok})
	}
	_, err := canaryCheck(context.Background(), s.cl, srv.base, s.canaryRef)
	s.add(row{attack: "hostile body", inputs: "the canary after the hostile bodies", outcome: errText(err, "score unchanged"), lost: "none", ok: err == nil})
}

func lostIf(r result) string {
	if r.outcome == reset || r.outcome == hung {
		return "1 request without a response"
	}
	return "none"
}

func errText(err error, ok string) string {
	if err != nil {
		return "FAILED: " + err.Error()
	}
	return ok
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// raw sends text on a new connection and reads one response.
func raw(ctx context.Context, addr, text string) result {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return classify(err, time.Since(start))
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	if _, err := io.WriteString(conn, text); err != nil {
		// The server may answer and close before reading everything.
		if r := readRaw(conn, start); r.outcome == answered {
			return r
		}
		return classify(err, time.Since(start))
	}
	return readRaw(conn, start)
}

func readRaw(conn net.Conn, start time.Time) result {
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return classify(err, time.Since(start))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return result{outcome: answered, status: resp.StatusCode, body: b, header: resp.Header, latency: time.Since(start)}
}

// heldRequest is a connection that sent a POST's headers and part of its
// body.
type heldRequest struct {
	conn net.Conn
	br   *bufio.Reader
}

func holdRequest(addr string, length int, part string) (*heldRequest, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(conn, "POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", length, part)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &heldRequest{conn: conn, br: bufio.NewReader(conn)}, nil
}

// response reads the held request's response within d.
func (h *heldRequest) response(d time.Duration, start time.Time) result {
	_ = h.conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return classify(err, time.Since(start))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{outcome: answered, status: resp.StatusCode, body: b, latency: time.Since(start)}
}

// slowBody: clients that trickle their body get 408 at --read-timeout
// while the server keeps serving others.
func (s *suite) slowBody(srv *child, readTimeout time.Duration) {
	const conns = 8
	body := `{"query":"q","texts":["a","b","c","d","e","f","g","h","i","j"]}`
	t := newTally()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	start := time.Now()
	for range conns {
		h, err := holdRequest(srv.addr, len(body), body[:1])
		if err != nil {
			t.add(classify(err, 0))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer h.conn.Close()
			done := make(chan result, 1)
			go func() { done <- h.response(readTimeout+10*time.Second, start) }()
			for i := 1; i < len(body); i++ { // a byte every 300 ms
				select {
				case r := <-done:
					mu.Lock()
					t.add(r)
					worst = max(worst, r.latency)
					mu.Unlock()
					return
				case <-time.After(300 * time.Millisecond):
				}
				if _, err := io.WriteString(h.conn, body[i:i+1]); err != nil {
					break
				}
			}
			r := <-done
			mu.Lock()
			t.add(r)
			worst = max(worst, r.latency)
			mu.Unlock()
		}()
	}
	served := 0
	for range 5 {
		if _, err := canaryCheck(context.Background(), s.cl, srv.base, s.canaryRef); err == nil {
			served++
		}
	}
	wg.Wait()
	s.add(row{
		attack:  "slow body (slowloris)",
		inputs:  fmt.Sprintf("%d connections sending their body a byte every 300 ms; --read-timeout %v", conns, readTimeout),
		outcome: fmt.Sprintf("%s, the last after %v; meanwhile %d/5 canary requests served", t, worst.Round(10*time.Millisecond), served),
		lost:    lostText(t, 0),
		ok:      t.status[http.StatusRequestTimeout] == conns && worst < readTimeout+2*time.Second && served == 5,
	})
}

// admission: as many held requests as --max-concurrent-requests take every
// place; the next request gets 429 at once, before its body; once the
// held ones time out, requests are served again.
func (s *suite) admission(srv *child, maxConcurrent int, readTimeout time.Duration) {
	body := `{"query":"q","texts":["a"]}`
	var holds []*heldRequest
	start := time.Now()
	for range maxConcurrent {
		h, err := holdRequest(srv.addr, len(body), body[:3])
		if err != nil {
			break
		}
		holds = append(holds, h)
	}
	// Wait until all are admitted (their headers read).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, err := srv.metrics(context.Background())
		if err == nil && int(m["gomps_http_requests_in_flight"]) >= len(holds)+1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := raw(context.Background(), srv.addr, "POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n")
	t := newTally()
	for _, h := range holds {
		t.add(h.response(readTimeout+10*time.Second, start))
		h.conn.Close()
	}
	_, err := canaryCheck(context.Background(), s.cl, srv.base, s.canaryRef)
	s.add(row{
		attack: "admission exhausted",
		inputs: fmt.Sprintf("%d held requests (= --max-concurrent-requests), then one more that sends no body", len(holds)),
		outcome: fmt.Sprintf("the extra request: HTTP %d in %v (body never sent); the held ones: %s; after them the canary: %s",
			r.status, r.latency.Round(time.Millisecond), t, errText(err, "served, unchanged")),
		lost: lostText(t, 0),
		ok:   r.outcome == answered && r.status == http.StatusTooManyRequests && r.latency < time.Second && len(holds) == maxConcurrent && err == nil && t.lost() == 0,
	})
}

// slowRead: clients that send a request with a large response and never
// read it do not stop the server serving others.
func (s *suite) slowRead(srv *child) {
	const conns = 16
	cp := newCorpus(77)
	texts := make([]string, 4) // few pairs, a large response
	for i := range texts {
		for len(texts[i]) < 128<<10 {
			texts[i] += cp.passage() + " "
		}
	}
	body, _ := json.Marshal(map[string]any{"query": "q", "texts": texts, "return_text": true})
	var held []net.Conn
	for range conns {
		conn, err := net.DialTimeout("tcp", srv.addr, 10*time.Second)
		if err != nil {
			break
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		fmt.Fprintf(conn, "POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		conn.Write(body)
		held = append(held, conn)
	}
	time.Sleep(2 * time.Second) // their responses are being written, and stall
	served := 0
	var lat []time.Duration
	for range 5 {
		start := time.Now()
		if _, err := canaryCheck(context.Background(), s.cl, srv.base, s.canaryRef); err == nil {
			served++
			lat = append(lat, time.Since(start))
		}
	}
	for _, c := range held {
		c.Close()
	}
	slices.Sort(lat)
	med := time.Duration(0)
	if len(lat) > 0 {
		med = lat[len(lat)/2]
	}
	s.add(row{
		attack:  "slow read",
		inputs:  fmt.Sprintf("%d connections whose requests return %d KiB each and that never read", len(held), len(body)>>10),
		outcome: fmt.Sprintf("meanwhile %d/5 canary requests served (median %v)", served, med.Round(time.Millisecond)),
		lost:    "none",
		ok:      served == 5 && len(held) == conns,
	})
}

// memory sends --max-concurrent-requests requests at the body limit at
// once, in several shapes, each to a fresh server, and reports the peak RSS
// above the RSS before the burst: the measure behind the default
// --max-concurrent-requests.
func (s *suite) memory(maxConcurrent, maxBody, maxBatch int) {
	cp := newCorpus(5)
	perText := maxBody/maxBatch - 8
	texts := make([]string, maxBatch)
	for i := range texts {
		p := cp.passage()
		for len(p) < perText {
			p += " " + cp.passage()
		}
		texts[i] = p[:perText]
	}
	full, _ := json.Marshal(map[string]any{"query": "q", "texts": texts})
	long := strings.Repeat("berlin ", (maxBody-64)/7)
	oneText, _ := json.Marshal(map[string]any{"query": "q", "texts": []string{long}})
	oneQuery, _ := json.Marshal(map[string]any{"query": long, "texts": []string{"q"}})
	punct, _ := json.Marshal(map[string]any{"query": strings.Repeat("!", maxBody-64), "texts": []string{"q"}}) // a token per byte
	empties := []byte(`{"query":"q","texts":[` + strings.Repeat(`"",`, (maxBody-100)/3) + `""]}`)
	for _, shape := range []struct {
		name string
		body []byte
	}{
		{fmt.Sprintf("%d texts of %d bytes", maxBatch, perText), full},
		{"one text", oneText},
		{"one query", oneQuery},
		{"one query of punctuation (a token per byte)", punct},
		{"empty texts (past the batch limit)", empties},
	} {
		srv, err := startServe(s.bin, s.serveArgs("--request-timeout", "10s")...)
		if err != nil {
			s.add(row{attack: "memory at the body limit", inputs: shape.name, outcome: "FAILED: " + err.Error()})
			continue
		}
		before, err := srv.settle(s.cl, maxBody)
		if err != nil {
			srv.kill()
			s.add(row{attack: "memory at the body limit", inputs: shape.name, outcome: "FAILED: " + err.Error()})
			continue
		}
		t := newTally()
		var mu sync.Mutex
		var peak float64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				if m, err := srv.metrics(context.Background()); err == nil {
					peak = max(peak, m["process_resident_memory_bytes"])
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for range maxConcurrent {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.cl.post(context.Background(), srv.base+"/rerank", "application/json", shape.body)
				mu.Lock()
				t.add(r)
				mu.Unlock()
			}()
		}
		wg.Wait()
		took := time.Since(start)
		close(stop)
		<-sampled
		code := srv.stop(time.Minute)
		delta := peak - before.rss
		per := delta / float64(maxConcurrent)
		s.add(row{
			attack: "memory at the body limit",
			inputs: fmt.Sprintf("%d concurrent bodies of %d KiB: %s (a fresh server)", maxConcurrent, len(shape.body)>>10, shape.name),
			outcome: fmt.Sprintf("%s in %v; peak RSS %.0f MiB, %.0f MiB above the %.0f MiB before: %.1f MiB per request, %.1f bytes per body byte; exit %d",
				t, took.Round(10*time.Millisecond), peak/(1<<20), delta/(1<<20), before.rss/(1<<20), per/(1<<20), per/float64(len(shape.body)), code),
			lost: lostText(t, 0),
			ok:   t.lost() == 0 && per <= float64(len(shape.body))*requestBytesPerBodyByte && code == 0,
		})
		s.cl.hc.CloseIdleConnections()
	}
}

// drainAnswer reports whether a status is a right answer during a drain:
// scores, 503, or the overload answers (429, 504) of a busy server.
func drainAnswer(code int) bool {
	return code == http.StatusOK || code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests || code == http.StatusGatewayTimeout
}

// sigterm runs callers closed-loop with bodies from mk, sends SIGTERM
// after d, and checks that every request sent got a response (200 or 503,
// nothing reset) and the exit code. Callers stop at their first 503 or
// refused connection, as clients of a draining server do.
func (s *suite) sigterm(srv *child, name string, callers int, d time.Duration, mk func(cp *corpus) []byte, wantExit int) {
	t := newTally()
	var mu sync.Mutex
	var wg sync.WaitGroup
	stopAll := time.Now().Add(d + 2*time.Minute)
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := newCorpus(uint64(500 + w))
			for time.Now().Before(stopAll) {
				r := s.cl.post(context.Background(), srv.base+"/rerank", "application/json", mk(cp))
				mu.Lock()
				t.add(r)
				if r.outcome == reset || r.outcome == hung || (r.outcome == answered && !drainAnswer(r.status)) {
					t.note(r.String())
				}
				mu.Unlock()
				if r.outcome != answered || r.status == http.StatusServiceUnavailable {
					return
				}
				if r.status == http.StatusTooManyRequests {
					time.Sleep(time.Second) // Retry-After
				}
			}
		}()
	}
	time.Sleep(d)
	start := time.Now()
	code := srv.stop(time.Minute)
	took := time.Since(start)
	wg.Wait()
	other := t.requests - t.refused - t.lost()
	for code, n := range t.status {
		if drainAnswer(code) {
			other -= n
		}
	}
	s.add(row{
		attack:  "SIGTERM under load: " + name,
		inputs:  fmt.Sprintf("%d closed-loop callers; SIGTERM after %v", callers, d),
		outcome: fmt.Sprintf("%s; exit status %d after %v", t, code, took.Round(10*time.Millisecond)),
		lost:    lostText(t, 0),
		ok:      t.lost() == 0 && other == 0 && code == wantExit,
	})
	s.cl.hc.CloseIdleConnections()
}
