package benchreport

import (
	"math"
	"runtime"
	"sort"
	"time"

	"github.com/gomps/gomps/gomps"
)

// Dist summarises a sample exactly: percentiles by nearest rank on the
// sorted values, Std the population standard deviation.
type Dist struct {
	N                       int
	Mean, Min, Max, Std     float64
	P50, P75, P90, P95, P99 float64
}

// DistOf summarises xs (not modified). The zero Dist for no values.
func DistOf(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	d := Dist{N: len(s), Mean: sum / float64(len(s)), Min: s[0], Max: s[len(s)-1]}
	var ss float64
	for _, x := range s {
		ss += (x - d.Mean) * (x - d.Mean)
	}
	d.Std = math.Sqrt(ss / float64(len(s)))
	q := func(p float64) float64 { return s[nearestRank(len(s), p)] }
	d.P50, d.P75, d.P90, d.P95, d.P99 = q(0.50), q(0.75), q(0.90), q(0.95), q(0.99)
	return d
}

// Pearson is the correlation coefficient of x and y (NaN when undefined).
func Pearson(x, y []float64) float64 {
	n := float64(len(x))
	if len(x) < 2 || len(x) != len(y) {
		return math.NaN()
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}

// LatencyBucket is one row of the latency-vs-throughput table: requests
// whose latency falls in [Lo, Hi) ms, and their per-request throughput.
type LatencyBucket struct {
	Label  string
	Lo, Hi float64 // ms; Hi = +Inf for the last
	TP     Dist    // per-request pairs/s of the requests in the bucket
}

// EngineDelta is the engine's counters over a phase (After - Before).
type EngineDelta struct {
	Requests, Succeeded      uint64
	Pairs, PairsScored       uint64
	Batches, Rows            uint64
	RealTokens, PaddedTokens uint64
	MixedBatches             uint64
	InstanceBusy             []time.Duration
}

func engineDelta(a, b gomps.Stats) EngineDelta {
	d := EngineDelta{
		Requests: b.Requests - a.Requests, Succeeded: b.Succeeded - a.Succeeded,
		Pairs: b.Pairs - a.Pairs, PairsScored: b.PairsScored - a.PairsScored,
		Batches: b.Batches - a.Batches, Rows: b.Rows - a.Rows,
		RealTokens: b.RealTokens - a.RealTokens, PaddedTokens: b.PaddedTokens - a.PaddedTokens,
		MixedBatches: b.MixedBatches - a.MixedBatches,
	}
	for i := range b.Instances {
		busy := b.Instances[i].Busy
		if i < len(a.Instances) {
			busy -= a.Instances[i].Busy
		}
		d.InstanceBusy = append(d.InstanceBusy, busy)
	}
	return d
}

// PaddingWaste is 1 - real/padded tokens (NaN without batches).
func (d EngineDelta) PaddingWaste() float64 {
	if d.PaddedTokens == 0 {
		return math.NaN()
	}
	return 1 - float64(d.RealTokens)/float64(d.PaddedTokens)
}

// Point is one interval of the time series.
type Point struct {
	Run         int      `json:"run"`
	T           float64  `json:"t_s"`      // end of the interval, seconds from the phase start
	Window      float64  `json:"window_s"` // interval length
	Requests    int      `json:"requests"` // calls that returned in the interval
	Pairs       int      `json:"pairs"`
	PairsPerSec float64  `json:"pairs_per_s"`
	LatP50      *float64 `json:"lat_p50_ms"` // of the calls that returned in the interval; null if none
	LatP95      *float64 `json:"lat_p95_ms"`
	LatP99      *float64 `json:"lat_p99_ms"`
	QueueDepth  int64    `json:"queue_depth_pairs"` // engine queue at the end of the interval
	InFlight    int      `json:"in_flight_calls"`
	Batches     uint64   `json:"batches"`
	Rows        uint64   `json:"rows"`
	Waste       *float64 `json:"padding_waste"` // 1 - real/padded of the interval's batches; null without batches
	CPUPct      *float64 `json:"cpu_pct"`       // process CPU time / interval x 100: % of one core
	RSSMB       *float64 `json:"rss_mb"`
	// Partial marks an interval shorter than 90% of the sampling interval
	// (the last one of a phase, cut short when the phase ends): its rates
	// swing with its length, so plots and per-interval statistics skip it.
	Partial bool `json:"partial,omitempty"`
}

// PhaseSummary holds a phase's figures.
type PhaseSummary struct {
	Requests, Pairs                         int
	Wall                                    float64 // s
	Latency                                 Dist    // ms, per request, caller's clock
	TPOverall                               float64 // pairs / wall, pairs/s ("TP Avg")
	TPPerRequest                            Dist    // pairs / latency of each request, pairs/s
	Tokenize, Queue, Inference, Unexplained Dist    // ms per request (library Timings; Unexplained = latency - the three)
	UnexplainedShare                        float64 // mean Unexplained / mean latency
	Buckets                                 []LatencyBucket
	Correlation                             float64 // Pearson(latency, per-request throughput)
	Engine                                  EngineDelta
	Cores                                   int
	CPU                                     time.Duration // process CPU time over the phase; -1 if unavailable
	CPUPct                                  float64       // CPU / wall x 100: % of one core (NaN if unavailable)
	CPUWindows                              Dist          // per-interval CPU %
	RSSWindows                              Dist          // per-sample RSS, MB (N = 0 if unavailable)
	RSSReason                               string
	GPUWindows                              Dist    // per-sample GPU memory, MB (N = 0 if unavailable)
	GPUReason                               string  // why GPU memory is unavailable
	HWMMB                                   float64 // -1 if unavailable
	WasteWindows                            Dist    // per-interval padding waste (intervals with batches)
	Series                                  []Point
	BatchSizes                              []BatchBucket // forward calls by rows, over the phase
	Contention                              Contention    // other processes' and steal's share of the machine
}

// BatchBucket counts the forward calls whose row count is in [Lo, Hi].
type BatchBucket struct {
	Lo, Hi  int
	Batches uint64
}

// batchSizes turns the engine's batch-size histogram over a phase (After -
// Before) into the buckets that hold batches. The histogram's buckets are
// exact up to 8 rows and quarter-octaves above.
func batchSizes(a, b gomps.HistSnapshot) []BatchBucket {
	var out []BatchBucket
	lo := 1
	for i, c := range b.Counts {
		if i < len(a.Counts) {
			c -= a.Counts[i]
		}
		hi := math.MaxInt
		if i < len(b.Buckets) {
			hi = int(b.Buckets[i])
		}
		if c > 0 {
			out = append(out, BatchBucket{Lo: lo, Hi: hi, Batches: c})
		}
		lo = hi + 1
	}
	return out
}

// Summarize turns a phase into figures; run numbers the time-series points.
func Summarize(p *Phase, run int) *PhaseSummary {
	s := &PhaseSummary{Requests: len(p.Records), Wall: p.Wall.Seconds(), Cores: runtime.NumCPU(), CPU: -1,
		CPUPct: math.NaN(), HWMMB: -1, Correlation: math.NaN(), UnexplainedShare: math.NaN()}
	n := len(p.Records)
	lat := make([]float64, n)
	tp := make([]float64, n)
	tok, que, inf, unx := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, r := range p.Records {
		s.Pairs += r.Pairs
		lat[i] = ms(r.Latency)
		tp[i] = float64(r.Pairs) / r.Latency.Seconds()
		tok[i], que[i], inf[i] = ms(r.Timings.Tokenize), ms(r.Timings.Queue), ms(r.Timings.Inference)
		unx[i] = lat[i] - tok[i] - que[i] - inf[i]
	}
	s.Latency, s.TPPerRequest = DistOf(lat), DistOf(tp)
	s.Tokenize, s.Queue, s.Inference, s.Unexplained = DistOf(tok), DistOf(que), DistOf(inf), DistOf(unx)
	if s.Wall > 0 {
		s.TPOverall = float64(s.Pairs) / s.Wall
	}
	if s.Latency.Mean > 0 {
		s.UnexplainedShare = s.Unexplained.Mean / s.Latency.Mean
	}
	s.Correlation = Pearson(lat, tp)
	s.Buckets = latencyBuckets(lat, tp, s.Latency)
	s.Engine = engineDelta(p.Before.Stats, p.After.Stats)
	if p.Before.CPU >= 0 && p.After.CPU >= 0 && s.Wall > 0 {
		s.CPU = p.After.CPU - p.Before.CPU
		s.CPUPct = 100 * s.CPU.Seconds() / s.Wall
	}
	if p.HWM >= 0 {
		s.HWMMB = mb(p.HWM)
	}
	s.Series = series(p, run)
	var cpu, rss, gpu, waste []float64
	for _, pt := range s.Series {
		if pt.Partial {
			continue
		}
		if pt.CPUPct != nil {
			cpu = append(cpu, *pt.CPUPct)
		}
		if pt.Waste != nil {
			waste = append(waste, *pt.Waste)
		}
	}
	for _, smp := range p.Samples {
		if smp.RSS >= 0 {
			rss = append(rss, mb(smp.RSS))
		} else if s.RSSReason == "" {
			s.RSSReason = smp.RSSReason
		}
		if !math.IsNaN(smp.GPUMB) {
			gpu = append(gpu, smp.GPUMB)
		} else if s.GPUReason == "" {
			s.GPUReason = smp.GPUReason
		}
	}
	s.CPUWindows, s.RSSWindows, s.WasteWindows = DistOf(cpu), DistOf(rss), DistOf(waste)
	s.GPUWindows = DistOf(gpu)
	s.BatchSizes = batchSizes(p.Before.Stats.BatchSize, p.After.Stats.BatchSize)
	switch {
	case p.Before.SysReason != "":
		s.Contention.Reason = p.Before.SysReason
	case p.After.SysReason != "":
		s.Contention.Reason = p.After.SysReason
	default:
		s.Contention = contentionOf(p.Before.Sys, p.After.Sys)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func mb(b int64) float64         { return float64(b) / (1 << 20) }

// latencyBuckets splits requests at the latency P50, P75 and P90 (the rows
// of the report's latency-vs-throughput table).
func latencyBuckets(lat, tp []float64, d Dist) []LatencyBucket {
	if d.N == 0 {
		return nil
	}
	inf := math.Inf(1)
	bs := []LatencyBucket{
		{Label: "P50", Lo: math.Inf(-1), Hi: d.P50},
		{Label: "P50-P75", Lo: d.P50, Hi: d.P75},
		{Label: "P75-P90", Lo: d.P75, Hi: d.P90},
		{Label: "P90+", Lo: d.P90, Hi: inf},
	}
	vals := make([][]float64, len(bs))
	for i, l := range lat {
		for k := range bs {
			if l >= bs[k].Lo && (l < bs[k].Hi || k == len(bs)-1) {
				vals[k] = append(vals[k], tp[i])
				break
			}
		}
	}
	for k := range bs {
		bs[k].TP = DistOf(vals[k])
	}
	return bs
}

// series cuts the phase at its samples: interval k ends at sample k.
func series(p *Phase, run int) []Point {
	var pts []Point
	ri := 0
	for k := 1; k < len(p.Samples); k++ {
		a, b := p.Samples[k-1], p.Samples[k]
		w := (b.At - a.At).Seconds()
		if w <= 0 {
			continue
		}
		pt := Point{Run: run, T: b.At.Seconds(), Window: w, QueueDepth: b.Stats.QueueSize, InFlight: b.InFlight,
			Partial: p.Every > 0 && w < 0.9*p.Every.Seconds()}
		var lat []float64
		for ; ri < len(p.Records) && (p.Records[ri].End <= b.At || k == len(p.Samples)-1); ri++ {
			lat = append(lat, ms(p.Records[ri].Latency))
			pt.Pairs += p.Records[ri].Pairs
		}
		pt.Requests = len(lat)
		pt.PairsPerSec = float64(pt.Pairs) / w
		if len(lat) > 0 {
			d := DistOf(lat)
			pt.LatP50, pt.LatP95, pt.LatP99 = &d.P50, &d.P95, &d.P99
		}
		e := engineDelta(a.Stats, b.Stats)
		pt.Batches, pt.Rows = e.Batches, e.Rows
		if e.PaddedTokens > 0 {
			v := e.PaddingWaste()
			pt.Waste = &v
		}
		if a.CPU >= 0 && b.CPU >= 0 {
			v := 100 * (b.CPU - a.CPU).Seconds() / w
			pt.CPUPct = &v
		}
		if b.RSS >= 0 {
			v := mb(b.RSS)
			pt.RSSMB = &v
		}
		pts = append(pts, pt)
	}
	return pts
}

func sortRecords(rs []Record) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].End < rs[j].End })
}

// Latencies returns the phase's request latencies in ms, in End order.
func Latencies(p *Phase) []float64 {
	out := make([]float64, len(p.Records))
	for i, r := range p.Records {
		out[i] = ms(r.Latency)
	}
	return out
}
