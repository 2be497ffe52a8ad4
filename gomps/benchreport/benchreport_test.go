package benchreport

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
)

func TestDistOf(t *testing.T) {
	var xs []float64
	for i := 100; i >= 1; i-- { // 1..100, reversed: DistOf sorts a copy
		xs = append(xs, float64(i))
	}
	d := DistOf(xs)
	assert.Equal(t, 100, d.N)
	assert.Equal(t, 50.5, d.Mean)
	assert.Equal(t, 1.0, d.Min)
	assert.Equal(t, 100.0, d.Max)
	assert.Equal(t, 50.0, d.P50, "nearest rank")
	assert.Equal(t, 75.0, d.P75)
	assert.Equal(t, 90.0, d.P90)
	assert.Equal(t, 95.0, d.P95)
	assert.Equal(t, 99.0, d.P99)
	assert.InDelta(t, math.Sqrt((100*100-1)/12.0), d.Std, 1e-9, "population std of 1..100")
	assert.Equal(t, 100.0, xs[0], "input untouched")
	assert.Equal(t, Dist{}, DistOf(nil))
}

func TestPearson(t *testing.T) {
	x := []float64{1, 2, 3, 4}
	assert.InDelta(t, 1, Pearson(x, []float64{2, 4, 6, 8}), 1e-12)
	assert.InDelta(t, -1, Pearson(x, []float64{8, 6, 4, 2}), 1e-12)
	assert.True(t, math.IsNaN(Pearson(x, []float64{1, 1, 1, 1})), "constant")
	assert.True(t, math.IsNaN(Pearson([]float64{1}, []float64{1})), "one value")
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t    1024 kB\nThreads: 3\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(1024<<10), m.RSS)
	assert.Equal(t, int64(2048<<10), m.HWM)
	_, err = parseStatus([]byte("VmRSS: 12 MB\nVmHWM: 1 kB\n"))
	assert.Error(t, err, "unit")
	_, err = parseStatus([]byte("Name: x\n"))
	assert.Error(t, err, "missing lines")
	if _, err := os.Stat("/proc/self/status"); err == nil {
		m, err := ReadMemory()
		require.NoError(t, err)
		assert.Greater(t, m.RSS, int64(0))
		assert.GreaterOrEqual(t, m.HWM, m.RSS)
	}
}

func TestSyntheticFollowsSources(t *testing.T) {
	w, err := Synthetic(100, 200, 3)
	require.NoError(t, err)
	require.Len(t, w.Requests, 200)
	var q, p []float64
	for _, r := range w.Requests {
		require.Len(t, r.Passages, 100)
		q = append(q, float64(wordCount(r.Query)))
		for _, s := range r.Passages {
			p = append(p, float64(wordCount(s)))
		}
	}
	// shared/data/SOURCES.md: queries mean 6.9 p50 7 p90 11 max 16;
	// passage words per BM25 pair mean 53.1 p50 50 p90 75 p99 116 max 311.
	dq, dp := DistOf(q), DistOf(p)
	assert.InDelta(t, 6.9, dq.Mean, 0.5, "query mean")
	assert.InDelta(t, 7, dq.P50, 1, "query p50")
	assert.InDelta(t, 11, dq.P90, 1, "query p90")
	assert.LessOrEqual(t, dq.Max, 16.0)
	assert.InDelta(t, 53.1, dp.Mean, 2, "passage mean")
	assert.InDelta(t, 50, dp.P50, 2, "passage p50")
	assert.InDelta(t, 75, dp.P90, 3, "passage p90")
	assert.InDelta(t, 116, dp.P99, 8, "passage p99")
	assert.LessOrEqual(t, dp.Max, 311.0)
	w2, err := Synthetic(100, 200, 3)
	require.NoError(t, err)
	assert.Equal(t, w.Requests[17], w2.Requests[17], "seeded")
	assert.Contains(t, w.Describe, "SOURCES.md")
}

func TestLoadWorkloadTSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairs.tsv")
	var b strings.Builder
	b.WriteString("query\tpassage\n")
	for i := range 5 {
		b.WriteString("q one\tpassage " + string(rune('a'+i)) + "\n")
	}
	b.WriteString("q two\tonly one\n")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	w, err := LoadWorkload(path, 3)
	require.NoError(t, err)
	require.Len(t, w.Requests, 3, "5 passages -> 2 requests, 1 passage -> 1")
	assert.Equal(t, []string{"passage a", "passage b", "passage c"}, w.Requests[0].Passages)
	assert.Equal(t, []string{"passage d", "passage e", "passage a"}, w.Requests[1].Passages, "wraps inside the group")
	assert.Equal(t, Request{Query: "q two", Passages: []string{"only one", "only one", "only one"}}, w.Requests[2])
	assert.Equal(t, 9, w.Words.N)
}

func TestLoadWorkloadDL19(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "data", "trec-dl", "rerank.dl19.bm25-top100.jsonl")
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required under CI=true: %v", err)
		}
		t.Skipf("shared data missing: %v", err)
	}
	w, err := LoadWorkload(path, 64)
	require.NoError(t, err)
	assert.Len(t, w.Requests, 43*2, "43 queries x 100 candidates -> 2 requests of 64 each")
	assert.Contains(t, w.Describe, "4300 pairs in 43 query groups")
	// SOURCES.md: query+passage words per BM25 pair over all sets: mean 60.0;
	// DL19 passages are longer (mean 60.5) and its queries shorter (5.4).
	assert.InDelta(t, 66, w.Words.Mean, 6, "DL19 pair words")
}

// fakeTarget scores after a fixed sleep and books rows like an engine.
type fakeTarget struct {
	mu    sync.Mutex
	stats gomps.Stats
	delay time.Duration
	fail  atomic.Int64 // fail the n-th call (1-based); 0 = never
	calls atomic.Int64
}

func (f *fakeTarget) Do(ctx context.Context, req gomps.Request) (gomps.Result, error) {
	t0 := time.Now()
	ps := req.Passages
	if n := f.calls.Add(1); n == f.fail.Load() {
		return gomps.Result{}, errors.New("fake: boom")
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	f.stats.Batches++
	f.stats.Rows += uint64(len(ps))
	f.stats.Succeeded++
	f.stats.RealTokens += uint64(10 * len(ps))
	f.stats.PaddedTokens += uint64(12 * len(ps))
	f.mu.Unlock()
	d := time.Since(t0)
	return gomps.Result{Scores: make([]float32, len(ps)), Timings: gomps.Timings{Tokenize: d / 4, Queue: d / 4, Inference: d / 2, Total: d}}, nil
}

func (f *fakeTarget) Stats() gomps.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func TestRunClosedLoop(t *testing.T) {
	wl, err := Synthetic(4, 10, 1)
	require.NoError(t, err)
	ft := &fakeTarget{delay: 2 * time.Millisecond}
	var next atomic.Int64
	res, err := Run(context.Background(), ft, wl, RunConfig{PairsPerRequest: 4, Concurrency: 3, Requests: 30,
		WarmupRequests: 6, SampleEvery: 5 * time.Millisecond}, &next)
	require.NoError(t, err)
	require.NotNil(t, res.Warmup)
	assert.Len(t, res.Warmup.Records, 6)
	assert.Len(t, res.Measure.Records, 30)
	assert.Equal(t, int64(36), next.Load(), "workload position advances over both phases")

	s := Summarize(res.Measure, 1)
	assert.Equal(t, 120, s.Pairs)
	assert.Equal(t, uint64(120), s.Engine.Rows, "rows of the measured phase only")
	assert.InDelta(t, 1-10.0/12, s.Engine.PaddingWaste(), 1e-12)
	assert.InDelta(t, float64(s.Pairs)/s.Wall, s.TPOverall, 1e-9)
	assert.LessOrEqual(t, s.UnexplainedShare, 0.5)
	assert.GreaterOrEqual(t, s.Latency.Min, 2.0, "latency includes the 2 ms delay")
	sum := 0
	for _, p := range s.Series {
		sum += p.Pairs
	}
	assert.Equal(t, 120, sum, "every pair in one interval")
	n := 0
	for _, b := range s.Buckets {
		n += b.TP.N
	}
	assert.Equal(t, 30, n, "every request in one latency bucket")

	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, &Report{Title: "t", Timestamp: time.Now(), Info: gomps.Info{Backend: "cpu"},
		Workload: wl, Runs: []RunReport{{Config: res.Config, Measure: s, Warmup: Summarize(res.Warmup, 1)}}}))
	for _, sec := range Sections {
		assert.Contains(t, buf.String(), "\n"+sec+"\n")
	}
	assert.NotContains(t, buf.String(), "**NO**")

	ft.fail.Store(ft.calls.Load() + 3)
	_, err = Run(context.Background(), ft, wl, RunConfig{PairsPerRequest: 4, Concurrency: 2, Requests: 10}, nil)
	assert.ErrorContains(t, err, "fake: boom", "a failed call ends the run")
	_, err = Run(context.Background(), ft, wl, RunConfig{PairsPerRequest: 4, Concurrency: 2}, nil)
	assert.EqualError(t, err, "a run needs a duration or a request count")
}

func TestParseSysCPU(t *testing.T) {
	stat := []byte("cpu  100 5 50 800 10 3 2 30 7 0\ncpu0 50 2 25 400 5 1 1 15 3 0\nintr 1\n")
	self := []byte("1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 40 20 0 0 20 0 8 0 100 0 0\n")
	s, err := parseSysCPU(stat, self)
	require.NoError(t, err)
	assert.Equal(t, SysCPU{Total: 100 + 5 + 50 + 800 + 10 + 3 + 2 + 30, Busy: 100 + 5 + 50 + 3 + 2, Steal: 30, Own: 60}, s,
		"guest counted in user; own = utime 40 + stime 20 after the command name")
	_, err = parseSysCPU([]byte("intr 1\n"), self)
	assert.Error(t, err)
	_, err = parseSysCPU(stat, []byte("1234 (x) S 1\n"))
	assert.Error(t, err)
	if _, err := os.Stat("/proc/stat"); err == nil {
		a, err := ReadSysCPU()
		require.NoError(t, err)
		assert.Greater(t, a.Total, a.Busy)
	}
}

func TestContention(t *testing.T) {
	a := SysCPU{Total: 1000, Busy: 100, Steal: 0, Own: 50}
	// 1000 ticks pass: this process 300, others 150, steal 20.
	b := SysCPU{Total: 2000, Busy: 100 + 450, Steal: 20, Own: 350}
	c := contentionOf(a, b)
	require.True(t, c.Known)
	assert.InDelta(t, 0.15, c.OtherShare, 1e-12)
	assert.InDelta(t, 0.02, c.StealShare, 1e-12)
	assert.True(t, c.Contended(), "others above 10%")
	quiet := contentionOf(a, SysCPU{Total: 2000, Busy: 100 + 350, Steal: 10, Own: 350})
	assert.False(t, quiet.Contended(), "others 5%, steal 1%")
	stolen := contentionOf(a, SysCPU{Total: 2000, Busy: 400, Steal: 60, Own: 350})
	assert.True(t, stolen.Contended(), "steal above 5%")
	assert.False(t, contentionOf(a, a).Known, "no time passed")

	// The report warns about a contended run, and only about it.
	wl, err := Synthetic(2, 2, 1)
	require.NoError(t, err)
	rep := &Report{Title: "t", Workload: wl, Info: gomps.Info{Backend: "cpu"}, Runs: []RunReport{
		{Config: RunConfig{PairsPerRequest: 2, Concurrency: 1}, Measure: &PhaseSummary{Cores: 2, Contention: c}},
		{Config: RunConfig{PairsPerRequest: 2, Concurrency: 2}, Measure: &PhaseSummary{Cores: 2, Contention: quiet}},
	}}
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, rep))
	out := buf.String()
	assert.Contains(t, out, "> **Warning: the machine was contended during run 1** (batch=2, conc=1): other processes used 15.0% of its CPU time (threshold 10%) and steal took 2.0% (threshold 5%).")
	assert.NotContains(t, out, "during run 2")
	assert.Contains(t, out, "**Machine during the run:** other processes used 5.0% of the CPU time of all 2 CPUs, steal 1.0% (thresholds 10% and 5%)\n")
}

func TestBatchSizes(t *testing.T) {
	// Bounds 1..8 exact, then 10, 12, 14, 16; counts per bucket, the last +Inf.
	bounds := []float64{1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16}
	before := gomps.HistSnapshot{Buckets: bounds, Counts: []uint64{1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0}}
	after := gomps.HistSnapshot{Buckets: bounds, Counts: []uint64{4, 0, 0, 0, 0, 0, 0, 2, 5, 0, 0, 1, 3}}
	assert.Equal(t, []BatchBucket{{1, 1, 3}, {9, 10, 5}, {15, 16, 1}, {17, math.MaxInt, 3}}, batchSizes(before, after))
}
