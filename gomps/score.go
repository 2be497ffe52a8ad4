package gomps

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gomps/gomps/gomps/internal/engine"
)

// Request is one scoring call: a query and its passages, or pairs that may
// each have their own query (then Query and Passages stay empty).
type Request struct {
	Query    string
	Passages []string
	Pairs    []Pair

	// TruncateLeft keeps the last tokens of a too-long query or passage
	// instead of the first (Hugging Face's truncation direction "left";
	// TEI's "truncation_direction": "Left"); the lengths kept are the same.
	// It costs a whole tokenization of every passage.
	TruncateLeft bool
	// MaxPassageTokens, when positive, cuts every passage to its first
	// MaxPassageTokens tokens before it is paired with its query (Cohere's
	// max_tokens_per_doc). Such a cut is not counted in Result.Truncated.
	MaxPassageTokens int
	// MaxChunks, when above 1, scores a passage too long to pair whole with
	// its query in up to MaxChunks windows of the tokens one pair keeps of
	// it, each its own pair; the passage's score is its best window's
	// (Cohere's max_chunks_per_doc). At most MaxChunksLimit. 0 or 1: the
	// pair is truncated.
	MaxChunks int
}

// MaxChunksLimit is the most windows Request.MaxChunks may ask for.
const MaxChunksLimit = 256

// Result is the outcome of one Do call.
type Result struct {
	// Scores holds one score per passage (or pair), in input order: the
	// model's logit, or its sigmoid with WithSigmoid. The logit is label
	// 0's; a passage scored in windows (Request.MaxChunks) has its best
	// window's.
	Scores []float32
	// Logits holds every label's raw logit per passage, row-major: passage
	// i's are Logits[i*Labels : (i+1)*Labels] (Info().Labels, 1 for every
	// model today).
	Logits []float32
	Labels int
	// Tokens is the number of model tokens over all pairs, specials
	// included, after truncation.
	Tokens int
	// Truncated counts passages cut to fit the maximum length with their
	// query (or past their last window).
	Truncated int
	// Pairs is the number of pairs forwarded: one per passage, or one per
	// window with Request.MaxChunks.
	Pairs int
	// Timings splits the call's latency. Total is Do's own wall time; a
	// call the library split into several engine calls (more than 1024
	// passages, or several queries) has the pair-weighted means of their
	// Tokenize, Queue and Inference spans and the sum of their Batches.
	Timings Timings
}

// Ranked is one entry of a ranking: a passage's index in the input and its
// score.
type Ranked struct {
	Index int
	Score float32
}

// Ranked returns the topK best scores with their input indices (every one
// when topK <= 0), best first; equal scores keep input order and NaN ranks
// below every number. O(n log n), one allocation.
func (res Result) Ranked(topK int) []Ranked {
	out := make([]Ranked, len(res.Scores))
	for i, s := range res.Scores {
		out[i] = Ranked{Index: i, Score: s}
	}
	slices.SortStableFunc(out, func(a, b Ranked) int {
		an, bn := math.IsNaN(float64(a.Score)), math.IsNaN(float64(b.Score))
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		}
		return cmp.Compare(b.Score, a.Score)
	})
	if topK > 0 && topK < len(out) {
		out = out[:topK:topK]
	}
	return out
}

// Sigmoid maps a logit to (0, 1): the score WithSigmoid gives, and what
// TEI and Cohere answer.
func Sigmoid(logit float32) float32 { return float32(1 / (1 + math.Exp(-float64(logit)))) }

// Timings splits one call's latency into spans, each from its own clock
// reads: Tokenize, Queue, Inference, Total and Batches.
type Timings = engine.Timings

// Stats is a snapshot of the engine's counters and histograms: requests,
// pairs, batches and their rows, real and padded tokens, per-instance busy
// time and the duration histograms. Counter fields only grow.
type Stats = engine.Stats

// HistSnapshot summarises one of the engine's histograms.
type HistSnapshot = engine.HistSnapshot

// InstanceStats counts one instance's forward calls.
type InstanceStats = engine.InstanceStats

// Do scores a request: every passage against the query, or every pair,
// and returns the scores with the logits, token counts and timings.
// Passages are split into engine calls of at most 1024 pairs (fewer
// passages per call with MaxChunks), grouped by query so each query is
// tokenized once per call; the calls run concurrently, enough to keep every
// instance fed. An empty passage is valid; no passages (or pairs) give an
// empty Result.
//
// Errors: ErrInvalidArg (a request with both pairs and passages, or a
// setting out of range), ErrEmptyQuery, ErrInvalidUTF8 (naming the query,
// passage or pair), *TooLongError (ErrTooLong, with WithTruncation(false)),
// *TokenizerError (ErrTokenizer), ErrOverloaded, ErrClosed, ctx.Err(), or a
// backend failure matching a native sentinel (*Error). Indices in errors
// are those of Passages, or of Pairs.
// Cost: tokenization linear in the text (only what survives truncation of
// a long passage is tokenized, unless TruncateLeft); forward passes over
// batches the engine cuts from pairs of similar length, shared with
// concurrent calls. Blocks until every score is ready, ctx ends or the
// Reranker closes.
func (r *Reranker) Do(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	if r.closed.Load() {
		return Result{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	jobs, n, err := req.jobs()
	if err != nil {
		return Result{}, err
	}
	res, err := r.run(ctx, jobs, n, req.call())
	if err != nil {
		return Result{}, err
	}
	if r.opts.sigmoid {
		for i, x := range res.Scores {
			res.Scores[i] = Sigmoid(x)
		}
	}
	res.Timings.Total = time.Since(start)
	return res, nil
}

// Score returns one score per passage for query, in passage order: Do's
// Scores for Request{Query: query, Passages: passages}.
func (r *Reranker) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	res, err := r.Do(ctx, Request{Query: query, Passages: passages})
	return res.Scores, err
}

// Rank scores passages against query and returns the topK best (every
// passage when topK <= 0), best first: Do, then Result.Ranked.
func (r *Reranker) Rank(ctx context.Context, query string, passages []string, topK int) ([]Ranked, error) {
	res, err := r.Do(ctx, Request{Query: query, Passages: passages})
	if err != nil {
		return nil, err
	}
	return res.Ranked(topK), nil
}

// Stats snapshots the engine's counters. Cost: one pass over a few hundred
// atomics; safe to call concurrently with scoring.
func (r *Reranker) Stats() Stats { return r.eng.Stats() }

// Collector returns the engine's Prometheus collector: the gomps_* metrics
// (durations, batch sizes and tokens, padding waste, queue size, request,
// pair and batch counters), read at scrape time from the same counters as
// Stats. Register it once per registry.
func (r *Reranker) Collector() prometheus.Collector { return r.eng.Collector() }

// chunkPairs is the most pairs one engine call carries; larger inputs are
// split so a big file never trips the engine's queue bound, and calls
// overlap (one tokenizes while another runs).
const chunkPairs = 1024

// job is one engine call: a query and a run of passages with their indices
// in the caller's input.
type job struct {
	query    string
	passages []string
	index    []int // index[k] = input position of passages[k]
}

func (req Request) call() engine.Call {
	return engine.Call{TruncateLeft: req.TruncateLeft, MaxPassageTokens: req.MaxPassageTokens, MaxChunks: req.MaxChunks}
}

// jobs checks req and cuts it into engine calls of at most chunkPairs
// pairs, each passage's windows counted. It returns them and the number of
// passages.
func (req Request) jobs() ([]job, int, error) {
	switch {
	case len(req.Pairs) > 0 && (req.Query != "" || len(req.Passages) > 0):
		return nil, 0, fmt.Errorf("%w: a request has either pairs or a query and passages", ErrInvalidArg)
	case req.MaxChunks < 0 || req.MaxChunks > MaxChunksLimit:
		return nil, 0, fmt.Errorf("%w: max chunks %d: want 0..%d", ErrInvalidArg, req.MaxChunks, MaxChunksLimit)
	case req.MaxPassageTokens < 0:
		return nil, 0, fmt.Errorf("%w: max passage tokens %d: want 0 or more", ErrInvalidArg, req.MaxPassageTokens)
	}
	per := max(1, chunkPairs/max(1, req.MaxChunks))
	if len(req.Pairs) > 0 {
		jobs, err := groupPairs(req.Pairs, per)
		return jobs, len(req.Pairs), err
	}
	if req.Query == "" {
		if len(req.Passages) == 0 {
			return nil, 0, nil // nothing to score
		}
		return nil, 0, ErrEmptyQuery
	}
	if !utf8.ValidString(req.Query) {
		return nil, 0, at(ErrInvalidUTF8, "query")
	}
	var jobs []job
	for i, p := range req.Passages {
		if !utf8.ValidString(p) {
			return nil, 0, at(ErrInvalidUTF8, "passage %d", i)
		}
		if i%per == 0 {
			jobs = append(jobs, job{query: req.Query, passages: req.Passages[i:min(i+per, len(req.Passages))]})
		}
		jobs[len(jobs)-1].index = append(jobs[len(jobs)-1].index, i)
	}
	return jobs, len(req.Passages), nil
}

// groupPairs checks pairs and groups them by query, in order of first
// appearance, into jobs of at most per passages.
func groupPairs(pairs []Pair, per int) ([]job, error) {
	var jobs []job
	open := map[string]int{} // query -> index of its job still filling
	for i, p := range pairs {
		if p.Query == "" {
			return nil, at(ErrEmptyQuery, "pair %d", i)
		}
		if !utf8.ValidString(p.Query) || !utf8.ValidString(p.Passage) {
			return nil, at(ErrInvalidUTF8, "pair %d", i)
		}
		j, ok := open[p.Query]
		if !ok || len(jobs[j].passages) == per {
			j = len(jobs)
			jobs = append(jobs, job{query: p.Query})
			open[p.Query] = j
		}
		jobs[j].passages = append(jobs[j].passages, p.Passage)
		jobs[j].index = append(jobs[j].index, i)
	}
	return jobs, nil
}

// gather collects the engine results of a call's jobs into one Result.
type gather struct {
	mu       sync.Mutex
	res      Result
	tok      time.Duration // pair-weighted sums of the jobs' spans
	queue    time.Duration
	infer    time.Duration
	first    error
	failures int
}

// add scatters one job's engine result into the call's.
func (g *gather) add(j job, er engine.Result) {
	g.mu.Lock()
	defer g.mu.Unlock()
	nl := g.res.Labels
	for k, i := range j.index {
		g.res.Scores[i] = er.Scores[k]
		copy(g.res.Logits[i*nl:(i+1)*nl], er.Logits[k*nl:(k+1)*nl])
	}
	g.res.Tokens += er.Tokens
	g.res.Truncated += er.Truncated
	g.res.Pairs += er.Rows
	n := time.Duration(len(j.passages))
	g.tok += er.Timings.Tokenize * n
	g.queue += er.Timings.Queue * n
	g.infer += er.Timings.Inference * n
	g.res.Timings.Batches += er.Timings.Batches
}

// fail keeps the first error.
func (g *gather) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.first == nil {
		g.first = err
	}
}

// run sends jobs to the engine from a few goroutines (enough to keep every
// instance fed) and gathers their results. The first failure cancels the
// rest.
func (r *Reranker) run(ctx context.Context, jobs []job, n int, call engine.Call) (Result, error) {
	nl := r.info.Labels
	g := &gather{res: Result{Scores: make([]float32, n), Logits: make([]float32, n*nl), Labels: nl}}
	if len(jobs) == 0 {
		return g.res, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Enough calls in flight to keep every instance fed, but never more
	// pairs than half the queue bound, so one call cannot overload it.
	workers := max(1, min(len(jobs), 2*r.info.Instances+2, r.opts.maxQueue/(2*chunkPairs)))
	next := make(chan int, len(jobs))
	for j := range jobs {
		next <- j
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range next {
				if ctx.Err() != nil {
					return
				}
				er, err := r.eng.Score(ctx, jobs[j].query, jobs[j].passages, call)
				if err == nil && len(er.Scores) != len(jobs[j].passages) {
					err = &Error{Code: CodeInternal, Op: "score", Msg: fmt.Sprintf("engine returned %d scores for %d pairs", len(er.Scores), len(jobs[j].passages))}
				}
				if err != nil {
					g.fail(r.mapError(err, jobs[j]))
					cancel()
					return
				}
				g.add(jobs[j], er)
			}
		})
	}
	wg.Wait()
	if g.first != nil {
		// A job cancelled because another failed reports the cause, not
		// context.Canceled; the caller's own cancellation wins.
		return Result{}, g.first
	}
	if n > 0 {
		m := time.Duration(n)
		g.res.Timings.Tokenize, g.res.Timings.Queue, g.res.Timings.Inference = g.tok/m, g.queue/m, g.infer/m
	}
	return g.res, nil
}

// mapError turns an engine error into this package's: ErrClosed, and the
// indices of a *TooLongError or *TokenizerError made those of the caller's
// input. ErrOverloaded, ErrTooLong, backend errors (*Error) and context
// errors pass as they are.
func (r *Reranker) mapError(err error, j job) error {
	var tl *TooLongError
	var te *TokenizerError
	switch {
	case errors.Is(err, engine.ErrClosed) || errors.Is(err, ErrClosed):
		return ErrClosed
	case errors.As(err, &tl):
		return &TooLongError{Index: j.index[tl.Index], Tokens: tl.Tokens, MaxLength: tl.MaxLength}
	case errors.As(err, &te):
		if te.Index >= 0 {
			return &TokenizerError{Index: j.index[te.Index], Err: te.Err}
		}
		return te
	case errors.Is(err, engine.ErrTokenize):
		return &TokenizerError{Index: -1, Err: err} // the encoder failed in another way (a panic)
	}
	return err
}
