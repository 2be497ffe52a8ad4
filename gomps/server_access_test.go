//go:build cgo

package gomps

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScoreCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, err := Open(ctx, tinyModelPath(t), WithNotices(nil), WithThreads(2), WithMaxLength(64))
	require.NoError(t, err)
	defer r.Close()
	query := "How many people live in Berlin?"
	passages := []string{"Berlin has 3.5 million inhabitants.", "", strings.Repeat("berlin census ", 80), "Paris is in France."}
	want, err := r.Score(ctx, query, passages)
	require.NoError(t, err)

	res, err := r.ScoreCall(ctx, query, passages)
	require.NoError(t, err)
	assert.Equal(t, want, res.Scores, "the same scores as Score")
	assert.Equal(t, 1, res.Truncated, "the long passage is cut to 64 tokens")
	// Tokens: every pair's assembled length, specials included.
	q, err := r.tok.encode(query)
	require.NoError(t, err)
	sum := 0
	for _, p := range passages {
		ids, err := r.tok.encode(p)
		require.NoError(t, err)
		sum += min(len(q)+len(ids)+3, 64)
	}
	assert.Equal(t, sum, res.Tokens)
	assert.Positive(t, res.Timings.Inference)
	assert.GreaterOrEqual(t, res.Timings.Total, res.Timings.Inference)

	_, err = r.ScoreCall(ctx, "", passages)
	assert.ErrorIs(t, err, ErrEmptyQuery)
	_, err = r.ScoreCall(ctx, query, []string{"ok", "bad \xff"})
	assert.ErrorIs(t, err, ErrInvalidUTF8)

	sig, err := Open(ctx, tinyModelPath(t), WithNotices(nil), WithThreads(2), WithSigmoid())
	require.NoError(t, err)
	defer sig.Close()
	sres, err := sig.ScoreCall(ctx, query, passages[:1])
	require.NoError(t, err)
	assert.InDelta(t, 1/(1+math.Exp(-float64(want[0]))), float64(sres.Scores[0]), 1e-6, "WithSigmoid applies")

	require.NoError(t, r.Close())
	_, err = r.ScoreCall(ctx, query, passages)
	assert.True(t, errors.Is(err, ErrClosed))
}

func TestCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, err := Open(ctx, tinyModelPath(t), WithNotices(nil), WithThreads(2))
	require.NoError(t, err)
	defer r.Close()
	_, err = r.Score(ctx, "q", []string{"a", "b", "c"})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(r.Collector()))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil && len(m.GetLabel()) == 0:
				got[mf.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[mf.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	s := r.Stats()
	assert.Equal(t, float64(s.Requests), got["gomps_requests_total"], "the collector reads Stats' counters")
	assert.Equal(t, 3.0, got["gomps_pairs_total"])
	assert.Equal(t, float64(s.Batches), got["gomps_batches_total"])
	assert.Equal(t, 1.0, got["gomps_request_duration_seconds_count"])
}
