package benchreport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomps/gomps/gomps"
	"github.com/gomps/gomps/metal"
)

// Target is what the load generator drives: *gomps.Reranker satisfies it.
type Target interface {
	Do(ctx context.Context, req gomps.Request) (gomps.Result, error)
	Stats() gomps.Stats
}

var _ Target = (*gomps.Reranker)(nil)

// RunConfig is one point of the sweep.
type RunConfig struct {
	PairsPerRequest int           // passages per call ("Batch" in the report)
	Concurrency     int           // closed-loop callers ("Conc")
	Duration        time.Duration // measured phase length (when Requests is 0)
	Requests        int           // measured phase request count (overrides Duration)
	Warmup          time.Duration // warm-up phase length (when WarmupRequests is 0)
	WarmupRequests  int           // warm-up request count (overrides Warmup)
	SampleEvery     time.Duration // time-series interval (default 1s)
	// Progress, if set, is called from the sampler at every interval with
	// the phase ("warm-up" or "measure"), its elapsed time and the calls
	// returned so far.
	Progress func(phase string, elapsed time.Duration, done int)
}

func (c RunConfig) validate() error {
	switch {
	case c.PairsPerRequest < 1:
		return fmt.Errorf("%d pairs per request: want at least 1", c.PairsPerRequest)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d: want at least 1", c.Concurrency)
	case c.Requests < 0 || c.WarmupRequests < 0 || c.Duration < 0 || c.Warmup < 0 || c.SampleEvery < 0:
		return errors.New("negative duration or request count")
	case c.Requests == 0 && c.Duration == 0:
		return errors.New("a run needs a duration or a request count")
	}
	return nil
}

// Record is one request of a phase. Start and End are offsets from the
// phase start on the caller's clock; Latency = End - Start.
type Record struct {
	Start, End time.Duration
	Latency    time.Duration
	Pairs      int
	Timings    gomps.Timings // the library's spans for this call
}

// Sample is a live reading taken every SampleEvery during a phase (and once
// at its start and end).
type Sample struct {
	At        time.Duration // offset from the phase start
	Stats     gomps.Stats   // engine counters at that moment
	InFlight  int           // calls issued and not returned
	CPU       time.Duration // process CPU time (user + system), cumulative; -1 if unavailable
	RSS       int64         // resident bytes (VmRSS); -1 if unavailable
	RSSReason string        // why RSS is unavailable
	GPUMB     float64       // metal.GPUUsage().MemoryMB; NaN where unavailable
	GPUReason string        // why GPU memory is unavailable
	Sys       SysCPU        // the machine's and this process's CPU ticks
	SysReason string        // why Sys is unavailable ("" when read)
}

// Phase is a warm-up or measured phase: closed-loop callers, each sending
// its next request when its last returns, until the phase's request count
// is issued or its duration has passed; then every call in flight is
// awaited, so the phase's Stats delta holds exactly its requests' batches.
type Phase struct {
	Wall    time.Duration // start until the last call returned
	Records []Record      // ordered by End
	Before  Sample        // at the start
	After   Sample        // after the last call returned
	Samples []Sample      // Before, every interval, After
	HWM     int64         // VmHWM after the phase (process lifetime peak RSS); -1 if unavailable
	Every   time.Duration // the sampling interval
}

// RunResult is one configuration's warm-up and measured phases.
type RunResult struct {
	Config  RunConfig
	Warmup  *Phase // nil without warm-up
	Measure *Phase
}

// Run drives t with cfg over wl. next is the workload position, shared
// across runs so successive phases see successive requests; it may be nil.
// A failed call ends the run with its error.
func Run(ctx context.Context, t Target, wl *Workload, cfg RunConfig, next *atomic.Int64) (*RunResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(wl.Requests) == 0 {
		return nil, errors.New("empty workload")
	}
	if next == nil {
		next = new(atomic.Int64)
	}
	if cfg.SampleEvery == 0 {
		cfg.SampleEvery = time.Second
	}
	res := &RunResult{Config: cfg}
	if cfg.Warmup > 0 || cfg.WarmupRequests > 0 {
		p, err := runPhase(ctx, t, wl, next, cfg.Concurrency, cfg.Warmup, cfg.WarmupRequests, cfg.SampleEvery, progress(cfg, "warm-up"))
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		res.Warmup = p
	}
	p, err := runPhase(ctx, t, wl, next, cfg.Concurrency, cfg.Duration, cfg.Requests, cfg.SampleEvery, progress(cfg, "measure"))
	if err != nil {
		return nil, err
	}
	res.Measure = p
	return res, nil
}

func progress(cfg RunConfig, phase string) func(time.Duration, int) {
	if cfg.Progress == nil {
		return nil
	}
	return func(d time.Duration, n int) { cfg.Progress(phase, d, n) }
}

func runPhase(ctx context.Context, t Target, wl *Workload, next *atomic.Int64, conc int,
	dur time.Duration, nreq int, every time.Duration, report func(time.Duration, int)) (*Phase, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inFlight, done atomic.Int64
	start := time.Now()
	sample := func() Sample {
		s := Sample{At: time.Since(start), Stats: t.Stats(), InFlight: int(inFlight.Load()), CPU: -1, RSS: -1}
		if c, err := ProcessCPU(); err == nil {
			s.CPU = c
		}
		if m, err := ReadMemory(); err == nil {
			s.RSS = m.RSS
		} else {
			s.RSSReason = err.Error()
		}
		g := metal.GPUUsage()
		s.GPUMB, s.GPUReason = g.MemoryMB, g.MemoryNA
		if sys, err := ReadSysCPU(); err == nil {
			s.Sys = sys
		} else {
			s.SysReason = err.Error()
		}
		return s
	}
	p := &Phase{HWM: -1, Every: every}
	p.Before = sample()
	start = time.Now() // the clock starts after the first reading
	p.Before.At = 0
	p.Samples = append(p.Samples, p.Before)

	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
				p.Samples = append(p.Samples, sample())
				if report != nil {
					report(time.Since(start), int(done.Load()))
				}
			}
		}
	}()

	var (
		issued   atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	records := make([][]Record, conc)
	for c := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if nreq > 0 {
					if issued.Add(1) > int64(nreq) {
						return
					}
				} else if time.Since(start) >= dur {
					return
				}
				req := wl.Requests[int(next.Add(1)-1)%len(wl.Requests)]
				inFlight.Add(1)
				t0 := time.Now()
				res, err := t.Do(ctx, gomps.Request{Query: req.Query, Passages: req.Passages})
				t1 := time.Now()
				inFlight.Add(-1)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
				records[c] = append(records[c], Record{Start: t0.Sub(start), End: t1.Sub(start), Latency: t1.Sub(t0),
					Pairs: len(req.Passages), Timings: res.Timings})
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	close(stopSampler)
	<-samplerDone
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.Wall = end.Sub(start)
	p.After = sample()
	p.After.At = p.Wall
	p.Samples = append(p.Samples, p.After)
	if m, err := ReadMemory(); err == nil {
		p.HWM = m.HWM
	}
	for _, rs := range records {
		p.Records = append(p.Records, rs...)
	}
	sortRecords(p.Records)
	return p, nil
}
