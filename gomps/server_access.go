package gomps

import (
	"context"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gomps/gomps/gomps/internal/engine"
)

// CallResult is one engine call's outcome (see ScoreCall).
type CallResult struct {
	// Scores holds one score per passage, in input order (raw logits, or
	// sigmoids with WithSigmoid).
	Scores []float32
	// Tokens is the number of model tokens over all pairs, specials
	// included, after truncation.
	Tokens int
	// Truncated counts pairs cut to the maximum length.
	Truncated int
	Timings   Timings
}

// CallOption sets one ScoreCall.
type CallOption func(*engine.Call)

// TruncateLeft makes a ScoreCall keep the last tokens of a too-long query or
// passage instead of the first (Hugging Face's truncation direction "left";
// TEI's "truncation_direction": "Left"). The lengths kept are the same. It
// costs a whole tokenization of every passage.
func TruncateLeft() CallOption { return func(c *engine.Call) { c.TruncateLeft = true } }

// ScoreCall is ScoreTimed that also returns the call's token counts, for
// servers that report usage and refuse truncated input per request. Like
// ScoreTimed it is one engine call: len(passages) must not pass the
// engine's queue bound (WithMaxQueue; 1024 pairs always fit). Errors as
// Score.
func (r *Reranker) ScoreCall(ctx context.Context, query string, passages []string, opts ...CallOption) (CallResult, error) {
	if r.closed.Load() {
		return CallResult{}, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return CallResult{}, err
	}
	if query == "" {
		return CallResult{}, ErrEmptyQuery
	}
	if !utf8.ValidString(query) {
		return CallResult{}, at(ErrInvalidUTF8, "query")
	}
	idx := make([]int, len(passages))
	for i, p := range passages {
		if !utf8.ValidString(p) {
			return CallResult{}, at(ErrInvalidUTF8, "passage %d", i)
		}
		idx[i] = i
	}
	var call engine.Call
	for _, o := range opts {
		o(&call)
	}
	res, err := r.eng.ScoreCall(ctx, query, passages, call)
	if err != nil {
		return CallResult{}, r.mapError(err, job{query: query, passages: passages, index: idx})
	}
	if len(res.Scores) != len(passages) {
		return CallResult{}, &Error{Code: CodeInternal, Op: "score", Msg: fmt.Sprintf("engine returned %d scores for %d pairs", len(res.Scores), len(passages))}
	}
	if r.opts.sigmoid {
		for i, x := range res.Scores {
			res.Scores[i] = float32(1 / (1 + math.Exp(-float64(x))))
		}
	}
	return CallResult{Scores: res.Scores, Tokens: res.Tokens, Truncated: res.Truncated, Timings: res.Timings}, nil
}

// Collector returns the engine's Prometheus collector: the gomps_* metrics
// (durations, batch sizes and tokens, padding waste, queue size, request,
// pair and batch counters), read at scrape time from the same counters as
// Stats. Register it once per registry.
func (r *Reranker) Collector() prometheus.Collector { return r.eng.Collector() }
