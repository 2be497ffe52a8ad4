// Package dashboard is gomps' live dashboard: one hand-written HTML page
// (page.html, embedded; plain SVG charts drawn by its own script, nothing
// fetched from the network) and the JSON endpoint it polls once a second.
//
// The data come from a Prometheus Gatherer: for gomps serve, the very
// registry its /metrics serves (the engine's collector, the process
// collector); for gomps bench, Start builds one over the reranker's
// collector and the process collector. A Dashboard samples the Gatherer
// every Config.Interval into a ring buffer of Config.Keep, and each data
// request derives the figures of the chosen window from two of those
// samples, so the page shows exactly what rate() and histogram_quantile()
// over /metrics would: there is no second set of books.
//
// Routes (relative to where the handler is mounted, usually the root):
// GET /dashboard is the page, GET /dashboard/data?window=SECONDS its data.
//
// Cost: one Gather per interval (a few hundred atomic loads) and about 2 KB
// per sample kept (7 MB for the default hour). Safe for concurrent use.
package dashboard

import (
	_ "embed"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/internal/jsonhttp"
)

//go:embed page.html
var page []byte

// Windows are the time windows the page offers, in seconds.
var Windows = []int{60, 300, 900, 3600}

// Config sets up a Dashboard.
type Config struct {
	// Info is the configuration shown in the page's header.
	Info gomps.Info
	// Version is the gomps version shown in the header.
	Version string
	// Gatherer is sampled for the figures: it must hold the engine's
	// collector (gomps.Reranker.Collector) and should hold the process
	// collector (CPU, memory). Required.
	Gatherer prometheus.Gatherer
	// Interval between samples. Default 1s.
	Interval time.Duration
	// Keep is how much history is kept. Default 1h (the longest window).
	Keep time.Duration
}

// Dashboard samples a Gatherer and serves the page and its data. Build it
// with New (or Start, which also serves it); Close stops the sampling.
type Dashboard struct {
	cfg  Config
	info configJSON

	mu      sync.RWMutex
	samples []*sample // oldest first, at most keep
	keep    int
	lastErr error

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

var _ http.Handler = (*Dashboard)(nil)

// New starts sampling cfg.Gatherer (the first sample is taken before New
// returns) and returns the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Gatherer == nil {
		return nil, errors.New("no Gatherer")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = time.Hour
	}
	in := cfg.Info
	d := &Dashboard{
		cfg:  cfg,
		keep: int(cfg.Keep/cfg.Interval) + 2,
		stop: make(chan struct{}),
		done: make(chan struct{}),
		info: configJSON{Model: in.Model, SHA256: in.SHA256, TestModel: in.TestModel, Backend: in.Backend, ISA: in.ISA,
			Precision: in.Precision, Instances: in.Instances, Threads: in.Threads, Batcher: in.Batcher,
			MaxBatch: in.MaxBatch, MaxLength: in.MaxLength, Version: cfg.Version},
	}
	d.sample()
	go d.loop()
	return d, nil
}

// Close stops the sampling. Safe to call more than once.
func (d *Dashboard) Close() {
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.done
}

func (d *Dashboard) loop() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
			d.sample()
		}
	}
}

func (d *Dashboard) sample() {
	d.mu.RLock()
	var prev *sample
	if n := len(d.samples); n > 0 {
		prev = d.samples[n-1]
	}
	d.mu.RUnlock()
	s, err := gather(d.cfg.Gatherer, prev)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastErr = err
	if s == nil {
		return
	}
	if len(d.samples) == d.keep {
		copy(d.samples, d.samples[1:])
		d.samples = d.samples[:d.keep-1]
	}
	d.samples = append(d.samples, s)
}

// ServeHTTP serves the page for any path but one ending in /data, which
// gets the JSON data (?window=SECONDS, default 300).
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		jsonhttp.WriteError(w, http.StatusMethodNotAllowed, "validation", "method "+r.Method+" not allowed; use GET")
		return
	}
	if strings.HasSuffix(r.URL.Path, "/data") {
		d.serveData(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// The page may load nothing but itself and its data.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	_, _ = w.Write(page)
}

func (d *Dashboard) serveData(w http.ResponseWriter, r *http.Request) {
	win := 300
	if v := r.URL.Query().Get("window"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 86400 {
			jsonhttp.WriteError(w, http.StatusBadRequest, "validation", "window: want seconds, 1..86400")
			return
		}
		win = n
	}
	d.mu.RLock()
	out := build(d.samples, time.Duration(win)*time.Second, d.cfg.Interval)
	if d.lastErr != nil {
		out.Error = d.lastErr.Error()
	}
	d.mu.RUnlock()
	out.Config = d.info
	out.Windows = Windows
	w.Header().Set("Cache-Control", "no-store")
	jsonhttp.Write(w, http.StatusOK, out)
}

// Server is a dashboard on its own listener (see Start).
type Server struct {
	// URL is the page's address, http://host:port/dashboard.
	URL  string
	dash *Dashboard
	http *http.Server
	done chan struct{}
}

// Start serves r's dashboard on addr (host:port; port 0 picks one): the
// page at /dashboard (/ redirects there), its data at /dashboard/data and
// the same metrics in Prometheus text at /metrics. For gomps bench
// --dashboard. Close it before closing r.
func Start(addr string, r *gomps.Reranker, version string) (*Server, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(r.Collector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	d, err := New(Config{Info: r.Info(), Version: version, Gatherer: reg})
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /dashboard", d)
	mux.Handle("GET /dashboard/data", d)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /{$}", http.RedirectHandler("/dashboard", http.StatusFound))
	s := &Server{URL: "http://" + ln.Addr().String() + "/dashboard", dash: d, done: make(chan struct{}),
		http: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln)
	}()
	return s, nil
}

// Close stops the listener and the sampling.
func (s *Server) Close() error {
	err := s.http.Close()
	<-s.done
	s.dash.Close()
	return err
}
