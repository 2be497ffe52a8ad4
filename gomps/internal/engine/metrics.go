package engine

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, fixed and modelled on text-embeddings-inference's te_*
// family. Durations are in seconds.
const (
	MetricRequestDuration      = "gomps_request_duration_seconds"
	MetricTokenizationDuration = "gomps_tokenization_duration_seconds"
	MetricQueueDuration        = "gomps_queue_duration_seconds"
	MetricInferenceDuration    = "gomps_inference_duration_seconds"
	MetricBatchSize            = "gomps_batch_size"
	MetricBatchTokens          = "gomps_batch_tokens"
	MetricPaddingWaste         = "gomps_padding_waste_ratio"
	MetricQueueSize            = "gomps_queue_size"
	MetricRequests             = "gomps_requests_total"
	MetricRequestSuccess       = "gomps_request_success_total"
	MetricRequestFailures      = "gomps_request_failures_total"
	MetricPairs                = "gomps_pairs_total"
	MetricPairsDropped         = "gomps_pairs_dropped_total"
	MetricBatches              = "gomps_batches_total"
	MetricBatchesMixed         = "gomps_batches_mixed_total"
	MetricTokensReal           = "gomps_batch_real_tokens_total"
	MetricTokensPadded         = "gomps_batch_padded_tokens_total"
)

// Failure reasons, the values of the "reason" label of
// gomps_request_failures_total and the keys of Stats.Failures.
const (
	ReasonOverloaded   = "overloaded"
	ReasonClosed       = "closed"
	ReasonCancelled    = "cancelled"
	ReasonTokenization = "tokenization"
	ReasonTooLong      = "too_long"
	ReasonBackend      = "backend"
)

var failureReasons = [...]string{ReasonOverloaded, ReasonClosed, ReasonCancelled, ReasonTokenization, ReasonTooLong, ReasonBackend}

func reasonIndex(reason string) int {
	for i, r := range failureReasons {
		if r == reason {
			return i
		}
	}
	panic("engine: unknown failure reason " + reason)
}

// hist is a lock-free histogram with fixed upper bounds. Observations go to
// atomic bucket counters; the same counters feed Stats (quantiles by
// interpolation inside a bucket) and the Prometheus exposition (an exported
// subset of the bounds, cumulated at scrape time). Its zero value is not
// usable; build it with newHist.
type hist struct {
	bounds []float64 // ascending upper bounds; an implicit +Inf bucket follows
	export []int     // indices into bounds exposed to Prometheus
	counts []atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
	max    atomic.Uint64 // float64 bits
}

func newHist(bounds []float64, exportEvery int) *hist {
	h := &hist{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	for i := 0; i < len(bounds); i += exportEvery {
		h.export = append(h.export, i)
	}
	return h
}

// geometric returns n bounds start*factor^k.
func geometric(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start * math.Pow(factor, float64(i))
	}
	return b
}

func (h *hist) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	for { // observations are >= 0, so the zero value is a valid initial max
		old := h.max.Load()
		if math.Float64frombits(old) >= v || h.max.CompareAndSwap(old, math.Float64bits(v)) {
			break
		}
	}
}

// HistSnapshot summarises one histogram. Quantiles are estimated by linear
// interpolation inside the bucket that holds them (bucket bounds grow by
// 2^(1/4), about 19%, for durations) and clamped to the exact maximum.
type HistSnapshot struct {
	Count              uint64
	Sum, Mean, Max     float64
	P50, P90, P95, P99 float64
	Buckets            []float64 // upper bounds; the last bucket (+Inf) is implicit
	Counts             []uint64  // per bucket (not cumulative), len(Buckets)+1
}

func (h *hist) snapshot() HistSnapshot {
	s := HistSnapshot{Buckets: h.bounds, Counts: make([]uint64, len(h.counts))}
	var n uint64
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		n += s.Counts[i]
	}
	s.Count = n
	s.Sum = math.Float64frombits(h.sum.Load())
	s.Max = math.Float64frombits(h.max.Load())
	if n > 0 {
		s.Mean = s.Sum / float64(n)
	}
	s.P50, s.P90, s.P95, s.P99 = s.Quantile(0.50), s.Quantile(0.90), s.Quantile(0.95), s.Quantile(0.99)
	return s
}

// Quantile estimates the q-quantile (0 < q <= 1) from the buckets.
func (s HistSnapshot) Quantile(q float64) float64 {
	if s.Count == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	var cum float64
	for i, c := range s.Counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = s.Buckets[i-1]
			}
			hi := s.Max
			if i < len(s.Buckets) {
				hi = min(s.Buckets[i], s.Max)
			}
			if hi < lo {
				return hi
			}
			return lo + (hi-lo)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return s.Max
}

// counters is the engine's single set of books. Stats and the Prometheus
// collector both read these values; nothing is counted twice.
type counters struct {
	requests  atomic.Uint64
	success   atomic.Uint64
	failures  [len(failureReasons)]atomic.Uint64
	pairs     atomic.Uint64 // pairs of admitted requests
	scored    atomic.Uint64 // pairs a backend returned a score for
	dropped   atomic.Uint64 // pairs removed before a backend saw them, cancellation
	abandoned atomic.Uint64 // pairs removed before a backend saw them, failed request
	queued    atomic.Int64  // pairs admitted and not yet dispatched or dropped

	batches      atomic.Uint64
	rows         atomic.Uint64
	mixed        atomic.Uint64
	realTokens   atomic.Uint64
	paddedTokens atomic.Uint64
	failedBatch  atomic.Uint64
	panics       atomic.Uint64

	reqDur, tokDur, queueDur, inferDur *hist
	batchRows, batchTokens, waste      *hist

	slots []slotCounters
}

type slotCounters struct {
	batches, rows atomic.Uint64
	busy          atomic.Int64 // ns inside Forward calls
}

func newCounters(instances int) *counters {
	dur := func() *hist { return newHist(geometric(10e-6, math.Pow(2, 0.25), 96), 4) }
	return &counters{
		reqDur: dur(), tokDur: dur(), queueDur: dur(), inferDur: dur(),
		batchRows:   newHist(sizeBounds(4096), 1),
		batchTokens: newHist(geometric(16, math.Sqrt2, 29), 2),
		waste:       newHist(linear(0.05, 0.05, 20), 1),
		slots:       make([]slotCounters, instances),
	}
}

// sizeBounds returns 1..8 then four steps per doubling up to limit.
func sizeBounds(limit int) []float64 {
	var b []float64
	for v := 1; v <= 8; v++ {
		b = append(b, float64(v))
	}
	for base := 8; base < limit; base *= 2 {
		for k := 1; k <= 4; k++ {
			b = append(b, float64(base+base*k/4))
		}
	}
	return b
}

func linear(start, step float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = math.Round((start+step*float64(i))*1e9) / 1e9
	}
	return b
}

func (c *counters) fail(reason string) {
	c.failures[reasonIndex(reason)].Add(1)
}

// Stats is a point-in-time snapshot of the engine's counters. Counter fields
// only grow; QueueSize is a gauge.
type Stats struct {
	Requests  uint64            // calls admitted or refused (every Score call with at least one passage)
	Succeeded uint64            // calls that returned scores
	Failures  map[string]uint64 // failed calls by reason (Reason* constants)

	Pairs          uint64 // pairs of admitted calls
	PairsScored    uint64 // pairs a backend returned a score for
	PairsDropped   uint64 // pairs removed by cancellation before any backend saw them
	PairsAbandoned uint64 // pairs removed because their request had already failed
	QueueSize      int64  // pairs admitted and not yet handed to a backend

	Batches       uint64 // forward calls
	Rows          uint64 // rows over all forward calls
	MixedBatches  uint64 // batches holding pairs of more than one request
	RealTokens    uint64 // tokens of real (unpadded) rows
	PaddedTokens  uint64 // rows x padded sequence length, summed over batches
	FailedBatches uint64 // forward calls that returned an error or panicked
	Panics        uint64 // forward calls that panicked (the instance was replaced)

	// Instances has one entry per pool slot.
	Instances []InstanceStats

	RequestDuration, TokenizationDuration, QueueDuration, InferenceDuration HistSnapshot // seconds
	BatchSize, BatchTokens, PaddingWaste                                    HistSnapshot
}

// InstanceStats counts one pool slot's forward calls. Busy is the time spent
// in them (thread-budget waits excluded): Busy / wall time is the slot's
// utilisation.
type InstanceStats struct {
	Batches, Rows uint64
	Busy          time.Duration
}

// PaddingWasteRatio is the fraction of forwarded tokens that were padding,
// over all batches: 1 - RealTokens/PaddedTokens.
func (s Stats) PaddingWasteRatio() float64 {
	if s.PaddedTokens == 0 {
		return 0
	}
	return 1 - float64(s.RealTokens)/float64(s.PaddedTokens)
}

func (c *counters) stats() Stats {
	s := Stats{
		Requests:       c.requests.Load(),
		Succeeded:      c.success.Load(),
		Failures:       make(map[string]uint64, len(failureReasons)),
		Pairs:          c.pairs.Load(),
		PairsScored:    c.scored.Load(),
		PairsDropped:   c.dropped.Load(),
		PairsAbandoned: c.abandoned.Load(),
		QueueSize:      c.queued.Load(),
		Batches:        c.batches.Load(),
		Rows:           c.rows.Load(),
		MixedBatches:   c.mixed.Load(),
		RealTokens:     c.realTokens.Load(),
		PaddedTokens:   c.paddedTokens.Load(),
		FailedBatches:  c.failedBatch.Load(),
		Panics:         c.panics.Load(),

		RequestDuration:      c.reqDur.snapshot(),
		TokenizationDuration: c.tokDur.snapshot(),
		QueueDuration:        c.queueDur.snapshot(),
		InferenceDuration:    c.inferDur.snapshot(),
		BatchSize:            c.batchRows.snapshot(),
		BatchTokens:          c.batchTokens.snapshot(),
		PaddingWaste:         c.waste.snapshot(),
	}
	for i, r := range failureReasons {
		s.Failures[r] = c.failures[i].Load()
	}
	s.Instances = make([]InstanceStats, len(c.slots))
	for i := range c.slots {
		s.Instances[i] = InstanceStats{Batches: c.slots[i].batches.Load(), Rows: c.slots[i].rows.Load(),
			Busy: time.Duration(c.slots[i].busy.Load())}
	}
	return s
}

// collector exposes counters as Prometheus metrics. It reads the same
// atomics as Stats at scrape time.
type collector struct {
	c *counters

	reqDur, tokDur, queueDur, inferDur *prometheus.Desc
	batchRows, batchTokens, waste      *prometheus.Desc
	queueSize                          *prometheus.Desc
	requests, success, failures        *prometheus.Desc
	pairs, dropped                     *prometheus.Desc
	batches, mixed, realTok, padTok    *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(c *counters) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		c:           c,
		reqDur:      d(MetricRequestDuration, "End-to-end duration of a Score call."),
		tokDur:      d(MetricTokenizationDuration, "Tokenization of a request, from hand-off to the tokenizer pool until its pairs are assembled."),
		queueDur:    d(MetricQueueDuration, "From a request's enqueue at the batcher until the start of the first batch holding one of its pairs."),
		inferDur:    d(MetricInferenceDuration, "From the start of a request's first batch until the end of its last batch, gaps included."),
		batchRows:   d(MetricBatchSize, "Rows per forward call."),
		batchTokens: d(MetricBatchTokens, "Padded tokens (rows x padded length) per forward call."),
		waste:       d(MetricPaddingWaste, "Fraction of a forward call's tokens that are padding."),
		queueSize:   d(MetricQueueSize, "Pairs admitted and not yet handed to a backend."),
		requests:    d(MetricRequests, "Score calls with at least one passage."),
		success:     d(MetricRequestSuccess, "Score calls that returned scores."),
		failures:    d(MetricRequestFailures, "Score calls that failed, by reason.", "reason"),
		pairs:       d(MetricPairs, "Pairs of admitted Score calls."),
		dropped:     d(MetricPairsDropped, "Pairs removed before reaching a backend, by reason.", "reason"),
		batches:     d(MetricBatches, "Forward calls."),
		mixed:       d(MetricBatchesMixed, "Forward calls holding pairs of more than one request."),
		realTok:     d(MetricTokensReal, "Real (unpadded) tokens forwarded."),
		padTok:      d(MetricTokensPadded, "Padded tokens forwarded (rows x padded length)."),
	}
}

func (k *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{k.reqDur, k.tokDur, k.queueDur, k.inferDur, k.batchRows, k.batchTokens,
		k.waste, k.queueSize, k.requests, k.success, k.failures, k.pairs, k.dropped, k.batches, k.mixed, k.realTok, k.padTok} {
		ch <- d
	}
}

func (k *collector) Collect(ch chan<- prometheus.Metric) {
	c := k.c
	histo := func(d *prometheus.Desc, h *hist) {
		s := h.snapshot()
		buckets := make(map[float64]uint64, len(h.export))
		var cum uint64
		j := 0
		for _, bi := range h.export {
			for ; j <= bi; j++ {
				cum += s.Counts[j]
			}
			buckets[h.bounds[bi]] = cum
		}
		ch <- prometheus.MustNewConstHistogram(d, s.Count, s.Sum, buckets)
	}
	histo(k.reqDur, c.reqDur)
	histo(k.tokDur, c.tokDur)
	histo(k.queueDur, c.queueDur)
	histo(k.inferDur, c.inferDur)
	histo(k.batchRows, c.batchRows)
	histo(k.batchTokens, c.batchTokens)
	histo(k.waste, c.waste)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(k.queueSize, prometheus.GaugeValue, float64(max(c.queued.Load(), 0)))
	counter(k.requests, c.requests.Load())
	counter(k.success, c.success.Load())
	for i, r := range failureReasons {
		counter(k.failures, c.failures[i].Load(), r)
	}
	counter(k.pairs, c.pairs.Load())
	counter(k.dropped, c.dropped.Load(), ReasonCancelled)
	counter(k.dropped, c.abandoned.Load(), "request_failed")
	counter(k.batches, c.batches.Load())
	counter(k.mixed, c.mixed.Load())
	counter(k.realTok, c.realTokens.Load())
	counter(k.padTok, c.paddedTokens.Load())
}
