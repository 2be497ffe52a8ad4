package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchEncoder is a TEST DOUBLE tokenizer that looks pre-tokenized text up,
// so the benchmark measures the engine, not a tokenizer.
type benchEncoder struct{ ids map[string][]int32 }

func (b *benchEncoder) EncodeQuery(q string) ([]int32, error) { return b.ids[q], nil }
func (b *benchEncoder) EncodePassages(ps []string, _ int) ([][]int32, error) {
	out := make([][]int32, len(ps))
	for i, p := range ps {
		out[i] = b.ids[p]
	}
	return out, nil
}

// benchInstance is a TEST DOUBLE backend whose forward is fakeScore over each
// row: a few ns per token, so engine overhead dominates what is measured.
type benchInstance struct{}

func (benchInstance) SetThreads(int) error { return nil }
func (benchInstance) Close() error         { return nil }
func (benchInstance) Forward(b *Batch, logits []float32) error {
	for r := range b.Rows {
		n := int(b.Lengths[r])
		logits[r] = fakeScore(b.IDs[r*b.Seq:r*b.Seq+n], b.Types[r*b.Seq:r*b.Seq+n])
	}
	return nil
}

func benchWorkload(calls, pairs int) ([]call, *benchEncoder) {
	rng := rand.New(rand.NewPCG(11, 3))
	enc := &benchEncoder{ids: map[string][]int32{}}
	out := make([]call, calls)
	for c := range out {
		out[c].query = fmt.Sprintf("q%d", c)
		enc.ids[out[c].query] = seq(1000+c, 4+rng.IntN(12))
		out[c].passages = make([]string, pairs)
		for i := range pairs {
			p := fmt.Sprintf("p%d-%d", c, i)
			out[c].passages[i] = p
			enc.ids[p] = seq(2000+i, 20+rng.IntN(180)) // MS MARCO-like passage lengths
		}
	}
	return out, enc
}

// BenchmarkEngine: the standard workload's shape (64 pairs per call, 32
// closed-loop callers) through the engine with an instant test-double
// backend: what the engine itself costs per pair. raw=1 forwards the same
// pairs pre-assembled, sorted by length and cut by the token budget, back to
// back from one goroutine per instance.
func BenchmarkEngine(b *testing.B) {
	const callers, pairs = 32, 64
	calls, enc := benchWorkload(256, pairs)
	for _, mode := range []Mode{ModeAdaptive, ModeFixed} {
		for _, instances := range []int{1, 2} {
			b.Run(fmt.Sprintf("mode=%v/instances=%d", mode, instances), func(b *testing.B) {
				e, err := New(Config{Mode: mode, Instances: instances, Threads: 2},
					enc, func(int) (Instance, error) { return benchInstance{}, nil })
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				ctx := context.Background()
				for _, c := range calls[:callers] { // warm up
					if _, err := e.Score(ctx, c.query, c.passages, Call{}); err != nil {
						b.Fatal(err)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				var mu sync.Mutex
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range callers {
					wg.Go(func() {
						for {
							i := int(next.Add(1)) - 1
							if i >= b.N {
								return
							}
							c := calls[i%len(calls)]
							t0 := time.Now()
							_, err := e.Score(ctx, c.query, c.passages, Call{})
							d := time.Since(t0)
							if err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							lat = append(lat, d)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				slices.Sort(lat)
				s := e.Stats()
				b.ReportMetric(float64(b.N*pairs)/el.Seconds(), "pairs/s")
				b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*pairs), "ns/pair")
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
				}
				b.ReportMetric(s.PaddingWasteRatio(), "waste")
				b.ReportMetric(float64(s.Rows)/float64(max(s.Batches, 1)), "rows/batch")
			})
		}
	}
	b.Run("raw=1", func(b *testing.B) {
		cfg, _ := Config{}.withDefaults()
		var ids, types [][]int32
		for _, c := range calls {
			for _, p := range c.passages {
				i, t, _ := AssemblePair(enc.ids[c.query], enc.ids[p], cfg.MaxSeq, cfg.ClsID, cfg.SepID)
				ids, types = append(ids, i), append(types, t)
			}
		}
		lengths := make([]int, len(ids))
		for i := range ids {
			lengths[i] = len(ids[i])
		}
		plan := PlanBatches(lengths, cfg.MaxBatch, cfg.TokenBudget)
		var batch Batch
		logits := make([]float32, cfg.MaxBatch)
		var inst benchInstance
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		done := 0
		for done < b.N*pairs {
			for _, rows := range plan {
				batch.Fill(ids, types, rows)
				_ = inst.Forward(&batch, logits[:len(rows)])
				done += len(rows)
			}
		}
		el := time.Since(start)
		b.ReportMetric(float64(done)/el.Seconds(), "pairs/s")
		b.ReportMetric(float64(el.Nanoseconds())/float64(done), "ns/pair")
	})
}
