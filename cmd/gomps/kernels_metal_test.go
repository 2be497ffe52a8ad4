package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetalOpPlanShapes(t *testing.T) {
	t.Parallel()
	plan := metalOpPlan([]int{64, 129}, 32, 384, 12, 1536)
	require.Len(t, plan, 8)
	want := []metalOpCase{
		{"embed", 64, 32 * 64, 384},
		{"layer_norm", 64, 32 * 64, 384},
		{"masked_softmax", 64, 32 * 12 * 64, 64},
		{"bias_gelu", 64, 32 * 64, 1536},
		{"embed", 129, 32 * 129, 384},
		{"layer_norm", 129, 32 * 129, 384},
		{"masked_softmax", 129, 32 * 12 * 129, 129},
		{"bias_gelu", 129, 32 * 129, 1536},
	}
	for i, w := range want {
		assert.Equal(t, w, plan[i], "case %d", i)
	}
}

func TestMetalOpRowRates(t *testing.T) {
	t.Parallel()
	// layer_norm f32 at 4096 x 384: 2 x 4096 x 384 x 4 + 2 x 384 x 4 bytes
	r, err := newMetalOpRow(metalOpCase{"layer_norm", 128, 4096, 384}, false, 0.1, 0.25, 1e-6, 1e-12)
	require.NoError(t, err)
	const bytes = 2*4096*384*4 + 2*384*4
	assert.Equal(t, int64(bytes), r.Bytes, "bytes")
	assert.InDelta(t, bytes/0.1e-3/1e9, r.KernelGBs, 1e-9, "kernel GB/s")
	assert.InDelta(t, bytes/0.25e-3/1e9, r.GraphGBs, 1e-9, "graph GB/s")
	_, err = newMetalOpRow(metalOpCase{"nope", 1, 1, 1}, false, 1, 1, 0, 0)
	assert.Error(t, err, "unknown op")
	assert.Zero(t, gbPerSec(100, 0), "no time, no rate")
}

func TestWriteMetalKernels(t *testing.T) {
	t.Parallel()
	row, err := newMetalOpRow(metalOpCase{"bias_gelu", 64, 2048, 1536}, true, 0.05, 0.1, 2e-3, 3e-8)
	require.NoError(t, err)
	rep := metalKernelsReport{Precision: "f16", Batch: 32, Iters: 50, Ops: []metalOpRow{row}, ForwardNote: "no --model given"}
	var b bytes.Buffer
	writeMetalKernels(&b, rep)
	out := b.String()
	assert.Contains(t, out, "Metal backend, f16, B=32")
	// 2 x (2 x 2048 x 1536 + 1536) bytes = 12,585,984: 251.7 GB/s in 0.05 ms
	assert.Contains(t, out, "| bias_gelu | 64 | 2048 | 1536 | 0.0500 | 0.1000 | 251.7 | 125.9 | 2.00x | 0.002 | 3e-08 |")
	assert.Contains(t, out, "Whole-model forward: not run (no --model given).")

	rep.Model, rep.LoadMS, rep.ForwardNote = "m.gomps", 1234, ""
	rep.Forward = []metalForwardRow{{Batch: 8, Seq: 128, MeanMS: 4, BestMS: 3.5, PairsPerSec: 2000, CompileMS: 310}}
	b.Reset()
	writeMetalKernels(&b, rep)
	out = b.String()
	assert.Contains(t, out, "(m.gomps; load 1234 ms")
	assert.Contains(t, out, "| 8 | 128 | 4.000 | 3.500 | 2000 | 310 |")
	assert.NotContains(t, out, "not run")
}
