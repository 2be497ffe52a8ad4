package gomps

import (
	"context"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/gomps/gomps/gomps/internal/engine"
)

// Timings splits one call's latency into spans, each from its own clock
// reads (see ScoreTimed): Tokenize, Queue, Inference, Total and Batches.
type Timings = engine.Timings

// Stats is a snapshot of the engine's counters and histograms: requests,
// pairs, batches and their rows, real and padded tokens, per-instance busy
// time and the duration histograms. Counter fields only grow.
type Stats = engine.Stats

// HistSnapshot summarises one of the engine's histograms.
type HistSnapshot = engine.HistSnapshot

// InstanceStats counts one instance's forward calls.
type InstanceStats = engine.InstanceStats

// ScoreTimed scores passages against query as one engine call and returns
// the call's Timings with the scores. It is Score without chunking, for
// benchmarks and servers that report per-request timings: len(passages) must
// not pass the engine's queue bound (WithMaxQueue). Errors as Score.
func (r *Reranker) ScoreTimed(ctx context.Context, query string, passages []string) ([]float32, Timings, error) {
	if r.closed.Load() {
		return nil, Timings{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, Timings{}, err
	}
	if query == "" {
		return nil, Timings{}, ErrEmptyQuery
	}
	if !utf8.ValidString(query) {
		return nil, Timings{}, at(ErrInvalidUTF8, "query")
	}
	idx := make([]int, len(passages))
	for i, p := range passages {
		if !utf8.ValidString(p) {
			return nil, Timings{}, at(ErrInvalidUTF8, "passage %d", i)
		}
		idx[i] = i
	}
	res, err := r.eng.Score(ctx, query, passages)
	if err != nil {
		return nil, Timings{}, r.mapError(err, job{query: query, passages: passages, index: idx})
	}
	if len(res.Scores) != len(passages) {
		return nil, Timings{}, &Error{Code: CodeInternal, Op: "score", Msg: fmt.Sprintf("engine returned %d scores for %d pairs", len(res.Scores), len(passages))}
	}
	if r.opts.sigmoid {
		for i, x := range res.Scores {
			res.Scores[i] = float32(1 / (1 + math.Exp(-float64(x))))
		}
	}
	return res.Scores, res.Timings, nil
}

// Stats snapshots the engine's counters. Cost: one pass over a few hundred
// atomics; safe to call concurrently with scoring.
func (r *Reranker) Stats() Stats { return r.eng.Stats() }
