//go:build !darwin && cgo

package metal_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gomps/gomps/kernels/native"
	"github.com/gomps/gomps/weights"
)

// TestReferenceMatchesCPU checks the float64 reference that the Metal tests
// use against the CPU backend (fp32), on Linux, so the reference is known to
// be right before a Mac ever runs it.
func TestReferenceMatchesCPU(t *testing.T) {
	path := tinyModel(t, weights.F32)
	ref, err := loadRef(path)
	require.NoError(t, err)
	b, err := native.Lookup("cpu")
	require.NoError(t, err)
	m, err := b.Load(path, native.Options{MaxBatch: 8, MaxSeq: 40})
	require.NoError(t, err)
	defer m.Close()
	ctx, err := m.NewContext(1)
	require.NoError(t, err)
	defer ctx.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, shape := range [][2]int{{1, 1}, {3, 7}, {8, 40}} {
		in := randomBatch(r, shape[0], shape[1], ref.cfg.VocabSize)
		got := make([]float32, in.batch)
		require.NoError(t, ctx.Forward(in.batch, in.seq, in.ids, in.types, in.lengths, got))
		want := ref.logits(in)
		for b := range in.batch {
			assert.InDelta(t, want[b], float64(got[b]), 1e-5, "batch=%d seq=%d row %d (len %d)", in.batch, in.seq, b, in.lengths[b])
		}
	}
}
