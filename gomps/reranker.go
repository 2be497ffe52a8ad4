package gomps

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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
	Labels           int            // logits per pair (the model's labels; Result.Logits)
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
// Do is its one scoring call; Score and Rank are shorthands over it.
//
// Concurrency: every method is safe for concurrent use. Concurrent calls
// share batches and instances. Close may be called from any
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
type instance struct {
	c      *native.Context
	labels int // logits per row
}

var _ engine.Instance = (*instance)(nil)

func (i *instance) SetThreads(n int) error { return i.c.SetThreads(n) }

func (i *instance) Forward(b *engine.Batch, logits []float32) error {
	if err := i.c.Forward(b.Rows, b.Seq, b.IDs, b.Types, b.Lengths, logits); err != nil {
		return err
	}
	for k, x := range logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return &Error{Code: CodeInternal, Op: "forward", Msg: fmt.Sprintf("row %d: non-finite logit %v", k/i.labels, x)}
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
	return &instance{c: c, labels: m.Info().NumLabels}, nil
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
			return nil, err
		}
		defer os.RemoveAll(tmp) // the backend has read the file by then
		path = filepath.Join(tmp, "model.gomps")
		if _, err := weights.Convert(src.Path, path, weights.ConvertOptions{Name: src.ModelID}); err != nil {
			return nil, fmt.Errorf("converting %s: %w", src.Path, err)
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
		Labels:          mi.NumLabels,
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
			Labels:           mi.NumLabels,
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

// encoder adapts the tokenizer to engine.Encoder. A text the tokenizer
// refuses is a *TokenizerError naming it within the engine call.
type encoder struct{ t *tokenizer }

func (e encoder) EncodeQuery(q string) ([]int32, error) {
	ids, err := e.t.encode(q)
	if err != nil && err != ErrClosed {
		return nil, &TokenizerError{Index: -1, Err: err}
	}
	return ids, err
}

func (e encoder) EncodePassages(ps []string, atLeast int) ([][]int32, error) {
	out := make([][]int32, len(ps))
	for i, p := range ps {
		ids, err := e.t.encodeFirst(p, atLeast)
		if err == ErrClosed {
			return nil, err
		}
		if err != nil {
			return nil, &TokenizerError{Index: i, Err: err}
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
