package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The simulation's cost models are TEST DOUBLES of a forward pass's time on
// ONE thread; an instance running T threads takes 1/T of it (ideal scaling:
// raw gets the same, so ratios are unaffected). Units come from the CPU
// backend: a token costs about 21 MFLOP in the linear layers
// (cpu-ceilings.md: ~220 GFLOP/s per core for oneDNN f32, so ~100 us), and
// attention adds len/860 of that per token of a len-token row (quadratic in
// the row's length: 13% of the forward at len 128 in kernels/cpu/README.md's
// profile). Only the ratios between the terms matter here.
const (
	simTokenCost  = 100 * time.Microsecond // linear layers, per token, 1 thread
	simAttnLen    = 860                    // attention: len/simAttnLen token costs per token
	simBatchCost  = 2 * time.Millisecond   // per forward: weights streamed, parallel regions, the call
	simRowCost    = 20 * time.Microsecond  // per row: [CLS] pooling and head, row set-up
	simTokenizeNs = 1300                   // tokenizer, ns per passage token: 1.3% of a token's forward (measured)
)

// simRowTokens is one row of n real tokens in token costs: linear layers
// plus its attention.
func simRowTokens(n int) float64 { return float64(n) * (1 + float64(n)/simAttnLen) }

// simModel is a cost model of one backend kind.
type simModel struct {
	name string
	cost func(b *Batch) time.Duration // one forward on one thread
}

var (
	// simCPU: the CPU backend packs only each row's real tokens (kernels/cpu
	// README, "How a forward runs"): linear layers cost per real token,
	// attention per row by its own length squared; padding costs nothing.
	simCPU = simModel{"cpu", func(b *Batch) time.Duration {
		tokens := 0.0
		for _, n := range b.Lengths[:b.Rows] {
			tokens += simRowTokens(int(n))
		}
		return simBatchCost + time.Duration(b.Rows)*simRowCost + time.Duration(tokens*float64(simTokenCost))
	}}
	// simPadded: a Metal-like backend (MPSGraph executables of static shape)
	// computes every row at the batch's padded length: padding costs as much
	// as real tokens, in the linear layers and in attention. (The Metal
	// backend pads further, to its (batch, seq) buckets: simBuckets.)
	simPadded = simModel{"padded", func(b *Batch) time.Duration {
		tokens := float64(b.Rows) * simRowTokens(b.Seq)
		return simBatchCost + time.Duration(b.Rows)*simRowCost + time.Duration(tokens*float64(simTokenCost))
	}}
	// simBuckets: the padded model run the way the Metal backend runs a
	// batch (metal/backend.m, pick_bucket): its default buckets, seq 64,
	// 128, 256 x batch 1, 8, 32 and seq 512 x batch 1, 4, 16; rows are cut
	// into chunks, each run on the bucket with the fewest padded tokens for
	// the rows left, every chunk paying the fixed cost and its bucket's full
	// shape. In CPU units like the others: a GPU's fixed cost per run is
	// larger against its cost per token, which this does not know. Logged
	// only (GOMPS_SIM_SWEEP=1).
	simBuckets = simModel{"buckets", func(b *Batch) time.Duration {
		type bucket struct{ rows, seq int }
		buckets := []bucket{{1, 64}, {8, 64}, {32, 64}, {1, 128}, {8, 128}, {32, 128},
			{1, 256}, {8, 256}, {32, 256}, {1, 512}, {4, 512}, {16, 512}}
		var d time.Duration
		for left := b.Rows; left > 0; {
			best, bestCost, bestChunks := bucket{}, 0, 0
			for _, k := range buckets {
				if k.seq < b.Seq {
					continue
				}
				chunks := (left + k.rows - 1) / k.rows
				if c := chunks * k.rows * k.seq; best.rows == 0 || c < bestCost || (c == bestCost && chunks < bestChunks) {
					best, bestCost, bestChunks = k, c, chunks
				}
			}
			d += simBatchCost + time.Duration(best.rows)*simRowCost +
				time.Duration(float64(best.rows)*simRowTokens(best.seq)*float64(simTokenCost))
			left -= min(left, best.rows)
		}
		return d
	}}
)

// simInstance is a TEST DOUBLE backend for the simulation: it sleeps its
// model's cost divided by its thread count (fake time under synctest) and
// scores rows with fakeScore.
type simInstance struct {
	m       simModel
	threads int
}

func (s *simInstance) SetThreads(n int) error { s.threads = n; return nil }
func (s *simInstance) Close() error           { return nil }
func (s *simInstance) Forward(b *Batch, logits []float32) error {
	time.Sleep(s.m.cost(b) / time.Duration(max(s.threads, 1)))
	for r := range b.Rows {
		n := int(b.Lengths[r])
		logits[r] = fakeScore(b.IDs[r*b.Seq:r*b.Seq+n], b.Types[r*b.Seq:r*b.Seq+n])
	}
	return nil
}

// simEncoder is a TEST DOUBLE tokenizer: fakeEncoder's ids, taking
// simTokenizeNs of fake time per token. The engine holds one budget thread
// around each call, so with one instance on both threads tokenization
// waits for a forward to end, as on the real machine.
type simEncoder struct{ fakeEncoder }

func (s *simEncoder) EncodeQuery(q string) ([]int32, error) {
	ids, err := s.fakeEncoder.EncodeQuery(q)
	time.Sleep(time.Duration(len(ids)) * simTokenizeNs)
	return ids, err
}

func (s *simEncoder) EncodePassages(ps []string, _ int) ([][]int32, error) {
	out, err := s.fakeEncoder.EncodePassages(ps, 0)
	n := 0
	for _, p := range out {
		n += len(p)
	}
	time.Sleep(time.Duration(n) * simTokenizeNs)
	return out, err
}

// simWorkload is the standard workload's shape: calls of 64 pairs with
// MS MARCO-like lengths (short queries, passages around 80 tokens with a
// long tail), each call's passages a little longer or shorter than another's
// (TREC DL queries differ in their hits' lengths).
func simWorkload(n int, seed uint64) []call {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]call, n)
	for c := range out {
		out[c].query = words(500+c%300, 4+rng.IntN(10), rng)
		out[c].passages = make([]string, 64)
		shift := int(rng.NormFloat64() * 8)
		for i := range out[c].passages {
			// TREC DL BM25 pairs tokenized for this model: mean 83 tokens,
			// p10 59, p50 78, p90 113, p99 173, max 465 (pair, specials in).
			n := max(10, 70+shift+int(rng.NormFloat64()*18))
			if rng.IntN(50) == 0 {
				n += int(rng.ExpFloat64() * 100)
			}
			n = min(n, 450)
			out[c].passages[i] = words(1_000_000+c*100+i, n, rng)
		}
	}
	return out
}

// simCase is one configuration of the closed-loop simulation.
type simCase struct {
	model     simModel
	mode      Mode
	instances int
	window    int // 0: the default
	overhead  int // Config.BatchOverhead; 0: the default
}

// simResult is what one simulated run measured.
type simResult struct {
	ofRaw              float64 // engine pairs/s / raw pairs/s
	pairsPerSec, raw   float64 // in fake time
	p50, p95, p99, max time.Duration
	steady             int // latencies measured
	waste, rowsPerCall float64
	rowsPerBatch       float64
	rawWaste           float64
}

func (r simResult) String() string {
	return fmt.Sprintf("%.1f%% of raw (%.1f vs %.1f pairs/s); latency p50 %.2fs p95 %.2fs p99 %.2fs max %.2fs (p99/p50 %.3f, max/p99 %.3f, %d requests); waste %.3f (raw %.3f); %.1f rows/batch",
		100*r.ofRaw, r.pairsPerSec, r.raw, r.p50.Seconds(), r.p95.Seconds(), r.p99.Seconds(), r.max.Seconds(),
		float64(r.p99)/float64(r.p50), float64(r.max)/float64(r.p99), r.steady, r.waste, r.rawWaste, r.rowsPerBatch)
}

// Closed-loop simulation parameters: the standard workload (32 callers x 64
// pairs), each caller sending simRounds calls back to back; latencies of the
// first simWarmup and the last simCooldown rounds are left out (the first
// rounds start all calls at the same instant, the last ones run with fewer
// calls in flight), leaving 32 x 20 = 640 steady-state requests.
const (
	simCallers  = 32
	simRounds   = 24
	simWarmup   = 3
	simCooldown = 1
)

// runSim runs the closed-loop workload in fake time through an engine of
// tc's configuration (2 threads, the default thread split) and the raw
// baseline under the same cost model: the same pairs, assembled, sorted by
// length over the whole workload, cut by the default token budget and max
// batch (PlanBatches), forwarded back to back, each batch to the instance
// that frees first.
func runSim(t *testing.T, tc simCase, calls []call) simResult {
	cfg := Config{Mode: tc.mode, Instances: tc.instances, Threads: 2, Window: tc.window, BatchOverhead: tc.overhead}
	var lat []time.Duration
	var elapsed time.Duration
	var s Stats
	synctest.Test(t, func(t *testing.T) {
		e, err := New(cfg, &simEncoder{}, func(int) (Instance, error) { return &simInstance{m: tc.model}, nil })
		require.NoError(t, err)
		defer e.Close()
		var mu sync.Mutex
		var wg sync.WaitGroup
		t0 := time.Now()
		for c := range simCallers {
			wg.Go(func() {
				for r := range simRounds {
					k := calls[c*simRounds+r]
					start := time.Now()
					_, err := e.Score(context.Background(), k.query, k.passages, Call{})
					assert.NoError(t, err)
					if r >= simWarmup && r < simRounds-simCooldown {
						mu.Lock()
						lat = append(lat, time.Since(start))
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		elapsed = time.Since(t0)
		s = e.Stats()
	})

	rcfg, err := cfg.withDefaults()
	require.NoError(t, err)
	var ids, types [][]int32
	for _, c := range calls {
		q, _ := fakeWords(c.query)
		for _, p := range c.passages {
			pi, _ := fakeWords(p)
			i, ty, _ := AssemblePair(q, pi, rcfg.MaxSeq, rcfg.ClsID, rcfg.SepID)
			ids, types = append(ids, i), append(types, ty)
		}
	}
	lengths := make([]int, len(ids))
	for i := range ids {
		lengths[i] = len(ids[i])
	}
	free := make([]time.Duration, rcfg.Instances) // when each instance frees
	var b Batch
	rawReal, rawPad := 0, 0
	for _, rows := range PlanBatches(lengths, 64, 8192) {
		b.Fill(ids, types, rows)
		k := slices.Index(free, slices.Min(free))
		free[k] += tc.model.cost(&b) / time.Duration(rcfg.InstanceThreads)
		rawPad += b.Rows * b.Seq
		for _, l := range b.Lengths[:b.Rows] {
			rawReal += int(l)
		}
	}
	require.NotEmpty(t, lat)
	slices.Sort(lat)
	q := func(p float64) time.Duration { // nearest rank
		return lat[min(max(int(p*float64(len(lat))+0.999999999)-1, 0), len(lat)-1)]
	}
	res := simResult{
		pairsPerSec:  float64(len(ids)) / elapsed.Seconds(),
		raw:          float64(len(ids)) / slices.Max(free).Seconds(),
		p50:          q(0.50),
		p95:          q(0.95),
		p99:          q(0.99),
		max:          lat[len(lat)-1],
		steady:       len(lat),
		waste:        s.PaddingWasteRatio(),
		rowsPerBatch: float64(s.Rows) / float64(max(s.Batches, 1)),
		rawWaste:     1 - float64(rawReal)/float64(rawPad),
	}
	res.ofRaw = res.pairsPerSec / res.raw
	return res
}

// The closed-loop workload (32 callers x 64 pairs) in fake time against the
// cost models, with tokenization taking time and a budget thread, for 1 and
// 2 instances. Asserted (the engine's targets: >= 90% of raw throughput, the
// same pairs sorted by length over the whole workload, cut by the same
// budget and forwarded back to back; p99 <= 1.3 x p50 and max <= 2 x p99
// over 640 steady-state requests):
//
//   - the CPU backend's cost model (padding is free) under the default
//     configuration (window 256);
//   - the padded cost model (Metal-like: padding costs as much as real
//     tokens) at the default window with BatchOverhead = TokenBudget/32:
//     with the default overhead (TokenBudget/8) it reaches 86.8% (1
//     instance) and 87.2% (2) of raw, at 11% padding waste.
//
// GOMPS_SIM_SWEEP=1 adds other windows and overheads, the fixed mode and
// the buckets model, logged for comparison, not asserted. It checks the
// scheduling policy; the real backend's figures come from the library's
// benchmark.
//
// Measured (2026-11-27; GOMPS_SIM_SWEEP=1 go test -v -run
// TestClosedLoopSimulation; 1 / 2 instances; % of raw, p99/p50, max/p99,
// padding waste; overhead in tokens, 1024 = the default):
//
//	cpu     w128  o1024  98.5 / 98.9%  1.044 / 1.042  1.002 / 1.009  0.156
//	cpu     w256  o1024  98.7 / 99.0%  1.044 / 1.046  1.005 / 1.000  0.112  default, asserted
//	cpu     w256  o256   98.4 / 98.8%  1.043 / 1.046  1.019 / 1.018  0.066
//	cpu     w512  o1024  98.8 / 99.0%  1.051 / 1.047  1.050 / 1.059  0.072
//	cpu     w1024 o1024  98.8 / 99.1%  1.111 / 1.104  1.080 / 1.073  0.044  the old default
//	cpu     fixed        97.8 / 98.7%  1.040 / 1.144  1.008 / 1.022  0.466
//	padded  w256  o1024  86.8 / 87.2%  1.046 / 1.040  1.009 / 1.006  0.112
//	padded  w256  o256   91.6 / 91.9%  1.042 / 1.045  1.018 / 1.019  0.066  asserted
//	padded  w512  o1024  91.1 / 91.4%  1.050 / 1.052  1.042 / 1.057  0.072
//	padded  w512  o256   94.0 / 94.2%  1.064 / 1.055  1.024 / 1.045  0.046
//	padded  w1024 o1024  94.0 / 94.3%  1.116 / 1.105  1.080 / 1.075  0.044
//	padded  fixed        48.0 / 48.2%  1.210 / 1.208  1.024 / 1.042  0.466
//	buckets w256  o1024  85.6 / 85.8%  1.109 / 1.094  1.027 / 1.020
//	buckets w256  o256   90.7 / 90.8%  1.040 / 1.041  1.012 / 1.013
//	buckets w512  o1024  89.1 / 89.9%  1.068 / 1.108  1.056 / 1.064
//	buckets w512  o256   93.3 / 93.3%  1.071 / 1.057  1.015 / 1.009
//	buckets w1024 o1024  91.9 / 92.9%  1.124 / 1.117  1.081 / 1.028
//
// Tried and not kept: topping a window's batches up with shorter pairs
// queued behind it (padded, window 256: waste 0.108, p99/p50 1.18);
// anchored batches, each the run of similar lengths around the oldest pair
// from a 512-8192 pair lookahead (padded: 90.7-93.8% of raw, but p99/p50
// 1.17-1.32).
func TestClosedLoopSimulation(t *testing.T) {
	t.Parallel()
	calls := simWorkload(simCallers*simRounds, 5)
	type entry struct {
		simCase
		check bool
	}
	var cases []entry
	sweep := os.Getenv("GOMPS_SIM_SWEEP") == "1"
	for _, m := range []simModel{simCPU, simPadded, simBuckets} {
		checked := simCase{model: m, mode: ModeAdaptive} // the default
		if m.name == simPadded.name {
			checked.overhead = 8192 / 32
		}
		for _, inst := range []int{1, 2} {
			checked.instances = inst
			if m.name != simBuckets.name {
				cases = append(cases, entry{checked, true})
			}
			if !sweep {
				continue
			}
			for _, w := range []int{128, 256, 512, 1024} {
				for _, o := range []int{0, 8192 / 32} {
					c := simCase{m, ModeAdaptive, inst, w, o}
					if c.window == 256 && c.overhead == checked.overhead && m.name != simBuckets.name {
						continue // the checked case
					}
					cases = append(cases, entry{c, false})
				}
			}
			cases = append(cases, entry{simCase{m, ModeFixed, inst, 0, 0}, false})
		}
	}
	for _, tc := range cases {
		name := fmt.Sprintf("model=%s/mode=%v/instances=%d/window=%d/overhead=%d", tc.model.name, tc.mode, tc.instances, tc.window, tc.overhead)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runSim(t, tc.simCase, calls)
			t.Logf("%s: %v", name, r)
			if !tc.check {
				return
			}
			assert.GreaterOrEqual(t, r.ofRaw, 0.90, "throughput vs raw")
			assert.LessOrEqual(t, float64(r.p99), 1.3*float64(r.p50), "p99 <= 1.3 x p50")
			assert.LessOrEqual(t, float64(r.max), 2*float64(r.p99), "max <= 2 x p99")
		})
	}
}
