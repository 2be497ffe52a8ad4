package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startEngine(t *testing.T, cfg Config, fb *fakeBackend) *Engine {
	t.Helper()
	enc := &fakeEncoder{inUse: fb.inUse, peak: fb.peak}
	e, err := New(cfg, enc, fb.factory)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// words returns n space-separated ids, the first one being tag.
func words(tag, n int, rng *rand.Rand) string {
	var sb strings.Builder
	sb.WriteString(strconv.Itoa(tag))
	for i := 1; i < n; i++ {
		sb.WriteByte(' ')
		sb.WriteString(strconv.Itoa(1000 + rng.IntN(29000)))
	}
	return sb.String()
}

// want scores (q, p) unbatched: the pair alone in a 1-row batch through a
// separate fakeInstance.
func want(t *testing.T, cfg Config, q, p string) float32 {
	t.Helper()
	qi, err := fakeWords(q)
	require.NoError(t, err)
	pi, err := fakeWords(p)
	require.NoError(t, err)
	ids, types, _ := AssemblePair(qi, pi, cfg.MaxSeq, 101, 102)
	inst := &fakeInstance{fb: refBackend}
	out := make([]float32, 1)
	require.NoError(t, inst.Forward(&Batch{Rows: 1, Seq: len(ids), IDs: ids, Types: types, Lengths: []int32{int32(len(ids))}}, out))
	return out[0]
}

// refBackend backs the unbatched reference scoring of want.
var refBackend = newFakeBackend()

type call struct {
	query    string
	passages []string
}

func makeCalls(seed uint64, n, maxPassages, maxWords int) []call {
	rng := rand.New(rand.NewPCG(seed, 7))
	calls := make([]call, n)
	for c := range calls {
		np := 1 + rng.IntN(maxPassages)
		calls[c].query = words(500+c%400, 1+rng.IntN(20), rng)
		calls[c].passages = make([]string, np)
		for i := range np {
			calls[c].passages[i] = words(1_000_000+c*1000+i, 1+rng.IntN(maxWords), rng)
		}
	}
	return calls
}

// prefixEncoder returns only the first atLeast ids of a passage when asked
// to, as the real tokenizer may.
type prefixEncoder struct {
	fakeEncoder
	asked atomic.Int64 // calls with atLeast > 0
}

func (p *prefixEncoder) EncodePassages(ps []string, atLeast int) ([][]int32, error) {
	out, err := p.fakeEncoder.EncodePassages(ps, 0)
	if atLeast > 0 {
		p.asked.Add(1)
		for i := range out {
			out[i] = out[i][:min(len(out[i]), atLeast)]
		}
	}
	return out, err
}

// An encoder that stops at the tokens the engine asks for changes no score
// or count, with short and over-long queries and passages.
func TestPassagePrefixChangesNothing(t *testing.T) {
	cfg := Config{MaxSeq: 24, MaxBatch: 8}
	rng := rand.New(rand.NewPCG(3, 9))
	enc := &prefixEncoder{}
	e, err := New(cfg, enc, newFakeBackend().factory)
	require.NoError(t, err)
	defer e.Close()
	for k := range 200 {
		q := words(500+k, 1+rng.IntN(40), rng)
		ps := make([]string, 1+rng.IntN(6))
		for i := range ps {
			ps[i] = words(7000+i, 1+rng.IntN(60), rng)
		}
		res, err := e.Score(context.Background(), q, ps, Call{})
		require.NoError(t, err)
		qi, _ := fakeWords(q)
		tokens, truncated := 0, 0
		for i, p := range ps {
			assert.Equal(t, want(t, cfg, q, p), res.Scores[i], "call %d passage %d", k, i)
			pi, _ := fakeWords(p)
			kq, kp, cut := PairLengths(len(qi), len(pi), cfg.MaxSeq)
			tokens += kq + kp + pairSpecials
			if cut {
				truncated++
			}
		}
		assert.Equal(t, tokens, res.Tokens, "call %d tokens", k)
		assert.Equal(t, truncated, res.Truncated, "call %d truncated", k)
	}
	assert.Positive(t, enc.asked.Load(), "the engine asked for prefixes")
}

// TruncateLeft keeps the last tokens of what is cut: the pair scores as
// the suffixes PairLengths allows, assembled.
func TestTruncateLeft(t *testing.T) {
	cfg := Config{MaxSeq: 16, MaxBatch: 4}
	e := startEngine(t, cfg, newFakeBackend())
	rng := rand.New(rand.NewPCG(5, 5))
	for k := range 50 {
		q := words(600+k, 1+rng.IntN(20), rng)
		ps := []string{words(9000, 1+rng.IntN(30), rng), words(9001, 2, rng)}
		res, err := e.Score(context.Background(), q, ps, Call{TruncateLeft: true})
		require.NoError(t, err)
		qi, _ := fakeWords(q)
		for i, p := range ps {
			pi, _ := fakeWords(p)
			kq, kp, _ := PairLengths(len(qi), len(pi), cfg.MaxSeq)
			ids, types, _ := AssemblePair(qi[len(qi)-kq:], pi[len(pi)-kp:], cfg.MaxSeq, 101, 102)
			out := make([]float32, 1)
			require.NoError(t, (&fakeInstance{fb: refBackend}).Forward(&Batch{Rows: 1, Seq: len(ids), IDs: ids, Types: types, Lengths: []int32{int32(len(ids))}}, out))
			assert.Equal(t, out[0], res.Scores[i], "call %d passage %d", k, i)
		}
	}
}

// Every score returns to its caller, in input order, bit-identical to the
// pair scored alone (the fake is a per-row function of the row's real
// tokens, so batching and padding cannot change a bit).
func TestScoreConcurrent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode      Mode
		routing   Routing
		instances int
	}{
		{ModeAdaptive, RouteLeastLoaded, 1},
		{ModeAdaptive, RouteLeastLoaded, 2},
		{ModeAdaptive, RouteRoundRobin, 2},
		{ModeFixed, RouteRoundRobin, 2},
		{ModeFixed, RouteLeastLoaded, 1},
	} {
		name := fmt.Sprintf("mode=%v/routing=%v/instances=%d", tc.mode, tc.routing, tc.instances)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fb := newFakeBackend()
			fb.cost = func(b *Batch) time.Duration { return time.Duration(b.Rows*b.Seq) * 20 * time.Nanosecond }
			cfg := Config{Mode: tc.mode, Routing: tc.routing, Instances: tc.instances, Threads: 2,
				MaxSeq: 128, TokenBudget: 2048, Timeout: 2 * time.Millisecond}
			e := startEngine(t, cfg, fb)
			const callers, rounds = 64, 3
			calls := makeCalls(uint64(tc.instances)*31+uint64(tc.mode)*7+uint64(tc.routing), callers*rounds, 48, 200)
			var wg sync.WaitGroup
			errs := make([]error, len(calls))
			results := make([]Result, len(calls))
			for c := range callers {
				wg.Go(func() {
					for k := range rounds {
						i := c*rounds + k
						results[i], errs[i] = e.Score(context.Background(), calls[i].query, calls[i].passages, Call{})
					}
				})
			}
			wg.Wait()
			pairs := 0
			for i, c := range calls {
				require.NoError(t, errs[i], "call %d", i)
				require.Len(t, results[i].Scores, len(c.passages), "call %d", i)
				for j, p := range c.passages {
					w := want(t, e.Config(), c.query, p)
					if math.Float32bits(w) != math.Float32bits(results[i].Scores[j]) {
						t.Fatalf("call %d passage %d: got %v want %v", i, j, results[i].Scores[j], w)
					}
				}
				assert.GreaterOrEqual(t, results[i].Timings.Batches, 1)
				assert.GreaterOrEqual(t, results[i].Timings.Total, results[i].Timings.Queue+results[i].Timings.Inference)
				pairs += len(c.passages)
			}
			s := e.Stats()
			assert.Equal(t, uint64(len(calls)), s.Succeeded, "succeeded")
			assert.Equal(t, uint64(pairs), s.Pairs, "pairs admitted")
			assert.Equal(t, uint64(pairs), s.PairsScored, "pairs scored")
			assert.Equal(t, uint64(pairs), s.Rows, "rows forwarded")
			assert.Zero(t, s.QueueSize, "queue drained")
			assert.Positive(t, s.MixedBatches, "batches mixed several requests")
			assert.Greater(t, s.Rows, s.Batches, "batches hold several pairs")
			fb.mu.Lock()
			assert.Zero(t, fb.padBad, "padding rows were id 0 / type 0")
			assert.Zero(t, fb.typesBad, "token types 0...0 1...1")
			fb.mu.Unlock()
			t.Logf("%s: %d batches, %d rows, %d mixed, padding waste %.3f", name, s.Batches, s.Rows, s.MixedBatches, s.PaddingWasteRatio())
		})
	}
}

func TestThreadBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ threads, instances, per int }{
		{2, 1, 2}, {2, 2, 1}, {2, 3, 1}, {4, 2, 2},
	} {
		t.Run(fmt.Sprintf("threads=%d/instances=%d", tc.threads, tc.instances), func(t *testing.T) {
			t.Parallel()
			fb := newFakeBackend()
			fb.cost = func(b *Batch) time.Duration { return 200 * time.Microsecond }
			e, err := New(Config{Threads: tc.threads, Instances: tc.instances, MaxSeq: 64},
				&fakeEncoder{inUse: fb.inUse, peak: fb.peak, hold: func() { time.Sleep(50 * time.Microsecond) }}, fb.factory)
			require.NoError(t, err)
			calls := makeCalls(9, 64, 16, 40)
			var wg sync.WaitGroup
			for _, c := range calls {
				wg.Go(func() {
					_, err := e.Score(context.Background(), c.query, c.passages, Call{})
					assert.NoError(t, err)
				})
			}
			wg.Wait()
			require.NoError(t, e.Close())
			fb.mu.Lock()
			defer fb.mu.Unlock()
			for slot := range tc.instances {
				assert.Equal(t, tc.per, fb.threads[slot], "threads of slot %d", slot)
			}
			assert.LessOrEqual(t, fb.peak.Load(), int64(tc.threads), "threads busy at once never exceed the budget")
			assert.Equal(t, tc.instances, fb.closes, "every instance closed once")
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.failID = 777
	e := startEngine(t, Config{MaxSeq: 16, Threads: 2}, fb)
	ctx := context.Background()

	_, err := e.Score(ctx, "1 2", []string{"3 4", "5 !fail"}, Call{})
	assert.ErrorIs(t, err, ErrTokenize)
	assert.ErrorIs(t, err, errFakeEncode)
	_, err = e.Score(ctx, "1 2 !panic", []string{"3 4"}, Call{})
	assert.ErrorIs(t, err, ErrTokenize)
	_, err = e.Score(ctx, "1 2", []string{"3 777"}, Call{})
	assert.ErrorIs(t, err, ErrBackend)
	assert.ErrorContains(t, err, "fake backend: refused batch")

	res, err := e.Score(ctx, "1 2", []string{strings.Repeat("9 ", 20), "3"}, Call{})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Truncated)
	assert.Equal(t, 16+6, res.Tokens)

	res, err = e.Score(ctx, "1", nil, Call{})
	require.NoError(t, err)
	assert.Empty(t, res.Scores)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.Score(cancelled, "1", []string{"2"}, Call{})
	assert.ErrorIs(t, err, context.Canceled)

	s := e.Stats()
	assert.Equal(t, uint64(2), s.Failures[ReasonTokenization])
	assert.Equal(t, uint64(1), s.Failures[ReasonBackend])
	assert.Equal(t, uint64(1), s.Failures[ReasonCancelled])
	assert.Equal(t, uint64(1), s.FailedBatches)
	assert.Equal(t, 1, fb.builds, "an error (not a panic) keeps the instance")

	strict := startEngine(t, Config{MaxSeq: 16, TruncationError: true}, newFakeBackend())
	_, err = strict.Score(ctx, "1 2", []string{"3", strings.Repeat("9 ", 20)}, Call{})
	assert.ErrorIs(t, err, ErrTooLong)
	var tl *TooLongError
	require.ErrorAs(t, err, &tl)
	assert.Equal(t, TooLongError{Index: 1, Tokens: 25, MaxLength: 16}, *tl)
	assert.Equal(t, uint64(1), strict.Stats().Failures[ReasonTooLong])
}

func TestNewFails(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.buildErrAt = 2
	_, err := New(Config{Instances: 2}, &fakeEncoder{}, fb.factory)
	require.Error(t, err)
	assert.ErrorContains(t, err, "build 2 refused")
	assert.Equal(t, 1, fb.closes, "the instance that was built is closed again")
	_, err = New(Config{MaxSeq: 2}, &fakeEncoder{}, fb.factory)
	assert.Error(t, err)
	_, err = ParseMode("bogus")
	assert.Error(t, err)
	_, err = ParseRouting("bogus")
	assert.Error(t, err)
	m, err := ParseMode("fixed")
	require.NoError(t, err)
	assert.Equal(t, ModeFixed, m)
	r, err := ParseRouting("round-robin")
	require.NoError(t, err)
	assert.Equal(t, RouteRoundRobin, r)
}

// Close and Shutdown, twice and concurrently, while callers are busy.
func TestCloseTwiceConcurrent(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.cost = func(b *Batch) time.Duration { return 100 * time.Microsecond }
	e := startEngine(t, Config{Instances: 2, Threads: 2}, fb)
	calls := makeCalls(3, 8, 32, 50)
	var callers sync.WaitGroup
	var closedSeen sync.Map
	for i, c := range calls {
		callers.Go(func() {
			for {
				_, err := e.Score(context.Background(), c.query, c.passages, Call{})
				if err != nil {
					closedSeen.Store(i, err)
					return
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	var closers sync.WaitGroup
	errs := make([]error, 4)
	closers.Go(func() { errs[0] = e.Close() })
	closers.Go(func() { errs[1] = e.Close() })
	closers.Go(func() { errs[2] = e.Shutdown(context.Background()) })
	closers.Go(func() { errs[3] = e.Shutdown(context.Background()) })
	closers.Wait()
	callers.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "closer %d", i)
	}
	assert.NoError(t, e.Close(), "a later Close")
	closedSeen.Range(func(k, v any) bool {
		assert.ErrorIs(t, v.(error), ErrClosed, "caller %v", k)
		return true
	})
	_, err := e.Score(context.Background(), "1", []string{"2"}, Call{})
	assert.ErrorIs(t, err, ErrClosed)
	fb.mu.Lock()
	assert.Equal(t, 2, fb.closes, "each instance closed exactly once")
	fb.mu.Unlock()
}

func TestHistQuantile(t *testing.T) {
	t.Parallel()
	h := newHist(geometric(10e-6, math.Pow(2, 0.25), 96), 4)
	for i := 1; i <= 1000; i++ {
		h.observe(float64(i) / 1000) // 1 ms .. 1 s, uniform
	}
	s := h.snapshot()
	assert.Equal(t, uint64(1000), s.Count)
	assert.InDelta(t, 500.5, s.Sum, 1e-9)
	assert.Equal(t, 1.0, s.Max)
	assert.InEpsilon(t, 0.5, s.P50, 0.1, "p50 within a bucket")
	assert.InEpsilon(t, 0.99, s.P99, 0.1, "p99 within a bucket")
	assert.LessOrEqual(t, s.P99, s.Max)
	assert.Zero(t, newHist([]float64{1}, 1).snapshot().P50)
}

// The adaptive batcher's defaults: window 256, per-batch overhead an eighth
// of the token budget (after the budget's own defaulting), a 32nd for a
// padded backend; set values stay.
func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		in               Config
		window, overhead int
	}{
		{"zero", Config{}, 256, 1024},
		{"budget=4096", Config{TokenBudget: 4096}, 256, 512},
		{"budget=100/maxseq=512", Config{TokenBudget: 100}, 256, 64},
		{"set", Config{Window: 64, BatchOverhead: 7}, 64, 7},
		{"padded", Config{PaddedBackend: true}, 256, 256},
		{"padded/budget=4096", Config{PaddedBackend: true, TokenBudget: 4096}, 256, 128},
		{"padded/set", Config{PaddedBackend: true, BatchOverhead: 7}, 256, 7},
	} {
		c, err := tc.in.withDefaults()
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.window, c.Window, "%s: window", tc.name)
		assert.Equal(t, tc.overhead, c.BatchOverhead, "%s: batch overhead", tc.name)
	}
}

// MaxChunks scores a long passage in windows and keeps its best window's
// logits, every label of them; MaxPassageTokens cuts passages first. The
// queue places reserved for windows are given back.
func TestCallWindows(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.labels = 2
	e := startEngine(t, Config{MaxSeq: 8, Labels: 2}, fb)
	ctx := context.Background()
	// A one-token query leaves 8 - 3 - 1 = 4 passage tokens per pair.
	long := "10 11 12 13 14 15 16 17 18 19"
	wins := []string{"10 11 12 13", "14 15 16 17", "18 19"}
	each, err := e.Score(ctx, "1", append(wins, "5 6", "10 11 12"), Call{})
	require.NoError(t, err)
	require.Len(t, each.Logits, 2*5)
	for i := range 5 {
		assert.Equal(t, each.Scores[i]+1, each.Logits[2*i+1], "label 1 of pair %d", i)
	}
	best := 0
	for i := range 3 {
		if each.Scores[i] > each.Scores[best] {
			best = i
		}
	}
	before := e.Stats().Pairs
	res, err := e.Score(ctx, "1", []string{"5 6", long}, Call{MaxChunks: 3})
	require.NoError(t, err)
	assert.Equal(t, []float32{each.Scores[3], each.Scores[best]}, res.Scores)
	assert.Equal(t, []float32{each.Logits[6], each.Logits[7], each.Logits[2*best], each.Logits[2*best+1]}, res.Logits)
	assert.Equal(t, 4, res.Rows)
	assert.Zero(t, res.Truncated)
	assert.Equal(t, (3+1+2)+3*(3+1)+10, res.Tokens)
	assert.Equal(t, uint64(4), e.Stats().Pairs-before, "every window is a pair")

	res, err = e.Score(ctx, "1", []string{long}, Call{MaxChunks: 2})
	require.NoError(t, err)
	assert.Equal(t, max(each.Scores[0], each.Scores[1]), res.Scores[0])
	assert.Equal(t, 1, res.Truncated, "two windows leave 2 tokens out")

	res, err = e.Score(ctx, "1", []string{long}, Call{MaxPassageTokens: 3})
	require.NoError(t, err)
	assert.Equal(t, each.Scores[4], res.Scores[0], "the first 3 tokens")
	assert.Zero(t, res.Truncated, "a cut asked for")
	assert.Zero(t, e.Stats().QueueSize, "no place left reserved")
}
