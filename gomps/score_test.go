//go:build cgo

package gomps

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Do returns what Score does plus the token counts, the truncations, every
// label's logits and the timings; Score and Rank are Do's shorthands.
func TestDo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, err := Open(ctx, tinyModelPath(t), WithNotices(nil), WithThreads(2), WithMaxLength(64))
	require.NoError(t, err)
	defer r.Close()
	query := "How many people live in Berlin?"
	passages := []string{"Berlin has 3.5 million inhabitants.", "", strings.Repeat("berlin census ", 80), "Paris is in France."}
	want, err := r.Score(ctx, query, passages)
	require.NoError(t, err)

	res, err := r.Do(ctx, Request{Query: query, Passages: passages})
	require.NoError(t, err)
	assert.Equal(t, want, res.Scores, "the same scores as Score")
	assert.Equal(t, 1, res.Labels)
	assert.Equal(t, want, res.Logits, "one label: the logits are the raw scores")
	assert.Equal(t, 1, res.Truncated, "the long passage is cut to 64 tokens")
	assert.Equal(t, len(passages), res.Pairs)
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
	assert.Positive(t, res.Timings.Batches)

	ranked, err := r.Rank(ctx, query, passages, 2)
	require.NoError(t, err)
	assert.Equal(t, res.Ranked(2), ranked, "Rank is Do then Ranked")

	pairs := make([]Pair, len(passages))
	for i, p := range passages {
		pairs[i] = Pair{query, p}
	}
	pres, err := r.Do(ctx, Request{Pairs: pairs})
	require.NoError(t, err)
	assert.Equal(t, want, pres.Scores, "pairs of one query score as its passages")
	assert.Equal(t, res.Tokens, pres.Tokens)

	for name, bad := range map[string]Request{
		"both":          {Query: query, Pairs: pairs},
		"chunks<0":      {Query: query, Passages: passages, MaxChunks: -1},
		"chunks>limit":  {Query: query, Passages: passages, MaxChunks: MaxChunksLimit + 1},
		"passagetok<0":  {Query: query, Passages: passages, MaxPassageTokens: -1},
		"empty query":   {Passages: passages},
		"invalid utf-8": {Query: query, Passages: []string{"ok", "bad \xff"}},
	} {
		_, err := r.Do(ctx, bad)
		assert.Error(t, err, name)
		if !strings.Contains(name, "query") && !strings.Contains(name, "utf-8") {
			assert.ErrorIs(t, err, ErrInvalidArg, name)
		}
	}
	_, err = r.Do(ctx, Request{Passages: passages})
	assert.ErrorIs(t, err, ErrEmptyQuery)
	_, err = r.Do(ctx, Request{Query: query, Passages: []string{"ok", "bad \xff"}})
	assert.ErrorIs(t, err, ErrInvalidUTF8)
	none, err := r.Do(ctx, Request{})
	require.NoError(t, err, "nothing to score")
	assert.Empty(t, none.Scores)

	sig, err := Open(ctx, tinyModelPath(t), WithNotices(nil), WithThreads(2), WithSigmoid())
	require.NoError(t, err)
	defer sig.Close()
	sres, err := sig.Do(ctx, Request{Query: query, Passages: passages[:1]})
	require.NoError(t, err)
	assert.InDelta(t, 1/(1+math.Exp(-float64(want[0]))), float64(sres.Scores[0]), 1e-6, "WithSigmoid applies")
	assert.InDelta(t, float64(want[0]), float64(sres.Logits[0]), 1e-6, "the logits stay raw")

	require.NoError(t, r.Close())
	_, err = r.Do(ctx, Request{Query: query, Passages: passages})
	assert.True(t, errors.Is(err, ErrClosed))
}

func TestRanked(t *testing.T) {
	t.Parallel()
	nan := float32(math.NaN())
	res := Result{Scores: []float32{0.5, 2, nan, 2, -1, 0.5}}
	got := res.Ranked(0)
	want := []int{1, 3, 0, 5, 4, 2}
	require.Len(t, got, len(want))
	for i, w := range want {
		assert.Equal(t, w, got[i].Index, "position %d", i)
	}
	assert.Equal(t, float32(2), got[0].Score)
	assert.Equal(t, []Ranked{{1, 2}, {3, 2}, {0, 0.5}}, res.Ranked(3))
	assert.Len(t, res.Ranked(100), 6)
	assert.Empty(t, Result{}.Ranked(5))
}

func TestSigmoid(t *testing.T) {
	t.Parallel()
	for _, x := range []float32{-30, -2.5, 0, 0.1, 4, 30} {
		assert.InDelta(t, 1/(1+math.Exp(-float64(x))), float64(Sigmoid(x)), 1e-7, "x=%v", x)
	}
	assert.Equal(t, float32(0.5), Sigmoid(0))
}

// words returns n words of one token each, cycling through vocab, joined
// by spaces; the test checks each is one token of r's tokenizer.
func words(t *testing.T, r *Reranker, vocab []string, from, n int) string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = vocab[(from+i)%len(vocab)]
	}
	text := strings.Join(out, " ")
	ids, err := r.tok.encode(text)
	require.NoError(t, err)
	require.Len(t, ids, n, "every word of %q is one token", text)
	return text
}

var oneTokenWords = []string{"berlin", "has", "the", "of", "in", "is", "a", "and", "paris", "to"}

// MaxPassageTokens scores each passage's first tokens only, and is not a
// truncation.
func TestDoMaxPassageTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := openTiny(t, WithNotices(nil), WithThreads(2), WithMaxLength(64))
	long := words(t, r, oneTokenWords, 0, 40)
	head := words(t, r, oneTokenWords, 0, 5)
	want, err := r.Score(ctx, "berlin", []string{head, long, "paris"})
	require.NoError(t, err)
	require.NotEqual(t, want[0], want[1], "the cut changes the score")
	res, err := r.Do(ctx, Request{Query: "berlin", Passages: []string{long, "paris"}, MaxPassageTokens: 5})
	require.NoError(t, err)
	assert.InDelta(t, want[0], res.Scores[0], 1e-5, "the long passage scores as its first 5 tokens")
	assert.InDelta(t, want[2], res.Scores[1], 1e-5, "a shorter passage is whole")
	assert.Zero(t, res.Truncated, "a cut asked for is no truncation")
	assert.Equal(t, (3+1+5)+(3+1+1), res.Tokens)
}

// MaxChunks scores a long passage in windows of what one pair keeps of it
// and keeps the best window; past the last window it is truncated.
func TestDoMaxChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := openTiny(t, WithNotices(nil), WithThreads(2), WithMaxLength(16))
	// A one-token query leaves 16 - 3 - 1 = 12 passage tokens per pair.
	long := words(t, r, oneTokenWords, 0, 30)
	wins := []string{words(t, r, oneTokenWords, 0, 12), words(t, r, oneTokenWords, 12, 12), words(t, r, oneTokenWords, 24, 6)}
	want, err := r.Score(ctx, "paris", append(wins, "berlin", long))
	require.NoError(t, err)
	best := func(ws []float32) float32 { return slices.Max(ws) }

	res, err := r.Do(ctx, Request{Query: "paris", Passages: []string{long, "berlin"}, MaxChunks: 3})
	require.NoError(t, err)
	assert.InDelta(t, best(want[:3]), res.Scores[0], 1e-5, "the best of the three windows")
	assert.InDelta(t, want[3], res.Scores[1], 1e-5, "a short passage is one pair")
	assert.Equal(t, 4, res.Pairs, "three windows and one pair")
	assert.Zero(t, res.Truncated, "three windows cover the passage")
	assert.Equal(t, 3*4+(12+12+6)+(3+1+1), res.Tokens)

	res, err = r.Do(ctx, Request{Query: "paris", Passages: []string{long}, MaxChunks: 2})
	require.NoError(t, err)
	assert.InDelta(t, best(want[:2]), res.Scores[0], 1e-5, "the best of the first two windows")
	assert.Equal(t, 1, res.Truncated, "the last 6 tokens are cut")

	res, err = r.Do(ctx, Request{Query: "paris", Passages: []string{long}, MaxChunks: 1})
	require.NoError(t, err)
	assert.InDelta(t, want[4], res.Scores[0], 1e-5, "one chunk: the pair is truncated")

	// From the end with TruncateLeft: the last 12 tokens, then the 12 before.
	left := []string{words(t, r, oneTokenWords, 18, 12), words(t, r, oneTokenWords, 6, 12)}
	lwant, err := r.Score(ctx, "paris", left)
	require.NoError(t, err)
	res, err = r.Do(ctx, Request{Query: "paris", Passages: []string{long}, MaxChunks: 2, TruncateLeft: true})
	require.NoError(t, err)
	assert.InDelta(t, best(lwant), res.Scores[0], 1e-5)

	// Windows are no truncation, so they pass WithTruncation(false).
	strict := openTiny(t, WithNotices(nil), WithThreads(2), WithMaxLength(16), WithTruncation(false))
	_, err = strict.Do(ctx, Request{Query: "paris", Passages: []string{long}})
	var tl *TooLongError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 34, tl.Tokens)
	_, err = strict.Do(ctx, Request{Query: "paris", Passages: []string{long}, MaxChunks: 3})
	assert.NoError(t, err)
}

// Indices in errors are the request's, across the engine calls it is split
// into.
func TestDoErrorIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := openTiny(t, WithNotices(nil), WithThreads(2), WithMaxLength(16), WithTruncation(false))
	ps := make([]string, 2100)
	for i := range ps {
		ps[i] = "berlin"
	}
	ps[2050] = words(t, r, oneTokenWords, 0, 30)
	_, err := r.Do(ctx, Request{Query: "paris", Passages: ps})
	var tl *TooLongError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 2050, tl.Index)
	assert.Equal(t, "pair 2050: 34 tokens, longer than the maximum length 16 (truncation is off)", err.Error())
	pairs := []Pair{{"a", "b"}, {"paris", "x"}, {"a", ps[2050]}}
	_, err = r.Do(ctx, Request{Pairs: pairs})
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, 2, tl.Index, "the pair's index, across query groups")
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
