// Package server is gomps' HTTP API: text-embeddings-inference's POST
// /rerank, the Cohere/Jina POST /v1/rerank, GET /health, /info and /metrics
// (Prometheus), and the live dashboard at /dashboard, over one
// *gomps.Reranker.
//
// A Server answers as soon as it is built: /health returns 503 until
// SetReranker hands it the loaded model (and again after SetDraining), so
// a process can listen while it loads. Every response carries an
// X-Request-Id (the client's, echoed, or a generated one). Errors have
// TEI's shape, {"error": "...", "error_type": "..."}: 422 validation for
// invalid JSON or fields, 400 empty for an empty batch, 413 validation over
// Config.MaxBody, 429 overloaded when the engine's queue is full, 424
// backend for a failed forward pass, 503 unhealthy while loading or
// draining.
//
// Concurrency: a Server is safe for concurrent use; requests share the
// reranker's batches. Cost per request: JSON decoding and encoding, plus
// the reranker's work (texts are sent in chunks of ChunkPairs pairs, a few
// at a time, so a request may hold more texts than a batch or the queue).
package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/dashboard"
)

// DefaultMaxBody is the default request body limit, 2 MiB.
const DefaultMaxBody = 2 << 20

// ChunkPairs is the most texts of one request sent to the engine in one
// call; a larger request is split into chunks scored concurrently, so it is
// never refused for its size alone (the library's queue holds at least
// this many pairs).
const ChunkPairs = 1024

// chunkWorkers is how many chunks of one request are in the engine at once.
const chunkWorkers = 4

// Config sets up a Server. Zero fields take the documented defaults.
type Config struct {
	// MaxBody caps a request body in bytes; larger bodies get 413.
	// Default DefaultMaxBody.
	MaxBody int64
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
	// Dashboard serves the live dashboard at /dashboard (and its data at
	// /dashboard/data) once the model is loaded.
	Dashboard bool
	// DashboardHistory is how much history the dashboard keeps (about 2 KB
	// per second). Default 1h, its longest window.
	DashboardHistory time.Duration
}

// Server is the HTTP API over one reranker. Build it with New.
type Server struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	mux      *http.ServeMux
	r        atomic.Pointer[gomps.Reranker]
	draining atomic.Bool

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
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
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
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.route("POST /rerank", "/rerank", s.handleTEIRerank)
	s.route("POST /v1/rerank", "/v1/rerank", s.handleCohereRerank)
	s.route("GET /health", "/health", s.handleHealth)
	s.route("GET /info", "/info", s.handleInfo)
	s.route("GET /metrics", "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogErrorLog{s.log}}).ServeHTTP)
	if cfg.Dashboard {
		s.route("GET /dashboard", "/dashboard", s.handleDashboard)
		s.route("GET /dashboard/", "/dashboard", s.handleDashboard)
	}
	s.route("/", "other", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no route for "+r.Method+" "+r.URL.Path)
	})
	return s
}

// Registry is the Prometheus registry /metrics serves.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// SetReranker makes the server ready: the rerank endpoints use r, /health
// answers 200, r's engine metrics join /metrics and the dashboard starts
// sampling. Call it once. The Server does not close r.
func (s *Server) SetReranker(r *gomps.Reranker) error {
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

// SetDraining makes /health answer 503 (so load balancers stop sending
// work) while requests in flight finish; call it when shutdown begins.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Close stops the dashboard's sampling. It does not close the reranker.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dash != nil {
		s.dash.Close()
	}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// route registers h under pattern with the common middleware: request id,
// body limit, metrics and the optional request log. name labels metrics.
func (s *Server) route(pattern, name string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(withRequestID(r.Context(), id))
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
		sw := &statusWriter{ResponseWriter: w}
		s.httpInFlight.Inc()
		h(sw, r)
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

// statusWriter records the status code and body size.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
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

// slogErrorLog adapts a slog.Logger to promhttp's error logger.
type slogErrorLog struct{ l *slog.Logger }

func (e slogErrorLog) Println(v ...any) { e.l.Error("metrics", "error", v) }
