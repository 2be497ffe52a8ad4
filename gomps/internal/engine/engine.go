package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gomps/gomps/gomps/internal/cpus"
)

// Sentinel errors. Errors returned by the engine wrap them, so test with
// errors.Is. Their texts name no package: the library returns some of them
// as its own.
var (
	// ErrClosed: the engine is shutting down or closed.
	ErrClosed = errors.New("closed")
	// ErrOverloaded: admitting the call would put more than Config.MaxQueue
	// pairs in the queue. Returned at once, without waiting.
	ErrOverloaded = errors.New("overloaded")
	// ErrBackend: a forward call failed or panicked. Every request with a
	// pair in that batch fails with it; the backend's own error is wrapped
	// too.
	ErrBackend = errors.New("backend failed")
	// ErrTooLong: Config.TruncationError is set and a pair exceeds MaxSeq.
	ErrTooLong = errors.New("pair longer than the maximum length")
	// ErrTokenize: the Encoder failed; its error is wrapped too.
	ErrTokenize = errors.New("tokenization failed")
)

// Encoder turns text into token ids WITHOUT special tokens. The engine calls
// it from Config.TokenizeWorkers goroutines at once, so it must be safe for
// concurrent use. EncodePassages must return exactly one slice per passage;
// the engine only reads the returned slices. With atLeast > 0 it may stop
// early: each slice is then all of the passage's ids or at least their
// first atLeast (a prefix of the full ids), which changes no pair (the
// engine asks only when the tokens past atLeast cannot survive truncation).
type Encoder interface {
	EncodeQuery(query string) ([]int32, error)
	EncodePassages(passages []string, atLeast int) ([][]int32, error)
}

// Batch is one padded forward pass: Rows rows of Seq tokens (Seq = the
// longest row). IDs and Types are row-major [Rows*Seq]; positions at or past
// Lengths[r] are padding (id 0, type 0) whose content must not affect the
// result. The engine owns and reuses the buffers: an Instance may read them
// only during Forward.
type Batch struct {
	Rows, Seq int
	IDs       []int32
	Types     []int32
	Lengths   []int32
}

// Instance is one backend context: its own scratch memory over a model
// shared by all instances. The engine uses each Instance from ONE goroutine,
// locked to its OS thread (runtime.LockOSThread) for the instance's whole
// life: New's factory, SetThreads, every Forward and Close all run on that
// thread, so thread-local state such as an OpenMP pool stays put.
type Instance interface {
	// SetThreads sets the threads later Forward calls use. Called once,
	// before the first Forward, with the instance's share of the budget.
	SetThreads(n int) error
	// Forward scores b, writing Config.Labels raw logits per row to
	// logits[:b.Rows*Labels], row-major.
	// A panic is recovered: the batch fails with ErrBackend and the
	// instance is closed and replaced through the factory.
	Forward(b *Batch, logits []float32) error
	// Close frees the instance. Called once, when the engine closes or
	// after the instance panicked.
	Close() error
}

// NewInstanceFunc builds the instance of a pool slot (0 <= slot < Instances).
// It runs on the slot's locked OS thread, at New and again whenever the
// slot's instance is replaced after a panic.
type NewInstanceFunc func(slot int) (Instance, error)

// Mode selects how the batcher cuts batches.
type Mode int

const (
	// ModeAdaptive (default): batches cut by a padded-token budget from
	// pairs of similar length, dispatched the moment an instance is free.
	ModeAdaptive Mode = iota
	// ModeFixed: FIFO batches of up to MaxBatch pairs,
	// flushed when full or when Timeout passes.
	ModeFixed
)

func (m Mode) String() string {
	switch m {
	case ModeAdaptive:
		return "adaptive"
	case ModeFixed:
		return "fixed"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses "adaptive" or "fixed".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "adaptive", "":
		return ModeAdaptive, nil
	case "fixed":
		return ModeFixed, nil
	}
	return 0, fmt.Errorf("engine: unknown batching mode %q (want adaptive or fixed)", s)
}

// Routing selects which instance gets a batch.
type Routing int

const (
	// RouteLeastLoaded (default): the instance with the least queued work
	// (padded tokens); in adaptive mode, an idle instance.
	RouteLeastLoaded Routing = iota
	// RouteRoundRobin: instances in turn, busy or not.
	RouteRoundRobin
)

func (r Routing) String() string {
	switch r {
	case RouteLeastLoaded:
		return "least-loaded"
	case RouteRoundRobin:
		return "round-robin"
	}
	return fmt.Sprintf("Routing(%d)", int(r))
}

// ParseRouting parses "least-loaded" or "round-robin".
func ParseRouting(s string) (Routing, error) {
	switch s {
	case "least-loaded", "":
		return RouteLeastLoaded, nil
	case "round-robin":
		return RouteRoundRobin, nil
	}
	return 0, fmt.Errorf("engine: unknown routing %q (want least-loaded or round-robin)", s)
}

// Config sets up an Engine. Zero fields take the defaults documented on each.
type Config struct {
	// Instances is the number of pool slots (backend contexts). Default 1.
	Instances int
	// Threads is the budget of CPU threads shared by tokenization and all
	// instances. Default cpus.Available() (affinity and cgroup quota).
	Threads int
	// InstanceThreads is each instance's thread count. Default
	// max(1, Threads/Instances); clamped to Threads. A forward holds that
	// many budget threads, so with the default a tokenization job waits for
	// a forward to end; InstanceThreads < Threads/Instances keeps threads
	// free for tokenization instead.
	InstanceThreads int
	// TokenizeWorkers is the number of tokenizer goroutines. Default
	// min(Threads, 4). Each holds one budget thread while it encodes.
	TokenizeWorkers int

	Mode    Mode
	Routing Routing
	// MaxBatch is the most rows in one forward call (the backend's max
	// batch). Default 64 in adaptive mode, 32 in fixed mode.
	MaxBatch int
	// TokenBudget (adaptive) caps a batch's padded tokens, rows x longest
	// row. Default 8192; raised to MaxSeq if lower, so any pair fits.
	TokenBudget int
	// Window (adaptive) is how many of the oldest queued pairs are sorted by
	// length and cut into batches together. Every call of a window finishes
	// with the window's last (longest) batch, so a call that just misses a
	// window waits up to one more: a window small against the pairs in
	// flight keeps latency tails tight, a larger one pads less. Padding
	// costs nothing on the CPU backend (it computes only real tokens); a
	// backend that computes padded rows wants BatchOverhead lowered (or a
	// larger window). Default 256 (an eighth of the standard workload's
	// 2,048 pairs in flight; see TestClosedLoopSimulation).
	Window int
	// BatchOverhead (adaptive) is what one more batch costs, in padded
	// tokens, when a window is cut: the cut points minimise padded tokens
	// plus BatchOverhead per batch. A large value keeps batches full, right
	// when padding is free (the CPU backend); a small one cuts more batches
	// of closer lengths, right when padding costs as much as real tokens
	// (Metal's buckets: TokenBudget/32 lets the default window reach 90% of
	// raw throughput in the simulation's padded models). Default
	// TokenBudget/8, or TokenBudget/32 with PaddedBackend.
	BatchOverhead int
	// PaddedBackend says the backend computes every row at the batch's
	// padded length (its capability answer "padded"), so padding costs as
	// much as real tokens: the default BatchOverhead becomes TokenBudget/32.
	PaddedBackend bool
	// Timeout (fixed) is the longest a partial batch waits. Default 100ms.
	Timeout time.Duration
	// MaxQueue caps pairs admitted and not yet handed to a backend
	// (tokenizing or queued). Past it Score fails with ErrOverloaded.
	// Default 8192. A single call larger than MaxQueue always fails.
	MaxQueue int

	// MaxSeq is the longest model input, specials included. Default 512.
	MaxSeq int
	// Labels is the number of logits a forward writes per row (the model's
	// labels). Default 1.
	Labels int
	// ClsID and SepID are the special tokens' ids. Default 101 and 102
	// (BERT uncased vocabularies).
	ClsID, SepID int32
	// TruncationError makes a pair longer than MaxSeq fail the call with
	// ErrTooLong instead of being truncated longest_first.
	TruncationError bool
}

// overheadDivisor is TokenBudget / the default BatchOverhead: 8, or 32 for a
// padded backend.
func (c Config) overheadDivisor() int {
	if c.PaddedBackend {
		return 32
	}
	return 8
}

func (c Config) withDefaults() (Config, error) {
	c = c.withThreadDefaults()
	if c.MaxSeq <= 0 {
		c.MaxSeq = 512
	}
	if c.MaxSeq < pairSpecials {
		return c, fmt.Errorf("engine: MaxSeq %d is below the %d special tokens of a pair", c.MaxSeq, pairSpecials)
	}
	if c.Labels <= 0 {
		c.Labels = 1
	}
	c = c.withBatchDefaults()
	if c.MaxQueue > 1<<28 {
		return c, fmt.Errorf("engine: MaxQueue %d is above %d", c.MaxQueue, 1<<28)
	}
	if c.ClsID == 0 && c.SepID == 0 {
		c.ClsID, c.SepID = 101, 102
	}
	if c.Mode != ModeAdaptive && c.Mode != ModeFixed {
		return c, fmt.Errorf("engine: unknown mode %v", c.Mode)
	}
	if c.Routing != RouteLeastLoaded && c.Routing != RouteRoundRobin {
		return c, fmt.Errorf("engine: unknown routing %v", c.Routing)
	}
	return c, nil
}

// withThreadDefaults fills the instance and thread counts.
func (c Config) withThreadDefaults() Config {
	if c.Instances <= 0 {
		c.Instances = 1
	}
	if c.Threads <= 0 {
		c.Threads = cpus.Available()
	}
	if c.InstanceThreads <= 0 {
		c.InstanceThreads = max(1, c.Threads/c.Instances)
	}
	c.InstanceThreads = min(c.InstanceThreads, c.Threads)
	if c.TokenizeWorkers <= 0 {
		c.TokenizeWorkers = min(c.Threads, 4)
	}
	return c
}

// withBatchDefaults fills the batcher's bounds and the queue's; MaxSeq is
// set.
func (c Config) withBatchDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 64
		if c.Mode == ModeFixed {
			c.MaxBatch = 32
		}
	}
	if c.TokenBudget <= 0 {
		c.TokenBudget = 8192
	}
	c.TokenBudget = max(c.TokenBudget, c.MaxSeq)
	if c.BatchOverhead <= 0 {
		c.BatchOverhead = c.TokenBudget / c.overheadDivisor()
	}
	if c.Window <= 0 {
		c.Window = 256
	}
	if c.Timeout <= 0 {
		c.Timeout = 100 * time.Millisecond
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 8192
	}
	return c
}

// Timings splits one call's latency. Each span comes from its own clock
// reads; none is computed as a remainder.
type Timings struct {
	// Tokenize: from handing the call to the tokenizer pool until its pairs
	// are assembled (waiting for a worker and a budget thread included).
	Tokenize time.Duration
	// Queue: from enqueue at the batcher until the start of the first batch
	// holding one of the call's pairs.
	Queue time.Duration
	// Inference: from that start until the end of the last batch holding
	// one of its pairs. When the call is split across batches, gaps between
	// them (other requests' batches on the same instance) count here.
	Inference time.Duration
	// Total: end-to-end, from Score's entry to its return.
	Total time.Duration
	// Batches is the number of forward calls the call's pairs went through.
	Batches int
}

// Unexplained is Total minus the three measured spans: admission, channel
// hand-offs and result delivery. Computed for reporting only.
func (t Timings) Unexplained() time.Duration {
	return t.Total - t.Tokenize - t.Queue - t.Inference
}

// Result is one call's outcome.
type Result struct {
	// Scores holds one raw logit per passage, in input order: label 0's
	// (for a passage scored in windows, its best window's).
	Scores []float32
	// Logits holds every label's raw logit per passage, row-major:
	// passage i's are Logits[i*Labels : (i+1)*Labels].
	Logits []float32
	// Tokens is the number of model tokens over all pairs, specials
	// included, after truncation.
	Tokens int
	// Truncated counts passages cut to fit: to MaxSeq with the query, or
	// past their last window (Call.MaxChunks). A cut asked for by
	// Call.MaxPassageTokens is not counted.
	Truncated int
	// Rows is the number of pairs forwarded: one per passage, or one per
	// window with Call.MaxChunks.
	Rows    int
	Timings Timings
}

const (
	stateOpen = iota
	stateDraining
	stateClosed
)

// Engine schedules (query, passage) pairs from many concurrent callers onto
// a pool of backend instances. All methods are safe for concurrent use.
type Engine struct {
	cfg         Config
	threadsPer  int
	enc         Encoder
	newInstance NewInstanceFunc
	c           *counters
	coll        *collector
	budget      *budget
	sched       *scheduler

	mu    sync.RWMutex
	state int
	reqs  sync.WaitGroup // admitted calls still running
	quit  chan struct{}  // closed by Close: everything stops
	drain chan struct{}  // closed by Shutdown: flush partial batches now

	tokJobs    chan *request
	goroutines sync.WaitGroup
	closeMu    sync.Mutex
	closeErrs  []error
}

// New starts an engine: the tokenizer pool, the scheduler and one worker per
// pool slot, each building its instance with newInstance on its own locked OS
// thread. If any instance fails to build, everything started is stopped and
// the error returned.
func New(cfg Config, enc Encoder, newInstance NewInstanceFunc) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if enc == nil || newInstance == nil {
		return nil, errors.New("engine: New needs an Encoder and a NewInstanceFunc")
	}
	e := &Engine{
		cfg:         cfg,
		threadsPer:  cfg.InstanceThreads,
		enc:         enc,
		newInstance: newInstance,
		c:           newCounters(cfg.Instances),
		budget:      newBudget(cfg.Threads),
		quit:        make(chan struct{}),
		drain:       make(chan struct{}),
		tokJobs:     make(chan *request, 4*cfg.TokenizeWorkers),
	}
	e.coll = newCollector(e.c)
	e.sched = newScheduler(e)

	ready := make(chan error, cfg.Instances)
	for i := range cfg.Instances {
		e.goroutines.Add(1)
		go e.workerLoop(i, ready)
	}
	var errs []error
	for range cfg.Instances {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		close(e.quit)
		e.state = stateClosed
		e.goroutines.Wait()
		return nil, errors.Join(errs...)
	}
	e.goroutines.Add(1 + cfg.TokenizeWorkers)
	go e.sched.run()
	for range cfg.TokenizeWorkers {
		go e.tokenizeLoop()
	}
	return e, nil
}

// Config returns the configuration in force, defaults resolved.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns a snapshot of the engine's counters and histograms.
func (e *Engine) Stats() Stats { return e.c.stats() }

// Collector returns the engine's metrics as a prometheus.Collector, for a
// server to register. It reads the same counters as Stats.
func (e *Engine) Collector() prometheus.Collector { return e.coll }

// request is one Score call on its way through the engine. Ownership moves
// Score -> tokenizer worker -> scheduler; the fields in each block are
// written only by their owner.
type request struct {
	query    string
	passages []string
	call     Call
	// n is the number of passages until they are tokenized, then the
	// number of pairs (rows); places is the queue places admission
	// reserved until then.
	n      int
	places int

	// tokenizer worker
	ids, types []int32
	off        []int32 // pair i is ids[off[i]:off[i+1]]
	owner      []int32 // pair i scores passage owner[i]; nil: pair i is passage i
	tokens     int
	truncated  int
	tTokStart  time.Time // set by Score just before the hand-off
	tTokEnd    time.Time
	tEnqueue   time.Time

	// scheduler
	remaining  int // pairs queued or in flight
	stamp      uint64
	batches    int
	firstStart time.Time
	lastEnd    time.Time
	finished   bool

	// logits[i*Labels:(i+1)*Labels] is written by the instance worker that
	// forwarded pair i.
	logits []float32
	err    error  // set before done is closed
	reason string // failure reason of err
	done   chan struct{}

	cancelled atomic.Bool // set by Score when the caller gave up
}

// admit reserves n queue places, or reports false if they would exceed
// MaxQueue.
func (e *Engine) admit(n int) bool {
	for {
		cur := e.c.queued.Load()
		if cur+int64(n) > int64(e.cfg.MaxQueue) {
			return false
		}
		if e.c.queued.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

// Score scores each passage against query with call's settings and
// returns one raw logit per passage (and every label's) in input order. The
// query is tokenized once; the passages' pairs are split across batches as
// the batcher sees fit, mixed with other calls' pairs, and merged back in
// order.
//
// It fails at once with ErrOverloaded when the queue is full (a call holds
// len(passages) x max(1, call.MaxChunks) places until its passages are
// tokenized, then one per pair) and with ErrClosed once Shutdown or Close
// has begun. If ctx ends first, Score returns its error at once and the
// call's pairs that have not reached a backend are removed from the queue.
// Safe for concurrent use; the cost per call is a few allocations (the
// request, its token buffers and logits), none per pair beyond what the
// Encoder does.
func (e *Engine) Score(ctx context.Context, query string, passages []string, call Call) (Result, error) {
	start := time.Now()
	r, err := e.submit(ctx, query, passages, call)
	if err != nil {
		return Result{}, err
	}
	if r == nil {
		return Result{Scores: []float32{}, Logits: []float32{}}, nil
	}
	defer e.reqs.Done()
	select {
	case <-r.done:
	case <-ctx.Done():
		r.cancelled.Store(true)
		e.sched.poke()
		e.c.fail(ReasonCancelled)
		return Result{}, ctx.Err()
	case <-e.quit:
		select {
		case <-r.done: // finished just as the engine closed: deliver it
		default:
			e.c.fail(ReasonClosed)
			return Result{}, ErrClosed
		}
	}
	if r.err != nil {
		e.c.fail(r.reason)
		return Result{}, r.err
	}
	t := Timings{
		Tokenize:  r.tTokEnd.Sub(r.tTokStart),
		Queue:     r.firstStart.Sub(r.tEnqueue),
		Inference: r.lastEnd.Sub(r.firstStart),
		Batches:   r.batches,
	}
	t.Total = time.Since(start)
	e.c.reqDur.observe(t.Total.Seconds())
	e.c.tokDur.observe(t.Tokenize.Seconds())
	e.c.queueDur.observe(t.Queue.Seconds())
	e.c.inferDur.observe(t.Inference.Seconds())
	e.c.success.Add(1)
	scores, logits := r.fold(len(passages), e.cfg.Labels)
	return Result{Scores: scores, Logits: logits, Tokens: r.tokens, Truncated: r.truncated, Rows: r.n, Timings: t}, nil
}

// submit admits a call and hands it to the tokenizer pool. It returns nil
// and no error for an empty call; otherwise a request in flight, for which
// the caller must call e.reqs.Done.
func (e *Engine) submit(ctx context.Context, query string, passages []string, call Call) (*request, error) {
	n := len(passages)
	places := n * call.chunks()
	e.mu.RLock()
	if e.state != stateOpen {
		e.mu.RUnlock()
		if n > 0 {
			e.c.requests.Add(1)
			e.c.fail(ReasonClosed)
		}
		return nil, ErrClosed
	}
	if n == 0 {
		e.mu.RUnlock()
		return nil, nil
	}
	e.c.requests.Add(1)
	if err := ctx.Err(); err != nil {
		e.mu.RUnlock()
		e.c.fail(ReasonCancelled)
		return nil, err
	}
	if !e.admit(places) {
		e.mu.RUnlock()
		e.c.fail(ReasonOverloaded)
		if places > e.cfg.MaxQueue {
			return nil, fmt.Errorf("%w: %d pairs exceed the queue of %d", ErrOverloaded, places, e.cfg.MaxQueue)
		}
		return nil, ErrOverloaded
	}
	e.reqs.Add(1)
	e.mu.RUnlock()
	e.c.pairs.Add(uint64(n))

	r := &request{query: query, passages: passages, n: n, places: places, call: call, done: make(chan struct{})}
	r.tTokStart = time.Now()
	select {
	case e.tokJobs <- r:
		return r, nil
	case <-ctx.Done():
		e.c.queued.Add(-int64(places))
		e.c.dropped.Add(uint64(n))
		e.c.fail(ReasonCancelled)
		e.reqs.Done()
		return nil, ctx.Err()
	case <-e.quit:
		e.c.fail(ReasonClosed)
		e.reqs.Done()
		return nil, ErrClosed
	}
}

// Shutdown stops admitting calls (new ones get ErrClosed), lets every
// admitted call finish with its scores (fixed mode flushes partial batches
// at once instead of waiting for the timeout), then closes the engine. If
// ctx ends first it closes at once, failing what is left with ErrClosed, and
// returns ctx's error. Safe to call more than once and concurrently with
// Close.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.state == stateOpen {
		e.state = stateDraining
		close(e.drain)
	}
	e.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		e.reqs.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return e.Close()
	case <-ctx.Done():
		err := e.Close()
		<-idle // Close makes every running call return promptly
		return errors.Join(fmt.Errorf("shutdown: %w", ctx.Err()), err)
	}
}

// Close stops the engine now: running calls return ErrClosed, queued pairs
// are dropped, and later calls get ErrClosed. It returns once every engine
// goroutine has exited, which waits for forward calls already running on a
// backend (they cannot be interrupted), and every instance is closed. It
// returns the instances' Close errors. Safe to call more than once and
// concurrently; later calls wait like the first and return the same error.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.state == stateOpen {
		close(e.drain)
	}
	if e.state != stateClosed {
		e.state = stateClosed
		close(e.quit)
	}
	e.mu.Unlock()
	e.goroutines.Wait()
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	return errors.Join(e.closeErrs...)
}

func (e *Engine) addCloseErr(err error) {
	if err == nil {
		return
	}
	e.closeMu.Lock()
	e.closeErrs = append(e.closeErrs, err)
	e.closeMu.Unlock()
}
