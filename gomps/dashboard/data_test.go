package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/gomps"
)

func TestQuantileLikeHistogramQuantile(t *testing.T) {
	// 10 observations: 2 in (0,1], 5 in (1,2], 3 in (2,4].
	h := histo{upper: []float64{1, 2, 4}, cum: []float64{2, 7, 10}, count: 10, sum: 20}
	for _, c := range []struct{ q, want float64 }{
		{0.1, 0.5},                // rank 1 of 2 in the first bucket, lower bound 0
		{0.2, 1},                  // rank 2: the first bucket's top
		{0.5, 1.6},                // rank 5: 3 of 5 into (1,2]
		{0.95, 3.666666666666667}, // rank 9.5: 2.5 of 3 into (2,4]
		{1, 4},
	} {
		assert.InDelta(t, c.want, h.quantile(c.q), 1e-12, "q=%v", c.q)
	}
	over := histo{upper: []float64{1, 2}, cum: []float64{1, 1}, count: 5}
	assert.Equal(t, 2.0, over.quantile(0.9), "rank in +Inf: the highest finite bound")
	assert.True(t, math.IsNaN(histo{upper: []float64{1}, cum: []float64{0}}.quantile(0.5)), "no observations")
	assert.Equal(t, 2.0, h.mean())
}

// fakeEngine registers metrics under the engine's names, so gather and
// derive run on real Prometheus families.
type fakeEngine struct {
	reg                  *prometheus.Registry
	success, fails, cpu  prometheus.Counter
	real, padded         prometheus.Counter
	queue, rss           prometheus.Gauge
	reqDur, rows, tokens prometheus.Histogram
}

func newFakeEngine() *fakeEngine {
	f := &fakeEngine{reg: prometheus.NewRegistry()}
	c := func(name string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "x"})
	}
	g := func(name string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "x"})
	}
	h := func(name string, b []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: "x", Buckets: b})
	}
	f.success, f.fails, f.cpu = c(mSuccess), c(mFailures), c(mCPU)
	f.real, f.padded = c(mRealTokens), c(mPadTokens)
	f.queue, f.rss = g(mQueueSize), g(mRSS)
	f.reqDur = h(mRequestDur, []float64{0.001, 0.002, 0.004, 0.008})
	f.rows = h(mBatchSize, []float64{1, 2, 4, 8, 16, 32, 64})
	f.tokens = h(mBatchTokens, []float64{256, 512, 1024, 2048})
	f.reg.MustRegister(f.success, f.fails, f.cpu, f.real, f.padded, f.queue, f.rss, f.reqDur, f.rows, f.tokens)
	return f
}

func at(t *testing.T, g prometheus.Gatherer, when time.Time) *sample {
	t.Helper()
	s, err := gather(g, nil)
	require.NoError(t, err)
	s.t = when
	return s
}

func TestDerive(t *testing.T) {
	f := newFakeEngine()
	t0 := time.Unix(1_800_000_000, 0)
	f.success.Add(3)
	f.rows.Observe(8)
	a := at(t, f.reg, t0)

	// 2 s later: 10 requests, 4 batches of 16 rows, 3 failures.
	f.success.Add(10)
	f.fails.Add(3)
	for range 4 {
		f.rows.Observe(16)
		f.tokens.Observe(800)
	}
	for _, d := range []float64{0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.003, 0.003, 0.003, 0.003, 0.006} {
		f.reqDur.Observe(d)
	}
	f.real.Add(2400)
	f.padded.Add(3200)
	f.cpu.Add(3) // 1.5 cores
	f.queue.Set(40)
	f.rss.Set(100 << 20)
	b := at(t, f.reg, t0.Add(2*time.Second))

	d := derive(a, b)
	v := func(x num) float64 {
		require.NotNil(t, x)
		return *x
	}
	assert.InDelta(t, 32.0, v(d.PairsPerS), 1e-9, "64 rows in 2 s")
	assert.InDelta(t, 5.0, v(d.RequestsPerS), 1e-9)
	assert.InDelta(t, 1.5, v(d.ErrorsPerS), 1e-9)
	assert.InDelta(t, 10.0, v(d.Requests), 1e-9)
	assert.InDelta(t, 1.0+1.0*(5-0)/5, v(d.LatencyP50), 1e-9, "p50 = the top of (1,2] ms")
	assert.InDelta(t, 4.0+4.0*(9.5-9)/1, v(d.LatencyP95), 1e-9, "p95 half-way into (4,8] ms")
	assert.InDelta(t, 16.0, v(d.BatchRows), 1e-9)
	assert.InDelta(t, 800.0, v(d.BatchTokens), 1e-9)
	assert.InDelta(t, 25.0, v(d.PaddingWaste), 1e-9, "1 - 2400/3200")
	assert.InDelta(t, 150.0, v(d.CPU), 1e-9)
	assert.InDelta(t, 40.0, v(d.QueuePairs), 1e-9)
	assert.InDelta(t, 100.0, v(d.RSS), 1e-9)
	assert.Nil(t, d.TokenizeMs, "no such histogram: null, not 0")

	idle := derive(b, at(t, f.reg, t0.Add(3*time.Second)))
	assert.Nil(t, idle.LatencyP50, "no requests: no percentile")
	assert.Equal(t, 0.0, v(idle.PairsPerS), "idle throughput is 0")
	js, err := json.Marshal(idle)
	require.NoError(t, err)
	assert.Contains(t, string(js), `"latency_p50_ms":null`)
}

func TestBuildWindow(t *testing.T) {
	f := newFakeEngine()
	t0 := time.Unix(1_800_000_000, 0)
	var ss []*sample
	for i := 0; i <= 600; i++ { // 10 min at 1 s, 10 rows a second
		f.rows.Observe(10)
		ss = append(ss, at(t, f.reg, t0.Add(time.Duration(i)*time.Second)))
	}
	for _, c := range []struct {
		window   time.Duration
		wantFrom time.Time
	}{
		{time.Minute, t0.Add(540 * time.Second)},
		{5 * time.Minute, t0.Add(300 * time.Second)},
		{time.Hour, t0}, // clamped to the history
	} {
		d := build(ss, c.window, time.Second)
		assert.Equal(t, unixMs(c.wantFrom), d.Window.From, "window %v", c.window)
		assert.Equal(t, unixMs(t0.Add(600*time.Second)), d.Window.To)
		require.NotNil(t, d.Summary.PairsPerS)
		assert.InDelta(t, 10.0, *d.Summary.PairsPerS, 1e-9)
		assert.LessOrEqual(t, len(d.Series), maxPoints, "window %v", c.window)
		assert.GreaterOrEqual(t, len(d.Series), min(int(c.window/time.Second), 600)/4, "window %v", c.window)
		for i := 1; i < len(d.Series); i++ {
			assert.Less(t, d.Series[i-1].T, d.Series[i].T, "series in time order")
		}
		assert.Equal(t, d.Window.To, d.Series[len(d.Series)-1].T, "the series ends at the newest sample")
	}
	assert.Empty(t, build(nil, time.Minute, time.Second).Series)
	one := build(ss[:1], time.Minute, time.Second)
	assert.Nil(t, one.Summary.PairsPerS, "one sample: no rates yet")
}

func TestDashboardHTTP(t *testing.T) {
	f := newFakeEngine()
	d, err := New(Config{Info: gomps.Info{Model: "m", SHA256: strings.Repeat("ab", 32), Backend: "cpu", Precision: "f32", Instances: 2,
		Threads: 4, Batcher: "adaptive"}, Version: "v1", Gatherer: f.reg, Interval: 10 * time.Millisecond, Keep: time.Second})
	require.NoError(t, err)
	defer d.Close()
	defer d.Close() // idempotent
	f.rows.Observe(5)
	time.Sleep(50 * time.Millisecond)

	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "text/html")
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
	body := rec.Body.String()
	assert.Equal(t, string(page), body)
	// Nothing is loaded from elsewhere: no src/href attributes, no URLs but
	// the SVG namespace name (an identifier, never fetched).
	assert.NotRegexp(t, regexp.MustCompile(`(?i)\s(src|href)\s*=`), body)
	urls := regexp.MustCompile(`https?://[^"'\s)]+`).FindAllString(body, -1)
	for _, u := range urls {
		assert.Equal(t, "http://www.w3.org/2000/svg", u)
	}

	rec = httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard/data?window=60", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var got dataJSON
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.Equal(t, "m", got.Config.Model)
	assert.Equal(t, 2, got.Config.Instances)
	assert.Equal(t, "v1", got.Config.Version)
	assert.Equal(t, Windows, got.Windows)
	assert.Equal(t, 60, got.Window.Seconds)
	assert.NotEmpty(t, got.Series)
	assert.LessOrEqual(t, len(got.Series), d.keep, "the ring is bounded")

	for _, bad := range []string{"0", "x", "999999"} {
		rec = httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard/data?window="+bad, nil))
		assert.Equal(t, http.StatusBadRequest, rec.Code, bad)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"), "errors are JSON")
		assert.JSONEq(t, `{"error":"window: want seconds, 1..86400","error_type":"validation"}`, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("POST", "/dashboard", nil))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	assert.JSONEq(t, `{"error":"method POST not allowed; use GET","error_type":"validation"}`, rec.Body.String())

	_, err = New(Config{})
	assert.Error(t, err, "no gatherer")
}

// A kept sample shares its bucket bounds with the previous one.
func TestGatherSharesBounds(t *testing.T) {
	f := newFakeEngine()
	a, err := gather(f.reg, nil)
	require.NoError(t, err)
	f.rows.Observe(3)
	b, err := gather(f.reg, a)
	require.NoError(t, err)
	require.NotEmpty(t, b.hists[mBatchSize].upper)
	assert.Same(t, &a.hists[mBatchSize].upper[0], &b.hists[mBatchSize].upper[0])
	assert.Equal(t, 1.0, b.hists[mBatchSize].count-a.hists[mBatchSize].count)
}
