package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/gomps/pairio"
	"github.com/gomps/gomps/gomps/shard"
)

var (
	pairsScored   = beam.NewCounter("gomps", "pairs_scored")
	queriesScored = beam.NewCounter("gomps", "queries_scored")
)

// ModelConfig is what a worker needs to open the model. It is part of the
// serialized DoFn, so every worker opens the same model the same way.
type ModelConfig struct {
	Model      string // native file or Hugging Face dir, at a path the worker can read
	Precision  string // "" = the library default (f32)
	MaxLength  int    // 0 = the model's max positions
	Threads    int    // 0 = all cores of the worker
	Instances  int    // model instances per worker process; 0 = the library default
	Sigmoid    bool
	NoTruncate bool // refuse pairs longer than MaxLength instead of truncating
}

// scorer is the part of *gomps.Reranker the pipeline uses.
type scorer interface {
	Do(ctx context.Context, req gomps.Request) (gomps.Result, error)
}

var _ scorer = (*gomps.Reranker)(nil)

// openScorer opens the model; a variable so tests can count opens.
var openScorer = func(ctx context.Context, cfg ModelConfig) (scorer, error) {
	var opts []gomps.Option
	if cfg.Precision != "" {
		opts = append(opts, gomps.WithPrecision(cfg.Precision))
	}
	if cfg.MaxLength > 0 {
		opts = append(opts, gomps.WithMaxLength(cfg.MaxLength))
	}
	if cfg.Threads > 0 {
		opts = append(opts, gomps.WithThreads(cfg.Threads))
	}
	if cfg.Instances > 0 {
		opts = append(opts, gomps.WithInstances(cfg.Instances))
	}
	if cfg.Sigmoid {
		opts = append(opts, gomps.WithSigmoid())
	}
	if cfg.NoTruncate {
		opts = append(opts, gomps.WithTruncation(false))
	}
	return gomps.Open(ctx, cfg.Model, opts...)
}

// One Reranker per worker process and model configuration, opened lazily
// by the first DoFn instance's Setup and shared by every instance (a runner
// processes several bundles at once in one process; the Reranker is safe
// for concurrent use and batches concurrent calls together).
//
// It is never closed, on purpose: Beam does not promise that Teardown runs,
// so nothing may depend on it. The Reranker holds only memory (weights,
// scratch buffers) and goroutines; the temporary file of a Hugging Face
// dir's conversion is removed inside Open. When the worker process exits,
// the OS reclaims all of it; nothing is left on disk or half-written.
var scorers struct {
	sync.Mutex
	m map[ModelConfig]*sharedScorer
}

type sharedScorer struct {
	mu sync.Mutex // held while opening, so one open per process
	sc scorer
}

// workerScorer returns the process's scorer for cfg, opening it on first
// use. A failed open is not remembered: the next bundle tries again.
func workerScorer(ctx context.Context, cfg ModelConfig) (scorer, error) {
	scorers.Lock()
	if scorers.m == nil {
		scorers.m = make(map[ModelConfig]*sharedScorer)
	}
	s := scorers.m[cfg]
	if s == nil {
		s = &sharedScorer{}
		scorers.m[cfg] = s
	}
	scorers.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sc == nil {
		sc, err := openScorer(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("beam: opening model %q on the worker: %w", cfg.Model, err)
		}
		s.sc = sc
	}
	return s.sc, nil
}

// outputConfig says how a query's scored pairs are written (pairio's
// writers, as the score command writes them).
type outputConfig struct {
	Format string // tsv, jsonl or trec
	Rerank bool
	TopK   int
	Tag    string
}

// scoreFn scores whole queries: each element is one query key with all its
// pairs (after a GroupByKey). Queries are buffered until they hold at least
// Batch pairs, which are then scored in one library call (Do; each query
// tokenized once, pairs of several queries sharing forward passes);
// FinishBundle scores the rest. Each query's output is emitted keyed by its
// output shard, shard.Of(key, Shards).
type scoreFn struct {
	Model  ModelConfig
	Batch  int
	Out    outputConfig
	Shards int

	sc      scorer
	pending []queryGroup
	npairs  int
}

type queryGroup struct {
	key   string
	pairs []Pair
}

// Setup gets the worker's shared Reranker, opening it on first use.
func (f *scoreFn) Setup(ctx context.Context) error {
	sc, err := workerScorer(ctx, f.Model)
	if err != nil {
		return err
	}
	f.sc = sc
	return nil
}

// StartBundle starts an empty batch.
func (f *scoreFn) StartBundle(ctx context.Context, emit func(int, Block)) {
	clear(f.pending)
	f.pending = f.pending[:0]
	f.npairs = 0
}

// ProcessElement adds a query to the batch and scores the batch once it
// holds Batch pairs.
func (f *scoreFn) ProcessElement(ctx context.Context, key string, pairs func(*Pair) bool, emit func(int, Block)) error {
	g := queryGroup{key: key}
	var p Pair
	for pairs(&p) {
		g.pairs = append(g.pairs, p)
	}
	if len(g.pairs) == 0 {
		return nil
	}
	// GroupByKey gives no order: restore the input's.
	sort.Slice(g.pairs, func(i, j int) bool { return g.pairs[i].before(&g.pairs[j]) })
	f.pending = append(f.pending, g)
	f.npairs += len(g.pairs)
	if f.npairs >= f.Batch {
		return f.flush(ctx, emit)
	}
	return nil
}

// FinishBundle scores what is left of the bundle.
func (f *scoreFn) FinishBundle(ctx context.Context, emit func(int, Block)) error {
	return f.flush(ctx, emit)
}

func (f *scoreFn) flush(ctx context.Context, emit func(int, Block)) error {
	if f.npairs == 0 {
		return nil
	}
	batch := make([]gomps.Pair, 0, f.npairs)
	for _, g := range f.pending {
		for i := range g.pairs {
			batch = append(batch, gomps.Pair{Query: g.pairs[i].Query, Passage: g.pairs[i].Passage})
		}
	}
	res, err := f.sc.Do(ctx, gomps.Request{Pairs: batch})
	if err != nil {
		var tl *gomps.TooLongError
		if errors.As(err, &tl) {
			if p := f.pairAt(tl.Index); p != nil {
				return fmt.Errorf("beam: %s:%d: %w", p.PosFile, p.PosLine, err)
			}
		}
		first := &f.pending[0].pairs[0]
		return fmt.Errorf("beam: scoring %d pairs (the first from %s:%d): %w", len(batch), first.PosFile, first.PosLine, err)
	}
	scores := res.Scores
	if len(scores) != len(batch) {
		return fmt.Errorf("beam: %d scores for %d pairs", len(scores), len(batch))
	}
	off := 0
	for _, g := range f.pending {
		text, err := f.Out.format(g.pairs, scores[off:off+len(g.pairs)])
		if err != nil {
			return err
		}
		off += len(g.pairs)
		first := &g.pairs[0]
		emit(shard.Of(g.key, f.Shards), Block{File: first.File, Seq: first.Seq, Text: text})
		pairsScored.Inc(ctx, int64(len(g.pairs)))
		queriesScored.Inc(ctx, 1)
	}
	clear(f.pending)
	f.pending = f.pending[:0]
	f.npairs = 0
	return nil
}

// pairAt returns the i-th pending pair, in batch order, or nil.
func (f *scoreFn) pairAt(i int) *Pair {
	for _, g := range f.pending {
		if i < len(g.pairs) {
			return &g.pairs[i]
		}
		i -= len(g.pairs)
	}
	return nil
}

// format writes one query's pairs (in input order) with pairio's writer for
// the output format, exactly as the score command writes a query group.
func (o outputConfig) format(pairs []Pair, scores []float32) (string, error) {
	var buf bytes.Buffer
	w, err := pairio.NewWriter(&buf, pairio.Format(o.Format), pairio.WriterOptions{Rerank: o.Rerank, TopK: o.TopK, Tag: o.Tag})
	if err != nil {
		return "", fmt.Errorf("beam: %w", err)
	}
	g := make([]pairio.Scored, len(pairs))
	for i := range pairs {
		g[i] = pairio.Scored{Item: pairs[i].item(), Score: float64(scores[i])}
	}
	if err := w.WriteGroup(g); err != nil {
		return "", fmt.Errorf("beam: %w", err)
	}
	if err := w.Flush(); err != nil {
		return "", fmt.Errorf("beam: %w", err)
	}
	return buf.String(), nil
}

func init() {
	register.DoFn4x1[context.Context, string, func(*Pair) bool, func(int, Block), error](&scoreFn{})
	register.Iter1[Pair]()
	register.Emitter2[int, Block]()
}
