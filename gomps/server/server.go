// Package server is gomps' HTTP API: text-embeddings-inference's POST
// /rerank, the Cohere/Jina POST /v1/rerank, GET /health, /info and /metrics
// (Prometheus), and the live dashboard at /dashboard, over one
// *gomps.Reranker.
//
// A Server answers as soon as it is built: /health returns 503 until
// SetReranker hands it the loaded model (and again once Drain begins), so
// a process can listen while it loads. Every response carries an
// X-Request-Id (the client's, echoed, or a generated one). Errors have
// TEI's shape, {"error": "...", "error_type": "..."}.
//
// Every scoring request passes the same checks, in this order, before any
// work is spent on it: admission (at most Config.MaxConcurrentRequests
// scoring requests at once, counted before the body is read: 429
// overloaded at once past it; 503 unhealthy while loading or draining),
// the body (415 unless Content-Type is JSON, 413 over Config.MaxBody, 408
// when it does not arrive within Config.ReadTimeout), decoding (422
// validation for invalid JSON or fields, more than
// Config.MaxClientBatchSize texts, or null texts; 400 empty for an empty
// batch). Then the engine: 429 overloaded when its queue is full, 422
// tokenizer for text the tokenizer refuses, 504 timeout past
// Config.RequestTimeout (the request's queued pairs are dropped), 424
// backend for a failed forward pass.
//
// Concurrency: a Server is safe for concurrent use; requests share the
// reranker's batches. Cost per request: reading the body into memory, JSON
// decoding and encoding, plus the reranker's work: one engine call per
// request, which Config.MaxClientBatchSize keeps within the engine's queue.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/dashboard"
)

// Defaults of Config's limits.
const (
	// DefaultMaxBody is the default request body limit, 2 MiB (TEI's
	// --payload-limit).
	DefaultMaxBody = 2 << 20
	// DefaultMaxClientBatchSize is the default of texts per request: a
	// top-1000 list can be reranked in one request.
	DefaultMaxClientBatchSize = 1000
	// DefaultMaxChunksPerDoc is the default of the most chunks a Cohere
	// request's max_chunks_per_doc may ask for (Cohere's own default).
	DefaultMaxChunksPerDoc = 10
	// DefaultRequestTimeout is the default deadline of a scoring request,
	// from its headers to its response.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultReadTimeout is the default time a client has to send a
	// request's headers and body.
	DefaultReadTimeout = 10 * time.Second
	// RequestMemoryBudget is the memory the default
	// MaxConcurrentRequests allows the requests in progress.
	RequestMemoryBudget = 1 << 30
	// requestBytesPerBodyByte bounds the memory a scoring request holds
	// per byte of its body (the body, its decoded strings, the pairs'
	// tokens, the engine's buffers). The peak RSS of 64 concurrent 2 MiB
	// requests, over the RSS before, came to at most 4.5 bytes per body
	// byte in every shape tried (1000 texts, one long text, one long query,
	// a query of a token per byte, 700k empty texts: go run
	// ./tools/reliability -memory-only); 8 leaves room.
	requestBytesPerBodyByte = 8
	// writeGrace is the time past the request deadline a client has to
	// read the response (http.Server.WriteTimeout = RequestTimeout +
	// writeGrace).
	writeGrace = 10 * time.Second
	// cutGrace is how long Drain waits, after cutting the requests still
	// in progress at its deadline, for their 503 to be written.
	cutGrace = 5 * time.Second
)

// DefaultMaxConcurrentRequests is the default of Config.MaxConcurrentRequests
// for a body limit: as many requests as fit RequestMemoryBudget when each
// holds a body of maxBody bytes and requestBytesPerBodyByte bytes of memory
// per body byte (64 for the 2 MiB default), at least 1.
func DefaultMaxConcurrentRequests(maxBody int64) int {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return int(max(1, RequestMemoryBudget/(requestBytesPerBodyByte*maxBody)))
}

// Config sets up a Server. Zero fields take the documented defaults.
type Config struct {
	// MaxBody caps a request body in bytes; larger bodies get 413.
	// Default DefaultMaxBody.
	MaxBody int64
	// MaxClientBatchSize caps the texts (documents) of one request; more
	// get 422. It must not exceed the reranker's queue (SetReranker
	// checks), so a request alone is never refused with 429. Default
	// DefaultMaxClientBatchSize.
	MaxClientBatchSize int
	// MaxChunksPerDoc caps a Cohere request's max_chunks_per_doc: a long
	// document is scored in at most that many chunks of the model's window
	// (each costs a pair); more get 422. Default DefaultMaxChunksPerDoc;
	// at most gomps.MaxChunksLimit.
	MaxChunksPerDoc int
	// MaxConcurrentRequests caps the scoring requests in progress, from
	// their headers to their response; more get 429 before their body is
	// read. Default DefaultMaxConcurrentRequests(MaxBody).
	MaxConcurrentRequests int
	// RequestTimeout is the deadline of a scoring request from its
	// headers to its response; past it the request gets 504 and its pairs
	// still queued are dropped. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ReadTimeout is how long a client may take to send a request's
	// headers and body; a body not in by then gets 408. Default
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// AutoTruncate is what a TEI request without "truncate" (and every
	// Cohere/Jina request) gets: true truncates too-long pairs
	// longest_first, false refuses them with 422.
	AutoTruncate bool
	// LogRequests logs one line per request (method, path, status,
	// duration, request id). Off by default: only start-up, shutdown and
	// server-side failures are logged.
	LogRequests bool
	// Logger receives the logs. Default slog.Default().
	Logger *slog.Logger
	// Version is reported by /info.
	Version string
	// APIKeys, when any, are the keys a client must send as
	// "Authorization: Bearer <key>" on every route but /health (401
	// otherwise), checked before anything else. SetAPIKeys replaces them.
	APIKeys []string
	// PublicMetrics leaves /metrics and /dashboard open without a key.
	PublicMetrics bool
	// CORSAllowOrigins are the origins browsers may call the API from
	// ("*": any); preflight requests get the allowed methods and headers.
	// None: no CORS headers, preflights get 403.
	CORSAllowOrigins []string
	// Dashboard serves the live dashboard at /dashboard (and its data at
	// /dashboard/data) once the model is loaded.
	Dashboard bool
	// DashboardHistory is how much history the dashboard keeps (about 2 KB
	// per second). Default 1h, its longest window.
	DashboardHistory time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxClientBatchSize <= 0 {
		c.MaxClientBatchSize = DefaultMaxClientBatchSize
	}
	if c.MaxChunksPerDoc <= 0 {
		c.MaxChunksPerDoc = DefaultMaxChunksPerDoc
	}
	c.MaxChunksPerDoc = min(c.MaxChunksPerDoc, gomps.MaxChunksLimit)
	if c.MaxConcurrentRequests <= 0 {
		c.MaxConcurrentRequests = DefaultMaxConcurrentRequests(c.MaxBody)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// CheckBatchFitsQueue reports an error when a request of maxClientBatch
// texts could never be admitted by an engine queue of maxQueue pairs.
func CheckBatchFitsQueue(maxClientBatch, maxQueue int) error {
	if maxClientBatch > maxQueue {
		return fmt.Errorf("max client batch size %d is more than the %d pairs the queue admits (--max-queue): such a request could never be scored", maxClientBatch, maxQueue)
	}
	return nil
}

// heapLive adds go_gc_heap_live_bytes to the Go metrics: the heap the last
// garbage collection found live, the figure that grows when memory leaks.
var heapLive = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}

// Server is the HTTP API over one reranker. Build it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	reg *prometheus.Registry
	mux *http.ServeMux
	r   atomic.Pointer[gomps.Reranker]
	// keys are the API keys in force (SetAPIKeys).
	keys atomic.Pointer[keySet]
	// methods are the methods each routed path answers, for 405's Allow.
	methods map[string][]string

	// Admission: active scoring requests, the drain flag, and idle, closed
	// when draining and active reaches 0.
	admitMu  sync.Mutex
	active   int
	draining bool
	idle     chan struct{}
	// cut ends the requests still in progress when Drain's deadline passes.
	cutCtx context.Context
	cut    context.CancelFunc

	mu   sync.Mutex
	dash *dashboard.Dashboard

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge
}

var _ http.Handler = (*Server)(nil)

// New builds a Server with no model yet: until SetReranker, /health and the
// rerank endpoints answer 503. Its Prometheus registry already holds the Go
// runtime, process and HTTP metrics.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), mux: http.NewServeMux(), idle: make(chan struct{}), methods: map[string][]string{}}
	s.cutCtx, s.cut = context.WithCancel(context.Background())
	s.SetAPIKeys(cfg.APIKeys)
	s.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gomps_http_requests_total", Help: "HTTP requests answered, by route and status code.",
	}, []string{"handler", "code"})
	s.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gomps_http_request_duration_seconds", Help: "HTTP request duration, from the handler's start to its end, by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
	}, []string{"handler"})
	s.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gomps_http_requests_in_flight", Help: "HTTP requests being handled.",
	})
	s.reg.MustRegister(s.httpRequests, s.httpDuration, s.httpInFlight,
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(heapLive)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.route("POST /rerank", "/rerank", s.scoring(s.handleTEIRerank))
	s.route("POST /v1/rerank", "/v1/rerank", s.scoring(s.handleCohereRerank))
	s.route("POST /v2/rerank", "/v2/rerank", s.scoring(s.handleCohereV2Rerank))
	s.route("GET /health", "/health", s.handleHealth)
	s.route("GET /info", "/info", s.handleInfo)
	s.route("GET /openapi.json", "/openapi.json", s.handleOpenAPI)
	s.route("GET /metrics", "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogErrorLog{s.log}}).ServeHTTP)
	if cfg.Dashboard {
		s.route("GET /dashboard", "/dashboard", s.handleDashboard)
		s.route("GET /dashboard/", "/dashboard", s.handleDashboard)
	}
	s.route("/", "other", func(w http.ResponseWriter, r *http.Request) {
		if ms := s.methods[r.URL.Path]; len(ms) > 0 {
			w.Header().Set("Allow", strings.Join(ms, ", "))
			writeError(w, http.StatusMethodNotAllowed, errValidation, r.Method+" "+r.URL.Path+": method not allowed; use "+strings.Join(ms, " or "))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no route for "+r.Method+" "+r.URL.Path)
	})
	return s
}

// MaxHeaderBytes caps a request's headers; larger ones get 431.
const MaxHeaderBytes = 64 << 10

// HTTPServer returns an http.Server for s with timeouts sized for its
// limits: headers (at most MaxHeaderBytes) within min(10s, ReadTimeout),
// headers and body within ReadTimeout, the response written within
// RequestTimeout plus 10 s of the headers, idle keep-alive connections
// closed after a minute. errorLog may be nil.
func (s *Server) HTTPServer(errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.RequestTimeout + writeGrace,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// Registry is the Prometheus registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// SetReranker makes the server ready: the rerank endpoints use r, /health
// answers 200, r's engine metrics join /metrics and the dashboard starts
// sampling. Call it once. It fails when Config.MaxClientBatchSize exceeds
// r's queue (CheckBatchFitsQueue). The Server does not close r.
func (s *Server) SetReranker(r *gomps.Reranker) error {
	if err := CheckBatchFitsQueue(s.cfg.MaxClientBatchSize, r.Info().MaxQueue); err != nil {
		return err
	}
	if err := s.reg.Register(r.Collector()); err != nil {
		return err
	}
	if s.cfg.Dashboard {
		d, err := dashboard.New(dashboard.Config{Info: r.Info(), Version: s.cfg.Version, Gatherer: s.reg, Keep: s.cfg.DashboardHistory})
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.dash = d
		s.mu.Unlock()
	}
	s.r.Store(r)
	return nil
}

// Drain shuts the API down without losing a request, for a graceful stop;
// the listener stays open throughout. It stops admitting: from then on
// every request, /health included, gets 503 with "Connection: close".
// The scoring requests already admitted keep running until they finish or
// ctx ends; then those still in progress are cut: their pairs are dropped
// and they get 503 unhealthy. Drain returns once every admitted request
// has its response (or, for a client that does not read it, 5 s after the
// cut) with the number of requests cut. Close the listener after it (with
// http.Server.Shutdown). Safe to call once.
func (s *Server) Drain(ctx context.Context) (cut int) {
	s.admitMu.Lock()
	s.draining = true
	if s.active == 0 {
		close(s.idle)
	}
	s.admitMu.Unlock()
	select {
	case <-s.idle:
		return 0
	case <-ctx.Done():
	}
	s.admitMu.Lock()
	cut = s.active
	s.admitMu.Unlock()
	s.cut()
	select {
	case <-s.idle:
	case <-time.After(cutGrace):
	}
	return cut
}

// Close stops the dashboard's sampling. It does not close the reranker.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dash != nil {
		s.dash.Close()
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) isDraining() bool {
	s.admitMu.Lock()
	defer s.admitMu.Unlock()
	return s.draining
}

// route registers h under pattern with the common middleware, in order:
// request id, CORS (a preflight is answered there), the API key, the
// draining answer; then metrics and the optional request log. name labels
// metrics.
func (s *Server) route(pattern, name string, h http.HandlerFunc) {
	if method, path, ok := strings.Cut(pattern, " "); ok {
		s.methods[path] = append(s.methods[path], method)
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(withRequestID(r.Context(), id))
		sw := &statusWriter{ResponseWriter: w, s: s}
		s.httpInFlight.Inc()
		hasBody := r.ContentLength != 0 && r.ContentLength <= s.cfg.MaxBody
		if hasBody {
			// An answer written before the body is read (401, 415, 429, 503)
			// goes out at once; the body is consumed after it.
			_ = http.NewResponseController(w).EnableFullDuplex()
		}
		switch {
		case s.cors(sw, r), !s.authorized(sw, r, name):
		case s.isDraining():
			if name == "/health" {
				writeJSON(sw, http.StatusServiceUnavailable, HealthResponse{Status: "draining"})
			} else {
				writeShuttingDown(sw)
			}
		default:
			h(sw, r)
		}
		if hasBody {
			// What the handler left of the body (at most MaxBody, within the
			// read deadline) is read and dropped: a connection closed with
			// unread data is reset, and the client could lose the answer.
			sw.Flush()
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, s.cfg.MaxBody))
		}
		s.httpInFlight.Dec()
		d := time.Since(start)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		s.httpRequests.WithLabelValues(name, strconv.Itoa(code)).Inc()
		s.httpDuration.WithLabelValues(name).Observe(d.Seconds())
		if s.cfg.LogRequests {
			s.log.Info("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", code,
				"duration_ms", float64(d.Microseconds())/1000, "bytes", sw.bytes, "remote", r.RemoteAddr)
		}
	})
}

func writeShuttingDown(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, errUnhealthy, "the server is shutting down")
}

// admit takes a place for a scoring request, or writes 503 (draining) or
// 429 (MaxConcurrentRequests in progress) and returns false. A true return
// must be paired with release.
func (s *Server) admit(w http.ResponseWriter) bool {
	s.admitMu.Lock()
	switch {
	case s.draining:
		s.admitMu.Unlock()
		writeShuttingDown(w) // statusWriter adds Connection: close
		return false
	case s.active >= s.cfg.MaxConcurrentRequests:
		s.admitMu.Unlock()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, errOverloaded,
			fmt.Sprintf("Model is overloaded: %d requests in progress, the limit (--max-concurrent-requests)", s.cfg.MaxConcurrentRequests))
		return false
	}
	s.active++
	s.admitMu.Unlock()
	return true
}

func (s *Server) release() {
	s.admitMu.Lock()
	s.active--
	if s.draining && s.active == 0 {
		close(s.idle)
	}
	s.admitMu.Unlock()
}

// Causes of a scoring request's context ending on the server's side.
var (
	errRequestTimeout = errors.New("request timeout")
	errCut            = errors.New("cut by shutdown")
)

// scoring wraps a scoring handler with the checks every scoring request
// passes in order, before any work: the model is loaded, admission, the
// body (Content-Type, size, read within the deadline). h gets the body and
// a context that ends at the request deadline or when Drain cuts it.
func (s *Server) scoring(h func(ctx context.Context, w http.ResponseWriter, r *http.Request, rr *gomps.Reranker, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rr := s.reranker(w)
		if rr == nil {
			return
		}
		if !s.admit(w) {
			return
		}
		defer s.release()
		rc := http.NewResponseController(w)
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		ctx, cancelTimeout := context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, errRequestTimeout)
		defer cancelTimeout()
		stop := context.AfterFunc(s.cutCtx, func() {
			cancel(errCut)
			_ = rc.SetReadDeadline(time.Now()) // ends a body read in progress
		})
		defer stop()
		body, ok := s.readBody(ctx, w, r)
		if !ok {
			return
		}
		h(ctx, w, r, rr, body)
	}
}

// slogErrorLog adapts a slog.Logger to promhttp's error logger.
type slogErrorLog struct{ l *slog.Logger }

func (e slogErrorLog) Println(v ...any) { e.l.Error("metrics", "error", v) }

// statusWriter records the status code and body size, and closes the
// connection after a response written while the server drains, so no
// client sends another request on it.
type statusWriter struct {
	http.ResponseWriter
	s     *Server
	code  int
	bytes int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
		if w.s.isDraining() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestID returns the client's id if it is a sane token (1..128 visible
// ASCII characters), else a new random one (32 hex digits).
func requestID(given string) string {
	if n := len(given); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n; i++ {
			if c := given[i]; c <= ' ' || c > '~' {
				ok = false
				break
			}
		}
		if ok {
			return given
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
