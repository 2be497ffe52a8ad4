package engine

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Prometheus view and Stats read the same counters.
func TestPrometheusMatchesStats(t *testing.T) {
	t.Parallel()
	fb := newFakeBackend()
	fb.failID = 777
	e := startEngine(t, Config{MaxSeq: 64}, fb)
	ctx := context.Background()
	for _, c := range makeCalls(5, 20, 30, 40) {
		_, err := e.Score(ctx, c.query, c.passages, Call{})
		require.NoError(t, err)
	}
	_, err := e.Score(ctx, "1", []string{"777"}, Call{})
	require.Error(t, err)

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(e.Collector()))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	for _, name := range []string{MetricRequestDuration, MetricTokenizationDuration, MetricQueueDuration,
		MetricInferenceDuration, MetricBatchSize, MetricBatchTokens, MetricPaddingWaste, MetricQueueSize,
		MetricRequests, MetricRequestSuccess, MetricRequestFailures, MetricPairs, MetricPairsDropped,
		MetricBatches, MetricBatchesMixed, MetricTokensReal, MetricTokensPadded} {
		assert.Contains(t, byName, name)
	}
	s := e.Stats()
	counter := func(name string) float64 { return byName[name].GetMetric()[0].GetCounter().GetValue() }
	assert.Equal(t, float64(s.Requests), counter(MetricRequests))
	assert.Equal(t, float64(s.Succeeded), counter(MetricRequestSuccess))
	assert.Equal(t, float64(s.Batches), counter(MetricBatches))
	assert.Equal(t, float64(s.PaddedTokens), counter(MetricTokensPadded))
	assert.Equal(t, uint64(21), s.Requests)
	for _, m := range byName[MetricRequestFailures].GetMetric() {
		reason := m.GetLabel()[0].GetValue()
		assert.Equal(t, float64(s.Failures[reason]), m.GetCounter().GetValue(), "reason %s", reason)
	}
	h := byName[MetricRequestDuration].GetMetric()[0].GetHistogram()
	assert.Equal(t, s.RequestDuration.Count, h.GetSampleCount())
	assert.Equal(t, s.Succeeded, h.GetSampleCount())
	assert.InDelta(t, s.RequestDuration.Sum, h.GetSampleSum(), 1e-12)
	b := byName[MetricBatchSize].GetMetric()[0].GetHistogram()
	assert.Equal(t, s.Batches, b.GetSampleCount())
	assert.InDelta(t, float64(s.Rows), b.GetSampleSum(), 1e-9)
	// Cumulative buckets never decrease and end at or below the count.
	prev := uint64(0)
	for _, bk := range h.GetBucket() {
		assert.GreaterOrEqual(t, bk.GetCumulativeCount(), prev)
		prev = bk.GetCumulativeCount()
	}
	assert.LessOrEqual(t, prev, h.GetSampleCount())
	assert.Equal(t, 0.0, byName[MetricQueueSize].GetMetric()[0].GetGauge().GetValue())
}
