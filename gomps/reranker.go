package gomps

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gomps/gomps/gomps/internal/engine"
	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/weights"
)

// Pair is one (query, passage) to score.
type Pair struct {
	Query   string
	Passage string
}

// Info describes an open Reranker.
type Info struct {
	Model            string         // model name recorded in the weights file
	SHA256           string         // hex SHA-256 of the source model.safetensors ("" if the file does not record it)
	Path             string         // the file or directory loaded
	Kind             SourceKind     // what Path is
	TestModel        bool           // the default test model, not the real reranker
	Config           weights.Config // the model's shape
	Backend          string         // "cpu", "metal"
	ISA              string         // the instruction set the backend runs on ("avx512_core_amx", "apple-m2", ...)
	Precision        string         // "f32", "bf16", "f16"
	NativePrecisions []string       // the precisions the backend runs natively here (Backend().Precisions)
	Threads          int            // native threads over all instances
	Instances        int            // native contexts (concurrent forward passes)
	MaxLength        int            // tokens per pair incl. [CLS] and two [SEP]
	MaxBatch         int            // pairs per forward call
	MaxQueue         int            // pairs admitted and not yet forwarded, over all calls (WithMaxQueue)
	Batcher          string         // "adaptive" or "fixed"
	Routing          string         // "least-loaded" or "round-robin"
	BatchWait        time.Duration  // fixed batcher: longest a partial batch collects (WithBatchTimeout)
	Sigmoid          bool           // scores are sigmoid(logit)
	Truncate         bool           // too-long pairs are truncated (else refused)
}

// Reranker scores (query, passage) pairs with a cross-encoder through a
// native backend, via the serving engine: a tokenizer pool, a batcher that
// groups pairs of similar length from all concurrent calls, and a pool of
// Info().Instances native contexts over one shared model.
//
// Concurrency: every method is safe for concurrent use. Concurrent Score and
// ScorePairs calls share batches and instances. Close may be called from any
// goroutine, any number of times.
type Reranker struct {
	opts options
	info Info
	tok  *tokenizer
	eng  *engine.Engine
	res  *resources

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ io.Closer = (*Reranker)(nil)

// resources are the native handles of a Reranker, freed once by Close or, as
// a safety net for a Reranker never closed, by a runtime cleanup. The engine
// owns and closes the contexts.
type resources struct {
	once  sync.Once
	eng   *engine.Engine
	model *native.Model
	tok   *tokenizer
}

// debugLeaks (GOMPS_DEBUG set, read once) makes the safety-net cleanup of a
// Reranker never closed say so on stderr.
var debugLeaks = os.Getenv("GOMPS_DEBUG") != ""

// Live native handles of this process, for leak tests.
var liveModels, liveContexts atomic.Int64

func (r *resources) free() error {
	var err error
	r.once.Do(func() {
		if r.eng != nil {
			err = r.eng.Close() // waits for running forwards, closes every instance
		}
		if r.model != nil {
			r.model.Close()
			liveModels.Add(-1)
		}
		if r.tok != nil {
			r.tok.Close()
		}
	})
	return err
}

// instance is one native context as an engine.Instance. The engine drives it
// from one locked OS thread.
type instance struct{ c *native.Context }

var _ engine.Instance = (*instance)(nil)

func (i *instance) SetThreads(n int) error { return i.c.SetThreads(n) }

func (i *instance) Forward(b *engine.Batch, logits []float32) error {
	if err := i.c.Forward(b.Rows, b.Seq, b.IDs, b.Types, b.Lengths, logits); err != nil {
		return err
	}
	for k, x := range logits[:b.Rows] {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return &Error{Code: CodeInternal, Op: "forward", Msg: fmt.Sprintf("row %d: non-finite logit %v", k, x)}
		}
	}
	return nil
}

func (i *instance) Close() error {
	i.c.Close()
	liveContexts.Add(-1)
	return nil
}

// newInstance makes a context of m with threads threads as an engine
// instance.
func newInstance(m *native.Model, threads int) (engine.Instance, error) {
	c, err := m.NewContext(threads)
	if err != nil {
		return nil, err
	}
	liveContexts.Add(1)
	return &instance{c}, nil
}

// Open loads a model and starts its engine. model is found as ResolveModel
// says: "" means $GOMPS_MODEL, else DefaultModelID from the Hugging Face
// cache, else the test model (with a one-line notice, see WithNotices);
// otherwise a native weights file, a Hugging Face model directory, or a
// model id ("org/name"). Then:
//
//   - a model id that is not in the Hugging Face cache is downloaded from
//     the Hub into it (config.json, model.safetensors, tokenizer.json at
//     revision main; HF_ENDPOINT, HF_TOKEN; HF_HUB_OFFLINE=1 forbids it),
//     with a notice;
//   - a model id from the Hugging Face cache is converted once into the
//     gomps cache (NativeCachePath) and later Opens load that file;
//   - a Hugging Face directory given by path is converted to a temporary
//     native file at every Open (about a second for MiniLM-L6), removed
//     once the backend has read it.
//
// FetchModel does the finding and downloading without loading.
//
// The backend (WithBackend; by default the one built in for this platform)
// is asked what it can do here first; the engine is configured from its
// answers (instances and threads, whether padding costs), then the backend
// loads the file, validating it once.
//
// Cost: the backend reads the whole weights file once and packs it; each
// instance allocates scratch memory for max batch x max length; starts the
// engine's goroutines (one per instance, the tokenizer workers and the
// batcher), which Close stops. ctx bounds the download; conversion and
// loading are not interruptible.
func Open(ctx context.Context, model string, opts ...Option) (*Reranker, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	o = o.resolved()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	be, err := native.Lookup(o.backend)
	if err != nil {
		return nil, err
	}
	bi, caps, err := askBackend(be, o.threads)
	if err != nil {
		return nil, err
	}
	src, err := resolveModel(ctx, model, o.notices, o.trustUnverified)
	if err != nil {
		return nil, err
	}
	path := src.Path
	if src.Kind == SourceHFDir {
		tmp, err := os.MkdirTemp("", "gomps-convert-*")
		if err != nil {
			return nil, fmt.Errorf("gomps: %w", err)
		}
		defer os.RemoveAll(tmp) // the backend has read the file by then
		path = filepath.Join(tmp, "model.gomps")
		if _, err := weights.Convert(src.Path, path, weights.ConvertOptions{Name: src.ModelID}); err != nil {
			return nil, fmt.Errorf("gomps: converting %s: %w", src.Path, err)
		}
	}
	res := &resources{}
	fail := func(err error) (*Reranker, error) {
		res.free()
		return nil, err
	}
	prec, _ := native.ParsePrecision(o.precision) // checked by WithPrecision
	// The backend validates the file (once), checks max length against the
	// model's positions, packs the weights; the tokenizer comes from it.
	if res.model, err = be.Load(path, native.Options{Precision: prec, MaxBatch: o.maxBatch, MaxSeq: o.maxLength}); err != nil {
		return nil, err
	}
	liveModels.Add(1)
	mi := res.model.Info()
	if res.tok, err = newTokenizer(res.model.Tokenizer()); err != nil {
		return fail(err)
	}
	perInstance := caps.Threads
	if o.instances == 0 {
		o.instances = caps.Instances
	} else {
		perInstance = max(1, o.threads/o.instances)
	}
	ecfg := engine.Config{
		Instances:       o.instances,
		Threads:         o.threads,
		InstanceThreads: perInstance,
		Mode:            o.mode,
		Routing:         o.routing,
		Timeout:         o.timeout,
		MaxBatch:        o.maxBatch,
		MaxQueue:        o.maxQueue,
		MaxSeq:          mi.MaxSeq,
		PaddedBackend:   caps.Padded,
		ClsID:           res.tok.cls,
		SepID:           res.tok.sep,
		TruncationError: !o.truncate,
	}
	m := res.model
	res.eng, err = engine.New(ecfg, encoder{res.tok}, func(int) (engine.Instance, error) { return newInstance(m, perInstance) })
	if err != nil {
		return fail(err)
	}
	r := &Reranker{
		opts: o,
		tok:  res.tok,
		eng:  res.eng,
		res:  res,
		info: Info{
			Model:            mi.Name,
			Path:             src.Path,
			Kind:             src.Kind,
			TestModel:        src.TestModel,
			Config:           mi.Config,
			Backend:          mi.Backend,
			ISA:              mi.ISA,
			Precision:        mi.Precision.String(),
			NativePrecisions: bi.Precisions,
			Threads:          perInstance * o.instances,
			Instances:        o.instances,
			MaxLength:        mi.MaxSeq,
			MaxBatch:         o.maxBatch,
			MaxQueue:         o.maxQueue,
			Batcher:          o.mode.String(),
			Routing:          o.routing.String(),
			BatchWait:        o.timeout,
			Sigmoid:          o.sigmoid,
			Truncate:         o.truncate,
		},
	}
	if sum := mi.SourceSHA256; sum != [32]byte{} {
		r.info.SHA256 = hex.EncodeToString(sum[:])
	}
	runtime.AddCleanup(r, func(res *resources) {
		if debugLeaks {
			fmt.Fprintf(os.Stderr, "gomps: a Reranker of %s was never closed; the garbage collector freed it\n", src.Path)
		}
		res.free()
	}, res)
	if n := src.Notice(); n != "" && o.notices != nil {
		fmt.Fprintln(o.notices, n)
	}
	return r, nil
}

// encoder adapts the tokenizer to engine.Encoder.
type encoder struct{ t *tokenizer }

func (e encoder) EncodeQuery(q string) ([]int32, error) { return e.t.encode(q) }

func (e encoder) EncodePassages(ps []string, atLeast int) ([][]int32, error) {
	out := make([][]int32, len(ps))
	for i, p := range ps {
		ids, err := e.t.encodeFirst(p, atLeast)
		if err != nil {
			return nil, fmt.Errorf("passage %d: %w", i, err)
		}
		out[i] = ids
	}
	return out, nil
}

// Info describes the loaded model and the settings in force. Cost: a copy.
func (r *Reranker) Info() Info { return r.info }

// Close stops the engine: calls in progress return ErrClosed (forward passes
// already running on a backend finish first), then the instances, the model
// and the tokenizer are freed. It is idempotent and safe from several
// goroutines: every call returns after the resources are freed, with the
// same error. Methods called after Close return ErrClosed.
func (r *Reranker) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.closeErr = r.res.free()
	})
	return r.closeErr
}

// chunkPairs is the most pairs one engine call carries; larger inputs are
// split so a big file never trips the engine's queue bound, and chunks
// overlap (one tokenizes while another runs).
const chunkPairs = 1024

// job is one engine call: a query and a run of passages with their indices
// in the caller's input.
type job struct {
	query    string
	passages []string
	index    []int // index[k] = input position of passages[k]
}

// Score returns one score per passage for query, in passage order: the raw
// logit, or its sigmoid with WithSigmoid. An empty passages slice gives an
// empty result; an empty passage is valid. The query is tokenized once per
// chunk of 1024 passages.
//
// Errors: ErrEmptyQuery, ErrInvalidUTF8 (naming the passage), *TooLongError
// (ErrTooLong, with WithTruncation(false)), *TokenizerError (ErrTokenizer),
// ErrOverloaded, ErrClosed, ctx.Err(), or a backend failure matching a
// native sentinel (*Error).
// Cost: tokenization linear in the text; forward passes over batches the
// engine cuts from pairs of similar length, shared with concurrent calls.
// Blocks until every score is ready, ctx ends or the Reranker closes.
func (r *Reranker) Score(ctx context.Context, query string, passages []string) ([]float32, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if query == "" {
		return nil, ErrEmptyQuery
	}
	if !utf8.ValidString(query) {
		return nil, at(ErrInvalidUTF8, "query")
	}
	for i, p := range passages {
		if !utf8.ValidString(p) {
			return nil, at(ErrInvalidUTF8, "passage %d", i)
		}
	}
	var jobs []job
	for start := 0; start < len(passages); start += chunkPairs {
		end := min(start+chunkPairs, len(passages))
		idx := make([]int, end-start)
		for k := range idx {
			idx[k] = start + k
		}
		jobs = append(jobs, job{query: query, passages: passages[start:end], index: idx})
	}
	return r.run(ctx, jobs, len(passages))
}

// Ranked is one entry of a Rank result: the passage's index in the input
// and its score.
type Ranked = engine.Ranked

// Rank scores passages against query and returns the topK best (every
// passage when topK <= 0), best first; equal scores keep input order.
// Errors and cost as Score, plus an O(n log n) sort.
func (r *Reranker) Rank(ctx context.Context, query string, passages []string, topK int) ([]Ranked, error) {
	scores, err := r.Score(ctx, query, passages)
	if err != nil {
		return nil, err
	}
	return engine.Rank(scores, topK), nil
}

// ScorePairs scores pairs that may have different queries, in pair order.
// Pairs are grouped by query, so each distinct query is tokenized once per
// group chunk; groups run concurrently. Errors and cost as Score;
// ErrEmptyQuery, ErrInvalidUTF8 and *TooLongError name the pair.
func (r *Reranker) ScorePairs(ctx context.Context, pairs []Pair) ([]float32, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, p := range pairs {
		if p.Query == "" {
			return nil, at(ErrEmptyQuery, "pair %d", i)
		}
		if !utf8.ValidString(p.Query) || !utf8.ValidString(p.Passage) {
			return nil, at(ErrInvalidUTF8, "pair %d", i)
		}
	}
	return r.run(ctx, groupPairs(pairs), len(pairs))
}

// groupPairs groups pairs by query, in order of first appearance, into jobs
// of at most chunkPairs passages.
func groupPairs(pairs []Pair) []job {
	var jobs []job
	open := map[string]int{} // query -> index of its job still filling
	for i, p := range pairs {
		j, ok := open[p.Query]
		if !ok || len(jobs[j].passages) == chunkPairs {
			j = len(jobs)
			jobs = append(jobs, job{query: p.Query})
			open[p.Query] = j
		}
		jobs[j].passages = append(jobs[j].passages, p.Passage)
		jobs[j].index = append(jobs[j].index, i)
	}
	return jobs
}

// run sends jobs to the engine from a few goroutines (enough to keep every
// instance fed) and scatters the scores. The first failure cancels the rest.
func (r *Reranker) run(ctx context.Context, jobs []job, n int) ([]float32, error) {
	out := make([]float32, n)
	if len(jobs) == 0 {
		return out, nil
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
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				if ctx.Err() != nil {
					return
				}
				res, err := r.eng.Score(ctx, jobs[j].query, jobs[j].passages)
				if err == nil && len(res.Scores) != len(jobs[j].passages) {
					err = &Error{Code: CodeInternal, Op: "score", Msg: fmt.Sprintf("engine returned %d scores for %d pairs", len(res.Scores), len(jobs[j].passages))}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = r.mapError(err, jobs[j])
					}
					mu.Unlock()
					cancel()
					return
				}
				for k, s := range res.Scores {
					out[jobs[j].index[k]] = s
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		// A job cancelled because another failed reports the cause, not
		// context.Canceled; the caller's own cancellation wins.
		return nil, first
	}
	if r.opts.sigmoid {
		for i, x := range out {
			out[i] = float32(1 / (1 + math.Exp(-float64(x))))
		}
	}
	return out, nil
}

// mapError turns an engine error into this package's: ErrClosed,
// ErrOverloaded, *TooLongError and *TokenizerError (the text found again by
// re-tokenizing the job, a cost paid only on these error paths). Backend errors keep their
// *Error, context errors their context sentinel.
func (r *Reranker) mapError(err error, j job) error {
	switch {
	case errors.Is(err, engine.ErrClosed):
		return ErrClosed
	case errors.Is(err, engine.ErrOverloaded):
		return fmt.Errorf("%w: %w", ErrOverloaded, err)
	case errors.Is(err, engine.ErrTooLong):
		q, qerr := r.tok.encode(j.query)
		if qerr == nil {
			for k, p := range j.passages {
				ids, perr := r.tok.encode(p)
				if perr != nil {
					break
				}
				if n := len(q) + len(ids) + 3; n > r.info.MaxLength {
					return &TooLongError{Index: j.index[k], Tokens: n, MaxLength: r.info.MaxLength}
				}
			}
		}
		return fmt.Errorf("%w: %w", ErrTooLong, err)
	case errors.Is(err, engine.ErrTokenize):
		if r.closed.Load() {
			return ErrClosed
		}
		if _, qerr := r.tok.encode(j.query); qerr != nil {
			return &TokenizerError{Index: -1, Err: qerr}
		}
		for k, p := range j.passages {
			if _, perr := r.tok.encode(p); perr != nil {
				return &TokenizerError{Index: j.index[k], Err: perr}
			}
		}
		return &TokenizerError{Index: -1, Err: err} // the encoder failed in another way (a panic)
	}
	return err
}
