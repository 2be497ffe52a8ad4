package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/server"
)

func init() { register(newServeCommand()) }

// newServeCommand builds the serve command; tests build fresh ones because
// urfave/cli flags keep state between runs.
func newServeCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve the reranker over HTTP (TEI and Cohere/Jina rerank APIs, Prometheus metrics, live dashboard)",
		UsageText: "gomps serve [--addr 127.0.0.1:8080] [--model M] [--instances N] [--max-queue N] [--max-body 2MiB]",
		Description: `Listens on --addr at once and loads the model in the background; GET /health answers
503 until the model is loaded, then 200.

Endpoints:
  POST /rerank      text-embeddings-inference: {"query", "texts", "raw_scores", "return_text",
                    "truncate", "truncation_direction" (Right or Left)} -> [{"index", "score",
                    "text"?}], best first; scores are sigmoid(logit) unless "raw_scores": true.
  POST /v1/rerank   Cohere v1 / Jina: {"model" (any), "query", "documents" (strings or objects
                    with "text"), "top_n", "return_documents", "rank_fields" (the object fields
                    ranked on, in order), "max_chunks_per_doc" (a document too long for the
                    model's window beside the query is scored in up to that many chunks and
                    keeps the best; default 1: truncated; at most --max-chunks-per-doc),
                    "max_tokens_per_doc"} -> {"id", "model", "results": [{"index",
                    "relevance_score", "document"?}], "usage", "meta"}.
  POST /v2/rerank   Cohere v2: {"model" (any), "query", "documents", "top_n",
                    "max_tokens_per_doc" (each document cut to its first tokens)} -> {"id",
                    "results": [{"index", "relevance_score"}], "meta"}. relevance_score is
                    sigmoid(logit); unknown fields are ignored, as Cohere does, and a known field
                    gomps cannot honour is a 422 naming it.
  GET  /health      503 while loading or shutting down, else 200.
  GET  /info        model name and sha256, backend, precision, instances, threads, batcher,
                    max input length, version.
  GET  /metrics     Prometheus text: the engine's gomps_* metrics, HTTP counters, process.
  GET  /dashboard   live dashboard (throughput, latency, queue, batches, CPU, memory).
  GET  /openapi.json  an OpenAPI 3 description of every route.

Rerank responses carry TEI's timing headers in milliseconds: x-compute-time,
x-tokenization-time, x-queue-time, x-inference-time, x-total-time. Every response carries
X-Request-Id (the client's, or a new one). Errors are {"error", "error_type"}.

Checks, in this order, before any work is spent on a request:
  API key       with --api-key or --api-key-file, every route but /health (and /metrics and
                /dashboard with --public-metrics) needs "Authorization: Bearer <key>": 401
                without it (a CORS preflight from an origin of --cors-allow-origin needs none);
  admission     at most --max-concurrent-requests scoring requests in progress, counted
                before their body is read: 429 at once past it (503 while loading or
                shutting down);
  body          415 unless Content-Type is application/json, 413 over --max-body, 408 when
                headers and body do not arrive within --read-timeout;
  decoding      422 for invalid JSON or fields, null texts, or more than
                --max-client-batch-size texts (documents); 400 for none;
  scoring       429 when the engine's queue (--max-queue pairs) is full, 422 for text the
                tokenizer refuses, 504 past --request-timeout (the request's queued pairs are
                dropped), 424 when a forward pass fails.

SIGTERM or SIGINT drains: the server stops admitting while its listener stays open (new
requests and /health get 503 with Connection: close), lets the requests in progress finish
for up to --shutdown-timeout, answers those still running then with 503, closes, and frees
the model. The exit status is 1 when a request had to be cut that way. Every flag has a GOMPS_* environment variable.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Usage: "host:port to listen on (port 0 picks a free one; the address is logged)", Value: "127.0.0.1:8080", EnvVars: []string{"GOMPS_ADDR"}},
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, Usage: "native file, Hugging Face model dir or model id (default: as gomps score)", EnvVars: []string{"GOMPS_MODEL"}},
			trustUnverifiedFlag(),
			&cli.StringFlag{Name: "precision", Usage: precisionUsage, Value: "f32", EnvVars: []string{"GOMPS_PRECISION"}},
			&cli.IntFlag{Name: "instances", Usage: "model instances running at once (0 = the backend's default: on the CPU one per thread, up to 4)", EnvVars: []string{"GOMPS_INSTANCES"}},
			&cli.IntFlag{Name: "threads", Usage: threadsUsage, EnvVars: []string{"GOMPS_THREADS"}},
			&cli.IntFlag{Name: "max-length", Usage: "tokens per pair incl. specials (0 = the model's maximum)", EnvVars: []string{"GOMPS_MAX_LENGTH"}},
			&cli.StringFlag{Name: "batcher", Usage: "adaptive or fixed", Value: "adaptive", EnvVars: []string{"GOMPS_BATCHER"}},
			&cli.IntFlag{Name: "max-batch", Usage: "pairs per forward pass (0 = the batcher's default)", EnvVars: []string{"GOMPS_MAX_BATCH"}},
			&cli.IntFlag{Name: "max-queue", Usage: "pairs admitted and not yet on a backend, over all requests; past it requests get 429; at least 1024 and --max-client-batch-size (0 = the least of those: a queue that drains in seconds, about 8 s for 1024 pairs at the 130 pairs/s the test model (MiniLM-L6 shape, f32) scored on 2 EPYC cores)", EnvVars: []string{"GOMPS_MAX_QUEUE"}},
			&cli.IntFlag{Name: "max-client-batch-size", Usage: "texts (documents) per request; more get 422", Value: server.DefaultMaxClientBatchSize, EnvVars: []string{"GOMPS_MAX_CLIENT_BATCH_SIZE"}},
			&cli.IntFlag{Name: "max-chunks-per-doc", Usage: fmt.Sprintf("the most chunks a Cohere request's max_chunks_per_doc may ask for (each chunk is a pair); more get 422 (1..%d)", gomps.MaxChunksLimit), Value: server.DefaultMaxChunksPerDoc, EnvVars: []string{"GOMPS_MAX_CHUNKS_PER_DOC"}},
			&cli.IntFlag{Name: "max-concurrent-requests", Usage: "scoring requests in progress at once, counted before the body is read; more get 429 (0 = as many as fit a 1 GiB budget at 8 bytes of memory per byte of --max-body, measured: 64 at 2MiB)", EnvVars: []string{"GOMPS_MAX_CONCURRENT_REQUESTS"}},
			&cli.DurationFlag{Name: "request-timeout", Usage: "deadline of a scoring request from its headers to its response; past it 504 and its queued pairs are dropped", Value: server.DefaultRequestTimeout, EnvVars: []string{"GOMPS_REQUEST_TIMEOUT"}},
			&cli.DurationFlag{Name: "read-timeout", Usage: "time a client has to send a request's headers and body; a late body gets 408", Value: server.DefaultReadTimeout, EnvVars: []string{"GOMPS_READ_TIMEOUT"}},
			&cli.StringFlag{Name: "max-body", Usage: "largest request body (bytes, or with KiB, MiB, GiB, KB, MB, GB); larger ones get 413", Value: "2MiB", EnvVars: []string{"GOMPS_MAX_BODY"}},
			&cli.StringSliceFlag{Name: "api-key", Usage: "a key clients must send as \"Authorization: Bearer <key>\" on every route but /health (repeat, or comma-separate, for several); none and no --api-key-file: no key needed", EnvVars: []string{"GOMPS_API_KEY"}},
			&cli.StringFlag{Name: "api-key-file", Usage: "a file of API keys, one a line (# comments); re-read on SIGHUP", EnvVars: []string{"GOMPS_API_KEY_FILE"}},
			&cli.BoolFlag{Name: "public-metrics", Usage: "with API keys, leave /metrics and /dashboard open", EnvVars: []string{"GOMPS_PUBLIC_METRICS"}},
			&cli.StringSliceFlag{Name: "cors-allow-origin", Usage: "an origin browsers may call the API from (repeat for several; * for any); preflights get the allowed methods and headers", EnvVars: []string{"GOMPS_CORS_ALLOW_ORIGIN"}},
			&cli.BoolFlag{Name: "auto-truncate", Usage: "truncate too-long pairs when a request does not say (TEI \"truncate\"); false refuses them with 422", Value: true, EnvVars: []string{"GOMPS_AUTO_TRUNCATE"}},
			&cli.BoolFlag{Name: "dashboard", Usage: "serve the live dashboard at /dashboard", Value: true, EnvVars: []string{"GOMPS_DASHBOARD"}},
			&cli.DurationFlag{Name: "dashboard-history", Usage: "how much history the dashboard keeps (about 2 KB per second)", Value: time.Hour, EnvVars: []string{"GOMPS_DASHBOARD_HISTORY"}},
			&cli.BoolFlag{Name: "log-requests", Usage: "log one line per request (off: only start-up, shutdown and failures)", EnvVars: []string{"GOMPS_LOG_REQUESTS"}},
			&cli.StringFlag{Name: "log-format", Usage: "text or json (log/slog handlers, on stderr)", Value: "text", EnvVars: []string{"GOMPS_LOG_FORMAT"}},
			&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info", EnvVars: []string{"GOMPS_LOG_LEVEL"}},
			&cli.DurationFlag{Name: "shutdown-timeout", Usage: "on SIGTERM, how long requests in progress may take to finish; those still running then get 503", Value: 30 * time.Second, EnvVars: []string{"GOMPS_SHUTDOWN_TIMEOUT"}},
		},
		Action: serveAction,
	}
}

// minServeMaxQueue is the least --max-queue, the library's least queue: one
// engine call of up to 1024 pairs always fits.
const minServeMaxQueue = 1024

// serveMaxQueue is --max-queue, or by default the least queue that admits
// a request of --max-client-batch-size texts: on a CPU the queue is where
// latency builds up, so the default keeps it as short as that allows
// (1024 pairs took about 8 s to drain at the 130 pairs/s measured with the
// test model on 2 EPYC cores: go run ./tools/reliability, calibration row).
func serveMaxQueue(c *cli.Context) int {
	if n := c.Int("max-queue"); n != 0 {
		return n
	}
	return max(minServeMaxQueue, c.Int("max-client-batch-size"))
}

// serveConfig checks the flags and turns them into the server's Config and
// the library's options, before anything listens.
func serveConfig(c *cli.Context, log *slog.Logger) (server.Config, []gomps.Option, error) {
	maxBody, err := parseSize(c.String("max-body"))
	if err != nil {
		return server.Config{}, nil, fmt.Errorf("--max-body: %w", err)
	}
	for _, name := range []string{"shutdown-timeout", "request-timeout", "read-timeout"} {
		if c.Duration(name) <= 0 {
			return server.Config{}, nil, fmt.Errorf("--%s must be positive", name)
		}
	}
	for _, name := range []string{"max-client-batch-size", "max-concurrent-requests", "max-queue"} {
		if c.Int(name) < 0 {
			return server.Config{}, nil, fmt.Errorf("--%s %d is negative", name, c.Int(name))
		}
	}
	if q := serveMaxQueue(c); q < minServeMaxQueue {
		return server.Config{}, nil, fmt.Errorf("--max-queue %d: want at least %d", q, minServeMaxQueue)
	} else if server.CheckBatchFitsQueue(c.Int("max-client-batch-size"), q) != nil {
		return server.Config{}, nil, fmt.Errorf("--max-client-batch-size %d is more than --max-queue %d: such a request could never be admitted", c.Int("max-client-batch-size"), q)
	}
	if n := c.Int("max-chunks-per-doc"); n < 1 || n > gomps.MaxChunksLimit {
		return server.Config{}, nil, fmt.Errorf("--max-chunks-per-doc %d: want 1..%d", n, gomps.MaxChunksLimit)
	}
	if c.Duration("dashboard-history") < 2*time.Second {
		return server.Config{}, nil, errors.New("--dashboard-history must be at least 2s")
	}
	opts, err := serveOptions(c, log)
	if err != nil {
		return server.Config{}, nil, err
	}
	keys, err := apiKeys(c)
	if err != nil {
		return server.Config{}, nil, err
	}
	return server.Config{MaxBody: maxBody, MaxClientBatchSize: c.Int("max-client-batch-size"), MaxChunksPerDoc: c.Int("max-chunks-per-doc"),
		MaxConcurrentRequests: c.Int("max-concurrent-requests"), RequestTimeout: c.Duration("request-timeout"),
		ReadTimeout: c.Duration("read-timeout"), APIKeys: keys, PublicMetrics: c.Bool("public-metrics"),
		CORSAllowOrigins: c.StringSlice("cors-allow-origin"), AutoTruncate: c.Bool("auto-truncate"), LogRequests: c.Bool("log-requests"),
		Logger: log, Version: readVersion().Version, Dashboard: c.Bool("dashboard"), DashboardHistory: c.Duration("dashboard-history")}, opts, nil
}

// reloadKeysOnHUP re-reads the API keys on every SIGHUP until the returned
// stop is called.
func reloadKeysOnHUP(c *cli.Context, log *slog.Logger, srv *server.Server) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			keys, err := apiKeys(c)
			if err != nil {
				log.Warn("SIGHUP: keeping the API keys in force", "error", err)
				continue
			}
			srv.SetAPIKeys(keys)
			log.Info("SIGHUP: API keys reloaded", "keys", len(keys))
		}
	}()
	return func() { signal.Stop(hup); close(hup) }
}

// noticeLog writes the library's one-line notices as log lines, so they
// take the --log-format of the rest.
type noticeLog struct{ log *slog.Logger }

func (n noticeLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			n.log.Warn(strings.TrimPrefix(strings.TrimPrefix(line, "gomps: "), "notice: "))
		}
	}
	return len(p), nil
}

// apiKeys reads --api-key and the keys of --api-key-file (one a line; blank
// lines and # comments skipped).
func apiKeys(c *cli.Context) ([]string, error) {
	keys := append([]string(nil), c.StringSlice("api-key")...)
	if f := c.String("api-key-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--api-key-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
			}
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("--api-key-file %s holds no key", f)
		}
	}
	return keys, nil
}

// parseSize parses "2097152", "2MiB", "512KB" (KiB/MiB/GiB = 1024^n, KB/MB/GB = 1000^n).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a positive size", s)
	}
	return n * mult, nil
}

func serveLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.String("log-format"))
}

// serveOptions turns the flags into library options. The server applies
// the sigmoid and the per-request truncation itself, so the library runs
// with raw logits and truncation on.
func serveOptions(c *cli.Context, log *slog.Logger) ([]gomps.Option, error) {
	opts := []gomps.Option{
		gomps.WithNotices(noticeLog{log}),
		gomps.WithPrecision(c.String("precision")),
		gomps.WithBatcher(c.String("batcher")),
		gomps.WithTruncation(true),
	}
	for _, f := range []struct {
		name string
		opt  func(int) gomps.Option
	}{{"threads", gomps.WithThreads}, {"instances", gomps.WithInstances}, {"max-length", gomps.WithMaxLength}, {"max-batch", gomps.WithMaxBatch}} {
		switch n := c.Int(f.name); {
		case n < 0:
			return nil, fmt.Errorf("--%s %d is negative", f.name, n)
		case n > 0:
			opts = append(opts, f.opt(n))
		}
	}
	return withTrust(c, append(opts, gomps.WithMaxQueue(serveMaxQueue(c)))), nil
}

func serveAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	log, err := serveLogger(c)
	if err != nil {
		return err
	}
	err = serve(c, log)
	if err != nil && c.String("log-format") == "json" {
		// Every line on stderr is JSON: the failure too, once.
		log.Error("serve failed", "error", err.Error())
		return loggedError{err}
	}
	return err
}

// serve runs the server with its logger.
func serve(c *cli.Context, log *slog.Logger) error {
	cfg, opts, err := serveConfig(c, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return err
	}
	version := cfg.Version
	srv := server.New(cfg)
	defer srv.Close()
	hs := srv.HTTPServer(slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer reloadKeysOnHUP(c, log, srv)()
	log.Info("listening", "addr", ln.Addr().String(), "version", version)

	type loadResult struct {
		r   *gomps.Reranker
		err error
	}
	loaded := make(chan loadResult, 1)
	go func() {
		r, err := gomps.Open(context.WithoutCancel(ctx), c.String("model"), opts...)
		loaded <- loadResult{r, err}
	}()

	var rr *gomps.Reranker
	select {
	case res := <-loaded:
		if res.err != nil {
			_ = hs.Close()
			return fmt.Errorf("loading the model: %w", res.err)
		}
		rr = res.r
		defer rr.Close()
		if err := srv.SetReranker(rr); err != nil {
			_ = hs.Close()
			return err
		}
		in := rr.Info()
		log.Info("model loaded", "model", in.Model, "sha256", in.SHA256, "path", in.Path, "backend", in.Backend,
			"isa", in.ISA, "precision", in.Precision, "instances", in.Instances, "threads", in.Threads,
			"batcher", in.Batcher, "max_batch", in.MaxBatch, "max_length", in.MaxLength, "test_model", in.TestModel)
	case <-ctx.Done():
		// Stopped while loading: nothing is in flight; free the model once it is up.
		_ = hs.Close()
		go func() {
			if res := <-loaded; res.r != nil {
				res.r.Close()
			}
		}()
		log.Info("stopped while loading")
		return nil
	case err := <-served:
		return err
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	stop() // a second signal kills the process the default way
	log.Info("shutting down: draining", "timeout", c.Duration("shutdown-timeout").String())
	sctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-timeout"))
	defer cancel()
	cut := srv.Drain(sctx)
	// Every admitted request has its answer: close the listener and the
	// connections (those still sending a request get up to closeGrace).
	cctx, ccancel := context.WithTimeout(context.Background(), closeGrace)
	defer ccancel()
	if err := hs.Shutdown(cctx); err != nil {
		_ = hs.Close()
	}
	if err := rr.Close(); err != nil {
		return fmt.Errorf("closing the model: %w", err)
	}
	if cut > 0 {
		log.Warn("stopped; requests cut by the shutdown timeout", "cut", cut)
		return fmt.Errorf("%d requests were still in progress after --shutdown-timeout %v; they got 503", cut, c.Duration("shutdown-timeout"))
	}
	log.Info("stopped")
	return nil
}

// closeGrace bounds closing the connections once the drain is over.
const closeGrace = 5 * time.Second
