package dashboard

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The metrics a sample keeps: the engine's (gomps/internal/engine) and the
// process collector's.
const (
	mRequestDur  = "gomps_request_duration_seconds"
	mTokenizeDur = "gomps_tokenization_duration_seconds"
	mQueueDur    = "gomps_queue_duration_seconds"
	mInferDur    = "gomps_inference_duration_seconds"
	mBatchSize   = "gomps_batch_size"
	mBatchTokens = "gomps_batch_tokens"
	mQueueSize   = "gomps_queue_size"
	mSuccess     = "gomps_request_success_total"
	mFailures    = "gomps_request_failures_total"
	mRealTokens  = "gomps_batch_real_tokens_total"
	mPadTokens   = "gomps_batch_padded_tokens_total"
	mCPU         = "process_cpu_seconds_total"
	mRSS         = "process_resident_memory_bytes"
)

var (
	keepScalars = map[string]bool{mQueueSize: true, mSuccess: true, mFailures: true, mRealTokens: true, mPadTokens: true, mCPU: true, mRSS: true}
	keepHists   = map[string]bool{mRequestDur: true, mTokenizeDur: true, mQueueDur: true, mInferDur: true, mBatchSize: true, mBatchTokens: true}
)

// histo is one histogram at one instant: cumulative counts per upper bound
// (the +Inf bucket is count).
type histo struct {
	upper []float64
	cum   []float64
	count float64
	sum   float64
}

// sample is the kept metrics at one instant: t is read just before Gather.
type sample struct {
	t       time.Time
	scalars map[string]float64 // counters and gauges, summed over labels
	hists   map[string]histo
}

// gather reads g. Bucket bounds equal to prev's are shared with it, so a
// kept sample costs its counts only.
func gather(g prometheus.Gatherer, prev *sample) (*sample, error) {
	t := time.Now()
	mfs, err := g.Gather()
	if len(mfs) == 0 {
		return nil, err // a partial gather still has values worth keeping
	}
	s := &sample{t: t, scalars: map[string]float64{}, hists: map[string]histo{}}
	for _, mf := range mfs {
		name := mf.GetName()
		switch {
		case keepScalars[name]:
			var v float64
			for _, m := range mf.GetMetric() {
				switch mf.GetType() {
				case dto.MetricType_COUNTER:
					v += m.GetCounter().GetValue()
				case dto.MetricType_GAUGE:
					v += m.GetGauge().GetValue()
				}
			}
			s.scalars[name] = v
		case keepHists[name] && mf.GetType() == dto.MetricType_HISTOGRAM && len(mf.GetMetric()) == 1:
			h := mf.GetMetric()[0].GetHistogram()
			x := histo{count: float64(h.GetSampleCount()), sum: h.GetSampleSum()}
			for _, b := range h.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					continue
				}
				x.upper = append(x.upper, b.GetUpperBound())
				x.cum = append(x.cum, float64(b.GetCumulativeCount()))
			}
			if prev != nil {
				if p, ok := prev.hists[name]; ok && slices.Equal(p.upper, x.upper) {
					x.upper = p.upper
				}
			}
			s.hists[name] = x
		}
	}
	return s, err
}

// delta is the histogram of the observations between a and b.
func delta(a, b histo) histo {
	d := histo{upper: b.upper, cum: make([]float64, len(b.cum)), count: b.count - a.count, sum: b.sum - a.sum}
	for i := range b.cum {
		d.cum[i] = b.cum[i]
		if i < len(a.cum) && len(a.upper) == len(b.upper) {
			d.cum[i] -= a.cum[i]
		}
	}
	return d
}

// quantile estimates the q-quantile as Prometheus' histogram_quantile does:
// linear interpolation inside the bucket holding the rank (the first
// bucket's lower bound is 0), and the highest finite bound when the rank
// falls in the +Inf bucket. NaN without observations.
func (h histo) quantile(q float64) float64 {
	if h.count <= 0 || len(h.upper) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	i := sort.Search(len(h.cum), func(i int) bool { return h.cum[i] >= rank })
	if i == len(h.cum) {
		return h.upper[len(h.upper)-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.upper[i-1], h.cum[i-1]
	}
	in := h.cum[i] - below
	if in <= 0 {
		return h.upper[i]
	}
	return lo + (h.upper[i]-lo)*(rank-below)/in
}

func (h histo) mean() float64 {
	if h.count <= 0 {
		return math.NaN()
	}
	return h.sum / h.count
}

// num is a JSON number or null (for NaN and infinities: no data).
type num = *float64

func n(x float64) num {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// figures are the derived values between two samples (or, for the gauges,
// at the later one). Rates are per second, durations in milliseconds.
type figures struct {
	T            float64 `json:"t"` // unix ms of the later sample
	PairsPerS    num     `json:"pairs_per_s"`
	RequestsPerS num     `json:"requests_per_s"`
	ErrorsPerS   num     `json:"errors_per_s"`
	LatencyP50   num     `json:"latency_p50_ms"`
	LatencyP95   num     `json:"latency_p95_ms"`
	LatencyP99   num     `json:"latency_p99_ms"`
	LatencyMean  num     `json:"latency_mean_ms"`
	TokenizeMs   num     `json:"tokenize_ms"`
	QueueMs      num     `json:"queue_ms"`
	InferenceMs  num     `json:"inference_ms"`
	QueuePairs   num     `json:"queue_pairs"`
	BatchRows    num     `json:"batch_rows"`
	BatchTokens  num     `json:"batch_tokens"`
	PaddingWaste num     `json:"padding_waste_pct"`
	CPU          num     `json:"cpu_pct"`
	RSS          num     `json:"rss_mib"`
	Requests     num     `json:"requests"` // completed requests in the interval
}

func unixMs(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

func derive(a, b *sample) figures {
	dt := b.t.Sub(a.t).Seconds()
	rate := func(name string) float64 {
		bv, ok := b.scalars[name]
		if !ok || dt <= 0 {
			return math.NaN()
		}
		return (bv - a.scalars[name]) / dt
	}
	h := func(name string) histo { return delta(a.hists[name], b.hists[name]) }
	ms := func(x float64) num { return n(1000 * x) }
	f := figures{T: unixMs(b.t)}
	rows := h(mBatchSize)
	f.PairsPerS = n(rows.sum / dt) // rows forwarded: rate(gomps_batch_size_sum)
	f.RequestsPerS = n(rate(mSuccess))
	f.ErrorsPerS = n(rate(mFailures))
	lat := h(mRequestDur)
	f.Requests = n(lat.count)
	f.LatencyP50, f.LatencyP95, f.LatencyP99 = ms(lat.quantile(0.50)), ms(lat.quantile(0.95)), ms(lat.quantile(0.99))
	f.LatencyMean = ms(lat.mean())
	f.TokenizeMs, f.QueueMs, f.InferenceMs = ms(h(mTokenizeDur).mean()), ms(h(mQueueDur).mean()), ms(h(mInferDur).mean())
	if v, ok := b.scalars[mQueueSize]; ok {
		f.QueuePairs = n(v)
	}
	f.BatchRows = n(rows.mean())
	f.BatchTokens = n(h(mBatchTokens).mean())
	if pad := b.scalars[mPadTokens] - a.scalars[mPadTokens]; pad > 0 {
		f.PaddingWaste = n(100 * (1 - (b.scalars[mRealTokens]-a.scalars[mRealTokens])/pad))
	}
	f.CPU = n(100 * rate(mCPU))
	if v, ok := b.scalars[mRSS]; ok {
		f.RSS = n(v / (1 << 20))
	}
	return f
}

// dataJSON is the body of GET /dashboard/data.
type dataJSON struct {
	Config    configJSON `json:"config"`
	Windows   []int      `json:"windows"`
	Now       float64    `json:"now"` // unix ms of the latest sample
	IntervalS float64    `json:"interval_s"`
	Window    windowJSON `json:"window"`
	Summary   figures    `json:"summary"`
	Series    []figures  `json:"series"`
	Error     string     `json:"error,omitempty"`
}

type windowJSON struct {
	Seconds int     `json:"seconds"` // asked for
	From    float64 `json:"from"`    // unix ms of the earlier sample the summary uses
	To      float64 `json:"to"`      // unix ms of the later one
}

type configJSON struct {
	Model     string `json:"model"`
	SHA256    string `json:"sha256"`
	TestModel bool   `json:"test_model"`
	Backend   string `json:"backend"`
	ISA       string `json:"isa"`
	Precision string `json:"precision"`
	Instances int    `json:"instances"`
	Threads   int    `json:"threads"`
	Batcher   string `json:"batcher"`
	MaxBatch  int    `json:"max_batch"`
	MaxLength int    `json:"max_length"`
	Version   string `json:"version"`
}

// maxPoints bounds the points of a series; longer windows use wider steps.
const maxPoints = 240

// smoothSamples is the least number of sample intervals a series point
// covers: a point at t shows the rates, means and percentiles over
// (t - 5 intervals, t], so sparse events read as a level, not as spikes.
const smoothSamples = 5

// build derives the summary of the last window (from the oldest sample in
// it to the newest) and a series of at most maxPoints points.
func build(samples []*sample, window, interval time.Duration) dataJSON {
	out := dataJSON{IntervalS: interval.Seconds(), Window: windowJSON{Seconds: int(window / time.Second)}, Series: []figures{}}
	if len(samples) == 0 {
		return out
	}
	last := samples[len(samples)-1]
	out.Now = unixMs(last.t)
	start := last.t.Add(-window)
	first := sort.Search(len(samples), func(i int) bool { return !samples[i].t.Before(start) })
	if first >= len(samples)-1 {
		first = max(0, len(samples)-2)
	}
	a := samples[first]
	out.Window.From, out.Window.To = unixMs(a.t), unixMs(last.t)
	if a != last {
		out.Summary = derive(a, last)
	} else {
		out.Summary.T = unixMs(last.t)
	}
	// Series: one point every `step` samples, ending at the newest, each
	// over the preceding max(step, smoothSamples) intervals.
	span := len(samples) - 1 - first
	step := max(1, (span+maxPoints-1)/maxPoints)
	back := max(step, smoothSamples)
	for i := len(samples) - 1; i-step >= first; i -= step {
		out.Series = append(out.Series, derive(samples[max(0, i-back)], samples[i]))
	}
	for l, r := 0, len(out.Series)-1; l < r; l, r = l+1, r-1 {
		out.Series[l], out.Series[r] = out.Series[r], out.Series[l]
	}
	return out
}
