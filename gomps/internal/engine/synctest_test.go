package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run inside testing/synctest bubbles: time is fake, advances
// only when every goroutine of the bubble is blocked, and tokenization costs
// no time, so timings can be asserted exactly.

type outcome struct {
	res Result
	err error
}

func goScore(e *Engine, ctx context.Context, q string, ps []string) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := e.Score(ctx, q, ps, Call{})
		ch <- outcome{res, err}
	}()
	return ch
}

// tagged returns n one-word passages tag, tag+1, ...
func tagged(tag, n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprint(tag + i)
	}
	return ps
}

// padded returns n passages of `length` words, the first word tag+i.
func padded(tag, n, length int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprint(tag+i) + strings.Repeat(" 7", length-1)
	}
	return ps
}

func TestFixedFlushesAtTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		e, err := New(Config{Mode: ModeFixed, MaxBatch: 32, Timeout: 100 * time.Millisecond}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()

		t0 := time.Now()
		res, err := e.Score(ctx, "1", tagged(100, 5), Call{})
		require.NoError(t, err)
		log := fb.log()
		require.Len(t, log, 1)
		assert.Equal(t, t0.Add(100*time.Millisecond), log[0].start, "a partial batch is flushed at exactly the timeout")
		assert.Equal(t, 100*time.Millisecond, res.Timings.Queue)
		assert.Equal(t, 5, log[0].rows)

		t1 := time.Now()
		_, err = e.Score(ctx, "1", tagged(200, 32), Call{})
		require.NoError(t, err)
		log = fb.log()
		assert.Equal(t, t1, log[1].start, "a full batch goes at once")

		t2 := time.Now()
		res, err = e.Score(ctx, "1", tagged(300, 40), Call{})
		require.NoError(t, err)
		log = fb.log()
		require.Len(t, log, 4)
		assert.Equal(t, t2, log[2].start)
		assert.Equal(t, 32, log[2].rows)
		assert.Equal(t, t2.Add(100*time.Millisecond), log[3].start, "the remainder waits one timeout from the cut")
		assert.Equal(t, 8, log[3].rows)
		assert.Equal(t, 2, res.Timings.Batches)
	})
}

func TestAdaptiveNeverWaitsWhenIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 50 * time.Millisecond }
		// One thread of two for the instance: tokenization never waits.
		e, err := New(Config{Threads: 2, InstanceThreads: 1}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()

		t0 := time.Now()
		a := goScore(e, ctx, "1", tagged(100, 3))
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		b := goScore(e, ctx, "1", tagged(200, 4))
		ra, rb := <-a, <-b
		require.NoError(t, ra.err)
		require.NoError(t, rb.err)
		log := fb.log()
		require.Len(t, log, 2)
		assert.Equal(t, t0, log[0].start, "an idle instance starts at once")
		assert.Equal(t, t0.Add(50*time.Millisecond), log[1].start, "the next batch starts the moment the instance frees")

		// Timings are exact in fake time: nothing is unexplained.
		assert.Equal(t, Timings{Queue: 0, Inference: 50 * time.Millisecond, Total: 50 * time.Millisecond, Batches: 1}, ra.res.Timings)
		assert.Equal(t, Timings{Queue: 40 * time.Millisecond, Inference: 50 * time.Millisecond, Total: 90 * time.Millisecond, Batches: 1}, rb.res.Timings)
		assert.Zero(t, rb.res.Timings.Unexplained())
	})
}

// With the default split the instance holds the whole thread budget, so a
// call arriving mid-forward is tokenized when the forward ends; that wait is
// Tokenize time, and its batch then starts at once.
func TestBudgetDelaysTokenization(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 50 * time.Millisecond }
		e, err := New(Config{Threads: 2}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()
		a := goScore(e, ctx, "1", tagged(100, 3))
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		b := goScore(e, ctx, "1", tagged(200, 4))
		require.NoError(t, (<-a).err)
		rb := <-b
		require.NoError(t, rb.err)
		assert.Equal(t, Timings{Tokenize: 40 * time.Millisecond, Inference: 50 * time.Millisecond, Total: 90 * time.Millisecond, Batches: 1}, rb.res.Timings)
		fb.mu.Lock()
		assert.Equal(t, 2, fb.threads[0])
		fb.mu.Unlock()
	})
}

func TestAdaptiveTwoInstancesBothBusy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 50 * time.Millisecond }
		// MaxBatch 4: a 12-pair call needs three batches.
		e, err := New(Config{Instances: 2, Threads: 2, MaxBatch: 4}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		t0 := time.Now()
		res, err := e.Score(context.Background(), "1", tagged(100, 12), Call{})
		require.NoError(t, err)
		log := fb.log()
		require.Len(t, log, 3)
		slots := map[int]int{}
		for _, f := range log {
			slots[f.slot]++
		}
		assert.Len(t, slots, 2, "both instances used")
		st := e.Stats().Instances
		require.Len(t, st, 2)
		assert.Equal(t, uint64(3), st[0].Batches+st[1].Batches)
		assert.Equal(t, uint64(12), st[0].Rows+st[1].Rows)
		assert.Equal(t, 150*time.Millisecond, st[0].Busy+st[1].Busy, "busy time is the forwards' time")
		starts := []time.Time{log[0].start, log[1].start, log[2].start}
		assert.ElementsMatch(t, []time.Time{t0, t0, t0.Add(50 * time.Millisecond)}, starts, "both instances start at once")
		// Split across three batches, merged back in order; inference spans first start to last end.
		assert.Equal(t, 3, res.Timings.Batches)
		assert.Equal(t, 100*time.Millisecond, res.Timings.Inference)
		for i, s := range res.Scores {
			assert.Equal(t, want(t, e.Config(), "1", fmt.Sprint(100+i)), s, "score %d", i)
		}
	})
}

// Light load: one call, two idle instances. Its window is spread over both
// instead of one batch leaving an instance idle.
func TestAdaptiveSpreadsOverIdleInstances(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(b *Batch) time.Duration { return time.Duration(b.Rows) * time.Millisecond }
		e, err := New(Config{Instances: 2, Threads: 2}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		t0 := time.Now()
		res, err := e.Score(context.Background(), "1", padded(100, 64, 20), Call{})
		require.NoError(t, err)
		log := fb.log()
		require.Len(t, log, 2)
		assert.Equal(t, []int{32, 32}, []int{log[0].rows, log[1].rows})
		assert.Equal(t, t0, log[0].start)
		assert.Equal(t, t0, log[1].start)
		assert.NotEqual(t, log[0].slot, log[1].slot)
		assert.Equal(t, 32*time.Millisecond, res.Timings.Inference, "half the time of one 64-row batch")
	})
}

func TestRouting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		routing Routing
		slots   []int
	}{
		// Batches: long (slot 0), then two short ones. Least-loaded sends
		// both short ones to the lighter slot 1; round-robin alternates.
		{RouteLeastLoaded, []int{0, 1, 1}},
		{RouteRoundRobin, []int{0, 1, 0}},
	} {
		t.Run("routing="+tc.routing.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fb := newFakeBackend()
				fb.cost = func(b *Batch) time.Duration { return time.Duration(b.Rows*b.Seq) * time.Millisecond }
				e, err := New(Config{Mode: ModeFixed, Routing: tc.routing, Instances: 2, Threads: 2, MaxBatch: 4}, &fakeEncoder{}, fb.factory)
				require.NoError(t, err)
				defer e.Close()
				ctx := context.Background()
				a := goScore(e, ctx, "1", padded(100, 4, 50))
				synctest.Wait()
				b := goScore(e, ctx, "1", tagged(200, 4))
				synctest.Wait()
				c := goScore(e, ctx, "1", tagged(300, 4))
				for _, ch := range []<-chan outcome{a, b, c} {
					require.NoError(t, (<-ch).err)
				}
				log := fb.log()
				require.Len(t, log, 3)
				got := map[int32]int{}
				for _, f := range log {
					got[f.tags[0]/100] = f.slot
				}
				assert.Equal(t, tc.slots, []int{got[1], got[2], got[3]})
			})
		})
	}
}

func TestCancelDropsQueuedPairs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode Mode
		// instanceThreads 1 of 2 leaves a thread for tokenization, so the
		// cancelled call sits in the batcher's queue; 2 of 2 makes it wait
		// for a thread, so it is cancelled before tokenization.
		instanceThreads int
	}{
		{ModeAdaptive, 1}, {ModeFixed, 1}, {ModeAdaptive, 2},
	} {
		t.Run(fmt.Sprintf("mode=%v/instance-threads=%d", tc.mode, tc.instanceThreads), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fb := newFakeBackend()
				fb.cost = func(*Batch) time.Duration { return 10 * time.Millisecond }
				e, err := New(Config{Mode: tc.mode, Threads: 2, InstanceThreads: tc.instanceThreads, MaxBatch: 4, Timeout: time.Millisecond},
					&fakeEncoder{}, fb.factory)
				require.NoError(t, err)
				defer e.Close()
				a := goScore(e, context.Background(), "1", tagged(5000, 4))
				synctest.Wait() // a's batch is running
				ctx, cancel := context.WithCancel(context.Background())
				b := goScore(e, ctx, "1", tagged(6000, 6))
				synctest.Wait() // b is queued behind the busy instance (or its thread)
				assert.Equal(t, int64(6), e.Stats().QueueSize)
				cancel()
				rb := <-b
				assert.ErrorIs(t, rb.err, context.Canceled)
				synctest.Wait()
				if tc.instanceThreads == 1 {
					s := e.Stats()
					assert.Equal(t, uint64(6), s.PairsDropped, "b's pairs removed from the queue at once")
					assert.Zero(t, s.QueueSize)
				}
				require.NoError(t, (<-a).err)
				time.Sleep(time.Second) // let anything that could still run, run
				s := e.Stats()
				for i := range 6 {
					assert.Zero(t, fb.sawID(int32(6000+i)), "pair %d of the cancelled call reached the backend", i)
				}
				assert.Equal(t, uint64(6), s.PairsDropped)
				assert.Zero(t, s.QueueSize)
				assert.Equal(t, 1, fb.sawID(5000))
				assert.Equal(t, uint64(4), s.PairsScored)
				assert.Equal(t, uint64(1), s.Batches)
				assert.Equal(t, uint64(1), s.Failures[ReasonCancelled])
			})
		})
	}
}

func TestOverload(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 10 * time.Millisecond }
		e, err := New(Config{MaxQueue: 10, MaxBatch: 8}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()
		a := goScore(e, ctx, "1", tagged(100, 8))
		synctest.Wait() // running: no longer queued
		b := goScore(e, ctx, "1", tagged(200, 8))
		synctest.Wait() // queued: 8 of 10 places
		assert.Equal(t, int64(8), e.Stats().QueueSize)

		t0 := time.Now()
		_, err = e.Score(ctx, "1", tagged(300, 3), Call{})
		assert.ErrorIs(t, err, ErrOverloaded)
		_, err = e.Score(ctx, "1", tagged(400, 11), Call{})
		assert.ErrorIs(t, err, ErrOverloaded)
		assert.Equal(t, t0, time.Now(), "overload fails at once")

		c := goScore(e, ctx, "1", tagged(500, 2)) // fits exactly
		for _, ch := range []<-chan outcome{a, b, c} {
			require.NoError(t, (<-ch).err)
		}
		s := e.Stats()
		assert.Equal(t, uint64(2), s.Failures[ReasonOverloaded])
		assert.Equal(t, uint64(3), s.Succeeded)
		assert.Zero(t, fb.sawID(300))
	})
}

func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 5 * time.Millisecond }
		// A 1 s timeout: without draining, the last partial batch would wait.
		e, err := New(Config{Mode: ModeFixed, MaxBatch: 32, Timeout: time.Second, Instances: 2, Threads: 2}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		ctx := context.Background()
		var chans []<-chan outcome
		for c := range 10 {
			chans = append(chans, goScore(e, ctx, "1", tagged(1000*(c+1), 50)))
		}
		synctest.Wait()
		t0 := time.Now()
		require.NoError(t, e.Shutdown(ctx))
		assert.Less(t, time.Since(t0), time.Second, "shutdown flushes partial batches instead of waiting")
		for c, ch := range chans {
			o := <-ch
			require.NoError(t, o.err, "caller %d", c)
			require.Len(t, o.res.Scores, 50)
			for i, s := range o.res.Scores {
				assert.Equal(t, want(t, e.Config(), "1", fmt.Sprint(1000*(c+1)+i)), s)
			}
		}
		_, err = e.Score(ctx, "1", []string{"2"}, Call{})
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, e.Shutdown(ctx), "second shutdown")
		assert.NoError(t, e.Close(), "close after shutdown")
		assert.Equal(t, uint64(500), e.Stats().PairsScored)
		fb.mu.Lock()
		assert.Equal(t, 2, fb.closes)
		fb.mu.Unlock()
	})
}

func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return time.Second }
		e, err := New(Config{MaxBatch: 8}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		var chans []<-chan outcome
		for c := range 3 {
			chans = append(chans, goScore(e, context.Background(), "1", tagged(1000*(c+1), 8)))
		}
		synctest.Wait()
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		err = e.Shutdown(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, t0.Add(time.Second), time.Now(), "close waits only for the running forward")
		closed := 0
		for _, ch := range chans {
			if o := <-ch; o.err != nil {
				assert.ErrorIs(t, o.err, ErrClosed)
				closed++
			}
		}
		assert.Equal(t, 3, closed, "nothing finished within the deadline")
		assert.Equal(t, uint64(1), e.Stats().Batches, "queued batches never ran")
	})
}

func TestPanicFailsBatchAndReplacesInstance(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 10 * time.Millisecond }
		fb.panicID = 666
		// A thread left for tokenization, so a and b are both queued when z ends.
		e, err := New(Config{Threads: 2, InstanceThreads: 1}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()
		z := goScore(e, ctx, "1", []string{"50"})
		synctest.Wait() // z runs; a and b queue up and share the next batch
		a := goScore(e, ctx, "1", []string{"60", "666"})
		b := goScore(e, ctx, "1", []string{"70"})
		require.NoError(t, (<-z).err)
		ra, rb := <-a, <-b
		assert.ErrorIs(t, ra.err, ErrBackend)
		assert.ErrorContains(t, ra.err, "forward panicked")
		assert.ErrorIs(t, rb.err, ErrBackend, "every request in the batch fails")
		res, err := e.Score(ctx, "1", []string{"80"}, Call{})
		require.NoError(t, err, "the rebuilt instance serves")
		assert.Equal(t, want(t, e.Config(), "1", "80"), res.Scores[0])
		s := e.Stats()
		assert.Equal(t, uint64(1), s.Panics)
		assert.Equal(t, uint64(2), s.Failures[ReasonBackend])
		fb.mu.Lock()
		assert.Equal(t, 2, fb.builds, "instance rebuilt")
		assert.Equal(t, 1, fb.closes, "panicked instance closed")
		fb.mu.Unlock()
	})
}

func TestPanicWithoutRebuildFailsQueued(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 10 * time.Millisecond }
		fb.panicID = 666
		fb.buildErrAt = 2
		e, err := New(Config{MaxBatch: 2}, &fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()
		a := goScore(e, ctx, "1", []string{"666"})
		synctest.Wait()
		b := goScore(e, ctx, "1", []string{"60"})
		assert.ErrorIs(t, (<-a).err, ErrBackend)
		assert.ErrorIs(t, (<-b).err, ErrBackend, "no instance left")
		_, err = e.Score(ctx, "1", []string{"70"}, Call{})
		assert.ErrorIs(t, err, ErrBackend)
		assert.Zero(t, e.Stats().QueueSize)
	})
}

// The same pairs through both batchers: adaptive groups by length and wastes
// less padding than fixed's FIFO batches.
func TestAdaptiveWastesLessPadding(t *testing.T) {
	t.Parallel()
	calls := makeCalls(42, 32, 64, 120)
	for i := range calls { // the standard workload: 64 pairs per call
		for k := 0; len(calls[i].passages) < 64; k++ {
			calls[i].passages = append(calls[i].passages, calls[i].passages[k])
		}
	}
	run := func(cfg Config) Stats {
		var s Stats
		synctest.Test(t, func(t *testing.T) {
			fb := newFakeBackend()
			fb.cost = func(b *Batch) time.Duration { return time.Duration(b.Rows*b.Seq) * time.Microsecond }
			e, err := New(cfg, &fakeEncoder{}, fb.factory)
			require.NoError(t, err)
			defer e.Close()
			var chans []<-chan outcome
			for _, c := range calls {
				chans = append(chans, goScore(e, context.Background(), c.query, c.passages))
			}
			for _, ch := range chans {
				require.NoError(t, (<-ch).err)
			}
			s = e.Stats()
		})
		return s
	}
	fixed := run(Config{Mode: ModeFixed, MaxSeq: 128})
	adaptive := run(Config{Mode: ModeAdaptive, MaxSeq: 128})
	t.Logf("padding waste: fixed %.3f (%d batches), adaptive %.3f (%d batches)",
		fixed.PaddingWasteRatio(), fixed.Batches, adaptive.PaddingWasteRatio(), adaptive.Batches)
	assert.Equal(t, fixed.RealTokens, adaptive.RealTokens, "same pairs")
	assert.Less(t, adaptive.PaddingWasteRatio(), fixed.PaddingWasteRatio())
	assert.Less(t, adaptive.PaddedTokens, fixed.PaddedTokens)
	assert.Positive(t, adaptive.MixedBatches)
}

// A deep queue: the scheduler's queue compacts while batches are cut from
// the middle of the window; every score must still land in its place.
func TestDeepQueueCompaction(t *testing.T) {
	t.Parallel()
	for _, mode := range []Mode{ModeAdaptive, ModeFixed} {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			calls := makeCalls(77, 40, 100, 30)
			synctest.Test(t, func(t *testing.T) {
				fb := newFakeBackend()
				fb.cost = func(*Batch) time.Duration { return time.Millisecond }
				e, err := New(Config{Mode: mode, MaxBatch: 8, Window: 64, MaxSeq: 64, MaxQueue: 1 << 20}, &fakeEncoder{}, fb.factory)
				require.NoError(t, err)
				defer e.Close()
				var chans []<-chan outcome
				for _, c := range calls {
					chans = append(chans, goScore(e, context.Background(), c.query, c.passages))
				}
				for i, ch := range chans {
					o := <-ch
					require.NoError(t, o.err)
					for j, p := range calls[i].passages {
						require.Equal(t, want(t, e.Config(), calls[i].query, p), o.res.Scores[j], "call %d passage %d", i, j)
					}
				}
			})
		})
	}
}

// A slot whose instance panics and cannot be rebuilt is retired: batches
// waiting at it fail, the other slot keeps serving.
func TestDeadSlotRetired(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBackend()
		fb.cost = func(*Batch) time.Duration { return 10 * time.Millisecond }
		fb.panicID = 666
		fb.buildErrAt = 3 // builds 1 and 2 are the two slots; the rebuild fails
		e, err := New(Config{Mode: ModeFixed, Routing: RouteRoundRobin, Instances: 2, Threads: 2, MaxBatch: 1},
			&fakeEncoder{}, fb.factory)
		require.NoError(t, err)
		defer e.Close()
		ctx := context.Background()
		a := goScore(e, ctx, "1", []string{"666"}) // slot 0, panics
		synctest.Wait()
		c := goScore(e, ctx, "1", []string{"10", "11", "12"}) // slot 1, slot 0 (waits), slot 1
		synctest.Wait()
		assert.ErrorIs(t, (<-a).err, ErrBackend)
		rc := <-c
		assert.ErrorIs(t, rc.err, ErrBackend)
		assert.ErrorContains(t, rc.err, "instance 0 lost and could not be rebuilt")
		assert.ErrorContains(t, rc.err, "build 3 refused")
		res, err := e.Score(ctx, "1", []string{"20", "21"}, Call{})
		require.NoError(t, err, "the live slot serves")
		assert.Equal(t, want(t, e.Config(), "1", "21"), res.Scores[1])
		for _, f := range fb.log() {
			if f.tags[0] >= 20 {
				assert.Equal(t, 1, f.slot, "nothing routed to the dead slot")
			}
		}
		assert.Zero(t, fb.sawID(11), "the batch waiting at the dead slot never ran")
		s := e.Stats()
		assert.Equal(t, uint64(1), s.Panics)
		assert.Zero(t, s.QueueSize)
	})
}
